//! Shared test support: a small in-memory resource service to wrap, and request helpers.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::{Service, ServiceExt};
use tower_locks::{
    CreateOutcome, Lock, LockDepth, LockLayer, LockScope, LockStore, MemoryLockStore, NewLock,
    Rejection, ResourcePath, SubRequest,
};

/// What the inner service saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub sub_request: bool,
}

/// A tiny resource store behind the layer: GET/HEAD with ETags, PUT, POST, DELETE (subtree),
/// MKCOL, PROPPATCH, COPY, MOVE, and a minimal PROPFIND (207 for an existing resource). It
/// does no lock checking of its own.
#[derive(Clone, Default, Debug)]
pub struct Kv {
    pub files: Arc<Mutex<BTreeMap<String, (Bytes, u64)>>>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub version: Arc<Mutex<u64>>,
    /// When set, the inner service answers every non-sub-request with this status.
    pub force_status: Arc<Mutex<Option<StatusCode>>>,
}

fn key(path: &str) -> String {
    let t = path.trim_end_matches('/');
    if t.is_empty() {
        "/".into()
    } else {
        t.to_owned()
    }
}

impl Kv {
    pub fn with_files(paths: &[&str]) -> Self {
        let kv = Kv::default();
        for p in paths {
            kv.put(p, "x");
        }
        kv
    }

    /// Another instance of the service on the same files (shared storage), with its own
    /// record of the requests it saw.
    pub fn sharing_files(&self) -> Self {
        Kv {
            files: self.files.clone(),
            version: self.version.clone(),
            seen: Arc::default(),
            force_status: Arc::default(),
        }
    }

    pub fn put(&self, path: &str, body: &str) {
        let mut v = self.version.lock().unwrap();
        *v += 1;
        self.files
            .lock()
            .unwrap()
            .insert(key(path), (Bytes::from(body.to_owned()), *v));
    }

    pub fn exists(&self, path: &str) -> bool {
        self.files.lock().unwrap().contains_key(&key(path))
    }

    pub fn etag(&self, path: &str) -> Option<String> {
        self.files
            .lock()
            .unwrap()
            .get(&key(path))
            .map(|(_, v)| format!("\"v{v}\""))
    }

    /// Requests that reached the service, not counting the layer's own sub-requests.
    pub fn forwarded(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| !s.sub_request)
            .cloned()
            .collect()
    }

    pub fn all_seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn handle(
        &self,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let k = key(path);
        let mut h = HeaderMap::new();
        let mut files = self.files.lock().unwrap();
        let status = match method {
            "GET" | "HEAD" => match files.get(&k) {
                Some((b, v)) => {
                    h.insert("etag", format!("\"v{v}\"").parse().unwrap());
                    if method == "GET" {
                        return (StatusCode::OK, h, b.clone());
                    }
                    StatusCode::OK
                }
                None => StatusCode::NOT_FOUND,
            },
            "PUT" | "POST" | "PATCH" | "PROPPATCH" | "MKCOL" => {
                let exists = files.contains_key(&k);
                if headers.get("if-none-match").is_some_and(|v| v == "*") && exists {
                    return (StatusCode::PRECONDITION_FAILED, h, Bytes::new());
                }
                if method == "PROPPATCH" && !exists {
                    return (StatusCode::NOT_FOUND, h, Bytes::new());
                }
                let mut v = self.version.lock().unwrap();
                *v += 1;
                files.insert(k, (body, *v));
                if exists {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::CREATED
                }
            }
            "DELETE" => {
                let before = files.len();
                let prefix = format!("{}/", k.trim_end_matches('/'));
                files.retain(|p, _| *p != k && !p.starts_with(&prefix));
                if files.len() < before {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::NOT_FOUND
                }
            }
            "COPY" | "MOVE" => {
                let dest = headers
                    .get("destination")
                    .and_then(|d| d.to_str().ok())
                    .map(|d| match d.find("://") {
                        Some(i) => d[i + 3..]
                            .find('/')
                            .map_or("/".to_owned(), |j| d[i + 3 + j..].to_owned()),
                        None => d.to_owned(),
                    })
                    .map(|d| key(&d));
                let Some(dest) = dest else {
                    return (StatusCode::BAD_REQUEST, h, Bytes::new());
                };
                let Some(src) = files.get(&k).cloned() else {
                    return (StatusCode::NOT_FOUND, h, Bytes::new());
                };
                let existed = files.contains_key(&dest);
                if existed && headers.get("overwrite").is_some_and(|v| v == "F") {
                    return (StatusCode::PRECONDITION_FAILED, h, Bytes::new());
                }
                files.insert(dest, src);
                if method == "MOVE" {
                    files.remove(&k);
                }
                if existed {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::CREATED
                }
            }
            "PROPFIND" => {
                if !files.contains_key(&k) {
                    return (StatusCode::NOT_FOUND, h, Bytes::new());
                }
                h.insert(
                    "content-type",
                    "application/xml; charset=\"utf-8\"".parse().unwrap(),
                );
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>{path}</D:href><D:propstat><D:prop/><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>"
                );
                return (StatusCode::MULTI_STATUS, h, Bytes::from(body));
            }
            "OPTIONS" => {
                h.insert("allow", "OPTIONS, GET, HEAD, PUT, DELETE".parse().unwrap());
                h.insert("dav", "1".parse().unwrap());
                StatusCode::OK
            }
            _ => StatusCode::METHOD_NOT_ALLOWED,
        };
        (status, h, Bytes::new())
    }
}

impl<B> Service<Request<B>> for Kv
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let sub = req.extensions().get::<SubRequest>().is_some();
            this.seen.lock().unwrap().push(Seen {
                method: req.method().to_string(),
                path: req.uri().path().to_owned(),
                sub_request: sub,
            });
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            if !sub {
                if let Some(s) = *this.force_status.lock().unwrap() {
                    let mut res = Response::new(Body::empty());
                    *res.status_mut() = s;
                    return Ok(res);
                }
            }
            let (status, headers, body) = this.handle(
                parts.method.as_str(),
                parts.uri.path(),
                &parts.headers,
                body,
            );
            let mut res = Response::new(Body::from(body));
            *res.status_mut() = status;
            *res.headers_mut() = headers;
            Ok(res)
        })
    }
}

/// A response, collected.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub rejection: Option<Rejection>,
    /// In dry-run mode, the refusal the layer did not make.
    pub would_reject: Option<tower_locks::WouldReject>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The hrefs inside `DAV:error/DAV:{condition}`, parsed as XML.
    pub fn error_hrefs(&self, condition: &str) -> Vec<String> {
        let text = self.text();
        let doc =
            roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("not XML ({e}): {text}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().namespace(), Some("DAV:"), "{text}");
        assert_eq!(root.tag_name().name(), "error", "{text}");
        let cond = root
            .children()
            .find(|n| {
                n.is_element()
                    && n.tag_name().name() == condition
                    && n.tag_name().namespace() == Some("DAV:")
            })
            .unwrap_or_else(|| panic!("no DAV:{condition} in {text}"));
        let mut hrefs: Vec<String> = cond
            .children()
            .filter(|n| n.is_element() && n.tag_name().name() == "href")
            .map(|n| n.text().unwrap_or_default().to_owned())
            .collect();
        hrefs.sort();
        hrefs
    }
}

/// Send `req` through `svc` with `oneshot` and collect the answer.
pub async fn send<S, B>(svc: S, req: Request<Body>) -> Answer
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let res = svc.oneshot(req).await.expect("service error");
    let (parts, body) = res.into_parts();
    let body = body.collect().await.expect("body error").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        rejection: parts.extensions.get::<Rejection>().cloned(),
        would_reject: parts.extensions.get::<tower_locks::WouldReject>().cloned(),
        body,
    }
}

pub fn req(method: &str, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "example.com")
}

pub fn empty(b: http::request::Builder) -> Request<Body> {
    b.body(Body::empty()).unwrap()
}

pub fn p(s: &str) -> ResourcePath {
    ResourcePath::parse(s).unwrap()
}

pub async fn lock(
    store: &impl LockStore,
    root: &str,
    scope: LockScope,
    depth: LockDepth,
    principal: Option<&str>,
) -> Lock {
    let mut n = NewLock::new(p(root)).scope(scope).depth(depth);
    n.principal = principal.map(Into::into);
    match store.create(n).await.unwrap() {
        CreateOutcome::Created(l) => l,
        other => panic!("expected a lock on {root}, got {other:?}"),
    }
}

pub async fn xlock(store: &impl LockStore, root: &str, depth: LockDepth) -> Lock {
    lock(store, root, LockScope::Exclusive, depth, None).await
}

/// A layered `Kv` on a fresh memory store; the `Kv` is also the declared resource space.
pub fn setup(files: &[&str]) -> (Arc<MemoryLockStore>, Kv, tower_locks::LockService<Kv>) {
    let store = Arc::new(MemoryLockStore::new());
    let kv = Kv::with_files(files);
    let layer = LockLayer::new(store.clone()).resource_space(kv.clone());
    let svc = tower::Layer::layer(&layer, kv.clone());
    (store, kv, svc)
}

pub const LOCKINFO_EXCLUSIVE: &str = r#"<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>mailto:ann@example.com</D:href></D:owner></D:lockinfo>"#;
pub const LOCKINFO_SHARED: &str = r#"<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>shared owner</D:owner></D:lockinfo>"#;

/// An exclusive LOCK of `path` with `Timeout: {timeout}`, by principal `who` when given.
pub fn timed_lock(path: &str, timeout: &str, who: Option<&str>) -> Request<Body> {
    let mut r = req("LOCK", path)
        .header("timeout", timeout)
        .header("content-type", "application/xml")
        .body(Body::from(LOCKINFO_EXCLUSIVE))
        .unwrap();
    if let Some(w) = who {
        r.extensions_mut().insert(tower_locks::Principal::new(w));
    }
    r
}

/// The locks standing on `path` and its ancestors.
pub async fn covering(store: &impl LockStore, path: &str) -> Vec<tower_locks::Lock> {
    let path = tower_locks::ResourcePath::parse(path).unwrap();
    let query = tower_locks::LockQuery::new().covering(path);
    store.query(&query).await.unwrap()
}

/// The locks standing at and below `path`.
pub async fn below(store: &impl LockStore, path: &str) -> Vec<tower_locks::Lock> {
    let path = tower_locks::ResourcePath::parse(path).unwrap();
    let query = tower_locks::LockQuery::new().subtree(path);
    store.query(&query).await.unwrap()
}
