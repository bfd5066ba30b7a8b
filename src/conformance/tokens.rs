//! Cases on the verbs that take a lock token or a path: `refresh`, `unlock` and
//! `remove_subtree`.

use std::time::Duration;

use super::kit::{assert_same_lock, create_conflict, create_ok, ok, Ns};
use crate::{LockDepth, LockScope, LockStore, LockTimeout, NewLock, TokenAccess, TokenOutcome};

/// `refresh`: in scope through a member of a depth-infinity lock, out of scope (elsewhere, and
/// through siblings such as `/cx`, `/c-x` and `/c.x` of a lock on `/c`), another principal (even
/// privileged), unknown token; only the timeout and expiry change.
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
    // Scope follows segments, not string prefixes: /cx, /c-x and /c.x are not in /c.
    for sibling in ["/cx", "/c-x", "/c.x"] {
        let sibling = ns.p(sibling);
        let out = ok(
            CASE,
            store
                .refresh(
                    TokenAccess::new(&lock.token, &sibling, Some(&alice)),
                    LockTimeout::Seconds(5),
                )
                .await,
        );
        assert!(
            matches!(&out, TokenOutcome::OutOfScope(l) if l.token == lock.token && l.timeout == LockTimeout::Seconds(1200)),
            "conformance `{CASE}`: refresh of the depth-infinity lock on /c through {sibling} is \
             out of scope, unchanged: {out:?}"
        );
    }
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

/// `unlock`: the same outcomes as refresh (a lock on `/c` is out of scope through `/cx`, `/c-x`
/// and `/c.x`), a privileged caller may remove another principal's lock, and a removed lock is
/// gone.
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
    for sibling in ["/cx", "/c-x", "/c.x"] {
        let sibling = ns.p(sibling);
        let out = ok(
            CASE,
            store
                .unlock(TokenAccess::new(&lock.token, &sibling, Some(&alice)))
                .await,
        );
        assert!(
            matches!(&out, TokenOutcome::OutOfScope(l) if l.token == lock.token),
            "conformance `{CASE}`: unlock of the depth-infinity lock on /c through {sibling} is \
             out of scope: {out:?}"
        );
    }
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
/// siblings such as `/ab` alone, and the depth-infinity locks of ancestors that cover the path
/// (shared or exclusive) too.
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

    // Locks covering the path from above are not rooted in it: they stay.
    let above = create_ok(CASE, store, shared("/s").depth(LockDepth::Infinity)).await;
    let mut below = Vec::new();
    for p in ["/s/x", "/s/x/y", "/s/x/y/z"] {
        below.push(create_ok(CASE, store, shared(p)).await);
    }
    let beside = create_ok(CASE, store, shared("/s/xy")).await;
    let n = ok(CASE, store.remove_subtree(&ns.p("/s/x")).await);
    assert_eq!(
        n,
        below.len(),
        "conformance `{CASE}`: remove_subtree(/s/x) counts the locks rooted at /s/x or below, \
         not the depth-infinity lock on /s"
    );
    for l in &below {
        assert!(
            ok(CASE, store.get(&l.token).await).is_none(),
            "conformance `{CASE}`: {l:?}"
        );
    }
    for l in [&above, &beside] {
        assert!(
            ok(CASE, store.get(&l.token).await).is_some(),
            "conformance `{CASE}`: remove_subtree(/s/x) removed {l:?}"
        );
    }
    let parent = create_ok(
        CASE,
        store,
        NewLock::new(ns.p("/p")).depth(LockDepth::Infinity),
    )
    .await;
    let n = ok(CASE, store.remove_subtree(&ns.p("/p/child")).await);
    assert_eq!(
        n, 0,
        "conformance `{CASE}`: remove_subtree(/p/child) under a depth-infinity lock on /p"
    );
    assert!(
        ok(CASE, store.get(&parent.token).await).is_some(),
        "conformance `{CASE}`: remove_subtree(/p/child) removed the lock on /p"
    );
    create_conflict(CASE, store, NewLock::new(ns.p("/p/child"))).await;
}
