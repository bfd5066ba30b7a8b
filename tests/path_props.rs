//! Property tests for path normalisation (`ResourcePath`) and for resolving the references the
//! layer resolves (`Destination`, `If` resource tags): no panics, one canonical form, escapes
//! that cannot alias, ancestry consistent with the segments.

mod common;

use common::*;
use http::StatusCode;
use proptest::prelude::*;
use tower_locks::{PathError, ResourcePath};

/// Characters a canonical segment keeps raw; their escapes are decoded.
const SEGMENT_SAFE: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@";

/// Strings biased towards what path normalisation cares about.
fn path_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("/".to_owned()),
            Just("//".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("%2E".to_owned()),
            Just("%2e".to_owned()),
            Just("%2F".to_owned()),
            Just("%25".to_owned()),
            Just("%".to_owned()),
            Just("%7E".to_owned()),
            Just("%27".to_owned()),
            Just("?".to_owned()),
            Just("#".to_owned()),
            Just(" ".to_owned()),
            Just("\u{e9}".to_owned()),
            "[a-c]{1,3}",
            "%[0-9a-fA-F]{2}",
            any::<char>().prop_map(String::from),
        ],
        0..16,
    )
    .prop_map(|parts| parts.concat())
}

/// A valid path: segments of arbitrary bytes, each written in a random mix of raw and escaped.
fn path_and_segments() -> impl Strategy<Value = (Vec<Vec<u8>>, String)> {
    proptest::collection::vec(
        proptest::collection::vec((any::<u8>(), any::<bool>()), 1..6),
        0..6,
    )
    .prop_filter_map("dot segment", |segments| {
        let bytes: Vec<Vec<u8>> = segments
            .iter()
            .map(|s| s.iter().map(|(b, _)| *b).collect())
            .collect();
        if bytes.iter().any(|b| b == b"." || b == b"..") {
            return None;
        }
        let mut raw = String::new();
        for seg in &segments {
            raw.push('/');
            for &(b, escape) in seg {
                if !escape && SEGMENT_SAFE.contains(&b) {
                    raw.push(b as char);
                } else {
                    raw.push_str(&format!("%{b:02X}"));
                }
            }
        }
        if raw.is_empty() {
            raw.push('/');
        }
        Some((bytes, raw))
    })
}

fn decode(segment: &str) -> Vec<u8> {
    let b = segment.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&segment[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn never_panics(s in any::<String>(), t in path_soup(), max_len in 0usize..32, max_depth in 0usize..6) {
        for raw in [&s, &t] {
            let _ = ResourcePath::parse(raw);
            let _ = ResourcePath::parse_limited(raw, max_len, max_depth);
            let _ = ResourcePath::root().join(raw);
            if let Ok(p) = ResourcePath::parse(&t) {
                let _ = p.join(raw);
                let q = ResourcePath::parse(raw).unwrap_or_else(|_| ResourcePath::root());
                let _ = p.strip_prefix(&q);
                let _ = p.under_prefix(&q);
            }
        }
    }

    #[test]
    fn canonical_form_is_idempotent(s in path_soup()) {
        if let Ok(p) = ResourcePath::parse(&s) {
            let again = ResourcePath::parse(p.as_str()).unwrap();
            prop_assert_eq!(again.as_str(), p.as_str());
            let from_href = ResourcePath::parse(&p.href()).unwrap();
            prop_assert_eq!(&from_href, &p);
            prop_assert_eq!(from_href.href(), p.href());
            prop_assert!(!p.as_str().contains("//"));
            prop_assert!(p.segments().all(|seg| seg != "." && seg != ".." && !seg.is_empty()));
        }
    }

    #[test]
    fn limits_agree_with_the_canonical_form(s in path_soup(), max_len in 0usize..24, max_depth in 0usize..5) {
        match (ResourcePath::parse(&s), ResourcePath::parse_limited(&s, max_len, max_depth)) {
            (Ok(p), Ok(q)) => {
                prop_assert_eq!(&p, &q);
                prop_assert!(p.as_str().len() <= max_len && p.depth() <= max_depth);
            }
            (Ok(p), Err(PathError::TooLong(_) | PathError::TooDeep(_))) => {
                prop_assert!(p.as_str().len() > max_len || p.depth() > max_depth);
            }
            (Ok(p), Err(e)) => prop_assert!(false, "{:?}: parsed {:?}, limited {:?}", s, p, e),
            (Err(_), Ok(q)) => prop_assert!(false, "{:?}: refused, limited {:?}", s, q),
            (Err(_), Err(_)) => {}
        }
    }

    /// Escaping a byte or writing it raw never changes the resource; the segments decode to the
    /// bytes written, and `%2F` stays inside its segment.
    #[test]
    fn spelling_does_not_change_identity((bytes, raw) in path_and_segments()) {
        let p = ResourcePath::parse(&raw).unwrap();
        let all_escaped: String = if bytes.is_empty() {
            "/".to_owned()
        } else {
            bytes.iter().map(|seg| {
                let mut s = "/".to_owned();
                for b in seg {
                    s.push_str(&format!("%{b:02x}"));
                }
                s
            }).collect()
        };
        prop_assert_eq!(ResourcePath::parse(&all_escaped), Ok(p.clone()));
        prop_assert_eq!(p.depth(), bytes.len());
        let decoded: Vec<Vec<u8>> = p.segments().map(decode).collect();
        prop_assert_eq!(&decoded, &bytes);
        for seg in p.segments() {
            // canonical escapes: upper-case hex, never of a character kept raw
            let b = seg.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' {
                    let v = u8::from_str_radix(&seg[i + 1..i + 3], 16).unwrap();
                    prop_assert!(!SEGMENT_SAFE.contains(&v), "{:?}", seg);
                    prop_assert_eq!(seg[i + 1..i + 3].to_ascii_uppercase(), &seg[i + 1..i + 3]);
                    i += 3;
                } else {
                    prop_assert!(SEGMENT_SAFE.contains(&b[i]), "{:?}", seg);
                    i += 1;
                }
            }
        }
    }

    #[test]
    fn ancestry_is_consistent_with_segments((_, raw) in path_and_segments(), (_, other) in path_and_segments()) {
        let p = ResourcePath::parse(&raw).unwrap();
        let q = ResourcePath::parse(&other).unwrap();
        let segs: Vec<&str> = p.segments().collect();
        let ancestors: Vec<&str> = p.ancestors().collect();
        prop_assert_eq!(ancestors.len(), segs.len());
        for (i, a) in ancestors.iter().enumerate() {
            let expected = format!("/{}", segs[..i].join("/"));
            prop_assert_eq!(*a, expected.as_str());
            let a = ResourcePath::parse(a).unwrap();
            prop_assert!(a.is_ancestor_of(&p) && !p.is_ancestor_of(&a));
        }
        // is_ancestor_of is exactly "a strict prefix of the segments"
        let qs: Vec<&str> = q.segments().collect();
        let prefix = qs.len() < segs.len() && segs[..qs.len()] == qs[..];
        prop_assert_eq!(q.is_ancestor_of(&p), prefix);
        prop_assert_eq!(q.contains(&p), prefix || q == p);
        prop_assert_eq!(p.parent().map(|x| x.depth()), segs.len().checked_sub(1));
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn header_soup() -> impl Strategy<Value = String> {
    prop_oneof![
        path_soup(),
        path_soup().prop_map(|p| format!("http://example.com{p}")),
        path_soup().prop_map(|p| format!("https://EXAMPLE.com:443{p}?q#f")),
        path_soup().prop_map(|p| format!("http://user@[::1]:80{p}")),
        "[ -~]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Through the layer: arbitrary `Destination` values and `If` resource tags never panic,
    /// and are answered with a status the rules allow.
    #[test]
    fn destination_and_if_tags_resolve_without_panic(dest in header_soup(), tag in header_soup()) {
        rt().block_on(async {
            let (store, _kv, svc) = setup(&["/a/b", "/c"]);
            xlock(&*store, "/c", tower_locks::LockDepth::Infinity).await;
            if let Ok(v) = http::HeaderValue::from_str(&dest) {
                let res = send(svc.clone(), empty(req("MOVE", "/a/b").header("destination", v))).await;
                let ok = [StatusCode::CREATED, StatusCode::NO_CONTENT, StatusCode::BAD_REQUEST,
                    StatusCode::LOCKED, StatusCode::NOT_FOUND, StatusCode::FORBIDDEN,
                    StatusCode::BAD_GATEWAY, StatusCode::CONFLICT, StatusCode::PRECONDITION_FAILED];
                assert!(ok.contains(&res.status), "MOVE to {dest:?}: {}", res.status);
            }
            if let Ok(v) = http::HeaderValue::from_str(&format!("<{tag}> (<urn:x>)")) {
                let res = send(svc.clone(), empty(req("PUT", "/a/b").header("if", v))).await;
                let ok = [StatusCode::NO_CONTENT, StatusCode::BAD_REQUEST,
                    StatusCode::PRECONDITION_FAILED];
                assert!(ok.contains(&res.status), "If tag {tag:?}: {}", res.status);
            }
        });
    }
}
