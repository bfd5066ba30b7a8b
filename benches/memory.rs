//! Memory per held lock in `MemoryLockStore`, at 1e5 and 1e6 locks: the RSS delta (from
//! `/proc/self/statm`) and `MemoryLockStore::approx_memory_bytes`, divided by the number of
//! locks. Each size runs in a fresh child process so freed memory of one size does not hide
//! the growth of the next. Prints a table; it is not a timed benchmark.
//!
//! ```text
//! cargo bench --bench memory
//! ```
//!
//! Lock paths look like `/docs/d123/f123456.txt` (16 per collection); default timeout, no
//! owner; no principal, then each lock held by one of 1 000 principals, then by a principal
//! of its own (a principal's locks are also indexed by root, for listings of its own locks).

use std::process::Command;

use tower_locks::{LockStore, MemoryLockStore, NewLock, ResourcePath};

const CHILD: &str = "TOWER_LOCKS_MEMORY_BENCH_N";
const PRINCIPALS: &str = "TOWER_LOCKS_MEMORY_BENCH_PRINCIPALS";

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // 4 KiB pages on the machines this runs on (x86_64, aarch64 Linux defaults).
    pages * 4096
}

fn child(n: usize, principals: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = MemoryLockStore::new();
    let before = rss_bytes();
    rt.block_on(async {
        // Each path is parsed in the loop: the store keeps its buffer (the lock's root), so
        // that buffer is counted, as in an application; the request and the returned lock are
        // freed before the next.
        for i in 0..n {
            let path = ResourcePath::parse(&format!("/docs/d{}/f{i}.txt", i / 16)).unwrap();
            let mut lock = NewLock::new(path);
            if principals > 0 {
                lock = lock.principal(format!("user{}", i % principals));
            }
            store.create(lock).await.unwrap();
        }
    });
    let after = rss_bytes();
    assert_eq!(store.len(), n);
    let approx = store.approx_memory_bytes();
    println!(
        "| {n:>9} | {principals:>10} | {:>12} | {:>13.1} | {:>12} | {:>13.1} |",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / n as f64,
        approx,
        approx as f64 / n as f64
    );
}

fn main() {
    if let Ok(n) = std::env::var(CHILD) {
        let principals = std::env::var(PRINCIPALS).map_or(0, |p| p.parse().unwrap());
        child(n.parse().unwrap(), principals);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and friends: nothing to list.
    }
    println!("memory per held lock (MemoryLockStore)");
    println!(
        "| locks     | principals | RSS delta B  | RSS B / lock  | approx B     | approx B/lock |"
    );
    println!(
        "|-----------|------------|--------------|---------------|--------------|---------------|"
    );
    let exe = std::env::current_exe().unwrap();
    for principals in [Some(0usize), Some(1_000), None] {
        for n in [100_000usize, 1_000_000] {
            let principals = principals.unwrap_or(n);
            let status = Command::new(&exe)
                .env(CHILD, n.to_string())
                .env(PRINCIPALS, principals.to_string())
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
}
