//! The fast path for the most common guarded request: a plain write (PUT, POST, PATCH,
//! PROPPATCH, MKCOL, extension methods) without an `If` header, on a path nothing is locked
//! on, checked by a store that answers without waiting ([`LockStore::query_now`]).
//!
//! The decision is the one the full flow ([`super::write`]) would take — with no `If` header no
//! token is submitted, so every lock the plan's query finds would need the full verdict, and
//! when it finds none the request is forwarded unchanged — but it is taken synchronously in
//! `call`, so the request goes to the inner service with no boxed future, no request context
//! and no copy of the request parts. Anything else (an `If` header, a path that does not
//! parse, a store that needs I/O or fails) falls back to the full flow, which decides from
//! scratch; a write that finds locks takes the full flow for its verdict (see below).
//!
//! The in-flight hold is registered before the store is asked, exactly as in the full flow
//! (see [`crate::holds`]), and travels with the response future. When the store does report
//! locks, the hold, the query and the answer go to the full flow, which takes the verdict
//! with them instead of asking again. A store that did not answer at once when the layer was
//! built (one that needs I/O, like Redis) is never tried here.
//!
//! [`LockStore::query_now`]: crate::LockStore::query_now

use http::{HeaderName, Request};

use crate::holds::HoldGuard;
use crate::layer::Config;
use crate::plan::plain_write_touches_parent;
use crate::store::{Lock, LockQuery, QueryTarget};
use crate::ResourcePath;

const IF: HeaderName = HeaderName::from_static("if");

/// What the fast path found for a request.
pub(crate) enum Fast {
    /// Nothing is locked: forward at once, holding this until the inner service answers.
    Forward(HoldGuard),
    /// Locks were found: the full flow takes the verdict with these.
    Found(Found),
    /// Not a plain write, or no answer at once: the full flow decides from scratch.
    Full,
}

/// The fast path's hold, query and answer, handed to the full flow when locks were found.
pub(crate) struct Found {
    pub(crate) hold: HoldGuard,
    pub(crate) query: LockQuery,
    pub(crate) locks: Vec<Lock>,
}

/// Whether `req` is a plain write that may be forwarded at once (see the module docs).
pub(crate) fn plain_write<B>(cfg: &Config, req: &Request<B>) -> Fast {
    if !cfg.store_answers_now {
        return Fast::Full;
    }
    let method = req.method().as_str();
    if matches!(method, "LOCK" | "UNLOCK" | "DELETE" | "COPY" | "MOVE") {
        return Fast::Full;
    }
    if req.headers().contains_key(IF) {
        return Fast::Full;
    }
    let limits = &cfg.limits;
    let Ok(path) = ResourcePath::parse_limited(
        req.uri().path(),
        limits.max_path_bytes,
        limits.max_path_depth,
    ) else {
        return Fast::Full;
    };
    let target = if cfg.prefix.is_root() {
        path
    } else {
        path.under_prefix(&cfg.prefix)
    };
    // The plan of a plain write, built directly: the target, and its parent when the write
    // may create the target (`Plan::new` asks the same store query and holds the same paths;
    // a unit test in `crate::plan` keeps the two in step).
    let parent = target
        .parent()
        .filter(|_| plain_write_touches_parent(method));
    let touched = std::iter::once((&target, false)).chain(parent.as_ref().map(|p| (p, false)));
    let hold = cfg.holds.acquire(touched, Vec::new());
    let mut targets = Vec::with_capacity(2);
    for path in std::iter::once(target).chain(parent) {
        targets.push(QueryTarget {
            path,
            descendants: false,
        });
    }
    let query = LockQuery { targets };
    let Some(answer) = cfg.store.query_now_dyn(&query) else {
        return Fast::Full;
    };
    #[cfg(feature = "tracing")]
    tracing::trace!(
        ok = answer.is_ok(),
        method,
        path = query.targets[0].path.as_str(),
        "tower-locks: store query (answered at once)"
    );
    match answer {
        Ok(locks) if locks.is_empty() => Fast::Forward(hold),
        Ok(locks) => Fast::Found(Found { hold, query, locks }),
        Err(_) => Fast::Full,
    }
}
