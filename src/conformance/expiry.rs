//! Cases on expiry, on a manual clock and in real time.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use super::kit::{close, create_ok, ok, query_tokens, tokens, Ns};
use crate::{
    CreateOutcome, Lock, LockDepth, LockQuery, LockStore, LockTimeout, ManualClock, NewLock,
    TokenAccess, TokenOutcome,
};

/// Expiry with a [`ManualClock`] (the store must read time from `clock`): a lock lives its
/// whole timeout (10 s locks at 9 s, a 3600 s lock at 3599 s) and expires at its end; an
/// expired lock is never reported, never blocks, cannot be refreshed or unlocked, is not
/// counted by `remove_subtree` nor against a quota; infinite locks never expire.
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
/// tower_locks::conformance::expiry_manual(&store, &clock).await;
/// # });
/// ```
pub async fn expiry_manual<S: LockStore>(store: &S, clock: &ManualClock) {
    const CASE: &str = "expiry_manual";
    let ns = Ns::new();
    let alice = ns.principal("alice");
    let held = expiry_setup(CASE, store, &ns, &alice, 10).await;
    // A long lock, in a namespace of its own (the checks at 10 s list the first one).
    let hour_ns = Ns::new();
    let hour = create_ok(
        CASE,
        store,
        NewLock::new(hour_ns.p("/hour")).timeout(LockTimeout::Seconds(3600)),
    )
    .await;
    clock.advance(Duration::from_secs(9));
    for l in &held.expiring {
        assert!(
            ok(CASE, store.get(&l.token).await).is_some(),
            "conformance `{CASE}`: live at 9 s"
        );
    }
    let blocked = ok(CASE, store.create(NewLock::new(ns.p("/inf/x"))).await);
    assert!(
        matches!(blocked, CreateOutcome::Conflict(_)),
        "conformance `{CASE}`: still blocks at 9 s: {blocked:?}"
    );
    clock.advance(Duration::from_secs(1));
    expiry_check(CASE, store, &ns, &alice, &held).await;
    // It lives its whole timeout, to the second.
    clock.advance(Duration::from_secs(3589));
    let covering = LockQuery::new().covering(hour_ns.p("/hour"));
    assert!(
        ok(CASE, store.get(&hour.token).await).is_some()
            && query_tokens(CASE, store, &covering).await == tokens([&hour]),
        "conformance `{CASE}`: a 3600 s lock is live at 3599 s"
    );
    let blocked = ok(CASE, store.create(NewLock::new(hour_ns.p("/hour"))).await);
    assert!(
        matches!(blocked, CreateOutcome::Conflict(_)),
        "conformance `{CASE}`: a 3600 s lock still blocks at 3599 s: {blocked:?}"
    );
    clock.advance(Duration::from_secs(1));
    assert!(
        ok(CASE, store.get(&hour.token).await).is_none()
            && query_tokens(CASE, store, &covering).await.is_empty(),
        "conformance `{CASE}`: a 3600 s lock has expired at 3600 s"
    );
    clock.advance(Duration::from_secs(100 * 365 * 24 * 3600));
    let forever = ok(CASE, store.get(&held.infinite.token).await);
    assert!(
        forever.is_some(),
        "conformance `{CASE}`: an infinite lock never expires"
    );
}

/// A refresh restarts the timer (checked with a [`ManualClock`] that `store` reads).
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
/// tower_locks::conformance::refresh_resets_timer_manual(&store, &clock).await;
/// # });
/// ```
pub async fn refresh_resets_timer_manual<S: LockStore>(store: &S, clock: &ManualClock) {
    const CASE: &str = "refresh_resets_timer_manual";
    let ns = Ns::new();
    let path = ns.p("/r");
    let lock = create_ok(
        CASE,
        store,
        NewLock::new(path.clone()).timeout(LockTimeout::Seconds(10)),
    )
    .await;
    for _ in 0..3 {
        clock.advance(Duration::from_secs(8));
        let out = ok(
            CASE,
            store
                .refresh(
                    TokenAccess::new(&lock.token, &path, None),
                    LockTimeout::Seconds(10),
                )
                .await,
        );
        let TokenOutcome::Done(l) = out else {
            panic!("conformance `{CASE}`: refresh before expiry: {out:?}");
        };
        let want = clock_now(clock) + Duration::from_secs(10);
        assert!(
            l.expires_at
                .is_some_and(|at| close(at, want, Duration::from_secs(1))),
            "conformance `{CASE}`: the timer restarts at the refresh: {l:?}"
        );
    }
    clock.advance(Duration::from_secs(9));
    assert!(
        ok(CASE, store.get(&lock.token).await).is_some(),
        "conformance `{CASE}`: refreshed"
    );
    clock.advance(Duration::from_secs(1));
    assert!(
        ok(CASE, store.get(&lock.token).await).is_none(),
        "conformance `{CASE}`: expired"
    );
    let out = ok(
        CASE,
        store
            .refresh(
                TokenAccess::new(&lock.token, &path, None),
                LockTimeout::Seconds(10),
            )
            .await,
    );
    assert_eq!(
        out,
        TokenOutcome::NotFound,
        "conformance `{CASE}`: refresh after expiry"
    );
    create_ok(CASE, store, NewLock::new(path)).await;
}

fn clock_now(clock: &ManualClock) -> SystemTime {
    crate::Clock::now(clock)
}

/// Expiry in real time, for stores with their own clock: one-second locks, gone after 1.5 s,
/// and a lock refreshed at once to three seconds, live at 1.5 s and gone at 3.5 s. Same rules
/// as [`expiry_manual`].
///
/// # Panics
/// When the store breaks the rule.
///
/// ```no_run
/// # #[tokio::main] async fn main() {
/// tower_locks::conformance::expiry_real_time(&tower_locks::MemoryLockStore::new()).await;
/// # }
/// ```
pub async fn expiry_real_time<S: LockStore>(store: &S) {
    const CASE: &str = "expiry_real_time";
    let ns = Ns::new();
    let alice = ns.principal("alice");
    let held = expiry_setup(CASE, store, &ns, &alice, 1).await;
    // A refresh before expiry keeps a lock alive past the first deadline.
    let path = Ns::new().p("/kept");
    let kept = create_ok(
        CASE,
        store,
        NewLock::new(path.clone()).timeout(LockTimeout::Seconds(1)),
    )
    .await;
    // Refreshed at once, so that no pause of a loaded machine races its first timeout; every
    // wait below errs on the side a slow machine only makes safer.
    let out = ok(
        CASE,
        store
            .refresh(
                TokenAccess::new(&kept.token, &path, None),
                LockTimeout::Seconds(3),
            )
            .await,
    );
    assert!(
        matches!(out, TokenOutcome::Done(_)),
        "conformance `{CASE}`: refresh: {out:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    expiry_check(CASE, store, &ns, &alice, &held).await;
    assert!(
        ok(CASE, store.get(&kept.token).await).is_some(),
        "conformance `{CASE}`: a refreshed lock outlives its first timeout"
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(
        ok(CASE, store.get(&kept.token).await).is_none(),
        "conformance `{CASE}`: the refreshed lock expires after its new timeout"
    );
}

struct ExpiryLocks {
    expiring: Vec<Lock>,
    infinite: Lock,
}

async fn expiry_setup<S: LockStore>(
    case: &str,
    store: &S,
    ns: &Ns,
    alice: &str,
    secs: u32,
) -> ExpiryLocks {
    let t = LockTimeout::Seconds(secs);
    let expiring = vec![
        create_ok(
            case,
            store,
            NewLock::new(ns.p("/inf"))
                .depth(LockDepth::Infinity)
                .timeout(t),
        )
        .await,
        create_ok(case, store, NewLock::new(ns.p("/below/a/b")).timeout(t)).await,
        create_ok(
            case,
            store,
            NewLock::new(ns.p("/q1"))
                .principal(alice)
                .principal_quota(2)
                .timeout(t),
        )
        .await,
        create_ok(
            case,
            store,
            NewLock::new(ns.p("/q2"))
                .principal(alice)
                .principal_quota(2)
                .timeout(t),
        )
        .await,
    ];
    let infinite = create_ok(
        case,
        store,
        NewLock::new(ns.p("/forever")).timeout(LockTimeout::Infinite),
    )
    .await;
    ExpiryLocks { expiring, infinite }
}

async fn expiry_check<S: LockStore>(
    case: &str,
    store: &S,
    ns: &Ns,
    alice: &str,
    held: &ExpiryLocks,
) {
    for l in &held.expiring {
        assert!(
            ok(case, store.get(&l.token).await).is_none(),
            "conformance `{case}`: get reports an expired lock {l:?}"
        );
        let by_token = LockQuery::new().token(l.token.as_str());
        assert_eq!(
            query_tokens(case, store, &by_token).await,
            BTreeSet::new(),
            "conformance `{case}`: a query by token reports an expired lock"
        );
        let out = ok(
            case,
            store
                .refresh(
                    TokenAccess::new(&l.token, &l.root, l.principal.as_deref()),
                    LockTimeout::Seconds(60),
                )
                .await,
        );
        assert_eq!(
            out,
            TokenOutcome::NotFound,
            "conformance `{case}`: refresh of an expired lock"
        );
        let out = ok(
            case,
            store
                .unlock(TokenAccess::new(&l.token, &l.root, l.principal.as_deref()))
                .await,
        );
        assert_eq!(
            out,
            TokenOutcome::NotFound,
            "conformance `{case}`: unlock of an expired lock"
        );
    }
    let q = LockQuery::new().subtree(ns.p(""));
    assert_eq!(
        query_tokens(case, store, &q).await,
        tokens([&held.infinite]),
        "conformance `{case}`: query reports only live locks"
    );
    let q = LockQuery::new().covering(ns.p("/inf/x/y"));
    assert!(
        query_tokens(case, store, &q).await.is_empty(),
        "conformance `{case}`: covering"
    );
    // Expired locks do not block, nor count against a quota.
    create_ok(case, store, NewLock::new(ns.p("/inf/x"))).await;
    create_ok(
        case,
        store,
        NewLock::new(ns.p("/below")).depth(LockDepth::Infinity),
    )
    .await;
    create_ok(
        case,
        store,
        NewLock::new(ns.p("/q3"))
            .principal(alice)
            .principal_quota(2),
    )
    .await;
    create_ok(
        case,
        store,
        NewLock::new(ns.p("/q4"))
            .principal(alice)
            .principal_quota(2),
    )
    .await;
    let n = ok(case, store.remove_subtree(&ns.p("/q1")).await);
    assert_eq!(
        n, 0,
        "conformance `{case}`: remove_subtree counts live locks only"
    );
}
