//! The guarded flow: everything that is not a safe method.
//!
//! Order (decision D7): syntax (400) → `If` evaluation (412) → token submission and principal
//! for every covering lock (423) → the inner service (which evaluates its own conditionals).

mod context;
mod fast;
mod if_eval;
mod inner;
mod lock;
mod unlock;
mod write;

use std::sync::Arc;

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::layer::Config;
use crate::store::{BoxError, BoxFuture};

pub(crate) use context::Ctx;
pub(crate) use fast::{plain_write, Fast};
pub(crate) use inner::Inner;
pub use inner::SubRequest;

/// The guarded flow for one request, boxed. `ready` is the instance that was polled ready; it
/// serves the sub-requests (readiness is polled again before each call) and the final call.
/// `found`: what the write fast path already found (its hold, query and locks).
///
/// The request is parsed here, synchronously, and only the handler the method needs is boxed:
/// a plain write never pays for the (larger) LOCK state machine.
pub(crate) fn run<S, ReqBody, ResBody>(
    config: Arc<Config>,
    ready: S,
    req: Request<ReqBody>,
    found: Option<fast::Found>,
) -> BoxFuture<'static, Result<Response<ResponseBody<ResBody>>, S::Error>>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + Default + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    let (parts, body) = req.into_parts();
    let ctx = match Ctx::new(config, parts) {
        Ok(ctx) => ctx,
        Err(response) => return Box::pin(std::future::ready(Ok(*response))),
    };
    #[cfg(feature = "tracing")]
    let span = tracing::debug_span!(
        "tower_locks",
        method = %ctx.parts.method,
        path = ctx.target.as_str(),
        principal = ctx.principal.as_deref()
    );
    let inner = Inner::new(ready);
    let flow: BoxFuture<'static, _> = match ctx.parts.method.as_str() {
        "LOCK" => Box::pin(lock::handle(ctx, body, inner)),
        "UNLOCK" => Box::pin(unlock::handle(ctx, body, inner)),
        _ => Box::pin(write::handle(Box::new(ctx), body, inner, found)),
    };
    #[cfg(feature = "tracing")]
    let flow = Box::pin(tracing::Instrument::instrument(flow, span));
    flow
}
