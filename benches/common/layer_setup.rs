//! What the in-process layer bench (`benches/layer.rs`) measures against: the trivial inner
//! service and a store with locks.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use tower_locks::{CreateOutcome, LockStore, MemoryLockStore, NewLock, ResourcePath};

pub(crate) type Body = Empty<Bytes>;

/// The inner service: a fixed response, nothing else.
pub(crate) async fn inner(_req: Request<Body>) -> Result<Response<&'static str>, Infallible> {
    Ok(Response::new("ok"))
}

/// A store holding 1000 locks on other paths and one on `/docs/locked.txt`; returns the
/// store and that lock's token.
pub(crate) async fn store_with_locks() -> (Arc<MemoryLockStore>, String) {
    let store = Arc::new(MemoryLockStore::new());
    for i in 0..1000 {
        let p = ResourcePath::parse(&format!("/other/d{}/f{i}", i % 16)).unwrap();
        store.create(NewLock::new(p)).await.unwrap();
    }
    let p = ResourcePath::parse("/docs/locked.txt").unwrap();
    let token = match store.create(NewLock::new(p)).await.unwrap() {
        CreateOutcome::Created(l) => l.token.to_string(),
        other => panic!("{other:?}"),
    };
    (store, token)
}
