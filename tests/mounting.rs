//! The layer under every mounting a user would try, each served by a real hyper server on
//! `127.0.0.1:0` and driven by a real HTTP client: axum's `Router::layer` (with and without a
//! declared resource space), `Router::route_layer`, `ServiceBuilder` around the whole router,
//! `nest` and `nest_service` under a prefix, `fallback_service`, a bare hyper service, and a
//! reverse proxy in front of another server.
//!
//! In each: a locked write without its token gets 423 and no handler runs; with the token it is
//! forwarded once; a member created in a depth-0-locked collection without the collection's
//! token gets 423; LOCK and UNLOCK work where the form lets them reach the layer (and fail
//! closed where it does not); a successful DELETE removes the locks; an `If` header with an
//! entity tag is decided (checked against the resource space when there is one, 412 when
//! nothing can check it); and no handler ever sees a method it was not routed for.

mod common;
#[path = "common/loopback.rs"]
mod loopback;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::LOCKINFO_EXCLUSIVE;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use loopback::{p, serve, take, BoxError, Loopback};
use tower::{Layer, Service, ServiceBuilder};
use tower_locks::{EmptyBody, LockDepth, LockLayer, LockQuery, LockStore, MemoryLockStore};

/// One handler run: the method its route was for, the method that came, the path.
type Run = (&'static str, String, String);

/// The documents and what their handlers saw.
#[derive(Clone, Default)]
struct Docs {
    versions: Arc<Mutex<BTreeMap<String, u32>>>,
    log: Arc<Mutex<Vec<Run>>>,
}

impl Docs {
    fn with(ids: &[&str]) -> Self {
        let docs = Docs::default();
        for id in ids {
            docs.versions.lock().unwrap().insert((*id).to_owned(), 1);
        }
        docs
    }

    fn note(&self, routed: &'static str, method: &Method, path: &str) {
        self.log
            .lock()
            .unwrap()
            .push((routed, method.to_string(), path.to_owned()));
    }

    /// How often a handler for `routed` ran on `path`.
    fn runs(&self, routed: &str, path: &str) -> usize {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(r, _, p)| *r == routed && p == path)
            .count()
    }

    /// Handlers that ran for a method they were not routed for (axum serves HEAD with GET).
    fn misrouted(&self) -> Vec<Run> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(r, m, _)| *r != m && !(*r == "GET" && m == "HEAD"))
            .cloned()
            .collect()
    }
}

fn etag(v: u32) -> String {
    format!("\"v{v}\"")
}

async fn read(
    State(docs): State<Docs>,
    method: Method,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Path(id): Path<String>,
) -> Response<Body> {
    docs.note("GET", &method, uri.path());
    let version = docs.versions.lock().unwrap().get(&id).copied();
    let mut res = Response::new(Body::empty());
    match version {
        Some(v) => {
            res.headers_mut().insert("etag", etag(v).parse().unwrap());
            *res.body_mut() = Body::from(format!("document {id}"));
        }
        None => *res.status_mut() = StatusCode::NOT_FOUND,
    }
    res
}

async fn write(
    State(docs): State<Docs>,
    method: Method,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> StatusCode {
    docs.note("PUT", &method, uri.path());
    let mut versions = docs.versions.lock().unwrap();
    if headers.get("if-none-match").is_some_and(|v| v == "*") && versions.contains_key(&id) {
        return StatusCode::PRECONDITION_FAILED;
    }
    match versions.get_mut(&id) {
        Some(v) => {
            *v += 1;
            StatusCode::NO_CONTENT
        }
        None => {
            versions.insert(id, 1);
            StatusCode::CREATED
        }
    }
}

async fn remove(
    State(docs): State<Docs>,
    method: Method,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Path(id): Path<String>,
) -> StatusCode {
    docs.note("DELETE", &method, uri.path());
    match docs.versions.lock().unwrap().remove(&id) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}

async fn listing(
    State(docs): State<Docs>,
    method: Method,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> String {
    docs.note("GET", &method, uri.path());
    docs.versions
        .lock()
        .unwrap()
        .keys()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n")
}

/// The application, without any lock layer.
fn routes(docs: &Docs) -> Router {
    Router::new()
        .route("/docs/", get(listing))
        .route("/docs/{id}", get(read).put(write).delete(remove))
        .with_state(docs.clone())
}

/// The router as a resource space (sub-requests carry an empty body).
fn space(
    router: Router,
) -> impl Service<
    Request<EmptyBody>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    ServiceBuilder::new()
        .map_request(|r: Request<EmptyBody>| r.map(Body::new))
        .service(router)
}

/// Serve `svc` on a loopback port.
/// A small reverse proxy: every request goes to `upstream` with the same path.
#[derive(Clone)]
struct Proxy {
    client: Client<HttpConnector, UnsyncBoxBody<Bytes, BoxError>>,
    upstream: SocketAddr,
}

impl Proxy {
    fn new(upstream: SocketAddr) -> Self {
        Proxy {
            client: Client::builder(TokioExecutor::new()).build_http(),
            upstream,
        }
    }
}

impl<B> Service<Request<B>> for Proxy
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<Body>, Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        parts.uri = format!("http://{}{path}", self.upstream).parse().unwrap();
        parts.headers.remove("host");
        let body = body.map_err(Into::into).boxed_unsync();
        let client = self.client.clone();
        Box::pin(async move {
            Ok(
                match client.request(Request::from_parts(parts, body)).await {
                    Ok(res) => res.map(Body::new),
                    Err(_) => {
                        let mut res = Response::new(Body::empty());
                        *res.status_mut() = StatusCode::BAD_GATEWAY;
                        res
                    }
                },
            )
        })
    }
}

/// One mounting, served.
struct Form {
    name: &'static str,
    addr: SocketAddr,
    /// The client-visible path of the documents collection.
    base: &'static str,
    store: Arc<MemoryLockStore>,
    docs: Docs,
    /// Whether the layer sees requests to paths no route matches (`route_layer` does not).
    unrouted: bool,
    /// Whether a resource space was declared (existence and ETags known).
    space: bool,
}

async fn forms() -> Vec<Form> {
    let mut forms = Vec::new();
    let docs_with = || Docs::with(&["a", "b", "c"]);

    let (store, docs) = (Arc::new(MemoryLockStore::new()), docs_with());
    let app = routes(&docs).layer(LockLayer::new(store.clone()));
    forms.push(Form {
        name: "Router::layer",
        addr: serve(app).await,
        base: "/docs/",
        store,
        docs,
        unrouted: true,
        space: false,
    });

    let (store, docs) = (Arc::new(MemoryLockStore::new()), docs_with());
    let app =
        routes(&docs).layer(LockLayer::new(store.clone()).resource_space(space(routes(&docs))));
    forms.push(Form {
        name: "Router::layer with a resource space",
        addr: serve(app).await,
        base: "/docs/",
        store,
        docs,
        unrouted: true,
        space: true,
    });

    let (store, docs) = (Arc::new(MemoryLockStore::new()), docs_with());
    let app = routes(&docs).route_layer(LockLayer::new(store.clone()));
    forms.push(Form {
        name: "Router::route_layer",
        addr: serve(app).await,
        base: "/docs/",
        store,
        docs,
        unrouted: false,
        space: false,
    });

    let (store, docs) = (Arc::new(MemoryLockStore::new()), docs_with());
    let app = ServiceBuilder::new()
        .layer(LockLayer::new(store.clone()).resource_space(space(routes(&docs))))
        .service(routes(&docs));
    forms.push(Form {
        name: "ServiceBuilder around the Router",
        addr: serve(app).await,
        base: "/docs/",
        store,
        docs,
        unrouted: true,
        space: true,
    });

    let (store, docs) = (Arc::new(MemoryLockStore::new()), docs_with());
    let layer = LockLayer::new(store.clone()).mount_prefix("/api").unwrap();
    let app = Router::new().nest("/api", routes(&docs).layer(layer));
    forms.push(Form {
        name: "nest with Router::layer",
        addr: serve(app).await,
        base: "/api/docs/",
        store,
        docs,
        unrouted: false,
        space: false,
    });

    let (store, docs) = (Arc::new(MemoryLockStore::new()), docs_with());
    let layer = LockLayer::new(store.clone())
        .mount_prefix("/api")
        .unwrap()
        .resource_space(space(routes(&docs)));
    let app = Router::new().nest_service("/api", layer.layer(routes(&docs)));
    forms.push(Form {
        name: "nest_service",
        addr: serve(app).await,
        base: "/api/docs/",
        store,
        docs,
        unrouted: true,
        space: true,
    });

    let (store, docs) = (Arc::new(MemoryLockStore::new()), docs_with());
    let app = Router::new().fallback_service(LockLayer::new(store.clone()).layer(routes(&docs)));
    forms.push(Form {
        name: "fallback_service",
        addr: serve(app).await,
        base: "/docs/",
        store,
        docs,
        unrouted: true,
        space: false,
    });

    // A bare hyper service: one function for every path and method.
    let (store, docs) = (Arc::new(MemoryLockStore::new()), docs_with());
    let router = routes(&docs);
    let bare = tower::service_fn(move |req: Request<hyper::body::Incoming>| {
        let mut router = router.clone();
        async move { router.call(req.map(Body::new)).await }
    });
    let app = LockLayer::new(store.clone()).layer(bare);
    forms.push(Form {
        name: "bare hyper service",
        addr: serve(app).await,
        base: "/docs/",
        store,
        docs,
        unrouted: true,
        space: false,
    });

    // A reverse proxy: the layer in front, the application on another server.
    let (store, docs) = (Arc::new(MemoryLockStore::new()), docs_with());
    let upstream = serve(routes(&docs)).await;
    let proxy = Proxy::new(upstream);
    let app = LockLayer::new(store.clone())
        .resource_space(proxy.clone())
        .layer(proxy);
    forms.push(Form {
        name: "reverse proxy",
        addr: serve(app).await,
        base: "/docs/",
        store,
        docs,
        unrouted: true,
        space: true,
    });
    forms
}

#[tokio::test]
async fn every_mounting_form_keeps_every_rule() {
    for form in forms().await {
        let name = form.name;
        let c = Loopback::new(form.addr);
        let doc = |id: &str| format!("{}{id}", form.base);

        // A locked write without its token: 423, and the handler never runs.
        let token_a = take(&form.store, &doc("a"), LockDepth::Zero).await;
        let (status, _, _) = c.send("PUT", &doc("a"), &[], "x").await;
        assert_eq!(status, StatusCode::LOCKED, "{name}: PUT without the token");
        assert_eq!(form.docs.runs("PUT", &doc("a")), 0, "{name}");
        // With the token: forwarded, once.
        let with_a = [("if", format!("(<{token_a}>)"))];
        let (status, _, _) = c.send("PUT", &doc("a"), &with_a, "x").await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{name}: PUT with the token");
        assert_eq!(form.docs.runs("PUT", &doc("a")), 1, "{name}");

        // An entity tag in `If`: checked against the resource space, or not known to hold.
        let (status, _, _) = c
            .send("PUT", &doc("b"), &[("if", format!("([{}])", etag(1)))], "x")
            .await;
        let want = if form.space {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::PRECONDITION_FAILED
        };
        assert_eq!(status, want, "{name}: If with the current ETag");
        let (status, _, _) = c
            .send(
                "PUT",
                &doc("b"),
                &[("if", format!("([{}])", etag(99)))],
                "x",
            )
            .await;
        assert_eq!(
            status,
            StatusCode::PRECONDITION_FAILED,
            "{name}: If with a stale ETag"
        );

        // LOCK and UNLOCK through the layer.
        let (status, headers, body) = c
            .send(
                "LOCK",
                &doc("b"),
                &[("depth", "0".into())],
                LOCKINFO_EXCLUSIVE,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{name}: LOCK {body}");
        let token = headers["lock-token"].to_str().unwrap().to_owned();
        let (status, _, _) = c.send("PUT", &doc("b"), &[], "x").await;
        assert_eq!(status, StatusCode::LOCKED, "{name}: PUT under the new lock");
        let (status, _, _) = c
            .send("UNLOCK", &doc("b"), &[("lock-token", token)], "")
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{name}: UNLOCK");
        let left = form
            .store
            .query(&LockQuery::new().covering(p(&doc("b"))))
            .await
            .unwrap();
        assert!(left.is_empty(), "{name}: lock on b left: {left:?}");

        // LOCK on a URL no route matches.
        let nowhere = form.base.replace("docs/", "nowhere");
        let (status, headers, _) = c.send("LOCK", &nowhere, &[], LOCKINFO_EXCLUSIVE).await;
        let held = form
            .store
            .query(&LockQuery::new().covering(p(&nowhere)))
            .await
            .unwrap();
        match (form.unrouted, form.space) {
            // `route_layer`, or a nested router: the outer router answers 404 itself; nothing is
            // locked (fail closed).
            (false, _) => assert_eq!((status, held.len()), (StatusCode::NOT_FOUND, 0), "{name}"),
            // The resource space cannot create it: the lock is rolled back.
            (true, true) => {
                assert!(status.is_client_error(), "{name}: {status}");
                assert!(held.is_empty(), "{name}");
            }
            // Nothing can create it: the URL is locked, nothing more.
            (true, false) => {
                assert_eq!((status, held.len()), (StatusCode::OK, 1), "{name}");
                let token = headers["lock-token"].to_str().unwrap().to_owned();
                let (status, _, _) = c
                    .send("UNLOCK", &nowhere, &[("lock-token", token)], "")
                    .await;
                assert_eq!(status, StatusCode::NO_CONTENT, "{name}");
            }
        }

        // A depth-0 lock on the collection: no new member without its token.
        let token_dir = take(&form.store, form.base, LockDepth::Zero).await;
        let (status, _, _) = c.send("PUT", &doc("new"), &[], "x").await;
        assert_eq!(status, StatusCode::LOCKED, "{name}: new member");
        assert_eq!(form.docs.runs("PUT", &doc("new")), 0, "{name}");
        let with_dir = [("if", format!("<{}> (<{token_dir}>)", form.base))];
        let (status, _, _) = c.send("PUT", &doc("new"), &with_dir, "x").await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{name}: new member with the token"
        );
        // An existing member may change without the collection's token when existence is
        // known; without a resource space it is not, and the create rule applies.
        let (status, _, _) = c.send("PUT", &doc("c"), &[], "x").await;
        let want = if form.space {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::LOCKED
        };
        assert_eq!(status, want, "{name}: existing member");

        // A successful DELETE removes the locks of what it removed.
        let token_c = take(&form.store, &doc("c"), LockDepth::Zero).await;
        let both = [(
            "if",
            format!(
                "<{}> (<{token_dir}>) <{}> (<{token_c}>)",
                form.base,
                doc("c")
            ),
        )];
        let (status, _, _) = c.send("DELETE", &doc("c"), &both, "").await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{name}: DELETE");
        let left = form
            .store
            .query(&LockQuery::new().covering(p(&doc("c"))))
            .await
            .unwrap();
        assert!(left.is_empty(), "{name}: DELETE left {left:?}");

        // Never a handler with a method it was not routed for.
        assert_eq!(form.docs.misrouted(), [], "{name}");
    }
}
