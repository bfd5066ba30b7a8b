//! The lock API's removals are all or nothing: a takeover, break or release that fails after
//! removing locks puts them back (same token, holder, owner, for the time they had left), and
//! the removals are announced only once the request has gone through; a lock that cannot be
//! put back is announced as removed. An acquire the store fails to answer leaves no lock
//! nobody holds.

mod common;
#[path = "common/faulty.rs"]
mod faulty;
#[path = "common/slow.rs"]
mod slow;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use common::*;
use http::{Request, StatusCode};
use tower::Layer;
use tower_locks::{
    CreateOutcome, Limits, Lock, LockLayer, LockPolicy, LockQuery, LockStore, LockStoreError,
    LockTimeout, MemoryLockStore, NewLock, Principal, ResourcePath, TokenAccess, TokenOutcome,
};

/// Anybody may break anything (an administrator, say).
struct Anybody;

impl LockPolicy for Anybody {
    fn may_break(&self, _: &http::request::Parts, _: &Lock) -> bool {
        true
    }
}

fn api_req(method: &str, path: &str, user: Option<&str>, body: &str) -> Request<Body> {
    let mut r = req(method, path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    if let Some(u) = user {
        r.extensions_mut().insert(Principal::new(u));
    }
    r
}

fn json(a: &Answer) -> serde_json::Value {
    serde_json::from_slice(&a.body).unwrap_or(serde_json::Value::Null)
}

fn token_of(a: &Answer) -> String {
    json(a)["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {}", a.text()))
        .to_owned()
}

/// A memory store that fails as an outage would (numbers counted from 1; 0: none): the
/// `create` number `fail_create`, every `create` from number `fail_creates_from` on, the
/// `unlock` number `fail_unlock`; and, while `lose_creates`, every `create` after doing it (a
/// lost reply).
#[derive(Clone, Default)]
struct Flaky {
    inner: Arc<MemoryLockStore>,
    creates: Arc<AtomicUsize>,
    unlocks: Arc<AtomicUsize>,
    fail_create: Arc<AtomicUsize>,
    fail_creates_from: Arc<AtomicUsize>,
    fail_unlock: Arc<AtomicUsize>,
    lose_creates: Arc<AtomicBool>,
}

fn outage() -> LockStoreError {
    LockStoreError::unavailable("the store is down")
}

impl LockStore for Flaky {
    async fn create(&self, lock: NewLock) -> Result<CreateOutcome, LockStoreError> {
        let n = self.creates.fetch_add(1, SeqCst) + 1;
        let from = self.fail_creates_from.load(SeqCst);
        if n == self.fail_create.load(SeqCst) || (from != 0 && n >= from) {
            return Err(outage());
        }
        let outcome = self.inner.create(lock).await;
        match self.lose_creates.load(SeqCst) {
            true => Err(outage()),
            false => outcome,
        }
    }
    async fn refresh(
        &self,
        access: TokenAccess<'_>,
        timeout: LockTimeout,
    ) -> Result<TokenOutcome, LockStoreError> {
        self.inner.refresh(access, timeout).await
    }
    async fn unlock(&self, access: TokenAccess<'_>) -> Result<TokenOutcome, LockStoreError> {
        let n = self.unlocks.fetch_add(1, SeqCst) + 1;
        if n == self.fail_unlock.load(SeqCst) {
            return Err(outage());
        }
        self.inner.unlock(access).await
    }
    async fn remove_subtree(&self, path: &ResourcePath) -> Result<usize, LockStoreError> {
        self.inner.remove_subtree(path).await
    }
    async fn query(&self, query: &LockQuery) -> Result<Vec<Lock>, LockStoreError> {
        self.inner.query(query).await
    }
    async fn get(&self, token: &str) -> Result<Option<Lock>, LockStoreError> {
        self.inner.get(token).await
    }
}

/// What the event hook heard, in order: "kind root holder [by]".
type Heard = Arc<Mutex<Vec<String>>>;

fn heard_by(layer: LockLayer) -> (LockLayer, Heard) {
    let heard = Heard::default();
    let log = heard.clone();
    let layer = layer.on_lock_event(move |e| {
        let by = match e {
            tower_locks::LockEvent::Broken { by, .. } => {
                format!(" by {}", by.as_deref().unwrap_or("-"))
            }
            _ => String::new(),
        };
        let lock = e.lock();
        let holder = lock.principal.as_deref().unwrap_or("-");
        let line = format!("{} {} {holder}{by}", e.kind(), lock.root.href());
        log.lock().unwrap().push(line);
    });
    (layer, heard)
}

/// Wait (bounded) until the hook heard `n` events; all it heard.
async fn heard(heard: &Heard, n: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        let now = heard.lock().unwrap().clone();
        if now.len() >= n || start.elapsed() > Duration::from_secs(5) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The lock of `token` is in `store`, as bob took it: same holder, owner and root, with no
/// more time than it had.
async fn bobs_lock_is_back(store: &impl LockStore, token: &str, before: &Lock) {
    let now = store
        .get(token)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("bob's lock is gone"));
    assert_eq!(
        (&now.root, &now.principal, &now.owner, now.scope, now.depth),
        (
            &before.root,
            &before.principal,
            &before.owner,
            before.scope,
            before.depth
        )
    );
    assert!(now.expires_at <= before.expires_at.map(|at| at + Duration::from_secs(1)));
}

/// An administrator at their lock quota takes over bob's lock: 429, and bob's lock is there
/// again, his token still his, and nobody heard of a break.
#[tokio::test]
async fn a_takeover_refused_by_a_quota_puts_the_broken_lock_back() {
    let store = Arc::new(MemoryLockStore::new());
    let mut limits = Limits::default();
    limits.max_locks_per_principal = Some(1);
    let (layer, events) = heard_by(LockLayer::new(store.clone()).limits(limits));
    let api = layer.lock_api().with_policy(Anybody);

    let a = send(
        api.clone(),
        api_req("POST", "/elsewhere", Some("admin"), ""),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let owner = r#"{"owner": "Bob", "timeoutSeconds": 300}"#;
    let a = send(api.clone(), api_req("POST", "/doc", Some("bob"), owner)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let bobs = token_of(&a);
    let before = store.get(&bobs).await.unwrap().unwrap();

    let a = send(
        api.clone(),
        api_req("POST", "/doc?takeover", Some("admin"), ""),
    )
    .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text());
    bobs_lock_is_back(&*store, &bobs, &before).await;

    // Bob's token still releases his lock; the hook heard a grant, a grant and a release.
    let mut release = empty(req("DELETE", "/doc").header("lock-token", format!("<{bobs}>")));
    release.extensions_mut().insert(Principal::new("bob"));
    assert_eq!(send(api, release).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        heard(&events, 3).await,
        [
            "granted /elsewhere admin",
            "granted /doc bob",
            "released /doc bob"
        ]
    );
}

/// A takeover whose new lock is rolled back for a write in flight: bob's depth-0 lock on /d
/// is broken, the depth-infinity lock that would replace it covers /d/sub/y, where a write
/// checked before it is in flight. 423 "retry", and bob's lock is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_rolled_back_for_a_write_in_flight_puts_the_broken_lock_back() {
    let slow = slow::Slow::default();
    let store = Arc::new(MemoryLockStore::new());
    let layer = LockLayer::new(store.clone());
    let svc = layer.clone().layer(slow.clone());
    let api = layer.lock_api().with_policy(Anybody);

    let a = send(api.clone(), api_req("POST", "/d", Some("bob"), "")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let bobs = token_of(&a);
    let before = store.get(&bobs).await.unwrap().unwrap();

    let put = tokio::spawn(send(svc, empty(req("PUT", "/d/sub/y"))));
    slow.entered.notified().await;
    let deep = r#"{"depth": "infinity"}"#;
    let a = send(
        api.clone(),
        api_req("POST", "/d?takeover", Some("admin"), deep),
    )
    .await;
    slow.gate.notify_one();
    let _ = put.await;
    assert_eq!(a.status, StatusCode::LOCKED, "{}", a.text());
    assert!(json(&a)["type"]
        .as_str()
        .unwrap()
        .ends_with("#write-in-flight"));
    bobs_lock_is_back(&*store, &bobs, &before).await;
}

/// A takeover whose second create the store fails, once bob's lock is broken: 503, and bob's
/// lock is back.
#[tokio::test]
async fn a_takeover_the_store_fails_half_way_puts_the_broken_lock_back() {
    let store = Flaky::default();
    let api = LockLayer::new(store.clone())
        .lock_api()
        .with_policy(Anybody);
    let a = send(api.clone(), api_req("POST", "/doc", Some("bob"), "")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let bobs = token_of(&a);
    let before = store.get(&bobs).await.unwrap().unwrap();
    // Create #2 is the takeover's first try (a conflict), #3 the one after the break; the
    // put-back, #4, goes through.
    store.fail_create.store(3, SeqCst);
    let a = send(
        api.clone(),
        api_req("POST", "/doc?takeover", Some("admin"), ""),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text());
    bobs_lock_is_back(&store.inner, &bobs, &before).await;
}

/// `DELETE ?break` of two shared locks whose second unlock the store fails: 503, and both
/// locks are there, nobody heard of a break; the same break, the store well, breaks both and
/// is heard.
#[tokio::test]
async fn a_break_the_store_fails_half_way_puts_the_broken_locks_back() {
    let store = Flaky::default();
    let (layer, events) = heard_by(LockLayer::new(store.clone()));
    let api = layer.lock_api().with_policy(Anybody);
    let shared = r#"{"scope": "shared"}"#;
    let mut tokens = Vec::new();
    for who in ["s1", "s2"] {
        let a = send(api.clone(), api_req("POST", "/s", Some(who), shared)).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
        tokens.push(token_of(&a));
    }
    store.fail_unlock.store(2, SeqCst);
    let a = send(
        api.clone(),
        api_req("DELETE", "/s?break", Some("admin"), ""),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text());
    for t in &tokens {
        assert!(store.inner.get(t).await.unwrap().is_some(), "{t} is gone");
    }

    let a = send(
        api.clone(),
        api_req("DELETE", "/s?break", Some("admin"), ""),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text());
    let mut heard = heard(&events, 4).await;
    heard[2..].sort();
    assert_eq!(
        heard,
        [
            "granted /s s1",
            "granted /s s2",
            "broken /s s1 by admin",
            "broken /s s2 by admin"
        ]
    );
}

/// A takeover whose create and put-back the store both fail: 503, and bob's lock, which could
/// not be put back, is announced as broken.
#[tokio::test]
async fn a_lock_that_cannot_be_put_back_is_announced_broken() {
    let store = Flaky::default();
    let (layer, events) = heard_by(LockLayer::new(store.clone()));
    let api = layer.lock_api().with_policy(Anybody);
    let a = send(api.clone(), api_req("POST", "/doc", Some("bob"), "")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    store.fail_creates_from.store(3, SeqCst);
    let a = send(
        api.clone(),
        api_req("POST", "/doc?takeover", Some("admin"), ""),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text());
    assert_eq!(
        heard(&events, 2).await,
        ["granted /doc bob", "broken /doc bob by admin"]
    );
}

/// An acquire whose create the store does and then fails to answer: 503; the lock nobody got
/// the token of is removed by the next request, so bob can lock the resource.
#[tokio::test]
async fn an_acquire_the_store_fails_to_answer_leaves_no_lock() {
    let store = Flaky::default();
    let api = LockLayer::new(store.clone()).lock_api();
    store.lose_creates.store(true, SeqCst);
    let a = send(api.clone(), api_req("POST", "/doc", Some("ann"), "")).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text());
    store.lose_creates.store(false, SeqCst);
    let a = send(api.clone(), api_req("POST", "/doc", Some("bob"), "")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
}

/// A lock put back is granted like any new lock: not over a write checked while it was gone.
/// Bob holds /d; an admin's takeover breaks it, and before the new lock is created a PUT /d
/// without a token is checked (nothing stands) and forwarded. The new lock sees the PUT and
/// is rolled back; bob's lock is not put back over the PUT either: it stays broken, and is
/// heard so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_back_never_lands_over_a_write_in_flight() {
    let store = Arc::new(faulty::Faulty::default());
    let slow = slow::Slow::default();
    let (layer, events) = heard_by(LockLayer::new(store.clone()));
    let svc = layer.clone().layer(slow.clone());
    let api = layer.lock_api().with_policy(Anybody);
    let a = send(api.clone(), api_req("POST", "/d", Some("bob"), "")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let bobs = token_of(&a);
    // The takeover's first create meets bob's lock; the second, after the break, waits.
    store.pause_create_in.store(2, SeqCst);
    let takeover = tokio::spawn(send(
        api.clone(),
        api_req("POST", "/d?takeover", Some("admin"), ""),
    ));
    store.entered.notified().await;
    assert!(store.inner.get(&bobs).await.unwrap().is_none(), "broken");
    let put = tokio::spawn(send(svc, empty(req("PUT", "/d"))));
    slow.entered.notified().await; // checked with nothing standing, forwarded
    store.gate.notify_one();
    let a = takeover.await.unwrap();
    assert_eq!(a.status, StatusCode::LOCKED, "{}", a.text());
    let standing = store
        .inner
        .query(&LockQuery::new().covering(ResourcePath::parse("/d").unwrap()))
        .await
        .unwrap();
    slow.gate.notify_one();
    assert_eq!(put.await.unwrap().status, StatusCode::NO_CONTENT);
    assert!(
        standing.is_empty(),
        "granted over the PUT in flight: {standing:?}"
    );
    assert_eq!(
        heard(&events, 2).await,
        ["granted /d bob", "broken /d bob by admin"]
    );
}
