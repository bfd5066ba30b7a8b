//! Rules found by an outside review: shared locks (RFC 4918 §6.2), what a refusal may name,
//! lock quotas for everybody, and `If` entity tags the layer cannot check.

mod common;

use std::sync::Arc;

use common::*;
use http::StatusCode;
use tower::Layer;
use tower_locks::{Disclosure, Limits, LockDepth, LockLayer, LockScope, MemoryLockStore};

fn by_header() -> LockLayer {
    LockLayer::new(MemoryLockStore::new())
}

fn user(b: http::request::Builder, who: &str) -> http::request::Builder {
    b.header("x-user", who)
}

fn with_users(layer: LockLayer) -> LockLayer {
    layer.principal_from(|parts| Some(parts.headers.get("x-user")?.to_str().ok()?.to_owned()))
}

/// Of the shared locks on a resource, any one its principal holds lets a write through;
/// exclusive locks and the collection's locks still need their own tokens.
#[tokio::test]
async fn any_one_shared_lock_of_a_resource_will_do() {
    let (store, _kv, svc) = setup(&["/c/", "/c/doc"]);
    let first = lock(&*store, "/c/doc", LockScope::Shared, LockDepth::Zero, None).await;
    let _second = lock(&*store, "/c/doc", LockScope::Shared, LockDepth::Zero, None).await;
    let put = |header: String| empty(req("PUT", "/c/doc").header("if", header));
    let a = send(svc.clone(), put(format!("(<{}>)", first.token))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "one of two shared locks");
    let a = send(svc.clone(), empty(req("PUT", "/c/doc"))).await;
    assert_eq!(a.status, StatusCode::LOCKED, "none of them");

    // The collection's shared lock is its own resource's: a member's does not stand in.
    let dir = lock(&*store, "/c/", LockScope::Shared, LockDepth::Zero, None).await;
    let a = send(svc.clone(), put(format!("(<{}>)", first.token))).await;
    assert_eq!(
        a.status,
        StatusCode::NO_CONTENT,
        "an existing member needs no collection token"
    );
    let create = |header: String| empty(req("PUT", "/c/new").header("if", header));
    let a = send(svc.clone(), create(format!("</c/doc> (<{}>)", first.token))).await;
    assert_eq!(
        a.status,
        StatusCode::LOCKED,
        "creating a member needs the collection's"
    );
    let a = send(svc.clone(), create(format!("</c/> (<{}>)", dir.token))).await;
    assert_eq!(a.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_shared_lock_of_another_principal_does_not_count() {
    let store = Arc::new(MemoryLockStore::new());
    let svc = with_users(LockLayer::new(store.clone())).layer(Kv::with_files(&["/doc"]));
    let alices = lock(
        &*store,
        "/doc",
        LockScope::Shared,
        LockDepth::Zero,
        Some("alice"),
    )
    .await;
    let _bobs = lock(
        &*store,
        "/doc",
        LockScope::Shared,
        LockDepth::Zero,
        Some("bob"),
    )
    .await;
    let put =
        |who| empty(user(req("PUT", "/doc"), who).header("if", format!("(<{}>)", alices.token)));
    assert_eq!(
        send(svc.clone(), put("bob")).await.status,
        StatusCode::LOCKED
    );
    assert_eq!(send(svc, put("alice")).await.status, StatusCode::NO_CONTENT);
}

/// `Disclosure::Related`: a refusal names the locks at or above the request URI and the
/// requester's own; the others are counted, not named.
#[tokio::test]
async fn related_disclosure_hides_other_peoples_lock_roots_below() {
    let store = Arc::new(MemoryLockStore::new());
    let kv = Kv::with_files(&["/docs/", "/docs/secret", "/docs/mine"]);
    let layer = with_users(LockLayer::new(store.clone()));
    let related = layer
        .clone()
        .disclose_lock_roots(Disclosure::Related)
        .layer(kv.clone());
    let all = layer.layer(kv);
    lock(
        &*store,
        "/docs/secret",
        LockScope::Exclusive,
        LockDepth::Zero,
        Some("alice"),
    )
    .await;
    lock(
        &*store,
        "/docs/mine",
        LockScope::Exclusive,
        LockDepth::Zero,
        Some("bob"),
    )
    .await;

    let delete =
        || empty(user(req("DELETE", "/docs/"), "bob").header("accept", "application/json"));
    let a = send(all, delete()).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert!(a.text().contains("/docs/secret"), "{}", a.text());

    let a = send(related.clone(), delete()).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    let json: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(json["lockRoots"], serde_json::json!(["/docs/mine"]));
    assert_eq!(json["otherLocks"], 1);
    assert!(!a.text().contains("secret"), "{}", a.text());

    // Anonymous, in XML: nothing nameable, so the request URI stands for the hidden locks.
    let a = send(related.clone(), empty(req("DELETE", "/docs/"))).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(a.error_hrefs("lock-token-submitted"), ["/docs/"]);
    assert!(!a.text().contains("secret") && !a.text().contains("mine"));

    // A lock at or above the request URI is named: the client addressed it.
    let a = send(related, empty(req("PUT", "/docs/secret"))).await;
    assert_eq!(a.error_hrefs("lock-token-submitted"), ["/docs/secret"]);
}

#[tokio::test]
async fn related_disclosure_hides_members_blocking_a_deep_lock() {
    let store = Arc::new(MemoryLockStore::new());
    let svc = with_users(LockLayer::new(store.clone()))
        .disclose_lock_roots(Disclosure::Related)
        .layer(Kv::with_files(&["/docs/", "/docs/secret"]));
    lock(
        &*store,
        "/docs/secret",
        LockScope::Exclusive,
        LockDepth::Zero,
        Some("alice"),
    )
    .await;
    let deep = user(req("LOCK", "/docs/"), "bob")
        .header("depth", "infinity")
        .body(axum::body::Body::from(LOCKINFO_EXCLUSIVE))
        .unwrap();
    let a = send(svc, deep).await;
    assert_eq!(
        a.status,
        StatusCode::LOCKED,
        "no 207 naming the member: {}",
        a.text()
    );
    assert!(!a.text().contains("secret"), "{}", a.text());
}

/// Every LOCK counts against a quota: a principal's, all anonymous clients' together, the
/// resource's and the store's.
#[tokio::test]
async fn quotas_hold_for_anonymous_clients_resources_and_the_store() {
    let lock_req = |path: &str, who: Option<&str>| {
        let mut b = req("LOCK", path).header("depth", "0");
        if let Some(who) = who {
            b = user(b, who);
        }
        b.body(axum::body::Body::from(LOCKINFO_SHARED)).unwrap()
    };
    let mut limits = Limits::default();
    limits.max_anonymous_locks = Some(2);
    limits.max_locks_per_principal = Some(3);
    limits.max_locks_per_resource = Some(2);
    limits.max_locks = Some(6);
    let svc = with_users(by_header().limits(limits)).layer(Kv::default());
    assert_eq!(
        send(svc.clone(), lock_req("/a1", None)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(svc.clone(), lock_req("/a2", None)).await.status,
        StatusCode::OK
    );
    let a = send(svc.clone(), lock_req("/a3", None)).await;
    assert_eq!(
        a.status,
        StatusCode::TOO_MANY_REQUESTS,
        "anonymous: {}",
        a.text()
    );
    // A named principal has a quota of its own.
    assert_eq!(
        send(svc.clone(), lock_req("/r", Some("ann"))).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(svc.clone(), lock_req("/r", Some("bea"))).await.status,
        StatusCode::OK
    );
    let a = send(svc.clone(), lock_req("/r", Some("cy"))).await;
    assert_eq!(
        a.status,
        StatusCode::INSUFFICIENT_STORAGE,
        "resource: {}",
        a.text()
    );
    assert_eq!(
        send(svc.clone(), lock_req("/s1", Some("cy"))).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(svc.clone(), lock_req("/s2", Some("cy"))).await.status,
        StatusCode::OK
    );
    let a = send(svc.clone(), lock_req("/s3", Some("dee"))).await;
    assert_eq!(
        a.status,
        StatusCode::INSUFFICIENT_STORAGE,
        "store: {}",
        a.text()
    );
}

/// Without a resource space nothing can tell a resource's ETag: a list with an entity-tag
/// condition is not known to hold, `Not` included, so the `If` header is false (412).
#[tokio::test]
async fn entity_tags_nobody_can_check_are_false() {
    let kv = Kv::with_files(&["/doc"]);
    let etag = kv.etag("/doc").unwrap();
    let blind = by_header().layer(kv.clone());
    let (_store, _kv, seeing) = {
        let store = Arc::new(MemoryLockStore::new());
        let svc = LockLayer::new(store.clone())
            .resource_space(kv.clone())
            .layer(kv.clone());
        (store, kv.clone(), svc)
    };
    let put = |h: String| empty(req("PUT", "/doc").header("if", h));
    for h in [format!("([{etag}])"), "(Not [\"other\"])".to_owned()] {
        assert_eq!(
            send(blind.clone(), put(h.clone())).await.status,
            StatusCode::PRECONDITION_FAILED,
            "{h} without a resource space"
        );
        assert_eq!(
            send(seeing.clone(), put(h.clone())).await.status,
            StatusCode::NO_CONTENT,
            "{h} with one"
        );
    }
    // A list without entity tags still decides.
    let a = send(blind, put("(Not <urn:uuid:none>)".into())).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
}
