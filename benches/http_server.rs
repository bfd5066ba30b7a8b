//! The end-to-end bench server (used by `benches/http.sh`): a small hyper 1 app on loopback,
//! with or without `LockLayer`, with 1e5 locks held on other paths (`LOCKS=n` for another
//! number).
//!
//! ```text
//! cargo build --release --example http_server
//! target/release/examples/http_server layer 127.0.0.1:8791     # or: bare
//! LOCKS=0 target/release/examples/http_server layer 127.0.0.1:8791
//! ```
//!
//! GET answers 200 with a short body; every other method 204. One current-thread runtime per
//! core is not needed here: the default multi-thread runtime is used, as an app would.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tower::{ServiceBuilder, ServiceExt};
use tower_locks::{LockLayer, LockStore, MemoryLockStore, NewLock, ResourcePath};

type Body = BoxBody<Bytes, tower_locks::BoxError>;

async fn app(req: Request<axum::body::Body>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut res = Response::new(Full::new(Bytes::from_static(b"hello")));
    if req.method() != http::Method::GET {
        *res.status_mut() = StatusCode::NO_CONTENT;
        *res.body_mut() = Full::new(Bytes::new());
    }
    Ok(res)
}

async fn serve<S>(listener: tokio::net::TcpListener, service: S) -> std::io::Result<()>
where
    S: tower::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(service.clone());
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
    // Bind only once the store is filled, so the script's readiness probe waits for it.
    let bind = || tokio::net::TcpListener::bind(addr);
    let to_body = |req: Request<Incoming>| req.map(axum::body::Body::new);
    match mode.as_str() {
        "bare" => {
            let listener = bind().await?;
            let svc = ServiceBuilder::new()
                .map_request(to_body)
                .service_fn(app)
                .map_response(|res: Response<Full<Bytes>>| {
                    res.map(|b| b.map_err(Into::into).boxed())
                });
            println!("bare on http://{}", listener.local_addr()?);
            serve(listener, svc).await?;
        }
        "layer" => {
            let store = MemoryLockStore::new();
            // `LOCKS` overrides how many locks are held (on other paths); 1e5 by default.
            let locks: usize = std::env::var("LOCKS").map_or(Ok(100_000), |v| v.parse())?;
            for i in 0..locks {
                let p = ResourcePath::parse(&format!("/locked/d{}/f{i}", i % 1000))?;
                store.create(NewLock::new(p)).await?;
            }
            let listener = bind().await?;
            let svc = ServiceBuilder::new()
                .map_request(to_body)
                .layer(LockLayer::new(store))
                .service_fn(app)
                .map_response(|res: Response<_>| res.map(|b| b.map_err(Into::into).boxed()));
            println!(
                "layer ({locks} locks held) on http://{}",
                listener.local_addr()?
            );
            serve(listener, svc).await?;
        }
        other => return Err(format!("mode must be bare or layer, not {other}").into()),
    }
    Ok(())
}
