//! The layer in real stacks: readiness, auto traits, axum routers with other tower layers, and
//! a real hyper server on a loopback port.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use common::*;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_locks::{
    LockDepth, LockLayer, LockService, MemoryLockStore, ResponseBody, ResponseFuture,
};

#[test]
fn auto_traits() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<LockLayer>();
    send_sync::<LockService<axum::routing::Route>>();
    send_sync::<LockService<Kv>>();
    send::<ResponseBody<Body>>();
    send::<ResponseFuture<<Kv as Service<Request<Body>>>::Future, Body, std::convert::Infallible>>(
    );
    fn clone<T: Clone>() {}
    clone::<LockLayer>();
    clone::<LockService<Kv>>();
}

#[tokio::test(flavor = "current_thread")]
async fn backpressure_propagates_and_the_readied_instance_is_called() {
    let store = MemoryLockStore::new();
    let (mut svc, mut handle) =
        tower_test::mock::spawn_layer::<Request<Body>, Response<Body>, _>(LockLayer::new(store));
    handle.allow(0);
    tokio_test::assert_pending!(svc.poll_ready());
    handle.allow(1);
    tokio_test::assert_ready_ok!(svc.poll_ready());
    let fut = svc.call(
        Request::put("/x")
            .header("host", "h")
            .body(Body::empty())
            .unwrap(),
    );
    let respond = async move {
        let (req, send) = handle.next_request().await.expect("inner called");
        assert_eq!(req.uri(), "/x");
        assert_eq!(req.method(), "PUT");
        send.send_response(Response::new(Body::from("done")));
    };
    let (res, ()) = tokio::join!(fut, respond);
    let res = res.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"done");
}

/// A tiny axum app over a shared map: GET/HEAD answer 404 for missing documents.
fn docs_router(files: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>) -> Router {
    let get_files = files.clone();
    Router::new().route(
        "/d/{name}",
        get(
            move |axum::extract::Path(name): axum::extract::Path<String>| {
                let files = get_files.clone();
                async move {
                    if files.lock().unwrap().contains(&name) {
                        StatusCode::OK
                    } else {
                        StatusCode::NOT_FOUND
                    }
                }
            },
        )
        .put(
            move |axum::extract::Path(name): axum::extract::Path<String>| {
                let files = files.clone();
                async move {
                    if files.lock().unwrap().insert(name) {
                        StatusCode::CREATED
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            },
        ),
    )
}

#[tokio::test]
async fn axum_router_wrapped_whole_with_tower_http_layers_around() {
    let store = Arc::new(MemoryLockStore::new());
    let files = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::from([
        "old".to_owned(),
    ])));
    let dir = xlock(&*store, "/d/", LockDepth::Zero).await;
    // The router is declared the resource space, so the layer's HEAD probe and creation PUT
    // reach the GET and PUT handlers. TimeoutLayer outside needs `ResBody: Default`.
    let app = ServiceBuilder::new()
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(5),
        ))
        .layer(LockLayer::new(store.clone()).resource_space(docs_router(files.clone())))
        .service(docs_router(files.clone()));
    let put = |path: &str, if_header: Option<String>| {
        let mut b = Request::put(path).header("host", "h");
        if let Some(h) = if_header {
            b = b.header("if", h);
        }
        b.body(Body::empty()).unwrap()
    };
    // modifying an existing member of a depth-0-locked collection is allowed (the HEAD probe
    // found it), creating one is not
    assert_eq!(
        app.clone()
            .oneshot(put("/d/old", None))
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.clone()
            .oneshot(put("/d/new", None))
            .await
            .unwrap()
            .status(),
        StatusCode::LOCKED
    );
    let tagged = format!("</d/> (<{}>)", dir.token);
    assert_eq!(
        app.clone()
            .oneshot(put("/d/new", Some(tagged)))
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    // LOCK on an unmapped URL: HEAD → 404, then the PUT handler creates it
    let lock = Request::builder()
        .method("LOCK")
        .uri("/d/fresh")
        .header("if", format!("</d/> (<{}>)", dir.token))
        .body(Body::from(LOCKINFO_EXCLUSIVE))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(lock).await.unwrap().status(),
        StatusCode::CREATED
    );
    assert!(files.lock().unwrap().contains("fresh"));
    let res = app
        .oneshot(Request::get("/d/old").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// Served the way the docs say: `Router::layer`, with the router declared the resource space.
#[tokio::test]
async fn axum_serve_with_the_layered_router() {
    let store = Arc::new(MemoryLockStore::new());
    let files = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let routes = docs_router(files);
    let app = routes
        .clone()
        .layer(LockLayer::new(store).resource_space(routes));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client: hyper_util::client::legacy::Client<_, Body> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let lock = Request::builder()
        .method("LOCK")
        .uri(format!("http://{addr}/d/x"))
        .body(Body::from(LOCKINFO_EXCLUSIVE))
        .unwrap();
    assert_eq!(
        client.request(lock).await.unwrap().status(),
        StatusCode::CREATED
    );
    let put = Request::put(format!("http://{addr}/d/x"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        client.request(put).await.unwrap().status(),
        StatusCode::LOCKED
    );
    server.abort();
}

#[tokio::test]
async fn service_builder_and_service_new() {
    let store = Arc::new(MemoryLockStore::new());
    xlock(&*store, "/x", LockDepth::Zero).await;
    let svc = ServiceBuilder::new()
        .layer(LockLayer::new(store.clone()))
        .service(Kv::default());
    assert_eq!(
        send(svc, empty(req("PUT", "/x"))).await.status,
        StatusCode::LOCKED
    );
    let svc = LockService::new(Kv::default(), store);
    assert_eq!(
        send(svc.clone(), empty(req("PUT", "/x"))).await.status,
        StatusCode::LOCKED
    );
    let _inner: &Kv = svc.get_ref();
    assert!(format!("{svc:?}").starts_with("LockService"));
}

#[tokio::test]
async fn real_hyper_server_on_loopback() {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let store = Arc::new(MemoryLockStore::new());
    let kv = Kv::with_files(&["/f"]);
    let svc = ServiceBuilder::new()
        .map_request(|r: Request<hyper::body::Incoming>| r.map(Body::new))
        .layer(LockLayer::new(store.clone()))
        .service(kv.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        // bounded: serve a fixed number of connections, then stop
        for _ in 0..8 {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let svc = hyper_util::service::TowerToHyperService::new(svc.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{addr}");
    let lock_body = Body::from(LOCKINFO_EXCLUSIVE);
    let res = client
        .request(
            Request::builder()
                .method("LOCK")
                .uri(format!("{base}/f"))
                .header("depth", "0")
                .body(lock_body)
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let token = res.headers()["lock-token"]
        .to_str()
        .unwrap()
        .trim_matches(['<', '>'])
        .to_owned();
    let res = client
        .request(
            Request::put(format!("{base}/f"))
                .body(Body::from("x"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::LOCKED);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let doc = String::from_utf8(body.to_vec()).unwrap();
    let parsed = roxmltree::Document::parse(&doc).unwrap();
    assert_eq!(parsed.root_element().tag_name().name(), "error");
    // the tag is an absolute URI on the server's own authority
    let res = client
        .request(
            Request::put(format!("{base}/f"))
                .header("if", format!("<{base}/f> (<{token}>)"))
                .body(Body::from("y"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(kv.files.lock().unwrap()["/f"].0.as_ref(), b"y");
    let res = client
        .request(
            Request::builder()
                .method("UNLOCK")
                .uri(format!("{base}/f"))
                .header("lock-token", format!("<{token}>"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    server.abort();
}

#[tokio::test]
async fn layer_debug_is_readable() {
    let layer = LockLayer::new(MemoryLockStore::new());
    let s = format!("{layer:?}");
    assert!(
        s.starts_with("LockLayer") && s.contains("safe_methods"),
        "{s}"
    );
    let svc = layer.layer(Kv::default());
    drop(svc);
}

/// Sub-requests (the HEAD probe, the creation PUT) go to the declared resource space, never
/// through the wrapped service: they cannot wait for capacity that the request's own readied
/// service holds (with a concurrency limit of 1 inside the layer, that would deadlock).
#[tokio::test]
async fn sub_requests_do_not_deadlock_under_a_concurrency_limit() {
    let store = Arc::new(MemoryLockStore::new());
    let l = xlock(&*store, "/zero/", LockDepth::Zero).await;
    let kv = Kv::with_files(&["/zero/", "/zero/m", "/e"]);
    let svc = ServiceBuilder::new()
        .layer(LockLayer::new(store.clone()).resource_space(kv.clone()))
        .concurrency_limit(1)
        .service(kv);
    let run = |r: Request<Body>| tokio::time::timeout(Duration::from_secs(5), send(svc.clone(), r));
    // probe for existence (depth-0 parent lock not submitted, target exists)
    let a = run(empty(req("PUT", "/zero/m")))
        .await
        .expect("deadlocked on the HEAD probe");
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    // ETag probe
    let etag_if = format!("(<{}> [\"nope\"]) (Not [\"nope\"])", l.token);
    let a = run(empty(req("PUT", "/e").header("if", etag_if)))
        .await
        .expect("deadlocked on the ETag probe");
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    // LOCK on an unmapped URL: HEAD probe + creation PUT
    let lock = req("LOCK", "/new")
        .header("depth", "0")
        .body(Body::from(LOCKINFO_EXCLUSIVE))
        .unwrap();
    let a = run(lock).await.expect("deadlocked on LOCK sub-requests");
    assert_eq!(a.status, StatusCode::CREATED);
}
