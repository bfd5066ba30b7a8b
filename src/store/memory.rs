//! `MemoryLockStore`: the embedded default store. (Interim naive version: replaced by the
//! indexed implementation.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{
    Clock, CreateOutcome, Lock, LockDepth, LockQuery, LockStore, LockStoreError, LockTimeout,
    NewLock, SystemClock, TokenAccess, TokenOutcome,
};
use crate::ResourcePath;

/// The in-memory lock store.
#[derive(Debug, Clone)]
pub struct MemoryLockStore {
    inner: Arc<Mutex<Inner>>,
    clock: Arc<dyn Clock>,
}

#[derive(Debug, Default)]
struct Inner {
    locks: HashMap<String, Lock>,
    fence: u64,
}

impl Default for MemoryLockStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLockStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store on `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::default(),
            clock,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner, std::time::SystemTime) -> R) -> R {
        let now = self.clock.now();
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.locks.retain(|_, l| !l.is_expired_at(now));
        f(&mut g, now)
    }
}

impl LockStore for MemoryLockStore {
    async fn create(&self, lock: NewLock) -> Result<CreateOutcome, LockStoreError> {
        Ok(self.with(|g, now| {
            let conflicts: Vec<Lock> = g
                .locks
                .values()
                .filter(|l| {
                    (l.covers(&lock.root)
                        || (lock.depth == LockDepth::Infinity && lock.root.is_ancestor_of(&l.root)))
                        && !l.scope.compatible_with(lock.scope)
                })
                .cloned()
                .collect();
            if !conflicts.is_empty() {
                return CreateOutcome::Conflict(conflicts);
            }
            if let (Some(q), Some(p)) = (lock.principal_quota, lock.principal.as_deref()) {
                let held = g.locks.values().filter(|l| l.principal.as_deref() == Some(p)).count();
                if held >= q as usize {
                    return CreateOutcome::QuotaExceeded { limit: q };
                }
            }
            g.fence += 1;
            let l = lock.into_lock(now, g.fence);
            g.locks.insert(l.token.clone(), l.clone());
            CreateOutcome::Created(l)
        }))
    }

    async fn refresh(
        &self,
        access: TokenAccess<'_>,
        timeout: LockTimeout,
    ) -> Result<TokenOutcome, LockStoreError> {
        Ok(self.with(|g, now| match g.locks.get_mut(access.token) {
            None => TokenOutcome::NotFound,
            Some(l) => {
                let v = TokenAccess { privileged: false, ..access }.judge(l);
                if v == super::TokenVerdict::Allowed {
                    l.timeout = timeout;
                    l.expires_at = timeout.expiry_from(now);
                }
                TokenOutcome::from_verdict(v, l.clone())
            }
        }))
    }

    async fn unlock(&self, access: TokenAccess<'_>) -> Result<TokenOutcome, LockStoreError> {
        Ok(self.with(|g, _| match g.locks.get(access.token) {
            None => TokenOutcome::NotFound,
            Some(l) => {
                let v = access.judge(l);
                let l = l.clone();
                if v == super::TokenVerdict::Allowed {
                    g.locks.remove(access.token);
                }
                TokenOutcome::from_verdict(v, l)
            }
        }))
    }

    async fn remove_subtree(&self, path: &ResourcePath) -> Result<usize, LockStoreError> {
        Ok(self.with(|g, _| {
            let before = g.locks.len();
            g.locks.retain(|_, l| !path.contains(&l.root));
            before - g.locks.len()
        }))
    }

    async fn query(&self, query: &LockQuery) -> Result<Vec<Lock>, LockStoreError> {
        Ok(self.with(|g, _| g.locks.values().filter(|l| query.matches(l)).cloned().collect()))
    }

    async fn get(&self, token: &str) -> Result<Option<Lock>, LockStoreError> {
        Ok(self.with(|g, _| g.locks.get(token).cloned()))
    }
}
