//! `Depth`, `Lock-Token`, `Destination`, `Overwrite` (RFC 4918 §10) through an
//! `http::HeaderMap` built from the input: each line `N<value>` appends `value` under the
//! header chosen by the byte `N`. No panic; accepted values obey their grammar; a
//! `Destination` is resolved like the layer does (absolute path or http(s) URI) without panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_locks::{destination, parse_depth, parse_lock_token, parse_overwrite, ResourcePath};

const NAMES: [&str; 4] = ["depth", "lock-token", "destination", "overwrite"];

/// The path part of a Simple-ref, as the layer's resolver takes it.
fn path_of(reference: &str) -> Option<&str> {
    let rest = if reference.starts_with('/') {
        reference
    } else {
        let (scheme, rest) = reference.split_once(':')?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return None;
        }
        let after = rest.strip_prefix("//")?;
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        &after[end..]
    };
    let path = rest.split(['?', '#']).next().unwrap_or("");
    Some(if path.is_empty() { "/" } else { path })
}

fuzz_target!(|data: &[u8]| {
    let mut map = http::HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some((&which, value)) = line.split_first() else {
            continue;
        };
        if let Ok(v) = http::HeaderValue::from_bytes(value) {
            map.append(NAMES[usize::from(which) % NAMES.len()], v);
        }
    }
    let _ = parse_depth(&map);
    let _ = parse_overwrite(&map);
    if let Ok(token) = parse_lock_token(&map) {
        assert!(!token.is_empty());
        assert!(!token.contains([' ', '\t', '<', '>']), "{token:?}");
        assert!(token.contains(':'));
    }
    if let Ok(Some(dest)) = destination(&map) {
        assert!(!dest.is_empty() && !dest.contains([' ', '\t']));
        if let Some(path) = path_of(dest) {
            if let Ok(p) = ResourcePath::parse_limited(path, 4096, 64) {
                assert!(p.as_str().len() <= 4096 && p.depth() <= 64);
            }
        }
    }
});
