//! Mountings beyond the matrix of `tests/mounting.rs`, through axum's real `Router` on
//! loopback: what the resource space must never be asked to do, encoded slashes under a
//! wildcard route, creation under a mount prefix, failed removals, probes that fail, MOVE.

#[path = "common/loopback.rs"]
mod loopback;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use loopback::{p, serve, take};
use tower::{Layer, Service, ServiceBuilder};
use tower_locks::{LockDepth, LockLayer, LockQuery, LockStore, MemoryLockStore};

const LOCKINFO: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;

/// Every handler run: (handler, method, key).
type HandlerLog = Arc<Mutex<Vec<(&'static str, String, String)>>>;

/// Files by key, and every handler run as (handler, method, key).
#[derive(Clone, Default)]
struct Files {
    data: Arc<Mutex<BTreeMap<String, String>>>,
    log: HandlerLog,
}

impl Files {
    fn with(entries: &[(&str, &str)]) -> Self {
        let f = Files::default();
        for (k, v) in entries {
            f.data.lock().unwrap().insert((*k).into(), (*v).into());
        }
        f
    }
    fn get(&self, k: &str) -> Option<String> {
        self.data.lock().unwrap().get(k).cloned()
    }
    fn runs(&self, handler: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(h, _, _)| *h == handler)
            .count()
    }
}

/// A PUT handler as most applications write it: it stores the body, it does not evaluate
/// `If-None-Match`.
async fn store_body(
    State(f): State<Files>,
    method: http::Method,
    Path(key): Path<String>,
    body: Bytes,
) -> StatusCode {
    f.log
        .lock()
        .unwrap()
        .push(("PUT", method.to_string(), key.clone()));
    let new = f
        .data
        .lock()
        .unwrap()
        .insert(key, String::from_utf8_lossy(&body).into_owned())
        .is_none();
    if new {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    }
}

async fn read_body(
    State(f): State<Files>,
    method: http::Method,
    Path(key): Path<String>,
) -> Response<Body> {
    f.log
        .lock()
        .unwrap()
        .push(("GET", method.to_string(), key.clone()));
    match f.get(&key) {
        Some(v) => {
            let mut r = Response::new(Body::from(v.clone()));
            r.headers_mut()
                .insert("etag", format!("\"{}\"", v.len()).parse().unwrap());
            r
        }
        None => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    }
}

fn as_space(
    router: Router,
) -> impl Service<
    Request<tower_locks::EmptyBody>,
    Response = Response<Body>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    ServiceBuilder::new()
        .map_request(|r: Request<tower_locks::EmptyBody>| r.map(Body::new))
        .service(router)
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (StatusCode, HeaderMap, String) {
    loopback::Loopback::new(addr)
        .send(method, path, headers, body)
        .await
}

/// A LOCK on an existing resource whose existence the declared resource space cannot tell
/// (HEAD answered 405: the route has PUT but no GET) locks it and creates nothing: the empty
/// PUT would reach a handler that, like most, ignores `If-None-Match` (D3).
#[tokio::test]
async fn lock_on_existing_resource_with_unknown_existence_does_not_overwrite_it() {
    let files = Files::with(&[("a", "precious contents")]);
    let routes = Router::new()
        .route("/docs/{key}", put(store_body))
        .with_state(files.clone());
    let store = Arc::new(MemoryLockStore::new());
    let app = routes
        .clone()
        .layer(LockLayer::new(store.clone()).resource_space(as_space(routes)));
    let addr = serve(app).await;

    let (status, _, body) = send(addr, "LOCK", "/docs/a", &[], LOCKINFO).await;
    assert_eq!(status, StatusCode::OK, "LOCK: {body}");
    assert_eq!(files.runs("PUT"), 0, "no handler was asked to write");
    assert_eq!(
        files.get("a").as_deref(),
        Some("precious contents"),
        "LOCK answered {status}; the PUT handler ran {} time(s)",
        files.runs("PUT")
    );
}

/// Under `Router::layer`, a wildcard route's `Path<String>` percent-decodes `%2F`, so
/// `/files/a%2Fb` would write the file the application calls `a/b`, which the layer judges as
/// `/files/a/b`'s lock would not cover: an encoded slash in a guarded path is a 400, in the
/// request path, `Destination` and `If` tags (D21), unless allowed.
#[tokio::test]
async fn encoded_slash_does_not_bypass_the_lock_of_a_wildcard_route() {
    let files = Files::with(&[("a/b", "v1")]);
    let routes = Router::new()
        .route("/files/{*key}", get(read_body).put(store_body))
        .with_state(files.clone());
    let store = Arc::new(MemoryLockStore::new());
    let app = routes.layer(LockLayer::new(store.clone()));
    let addr = serve(app).await;

    let (status, _, _) = send(
        addr,
        "LOCK",
        "/files/a/b",
        &[("depth", "0".into())],
        LOCKINFO,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(addr, "PUT", "/files/a/b", &[], "v2").await;
    assert_eq!(status, StatusCode::LOCKED, "the plain path is guarded");

    for (method, path, headers) in [
        ("PUT", "/files/a%2Fb", vec![]),
        ("PUT", "/files/a%2fb", vec![]),
        (
            "COPY",
            "/files/x",
            vec![("destination", "/files/a%2Fb".to_owned())],
        ),
        (
            "PUT",
            "/files/x",
            vec![("if", "</files/a%2Fb> (Not <urn:x>)".to_owned())],
        ),
    ] {
        let (status, _, _) = send(addr, method, path, &headers, "v2").await;
        assert_eq!(
            (status, files.get("a/b").as_deref()),
            (StatusCode::BAD_REQUEST, Some("v1")),
            "{method} {path} {headers:?}"
        );
    }
    assert_eq!(files.runs("PUT"), 0, "no write reached a handler");
    // Reads pass untouched; a layer told that `%2F` stays in a name judges it as one segment.
    let (status, _, _) = send(addr, "GET", "/files/a%2Fb", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    let routes = Router::new()
        .route("/files/{*key}", get(read_body).put(store_body))
        .with_state(files.clone());
    let app = routes.layer(LockLayer::new(store).allow_encoded_slashes(true));
    let addr = serve(app).await;
    let (status, _, _) = send(addr, "PUT", "/files/c%2Fd", &[], "v3").await;
    assert_eq!(status, StatusCode::CREATED);
}

/// Seen by `cond_put`: (path as the client sent it, `If-None-Match` it carried).
type PutLog = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A PUT handler that honours `If-None-Match: *` and logs what it saw.
async fn cond_put(
    State((f, log)): State<(Files, PutLog)>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: Bytes,
) -> StatusCode {
    let inm = headers
        .get("if-none-match")
        .map(|v| v.to_str().unwrap().to_owned());
    log.lock()
        .unwrap()
        .push((uri.path().to_owned(), inm.clone()));
    let mut data = f.data.lock().unwrap();
    if inm.as_deref() == Some("*") && data.contains_key(&key) {
        return StatusCode::PRECONDITION_FAILED;
    }
    match data.insert(key, String::from_utf8_lossy(&body).into_owned()) {
        None => StatusCode::CREATED,
        Some(_) => StatusCode::NO_CONTENT,
    }
}

async fn cond_get(
    State((f, _)): State<(Files, PutLog)>,
    Path(key): Path<String>,
) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    match f.get(&key) {
        Some(v) => {
            r.headers_mut()
                .insert("etag", format!("\"{}\"", v.len()).parse().unwrap());
        }
        None => *r.status_mut() = StatusCode::NOT_FOUND,
    }
    r
}

async fn cond_delete(State((f, _)): State<(Files, PutLog)>, Path(key): Path<String>) -> StatusCode {
    match f.data.lock().unwrap().remove(&key) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}

fn cond_routes(f: &Files, log: &PutLog) -> Router {
    Router::new()
        .route(
            "/docs/{key}",
            get(cond_get).put(cond_put).delete(cond_delete),
        )
        .with_state((f.clone(), log.clone()))
}

/// A LOCK on a new, routed URL under `nest_service` with a resource space: 201, the
/// PUT handler ran once, at the client-visible path (the creation PUT was stripped of the
/// mount prefix), with `If-None-Match: *`.
#[tokio::test]
async fn lock_on_a_new_url_creates_it_through_the_space_under_a_prefix() {
    let (files, log) = (Files::default(), PutLog::default());
    let store = Arc::new(MemoryLockStore::new());
    let layer = LockLayer::new(store.clone())
        .mount_prefix("/api")
        .unwrap()
        .resource_space(as_space(cond_routes(&files, &log)));
    let app = Router::new().nest_service("/api", layer.layer(cond_routes(&files, &log)));
    let addr = serve(app).await;

    let (status, _, body) = send(addr, "LOCK", "/api/docs/new", &[], LOCKINFO).await;
    assert_eq!(status, StatusCode::CREATED, "LOCK on a new URL: {body}");
    assert_eq!(files.get("new").as_deref(), Some(""));
    assert_eq!(
        *log.lock().unwrap(),
        [("/docs/new".to_owned(), Some("*".to_owned()))],
        "one creation PUT, stripped of the prefix, with If-None-Match: *"
    );
    let held = store
        .query(&LockQuery::new().covering(p("/api/docs/new")))
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
}

/// A DELETE the handler refuses (404 here) leaves the locks alone.
#[tokio::test]
async fn a_failed_delete_keeps_the_locks() {
    let (files, log) = (Files::default(), PutLog::default());
    let store = Arc::new(MemoryLockStore::new());
    let app = cond_routes(&files, &log).layer(LockLayer::new(store.clone()));
    let addr = serve(app).await;

    let token = take(&store, "/docs/ghost", LockDepth::Zero).await;
    let (status, _, _) = send(
        addr,
        "DELETE",
        "/docs/ghost",
        &[("if", format!("(<{token}>)"))],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let held = store
        .query(&LockQuery::new().covering(p("/docs/ghost")))
        .await
        .unwrap();
    assert_eq!(
        held.len(),
        1,
        "the lock of a resource the DELETE did not remove"
    );
}

/// A resource space that cannot tell (HEAD answered 500) leaves existence unknown: an
/// `If` list with `Not [etag]` is not known to hold (412), never treated as "missing".
#[tokio::test]
async fn a_probe_answered_500_is_unknown_not_missing() {
    let (files, log) = (Files::with(&[("a", "x")]), PutLog::default());
    let store = Arc::new(MemoryLockStore::new());
    let broken = Router::new().route(
        "/docs/{key}",
        get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
    );
    let app = cond_routes(&files, &log)
        .layer(LockLayer::new(store.clone()).resource_space(as_space(broken)));
    let addr = serve(app).await;

    let (status, _, _) = send(
        addr,
        "PUT",
        "/docs/a",
        &[("if", "(Not [\"zz\"])".into())],
        "y",
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert!(log.lock().unwrap().is_empty(), "the PUT handler never ran");
}

/// MOVE onto a locked destination without its token: 423, in front of a router without
/// a MOVE route (forwarded, it would be axum's 405).
#[tokio::test]
async fn move_onto_a_locked_destination_is_refused() {
    let (files, log) = (Files::with(&[("a", "x")]), PutLog::default());
    let store = Arc::new(MemoryLockStore::new());
    let app = cond_routes(&files, &log).layer(LockLayer::new(store.clone()));
    let addr = serve(app).await;

    take(&store, "/docs/x", LockDepth::Zero).await;
    let (status, _, _) = send(
        addr,
        "MOVE",
        "/docs/a",
        &[("destination", "/docs/x".into())],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::LOCKED);
}

/// `MethodRouter::route_layer` wraps one route's methods only: a write of that route is judged
/// (423 without the token, forwarded once with it), while LOCK and UNLOCK get axum's 405 and
/// lock nothing, as the README's table says: it fails closed, never silently.
#[tokio::test]
async fn a_method_router_layer_guards_its_methods_and_cannot_lock() {
    let files = Files::with(&[("a", "v1")]);
    let store = Arc::new(MemoryLockStore::new());
    let app = Router::new()
        .route(
            "/docs/{key}",
            get(read_body)
                .put(store_body)
                .route_layer(LockLayer::new(store.clone())),
        )
        .with_state(files.clone());
    let addr = serve(app).await;

    let (status, _, _) = send(addr, "LOCK", "/docs/a", &[], LOCKINFO).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(store
        .query(&LockQuery::new().covering(p("/docs/a")))
        .await
        .unwrap()
        .is_empty());
    let token = take(&store, "/docs/a", LockDepth::Zero).await;
    let (status, _, _) = send(addr, "PUT", "/docs/a", &[], "v2").await;
    assert_eq!(
        (status, files.get("a").as_deref()),
        (StatusCode::LOCKED, Some("v1"))
    );
    let if_token = [("if", format!("(<{token}>)"))];
    let (status, _, _) = send(addr, "PUT", "/docs/a", &if_token, "v2").await;
    assert_eq!(
        (status, files.get("a").as_deref()),
        (StatusCode::NO_CONTENT, Some("v2"))
    );
    assert_eq!(files.runs("PUT"), 1);
}

/// With feature `axum`, `router.with_locks(layer)` is the idiomatic mounting with the router
/// as resource space: an existing member of a depth-0-locked collection is written without
/// the collection's token (the router's HEAD says it exists), a new one needs it, an `If`
/// list's entity tag is judged, and a LOCK on a URL the router answers 404 for creates it
/// through the PUT handler, with `If-None-Match: *`.
#[cfg(feature = "axum")]
#[tokio::test]
async fn with_locks_mounts_the_layer_with_the_router_as_resource_space() {
    use tower_locks::RouterLocksExt;
    let (files, log) = (Files::with(&[("a", "x")]), PutLog::default());
    let store = Arc::new(MemoryLockStore::new());
    let app = cond_routes(&files, &log).with_locks(LockLayer::new(store.clone()));
    let addr = serve(app).await;

    take(&store, "/docs", LockDepth::Zero).await;
    let (status, _, _) = send(addr, "PUT", "/docs/a", &[], "y").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "an existing member");
    let (status, _, _) = send(addr, "PUT", "/docs/new", &[], "y").await;
    assert_eq!(status, StatusCode::LOCKED, "a new member");
    let stale = [("if", "([\"0\"])".to_owned())];
    let (status, _, _) = send(addr, "PUT", "/docs/a", &stale, "z").await;
    assert_eq!(
        status,
        StatusCode::PRECONDITION_FAILED,
        "a stale entity tag"
    );
    let current = [("if", "([\"1\"])".to_owned())];
    let (status, _, _) = send(addr, "PUT", "/docs/a", &current, "z").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "the current entity tag");

    let free = Arc::new(MemoryLockStore::new());
    let (files, log) = (Files::default(), PutLog::default());
    let app = cond_routes(&files, &log).with_locks(LockLayer::new(free));
    let addr = serve(app).await;
    let (status, _, body) = send(addr, "LOCK", "/docs/fresh", &[], LOCKINFO).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        *log.lock().unwrap(),
        [("/docs/fresh".to_owned(), Some("*".to_owned()))]
    );
}

/// `with_locks` declares the router as it stands as the resource space, so its probes pass
/// none of the layers added around it afterwards, authorization included. A client refused
/// `/secret/plan` names it in an `If` list with an entity tag: the layer does not probe it (the
/// request does not act on it), so the handler never runs and a right guess of its entity tag
/// is answered as a wrong one.
#[cfg(feature = "axum")]
#[tokio::test]
async fn an_if_header_is_no_oracle_for_resources_behind_authorization() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::extract::Request as AxumRequest;
    use axum::middleware::{from_fn, Next};
    use axum::response::IntoResponse;
    use tower_locks::RouterLocksExt;

    let secret_runs = Arc::new(AtomicUsize::new(0));
    let runs = secret_runs.clone();
    let secret = move || {
        runs.fetch_add(1, Ordering::SeqCst);
        async { ([("etag", "\"v1\"")], "the board's salary plan") }
    };
    let routes: Router = Router::new()
        .route("/secret/{id}", get(secret))
        .route("/public/{id}", put(|| async { StatusCode::NO_CONTENT }));
    async fn authorize(req: AxumRequest, next: Next) -> axum::response::Response {
        match req.uri().path().starts_with("/secret") {
            true => StatusCode::FORBIDDEN.into_response(),
            false => next.run(req).await,
        }
    }
    let app: Router = routes
        .with_locks(LockLayer::new(MemoryLockStore::new()))
        .layer(from_fn(authorize));
    let addr = serve(app).await;
    assert_eq!(
        send(addr, "GET", "/secret/plan", &[], "").await.0,
        StatusCode::FORBIDDEN
    );
    let guess = |tag: &str| [("if", format!("</secret/plan> ([\"{tag}\"])"))];
    let right = send(addr, "PUT", "/public/a", &guess("v1"), "").await.0;
    let wrong = send(addr, "PUT", "/public/a", &guess("v9"), "").await.0;
    assert_eq!((right, wrong), (wrong, StatusCode::PRECONDITION_FAILED));
    assert_eq!(
        secret_runs.load(Ordering::SeqCst),
        0,
        "the secret handler ran"
    );
}

/// Files by the path the client sent (`OriginalUri`), for routers nested under a prefix: GET
/// and HEAD read, PUT writes, and the route's fallback (axum has no `MethodFilter` for COPY or
/// MOVE) copies or moves to the `Destination` path. Every run is logged as (handler, method,
/// path).
fn uri_routes(files: &Files) -> Router {
    Router::new()
        .route("/docs/{id}", uri_methods())
        .with_state(files.clone())
}

/// The methods of [`uri_routes`]'s route.
fn uri_methods() -> axum::routing::MethodRouter<Files> {
    use axum::extract::OriginalUri;
    async fn read(
        State(f): State<Files>,
        m: http::Method,
        OriginalUri(uri): OriginalUri,
    ) -> Response<Body> {
        f.log
            .lock()
            .unwrap()
            .push(("GET", m.to_string(), uri.path().to_owned()));
        match f.get(uri.path()) {
            Some(v) => Response::new(Body::from(v)),
            None => {
                let mut r = Response::new(Body::empty());
                *r.status_mut() = StatusCode::NOT_FOUND;
                r
            }
        }
    }
    async fn write(
        State(f): State<Files>,
        m: http::Method,
        OriginalUri(uri): OriginalUri,
        body: Bytes,
    ) -> StatusCode {
        f.log
            .lock()
            .unwrap()
            .push(("PUT", m.to_string(), uri.path().to_owned()));
        let body = String::from_utf8_lossy(&body).into_owned();
        match f.data.lock().unwrap().insert(uri.path().to_owned(), body) {
            None => StatusCode::CREATED,
            Some(_) => StatusCode::NO_CONTENT,
        }
    }
    async fn copy_or_move(
        State(f): State<Files>,
        m: http::Method,
        OriginalUri(uri): OriginalUri,
        headers: HeaderMap,
    ) -> StatusCode {
        f.log
            .lock()
            .unwrap()
            .push(("DAV", m.to_string(), uri.path().to_owned()));
        let dest = headers.get("destination").and_then(|v| v.to_str().ok());
        let mut data = f.data.lock().unwrap();
        match (m.as_str(), dest) {
            ("COPY" | "MOVE", Some(dest)) => {
                let Some(v) = data.get(uri.path()).cloned() else {
                    return StatusCode::NOT_FOUND;
                };
                if m.as_str() == "MOVE" {
                    data.remove(uri.path());
                }
                match data.insert(dest.to_owned(), v) {
                    None => StatusCode::CREATED,
                    Some(_) => StatusCode::NO_CONTENT,
                }
            }
            _ => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
    get(read).put(write).fallback(copy_or_move)
}

/// The lock roots a LOCK answer names (`DAV:lockroot` hrefs).
fn lockroots(body: &str) -> Vec<String> {
    body.split("<D:lockroot><D:href>")
        .skip(1)
        .filter_map(|s| s.split("</D:href>").next())
        .map(str::to_owned)
        .collect()
}

/// Every lock the store holds, by root href.
#[cfg(feature = "axum")]
async fn all_roots(store: &MemoryLockStore) -> Vec<String> {
    let all = store
        .query(&LockQuery::new().subtree(p("/")))
        .await
        .unwrap();
    let mut roots: Vec<String> = all.iter().map(|l| l.root.href()).collect();
    roots.sort();
    roots
}

/// With feature `axum`, a layer inside `nest` under a prefix with a path parameter
/// (`/t/{tenant}`): the router strips the prefix from the path the layer sees, `Destination`
/// and `If` tags keep it, and no mount prefix can name it. Every guarded request, a COPY onto
/// another tenant's file included, gets a 500 saying so; reads pass.
#[cfg(feature = "axum")]
#[tokio::test]
async fn a_layer_inside_a_nest_under_a_path_parameter_refuses_every_guarded_request() {
    let files = Files::with(&[
        ("/t/alice/docs/x", "scratch"),
        ("/t/alice/docs/a", "precious"),
    ]);
    let store = Arc::new(MemoryLockStore::new());
    // The pattern itself as a mount prefix names a literal path, not the nest.
    let literal = LockLayer::new(store.clone())
        .mount_prefix("/t/{tenant}")
        .unwrap();
    for layer in [LockLayer::new(store.clone()), literal] {
        let app = Router::new().nest("/t/{tenant}", uri_routes(&files).layer(layer));
        let addr = serve(app).await;
        let to_a = vec![("destination", "/t/alice/docs/a".to_owned())];
        let token = vec![("lock-token", "<urn:uuid:0>".to_owned())];
        for (method, path, headers, body) in [
            ("LOCK", "/t/alice/docs/a", vec![], LOCKINFO),
            ("PUT", "/t/bob/docs/a", vec![], "bob's"),
            ("COPY", "/t/alice/docs/x", to_a, ""),
            ("UNLOCK", "/t/alice/docs/a", token, ""),
        ] {
            let (status, _, text) = send(addr, method, path, &headers, body).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{method} {path}");
            assert!(
                text.contains("mounted under a nest it was not told about")
                    && text.contains("/t/{tenant}")
                    && text.contains("outside the nest"),
                "{method} {path}: {text}"
            );
        }
    }
    let app = Router::new().nest(
        "/t/{tenant}",
        uri_routes(&files).layer(LockLayer::new(store.clone())),
    );
    let addr = serve(app).await;
    assert_eq!(files.get("/t/alice/docs/a").as_deref(), Some("precious"));
    assert_eq!(
        files.runs("PUT") + files.runs("DAV"),
        0,
        "no write reached a handler"
    );
    assert!(all_roots(&store).await.is_empty(), "nothing was locked");
    let (status, _, text) = send(addr, "GET", "/t/alice/docs/a", &[], "").await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "precious"));
}

/// With feature `axum`, a layer inside `nest("/api", ..)` whose `mount_prefix` was forgotten,
/// or names another prefix, or only the outer one of two nested nests, fails closed: every
/// guarded request gets a 500 telling which `mount_prefix` to set; reads pass.
#[cfg(feature = "axum")]
#[tokio::test]
async fn a_layer_inside_a_nest_it_was_not_told_about_refuses_every_guarded_request() {
    let files = Files::with(&[("/api/docs/x", "scratch"), ("/api/docs/a", "precious")]);
    let store = Arc::new(MemoryLockStore::new());
    let forgotten = LockLayer::new(store.clone());
    let other = LockLayer::new(store.clone()).mount_prefix("/dav").unwrap();
    let outer_only = LockLayer::new(store.clone()).mount_prefix("/v1").unwrap();
    let apps = [
        (
            "no mount prefix",
            Router::new().nest("/api", uri_routes(&files).layer(forgotten)),
            "/api",
        ),
        (
            "another prefix",
            Router::new().nest("/api", uri_routes(&files).layer(other)),
            "/api",
        ),
        (
            "the outer nest only",
            Router::new().nest(
                "/v1",
                Router::new().nest("/api", uri_routes(&files).layer(outer_only)),
            ),
            "/v1/api",
        ),
    ];
    for (name, app, prefix) in apps {
        let addr = serve(app).await;
        let to_a = [("destination", format!("{prefix}/docs/a"))];
        let (status, _, text) = send(addr, "COPY", &format!("{prefix}/docs/x"), &to_a, "").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{name}: {text}");
        assert!(
            text.contains("mounted under a nest it was not told about")
                && text.contains(&format!("mount_prefix(\"{prefix}\")")),
            "{name}: {text}"
        );
        let (status, _, _) = send(addr, "LOCK", &format!("{prefix}/docs/a"), &[], LOCKINFO).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{name}");
        let (status, _, _) = send(addr, "GET", &format!("{prefix}/docs/x"), &[], "").await;
        assert_ne!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{name}: reads pass"
        );
    }
    assert_eq!(files.get("/api/docs/a").as_deref(), Some("precious"));
    assert_eq!(files.runs("DAV"), 0, "no COPY reached a handler");
    assert!(all_roots(&store).await.is_empty(), "nothing was locked");
}

/// With feature `axum`, a layer inside `nest` told the prefix with `mount_prefix` (the one
/// nest, or the two nested nests joined) guards in the client's path space: a LOCK is rooted
/// at the path the client sent, and a COPY onto the locked resource needs its token.
#[cfg(feature = "axum")]
#[tokio::test]
async fn a_layer_inside_a_nest_named_by_its_mount_prefix_guards_in_client_space() {
    for (prefix, nests) in [("/api", &["/api"][..]), ("/v1/api", &["/v1", "/api"][..])] {
        let files = Files::with(&[
            (&*format!("{prefix}/docs/x"), "scratch"),
            (&*format!("{prefix}/docs/a"), "precious"),
        ]);
        let store = Arc::new(MemoryLockStore::new());
        let layer = LockLayer::new(store.clone()).mount_prefix(prefix).unwrap();
        let mut app = uri_routes(&files).layer(layer);
        for nest in nests.iter().rev() {
            app = Router::new().nest(nest, app);
        }
        let addr = serve(app).await;
        let a = format!("{prefix}/docs/a");
        let (status, headers, body) = send(addr, "LOCK", &a, &[], LOCKINFO).await;
        assert_eq!(status, StatusCode::OK, "{prefix}: {body}");
        assert_eq!(lockroots(&body), [a.as_str()], "{prefix}");
        assert_eq!(all_roots(&store).await, [a.as_str()], "{prefix}");
        let token = headers["lock-token"].to_str().unwrap().to_owned();

        let x = format!("{prefix}/docs/x");
        let to_a = [("destination", a.clone())];
        let (status, _, _) = send(addr, "COPY", &x, &to_a, "").await;
        assert_eq!(
            status,
            StatusCode::LOCKED,
            "{prefix}: COPY without the token"
        );
        assert_eq!(files.get(&a).as_deref(), Some("precious"));
        let with_token = [
            ("destination", a.clone()),
            ("if", format!("<{a}> ({token})")),
        ];
        let (status, _, _) = send(addr, "COPY", &x, &with_token, "").await;
        assert_eq!(
            status,
            StatusCode::NO_CONTENT,
            "{prefix}: COPY with the token"
        );
        assert_eq!(files.get(&a).as_deref(), Some("scratch"));
    }
}

/// A layer outside `nest` (`Router::layer` on the router that calls it, which wraps the nested
/// routes before they strip their prefix) sees the client's path, a prefix with a path
/// parameter included: alice's lock is rooted at her path, bob's file is not in its way, and a
/// COPY onto alice's locked file needs her token.
#[tokio::test]
async fn a_layer_outside_a_nest_under_a_path_parameter_guards_in_client_space() {
    let files = Files::with(&[
        ("/t/alice/docs/x", "scratch"),
        ("/t/alice/docs/a", "precious"),
        ("/t/bob/docs/a", "bob's"),
    ]);
    let store = Arc::new(MemoryLockStore::new());
    let app = Router::new()
        .nest("/t/{tenant}", uri_routes(&files))
        .layer(LockLayer::new(store.clone()));
    let addr = serve(app).await;

    let (status, _, body) = send(addr, "LOCK", "/t/alice/docs/a", &[], LOCKINFO).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(lockroots(&body), ["/t/alice/docs/a"]);
    let (status, _, _) = send(addr, "PUT", "/t/bob/docs/a", &[], "bob v2").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "bob's file is not locked");
    let to_a = [("destination", "/t/alice/docs/a".to_owned())];
    let (status, _, _) = send(addr, "COPY", "/t/alice/docs/x", &to_a, "").await;
    assert_eq!(status, StatusCode::LOCKED);
    assert_eq!(files.get("/t/alice/docs/a").as_deref(), Some("precious"));
}

/// `MethodRouter::layer` wraps the route's fallback too, through which axum routes COPY, MOVE
/// and LOCK (it has no `MethodFilter` for them): COPY onto and MOVE of a locked resource are
/// refused without its token, and LOCK is answered by the layer. (`MethodRouter::route_layer`
/// does not wrap the fallback: the README's mounting table says to use `layer` for such
/// routes.)
#[tokio::test]
async fn a_method_router_layer_guards_what_its_fallback_serves() {
    let files = Files::with(&[("/docs/x", "scratch"), ("/docs/a", "precious")]);
    let store = Arc::new(MemoryLockStore::new());
    let app = Router::new()
        .route(
            "/docs/{id}",
            uri_methods().layer(LockLayer::new(store.clone())),
        )
        .with_state(files.clone());
    let addr = serve(app).await;
    let (status, _, body) = send(addr, "LOCK", "/docs/a", &[], LOCKINFO).await;
    assert_eq!(
        (status, lockroots(&body)),
        (StatusCode::OK, vec!["/docs/a".to_owned()])
    );

    let to_a = [("destination", "/docs/a".to_owned())];
    let (copy, _, _) = send(addr, "COPY", "/docs/x", &to_a, "").await;
    let to_b = [("destination", "/docs/b".to_owned())];
    let (mv, _, _) = send(addr, "MOVE", "/docs/a", &to_b, "").await;
    assert_eq!((copy, mv), (StatusCode::LOCKED, StatusCode::LOCKED));
    assert_eq!(files.get("/docs/a").as_deref(), Some("precious"));
    assert_eq!(files.runs("DAV"), 0);
}

/// Under `MethodRouter::route_layer`, LOCK gets axum's 405, so the README recommends
/// `advertise_dav(false)` there: the route's OPTIONS answer then names neither class 2 nor
/// LOCK.
#[tokio::test]
async fn advertise_dav_false_under_a_method_router_route_layer_advertises_no_locking() {
    let files = Files::with(&[("a", "v1")]);
    let store = Arc::new(MemoryLockStore::new());
    let app = Router::new()
        .route(
            "/docs/{key}",
            get(read_body)
                .put(store_body)
                .options(|| async { ([("allow", "GET, HEAD, PUT, OPTIONS")], "") })
                .route_layer(LockLayer::new(store).advertise_dav(false)),
        )
        .with_state(files);
    let addr = serve(app).await;
    let (status, headers, _) = send(addr, "OPTIONS", "/docs/a", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["allow"], "GET, HEAD, PUT, OPTIONS");
    assert!(headers.get("dav").is_none(), "{headers:?}");
}

/// With the router as resource space, `/files//a` is `/files/a` to the layer but the key `/a`
/// to the wildcard route: a request path or `Destination` sent with an empty segment is never
/// probed as the path it collapses to (D23), its existence and entity tag are unknown. So
/// under a depth-0 lock on `/files/`, `PUT /files//a` is judged as the new member it may be
/// (423 without the collection's token), and a COPY onto `/files//a` on the condition of
/// `/files/a`'s entity tag is a 412, not a copy to a new key. A canonical path is probed as
/// before: an existing member is written without the collection's token.
#[cfg(feature = "axum")]
#[tokio::test]
async fn a_duplicate_slash_is_never_probed_as_the_path_it_collapses_to() {
    use tower_locks::RouterLocksExt;
    async fn copy(
        State(f): State<Files>,
        Path(key): Path<String>,
        headers: HeaderMap,
    ) -> StatusCode {
        f.log
            .lock()
            .unwrap()
            .push(("DAV", "COPY".into(), key.clone()));
        let dest = headers["destination"].to_str().unwrap();
        let dest = dest.strip_prefix("/files/").unwrap().to_owned();
        let mut data = f.data.lock().unwrap();
        let Some(v) = data.get(&key).cloned() else {
            return StatusCode::NOT_FOUND;
        };
        match data.insert(dest, v) {
            None => StatusCode::CREATED,
            Some(_) => StatusCode::NO_CONTENT,
        }
    }
    let files = Files::with(&[("a", "v1"), ("x", "scratch")]);
    let routes = Router::new()
        .route(
            "/files/{*key}",
            get(read_body).put(store_body).fallback(copy),
        )
        .with_state(files.clone());
    let app = routes.with_locks(LockLayer::new(MemoryLockStore::new()));
    let addr = serve(app).await;
    let tagged = [
        ("destination", "/files//a".to_owned()),
        ("if", "</files//a> ([\"2\"])".to_owned()),
    ];
    let (status, _, _) = send(addr, "COPY", "/files/x", &tagged, "").await;
    assert_eq!(
        status,
        StatusCode::PRECONDITION_FAILED,
        "the entity tag of /files//a is unknown"
    );

    let store = Arc::new(MemoryLockStore::new());
    let routes = Router::new()
        .route(
            "/files/{*key}",
            get(read_body).put(store_body).fallback(copy),
        )
        .with_state(files.clone());
    let app = routes.with_locks(LockLayer::new(store.clone()));
    let addr = serve(app).await;
    take(&store, "/files/", LockDepth::Zero).await;
    let (status, _, _) = send(addr, "PUT", "/files//a", &[], "x").await;
    assert_eq!(status, StatusCode::LOCKED, "a member that may be new");
    let keys: Vec<String> = files.data.lock().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["a", "x"], "no new member");
    assert_eq!(files.runs("GET"), 0, "nothing was probed");

    let (status, _, _) = send(addr, "PUT", "/files/a", &[], "v2").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "an existing member, probed");
    assert_eq!(files.runs("GET"), 1);
}
