//! Where the layer learns whether a resource exists (and its ETag), and how it creates the
//! empty resource of a LOCK on an unmapped URL.
//!
//! Never from the wrapped service: under axum's `Router::layer` that service is one method
//! handler, and a `HEAD` sent to it would run, say, the PUT handler. The answers come from the
//! [`ResourceProbe`] / [`ResourceCreator`] hooks, or from a service the user declared to answer
//! for the whole resource space ([`LockLayer::resource_space`]). Without either, existence is
//! unknown: the create rules apply (fail closed) and a LOCK on an unmapped URL creates
//! nothing.
//!
//! [`LockLayer::resource_space`]: crate::LockLayer::resource_space

use std::future::poll_fn;
use std::sync::{Arc, Mutex};

use http::header::{self, HeaderName, HeaderValue};
use http::{request, Method, Request, Response, StatusCode, Uri};
use tower_service::Service;

use crate::body::EmptyBody;
use crate::headers::EntityTag;
use crate::hooks::{CreateResult, ResourceCreator, ResourceProbe, ResourceState};
use crate::principal::Principal;
use crate::store::BoxFuture;
use crate::ResourcePath;

/// Marks a request the layer itself sent to the declared resource space (an existence probe
/// or the creation of an empty resource), in the request extensions, so that service and the
/// layers inside it can tell.
///
/// ```
/// use tower_locks::SubRequest;
///
/// let req = http::Request::new(());
/// assert!(req.extensions().get::<SubRequest>().is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubRequest;

/// Headers that describe the original request's body or conditions, are WebDAV headers for
/// the original method, or belong to the original connection (hop-by-hop, RFC 9110 §7.6.1):
/// none of them may leak into a sub-request. Headers the `Connection` header names go too.
const DROPPED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "if",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
    "range",
    "content-length",
    "content-type",
    "content-encoding",
    "content-range",
    "content-language",
    "content-location",
    "content-md5",
    "content-digest",
    "repr-digest",
    "digest",
    "transfer-encoding",
    "expect",
    "destination",
    "overwrite",
    "depth",
    "timeout",
    "lock-token",
];

/// An answer whose entity tag cannot be read: several `ETag` fields, or a value that is no
/// entity tag.
struct Ambiguous;

/// The entity tag of an answer: `None` without one.
fn current_etag(headers: &http::HeaderMap) -> Result<Option<EntityTag>, Ambiguous> {
    let mut etags = headers.get_all(header::ETAG).iter();
    let Some(first) = etags.next() else {
        return Ok(None);
    };
    if etags.next().is_some() {
        return Err(Ambiguous);
    }
    // Read as the `If` parser reads entity tags (RFC 2616 quoted-string whitespace too); a
    // value that is still not an entity tag names no known current one (D13): the resource
    // exists, its entity tag is unreadable.
    let v = first.to_str().map_err(|_| Ambiguous)?.trim();
    match crate::headers::parse_etag_at(v, 0, true) {
        Some((tag, end)) if end == v.len() => Ok(Some(tag)),
        _ => Err(Ambiguous),
    }
}

/// The existence and creation sources of one layer.
#[derive(Clone, Default)]
pub(crate) struct Space {
    pub(crate) probe: Option<Arc<dyn ResourceProbe>>,
    pub(crate) creator: Option<Arc<dyn ResourceCreator>>,
    pub(crate) service: Option<Arc<dyn SpaceService>>,
}

impl Space {
    /// Whether anything can tell existence: without it every state is
    /// [`ResourceState::Unknown`], known at once.
    pub(crate) fn can_probe(&self) -> bool {
        self.probe.is_some() || self.service.is_some()
    }

    /// Whether `path` exists, and its ETag. `prefix`: the mount prefix, stripped for the
    /// declared service.
    pub(crate) async fn probe(
        &self,
        path: &ResourcePath,
        prefix: &ResourcePath,
        parts: &request::Parts,
    ) -> ResourceState {
        if let Some(probe) = &self.probe {
            return probe.probe(path, parts).await;
        }
        let Some(service) = &self.service else {
            return ResourceState::Unknown;
        };
        let Some(req) = sub_request(Method::HEAD, path, prefix, parts) else {
            return ResourceState::Unknown;
        };
        match service.send(req).await {
            // Several ETags, or one that is no entity tag, name no current one: the resource
            // exists, its entity tag is unknown (fail closed for `If` lists).
            Some((status, headers)) if status.is_success() => match current_etag(&headers) {
                Ok(etag) => ResourceState::Exists { etag },
                Err(Ambiguous) => ResourceState::ExistsWithUnreadableEtag,
            },
            Some((StatusCode::NOT_FOUND | StatusCode::GONE, _)) => ResourceState::Missing,
            _ => ResourceState::Unknown,
        }
    }

    /// Create the empty resource of a LOCK on an unmapped URL; `None` when nothing can
    /// create it (the URL is locked and nothing is created).
    pub(crate) async fn create_empty(
        &self,
        path: &ResourcePath,
        prefix: &ResourcePath,
        parts: &request::Parts,
    ) -> Option<CreateResult> {
        if let Some(creator) = &self.creator {
            return Some(creator.create_empty(path, parts).await);
        }
        let service = self.service.as_ref()?;
        let Some(mut req) = sub_request(Method::PUT, path, prefix, parts) else {
            return Some(CreateResult::Failed(StatusCode::BAD_REQUEST));
        };
        let h = req.headers_mut();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        Some(match service.send(req).await {
            Some((s, _)) if s.is_success() => CreateResult::Created,
            Some((StatusCode::PRECONDITION_FAILED, _)) => CreateResult::AlreadyExists,
            Some((s, _)) => CreateResult::Failed(s),
            None => CreateResult::Failed(StatusCode::BAD_GATEWAY),
        })
    }
}

/// A service declared to answer for the whole resource space, type-erased.
pub(crate) trait SpaceService: Send + Sync + 'static {
    /// Send `req`; the status and headers of the answer, `None` when the service failed.
    fn send(
        &self,
        req: Request<EmptyBody>,
    ) -> BoxFuture<'static, Option<(StatusCode, http::HeaderMap)>>;
}

/// [`SpaceService`] over any cloneable service. The mutex only guards the clone taken for
/// each sub-request, so the service itself need not be `Sync`.
pub(crate) struct ServiceSpace<S>(Mutex<S>);

impl<S> ServiceSpace<S> {
    pub(crate) fn new(service: S) -> Self {
        Self(Mutex::new(service))
    }
}

impl<S, B> SpaceService for ServiceSpace<S>
where
    S: Service<Request<EmptyBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    fn send(
        &self,
        req: Request<EmptyBody>,
    ) -> BoxFuture<'static, Option<(StatusCode, http::HeaderMap)>> {
        let mut svc = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Box::pin(async move {
            poll_fn(|cx| svc.poll_ready(cx)).await.ok()?;
            let res = svc.call(req).await.ok()?;
            let (parts, _body) = res.into_parts();
            Some((parts.status, parts.headers))
        })
    }
}

/// A sub-request for `path` (client-visible; `prefix` is stripped) with the original
/// request's headers (authentication, host, …) minus body, conditional and WebDAV headers, and
/// its [`Principal`]. Other extensions stay behind: they may hold the state of a router the
/// request already went through (axum's path parameters, for one), which would confuse the
/// resource space's own routing.
fn sub_request(
    method: Method,
    path: &ResourcePath,
    prefix: &ResourcePath,
    parts: &request::Parts,
) -> Option<Request<EmptyBody>> {
    let inner_path = path.strip_prefix(prefix)?;
    let uri = Uri::try_from(inner_path.href()).ok()?;
    let mut req = Request::new(EmptyBody);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = parts.version;
    let named_by_connection: Vec<String> = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    let headers = req.headers_mut();
    for (name, value) in &parts.headers {
        if !is_dropped(name) && !named_by_connection.iter().any(|n| n == name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(principal) = parts.extensions.get::<Principal>() {
        req.extensions_mut().insert(principal.clone());
    }
    req.extensions_mut().insert(SubRequest);
    Some(req)
}

fn is_dropped(name: &HeaderName) -> bool {
    DROPPED.contains(&name.as_str())
}
