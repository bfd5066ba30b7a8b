//! LOCK: create (RFC 4918 §9.10.1, §9.10.3–9.10.6) and refresh (§9.10.2).

use std::time::SystemTime;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, IF_MATCH};
use http::{HeaderName, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower_service::Service;

use super::context::{bad_request, roots};
use super::if_eval::if_holds;
use super::inner::Creation;
use super::{Ctx, Inner};
use crate::body::ResponseBody;
use crate::dav::{lock_response_body, parse_lockinfo, LockInfoError};
use crate::headers::{parse_depth, parse_timeout_headers, Depth};
use crate::hooks::{CreateResult, ResourceState};
use crate::response::Rejection;
use crate::store::{
    BoxError, CreateOutcome, Lock, LockDepth, LockQuery, NewLock, TokenAccess, TokenOutcome,
};

static LOCK_TOKEN: HeaderName = HeaderName::from_static("lock-token");

pub(super) async fn handle<S, ReqBody, ResBody>(
    ctx: Ctx,
    body: ReqBody,
    mut inner: Inner<S>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body + Default,
    ReqBody::Error: Into<BoxError>,
{
    let inner = &mut inner;
    let body = match read_body(&ctx, body).await {
        Ok(b) => b,
        Err(rejection) => return Ok(ctx.reject(rejection)),
    };
    let requested = match parse_timeout_headers(&ctx.parts.headers) {
        Ok(t) => t,
        Err(e) => return Ok(ctx.reject(bad_request(e.to_string()))),
    };
    let timeout = ctx.cfg.timeouts.resolve(requested.as_deref());
    if body.is_empty() {
        refresh(ctx, timeout, inner).await
    } else {
        create(ctx, &body, timeout, inner).await
    }
}

/// Collect the LOCK body up to the configured limit (413 above it).
async fn read_body<B>(ctx: &Ctx, body: B) -> Result<Bytes, Rejection>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let limit = ctx.cfg.limits.max_lockinfo_bytes;
    let declared = ctx
        .parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Rejection::PayloadTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Rejection::PayloadTooLarge { limit })
        }
        Err(e) => Err(bad_request(format!("could not read the LOCK body: {e}"))),
    }
}

/// §9.10.2: no body, an `If` header naming exactly one lock token, any URL in its scope.
async fn refresh<S, ReqBody, ResBody>(
    ctx: Ctx,
    timeout: crate::LockTimeout,
    inner: &mut Inner<S>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Default,
{
    let token = {
        let Some(header) = &ctx.if_header else {
            return Ok(ctx.reject(bad_request(
                "a LOCK without a body refreshes a lock and needs an If header with its token",
            )));
        };
        let mut tokens: Vec<&str> = header.state_tokens().collect();
        tokens.sort_unstable();
        tokens.dedup();
        if tokens.len() != 1 {
            return Ok(ctx.reject(bad_request(
                "a lock refresh must name exactly one lock token in the If header",
            )));
        }
        tokens[0].to_owned()
    };
    let mismatch = Rejection::LockTokenMismatch {
        status: StatusCode::PRECONDITION_FAILED,
    };
    let mut query = LockQuery::new().covering(ctx.target.clone());
    ctx.add_if_targets(&mut query);
    let locks = match ctx.cfg.store.query_boxed(&query).await {
        Ok(l) => l,
        Err(_) => return Ok(ctx.reject(Rejection::StoreUnavailable)),
    };
    if !if_holds(&ctx, &locks, inner).await {
        return Ok(ctx.reject(mismatch));
    }
    let access = TokenAccess::new(&token, &ctx.target, ctx.principal.as_deref());
    match ctx.cfg.store.refresh_boxed(access, timeout).await {
        Ok(TokenOutcome::Done(lock)) => {
            #[cfg(feature = "tracing")]
            tracing::info!(token = %lock.token, ?timeout, "tower-locks: lock refreshed");
            Ok(lock_response(&lock, StatusCode::OK, false))
        }
        Ok(TokenOutcome::Forbidden(_)) => Ok(ctx.reject(Rejection::Forbidden)),
        Ok(_) => Ok(ctx.reject(mismatch)),
        Err(_) => Ok(ctx.reject(Rejection::StoreUnavailable)),
    }
}

/// §9.10.1: a new lock. Conflict check and creation are one store step; an unmapped URL is
/// then created empty through the hook (and the lock rolled back if that fails).
async fn create<S, ReqBody, ResBody>(
    ctx: Ctx,
    body: &[u8],
    timeout: crate::LockTimeout,
    inner: &mut Inner<S>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Default,
{
    let depth = match parse_depth(&ctx.parts.headers) {
        Ok(None | Some(Depth::Infinity)) => LockDepth::Infinity,
        Ok(Some(Depth::Zero)) => LockDepth::Zero,
        Ok(Some(Depth::One)) => {
            return Ok(ctx.reject(bad_request("LOCK accepts only Depth: 0 or infinity")))
        }
        Err(e) => return Ok(ctx.reject(bad_request(e.to_string()))),
    };
    let info = match parse_lockinfo(body, ctx.cfg.limits.max_owner_bytes) {
        Ok(info) => info,
        Err(LockInfoError::DoctypeNotAllowed) => return Ok(ctx.reject(Rejection::ExternalEntities)),
        Err(LockInfoError::OwnerTooLarge { limit }) => {
            return Ok(ctx.reject(Rejection::PayloadTooLarge { limit }))
        }
        Err(e) => return Ok(ctx.reject(bad_request(format!("lockinfo: {e}")))),
    };

    let parent = ctx.target.parent();
    let mut query = LockQuery::new().covering(ctx.target.clone());
    if let Some(p) = &parent {
        query.push(p.clone(), false);
    }
    ctx.add_if_targets(&mut query);
    let locks = match ctx.cfg.store.query_boxed(&query).await {
        Ok(l) => l,
        Err(_) => return Ok(ctx.reject(Rejection::StoreUnavailable)),
    };
    if !if_holds(&ctx, &locks, inner).await {
        return Ok(ctx.reject(Rejection::PreconditionFailed));
    }

    let state = inner.probe::<ReqBody, ResBody>(&ctx, &ctx.target).await;
    let may_create = !matches!(state, ResourceState::Exists { .. });
    if may_create {
        // Appendix D.1: `If-Match: *` forbids creating the resource.
        if ctx.parts.headers.contains_key(IF_MATCH) && state == ResourceState::Missing {
            return Ok(ctx.reject(Rejection::PreconditionFailed));
        }
        // Creating a member changes the parent collection: its locks need their tokens.
        if let Some(p) = &parent {
            let missing = ctx.unsatisfied(locks.iter().filter(|l| l.covers(p)));
            if !missing.is_empty() {
                return Ok(ctx.locked(&missing));
            }
        }
    }

    let mut new = NewLock::new(ctx.target.clone())
        .scope(info.scope)
        .depth(depth)
        .timeout(timeout);
    new.owner = info.owner.map(Into::into);
    new.principal = ctx.principal.as_deref().map(Into::into);
    new.principal_quota = ctx.cfg.limits.max_locks_per_principal;
    let lock = match ctx.cfg.store.create_boxed(new).await {
        Ok(CreateOutcome::Created(lock)) => lock,
        Ok(CreateOutcome::Conflict(conflicts)) => {
            let on_target: Vec<&Lock> =
                conflicts.iter().filter(|l| l.covers(&ctx.target)).collect();
            let rejection = if on_target.is_empty() {
                let below: Vec<&Lock> = conflicts.iter().collect();
                Rejection::ConflictBelow {
                    request: ctx.target.href(),
                    roots: roots(&below),
                }
            } else {
                Rejection::Conflict {
                    roots: roots(&on_target),
                }
            };
            return Ok(ctx.reject(rejection));
        }
        Ok(CreateOutcome::QuotaExceeded { limit, .. }) => {
            return Ok(ctx.reject(Rejection::TooManyLocks { limit }))
        }
        Err(_) => return Ok(ctx.reject(Rejection::StoreUnavailable)),
    };
    // The lock exists now; a write checked before it is still in flight if it holds one of
    // the lock's paths. Roll back rather than grant a lock under a running write.
    let in_flight = ctx.cfg.holds.blocking(&lock);
    if !in_flight.is_empty() {
        rollback(&ctx, &lock).await;
        let mut roots: Vec<String> = in_flight.iter().map(|p| p.href()).collect();
        roots.sort();
        roots.dedup();
        return Ok(ctx.reject(Rejection::Conflict { roots }));
    }
    #[cfg(feature = "tracing")]
    tracing::info!(token = %lock.token, root = lock.root.as_str(), scope = ?lock.scope, depth = ?lock.depth, "tower-locks: lock granted");

    let mut status = StatusCode::OK;
    if may_create {
        let outcome = inner
            .create_empty::<ReqBody, ResBody>(&ctx, &ctx.target)
            .await;
        let failure = match outcome {
            Ok(Creation::Done(CreateResult::Created)) => {
                status = StatusCode::CREATED;
                None
            }
            Ok(Creation::Done(CreateResult::AlreadyExists)) => None,
            Ok(Creation::Done(CreateResult::Failed(code))) => {
                let mut res = Response::new(ResponseBody::empty());
                *res.status_mut() = code;
                Some(Ok(res))
            }
            Ok(Creation::Refused(res)) => Some(Ok(res.map(ResponseBody::passthrough))),
            Err(e) => Some(Err(e)),
        };
        if let Some(failure) = failure {
            rollback(&ctx, &lock).await;
            return failure;
        }
    }
    Ok(lock_response(&lock, status, true))
}

/// Remove a lock this request just created (privileged: it is ours).
async fn rollback(ctx: &Ctx, lock: &Lock) {
    let mut access = TokenAccess::new(&lock.token, &lock.root, None);
    access.privileged = true;
    let _ = ctx.cfg.store.unlock_boxed(access).await;
}

fn lock_response<B>(
    lock: &Lock,
    status: StatusCode,
    with_token: bool,
) -> Response<ResponseBody<B>> {
    let body = lock_response_body(lock, SystemTime::now());
    let mut res = Response::new(ResponseBody::full(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=\"utf-8\""),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if with_token {
        if let Ok(v) = HeaderValue::from_str(&format!("<{}>", lock.token)) {
            h.insert(LOCK_TOKEN.clone(), v);
        }
    }
    res
}
