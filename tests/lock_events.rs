//! The lock event hook (removals of locks with infinite timeouts, expiries in order), and
//! configurations that must not undo the layer: LOCK and UNLOCK on the safe list, a safe list
//! without OPTIONS, timeouts in fractions of a second.
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use http::{Method, StatusCode};
use tower_locks::{LockEvent, LockLayer, MemoryLockStore};

type Log = Arc<Mutex<Vec<String>>>;

fn recorder() -> (Log, impl Fn(&LockEvent) + Send + Sync + 'static) {
    let log: Log = Arc::default();
    let l = log.clone();
    (log, move |e: &LockEvent| {
        l.lock().unwrap().push(format!(
            "{} {} {}",
            e.kind(),
            e.lock().root.href(),
            e.lock().principal.as_deref().unwrap_or("-")
        ));
    })
}

/// Wait, at most 10 s, until `done` holds (the events thread runs when it is scheduled).
async fn eventually(mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn token(a: &Answer) -> String {
    let t = a.headers["lock-token"].to_str().unwrap();
    t.trim_start_matches('<').trim_end_matches('>').to_owned()
}

/// A lock with `Timeout: Infinite` (allowed) goes with its resource on DELETE: the hook hears
/// `Removed`, as it does for a lock with a finite timeout.
#[tokio::test]
async fn infinite_lock_removed_with_resource_is_reported() {
    let (log, hook) = recorder();
    let store = Arc::new(MemoryLockStore::new());
    let kv = Kv::with_files(&["/fin", "/inf"]);
    let layer = LockLayer::new(store.clone())
        .resource_space(kv.clone())
        .allow_infinite_timeout(true)
        .on_lock_event(hook);
    let svc = tower::Layer::layer(&layer, kv.clone());

    for (path, timeout) in [("/fin", "Second-600"), ("/inf", "Infinite")] {
        let a = send(svc.clone(), timed_lock(path, timeout, None)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        let t = token(&a);
        let del = req("DELETE", path)
            .header("if", format!("(<{t}>)"))
            .body(axum::body::Body::empty())
            .unwrap();
        let a = send(svc.clone(), del).await;
        assert_eq!(a.status, StatusCode::NO_CONTENT);
    }
    assert!(store.is_empty(), "both locks gone from the store");
    eventually(|| log.lock().unwrap().len() >= 4).await;
    let got = log.lock().unwrap().clone();
    assert_eq!(
        got,
        [
            "granted /fin -",
            "removed /fin -",
            "granted /inf -",
            "removed /inf -"
        ],
    );
}

/// The hook is called in order: a lock that expired before another lock was granted on the
/// same resource is reported expired before that grant, even when a slow hook let both pile
/// up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_is_reported_before_later_events() {
    let log: Log = Arc::default();
    let l = log.clone();
    let slow_once = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let store = Arc::new(MemoryLockStore::new());
    let kv = Kv::with_files(&["/doc"]);
    let layer = LockLayer::new(store.clone())
        .resource_space(kv.clone())
        .lock_timeouts(
            Duration::from_secs(1),
            Duration::from_secs(1),
            Duration::from_secs(60),
        )
        .on_lock_event(move |e| {
            l.lock().unwrap().push(format!(
                "{} {}",
                e.kind(),
                e.lock().principal.as_deref().unwrap_or("-")
            ));
            // A hook that is slow once (an audit log write that stalls).
            if slow_once.swap(false, std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(2500));
            }
        });
    let svc = tower::Layer::layer(&layer, kv.clone());

    let a = send(svc.clone(), timed_lock("/doc", "Second-1", Some("ann"))).await;
    assert_eq!(a.status, StatusCode::OK);
    // ann's lock expires after 1 s; bob locks the same resource after that.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let b = send(svc.clone(), timed_lock("/doc", "Second-60", Some("bob"))).await;
    assert_eq!(b.status, StatusCode::OK, "ann's lock has expired");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let got = log.lock().unwrap().clone();
    assert_eq!(got, ["granted ann", "expired ann", "granted bob"]);
}

/// The thread ends (and drops the hook) once the layer and its services are gone, even with
/// a lock it tracks for expiry.
#[tokio::test]
async fn thread_ends_when_layer_dropped() {
    let marker = Arc::new(());
    let m = marker.clone();
    let kv = Kv::with_files(&["/doc"]);
    let layer = LockLayer::new(MemoryLockStore::new())
        .resource_space(kv.clone())
        .on_lock_event(move |_| {
            let _ = &m;
        });
    let svc = tower::Layer::layer(&layer, kv.clone());
    let a = send(svc.clone(), timed_lock("/doc", "Second-600", None)).await;
    assert_eq!(a.status, StatusCode::OK);
    drop(svc);
    drop(layer);
    eventually(|| Arc::strong_count(&marker) == 1).await;
    assert_eq!(Arc::strong_count(&marker), 1);
}

/// `add_safe_method(LOCK)`: the layer still answers LOCK itself (it is not a read); it never
/// reaches the inner service.
#[tokio::test]
async fn lock_configured_safe_bypasses_layer() {
    let store = Arc::new(MemoryLockStore::new());
    let kv = Kv::with_files(&["/doc"]);
    let layer = LockLayer::new(store.clone())
        .resource_space(kv.clone())
        .add_safe_method(Method::from_bytes(b"LOCK").unwrap())
        .add_safe_method(Method::from_bytes(b"UNLOCK").unwrap());
    let svc = tower::Layer::layer(&layer, kv.clone());
    let a = send(svc.clone(), timed_lock("/doc", "Second-600", None)).await;
    let forwarded: Vec<String> = kv.all_seen().iter().map(|s| s.method.clone()).collect();
    assert!(
        !forwarded.contains(&"LOCK".to_owned()),
        "LOCK reached the inner service; status {}",
        a.status
    );
    assert_eq!(a.status, StatusCode::OK);
}

/// `safe_methods` without OPTIONS: OPTIONS still passes, and its answer carries `DAV: 1, 2`.
#[tokio::test]
async fn options_not_safe_loses_dav_advertising() {
    let kv = Kv::with_files(&["/doc"]);
    let layer = LockLayer::new(MemoryLockStore::new())
        .resource_space(kv.clone())
        .safe_methods([Method::GET, Method::HEAD]);
    let svc = tower::Layer::layer(&layer, kv.clone());
    let a = send(svc, empty(req("OPTIONS", "/doc"))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["dav"], "1, 2");
}

/// `lock_timeouts` panics only when min > max or default is outside min..=max: zero and
/// fractions of a second are accepted (and rounded to whole seconds, at least one).
#[test]
fn lock_timeouts_zero_min_and_default_accepted() {
    let layer = LockLayer::new(MemoryLockStore::new()).lock_timeouts(
        Duration::ZERO,
        Duration::ZERO,
        Duration::from_secs(60),
    );
    let _ = layer;
    let layer = LockLayer::new(MemoryLockStore::new()).lock_timeouts(
        Duration::from_millis(500),
        Duration::from_millis(100),
        Duration::from_millis(900),
    );
    let _ = layer;
}
