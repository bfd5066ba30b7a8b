//! Pure parsers for the request headers RFC 4918 §10 defines (`If`, `Timeout`, `Depth`,
//! `Lock-Token`, `Overwrite`, `Destination`).
//!
//! Nothing here touches a store or a service: every function takes a header value or an
//! [`http::HeaderMap`] and returns plain data or a [`HeaderError`] (answered with `400 Bad
//! Request` by the layer).
//!
//! Conventions shared by all parsers:
//! - RFC 4918 uses the RFC 2616 ABNF with implied linear whitespace, so optional `SP`/`HTAB` is
//!   accepted between elements, except where the grammar says "No LWS" (inside `<…>`, inside an
//!   entity tag, inside a `TimeType`);
//! - literals are case-insensitive (`Not`, `Second-`, `Infinite`, `infinity`, `T`/`F`);
//! - a header that is not a `#list` must not be split over several field lines; several lines
//!   are a [`HeaderError::Duplicate`] ([decision D5](crate::decisions#d5) for `If`);
//! - values that are not visible ASCII are refused, never a panic.

use http::{HeaderMap, HeaderName, HeaderValue};

mod conditional;
mod depth;
mod destination;
mod if_header;
mod lock_token;
mod overwrite;
mod timeout;

pub(crate) use conditional::{parse_entity_tags, EntityTags};
pub use depth::{parse_depth, Depth};
pub use destination::destination;
pub(crate) use if_header::parse_etag_at;
pub use if_header::{
    Condition, ConditionKind, EntityTag, IfHeader, IfHeaderError, IfLimits, IfList,
};
pub use lock_token::parse_lock_token;
pub(crate) use lock_token::LOCK_TOKEN;
pub use overwrite::parse_overwrite;
pub use timeout::{parse_timeout, parse_timeout_headers};

/// Why a request header was refused. The layer answers all of these with `400 Bad Request`.
///
/// ```
/// use http::HeaderMap;
/// use tower_locks::{parse_lock_token, HeaderError};
///
/// let err = parse_lock_token(&HeaderMap::new()).unwrap_err();
/// assert_eq!(err, HeaderError::Missing("Lock-Token"));
/// assert_eq!(err.to_string(), "missing Lock-Token header");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// A required header is absent (the header's name).
    #[error("missing {0} header")]
    Missing(&'static str),
    /// A header that must appear once was sent in several field lines (the header's name).
    #[error("{0} header sent in several field lines")]
    Duplicate(&'static str),
    /// The header's value does not follow its grammar.
    #[error("invalid {header} header: {reason}")]
    Invalid {
        /// The header's name.
        header: &'static str,
        /// What is wrong, in lower case.
        reason: String,
    },
    /// The `If` header does not follow RFC 4918 §10.4.2.
    #[error(transparent)]
    If(#[from] IfHeaderError),
}

impl HeaderError {
    pub(crate) fn invalid(header: &'static str, reason: impl Into<String>) -> Self {
        HeaderError::Invalid {
            header,
            reason: reason.into(),
        }
    }
}

static IF: HeaderName = HeaderName::from_static("if");

/// Parse the `If` header (RFC 4918 §10.4) of a request, if present.
///
/// Several `If` field lines are refused with [`HeaderError::Duplicate`] ([decision D5](crate::decisions#d5)): the
/// `If` grammar is not a `#list`, so no join of the lines is safe. A value that is not visible
/// ASCII is [`HeaderError::Invalid`]; grammar errors are [`HeaderError::If`].
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use tower_locks::{parse_if, HeaderError, IfLimits};
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(parse_if(&headers, &IfLimits::default()), Ok(None));
///
/// headers.insert("if", HeaderValue::from_static("(<urn:uuid:a>) (Not <DAV:no-lock>)"));
/// let parsed = parse_if(&headers, &IfLimits::default()).unwrap().unwrap();
/// assert_eq!(parsed.state_tokens().collect::<Vec<_>>(), ["urn:uuid:a", "DAV:no-lock"]);
///
/// headers.append("if", HeaderValue::from_static("(<urn:uuid:b>)"));
/// assert_eq!(parse_if(&headers, &IfLimits::default()), Err(HeaderError::Duplicate("If")));
/// ```
///
/// # Errors
/// As described above.
pub fn parse_if(headers: &HeaderMap, limits: &IfLimits) -> Result<Option<IfHeader>, HeaderError> {
    let Some(value) = single_line(headers, &IF, "If")? else {
        return Ok(None);
    };
    if value.len() > limits.max_len {
        return Err(IfHeaderError::TooLong {
            limit: limits.max_len,
        }
        .into());
    }
    // `visible_ascii` admits exactly the characters the parser does, and the length was
    // checked above: parse without checking them again.
    let text = visible_ascii(value, "If")?;
    Ok(Some(IfHeader::parse_visible(text, limits)?))
}

/// The value of `name` if it appears in at most one field line.
pub(crate) fn single_line<'a>(
    headers: &'a HeaderMap,
    key: &HeaderName,
    name: &'static str,
) -> Result<Option<&'a HeaderValue>, HeaderError> {
    let mut values = headers.get_all(key).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(HeaderError::Duplicate(name));
    }
    Ok(first)
}

/// The value as text; refuses anything but visible ASCII, SP and HTAB.
pub(crate) fn visible_ascii<'a>(
    value: &'a HeaderValue,
    name: &'static str,
) -> Result<&'a str, HeaderError> {
    value
        .to_str()
        .map_err(|_| HeaderError::invalid(name, "value is not visible ASCII"))
}

/// Optional whitespace (RFC 9110 `OWS`).
pub(crate) fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without leading and trailing `OWS`.
pub(crate) fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Whether `s` looks like an RFC 3986 absolute URI: `scheme ":" …`, with
/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`, and only visible ASCII other than
/// `<`, `>` and `"` after it. The rest of the URI is not validated.
pub(crate) fn looks_like_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.bytes();
    let scheme_ok = chars.next().is_some_and(|b| b.is_ascii_alphabetic())
        && chars.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    // Branch-free over the rest (vectorised): state tokens are mostly this part.
    scheme_ok
        && rest.bytes().fold(true, |ok, b| {
            ok & (b.is_ascii_graphic() & !matches!(b, b'<' | b'>' | b'"'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_uri_shapes() {
        for ok in [
            "DAV:no-lock",
            "urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2",
            "opaquelocktoken:abc",
            "http://example.com/a?b#c",
            "a+b-c.d:x",
            "x:",
        ] {
            assert!(looks_like_absolute_uri(ok), "{ok}");
        }
        for bad in [
            "",
            "no-colon",
            ":x",
            "1abc:x",
            "a_b:x",
            "a b:x",
            "urn:a b",
            "urn:a>b",
            "urn:\u{e9}",
            "/path",
        ] {
            assert!(!looks_like_absolute_uri(bad), "{bad}");
        }
    }

    #[test]
    fn parse_if_from_headers() {
        let limits = IfLimits::default();
        let mut h = HeaderMap::new();
        assert_eq!(parse_if(&h, &limits), Ok(None));
        h.insert("if", HeaderValue::from_static("(<urn:x>)"));
        assert_eq!(parse_if(&h, &limits).unwrap().unwrap().lists.len(), 1);
        h.append("if", HeaderValue::from_static("(<urn:y>)"));
        assert_eq!(parse_if(&h, &limits), Err(HeaderError::Duplicate("If")));

        let mut h = HeaderMap::new();
        h.insert("if", HeaderValue::from_bytes(b"(<urn:\xff>)").unwrap());
        assert!(matches!(
            parse_if(&h, &limits),
            Err(HeaderError::Invalid { header: "If", .. })
        ));

        let mut h = HeaderMap::new();
        h.insert("if", HeaderValue::from_static("(<urn:x>"));
        assert!(matches!(parse_if(&h, &limits), Err(HeaderError::If(_))));

        let small = IfLimits {
            max_len: 4,
            ..IfLimits::default()
        };
        h.insert("if", HeaderValue::from_static("(<urn:x>)"));
        assert_eq!(
            parse_if(&h, &small),
            Err(HeaderError::If(IfHeaderError::TooLong { limit: 4 }))
        );
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            HeaderError::Duplicate("Depth").to_string(),
            "Depth header sent in several field lines"
        );
        assert_eq!(
            HeaderError::invalid("Overwrite", "expected T or F").to_string(),
            "invalid Overwrite header: expected T or F"
        );
        assert_eq!(
            HeaderError::from(IfHeaderError::Mixed).to_string(),
            "If header: mixed tagged and untagged lists"
        );
    }
}
