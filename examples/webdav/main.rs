//! An in-memory WebDAV server: a class 1 resource service (`MemDav`) that a
//! `tower_locks::LockLayer` turns into a class 2 server.
//!
//! ```text
//! cargo run --example webdav -- 127.0.0.1:4918
//! TESTS="basic copymove props" litmus http://127.0.0.1:4918/
//!
//! # locks in Redis, shared by every server started like this (see `lock_store`)
//! REDIS_URL=redis://127.0.0.1:6379/ LOCK_PREFIX=dav cargo run --features redis --example webdav
//! ```
//!
//! `MemDav` implements OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND (Depth 0
//! and 1) and PROPPATCH over a tree kept in memory. It has no lock logic at all: it only
//! renders DAV:lockdiscovery and DAV:supportedlock from the lock store it shares with the
//! layer, which answers LOCK and UNLOCK and enforces the locks.
//!
//! Layout: `service.rs` (the methods), `props.rs` (PROPFIND property values), `tree.rs`
//! (resources and paths), `xml.rs` (request parsing, multistatus writing, the lock-property
//! stand-ins), `http_util.rs` (dates, preconditions, responses).

mod http_util;
#[path = "../common/lock_store.rs"]
mod lock_store;
mod props;
mod service;
mod tree;
mod xml;

use std::net::SocketAddr;

use axum::body::Body;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

use crate::service::MemDav;

const DEFAULT_ADDR: &str = "127.0.0.1:4918";

/// The one place that picks the lock store shared by the layer and `MemDav`.
///
/// Built with `--features redis` and run with `REDIS_URL` set, it is a `RedisLockStore`
/// (key prefix from `LOCK_PREFIX`, default `tower-locks-webdav`): every server started that
/// way on the same Redis and prefix shares one lock space. Otherwise it is the in-memory store
/// of this process.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned())
        .parse()?;

    let store = lock_store::lock_store("tower-locks-webdav").await?;
    let memdav = MemDav::new(store.clone());

    // The lock layer turns the class-1 service into a class-2 one: it answers LOCK and
    // UNLOCK, enforces the locks on every write and cleans them up after DELETE and MOVE.
    // The service answers for the whole resource space: the layer asks it whether a resource
    // exists (and its ETag) and has it create the empty resource of a LOCK on a new URL.
    let space = ServiceBuilder::new()
        .map_request(|req: Request<tower_locks::EmptyBody>| req.map(Body::new))
        .service(memdav.clone());
    let dav = ServiceBuilder::new()
        .layer(tower_locks::LockLayer::from_arc(store.clone()).resource_space(space))
        .service(memdav);

    // hyper hands us `Request<Incoming>`; the services speak `Request<axum::body::Body>`.
    let svc = ServiceBuilder::new()
        .map_request(|req: Request<Incoming>| req.map(Body::new))
        .service(dav);

    let listener = TcpListener::bind(addr).await?;
    println!(
        "WebDAV server listening on http://{}/",
        listener.local_addr()?
    );

    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => {
                println!("shutting down");
                return Ok(());
            }
        };
        let svc = TowerToHyperService::new(svc.clone());
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                eprintln!("connection error: {e}");
            }
        });
    }
}
