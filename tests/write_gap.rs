//! No check-then-write gap: while a checked write is in flight no conflicting lock is
//! granted and the lock it relies on cannot be unlocked; fencing tokens; dry-run mode.

#[path = "common/adjusted.rs"]
mod adjusted;
mod common;
#[path = "common/faulty.rs"]
mod faulty;
#[path = "common/slow.rs"]
mod slow;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adjusted::Adjusted;
use axum::body::Body;
use common::*;
use faulty::Faulty;
use http::{Request, Response, StatusCode};
use slow::Slow;
use tokio::sync::Notify;
use tower::Layer;
use tower_locks::{
    CreateOutcome, FencingToken, LockDepth, LockLayer, LockScope, LockStore, MemoryLockStore,
    NewLock, Rejection, ResourcePath, WouldReject,
};

fn lock_req(path: &str) -> Request<Body> {
    req("LOCK", path)
        .header("depth", "0")
        .body(Body::from(LOCKINFO_EXCLUSIVE))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lock_is_granted_under_an_in_flight_write() {
    let slow = Slow::default();
    let svc = LockLayer::new(MemoryLockStore::new()).layer(slow.clone());
    let put = tokio::spawn(send(svc.clone(), empty(req("PUT", "/a"))));
    slow.entered.notified().await; // the write passed the check and is at the storage
    let a = send(svc.clone(), lock_req("/a")).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(a.error_hrefs("no-conflicting-lock"), ["/a"]);
    // a depth-infinity lock on an ancestor too; an unrelated path is fine
    let a = send(
        svc.clone(),
        req("LOCK", "/")
            .body(Body::from(LOCKINFO_EXCLUSIVE))
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(
        send(svc.clone(), lock_req("/b")).await.status,
        StatusCode::OK
    );
    slow.gate.notify_one();
    assert_eq!(put.await.unwrap().status, StatusCode::NO_CONTENT);
    // the refused LOCK left nothing behind, and now it can be granted
    assert_eq!(send(svc, lock_req("/a")).await.status, StatusCode::OK);
}

/// The hold of a write forwarded by the fast path on borrowed keys (the memory store, a
/// canonical path) records the client-visible paths: under a mount prefix, the target and
/// its parent with the prefix, the target as the client wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mounted_write_holds_its_prefixed_paths() {
    let slow = Slow::default();
    let svc = LockLayer::new(MemoryLockStore::new())
        .mount_prefix("/dav")
        .unwrap()
        .layer(slow.clone());
    let put = tokio::spawn(send(svc.clone(), empty(req("PUT", "/docs/a/"))));
    slow.entered.notified().await;
    // On the target itself: refused, naming the target as written (a collection). Depth
    // infinity on the mount's root covers both held paths.
    for (path, held) in [
        ("/docs/a", &["/dav/docs/a/"][..]),
        ("/", &["/dav/docs/", "/dav/docs/a/"][..]),
    ] {
        let lock = req("LOCK", path)
            .body(Body::from(LOCKINFO_EXCLUSIVE))
            .unwrap();
        let a = send(svc.clone(), lock).await;
        assert_eq!(a.status, StatusCode::LOCKED, "LOCK {path}");
        assert_eq!(a.error_hrefs("no-conflicting-lock"), held, "LOCK {path}");
    }
    // Depth 0 on the parent: the write may add a member to it.
    let a = send(svc.clone(), lock_req("/docs")).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(a.error_hrefs("no-conflicting-lock"), ["/dav/docs/"]);
    // Neither a sibling nor a path below the target.
    for path in ["/docs/b", "/docs/a/x"] {
        assert_eq!(
            send(svc.clone(), lock_req(path)).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    slow.gate.notify_one();
    assert_eq!(put.await.unwrap().status, StatusCode::NO_CONTENT);
    assert_eq!(send(svc, lock_req("/docs/a")).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_a_write_relies_on_cannot_be_unlocked_under_it() {
    let slow = Slow::default();
    let store = Arc::new(MemoryLockStore::new());
    let svc = LockLayer::new(store.clone()).layer(slow.clone());
    let l = xlock(&*store, "/a", LockDepth::Zero).await;
    let put = tokio::spawn(send(
        svc.clone(),
        empty(req("PUT", "/a").header("if", format!("(<{}>)", l.token))),
    ));
    slow.entered.notified().await;
    let unlock = || empty(req("UNLOCK", "/a").header("lock-token", format!("<{}>", l.token)));
    assert_eq!(send(svc.clone(), unlock()).await.status, StatusCode::LOCKED);
    assert!(store.get(&l.token).await.unwrap().is_some());
    slow.gate.notify_one();
    assert_eq!(put.await.unwrap().status, StatusCode::NO_CONTENT);
    assert_eq!(send(svc, unlock()).await.status, StatusCode::NO_CONTENT);
    // the write carried the lock's fencing number
    assert_eq!(slow.fences.lock().unwrap()[0], Some(FencingToken(l.fence)));
}

/// The JSON lock API keeps the same promise: neither the holder's `?break` nor another
/// principal's `?takeover` (a policy that lets anybody break) removes a lock a write in flight
/// relies on; once the write is done, they may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_api_breaks_no_lock_a_write_relies_on() {
    struct Anybody;
    impl tower_locks::LockPolicy for Anybody {
        fn may_break(&self, _: &http::request::Parts, _: &tower_locks::Lock) -> bool {
            true
        }
    }
    let slow = Slow::default();
    let store = Arc::new(MemoryLockStore::new());
    let locks = LockLayer::new(store.clone())
        .principal_from(|parts| Some(parts.headers.get("x-user")?.to_str().ok()?.to_owned()));
    let svc = locks.clone().layer(slow.clone());
    let api = locks.lock_api().with_policy(Anybody);
    let l = lock(
        &*store,
        "/a",
        LockScope::Exclusive,
        LockDepth::Zero,
        Some("alice"),
    )
    .await;
    let put = tokio::spawn(send(
        svc.clone(),
        empty(
            req("PUT", "/a")
                .header("x-user", "alice")
                .header("if", format!("(<{}>)", l.token)),
        ),
    ));
    slow.entered.notified().await;
    let call = |method: &str, uri: &str, user: &str| empty(req(method, uri).header("x-user", user));
    for (method, uri, user) in [
        ("DELETE", "/a?break", "alice"),
        ("POST", "/a?takeover", "bob"),
    ] {
        let a = send(api.clone(), call(method, uri, user)).await;
        assert_eq!(
            a.status,
            StatusCode::LOCKED,
            "{method} {uri} by {user}: {}",
            a.text()
        );
        assert!(store.get(&l.token).await.unwrap().is_some());
    }
    slow.gate.notify_one();
    assert_eq!(put.await.unwrap().status, StatusCode::NO_CONTENT);
    let a = send(api, call("POST", "/a?takeover", "bob")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    assert!(store.get(&l.token).await.unwrap().is_none());
}

/// The tokens of the locks an event hook heard removed.
#[derive(Clone, Default)]
struct Removals(Arc<Mutex<Vec<String>>>);

impl Removals {
    fn hook(&self) -> impl Fn(&tower_locks::LockEvent) + Send + Sync + 'static {
        let heard = self.0.clone();
        move |e| {
            if let tower_locks::LockEvent::Removed { lock } = e {
                heard.lock().unwrap().push(lock.token.to_string());
            }
        }
    }

    /// The tokens heard, sorted, once there are at least `n` (waiting at most 2 s for the
    /// hook's thread), and a little longer, so that one heard twice shows.
    async fn heard(&self, n: usize) -> Vec<String> {
        for _ in 0..100 {
            if self.0.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut heard = self.0.lock().unwrap().clone();
        heard.sort();
        heard
    }
}

/// An UNLOCK under way (the store slow to answer) and a write relying on the same lock: the
/// write checked meanwhile is refused and never reaches the service, so no lock vanishes under
/// a write it let through, whichever comes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_checked_during_an_unlock_does_not_rely_on_the_lock() {
    let store = Arc::new(Faulty::default());
    let slow = Slow::default();
    let svc = LockLayer::new(store.clone()).layer(slow.clone());
    let l = xlock(&store.inner, "/a", LockDepth::Zero).await;
    store.pause_unlock.store(true, Ordering::SeqCst);
    let unlock = tokio::spawn(send(
        svc.clone(),
        empty(req("UNLOCK", "/a").header("lock-token", format!("<{}>", l.token))),
    ));
    store.entered.notified().await; // the UNLOCK is at the store
    let put = send(
        svc.clone(),
        empty(req("PUT", "/a").header("if", format!("(<{}>)", l.token))),
    );
    // A write let through would wait at the service's gate: bounded, it fails instead.
    let put = tokio::time::timeout(Duration::from_secs(5), put)
        .await
        .expect("the write was let through while the lock was being unlocked");
    assert_eq!(put.status, StatusCode::LOCKED, "{}", put.text());
    assert!(
        slow.fences.lock().unwrap().is_empty(),
        "the write reached the service"
    );
    store.gate.notify_one();
    assert_eq!(unlock.await.unwrap().status, StatusCode::NO_CONTENT);
    assert!(store.inner.get(&l.token).await.unwrap().is_none());
}

/// Work a request could not finish is done by the next one: the locks of a resource a DELETE
/// removed, when the DELETE's future was dropped during their cleanup or the store failed it,
/// and a lock created for a LOCK that was dropped before it answered, which nobody holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_request_finishes_what_a_dropped_one_left() {
    let store = Arc::new(Faulty::default());
    let kv = Kv::with_files(&["/gone", "/failed", "/other"]);
    let removed = Removals::default();
    let svc = LockLayer::new(store.clone())
        .resource_space(kv.clone())
        .on_lock_event(removed.hook())
        .layer(kv.clone());
    let l = xlock(&store.inner, "/gone", LockDepth::Zero).await;
    store.pause_unlock.store(true, Ordering::SeqCst);
    let delete = tokio::spawn(send(
        svc.clone(),
        empty(req("DELETE", "/gone").header("if", format!("(<{}>)", l.token))),
    ));
    store.entered.notified().await; // the service deleted it; the cleanup is at the store
    delete.abort();
    let _ = delete.await;
    assert!(!kv.exists("/gone"));
    assert!(
        store.inner.get(&l.token).await.unwrap().is_some(),
        "dropped mid-cleanup"
    );
    // Another instance sharing the store removes the old lock and locks the path anew (its
    // LOCK never saw this layer's queue): that lock is nobody's leftover.
    store.inner.remove_subtree(&l.root).await.unwrap();
    let fresh = xlock(&store.inner, "/gone", LockDepth::Zero).await;
    let a = send(svc.clone(), empty(req("PUT", "/other"))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(
        store.inner.get(&fresh.token).await.unwrap().is_some(),
        "a lock granted since was removed"
    );
    store.inner.remove_subtree(&fresh.root).await.unwrap();
    // Otherwise the next request removes the lock the DELETE left.
    let l = xlock(&store.inner, "/gone", LockDepth::Zero).await;
    kv.put("/gone", "again");
    store.pause_unlock.store(true, Ordering::SeqCst);
    let delete = tokio::spawn(send(
        svc.clone(),
        empty(req("DELETE", "/gone").header("if", format!("(<{}>)", l.token))),
    ));
    store.entered.notified().await;
    delete.abort();
    let _ = delete.await;
    assert!(store.inner.get(&l.token).await.unwrap().is_some());
    let a = send(svc.clone(), empty(req("PUT", "/other"))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(
        store.inner.get(&l.token).await.unwrap().is_none(),
        "the next request removed it"
    );
    // ... and the event hook hears of it, as of any lock removed with its resource.
    assert_eq!(removed.heard(1).await, vec![l.token.to_string()]);

    // The same when the store fails the cleanup.
    let l = xlock(&store.inner, "/failed", LockDepth::Zero).await;
    store.fail_unlock.store(1, Ordering::SeqCst);
    let a = send(
        svc.clone(),
        empty(req("DELETE", "/failed").header("if", format!("(<{}>)", l.token))),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(store.inner.get(&l.token).await.unwrap().is_some());
    let a = send(svc.clone(), empty(req("PUT", "/other"))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(store.inner.get(&l.token).await.unwrap().is_none());

    // A LOCK dropped after the store created its lock, before it answered.
    store.pause_create_reply.store(true, Ordering::SeqCst);
    let lock = tokio::spawn(send(svc.clone(), lock_req("/other")));
    store.entered.notified().await;
    lock.abort();
    let _ = lock.await;
    let held = covering(&store.inner, "/other").await;
    assert_eq!(held.len(), 1, "the store created the lock");
    // Nobody holds it: the next LOCK of the path removes it first, and gets the path.
    let a = send(svc.clone(), lock_req("/other")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert!(store.inner.get(&held[0].token).await.unwrap().is_none());
}

/// A DELETE removes the locks its check found, not whatever stands on the path by the time the
/// service has answered: a lock another instance on the same store granted on the resource
/// created anew is kept, and this layer's hook hears only of the locks it removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_takes_only_the_locks_it_checked() {
    let store = Arc::new(Faulty::default());
    let kv = Kv::with_files(&["/d", "/d/f"]);
    let removed = Removals::default();
    let a = LockLayer::new(store.clone())
        .resource_space(kv.clone())
        .on_lock_event(removed.hook())
        .layer(kv.clone());
    let b = LockLayer::new(store.clone())
        .resource_space(kv.clone())
        .layer(kv.clone());
    let old = xlock(&store.inner, "/d/f", LockDepth::Zero).await;
    store.pause_unlock.store(true, Ordering::SeqCst);
    let delete = tokio::spawn(send(
        a.clone(),
        empty(req("DELETE", "/d").header("if", format!("</d/f> (<{}>)", old.token))),
    ));
    store.entered.notified().await; // the service deleted /d; its cleanup is at the store
    assert!(!kv.exists("/d"));
    let fresh = send(b, lock_req("/d")).await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.text());
    store.gate.notify_one();
    assert_eq!(delete.await.unwrap().status, StatusCode::NO_CONTENT);
    assert!(store.inner.get(&old.token).await.unwrap().is_none());
    let standing = covering(&store.inner, "/d").await;
    assert_eq!(standing.len(), 1, "the other instance's lock was removed");
    assert_ne!(standing[0].token, old.token);
    assert_eq!(removed.heard(1).await, vec![old.token.to_string()]);
}

/// The same for the lock API: an acquire dropped after the store created its lock, before it
/// answered, leaves a lock nobody holds, which the next request removes (D20).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_request_removes_the_lock_of_a_dropped_acquire() {
    let store = Arc::new(Faulty::default());
    let layer = LockLayer::new(store.clone());
    let api = layer.lock_api();
    let svc = layer.layer(Kv::default());
    store.pause_create_reply.store(true, Ordering::SeqCst);
    let acquire = req("POST", "/doc")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let acquire = tokio::spawn(send(api, acquire));
    store.entered.notified().await;
    acquire.abort();
    let _ = acquire.await;
    let held = covering(&store.inner, "/doc").await;
    assert_eq!(held.len(), 1, "the store created the lock");
    assert_eq!(
        send(svc, empty(req("PUT", "/other"))).await.status,
        StatusCode::CREATED
    );
    assert!(
        store.inner.get(&held[0].token).await.unwrap().is_none(),
        "the next request removed the lock nobody holds"
    );
}

/// A token a write merely mentions pins nothing: another principal's slow upload whose `If`
/// header names the owner's token (negated, or next to a list that holds anyway) cannot keep
/// the owner from unlocking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mentioned_token_pins_nothing() {
    let slow = Slow::default();
    let store = Arc::new(MemoryLockStore::new());
    let svc = LockLayer::new(store.clone())
        .principal_from(|parts| Some(parts.headers.get("x-user")?.to_str().ok()?.to_owned()))
        .layer(slow.clone());
    for mention in ["(Not <{t}>)", "(<{t}>) (Not <DAV:no-lock>)"] {
        let l = lock(
            &*store,
            "/owned",
            LockScope::Exclusive,
            LockDepth::Zero,
            Some("alice"),
        )
        .await;
        let header = mention.replace("{t}", &l.token);
        let put = tokio::spawn(send(
            svc.clone(),
            empty(
                req("PUT", "/elsewhere")
                    .header("x-user", "mallory")
                    .header("if", header),
            ),
        ));
        slow.entered.notified().await; // mallory's upload is in flight
        let unlock = req("UNLOCK", "/owned")
            .header("x-user", "alice")
            .header("lock-token", format!("<{}>", l.token));
        assert_eq!(
            send(svc.clone(), empty(unlock)).await.status,
            StatusCode::NO_CONTENT,
            "{mention}: the owner unlocks while the other write is in flight"
        );
        slow.gate.notify_one();
        assert_eq!(put.await.unwrap().status, StatusCode::NO_CONTENT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_write_releases_its_hold() {
    let slow = Slow::default();
    let svc = LockLayer::new(MemoryLockStore::new()).layer(slow.clone());
    let put = tokio::spawn(send(svc.clone(), empty(req("PUT", "/a"))));
    slow.entered.notified().await;
    put.abort();
    let _ = put.await;
    // bounded wait for the abort to drop the future
    for _ in 0..100 {
        if send(svc.clone(), lock_req("/a")).await.status == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the hold of a cancelled write was never released");
}

#[tokio::test]
async fn fencing_numbers_grow_with_every_grant() {
    let (store, _kv, _svc) = setup(&[]);
    let a = xlock(&*store, "/x", LockDepth::Zero).await;
    let b = xlock(&*store, "/y", LockDepth::Zero).await;
    assert!(b.fence > a.fence);
    // a write without any lock gets no fencing token
    let slow = Slow::default();
    slow.gate.notify_one();
    let svc = LockLayer::new(store.clone()).layer(slow.clone());
    assert_eq!(
        send(svc, empty(req("PUT", "/free"))).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(slow.fences.lock().unwrap()[0], None);
}

/// An allowed DELETE over more locks than go to the store at once removes every one of them,
/// and the hook hears of each once, also when the store fails one of the removals: the rest is
/// left to the next request.
#[tokio::test]
async fn a_removal_over_many_locks_takes_each_once() {
    let store = Arc::new(Faulty::default());
    let names: Vec<String> = (0..70).map(|i| format!("/big/m{i:02}")).collect();
    let files: Vec<&str> = names.iter().map(String::as_str).collect();
    let kv = Kv::with_files(&files);
    let removed = Removals::default();
    let svc = LockLayer::new(store.clone())
        .owner_writes(true)
        .principal_from(|_| Some("alice".into()))
        .resource_space(kv.clone())
        .on_lock_event(removed.hook())
        .layer(kv.clone());
    let mut tokens = Vec::new();
    for name in &names {
        let lock = tower_locks::NewLock::new(tower_locks::ResourcePath::parse(name).unwrap())
            .principal("alice");
        match store.inner.create(lock).await.unwrap() {
            tower_locks::CreateOutcome::Created(l) => tokens.push(l.token.to_string()),
            other => panic!("{other:?}"),
        }
    }
    store.fail_unlock.store(1, Ordering::SeqCst);
    let a = send(svc.clone(), empty(req("DELETE", "/big"))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text());
    let left = below(&store.inner, "/big").await.len();
    assert!(
        left > 0 && left < 70,
        "{left} locks left after a failed removal"
    );
    let a = send(svc, empty(req("PUT", "/other"))).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert!(below(&store.inner, "/big").await.is_empty());
    tokens.sort();
    assert_eq!(removed.heard(70).await, tokens, "each removal heard once");
}

/// A dry run forwards a DELETE it would have refused, whose check stopped reading once enough
/// blocked members were known: the removal still takes every lock below with the resource.
#[tokio::test]
async fn a_dry_runs_removal_takes_every_lock_below() {
    let store = Arc::new(MemoryLockStore::new());
    let names: Vec<String> = (0..40).map(|i| format!("/big/m{i:02}")).collect();
    let files: Vec<&str> = names.iter().map(String::as_str).collect();
    let kv = Kv::with_files(&files);
    for name in &names {
        xlock(&*store, name, LockDepth::Zero).await;
    }
    let svc = LockLayer::new(store.clone())
        .dry_run(true)
        .resource_space(kv.clone())
        .layer(kv.clone());
    let a = send(svc, empty(req("DELETE", "/big"))).await;
    assert_eq!(
        a.status,
        StatusCode::NO_CONTENT,
        "forwarded despite the locks"
    );
    assert!(a.would_reject.is_some());
    let left = below(&*store, "/big").await;
    assert!(
        left.is_empty(),
        "{} locks left on removed resources",
        left.len()
    );
}

#[tokio::test]
async fn dry_run_forwards_and_reports_what_it_would_have_refused() {
    let store = Arc::new(MemoryLockStore::new());
    let l = xlock(&*store, "/a", LockDepth::Zero).await;
    let slow = Slow::default();
    let svc = LockLayer::new(store).dry_run(true).layer(slow.clone());
    slow.gate.notify_one();
    let a = send(svc.clone(), empty(req("PUT", "/a"))).await;
    assert_eq!(
        a.status,
        StatusCode::NO_CONTENT,
        "forwarded despite the lock"
    );
    let want = WouldReject(Rejection::Locked {
        roots: vec!["/a".into()],
        hidden: 0,
    });
    assert_eq!(slow.would.lock().unwrap()[0].as_ref(), Some(&want));
    // ... in the request and in the response, though the memory store answered at once
    assert_eq!(a.would_reject.as_ref(), Some(&want));
    slow.gate.notify_one();
    let a = send(
        svc.clone(),
        empty(req("PUT", "/a").header("if", "(<DAV:no-lock>)")),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(
        slow.would.lock().unwrap()[1],
        Some(WouldReject(Rejection::PreconditionFailed))
    );
    // a write with the token is not reported
    slow.gate.notify_one();
    let a = send(
        svc,
        empty(req("PUT", "/a").header("if", format!("(<{}>)", l.token))),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(slow.would.lock().unwrap()[2], None);
    assert_eq!(a.would_reject, None);
}

/// A response body the handler feeds as it writes (a 207 produced while a collection's DELETE
/// proceeds, a proxy relaying its upstream's answer).
struct Streamed(tokio::sync::mpsc::UnboundedReceiver<bytes::Bytes>);

impl http_body::Body for Streamed {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// A handler whose one answer, of `status`, streams from `rx`.
fn streaming(
    status: StatusCode,
    rx: tokio::sync::mpsc::UnboundedReceiver<bytes::Bytes>,
) -> impl tower::Service<
    Request<Body>,
    Response = Response<Streamed>,
    Error = std::convert::Infallible,
    Future = impl Send + 'static,
> + Clone
       + Send
       + 'static {
    let rx = Arc::new(Mutex::new(Some(rx)));
    tower::service_fn(move |_req: Request<Body>| {
        let rx = rx.lock().unwrap().take().expect("one write");
        let mut res = Response::new(Streamed(rx));
        *res.status_mut() = status;
        async move { Ok::<_, std::convert::Infallible>(res) }
    })
}

/// A write is in flight until its answer is over, body included (D15): while the handler's
/// answer still streams, a LOCK of its path is refused (even a shared one, compatible with
/// the lock the write relies on) and that lock cannot be unlocked; once the body has ended,
/// both go through. PUT is decided in `call`, DELETE (a 207: nothing to clean up) in the
/// future.
#[tokio::test]
async fn a_write_is_in_flight_until_its_answer_has_streamed() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    for (method, status) in [
        ("PUT", StatusCode::OK),
        ("DELETE", StatusCode::MULTI_STATUS),
    ] {
        let store = Arc::new(MemoryLockStore::new());
        let shared = NewLock::new(ResourcePath::parse("/doc").unwrap()).scope(LockScope::Shared);
        let CreateOutcome::Created(relied) = store.create(shared).await.unwrap() else {
            panic!("lock")
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let svc = LockLayer::new(store.clone()).layer(streaming(status, rx));
        let write = req(method, "/doc")
            .header("if", format!("(<{}>)", relied.token))
            .body(Body::from("x"))
            .unwrap();
        let res = svc.clone().oneshot(write).await.unwrap();
        assert_eq!(res.status(), status);
        let mut body = res.into_body();
        tx.send(bytes::Bytes::from("part 1")).unwrap();
        assert!(body.frame().await.is_some());

        let lock = || {
            req("LOCK", "/doc")
                .header("depth", "0")
                .body(Body::from(LOCKINFO_SHARED))
                .unwrap()
        };
        let unlock =
            || empty(req("UNLOCK", "/doc").header("lock-token", format!("<{}>", relied.token)));
        let a = send(svc.clone(), lock()).await;
        assert_eq!(
            a.status,
            StatusCode::LOCKED,
            "{method}: LOCK while it streams"
        );
        let a = send(svc.clone(), unlock()).await;
        assert_eq!(
            a.status,
            StatusCode::LOCKED,
            "{method}: UNLOCK while it streams"
        );

        drop(tx);
        assert!(body.frame().await.is_none(), "the answer has ended");
        assert_eq!(send(svc.clone(), lock()).await.status, StatusCode::OK);
        let a = send(svc.clone(), unlock()).await;
        assert_eq!(
            a.status,
            StatusCode::NO_CONTENT,
            "{method}: UNLOCK after it"
        );
    }
}

/// A write whose verdict waits for a probe (here one that never answers: a HEAD that hangs)
/// pins only the tokens its verdict may rely on: another principal's token it merely mentions
/// can be unlocked by its owner meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waiting_for_a_probe_pins_no_mentioned_token() {
    let entered = Arc::new(Notify::new());
    let space = {
        let entered = entered.clone();
        tower::service_fn(move |_: Request<tower_locks::EmptyBody>| {
            let entered = entered.clone();
            async move {
                entered.notify_one();
                std::future::pending::<()>().await;
                Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
            }
        })
    };
    let store = Arc::new(MemoryLockStore::new());
    let svc = LockLayer::new(store.clone())
        .resource_space(space)
        .layer(Kv::default());
    let ann = xlock(&*store, "/doc", LockDepth::Zero).await;
    let header = format!("([\"x\"]) (<{}>)", ann.token);
    let put = tokio::spawn(send(
        svc.clone(),
        empty(req("PUT", "/slow").header("if", header)),
    ));
    entered.notified().await; // its verdict waits for the HEAD of /slow
    let unlock = req("UNLOCK", "/doc").header("lock-token", format!("<{}>", ann.token));
    let a = send(svc, empty(unlock)).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text());
    put.abort();
}

/// D15, whichever comes first: an UNLOCK under way when a write is checked, which removes the
/// lock after the write has read it and answers before the write's verdict, leaves the write
/// nothing to rely on. The write is refused with 423, never forwarded on the strength of a
/// lock that is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_read_a_lock_being_unlocked_is_not_let_through() {
    // Every check asks `query` (no `query_now`), which the test holds after it has read.
    let store = Adjusted::new(MemoryLockStore::new());
    let gates = store.gates.clone();
    gates.unlock_armed.store(true, Ordering::SeqCst);
    let held = xlock(&store.inner, "/doc", LockDepth::Zero).await;
    let kv = Kv::with_files(&["/doc"]);
    let svc = LockLayer::new(store).layer(kv.clone());
    let unlock = req("UNLOCK", "/doc").header("lock-token", format!("<{}>", held.token));
    let unlock = tokio::spawn(send(svc.clone(), empty(unlock)));
    gates.unlock_waiting.notified().await;
    gates.query_armed.store(true, Ordering::SeqCst);
    let put = req("PUT", "/doc")
        .header("if", format!("(<{}>)", held.token))
        .body(Body::from("new"))
        .unwrap();
    let put = tokio::spawn(send(svc.clone(), put));
    gates.query_read.notified().await;
    gates.unlock_gate.notify_one();
    assert_eq!(unlock.await.unwrap().status, StatusCode::NO_CONTENT);
    gates.query_gate.notify_one();
    assert_eq!(put.await.unwrap().status, StatusCode::LOCKED);
    assert!(
        kv.forwarded().iter().all(|m| m.method != "PUT"),
        "{:?}",
        kv.forwarded()
    );
}
