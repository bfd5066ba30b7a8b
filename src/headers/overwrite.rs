//! The `Overwrite` request header (RFC 4918 §10.6).

use http::{HeaderMap, HeaderName};

use super::{single_line, trim_ows, visible_ascii, HeaderError};

const NAME: &str = "Overwrite";
static OVERWRITE: HeaderName = HeaderName::from_static("overwrite");

/// Parse the `Overwrite` header: `T` → `true`, `F` → `false`, absent → `true` (the RFC
/// default). Lower-case `t` / `f` and surrounding whitespace are accepted.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use tower_locks::parse_overwrite;
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(parse_overwrite(&headers), Ok(true));
/// headers.insert("overwrite", HeaderValue::from_static("F"));
/// assert_eq!(parse_overwrite(&headers), Ok(false));
/// headers.insert("overwrite", HeaderValue::from_static("yes"));
/// assert!(parse_overwrite(&headers).is_err());
/// ```
///
/// # Errors
/// [`HeaderError::Duplicate`] for several field lines, [`HeaderError::Invalid`] for any value
/// other than `T` or `F`.
pub fn parse_overwrite(headers: &HeaderMap) -> Result<bool, HeaderError> {
    let Some(value) = single_line(headers, &OVERWRITE, NAME)? else {
        return Ok(true);
    };
    match trim_ows(visible_ascii(value, NAME)?) {
        "T" | "t" => Ok(true),
        "F" | "f" => Ok(false),
        _ => Err(HeaderError::invalid(NAME, "expected \"T\" or \"F\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse(v: &[u8]) -> Result<bool, HeaderError> {
        let mut h = HeaderMap::new();
        h.insert("overwrite", HeaderValue::from_bytes(v).unwrap());
        parse_overwrite(&h)
    }

    #[test]
    fn values() {
        assert_eq!(parse_overwrite(&HeaderMap::new()), Ok(true));
        assert_eq!(parse(b"T"), Ok(true));
        assert_eq!(parse(b"t"), Ok(true));
        assert_eq!(parse(b"F"), Ok(false));
        assert_eq!(parse(b"f"), Ok(false));
        assert_eq!(parse(b" F\t"), Ok(false));
    }

    #[test]
    fn rejected() {
        for bad in [
            &b""[..],
            b" ",
            b"TF",
            b"true",
            b"false",
            b"1",
            b"0",
            b"T,F",
            b"\xff",
        ] {
            assert!(
                matches!(
                    parse(bad),
                    Err(HeaderError::Invalid {
                        header: "Overwrite",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        let mut h = HeaderMap::new();
        h.append("overwrite", HeaderValue::from_static("T"));
        h.append("overwrite", HeaderValue::from_static("T"));
        assert_eq!(
            parse_overwrite(&h),
            Err(HeaderError::Duplicate("Overwrite"))
        );
    }
}
