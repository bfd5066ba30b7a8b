//! The [`LockStore`] conformance kit (feature `conformance`): the checks every store must
//! pass, reusable by third-party store authors.
//!
//! Each case is a `pub async fn` that panics with a message naming the case and the broken
//! rule. [`run_all`] runs every case, each on a **fresh store** from your factory; the factory
//! gets the [`ManualClock`] the store must read time from, so expiry is checked without
//! waiting. Stores that expire locks on their own clock (Redis, a database with TTLs) use
//! [`run_all_real_time`] instead, which checks expiry with one-second locks and real sleeps
//! (about five seconds in all).
//!
//! Every case also works **inside a shared store**: it only touches paths under its own
//! namespace `/tower-locks-conformance/<uuid>` and principals with a unique suffix, so a
//! factory may hand out the same Redis database every time. Such a store must not hold locks
//! on `/` or on `/tower-locks-conformance` while the kit runs.
//!
//! Run the kit on a multi-threaded runtime: the concurrency cases spawn tasks that race.
//! Don't pause tokio's clock (`start_paused`): the real-time cases need time to pass.
//!
//! Run it from a test of your store crate (`tower-locks` as a dev-dependency with the
//! `conformance` feature):
//!
//! ```
//! use std::sync::Arc;
//! use tower_locks::{conformance, ManualClock, MemoryLockStore};
//!
//! // In your tests: `#[tokio::test(flavor = "multi_thread")] async fn conforms() { … }`
//! #[tokio::main(flavor = "multi_thread")]
//! async fn main() {
//!     // A store on an injectable clock: expiry is checked by moving the clock.
//!     conformance::run_all(|clock: Arc<ManualClock>| MemoryLockStore::with_clock(clock)).await;
//!
//!     // Or one case at a time, e.g. while developing:
//!     let store = MemoryLockStore::new();
//!     conformance::exclusive_shared_compatibility(&store).await;
//! }
//! ```
//!
//! A store that keeps its own time (as a Redis store would):
//!
//! ```no_run
//! # use tower_locks::{conformance, MemoryLockStore};
//! # fn connect_to_test_redis() -> MemoryLockStore { MemoryLockStore::new() }
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() {
//! conformance::run_all_real_time(|| connect_to_test_redis()).await;
//! # }
//! ```
//!
//! Lock values are compared field by field, except that a store may round `expires_at` by up
//! to one second (e.g. keeping milliseconds).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::store::by_root_then_token;
use crate::{
    Below, CheckOutcome, CreateOutcome, Lock, LockDepth, LockQuery, LockScope, LockStore,
    LockStoreError, LockTimeout, ManualClock, NewLock, Quota, ResourcePath, Submission,
    TokenAccess, TokenOutcome,
};

/// Run every case, each on a fresh store from `make`, which must build a store whose time is
/// the given [`ManualClock`].
///
/// # Panics
/// When a case fails, with a message naming it.
///
/// ```
/// # #[tokio::main(flavor = "multi_thread")]
/// # async fn main() {
/// use tower_locks::{conformance, MemoryLockStore};
/// conformance::run_all(|clock| MemoryLockStore::with_clock(clock)).await;
/// # }
/// ```
pub async fn run_all<S: LockStore>(make: impl Fn(Arc<ManualClock>) -> S) {
    let fresh = || make(Arc::new(ManualClock::new()));
    run_clockless(&fresh).await;
    let clock = Arc::new(ManualClock::new());
    expiry_manual(&make(clock.clone()), &clock).await;
    let clock = Arc::new(ManualClock::new());
    refresh_resets_timer_manual(&make(clock.clone()), &clock).await;
    let clock = Arc::new(ManualClock::new());
    quota_expiry_manual(&make(clock.clone()), &clock).await;
}

/// Run every case, each on a fresh store from `make`, checking expiry in real time (locks of
/// one second and sleeps): for stores that expire locks on their own clock.
///
/// # Panics
/// When a case fails, with a message naming it.
///
/// ```no_run
/// # #[tokio::main(flavor = "multi_thread")]
/// # async fn main() {
/// use tower_locks::{conformance, MemoryLockStore};
/// conformance::run_all_real_time(MemoryLockStore::new).await;
/// # }
/// ```
pub async fn run_all_real_time<S: LockStore>(make: impl Fn() -> S) {
    run_clockless(&make).await;
    expiry_real_time(&make()).await;
}

async fn run_clockless<S: LockStore>(make: &impl Fn() -> S) {
    create_get_query_round_trip(&make()).await;
    token_format(&make()).await;
    exclusive_shared_compatibility(&make()).await;
    ancestor_depth_blocks_descendants(&make()).await;
    depth_infinity_blocked_by_locks_below(&make()).await;
    all_conflicts_reported(&make()).await;
    segment_boundaries(&make()).await;
    trailing_slash_equivalence(&make()).await;
    query_matches_reference(&make()).await;
    check_matches_reference(&make()).await;
    any_shared_lock_will_do(&make()).await;
    check_reports_enough(&make()).await;
    query_until_blocked_reports_enough(&make()).await;
    query_pages_list_everything(&make()).await;
    refresh_outcomes(&make()).await;
    unlock_outcomes(&make()).await;
    remove_subtree_counts(&make()).await;
    principal_quota(&make()).await;
    anonymous_quota(&make()).await;
    resource_quota(&make()).await;
    store_quota(&make()).await;
    conflict_before_quota(&make()).await;
    fencing_numbers_increase(&make()).await;
    concurrent_exclusive_create(Arc::new(make())).await;
    concurrent_shared_create(Arc::new(make())).await;
    concurrent_parent_child_create(Arc::new(make())).await;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A unique path namespace for one case.
struct Ns {
    base: String,
    suffix: String,
}

impl Ns {
    fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            base: format!("/tower-locks-conformance/{id}"),
            suffix: id,
        }
    }

    /// `rel` ("/a/b", or "" for the namespace root) inside the namespace.
    fn p(&self, rel: &str) -> ResourcePath {
        let raw = format!("{}{rel}", self.base);
        ResourcePath::parse(&raw).unwrap_or_else(|e| panic!("conformance: bad path {raw}: {e}"))
    }

    /// A random path in the namespace: up to three segments drawn from `names`, and with
    /// `trailing_slash` a one-in-four chance of a trailing slash.
    fn random_path(&self, rng: &mut Rng, names: &[&str], trailing_slash: bool) -> ResourcePath {
        let mut s = String::new();
        for _ in 0..rng.below(4) {
            s.push('/');
            s.push_str(names[rng.below(names.len() as u64) as usize]);
        }
        if trailing_slash && rng.below(4) == 0 {
            s.push('/');
        }
        self.p(&s)
    }

    /// A principal name unique to this case.
    fn principal(&self, name: &str) -> String {
        format!("{name}-{}", self.suffix)
    }
}

fn ok<T>(case: &str, r: Result<T, LockStoreError>) -> T {
    r.unwrap_or_else(|e| panic!("conformance `{case}`: store error: {e} ({e:?})"))
}

async fn create_ok<S: LockStore>(case: &str, store: &S, req: NewLock) -> Lock {
    let what = format!("{req:?}");
    match ok(case, store.create(req).await) {
        CreateOutcome::Created(l) => l,
        other => panic!("conformance `{case}`: expected {what} to be granted, got {other:?}"),
    }
}

async fn create_conflict<S: LockStore>(case: &str, store: &S, req: NewLock) -> Vec<Lock> {
    let what = format!("{req:?}");
    match ok(case, store.create(req).await) {
        CreateOutcome::Conflict(l) => l,
        other => panic!("conformance `{case}`: expected {what} to conflict, got {other:?}"),
    }
}

/// Unlock `lock` through `path` as `principal`; it must succeed.
async fn unlock_ok<S: LockStore>(
    case: &str,
    store: &S,
    lock: &Lock,
    path: &ResourcePath,
    principal: Option<&str>,
) {
    let out = ok(
        case,
        store
            .unlock(TokenAccess::new(&lock.token, path, principal))
            .await,
    );
    assert!(
        matches!(out, TokenOutcome::Done(_)),
        "conformance `{case}`: {out:?}"
    );
}

fn tokens<'a>(locks: impl IntoIterator<Item = &'a Lock>) -> BTreeSet<String> {
    locks.into_iter().map(|l| l.token.to_string()).collect()
}

async fn query_tokens<S: LockStore>(case: &str, store: &S, q: &LockQuery) -> BTreeSet<String> {
    let found = ok(case, store.query(q).await);
    let set = tokens(&found);
    assert_eq!(
        set.len(),
        found.len(),
        "conformance `{case}`: query {q:?} reported a lock twice: {found:?}"
    );
    set
}

/// Field-by-field equality, allowing `expires_at` to differ by up to one second.
fn assert_same_lock(case: &str, got: &Lock, want: &Lock) {
    let ctx = || format!("conformance `{case}`: lock differs:\n got  {got:?}\n want {want:?}");
    assert_eq!(got.token, want.token, "{}", ctx());
    assert_eq!(got.root, want.root, "{}", ctx());
    assert_eq!(
        got.root.href(),
        want.root.href(),
        "{} (trailing slash)",
        ctx()
    );
    assert_eq!(got.scope, want.scope, "{}", ctx());
    assert_eq!(got.depth, want.depth, "{}", ctx());
    assert_eq!(got.owner, want.owner, "{}", ctx());
    assert_eq!(got.principal, want.principal, "{}", ctx());
    assert_eq!(got.timeout, want.timeout, "{}", ctx());
    assert_eq!(got.fence, want.fence, "{}", ctx());
    match (got.expires_at, want.expires_at) {
        (None, None) => {}
        (Some(a), Some(b)) => assert!(close(a, b, Duration::from_secs(1)), "{}", ctx()),
        _ => panic!("{}", ctx()),
    }
}

/// One to three random targets, each covering or subtree, and up to two tokens: of `held`
/// locks, or of no lock.
fn random_query(
    rng: &mut Rng,
    path: &impl Fn(&mut Rng) -> ResourcePath,
    held: &[Lock],
) -> LockQuery {
    let mut q = LockQuery::new();
    for _ in 0..1 + rng.below(3) {
        q.push(path(rng), rng.below(2) == 0);
    }
    for _ in 0..rng.below(3) {
        match rng.below(4) {
            0 => q.push_token(&format!("urn:uuid:{}", uuid::Uuid::new_v4())),
            _ => q.push_token(held[rng.below(held.len() as u64) as usize].token.as_str()),
        }
    }
    q
}

fn close(a: SystemTime, b: SystemTime, tolerance: Duration) -> bool {
    let diff = a.duration_since(b).or_else(|_| b.duration_since(a));
    diff.is_ok_and(|d| d <= tolerance)
}

/// A small deterministic PRNG (xorshift64*), so failures are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---------------------------------------------------------------------------------------------
// Cases

/// A granted lock comes back unchanged from `create`, `get` and `query`; owner, principal,
/// timeout, scope, depth and the root's trailing slash are kept.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::create_get_query_round_trip(&tower_locks::MemoryLockStore::new())
///     .await;
/// # });
/// ```
pub async fn create_get_query_round_trip<S: LockStore>(store: &S) {
    const CASE: &str = "create_get_query_round_trip";
    let ns = Ns::new();
    let alice = ns.principal("alice");
    let req = NewLock::new(ns.p("/coll/"))
        .scope(LockScope::Shared)
        .depth(LockDepth::Infinity)
        .owner("<D:href>mailto:alice@example.com</D:href>")
        .principal(alice.clone())
        .timeout(LockTimeout::Seconds(3600));
    let want = req.clone();
    let before = SystemTime::now();
    let lock = create_ok(CASE, store, req).await;
    assert_eq!(
        lock.token, want.token,
        "conformance `{CASE}`: the request's token is kept"
    );
    assert_eq!(
        lock.root.href(),
        ns.p("/coll/").href(),
        "conformance `{CASE}`: root href"
    );
    assert_eq!(lock.scope, LockScope::Shared, "conformance `{CASE}`: scope");
    assert_eq!(
        lock.depth,
        LockDepth::Infinity,
        "conformance `{CASE}`: depth"
    );
    assert_eq!(lock.owner, want.owner, "conformance `{CASE}`: owner");
    assert_eq!(
        lock.principal.as_deref(),
        Some(alice.as_str()),
        "conformance `{CASE}`: principal"
    );
    assert_eq!(
        lock.timeout,
        LockTimeout::Seconds(3600),
        "conformance `{CASE}`: timeout"
    );
    let expires = lock
        .expires_at
        .unwrap_or_else(|| panic!("conformance `{CASE}`: a 3600 s lock has an expiry"));
    assert!(
        close(
            expires,
            before + Duration::from_secs(3600),
            Duration::from_secs(120)
        ),
        "conformance `{CASE}`: expires_at is about now + timeout: {lock:?}"
    );

    let got = ok(CASE, store.get(&lock.token).await)
        .unwrap_or_else(|| panic!("conformance `{CASE}`: get of a live lock found nothing"));
    assert_same_lock(CASE, &got, &lock);

    for q in [
        LockQuery::new().covering(ns.p("/coll")),
        LockQuery::new().covering(ns.p("/coll/member/deep")),
        LockQuery::new().subtree(ns.p("")),
    ] {
        let found = ok(CASE, store.query(&q).await);
        assert_eq!(
            found.len(),
            1,
            "conformance `{CASE}`: query {q:?} found {found:?}"
        );
        assert_same_lock(CASE, &found[0], &lock);
    }
    let none = ok(
        CASE,
        store.query(&LockQuery::new().covering(ns.p(""))).await,
    );
    assert!(
        none.is_empty(),
        "conformance `{CASE}`: a lock below does not cover its parent"
    );
    assert!(
        ok(
            CASE,
            store
                .get("urn:uuid:00000000-0000-4000-8000-000000000000")
                .await
        )
        .is_none(),
        "conformance `{CASE}`: get of an unknown token"
    );

    let infinite = create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/forever")).timeout(LockTimeout::Infinite),
    )
    .await;
    assert_eq!(
        infinite.timeout,
        LockTimeout::Infinite,
        "conformance `{CASE}`"
    );
    assert_eq!(
        infinite.expires_at, None,
        "conformance `{CASE}`: infinite locks never expire"
    );
    let got = ok(CASE, store.get(&infinite.token).await);
    assert_eq!(
        got.as_ref(),
        Some(&infinite),
        "conformance `{CASE}`: infinite round trip"
    );
}

/// Tokens of created locks are `urn:uuid:` and a random (version 4) UUID, and the store keeps
/// the token of the request.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::token_format(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn token_format<S: LockStore>(store: &S) {
    const CASE: &str = "token_format";
    let ns = Ns::new();
    let mut seen = BTreeSet::new();
    for i in 0..16 {
        let req = NewLock::new(ns.p(&format!("/t{i}")));
        let asked = req.token.clone();
        let lock = create_ok(CASE, store, req).await;
        assert_eq!(
            lock.token, asked,
            "conformance `{CASE}`: the store must keep the token"
        );
        let uuid = lock
            .token
            .strip_prefix("urn:uuid:")
            .and_then(|u| uuid::Uuid::parse_str(u).ok())
            .unwrap_or_else(|| panic!("conformance `{CASE}`: not a urn:uuid: {}", lock.token));
        assert_eq!(
            uuid.get_version_num(),
            4,
            "conformance `{CASE}`: not v4: {}",
            lock.token
        );
        assert_eq!(
            uuid.get_variant(),
            uuid::Variant::RFC4122,
            "conformance `{CASE}`: wrong variant: {}",
            lock.token
        );
        assert!(
            seen.insert(lock.token),
            "conformance `{CASE}`: a token repeated"
        );
    }
}

/// RFC 4918 §9.10.5 on one resource: only shared + shared is compatible, at either depth.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::exclusive_shared_compatibility(&tower_locks::MemoryLockStore::new())
///     .await;
/// # });
/// ```
pub async fn exclusive_shared_compatibility<S: LockStore>(store: &S) {
    const CASE: &str = "exclusive_shared_compatibility";
    let ns = Ns::new();
    let scopes = [LockScope::Exclusive, LockScope::Shared];
    let depths = [LockDepth::Zero, LockDepth::Infinity];
    let mut n = 0;
    for first in scopes {
        for second in scopes {
            for d1 in depths {
                for d2 in depths {
                    n += 1;
                    let path = ns.p(&format!("/r{n}"));
                    let held = create_ok(
                        CASE,
                        store,
                        NewLock::new(path.clone()).scope(first).depth(d1),
                    )
                    .await;
                    let req = NewLock::new(path.clone()).scope(second).depth(d2);
                    let out = ok(CASE, store.create(req).await);
                    let both_shared = first == LockScope::Shared && second == LockScope::Shared;
                    match (both_shared, &out) {
                        (true, CreateOutcome::Created(_)) => {}
                        (false, CreateOutcome::Conflict(c)) if tokens(c) == tokens([&held]) => {}
                        _ => panic!(
                            "conformance `{CASE}`: {first:?}/{d1:?} held, then {second:?}/{d2:?} \
                             on the same path: got {out:?}"
                        ),
                    }
                }
            }
        }
    }
}

/// A depth-infinity lock on an ancestor blocks locks below it (unless both are shared); a
/// depth-0 lock on an ancestor blocks nothing below.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::ancestor_depth_blocks_descendants(
///     &tower_locks::MemoryLockStore::new(),
/// )
/// .await;
/// # });
/// ```
pub async fn ancestor_depth_blocks_descendants<S: LockStore>(store: &S) {
    const CASE: &str = "ancestor_depth_blocks_descendants";
    let ns = Ns::new();
    let inf = create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/inf")).depth(LockDepth::Infinity),
    )
    .await;
    for below in ["/inf/a", "/inf/a/b/c"] {
        for scope in [LockScope::Exclusive, LockScope::Shared] {
            for depth in [LockDepth::Zero, LockDepth::Infinity] {
                let c = create_conflict(
                    CASE,
                    store,
                    NewLock::new(ns.p(below)).scope(scope).depth(depth),
                )
                .await;
                assert_eq!(tokens(&c), tokens([&inf]), "conformance `{CASE}`: {below}");
            }
        }
    }
    create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/zero")).depth(LockDepth::Zero),
    )
    .await;
    create_ok(CASE, store, NewLock::new(ns.p("/zero/a"))).await;
    create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/zero/b")).depth(LockDepth::Infinity),
    )
    .await;
    create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/sh"))
            .scope(LockScope::Shared)
            .depth(LockDepth::Infinity),
    )
    .await;
    create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/sh/a")).scope(LockScope::Shared),
    )
    .await;
    create_conflict(CASE, store, NewLock::new(ns.p("/sh/b"))).await;
}

/// A depth-infinity request conflicts with locks rooted below it, unless both are shared.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::depth_infinity_blocked_by_locks_below(
///     &tower_locks::MemoryLockStore::new(),
/// )
/// .await;
/// # });
/// ```
pub async fn depth_infinity_blocked_by_locks_below<S: LockStore>(store: &S) {
    const CASE: &str = "depth_infinity_blocked_by_locks_below";
    let ns = Ns::new();
    let deep = create_ok(CASE, store, NewLock::new(ns.p("/x/a/b/c"))).await;
    let c = create_conflict(
        CASE,
        store,
        NewLock::new(ns.p("/x")).depth(LockDepth::Infinity),
    )
    .await;
    assert_eq!(tokens(&c), tokens([&deep]), "conformance `{CASE}`");
    let c = create_conflict(
        CASE,
        store,
        NewLock::new(ns.p("/x/a"))
            .scope(LockScope::Shared)
            .depth(LockDepth::Infinity),
    )
    .await;
    assert_eq!(
        tokens(&c),
        tokens([&deep]),
        "conformance `{CASE}`: shared over exclusive"
    );
    // Depth 0 above a lock is fine.
    create_ok(CASE, store, NewLock::new(ns.p("/x")).depth(LockDepth::Zero)).await;

    create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/y/a")).scope(LockScope::Shared),
    )
    .await;
    create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/y"))
            .scope(LockScope::Shared)
            .depth(LockDepth::Infinity),
    )
    .await;
    create_conflict(CASE, store, NewLock::new(ns.p("/y/b"))).await;
}

/// A refused `create` reports every conflicting lock — ancestors, the root, and (depth
/// infinity) descendants — or at least 16 of them when there are more, each once, and nothing
/// compatible or unrelated.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::all_conflicts_reported(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn all_conflicts_reported<S: LockStore>(store: &S) {
    const CASE: &str = "all_conflicts_reported";
    let ns = Ns::new();
    let shared = |p: &str| {
        NewLock::new(ns.p(p))
            .scope(LockScope::Shared)
            .depth(LockDepth::Infinity)
    };
    let a1 = create_ok(CASE, store, shared("/a")).await;
    let a2 = create_ok(CASE, store, shared("/a")).await;
    let ab1 = create_ok(CASE, store, shared("/a/b")).await;
    let ab2 = create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/a/b")).scope(LockScope::Shared),
    )
    .await;
    let below1 = create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/a/b/c/d")).scope(LockScope::Shared),
    )
    .await;
    let below2 = create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/a/b/e")).scope(LockScope::Shared),
    )
    .await;
    let _unrelated = create_ok(CASE, store, NewLock::new(ns.p("/ab"))).await;
    let _zero_ancestor = create_ok(CASE, store, NewLock::new(ns.p("/q"))).await;

    let c = create_conflict(
        CASE,
        store,
        NewLock::new(ns.p("/a/b")).depth(LockDepth::Infinity),
    )
    .await;
    assert_eq!(
        c.len(),
        6,
        "conformance `{CASE}`: each conflict once: {c:?}"
    );
    assert_eq!(
        tokens(&c),
        tokens([&a1, &a2, &ab1, &ab2, &below1, &below2]),
        "conformance `{CASE}`: every conflicting lock is reported"
    );
    let c = create_conflict(CASE, store, NewLock::new(ns.p("/a/b"))).await;
    assert_eq!(
        tokens(&c),
        tokens([&a1, &a2, &ab1, &ab2]),
        "conformance `{CASE}`: depth 0 does not conflict with locks below"
    );

    // More than 16 conflicts below: at least 16 reported, each a real one, each once.
    let mut many = Vec::new();
    for i in 0..40 {
        let member = NewLock::new(ns.p(&format!("/many/m{i:02}"))).scope(LockScope::Shared);
        many.push(create_ok(CASE, store, member).await);
    }
    // An exclusive lock that only a shared request conflicts with, last in tree order.
    let last = create_ok(CASE, store, NewLock::new(ns.p("/many/z"))).await;
    let c = create_conflict(
        CASE,
        store,
        NewLock::new(ns.p("/many")).depth(LockDepth::Infinity),
    )
    .await;
    let reported = tokens(&c);
    assert_eq!(
        reported.len(),
        c.len(),
        "conformance `{CASE}`: each once: {c:?}"
    );
    assert!(
        c.len() >= 16 && reported.is_subset(&tokens(many.iter().chain([&last]))),
        "conformance `{CASE}`: at least 16 of the 41 conflicts below, and only those: {c:?}"
    );
    // A shared request conflicts only with the exclusive lock, behind 40 shared ones.
    let c = create_conflict(
        CASE,
        store,
        NewLock::new(ns.p("/many"))
            .scope(LockScope::Shared)
            .depth(LockDepth::Infinity),
    )
    .await;
    assert_eq!(
        tokens(&c),
        tokens([&last]),
        "conformance `{CASE}`: a shared request finds the exclusive lock below"
    );
}

/// Ancestry works on segment boundaries: `/a` is not an ancestor of `/ab`.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::segment_boundaries(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn segment_boundaries<S: LockStore>(store: &S) {
    const CASE: &str = "segment_boundaries";
    let ns = Ns::new();
    let a = create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/a")).depth(LockDepth::Infinity),
    )
    .await;
    let ab = create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/ab")).depth(LockDepth::Infinity),
    )
    .await;
    let a_dash = create_ok(CASE, store, NewLock::new(ns.p("/a-b"))).await;
    let a_dot = create_ok(CASE, store, NewLock::new(ns.p("/a.b"))).await;
    create_ok(CASE, store, NewLock::new(ns.p("/abc/x"))).await;
    let q = LockQuery::new().covering(ns.p("/ab/x"));
    assert_eq!(
        query_tokens(CASE, store, &q).await,
        tokens([&ab]),
        "conformance `{CASE}`"
    );
    let q = LockQuery::new().subtree(ns.p("/a"));
    assert_eq!(
        query_tokens(CASE, store, &q).await,
        tokens([&a]),
        "conformance `{CASE}`"
    );
    let q = LockQuery::new().covering(ns.p("/a-b"));
    assert_eq!(
        query_tokens(CASE, store, &q).await,
        tokens([&a_dash]),
        "conformance `{CASE}`"
    );
    let q = LockQuery::new().covering(ns.p("/a.b"));
    assert_eq!(
        query_tokens(CASE, store, &q).await,
        tokens([&a_dot]),
        "conformance `{CASE}`"
    );
    let removed = ok(CASE, store.remove_subtree(&ns.p("/a")).await);
    assert_eq!(
        removed, 1,
        "conformance `{CASE}`: remove_subtree(/a) leaves /ab, /a-b, /a.b"
    );
    assert!(
        ok(CASE, store.get(&ab.token).await).is_some(),
        "conformance `{CASE}`"
    );
}

/// `/coll` and `/coll/` are one resource: they conflict, and each finds the other's locks.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::trailing_slash_equivalence(&tower_locks::MemoryLockStore::new())
///     .await;
/// # });
/// ```
pub async fn trailing_slash_equivalence<S: LockStore>(store: &S) {
    const CASE: &str = "trailing_slash_equivalence";
    let ns = Ns::new();
    let slash = create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/coll/")).depth(LockDepth::Infinity),
    )
    .await;
    assert_eq!(
        slash.root.href(),
        ns.p("/coll/").href(),
        "conformance `{CASE}`: href kept"
    );
    let c = create_conflict(CASE, store, NewLock::new(ns.p("/coll"))).await;
    assert_eq!(tokens(&c), tokens([&slash]), "conformance `{CASE}`");
    let q = LockQuery::new().covering(ns.p("/coll"));
    assert_eq!(
        query_tokens(CASE, store, &q).await,
        tokens([&slash]),
        "conformance `{CASE}`"
    );
    let bare = create_ok(CASE, store, NewLock::new(ns.p("/other"))).await;
    let q = LockQuery::new().covering(ns.p("/other/"));
    assert_eq!(
        query_tokens(CASE, store, &q).await,
        tokens([&bare]),
        "conformance `{CASE}`"
    );
    let bare_coll = ns.p("/coll");
    let access = TokenAccess::new(&slash.token, &bare_coll, None);
    let out = ok(CASE, store.unlock(access).await);
    assert!(
        matches!(out, TokenOutcome::Done(_)),
        "conformance `{CASE}`: unlock via /coll: {out:?}"
    );
}

/// `query` answers exactly what [`LockQuery::matches`] says, each lock once, for a randomised
/// set of locks and queries (covering, subtree, several targets, tokens of held locks and of
/// none).
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::query_matches_reference(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn query_matches_reference<S: LockStore>(store: &S) {
    const CASE: &str = "query_matches_reference";
    let ns = Ns::new();
    let names = ["a", "b", "ab", "a b", "%2F"];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let random_path = |rng: &mut Rng| ns.random_path(rng, &names, true);
    let mut held: Vec<Lock> = Vec::new();
    for _ in 0..120 {
        let req = NewLock::new(random_path(&mut rng))
            .scope(if rng.below(3) == 0 {
                LockScope::Exclusive
            } else {
                LockScope::Shared
            })
            .depth(if rng.below(3) == 0 {
                LockDepth::Infinity
            } else {
                LockDepth::Zero
            });
        if let CreateOutcome::Created(l) = ok(CASE, store.create(req).await) {
            held.push(l);
        }
    }
    assert!(
        held.len() > 10,
        "conformance `{CASE}`: too few locks granted: {}",
        held.len()
    );
    for _ in 0..200 {
        let q = random_query(&mut rng, &random_path, &held);
        let want = tokens(held.iter().filter(|l| q.matches(l)));
        let got = query_tokens(CASE, store, &q).await;
        assert_eq!(got, want, "conformance `{CASE}`: query {q:?}");
    }
}

/// `any_shared_lock_will_do`: of the shared locks on a resource, `check` is satisfied by any
/// one the submission holds (RFC 4918 §6.2); a collection's shared lock is not satisfied by a
/// member's, nor the other way round, and an exclusive lock still needs its own token.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::any_shared_lock_will_do(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn any_shared_lock_will_do<S: LockStore>(store: &S) {
    const CASE: &str = "any_shared_lock_will_do";
    let ns = Ns::new();
    let shared = |p: &str, depth| NewLock::new(ns.p(p)).scope(LockScope::Shared).depth(depth);
    let a = create_ok(CASE, store, shared("/c/doc", LockDepth::Zero)).await;
    let b = create_ok(CASE, store, shared("/c/doc", LockDepth::Zero)).await;
    let dir = create_ok(CASE, store, shared("/c", LockDepth::Zero)).await;
    let solo = create_ok(CASE, store, NewLock::new(ns.p("/c/solo"))).await;
    async fn blocking<S: LockStore>(store: &S, q: LockQuery, tokens: Vec<&str>) -> Vec<String> {
        let out = ok(CASE, store.check(&q, Submission::new(&tokens, None)).await);
        let mut found: Vec<String> = out
            .unsatisfied
            .iter()
            .map(|l| l.token.to_string())
            .collect();
        found.sort();
        found
    }
    let check = |q, tokens| blocking(store, q, tokens);
    let doc = || LockQuery::new().covering(ns.p("/c/doc"));
    assert_eq!(
        check(doc(), vec![a.token.as_str()]).await,
        Vec::<String>::new(),
        "conformance `{CASE}`: one of two"
    );
    assert_eq!(
        check(doc(), vec![b.token.as_str()]).await,
        Vec::<String>::new(),
        "conformance `{CASE}`: the other"
    );
    let mut both = vec![a.token.to_string(), b.token.to_string()];
    both.sort();
    assert_eq!(
        check(doc(), vec![]).await,
        both,
        "conformance `{CASE}`: none submitted"
    );
    // The collection and its member are two resources.
    let coll = LockQuery::new().covering(ns.p("/c"));
    assert_eq!(
        check(coll, vec![a.token.as_str()]).await,
        vec![dir.token.to_string()],
        "conformance `{CASE}`: a member's lock for the collection"
    );
    // Below a collection, per resource; an exclusive lock needs its own token.
    let subtree = LockQuery::new().subtree(ns.p("/c"));
    assert_eq!(
        check(subtree, vec![dir.token.as_str(), b.token.as_str()]).await,
        vec![solo.token.to_string()],
        "conformance `{CASE}`: the subtree"
    );
}

/// `check` answers what [`CheckOutcome::judge`](crate::CheckOutcome::judge) says of the locks
/// [`LockQuery::matches`] selects (so of the shared locks on a resource, any one satisfied
/// will do): for random shared locks (some of a principal, some with a custom token) and random
/// queries and submissions (held tokens, their upper-case variants, unknown tokens; with the
/// right principal, another one or none), the unsatisfied locks by root then token, each once
/// (all of them, or at least [`MIN_REPORTED`] when there are more), and the highest fencing
/// number among the satisfied ones when nothing is unsatisfied (when something is, the fencing
/// number may be `None`).
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::check_matches_reference(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn check_matches_reference<S: LockStore>(store: &S) {
    const CASE: &str = "check_matches_reference";
    let ns = Ns::new();
    let names = ["a", "b", "ab"];
    let principals = [ns.principal("alice"), ns.principal("bob")];
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let random_path = |rng: &mut Rng| ns.random_path(rng, &names, false);
    let mut held: Vec<Lock> = Vec::new();
    for i in 0..80 {
        let mut req = NewLock::new(random_path(&mut rng))
            .scope(LockScope::Shared)
            .depth(if rng.below(3) == 0 {
                LockDepth::Infinity
            } else {
                LockDepth::Zero
            });
        if rng.below(3) == 0 {
            req = req.principal(principals[rng.below(2) as usize].as_str());
        }
        if rng.below(5) == 0 {
            req.token = format!("opaquelocktoken:{}-{i}", ns.suffix).into();
        }
        if let CreateOutcome::Created(l) = ok(CASE, store.create(req).await) {
            held.push(l);
        }
    }
    assert!(
        held.len() > 40,
        "conformance `{CASE}`: too few locks granted: {}",
        held.len()
    );
    for _ in 0..300 {
        let q = random_query(&mut rng, &random_path, &held);
        let mut owned: Vec<String> = Vec::new();
        for _ in 0..rng.below(6) {
            let lock = &held[rng.below(held.len() as u64) as usize];
            owned.push(match rng.below(6) {
                0 => lock.token.as_str().to_uppercase(),
                1 => format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                _ => lock.token.as_str().to_owned(),
            });
        }
        let submitted: Vec<&str> = owned.iter().map(String::as_str).collect();
        let principal = match rng.below(3) {
            0 => None,
            n => Some(principals[n as usize - 1].as_str()),
        };
        let submission = Submission::new(&submitted, principal);
        let got = ok(CASE, store.check(&q, submission).await);

        let matching: Vec<&Lock> = held.iter().filter(|l| q.matches(l)).collect();
        let reference = CheckOutcome::judge(
            &q,
            matching.iter().map(|&l| l.clone()).collect(),
            submission,
        );
        let want_unsatisfied = tokens(&reference.unsatisfied);
        let want_fence = matching
            .iter()
            .filter(|l| q.matches_targets(l) && submission.satisfies(l))
            .map(|l| l.fence)
            .max();
        let got_tokens = tokens(&got.unsatisfied);
        assert_eq!(
            got_tokens.len(),
            got.unsatisfied.len(),
            "conformance `{CASE}`: a lock reported twice for {q:?}"
        );
        if want_unsatisfied.len() <= MIN_REPORTED {
            assert_eq!(
                got_tokens, want_unsatisfied,
                "conformance `{CASE}`: unsatisfied locks for {q:?} with {submission:?}"
            );
        } else {
            assert!(
                got_tokens.len() >= MIN_REPORTED && got_tokens.is_subset(&want_unsatisfied),
                "conformance `{CASE}`: at least {MIN_REPORTED} of the unsatisfied locks \
                 {want_unsatisfied:?} for {q:?} with {submission:?}, got {got_tokens:?}"
            );
        }
        if got.allowed() {
            assert_eq!(
                got.fence, want_fence,
                "conformance `{CASE}`: fencing number for {q:?} with {submission:?}"
            );
        } else {
            assert!(
                got.fence.is_none() || got.fence == want_fence,
                "conformance `{CASE}`: fencing number of a refused write for {q:?}: {:?}",
                got.fence
            );
        }
        let queried = ok(CASE, store.query(&q).await);
        let mut in_order: Vec<&Lock> = queried
            .iter()
            .filter(|l| got_tokens.contains(l.token.as_str()))
            .collect();
        in_order.sort_unstable_by(|a, b| by_root_then_token(a, b));
        assert_eq!(
            got.unsatisfied.iter().collect::<Vec<_>>(),
            in_order,
            "conformance `{CASE}`: unsatisfied locks not as `query` reports them, by root then \
             token, for {q:?}"
        );
    }
}

/// `check` may stop at the first unsatisfied locks: a check of a collection with many locked
/// members, none of them submitted, reports at least [`MIN_REPORTED`] of them (or all, when
/// there are fewer), each once, by root then token; submitting every token allows the write
/// with the highest fencing number.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::check_reports_enough(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn check_reports_enough<S: LockStore>(store: &S) {
    const CASE: &str = "check_reports_enough";
    let ns = Ns::new();
    let mut held = Vec::new();
    for i in 0..40 {
        held.push(create_ok(CASE, store, NewLock::new(ns.p(&format!("/coll/m{i:02}")))).await);
    }
    let q = LockQuery::new().subtree(ns.p("/coll"));
    let got = ok(CASE, store.check(&q, Submission::default()).await);
    let got_tokens = tokens(&got.unsatisfied);
    assert!(
        got_tokens.len() >= MIN_REPORTED && got_tokens.len() == got.unsatisfied.len(),
        "conformance `{CASE}`: {} unsatisfied locks reported, each once",
        got.unsatisfied.len()
    );
    assert!(
        got_tokens.is_subset(&tokens(&held)),
        "conformance `{CASE}`: only held locks"
    );
    let queried = ok(CASE, store.query(&q).await);
    let mut in_order: Vec<&Lock> = queried
        .iter()
        .filter(|l| got_tokens.contains(l.token.as_str()))
        .collect();
    in_order.sort_unstable_by(|a, b| by_root_then_token(a, b));
    assert_eq!(
        got.unsatisfied.iter().collect::<Vec<_>>(),
        in_order,
        "conformance `{CASE}`: as `query` reports them, by root then token"
    );
    let all: Vec<&str> = held.iter().map(|l| l.token.as_str()).collect();
    let got = ok(CASE, store.check(&q, Submission::new(&all, None)).await);
    assert!(got.allowed(), "conformance `{CASE}`: every token submitted");
    assert_eq!(
        got.fence,
        held.iter().map(|l| l.fence).max(),
        "conformance `{CASE}`: the highest fencing number"
    );
}

/// A query asking only for what judging a removal needs ([`Below::UntilBlocked`]) reports
/// every lock covering its targets and every lock of its tokens, nothing [`Below::All`] would
/// not report, and below each target asking for descendants, every lock of each resource in
/// path order until it has reported [`Below::BLOCKED`] blocked ones. A resource is open when
/// one of its locks has an asked token or is held by the holder, blocked otherwise. Checked on
/// a collection whose first members are open (by token, by holder, and shared locks opened by
/// one sibling's token) and whose last are blocked, and on random locks and queries.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::query_until_blocked_reports_enough(&tower_locks::MemoryLockStore::new())
///     .await;
/// # });
/// ```
pub async fn query_until_blocked_reports_enough<S: LockStore>(store: &S) {
    const CASE: &str = "query_until_blocked_reports_enough";
    let ns = Ns::new();
    let alice = ns.principal("alice");
    let member = |name: String| NewLock::new(ns.p(&format!("/c/{name}")));
    let mut held = Vec::new();
    for i in 0..20 {
        held.push(create_ok(CASE, store, member(format!("a{i:02}"))).await);
    }
    for i in 0..20 {
        let mine = member(format!("b{i:02}")).principal(alice.clone());
        held.push(create_ok(CASE, store, mine).await);
    }
    for _ in 0..3 {
        let shared = member("c".into()).scope(LockScope::Shared);
        held.push(create_ok(CASE, store, shared).await);
    }
    for i in 0..20 {
        held.push(create_ok(CASE, store, member(format!("d{i:02}"))).await);
    }
    let by_token: Vec<&str> = held[..20]
        .iter()
        .chain(&held[40..41])
        .map(|l| l.token.as_str())
        .collect();
    let mut q = LockQuery::new().subtree(ns.p("/c"));
    for t in &by_token {
        q.push_token(t);
    }
    // Open: a*, b* (alice's), c (one token); blocked: d*. Without a holder, b* are blocked.
    for holder in [Some(alice.as_str()), None] {
        assert_reports_enough(CASE, store, &q.clone().until_blocked(holder), &held).await;
    }

    let ns = Ns::new();
    let alice = ns.principal("alice");
    let mut rng = Rng(0x51_7CC1_B727_220A);
    let names = ["a", "b", "ab"];
    let random_path = |rng: &mut Rng| ns.random_path(rng, &names, true);
    let mut held: Vec<Lock> = Vec::new();
    for _ in 0..120 {
        let mut req = NewLock::new(random_path(&mut rng)).scope(if rng.below(2) == 0 {
            LockScope::Exclusive
        } else {
            LockScope::Shared
        });
        if rng.below(2) == 0 {
            req = req.principal(alice.clone());
        }
        if let CreateOutcome::Created(l) = ok(CASE, store.create(req).await) {
            held.push(l);
        }
    }
    for _ in 0..100 {
        let holder = (rng.below(2) == 0).then_some(alice.as_str());
        let q = random_query(&mut rng, &random_path, &held).until_blocked(holder);
        assert_reports_enough(CASE, store, &q, &held).await;
    }
}

/// `store`'s answer to `q` (a [`Below::UntilBlocked`] query) against the contract, `held`
/// being every live lock of the case.
async fn assert_reports_enough<S: LockStore>(case: &str, store: &S, q: &LockQuery, held: &[Lock]) {
    let Below::UntilBlocked { holder } = &q.below else {
        panic!("conformance `{case}`: not an until-blocked query: {q:?}");
    };
    let got = query_tokens(case, store, q).await;
    let all = tokens(held.iter().filter(|l| q.matches(l)));
    assert!(
        got.is_subset(&all),
        "conformance `{case}`: the answer to {q:?} holds locks it does not match: {:?}",
        got.difference(&all).collect::<Vec<_>>()
    );
    let asked = |l: &Lock| q.tokens.iter().any(|t| l.token == **t);
    let needed = |l: &&Lock| asked(l) || q.targets.iter().any(|t| l.covers(&t.path));
    for l in held.iter().filter(needed) {
        assert!(
            got.contains(l.token.as_str()),
            "conformance `{case}`: a lock covering a target, or asked for by token, is missing \
             from the answer to {q:?}: {l:?}"
        );
    }
    for t in q.targets.iter().filter(|t| t.descendants) {
        let mut below: Vec<&Lock> = held
            .iter()
            .filter(|l| t.path.is_ancestor_of(&l.root))
            .collect();
        below.sort_unstable_by(|a, b| by_root_then_token(a, b));
        let mut blocked = 0;
        for same_root in below.chunk_by(|a, b| a.root == b.root) {
            if blocked == Below::BLOCKED {
                break;
            }
            for l in same_root {
                assert!(
                    got.contains(l.token.as_str()),
                    "conformance `{case}`: {l:?} is missing from the answer to {q:?}: it comes \
                     before the {}th blocked resource below {}",
                    Below::BLOCKED,
                    t.path
                );
            }
            let held_by_holder =
                |l: &&Lock| holder.is_some() && l.principal.as_deref() == holder.as_deref();
            let open = same_root.iter().any(|l| asked(l) || held_by_holder(l));
            blocked += usize::from(!open);
        }
    }
}

/// A listing read a page at a time ([`Below::Page`]) holds every lock below the target, each
/// in exactly one page: a page reports every lock of the first resources after its cursor
/// (never part of a resource's locks), and the next page starts after the last of them.
/// Checked with nested resources, shared locks sharing a resource, a name that sorts between
/// a resource and its members, and pages of 1 to 100 resources.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::query_pages_list_everything(&tower_locks::MemoryLockStore::new())
///     .await;
/// # });
/// ```
pub async fn query_pages_list_everything<S: LockStore>(store: &S) {
    const CASE: &str = "query_pages_list_everything";
    let ns = Ns::new();
    let mut held = Vec::new();
    for i in 0..30 {
        let mut req = NewLock::new(ns.p(&format!("/l/r{:02}{}", i / 2, ["", "/in"][i % 2])));
        if i % 6 == 3 {
            req = req.depth(LockDepth::Infinity);
        }
        held.push(create_ok(CASE, store, req).await);
    }
    for _ in 0..3 {
        let shared = NewLock::new(ns.p("/l/r07!")).scope(LockScope::Shared);
        held.push(create_ok(CASE, store, shared).await);
    }
    create_ok(CASE, store, NewLock::new(ns.p("/elsewhere"))).await;
    let target = ns.p("/l");
    let want: BTreeSet<String> = tokens(&held);
    for size in [1, 4, 7, 100] {
        let (mut seen, mut after, mut pages) = (BTreeSet::new(), None, 0);
        loop {
            pages += 1;
            assert!(
                pages <= 40,
                "conformance `{CASE}`: pages of {size} never end"
            );
            // One resource more than the page holds tells whether another page follows.
            let q = LockQuery::new()
                .subtree(target.clone())
                .page(after.clone(), size + 1);
            let mut below: Vec<Lock> = ok(CASE, store.query(&q).await)
                .into_iter()
                .filter(|l| target.is_ancestor_of(&l.root))
                .collect();
            below.sort_unstable_by(by_root_then_token);
            let roots: Vec<&ResourcePath> = below
                .chunk_by(|a, b| a.root == b.root)
                .map(|same| &same[0].root)
                .collect();
            let page = &roots[..roots.len().min(size)];
            for l in below.iter().filter(|l| page.contains(&&l.root)) {
                assert!(
                    seen.insert(l.token.to_string()),
                    "conformance `{CASE}`: {l:?} in two pages of {size}"
                );
            }
            if let Some(first) = page.first() {
                let all_of_first = held.iter().filter(|l| l.root == **first);
                assert!(
                    all_of_first
                        .into_iter()
                        .all(|l| seen.contains(l.token.as_str())),
                    "conformance `{CASE}`: a page of {size} split the locks of {first}"
                );
            }
            if roots.len() <= size {
                break;
            }
            after = page.last().map(|r| (*r).clone());
        }
        assert_eq!(seen, want, "conformance `{CASE}`: pages of {size}");
    }
    // The page after a resource starts right after it in path order.
    let q = LockQuery::new()
        .subtree(target.clone())
        .page(Some(ns.p("/l/r07")), 1);
    let found = ok(CASE, store.query(&q).await);
    let first = found
        .iter()
        .filter(|l| target.is_ancestor_of(&l.root))
        .min_by(|a, b| by_root_then_token(a, b))
        .map(|l| l.root.clone());
    assert_eq!(
        first,
        Some(ns.p("/l/r07!")),
        "conformance `{CASE}`: the page after /l/r07 starts right after it (`!` sorts before \
         `/`)"
    );
}

/// The fewest unsatisfied locks [`LockStore::check`] may report when there are more: a store
/// may stop there instead of building every blocking lock.
pub const MIN_REPORTED: usize = 16;

/// `refresh`: in scope through a member of a depth-infinity lock, out of scope, another
/// principal (even privileged), unknown token; only the timeout and expiry change.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::refresh_outcomes(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn refresh_outcomes<S: LockStore>(store: &S) {
    const CASE: &str = "refresh_outcomes";
    let ns = Ns::new();
    let alice = ns.principal("alice");
    let bob = ns.principal("bob");
    let lock = create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/c/"))
            .depth(LockDepth::Infinity)
            .principal(alice.clone())
            .owner("<D:href>alice</D:href>")
            .timeout(LockTimeout::Seconds(600)),
    )
    .await;
    let member = ns.p("/c/member");
    let out = ok(
        CASE,
        store
            .refresh(
                TokenAccess::new(&lock.token, &member, Some(&alice)),
                LockTimeout::Seconds(1200),
            )
            .await,
    );
    let TokenOutcome::Done(refreshed) = out else {
        panic!("conformance `{CASE}`: refresh through a member: {out:?}");
    };
    let mut want = lock.clone();
    want.timeout = LockTimeout::Seconds(1200);
    want.expires_at = refreshed.expires_at;
    assert_same_lock(CASE, &refreshed, &want);
    let (Some(old), Some(new)) = (lock.expires_at, refreshed.expires_at) else {
        panic!("conformance `{CASE}`: finite locks have an expiry: {refreshed:?}");
    };
    let grew = new.duration_since(old).unwrap_or_default();
    assert!(
        grew >= Duration::from_secs(598) && grew <= Duration::from_secs(720),
        "conformance `{CASE}`: the timer restarts with the new timeout ({grew:?})"
    );
    let stored = ok(CASE, store.get(&lock.token).await)
        .unwrap_or_else(|| panic!("conformance `{CASE}`: refreshed lock vanished"));
    assert_same_lock(CASE, &stored, &refreshed);

    let outside = ns.p("/elsewhere");
    let out = ok(
        CASE,
        store
            .refresh(
                TokenAccess::new(&lock.token, &outside, Some(&alice)),
                LockTimeout::Seconds(5),
            )
            .await,
    );
    assert!(
        matches!(&out, TokenOutcome::OutOfScope(l) if l.token == lock.token && l.timeout == LockTimeout::Seconds(1200)),
        "conformance `{CASE}`: out of scope, unchanged: {out:?}"
    );
    let zero = create_ok(CASE, store, NewLock::new(ns.p("/z"))).await;
    let zero_member = ns.p("/z/m");
    let out = ok(
        CASE,
        store
            .refresh(
                TokenAccess::new(&zero.token, &zero_member, None),
                LockTimeout::Seconds(5),
            )
            .await,
    );
    assert!(
        matches!(out, TokenOutcome::OutOfScope(_)),
        "conformance `{CASE}`: a depth-0 lock does not cover members: {out:?}"
    );

    let root = ns.p("/c");
    for (who, privileged) in [
        (Some(bob.as_str()), false),
        (None, false),
        (Some(bob.as_str()), true),
    ] {
        let access = TokenAccess {
            privileged,
            ..TokenAccess::new(&lock.token, &root, who)
        };
        let out = ok(CASE, store.refresh(access, LockTimeout::Seconds(5)).await);
        assert!(
            matches!(&out, TokenOutcome::Forbidden(l) if l.token == lock.token),
            "conformance `{CASE}`: refresh by {who:?} (privileged {privileged}) is forbidden: {out:?}"
        );
    }
    let stored = ok(CASE, store.get(&lock.token).await);
    assert_eq!(
        stored.map(|l| l.timeout),
        Some(LockTimeout::Seconds(1200)),
        "conformance `{CASE}`: refused refreshes change nothing"
    );
    let out = ok(
        CASE,
        store
            .refresh(
                TokenAccess::new("urn:uuid:00000000-0000-4000-8000-000000000000", &root, None),
                LockTimeout::Seconds(5),
            )
            .await,
    );
    assert_eq!(
        out,
        TokenOutcome::NotFound,
        "conformance `{CASE}`: unknown token"
    );
    // A lock without principal may be refreshed by anyone holding the token.
    let out = ok(
        CASE,
        store
            .refresh(
                TokenAccess::new(&zero.token, &ns.p("/z"), Some(&bob)),
                LockTimeout::Infinite,
            )
            .await,
    );
    assert!(
        matches!(&out, TokenOutcome::Done(l) if l.timeout == LockTimeout::Infinite && l.expires_at.is_none()),
        "conformance `{CASE}`: refresh to Infinite: {out:?}"
    );
}

/// `unlock`: the same outcomes as refresh, a privileged caller may remove another principal's
/// lock, and a removed lock is gone.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::unlock_outcomes(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn unlock_outcomes<S: LockStore>(store: &S) {
    const CASE: &str = "unlock_outcomes";
    let ns = Ns::new();
    let alice = ns.principal("alice");
    let bob = ns.principal("bob");
    let lock = create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/c"))
            .depth(LockDepth::Infinity)
            .principal(alice.clone()),
    )
    .await;
    let outside = ns.p("/d");
    let member = ns.p("/c/x/y");
    let out = ok(
        CASE,
        store
            .unlock(TokenAccess::new(&lock.token, &outside, Some(&alice)))
            .await,
    );
    assert!(
        matches!(out, TokenOutcome::OutOfScope(_)),
        "conformance `{CASE}`: {out:?}"
    );
    let privileged_outside = TokenAccess {
        privileged: true,
        ..TokenAccess::new(&lock.token, &outside, Some(&bob))
    };
    let out = ok(CASE, store.unlock(privileged_outside).await);
    assert!(
        matches!(out, TokenOutcome::OutOfScope(_)),
        "conformance `{CASE}`: privilege does not widen the scope: {out:?}"
    );
    for who in [Some(bob.as_str()), None] {
        let out = ok(
            CASE,
            store
                .unlock(TokenAccess::new(&lock.token, &member, who))
                .await,
        );
        assert!(
            matches!(&out, TokenOutcome::Forbidden(l) if l.token == lock.token),
            "conformance `{CASE}`: unlock by {who:?}: {out:?}"
        );
    }
    assert!(
        ok(CASE, store.get(&lock.token).await).is_some(),
        "conformance `{CASE}`: still held"
    );
    let out = ok(
        CASE,
        store
            .unlock(TokenAccess::new(&lock.token, &member, Some(&alice)))
            .await,
    );
    match &out {
        TokenOutcome::Done(l) => assert_same_lock(CASE, l, &lock),
        other => panic!("conformance `{CASE}`: owner unlock through a member: {other:?}"),
    }
    assert!(
        ok(CASE, store.get(&lock.token).await).is_none(),
        "conformance `{CASE}`: gone"
    );
    let out = ok(
        CASE,
        store
            .unlock(TokenAccess::new(&lock.token, &member, Some(&alice)))
            .await,
    );
    assert_eq!(
        out,
        TokenOutcome::NotFound,
        "conformance `{CASE}`: second unlock"
    );
    // The path is free again.
    create_ok(CASE, store, NewLock::new(ns.p("/c/x"))).await;

    let other = create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/e")).principal(alice.clone()),
    )
    .await;
    let e = ns.p("/e");
    let admin = TokenAccess {
        privileged: true,
        ..TokenAccess::new(&other.token, &e, Some(&bob))
    };
    let out = ok(CASE, store.unlock(admin).await);
    assert!(
        matches!(&out, TokenOutcome::Done(l) if l.token == other.token),
        "conformance `{CASE}`: a privileged caller breaks the lock: {out:?}"
    );
    assert!(
        ok(CASE, store.get(&other.token).await).is_none(),
        "conformance `{CASE}`"
    );
}

/// `remove_subtree` removes every lock rooted at the path or below, counts them, and leaves
/// siblings such as `/ab` alone.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::remove_subtree_counts(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn remove_subtree_counts<S: LockStore>(store: &S) {
    const CASE: &str = "remove_subtree_counts";
    let ns = Ns::new();
    let shared = |p: &str| NewLock::new(ns.p(p)).scope(LockScope::Shared);
    let mut gone = Vec::new();
    gone.push(create_ok(CASE, store, shared("/a/")).await);
    gone.push(create_ok(CASE, store, shared("/a")).await);
    gone.push(create_ok(CASE, store, shared("/a/b")).await);
    gone.push(
        create_ok(
            CASE,
            store,
            NewLock::new(ns.p("/a/c/d")).depth(LockDepth::Infinity),
        )
        .await,
    );
    let mut kept = Vec::new();
    kept.push(create_ok(CASE, store, NewLock::new(ns.p("/ab"))).await);
    kept.push(create_ok(CASE, store, NewLock::new(ns.p("/a-"))).await);
    kept.push(create_ok(CASE, store, NewLock::new(ns.p("/b/a"))).await);
    kept.push(create_ok(CASE, store, NewLock::new(ns.p(""))).await);

    let n = ok(CASE, store.remove_subtree(&ns.p("/a/")).await);
    assert_eq!(
        n,
        gone.len(),
        "conformance `{CASE}`: count of removed locks"
    );
    for l in &gone {
        assert!(
            ok(CASE, store.get(&l.token).await).is_none(),
            "conformance `{CASE}`: {l:?}"
        );
    }
    for l in &kept {
        assert!(
            ok(CASE, store.get(&l.token).await).is_some(),
            "conformance `{CASE}`: {l:?}"
        );
    }
    let n = ok(CASE, store.remove_subtree(&ns.p("/a")).await);
    assert_eq!(n, 0, "conformance `{CASE}`: nothing left to remove");
    create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/a")).depth(LockDepth::Infinity),
    )
    .await;
    let n = ok(CASE, store.remove_subtree(&ns.p("/nothing/here")).await);
    assert_eq!(n, 0, "conformance `{CASE}`: empty subtree");
}

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

/// Fencing numbers grow with every grant, also for a path locked again after an unlock.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::fencing_numbers_increase(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn fencing_numbers_increase<S: LockStore>(store: &S) {
    const CASE: &str = "fencing_numbers_increase";
    let ns = Ns::new();
    let mut last = 0;
    for i in 0..20 {
        let path = ns.p(&format!("/f{}", i % 3));
        let lock = create_ok(CASE, store, NewLock::new(path.clone())).await;
        assert!(
            lock.fence > last || (i == 0 && lock.fence >= last),
            "conformance `{CASE}`: fence {} after {last}",
            lock.fence
        );
        last = lock.fence;
        let out = ok(
            CASE,
            store
                .unlock(TokenAccess::new(&lock.token, &path, None))
                .await,
        );
        assert!(
            matches!(out, TokenOutcome::Done(_)),
            "conformance `{CASE}`: {out:?}"
        );
    }
}

/// Expiry with a [`ManualClock`] (the store must read time from `clock`): an expired lock is
/// never reported, never blocks, cannot be refreshed or unlocked, is not counted by
/// `remove_subtree` nor against a quota; infinite locks never expire.
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

/// Expiry in real time, for stores with their own clock: one-second locks, checked after
/// sleeping about 1.5 s. Same rules as [`expiry_manual`].
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
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = ok(
        CASE,
        store
            .refresh(
                TokenAccess::new(&kept.token, &path, None),
                LockTimeout::Seconds(2),
            )
            .await,
    );
    assert!(
        matches!(out, TokenOutcome::Done(_)),
        "conformance `{CASE}`: refresh: {out:?}"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    expiry_check(CASE, store, &ns, &alice, &held).await;
    assert!(
        ok(CASE, store.get(&kept.token).await).is_some(),
        "conformance `{CASE}`: a refreshed lock outlives its first timeout"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
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

/// 64 tasks race to lock one path exclusively: exactly one wins, the others see its lock.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # #[tokio::main(flavor = "multi_thread")] async fn main() {
/// use std::sync::Arc;
/// tower_locks::conformance::concurrent_exclusive_create(Arc::new(tower_locks::MemoryLockStore::new()))
///     .await;
/// # }
/// ```
pub async fn concurrent_exclusive_create<S: LockStore>(store: Arc<S>) {
    const CASE: &str = "concurrent_exclusive_create";
    let ns = Ns::new();
    let path = ns.p("/race");
    let outs = race(64, |_| {
        let store = store.clone();
        let req = NewLock::new(path.clone()).depth(LockDepth::Infinity);
        async move { store.create(req).await }
    })
    .await;
    let winners: Vec<&Lock> = outs
        .iter()
        .filter_map(|o| match o {
            CreateOutcome::Created(l) => Some(l),
            _ => None,
        })
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "conformance `{CASE}`: exactly one winner: {outs:?}"
    );
    for o in &outs {
        match o {
            CreateOutcome::Created(_) => {}
            CreateOutcome::Conflict(c) => {
                assert_eq!(
                    tokens(c),
                    tokens([winners[0]]),
                    "conformance `{CASE}`: {o:?}"
                );
            }
            other => panic!("conformance `{CASE}`: {other:?}"),
        }
    }
}

/// 64 tasks race to lock one path shared: all succeed, with distinct fencing numbers.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # #[tokio::main(flavor = "multi_thread")] async fn main() {
/// use std::sync::Arc;
/// tower_locks::conformance::concurrent_shared_create(Arc::new(tower_locks::MemoryLockStore::new()))
///     .await;
/// # }
/// ```
pub async fn concurrent_shared_create<S: LockStore>(store: Arc<S>) {
    const CASE: &str = "concurrent_shared_create";
    let ns = Ns::new();
    let path = ns.p("/race");
    let outs = race(64, |_| {
        let store = store.clone();
        let req = NewLock::new(path.clone()).scope(LockScope::Shared);
        async move { store.create(req).await }
    })
    .await;
    let fences: BTreeSet<u64> = outs
        .iter()
        .map(|o| match o {
            CreateOutcome::Created(l) => l.fence,
            other => panic!("conformance `{CASE}`: every shared lock is granted: {other:?}"),
        })
        .collect();
    assert_eq!(
        fences.len(),
        64,
        "conformance `{CASE}`: distinct fencing numbers"
    );
    let q = LockQuery::new().covering(path);
    assert_eq!(
        query_tokens(CASE, store.as_ref(), &q).await.len(),
        64,
        "conformance `{CASE}`"
    );
}

/// Depth-infinity locks on a parent race against locks on its children: never both granted.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # #[tokio::main(flavor = "multi_thread")] async fn main() {
/// use std::sync::Arc;
/// tower_locks::conformance::concurrent_parent_child_create(Arc::new(
///     tower_locks::MemoryLockStore::new(),
/// ))
/// .await;
/// # }
/// ```
pub async fn concurrent_parent_child_create<S: LockStore>(store: Arc<S>) {
    const CASE: &str = "concurrent_parent_child_create";
    let ns = Ns::new();
    for round in 0..16 {
        let parent = ns.p(&format!("/p{round}"));
        let outs = race(16, |i| {
            let store = store.clone();
            let req = if i % 2 == 0 {
                NewLock::new(parent.clone()).depth(LockDepth::Infinity)
            } else {
                let child = ns.p(&format!("/p{round}/c{}/x", i % 4));
                NewLock::new(child)
            };
            async move { store.create(req).await }
        })
        .await;
        let granted: Vec<&Lock> = outs
            .iter()
            .filter_map(|o| match o {
                CreateOutcome::Created(l) => Some(l),
                _ => None,
            })
            .collect();
        let parents = granted.iter().filter(|l| l.root == parent).count();
        let children = granted.len() - parents;
        assert!(
            (parents == 1 && children == 0) || (parents == 0 && (1..=2).contains(&children)),
            "conformance `{CASE}`: round {round}: {parents} parent and {children} child locks \
             granted: {granted:?}"
        );
    }
}

/// Spawn `n` tasks that start together; collect their outcomes.
async fn race<F, Fut>(n: usize, mut make: F) -> Vec<CreateOutcome>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<CreateOutcome, LockStoreError>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let fut = make(i);
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut outs = Vec::with_capacity(n);
    for h in handles {
        let r = h
            .await
            .unwrap_or_else(|e| panic!("conformance: a racing task failed: {e}"));
        outs.push(ok("race", r));
    }
    outs
}
