//! Cases that race creates from many tasks.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::kit::{ok, query_tokens, tokens, Ns};
use crate::{
    CreateOutcome, Lock, LockDepth, LockQuery, LockScope, LockStore, LockStoreError, NewLock, Quota,
};

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

/// Quotas hold under a race: 32 tasks of one principal lock 32 paths with a
/// [`principal_quota`](NewLock::principal_quota) of 4, and 32 tasks lock one path shared with
/// a [`resource_quota`](NewLock::resource_quota) of 4. Each time exactly 4 are granted and
/// the others are refused with the quota: checking a quota and writing the lock is one atomic
/// step.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # #[tokio::main(flavor = "multi_thread")] async fn main() {
/// use std::sync::Arc;
/// tower_locks::conformance::concurrent_quota_create(Arc::new(tower_locks::MemoryLockStore::new()))
///     .await;
/// # }
/// ```
pub async fn concurrent_quota_create<S: LockStore>(store: Arc<S>) {
    const CASE: &str = "concurrent_quota_create";
    const LIMIT: u32 = 4;
    let ns = Ns::new();
    let alice = ns.principal("alice");
    let by_principal = race(32, |i| {
        let store = store.clone();
        let req = NewLock::new(ns.p(&format!("/p{i:02}")))
            .principal(alice.as_str())
            .principal_quota(LIMIT);
        async move { store.create(req).await }
    })
    .await;
    let path = ns.p("/r");
    let on_resource = race(32, |_| {
        let store = store.clone();
        let req = NewLock::new(path.clone())
            .scope(LockScope::Shared)
            .resource_quota(LIMIT);
        async move { store.create(req).await }
    })
    .await;
    for (quota, outs) in [
        (Quota::Principal, by_principal),
        (Quota::Resource, on_resource),
    ] {
        let granted = outs
            .iter()
            .filter(|o| matches!(o, CreateOutcome::Created(_)))
            .count();
        assert_eq!(
            granted, LIMIT as usize,
            "conformance `{CASE}`: {quota:?} quota of {LIMIT}, 32 racing creates: {granted} \
             granted"
        );
        for o in &outs {
            assert!(
                matches!(o, CreateOutcome::Created(_))
                    || *o
                        == CreateOutcome::QuotaExceeded {
                            quota,
                            limit: LIMIT
                        },
                "conformance `{CASE}`: {quota:?} quota of {LIMIT}: {o:?}"
            );
        }
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
