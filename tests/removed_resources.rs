//! What happens to the locks of a resource a DELETE or MOVE removes or a COPY or MOVE
//! replaces, and to the work a request leaves unfinished (decisions D15 and D20): each removal
//! takes exactly the locks it should, once, announced once, whatever is dropped or fails on
//! the way, and no write relies on a lock while it goes.

#[path = "common/adjusted.rs"]
mod adjusted;
mod common;
#[path = "common/faulty.rs"]
mod faulty;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use axum::body::Body;
use common::*;
use faulty::Faulty;
use http::StatusCode;
use tower::Layer;
use tower_locks::{LockDepth, LockEvent, LockLayer, LockScope, LockStore, MemoryLockStore};

fn lock_req(path: &str) -> http::Request<Body> {
    req("LOCK", path)
        .header("depth", "0")
        .body(Body::from(LOCKINFO_EXCLUSIVE))
        .unwrap()
}

/// Every event the hook heard, as (kind, token).
type Heard = Arc<Mutex<Vec<(&'static str, String)>>>;

fn recorder() -> (Heard, impl Fn(&LockEvent) + Send + Sync + 'static) {
    let heard: Heard = Arc::default();
    let h = heard.clone();
    (heard, move |e: &LockEvent| {
        h.lock()
            .unwrap()
            .push((e.kind(), e.lock().token.to_string()))
    })
}

/// Wait until the hook has heard `n` events (bounded).
async fn until_heard(heard: &Heard, n: usize) {
    for _ in 0..200 {
        if heard.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Send `req` through `svc` and drop it once it has reached the store's pause.
async fn dropped_at_the_store(svc: &Svc, store: &Faulty, req: http::Request<Body>) {
    let sent = tokio::spawn(send(svc.clone(), req));
    store.entered.notified().await;
    sent.abort();
    let _ = sent.await;
}

/// An unrelated write, which does the work left before anything else: afterwards, none of the
/// locks of `tokens` stands.
async fn the_next_request_removes(svc: &Svc, store: &Faulty, tokens: &[&str]) {
    let a = send(svc.clone(), empty(req("PUT", "/other"))).await;
    assert_eq!(a.status, StatusCode::CREATED);
    for token in tokens {
        let left = store.inner.get(token).await.unwrap();
        assert!(left.is_none(), "left behind: {left:?}");
    }
}

type Svc = tower_locks::LockService<Kv>;

/// A PUT of `path` relying on the lock of `token`.
fn put_with(path: &str, token: &str) -> http::Request<Body> {
    req("PUT", path)
        .header("if", format!("(<{token}>)"))
        .body(Body::from("new"))
        .unwrap()
}

/// A layer on a `Faulty` store over a `Kv` holding `files`, which is also its resource
/// space, configured by `configure`.
fn faulty_over(
    files: &[&str],
    configure: impl FnOnce(LockLayer) -> LockLayer,
) -> (Arc<Faulty>, Kv, Svc) {
    let store = Arc::new(Faulty::default());
    let kv = Kv::with_files(files);
    let layer = configure(LockLayer::new(store.clone())).resource_space(kv.clone());
    let svc = tower::Layer::layer(&layer, kv.clone());
    (store, kv, svc)
}

/// A MOVE onto an existing destination (204) removes the locks of the source and of the
/// replaced destination. Dropped while the source's locks are being removed, the work left is
/// queued and done by the next request: the destination's lock must not be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_dropped_mid_cleanup_still_removes_the_destinations_locks() {
    let (store, kv, svc) = faulty_over(&["/src", "/dst"], |l| l);
    let on_src = xlock(&store.inner, "/src", LockDepth::Zero).await;
    let on_dst = xlock(&store.inner, "/dst", LockDepth::Zero).await;
    store.pause_unlock.store(true, Ordering::SeqCst);
    let mv = req("MOVE", "/src")
        .header("destination", "http://example.com/dst")
        .header(
            "if",
            format!("</src> (<{}>) </dst> (<{}>)", on_src.token, on_dst.token),
        );
    // Moved (204); dropped while the source's lock is at the store.
    dropped_at_the_store(&svc, &store, empty(mv)).await;
    assert!(!kv.exists("/src") && kv.exists("/dst"), "the MOVE was done");
    the_next_request_removes(&svc, &store, &[&on_src.token, &on_dst.token]).await;
}

/// Fail-open: the store is down for the DELETE's check, which is forwarded unchecked. Once
/// the store answers again, the cleanup reads what stands below the removed path and removes
/// it: the lock of the removed resource does not stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchecked_removals_failed_cleanup_is_not_lost() {
    let (store, kv, svc) = faulty_over(&["/gone"], |l| l.fail_open_on_store_error_insecure(true));
    let l = xlock(&store.inner, "/gone", LockDepth::Zero).await;
    store.fail_query.store(1, Ordering::SeqCst);
    store.fail_remove_subtree.store(1, Ordering::SeqCst);
    let a = send(svc.clone(), empty(req("DELETE", "/gone"))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "forwarded unchecked");
    assert!(!kv.exists("/gone"));
    // The store is back.
    the_next_request_removes(&svc, &store, &[&l.token]).await;
}

/// A dry run's DELETE (forwarded though refused) dropped during its cleanup: the next request
/// finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_removal_dropped_mid_cleanup_is_not_lost() {
    let (store, kv, svc) = faulty_over(&["/gone"], |l| l.dry_run(true));
    let l = xlock(&store.inner, "/gone", LockDepth::Zero).await;
    store.pause_unlock.store(true, Ordering::SeqCst);
    // Deleted; dropped while the cleanup is at the store.
    dropped_at_the_store(&svc, &store, empty(req("DELETE", "/gone"))).await;
    assert!(!kv.exists("/gone"));
    the_next_request_removes(&svc, &store, &[&l.token]).await;
}

/// A lock that goes with its resource after a successful DELETE through the layer is heard
/// `Removed`, also when the DELETE was forwarded by a dry run, and a lock that is gone is
/// never heard `Expired` later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_removal_announces_the_locks_it_removes() {
    let store = Arc::new(MemoryLockStore::new());
    let kv = Kv::with_files(&["/f"]);
    let (heard, hook) = recorder();
    let svc = LockLayer::new(store.clone())
        .dry_run(true)
        .resource_space(kv.clone())
        .on_lock_event(hook)
        .layer(kv.clone());
    let a = send(svc.clone(), timed_lock("/f", "Second-1", None)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let token = a.headers["lock-token"].to_str().unwrap();
    let token = token.trim_matches(['<', '>']).to_owned();
    let a = send(svc.clone(), empty(req("DELETE", "/f"))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(a.would_reject.is_some(), "a dry run's refused removal");
    assert!(
        store.get(&token).await.unwrap().is_none(),
        "removed with /f"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await; // past its timeout
    until_heard(&heard, 2).await;
    let kinds: Vec<&str> = heard.lock().unwrap().iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, ["granted", "removed"]);
}

/// A dry run's refused DELETE removes the locks standing below the path once the service has
/// answered, by token: a lock another instance grants while that removal is under way is kept
/// (D20).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_removal_keeps_a_lock_granted_since_as_d20_says() {
    let store = Arc::new(Faulty::default());
    let kv = Kv::with_files(&["/d", "/d/f"]);
    let a = LockLayer::new(store.clone())
        .dry_run(true)
        .resource_space(kv.clone())
        .layer(kv.clone());
    let b = LockLayer::new(store.clone())
        .resource_space(kv.clone())
        .layer(kv.clone());
    xlock(&store.inner, "/d/f", LockDepth::Zero).await;
    store.pause_unlock.store(true, Ordering::SeqCst);
    let delete = tokio::spawn(send(a.clone(), empty(req("DELETE", "/d"))));
    store.entered.notified().await; // deleted; the cleanup is at the store
    let fresh = send(b, lock_req("/d")).await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.text());
    store.gate.notify_one();
    assert_eq!(delete.await.unwrap().status, StatusCode::NO_CONTENT);
    let standing = covering(&store.inner, "/d").await;
    assert_eq!(
        standing.len(),
        1,
        "the other instance's lock, granted after the check, was removed"
    );
}

/// Queued work stays queued until it is done, and every request that finds it does it: a LOCK
/// arriving while another request is removing a lock nobody holds does not meet that lock
/// (D20).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_meeting_a_leftover_lock_waits_for_its_removal() {
    let store = Arc::new(Faulty::default());
    let svc = LockLayer::new(store.clone()).layer(Kv::default());
    // A LOCK dropped after the store created its lock: nobody holds it.
    store.pause_create_reply.store(true, Ordering::SeqCst);
    dropped_at_the_store(&svc, &store, lock_req("/x")).await;
    // The next request takes the work up; its removal is slow.
    store.pause_unlock.store(true, Ordering::SeqCst);
    let first = tokio::spawn(send(svc.clone(), empty(req("PUT", "/other"))));
    store.entered.notified().await;
    // Meanwhile a LOCK of the path the lock nobody holds stands on.
    let second = tokio::time::timeout(Duration::from_secs(1), send(svc.clone(), lock_req("/x")));
    let release = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        store.gate.notify_one();
    };
    let (second, ()) = tokio::join!(second, release);
    let second = second.expect("answered");
    assert_eq!(first.await.unwrap().status, StatusCode::CREATED);
    assert_eq!(
        second.status,
        StatusCode::OK,
        "refused for a lock nobody holds: {}",
        second.text()
    );
}

/// The store created the lock but its reply was lost (an error): nobody holds the lock, and
/// the next request removes it (D20).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_whose_creation_reply_failed_is_not_left_unheld() {
    let store = Arc::new(Faulty::default());
    let svc = LockLayer::new(store.clone()).layer(Kv::default());
    store.create_then_fail.store(true, Ordering::SeqCst);
    let a = send(svc.clone(), lock_req("/x")).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text());
    let a = send(svc.clone(), empty(req("PUT", "/other"))).await;
    assert_eq!(a.status, StatusCode::CREATED);
    let standing = covering(&store.inner, "/x").await;
    assert!(
        standing.is_empty(),
        "a lock nobody holds stands on /x: {standing:?}"
    );
    // ... and keeps everybody else out until its timeout.
    assert_eq!(send(svc, lock_req("/x")).await.status, StatusCode::OK);
}

/// A MOVE onto an existing ancestor of the source (both paths' locks overlap) removes each
/// lock once and announces each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_source_and_destination_announce_each_lock_once() {
    let store = Arc::new(MemoryLockStore::new());
    let kv = Kv::with_files(&["/a", "/a/b", "/a/b/c", "/a/z"]);
    let (heard, hook) = recorder();
    let svc = LockLayer::new(store.clone())
        .resource_space(kv.clone())
        .on_lock_event(hook)
        .layer(kv.clone());
    let c = xlock(&*store, "/a/b/c", LockDepth::Zero).await;
    let z = xlock(&*store, "/a/z", LockDepth::Zero).await;
    let mv = req("MOVE", "/a/b")
        .header("destination", "http://example.com/a")
        .header(
            "if",
            format!("</a/b/c> (<{}>) </a/z> (<{}>)", c.token, z.token),
        );
    let a = send(svc.clone(), empty(mv)).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text());
    until_heard(&heard, 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut tokens: Vec<String> = heard
        .lock()
        .unwrap()
        .iter()
        .map(|(_, t)| t.clone())
        .collect();
    tokens.sort();
    let mut want = vec![c.token.to_string(), z.token.to_string()];
    want.sort();
    assert_eq!(tokens, want);
    assert!(store.get(&c.token).await.unwrap().is_none());
    assert!(store.get(&z.token).await.unwrap().is_none());
}

/// No lock vanishes under a write it let through (D15): while the layer removes the locks of
/// a deleted /d (the store is slow), a PUT of /d/f relying on the lock of the deleted /d/f is
/// refused, as during an UNLOCK of that lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_relying_on_a_lock_being_removed_with_its_resource_is_refused() {
    let (store, kv, svc) = faulty_over(&["/d", "/d/f"], |l| l);
    let t = xlock(&store.inner, "/d/f", LockDepth::Zero).await;
    store.pause_unlock.store(true, Ordering::SeqCst);
    let delete = req("DELETE", "/d").header("if", format!("</d/f> (<{}>)", t.token));
    let delete = tokio::spawn(send(svc.clone(), empty(delete)));
    store.entered.notified().await; // /d is deleted; the removal of its lock is at the store
    assert!(!kv.exists("/d/f"));
    let put = send(svc.clone(), put_with("/d/f", &t.token)).await;
    store.gate.notify_one();
    assert_eq!(delete.await.unwrap().status, StatusCode::NO_CONTENT);
    assert!(store.inner.get(&t.token).await.unwrap().is_none());
    assert_eq!(
        put.status,
        StatusCode::LOCKED,
        "let through on a lock being removed; /d/f exists again: {}",
        kv.exists("/d/f")
    );
}

/// The same while the service is still carrying the DELETE out: from the moment a removal is
/// let through, no write relies on a lock that goes with the resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_relying_on_a_lock_of_a_resource_being_deleted_is_refused() {
    let store = Arc::new(MemoryLockStore::new());
    let kv = Kv::with_files(&["/d", "/d/f"]);
    let (entered, gate) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let slow_deletes = {
        let (kv, entered, gate) = (kv.clone(), entered.clone(), gate.clone());
        tower::service_fn(move |req: http::Request<Body>| {
            let (mut kv, entered, gate) = (kv.clone(), entered.clone(), gate.clone());
            async move {
                if req.method() == "DELETE" {
                    entered.notify_one();
                    gate.notified().await;
                }
                tower::Service::call(&mut kv, req).await
            }
        })
    };
    let svc = LockLayer::new(store.clone())
        .resource_space(kv.clone())
        .layer(slow_deletes);
    let t = xlock(&*store, "/d/f", LockDepth::Zero).await;
    let delete = req("DELETE", "/d").header("if", format!("</d/f> (<{}>)", t.token));
    let delete = tokio::spawn(send(svc.clone(), empty(delete)));
    entered.notified().await; // let through; the service has not deleted /d yet
    let put = send(svc.clone(), put_with("/d/f", &t.token)).await;
    gate.notify_one();
    assert_eq!(delete.await.unwrap().status, StatusCode::NO_CONTENT);
    assert_eq!(put.status, StatusCode::LOCKED, "{}", put.text());
    assert!(!kv.exists("/d/f"));
    assert!(store.get(&t.token).await.unwrap().is_none());
}

/// The same for a removal forwarded unchecked (fail-open, the store down for its check): the
/// locks it reads below the removed path once answered are marked while they go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_relying_on_a_lock_an_unchecked_removal_takes_is_refused() {
    let (store, _, svc) = faulty_over(&["/d", "/d/f"], |l| {
        l.fail_open_on_store_error_insecure(true)
    });
    let t = xlock(&store.inner, "/d/f", LockDepth::Zero).await;
    store.fail_query.store(1, Ordering::SeqCst);
    store.pause_unlock.store(true, Ordering::SeqCst);
    let delete = tokio::spawn(send(svc.clone(), empty(req("DELETE", "/d"))));
    store.entered.notified().await; // deleted unchecked; the removal of its lock waits
    let put = send(svc.clone(), put_with("/d/f", &t.token)).await;
    store.gate.notify_one();
    assert_eq!(delete.await.unwrap().status, StatusCode::NO_CONTENT);
    assert_eq!(put.status, StatusCode::LOCKED, "{}", put.text());
    assert!(store.inner.get(&t.token).await.unwrap().is_none());
}

/// Under a mount prefix, a DELETE removes the locks of what it removed, MOVE source and
/// replaced destination included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mounted_removal_takes_its_locks() {
    let store = Arc::new(MemoryLockStore::new());
    // The Kv is not mount-aware: it reads the Destination as written.
    let kv = Kv::with_files(&["/d", "/d/f", "/s", "/t", "/dav/t"]);
    let svc = LockLayer::new(store.clone())
        .mount_prefix("/dav")
        .unwrap()
        .resource_space(kv.clone())
        .layer(kv.clone());
    let mut tokens = Vec::new();
    for path in ["/d/f", "/s", "/t"] {
        let a = send(svc.clone(), lock_req(path)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        let t = a.headers["lock-token"].to_str().unwrap();
        tokens.push(t.trim_matches(['<', '>']).to_owned());
    }
    let a = send(
        svc.clone(),
        empty(req("DELETE", "/d").header("if", format!("</dav/d/f> (<{}>)", tokens[0]))),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text());
    let mv = req("MOVE", "/s")
        .header("destination", "http://example.com/dav/t")
        .header(
            "if",
            format!("</dav/s> (<{}>) </dav/t> (<{}>)", tokens[1], tokens[2]),
        );
    let a = send(svc.clone(), empty(mv)).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text());
    for t in &tokens {
        assert!(store.get(t).await.unwrap().is_none(), "{t} left");
    }
}

/// No write relies on a lock before its LOCK has answered: a DELETE of the parent by the same
/// principal (owners write without their tokens) while the store has created the lock but the
/// LOCK has not answered is refused, and the LOCK answers with a lock that stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_write_relies_on_a_lock_before_its_lock_answered() {
    let store = Arc::new(Faulty::default());
    let kv = Kv::with_files(&["/d", "/d/x"]);
    let (heard, hook) = recorder();
    let svc = LockLayer::new(store.clone())
        .owner_writes(true)
        .principal_from(|_| Some("alice".into()))
        .resource_space(kv.clone())
        .on_lock_event(hook)
        .layer(kv.clone());
    store.pause_create_reply.store(true, Ordering::SeqCst);
    let lock = tokio::spawn(send(svc.clone(), lock_req("/d/x")));
    store.entered.notified().await; // the store created the lock; the LOCK has not answered
    let a = send(svc.clone(), empty(req("DELETE", "/d"))).await;
    assert_eq!(a.status, StatusCode::LOCKED, "{}", a.text());
    assert!(kv.exists("/d/x"));
    store.gate.notify_one();
    let lock = lock.await.unwrap();
    assert_eq!(lock.status, StatusCode::OK, "{}", lock.text());
    let token = lock.headers["lock-token"].to_str().unwrap();
    let token = token.trim_matches(['<', '>']).to_owned();
    assert!(store.inner.get(&token).await.unwrap().is_some());
    until_heard(&heard, 1).await;
    let kinds: Vec<&str> = heard.lock().unwrap().iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, ["granted"]);
}

/// The same for a lock the JSON lock API is acquiring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_write_relies_on_a_lock_before_its_acquire_answered() {
    let store = Arc::new(Faulty::default());
    let kv = Kv::with_files(&["/d", "/d/x"]);
    let layer = LockLayer::new(store.clone())
        .owner_writes(true)
        .principal_from(|_| Some("alice".into()))
        .resource_space(kv.clone());
    let api = layer.lock_api();
    let svc = layer.layer(kv.clone());
    store.pause_create_reply.store(true, Ordering::SeqCst);
    let acquire = tokio::spawn(send(api, empty(req("POST", "/d/x"))));
    store.entered.notified().await; // the store created the lock; the API has not answered
    let a = send(svc.clone(), empty(req("DELETE", "/d"))).await;
    assert_eq!(a.status, StatusCode::LOCKED, "{}", a.text());
    assert!(kv.exists("/d/x"));
    store.gate.notify_one();
    let acquired = acquire.await.unwrap();
    assert_eq!(acquired.status, StatusCode::CREATED, "{}", acquired.text());
    assert_eq!(covering(&store.inner, "/d/x").await.len(), 1);
}

/// A lock queued for removal is marked while it waits: a write is never let through relying
/// on it, only to lose it to the next request doing the work. Ann's DELETE of /c, holding 33
/// of her locks (owners write without their tokens), has its removals failed by the store: all
/// queued. Her PUT onto the last of them, with the store failing once more, cannot finish the
/// queue first; it is refused rather than let through on a lock about to go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_never_relies_on_a_queued_lock() {
    let mem = Arc::new(MemoryLockStore::new());
    let store = adjusted::Adjusted::new(mem.clone());
    let inner = tower::service_fn(move |req: http::Request<Body>| {
        let status = match req.method().as_str() {
            "DELETE" => StatusCode::NO_CONTENT,
            _ => StatusCode::CREATED,
        };
        let mut res = http::Response::new(Body::empty());
        *res.status_mut() = status;
        async move { Ok::<_, std::convert::Infallible>(res) }
    });
    let svc = LockLayer::new(store.clone())
        .owner_writes(true)
        .principal_from(|_| Some("ann".into()))
        .layer(inner);
    let mut locks = Vec::new();
    for i in 0..33 {
        let root = format!("/c/x{i:02}");
        let l = lock(
            &*mem,
            &root,
            LockScope::Exclusive,
            LockDepth::Zero,
            Some("ann"),
        );
        locks.push(l.await);
    }
    store.failing_unlocks.store(64, Ordering::SeqCst);
    let a = send(svc.clone(), empty(req("DELETE", "/c"))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text());
    store.failing_unlocks.store(1, Ordering::SeqCst);
    for l in &locks {
        assert!(
            mem.get(&l.token).await.unwrap().is_some(),
            "queued, standing"
        );
    }
    // Queued in token order; the last lies beyond the first batch of removals, which the
    // store fails once more: the PUT cannot finish the queue before it is checked.
    locks.sort_by(|a, b| a.token.cmp(&b.token));
    let last = locks.last().unwrap();
    let a = send(svc.clone(), empty(req("PUT", last.root.as_str()))).await;
    assert!(
        mem.get(&last.token).await.unwrap().is_some(),
        "still queued"
    );
    assert_eq!(a.status, StatusCode::LOCKED, "let through on a queued lock");
    // Once the store answers, the queue empties and ann writes as before.
    let a = send(svc.clone(), empty(req("PUT", "/other"))).await;
    assert_eq!(a.status, StatusCode::CREATED);
    for l in &locks {
        assert!(mem.get(&l.token).await.unwrap().is_none());
    }
    let a = send(svc, empty(req("PUT", last.root.as_str()))).await;
    assert_eq!(a.status, StatusCode::CREATED);
}
