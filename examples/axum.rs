//! The main demo: a small REST documents API with pessimistic locking, on the in-memory store.
//!
//! A user takes a lock through the crate's JSON lock API, edits, and everybody else gets
//! `423 Locked` (RFC 9457 problem+json) until the lock is released, taken over by an
//! administrator, or expires.
//!
//! ```text
//! cargo run --example axum                 # walkthrough, then serves on 127.0.0.1:3000
//! cargo run --example axum -- 127.0.0.1:8080
//! cargo run --example axum -- --walkthrough-only
//! ```
//!
//! Endpoints (the `X-User` header stands in for real authentication; `admin` is an
//! administrator):
//! - `GET /docs/{id}`, `PUT /docs/{id}` — the documents, guarded by `LockLayer`;
//! - `/locks/docs/{id}` — the lock API (`LockApi`): `POST` acquire, `GET` read, `PUT` refresh
//!   and `DELETE` release (with `Lock-Token`), `POST ?takeover` and `DELETE ?break` for
//!   administrators, `GET /locks/docs/?list` to list.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_locks::{
    Disclosure, Lock, LockEvent, LockLayer, LockPolicy, MemoryLockStore, Principal, ResourcePath,
};

#[derive(Clone, Default)]
struct Docs(Arc<Mutex<HashMap<String, String>>>);

/// Demo authentication: trust `X-User`. A real app verifies a login cookie or a bearer token here; the
/// lock layer and the lock API sit inside it (RFC 4918 §8.1).
async fn authenticate(mut req: Request, next: Next) -> Response {
    if let Some(user) = req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
        let user = user.to_owned();
        req.extensions_mut().insert(Principal::new(user));
    }
    next.run(req).await
}

/// `admin` may see every lock and take any over.
struct Admins;

impl LockPolicy for Admins {
    fn may_list_all(&self, request: &http::request::Parts, _prefix: &ResourcePath) -> bool {
        is_admin(request)
    }
    fn may_break(&self, request: &http::request::Parts, _lock: &Lock) -> bool {
        is_admin(request)
    }
}

fn is_admin(request: &http::request::Parts) -> bool {
    request
        .extensions
        .get::<Principal>()
        .is_some_and(|p| p.as_str() == "admin")
}

async fn read_doc(State(docs): State<Docs>, Path(id): Path<String>) -> Response {
    match docs.0.lock().unwrap().get(&id) {
        Some(text) => text.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn write_doc(State(docs): State<Docs>, Path(id): Path<String>, body: String) -> StatusCode {
    match docs.0.lock().unwrap().insert(id, body) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::CREATED,
    }
}

fn app(locks: Arc<MemoryLockStore>) -> Router {
    let locks = LockLayer::new(locks)
        // REST clients edit as the lock's holder, without passing the token around.
        .owner_writes(true)
        // The documents have no public listing: a refusal names only what the user may know.
        .disclose_lock_roots(Disclosure::Related)
        .on_lock_event(|event| match event {
            LockEvent::Broken { lock, by } => println!(
                "   [audit] {by:?} broke {:?}'s lock on {}",
                lock.principal, lock.root
            ),
            other => println!("   [audit] {} {}", other.kind(), other.lock().root),
        });
    Router::new()
        .route("/docs/{id}", get(read_doc).put(write_doc))
        .with_state(Docs::default())
        .layer(locks.clone())
        .nest_service("/locks", locks.lock_api().with_policy(Admins))
        // Authentication runs first, outside the lock layer (RFC 4918 §8.1).
        .layer(middleware::from_fn(authenticate))
}

fn expect(got: StatusCode, want: StatusCode) -> Result<(), Box<dyn std::error::Error>> {
    if got == want {
        Ok(())
    } else {
        Err(format!("expected {want}, got {got}").into())
    }
}

async fn walkthrough(base: &str) -> Result<(), Box<dyn std::error::Error>> {
    use http_body_util::BodyExt;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build_http();
    let send = |method: &str, path: &str, user: &str, extra: &[(&str, String)], body: &str| {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header("x-user", user);
        for (k, v) in extra {
            b = b.header(*k, v);
        }
        let req = b.body(Body::from(body.to_owned())).expect("valid request");
        let client = client.clone();
        async move {
            let res = client.request(req).await?;
            let status = res.status();
            let bytes = res.into_body().collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error>>((
                status,
                String::from_utf8_lossy(&bytes).into_owned(),
            ))
        }
    };

    println!("1. alice writes /docs/plan (nobody holds a lock)");
    let (st, _) = send("PUT", "/docs/plan", "alice", &[], "v1").await?;
    println!("   -> {st}");
    expect(st, StatusCode::CREATED)?;
    println!("2. alice takes a lock: POST /locks/docs/plan");
    let (st, body) = send(
        "POST",
        "/locks/docs/plan",
        "alice",
        &[("content-type", "application/json".to_owned())],
        r#"{"owner": "Alice (editing the plan)", "timeoutSeconds": 300}"#,
    )
    .await?;
    println!("   -> {st} {body}");
    expect(st, StatusCode::CREATED)?;
    let token = serde_json::from_str::<serde_json::Value>(&body)?["token"]
        .as_str()
        .ok_or("no token")?
        .to_owned();
    println!("3. bob writes (asking for JSON errors): refused");
    let json = [("accept", "application/json".to_owned())];
    let (st, body) = send("PUT", "/docs/plan", "bob", &json, "bob was here").await?;
    println!("   -> {st} {body}");
    expect(st, StatusCode::LOCKED)?;
    println!("4. bob tries to take the lock: refused, with who holds it and until when");
    let (st, body) = send("POST", "/locks/docs/plan", "bob", &[], "").await?;
    println!("   -> {st} {body}");
    expect(st, StatusCode::LOCKED)?;
    println!("5. alice writes without passing her token around (owner writes)");
    let (st, _) = send("PUT", "/docs/plan", "alice", &[], "v2").await?;
    println!("   -> {st}");
    expect(st, StatusCode::NO_CONTENT)?;
    println!("6. an administrator takes the lock over: POST /locks/docs/plan?takeover");
    let (st, body) = send("POST", "/locks/docs/plan?takeover", "admin", &[], "").await?;
    println!("   -> {st} {body}");
    expect(st, StatusCode::CREATED)?;
    let admin_token = serde_json::from_str::<serde_json::Value>(&body)?["token"]
        .as_str()
        .ok_or("no token")?
        .to_owned();
    println!("7. alice's old lock is gone: her release says so");
    let lt = [("lock-token", format!("<{token}>"))];
    let (st, _) = send("DELETE", "/locks/docs/plan", "alice", &lt, "").await?;
    println!("   -> {st}");
    expect(st, StatusCode::NOT_FOUND)?;
    println!("8. the administrator releases the lock");
    let lt = [("lock-token", format!("<{admin_token}>"))];
    let (st, _) = send("DELETE", "/locks/docs/plan", "admin", &lt, "").await?;
    println!("   -> {st}");
    expect(st, StatusCode::NO_CONTENT)?;
    println!("9. bob writes again");
    let (st, _) = send("PUT", "/docs/plan", "bob", &[], "v3").await?;
    println!("   -> {st}");
    expect(st, StatusCode::NO_CONTENT)?;
    let (_, body) = send("GET", "/docs/plan", "bob", &[], "").await?;
    println!("   GET /docs/plan -> {body:?}");
    if body != "v3" {
        return Err(format!("expected bob's last write, found {body:?}").into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let once = args.iter().any(|a| a == "--walkthrough-only");
    let addr: SocketAddr = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(String::as_str)
        .unwrap_or("127.0.0.1:3000")
        .parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = app(Arc::new(MemoryLockStore::new()));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let base = format!("http://{local}");
    println!("tower-locks demo: a documents API on {base}\n");
    walkthrough(&base).await?;
    if once {
        server.abort();
        return Ok(());
    }
    println!(
        "\nServing on {base} (Ctrl-C to stop). Try:\n  \
         curl -i -X POST -H 'X-User: alice' {base}/locks/docs/a\n  \
         curl -i -X PUT -H 'X-User: bob' -H 'Accept: application/json' -d hi {base}/docs/a"
    );
    server.await??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn send(app: &Router, method: &str, path: &str, user: &str) -> StatusCode {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("x-user", user)
            .body(Body::from(if method == "PUT" { "text" } else { "" }))
            .unwrap();
        app.clone().oneshot(req).await.unwrap().status()
    }

    /// The lock endpoint locks the resource the layer protects, escapes and all.
    #[tokio::test]
    async fn a_lock_taken_through_the_api_protects_that_exact_resource() {
        let app = app(Arc::new(MemoryLockStore::new()));
        for id in ["a%2Cb", "%2541", "x%252Fy", "plain"] {
            let taken = send(&app, "POST", &format!("/locks/docs/{id}"), "alice").await;
            assert_eq!(taken, StatusCode::CREATED, "{id}");
            let put = send(&app, "PUT", &format!("/docs/{id}"), "bob").await;
            assert_eq!(put, StatusCode::LOCKED, "{id}: bob's write");
        }
        // An encoded slash is refused by both (D21); `/docs/a/b` is another resource (and no
        // route here).
        assert_eq!(
            send(&app, "POST", "/locks/docs/a%2Fb", "alice").await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            send(&app, "PUT", "/docs/a%2Fb", "bob").await,
            StatusCode::BAD_REQUEST
        );
        assert_ne!(
            send(&app, "PUT", "/docs/a/b", "bob").await,
            StatusCode::LOCKED
        );
    }
}
