//! UNLOCK (RFC 4918 §9.11).

use http::{Response, StatusCode};
use http_body::Body;

use super::context::{bad_request, store_failed};
use super::verdict::{if_holds, States};
use super::Ctx;
use crate::body::{read_limited, ReadError, ResponseBody};
use crate::events::LockEvent;
use crate::headers::parse_lock_token;
use crate::response::Rejection;
use crate::store::{BoxError, LockQuery, TokenAccess, TokenOutcome, TokenVerdict};

pub(super) async fn handle<ReqBody, ResBody, E>(
    ctx: Ctx,
    body: ReqBody,
) -> Result<Response<ResponseBody<ResBody>>, E>
where
    ReqBody: Body,
    ReqBody::Error: Into<BoxError>,
{
    ctx.cfg.finish_leftovers().await;
    // §8.4: a body the server would ignore must be refused; any byte of it is one, declared
    // or not (chunked).
    match read_limited(&ctx.parts.headers, body, 0).await {
        Ok(_) => {}
        Err(ReadError::TooLarge) => return Ok(ctx.reject(Rejection::UnsupportedMediaType)),
        Err(ReadError::Failed(e)) => {
            return Ok(ctx.reject(bad_request(format!("request body: {e}"))))
        }
    }
    let token = match parse_lock_token(&ctx.parts.headers) {
        Ok(t) => t,
        Err(e) => return Ok(ctx.reject(bad_request(e.to_string()))),
    };
    let access = TokenAccess {
        token: &token,
        path: &ctx.target,
        principal: ctx.principal.as_deref(),
        privileged: (ctx.cfg.unlock_override.as_ref()).is_some_and(|f| f(&ctx.parts)),
    };
    if ctx.if_header.is_some() {
        // "when the If header is present, it has its normal meaning as a conditional header"
        let mut query = LockQuery::new().covering(ctx.target.clone());
        ctx.add_submission(&mut query);
        let locks = match ctx.cfg.store.query_boxed(&query).await {
            Ok(locks) => locks,
            Err(e) => return Ok(ctx.reject(store_failed(&e))),
        };
        // Authorization before any conditional header (RFC 4918 §8.5): another principal's
        // lock is a 403 whatever the header says.
        let forbidden = locks
            .iter()
            .any(|l| l.token == *token && access.judge(l) == TokenVerdict::Forbidden);
        if forbidden {
            return Ok(ctx.reject(Rejection::Forbidden));
        }
        let mut states = States::default();
        if !ctx.settle(&mut states, |s| if_holds(&ctx, &locks, s)).await {
            return Ok(ctx.reject(Rejection::PreconditionFailed));
        }
    }
    // A checked write relying on this token is in flight: the lock must not vanish under it.
    // Marked as being removed, no write admitted meanwhile relies on it.
    let Some(_removal) = ctx.cfg.holds.begin_removal([token.as_str()]) else {
        return Ok(ctx.reject(Rejection::Locked {
            roots: vec![ctx.target.href()],
            hidden: 0,
        }));
    };
    let outcome = ctx.cfg.store.unlock_boxed(access).await;
    Ok(match outcome {
        Ok(TokenOutcome::Done(lock)) => {
            #[cfg(feature = "tracing")]
            tracing::info!(
                root = lock.root.as_str(),
                principal = lock.principal.as_deref(),
                by = ctx.principal.as_deref(),
                "tower-locks: unlocked"
            );
            let by = ctx.principal.clone();
            ctx.cfg.event(|| {
                if lock.principal.is_some() && lock.principal.as_deref() != by.as_deref() {
                    LockEvent::Broken { lock, by }
                } else {
                    LockEvent::Released { lock }
                }
            });
            let mut res = Response::new(ResponseBody::empty());
            *res.status_mut() = StatusCode::NO_CONTENT;
            res
        }
        Ok(TokenOutcome::Forbidden(_)) => ctx.reject(Rejection::Forbidden),
        Ok(_) => ctx.reject(Rejection::LockTokenMismatch {
            status: StatusCode::CONFLICT,
        }),
        Err(e) => ctx.reject(store_failed(&e)),
    })
}
