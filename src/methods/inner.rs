//! Sub-requests to the inner service: the default existence/ETag probe (`HEAD`) and the
//! default creation of an empty resource for a LOCK on an unmapped URL (`PUT` with
//! `If-None-Match: *`).

use std::future::poll_fn;

use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use tower_service::Service;

use super::Ctx;
use crate::headers::EntityTag;
use crate::hooks::{CreateResult, ResourceState};
use crate::ResourcePath;

/// Marks a request the layer itself sent to the inner service (a probe or a creation), in
/// the request extensions, so the inner service or layers inside can tell.
///
/// ```
/// use tower_locks::SubRequest;
///
/// let req = http::Request::new(());
/// assert!(req.extensions().get::<SubRequest>().is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubRequest;

/// Headers that describe the original request's body or conditions, or are WebDAV headers
/// for the original method: none of them may leak into a sub-request.
const DROPPED: &[&str] = &[
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
    "transfer-encoding",
    "expect",
    "destination",
    "overwrite",
    "depth",
    "timeout",
    "lock-token",
];

/// The result of the default creation sub-request.
pub(crate) enum Creation<ResBody> {
    Done(CreateResult),
    /// The inner service refused; its response is passed on to the client.
    Refused(Response<ResBody>),
}

pub(crate) struct Inner<S> {
    svc: S,
}

impl<S> Inner<S> {
    pub(crate) fn new(svc: S) -> Self {
        Self { svc }
    }

    /// Wait until the service is ready, then call it.
    pub(crate) async fn call<ReqBody, ResBody>(
        &mut self,
        req: Request<ReqBody>,
    ) -> Result<Response<ResBody>, S::Error>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    {
        poll_fn(|cx| self.svc.poll_ready(cx)).await?;
        self.svc.call(req).await
    }

    /// Whether `path` exists and its ETag: the configured probe, or an inner `HEAD`.
    pub(crate) async fn probe<ReqBody, ResBody>(
        &mut self,
        ctx: &Ctx,
        path: &ResourcePath,
    ) -> ResourceState
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
        ReqBody: Default,
    {
        if let Some(probe) = &ctx.cfg.probe {
            return probe.probe(path, &ctx.parts).await;
        }
        let Some(req) = sub_request::<ReqBody>(ctx, Method::HEAD, path) else {
            return ResourceState::Unknown;
        };
        match self.call(req).await {
            Ok(res) if res.status().is_success() => ResourceState::Exists {
                etag: res
                    .headers()
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| EntityTag::parse(v.trim())),
            },
            Ok(res) if matches!(res.status(), StatusCode::NOT_FOUND | StatusCode::GONE) => {
                ResourceState::Missing
            }
            _ => ResourceState::Unknown,
        }
    }

    /// Create the empty resource for a LOCK on an unmapped URL: the configured creator, or an
    /// inner empty `PUT` with `If-None-Match: *` (a 412 there means it exists already).
    pub(crate) async fn create_empty<ReqBody, ResBody>(
        &mut self,
        ctx: &Ctx,
        path: &ResourcePath,
    ) -> Result<Creation<ResBody>, S::Error>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
        ReqBody: Default,
    {
        if let Some(creator) = &ctx.cfg.creator {
            return Ok(Creation::Done(creator.create_empty(path, &ctx.parts).await));
        }
        let Some(mut req) = sub_request::<ReqBody>(ctx, Method::PUT, path) else {
            return Ok(Creation::Done(CreateResult::Failed(
                StatusCode::BAD_REQUEST,
            )));
        };
        let h = req.headers_mut();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        let res = self.call(req).await?;
        Ok(match res.status() {
            s if s.is_success() => Creation::Done(CreateResult::Created),
            StatusCode::PRECONDITION_FAILED => Creation::Done(CreateResult::AlreadyExists),
            _ => Creation::Refused(res),
        })
    }
}

/// A sub-request for `path` with the original request's headers (authentication, host, …)
/// and extensions, minus body and conditional headers.
fn sub_request<B: Default>(ctx: &Ctx, method: Method, path: &ResourcePath) -> Option<Request<B>> {
    let inner_path = path.strip_prefix(&ctx.cfg.prefix)?;
    let uri = Uri::try_from(inner_path.href()).ok()?;
    let mut req = Request::new(B::default());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = ctx.parts.version;
    let headers = req.headers_mut();
    for (name, value) in &ctx.parts.headers {
        if !is_dropped(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    *req.extensions_mut() = ctx.parts.extensions.clone();
    req.extensions_mut().insert(SubRequest);
    Some(req)
}

fn is_dropped(name: &HeaderName) -> bool {
    DROPPED.contains(&name.as_str())
}
