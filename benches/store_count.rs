//! A driver for instruction counts of `MemoryLockStore` verbs: runs `N` operations of one case
//! on the fixture of `benches/common/fixture.rs` at depth 2 with 1 000 background locks (the
//! cells where the store is closest to dav-server's `MemLs`; `HELD=n` for another number, to
//! count how a case grows with the locks held), with nothing else in the process worth
//! counting. Run under `valgrind --tool=callgrind` by `benches/instructions.sh store`, which
//! subtracts a run with zero operations and divides by `N`.
//!
//! Each check is what `benches/peer` times: `query` plus verifying that every lock found was
//! submitted; `check-<case>` is the same case through `LockStore::check`. `lock+unlock` is
//! `create` then `unlock` with the returned token.
//!
//! ```text
//! cargo bench --bench store_count --no-run
//! target/release/deps/store_count-* <[check-]unlocked|locked|under-infinity|subtree|lock+unlock> <N>
//! ```

#[path = "common/fixture.rs"]
mod fixture;
#[path = "common/store_setup.rs"]
mod store_setup;

use std::hint::black_box;

use store_setup::{case_query, create, fixture_at, p, pair};
use tower_locks::{LockStore, LockToken, MemoryLockStore, NewLock, Submission};

const DEPTH: usize = 2;

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().expect("case");
    let n: u64 = args.next().and_then(|n| n.parse().ok()).expect("N");
    let held: usize = std::env::var("HELD").map_or(1_000, |h| h.parse().expect("HELD"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = MemoryLockStore::new();
    rt.block_on(async {
        for (d, i) in fixture::grow(0, held) {
            create(&store, NewLock::new(p(&fixture::background(d, i)))).await;
        }
        let (members, infinity) = fixture_at(&store, DEPTH).await;
        if case == "lock+unlock" {
            let path = p("/bench/dir/doc");
            for _ in 0..n {
                pair(&store, &path).await;
            }
            return;
        }
        // `check-<case>`: the same case through `LockStore::check`.
        let (verb_check, base) = match case.strip_prefix("check-") {
            Some(base) => (true, base),
            None => (false, case.as_str()),
        };
        let (query, found) = case_query(base, DEPTH);
        let submitted = match base {
            "locked" => vec![members[0].clone()],
            "under-infinity" => vec![infinity],
            "subtree" => members,
            _ => vec![],
        };
        assert_eq!(store.query(&query).await.unwrap().len(), found);
        if verb_check {
            let tokens: Vec<&str> = submitted.iter().map(LockToken::as_str).collect();
            for _ in 0..n {
                let outcome = store.check(&query, Submission::new(&tokens, None)).await;
                assert!(black_box(outcome.unwrap().allowed()));
            }
            return;
        }
        for _ in 0..n {
            let locks = store.query(&query).await.unwrap();
            let ok = locks.iter().all(|l| submitted.contains(&l.token));
            assert!(black_box(ok));
        }
    });
}
