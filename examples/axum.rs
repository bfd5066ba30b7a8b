//! The main demo: a small REST documents API on the in-memory lock store.
//!
//! A client takes a lock through an app endpoint that calls the store, edits with
//! `If: (<token>)`, and everybody else gets `423 Locked` (RFC 9457 problem+json for JSON
//! clients) until the lock is released or expires.
//!
//! ```text
//! cargo run --example axum                 # walkthrough, then serves on 127.0.0.1:3000
//! cargo run --example axum -- 127.0.0.1:8080
//! cargo run --example axum -- --walkthrough-only
//! ```
//!
//! Endpoints (the `X-User` header stands in for real authentication):
//! - `GET /docs/{id}`, `PUT /docs/{id}` — the documents, guarded by `LockLayer`;
//! - `POST /locks/docs/{id}` — take an exclusive lock (JSON answer with the token);
//! - `DELETE /locks/docs/{id}` with `Lock-Token: <token>` — release it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_locks::{
    CreateOutcome, Disclosure, LockLayer, LockStore, LockTimeout, MemoryLockStore, NewLock,
    Principal, ResourcePath, TokenAccess, TokenOutcome,
};

#[derive(Clone)]
struct AppState {
    docs: Arc<Mutex<HashMap<String, String>>>,
    locks: Arc<MemoryLockStore>,
}

/// Demo authentication: trust `X-User`. A real app verifies a session or a token here; the
/// lock layer must sit inside it (RFC 4918 §8.1).
async fn authenticate(mut req: Request, next: Next) -> Response {
    if let Some(user) = req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
        let user = user.to_owned();
        req.extensions_mut().insert(Principal::new(user));
    }
    next.run(req).await
}

fn user(req_headers: &HeaderMap) -> Option<String> {
    req_headers
        .get("x-user")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn read_doc(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.docs.lock().unwrap().get(&id) {
        Some(text) => text.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn write_doc(State(s): State<AppState>, Path(id): Path<String>, body: String) -> StatusCode {
    match s.docs.lock().unwrap().insert(id, body) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::CREATED,
    }
}

/// The document a `/locks/…` request is about, from the raw request path and normalised as
/// the lock layer normalises request paths: `/locks/docs/a%2Fb` is `/docs/a%2Fb`, never
/// `/docs/a/b` (a path parameter would be decoded already).
fn locked_path(uri: &Uri) -> Option<ResourcePath> {
    ResourcePath::parse(uri.path().strip_prefix("/locks")?).ok()
}

async fn take_lock(State(s): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(path) = locked_path(&uri) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut new = NewLock::new(path).timeout(LockTimeout::Seconds(300));
    new.principal = user(&headers).map(Into::into);
    match s.locks.create(new).await {
        Ok(CreateOutcome::Created(lock)) => (
            StatusCode::CREATED,
            Json(json!({
                "token": lock.token.as_str(),
                "root": lock.root.href(),
                "timeoutSeconds": 300,
                "if": format!("(<{}>)", lock.token),
            })),
        )
            .into_response(),
        Ok(CreateOutcome::Conflict(held)) => (
            StatusCode::LOCKED,
            Json(json!({
                "title": "Locked",
                "status": 423,
                "lockRoots": held.iter().map(|l| l.root.href()).collect::<Vec<_>>(),
                "holders": held.iter().map(|l| l.principal.as_deref()).collect::<Vec<_>>(),
            })),
        )
            .into_response(),
        Ok(_) => StatusCode::TOO_MANY_REQUESTS.into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn release_lock(State(s): State<AppState>, uri: Uri, headers: HeaderMap) -> StatusCode {
    let Some(path) = locked_path(&uri) else {
        return StatusCode::BAD_REQUEST;
    };
    let Ok(token) = tower_locks::parse_lock_token(&headers) else {
        return StatusCode::BAD_REQUEST;
    };
    let who = user(&headers);
    match s
        .locks
        .unlock(TokenAccess::new(&token, &path, who.as_deref()))
        .await
    {
        Ok(TokenOutcome::Done(_)) => StatusCode::NO_CONTENT,
        Ok(TokenOutcome::Forbidden(_)) => StatusCode::FORBIDDEN,
        Ok(_) => StatusCode::CONFLICT,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn app(state: AppState) -> Router {
    // Every write under /docs is checked against the store before a handler runs. The
    // documents have no public listing, so a refusal names only the locks the requester may
    // know about.
    let locks = LockLayer::new(state.locks.clone()).disclose_lock_roots(Disclosure::Related);
    let docs = Router::new()
        .route("/docs/{id}", get(read_doc).put(write_doc))
        .layer(locks);
    Router::new()
        .route("/locks/docs/{id}", post(take_lock).delete(release_lock))
        .merge(docs)
        .with_state(state)
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
    let (st, body) = send("POST", "/locks/docs/plan", "alice", &[], "").await?;
    println!("   -> {st} {body}");
    expect(st, StatusCode::CREATED)?;
    let token = serde_json::from_str::<serde_json::Value>(&body)?["token"]
        .as_str()
        .ok_or("no token")?
        .to_owned();
    println!("3. bob writes without the token (asking for JSON errors)");
    let (st, body) = send(
        "PUT",
        "/docs/plan",
        "bob",
        &[("accept", "application/json".into())],
        "bob was here",
    )
    .await?;
    println!("   -> {st} {body}");
    expect(st, StatusCode::LOCKED)?;
    println!("4. bob copies alice's token: still refused, the lock is bound to alice");
    let (st, _) = send(
        "PUT",
        "/docs/plan",
        "bob",
        &[("if", format!("(<{token}>)"))],
        "bob again",
    )
    .await?;
    println!("   -> {st}");
    expect(st, StatusCode::LOCKED)?;
    println!("5. alice writes with If: (<token>)");
    let (st, _) = send(
        "PUT",
        "/docs/plan",
        "alice",
        &[("if", format!("(<{token}>)"))],
        "v2",
    )
    .await?;
    println!("   -> {st}");
    expect(st, StatusCode::NO_CONTENT)?;
    println!("6. alice releases the lock");
    let (st, _) = send(
        "DELETE",
        "/locks/docs/plan",
        "alice",
        &[("lock-token", format!("<{token}>"))],
        "",
    )
    .await?;
    println!("   -> {st}");
    expect(st, StatusCode::NO_CONTENT)?;
    println!("7. bob writes again");
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
    let state = AppState {
        docs: Arc::default(),
        locks: Arc::new(MemoryLockStore::new()),
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app(state)).await });
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
            .body(Body::from("text"))
            .unwrap();
        app.clone().oneshot(req).await.unwrap().status()
    }

    /// The lock endpoint locks the resource the layer protects, escapes and all.
    #[tokio::test]
    async fn a_lock_taken_through_the_endpoint_protects_that_exact_resource() {
        let app = app(AppState {
            docs: Arc::default(),
            locks: Arc::new(MemoryLockStore::new()),
        });
        for id in ["a%2Fb", "%2541", "x%252Fy", "plain"] {
            let taken = send(&app, "POST", &format!("/locks/docs/{id}"), "alice").await;
            assert_eq!(taken, StatusCode::CREATED, "{id}");
            let put = send(&app, "PUT", &format!("/docs/{id}"), "bob").await;
            assert_eq!(put, StatusCode::LOCKED, "{id}: bob's write");
        }
        // `/docs/a/b` is another resource (and no route here).
        assert_ne!(
            send(&app, "PUT", "/docs/a/b", "bob").await,
            StatusCode::LOCKED
        );
    }
}
