//! The conformance kit against `MemoryLockStore` on a `ManualClock`.
#![cfg(feature = "conformance")]

use std::sync::Arc;

use tower_locks::{conformance, ManualClock, MemoryLockStore};

fn store(clock: Arc<ManualClock>) -> MemoryLockStore {
    MemoryLockStore::with_clock(clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_whole_kit() {
    conformance::run_all(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_real_time_kit() {
    conformance::run_all_real_time(MemoryLockStore::new).await;
}

/// All cases on one shared store (as on a shared Redis): the per-case namespaces keep them
/// apart. The store keeps its own (system) time, so this is the real-time variant.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cases_share_one_store() {
    let shared = MemoryLockStore::new();
    conformance::run_all_real_time(|| shared.clone()).await;
    // Only the unexpired leftovers of the cases remain, all inside the kit's namespace.
    assert!(!shared.is_empty());
}

/// A shared store on one manual clock: cases run one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn individual_cases_on_one_store() {
    let clock = Arc::new(ManualClock::new());
    let store = MemoryLockStore::with_clock(clock.clone());
    conformance::create_get_query_round_trip(&store).await;
    conformance::query_matches_reference(&store).await;
    conformance::expiry_manual(&store, &clock).await;
    conformance::refresh_resets_timer_manual(&store, &clock).await;
    conformance::concurrent_exclusive_create(Arc::new(store.clone())).await;
}
