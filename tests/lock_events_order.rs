//! The lock event hook's order and completeness: expiries judged by when events happened, on
//! this host's monotonic clock; a grant heard before anything that follows it; removals as the
//! removing request found them; a panicking hook; the dropped-event count.
#[path = "common/adjusted.rs"]
mod adjusted;
mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use adjusted::Adjusted;
use common::*;
use http::StatusCode;
use tower_locks::{
    BoxFuture, CreateResult, LockEvent, LockLayer, ManualClock, MemoryLockStore, Principal,
    ResourceCreator, ResourcePath,
};

type Log = Arc<Mutex<Vec<String>>>;

fn line(e: &LockEvent) -> String {
    format!("{} {}", e.kind(), e.lock().root.href())
}

/// A gate the hook waits at (once) until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}
impl Gate {
    fn wait(&self) {
        let mut g = self.open.lock().unwrap();
        while !*g {
            g = self.cv.wait(g).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

fn with_principal(
    mut r: http::Request<axum::body::Body>,
    who: &str,
) -> http::Request<axum::body::Body> {
    r.extensions_mut().insert(Principal::new(who));
    r
}

/// An UNLOCK of `path` with the lock token `t`.
fn unlock(path: &str, t: &str) -> http::Request<axum::body::Body> {
    req("UNLOCK", path)
        .header("lock-token", format!("<{t}>"))
        .body(axum::body::Body::empty())
        .unwrap()
}

fn token(a: &Answer) -> String {
    let t = a.headers["lock-token"].to_str().unwrap();
    t.trim_start_matches('<').trim_end_matches('>').to_owned()
}

/// Wait, at most 10 s, until `done` holds.
async fn eventually(mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Wait until the wall clock is past `t` (bounded).
async fn until_past(t: SystemTime) {
    eventually(|| SystemTime::now() > t + Duration::from_millis(50)).await;
}

/// A hook that blocks on the first event until `gate` opens, logging every event and the
/// first lock's expiry.
fn gated_hook(
    gate: Arc<Gate>,
) -> (
    Log,
    Arc<Mutex<Option<SystemTime>>>,
    impl Fn(&LockEvent) + Send + Sync + 'static,
) {
    let log: Log = Arc::default();
    let due: Arc<Mutex<Option<SystemTime>>> = Arc::default();
    let (l, d) = (log.clone(), due.clone());
    let first = std::sync::atomic::AtomicBool::new(true);
    (log, due, move |e: &LockEvent| {
        l.lock().unwrap().push(line(e));
        if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            *d.lock().unwrap() = e.lock().expires_at;
            gate.wait();
        }
    })
}

/// What the hook hears when it is busy with the grant of ann's one-second lock on `/doc` until
/// past that second, while `then` (given the lock's token) does something to the lock before
/// its timeout; a grant on `/other` ends what is heard.
async fn heard_while_the_hook_lags(
    then: impl FnOnce(&str) -> http::Request<axum::body::Body>,
) -> Vec<String> {
    let gate = Arc::new(Gate::default());
    let (log, due, hook) = gated_hook(gate.clone());
    let kv = Kv::with_files(&["/doc", "/other"]);
    let layer = LockLayer::new(MemoryLockStore::new())
        .resource_space(kv.clone())
        .lock_timeouts(
            Duration::from_secs(1),
            Duration::from_secs(1),
            Duration::from_secs(60),
        )
        .on_lock_event(hook);
    let svc = tower::Layer::layer(&layer, kv.clone());
    let a = send(svc.clone(), timed_lock("/doc", "Second-1", Some("ann"))).await;
    assert_eq!(a.status, StatusCode::OK);
    let done = send(svc.clone(), with_principal(then(&token(&a)), "ann")).await;
    // 2xx: the store still had the lock, before its timeout.
    assert!(done.status.is_success(), "{}", done.status);
    eventually(|| due.lock().unwrap().is_some()).await;
    let expires_at = due.lock().unwrap().unwrap();
    until_past(expires_at).await; // the hook is still busy with the grant
    gate.open();
    let b = send(svc, timed_lock("/other", "Second-60", Some("bob"))).await;
    assert_eq!(b.status, StatusCode::OK);
    eventually(|| log.lock().unwrap().iter().any(|l| l == "granted /other")).await;
    let heard = log.lock().unwrap().clone();
    heard
}

/// A lock released or refreshed before its timeout while the hook was busy past that
/// timeout is reported released or refreshed, not expired.
#[tokio::test]
async fn a_lock_changed_while_the_hook_lags_is_not_reported_expired() {
    let unlock = |t: &str| unlock("/doc", t);
    assert_eq!(
        heard_while_the_hook_lags(unlock).await,
        ["granted /doc", "released /doc", "granted /other"]
    );
    let refresh = |t: &str| {
        req("LOCK", "/doc")
            .header("if", format!("(<{t}>)"))
            .header("timeout", "Second-60")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_eq!(
        heard_while_the_hook_lags(refresh).await,
        ["granted /doc", "refreshed /doc", "granted /other"]
    );
}

/// Expiry is judged a whole timeout after the grant, on this host's clock, whatever the
/// store's clock says: a store an hour behind (here a `ManualClock`; a Redis server's clock may
/// differ from the host's) makes no live lock expired.
#[tokio::test]
async fn expiry_does_not_depend_on_the_store_clock() {
    let log: Log = Arc::default();
    let l = log.clone();
    let clock = Arc::new(ManualClock::starting_at(
        SystemTime::now() - Duration::from_secs(3600),
    ));
    let store = Arc::new(MemoryLockStore::with_clock(clock.clone()));
    let kv = Kv::with_files(&["/doc"]);
    let layer = LockLayer::new(store.clone())
        .resource_space(kv.clone())
        .on_lock_event(move |e| l.lock().unwrap().push(line(e)));
    let svc = tower::Layer::layer(&layer, kv.clone());
    let a = send(svc.clone(), timed_lock("/doc", "Second-600", Some("ann"))).await;
    assert_eq!(a.status, StatusCode::OK);
    let t = token(&a);
    // The store's clock has not moved: the lock stands, and its holder releases it.
    let unlock = with_principal(unlock("/doc", &t), "ann");
    assert_eq!(
        send(svc.clone(), unlock).await.status,
        StatusCode::NO_CONTENT
    );
    eventually(|| log.lock().unwrap().iter().any(|l| l == "released /doc")).await;
    assert_eq!(*log.lock().unwrap(), ["granted /doc", "released /doc"]);
}

/// A panicking hook loses that one event, not every later one.
#[tokio::test]
async fn a_panicking_hook_does_not_stop_delivery() {
    let log: Log = Arc::default();
    let l = log.clone();
    let kv = Kv::with_files(&["/boom", "/ok"]);
    let layer = LockLayer::new(MemoryLockStore::new())
        .resource_space(kv.clone())
        .on_lock_event(move |e| {
            if e.lock().root.as_str() == "/boom" {
                panic!("audit sink hiccup");
            }
            l.lock().unwrap().push(line(e));
        });
    let svc = tower::Layer::layer(&layer, kv.clone());
    assert_eq!(
        send(svc.clone(), timed_lock("/boom", "Second-60", None))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(svc.clone(), timed_lock("/ok", "Second-60", None))
            .await
            .status,
        StatusCode::OK
    );
    eventually(|| !log.lock().unwrap().is_empty()).await;
    assert_eq!(*log.lock().unwrap(), ["granted /ok"]);
}

/// What the hook has heard once `expiry` is past and a grant elsewhere (on `/end`, through the
/// lock API, which creates no resource) is heard after whatever was due before it.
async fn heard_past(api: tower_locks::LockApi, log: &Log, expiry: SystemTime) -> Vec<String> {
    until_past(expiry + Duration::from_millis(200)).await;
    let take = with_principal(
        req("POST", "/end").body(axum::body::Body::empty()).unwrap(),
        "ann",
    );
    let other = send(api, take).await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text());
    eventually(|| log.lock().unwrap().len() >= 3).await;
    log.lock().unwrap().clone()
}

/// A creator that waits until told to create.
struct SlowCreator(Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>);
impl ResourceCreator for SlowCreator {
    fn create_empty<'a>(
        &'a self,
        _path: &'a ResourcePath,
        _request: &'a http::request::Parts,
    ) -> BoxFuture<'a, CreateResult> {
        Box::pin(async move {
            self.1.notify_one(); // "the lock exists now"
            self.0.notified().await;
            CreateResult::Created
        })
    }
}

/// A LOCK announces its grant as soon as the lock stands, before it creates the empty
/// resource: a release meanwhile (here its holder's `DELETE ?break` through the lock API) is
/// heard of after the grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_is_heard_before_what_follows_it() {
    let log: Log = Arc::default();
    let l = log.clone();
    let go = Arc::new(tokio::sync::Notify::new());
    let locked = Arc::new(tokio::sync::Notify::new());
    let kv = Kv::with_files(&[]);
    let layer = LockLayer::new(MemoryLockStore::new())
        .with_resource_creator(SlowCreator(go.clone(), locked.clone()))
        .on_lock_event(move |e| l.lock().unwrap().push(line(e)));
    let svc = tower::Layer::layer(&layer, kv.clone());
    let api = layer.lock_api();

    let lock = tokio::spawn(send(
        svc.clone(),
        timed_lock("/new", "Second-600", Some("ann")),
    ));
    locked.notified().await;
    let brk = with_principal(
        req("DELETE", "/new?break")
            .body(axum::body::Body::empty())
            .unwrap(),
        "ann",
    );
    let b = send(api.clone(), brk).await;
    assert_eq!(b.status, StatusCode::NO_CONTENT, "{}", b.text());
    go.notify_one();
    assert_eq!(lock.await.unwrap().status, StatusCode::CREATED);
    eventually(|| log.lock().unwrap().len() >= 2).await;
    assert_eq!(*log.lock().unwrap(), ["granted /new", "released /new"]);
}

/// A LOCK dropped after its grant was heard (here while it creates the empty resource): the
/// next request removes the lock nobody holds, and the hook hears it removed, never expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_lock_heard_granted_is_heard_removed() {
    let log: Log = Arc::default();
    let l = log.clone();
    let (go, locked) = (Arc::default(), Arc::new(tokio::sync::Notify::new()));
    let kv = Kv::with_files(&[]);
    let layer = LockLayer::new(MemoryLockStore::new())
        .with_resource_creator(SlowCreator(go, locked.clone()))
        .on_lock_event(move |e| l.lock().unwrap().push(line(e)));
    let svc = tower::Layer::layer(&layer, kv.clone());
    let api = layer.lock_api();
    let lock = tokio::spawn(send(
        svc.clone(),
        timed_lock("/new", "Second-1", Some("ann")),
    ));
    locked.notified().await;
    // The next guarded request removes the lock its taker never received.
    let expiry = dropped_then_next_request(&svc, lock).await;
    eventually(|| log.lock().unwrap().len() >= 2).await;
    assert_eq!(
        heard_past(api, &log, expiry).await,
        ["granted /new", "removed /new", "granted /end"]
    );
}

/// Drop the LOCK `lock`, then send the next guarded request (an unrelated PUT), which does
/// the work the LOCK left; the moment from which the 1-second lock would have been heard
/// expired.
async fn dropped_then_next_request(
    svc: &tower_locks::LockService<Kv>,
    lock: tokio::task::JoinHandle<Answer>,
) -> SystemTime {
    lock.abort();
    assert!(lock.await.unwrap_err().is_cancelled());
    let expiry = SystemTime::now() + Duration::from_secs(1);
    let put = req("PUT", "/other")
        .body(axum::body::Body::from("x"))
        .unwrap();
    assert_eq!(send(svc.clone(), put).await.status, StatusCode::CREATED);
    expiry
}

/// A creator that fails.
struct FailingCreator;
impl ResourceCreator for FailingCreator {
    fn create_empty<'a>(
        &'a self,
        _path: &'a ResourcePath,
        _request: &'a http::request::Parts,
    ) -> BoxFuture<'a, CreateResult> {
        Box::pin(async { CreateResult::Failed(StatusCode::CONFLICT) })
    }
}

/// A LOCK whose resource could not be created rolls its lock back, and the hook hears the
/// lock removed, also when the LOCK is dropped after the store removed it but before the
/// store's answer came (a lost reply): never expired later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roll_back_cut_short_is_heard_removed() {
    let log: Log = Arc::default();
    let l = log.clone();
    let inner = Arc::new(MemoryLockStore::new());
    let store = Adjusted::new(inner.clone());
    store
        .hanging_unlocks
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let layer = LockLayer::new(store)
        .with_resource_creator(FailingCreator)
        .on_lock_event(move |e| l.lock().unwrap().push(line(e)));
    let svc = tower::Layer::layer(&layer, Kv::with_files(&[]));
    let api = layer.lock_api();
    let lock = tokio::spawn(send(
        svc.clone(),
        timed_lock("/new", "Second-1", Some("ann")),
    ));
    // Granted, then removed by the roll-back, whose answer never comes.
    let on_new = tower_locks::LockQuery::new().covering(p("/new"));
    let gone = || {
        tower_locks::LockStore::query_now(&*inner, &on_new)
            .unwrap()
            .unwrap()
            .is_empty()
    };
    eventually(|| !log.lock().unwrap().is_empty() && gone()).await;
    let expiry = dropped_then_next_request(&svc, lock).await;
    assert_eq!(
        heard_past(api, &log, expiry).await,
        ["granted /new", "removed /new", "granted /end"]
    );
}

/// Two instances on one store: a DELETE through A reports the locks it removed, bob's on
/// `/d/b` granted through B, and not ann's infinite lock on `/d/a`, granted through A and
/// released through B before.
#[tokio::test]
async fn a_removal_reports_what_the_delete_removed() {
    let log: Log = Arc::default();
    let (la, lb) = (log.clone(), log.clone());
    let store = Arc::new(MemoryLockStore::new());
    let kv = Kv::with_files(&["/d/a", "/d/b", "/x"]);
    let a_layer = LockLayer::new(store.clone())
        .resource_space(kv.clone())
        .allow_infinite_timeout(true)
        .on_lock_event(move |e| la.lock().unwrap().push(format!("A {}", line(e))));
    let b_layer = LockLayer::new(store.clone())
        .resource_space(kv.clone())
        .allow_infinite_timeout(true)
        .on_lock_event(move |e| lb.lock().unwrap().push(format!("B {}", line(e))));
    let a = tower::Layer::layer(&a_layer, kv.clone());
    let b = tower::Layer::layer(&b_layer, kv.clone());

    // ann's infinite lock: granted through A, released through B.
    let x = send(a.clone(), timed_lock("/d/a", "Infinite", Some("ann"))).await;
    assert_eq!(x.status, StatusCode::OK);
    let t = token(&x);
    let unlock = with_principal(unlock("/d/a", &t), "ann");
    assert_eq!(send(b.clone(), unlock).await.status, StatusCode::NO_CONTENT);
    // bob's lock through B; bob deletes /d/ through A.
    let y = send(b.clone(), timed_lock("/d/b", "Second-600", Some("bob"))).await;
    assert_eq!(y.status, StatusCode::OK);
    let ty = token(&y);
    let del = with_principal(
        req("DELETE", "/d/")
            .header("if", format!("</d/b> (<{ty}>)"))
            .body(axum::body::Body::empty())
            .unwrap(),
        "bob",
    );
    assert_eq!(send(a.clone(), del).await.status, StatusCode::NO_CONTENT);
    assert!(store.is_empty(), "the DELETE removed bob's lock");
    // Sentinel through A.
    assert_eq!(
        send(a.clone(), timed_lock("/x", "Second-600", None))
            .await
            .status,
        StatusCode::OK
    );
    eventually(|| log.lock().unwrap().iter().any(|l| l == "A granted /x")).await;
    let got = log.lock().unwrap().clone();
    let from_a: Vec<&String> = got.iter().filter(|l| l.starts_with("A ")).collect();
    assert_eq!(
        from_a,
        ["A granted /d/a", "A removed /d/b", "A granted /x"],
        "{got:?}"
    );
}

/// An event that finds the queue full is dropped and counted, and the count shows in the
/// layer's `Debug` output.
#[tokio::test]
async fn dropped_events_are_counted_where_they_can_be_read() {
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let store = Arc::new(MemoryLockStore::new());
    let kv = Kv::with_files(&[]);
    let layer = LockLayer::new(store.clone()).on_lock_event(move |_| g.wait());
    let svc = tower::Layer::layer(&layer, kv.clone());
    // One event is with the hook, 4096 wait; 10 more are dropped.
    for i in 0..(1 + 4096 + 10) {
        let a = send(
            svc.clone(),
            timed_lock(&format!("/f{i}"), "Second-600", Some(&format!("u{i}"))),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK);
    }
    let shown = format!("{layer:?} {:?}", layer.lock_api());
    gate.open();
    assert!(shown.contains("dropped"), "{shown}");
}
