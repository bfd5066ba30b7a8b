//! Rough memory footprint of `MemoryLockStore` (Linux: resident set size from `/proc`).
//! Alone in its binary so that no other test allocates meanwhile.
#![cfg(target_os = "linux")]

use tower_locks::{CreateOutcome, LockStore, MemoryLockStore, NewLock, ResourcePath};

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[tokio::test]
async fn about_300_bytes_per_lock_at_1e5() {
    const N: usize = 100_000;
    let store = MemoryLockStore::new();
    let before = rss_bytes();
    for i in 0..N {
        // Each request and returned lock is freed before the next: the delta is the store's.
        let path = format!("/projects/p{}/docs/d{}/file-{i}.txt", i % 100, i % 1000);
        let req = NewLock::new(ResourcePath::parse(&path).unwrap());
        assert!(matches!(
            store.create(req).await.unwrap(),
            CreateOutcome::Created(_)
        ));
    }
    let after = rss_bytes();
    let rss_per_lock = after.saturating_sub(before) / N;
    let estimate_per_lock = store.approx_memory_bytes() / N;
    println!("memory per lock: RSS delta {rss_per_lock} B, store estimate {estimate_per_lock} B");
    assert!(
        estimate_per_lock <= 300,
        "estimate {estimate_per_lock} B per lock"
    );
    // RSS also sees allocator overhead and fragmentation.
    assert!(rss_per_lock <= 300, "RSS delta {rss_per_lock} B per lock");
}
