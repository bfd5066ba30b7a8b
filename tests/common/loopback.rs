//! Serving a service on 127.0.0.1 with hyper and talking to it, for the tests that mount the
//! layer as an application would (`#[path = "common/loopback.rs"] mod loopback;`).
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::Service;
use tower_locks::{CreateOutcome, LockDepth, LockStore, MemoryLockStore, NewLock, ResourcePath};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serve `svc` on a free loopback port until the test's runtime ends.
pub async fn serve<S, B>(svc: S) -> SocketAddr
where
    S: Service<Request<hyper::body::Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let svc = hyper_util::service::TowerToHyperService::new(svc.clone());
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// An HTTP client of one served address.
pub struct Loopback {
    client: Client<HttpConnector, Body>,
    pub addr: SocketAddr,
}

impl Loopback {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            addr,
        }
    }

    /// Send a request; its status, headers and body as text.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> (StatusCode, HeaderMap, String) {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (k, v) in headers {
            b = b.header(*k, v);
        }
        let res = self
            .client
            .request(b.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let (parts, body) = res.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }
}

pub fn p(s: &str) -> ResourcePath {
    ResourcePath::parse(s).unwrap()
}

/// An exclusive lock on `root`, taken in the store directly; its token.
pub async fn take(store: &MemoryLockStore, root: &str, depth: LockDepth) -> String {
    match store
        .create(NewLock::new(p(root)).depth(depth))
        .await
        .unwrap()
    {
        CreateOutcome::Created(lock) => lock.token.to_string(),
        other => panic!("{root}: {other:?}"),
    }
}
