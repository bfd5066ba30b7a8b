//! A store wrapper for tests that need a store behaving as its contract allows but the
//! stores at hand do not: it changes what the wrapped store is asked (`query`) or what it
//! answers (`created`), fails the next `unlock` calls as a store outage would
//! (`failing_unlocks`) or does them and never answers, as a lost reply would
//! (`hanging_unlocks`), holds `unlock` and `query` at gates the test opens (`gates`), and
//! passes everything else on.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use tokio::sync::Notify;

use tower_locks::{
    CreateOutcome, Lock, LockQuery, LockStore, LockStoreError, LockTimeout, NewLock, ResourcePath,
    TokenAccess, TokenOutcome,
};

/// `inner`, with `query` applied to every query before it reaches it, and `created` to every
/// answer of `create` (given the requested root).
#[derive(Clone)]
pub struct Adjusted<S> {
    pub inner: S,
    pub query: fn(&LockQuery) -> LockQuery,
    pub created: fn(&ResourcePath, CreateOutcome) -> CreateOutcome,
    /// How many of the next `unlock` calls fail with [`LockStoreError::unavailable`].
    pub failing_unlocks: Arc<AtomicUsize>,
    /// How many of the next `unlock` calls unlock, then never answer.
    pub hanging_unlocks: Arc<AtomicUsize>,
    pub gates: Arc<Gates>,
}

/// Where `unlock` and `query` wait, when armed, for the test.
#[derive(Default)]
pub struct Gates {
    /// The next `unlock` says so at `unlock_waiting`, then waits at `unlock_gate` before it
    /// acts.
    pub unlock_armed: AtomicBool,
    pub unlock_waiting: Notify,
    pub unlock_gate: Notify,
    /// The next `query` reads, says so at `query_read`, then answers once `query_gate` opens.
    pub query_armed: AtomicBool,
    pub query_read: Notify,
    pub query_gate: Notify,
}

impl<S> Adjusted<S> {
    /// `inner`, unchanged until the fields say otherwise.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            query: LockQuery::clone,
            created: |_, outcome| outcome,
            failing_unlocks: Arc::default(),
            hanging_unlocks: Arc::default(),
            gates: Arc::default(),
        }
    }
}

impl<S: LockStore> LockStore for Adjusted<S> {
    async fn create(&self, lock: NewLock) -> Result<CreateOutcome, LockStoreError> {
        let root = lock.root.clone();
        Ok((self.created)(&root, self.inner.create(lock).await?))
    }
    async fn refresh(
        &self,
        access: TokenAccess<'_>,
        timeout: LockTimeout,
    ) -> Result<TokenOutcome, LockStoreError> {
        self.inner.refresh(access, timeout).await
    }
    async fn unlock(&self, access: TokenAccess<'_>) -> Result<TokenOutcome, LockStoreError> {
        let fail = |n: usize| n.checked_sub(1);
        if self
            .failing_unlocks
            .fetch_update(SeqCst, SeqCst, fail)
            .is_ok()
        {
            return Err(LockStoreError::unavailable("the store is down"));
        }
        if self.gates.unlock_armed.swap(false, SeqCst) {
            self.gates.unlock_waiting.notify_one();
            self.gates.unlock_gate.notified().await;
        }
        let outcome = self.inner.unlock(access).await;
        if self
            .hanging_unlocks
            .fetch_update(SeqCst, SeqCst, fail)
            .is_ok()
        {
            std::future::pending::<()>().await;
        }
        outcome
    }
    async fn remove_subtree(&self, path: &ResourcePath) -> Result<usize, LockStoreError> {
        self.inner.remove_subtree(path).await
    }
    async fn query(&self, query: &LockQuery) -> Result<Vec<Lock>, LockStoreError> {
        let found = self.inner.query(&(self.query)(query)).await;
        if self.gates.query_armed.swap(false, SeqCst) {
            self.gates.query_read.notify_one();
            self.gates.query_gate.notified().await;
        }
        found
    }
    async fn get(&self, token: &str) -> Result<Option<Lock>, LockStoreError> {
        self.inner.get(token).await
    }
}
