//! `If-Match` and `If-None-Match` (RFC 9110 §13.1.1, §13.1.2), `#list` headers of entity
//! tags or `*`.

use http::{HeaderMap, HeaderName};

use super::if_header::parse_etag_at;
use super::{is_ows, visible_ascii, EntityTag, HeaderError};

/// What an `If-Match` or `If-None-Match` header names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntityTags {
    /// `*`: any current representation.
    Any,
    /// These entity tags.
    Listed(Vec<EntityTag>),
}

/// The entity tags of header `key` (named `name` in errors), all its field lines together;
/// `None` when it is absent.
pub(crate) fn parse_entity_tags(
    headers: &HeaderMap,
    key: &HeaderName,
    name: &'static str,
) -> Result<Option<EntityTags>, HeaderError> {
    let mut lines = headers.get_all(key).iter().peekable();
    if lines.peek().is_none() {
        return Ok(None);
    }
    let (mut any, mut tags) = (false, Vec::new());
    for line in lines {
        let text = visible_ascii(line, name)?;
        let bytes = text.as_bytes();
        let mut pos = 0;
        loop {
            // Empty list elements and the whitespace around them are allowed (RFC 9110 §5.6.1).
            while pos < bytes.len() && (is_ows(bytes[pos]) || bytes[pos] == b',') {
                pos += 1;
            }
            if pos == bytes.len() {
                break;
            }
            if bytes[pos] == b'*' {
                any = true;
                pos += 1;
            } else {
                let (tag, end) = parse_etag_at(text, pos, false)
                    .ok_or_else(|| HeaderError::invalid(name, "expected an entity tag or *"))?;
                tags.push(tag);
                pos = end;
            }
            while pos < bytes.len() && is_ows(bytes[pos]) {
                pos += 1;
            }
            if pos < bytes.len() && bytes[pos] != b',' {
                return Err(HeaderError::invalid(name, "expected a comma"));
            }
        }
    }
    match (any, tags.is_empty()) {
        (true, true) => Ok(Some(EntityTags::Any)),
        (true, false) => Err(HeaderError::invalid(name, "* stands alone")),
        (false, true) => Err(HeaderError::invalid(name, "no entity tag")),
        (false, false) => Ok(Some(EntityTags::Listed(tags))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::IF_MATCH;

    fn parse(lines: &[&str]) -> Result<Option<EntityTags>, HeaderError> {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(IF_MATCH, line.parse().unwrap());
        }
        parse_entity_tags(&headers, &IF_MATCH, "If-Match")
    }

    fn tag(weak: bool, opaque: &str) -> EntityTag {
        EntityTag {
            weak,
            opaque: opaque.to_owned(),
        }
    }

    #[test]
    fn lists_of_tags_over_several_lines() {
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(parse(&["*"]), Ok(Some(EntityTags::Any)));
        assert_eq!(parse(&[" * , "]), Ok(Some(EntityTags::Any)));
        assert_eq!(
            parse(&["\"a\", W/\"b\"", ",\"c,d\""]),
            Ok(Some(EntityTags::Listed(vec![
                tag(false, "a"),
                tag(true, "b"),
                tag(false, "c,d")
            ])))
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            &["*, \"a\""][..],
            &["a"],
            &["\"a\" \"b\""],
            &[""],
            &["\"a"],
            &["w/\"a\""],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
