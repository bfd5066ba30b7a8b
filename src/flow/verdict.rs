//! The verdict on a guarded request, from the locks the store reported: `412` when the `If`
//! header is false, `423` when a lock the plan requires was not satisfied, otherwise what the
//! request relied on.
//!
//! The verdict is a plain function of the locks and of what is known about the resources
//! (existence, ETags). When it needs a resource's state that is not known yet it says so
//! ([`Step::Need`]), and the caller finds out and asks again: in `call` when nothing can probe
//! (every state is then [`ResourceState::Unknown`] at once), or in the request's future through
//! the probe. One verdict, two ways to wait.
//!
//! `If` evaluation (RFC 4918 §10.4.3, §10.4.4): the header is an OR over its lists (all of
//! them, tagged for any resource: [decision D6](crate::decisions#d6)), each list an AND of
//! conditions, `Not` negating one condition. A state token matches when a live lock with that
//! token has the list's resource in its scope (so an unknown or bogus token is simply false,
//! never an error). An entity tag matches the resource's current ETag under the weak
//! comparison. An unmapped or foreign resource has no state, so both kinds of condition are
//! false for it (and `Not …` true). A resource whose state cannot be learned (no probe, or a
//! probe that could not tell) makes every list with an entity-tag condition on it false,
//! `Not` included: the layer never claims a condition holds that it could not check
//! ([decision D13](crate::decisions#d13)). So does a resource the request does not act on
//! (neither its URI nor its `Destination`), which is never probed
//! ([decision D6](crate::decisions#d6)). States are asked for lazily: only for lists whose
//! token conditions already hold, once per resource.

use super::plan::{Plan, When};
use super::Ctx;
use crate::headers::{ConditionKind, EntityTag, IfList};
use crate::hooks::ResourceState;
use crate::response::Rejection;
use crate::store::{judge_resource, Lock};
use crate::ResourcePath;

/// Either the answer, or the resource whose state is needed first.
pub(crate) enum Step<T> {
    Done(T),
    Need(ResourcePath),
}

/// What is known about the resources the verdict asked for.
#[derive(Debug, Default)]
pub(crate) struct States {
    known: Vec<(ResourcePath, ResourceState)>,
}

impl States {
    /// The state of `path` as written: a probe asks for the URL with its trailing slash, and
    /// a server may answer `/a` and `/a/` differently.
    pub(crate) fn get(&self, path: &ResourcePath) -> Option<&ResourceState> {
        self.known
            .iter()
            .find(|(p, _)| p == path && p.has_trailing_slash() == path.has_trailing_slash())
            .map(|(_, s)| s)
    }

    pub(crate) fn insert(&mut self, path: ResourcePath, state: ResourceState) {
        self.known.push((path, state));
    }
}

/// What an allowed request relied on.
#[derive(Debug, Default)]
pub(crate) struct Allowed {
    /// The highest fencing number among the locks it satisfied.
    pub(crate) fence: Option<u64>,
    /// The tokens of the locks it satisfied: only these are protected while it is in flight.
    pub(crate) relied: Vec<String>,
}

/// The verdict of `plan` on the request in `ctx`, given the store's `locks`.
pub(crate) fn verdict(
    ctx: &Ctx,
    plan: &Plan,
    locks: &[Lock],
    states: &States,
) -> Step<Result<Allowed, Rejection>> {
    match if_holds(ctx, locks, states) {
        Step::Need(path) => return Step::Need(path),
        Step::Done(false) => return Step::Done(Err(Rejection::PreconditionFailed)),
        Step::Done(true) => {}
    }
    if locks.is_empty() {
        // Nothing to satisfy.
        return Step::Done(Ok(Allowed::default()));
    }
    let tokens: Vec<&str> = ctx.submitted().collect();
    let judge = |when, allowed: &mut Allowed| {
        let mut missing = Vec::new();
        plan.for_each_group(locks, when, |group| {
            let (ok, not) = judge_resource(
                group,
                &tokens,
                ctx.principal.as_deref(),
                ctx.cfg.owner_writes,
            );
            for lock in ok {
                allowed.fence = allowed.fence.max(Some(lock.fence));
                allowed.relied.push(lock.token.as_str().to_owned());
            }
            missing.extend(not);
        });
        missing
    };
    let mut allowed = Allowed::default();
    let missing = judge(When::Always, &mut allowed);
    if !missing.is_empty() {
        return Step::Done(Err(ctx.locked(&missing)));
    }
    let mut creating = Allowed::default();
    let missing = judge(When::Creating, &mut creating);
    if missing.is_empty() {
        allowed.fence = allowed.fence.max(creating.fence);
        allowed.relied.extend(creating.relied);
    } else if let Some(target) = plan.created() {
        // Only a request that creates its target needs the collection's tokens; existence
        // not known counts as creating (fail closed, decision D4 in `crate::decisions`).
        match states.get(target) {
            None => return Step::Need(target.clone()),
            Some(ResourceState::Exists { .. } | ResourceState::ExistsWithUnreadableEtag) => {}
            Some(_) => return Step::Done(Err(ctx.locked(&missing))),
        }
    }
    allowed.relied.sort_unstable();
    allowed.relied.dedup();
    Step::Done(Ok(allowed))
}

/// The tokens the verdict of `plan` may rely on, given the store's `locks`: those of the
/// locks it requires that the request submitted (or, where owners write without their tokens,
/// that its principal holds). A write's hold names only these while its verdict waits for a
/// probe: a token the request merely mentions is pinned by no wait.
pub(crate) fn reliable(ctx: &Ctx, plan: &Plan, locks: &[Lock]) -> Vec<String> {
    let submitted: Vec<&str> = ctx.submitted().collect();
    let own = |l: &Lock| {
        ctx.cfg.owner_writes
            && ctx.principal.is_some()
            && l.principal.as_deref() == ctx.principal.as_deref()
    };
    let mut tokens = Vec::new();
    for when in [When::Always, When::Creating] {
        plan.for_each_group(locks, when, |group| {
            let usable = group
                .iter()
                .filter(|l| submitted.contains(&l.token.as_str()) || own(l));
            tokens.extend(usable.map(|l| l.token.as_str().to_owned()));
        });
    }
    tokens.sort_unstable();
    tokens.dedup();
    tokens
}

/// Whether the request's `If` header holds (`true` when there is none).
pub(crate) fn if_holds(ctx: &Ctx, locks: &[Lock], states: &States) -> Step<bool> {
    let Some(header) = &ctx.if_header else {
        return Step::Done(true);
    };
    for (list, resource) in header.lists.iter().zip(&ctx.if_resources) {
        if !tokens_hold(list, resource.as_ref(), locks) {
            continue;
        }
        let needs_etag = list
            .conditions
            .iter()
            .any(|c| matches!(c.kind, ConditionKind::ETag(_)));
        let holds = match (needs_etag, resource) {
            (false, _) => true,
            // A foreign resource: no state, so no current ETag.
            (true, None) => etags_hold(list, None),
            // A resource the request does not act on is not probed: its handlers would run
            // for a client that may not read it, and tell it the resource's entity tag (D6).
            (true, Some(path)) if !ctx.acts_on(path) => false,
            (true, Some(path)) => match states.get(path) {
                None => return Step::Need(path.clone()),
                Some(ResourceState::Exists { etag }) => etags_hold(list, etag.as_ref()),
                Some(ResourceState::Missing) => etags_hold(list, None),
                Some(ResourceState::Unknown | ResourceState::ExistsWithUnreadableEtag) => false,
            },
        };
        if holds {
            return Step::Done(true);
        }
    }
    Step::Done(false)
}

fn tokens_hold(list: &IfList, resource: Option<&ResourcePath>, locks: &[Lock]) -> bool {
    list.conditions.iter().all(|c| match &c.kind {
        ConditionKind::StateToken(token) => {
            let matched =
                resource.is_some_and(|r| locks.iter().any(|l| l.token == *token && l.covers(r)));
            matched != c.not
        }
        ConditionKind::ETag(_) => true,
    })
}

fn etags_hold(list: &IfList, current: Option<&EntityTag>) -> bool {
    list.conditions.iter().all(|c| match &c.kind {
        ConditionKind::ETag(tag) => current.is_some_and(|cur| cur.weak_eq(tag)) != c.not,
        ConditionKind::StateToken(_) => true,
    })
}
