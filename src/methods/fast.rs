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
//! On the built-in [`MemoryLockStore`] (recognised when the layer is built, however it was
//! passed) and a path that is already canonical, the same decision is taken on borrowed keys:
//! the path is not parsed into an owned [`ResourcePath`], the hold copies the keys into its
//! slot, and the store is asked without a [`LockQuery`]. A forwarded write then allocates
//! nothing and takes no reference count for its paths. Any other store goes through
//! [`LockStore::query_now`]; a test runs both against the full flow on the same requests.
//!
//! [`LockStore::query_now`]: crate::LockStore::query_now

use http::{HeaderName, Request};

use crate::holds::{HoldGuard, Touched};
use crate::layer::Config;
use crate::path::{canonical_key, key_parent};
use crate::plan::plain_write_touches_parent;
use crate::store::{Lock, LockQuery, MemoryLockStore, QueryTarget};
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
    let (raw, limits) = (req.uri().path(), &cfg.limits);
    if let Some(memory) = &cfg.memory {
        if let Some((key, trailing_slash)) =
            canonical_key(raw, limits.max_path_bytes, limits.max_path_depth)
        {
            return borrowed(cfg, memory, method, key, trailing_slash);
        }
    }
    let Ok(path) = ResourcePath::parse_limited(raw, limits.max_path_bytes, limits.max_path_depth)
    else {
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
    let touched = std::iter::once(Touched::path(&target, false))
        .chain(parent.as_ref().map(|p| Touched::path(p, false)));
    let hold = cfg.holds.acquire(touched, Vec::new());
    let query = query_of(target, parent);
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

/// The fast path on the built-in [`MemoryLockStore`] for a path that is already canonical:
/// the same decision, taken on borrowed keys. The hold copies the keys into its slot's
/// buffer, and the store is asked without a [`LockQuery`], so a forwarded write allocates
/// nothing and counts no reference for its paths. Only when locks are found are the path
/// and the query built, for the full flow.
fn borrowed(
    cfg: &Config,
    memory: &MemoryLockStore,
    method: &str,
    key: &str,
    trailing_slash: bool,
) -> Fast {
    let joined;
    let key = if cfg.prefix.is_root() {
        key
    } else {
        // What `ResourcePath::under_prefix` builds for a path other than the root.
        joined = [cfg.prefix.as_str(), key].concat();
        joined.as_str()
    };
    let parent = key_parent(key).filter(|_| plain_write_touches_parent(method));
    let touched = std::iter::once(Touched {
        key,
        trailing_slash,
        subtree: false,
    })
    .chain(parent.map(|key| Touched {
        key,
        trailing_slash: true,
        subtree: false,
    }));
    let hold = cfg.holds.acquire(touched, Vec::new());
    let locks = memory.plain_write_locks(key, parent);
    #[cfg(feature = "tracing")]
    tracing::trace!(
        ok = true,
        method,
        path = key,
        "tower-locks: store query (answered at once)"
    );
    if locks.is_empty() {
        return Fast::Forward(hold);
    }
    let target = ResourcePath::from_key(key, trailing_slash);
    let parent = target.parent().filter(|_| parent.is_some());
    let query = query_of(target, parent);
    Fast::Found(Found { hold, query, locks })
}

/// The store query of a plain write: `target`, and its parent when the write touches it.
fn query_of(target: ResourcePath, parent: Option<ResourcePath>) -> LockQuery {
    let mut targets = Vec::with_capacity(2);
    for path in std::iter::once(target).chain(parent) {
        targets.push(QueryTarget {
            path,
            descendants: false,
        });
    }
    LockQuery { targets }
}
