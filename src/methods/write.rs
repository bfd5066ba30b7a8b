//! Every guarded method other than LOCK and UNLOCK: check, forward, clean up.

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use tower_service::Service;

use super::context::{bad_request, roots};
use super::fast::Found;
use super::if_eval::if_holds;
use super::{Ctx, Inner};
use crate::body::ResponseBody;
use crate::headers::destination;
use crate::holds::{FencingToken, Touched};
use crate::hooks::ResourceState;
use crate::path::Resolved;
use crate::plan::{CleanupWhen, Plan};
use crate::response::{Rejection, WouldReject};
use crate::store::{DynLockStore, Lock};
use crate::ResourcePath;

/// Check, forward, clean up. The context arrives boxed: this future (itself boxed by
/// [`super::run`]) then holds a pointer instead of the context, which keeps it under 1 KiB,
/// within the allocator's per-thread cache (it was 1.7 KiB with the context inline).
pub(super) async fn handle<S, ReqBody, ResBody>(
    ctx: Box<Ctx>,
    body: ReqBody,
    mut inner: Inner<S>,
    found: Option<Found>,
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

    // Registered before the store is asked, dropped when the inner service has answered:
    // a LOCK granted meanwhile sees it and is rolled back (see `crate::holds`). The fast path
    // took both already when it found locks; its answer serves if it asked what the plan asks.
    let (_hold, answer) = match found {
        Some(found) if found.query == plan.query => (found.hold, Some(found.locks)),
        _ => {
            let hold = ctx.cfg.holds.acquire(
                plan.touched()
                    .map(|(path, subtree)| Touched::path(path, subtree)),
                ctx.submitted().map(str::to_owned).collect(),
            );
            (hold, None)
        }
    };

    let (fence, would_reject) = match check(&ctx, &plan, &mut inner, answer).await {
        Ok(checked) => checked,
        Err(rejection) => return Ok(ctx.reject(rejection)),
    };

    // Only a removal (DELETE, MOVE, COPY onto a destination) needs the store afterwards.
    let store = plan
        .cleanup()
        .next()
        .is_some()
        .then(|| Arc::clone(&ctx.cfg.store));
    // Built inside the call expression, so no request-sized local is kept in this future.
    let res = inner
        .call(request(*ctx, body, fence, would_reject.as_ref()))
        .await?;
    if let Some(store) = store {
        cleanup(&*store, &plan, res.status()).await;
    }
    let mut res = res.map(ResponseBody::passthrough);
    if let Some(w) = would_reject {
        res.extensions_mut().insert(w);
    }
    Ok(res)
}

/// The request to forward: the original parts, with the fencing number and, in dry-run
/// mode, the refusal that was not made in the extensions.
fn request<B>(
    ctx: Ctx,
    body: B,
    fence: Option<u64>,
    would_reject: Option<&WouldReject>,
) -> Request<B> {
    let Ctx { mut parts, .. } = ctx;
    if let Some(f) = fence {
        parts.extensions.insert(FencingToken(f));
    }
    if let Some(w) = would_reject {
        parts.extensions.insert(w.clone());
    }
    Request::from_parts(parts, body)
}

/// Ask the store (unless `answer` already holds its locks) and, when anything is locked or an
/// `If` header is present, take the verdict: the fencing number to pass on and, in dry-run
/// mode, the refusal that was not made.
async fn check<S, ReqBody, ResBody>(
    ctx: &Ctx,
    plan: &Plan,
    inner: &mut Inner<S>,
    answer: Option<Vec<Lock>>,
) -> Result<(Option<u64>, Option<WouldReject>), Rejection>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Default,
{
    #[cfg(feature = "tracing")]
    let method = ctx.parts.method.as_str();
    let answer = match answer {
        Some(locks) => Ok(locks),
        None => {
            #[cfg(feature = "tracing")]
            let started = std::time::Instant::now();
            let answer = ctx.cfg.store.query_boxed(&plan.query).await;
            #[cfg(feature = "tracing")]
            tracing::trace!(
                elapsed_us = started.elapsed().as_micros() as u64,
                ok = answer.is_ok(),
                "tower-locks: store query"
            );
            answer
        }
    };
    let locks = match answer {
        Ok(locks) => Some(locks),
        Err(_err) => {
            #[cfg(feature = "tracing")]
            tracing::error!(error = %_err, "tower-locks: lock store query failed");
            if !ctx.cfg.fail_open {
                return Err(Rejection::StoreUnavailable);
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

    let mut fence = None;
    let mut would_reject = None;
    // Nothing to evaluate and nothing locked: the common case needs no verdict at all (the
    // verdict, with its probes, is boxed so its state never bloats this future).
    let needs_verdict = locks
        .as_ref()
        .is_some_and(|l| !l.is_empty() || ctx.if_header.is_some());
    if let (true, Some(locks)) = (needs_verdict, &locks) {
        match Box::pin(verdict(ctx, plan, locks, inner)).await {
            Ok(f) => fence = f,
            Err(rejection) if ctx.cfg.dry_run => {
                #[cfg(feature = "tracing")]
                tracing::warn!(
                    method,
                    path = ctx.target.as_str(),
                    ?rejection,
                    "tower-locks: DRY RUN, would have refused; forwarding"
                );
                would_reject = Some(WouldReject(rejection));
            }
            Err(rejection) => return Err(rejection),
        }
    }
    Ok((fence, would_reject))
}

/// 412 if the `If` header is false, 423 if a required lock was not submitted; otherwise the
/// highest fencing number among the locks the request satisfied.
async fn verdict<S, ReqBody, ResBody>(
    ctx: &Ctx,
    plan: &Plan,
    locks: &[Lock],
    inner: &mut Inner<S>,
) -> Result<Option<u64>, Rejection>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Default,
{
    if !if_holds(ctx, locks, inner).await {
        return Err(Rejection::PreconditionFailed);
    }
    let required = plan.required(locks);
    let missing = ctx.unsatisfied(required.iter().copied());
    if !missing.is_empty() {
        return Err(Rejection::Locked {
            roots: roots(&missing),
        });
    }
    let mut fence = required.iter().map(|l| l.fence).max();
    let create_only = plan.create_only(locks);
    let missing = ctx.unsatisfied(create_only.iter().copied());
    if missing.is_empty() {
        fence = fence.max(create_only.iter().map(|l| l.fence).max());
    } else {
        // Only a write that creates its target needs the collection's depth-0 token.
        let exists = matches!(
            inner.probe::<ReqBody, ResBody>(ctx, &ctx.target).await,
            ResourceState::Exists { .. }
        );
        if !exists {
            return Err(Rejection::Locked {
                roots: roots(&missing),
            });
        }
    }
    Ok(fence)
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
async fn cleanup(store: &dyn DynLockStore, plan: &Plan, status: StatusCode) {
    if !status.is_success() || status == StatusCode::MULTI_STATUS {
        return;
    }
    for (path, when) in plan.cleanup() {
        if when == CleanupWhen::Replaced && status != StatusCode::NO_CONTENT {
            continue;
        }
        if let Err(_err) = store.remove_subtree_boxed(path).await {
            #[cfg(feature = "tracing")]
            tracing::error!(error = %_err, path = path.as_str(), "tower-locks: lock cleanup failed");
        }
    }
}
