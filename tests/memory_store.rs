//! `MemoryLockStore` beyond the conformance kit: memory is given back after a burst and after
//! refreshes, one read does bounded work however many locks expired, and `check` keeps its
//! contract with several targets and few blockers.

use std::sync::Arc;
use std::time::Duration;

use tower_locks::{
    CheckOutcome, CreateOutcome, Lock, LockQuery, LockStore, LockTimeout, ManualClock,
    MemoryLockStore, NewLock, ResourcePath, Submission, TokenAccess, TokenOutcome,
};

fn p(s: &str) -> ResourcePath {
    ResourcePath::parse(s).unwrap()
}

fn created(o: CreateOutcome) -> Lock {
    match o {
        CreateOutcome::Created(l) => l,
        other => panic!("expected Created, got {other:?}"),
    }
}

fn sorted(mut v: Vec<Lock>) -> Vec<Lock> {
    v.sort_by_key(|l| (l.root.as_str().to_owned(), l.token.to_string()));
    v
}

/// Refreshing a lock many times at one clock reading leaves one expiry-heap entry, not one
/// per refresh (they would all look valid, same slot and same instant, and `tidy` would keep
/// them until the lock expires).
#[tokio::test]
async fn refreshes_at_one_instant_do_not_grow_the_store() {
    let clock = Arc::new(ManualClock::new());
    let store = MemoryLockStore::with_clock(clock.clone());
    let doc = p("/doc");
    let lock = created(store.create(NewLock::new(doc.clone())).await.unwrap());
    let access = TokenAccess::new(&lock.token, &doc, None);
    store
        .refresh(access, LockTimeout::Seconds(600))
        .await
        .unwrap();
    let before = store.approx_memory_bytes();
    for _ in 0..10_000 {
        let out = store
            .refresh(access, LockTimeout::Seconds(600))
            .await
            .unwrap();
        assert!(matches!(out, TokenOutcome::Done(_)));
    }
    let after = store.approx_memory_bytes();
    assert!(
        after <= before + 4096,
        "one live lock, 10 000 refreshes at one instant: store grew from {before} B to {after} B"
    );
}

/// Memory taken by a burst of locks is given back once they are gone, while another lock
/// lives on.
#[tokio::test]
async fn memory_is_given_back_after_a_burst() {
    let store = MemoryLockStore::new();
    let keep = NewLock::new(p("/keep")).timeout(LockTimeout::Infinite);
    created(store.create(keep).await.unwrap());
    let one = store.approx_memory_bytes();
    let mut held = Vec::new();
    for i in 0..50_000 {
        held.push(created(
            store
                .create(NewLock::new(p(&format!("/burst/f{i}"))))
                .await
                .unwrap(),
        ));
    }
    let peak = store.approx_memory_bytes();
    for l in &held {
        let out = store
            .unlock(TokenAccess::new(&l.token, &l.root, None))
            .await
            .unwrap();
        assert!(matches!(out, TokenOutcome::Done(_)));
    }
    assert_eq!(store.len(), 1);
    let after = store.approx_memory_bytes();
    assert!(
        after <= peak / 20,
        "1 live lock: {one} B; peak with 50 001: {peak} B; back to 1 live lock: {after} B"
    );
}

/// One read on the layer's hot path (`query_now`, for an unrelated path) drops a bounded
/// number of expired locks, not every expired lock of the store under the write lock.
#[tokio::test]
async fn one_read_does_not_sweep_the_whole_store() {
    let clock = Arc::new(ManualClock::new());
    let store = MemoryLockStore::with_clock(clock.clone());
    let empty = store.approx_memory_bytes();
    for i in 0..50_000 {
        let new = NewLock::new(p(&format!("/batch/f{i}"))).timeout(LockTimeout::Seconds(60));
        created(store.create(new).await.unwrap());
    }
    clock.advance(Duration::from_secs(60));
    let before = store.approx_memory_bytes();
    let answer = store
        .query_now(&LockQuery::new().covering(p("/unrelated")))
        .unwrap()
        .unwrap();
    assert!(answer.is_empty());
    let after = store.approx_memory_bytes();
    assert!(
        after > empty,
        "a single query_now of /unrelated removed all 50 000 expired locks inline \
         ({before} B -> {after} B)"
    );
    // The next write sweeps the rest: the quota counters it checks count live locks only.
    let new = NewLock::new(p("/after")).timeout(LockTimeout::Seconds(60));
    created(store.create(new).await.unwrap());
    assert_eq!(store.len(), 1);
}

/// `LockStore::check`'s contract: "a store may stop at 16 of them (the first in path order)".
#[tokio::test]
async fn check_stops_at_the_first_blockers_in_path_order() {
    let store = MemoryLockStore::new();
    for dir in ["/z", "/a"] {
        for i in 0..20 {
            created(
                store
                    .create(NewLock::new(p(&format!("{dir}/m{i:02}"))))
                    .await
                    .unwrap(),
            );
        }
    }
    let q = LockQuery::new().subtree(p("/z")).subtree(p("/a"));
    let out = store.check(&q, Submission::default()).await.unwrap();
    assert!(out.unsatisfied.len() >= 16);
    let first: Vec<Lock> = sorted(store.query(&q).await.unwrap())
        .into_iter()
        .take(16)
        .collect();
    let roots = |ls: &[Lock]| {
        ls.iter()
            .map(|l| l.root.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        roots(&out.unsatisfied[..16]),
        roots(&first),
        "the 16 reported are not the first in path order"
    );
}

/// `LockStore::check`'s contract: the answer "must equal CheckOutcome::judge over query's"
/// except when more than 16 locks stand in the way.
#[tokio::test]
async fn check_fence_equals_judge_with_few_blockers() {
    let store = MemoryLockStore::new();
    let mine = created(store.create(NewLock::new(p("/a"))).await.unwrap());
    created(store.create(NewLock::new(p("/b"))).await.unwrap());
    let q = LockQuery::new().covering(p("/a")).covering(p("/b"));
    let tokens = [mine.token.as_str()];
    let sub = Submission::new(&tokens, None);
    let reference = CheckOutcome::judge(&q, store.query(&q).await.unwrap(), sub);
    let got = store.check(&q, sub).await.unwrap();
    assert_eq!(got, reference, "1 lock stands in the way");
}
