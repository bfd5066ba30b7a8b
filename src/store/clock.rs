//! Time sources for stores, so expiry can be tested deterministically.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// A source of the current time.
///
/// Stores read the time through a `Clock` so that tests can move it. An implementation:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::{Duration, SystemTime};
/// use tower_locks::{Clock, LockStore, MemoryLockStore, NewLock, ResourcePath, LockQuery};
///
/// /// Seconds since the epoch, set by the test.
/// #[derive(Debug, Default)]
/// struct EpochSeconds(AtomicU64);
///
/// impl Clock for EpochSeconds {
///     fn now(&self) -> SystemTime {
///         SystemTime::UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::SeqCst))
///     }
/// }
///
/// # tokio_test::block_on(async {
/// let clock = Arc::new(EpochSeconds::default());
/// let store = MemoryLockStore::with_clock(clock.clone());
/// let doc = ResourcePath::parse("/doc").unwrap();
/// store.create(NewLock::new(doc.clone())).await.unwrap(); // 600 s by default
/// let covering = LockQuery::new().covering(doc);
/// assert_eq!(store.query(&covering).await.unwrap().len(), 1);
/// clock.0.store(600, Ordering::SeqCst);
/// assert!(store.query(&covering).await.unwrap().is_empty()); // expired
/// # });
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock, [`SystemTime::now`].
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_locks::{Clock, SystemClock};
///
/// let before = SystemTime::now();
/// let now = SystemClock.now();
/// let after = SystemTime::now();
/// // Never ahead of the precise clock, and at most a tick behind it.
/// assert!(now <= after);
/// assert!(before.duration_since(now).unwrap_or_default() < Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to: for deterministic expiry tests.
///
/// ```
/// use std::time::Duration;
/// use tower_locks::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let t0 = clock.now();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now().duration_since(t0).unwrap(), Duration::from_secs(5));
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    /// A manual clock starting at the current system time.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use tower_locks::{Clock, ManualClock};
    ///
    /// let before = SystemTime::now();
    /// let clock = ManualClock::new();
    /// let t = clock.now();
    /// assert!(t >= before);
    /// std::thread::sleep(std::time::Duration::from_millis(5));
    /// assert_eq!(clock.now(), t); // it does not move by itself
    /// ```
    pub fn new() -> Self {
        Self::starting_at(SystemTime::now())
    }

    /// A manual clock starting at `t`.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use tower_locks::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::starting_at(SystemTime::UNIX_EPOCH);
    /// assert_eq!(clock.now(), SystemTime::UNIX_EPOCH);
    /// ```
    pub fn starting_at(t: SystemTime) -> Self {
        Self { now: Mutex::new(t) }
    }

    /// Move the clock forward.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use tower_locks::{
    ///     LockQuery, LockStore, LockTimeout, ManualClock, MemoryLockStore, NewLock, ResourcePath,
    /// };
    ///
    /// # tokio_test::block_on(async {
    /// let clock = Arc::new(ManualClock::new());
    /// let store = MemoryLockStore::with_clock(clock.clone());
    /// let doc = ResourcePath::parse("/doc").unwrap();
    /// store.create(NewLock::new(doc.clone()).timeout(LockTimeout::Seconds(30))).await.unwrap();
    /// let covering = LockQuery::new().covering(doc);
    ///
    /// clock.advance(Duration::from_secs(29));
    /// assert_eq!(store.query(&covering).await.unwrap().len(), 1);
    /// clock.advance(Duration::from_secs(1));
    /// assert!(store.query(&covering).await.unwrap().is_empty());
    /// # });
    /// ```
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<C: Clock> Clock for std::sync::Arc<C> {
    fn now(&self) -> SystemTime {
        C::now(self)
    }
}
