//! Lock events for audit logs and notifications: grants, refreshes, releases, breaks, the
//! removal of a resource's locks with it, and expiries.
//!
//! Requests never run the application's hook: they put the event in a bounded queue (an event
//! that finds the queue full is dropped and counted) and one thread per layer calls the hook,
//! in order. The same thread reports expiries: a lock it heard granted or refreshed is due a
//! whole timeout after that event was sent (on this host's monotonic clock, whatever the
//! store's clock says), and is reported expired unless the thread hears of a refresh, release,
//! break or removal first; an expiry goes before every event sent after it was due. A hook
//! that panics loses that one event, not the ones after it. With several instances on one
//! store, each reports what passed through it; a lock refreshed through another instance is
//! reported expired by this one when its old timeout passes.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Instant;

use crate::store::Lock;

/// Something that happened to a lock, as the hook registered with
/// [`LockLayer::on_lock_event`](crate::LockLayer::on_lock_event) hears of it.
///
/// ```
/// use tower_locks::{Lock, LockEvent, ResourcePath};
///
/// let lock = Lock::builder(ResourcePath::parse("/doc").unwrap()).principal("ann").build_unstored();
/// let event = LockEvent::Broken { lock, by: Some("admin".into()) };
/// assert_eq!(event.lock().principal.as_deref(), Some("ann")); // the previous holder
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockEvent {
    /// A lock was granted.
    Granted {
        /// The new lock.
        lock: Lock,
    },
    /// A lock's timer was restarted.
    Refreshed {
        /// The lock, with its new timeout.
        lock: Lock,
    },
    /// A lock was released by its holder.
    Released {
        /// The lock that is gone.
        lock: Lock,
    },
    /// A lock was removed by somebody else than its holder (an administrator).
    Broken {
        /// The lock that is gone; its `principal` is the previous holder.
        lock: Lock,
        /// Who broke it.
        by: Option<String>,
    },
    /// A lock went with its resource (a successful DELETE or MOVE through this layer, whoever
    /// granted the lock), or its resource could not be created (a LOCK on an unmapped URL).
    Removed {
        /// The lock that is gone.
        lock: Lock,
    },
    /// A lock's timeout passed.
    Expired {
        /// The lock that is gone.
        lock: Lock,
    },
}

impl LockEvent {
    /// The lock the event is about.
    ///
    /// ```
    /// use tower_locks::{Lock, LockEvent, ResourcePath};
    ///
    /// let lock = Lock::builder(ResourcePath::parse("/doc").unwrap()).build_unstored();
    /// assert_eq!(LockEvent::Granted { lock: lock.clone() }.lock(), &lock);
    /// ```
    pub fn lock(&self) -> &Lock {
        match self {
            LockEvent::Granted { lock }
            | LockEvent::Refreshed { lock }
            | LockEvent::Released { lock }
            | LockEvent::Broken { lock, .. }
            | LockEvent::Removed { lock }
            | LockEvent::Expired { lock } => lock,
        }
    }

    /// What happened, as one lower-case word (`"granted"`, `"refreshed"`, `"released"`,
    /// `"broken"`, `"removed"`, `"expired"`): for log lines and metric labels.
    ///
    /// ```
    /// use tower_locks::{Lock, LockEvent, ResourcePath};
    ///
    /// let lock = Lock::builder(ResourcePath::parse("/doc").unwrap()).build_unstored();
    /// assert_eq!(LockEvent::Expired { lock }.kind(), "expired");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            LockEvent::Granted { .. } => "granted",
            LockEvent::Refreshed { .. } => "refreshed",
            LockEvent::Released { .. } => "released",
            LockEvent::Broken { .. } => "broken",
            LockEvent::Removed { .. } => "removed",
            LockEvent::Expired { .. } => "expired",
        }
    }
}

/// The application's hook.
pub(crate) type Hook = Arc<dyn Fn(&LockEvent) + Send + Sync>;

/// Events waiting for the thread: beyond this many, new ones are dropped (and counted).
const QUEUE: usize = 4096;

/// The sending side, shared by every request of a layer.
pub(crate) struct Events {
    tx: SyncSender<(Instant, LockEvent)>,
    dropped: Arc<AtomicU64>,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

impl Events {
    /// Start the thread that calls `hook`; it ends when the layer (every sender) is gone.
    pub(crate) fn start(hook: Hook) -> Self {
        let (tx, rx) = sync_channel::<(Instant, LockEvent)>(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        // Should the thread not start, the receiver goes with it and every event is counted as
        // dropped: requests never notice.
        let _ = std::thread::Builder::new()
            .name("tower-locks-events".into())
            .spawn(move || {
                let mut tracked = Tracked::default();
                // A panicking hook loses that one event, not every later one.
                let call = |event: &LockEvent| {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(event)));
                };
                loop {
                    // Expiries due by now go before anything sent later.
                    let message = match rx.try_recv() {
                        Ok(m) => Ok(m),
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                        Err(std::sync::mpsc::TryRecvError::Empty) => {
                            for lock in tracked.take_due(Instant::now()) {
                                call(&LockEvent::Expired { lock });
                            }
                            match tracked.next_due() {
                                Some(due) => {
                                    rx.recv_timeout(due.saturating_duration_since(Instant::now()))
                                }
                                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                            }
                        }
                    };
                    match message {
                        Ok((sent, event)) => {
                            // Only expiries due before this event was sent go before it.
                            for lock in tracked.take_due(sent) {
                                call(&LockEvent::Expired { lock });
                            }
                            tracked.note(&event, sent);
                            call(&event);
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            });
        Events { tx, dropped }
    }

    /// Hand `event` to the thread, never waiting, stamped with the moment it happened.
    pub(crate) fn send(&self, event: LockEvent) {
        if self.tx.try_send((Instant::now(), event)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The locks the thread heard of, by token, with their due times.
#[derive(Default)]
struct Tracked {
    /// By token: when the lock is due, and the lock.
    locks: HashMap<String, (Instant, Lock)>,
    due: BTreeSet<(Instant, String)>,
}

impl Tracked {
    fn next_due(&self) -> Option<Instant> {
        self.due.first().map(|(at, _)| *at)
    }

    fn forget(&mut self, token: &str) -> Option<Lock> {
        let (at, lock) = self.locks.remove(token)?;
        self.due.remove(&(at, token.to_owned()));
        Some(lock)
    }

    /// Track the lock of `event`, sent at `sent` (just after the store answered, on this
    /// host's monotonic clock): a grant or refresh with a finite timeout is due a whole timeout
    /// later, whatever the store's clock says; anything else ends its tracking. A lock removed
    /// with its resource is reported by the request that removed it.
    fn note(&mut self, event: &LockEvent, sent: Instant) {
        let lock = event.lock();
        let token = lock.token.to_string();
        self.forget(&token);
        if let LockEvent::Granted { lock } | LockEvent::Refreshed { lock } = event {
            if let Some(timeout) = lock.timeout.as_duration() {
                let at = sent + timeout;
                self.due.insert((at, token.clone()));
                self.locks.insert(token, (at, lock.clone()));
            }
        }
    }

    fn take_due(&mut self, now: Instant) -> Vec<Lock> {
        let due: Vec<String> = self
            .due
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, t)| t.clone())
            .collect();
        due.iter().filter_map(|t| self.forget(t)).collect()
    }
}
