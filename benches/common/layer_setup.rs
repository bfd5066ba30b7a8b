//! What the in-process layer benches measure against: the trivial inner services, LOCK
//! bodies, and a store with locks.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Empty, Full};
use tower_locks::{CreateOutcome, LockStore, MemoryLockStore, NewLock, ResourcePath};

pub(crate) type Body = Empty<Bytes>;

/// The inner service: a fixed response, nothing else.
pub(crate) async fn inner(_req: Request<Body>) -> Result<Response<&'static str>, Infallible> {
    Ok(Response::new("ok"))
}

/// The same, for requests that carry a body (a LOCK's `lockinfo`).
pub(crate) async fn inner_full(
    _req: Request<Full<Bytes>>,
) -> Result<Response<&'static str>, Infallible> {
    Ok(Response::new("ok"))
}

/// A LOCK body asking for an exclusive write lock.
pub(crate) const LOCKINFO_EXCLUSIVE: &str = r#"<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;

/// A LOCK body asking for a shared write lock.
pub(crate) const LOCKINFO_SHARED: &str = r#"<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;

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
