//! Cases on the quotas `create` checks.

use std::time::Duration;

use super::kit::{create_conflict, create_ok, ok, tokens, unlock_ok, Ns};
use crate::{
    CreateOutcome, LockDepth, LockScope, LockStore, LockTimeout, ManualClock, NewLock, Quota,
    ResourcePath, TokenAccess, TokenOutcome,
};

/// `principal_quota`: a principal holding its quota of live locks is refused; other principals
/// are not; unlocking frees quota.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::principal_quota(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn principal_quota<S: LockStore>(store: &S) {
    const CASE: &str = "principal_quota";
    let ns = Ns::new();
    let alice = ns.principal("alice");
    let bob = ns.principal("bob");
    let req = |p: &str, who: &str| NewLock::new(ns.p(p)).principal(who).principal_quota(2);
    let first = create_ok(CASE, store, req("/1", &alice)).await;
    create_ok(CASE, store, req("/2", &alice)).await;
    let out = ok(CASE, store.create(req("/3", &alice)).await);
    assert_eq!(
        out,
        CreateOutcome::QuotaExceeded {
            quota: Quota::Principal,
            limit: 2
        },
        "conformance `{CASE}`: third lock of a quota of 2"
    );
    create_ok(CASE, store, req("/3", &bob)).await;
    let root = ns.p("/1");
    let out = ok(
        CASE,
        store
            .unlock(TokenAccess::new(&first.token, &root, Some(&alice)))
            .await,
    );
    assert!(
        matches!(out, TokenOutcome::Done(_)),
        "conformance `{CASE}`: {out:?}"
    );
    create_ok(CASE, store, req("/4", &alice)).await;
    let out = ok(
        CASE,
        store.create(req("/5", &alice).principal_quota(3)).await,
    );
    assert!(
        matches!(out, CreateOutcome::Created(_)),
        "conformance `{CASE}`: quota 3: {out:?}"
    );
    let out = ok(
        CASE,
        store.create(req("/6", &alice).principal_quota(3)).await,
    );
    assert_eq!(
        out,
        CreateOutcome::QuotaExceeded {
            quota: Quota::Principal,
            limit: 3
        },
        "conformance `{CASE}`"
    );
}

/// What a quota counts at this moment: the smallest limit at which `request(path, limit)` is
/// granted, minus one. Probes fresh paths of `ns`; every granted probe is unlocked again.
async fn quota_held<S: LockStore>(
    case: &str,
    store: &S,
    ns: &Ns,
    request: impl Fn(ResourcePath, u32) -> NewLock,
) -> u32 {
    let mut probes = 0u32;
    let mut granted = async |limit: u32| {
        probes += 1;
        let path = ns.p(&format!("/probe{probes}"));
        let req = request(path.clone(), limit);
        let who = req.principal.clone();
        match ok(case, store.create(req).await) {
            CreateOutcome::Created(l) => {
                let access = TokenAccess::new(&l.token, &path, who.as_deref());
                let out = ok(case, store.unlock(access).await);
                assert!(
                    matches!(out, TokenOutcome::Done(_)),
                    "conformance `{case}`: unlock a probe: {out:?}"
                );
                true
            }
            CreateOutcome::QuotaExceeded { .. } => false,
            other => panic!("conformance `{case}`: a quota probe got {other:?}"),
        }
    };
    // Smallest granted limit: double, then halve the gap.
    let (mut lo, mut hi) = (0u32, 1u32);
    while !granted(hi).await {
        (lo, hi) = (hi, hi.saturating_mul(2));
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if granted(mid).await {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi - 1
}

fn quota_exceeded(quota: Quota, limit: u32) -> CreateOutcome {
    CreateOutcome::QuotaExceeded { quota, limit }
}

/// `principal_quota` without a principal: all anonymous locks count together against it
/// ([`Quota::Anonymous`]), locks of principals do not; unlocking frees quota.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::anonymous_quota(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn anonymous_quota<S: LockStore>(store: &S) {
    const CASE: &str = "anonymous_quota";
    let ns = Ns::new();
    let alice = ns.principal("alice");
    let anonymous = |path, limit| NewLock::new(path).principal_quota(limit);
    let held = quota_held(CASE, store, &ns, anonymous).await;
    let limit = held + 2;
    let first = create_ok(CASE, store, anonymous(ns.p("/1"), limit)).await;
    create_ok(CASE, store, anonymous(ns.p("/2"), limit)).await;
    let out = ok(CASE, store.create(anonymous(ns.p("/3"), limit)).await);
    assert_eq!(
        out,
        quota_exceeded(Quota::Anonymous, limit),
        "conformance `{CASE}`: two more anonymous locks than were held"
    );
    // A principal's locks are counted apart.
    let alices = NewLock::new(ns.p("/3")).principal(alice.as_str());
    create_ok(CASE, store, alices.principal_quota(1)).await;
    unlock_ok(CASE, store, &first, &ns.p("/1"), None).await;
    create_ok(CASE, store, anonymous(ns.p("/4"), limit)).await;
}

/// `resource_quota`: at most that many live locks rooted at the same path ([`Quota::Resource`]);
/// locks below the path or on another path do not count; unlocking frees quota.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::resource_quota(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn resource_quota<S: LockStore>(store: &S) {
    const CASE: &str = "resource_quota";
    let ns = Ns::new();
    let shared = |rel: &str| {
        NewLock::new(ns.p(rel))
            .scope(LockScope::Shared)
            .resource_quota(3)
    };
    let first = create_ok(CASE, store, shared("/r")).await;
    create_ok(CASE, store, shared("/r/").depth(LockDepth::Infinity)).await;
    create_ok(CASE, store, shared("/r/below")).await;
    create_ok(CASE, store, shared("/r/below")).await;
    create_ok(CASE, store, shared("/other")).await;
    create_ok(CASE, store, shared("/r")).await;
    let out = ok(CASE, store.create(shared("/r")).await);
    assert_eq!(
        out,
        quota_exceeded(Quota::Resource, 3),
        "conformance `{CASE}`: a fourth lock on /r"
    );
    let out = ok(CASE, store.create(shared("/r").resource_quota(4)).await);
    assert!(
        matches!(out, CreateOutcome::Created(_)),
        "conformance `{CASE}`: quota 4: {out:?}"
    );
    unlock_ok(CASE, store, &first, &ns.p("/r"), None).await;
    let out = ok(CASE, store.create(shared("/r")).await);
    assert_eq!(
        out,
        quota_exceeded(Quota::Resource, 3),
        "conformance `{CASE}`: still four after one unlock"
    );
    create_ok(CASE, store, shared("/r").resource_quota(4)).await;
}

/// `store_quota`: at most that many live locks in the whole store ([`Quota::Store`]), whoever
/// holds them; unlocking frees quota.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::store_quota(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn store_quota<S: LockStore>(store: &S) {
    const CASE: &str = "store_quota";
    let ns = Ns::new();
    let bob = ns.principal("bob");
    let any = |path, limit| NewLock::new(path).store_quota(limit);
    let held = quota_held(CASE, store, &ns, any).await;
    let limit = held + 2;
    let first = create_ok(CASE, store, any(ns.p("/1"), limit)).await;
    create_ok(CASE, store, any(ns.p("/2"), limit).principal(bob.as_str())).await;
    let out = ok(
        CASE,
        store
            .create(any(ns.p("/3"), limit).principal(bob.as_str()))
            .await,
    );
    assert_eq!(
        out,
        quota_exceeded(Quota::Store, limit),
        "conformance `{CASE}`: two more locks than were held"
    );
    create_ok(CASE, store, NewLock::new(ns.p("/3"))).await;
    unlock_ok(CASE, store, &first, &ns.p("/1"), None).await;
    create_ok(CASE, store, any(ns.p("/4"), limit + 1)).await;
}

/// Conflicts are checked before quotas: a request that conflicts is answered with the
/// conflict even when a quota would refuse it too (here every quota is 0).
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::conflict_before_quota(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn conflict_before_quota<S: LockStore>(store: &S) {
    const CASE: &str = "conflict_before_quota";
    let ns = Ns::new();
    let alice = ns.principal("alice");
    let held = create_ok(CASE, store, NewLock::new(ns.p("/c"))).await;
    let zero = |req: NewLock| req.principal_quota(0).resource_quota(0).store_quota(0);
    for req in [
        zero(NewLock::new(ns.p("/c"))),
        zero(NewLock::new(ns.p("/c")).principal(alice.as_str())),
        zero(NewLock::new(ns.p("/")).depth(LockDepth::Infinity)),
    ] {
        let got = create_conflict(CASE, store, req).await;
        assert_eq!(tokens(&got), tokens([&held]), "conformance `{CASE}`");
    }
    let out = ok(CASE, store.create(zero(NewLock::new(ns.p("/free")))).await);
    assert!(
        matches!(out, CreateOutcome::QuotaExceeded { limit: 0, .. }),
        "conformance `{CASE}`: without a conflict, a quota of 0 refuses: {out:?}"
    );
}

/// Expired locks never count against a quota (checked with a [`ManualClock`] that `store`
/// reads): once a principal's, the anonymous, a resource's or the store's locks expire, the
/// quota they filled is free again.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// use std::sync::Arc;
/// use tower_locks::{ManualClock, MemoryLockStore};
/// let clock = Arc::new(ManualClock::new());
/// let store = MemoryLockStore::with_clock(clock.clone());
/// tower_locks::conformance::quota_expiry_manual(&store, &clock).await;
/// # });
/// ```
pub async fn quota_expiry_manual<S: LockStore>(store: &S, clock: &ManualClock) {
    const CASE: &str = "quota_expiry_manual";
    let ns = Ns::new();
    let alice = ns.principal("alice");
    // Not anonymous: the store quota's lock must leave the anonymous bucket alone.
    let bob = ns.principal("bob");
    let anonymous = |path, limit| NewLock::new(path).principal_quota(limit);
    let held_anonymous = quota_held(CASE, store, &ns, anonymous).await;
    let any = |path, limit| NewLock::new(path).store_quota(limit);
    let held_store = quota_held(CASE, store, &ns, any).await;
    let t = LockTimeout::Seconds(10);
    let principal = |rel: &str| {
        NewLock::new(ns.p(rel))
            .principal(alice.as_str())
            .principal_quota(1)
    };
    let anonymous = |rel: &str| NewLock::new(ns.p(rel)).principal_quota(held_anonymous + 1);
    let resource = || {
        NewLock::new(ns.p("/r"))
            .scope(LockScope::Shared)
            .resource_quota(1)
    };
    for req in [principal("/p"), anonymous("/a"), resource()] {
        create_ok(CASE, store, req.timeout(t)).await;
    }
    // Those three fill the store quota too; after expiry it is checked first, while empty.
    let store_limit = held_store + 3;
    let refused = [
        (
            Quota::Store,
            store_limit,
            NewLock::new(ns.p("/s"))
                .principal(bob.as_str())
                .store_quota(store_limit),
        ),
        (Quota::Principal, 1, principal("/p2")),
        (Quota::Anonymous, held_anonymous + 1, anonymous("/a2")),
        (Quota::Resource, 1, resource()),
    ];
    for (quota, limit, req) in &refused {
        let out = ok(CASE, store.create(req.clone()).await);
        assert_eq!(
            out,
            quota_exceeded(*quota, *limit),
            "conformance `{CASE}`: before expiry"
        );
    }
    clock.advance(Duration::from_secs(10));
    for (_, _, req) in refused {
        create_ok(CASE, store, req).await;
    }
}
