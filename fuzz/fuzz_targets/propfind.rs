//! `dav::parse_propfind` (the PROPFIND body `LockPropertiesLayer` reads): no panic, and a body
//! reads the same with white space after it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_locks::dav::{parse_propfind, PropfindKind};

fuzz_target!(|data: &[u8]| {
    let Some(kind) = parse_propfind(data) else {
        return;
    };
    if data.iter().all(u8::is_ascii_whitespace) {
        assert_eq!(kind, PropfindKind::AllProp);
    }
    let mut padded = data.to_vec();
    padded.extend_from_slice(b"  \n");
    assert_eq!(parse_propfind(&padded), Some(kind));
});
