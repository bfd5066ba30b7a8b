//! Abuse limits: each one refuses the request with a clear status before anything reaches the
//! inner service.

mod common;

use std::sync::Arc;

use axum::body::Body;
use common::*;
use http::StatusCode;
use tower::Layer;
use tower_locks::{IfLimits, Limits, LockLayer, MemoryLockStore, Rejection};

fn limited(limits: Limits) -> (Kv, tower_locks::LockService<Kv>) {
    let kv = Kv::with_files(&["/a"]);
    let svc = LockLayer::new(Arc::new(MemoryLockStore::new()))
        .limits(limits)
        .layer(kv.clone());
    (kv, svc)
}

fn lockinfo_with_owner(owner: &str) -> String {
    format!(
        "<D:lockinfo xmlns:D='DAV:'><D:lockscope><D:exclusive/></D:lockscope>\
         <D:locktype><D:write/></D:locktype><D:owner>{owner}</D:owner></D:lockinfo>"
    )
}

#[tokio::test]
async fn lockinfo_body_and_owner_sizes() {
    let mut limits = Limits::default();
    limits.max_lockinfo_bytes = 1024;
    limits.max_owner_bytes = 100;
    let (kv, svc) = limited(limits);
    let lock = |body: String| {
        req("LOCK", "/a")
            .header("depth", "0")
            .body(Body::from(body))
            .unwrap()
    };
    // body over the limit, streamed without a Content-Length
    let a = send(svc.clone(), lock(lockinfo_with_owner(&"x".repeat(2000)))).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        a.rejection,
        Some(Rejection::PayloadTooLarge { limit: 1024 })
    );
    // a declared Content-Length over the limit is refused before reading
    let declared = req("LOCK", "/a")
        .header("content-length", "5000")
        .body(Body::from("x"))
        .unwrap();
    assert_eq!(
        send(svc.clone(), declared).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // owner over its own limit, body within
    let a = send(svc.clone(), lock(lockinfo_with_owner(&"y".repeat(200)))).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.rejection, Some(Rejection::PayloadTooLarge { limit: 100 }));
    // within both limits
    let a = send(svc, lock(lockinfo_with_owner("ann"))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(kv.forwarded().is_empty());
}

#[tokio::test]
async fn if_header_size_lists_and_conditions() {
    let mut limits = Limits::default();
    limits.if_header = IfLimits {
        max_len: 200,
        max_lists: 3,
        max_conditions: 4,
    };
    let (kv, svc) = limited(limits);
    let put = |h: String| empty(req("PUT", "/a").header("if", h));
    let long = format!("(<urn:x:{}>)", "a".repeat(300));
    let lists = "(<urn:a>) (<urn:b>) (<urn:c>) (<urn:d>)".to_owned();
    let conds = "(<urn:a> <urn:b> <urn:c> <urn:d> <urn:e>)".to_owned();
    for h in [long, lists, conds] {
        let a = send(svc.clone(), put(h.clone())).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{h}");
        assert!(matches!(a.rejection, Some(Rejection::BadRequest { .. })));
    }
    // just within: 3 lists, 4 conditions in all (false, so 412 — evaluated, not refused)
    let ok = "(<urn:a>) (<urn:b>) (<urn:c> <urn:d>)".to_owned();
    assert_eq!(
        send(svc, put(ok)).await.status,
        StatusCode::PRECONDITION_FAILED
    );
    assert!(kv.forwarded().is_empty());
}

#[tokio::test]
async fn path_length_and_depth() {
    let mut limits = Limits::default();
    limits.max_path_bytes = 64;
    limits.max_path_depth = 4;
    let (kv, svc) = limited(limits);
    let long = format!("/{}", "a".repeat(100));
    let deep = "/a/b/c/d/e".to_owned();
    for path in [long.clone(), deep.clone()] {
        let a = send(svc.clone(), empty(req("PUT", &path))).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}");
    }
    // Destination and If tags are held to the same limits
    let mv = req("MOVE", "/a").header("destination", deep.clone());
    assert_eq!(
        send(svc.clone(), empty(mv)).await.status,
        StatusCode::BAD_REQUEST
    );
    let tagged = req("PUT", "/a").header("if", format!("<{long}> (<urn:x>)"));
    assert_eq!(
        send(svc.clone(), empty(tagged)).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(svc, empty(req("PUT", "/a/b/c/d"))).await.status,
        StatusCode::CREATED
    );
    assert_eq!(kv.forwarded().len(), 1);
}

#[tokio::test]
async fn defaults_are_safe() {
    let l = Limits::default();
    assert_eq!(l.max_lockinfo_bytes, 64 * 1024);
    assert_eq!(l.max_owner_bytes, 4 * 1024);
    assert_eq!(l.max_path_bytes, 4096);
    assert_eq!(l.max_path_depth, 64);
    assert_eq!(l.max_locks_per_principal, Some(1000));
    assert_eq!(
        (
            l.if_header.max_len,
            l.if_header.max_lists,
            l.if_header.max_conditions
        ),
        (8192, 64, 256)
    );
}
