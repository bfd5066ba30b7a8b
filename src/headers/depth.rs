//! The `Depth` request header (RFC 4918 §10.2).

use http::{HeaderMap, HeaderName};

use super::{single_line, trim_ows, visible_ascii, HeaderError};

const NAME: &str = "Depth";
static DEPTH: HeaderName = HeaderName::from_static("depth");

/// A `Depth` header value: `0`, `1` or `infinity`.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use tower_locks::{parse_depth, Depth};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("depth", HeaderValue::from_static("Infinity"));
/// assert_eq!(parse_depth(&headers), Ok(Some(Depth::Infinity)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Depth {
    /// `Depth: 0`.
    Zero,
    /// `Depth: 1`.
    One,
    /// `Depth: infinity`.
    Infinity,
}

/// Parse the `Depth` header: `"0" | "1" | "infinity"` (case-insensitive, surrounding
/// whitespace ignored). `Ok(None)` when absent; what the absence means depends on the method.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use tower_locks::{parse_depth, Depth, HeaderError};
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(parse_depth(&headers), Ok(None));
/// headers.insert("depth", HeaderValue::from_static("0"));
/// assert_eq!(parse_depth(&headers), Ok(Some(Depth::Zero)));
/// headers.append("depth", HeaderValue::from_static("1"));
/// assert_eq!(parse_depth(&headers), Err(HeaderError::Duplicate("Depth")));
/// ```
///
/// # Errors
/// [`HeaderError::Duplicate`] for several field lines, [`HeaderError::Invalid`] for any other
/// value.
pub fn parse_depth(headers: &HeaderMap) -> Result<Option<Depth>, HeaderError> {
    let Some(value) = single_line(headers, &DEPTH, NAME)? else {
        return Ok(None);
    };
    let text = trim_ows(visible_ascii(value, NAME)?);
    let depth = match text {
        "0" => Depth::Zero,
        "1" => Depth::One,
        t if t.eq_ignore_ascii_case("infinity") => Depth::Infinity,
        _ => {
            return Err(HeaderError::invalid(
                NAME,
                "expected \"0\", \"1\" or \"infinity\"",
            ))
        }
    };
    Ok(Some(depth))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn depth(v: &'static [u8]) -> Result<Option<Depth>, HeaderError> {
        let mut h = HeaderMap::new();
        h.insert("depth", HeaderValue::from_bytes(v).unwrap());
        parse_depth(&h)
    }

    #[test]
    fn values() {
        assert_eq!(parse_depth(&HeaderMap::new()), Ok(None));
        assert_eq!(depth(b"0"), Ok(Some(Depth::Zero)));
        assert_eq!(depth(b"1"), Ok(Some(Depth::One)));
        assert_eq!(depth(b"infinity"), Ok(Some(Depth::Infinity)));
        assert_eq!(depth(b"Infinity"), Ok(Some(Depth::Infinity)));
        assert_eq!(depth(b"INFINITY"), Ok(Some(Depth::Infinity)));
        assert_eq!(depth(b" 0\t"), Ok(Some(Depth::Zero)));
    }

    #[test]
    fn invalid() {
        for bad in [
            &b""[..],
            b" ",
            b"2",
            b"00",
            b"01",
            b"-1",
            b"inf",
            b"infinite",
            b"infinity,0",
            b"0,1",
            b"0 1",
            b"\xff",
            b"infinit\xc3\xa9",
        ] {
            let mut h = HeaderMap::new();
            h.insert("depth", HeaderValue::from_bytes(bad).unwrap());
            assert!(
                matches!(
                    parse_depth(&h),
                    Err(HeaderError::Invalid {
                        header: "Depth",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn duplicate_lines() {
        let mut h = HeaderMap::new();
        h.append("depth", HeaderValue::from_static("0"));
        h.append("depth", HeaderValue::from_static("0"));
        assert_eq!(parse_depth(&h), Err(HeaderError::Duplicate("Depth")));
    }
}
