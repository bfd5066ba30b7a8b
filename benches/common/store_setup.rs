//! `MemoryLockStore` set-up shared by the store benches (`benches/store.rs`,
//! `benches/store_count.rs` and `benches/peer`, which include this file with `#[path]`): the
//! fixture locks of `fixture.rs`, the query of each check case, and one LOCK + UNLOCK pair.
#![allow(dead_code)]

use tower_locks::{
    CreateOutcome, LockDepth, LockQuery, LockStore, LockTimeout, LockToken, MemoryLockStore,
    NewLock, ResourcePath, TokenAccess, TokenOutcome,
};

use crate::fixture;

/// The check cases, named as in the bench ids.
pub(crate) const CASES: [&str; 4] = ["unlocked", "locked", "under-infinity", "subtree"];

pub(crate) fn p(s: &str) -> ResourcePath {
    ResourcePath::parse(s).unwrap()
}

/// Create `lock` for a day (no fixture lock expires during a full run, which takes over 10
/// minutes) and return its token.
pub(crate) async fn create(store: &MemoryLockStore, lock: NewLock) -> LockToken {
    match store
        .create(lock.timeout(LockTimeout::Seconds(86_400)))
        .await
        .unwrap()
    {
        CreateOutcome::Created(lock) => lock.token,
        other => panic!("{other:?}"),
    }
}

/// The fixture locks of depth class `d`: the members' tokens, and the depth-infinity lock's.
pub(crate) async fn fixture_at(store: &MemoryLockStore, d: usize) -> (Vec<LockToken>, LockToken) {
    let mut members = Vec::new();
    for k in 0..fixture::MEMBERS {
        members.push(create(store, NewLock::new(p(&fixture::member(d, k)))).await);
    }
    let infinity = NewLock::new(p(&fixture::infinity_root(d))).depth(LockDepth::Infinity);
    (members, create(store, infinity).await)
}

/// The query of check `case` at depth `d`, and how many locks it finds.
pub(crate) fn case_query(case: &str, d: usize) -> (LockQuery, usize) {
    match case {
        "unlocked" => (LockQuery::new().covering(p(&fixture::unlocked(d))), 0),
        "locked" => (LockQuery::new().covering(p(&fixture::member(d, 0))), 1),
        "under-infinity" => (LockQuery::new().covering(p(&fixture::under_infinity(d))), 1),
        "subtree" => (
            LockQuery::new().subtree(p(&fixture::collection(d))),
            fixture::MEMBERS,
        ),
        other => panic!("unknown case {other}"),
    }
}

/// One LOCK + UNLOCK pair at the store level.
pub(crate) async fn pair(store: &MemoryLockStore, path: &ResourcePath) {
    let CreateOutcome::Created(lock) = store.create(NewLock::new(path.clone())).await.unwrap()
    else {
        panic!("conflict")
    };
    let out = store
        .unlock(TokenAccess::new(&lock.token, path, None))
        .await
        .unwrap();
    assert!(matches!(out, TokenOutcome::Done(_)));
}
