//! `LockLayer` on a bare hyper 1 server (no framework).
//!
//! ```text
//! cargo run --example hyper -- 127.0.0.1:3001
//! curl -i -X LOCK -H 'Depth: 0' --data '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>' http://127.0.0.1:3001/notes
//! curl -i -X PUT -d text http://127.0.0.1:3001/notes          # 423
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tower::{ServiceBuilder, ServiceExt};
use tower_locks::{LockLayer, MemoryLockStore};

/// The wrapped application: accepts every write, answers HEAD with 404 (nothing is stored).
async fn handler(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let status = match req.method().as_str() {
        "HEAD" | "GET" => StatusCode::NOT_FOUND,
        _ => StatusCode::NO_CONTENT,
    };
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = status;
    Ok(res)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3001".to_owned())
        .parse()?;
    let service = ServiceBuilder::new()
        .layer(LockLayer::new(MemoryLockStore::new()))
        .service_fn(handler)
        .map_response(|res: Response<_>| res.map(|b| b.boxed()));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("hyper + tower-locks on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let svc = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
