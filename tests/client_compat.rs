//! Opt-in switches for clients that bend RFC 4918: Word 2016's `Lock-Token` on PUT, and the
//! `MS-Author-Via` header older Office versions look for.

mod common;

use std::sync::Arc;

use common::*;
use http::StatusCode;
use tower::Layer;
use tower_locks::{LockDepth, LockLayer, LockScope, MemoryLockStore};

#[tokio::test]
async fn a_lock_token_header_on_put_counts_only_when_accepted() {
    let store = Arc::new(MemoryLockStore::new());
    let kv = Kv::with_files(&["/doc"]);
    let users =
        |parts: &http::request::Parts| Some(parts.headers.get("x-user")?.to_str().ok()?.to_owned());
    let strict = LockLayer::new(store.clone())
        .principal_from(users)
        .layer(kv.clone());
    let word = LockLayer::new(store.clone())
        .principal_from(users)
        .accept_lock_token_header(true)
        .layer(kv.clone());
    let l = lock(
        &*store,
        "/doc",
        LockScope::Exclusive,
        LockDepth::Zero,
        Some("ann"),
    )
    .await;
    let put = |who: &str, token: &str| {
        empty(
            req("PUT", "/doc")
                .header("x-user", who)
                .header("lock-token", token),
        )
    };
    let token = format!("<{}>", l.token);
    assert_eq!(
        send(strict, put("ann", &token)).await.status,
        StatusCode::LOCKED
    );
    assert_eq!(
        send(word.clone(), put("ann", &token)).await.status,
        StatusCode::NO_CONTENT
    );
    // Still bound to the lock's principal.
    assert_eq!(
        send(word.clone(), put("bob", &token)).await.status,
        StatusCode::LOCKED
    );
    // A malformed one is a 400, as in UNLOCK.
    let a = send(word, put("ann", "<not a token>")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn ms_author_via_is_added_to_options_only_when_asked() {
    let kv = Kv::default();
    let options = || empty(req("OPTIONS", "/"));
    let plain = LockLayer::new(MemoryLockStore::new()).layer(kv.clone());
    let a = send(plain, options()).await;
    assert!(a.headers.get("ms-author-via").is_none());
    assert_eq!(a.headers["dav"], "1, 2");
    let office = LockLayer::new(MemoryLockStore::new())
        .advertise_ms_author_via(true)
        .layer(kv);
    let a = send(office, options()).await;
    assert_eq!(a.headers["ms-author-via"], "DAV");
    assert_eq!(a.headers["dav"], "1, 2");
}
