//! Every guarded method other than LOCK and UNLOCK: check, forward, clean up.
//!
//! The hold is registered and the store asked in `call`. When the store answers at once and
//! the verdict needs nothing it cannot know there, the request is forwarded or refused on the
//! spot; otherwise the same plan and verdict finish in the request's future.

use std::sync::Arc;

use http::{Request, Response, StatusCode};

use super::context::store_failed;
use super::plan::{CleanupWhen, Plan};
use super::verdict::{reliable, verdict, Allowed, States};
use super::Ctx;
use crate::body::ResponseBody;
use crate::config::Config;
use crate::holds::{FencingToken, HoldGuard};
use crate::leftovers::Leftover;
use crate::response::{Rejection, WouldReject};
use crate::store::{Lock, LockQuery, LockStoreError};
use crate::ResourcePath;

/// A write whose check goes on in the request's future: what `call` found out.
pub(crate) struct Write<B> {
    ctx: Box<Ctx>,
    body: B,
    check: Check,
}

/// The check of a write as far as `call` took it.
pub(crate) struct Check {
    plan: Plan,
    hold: HoldGuard,
    /// The store's answer, when it came at once.
    answer: Option<Result<Vec<Lock>, LockStoreError>>,
}

/// What an admitted write carries to the inner service.
#[derive(Default)]
pub(crate) struct Admitted {
    /// The fencing number of the newest lock it relied on.
    fence: Option<u64>,
    /// In dry-run mode, the refusal that was not made.
    would_reject: Option<WouldReject>,
}

/// What `call` decides for a write.
pub(crate) enum Now {
    /// Forward the request, holding its paths until its answer is over (body included).
    Forward(HoldGuard, Admitted),
    /// Refuse it.
    Refuse(Rejection),
    /// Finish in the request's future.
    Later(Check),
}

/// Plan the write, register its hold, and decide it now if the store answers at once.
pub(crate) fn check_now(ctx: &Ctx) -> Now {
    let mut plan = Plan::new(
        ctx.parts.method.as_str(),
        &ctx.target,
        ctx.destination.as_ref(),
    );
    ctx.add_submission(&mut plan.query);
    // Registered before the store is asked, dropped when its answer is over (body included): a
    // LOCK granted meanwhile sees it and is rolled back (see `crate::holds`).
    let mut hold = ctx.cfg.holds.acquire(plan.touched(), ctx.submitted());
    // Work an earlier request left unfinished goes first, in the future.
    let answer = if ctx.cfg.store_answers_now && !ctx.cfg.leftovers.any() {
        ctx.cfg.store.query_now_dyn(&plan.query)
    } else {
        None
    };
    // A removal cleans up after the inner service answered, which needs the future.
    if let (Some(answer), false) = (&answer, plan.removes()) {
        let mut states = States::default();
        let decided = match answer {
            Ok(locks) => ctx.settle_now(&mut states, |s| verdict(ctx, &plan, locks, s)),
            Err(e) => Some(Err(store_failed(e))),
        };
        match decided.map(|d| admit(ctx, d, &mut hold)) {
            // A dry run's would-be refusal goes in the response too: the future puts it there.
            Some(Ok(admitted)) if admitted.would_reject.is_none() => {
                return Now::Forward(hold, admitted)
            }
            Some(Ok(_)) => {}
            Some(Err(rejection)) => return Now::Refuse(rejection),
            None => {}
        }
    }
    Now::Later(Check { plan, hold, answer })
}

impl<B> Write<B> {
    pub(crate) fn new(ctx: Ctx, body: B, check: Check) -> Self {
        Write {
            ctx: Box::new(ctx),
            body,
            check,
        }
    }

    /// Finish the check, forward through `call`, clean up after a removal.
    pub(crate) async fn run<ResBody, E, Fut>(
        self,
        call: impl FnOnce(Request<B>) -> Fut,
    ) -> Result<Response<ResponseBody<ResBody>>, E>
    where
        Fut: std::future::Future<Output = Result<Response<ResBody>, E>>,
    {
        let Write {
            ctx,
            body,
            check:
                Check {
                    plan,
                    mut hold,
                    answer,
                },
        } = self;
        let answer = match answer {
            Some(answer) => answer,
            None => {
                ctx.cfg.finish_leftovers().await;
                ctx.cfg.store.query_boxed(&plan.query).await
            }
        };
        let decided = match &answer {
            Ok(locks) => {
                // A probe may keep the verdict waiting: meanwhile the hold names only what the
                // verdict may rely on (a lock being removed refuses the write at `admit`).
                if ctx.cfg.space.can_probe() {
                    hold.rely_on(reliable(&ctx, &plan, locks));
                }
                let mut states = States::default();
                ctx.settle(&mut states, |s| verdict(&ctx, &plan, locks, s))
                    .await
            }
            Err(e) => Err(store_failed(e)),
        };
        let admitted = match admit(&ctx, decided, &mut hold) {
            Ok(admitted) => admitted,
            Err(rejection) => return Ok(ctx.reject(rejection)),
        };
        let would_reject = admitted.would_reject.clone();
        let cfg = Arc::clone(&ctx.cfg);
        // An allowed removal's check reported every lock below it; a dry run's refused one may
        // have stopped early (`Below::UntilBlocked`), and a failed store reported nothing.
        let checked = match (&answer, &would_reject, plan.removes()) {
            (Ok(locks), None, true) => Some(removed_with(&plan, locks)),
            _ => None,
        };
        // From here on, no write relies on a lock going with the resource (D15).
        let _marked = checked
            .as_ref()
            .map(|locks| cfg.holds.withhold(locks.iter().map(|l| l.token.as_str())));
        let res = call(request(*ctx, body, admitted)).await?;
        if plan.removes() {
            cleanup(&cfg, &plan, checked, res.status()).await;
        }
        let mut res = res.map(|b| ResponseBody::held(b, Some(hold)));
        if let Some(w) = would_reject {
            res.extensions_mut().insert(w);
        }
        Ok(res)
    }
}

/// Admit a write on the verdict, with the policies on top of it: a failed store forwards
/// unchecked when fail-open is on; in dry-run mode a refusal is logged and the request
/// forwarded with it in its extensions. From here on the hold names only the tokens of the
/// locks the write relied on.
fn admit(
    ctx: &Ctx,
    decided: Result<Allowed, Rejection>,
    hold: &mut HoldGuard,
) -> Result<Admitted, Rejection> {
    match decided {
        Ok(allowed) => {
            // A lock it relies on is being removed (UNLOCK): it will not stand by this write.
            if !hold.rely_on(allowed.relied) {
                return Err(Rejection::Locked {
                    roots: vec![ctx.target.href()],
                    hidden: 0,
                });
            }
            Ok(Admitted {
                fence: allowed.fence,
                would_reject: None,
            })
        }
        Err(Rejection::StoreUnavailable) if ctx.cfg.fail_open => {
            #[cfg(feature = "tracing")]
            tracing::warn!(
                method = %ctx.parts.method,
                path = ctx.target.as_str(),
                "tower-locks: store failed, forwarding UNCHECKED (fail-open)"
            );
            hold.rely_on(Vec::new());
            Ok(Admitted::default())
        }
        Err(rejection) if ctx.cfg.dry_run => {
            #[cfg(feature = "tracing")]
            tracing::warn!(
                method = %ctx.parts.method,
                path = ctx.target.as_str(),
                ?rejection,
                "tower-locks: DRY RUN, would have refused; forwarding"
            );
            hold.rely_on(Vec::new());
            Ok(Admitted {
                fence: None,
                would_reject: Some(WouldReject(rejection)),
            })
        }
        Err(rejection) => Err(rejection),
    }
}

/// The request to forward: the original parts, with the fencing number and, in dry-run
/// mode, the refusal that was not made in the extensions.
pub(crate) fn request<B>(ctx: Ctx, body: B, admitted: Admitted) -> Request<B> {
    let Ctx { mut parts, .. } = ctx;
    if let Some(f) = admitted.fence {
        parts.extensions.insert(FencingToken(f));
    }
    if let Some(w) = admitted.would_reject {
        parts.extensions.insert(w);
    }
    Request::from_parts(parts, body)
}

/// The locks at or below a path a removal may take away (`plan.cleanup()`), once each.
fn removed_with<'a>(plan: &Plan, locks: &'a [Lock]) -> Vec<&'a Lock> {
    let mut removed: Vec<&Lock> = locks
        .iter()
        .filter(|l| plan.cleanup().any(|(path, _)| path.contains(&l.root)))
        .collect();
    removed.sort_unstable_by(|a, b| a.token.cmp(&b.token));
    removed.dedup_by(|a, b| a.token == b.token);
    removed
}

/// RFC 4918 §6.1 (8): a lock whose root became unmapped is deleted with it.
/// `checked`: the locks the removal's check reported below the paths it may remove. They are
/// removed by token, so a lock granted since (by another layer on the same store, on the
/// resource created anew, say) is not touched ([decision D20](crate::decisions#d20)). Without
/// a full check answer (a failed store forwarded under fail-open, a dry run's refusal), the
/// locks standing below the removed paths once the service has answered are read and removed
/// the same way. All of it under one guard: dropped or failed, the rest is queued.
async fn cleanup(cfg: &Config, plan: &Plan, checked: Option<Vec<&Lock>>, status: StatusCode) {
    if !status.is_success() || status == StatusCode::MULTI_STATUS {
        return;
    }
    let paths: Vec<&ResourcePath> = plan
        .cleanup()
        .filter(|(_, when)| path_removed(*when, status))
        .map(|(path, _)| path)
        .collect();
    if paths.is_empty() {
        return;
    }
    let read;
    let read_marks = checked.is_none();
    let locks = match checked {
        Some(locks) => locks,
        None => {
            let below = paths
                .iter()
                .fold(LockQuery::new(), |q, path| q.subtree((*path).clone()));
            match cfg.store.query_boxed(&below).await {
                Ok(found) => {
                    read = found;
                    read.iter().collect()
                }
                Err(_err) => {
                    #[cfg(feature = "tracing")]
                    tracing::error!(
                        error = &_err as &(dyn std::error::Error + 'static),
                        path = paths[0].as_str(),
                        "tower-locks: the locks of a resource removed unchecked stay until they expire"
                    );
                    return;
                }
            }
        }
    };
    let removed: Vec<Leftover> = locks
        .into_iter()
        .filter(|l| paths.iter().any(|path| path.contains(&l.root)))
        .map(Leftover::removed)
        .collect();
    // The checked ones are marked since the removal was let through; these from now (D15).
    let _marked = read_marks.then(|| cfg.holds.withhold(removed.iter().map(Leftover::token)));
    cfg.leftovers.guard(removed).finish(cfg.remover()).await;
}

/// Whether a path of `plan.cleanup()` was removed by an answer of `status` (2xx, not 207): a
/// replaced destination only when the answer says so (204).
fn path_removed(when: CleanupWhen, status: StatusCode) -> bool {
    when != CleanupWhen::Replaced || status == StatusCode::NO_CONTENT
}
