//! Class-2 advertising on OPTIONS responses (RFC 4918 §10.1, §18.2).

use http::header::{HeaderValue, ALLOW};
use http::{HeaderName, Response};

static DAV: HeaderName = HeaderName::from_static("dav");
static MS_AUTHOR_VIA: HeaderName = HeaderName::from_static("ms-author-via");

/// What successful OPTIONS answers advertise.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Advertise {
    /// `DAV: 1, 2` and LOCK, UNLOCK in `Allow`.
    pub(crate) class_2: bool,
    /// `MS-Author-Via: DAV`.
    pub(crate) ms_author_via: bool,
}

/// Add what `what` says to a successful OPTIONS response.
pub(crate) fn advertise<B>(res: &mut Response<B>, what: Advertise) {
    if !res.status().is_success() {
        return;
    }
    if what.ms_author_via {
        res.headers_mut()
            .insert(MS_AUTHOR_VIA.clone(), HeaderValue::from_static("DAV"));
    }
    if what.class_2 {
        advertise_class_2(res);
    }
}

/// Make sure a successful OPTIONS response says `DAV: 1, 2` (keeping any other compliance
/// classes the inner service listed) and lists LOCK and UNLOCK in an existing `Allow`.
fn advertise_class_2<B>(res: &mut Response<B>) {
    if !res.status().is_success() {
        return;
    }
    let headers = res.headers_mut();
    // Byte-wise (a field value may carry obs-text), split outside Coded-URLs (`<...>` may
    // hold commas).
    let mut classes: Vec<Vec<u8>> = headers
        .get_all(&DAV)
        .iter()
        .flat_map(|v| split_classes(v.as_bytes()))
        .map(|c| c.trim_ascii().to_vec())
        .filter(|c| !c.is_empty())
        .collect();
    if !classes.iter().any(|c| c == b"1") {
        classes.insert(0, b"1".to_vec());
    }
    if !classes.iter().any(|c| c == b"2") {
        let after_1 = classes.iter().position(|c| c == b"1").map_or(0, |i| i + 1);
        classes.insert(after_1, b"2".to_vec());
    }
    if let Ok(v) = HeaderValue::from_bytes(&classes.join(&b", "[..])) {
        headers.insert(DAV.clone(), v);
    }
    let allowed: Vec<String> = headers
        .get_all(ALLOW)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    if allowed.is_empty() {
        return;
    }
    let mut methods = allowed;
    for m in ["LOCK", "UNLOCK"] {
        if !methods.iter().any(|x| x.eq_ignore_ascii_case(m)) {
            methods.push(m.to_owned());
        }
    }
    if let Ok(v) = HeaderValue::from_str(&methods.join(", ")) {
        headers.insert(ALLOW, v);
    }
}

/// The compliance classes of one `DAV` line: split at the commas outside a Coded-URL.
fn split_classes(v: &[u8]) -> Vec<&[u8]> {
    let (mut out, mut start, mut in_url) = (Vec::new(), 0, false);
    for (i, b) in v.iter().enumerate() {
        match b {
            b'<' => in_url = true,
            b'>' => in_url = false,
            b',' if !in_url => {
                out.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&v[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(res: &Response<()>) -> Vec<String> {
        res.headers()[&DAV]
            .to_str()
            .unwrap()
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect()
    }

    #[test]
    fn adds_class_2_and_lock_methods() {
        let mut res = Response::builder()
            .header("DAV", "1")
            .header("Allow", "GET, PUT")
            .body(())
            .unwrap();
        advertise_class_2(&mut res);
        assert_eq!(classes(&res), ["1", "2"]);
        let allow: Vec<_> = res.headers()[ALLOW].to_str().unwrap().split(", ").collect();
        assert_eq!(allow, ["GET", "PUT", "LOCK", "UNLOCK"]);
    }

    #[test]
    fn keeps_other_classes_and_merges_lines() {
        let mut res = Response::builder()
            .header("DAV", "1, 3")
            .header("DAV", "access-control")
            .body(())
            .unwrap();
        advertise_class_2(&mut res);
        let c = classes(&res);
        assert!(c.contains(&"1".to_owned()) && c.contains(&"2".to_owned()));
        assert!(c.contains(&"3".to_owned()) && c.contains(&"access-control".to_owned()));
        assert_eq!(res.headers().get_all(&DAV).iter().count(), 1);
        assert!(res.headers().get(ALLOW).is_none());
    }

    #[test]
    fn no_dav_header_gets_1_2_and_errors_are_untouched() {
        let mut res = Response::new(());
        advertise_class_2(&mut res);
        assert_eq!(classes(&res), ["1", "2"]);
        let mut err = Response::builder().status(500).body(()).unwrap();
        advertise_class_2(&mut err);
        assert!(err.headers().get(&DAV).is_none());
    }
}
