//! LOCK: create (RFC 4918 §9.10.1, §9.10.3–9.10.6) and refresh (§9.10.2).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, IF_MATCH, IF_NONE_MATCH};
use http::{Response, StatusCode};
use http_body::Body;

use super::context::{bad_request, named, store_failed};
use super::plan::Plan;
use super::verdict::{if_holds, verdict, States};
use super::Ctx;
use crate::body::{read_limited, ReadError, ResponseBody};
use crate::dav::{lock_response_body, parse_lockinfo, LockInfoError};
use crate::events::LockEvent;
use crate::headers::{
    parse_depth, parse_entity_tags, parse_timeout_headers, Depth, EntityTags, HeaderError,
    LOCK_TOKEN,
};
use crate::hooks::{CreateResult, ResourceState};
use crate::leftovers::Unfinished;
use crate::response::Rejection;
use crate::store::{
    BoxError, CreateOutcome, Lock, LockDepth, LockQuery, LockTimeout, TokenAccess, TokenOutcome,
    TokenVerdict,
};

pub(super) async fn handle<ReqBody, ResBody, E>(
    ctx: Ctx,
    body: ReqBody,
) -> Result<Response<ResponseBody<ResBody>>, E>
where
    ReqBody: Body,
    ReqBody::Error: Into<BoxError>,
{
    ctx.cfg.finish_leftovers().await;
    let body = match read_body(&ctx, body).await {
        Ok(b) => b,
        Err(rejection) => return Ok(ctx.reject(rejection)),
    };
    let requested = match parse_timeout_headers(&ctx.parts.headers) {
        Ok(t) => t,
        Err(e) => return Ok(ctx.reject(bad_request(e.to_string()))),
    };
    let timeout = ctx.cfg.timeouts.resolve(requested.as_deref());
    let preconditions = match Preconditions::parse(&ctx.parts.headers) {
        Ok(p) => p,
        Err(e) => return Ok(ctx.reject(bad_request(e.to_string()))),
    };
    Ok(if body.is_empty() {
        refresh(ctx, timeout, preconditions).await
    } else {
        create(ctx, &body, timeout, preconditions).await
    })
}

/// Collect the LOCK body up to the configured limit (413 above it).
async fn read_body<B>(ctx: &Ctx, body: B) -> Result<Bytes, Rejection>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let limit = ctx.cfg.limits.max_lockinfo_bytes;
    read_limited(&ctx.parts.headers, body, limit)
        .await
        .map_err(|e| match e {
            ReadError::TooLarge => Rejection::PayloadTooLarge { limit },
            ReadError::Failed(e) => bad_request(format!("could not read the LOCK body: {e}")),
        })
}

/// §9.10.2: no body, an `If` header naming exactly one lock token, any URL in its scope.
async fn refresh<B>(
    ctx: Ctx,
    timeout: LockTimeout,
    preconditions: Preconditions,
) -> Response<ResponseBody<B>> {
    let token = {
        let Some(header) = &ctx.if_header else {
            return ctx.reject(bad_request(
                "a LOCK without a body refreshes a lock and needs an If header with its token",
            ));
        };
        let mut tokens: Vec<&str> = header.state_tokens().collect();
        tokens.sort_unstable();
        tokens.dedup();
        if tokens.len() != 1 {
            return ctx.reject(bad_request(
                "a lock refresh must name exactly one lock token in the If header",
            ));
        }
        tokens[0].to_owned()
    };
    let mismatch = Rejection::LockTokenMismatch {
        status: StatusCode::PRECONDITION_FAILED,
    };
    let mut query = LockQuery::new().covering(ctx.target.clone());
    ctx.add_submission(&mut query);
    let locks = match ctx.cfg.store.query_boxed(&query).await {
        Ok(l) => l,
        Err(e) => return ctx.reject(store_failed(&e)),
    };
    // Authorization before any conditional header (RFC 4918 §8.5): a refresh of another
    // principal's lock is a 403 whatever its `If` header or preconditions say, and a 412 tells
    // a non-holder nothing.
    let access = TokenAccess::new(&token, &ctx.target, ctx.principal.as_deref());
    let forbidden = locks
        .iter()
        .any(|l| l.token == *token && access.judge(l) == TokenVerdict::Forbidden);
    if forbidden {
        return ctx.reject(Rejection::Forbidden);
    }
    let mut states = States::default();
    if !ctx.settle(&mut states, |s| if_holds(&ctx, &locks, s)).await {
        // The token's lock covers the request URI: something else in the header is false.
        let in_scope = locks
            .iter()
            .any(|l| l.token == *token && l.covers(&ctx.target));
        return ctx.reject(if in_scope {
            Rejection::PreconditionFailed
        } else {
            mismatch
        });
    }
    if !preconditions.is_empty()
        && !preconditions.hold(ctx.state_of(&mut states, &ctx.target).await)
    {
        return ctx.reject(Rejection::PreconditionFailed);
    }
    match ctx.cfg.store.refresh_boxed(access, timeout).await {
        Ok(TokenOutcome::Done(lock)) => {
            #[cfg(feature = "tracing")]
            tracing::info!(
                root = lock.root.as_str(),
                principal = lock.principal.as_deref(),
                ?timeout,
                "tower-locks: lock refreshed"
            );
            ctx.cfg
                .event(|| LockEvent::Refreshed { lock: lock.clone() });
            lock_response(&lock, StatusCode::OK, false)
        }
        Ok(TokenOutcome::Forbidden(_)) => ctx.reject(Rejection::Forbidden),
        Ok(_) => ctx.reject(mismatch),
        Err(e) => ctx.reject(store_failed(&e)),
    }
}

/// §9.10.1: a new lock. The plan's verdict first (the `If` header, and the parent's tokens
/// when the LOCK creates its target); then conflicts, quotas and creation in one store step;
/// then the empty resource of an unmapped URL, through the resource space (the lock is rolled
/// back if that fails).
async fn create<B>(
    ctx: Ctx,
    body: &[u8],
    timeout: LockTimeout,
    preconditions: Preconditions,
) -> Response<ResponseBody<B>> {
    let depth = match parse_depth(&ctx.parts.headers) {
        Ok(None | Some(Depth::Infinity)) => LockDepth::Infinity,
        Ok(Some(Depth::Zero)) => LockDepth::Zero,
        Ok(Some(Depth::One)) => {
            return ctx.reject(bad_request("LOCK accepts only Depth: 0 or infinity"))
        }
        Err(e) => return ctx.reject(bad_request(e.to_string())),
    };
    let info = match parse_lockinfo(body, ctx.cfg.limits.max_owner_bytes) {
        Ok(info) => info,
        Err(LockInfoError::DoctypeNotAllowed) => return ctx.reject(Rejection::ExternalEntities),
        Err(LockInfoError::OwnerTooLarge { limit }) => {
            return ctx.reject(Rejection::PayloadTooLarge { limit })
        }
        Err(e) => return ctx.reject(bad_request(format!("lockinfo: {e}"))),
    };

    let mut plan = Plan::new("LOCK", &ctx.target, None);
    ctx.add_submission(&mut plan.query);
    let locks = match ctx.cfg.store.query_boxed(&plan.query).await {
        Ok(l) => l,
        Err(e) => return ctx.reject(store_failed(&e)),
    };
    // Whether the LOCK creates its target decides the parent's part of the verdict.
    let mut states = States::default();
    let state = ctx.state_of(&mut states, &ctx.target).await;
    // Only what is known to be missing is created through the resource space: its PUT reaches
    // an application handler, which may ignore `If-None-Match: *` and empty an existing
    // resource. When nothing could tell, only a creator hook (which never overwrites) is
    // asked, and never for a URL written as a collection: an empty resource is never one
    // (§7.3). Otherwise the URL is locked, nothing more (D3).
    let create = match state {
        ResourceState::Missing => true,
        ResourceState::Unknown => {
            ctx.cfg.space.creator.is_some() && !ctx.target.has_trailing_slash()
        }
        _ => false,
    };
    let preconditions_hold = preconditions.hold(state);
    let verdict = ctx
        .settle(&mut states, |s| verdict(&ctx, &plan, &locks, s))
        .await;
    if let Err(rejection) = verdict {
        return ctx.reject(rejection);
    }
    // The preconditions only after the lock verdict and the conflicts on the target that the
    // query already shows (D7; RFC 9110 §13.2.1: a request that fails anyway is not judged on
    // them).
    if !preconditions_hold {
        let conflicting = locks
            .iter()
            .filter(|l| l.covers(&ctx.target) && !l.scope.compatible_with(info.scope));
        let (roots, hidden) = ctx.disclose(&conflicting.collect::<Vec<_>>());
        if roots.is_empty() && hidden == 0 {
            return ctx.reject(Rejection::PreconditionFailed);
        }
        return ctx.reject(Rejection::Conflict { roots, hidden });
    }

    let mut new = ctx
        .cfg
        .new_lock(ctx.target.clone(), ctx.principal.as_deref())
        .scope(info.scope)
        .depth(depth)
        .timeout(timeout);
    new.owner = info.owner.map(Into::into);
    // Should this future be dropped before it answers, or the store fail to say what it did,
    // the lock it may have created is held by nobody: the next request removes it. Until the
    // LOCK has answered, no write relies on it (it may still be rolled back).
    let _pending = ctx.cfg.holds.withhold([new.token.as_str()]);
    let mut unheld = ctx.cfg.leftovers.guard_unheld(&new.token, &new.root);
    let created = match ctx.cfg.store.create_boxed(new).await {
        Ok(created) => created,
        Err(e) => return ctx.reject(store_failed(&e)),
    };
    let res = grant(&ctx, created, create, &mut unheld).await;
    unheld.done();
    res
}

/// Take the store's answer to the lock's creation (conflicts, quotas), check the in-flight
/// writes, create the empty resource of an unmapped URL when `create`, and answer. `unheld`
/// removes the lock should this future be dropped.
async fn grant<B>(
    ctx: &Ctx,
    created: CreateOutcome,
    create: bool,
    unheld: &mut Unfinished,
) -> Response<ResponseBody<B>> {
    let lock = match created {
        CreateOutcome::Created(lock) => lock,
        CreateOutcome::Conflict(conflicts) => {
            let on_target: Vec<&Lock> =
                conflicts.iter().filter(|l| l.covers(&ctx.target)).collect();
            let rejection = if on_target.is_empty() {
                let below: Vec<&Lock> = conflicts.iter().collect();
                match ctx.disclose(&below) {
                    // A multistatus names each blocking member; with none nameable, a 423.
                    (roots, hidden) if roots.is_empty() => Rejection::Conflict { roots, hidden },
                    (roots, hidden) => Rejection::ConflictBelow {
                        request: ctx.target.href(),
                        roots,
                        hidden,
                    },
                }
            } else {
                let (roots, hidden) = ctx.disclose(&on_target);
                Rejection::Conflict { roots, hidden }
            };
            return ctx.reject(rejection);
        }
        CreateOutcome::QuotaExceeded { quota, limit } => {
            return ctx.reject(Rejection::quota(quota, limit))
        }
    };
    // The lock exists now; a write checked before it is still in flight if it holds one of
    // the lock's paths. Roll back rather than grant a lock under a running write.
    if let Err(in_flight) = ctx.cfg.keep_unless_in_flight(&lock).await {
        let (roots, hidden) = named(&in_flight, 0);
        return ctx.reject(Rejection::Conflict { roots, hidden });
    }
    // Announced as soon as it stands: anything that happens to it from now on (a release, a
    // break, the removal of its parent) is heard of after its grant.
    ctx.cfg.event(|| LockEvent::Granted { lock: lock.clone() });
    unheld.announce(true);
    // Ask again now that the lock stands and no checked write is in flight: the HEAD before
    // the grant may be stale (another client's PUT may have created the resource since), and
    // the resource space's PUT may ignore `If-None-Match` (D3).
    let create = create
        && (ctx.cfg.space.creator.is_some()
            || ctx
                .cfg
                .space
                .probe(&ctx.target, &ctx.cfg.prefix, &ctx.parts)
                .await
                == ResourceState::Missing);
    let mut status = StatusCode::OK;
    if create {
        let created = ctx
            .cfg
            .space
            .create_empty(&ctx.target, &ctx.cfg.prefix, &ctx.parts)
            .await;
        match created {
            // Nothing can create resources: the URL is locked, nothing more.
            None | Some(CreateResult::AlreadyExists) => {}
            Some(CreateResult::Created) => status = StatusCode::CREATED,
            Some(CreateResult::Failed(code)) => {
                // Its resource was never created: the lock goes with it, heard removed before
                // the roll-back, which may be dropped after the store has done it.
                ctx.cfg.event(|| LockEvent::Removed { lock: lock.clone() });
                unheld.announce(false);
                ctx.cfg.roll_back(&lock).await;
                let mut res = Response::new(ResponseBody::empty());
                *res.status_mut() = code;
                return res;
            }
        }
    }
    // Logged once the lock stands: a lock rolled back above was never granted. Tokens stay
    // out of the logs: whoever holds one may use an anonymous lock.
    #[cfg(feature = "tracing")]
    tracing::info!(
        root = lock.root.as_str(),
        scope = ?lock.scope,
        depth = ?lock.depth,
        principal = lock.principal.as_deref(),
        "tower-locks: lock granted"
    );
    lock_response(&lock, status, true)
}

/// `If-Match` and `If-None-Match` on a LOCK, which the layer answers itself, so no service
/// evaluates them (RFC 9110 §13.1.1, §13.1.2; Appendix D.1 of RFC 4918: `If-Match: *` keeps a
/// LOCK from creating its resource). Parsed with the other headers (400); evaluated after the
/// lock verdict.
struct Preconditions {
    if_match: Option<EntityTags>,
    if_none_match: Option<EntityTags>,
}

impl Preconditions {
    fn parse(headers: &http::HeaderMap) -> Result<Self, HeaderError> {
        Ok(Self {
            if_match: parse_entity_tags(headers, &IF_MATCH, "If-Match")?,
            if_none_match: parse_entity_tags(headers, &IF_NONE_MATCH, "If-None-Match")?,
        })
    }

    fn is_empty(&self) -> bool {
        self.if_match.is_none() && self.if_none_match.is_none()
    }

    /// `If-Match` holds when the resource exists with one of the listed entity tags (strong
    /// comparison), or at all for `*`; `If-None-Match` when it does not exist, or has none of
    /// the listed tags (weak comparison). A state the probe could not tell makes neither hold
    /// ([decision D13](crate::decisions#d13)).
    fn hold(&self, state: &ResourceState) -> bool {
        let current = match state {
            ResourceState::Exists { etag } => Some(etag.as_ref()),
            ResourceState::Missing => None,
            // Exists, tag unknown: only `If-Match: *` can be told.
            ResourceState::ExistsWithUnreadableEtag => {
                return matches!(self.if_match, None | Some(EntityTags::Any))
                    && self.if_none_match.is_none()
            }
            _ => return self.is_empty(),
        };
        let match_holds = match &self.if_match {
            None => true,
            Some(EntityTags::Any) => current.is_some(),
            Some(EntityTags::Listed(tags)) => current
                .flatten()
                .is_some_and(|e| tags.iter().any(|t| t.strong_eq(e))),
        };
        let none_match_holds = match &self.if_none_match {
            None => true,
            Some(EntityTags::Any) => current.is_none(),
            Some(EntityTags::Listed(tags)) => !current
                .flatten()
                .is_some_and(|e| tags.iter().any(|t| t.weak_eq(e))),
        };
        match_holds && none_match_holds
    }
}

fn lock_response<B>(
    lock: &Lock,
    status: StatusCode,
    with_token: bool,
) -> Response<ResponseBody<B>> {
    // The store's time of the grant (or refresh): the answer gives the whole timeout, whatever
    // the clock of this host says (Redis judges expiry by its own).
    let granted_at = match (lock.expires_at, lock.timeout) {
        (Some(at), LockTimeout::Seconds(secs)) => at
            .checked_sub(Duration::from_secs(secs.into()))
            .unwrap_or(at),
        _ => SystemTime::now(),
    };
    let body = lock_response_body(lock, granted_at);
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
