//! The locks one lock API request removes (a release, a break, the locks a takeover breaks):
//! all of them or none. Their removal is announced once the request has gone through; a
//! request that fails after removing some puts them back.

use crate::config::Config;
use crate::events::LockEvent;
use crate::holds::RemovalGuard;
use crate::store::{
    BoxError, CreateOutcome, Lock, LockTimeout, NewLock, TokenAccess, TokenOutcome,
};

/// The locks a request has removed so far, unannounced. [`done`](Self::done) announces them;
/// [`undo`](Self::undo) puts them back. Dropped otherwise (the request's future dropped half
/// way), it announces them: they are gone.
pub(super) struct Removal<'a> {
    config: &'a Config,
    /// Who removes them.
    by: Option<String>,
    /// Each removed lock, and whether its holder removed it (a release) or somebody else (a
    /// break).
    removed: Vec<(Lock, bool)>,
    /// The removal marks of the locks ([decision D15](crate::decisions#d15)): no write
    /// relies on them until every one is removed for good or put back.
    guards: Vec<RemovalGuard>,
}

impl<'a> Removal<'a> {
    /// Nothing removed yet, by `by`.
    pub(super) fn new(config: &'a Config, by: Option<String>) -> Self {
        Self {
            config,
            by,
            removed: Vec::new(),
            guards: Vec::new(),
        }
    }

    /// Keep `guard`, the removal mark of the locks about to be removed, until they are
    /// removed for good or put back.
    pub(super) fn mark(&mut self, guard: RemovalGuard) {
        self.guards.push(guard);
    }

    /// Unlock through `access`; a lock the store removed is remembered, as released when
    /// `holder` (the request holds it), as broken otherwise.
    pub(super) async fn unlock(
        &mut self,
        access: TokenAccess<'_>,
        holder: bool,
    ) -> Result<TokenOutcome, BoxError> {
        let outcome = self.config.store.unlock_boxed(access).await?;
        if let TokenOutcome::Done(lock) = &outcome {
            self.removed.push((lock.clone(), holder));
        }
        Ok(outcome)
    }

    /// The request went through: announce every removed lock.
    pub(super) fn done(self) {}

    /// The request failed: put every removed lock back, with the same token, root, scope,
    /// depth, owner and principal, for the time it had left (no quota applies: the lock was
    /// there). A lock that cannot be put back (its time is up, somebody locked the resource
    /// since, a write checked meanwhile is in flight there, the store fails) stays removed, and is
    /// announced.
    pub(super) async fn undo(mut self) {
        if self.removed.is_empty() {
            return;
        }
        // A lock this request's create may have left behind (the store failed to answer)
        // goes first, so it stands in no put-back's way.
        self.config.finish_leftovers().await;
        let removed = std::mem::take(&mut self.removed);
        for (lock, holder) in removed {
            if !self.put_back(&lock).await {
                self.removed.push((lock, holder));
            }
        }
    }

    /// Whether `lock` is back in the store.
    async fn put_back(&self, lock: &Lock) -> bool {
        let store = &self.config.store;
        let timeout = lock.remaining_at(store.now_dyn());
        if timeout == LockTimeout::Seconds(0) {
            return false;
        }
        let mut new = NewLock::new(lock.root.clone());
        new.token = lock.token.clone();
        new.scope = lock.scope;
        new.depth = lock.depth;
        new.owner = lock.owner.clone();
        new.principal = lock.principal.clone();
        new.timeout = timeout;
        let outcome = store.create_boxed(new).await;
        // Put back like any new lock: not over a write checked while it was gone.
        let back = match &outcome {
            Ok(CreateOutcome::Created(lock)) => {
                self.config.keep_unless_in_flight(lock).await.is_ok()
            }
            _ => false,
        };
        #[cfg(feature = "tracing")]
        if !back {
            let why = match &outcome {
                Ok(CreateOutcome::Created(_)) => "a write is in flight there".to_owned(),
                Ok(CreateOutcome::Conflict(_)) => "the resource was locked since".to_owned(),
                Ok(_) => "the store refused it".to_owned(),
                Err(e) => format!("the store failed: {e}"),
            };
            tracing::warn!(
                root = %lock.root,
                holder = lock.principal.as_deref(),
                why,
                "tower-locks: a lock the lock API removed for a request that then failed could \
                 not be put back; it stays removed"
            );
        }
        back
    }
}

impl Drop for Removal<'_> {
    fn drop(&mut self) {
        for (lock, holder) in self.removed.drain(..) {
            let by = self.by.clone();
            self.config.event(|| match holder {
                true => LockEvent::Released { lock },
                false => LockEvent::Broken { lock, by },
            });
        }
    }
}
