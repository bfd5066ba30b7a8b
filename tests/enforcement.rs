//! The lock rules of RFC 4918 §7 enforced by the layer, through `oneshot`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use http::StatusCode;
use tower::Layer;
use tower_locks::{
    CreateOutcome, Lock, LockDepth, LockLayer, LockQuery, LockScope, LockStore, LockStoreError,
    LockTimeout, MemoryLockStore, NewLock, Principal, Rejection, ResourcePath, TokenAccess,
    TokenOutcome,
};

/// A store that counts calls and can be told to fail.
#[derive(Clone, Default)]
struct Probe {
    inner: MemoryLockStore,
    calls: Arc<AtomicUsize>,
    fail: Arc<std::sync::atomic::AtomicBool>,
}

impl Probe {
    fn check(&self) -> Result<(), LockStoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            Err(LockStoreError::unavailable("injected failure"))
        } else {
            Ok(())
        }
    }
}

impl LockStore for Probe {
    async fn create(&self, lock: NewLock) -> Result<CreateOutcome, LockStoreError> {
        self.check()?;
        self.inner.create(lock).await
    }
    async fn refresh(
        &self,
        a: TokenAccess<'_>,
        t: LockTimeout,
    ) -> Result<TokenOutcome, LockStoreError> {
        self.check()?;
        self.inner.refresh(a, t).await
    }
    async fn unlock(&self, a: TokenAccess<'_>) -> Result<TokenOutcome, LockStoreError> {
        self.check()?;
        self.inner.unlock(a).await
    }
    async fn remove_subtree(&self, p: &ResourcePath) -> Result<usize, LockStoreError> {
        self.check()?;
        self.inner.remove_subtree(p).await
    }
    async fn query(&self, q: &LockQuery) -> Result<Vec<Lock>, LockStoreError> {
        self.check()?;
        self.inner.query(q).await
    }
    async fn get(&self, t: &str) -> Result<Option<Lock>, LockStoreError> {
        self.check()?;
        self.inner.get(t).await
    }
}

fn if_token(l: &Lock) -> String {
    format!("(<{}>)", l.token)
}

#[tokio::test]
async fn safe_methods_never_touch_the_store() {
    let store = Probe::default();
    let kv = Kv::with_files(&["/a"]);
    let svc = LockLayer::new(store.clone()).layer(kv.clone());
    for m in [
        "GET", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "REPORT", "SEARCH",
    ] {
        let _ = send(svc.clone(), empty(req(m, "/a"))).await;
    }
    assert_eq!(store.calls.load(Ordering::SeqCst), 0);
    assert_eq!(kv.forwarded().len(), 7);
    // a write does
    let _ = send(svc, empty(req("PUT", "/a"))).await;
    assert!(store.calls.load(Ordering::SeqCst) > 0);
}

#[tokio::test]
async fn unknown_methods_are_writes_and_the_safe_list_is_configurable() {
    let store = MemoryLockStore::new();
    let l = xlock(&store, "/a", LockDepth::Zero).await;
    let kv = Kv::with_files(&["/a"]);
    let svc = LockLayer::new(store.clone()).layer(kv.clone());
    let a = send(svc.clone(), empty(req("FROBNICATE", "/a"))).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    let a = send(svc, empty(req("PATCH", "/a"))).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    let frob = http::Method::from_bytes(b"FROBNICATE").unwrap();
    let svc = LockLayer::new(store)
        .add_safe_method(frob)
        .layer(kv.clone());
    let a = send(svc, empty(req("FROBNICATE", "/a"))).await;
    assert_eq!(
        a.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "forwarded to the inner service"
    );
    drop(l);
}

#[tokio::test]
async fn locked_put_is_refused_with_dav_error_and_never_forwarded() {
    let (store, kv, svc) = setup(&["/docs/a"]);
    let l = xlock(&*store, "/docs/a", LockDepth::Zero).await;
    let a = send(svc.clone(), empty(req("PUT", "/docs/a"))).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(
        a.headers["content-type"],
        "application/xml; charset=\"utf-8\""
    );
    assert_eq!(a.error_hrefs("lock-token-submitted"), ["/docs/a"]);
    assert_eq!(
        a.rejection,
        Some(Rejection::Locked {
            roots: vec!["/docs/a".into()],
            hidden: 0,
        })
    );
    assert!(kv.forwarded().is_empty());
    // with the token it passes
    let a = send(svc, empty(req("PUT", "/docs/a").header("if", if_token(&l)))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(kv.forwarded().len(), 1);
}

#[tokio::test]
async fn every_unsatisfied_lock_root_is_named() {
    let (store, _kv, svc) = setup(&["/c/x/y"]);
    xlock(&*store, "/c/x/y", LockDepth::Zero).await;
    lock(&*store, "/c/x/z", LockScope::Shared, LockDepth::Zero, None).await;
    lock(&*store, "/c/", LockScope::Shared, LockDepth::Zero, None).await;
    let a = send(svc, empty(req("DELETE", "/c/x/"))).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(
        a.error_hrefs("lock-token-submitted"),
        ["/c/", "/c/x/y", "/c/x/z"]
    );
}

#[tokio::test]
async fn a_refusal_names_the_first_sixteen_lock_roots() {
    let (store, kv, svc) = setup(&["/c/m00"]);
    for i in 0..40 {
        xlock(&*store, &format!("/c/m{i:02}"), LockDepth::Zero).await;
    }
    let a = send(svc.clone(), empty(req("DELETE", "/c/"))).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    let named = a.error_hrefs("lock-token-submitted");
    let first: Vec<String> = (0..16).map(|i| format!("/c/m{i:02}")).collect();
    assert_eq!(named, first);
    let json = empty(req("DELETE", "/c/").header("accept", "application/json"));
    let a = send(svc.clone(), json).await;
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(v["lockRoots"].as_array().map(Vec::len), Some(16));
    // The removal's query stopped after 16 blocked members: the others are not looked at.
    assert_eq!(v.get("otherLocks"), None);
    // A depth-infinity LOCK over them: a multistatus naming 16 members, not 40.
    let lock = req("LOCK", "/c/").header("depth", "infinity");
    let a = send(
        svc,
        lock.body(axum::body::Body::from(LOCKINFO_EXCLUSIVE))
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::MULTI_STATUS);
    assert_eq!(a.text().matches("HTTP/1.1 423 Locked").count(), 16);
    assert!(kv.forwarded().is_empty());
}

/// A removal's store query stops after 16 blocked members, but never counts a member the
/// request can satisfy: one locked member behind 20 whose tokens are submitted (in tagged
/// lists), or behind 20 of the requester's own when owners write without tokens, is the one
/// the refusal names; once it too is satisfied, the DELETE goes through and takes every lock
/// below with it.
#[tokio::test]
async fn a_removal_looks_past_the_members_it_can_satisfy() {
    let (store, kv, svc) = setup(&["/c/", "/c/z"]);
    let mut tagged = String::new();
    for i in 0..20 {
        let l = xlock(&*store, &format!("/c/m{i:02}"), LockDepth::Zero).await;
        tagged.push_str(&format!("</c/m{i:02}> {} ", if_token(&l)));
    }
    let z = xlock(&*store, "/c/z", LockDepth::Zero).await;
    let delete = |tagged: &str| empty(req("DELETE", "/c/").header("if", tagged.trim()));
    let a = send(svc.clone(), delete(&tagged)).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(a.error_hrefs("lock-token-submitted"), ["/c/z"]);
    tagged.push_str(&format!("</c/z> {}", if_token(&z)));
    let a = send(svc, delete(&tagged)).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(kv.forwarded().len(), 1);
    assert_eq!(store.len(), 0);

    // The same with the requester's own locks, when owners write without their tokens.
    let store = Arc::new(MemoryLockStore::new());
    let kv = Kv::with_files(&["/c/", "/c/z"]);
    let svc = LockLayer::new(store.clone())
        .owner_writes(true)
        .resource_space(kv.clone())
        .layer(kv.clone());
    for i in 0..20 {
        let member = format!("/c/m{i:02}");
        lock(
            &*store,
            &member,
            LockScope::Exclusive,
            LockDepth::Zero,
            Some("alice"),
        )
        .await;
    }
    let z = xlock(&*store, "/c/z", LockDepth::Zero).await;
    let delete = |header: Option<String>| {
        let mut r = req("DELETE", "/c/");
        if let Some(h) = header {
            r = r.header("if", h);
        }
        let mut r = empty(r);
        r.extensions_mut().insert(Principal::new("alice"));
        r
    };
    let a = send(svc.clone(), delete(None)).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(a.error_hrefs("lock-token-submitted"), ["/c/z"]);
    let a = send(svc, delete(Some(format!("</c/z> {}", if_token(&z))))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(store.len(), 0);
}

#[tokio::test]
async fn problem_json_for_json_clients() {
    let (store, _kv, svc) = setup(&["/docs/a"]);
    xlock(&*store, "/docs/a", LockDepth::Zero).await;
    let a = send(
        svc,
        empty(req("PUT", "/docs/a").header("accept", "application/json")),
    )
    .await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(a.headers["content-type"], "application/problem+json");
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(v["status"], 423);
    assert_eq!(v["title"], "Locked");
    assert_eq!(v["lockRoots"], serde_json::json!(["/docs/a"]));
    assert_eq!(v["instance"], "/docs/a");
    assert!(v["type"].is_string() && v["detail"].is_string());
}

#[tokio::test]
async fn false_if_is_412_even_when_nothing_is_locked() {
    let (_store, kv, svc) = setup(&["/a"]);
    for h in [
        "(<DAV:no-lock>)",
        "(<urn:uuid:00000000-0000-4000-8000-000000000000>)",
        "([\"nope\"])",
    ] {
        let a = send(svc.clone(), empty(req("PUT", "/a").header("if", h))).await;
        assert_eq!(a.status, StatusCode::PRECONDITION_FAILED, "{h}");
        assert_eq!(a.rejection, Some(Rejection::PreconditionFailed));
    }
    assert!(kv.forwarded().is_empty());
    // Not of a false condition is true
    let a = send(
        svc,
        empty(req("PUT", "/a").header("if", "(Not <DAV:no-lock>)")),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn true_header_without_the_real_token_is_423_not_412() {
    // litmus cond_put_corrupt_token
    let (store, _kv, svc) = setup(&["/a"]);
    let l = xlock(&*store, "/a", LockDepth::Zero).await;
    let h = format!("(<{}x>) (Not <DAV:no-lock>)", l.token);
    let a = send(svc.clone(), empty(req("PUT", "/a").header("if", h))).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    let h = format!("(<{}>) (Not <DAV:no-lock>)", l.token);
    let a = send(svc, empty(req("PUT", "/a").header("if", h))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_token_counts_wherever_it_appears() {
    let (store, _kv, svc) = setup(&["/a", "/b"]);
    let l = xlock(&*store, "/a", LockDepth::Zero).await;
    // in a list tagged for another resource (D6: plain OR, tokens always submitted)
    let h = format!("</b> (Not <{}>)", l.token);
    let a = send(svc.clone(), empty(req("PUT", "/a").header("if", h))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text());
    // after Not, in a failing list, next to a true list
    let h = format!("(<{}> [\"bad\"]) (Not <DAV:no-lock>)", l.token);
    let a = send(svc, empty(req("PUT", "/a").header("if", h))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_list_about_another_resource_holds_when_that_resource_is_locked_by_its_token() {
    let (store, kv, svc) = setup(&["/a", "/b/c"]);
    let on_b = xlock(&*store, "/b", LockDepth::Infinity).await;
    let elsewhere = xlock(&*store, "/z", LockDepth::Zero).await;
    // RFC 4918 §10.4.3: `</b/c> (<token>)` holds when the token's lock covers /b/c, which
    // neither the request's resource nor its parent is.
    let h = format!("</b/c> {}", if_token(&on_b));
    let a = send(svc.clone(), empty(req("PUT", "/a").header("if", h))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text());
    // The same token tagged for a resource its lock does not cover: false.
    let h = format!("</z> {}", if_token(&on_b));
    let a = send(svc.clone(), empty(req("PUT", "/a").header("if", h))).await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED);
    // A lock on the tagged resource itself, far from the request.
    let h = format!("</z> {}", if_token(&elsewhere));
    let a = send(svc.clone(), empty(req("PUT", "/a").header("if", h))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text());
    // `Not` of a token whose lock covers the tagged resource: false.
    let h = format!("</b/c> (Not <{}>)", on_b.token);
    let a = send(svc, empty(req("PUT", "/a").header("if", h))).await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(kv.forwarded().len(), 2);
}

#[tokio::test]
async fn etag_conditions_use_the_inner_etag_with_weak_comparison() {
    let (store, kv, svc) = setup(&["/a"]);
    let l = xlock(&*store, "/a", LockDepth::Zero).await;
    let etag = kv.etag("/a").unwrap();
    let good = format!("(<{}> [{etag}])", l.token);
    let weak = format!("(<{}> [W/{etag}])", l.token);
    let bad = format!("(<{}> [\"zzz\"]) (Not <DAV:no-lock> [\"zzz\"])", l.token);
    let a = send(svc.clone(), empty(req("PUT", "/a").header("if", good))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    // the write changed the etag; compare weakly against the new one
    let weak = weak.replace(&etag, &kv.etag("/a").unwrap());
    let a = send(svc.clone(), empty(req("PUT", "/a").header("if", weak))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = send(svc.clone(), empty(req("PUT", "/a").header("if", bad))).await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED);
    // the HEAD probe was a sub-request, never counted as a forwarded write
    assert!(kv
        .all_seen()
        .iter()
        .any(|s| s.sub_request && s.method == "HEAD"));
    // an unmapped resource has no etag: [x] false, Not [x] true
    let a = send(
        svc.clone(),
        empty(req("PUT", "/new").header("if", "([\"v1\"])")),
    )
    .await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED);
    let a = send(
        svc,
        empty(req("PUT", "/new").header("if", "(Not [\"v1\"])")),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED);
}

#[tokio::test]
async fn malformed_headers_are_400_and_not_forwarded() {
    let (_store, kv, svc) = setup(&["/a"]);
    for h in [
        "(<a b>)",
        "<urn:x> (<urn:y>) (<urn:z>) ([x]",
        "()",
        "(<urn:a>) </b> (<urn:c>)",
        "garbage",
    ] {
        let a = send(svc.clone(), empty(req("PUT", "/a").header("if", h))).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{h}");
        assert!(matches!(a.rejection, Some(Rejection::BadRequest { .. })));
    }
    let two = req("PUT", "/a")
        .header("if", "(<urn:a>)")
        .header("if", "(<urn:b>)");
    assert_eq!(
        send(svc.clone(), empty(two)).await.status,
        StatusCode::BAD_REQUEST
    );
    let bad_dest = req("MOVE", "/a").header("destination", "not a uri");
    assert_eq!(
        send(svc.clone(), empty(bad_dest)).await.status,
        StatusCode::BAD_REQUEST
    );
    // A network-path reference names another host's resource, not the path `/example.com/b`.
    let network_path = req("MOVE", "/a").header("destination", "//example.com/b");
    assert_eq!(
        send(svc.clone(), empty(network_path)).await.status,
        StatusCode::BAD_REQUEST
    );
    // A malformed Depth on a write is a 400 too, before any lock is judged.
    for (method, depth) in [("DELETE", "banana"), ("COPY", "2")] {
        let bad_depth = req(method, "/a")
            .header("depth", depth)
            .header("destination", "/b");
        assert_eq!(
            send(svc.clone(), empty(bad_depth)).await.status,
            StatusCode::BAD_REQUEST,
            "{method} with Depth: {depth}"
        );
    }
    let no_dest = req("COPY", "/a");
    assert_eq!(
        send(svc, empty(no_dest)).await.status,
        StatusCode::BAD_REQUEST
    );
    assert!(kv.forwarded().is_empty());
}

#[tokio::test]
async fn depth_infinity_covers_members_depth_zero_only_membership() {
    let (store, kv, svc) = setup(&["/inf/", "/inf/m", "/zero/", "/zero/m"]);
    let inf = xlock(&*store, "/inf/", LockDepth::Infinity).await;
    let zero = xlock(&*store, "/zero/", LockDepth::Zero).await;
    // depth infinity: members are locked, new members too
    assert_eq!(
        send(svc.clone(), empty(req("PUT", "/inf/m"))).await.status,
        StatusCode::LOCKED
    );
    assert_eq!(
        send(svc.clone(), empty(req("PUT", "/inf/new")))
            .await
            .status,
        StatusCode::LOCKED
    );
    assert_eq!(
        send(svc.clone(), empty(req("PUT", "/inf/a/b/c")))
            .await
            .status,
        StatusCode::LOCKED
    );
    let tagged = format!("</inf/> {}", if_token(&inf));
    assert_eq!(
        send(
            svc.clone(),
            empty(req("PUT", "/inf/new").header("if", tagged))
        )
        .await
        .status,
        StatusCode::CREATED
    );
    // depth 0: modifying an existing member is free, creating or removing one is not
    assert_eq!(
        send(svc.clone(), empty(req("PUT", "/zero/m"))).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(svc.clone(), empty(req("PROPPATCH", "/zero/m")))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let a = send(svc.clone(), empty(req("PUT", "/zero/new"))).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(a.error_hrefs("lock-token-submitted"), ["/zero/"]);
    assert_eq!(
        send(svc.clone(), empty(req("MKCOL", "/zero/dir/")))
            .await
            .status,
        StatusCode::LOCKED
    );
    assert_eq!(
        send(svc.clone(), empty(req("DELETE", "/zero/m")))
            .await
            .status,
        StatusCode::LOCKED
    );
    assert_eq!(
        send(svc.clone(), empty(req("POST", "/zero/new")))
            .await
            .status,
        StatusCode::LOCKED
    );
    let tok = format!("</zero/> {}", if_token(&zero));
    assert_eq!(
        send(svc, empty(req("PUT", "/zero/new").header("if", tok)))
            .await
            .status,
        StatusCode::CREATED
    );
    assert!(kv.exists("/zero/new") && kv.exists("/inf/new"));
}

#[tokio::test]
async fn delete_and_move_check_descendants_copy_only_the_destination() {
    let (store, kv, svc) = setup(&["/src/", "/src/deep/f", "/free", "/dst"]);
    let deep = xlock(&*store, "/src/deep/f", LockDepth::Zero).await;
    let dst = xlock(&*store, "/dst", LockDepth::Zero).await;
    assert_eq!(
        send(svc.clone(), empty(req("DELETE", "/src/")))
            .await
            .status,
        StatusCode::LOCKED
    );
    let mv = req("MOVE", "/src/").header("destination", "http://example.com/moved/");
    let a = send(svc.clone(), empty(mv)).await;
    assert_eq!(a.error_hrefs("lock-token-submitted"), ["/src/deep/f"]);
    // COPY of a locked source is fine; COPY onto a locked destination is not
    let cp = req("COPY", "/src/deep/f").header("destination", "/copied");
    assert_eq!(
        send(svc.clone(), empty(cp)).await.status,
        StatusCode::CREATED
    );
    let cp = req("COPY", "/free").header("destination", "http://example.com/dst");
    let a = send(svc.clone(), empty(cp)).await;
    assert_eq!(a.error_hrefs("lock-token-submitted"), ["/dst"]);
    // MOVE needs both tokens
    let mv = req("MOVE", "/src/deep/f")
        .header("destination", "/dst")
        .header("if", if_token(&deep));
    assert_eq!(
        send(svc.clone(), empty(mv)).await.status,
        StatusCode::LOCKED
    );
    let both = format!("{} {}", if_token(&deep), if_token(&dst));
    let mv = req("MOVE", "/src/deep/f")
        .header("destination", "/dst")
        .header("if", both);
    assert_eq!(send(svc, empty(mv)).await.status, StatusCode::NO_CONTENT);
    assert!(kv.exists("/dst") && !kv.exists("/src/deep/f"));
}

/// A COPY or MOVE onto its own source, however the `Destination` spells it, is a 403 the
/// layer answers (RFC 4918 §9.8.5, §9.9.4; D22): the inner service never sees it (`Kv` would
/// answer it with a success, a MOVE removing the resource, and nginx deletes the resource and
/// answers 404), and the lock on the source stays.
#[tokio::test]
async fn a_copy_or_move_onto_itself_is_a_403() {
    for (method, destination) in [
        ("COPY", "/a"),
        ("COPY", "http://example.com/%61/"),
        ("MOVE", "/a"),
        ("MOVE", "http://example.com/a"),
    ] {
        let (store, kv, svc) = setup(&["/a"]);
        let held = xlock(&*store, "/a", LockDepth::Zero).await;
        let r = req(method, "/a")
            .header("destination", destination)
            .header("if", if_token(&held));
        let a = send(svc, empty(r)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{method} {destination}");
        assert!(
            a.text().contains("Destination is the resource"),
            "{}",
            a.text()
        );
        assert!(kv.forwarded().is_empty(), "{method} {destination}");
        assert!(kv.exists("/a"));
        assert_eq!(store.get(&held.token).await.unwrap(), Some(held));
    }
}

#[tokio::test]
async fn foreign_destination_is_502() {
    let (_store, kv, svc) = setup(&["/a"]);
    let mv = req("MOVE", "/a").header("destination", "http://elsewhere.example/b");
    let a = send(svc, empty(mv)).await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY);
    assert!(kv.forwarded().is_empty());
}

#[tokio::test]
async fn no_alias_of_a_locked_path_slips_through() {
    let (store, kv, svc) = setup(&["/locked/", "/locked/f", "/a%2Fb"]);
    xlock(&*store, "/locked/", LockDepth::Infinity).await;
    for alias in [
        "/locked/f",
        "//locked/f",
        "/locked//f",
        "/%6Cocked/f",
        "/%6cocked/%66",
        "/locked",
        "/locked/",
    ] {
        let a = send(svc.clone(), empty(req("PUT", alias))).await;
        assert_eq!(a.status, StatusCode::LOCKED, "{alias}");
    }
    for dots in [
        "/free/../locked/f",
        "/locked/./f",
        "/x/%2e%2e/locked/f",
        "/x/%2E%2E/locked",
    ] {
        let a = send(svc.clone(), empty(req("PUT", dots))).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{dots}");
    }
    // an escaped slash is refused (D21: a server that decodes it would write /locked/f), and a
    // double escape is not decoded twice
    assert_eq!(
        send(svc.clone(), empty(req("PUT", "/locked%2Ff")))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(svc.clone(), empty(req("PUT", "/%256Cocked/f")))
            .await
            .status,
        StatusCode::CREATED
    );
    // Destination aliases too
    let cp = req("COPY", "/a%2Cb").header("destination", "http://EXAMPLE.com:80/%6Cocked//g");
    assert_eq!(send(svc, empty(cp)).await.status, StatusCode::LOCKED);
    assert!(kv
        .forwarded()
        .iter()
        .all(|s| !s.path.starts_with("/locked/") && !s.path.starts_with("//")));
}

#[tokio::test]
async fn tags_match_absolute_uris_on_the_requests_authority_only() {
    let (store, _kv, svc) = setup(&["/a"]);
    let l = xlock(&*store, "/a", LockDepth::Zero).await;
    let ok = format!("<http://example.com/a> {}", if_token(&l));
    assert_eq!(
        send(svc.clone(), empty(req("PUT", "/a").header("if", ok)))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    // a tag for another host names a resource we do not have: its token list is false
    let other = format!("<http://other.example/a> {}", if_token(&l));
    assert_eq!(
        send(svc, empty(req("PUT", "/a").header("if", other)))
            .await
            .status,
        StatusCode::PRECONDITION_FAILED
    );
}

#[tokio::test]
async fn principals_bind_tokens() {
    let store = Arc::new(MemoryLockStore::new());
    let kv = Kv::with_files(&["/a"]);
    let svc = LockLayer::new(store.clone()).layer(kv.clone());
    let l = lock(
        &*store,
        "/a",
        LockScope::Exclusive,
        LockDepth::Zero,
        Some("alice"),
    )
    .await;
    let mut bob = empty(req("PUT", "/a").header("if", if_token(&l)));
    bob.extensions_mut().insert(Principal::new("bob"));
    assert_eq!(send(svc.clone(), bob).await.status, StatusCode::LOCKED);
    let anon = empty(req("PUT", "/a").header("if", if_token(&l)));
    assert_eq!(send(svc.clone(), anon).await.status, StatusCode::LOCKED);
    let mut alice = empty(req("PUT", "/a").header("if", if_token(&l)));
    alice.extensions_mut().insert(Principal::new("alice"));
    assert_eq!(send(svc, alice).await.status, StatusCode::NO_CONTENT);
    // a custom extractor
    let svc = LockLayer::new(store)
        .principal_from(|p| {
            p.headers
                .get("x-user")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .layer(kv);
    let a = send(
        svc,
        empty(
            req("PUT", "/a")
                .header("if", if_token(&l))
                .header("x-user", "alice"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn store_failure_fails_closed_unless_opted_out() {
    let store = Probe::default();
    store.fail.store(true, Ordering::SeqCst);
    let kv = Kv::with_files(&["/a"]);
    let svc = LockLayer::new(store.clone())
        .retry_after(7)
        .layer(kv.clone());
    let a = send(svc.clone(), empty(req("PUT", "/a"))).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.headers["retry-after"], "7");
    assert_eq!(a.rejection, Some(Rejection::StoreUnavailable));
    assert!(kv.forwarded().is_empty());
    // reads still work
    assert_eq!(
        send(svc, empty(req("GET", "/a"))).await.status,
        StatusCode::OK
    );
    let open = LockLayer::new(store)
        .fail_open_on_store_error_insecure(true)
        .layer(kv.clone());
    assert_eq!(
        send(open, empty(req("PUT", "/a"))).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn successful_delete_and_move_remove_locks_failed_ones_do_not() {
    let (store, kv, svc) = setup(&["/d/", "/d/x", "/m", "/keep"]);
    let lx = xlock(&*store, "/d/x", LockDepth::Zero).await;
    let lm = xlock(&*store, "/m", LockDepth::Zero).await;
    xlock(&*store, "/keep", LockDepth::Zero).await;
    *kv.force_status.lock().unwrap() = Some(StatusCode::INTERNAL_SERVER_ERROR);
    // an untagged list applies to the request URI, where lx is not: the header is false
    let a = send(
        svc.clone(),
        empty(req("DELETE", "/d/").header("if", if_token(&lx))),
    )
    .await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED);
    let tagged = format!("</d/x> {}", if_token(&lx));
    let a = send(
        svc.clone(),
        empty(req("DELETE", "/d/").header("if", tagged.clone())),
    )
    .await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        store.get(&lx.token).await.unwrap().is_some(),
        "failed DELETE keeps locks"
    );
    *kv.force_status.lock().unwrap() = None;
    let a = send(
        svc.clone(),
        empty(req("DELETE", "/d/").header("if", tagged)),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(
        store.get(&lx.token).await.unwrap().is_none(),
        "ghost lock left behind"
    );
    // a new client can now create there
    assert_eq!(
        send(svc.clone(), empty(req("PUT", "/d/x"))).await.status,
        StatusCode::CREATED
    );
    let mv = req("MOVE", "/m")
        .header("destination", "/m2")
        .header("if", if_token(&lm));
    assert_eq!(send(svc, empty(mv)).await.status, StatusCode::CREATED);
    assert!(store.get(&lm.token).await.unwrap().is_none());
    assert_eq!(
        store
            .query(&LockQuery::new().covering(p("/keep")))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn expired_locks_never_block() {
    let clock = Arc::new(tower_locks::ManualClock::new());
    let store = Arc::new(MemoryLockStore::with_clock(clock.clone()));
    let kv = Kv::with_files(&["/a"]);
    let svc = LockLayer::new(store.clone()).layer(kv);
    let n = NewLock::new(p("/a")).timeout(LockTimeout::Seconds(10));
    let CreateOutcome::Created(_) = store.create(n).await.unwrap() else {
        panic!()
    };
    assert_eq!(
        send(svc.clone(), empty(req("PUT", "/a"))).await.status,
        StatusCode::LOCKED
    );
    clock.advance(std::time::Duration::from_secs(9));
    assert_eq!(
        send(svc.clone(), empty(req("PUT", "/a"))).await.status,
        StatusCode::LOCKED
    );
    clock.advance(std::time::Duration::from_secs(2));
    assert_eq!(
        send(svc, empty(req("PUT", "/a"))).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn custom_rejection_response_keeps_the_reason_in_extensions() {
    let store = Arc::new(MemoryLockStore::new());
    xlock(&*store, "/a", LockDepth::Zero).await;
    let svc = LockLayer::new(store)
        .with_rejection_response(|r, _| {
            let mut res =
                http::Response::new(bytes::Bytes::from(format!("nope: {}", r.status().as_u16())));
            *res.status_mut() = r.status();
            res
        })
        .layer(Kv::with_files(&["/a"]));
    let a = send(svc, empty(req("PUT", "/a"))).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(a.text(), "nope: 423");
    assert!(matches!(a.rejection, Some(Rejection::Locked { .. })));
}

#[tokio::test]
async fn mount_prefix_keeps_the_client_visible_path_space() {
    let store = Arc::new(MemoryLockStore::new());
    let l = xlock(&*store, "/dav/docs/a", LockDepth::Zero).await;
    let kv = Kv::with_files(&["/docs/a"]);
    // the inner router sees /docs/a; clients see /dav/docs/a
    let svc = LockLayer::new(store)
        .mount_prefix("/dav")
        .unwrap()
        .layer(kv.clone());
    let a = send(svc.clone(), empty(req("PUT", "/docs/a"))).await;
    assert_eq!(a.error_hrefs("lock-token-submitted"), ["/dav/docs/a"]);
    let tagged = format!("<http://example.com/dav/docs/a> {}", if_token(&l));
    assert_eq!(
        send(
            svc.clone(),
            empty(req("PUT", "/docs/a").header("if", tagged))
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    // a Destination outside the prefix is not ours
    let mv = req("MOVE", "/docs/a").header("destination", "/elsewhere/b");
    assert_eq!(send(svc, empty(mv)).await.status, StatusCode::BAD_GATEWAY);

    // A refusal that names no root names the request URI as the client sees it, prefix
    // included, in DAV:error and as the problem+json `instance`.
    let store = Arc::new(MemoryLockStore::new());
    xlock(&*store, "/dav/c/m", LockDepth::Zero).await;
    let svc = LockLayer::new(store)
        .disclose_lock_roots(tower_locks::Disclosure::Related)
        .mount_prefix("/dav")
        .unwrap()
        .layer(Kv::with_files(&["/c/m"]));
    let a = send(svc.clone(), empty(req("DELETE", "/c/"))).await;
    assert_eq!(a.error_hrefs("lock-token-submitted"), ["/dav/c/"]);
    let json = req("PATCH", "/c/m").header("accept", "application/problem+json");
    let a = send(svc, empty(json)).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    let problem: serde_json::Value = serde_json::from_str(&a.text()).unwrap();
    assert_eq!(problem["instance"], "/dav/c/m", "{problem}");
}

#[tokio::test]
async fn options_advertises_class_2() {
    let (_store, _kv, svc) = setup(&["/doc"]);
    // Only OPTIONS answers are advertised on: a successful GET passes through untouched.
    let get = send(svc.clone(), empty(req("GET", "/doc"))).await;
    assert_eq!(get.status, StatusCode::OK);
    assert!(get.headers.get("dav").is_none(), "{:?}", get.headers);
    let a = send(svc, empty(req("OPTIONS", "/"))).await;
    let dav: Vec<&str> = a.headers["dav"]
        .to_str()
        .unwrap()
        .split(',')
        .map(str::trim)
        .collect();
    assert_eq!(dav, ["1", "2"]);
    let allow = a.headers["allow"].to_str().unwrap();
    assert!(
        allow.contains("LOCK") && allow.contains("UNLOCK"),
        "{allow}"
    );
    let quiet = LockLayer::new(MemoryLockStore::new())
        .advertise_dav(false)
        .layer(Kv::default());
    let a = send(quiet, empty(req("OPTIONS", "/"))).await;
    assert_eq!(a.headers["dav"], "1");
}

/// The inner service's own `DAV` classes survive the merge byte for byte: a Coded-URL class
/// may hold a comma (RFC 4918 §10.1), and a field value may carry obs-text.
#[tokio::test]
async fn options_keeps_the_inner_services_classes() {
    let inner = tower::service_fn(|_req: http::Request<axum::body::Body>| async {
        let mut res = http::Response::new(axum::body::Body::empty());
        let h = res.headers_mut();
        h.append("dav", "1, <http://example.com/ns/a,b>".parse().unwrap());
        h.append(
            "dav",
            http::HeaderValue::from_bytes(b"<http://example.com/caf\xc3\xa9>").unwrap(),
        );
        Ok::<_, std::convert::Infallible>(res)
    });
    let svc = LockLayer::new(MemoryLockStore::new()).layer(inner);
    let a = send(svc, empty(req("OPTIONS", "/"))).await;
    let dav: Vec<&[u8]> = a
        .headers
        .get_all("dav")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    assert_eq!(
        dav,
        [&b"1, 2, <http://example.com/ns/a,b>, <http://example.com/caf\xc3\xa9>"[..]],
        "{:?}",
        a.headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_racing_for_one_exclusive_lock_one_wins() {
    let (_store, _kv, svc) = setup(&["/race"]);
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            let r = req("LOCK", "/race").header("depth", "0");
            send(
                svc,
                r.body(axum::body::Body::from(LOCKINFO_EXCLUSIVE)).unwrap(),
            )
            .await
            .status
        }));
    }
    let mut won = 0;
    let mut lost = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => won += 1,
            StatusCode::LOCKED => lost += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((won, lost), (1, 63));
}

/// An encoded slash is judged below the mount prefix, in the request path, `Destination` and
/// `If` tags alike: a prefix holding `%2F` is the router's, and a path outside the mount is
/// foreign whatever it holds (D21).
#[tokio::test]
async fn encoded_slashes_are_judged_below_the_mount_prefix() {
    let store = Arc::new(MemoryLockStore::new());
    let kv = Kv::with_files(&["/x"]);
    let svc = LockLayer::new(store)
        .mount_prefix("/t%2Fu")
        .unwrap()
        .layer(kv.clone());
    let a = send(svc.clone(), empty(req("PUT", "/x"))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text());
    let mv = req("MOVE", "/x").header("destination", "http://example.com/t%2Fu/y");
    let a = send(svc.clone(), empty(mv)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let tagged = req("PUT", "/y").header("if", "</elsewhere/a%2Fb> (Not <urn:x>)");
    assert!(send(svc.clone(), empty(tagged)).await.status.is_success());
    for bad in [
        req("PUT", "/a%2Fb"),
        req("MOVE", "/y").header("destination", "/t%2Fu/a%2Fb"),
        req("PUT", "/y").header("if", "</t%2Fu/a%2Fb> (Not <urn:x>)"),
    ] {
        let a = send(svc.clone(), empty(bad)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text());
    }
}
