//! `Timeout` (RFC 4918 §10.7): no panic; accepted lists are non-empty and round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_locks::{parse_timeout, parse_timeout_headers, LockTimeout};

fuzz_target!(|data: &[u8]| {
    // Several field lines, split at NUL, through the HeaderMap entry point.
    let mut map = http::HeaderMap::new();
    for line in data.split(|&b| b == 0) {
        if let Ok(v) = http::HeaderValue::from_bytes(line) {
            map.append("timeout", v);
        }
    }
    let _ = parse_timeout_headers(&map);

    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(list) = parse_timeout(s) else {
        return;
    };
    assert!(!list.is_empty());
    let rendered: Vec<String> = list
        .iter()
        .map(|t| match t {
            LockTimeout::Infinite => "Infinite".to_owned(),
            LockTimeout::Seconds(n) => format!("Second-{n}"),
        })
        .collect();
    assert_eq!(parse_timeout(&rendered.join(", ")), Ok(list));
});
