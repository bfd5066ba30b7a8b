//! The end-to-end bench server (used by `benches/http.sh`): a small axum app on loopback,
//! without the lock layer (`bare`) or with it mounted the idiomatic way, `Router::layer`
//! (`layer`), with 1e5 locks held on other paths (`LOCKS=n` for another number) and one on
//! `/docs/locked.txt`.
//!
//! ```text
//! cargo build --release --example http_server
//! target/release/examples/http_server layer 127.0.0.1:8791     # or: bare, limit
//! LOCKS=0 target/release/examples/http_server layer 127.0.0.1:8791
//! ```
//!
//! `GET /docs/{name}` answers 200 with a short body, `PUT` 204. The bare app also answers
//! `PUT /refused/{name}` with the response the layer sends when it refuses a PUT on
//! `/docs/locked.txt` (423, the same headers and `DAV:error` body): the cost of writing that
//! answer, without the layer deciding it. `limit` is the bare app with tower-http's
//! `RequestBodyLimitLayer` mounted the same way: a common layer that also wraps the response
//! body, for scale. The default multi-thread runtime is used, as an app would, and the router
//! is served as `axum::serve` serves it.

use std::net::SocketAddr;

use axum::routing::{get, put};
use axum::Router;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tower_locks::{LockLayer, LockStore, MemoryLockStore, NewLock, ResourcePath};

fn routes() -> Router {
    Router::new().route(
        "/docs/{name}",
        get(|| async { "hello" }).put(|| async { StatusCode::NO_CONTENT }),
    )
}

/// The bare app's copy of the layer's 423 for `/docs/locked.txt`.
fn refused() -> Router {
    let body = Bytes::from(tower_locks::dav::error_body(
        "lock-token-submitted",
        &["/docs/locked.txt"],
    ));
    Router::new().route(
        "/refused/{name}",
        put(move || {
            let body = body.clone();
            async move {
                Response::builder()
                    .status(StatusCode::LOCKED)
                    .header(CONTENT_TYPE, "application/xml; charset=\"utf-8\"")
                    .header(CACHE_CONTROL, "no-store")
                    .body(axum::body::Body::from(body))
                    .unwrap()
            }
        }),
    )
}

/// Serve `router` as `axum::serve` does: its routes are built once (`with_state`), not for
/// every request, and each connection gets a clone.
async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    let router: Router = router.with_state(());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "layer".to_owned());
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:8791".to_owned())
        .parse()?;
    let router = match mode.as_str() {
        "bare" => routes().merge(refused()),
        "limit" => routes().layer(tower_http::limit::RequestBodyLimitLayer::new(1 << 20)),
        "layer" => {
            let store = MemoryLockStore::new();
            // `LOCKS` overrides how many locks are held (on other paths); 1e5 by default.
            let locks: usize = std::env::var("LOCKS").map_or(Ok(100_000), |v| v.parse())?;
            for i in 0..locks {
                let p = ResourcePath::parse(&format!("/locked/d{}/f{i}", i % 1000))?;
                store.create(NewLock::new(p)).await?;
            }
            store
                .create(NewLock::new(ResourcePath::parse("/docs/locked.txt")?))
                .await?;
            routes().layer(LockLayer::new(store))
        }
        other => return Err(format!("mode must be bare, layer or limit, not {other}").into()),
    };
    // Bound only once the store is filled, so the script's readiness probe waits for it.
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("{mode} on http://{}", listener.local_addr()?);
    serve(listener, router).await?;
    Ok(())
}
