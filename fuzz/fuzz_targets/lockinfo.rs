//! LOCK bodies (`DAV:lockinfo`, RFC 4918 §14.11): no panic on any input; an accepted owner is
//! self-contained XML: embedded in a fresh lockinfo it is accepted again, unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_locks::dav::{parse_lockinfo, LockInfoError};

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(info) = parse_lockinfo(data, LIMIT) else {
        return;
    };
    let Some(owner) = info.owner else {
        return;
    };
    assert!(owner.len() <= LIMIT);
    let wrapped = format!(
        "<X:lockinfo xmlns:X=\"DAV:\"><X:lockscope><X:shared/></X:lockscope>\
         <X:locktype><X:write/></X:locktype><X:owner>{owner}</X:owner></X:lockinfo>"
    );
    let again = match parse_lockinfo(wrapped.as_bytes(), usize::MAX) {
        Ok(again) => again,
        // The declarations the owner carries for its children may pass the limits on what one
        // element or scope holds; that is a limit on this document, not a missing declaration.
        Err(LockInfoError::TooComplex(_)) => return,
        Err(e) => panic!(
            "owner {owner:?} of {:?} is not self-contained: {e}",
            String::from_utf8_lossy(data)
        ),
    };
    assert_eq!(again.owner.as_deref(), Some(owner.as_str()));
});
