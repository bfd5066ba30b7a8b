//! What `LockPropertiesLayer` adds to a `Depth: 1` PROPFIND of a big collection: a class-1
//! service answers with `MEMBERS` (default 1 000) `response` elements, streamed in 16 KiB
//! chunks as a server sends them, and the layer adds each member's lock properties, with a
//! tenth of the members locked. Prints the mean time per PROPFIND through the layer next to
//! the same PROPFIND without it, on the memory store and, when `REDIS_URL` is set, on Redis
//! (where each store query is a round trip). Then the time for one `response` of 250 KiB,
//! delivered whole and in small chunks.
//!
//! ```text
//! cargo run --release --example propfind_cost
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --release --features redis --example propfind_cost
//! ```

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_locks::{LockLayer, LockStore, MemoryLockStore, NewLock, ResourcePath};

/// A body delivered in the given chunks, as a server streams it.
struct Chunks(VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

/// The class-1 service's answer, in 16 KiB chunks.
fn answer(members: usize) -> Vec<Bytes> {
    let mut xml =
        String::from(r#"<?xml version="1.0" encoding="utf-8"?><D:multistatus xmlns:D="DAV:">"#);
    for i in 0..members {
        xml.push_str(&format!(
            "<D:response><D:href>/big/m{i}</D:href><D:propstat><D:prop>\
             <D:getcontentlength>{i}</D:getcontentlength>\
             <D:getlastmodified>Mon, 07 Dec 2026 12:00:00 GMT</D:getlastmodified>\
             </D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>\
             <D:propstat><D:prop><D:lockdiscovery/></D:prop>\
             <D:status>HTTP/1.1 404 Not Found</D:status></D:propstat></D:response>\n"
        ));
    }
    xml.push_str("</D:multistatus>");
    xml.as_bytes()
        .chunks(16 * 1024)
        .map(Bytes::copy_from_slice)
        .collect()
}

async fn class_1(
    chunks: Arc<Vec<Bytes>>,
    _req: Request<tower_locks::ReplayBody<Full<Bytes>>>,
) -> Result<Response<Chunks>, Infallible> {
    let mut res = Response::new(Chunks(chunks.iter().cloned().collect()));
    *res.status_mut() = StatusCode::MULTI_STATUS;
    Ok(res)
}

fn propfind() -> Request<Full<Bytes>> {
    Request::builder()
        .method("PROPFIND")
        .uri("/big/")
        .header("depth", "1")
        .body(Full::new(Bytes::from_static(
            br#"<propfind xmlns="DAV:"><prop><getcontentlength/><lockdiscovery/></prop></propfind>"#,
        )))
        .unwrap()
}

/// Mean microseconds per PROPFIND over `n`, through the layer (`with`) or not; the answer's
/// activelock count is checked.
async fn run<S: LockStore>(
    store: Arc<S>,
    chunks: Arc<Vec<Bytes>>,
    n: usize,
    with: bool,
    locked: usize,
) -> f64 {
    let locks = LockLayer::new(store);
    let start = Instant::now();
    for _ in 0..n {
        let chunks = Arc::clone(&chunks);
        let inner = service_fn(move |req| class_1(Arc::clone(&chunks), req));
        let body = if with {
            let app = ServiceBuilder::new()
                .layer(locks.clone())
                .layer(locks.lock_properties())
                .service(inner);
            app.oneshot(propfind())
                .await
                .unwrap()
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
        } else {
            let res = inner
                .oneshot(propfind().map(tower_locks::ReplayBody::stream))
                .await
                .unwrap();
            res.into_body().collect().await.unwrap().to_bytes()
        };
        let found = std::str::from_utf8(&body)
            .unwrap()
            .matches("<D:activelock>")
            .count();
        assert_eq!(found, if with { locked } else { 0 });
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

async fn measure<S: LockStore>(name: &str, store: Arc<S>, members: usize) {
    let mut locked = 0;
    for i in (0..members).step_by(10) {
        let path = ResourcePath::parse(&format!("/big/m{i}")).unwrap();
        store.create(NewLock::new(path)).await.unwrap();
        locked += 1;
    }
    let chunks = Arc::new(answer(members));
    let n = 20;
    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..5 {
        without.push(run(Arc::clone(&store), Arc::clone(&chunks), n, false, locked).await);
        with.push(run(Arc::clone(&store), Arc::clone(&chunks), n, true, locked).await);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (w, wo) = (median(&mut with), median(&mut without));
    println!(
        "{name:8} {members} members: {wo:9.0} µs without the layer, {w:9.0} µs with it (+{:.0} µs)",
        w - wo
    );
    store
        .remove_subtree(&ResourcePath::parse("/big/").unwrap())
        .await
        .unwrap();
}

/// One `response` of about 250 KiB (a resource with many dead properties), the layer's
/// largest, delivered whole and in 64-byte chunks: what small chunks cost.
async fn big_element() {
    let mut xml = String::from(
        r#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>/big/doc</D:href><D:propstat><D:prop>"#,
    );
    let mut i = 0;
    while xml.len() < 250 * 1024 {
        xml.push_str(&format!("<x:p{i} xmlns:x=\"urn:x\">value {i}</x:p{i}>"));
        i += 1;
    }
    xml.push_str(
        "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>",
    );
    let store = Arc::new(MemoryLockStore::new());
    store
        .create(NewLock::new(ResourcePath::parse("/big/doc").unwrap()))
        .await
        .unwrap();
    for chunk in [xml.len(), 16 * 1024, 64] {
        let chunks: Arc<Vec<Bytes>> = Arc::new(
            xml.as_bytes()
                .chunks(chunk)
                .map(Bytes::copy_from_slice)
                .collect(),
        );
        let micros = run(Arc::clone(&store), chunks, 5, true, 1).await;
        println!(
            "memory   one {} KiB response in chunks of {chunk:>6} bytes: {micros:9.0} µs",
            xml.len() / 1024
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let members: usize = std::env::var("MEMBERS")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000);
    measure("memory", Arc::new(MemoryLockStore::new()), members).await;
    big_element().await;
    #[cfg(feature = "redis")]
    if let Ok(url) = std::env::var("REDIS_URL") {
        let prefix = format!("tower-locks-propfind-{}", std::process::id());
        let client = redis::Client::open(url.as_str()).unwrap();
        let manager = client.get_connection_manager().await.unwrap();
        let store = tower_locks::RedisLockStore::from_manager(manager, &prefix).unwrap();
        measure("redis", Arc::new(store), members).await;
    }
}
