//! The `Destination` request header (RFC 4918 §10.3).

use http::{HeaderMap, HeaderName};

use super::{single_line, trim_ows, visible_ascii, HeaderError};

const NAME: &str = "Destination";
static DESTINATION: HeaderName = HeaderName::from_static("destination");

/// The raw `Destination` value (COPY, MOVE), trimmed; `Ok(None)` when absent.
///
/// Only the shape is checked here: one field line, non-empty, visible ASCII without inner
/// whitespace. Resolving the `Simple-ref` (absolute URI or absolute path) against the request
/// and normalising it is the caller's job.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use tower_locks::destination;
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(destination(&headers), Ok(None));
/// headers.insert("destination", HeaderValue::from_static(" http://example.com/a/b "));
/// assert_eq!(destination(&headers), Ok(Some("http://example.com/a/b")));
/// ```
///
/// # Errors
/// [`HeaderError::Duplicate`] for several field lines, [`HeaderError::Invalid`] for an empty
/// value or one that is not visible ASCII.
pub fn destination(headers: &HeaderMap) -> Result<Option<&str>, HeaderError> {
    let Some(value) = single_line(headers, &DESTINATION, NAME)? else {
        return Ok(None);
    };
    let text = trim_ows(visible_ascii(value, NAME)?);
    if text.is_empty() {
        return Err(HeaderError::invalid(NAME, "empty value"));
    }
    if text.bytes().any(|b| b == b' ' || b == b'\t') {
        return Err(HeaderError::invalid(NAME, "whitespace inside the value"));
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn values() {
        let mut h = HeaderMap::new();
        assert_eq!(destination(&h), Ok(None));
        h.insert("destination", HeaderValue::from_static("/a/b%20c"));
        assert_eq!(destination(&h), Ok(Some("/a/b%20c")));
        h.insert(
            "destination",
            HeaderValue::from_static("\thttp://127.0.0.1:8088/dav/litmus/whocares "),
        );
        assert_eq!(
            destination(&h),
            Ok(Some("http://127.0.0.1:8088/dav/litmus/whocares"))
        );
    }

    #[test]
    fn rejected() {
        for bad in [&b""[..], b"  ", b"/a b", b"/a\xff", b"/caf\xc3\xa9"] {
            let mut h = HeaderMap::new();
            h.insert("destination", HeaderValue::from_bytes(bad).unwrap());
            assert!(
                matches!(
                    destination(&h),
                    Err(HeaderError::Invalid {
                        header: "Destination",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        let mut h = HeaderMap::new();
        h.append("destination", HeaderValue::from_static("/a"));
        h.append("destination", HeaderValue::from_static("/b"));
        assert_eq!(destination(&h), Err(HeaderError::Duplicate("Destination")));
    }
}
