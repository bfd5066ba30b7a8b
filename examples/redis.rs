//! An axum app whose locks live in Redis (`RedisLockStore`), so that every instance of the
//! app behind a load balancer enforces the same locks.
//!
//! ```text
//! redis-server --port 6379 --save '' --appendonly yes --maxmemory-policy noeviction &
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --features redis --example redis -- 127.0.0.1:3001
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --features redis --example redis -- 127.0.0.1:3002
//!
//! LOCKINFO='<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>'
//! curl -i -X LOCK -H 'X-User: alice' -d "$LOCKINFO" http://127.0.0.1:3001/docs/plan  # 201 (an empty plan), Lock-Token: <urn:uuid:…>
//! curl -i -X PUT -H 'X-User: bob' -d hi http://127.0.0.1:3002/docs/plan             # 423: the other instance knows
//! curl -i -X PUT -H 'X-User: alice' -H 'If: (<urn:uuid:…>)' -d v2 http://127.0.0.1:3002/docs/plan    # 201: its token opens the lock; documents live in each instance's memory
//! curl -i -X UNLOCK -H 'X-User: alice' -H 'Lock-Token: <urn:uuid:…>' http://127.0.0.1:3001/docs/plan # 204
//! ```
//!
//! Environment: `REDIS_URL` (default `redis://127.0.0.1:6379/`) and `LOCK_PREFIX`, the key
//! namespace (default `docs-app`): instances share locks exactly when they share both.
//!
//! The documents themselves are kept in this process's memory to keep the example short; a
//! real app keeps them where every instance sees them (a database, object storage). The
//! `X-User` header stands in for authentication, which belongs outside the lock layer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_locks::{LockLayer, RedisLockStore};

type Docs = Arc<Mutex<HashMap<String, String>>>;

async fn read_doc(State(docs): State<Docs>, Path(id): Path<String>) -> Response {
    match docs.lock().unwrap().get(&id) {
        Some(text) => text.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Stores the body; `If-None-Match: *` (as on the layer's PUT that creates the resource of a
/// LOCK) writes only a document that does not exist yet.
async fn write_doc(
    State(docs): State<Docs>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: String,
) -> StatusCode {
    let mut docs = docs.lock().unwrap();
    if headers.get("if-none-match").is_some_and(|v| v == "*") && docs.contains_key(&id) {
        return StatusCode::PRECONDITION_FAILED;
    }
    match docs.insert(id, body) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::CREATED,
    }
}

async fn delete_doc(State(docs): State<Docs>, Path(id): Path<String>) -> StatusCode {
    match docs.lock().unwrap().remove(&id) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3001".to_owned())
        .parse()?;
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let prefix = std::env::var("LOCK_PREFIX").unwrap_or_else(|_| "docs-app".to_owned());

    // One connection per process; clones of the store share it. Reconnection after a Redis
    // outage is automatic; meanwhile writes get 503 + Retry-After (fail closed).
    let store = RedisLockStore::builder(url)
        .prefix(prefix)
        .connect()
        .await?;
    println!("lock store: Redis, key prefix {:?}", store.prefix());

    let docs = Router::new()
        .route(
            "/docs/{id}",
            get(read_doc).put(write_doc).delete(delete_doc),
        )
        .with_state(Docs::default());
    // The layer answers LOCK and UNLOCK itself and checks every write against Redis. The
    // router without it is the resource space: the layer asks it whether a document exists
    // (HEAD) and creates the empty document of a LOCK on a new URL (PUT, If-None-Match: *).
    let locks = LockLayer::new(store)
        .principal_from(|parts| {
            let user = parts.headers.get("x-user")?.to_str().ok()?;
            Some(user.to_owned())
        })
        .resource_space(docs.clone());
    let app = docs.layer(locks);

    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
