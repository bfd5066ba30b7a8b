//! HTTP odds and ends: responses, dates, entity-tag preconditions, request headers.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Response, StatusCode};

/// The media type of every XML body we write.
pub(crate) const XML_TYPE: &str = "application/xml; charset=\"utf-8\"";

/// A response with a short plain-text explanation (no body for 204/304).
pub(crate) fn status(code: StatusCode, why: &str) -> Response<Body> {
    if matches!(code, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) {
        return Response::builder()
            .status(code)
            .body(Body::empty())
            .unwrap_or_default();
    }
    let text = format!("{} {}\n", code.as_u16(), why);
    with_body(code, "text/plain; charset=utf-8", text.into_bytes())
}

/// A response with a body of the given media type.
pub(crate) fn with_body(code: StatusCode, media_type: &str, body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(CONTENT_TYPE, media_type)
        .header(CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .unwrap_or_default()
}

/// An XML response.
pub(crate) fn xml(code: StatusCode, body: String) -> Response<Body> {
    with_body(code, XML_TYPE, body.into_bytes())
}

/// Add a header when the value is valid (it always is for values we build ourselves).
pub(crate) fn set_header(resp: &mut Response<Body>, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// A header's value as text, trimmed; `None` when absent or not visible ASCII.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Civil date and time (UTC) of a `SystemTime`: (year, month, day, hour, minute, second,
/// weekday with 0 = Sunday). Times before 1970 are clamped to the epoch.
fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let secs = i64::try_from(secs).unwrap_or(i64::MAX / 2);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let weekday = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday
                                            // Days since 1970-01-01 to a proleptic Gregorian date, counting in 400-year eras
                                            // that start on 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let small = |v: i64| u32::try_from(v).unwrap_or_default();
    (
        year,
        small(month),
        small(day),
        small(rem / 3600),
        small(rem % 3600 / 60),
        small(rem % 60),
        small(weekday),
    )
}

/// An IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, wd) = civil(t);
    let wd = DAYS.get(wd as usize).copied().unwrap_or("Sun");
    let mo = MONTHS
        .get((mo as usize).saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    format!("{wd}, {d:02} {mo} {y:04} {h:02}:{mi:02}:{s:02} GMT")
}

/// An RFC 3339 timestamp for DAV:creationdate: `1994-11-06T08:49:37Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// The entity tags of an `If-Match` / `If-None-Match` list: `None` for `*`, otherwise
/// `(weak, "opaque")` pairs. Malformed members are skipped.
fn etag_list(value: &str) -> Option<Vec<(bool, &str)>> {
    if value.trim() == "*" {
        return None;
    }
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let weak = rest.starts_with("W/");
        let body = if weak { &rest[2..] } else { rest };
        let Some(after_quote) = body.strip_prefix('"') else {
            // Skip a malformed member up to the next comma.
            rest = rest.split_once(',').map_or("", |(_, r)| r);
            continue;
        };
        match after_quote.find('"') {
            Some(end) => {
                tags.push((weak, &body[..end + 2]));
                rest = &after_quote[end + 1..];
            }
            None => break,
        }
    }
    Some(tags)
}

/// Every value of a header joined as one list.
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// Evaluate `If-Match` and `If-None-Match` (RFC 9110 §13.2.2) against the current state of
/// the target: `exists` and its strong ETag (quoted). `Err` carries 412, or 304 for a failed
/// `If-None-Match` on GET/HEAD (`safe`).
pub(crate) fn check_preconditions(
    headers: &HeaderMap,
    exists: bool,
    etag: Option<&str>,
    safe: bool,
) -> Result<(), StatusCode> {
    if let Some(value) = joined(headers, "if-match") {
        let ok = match etag_list(&value) {
            None => exists,
            // Strong comparison: weak tags never match.
            Some(tags) => etag.is_some_and(|cur| tags.iter().any(|&(weak, t)| !weak && t == cur)),
        };
        if !ok {
            return Err(StatusCode::PRECONDITION_FAILED);
        }
    }
    if let Some(value) = joined(headers, "if-none-match") {
        let matched = match etag_list(&value) {
            None => exists,
            // Weak comparison.
            Some(tags) => etag.is_some_and(|cur| tags.iter().any(|&(_, t)| t == cur)),
        };
        if matched {
            return Err(if safe {
                StatusCode::NOT_MODIFIED
            } else {
                StatusCode::PRECONDITION_FAILED
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(rfc3339(t), "1994-11-06T08:49:37Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn preconditions() {
        let mut h = HeaderMap::new();
        h.insert("if-match", HeaderValue::from_static("W/\"a\", \"b\""));
        assert!(check_preconditions(&h, true, Some("\"b\""), false).is_ok());
        assert!(check_preconditions(&h, true, Some("\"a\""), false).is_err());
        let mut h = HeaderMap::new();
        h.insert("if-none-match", HeaderValue::from_static("*"));
        assert_eq!(
            check_preconditions(&h, true, None, false),
            Err(StatusCode::PRECONDITION_FAILED)
        );
        assert!(check_preconditions(&h, false, None, false).is_ok());
        let mut h = HeaderMap::new();
        h.insert("if-none-match", HeaderValue::from_static("W/\"x\""));
        assert_eq!(
            check_preconditions(&h, true, Some("\"x\""), true),
            Err(StatusCode::NOT_MODIFIED)
        );
    }
}
