//! A store wrapper that counts how the layer asks it, and can hide the memory store's
//! synchronous answer so the layer takes its full, asynchronous flow.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};

use tower_locks::{
    CreateOutcome, Lock, LockQuery, LockStore, LockStoreError, LockTimeout, MemoryLockStore,
    NewLock, ResourcePath, TokenAccess, TokenOutcome,
};

/// Delegates to a store (a [`MemoryLockStore`] unless said otherwise); counts `query` and
/// `query_now` calls.
#[derive(Default)]
pub struct Counting<S = MemoryLockStore> {
    pub inner: S,
    /// `false`: `query_now` answers `None`, like a store that needs I/O.
    pub answers_now: bool,
    pub queries: AtomicUsize,
    pub queries_now: AtomicUsize,
}

impl Counting {
    pub fn new(answers_now: bool) -> Self {
        Self {
            answers_now,
            ..Self::default()
        }
    }
}

impl<S> Counting<S> {
    /// Counting the calls to `inner`, which answers at once when it can.
    pub fn over(inner: S) -> Self {
        Self {
            inner,
            answers_now: true,
            queries: AtomicUsize::new(0),
            queries_now: AtomicUsize::new(0),
        }
    }

    /// `(query calls, query_now calls)` so far.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.queries.load(Ordering::SeqCst),
            self.queries_now.load(Ordering::SeqCst),
        )
    }
}

impl<S: LockStore> LockStore for Counting<S> {
    async fn create(&self, lock: NewLock) -> Result<CreateOutcome, LockStoreError> {
        self.inner.create(lock).await
    }
    async fn refresh(
        &self,
        access: TokenAccess<'_>,
        timeout: LockTimeout,
    ) -> Result<TokenOutcome, LockStoreError> {
        self.inner.refresh(access, timeout).await
    }
    async fn unlock(&self, access: TokenAccess<'_>) -> Result<TokenOutcome, LockStoreError> {
        self.inner.unlock(access).await
    }
    async fn remove_subtree(&self, path: &ResourcePath) -> Result<usize, LockStoreError> {
        self.inner.remove_subtree(path).await
    }
    async fn query(&self, query: &LockQuery) -> Result<Vec<Lock>, LockStoreError> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        self.inner.query(query).await
    }
    async fn get(&self, token: &str) -> Result<Option<Lock>, LockStoreError> {
        self.inner.get(token).await
    }
    fn query_now(&self, query: &LockQuery) -> Option<Result<Vec<Lock>, LockStoreError>> {
        self.queries_now.fetch_add(1, Ordering::SeqCst);
        if self.answers_now {
            self.inner.query_now(query)
        } else {
            None
        }
    }
}
