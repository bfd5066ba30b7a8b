//! Store work a request could not finish: its future was dropped (the client went away, a
//! timeout layer fired) or the store failed. The work is always the removal of known locks:
//! - the lock the store created for a LOCK that never answered, which nobody holds;
//! - the locks of a resource that a DELETE or MOVE removed: the ones its check found at and
//!   below it (the write's hold kept this layer from granting others meanwhile), or, without
//!   a full check answer, the ones standing below it once the service has answered.
//!
//! Such work runs under a guard. A guard dropped before the work is done queues it, and the
//! next guarded request does the queued work before it asks the store anything; work stays
//! queued until it is done, and every request that finds work does it, so requests running
//! side by side never meet those locks. Locks are named by token, so a lock granted since on
//! the same path is never touched, and unlocking a lock that is gone changes nothing: work
//! interrupted again is queued again. No write relies on a lock going this way: its token is
//! marked in `crate::holds` by whoever hands it to a guard (the LOCK until it answers, the
//! removal from the moment it is let through), and by the queue while it waits there.
//!
//! The core has no runtime to spawn on, so the work waits for the next request. Until then a
//! lock nobody holds stands as any lock would. A request that would meet it does the work
//! first ([decision D20](crate::decisions#d20)).

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use crate::events::{Events, LockEvent};
use crate::holds::{Holds, RemovalGuard};
use crate::store::{BoxFuture, DynLockStore, Lock, TokenAccess, TokenOutcome};
use crate::ResourcePath;

/// Most leftovers queued at once; past it, new ones are dropped (and their locks expire).
const MAX_QUEUED: usize = 4096;

/// Most removals sent to the store at once.
const IN_FLIGHT: usize = 32;

/// A lock nobody may hold any more, to be removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leftover {
    token: String,
    root: ResourcePath,
    /// Whether the event hook hears of the removal (`LockEvent::Removed`): yes for the locks
    /// of a removed resource and for an unheld lock whose grant was announced, no for one
    /// whose grant never was.
    announce: bool,
}

impl Leftover {
    /// The lock of `token` on `root`, created for a LOCK that never answered.
    pub(crate) fn unheld(token: &str, root: &ResourcePath) -> Self {
        Leftover {
            token: token.to_owned(),
            root: root.clone(),
            announce: false,
        }
    }

    /// `lock`, whose resource was removed.
    pub(crate) fn removed(lock: &Lock) -> Self {
        Leftover {
            token: lock.token.to_string(),
            root: lock.root.clone(),
            announce: true,
        }
    }

    /// The token of the lock to remove.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }
}

/// What removing leftovers takes: the store and the event hook. Whoever hands locks to it has
/// marked their tokens (D15): a queued leftover is marked while it is queued, the locks of a
/// removed resource by the removal.
#[derive(Clone, Copy)]
pub(crate) struct Remover<'a> {
    pub(crate) store: &'a dyn DynLockStore,
    pub(crate) events: Option<&'a Events>,
}

impl Remover<'_> {
    /// Remove the locks of `batch` by token, all at once, so a remote store's round trips
    /// overlap, and tell the event hook of the removals to announce. Returns, for each, whether
    /// it is done with: removed, gone already, or refused by the store (nobody may hold it
    /// either way); not when the store failed.
    async fn remove(self, batch: &[Leftover]) -> Vec<bool> {
        let mut removals: Vec<Option<BoxFuture<'_, _>>> = batch
            .iter()
            .map(|leftover| {
                let mut access = TokenAccess::new(&leftover.token, &leftover.root, None);
                access.privileged = true;
                Some(self.store.unlock_boxed(access))
            })
            .collect();
        let mut done = vec![false; batch.len()];
        poll_fn(|cx| {
            let mut waiting = false;
            for ((removal, leftover), done) in removals.iter_mut().zip(batch).zip(&mut done) {
                let Some(Poll::Ready(outcome)) = removal.as_mut().map(|r| r.as_mut().poll(cx))
                else {
                    waiting |= removal.is_some();
                    continue;
                };
                *removal = None;
                match outcome {
                    Ok(outcome) => {
                        *done = true;
                        if let (TokenOutcome::Done(lock), true, Some(events)) =
                            (outcome, leftover.announce, self.events)
                        {
                            events.send(LockEvent::Removed { lock });
                        }
                    }
                    Err(_err) => {
                        #[cfg(feature = "tracing")]
                        tracing::error!(
                            error = &_err as &(dyn std::error::Error + 'static),
                            path = leftover.root.as_str(),
                            "tower-locks: removing a lock nobody may hold failed; the next request retries it"
                        );
                    }
                }
            }
            if waiting {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        done
    }
}

/// The queue of one layer.
#[derive(Debug)]
pub(crate) struct Leftovers {
    queue: Mutex<Vec<Queued>>,
    /// Whether the queue may hold something: one load on every request's path.
    any: AtomicBool,
    /// Where a queued lock's token is marked, so that no write relies on it while it waits
    /// (D15).
    holds: Arc<Holds>,
}

/// A queued leftover, its token marked for as long as it is queued.
#[derive(Debug)]
struct Queued {
    leftover: Leftover,
    _marked: RemovalGuard,
}

impl Leftovers {
    /// An empty queue, marking the tokens it holds in `holds`.
    pub(crate) fn new(holds: Arc<Holds>) -> Self {
        Leftovers {
            queue: Mutex::default(),
            any: AtomicBool::new(false),
            holds,
        }
    }

    /// Whether work is waiting.
    pub(crate) fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    fn queue(&self) -> MutexGuard<'_, Vec<Queued>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, leftovers: impl IntoIterator<Item = Leftover>) {
        let mut queue = self.queue();
        for leftover in leftovers {
            if queue.len() < MAX_QUEUED && !queue.iter().any(|q| q.leftover == leftover) {
                let _marked = self.holds.withhold([leftover.token.as_str()]);
                queue.push(Queued { leftover, _marked });
            }
        }
        self.any.store(!queue.is_empty(), Ordering::Release);
    }

    /// The removal of `leftovers`, queued unless [`Unfinished::done`] is called first.
    pub(crate) fn guard(self: &Arc<Self>, leftovers: Vec<Leftover>) -> Unfinished {
        Unfinished {
            leftovers: Arc::clone(self),
            work: leftovers,
        }
    }

    /// The removal of the lock of `token` on `root`, which nobody holds until its taker has
    /// the answer: queued unless [`Unfinished::done`] is called first.
    pub(crate) fn guard_unheld(self: &Arc<Self>, token: &str, root: &ResourcePath) -> Unfinished {
        self.guard(vec![Leftover::unheld(token, root)])
    }

    /// Remove the queued locks, a batch at a time from the front. Queued work stays queued
    /// until it is done: every request that finds work does it, so a request running beside
    /// another that is removing these locks never meets them (unlocking a lock that is gone
    /// changes nothing, and only the removal the store did is announced). A failed store ends
    /// the attempt; the rest waits for the next request.
    pub(crate) async fn finish(&self, remover: Remover<'_>) {
        if !self.any() {
            return;
        }
        let rounds = self.queue().len().div_ceil(IN_FLIGHT);
        for _ in 0..rounds {
            let batch: Vec<Leftover> = (self.queue().iter().take(IN_FLIGHT))
                .map(|q| q.leftover.clone())
                .collect();
            if batch.is_empty() {
                return;
            }
            let done = remover.remove(&batch).await;
            let mut queue = self.queue();
            let finished = |l: &Leftover| batch.iter().zip(&done).any(|(b, d)| *d && b == l);
            queue.retain(|q| !finished(&q.leftover));
            self.any.store(!queue.is_empty(), Ordering::Release);
            if done.contains(&false) {
                return;
            }
        }
    }
}

/// Work under way; queued when dropped before [`done`](Self::done).
#[derive(Debug)]
pub(crate) struct Unfinished {
    leftovers: Arc<Leftovers>,
    work: Vec<Leftover>,
}

impl Unfinished {
    /// Whether the work, should it be queued, reports its removals to the event hook: yes
    /// once the hook has heard of the grant of the locks it removes (so it never hears of them
    /// expiring after they are gone), no again once it has heard of their removal.
    pub(crate) fn announce(&mut self, announce: bool) {
        for leftover in &mut self.work {
            leftover.announce = announce;
        }
    }

    /// Do the work: remove each lock by token (privileged: nobody may hold it any more), up to
    /// [`IN_FLIGHT`] at once, so that a DELETE of a collection holding a thousand locks costs
    /// milliseconds on a remote store, not a thousand round trips in turn. What the store
    /// fails, or what is interrupted, is queued.
    pub(crate) async fn finish(mut self, remover: Remover<'_>) {
        while !self.work.is_empty() {
            let from = self.work.len().saturating_sub(IN_FLIGHT);
            let done = remover.remove(&self.work[from..]).await;
            let failed = done.contains(&false);
            let rest: Vec<Leftover> = self
                .work
                .drain(from..)
                .zip(done)
                .filter_map(|(leftover, done)| (!done).then_some(leftover))
                .collect();
            self.work.extend(rest);
            if failed {
                return;
            }
        }
    }

    /// The work is done (or there was none to do): nothing is queued.
    pub(crate) fn done(mut self) {
        self.work.clear();
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.work.is_empty() {
            self.leftovers.push(self.work.drain(..));
        }
    }
}
