//! The conformance kit against broken stores: each mutant wraps `MemoryLockStore` and breaks
//! one rule, and `conformance::run_all` must fail it, in the case that checks that rule. A store
//! that reports more than `Below` asks for (which is correct) must pass.
#![cfg(feature = "conformance")]

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use tower_locks::{
    conformance, Below, Clock, CreateOutcome, Lock, LockDepth, LockQuery, LockStore,
    LockStoreError, LockTimeout, ManualClock, MemoryLockStore, NewLock, ResourcePath, TokenAccess,
    TokenOutcome,
};

/// The one rule a mutant breaks.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bug {
    /// None: the wrapper itself is sound.
    Nothing,
    /// Correct: `query` reports every matching lock whatever `below` asks for.
    ReportsEverything,
    /// `query_now` leaves out depth-infinity locks on ancestors of the targets.
    QueryNowDropsAncestors,
    /// `remove_subtree(p)` unlocks everything `query(subtree(p))` answers, covering
    /// ancestors included.
    RemoveSubtreeTakesAncestors,
    /// `create` asks the store whether the lock would be granted, then writes it without
    /// quotas: two steps.
    QuotaCheckThenWrite,
    /// Paths compare case-insensitively (a database collation).
    CaseFolding,
    /// A lock rooted at `/` is not reported unless a target is `/` itself.
    RootLockIgnored,
    /// A listing page reports only locks rooted strictly below its targets.
    PageOmitsCovering,
    /// A listing of one principal's locks counts everybody's resources.
    PageIgnoresHolder,
    /// Refresh and unlock decide the scope of a depth-infinity lock by string prefix.
    PrefixScope,
    /// Locks count as expired 5% of their timeout early (their `expires_at` is right).
    ExpiresEarly,
}

struct Mutant {
    inner: MemoryLockStore,
    clock: Arc<ManualClock>,
    bug: Bug,
}

impl Mutant {
    fn new(clock: Arc<ManualClock>, bug: Bug) -> Self {
        Self {
            inner: MemoryLockStore::with_clock(clock.clone()),
            clock,
            bug,
        }
    }

    fn fold(&self, p: &ResourcePath) -> ResourcePath {
        match self.bug {
            Bug::CaseFolding => ResourcePath::parse(&p.href().to_lowercase()).unwrap(),
            _ => p.clone(),
        }
    }

    /// Whether the lock still counts as live for this store.
    fn live(&self, l: &Lock) -> bool {
        match (self.bug, l.timeout, l.expires_at) {
            (Bug::ExpiresEarly, LockTimeout::Seconds(s), Some(at)) => {
                self.clock.now() < at - Duration::from_secs(u64::from(s)) / 20
            }
            _ => true,
        }
    }

    /// The scope path an access is judged by.
    async fn scope_path(&self, access: &TokenAccess<'_>) -> Result<ResourcePath, LockStoreError> {
        if self.bug == Bug::PrefixScope {
            if let Some(l) = self.inner.get(access.token).await? {
                if l.depth == LockDepth::Infinity
                    && access.path.as_str().starts_with(l.root.as_str())
                {
                    return Ok(l.root);
                }
            }
        }
        Ok(self.fold(access.path))
    }
}

impl LockStore for Mutant {
    async fn create(&self, mut lock: NewLock) -> Result<CreateOutcome, LockStoreError> {
        lock.root = self.fold(&lock.root);
        if self.bug != Bug::QuotaCheckThenWrite {
            return self.inner.create(lock).await;
        }
        match self.inner.create(lock.clone()).await? {
            CreateOutcome::Created(probe) => {
                let access = TokenAccess {
                    privileged: true,
                    ..TokenAccess::new(&probe.token, &probe.root, None)
                };
                self.inner.unlock(access).await?;
            }
            refused => return Ok(refused),
        }
        // The round trip between counting and writing, long enough that the kit's racing
        // creates all count before any of them writes, however loaded the machine.
        let quotas = [lock.principal_quota, lock.resource_quota, lock.store_quota];
        if quotas.iter().any(Option::is_some) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        lock.principal_quota = None;
        lock.resource_quota = None;
        lock.store_quota = None;
        self.inner.create(lock).await
    }

    async fn refresh(
        &self,
        access: TokenAccess<'_>,
        timeout: LockTimeout,
    ) -> Result<TokenOutcome, LockStoreError> {
        let path = self.scope_path(&access).await?;
        let access = TokenAccess {
            path: &path,
            ..access
        };
        self.inner.refresh(access, timeout).await
    }

    async fn unlock(&self, access: TokenAccess<'_>) -> Result<TokenOutcome, LockStoreError> {
        let path = self.scope_path(&access).await?;
        let access = TokenAccess {
            path: &path,
            ..access
        };
        self.inner.unlock(access).await
    }

    async fn remove_subtree(&self, path: &ResourcePath) -> Result<usize, LockStoreError> {
        let path = self.fold(path);
        if self.bug != Bug::RemoveSubtreeTakesAncestors {
            return self.inner.remove_subtree(&path).await;
        }
        let mut n = 0;
        for l in self.inner.query(&LockQuery::new().subtree(path)).await? {
            let access = TokenAccess {
                privileged: true,
                ..TokenAccess::new(&l.token, &l.root, None)
            };
            n += usize::from(matches!(
                self.inner.unlock(access).await?,
                TokenOutcome::Done(_)
            ));
        }
        Ok(n)
    }

    async fn query(&self, query: &LockQuery) -> Result<Vec<Lock>, LockStoreError> {
        let mut q = query.clone();
        for t in &mut q.targets {
            t.path = self.fold(&t.path);
        }
        if self.bug == Bug::ReportsEverything {
            q.below = Below::All;
        }
        if let (Bug::PageIgnoresHolder, Below::Page { holder, .. }) = (&self.bug, &mut q.below) {
            *holder = None;
        }
        let mut found = self.inner.query(&q).await?;
        found.retain(|l| self.live(l));
        match self.bug {
            Bug::RootLockIgnored => found.retain(|l| {
                l.root != ResourcePath::root() || q.targets.iter().any(|t| t.path == l.root)
            }),
            Bug::PageOmitsCovering if matches!(q.below, Below::Page { .. }) => {
                found.retain(|l| q.targets.iter().any(|t| t.path.is_ancestor_of(&l.root)))
            }
            _ => {}
        }
        Ok(found)
    }

    async fn get(&self, token: &str) -> Result<Option<Lock>, LockStoreError> {
        Ok(self.inner.get(token).await?.filter(|l| self.live(l)))
    }

    fn query_now(&self, query: &LockQuery) -> Option<Result<Vec<Lock>, LockStoreError>> {
        if self.bug != Bug::QueryNowDropsAncestors {
            return None;
        }
        let ancestor = |l: &Lock| {
            l.depth == LockDepth::Infinity
                && query.targets.iter().any(|t| l.root.is_ancestor_of(&t.path))
        };
        Some(
            self.inner
                .query_now(query)?
                .map(|found| found.into_iter().filter(|l| !ancestor(l)).collect()),
        )
    }
}

fn message(panic: Box<dyn Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(s) => *s,
        Err(panic) => panic
            .downcast::<&str>()
            .map(|s| (*s).to_owned())
            .unwrap_or_default(),
    }
}

/// `run_all` on fresh mutants with `bug`: `Err` with the panic message when the kit fails it.
async fn kit(bug: Bug) -> Result<(), String> {
    let run = conformance::run_all(move |clock| Mutant::new(clock, bug));
    tokio::spawn(run).await.map_err(|e| message(e.into_panic()))
}

/// `case` run on one fresh mutant with `bug` must panic naming `case`.
async fn case_fails<F, Fut>(bug: Bug, name: &str, case: F)
where
    F: FnOnce(Mutant) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let run = case(Mutant::new(Arc::new(ManualClock::new()), bug));
    let msg = message(
        tokio::spawn(run)
            .await
            .expect_err("the case passed a broken store")
            .into_panic(),
    );
    assert!(msg.contains(&format!("`{name}`")), "{bug:?}: {msg}");
}

/// `run_all` must fail the mutant with `bug` in the case named `case`.
async fn caught(bug: Bug, case: &str) {
    let msg = kit(bug).await.expect_err("the kit passed a broken store");
    assert!(
        msg.contains(&format!("`{case}`")),
        "{bug:?} was caught, but not by `{case}`: {msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sound_wrapper_passes() {
    kit(Bug::Nothing).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_reporting_everything_passes() {
    kit(Bug::ReportsEverything).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn query_now_dropping_ancestor_locks_fails() {
    let msg = kit(Bug::QueryNowDropsAncestors)
        .await
        .expect_err("the kit passed a broken store");
    assert!(msg.contains("query_now"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn remove_subtree_taking_ancestors_fails() {
    caught(Bug::RemoveSubtreeTakesAncestors, "remove_subtree_counts").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quota_checked_then_written_fails() {
    caught(Bug::QuotaCheckThenWrite, "concurrent_quota_create").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case_folding_fails() {
    caught(Bug::CaseFolding, "segment_boundaries").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn root_lock_ignored_fails() {
    caught(Bug::RootLockIgnored, "root_lock_covers_everything").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn page_omitting_covering_locks_fails() {
    caught(Bug::PageOmitsCovering, "query_pages_list_everything").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holders_page_counting_everybodys_resources_fails() {
    caught(Bug::PageIgnoresHolder, "query_pages_of_a_holder").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prefix_scope_fails() {
    caught(Bug::PrefixScope, "refresh_outcomes").await;
    case_fails(Bug::PrefixScope, "unlock_outcomes", |store| async move {
        conformance::unlock_outcomes(&store).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn early_expiry_fails() {
    caught(Bug::ExpiresEarly, "expiry_manual").await;
}
