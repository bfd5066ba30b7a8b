//! With feature `tracing`: grants, refusals, refreshes, unlocks and dry-run decisions are
//! reported as events inside a per-request span.
#![cfg(feature = "tracing")]

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use common::*;
use http::StatusCode;
use tower::Layer;
use tower_locks::{LockDepth, LockLayer, MemoryLockStore};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records every event's message and fields, and every span name.
#[derive(Clone, Default)]
struct Capture {
    events: Arc<Mutex<Vec<String>>>,
    spans: Arc<Mutex<Vec<String>>>,
}

struct Text(String);
impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
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
        self.events.lock().unwrap().push(t.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Capture {
    fn saw(&self, needle: &str) -> bool {
        self.events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.contains(needle))
    }
}

#[tokio::test(flavor = "current_thread")]
async fn grants_refusals_unlocks_and_dry_runs_are_traced() {
    let cap = Capture::default();
    let _guard = tracing::subscriber::set_default(cap.clone());
    let store = Arc::new(MemoryLockStore::new());
    let svc = LockLayer::new(store.clone()).layer(Kv::with_files(&["/a", "/b"]));
    let lock = req("LOCK", "/a")
        .header("depth", "0")
        .body(Body::from(LOCKINFO_EXCLUSIVE))
        .unwrap();
    let a = send(svc.clone(), lock).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(cap.saw("lock granted"), "{:?}", cap.events.lock().unwrap());
    assert_eq!(
        send(svc.clone(), empty(req("PUT", "/a"))).await.status,
        StatusCode::LOCKED
    );
    assert!(
        cap.saw("request refused") && cap.saw("Locked"),
        "{:?}",
        cap.events.lock().unwrap()
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
