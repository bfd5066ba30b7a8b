//! Every guarded method other than LOCK and UNLOCK: check, forward, clean up.

use http::{Request, Response, StatusCode};
use tower_service::Service;

use super::context::bad_request;
use super::if_eval::if_holds;
use super::{Ctx, Inner};
use crate::body::ResponseBody;
use crate::headers::destination;
use crate::hooks::ResourceState;
use crate::layer::Config;
use crate::plan::{CleanupWhen, Plan};
use crate::response::Rejection;
use crate::{Resolved, ResourcePath};

pub(super) async fn handle<S, ReqBody, ResBody>(
    ctx: Ctx,
    body: ReqBody,
    mut ready: S,
    inner: &mut Inner<S>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Default,
{
    let method = ctx.parts.method.as_str();
    let dest = if matches!(method, "COPY" | "MOVE") {
        match destination_path(&ctx) {
            Ok(d) => Some(d),
            Err(rejection) => return Ok(ctx.reject(rejection)),
        }
    } else {
        None
    };
    let mut plan = Plan::new(method, &ctx.target, dest.as_ref());
    ctx.add_if_targets(&mut plan.query);

    let locks = match ctx.cfg.store.query_boxed(&plan.query).await {
        Ok(locks) => Some(locks),
        Err(_err) => {
            #[cfg(feature = "tracing")]
            tracing::error!(error = %_err, "tower-locks: lock store query failed");
            if !ctx.cfg.fail_open {
                return Ok(ctx.reject(Rejection::StoreUnavailable));
            }
            #[cfg(feature = "tracing")]
            tracing::warn!(
                method,
                path = ctx.target.as_str(),
                "tower-locks: store failed, forwarding UNCHECKED (fail-open)"
            );
            None
        }
    };

    if let Some(locks) = &locks {
        if !if_holds(&ctx, locks, inner).await {
            return Ok(ctx.reject(Rejection::PreconditionFailed));
        }
        let missing = ctx.unsatisfied(plan.required(locks));
        if !missing.is_empty() {
            return Ok(ctx.locked(&missing));
        }
        let missing = ctx.unsatisfied(plan.create_only(locks));
        if !missing.is_empty() {
            // Only a write that creates its target needs the collection's depth-0 token.
            let exists = matches!(
                inner.probe::<ReqBody, ResBody>(&ctx, &ctx.target).await,
                ResourceState::Exists { .. }
            );
            if !exists {
                return Ok(ctx.locked(&missing));
            }
        }
    }

    let Ctx { cfg, parts, .. } = ctx;
    poll_ready(&mut ready).await?;
    let res = ready.call(Request::from_parts(parts, body)).await?;
    cleanup(&cfg, &plan, res.status()).await;
    Ok(res.map(ResponseBody::passthrough))
}

async fn poll_ready<S, R>(svc: &mut S) -> Result<(), S::Error>
where
    S: Service<R>,
{
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await
}

/// The `Destination` of a COPY or MOVE, normalised like the request path.
fn destination_path(ctx: &Ctx) -> Result<ResourcePath, Rejection> {
    let raw = destination(&ctx.parts.headers)
        .map_err(|e| bad_request(e.to_string()))?
        .ok_or_else(|| bad_request("COPY and MOVE need a Destination header"))?;
    match ctx.resolve(raw) {
        Ok(Resolved::Local(p)) => Ok(p),
        Ok(_) => Err(Rejection::ForeignDestination),
        Err(e) => Err(bad_request(format!("Destination: {e}"))),
    }
}

/// RFC 4918 §6.1 (8): a lock whose root became unmapped is deleted with it.
async fn cleanup(cfg: &Config, plan: &Plan, status: StatusCode) {
    if !status.is_success() || status == StatusCode::MULTI_STATUS {
        return;
    }
    for (path, when) in plan.cleanup() {
        if when == CleanupWhen::Replaced && status != StatusCode::NO_CONTENT {
            continue;
        }
        if let Err(_err) = cfg.store.remove_subtree_boxed(path).await {
            #[cfg(feature = "tracing")]
            tracing::error!(error = %_err, path = path.as_str(), "tower-locks: lock cleanup failed");
        }
    }
}
