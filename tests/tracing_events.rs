//! With feature `tracing`: grants, refusals, refreshes, unlocks and dry-run decisions are
//! reported as events inside a per-request span.
#![cfg(feature = "tracing")]

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use common::*;
use http::StatusCode;
use tower::Layer;
use tower_locks::{
    BoxFuture, CreateOutcome, CreateResult, Lock, LockDepth, LockLayer, LockQuery, LockStore,
    LockStoreError, LockTimeout, MemoryLockStore, NewLock, ResourceCreator, ResourcePath,
    TokenAccess, TokenOutcome,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Records every event (its level, fields, and the spans it fired in) and every span name.
#[derive(Clone, Default)]
struct Capture {
    events: Arc<Mutex<Vec<Seen>>>,
    spans: Arc<Mutex<Vec<String>>>,
    entered: Arc<Mutex<Vec<u64>>>,
}

#[derive(Clone, Debug)]
struct Seen {
    level: Level,
    text: String,
    /// The names of the spans entered when the event fired.
    inside: Vec<String>,
}

struct Text(String);
impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.push_str(&format!(" {}={value}", field.name()));
        let mut cause = value.source();
        while let Some(e) = cause {
            self.0.push_str(&format!(" caused by: {e}"));
            cause = e.source();
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut spans = self.spans.lock().unwrap();
        spans.push(span.metadata().name().to_owned());
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut t = Text(String::new());
        event.record(&mut t);
        let spans = self.spans.lock().unwrap();
        let inside = self
            .entered
            .lock()
            .unwrap()
            .iter()
            .map(|id| spans[*id as usize - 1].clone())
            .collect();
        self.events.lock().unwrap().push(Seen {
            level: *event.metadata().level(),
            text: t.0,
            inside,
        });
    }
    fn enter(&self, id: &Id) {
        self.entered.lock().unwrap().push(id.into_u64());
    }
    fn exit(&self, id: &Id) {
        let mut entered = self.entered.lock().unwrap();
        if let Some(i) = entered.iter().rposition(|e| *e == id.into_u64()) {
            entered.remove(i);
        }
    }
}

impl Capture {
    fn all(&self) -> Vec<Seen> {
        self.events.lock().unwrap().clone()
    }
    fn saw(&self, needle: &str) -> bool {
        self.all().iter().any(|e| e.text.contains(needle))
    }
    /// The events since the `from`th.
    fn since(&self, from: usize) -> Vec<Seen> {
        self.all()[from..].to_vec()
    }
}

/// A store that is down: every call fails with the reason its client would give.
#[derive(Clone)]
struct Down;

fn down<T>() -> Result<T, LockStoreError> {
    Err(LockStoreError::unavailable("redis: connection refused"))
}

impl LockStore for Down {
    async fn create(&self, _: NewLock) -> Result<CreateOutcome, LockStoreError> {
        down()
    }
    async fn refresh(
        &self,
        _: TokenAccess<'_>,
        _: LockTimeout,
    ) -> Result<TokenOutcome, LockStoreError> {
        down()
    }
    async fn unlock(&self, _: TokenAccess<'_>) -> Result<TokenOutcome, LockStoreError> {
        down()
    }
    async fn remove_subtree(&self, _: &ResourcePath) -> Result<usize, LockStoreError> {
        down()
    }
    async fn query(&self, _: &LockQuery) -> Result<Vec<Lock>, LockStoreError> {
        down()
    }
    async fn get(&self, _: &str) -> Result<Option<Lock>, LockStoreError> {
        down()
    }
}

/// Creating the empty resource of a LOCK fails (a missing parent collection, say).
struct NoParent;

impl ResourceCreator for NoParent {
    fn create_empty<'a>(
        &'a self,
        _: &'a ResourcePath,
        _: &'a http::request::Parts,
    ) -> BoxFuture<'a, CreateResult> {
        Box::pin(async { CreateResult::Failed(StatusCode::CONFLICT) })
    }
}

fn lock_req(path: &str) -> http::Request<Body> {
    req("LOCK", path)
        .header("depth", "0")
        .body(Body::from(LOCKINFO_EXCLUSIVE))
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn grants_refusals_unlocks_and_dry_runs_are_traced() {
    let cap = Capture::default();
    let _guard = tracing::subscriber::set_default(cap.clone());
    let store = Arc::new(MemoryLockStore::new());
    let svc = LockLayer::new(store.clone()).layer(Kv::with_files(&["/a", "/b"]));
    let a = send(svc.clone(), lock_req("/a")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(cap.saw("lock granted"), "{:?}", cap.all());
    assert_eq!(
        send(svc.clone(), empty(req("PUT", "/a"))).await.status,
        StatusCode::LOCKED
    );
    assert!(
        cap.saw("request refused") && cap.saw("Locked"),
        "{:?}",
        cap.all()
    );
    let token = a.headers["lock-token"].to_str().unwrap().to_owned();
    let r = empty(req("UNLOCK", "/a").header("lock-token", token));
    assert_eq!(send(svc, r).await.status, StatusCode::NO_CONTENT);
    assert!(cap.saw("unlocked"));
    assert!(cap.spans.lock().unwrap().iter().any(|s| s == "tower_locks"));

    xlock(&*store, "/b", LockDepth::Zero).await;
    let dry = LockLayer::new(store)
        .dry_run(true)
        .layer(Kv::with_files(&["/b"]));
    assert_eq!(
        send(dry, empty(req("PUT", "/b"))).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(cap.saw("DRY RUN"));
}

/// A lock token is a capability (an anonymous lock is anybody's who shows it): grants,
/// refreshes and unlocks are logged by root and principal, never by token.
#[tokio::test(flavor = "current_thread")]
async fn lock_tokens_stay_out_of_the_logs() {
    let cap = Capture::default();
    let _guard = tracing::subscriber::set_default(cap.clone());
    let svc = LockLayer::new(MemoryLockStore::new()).layer(Kv::with_files(&["/a"]));
    let a = send(svc.clone(), lock_req("/a")).await;
    assert_eq!(a.status, StatusCode::OK);
    let token = a.headers["lock-token"].to_str().unwrap().to_owned();
    let bare = token.trim_matches(['<', '>']).to_owned();
    let refresh = req("LOCK", "/a")
        .header("if", format!("({token})"))
        .header("timeout", "Second-60");
    assert_eq!(
        send(svc.clone(), empty(refresh)).await.status,
        StatusCode::OK
    );
    let unlock = empty(req("UNLOCK", "/a").header("lock-token", &token));
    assert_eq!(send(svc, unlock).await.status, StatusCode::NO_CONTENT);
    for what in ["lock granted", "lock refreshed", "unlocked"] {
        assert!(cap.saw(what), "no {what:?} event: {:#?}", cap.all());
    }
    let leaking: Vec<Seen> = cap
        .all()
        .into_iter()
        .filter(|e| e.text.contains(&bare))
        .collect();
    assert!(leaking.is_empty(), "the token is in the logs: {leaking:#?}");
    assert!(cap.saw("root=\"/a\""), "{:#?}", cap.all());
}

/// A write the memory store decides at once is logged inside its request's span, as one
/// the future decides is, and so is the 400 of a request too malformed to plan.
#[tokio::test(flavor = "current_thread")]
async fn a_write_decided_at_once_is_logged_inside_its_span() {
    let cap = Capture::default();
    let _guard = tracing::subscriber::set_default(cap.clone());
    let svc = LockLayer::new(MemoryLockStore::new()).layer(Kv::with_files(&["/a"]));
    assert_eq!(
        send(svc.clone(), lock_req("/a")).await.status,
        StatusCode::OK
    );
    let malformed = empty(req("DELETE", "/a").header("depth", "banana"));
    for (request, status) in [
        (empty(req("PUT", "/a")), StatusCode::LOCKED),
        (malformed, StatusCode::BAD_REQUEST),
    ] {
        let from = cap.all().len();
        assert_eq!(send(svc.clone(), request).await.status, status);
        let refused: Vec<Seen> = cap
            .since(from)
            .into_iter()
            .filter(|e| e.text.contains("request refused"))
            .collect();
        assert_eq!(refused.len(), 1, "{status}: {:#?}", cap.since(from));
        assert!(
            refused[0].inside.iter().any(|s| s == "tower_locks"),
            "{status}: {refused:#?}"
        );
    }
}

/// A failing store is an ERROR event that carries the store's own reason, whichever request
/// met it: a write, a LOCK, an UNLOCK.
#[tokio::test(flavor = "current_thread")]
async fn store_errors_are_logged_with_their_reason() {
    let cap = Capture::default();
    let _guard = tracing::subscriber::set_default(cap.clone());
    let svc = LockLayer::new(Down).layer(Kv::with_files(&["/a"]));
    let unlock = req("UNLOCK", "/a").header(
        "lock-token",
        "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>",
    );
    for request in [empty(req("PUT", "/a")), lock_req("/a"), empty(unlock)] {
        let method = request.method().clone();
        let from = cap.all().len();
        assert_eq!(
            send(svc.clone(), request).await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let errors: Vec<Seen> = cap
            .since(from)
            .into_iter()
            .filter(|e| e.level == Level::ERROR)
            .collect();
        assert_eq!(errors.len(), 1, "{method}: {:#?}", cap.since(from));
        assert!(
            errors[0].text.contains("connection refused"),
            "{method}: {errors:#?}"
        );
        assert!(errors[0].inside.iter().any(|s| s == "tower_locks"));
    }
}

/// A lock rolled back because its empty resource could not be created was never granted:
/// no grant is logged.
#[tokio::test(flavor = "current_thread")]
async fn a_rolled_back_lock_is_not_logged_as_granted() {
    let cap = Capture::default();
    let _guard = tracing::subscriber::set_default(cap.clone());
    let store = Arc::new(MemoryLockStore::new());
    let svc = LockLayer::new(store.clone())
        .with_resource_creator(NoParent)
        .layer(Kv::default());
    assert_eq!(
        send(svc, lock_req("/missing/new.txt")).await.status,
        StatusCode::CONFLICT
    );
    let held = store
        .query(&LockQuery::new().subtree(ResourcePath::root()))
        .await;
    assert!(held.unwrap().is_empty());
    assert!(!cap.saw("lock granted"), "{:#?}", cap.all());
}

/// Every store call the flow waits for reports how long it took, at DEBUG, in the request's
/// span.
#[tokio::test(flavor = "current_thread")]
async fn store_latency_is_reported() {
    let cap = Capture::default();
    let _guard = tracing::subscriber::set_default(cap.clone());
    let svc = LockLayer::new(MemoryLockStore::new()).layer(Kv::with_files(&["/a"]));
    assert_eq!(send(svc, lock_req("/a")).await.status, StatusCode::OK);
    let answered: Vec<Seen> = cap
        .all()
        .into_iter()
        .filter(|e| e.text.contains("store answered"))
        .collect();
    assert!(
        answered.iter().any(|e| e.level == Level::DEBUG
            && e.text.contains("operation=\"create\"")
            && e.text.contains("elapsed_us=")
            && e.text.contains("ok=true")
            && e.inside.iter().any(|s| s == "tower_locks")),
        "{:#?}",
        cap.all()
    );
}

/// The memory store reports each lock it drops as expired, by root and principal (never by
/// token), when its next change purges it.
#[tokio::test(flavor = "current_thread")]
async fn expiries_name_the_lock_by_root_and_principal() {
    let cap = Capture::default();
    let _guard = tracing::subscriber::set_default(cap.clone());
    let clock = Arc::new(tower_locks::ManualClock::new());
    let store = MemoryLockStore::with_clock(clock.clone());
    let lock = NewLock::new(p("/a"))
        .principal("ann")
        .timeout(LockTimeout::Seconds(10));
    let CreateOutcome::Created(lock) = store.create(lock).await.unwrap() else {
        panic!("the store is empty");
    };
    clock.advance(std::time::Duration::from_secs(11));
    store.create(NewLock::new(p("/b"))).await.unwrap();
    let expired: Vec<Seen> = (cap.all().into_iter())
        .filter(|e| e.text.contains("lock expired"))
        .collect();
    assert_eq!(expired.len(), 1, "{:?}", cap.all());
    assert!(
        expired[0].text.contains("root=\"/a\"") && expired[0].text.contains("principal=\"ann\""),
        "{:?}",
        expired[0]
    );
    assert!(!expired[0].text.contains(&*lock.token), "{:?}", expired[0]);
}
