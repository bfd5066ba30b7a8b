//! Cases on `create`: what is granted, what conflicts, what a refusal reports, and the
//! fencing numbers of grants.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use super::kit::{
    assert_same_lock, close, create_conflict, create_ok, ok, query, query_tokens, tokens,
    unlock_ok, Ns,
};
use crate::{
    CreateOutcome, LockDepth, LockQuery, LockScope, LockStore, LockTimeout, NewLock, ResourcePath,
    TokenAccess, TokenOutcome,
};

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
        let found = query(CASE, store, &q).await;
        assert_eq!(
            found.len(),
            1,
            "conformance `{CASE}`: query {q:?} found {found:?}"
        );
        assert_same_lock(CASE, &found[0], &lock);
    }
    let none = query(CASE, store, &LockQuery::new().covering(ns.p(""))).await;
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

/// Ancestry works on segment boundaries: `/a` is not an ancestor of `/ab`, `/a-b` or `/a.b`.
/// Paths compare byte by byte: `/Doc` and `/doc` are two resources (exclusive locks on both
/// are granted, each covers only its own), and a root with capital letters and an escape
/// (`/Caf/caf%C3%A9/`) comes back from `create`, `get` and `query` unchanged.
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

    // Case matters, and names come back as they were given.
    let upper = create_ok(CASE, store, NewLock::new(ns.p("/Doc"))).await;
    let lower = create_ok(CASE, store, NewLock::new(ns.p("/doc"))).await;
    for (path, lock) in [("/Doc", &upper), ("/doc", &lower)] {
        let q = LockQuery::new().covering(ns.p(path));
        assert_eq!(
            query_tokens(CASE, store, &q).await,
            tokens([lock]),
            "conformance `{CASE}`: `/Doc` and `/doc` are two resources"
        );
    }
    let root = ns.p("/Caf/caf%C3%A9/");
    let lock = create_ok(CASE, store, NewLock::new(root.clone())).await;
    let got = ok(CASE, store.get(&lock.token).await).map(|l| (l.root.clone(), l.root.href()));
    let found = query(CASE, store, &LockQuery::new().covering(root.clone())).await;
    for (what, got) in [
        ("create", Some((lock.root.clone(), lock.root.href()))),
        ("get", got),
        (
            "query",
            found.first().map(|l| (l.root.clone(), l.root.href())),
        ),
    ] {
        assert_eq!(
            got,
            Some((root.clone(), root.href())),
            "conformance `{CASE}`: the root {} as `{what}` reports it",
            root.href()
        );
    }
}

/// A shared depth-infinity lock on `/`, the root of every path, covers every resource: it is
/// reported by `query` for `covering` and `subtree` targets anywhere, an exclusive lock below
/// conflicts with it, a shared one below does not, and `remove_subtree` of a path below leaves it.
///
/// This is the one case that locks outside its namespace: run it on an empty store (or an
/// empty namespace of a shared database, such as a key prefix) that no other test uses
/// meanwhile, as [`run_all`] does (each case gets a fresh store): an exclusive lock anywhere
/// would refuse the lock on `/`, and the lock on `/` refuses exclusive locks everywhere.
/// [`run_all_real_time`] leaves it out, since its factory may hand out one shared store. The
/// lock on `/` is removed when the case passes.
///
/// [`run_all`]: super::run_all
/// [`run_all_real_time`]: super::run_all_real_time
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::root_lock_covers_everything(&tower_locks::MemoryLockStore::new())
///     .await;
/// # });
/// ```
pub async fn root_lock_covers_everything<S: LockStore>(store: &S) {
    const CASE: &str = "root_lock_covers_everything";
    let ns = Ns::new();
    let top = ResourcePath::root();
    let root = create_ok(
        CASE,
        store,
        NewLock::new(top.clone())
            .scope(LockScope::Shared)
            .depth(LockDepth::Infinity),
    )
    .await;
    for q in [
        LockQuery::new().covering(ns.p("/a/b")),
        LockQuery::new().subtree(ns.p("/a")),
        LockQuery::new().covering(top.clone()),
    ] {
        assert_eq!(
            query_tokens(CASE, store, &q).await,
            tokens([&root]),
            "conformance `{CASE}`: the lock on / answers {q:?}"
        );
    }
    let c = create_conflict(CASE, store, NewLock::new(ns.p("/a"))).await;
    assert_eq!(
        tokens(&c),
        tokens([&root]),
        "conformance `{CASE}`: an exclusive lock below / conflicts with the lock on /"
    );
    let below = create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/a/b")).scope(LockScope::Shared),
    )
    .await;
    let n = ok(CASE, store.remove_subtree(&ns.p("/a")).await);
    assert_eq!(
        n, 1,
        "conformance `{CASE}`: remove_subtree(/a) removes the lock on /a/b, not the one on /"
    );
    assert!(
        ok(CASE, store.get(&below.token).await).is_none(),
        "conformance `{CASE}`: the lock on /a/b is gone"
    );
    assert!(
        ok(CASE, store.get(&root.token).await).is_some(),
        "conformance `{CASE}`: remove_subtree(/a) removed the lock on /"
    );
    unlock_ok(CASE, store, &root, &ns.p("/a/b"), None).await;
    assert!(
        ok(CASE, store.get(&root.token).await).is_none(),
        "conformance `{CASE}`: unlocked"
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
