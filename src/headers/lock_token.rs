//! The `Lock-Token` request header (RFC 4918 §10.5).

use http::{HeaderMap, HeaderName};

use super::{looks_like_absolute_uri, single_line, trim_ows, visible_ascii, HeaderError};

const NAME: &str = "Lock-Token";
/// The `Lock-Token` header's name, for requests read and answers written.
pub(crate) static LOCK_TOKEN: HeaderName = HeaderName::from_static("lock-token");

/// Parse the `Lock-Token` request header (UNLOCK): `Coded-URL = "<" absolute-URI ">"`.
///
/// Returns the token without the angle brackets. The bracket-less form some Windows clients
/// send (`Lock-Token: opaquelocktoken:…`) is accepted too; surrounding whitespace is trimmed.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use tower_locks::{parse_lock_token, HeaderError};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("lock-token", HeaderValue::from_static("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"));
/// assert_eq!(
///     parse_lock_token(&headers).unwrap(),
///     "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
/// );
/// headers.insert("lock-token", HeaderValue::from_static("opaquelocktoken:abc"));
/// assert_eq!(parse_lock_token(&headers).unwrap(), "opaquelocktoken:abc");
/// headers.insert("lock-token", HeaderValue::from_static("<not a token>"));
/// assert!(parse_lock_token(&headers).is_err());
/// ```
///
/// # Errors
/// [`HeaderError::Missing`] when absent, [`HeaderError::Duplicate`] for several field lines,
/// [`HeaderError::Invalid`] when empty, unbalanced, containing whitespace or not an absolute
/// URI.
pub fn parse_lock_token(headers: &HeaderMap) -> Result<String, HeaderError> {
    let value = single_line(headers, &LOCK_TOKEN, NAME)?.ok_or(HeaderError::Missing(NAME))?;
    let text = trim_ows(visible_ascii(value, NAME)?);
    if text.is_empty() {
        return Err(HeaderError::invalid(NAME, "empty value"));
    }
    let token = match text.strip_prefix('<') {
        Some(rest) => rest
            .strip_suffix('>')
            .ok_or_else(|| HeaderError::invalid(NAME, "missing closing '>'"))?,
        None => text,
    };
    if token.is_empty() {
        return Err(HeaderError::invalid(NAME, "empty token"));
    }
    if token.bytes().any(|b| b == b' ' || b == b'\t') {
        return Err(HeaderError::invalid(NAME, "whitespace inside the token"));
    }
    if !looks_like_absolute_uri(token) {
        return Err(HeaderError::invalid(NAME, "token is not an absolute URI"));
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse(v: &[u8]) -> Result<String, HeaderError> {
        let mut h = HeaderMap::new();
        h.insert("lock-token", HeaderValue::from_bytes(v).unwrap());
        parse_lock_token(&h)
    }

    #[test]
    fn accepted() {
        let t = "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
        assert_eq!(parse(format!("<{t}>").as_bytes()).as_deref(), Ok(t));
        assert_eq!(parse(format!("  <{t}>\t").as_bytes()).as_deref(), Ok(t));
        assert_eq!(parse(t.as_bytes()).as_deref(), Ok(t));
        assert_eq!(
            parse(b" opaquelocktoken:abc ").as_deref(),
            Ok("opaquelocktoken:abc")
        );
        // litmus notowner_lock sends a bogus but well-formed token
        assert_eq!(
            parse(b"<opaquelocktoken:foobar>").as_deref(),
            Ok("opaquelocktoken:foobar")
        );
        assert_eq!(parse(b"<DAV:no-lock>").as_deref(), Ok("DAV:no-lock"));
    }

    #[test]
    fn missing_and_duplicate() {
        assert_eq!(
            parse_lock_token(&HeaderMap::new()),
            Err(HeaderError::Missing("Lock-Token"))
        );
        let mut h = HeaderMap::new();
        h.append("lock-token", HeaderValue::from_static("<urn:a>"));
        h.append("lock-token", HeaderValue::from_static("<urn:a>"));
        assert_eq!(
            parse_lock_token(&h),
            Err(HeaderError::Duplicate("Lock-Token"))
        );
    }

    #[test]
    fn rejected() {
        for bad in [
            &b""[..],
            b"   ",
            b"<>",
            b"<",
            b">",
            b"<urn:a",
            b"urn:a>",
            b"<urn:a> x",
            b"<urn:a><urn:b>",
            b"<<urn:a>>",
            b"< urn:a>",
            b"<urn: a>",
            b"urn: a",
            b"<foobar>",
            b"foobar",
            b"</path>",
            b"<1urn:a>",
            b"<urn:\xff>",
            b"<urn:\xc3\xa9>",
        ] {
            assert!(
                matches!(
                    parse(bad),
                    Err(HeaderError::Invalid {
                        header: "Lock-Token",
                        ..
                    })
                ),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
