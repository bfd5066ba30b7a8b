//! The `Timeout` request header (RFC 4918 §10.7).

use http::{HeaderMap, HeaderName};

use super::{trim_ows, visible_ascii, HeaderError};
use crate::LockTimeout;

const NAME: &str = "Timeout";
static TIMEOUT: HeaderName = HeaderName::from_static("timeout");

/// Parse a `Timeout` value: `1#TimeType`, `TimeType = "Second-" 1*DIGIT | "Infinite"`.
///
/// The list keeps the client's order of preference. Literals are case-insensitive; no
/// whitespace is allowed inside a `TimeType`; empty list elements (`a, , b`) are skipped
/// (RFC 9110 §5.6.1), but at least one element is required. Seconds above `2^32-1` (any number
/// of digits) clamp to `u32::MAX`.
///
/// ```
/// use tower_locks::{parse_timeout, LockTimeout};
///
/// assert_eq!(
///     parse_timeout("Infinite, Second-4100000000").unwrap(),
///     [LockTimeout::Infinite, LockTimeout::Seconds(4_100_000_000)]
/// );
/// assert_eq!(
///     parse_timeout("second-99999999999999999999").unwrap(),
///     [LockTimeout::Seconds(u32::MAX)]
/// );
/// assert!(parse_timeout("Second- 5").is_err());
/// assert!(parse_timeout("Minute-5").is_err());
/// ```
///
/// # Errors
/// [`HeaderError::Invalid`] for an unknown or malformed `TimeType` or an empty list.
pub fn parse_timeout(value: &str) -> Result<Vec<LockTimeout>, HeaderError> {
    let mut out = Vec::new();
    for element in value.split(',') {
        let element = trim_ows(element);
        if element.is_empty() {
            continue;
        }
        out.push(parse_time_type(element)?);
    }
    if out.is_empty() {
        return Err(HeaderError::invalid(NAME, "empty list"));
    }
    Ok(out)
}

fn parse_time_type(element: &str) -> Result<LockTimeout, HeaderError> {
    if element.eq_ignore_ascii_case("infinite") {
        return Ok(LockTimeout::Infinite);
    }
    let digits = element
        .get(..7)
        .filter(|prefix| prefix.eq_ignore_ascii_case("second-"))
        .map(|_| &element[7..])
        .ok_or_else(|| {
            HeaderError::invalid(NAME, "unknown time type (expected Second-N or Infinite)")
        })?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::invalid(
            NAME,
            "Second- must be followed by decimal digits only",
        ));
    }
    let seconds = digits.bytes().fold(0u32, |acc, d| {
        acc.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    });
    Ok(LockTimeout::Seconds(seconds))
}

/// Parse every `Timeout` field line of a request as one list (the header is a `#list`, so
/// several lines are joined with commas, RFC 9110 §5.3). `Ok(None)` when the header is absent.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use tower_locks::{parse_timeout_headers, LockTimeout};
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(parse_timeout_headers(&headers), Ok(None));
/// headers.append("timeout", HeaderValue::from_static("Second-3600"));
/// headers.append("timeout", HeaderValue::from_static("Infinite"));
/// assert_eq!(
///     parse_timeout_headers(&headers),
///     Ok(Some(vec![LockTimeout::Seconds(3600), LockTimeout::Infinite]))
/// );
/// ```
///
/// # Errors
/// [`HeaderError::Invalid`] for a value that is not visible ASCII or not a valid list.
pub fn parse_timeout_headers(headers: &HeaderMap) -> Result<Option<Vec<LockTimeout>>, HeaderError> {
    let mut lines = headers.get_all(&TIMEOUT).iter().peekable();
    if lines.peek().is_none() {
        return Ok(None);
    }
    let mut joined = String::new();
    for line in lines {
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(visible_ascii(line, NAME)?);
    }
    parse_timeout(&joined).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use LockTimeout::{Infinite, Seconds};

    #[test]
    fn single_values() {
        assert_eq!(parse_timeout("Second-3600"), Ok(vec![Seconds(3600)]));
        assert_eq!(parse_timeout("Infinite"), Ok(vec![Infinite]));
        assert_eq!(parse_timeout("infinite"), Ok(vec![Infinite]));
        assert_eq!(parse_timeout("INFINITE"), Ok(vec![Infinite]));
        assert_eq!(parse_timeout("second-0"), Ok(vec![Seconds(0)]));
        assert_eq!(parse_timeout("SECOND-007"), Ok(vec![Seconds(7)]));
        assert_eq!(parse_timeout("  Second-5\t"), Ok(vec![Seconds(5)]));
    }

    #[test]
    fn rfc_example_and_order() {
        // RFC 4918 §9.10.7 / §9.10.9 example.
        assert_eq!(
            parse_timeout("Infinite, Second-4100000000"),
            Ok(vec![Infinite, Seconds(4_100_000_000)])
        );
        assert_eq!(
            parse_timeout("Second-1,Second-2 ,\tInfinite"),
            Ok(vec![Seconds(1), Seconds(2), Infinite])
        );
    }

    #[test]
    fn clamping() {
        assert_eq!(
            parse_timeout("Second-4294967295"),
            Ok(vec![Seconds(u32::MAX)])
        );
        assert_eq!(
            parse_timeout("Second-4294967294"),
            Ok(vec![Seconds(u32::MAX - 1)])
        );
        assert_eq!(
            parse_timeout("Second-4294967296"),
            Ok(vec![Seconds(u32::MAX)])
        );
        assert_eq!(
            parse_timeout("Second-99999999999999999999"),
            Ok(vec![Seconds(u32::MAX)])
        );
        let huge = format!("Second-{}", "9".repeat(10_000));
        assert_eq!(parse_timeout(&huge), Ok(vec![Seconds(u32::MAX)]));
        let padded = format!("Second-{}42", "0".repeat(100));
        assert_eq!(parse_timeout(&padded), Ok(vec![Seconds(42)]));
    }

    #[test]
    fn empty_elements_are_skipped() {
        assert_eq!(
            parse_timeout("Second-1, , Infinite,"),
            Ok(vec![Seconds(1), Infinite])
        );
        assert_eq!(parse_timeout(",Second-1"), Ok(vec![Seconds(1)]));
    }

    #[test]
    fn malformed() {
        for bad in [
            "",
            " ",
            ",",
            " , ,",
            "Second-",
            "Second-x",
            "Second-1x",
            "Second--1",
            "Second-+1",
            "Second- 1",
            "Second -1",
            "Second-1 2",
            "Seconds-1",
            "Second1",
            "Infinity",
            "Infinite-1",
            "Minute-5",
            "3600",
            "Second-3600; Infinite",
            "Second-\u{661}",
            "S\u{e9}cond-1",
            "\u{e9}\u{e9}\u{e9}\u{e9}",
            "Second-1, Bogus",
        ] {
            assert!(
                matches!(
                    parse_timeout(bad),
                    Err(HeaderError::Invalid {
                        header: "Timeout",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn from_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(parse_timeout_headers(&h), Ok(None));
        h.insert("timeout", HeaderValue::from_static("Second-3600"));
        assert_eq!(parse_timeout_headers(&h), Ok(Some(vec![Seconds(3600)])));
        h.append("timeout", HeaderValue::from_static("Infinite, Second-5"));
        assert_eq!(
            parse_timeout_headers(&h),
            Ok(Some(vec![Seconds(3600), Infinite, Seconds(5)]))
        );
        h.append("timeout", HeaderValue::from_static(""));
        assert_eq!(
            parse_timeout_headers(&h),
            Ok(Some(vec![Seconds(3600), Infinite, Seconds(5)]))
        );
        h.append("timeout", HeaderValue::from_bytes(b"Second-\xff").unwrap());
        assert!(parse_timeout_headers(&h).is_err());

        let mut h = HeaderMap::new();
        h.insert("timeout", HeaderValue::from_static(""));
        assert!(parse_timeout_headers(&h).is_err());
        h.insert("timeout", HeaderValue::from_static("Bogus"));
        assert!(parse_timeout_headers(&h).is_err());
    }
}
