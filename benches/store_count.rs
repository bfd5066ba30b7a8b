//! A driver for instruction counts of `MemoryLockStore` verbs: runs `N` operations of one case
//! on the fixture of `benches/common/fixture.rs` at depth 2 with 1 000 background locks (the
//! cells where the store is closest to dav-server's `MemLs`), with nothing else in the process
//! worth counting. Run under `valgrind --tool=callgrind` by `benches/instructions.sh store`,
//! which subtracts a run with zero operations and divides by `N`.
//!
//! Each check is what `benches/peer` times: `query` plus verifying that every lock found was
//! submitted. `lock+unlock` is `create` then `unlock` with the returned token.
//!
//! ```text
//! cargo bench --bench store_count --no-run
//! target/release/deps/store_count-* <unlocked|locked|under-infinity|subtree|lock+unlock> <N>
//! ```

#[path = "common/fixture.rs"]
mod fixture;

use std::hint::black_box;

use tower_locks::{
    CreateOutcome, LockDepth, LockQuery, LockStore, LockTimeout, MemoryLockStore, NewLock,
    ResourcePath, TokenAccess,
};

const DEPTH: usize = 2;

fn p(s: &str) -> ResourcePath {
    ResourcePath::parse(s).unwrap()
}

async fn create(store: &MemoryLockStore, lock: NewLock) -> String {
    match store
        .create(lock.timeout(LockTimeout::Seconds(86_400)))
        .await
        .unwrap()
    {
        CreateOutcome::Created(lock) => lock.token.to_string(),
        other => panic!("{other:?}"),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().expect("case");
    let n: u64 = args.next().and_then(|n| n.parse().ok()).expect("N");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = MemoryLockStore::new();
    rt.block_on(async {
        for (d, i) in fixture::grow(0, 1_000) {
            create(&store, NewLock::new(p(&fixture::background(d, i)))).await;
        }
        let mut members = Vec::new();
        for k in 0..fixture::MEMBERS {
            members.push(create(&store, NewLock::new(p(&fixture::member(DEPTH, k)))).await);
        }
        let infinity = NewLock::new(p(&fixture::infinity_root(DEPTH))).depth(LockDepth::Infinity);
        let infinity = create(&store, infinity).await;
        let (query, submitted) = match case.as_str() {
            "unlocked" => (
                LockQuery::new().covering(p(&fixture::unlocked(DEPTH))),
                vec![],
            ),
            "locked" => (
                LockQuery::new().covering(p(&fixture::member(DEPTH, 0))),
                vec![members[0].clone()],
            ),
            "under-infinity" => (
                LockQuery::new().covering(p(&fixture::under_infinity(DEPTH))),
                vec![infinity],
            ),
            "subtree" => (
                LockQuery::new().subtree(p(&fixture::collection(DEPTH))),
                members,
            ),
            "lock+unlock" => {
                let path = p("/bench/dir/doc");
                for _ in 0..n {
                    let CreateOutcome::Created(lock) =
                        store.create(NewLock::new(path.clone())).await.unwrap()
                    else {
                        panic!("conflict")
                    };
                    store
                        .unlock(TokenAccess::new(&lock.token, &path, None))
                        .await
                        .unwrap();
                }
                return;
            }
            other => panic!("unknown case {other}"),
        };
        for _ in 0..n {
            let locks = store.query(&query).await.unwrap();
            let ok = locks
                .iter()
                .all(|l| submitted.iter().any(|s| *s == l.token));
            assert!(black_box(ok));
        }
    });
}
