//! Lock events for audit logs and notifications: grants, refreshes, releases, breaks, the
//! removal of a resource's locks with it, and expiries.
//!
//! Requests never run the application's hook: they put the event in a bounded queue (an event
//! that finds the queue full is dropped and counted) and one thread per layer calls the hook,
//! in order. The same thread reports expiries: it knows when each lock it heard of is due, and
//! reports it expired unless it heard of a refresh, release, break or removal first. With
//! several instances on one store, each reports what passed through it; a lock refreshed
//! through another instance is reported expired by this one when its old timeout passes.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::store::Lock;
use crate::ResourcePath;

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
    /// A lock went with its resource (a successful DELETE or MOVE).
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
}

/// The application's hook.
pub(crate) type Hook = Arc<dyn Fn(&LockEvent) + Send + Sync>;

/// What requests send the events thread.
enum Message {
    Event(LockEvent),
    /// The locks at and below this path went with their resource.
    Removed(ResourcePath),
}

/// Events waiting for the thread: beyond this many, new ones are dropped (and counted).
const QUEUE: usize = 4096;

/// The sending side, shared by every request of a layer.
pub(crate) struct Events {
    tx: SyncSender<Message>,
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
        let (tx, rx) = sync_channel::<Message>(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        // Should the thread not start, the receiver goes with it and every event is counted as
        // dropped: requests never notice.
        let _ = std::thread::Builder::new()
            .name("tower-locks-events".into())
            .spawn(move || {
                let mut tracked = Tracked::default();
                loop {
                    // Expiries that are due go before any later event.
                    for lock in tracked.take_due(SystemTime::now()) {
                        hook(&LockEvent::Expired { lock });
                    }
                    let wait = tracked.next_due().map(|due| {
                        due.duration_since(SystemTime::now())
                            .unwrap_or(Duration::ZERO)
                    });
                    let message = match wait {
                        Some(wait) => rx.recv_timeout(wait),
                        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    };
                    match message {
                        Ok(Message::Event(event)) => {
                            tracked.note(&event);
                            hook(&event);
                        }
                        Ok(Message::Removed(path)) => {
                            for lock in tracked.remove_below(&path) {
                                hook(&LockEvent::Removed { lock });
                            }
                        }
                        // Due now: reported at the top of the loop.
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            });
        Events { tx, dropped }
    }

    /// Hand `event` to the thread, never waiting.
    pub(crate) fn send(&self, event: LockEvent) {
        self.post(Message::Event(event));
    }

    /// The locks at and below `path` went with their resource.
    pub(crate) fn removed(&self, path: &ResourcePath) {
        self.post(Message::Removed(path.clone()));
    }

    fn post(&self, message: Message) {
        if self.tx.try_send(message).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The locks the thread heard of, by token, with their due times.
#[derive(Default)]
struct Tracked {
    locks: HashMap<String, Lock>,
    due: BTreeSet<(SystemTime, String)>,
}

impl Tracked {
    fn next_due(&self) -> Option<SystemTime> {
        self.due.first().map(|(at, _)| *at)
    }

    fn forget(&mut self, token: &str) -> Option<Lock> {
        let lock = self.locks.remove(token)?;
        if let Some(at) = lock.expires_at {
            self.due.remove(&(at, token.to_owned()));
        }
        Some(lock)
    }

    fn note(&mut self, event: &LockEvent) {
        let lock = event.lock();
        let token = lock.token.to_string();
        self.forget(&token);
        // Every live lock is tracked (a subtree's removal reports it); only one with an
        // expiry is due.
        if let LockEvent::Granted { lock } | LockEvent::Refreshed { lock } = event {
            if let Some(at) = lock.expires_at {
                self.due.insert((at, token.clone()));
            }
            self.locks.insert(token, lock.clone());
        }
    }

    fn remove_below(&mut self, path: &ResourcePath) -> Vec<Lock> {
        let gone: Vec<String> = self
            .locks
            .iter()
            .filter(|(_, l)| path.contains(&l.root))
            .map(|(t, _)| t.clone())
            .collect();
        gone.iter().filter_map(|t| self.forget(t)).collect()
    }

    fn take_due(&mut self, now: SystemTime) -> Vec<Lock> {
        let due: Vec<String> = self
            .due
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, t)| t.clone())
            .collect();
        due.iter().filter_map(|t| self.forget(t)).collect()
    }
}
