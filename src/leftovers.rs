//! Store work a request could not finish: its future was dropped (the client went away, a
//! timeout layer fired) or the store failed. There are two kinds of leftover:
//! - a lock the store created for a LOCK that never answered, which nobody holds;
//! - the locks of a resource that a DELETE or MOVE removed.
//!
//! Such work runs under a guard. A guard dropped before the work is done queues it, and the
//! next guarded request does the queued work before it asks the store anything. The work is
//! idempotent: unlocking a lock that is gone, or removing locks twice, changes nothing, so
//! work interrupted again is queued again.
//!
//! The core has no runtime to spawn on, so the work waits for the next request. Until then a
//! lock nobody holds stands as any lock would. A request that would meet it does the work
//! first ([decision D20](crate::decisions#d20)).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::events::Events;
use crate::store::{DynLockStore, TokenAccess};
use crate::ResourcePath;

/// Most leftovers queued at once; past it, new ones are dropped (and their locks expire).
const MAX_QUEUED: usize = 4096;

/// Work left for the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Leftover {
    /// The lock of token `token` on `root`: created for a LOCK that never answered, so nobody
    /// received its token.
    Unheld { token: String, root: ResourcePath },
    /// The locks at and below a path whose resource was removed (RFC 4918 §6.1 (8)).
    Removed(ResourcePath),
}

/// The queue of one layer.
#[derive(Debug, Default)]
pub(crate) struct Leftovers {
    queue: Mutex<Vec<Leftover>>,
    /// Whether the queue may hold something: one load on every request's path.
    any: AtomicBool,
}

impl Leftovers {
    /// Whether work is waiting.
    pub(crate) fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    fn push(&self, leftover: Leftover) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.len() < MAX_QUEUED && !queue.contains(&leftover) {
            queue.push(leftover);
        }
        self.any.store(true, Ordering::Release);
    }

    /// `leftover`, queued unless [`Unfinished::done`] is called first.
    pub(crate) fn guard(self: &Arc<Self>, leftover: Leftover) -> Unfinished {
        Unfinished {
            leftovers: Arc::clone(self),
            leftover: Some(leftover),
        }
    }

    /// Do the queued work. What fails, or is interrupted again, stays queued.
    pub(crate) async fn finish(
        self: &Arc<Self>,
        store: &dyn DynLockStore,
        events: Option<&Events>,
    ) {
        if !self.any() {
            return;
        }
        let taken = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            self.any.store(false, Ordering::Release);
            std::mem::take(&mut *queue)
        };
        // Every item under its own guard from the start, so a drop requeues all not done.
        let guards: Vec<Unfinished> = taken.into_iter().map(|l| self.guard(l)).collect();
        for guard in guards {
            let done = match guard.leftover.as_ref() {
                Some(Leftover::Unheld { token, root }) => {
                    let mut access = TokenAccess::new(token, root, None);
                    access.privileged = true;
                    // Gone already, or whatever else the store says of a lock nobody holds:
                    // only a failed store leaves it for later.
                    store.unlock_boxed(access).await.is_ok()
                }
                Some(Leftover::Removed(path)) => match store.remove_subtree_boxed(path).await {
                    Ok(removed) => {
                        if let (true, Some(events)) = (removed > 0, events) {
                            events.removed(path);
                        }
                        true
                    }
                    Err(_) => false,
                },
                None => true,
            };
            if done {
                guard.done();
            }
        }
    }
}

/// Work under way; queued when dropped before [`done`](Self::done).
#[derive(Debug)]
pub(crate) struct Unfinished {
    leftovers: Arc<Leftovers>,
    leftover: Option<Leftover>,
}

impl Unfinished {
    /// The work is done (or there was none to do): nothing is queued.
    pub(crate) fn done(mut self) {
        self.leftover = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(leftover) = self.leftover.take() {
            self.leftovers.push(leftover);
        }
    }
}
