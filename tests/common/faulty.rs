//! A test store: the memory store with the pauses and failures of a remote one, on demand.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;
use tower_locks::{
    CreateOutcome, Lock, LockQuery, LockStore, LockStoreError, LockTimeout, MemoryLockStore,
    NewLock, ResourcePath, TokenAccess, TokenOutcome,
};

/// A memory store with faults on demand, as a remote store's would come: each flag acts once,
/// each counter as many times as it says. A pause tells `entered` and waits for `gate`.
#[derive(Default)]
pub struct Faulty {
    pub inner: MemoryLockStore,
    /// `unlock` waits for `gate` before it acts.
    pub pause_unlock: AtomicBool,
    /// `unlock` acts, then waits for `gate` before it answers (a reply on its way back).
    pub pause_unlock_reply: AtomicBool,
    /// `remove_subtree` waits for `gate` before it acts.
    pub pause_remove_subtree: AtomicBool,
    /// The how-manieth next `create` waits for `gate` before it acts (1: the next; 0: none).
    pub pause_create_in: AtomicUsize,
    /// `create` waits for `gate` after it acted, before it answers.
    pub pause_create_reply: AtomicBool,
    /// How many of the next `query` calls fail.
    pub fail_query: AtomicUsize,
    /// How many of the next `remove_subtree` calls fail.
    pub fail_remove_subtree: AtomicUsize,
    /// How many of the next `unlock` calls fail.
    pub fail_unlock: AtomicUsize,
    /// `create` creates the lock and then reports a failure (a reply lost on the way back).
    pub create_then_fail: AtomicBool,
    pub entered: Notify,
    pub gate: Notify,
}

impl Faulty {
    async fn pause(&self, flag: &AtomicBool) {
        if flag.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            self.gate.notified().await;
        }
    }
    fn take(counter: &AtomicUsize) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

impl LockStore for Faulty {
    async fn create(&self, lock: NewLock) -> Result<CreateOutcome, LockStoreError> {
        let countdown = |n: usize| n.checked_sub(1);
        let was = self
            .pause_create_in
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, countdown);
        if was == Ok(1) {
            self.entered.notify_one();
            self.gate.notified().await;
        }
        let created = self.inner.create(lock).await;
        self.pause(&self.pause_create_reply).await;
        if self.create_then_fail.swap(false, Ordering::SeqCst) {
            return Err(LockStoreError::unavailable("reply lost"));
        }
        created
    }
    async fn refresh(
        &self,
        access: TokenAccess<'_>,
        timeout: LockTimeout,
    ) -> Result<TokenOutcome, LockStoreError> {
        self.inner.refresh(access, timeout).await
    }
    async fn unlock(&self, access: TokenAccess<'_>) -> Result<TokenOutcome, LockStoreError> {
        self.pause(&self.pause_unlock).await;
        if Self::take(&self.fail_unlock) {
            return Err(LockStoreError::unavailable("down"));
        }
        let outcome = self.inner.unlock(access).await;
        self.pause(&self.pause_unlock_reply).await;
        outcome
    }
    async fn remove_subtree(&self, path: &ResourcePath) -> Result<usize, LockStoreError> {
        self.pause(&self.pause_remove_subtree).await;
        if Self::take(&self.fail_remove_subtree) {
            return Err(LockStoreError::unavailable("down"));
        }
        self.inner.remove_subtree(path).await
    }
    async fn query(&self, query: &LockQuery) -> Result<Vec<Lock>, LockStoreError> {
        if Self::take(&self.fail_query) {
            return Err(LockStoreError::unavailable("down"));
        }
        self.inner.query(query).await
    }
    async fn get(&self, token: &str) -> Result<Option<Lock>, LockStoreError> {
        self.inner.get(token).await
    }
}
