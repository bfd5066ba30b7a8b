//! The guarded flow: everything that is not a safe method.
//!
//! Order ([decision D7](crate::decisions#d7)): syntax (400) → `If` evaluation (412) → token
//! submission and principal for every lock the plan requires (423) → the inner service (which
//! evaluates its own conditionals). One plan per request ([`plan`]), one verdict
//! ([`verdict`]); a store that answers at once lets `call` reach it synchronously, any other
//! waits for it in the request's future.

mod context;
mod lock;
mod plan;
mod unlock;
mod verdict;
mod write;

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::config::Config;
use crate::holds::HoldGuard;
use crate::store::{BoxError, BoxFuture};

pub(crate) use context::Ctx;

/// What `call` decides for a guarded request.
pub(crate) enum Started<B> {
    /// Forward the request now, holding its paths until its answer is over (body included).
    Forward(Request<B>, HoldGuard),
    /// The layer answers at once (a refusal).
    Respond(Response<Bytes>),
    /// The rest happens in the request's future.
    Later(Later<B>),
}

/// A guarded request that needs the request's future.
pub(crate) struct Later<B> {
    work: Work<B>,
    /// The request's span, entered again around the rest of its flow.
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

enum Work<B> {
    Write(write::Write<B>),
    Lock(Ctx, B),
    Unlock(Ctx, B),
}

/// Parse the request, plan it and, where the store answers at once, decide it.
pub(crate) fn start<B>(config: Arc<Config>, req: Request<B>) -> Started<B> {
    let (parts, body) = req.into_parts();
    // One span per guarded request, around the layer's own work: what is decided here, a
    // malformed request's 400 included, and what the future does later. The path is the one
    // the client sent.
    #[cfg(feature = "tracing")]
    let span = tracing::debug_span!(
        "tower_locks",
        method = %parts.method,
        path = parts.uri.path(),
        principal = tracing::field::Empty
    );
    #[cfg(feature = "tracing")]
    let _entered = span.enter();
    let ctx = match Ctx::new(config, parts) {
        Ok(ctx) => ctx,
        Err(response) => return Started::Respond(*response),
    };
    #[cfg(feature = "tracing")]
    if let Some(principal) = ctx.principal.as_deref() {
        span.record("principal", principal);
    }
    let later = |work| {
        Started::Later(Later {
            work,
            #[cfg(feature = "tracing")]
            span: span.clone(),
        })
    };
    match ctx.parts.method.as_str() {
        "LOCK" => later(Work::Lock(ctx, body)),
        "UNLOCK" => later(Work::Unlock(ctx, body)),
        _ => match write::check_now(&ctx) {
            write::Now::Forward(hold, admitted) => {
                Started::Forward(write::request(ctx, body, admitted), hold)
            }
            write::Now::Refuse(rejection) => Started::Respond(ctx.render(rejection)),
            write::Now::Later(check) => later(Work::Write(write::Write::new(ctx, body, check))),
        },
    }
}

impl<B> Later<B> {
    /// The rest of the flow, boxed. `ready` gives the service that was polled ready; only a
    /// write takes it, and calls it only with the request itself (LOCK and UNLOCK are answered
    /// by the layer).
    pub(crate) fn run<S, ResBody>(
        self,
        ready: impl FnOnce() -> S,
    ) -> BoxFuture<'static, Result<Response<ResponseBody<ResBody>>, S::Error>>
    where
        S: Service<Request<B>, Response = Response<ResBody>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
        ResBody: Send + 'static,
    {
        let flow: BoxFuture<'static, _> = match self.work {
            Work::Write(w) => {
                let mut svc = ready();
                Box::pin(w.run(move |req| svc.call(req)))
            }
            Work::Lock(ctx, body) => Box::pin(lock::handle(ctx, body)),
            Work::Unlock(ctx, body) => Box::pin(unlock::handle(ctx, body)),
        };
        #[cfg(feature = "tracing")]
        let flow = Box::pin(tracing::Instrument::instrument(flow, self.span));
        flow
    }
}
