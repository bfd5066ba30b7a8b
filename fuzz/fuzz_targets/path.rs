//! Path normalisation (`ResourcePath`): no panic, and every accepted path is canonical:
//! `parse(href(p)) == p`, parsing is idempotent, no `.`/`..` or empty segments, only
//! upper-case escapes of non-unreserved bytes, escaping every byte gives the same resource,
//! ancestry agrees with the segments, and `parse_limited` agrees with `parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_locks::{PathError, ResourcePath};

/// Unreserved, sub-delims, `:` and `@`: kept raw, so never escaped in canonical form.
fn is_segment_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A canonical segment, decoded to bytes (checking the canonical escape rules on the way).
fn decode_canonical(seg: &str) -> Vec<u8> {
    let b = seg.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let (hi, lo) = (b[i + 1], b[i + 2]);
            assert!(
                hi.is_ascii_digit() || hi.is_ascii_uppercase(),
                "lower-case escape in {seg:?}"
            );
            assert!(lo.is_ascii_digit() || lo.is_ascii_uppercase());
            let v = hex(hi).unwrap() << 4 | hex(lo).unwrap();
            assert!(!is_segment_safe(v), "escaped segment-safe byte in {seg:?}");
            out.push(v);
            i += 3;
        } else {
            assert!(
                is_segment_safe(b[i]),
                "raw byte {:?} in canonical segment {seg:?}",
                b[i] as char
            );
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn check(raw: &str, p: &ResourcePath) {
    let key = p.as_str();
    assert!(key.starts_with('/'));
    assert!(!key.contains("//"), "{key:?}");
    assert!(p.is_root() || !key.ends_with('/'));
    assert_eq!(p.has_trailing_slash(), p.is_root() || raw.ends_with('/'));

    // Canonical: parsing the key or the href again changes nothing.
    let again = ResourcePath::parse(key).expect("canonical key parses");
    assert_eq!(again.as_str(), key);
    let from_href = ResourcePath::parse(&p.href()).expect("href parses");
    assert_eq!(&from_href, p);
    assert_eq!(from_href.href(), p.href());

    // Segments.
    let segments: Vec<&str> = p.segments().collect();
    assert_eq!(segments.len(), p.depth());
    let mut escaped_all = String::new();
    let mut rebuilt = ResourcePath::root();
    for seg in &segments {
        assert!(!seg.is_empty() && *seg != "." && *seg != "..", "{seg:?}");
        let bytes = decode_canonical(seg);
        assert!(bytes != b"." && bytes != b"..");
        escaped_all.push('/');
        for b in bytes {
            escaped_all.push_str(&format!("%{b:02x}"));
        }
        rebuilt = rebuilt.join(seg).expect("a canonical segment joins");
    }
    assert_eq!(&rebuilt, p);
    if !segments.is_empty() {
        // Escaping every byte (lower-case hex, even unreserved ones) names the same resource.
        assert_eq!(
            ResourcePath::parse(&escaped_all).as_ref(),
            Ok(p),
            "{escaped_all:?}"
        );
    }

    // Ancestry.
    let ancestors: Vec<&str> = p.ancestors().collect();
    assert_eq!(ancestors.len(), p.depth());
    for (i, a) in ancestors.iter().enumerate() {
        // The first few and the parent: all of them would make deep inputs quadratic.
        if i >= 8 && i + 1 != ancestors.len() {
            continue;
        }
        let a = ResourcePath::parse(a).expect("ancestor parses");
        assert_eq!(a.depth(), i);
        assert!(a.is_ancestor_of(p) && a.contains(p) && !p.is_ancestor_of(&a));
        assert_eq!(
            p.strip_prefix(&a).map(|r| r.under_prefix(&a)).as_ref(),
            Some(p)
        );
    }
    assert!(!p.is_ancestor_of(p) && p.contains(p));
    match p.parent() {
        None => assert!(p.is_root()),
        Some(parent) => {
            assert!(parent.is_ancestor_of(p));
            assert_eq!(parent.depth() + 1, p.depth());
            assert_eq!(
                parent.as_str(),
                *ancestors.last().expect("a non-root path has ancestors")
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Two bytes of limits, then the path.
    let (limits, rest) = data.split_at(data.len().min(2));
    let raw = String::from_utf8_lossy(rest);
    let parsed = ResourcePath::parse(&raw);
    if let Ok(p) = &parsed {
        check(&raw, p);
    }
    let max_len = usize::from(limits.first().copied().unwrap_or(255));
    let max_depth = usize::from(limits.get(1).copied().unwrap_or(255) % 16);
    let limited = ResourcePath::parse_limited(&raw, max_len, max_depth);
    match (&parsed, &limited) {
        (Ok(p), Ok(q)) => {
            assert_eq!(p, q);
            assert!(q.as_str().len() <= max_len && q.depth() <= max_depth);
        }
        (Ok(p), Err(PathError::TooLong(_) | PathError::TooDeep(_))) => assert!(
            p.as_str().len() > max_len || p.depth() > max_depth,
            "{raw:?} refused by parse_limited({max_len}, {max_depth}) but canonical {p:?} fits"
        ),
        (Ok(p), Err(e)) => panic!("{raw:?}: parse gives {p:?}, parse_limited {e:?}"),
        (Err(_), Ok(q)) => panic!("{raw:?}: parse refuses, parse_limited gives {q:?}"),
        (Err(_), Err(_)) => {}
    }
});
