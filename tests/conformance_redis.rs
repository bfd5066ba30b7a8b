//! The conformance kit against `RedisLockStore` on a real Redis (`REDIS_URL`; see
//! `tests/common/redis.rs`). Each test uses a key prefix of its own, so they run in parallel
//! on one server, beside the other Redis tests.
#![cfg(all(feature = "redis", feature = "conformance"))]

#[path = "common/redis.rs"]
mod redis_env;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use redis_env::{redis_url, store_with_prefix, unique_prefix};
use tower_locks::{
    conformance, CreateOutcome, Lock, LockQuery, LockStore, LockStoreError, LockTimeout, NewLock,
    RedisLockStore, ResourcePath, TokenAccess, TokenOutcome,
};

/// The whole kit, every case on one store value (one connection) in a fresh namespace: the
/// kit keeps its cases apart by path, as it would inside a shared production database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_passes_the_whole_kit() {
    let Some(url) = redis_url() else { return };
    let store = store_with_prefix(&url, &unique_prefix()).await;
    conformance::run_all_real_time(|| store.clone()).await;
}

/// The case `run_all_real_time` leaves out, since it locks `/`: on a key prefix of its own,
/// which nothing else uses meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_locks_the_root() {
    let Some(url) = redis_url() else { return };
    let store = store_with_prefix(&url, &unique_prefix()).await;
    conformance::root_lock_covers_everything(&store).await;
}

/// Several application instances on one namespace: each call goes to the next of four
/// stores, each with its own connection, so a lock taken through one connection is checked,
/// refreshed and removed through others, and the concurrency cases race over four sockets.
#[derive(Clone)]
struct Instances {
    stores: Arc<Vec<RedisLockStore>>,
    next: Arc<AtomicUsize>,
}

impl Instances {
    fn pick(&self) -> &RedisLockStore {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.stores[i % self.stores.len()]
    }
}

impl LockStore for Instances {
    async fn create(&self, lock: NewLock) -> Result<CreateOutcome, LockStoreError> {
        self.pick().create(lock).await
    }
    async fn refresh(
        &self,
        access: TokenAccess<'_>,
        timeout: LockTimeout,
    ) -> Result<TokenOutcome, LockStoreError> {
        self.pick().refresh(access, timeout).await
    }
    async fn unlock(&self, access: TokenAccess<'_>) -> Result<TokenOutcome, LockStoreError> {
        self.pick().unlock(access).await
    }
    async fn remove_subtree(&self, path: &ResourcePath) -> Result<usize, LockStoreError> {
        self.pick().remove_subtree(path).await
    }
    async fn query(&self, query: &LockQuery) -> Result<Vec<Lock>, LockStoreError> {
        self.pick().query(query).await
    }
    async fn get(&self, token: &str) -> Result<Option<Lock>, LockStoreError> {
        self.pick().get(token).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_passes_the_kit_across_connections() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(store_with_prefix(&url, &prefix).await);
    }
    let instances = Instances {
        stores: Arc::new(stores),
        next: Arc::new(AtomicUsize::new(0)),
    };
    conformance::run_all_real_time(|| instances.clone()).await;
}
