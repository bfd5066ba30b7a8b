//! The pluggable lock store: the [`LockStore`] trait, its object-safe twin [`DynLockStore`],
//! the lock types, and the shipped stores.
//!
//! Every verb is **atomic**: a store must make each call one linearisable step, so that two
//! requests (or two application instances sharing a store) racing for the same lock can never
//! both win. Expired locks are never reported and never block.

mod check;
mod clock;
mod error;
mod lock;
mod memory;
mod query;
#[cfg(feature = "redis")]
mod redis;
mod token;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{RedisLockStore, RedisLockStoreBuilder};
pub(crate) use check::judge_resource;
pub use check::{CheckOutcome, Submission};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BoxError, LockStoreError};
pub(crate) use lock::by_root_then_token;
pub use lock::{
    new_token, CreateOutcome, Lock, LockDepth, LockScope, LockTimeout, NewLock, Quota, TokenAccess,
    TokenOutcome, TokenVerdict,
};
pub use memory::MemoryLockStore;
pub use query::{Below, LockQuery, QueryTarget};
pub use token::LockToken;

use crate::ResourcePath;

/// A pinned, boxed, `Send` future.
///
/// The return type of [`DynLockStore`]'s methods and of the
/// [`ResourceProbe`](crate::ResourceProbe) and [`ResourceCreator`](crate::ResourceCreator)
/// hooks.
///
/// ```
/// use tower_locks::BoxFuture;
///
/// fn answer(n: u32) -> BoxFuture<'static, u32> {
///     Box::pin(async move { n * 2 })
/// }
/// assert_eq!(tokio_test::block_on(answer(21)), 42);
/// ```
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A backend that holds write locks.
///
/// Implement it with plain `async fn`s. The layer holds stores as [`Arc<dyn DynLockStore>`],
/// which every `LockStore` is automatically. The semantics every implementation must follow
/// are spelled out per method and checked by the conformance kit (feature `conformance`).
///
/// ```
/// use tower_locks::{
///     CreateOutcome, Lock, LockQuery, LockStore, LockStoreError, LockTimeout, NewLock,
///     ResourcePath, TokenAccess, TokenOutcome, MemoryLockStore,
/// };
///
/// /// A store that delegates to the in-memory store and counts checks.
/// #[derive(Default)]
/// struct Counting {
///     inner: MemoryLockStore,
///     checks: std::sync::atomic::AtomicUsize,
/// }
///
/// impl LockStore for Counting {
///     async fn create(&self, lock: NewLock) -> Result<CreateOutcome, LockStoreError> {
///         self.inner.create(lock).await
///     }
///     async fn refresh(&self, access: TokenAccess<'_>, timeout: LockTimeout)
///         -> Result<TokenOutcome, LockStoreError> {
///         self.inner.refresh(access, timeout).await
///     }
///     async fn unlock(&self, access: TokenAccess<'_>) -> Result<TokenOutcome, LockStoreError> {
///         self.inner.unlock(access).await
///     }
///     async fn remove_subtree(&self, path: &ResourcePath) -> Result<usize, LockStoreError> {
///         self.inner.remove_subtree(path).await
///     }
///     async fn query(&self, query: &LockQuery) -> Result<Vec<Lock>, LockStoreError> {
///         self.checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         self.inner.query(query).await
///     }
///     async fn get(&self, token: &str) -> Result<Option<Lock>, LockStoreError> {
///         self.inner.get(token).await
///     }
/// }
///
/// # tokio_test::block_on(async {
/// let store = Counting::default();
/// let root = ResourcePath::parse("/doc").unwrap();
/// let CreateOutcome::Created(lock) = store.create(NewLock::new(root.clone())).await.unwrap()
///     else { panic!("no conflict expected") };
/// let found = store.query(&LockQuery::new().covering(root)).await.unwrap();
/// assert_eq!(found, vec![lock]);
/// # });
/// ```
pub trait LockStore: Send + Sync + 'static {
    /// Create a lock if no conflicting live lock exists, as one atomic step.
    ///
    /// Conflicts (RFC 4918 §6.1 (3), §9.10.5): any live lock covering the new root (a lock on
    /// the root itself or a depth-infinity lock on an ancestor), and — for a depth-infinity
    /// request — any live lock rooted below the root, unless both it and the request are
    /// shared. Every conflicting lock is reported, or at least 16 of them when there are more
    /// (see [`CreateOutcome::Conflict`]). Then the quotas, each counting live locks
    /// only: [`principal_quota`](NewLock::principal_quota) (the principal's locks, or all
    /// anonymous locks together for a lock without one),
    /// [`resource_quota`](NewLock::resource_quota) (locks rooted at the same path) and
    /// [`store_quota`](NewLock::store_quota) (every lock); a quota reached gives
    /// [`CreateOutcome::QuotaExceeded`] naming it. A granted lock gets a fencing number
    /// greater than every number granted before by this store.
    fn create(
        &self,
        lock: NewLock,
    ) -> impl Future<Output = Result<CreateOutcome, LockStoreError>> + Send;

    /// Restart the timer of the live lock `access.token` with `timeout`, if `access.path` is in
    /// its scope and the principal may use it. Nothing else about the lock changes.
    fn refresh(
        &self,
        access: TokenAccess<'_>,
        timeout: LockTimeout,
    ) -> impl Future<Output = Result<TokenOutcome, LockStoreError>> + Send;

    /// Remove the live lock `access.token`, if `access.path` is in its scope and the principal
    /// may remove it (or `access.privileged`).
    fn unlock(
        &self,
        access: TokenAccess<'_>,
    ) -> impl Future<Output = Result<TokenOutcome, LockStoreError>> + Send;

    /// Remove every lock rooted at `path` or below it, whoever holds it; returns how many live
    /// locks were removed. For applications (wiping what a resource tree holds, say): the layer
    /// itself removes the locks of a resource a DELETE or MOVE removed by token, the ones its
    /// check found (RFC 4918 §6.1 (8), [decision D20](crate::decisions#d20)).
    fn remove_subtree(
        &self,
        path: &ResourcePath,
    ) -> impl Future<Output = Result<usize, LockStoreError>> + Send;

    /// Every live lock matching `query` (see [`LockQuery::matches`]): those answering its
    /// targets and those of its tokens, each once, in one step. Below the targets that ask
    /// for descendants, [`LockQuery::below`] may ask for less (see [`Below`]): a store that
    /// always reports everything is correct, one that stops where [`Below`] allows keeps what
    /// a request can make it read bounded.
    fn query(
        &self,
        query: &LockQuery,
    ) -> impl Future<Output = Result<Vec<Lock>, LockStoreError>> + Send;

    /// The live lock with this token, if any.
    fn get(&self, token: &str)
        -> impl Future<Output = Result<Option<Lock>, LockStoreError>> + Send;

    /// "May a writer holding these tokens change these resources?": every live lock answering
    /// the targets of `query` is judged against `submission`, in one step, and only the ones
    /// that stand in the way are reported, with the highest fencing number among the satisfied
    /// ones (the query's [`tokens`](LockQuery::tokens) play no part).
    ///
    /// This is the check to call from code that enforces locks itself (a job, a handler not
    /// behind [`LockLayer`](crate::LockLayer), another protocol): its answer must equal
    /// [`CheckOutcome::judge`] over [`query`](Self::query)'s — except that when more than 16
    /// locks stand in the way a store may stop at 16 of them (the first in path order) and leave
    /// the fencing number `None`. The default body judges what `query` answers when it asks,
    /// below the targets, only for the resources the submission's tokens open and the first
    /// blocked ones ([`Below::UntilBlocked`]), so a refused check of a big subtree reads a
    /// bounded part of it. A store may answer it without building the satisfied locks; the
    /// memory store does. The layer itself asks
    /// [`query`](Self::query), because evaluating an `If` header, a `423` body and a fencing
    /// number need the locks themselves.
    ///
    /// ```
    /// use tower_locks::{CreateOutcome, LockQuery, LockStore, MemoryLockStore, NewLock};
    /// use tower_locks::{ResourcePath, Submission};
    ///
    /// # tokio_test::block_on(async {
    /// let store = MemoryLockStore::new();
    /// let doc = ResourcePath::parse("/docs/report").unwrap();
    /// let CreateOutcome::Created(lock) = store.create(NewLock::new(doc.clone())).await.unwrap()
    /// else { panic!("no conflict expected") };
    ///
    /// let write = LockQuery::new().covering(doc);
    /// let without = store.check(&write, Submission::default()).await.unwrap();
    /// assert_eq!(without.unsatisfied, vec![lock.clone()]);
    ///
    /// let tokens = [lock.token.as_str()];
    /// let with = store.check(&write, Submission::new(&tokens, None)).await.unwrap();
    /// assert!(with.allowed());
    /// assert_eq!(with.fence, Some(lock.fence));
    /// # });
    /// ```
    fn check(
        &self,
        query: &LockQuery,
        submission: Submission<'_>,
    ) -> impl Future<Output = Result<CheckOutcome, LockStoreError>> + Send {
        async move {
            // Below a target, only the resources the submission may satisfy and enough of
            // the others to refuse.
            let locks = if query.asks_below() {
                let mut enough = query.clone();
                enough.judge_removal_by(submission.tokens.iter().copied(), None);
                self.query(&enough).await?
            } else {
                self.query(query).await?
            };
            Ok(CheckOutcome::judge(query, locks, submission))
        }
    }

    /// [`query`](Self::query) answered without waiting, for stores that need no I/O to
    /// answer; `None` (the default) means "ask [`query`](Self::query)".
    ///
    /// When it returns `Some`, the answer must be exactly what `query` would have returned at
    /// that instant. The layer uses it on its hot path: a write whose check can be answered
    /// here, and finds nothing locked, is forwarded without allocating a future for the check.
    /// The layer asks once, with an empty query, when it is built; a store that answers `None`
    /// then is never asked again. Stores that talk to a server keep the default.
    ///
    /// ```
    /// use tower_locks::{LockQuery, LockStore, MemoryLockStore, NewLock, ResourcePath};
    ///
    /// # tokio_test::block_on(async {
    /// let store = MemoryLockStore::new();
    /// let doc = ResourcePath::parse("/doc").unwrap();
    /// store.create(NewLock::new(doc.clone())).await.unwrap();
    /// let query = LockQuery::new().covering(doc);
    /// let now = store.query_now(&query).expect("the memory store answers at once");
    /// assert_eq!(now.unwrap(), store.query(&query).await.unwrap());
    /// # });
    /// ```
    fn query_now(&self, query: &LockQuery) -> Option<Result<Vec<Lock>, LockStoreError>> {
        let _ = query;
        None
    }

    /// The time as this store judges expiry: a lock whose
    /// [`expires_at`](Lock::expires_at) has passed on this clock is gone. The layer reports
    /// the time a lock has left (`DAV:timeout` in `DAV:lockdiscovery`, the lock API's
    /// `secondsLeft`) against it, so a store whose clock is not the host's (a Redis server's,
    /// an injected [`Clock`]) is reported as it counts. Default: this host's clock.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_locks::{LockStore, ManualClock, MemoryLockStore};
    ///
    /// let clock = Arc::new(ManualClock::starting_at(UNIX_EPOCH + Duration::from_secs(1000)));
    /// let store = MemoryLockStore::with_clock(clock.clone());
    /// assert_eq!(store.now(), UNIX_EPOCH + Duration::from_secs(1000));
    /// ```
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

mod sealed {
    pub trait Sealed {}
    impl<T: super::LockStore> Sealed for T {}
}

/// The object-safe twin of [`LockStore`], implemented for every `LockStore`; hold stores as
/// `Arc<dyn DynLockStore>`. Sealed: implement [`LockStore`] instead.
///
/// ```
/// use std::sync::Arc;
/// use tower_locks::{DynLockStore, LockQuery, MemoryLockStore};
///
/// # tokio_test::block_on(async {
/// let store: Arc<dyn DynLockStore> = Arc::new(MemoryLockStore::new());
/// assert!(store.query_boxed(&LockQuery::new()).await.unwrap().is_empty());
/// # });
/// ```
pub trait DynLockStore: sealed::Sealed + Send + Sync + 'static {
    /// Boxed [`LockStore::create`].
    fn create_boxed(&self, lock: NewLock) -> BoxFuture<'_, Result<CreateOutcome, LockStoreError>>;
    /// Boxed [`LockStore::refresh`].
    fn refresh_boxed<'a>(
        &'a self,
        access: TokenAccess<'a>,
        timeout: LockTimeout,
    ) -> BoxFuture<'a, Result<TokenOutcome, LockStoreError>>;
    /// Boxed [`LockStore::unlock`].
    fn unlock_boxed<'a>(
        &'a self,
        access: TokenAccess<'a>,
    ) -> BoxFuture<'a, Result<TokenOutcome, LockStoreError>>;
    /// Boxed [`LockStore::remove_subtree`].
    fn remove_subtree_boxed<'a>(
        &'a self,
        path: &'a ResourcePath,
    ) -> BoxFuture<'a, Result<usize, LockStoreError>>;
    /// Boxed [`LockStore::query`].
    fn query_boxed<'a>(
        &'a self,
        query: &'a LockQuery,
    ) -> BoxFuture<'a, Result<Vec<Lock>, LockStoreError>>;
    /// Boxed [`LockStore::get`].
    fn get_boxed<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Lock>, LockStoreError>>;
    /// Boxed [`LockStore::check`].
    fn check_boxed<'a>(
        &'a self,
        query: &'a LockQuery,
        submission: Submission<'a>,
    ) -> BoxFuture<'a, Result<CheckOutcome, LockStoreError>>;
    /// [`LockStore::query_now`].
    fn query_now_dyn(&self, query: &LockQuery) -> Option<Result<Vec<Lock>, LockStoreError>>;
    /// [`LockStore::now`].
    fn now_dyn(&self) -> SystemTime;
}

/// A store call, boxed. With feature `tracing`, and DEBUG events enabled, its latency is
/// reported once it answers (`operation`, `elapsed_us`, `ok`), inside the request's span.
fn timed<'a, T: Send + 'a>(
    _operation: &'static str,
    call: impl Future<Output = Result<T, LockStoreError>> + Send + 'a,
) -> BoxFuture<'a, Result<T, LockStoreError>> {
    #[cfg(feature = "tracing")]
    if tracing::enabled!(tracing::Level::DEBUG) {
        return Box::pin(async move {
            let started = std::time::Instant::now();
            let answer = call.await;
            tracing::debug!(
                operation = _operation,
                elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                ok = answer.is_ok(),
                "tower-locks: store answered"
            );
            answer
        });
    }
    Box::pin(call)
}

impl<T: LockStore> DynLockStore for T {
    fn create_boxed(&self, lock: NewLock) -> BoxFuture<'_, Result<CreateOutcome, LockStoreError>> {
        timed("create", self.create(lock))
    }
    fn refresh_boxed<'a>(
        &'a self,
        access: TokenAccess<'a>,
        timeout: LockTimeout,
    ) -> BoxFuture<'a, Result<TokenOutcome, LockStoreError>> {
        timed("refresh", self.refresh(access, timeout))
    }
    fn unlock_boxed<'a>(
        &'a self,
        access: TokenAccess<'a>,
    ) -> BoxFuture<'a, Result<TokenOutcome, LockStoreError>> {
        timed("unlock", self.unlock(access))
    }
    fn remove_subtree_boxed<'a>(
        &'a self,
        path: &'a ResourcePath,
    ) -> BoxFuture<'a, Result<usize, LockStoreError>> {
        timed("remove_subtree", self.remove_subtree(path))
    }
    fn query_boxed<'a>(
        &'a self,
        query: &'a LockQuery,
    ) -> BoxFuture<'a, Result<Vec<Lock>, LockStoreError>> {
        timed("query", self.query(query))
    }
    fn get_boxed<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Lock>, LockStoreError>> {
        timed("get", self.get(token))
    }
    fn check_boxed<'a>(
        &'a self,
        query: &'a LockQuery,
        submission: Submission<'a>,
    ) -> BoxFuture<'a, Result<CheckOutcome, LockStoreError>> {
        timed("check", self.check(query, submission))
    }
    fn query_now_dyn(&self, query: &LockQuery) -> Option<Result<Vec<Lock>, LockStoreError>> {
        self.query_now(query)
    }
    fn now_dyn(&self) -> SystemTime {
        self.now()
    }
}

impl<T: LockStore> LockStore for Arc<T> {
    fn create(
        &self,
        lock: NewLock,
    ) -> impl Future<Output = Result<CreateOutcome, LockStoreError>> + Send {
        T::create(self, lock)
    }
    fn refresh(
        &self,
        access: TokenAccess<'_>,
        timeout: LockTimeout,
    ) -> impl Future<Output = Result<TokenOutcome, LockStoreError>> + Send {
        T::refresh(self, access, timeout)
    }
    fn unlock(
        &self,
        access: TokenAccess<'_>,
    ) -> impl Future<Output = Result<TokenOutcome, LockStoreError>> + Send {
        T::unlock(self, access)
    }
    fn remove_subtree(
        &self,
        path: &ResourcePath,
    ) -> impl Future<Output = Result<usize, LockStoreError>> + Send {
        T::remove_subtree(self, path)
    }
    fn query(
        &self,
        query: &LockQuery,
    ) -> impl Future<Output = Result<Vec<Lock>, LockStoreError>> + Send {
        T::query(self, query)
    }
    fn get(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Option<Lock>, LockStoreError>> + Send {
        T::get(self, token)
    }
    fn check(
        &self,
        query: &LockQuery,
        submission: Submission<'_>,
    ) -> impl Future<Output = Result<CheckOutcome, LockStoreError>> + Send {
        T::check(self, query, submission)
    }
    fn query_now(&self, query: &LockQuery) -> Option<Result<Vec<Lock>, LockStoreError>> {
        T::query_now(self, query)
    }
    fn now(&self) -> SystemTime {
        T::now(self)
    }
}
