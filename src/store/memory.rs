//! `MemoryLockStore`: the embedded default store.
//!
//! # Layout
//!
//! All state sits behind one `RwLock`, so every verb is one linearisable step: checks take it
//! shared, changes exclusive. Every hash is std's keyed SipHash (`RandomState`): paths and
//! foreign tokens are chosen by clients, so no table may be open to crafted collisions.
//!
//! - **slots** `Vec<Option<Entry>>` with a list of free slots: each lock is one entry,
//!   addressed everywhere else by its 4-byte slot number. The tables below hold slot numbers,
//!   not keys, so a lock costs its entry plus a few bytes per index; that is what keeps a held
//!   lock under 300 bytes at a million locks, where a table's empty buckets cost as much as
//!   its full ones.
//! - **by token** `HashTable<u32>`: token → lock.
//! - **by root** `HashTable<u32>`: root path → the first lock of the root's *chain*. The locks
//!   rooted at one path are linked through their entries (`next`, and `prev`, whose value at
//!   the head is the tail), depth-infinity locks first. The head also counts the chain. So a
//!   lock joins or leaves its root in O(1) however many locks share the root, a covering
//!   check on a descendant reads only the depth-infinity locks of an ancestor, and the
//!   resource quota is a counter.
//! - **roots** two `BTreeMap<Arc<str>, u32>`, one for the roots holding an exclusive lock and
//!   one for those holding shared locks (a root holds one or the other): the same heads, by
//!   root in byte order, in which the roots below a path are one range (`path/` up to the next
//!   path not starting with it). A subtree is walked without hashing its roots, merging the
//!   two ranges in root order; a shared depth-infinity LOCK reads only the exclusive one.
//! - **depth-infinity counts** `Vec<u32>`: depth-infinity locks per root depth (segments).
//!   A covering check looks up only the ancestors at depths that hold one: without any
//!   depth-infinity lock it is one lookup.
//! - **expiry heap** `BinaryHeap<Reverse<(SystemTime, u32)>>`, popped at the start of every
//!   change. An entry is acted on only if its slot still holds a lock expiring at exactly that
//!   instant, so the ones a refresh or an unlock leaves behind are harmless; the heap is
//!   rebuilt when they outnumber the live locks.
//! - **counters** for the quotas: live locks, per principal, and anonymous ones.
//! - **held** `BTreeSet<(Arc<str>, Arc<str>, u32)>`: (principal, root, slot) of every lock
//!   with a principal, so that one principal's locks below a path are one range, in root
//!   order: a listing of one principal's locks ([`Below::Page`] with a holder) reads its own
//!   locks only, never the others' between or beside them. One set for all principals, so a
//!   principal holding one lock costs one entry, not a tree of its own.
//!
//! Costs, with `d` the depth of a path and `n` the locks held: a covering `query` is at most
//! `d + 1` hash lookups; `subtree` adds a range search (`O(log n)`) and the locks below (as
//! far as [`Below`](crate::Below) asks: a removal's query stops after 16 blocked roots, a
//! page after its roots, both starting from one range search; a page of one principal's
//! locks reads that principal's roots only, one hash lookup each); `get`,
//! `refresh`, `unlock` and expiring a lock are O(1) hash work, plus `O(log n)` when a root's
//! head changes; `create` is a covering check plus the same, and for depth infinity the locks
//! below. None of them reads the locks sharing a root or a principal, except to report them.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use hashbrown::HashTable;

use super::lock::{by_root_then_token, may_use};
use super::token::{StoredToken, TokenKey};
use super::{
    Below, CheckOutcome, Clock, CreateOutcome, Lock, LockDepth, LockQuery, LockScope, LockStore,
    LockStoreError, LockTimeout, NewLock, Quota, Submission, SystemClock, TokenAccess,
    TokenOutcome, TokenVerdict,
};
use crate::path::key_is_ancestor;
use crate::ResourcePath;

/// At most this many unsatisfied locks are reported by [`LockStore::check`], and about this
/// many conflicts by a refused `create`: enough to name what blocks a write or a LOCK, and a
/// collection with thousands of locked members is not walked to the end to say so.
const MAX_REPORTED: usize = Below::BLOCKED;

/// At most this many due heap entries are handled by a read (reads never rely on purging).
const PURGE_ON_READ: usize = 64;

/// The in-memory lock store: the default, for a single application instance.
///
/// Cloning is cheap and clones share the same locks. Every verb works synchronously under one
/// internal lock (never held across an `.await`); checks take it shared, changes exclusive.
/// A covering check costs at most one hash lookup per path segment, however many locks are
/// held; a subtree query one range search plus the locks in the subtree. Expired locks are
/// never reported, never block, and are dropped from memory by the next change (a read drops
/// up to 64 of them, when it can do so without waiting). Memory is given back when the store
/// empties or falls to a quarter of its table.
///
/// [`check`](LockStore::check) stops at the 16th unsatisfied lock it meets for each target
/// (walking the paths from the root down, a subtree in root order) and reports the first 16 of
/// all, by root then token; when it stopped early the fencing number is `None`, so a check of
/// a collection holding thousands of locks stays short.
///
/// ```
/// use tower_locks::{CreateOutcome, LockQuery, LockStore, MemoryLockStore, NewLock, ResourcePath};
///
/// # tokio_test::block_on(async {
/// let store = MemoryLockStore::new();
/// let doc = ResourcePath::parse("/docs/a.txt").unwrap();
/// let outcome = store.create(NewLock::new(doc.clone())).await.unwrap();
/// assert!(matches!(outcome, CreateOutcome::Created(_)));
/// // A second exclusive lock on the same resource conflicts.
/// let again = store.create(NewLock::new(doc.clone())).await.unwrap();
/// assert!(matches!(again, CreateOutcome::Conflict(ref locks) if locks.len() == 1));
/// assert_eq!(store.query(&LockQuery::new().covering(doc)).await.unwrap().len(), 1);
/// assert_eq!(store.len(), 1);
/// # });
/// ```
#[derive(Clone)]
pub struct MemoryLockStore {
    inner: Arc<RwLock<Inner>>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryLockStore {
    /// Same as [`MemoryLockStore::new`].
    ///
    /// ```
    /// let store = tower_locks::MemoryLockStore::default();
    /// assert!(store.is_empty());
    /// ```
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryLockStore {
    /// Prints the number of stored locks and the clock, not the locks themselves.
    ///
    /// ```
    /// let store = tower_locks::MemoryLockStore::new();
    /// assert!(format!("{store:?}").starts_with("MemoryLockStore"));
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("MemoryLockStore");
        match self.inner.try_read() {
            Ok(g) => d.field("stored", &g.live),
            Err(_) => d.field("stored", &format_args!("<busy>")),
        };
        d.field("clock", &self.clock).finish()
    }
}

impl MemoryLockStore {
    /// An empty store on the system clock.
    ///
    /// ```
    /// let store = tower_locks::MemoryLockStore::new();
    /// assert_eq!(store.len(), 0);
    /// ```
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store on `clock` (a [`ManualClock`](crate::ManualClock) makes expiry testable).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use tower_locks::{
    ///     LockStore, LockTimeout, ManualClock, MemoryLockStore, NewLock, ResourcePath,
    /// };
    ///
    /// # tokio_test::block_on(async {
    /// let clock = Arc::new(ManualClock::new());
    /// let store = MemoryLockStore::with_clock(clock.clone());
    /// let root = ResourcePath::parse("/a").unwrap();
    /// store
    ///     .create(NewLock::new(root).timeout(LockTimeout::Seconds(10)))
    ///     .await
    ///     .unwrap();
    /// assert_eq!(store.len(), 1);
    /// clock.advance(Duration::from_secs(10));
    /// assert_eq!(store.len(), 0); // expired and purged
    /// # });
    /// ```
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Inner::default())),
            clock,
        }
    }

    /// The number of live locks. Purges expired locks first.
    ///
    /// ```
    /// use tower_locks::{LockStore, MemoryLockStore, NewLock, ResourcePath};
    ///
    /// # tokio_test::block_on(async {
    /// let store = MemoryLockStore::new();
    /// store.create(NewLock::new(ResourcePath::parse("/x").unwrap())).await.unwrap();
    /// assert_eq!(store.len(), 1);
    /// # });
    /// ```
    pub fn len(&self) -> usize {
        self.write_step(|g, _| g.live)
    }

    /// Whether no live lock is held.
    ///
    /// ```
    /// assert!(tower_locks::MemoryLockStore::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A rough estimate of the heap memory the store uses, in bytes: the capacities of its
    /// tables times their element sizes, plus the strings it owns. Allocator overhead is not
    /// counted. Cheap: it does not walk the locks.
    ///
    /// ```
    /// use tower_locks::{LockStore, MemoryLockStore, NewLock, ResourcePath};
    ///
    /// # tokio_test::block_on(async {
    /// let store = MemoryLockStore::new();
    /// let empty = store.approx_memory_bytes();
    /// store.create(NewLock::new(ResourcePath::parse("/x").unwrap())).await.unwrap();
    /// assert!(store.approx_memory_bytes() > empty);
    /// # });
    /// ```
    pub fn approx_memory_bytes(&self) -> usize {
        self.read().approx_memory_bytes()
    }

    /// The live locks `query` matches (below its targets, as much as [`Below`] asks), sorted
    /// by root, then token, each once: what `query` answers.
    #[inline]
    fn found(&self, query: &LockQuery) -> Vec<Lock> {
        self.read_step(|g, now| {
            let mut locks: Vec<Lock> = Vec::new();
            // Locks come in root order (see `visit`) unless several targets are asked about
            // or one root holds several locks, which come in chain order.
            let (mut several, mut unordered) = (false, false);
            let mut push = |_, e: &Entry| {
                let lock = e.to_lock();
                // Every lock on a root shares its buffer.
                unordered |= locks.last().is_some_and(|l| l.root.same_buffer(&lock.root));
                locks.push(lock);
                true
            };
            for (i, t) in query.targets.iter().enumerate() {
                several = i > 0;
                let key = t.path.as_str();
                let all_below = t.descendants && matches!(query.below, Below::All);
                g.visit(key, all_below, now, &mut push);
                if t.descendants && !all_below {
                    g.visit_below_as_asked(key, query, now, &mut push);
                }
            }
            let token_entries = query
                .tokens
                .iter()
                .filter_map(|token| g.live_token(token, now));
            for e in token_entries {
                locks.push(e.to_lock());
                several = true;
            }
            if several || unordered {
                locks.sort_unstable_by(by_root_then_token);
                locks.dedup_by(|a, b| a.token == b.token);
            }
            locks
        })
    }

    /// `check`, synchronously: locks are judged where they are stored, only the unsatisfied
    /// ones are built, and the walk stops at the [`MAX_REPORTED`]th of those.
    ///
    /// A shared lock is excused when a shared lock of the same resource is satisfied
    /// ([`CheckOutcome::judge`]); the satisfied shared locks are found through the submitted
    /// tokens, so the work stays bounded by the submission, not by the locks sharing a path.
    fn check_sync(&self, query: &LockQuery, submission: Submission<'_>) -> CheckOutcome {
        self.read_step(|g, now| {
            // The shared locks the submission satisfies, looked up only when an unsatisfied
            // shared lock may be excused by one of them.
            let satisfied_shared = std::cell::OnceCell::new();
            let shared_ok = || {
                satisfied_shared.get_or_init(|| {
                    let found = submission.tokens.iter().filter_map(|t| {
                        g.find_token(TokenKey::parse(t)).and_then(|id| g.entry(id))
                    });
                    found
                        .filter(|e| {
                            e.scope == LockScope::Shared
                                && e.is_live(now)
                                && e.satisfied_by(&submission)
                        })
                        .collect::<Vec<&Entry>>()
                })
            };
            let covers = |e: &Entry, key: &str| {
                &*e.root == key || (e.depth == LockDepth::Infinity && key_is_ancestor(&e.root, key))
            };
            let excused = |e: &Entry, key: &str| {
                e.scope == LockScope::Shared
                    && if covers(e, key) {
                        shared_ok().iter().any(|s| covers(s, key))
                    } else {
                        shared_ok().iter().any(|s| s.root == e.root)
                    }
            };
            let mut fence = None;
            // At most MAX_REPORTED per target: together they hold the first MAX_REPORTED
            // in path order, whatever the order of the targets.
            let (mut blocking, mut stopped) = (Vec::new(), false);
            for target in &query.targets {
                let key = target.path.as_str();
                let mut here = 0;
                let more = g.visit(key, target.descendants, now, &mut |id, e| {
                    if e.satisfied_by(&submission) {
                        fence = fence.max(Some(e.fence));
                    } else if !excused(e, key) {
                        here += 1;
                        if !blocking.contains(&id) {
                            blocking.push(id);
                        }
                    }
                    here < MAX_REPORTED
                });
                stopped |= !more;
            }
            if blocking.is_empty() {
                return CheckOutcome {
                    unsatisfied: Vec::new(),
                    fence,
                };
            }
            let mut unsatisfied: Vec<Lock> = blocking
                .iter()
                .filter_map(|&id| g.entry(id).map(Entry::to_lock))
                .collect();
            unsatisfied.sort_unstable_by(by_root_then_token);
            if stopped {
                unsatisfied.truncate(MAX_REPORTED);
            }
            CheckOutcome {
                unsatisfied,
                fence: if stopped { None } else { fence },
            }
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Run a read-only step; afterwards purge expired locks if that is possible without
    /// waiting for other readers.
    fn read_step<R>(&self, f: impl FnOnce(&Inner, SystemTime) -> R) -> R {
        let now = self.clock.now();
        let (out, due) = {
            let g = self.read();
            (f(&g, now), g.has_due(now))
        };
        if due {
            if let Ok(mut g) = self.inner.try_write() {
                g.purge_at_most(now, PURGE_ON_READ);
            }
        }
        out
    }

    /// Run a mutating step after purging expired locks, so that every stored lock is live
    /// while it runs.
    fn write_step<R>(&self, f: impl FnOnce(&mut Inner, SystemTime) -> R) -> R {
        let now = self.clock.now();
        let mut g = self.write();
        g.purge(now);
        let out = f(&mut g, now);
        g.tidy();
        out
    }
}

impl LockStore for MemoryLockStore {
    async fn create(&self, lock: NewLock) -> Result<CreateOutcome, LockStoreError> {
        self.write_step(|g, now| g.create(lock, now))
    }

    async fn refresh(
        &self,
        access: TokenAccess<'_>,
        timeout: LockTimeout,
    ) -> Result<TokenOutcome, LockStoreError> {
        Ok(self.write_step(|g, now| {
            let Some(id) = g.find_token(TokenKey::parse(access.token)) else {
                return TokenOutcome::NotFound;
            };
            let Some(e) = g.entry_mut(id) else {
                return TokenOutcome::NotFound;
            };
            let mut lock = e.to_lock();
            // A refresh is never privileged: only the lock's own principal may extend it.
            let access = TokenAccess {
                privileged: false,
                ..access
            };
            let verdict = access.judge(&lock);
            if verdict == TokenVerdict::Allowed {
                e.timeout = timeout;
                e.expires_at = timeout.expiry_from(now);
                (lock.timeout, lock.expires_at) = (e.timeout, e.expires_at);
                if let Some(at) = e.expires_at {
                    g.due.push(Reverse((at, id)));
                }
            }
            TokenOutcome::from_verdict(verdict, lock)
        }))
    }

    async fn unlock(&self, access: TokenAccess<'_>) -> Result<TokenOutcome, LockStoreError> {
        Ok(self.write_step(|g, _| {
            let Some(id) = g.find_token(TokenKey::parse(access.token)) else {
                return TokenOutcome::NotFound;
            };
            let Some(lock) = g.entry(id).map(Entry::to_lock) else {
                return TokenOutcome::NotFound;
            };
            let verdict = access.judge(&lock);
            if verdict == TokenVerdict::Allowed {
                g.remove(id);
            }
            TokenOutcome::from_verdict(verdict, lock)
        }))
    }

    async fn remove_subtree(&self, path: &ResourcePath) -> Result<usize, LockStoreError> {
        Ok(self.write_step(|g, _| {
            let mut ids = Vec::new();
            let key = path.as_str();
            let mut take = |head| {
                ids.extend(g.chain(head).map(|(id, _)| id));
                true
            };
            if let Some(head) = g.head(key) {
                take(head);
            }
            g.heads_below(key, None, false, take);
            for &id in &ids {
                g.remove(id);
            }
            ids.len()
        }))
    }

    async fn query(&self, query: &LockQuery) -> Result<Vec<Lock>, LockStoreError> {
        Ok(self.found(query))
    }

    fn query_now(&self, query: &LockQuery) -> Option<Result<Vec<Lock>, LockStoreError>> {
        Some(Ok(self.found(query)))
    }

    fn now(&self) -> SystemTime {
        self.clock.now()
    }

    async fn check(
        &self,
        query: &LockQuery,
        submission: Submission<'_>,
    ) -> Result<CheckOutcome, LockStoreError> {
        Ok(self.check_sync(query, submission))
    }

    async fn get(&self, token: &str) -> Result<Option<Lock>, LockStoreError> {
        Ok(self.read_step(|g, now| {
            let id = g.find_token(TokenKey::parse(token))?;
            g.entry(id).filter(|e| e.is_live(now)).map(Entry::to_lock)
        }))
    }
}

/// No lock: the end of a chain.
const NIL: u32 = u32::MAX;

/// One stored lock.
#[derive(Debug)]
struct Entry {
    token: StoredToken,
    /// The canonical root key, shared with the other locks on this root and with `roots`.
    root: Arc<str>,
    owner: Option<Arc<str>>,
    /// Shared with the principal's counter.
    principal: Option<Arc<str>>,
    expires_at: Option<SystemTime>,
    fence: u64,
    timeout: LockTimeout,
    /// The previous lock on the root; the head's is the last one.
    prev: u32,
    /// The next lock on the root, or `NIL`.
    next: u32,
    /// The locks on the root, counted by the head only (0 elsewhere).
    count: u32,
    scope: LockScope,
    depth: LockDepth,
    trailing_slash: bool,
}

impl Entry {
    fn is_live(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }

    fn satisfied_by(&self, submission: &Submission<'_>) -> bool {
        !submission.tokens.is_empty()
            && may_use(self.principal.as_deref(), submission.principal)
            && self.token.submitted_in(submission.tokens)
    }

    /// The lock as reported: reference-count increments and a rendered token, no allocation.
    fn to_lock(&self) -> Lock {
        Lock {
            token: self.token.to_token(),
            root: ResourcePath::from_shared(self.root.clone(), self.trailing_slash),
            scope: self.scope,
            depth: self.depth,
            owner: self.owner.clone(),
            principal: self.principal.clone(),
            timeout: self.timeout,
            expires_at: self.expires_at,
            fence: self.fence,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    /// Live locks: the store quota's counter.
    live: usize,
    hasher: RandomState,
    by_token: HashTable<u32>,
    /// Root → head of its chain.
    by_root: HashTable<u32>,
    /// Root → head of its chain, in byte order, for the roots holding shared locks and for
    /// those holding an exclusive one (a root holds one exclusive lock or any number of
    /// shared ones): a shared depth-infinity LOCK finds the exclusive locks below a
    /// collection without walking the shared ones.
    shared_roots: BTreeMap<Arc<str>, u32>,
    exclusive_roots: BTreeMap<Arc<str>, u32>,
    /// Depth-infinity locks per root depth, without trailing zeros.
    infinity_at_depth: Vec<u32>,
    due: BinaryHeap<Reverse<(SystemTime, u32)>>,
    principals: HashMap<Arc<str>, u32>,
    held: BTreeSet<(Arc<str>, Arc<str>, u32)>,
    anonymous: u32,
    fence: u64,
    /// Bytes of the strings the store owns (roots once, owners, custom tokens, principals).
    string_bytes: usize,
    /// Entries looked at (tests assert that costs stay local).
    #[cfg(test)]
    visits: std::sync::atomic::AtomicUsize,
}

/// Rough heap cost of a shared string besides its bytes: the `Arc`'s two counts.
const ARC_HEADER: usize = 2 * std::mem::size_of::<usize>();

fn slot(slots: &[Option<Entry>], id: u32) -> Option<&Entry> {
    slots.get(id as usize).and_then(Option::as_ref)
}

/// Path depth in segments: 0 for `/`.
fn depth_of(key: &str) -> usize {
    if key == "/" {
        0
    } else {
        key.bytes().filter(|&b| b == b'/').count()
    }
}

/// The strict ancestors of the canonical key `key`, from `/` down (the `i`-th has depth `i`).
fn ancestors(key: &str) -> impl Iterator<Item = &str> {
    let root = (key != "/").then_some("/");
    // A byte loop: for keys of a few dozen bytes, a `str` searcher costs more to set up.
    let slashes = key.bytes().enumerate().skip(1).filter(|&(_, b)| b == b'/');
    root.into_iter().chain(slashes.map(|(i, _)| &key[..i]))
}

/// What every key strictly below `key` starts with: `key` and a `/` (`/` for the root).
fn members_prefix(key: &str) -> String {
    let mut prefix = String::with_capacity(key.len() + 1);
    if key != "/" {
        prefix.push_str(key);
    }
    prefix.push('/');
    prefix
}

/// The roots of `roots` strictly below `key` (`prefix` is `key` with a `/` after it) and
/// after `after`, in order, with the heads of their chains.
fn roots_below<'a>(
    roots: &'a BTreeMap<Arc<str>, u32>,
    key: &'a str,
    prefix: &'a str,
    after: Option<&'a str>,
) -> impl Iterator<Item = (&'a str, u32)> + 'a {
    let start = match after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    };
    roots
        .range::<str, _>((start, Bound::Unbounded))
        .take_while(move |(r, _)| r.starts_with(prefix))
        .filter(move |(r, _)| &***r != key)
        .map(|(r, &head)| (&**r, head))
}

impl Inner {
    fn hash(&self, key: impl Hash) -> u64 {
        self.hasher.hash_one(key)
    }

    fn entry(&self, id: u32) -> Option<&Entry> {
        let e = slot(&self.slots, id);
        #[cfg(test)]
        if e.is_some() {
            self.visits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        e
    }

    fn entry_mut(&mut self, id: u32) -> Option<&mut Entry> {
        let e = self.slots.get_mut(id as usize).and_then(Option::as_mut);
        #[cfg(test)]
        if e.is_some() {
            self.visits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        e
    }

    fn find_token(&self, key: TokenKey<'_>) -> Option<u32> {
        let slots = &self.slots;
        let same = |&id: &u32| slot(slots, id).is_some_and(|e| e.token.key() == key);
        self.by_token.find(self.hash(key), same).copied()
    }

    /// The head of the chain on `root`.
    fn head(&self, root: &str) -> Option<u32> {
        let slots = &self.slots;
        let same = |&id: &u32| slot(slots, id).is_some_and(|e| &*e.root == root);
        self.by_root.find(self.hash(root), same).copied()
    }

    /// The locks on the chain starting at `head`: depth-infinity locks first.
    fn chain(&self, head: u32) -> impl Iterator<Item = (u32, &Entry)> {
        let mut id = head;
        std::iter::from_fn(move || {
            let e = self.entry(id)?;
            let this = id;
            id = e.next;
            Some((this, e))
        })
    }

    /// Give `visit` the live locks covering `key` (depth-infinity locks on its ancestors, from
    /// `/` down, then every lock on `key`) and, with `descendants`, every live lock rooted
    /// below it, in root order; the locks of one root in chain order. Stops, returning
    /// `false`, as soon as `visit` does.
    #[inline]
    fn visit(
        &self,
        key: &str,
        descendants: bool,
        now: SystemTime,
        visit: &mut impl FnMut(u32, &Entry) -> bool,
    ) -> bool {
        let mut chain = |head, deep_only| {
            let mut id = head;
            while let Some(e) = self.entry(id) {
                if deep_only && e.depth != LockDepth::Infinity {
                    break;
                }
                if e.is_live(now) && !visit(id, e) {
                    return false;
                }
                id = e.next;
            }
            true
        };
        self.covering_heads(key, &mut chain)
            && (!descendants || self.heads_below(key, None, false, |head| chain(head, false)))
    }

    /// The live lock with this token, if any.
    fn live_token(&self, token: &str, now: SystemTime) -> Option<&Entry> {
        self.find_token(TokenKey::parse(token))
            .and_then(|id| self.entry(id))
            .filter(|e| e.is_live(now))
    }

    /// Give `visit` the live locks rooted strictly below `key` that `query.below` asks for
    /// when it is not [`Below::All`] (which `visit` answers): a removal's
    /// ([`Below::UntilBlocked`]: every lock of a root with an asked token's lock or one of the
    /// holder's, and those of the first [`Below::BLOCKED`] other roots) or a page's
    /// ([`Below::Page`]; with a holder, only that principal's locks, read off its own roots).
    fn visit_below_as_asked(
        &self,
        key: &str,
        query: &LockQuery,
        now: SystemTime,
        visit: &mut impl FnMut(u32, &Entry) -> bool,
    ) {
        match &query.below {
            // `visit` with descendants answers that.
            Below::All => {}
            Below::UntilBlocked { holder } => {
                let open_roots: Vec<&str> = (query.tokens.iter())
                    .filter_map(|token| self.live_token(token, now))
                    .map(|e| &*e.root)
                    .collect();
                let open = |e: &Entry| {
                    open_roots.contains(&&*e.root)
                        || (holder.is_some() && e.principal.as_deref() == holder.as_deref())
                };
                let mut blocked = 0;
                self.visit_below_while(key, None, now, open, visit, |open| {
                    blocked += usize::from(!open);
                    blocked < Below::BLOCKED
                });
            }
            Below::Page {
                after,
                resources,
                holder: Some(holder),
            } => {
                let Some((holder, _)) = self.principals.get_key_value(holder.as_str()) else {
                    return;
                };
                let prefix = members_prefix(key);
                let start = match after.as_ref().map(ResourcePath::as_str) {
                    Some(after) if after >= prefix.as_str() => {
                        Bound::Excluded((holder.clone(), Arc::from(after), u32::MAX))
                    }
                    _ => Bound::Included((holder.clone(), Arc::from(prefix.as_str()), 0)),
                };
                let below = (self.held.range((start, Bound::Unbounded)))
                    .take_while(|(p, root, _)| p == holder && root.starts_with(prefix.as_str()))
                    .filter(|(_, root, _)| &**root != key);
                // Counted by root: a page holds every live lock of the holder's on each.
                let (mut n, mut last) = (0, None);
                for (_, root, id) in below {
                    let Some(e) = self.entry(*id).filter(|e| e.is_live(now)) else {
                        continue;
                    };
                    if last != Some(root) {
                        if n == *resources {
                            return;
                        }
                        (n, last) = (n + 1, Some(root));
                    }
                    visit(*id, e);
                }
            }
            Below::Page {
                after,
                resources,
                holder: None,
            } => {
                let after = after.as_ref().map(ResourcePath::as_str);
                let mut n = 0;
                self.visit_below_while(
                    key,
                    after,
                    now,
                    |_| false,
                    visit,
                    |_| {
                        n += 1;
                        n < *resources
                    },
                );
            }
        }
    }

    /// Give `visit` the live locks rooted strictly below `key` (after `after`, when given),
    /// in root order, one root at a time; after each root with live locks, ask `more` (told
    /// whether one of them is `open`) whether to go on.
    fn visit_below_while(
        &self,
        key: &str,
        after: Option<&str>,
        now: SystemTime,
        open: impl Fn(&Entry) -> bool,
        visit: &mut impl FnMut(u32, &Entry) -> bool,
        mut more: impl FnMut(bool) -> bool,
    ) {
        self.heads_below(key, after, false, |head| {
            let (mut live, mut opened) = (false, false);
            for (id, e) in self.chain(head).filter(|(_, e)| e.is_live(now)) {
                live = true;
                opened |= open(e);
                visit(id, e);
            }
            !live || more(opened)
        });
    }

    /// Call `f` with the head of every chain that may hold a lock covering `key`, from `/`
    /// down, while it returns `true`: those of its ancestors at depths holding depth-infinity
    /// locks (with `true`: only the chain's depth-infinity locks cover `key`), then `key`'s
    /// own (with `false`). Returns whether it always did.
    fn covering_heads(&self, key: &str, mut f: impl FnMut(u32, bool) -> bool) -> bool {
        let depths = &self.infinity_at_depth;
        for (depth, ancestor) in ancestors(key).enumerate().take(depths.len()) {
            if depths[depth] > 0 {
                if let Some(head) = self.head(ancestor) {
                    if !f(head, true) {
                        return false;
                    }
                }
            }
        }
        self.head(key).is_none_or(|head| f(head, false))
    }

    /// The root index for exclusive or for shared locks.
    fn roots_mut(&mut self, exclusive: bool) -> &mut BTreeMap<Arc<str>, u32> {
        if exclusive {
            &mut self.exclusive_roots
        } else {
            &mut self.shared_roots
        }
    }

    /// Call `f` with the head of every chain rooted strictly below `key` (after `after`, when
    /// given), in root order (only those of exclusive locks with `exclusive_only`), while it
    /// returns `true`; returns whether it always did.
    fn heads_below(
        &self,
        key: &str,
        after: Option<&str>,
        exclusive_only: bool,
        mut f: impl FnMut(u32) -> bool,
    ) -> bool {
        if self.exclusive_roots.is_empty() && (exclusive_only || self.shared_roots.is_empty()) {
            return true;
        }
        let prefix = members_prefix(key);
        let mut exclusive = roots_below(&self.exclusive_roots, key, &prefix, after).peekable();
        if exclusive_only {
            return exclusive.all(|(_, head)| f(head));
        }
        let mut shared = roots_below(&self.shared_roots, key, &prefix, after).peekable();
        // Most subtrees hold one kind of lock only: no merge then.
        if shared.peek().is_none() {
            return exclusive.all(|(_, head)| f(head));
        }
        if exclusive.peek().is_none() {
            return shared.all(|(_, head)| f(head));
        }
        loop {
            let next = match (exclusive.peek(), shared.peek()) {
                (Some((x, _)), Some((s, _))) if x < s => exclusive.next(),
                (_, Some(_)) => shared.next(),
                (Some(_), None) => exclusive.next(),
                (None, None) => return true,
            };
            if let Some((_, head)) = next {
                if !f(head) {
                    return false;
                }
            }
        }
    }

    fn create(&mut self, new: NewLock, now: SystemTime) -> Result<CreateOutcome, LockStoreError> {
        let token = StoredToken::of(&new.token);
        if self.find_token(token.key()).is_some() {
            let token = &new.token;
            return Err(LockStoreError::backend(format!(
                "lock token {token} is already in use"
            )));
        }
        let key = new.root.as_str();
        let shared = new.scope == LockScope::Shared;
        // Every stored lock is live here (the step purged first). Two locks on one root
        // cover each other's root, so they are both shared: a shared request skips a root
        // holding several locks without reading its chain.
        let mut conflicts = Vec::new();
        let mut judge = |head, deep_only: bool| {
            if !(shared && self.entry(head).is_some_and(|h| h.count > 1)) {
                let covering = self
                    .chain(head)
                    .take_while(|(_, e)| !deep_only || e.depth == LockDepth::Infinity);
                let blocking = covering.filter(|(_, e)| !e.scope.compatible_with(new.scope));
                conflicts.extend(blocking.map(|(id, _)| id));
            }
            conflicts.len() < MAX_REPORTED
        };
        self.covering_heads(key, &mut judge);
        if new.depth == LockDepth::Infinity {
            self.heads_below(key, None, shared, |head| judge(head, false));
        }
        if !conflicts.is_empty() {
            let mut locks: Vec<Lock> = conflicts
                .iter()
                .filter_map(|&id| self.entry(id).map(Entry::to_lock))
                .collect();
            locks.sort_unstable_by(by_root_then_token);
            return Ok(CreateOutcome::Conflict(locks));
        }
        let head = self.head(key);
        let on_root = head.and_then(|h| self.entry(h)).map_or(0, |h| h.count);
        let mine = match &new.principal {
            Some(p) => (
                Quota::Principal,
                self.principals.get(&**p).copied().unwrap_or(0),
            ),
            None => (Quota::Anonymous, self.anonymous),
        };
        let store = u32::try_from(self.live).unwrap_or(u32::MAX);
        for (limit, (quota, held)) in [
            (new.principal_quota, mine),
            (new.resource_quota, (Quota::Resource, on_root)),
            (new.store_quota, (Quota::Store, store)),
        ] {
            if let Some(limit) = limit.filter(|&limit| held >= limit) {
                return Ok(CreateOutcome::QuotaExceeded { quota, limit });
            }
        }
        if self.free.is_empty() && self.slots.len() >= NIL as usize {
            return Err(LockStoreError::backend("memory lock store is full"));
        }
        self.fence = self
            .fence
            .checked_add(1)
            .ok_or_else(|| LockStoreError::backend("fencing numbers exhausted"))?;
        let lock = new.into_lock(now, self.fence);
        let root = match (head.and_then(|h| self.entry(h)), lock.root.shared_key()) {
            (Some(h), _) => h.root.clone(),
            (None, Some(key)) => key.clone(),
            (None, None) => Arc::from(lock.root.as_str()),
        };
        self.insert(Entry {
            token,
            root,
            owner: lock.owner.clone(),
            principal: lock.principal.clone(),
            expires_at: lock.expires_at,
            fence: lock.fence,
            timeout: lock.timeout,
            prev: NIL,
            next: NIL,
            count: 0,
            scope: lock.scope,
            depth: lock.depth,
            trailing_slash: lock.root.has_trailing_slash(),
        });
        Ok(CreateOutcome::Created(lock))
    }

    /// Put `e` into a slot and every index.
    fn insert(&mut self, mut e: Entry) -> u32 {
        let id = match self.free.last() {
            Some(&id) => id,
            None => self.slots.len() as u32,
        };
        let head = self.head(&e.root);
        match head.and_then(|h| self.entry(h)) {
            None => (e.prev, e.next, e.count) = (id, NIL, 1),
            // Depth infinity goes first: covering checks of descendants read only those.
            Some(h) if e.depth == LockDepth::Infinity => {
                (e.prev, e.next, e.count) = (h.prev, head.unwrap_or(NIL), h.count + 1);
            }
            Some(h) => (e.prev, e.next) = (h.prev, NIL),
        }
        if let Some(p) = e.principal.take() {
            let key = match self.principals.get_key_value(&*p) {
                Some((k, _)) => k.clone(),
                None => {
                    self.string_bytes += p.len() + ARC_HEADER;
                    p
                }
            };
            *self.principals.entry(key.clone()).or_insert(0) += 1;
            self.held.insert((key.clone(), e.root.clone(), id));
            e.principal = Some(key);
        } else {
            self.anonymous += 1;
        }
        self.string_bytes += e.owner.as_ref().map_or(0, |o| o.len() + ARC_HEADER);
        if let StoredToken::Other(t) = &e.token {
            self.string_bytes += t.len() + ARC_HEADER;
        }
        if e.depth == LockDepth::Infinity {
            let d = depth_of(&e.root);
            if self.infinity_at_depth.len() <= d {
                self.infinity_at_depth.resize(d + 1, 0);
            }
            self.infinity_at_depth[d] += 1;
        }
        if let Some(at) = e.expires_at {
            self.due.push(Reverse((at, id)));
        }
        let (token_hash, root_hash) = (self.hash(e.token.key()), self.hash(&*e.root));
        let (infinity, prev, root) = (e.depth == LockDepth::Infinity, e.prev, e.root.clone());
        let exclusive = e.scope == LockScope::Exclusive;
        if self.free.pop().is_some() {
            self.slots[id as usize] = Some(e);
        } else {
            self.slots.push(Some(e));
        }
        self.live += 1;
        let (slots, hasher) = (&self.slots, &self.hasher);
        let rehash_token = |&i: &u32| slot(slots, i).map_or(0, |e| hasher.hash_one(e.token.key()));
        self.by_token.insert_unique(token_hash, id, rehash_token);
        match head {
            None => {
                let rehash_root =
                    |&i: &u32| slot(slots, i).map_or(0, |e| hasher.hash_one(&*e.root));
                self.by_root.insert_unique(root_hash, id, rehash_root);
                self.string_bytes += root.len() + ARC_HEADER;
                self.roots_mut(exclusive).insert(root, id);
            }
            Some(h) if infinity => {
                if let Some(old) = self.entry_mut(h) {
                    (old.prev, old.count) = (id, 0);
                }
                self.set_head(&root, root_hash, h, id);
            }
            Some(h) => {
                if let Some(tail) = self.entry_mut(prev) {
                    tail.next = id;
                }
                if let Some(head) = self.entry_mut(h) {
                    head.prev = id;
                    head.count += 1;
                }
            }
        }
        id
    }

    /// Make `new` the head of `root`'s chain in both root indexes, instead of `old`. Only a
    /// chain of two locks or more changes its head without going away, and such a chain holds
    /// shared locks only: its root is in `shared_roots`.
    fn set_head(&mut self, root: &str, root_hash: u64, old: u32, new: u32) {
        if let Some(v) = self.by_root.find_mut(root_hash, |&i| i == old) {
            *v = new;
        }
        if let Some(v) = self.shared_roots.get_mut(root) {
            *v = new;
        }
    }

    /// Take lock `id` out of its slot and every index.
    fn remove(&mut self, id: u32) -> Option<Entry> {
        let e = self.slots.get_mut(id as usize)?.take()?;
        self.free.push(id);
        self.live -= 1;
        let token_hash = self.hash(e.token.key());
        if let Ok(found) = self.by_token.find_entry(token_hash, |&i| i == id) {
            found.remove();
        }
        let root_hash = self.hash(&*e.root);
        if e.count > 0 {
            // The head: the next lock (if any) takes over the chain.
            if let Some(next) = self.entry_mut(e.next) {
                (next.prev, next.count) = (e.prev, e.count - 1);
                self.set_head(&e.root, root_hash, id, e.next);
            } else {
                if let Ok(found) = self.by_root.find_entry(root_hash, |&i| i == id) {
                    found.remove();
                }
                self.roots_mut(e.scope == LockScope::Exclusive)
                    .remove(&*e.root);
                self.string_bytes -= e.root.len() + ARC_HEADER;
            }
        } else if let Some(head) = self.head(&e.root) {
            if let Some(prev) = self.entry_mut(e.prev) {
                prev.next = e.next;
            }
            let after = if e.next == NIL { head } else { e.next };
            if let Some(after) = self.entry_mut(after) {
                after.prev = e.prev;
            }
            if let Some(head) = self.entry_mut(head) {
                head.count -= 1;
            }
        }
        if e.depth == LockDepth::Infinity {
            if let Some(n) = self.infinity_at_depth.get_mut(depth_of(&e.root)) {
                *n -= 1;
            }
            while self.infinity_at_depth.last() == Some(&0) {
                self.infinity_at_depth.pop();
            }
        }
        match &e.principal {
            Some(p) => {
                self.held.remove(&(p.clone(), e.root.clone(), id));
                if let Some(n) = self.principals.get_mut(&**p) {
                    *n -= 1;
                    if *n == 0 {
                        self.principals.remove(&**p);
                        self.string_bytes -= p.len() + ARC_HEADER;
                    }
                }
            }
            None => self.anonymous -= 1,
        }
        self.string_bytes -= e.owner.as_ref().map_or(0, |o| o.len() + ARC_HEADER);
        if let StoredToken::Other(t) = &e.token {
            self.string_bytes -= t.len() + ARC_HEADER;
        }
        Some(e)
    }

    fn has_due(&self, now: SystemTime) -> bool {
        self.due.peek().is_some_and(|Reverse((at, _))| *at <= now)
    }

    /// Drop every lock whose expiry has passed.
    fn purge(&mut self, now: SystemTime) {
        self.purge_at_most(now, usize::MAX);
    }

    /// Drop at most `budget` heap entries that are due.
    fn purge_at_most(&mut self, now: SystemTime, mut budget: usize) {
        while let Some(&Reverse((at, id))) = self.due.peek() {
            if at > now || budget == 0 {
                break;
            }
            budget -= 1;
            self.due.pop();
            // Only if the slot still holds a lock expiring at exactly this instant: the other
            // heap entries were left behind by a refresh, an unlock or a reused slot.
            if let Some(_e) = slot(&self.slots, id).filter(|e| e.expires_at == Some(at)) {
                #[cfg(feature = "tracing")]
                tracing::debug!(
                    root = &*_e.root,
                    principal = _e.principal.as_deref(),
                    "tower-locks: lock expired"
                );
                self.remove(id);
            }
        }
        self.tidy();
    }

    /// Give memory back when the store empties or holds fewer live locks than a quarter of its
    /// slots (rebuilt: amortised O(1) per lock), and drop the heap entries left behind once
    /// they outnumber the live locks (amortised O(1) per change).
    fn tidy(&mut self) {
        if self.live == 0 && !self.slots.is_empty() {
            let (fence, hasher) = (self.fence, self.hasher.clone());
            *self = Inner {
                fence,
                hasher,
                ..Inner::default()
            };
        } else if self.slots.len() >= 1024 && self.live * 4 < self.slots.len() {
            let (fence, hasher) = (self.fence, self.hasher.clone());
            let old = std::mem::replace(
                self,
                Inner {
                    fence,
                    hasher,
                    ..Inner::default()
                },
            );
            for mut e in old.slots.into_iter().flatten() {
                e.count = 0;
                self.insert(e);
            }
        } else if self.due.len() > 2 * self.live + 64 {
            let slots = &self.slots;
            let mut due = std::mem::take(&mut self.due).into_vec();
            due.retain(|Reverse((at, id))| {
                slot(slots, *id).is_some_and(|e| e.expires_at == Some(*at))
            });
            due.sort_unstable();
            due.dedup();
            due.shrink_to_fit();
            self.due = BinaryHeap::from(due);
        }
    }

    fn approx_memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let table = |t: &HashTable<u32>| match t.capacity() {
            0 => 0,
            c => (c * 8 / 7).next_power_of_two() * (size_of::<u32>() + 1),
        };
        // A B-tree node holds up to 11 keys and values side by side, about two thirds full.
        let roots = (self.shared_roots.len() + self.exclusive_roots.len())
            * (size_of::<Arc<str>>() + size_of::<u32>())
            * 3
            / 2;
        let principals = self.principals.capacity() * (size_of::<(Arc<str>, u32)>() + 1);
        let held = self.held.len() * size_of::<(Arc<str>, Arc<str>, u32)>() * 3 / 2;
        self.slots.capacity() * size_of::<Option<Entry>>()
            + self.free.capacity() * size_of::<u32>()
            + table(&self.by_token)
            + table(&self.by_root)
            + roots
            + self.due.capacity() * size_of::<Reverse<(SystemTime, u32)>>()
            + principals
            + held
            + self.string_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use crate::ManualClock;

    fn p(s: &str) -> ResourcePath {
        ResourcePath::parse(s).unwrap()
    }

    fn created(o: CreateOutcome) -> Lock {
        match o {
            CreateOutcome::Created(l) => l,
            other => panic!("expected Created, got {other:?}"),
        }
    }

    /// Every index agrees with the slots.
    fn check_consistent(g: &Inner) {
        let live: Vec<u32> = (0..g.slots.len() as u32)
            .filter(|&i| slot(&g.slots, i).is_some())
            .collect();
        assert_eq!(live.len(), g.live);
        assert_eq!(g.by_token.len(), g.live);
        assert_eq!(g.free.len() + g.live, g.slots.len());
        assert_eq!(
            g.by_root.len(),
            g.shared_roots.len() + g.exclusive_roots.len()
        );
        let mut on_roots = 0;
        let indexed = g.shared_roots.iter().map(|r| (r, LockScope::Shared));
        let indexed = indexed.chain(g.exclusive_roots.iter().map(|r| (r, LockScope::Exclusive)));
        for ((root, &head), scope) in indexed {
            assert_eq!(g.head(root), Some(head), "{root}: heads agree");
            let chain: Vec<(u32, &Entry)> = g.chain(head).collect();
            assert!(
                chain.iter().all(|(_, e)| e.scope == scope),
                "{root}: indexed as {scope:?}"
            );
            assert_eq!(chain[0].1.count as usize, chain.len(), "{root}: count");
            assert!(chain.iter().skip(1).all(|(_, e)| e.count == 0));
            assert_eq!(chain[0].1.prev, chain.last().unwrap().0, "{root}: tail");
            for w in chain.windows(2) {
                assert_eq!(w[1].1.prev, w[0].0, "{root}: prev links");
            }
            assert!(chain.iter().all(|(_, e)| *e.root == **root));
            assert!(
                chain.is_sorted_by_key(|(_, e)| e.depth != LockDepth::Infinity),
                "{root}: depth infinity first"
            );
            on_roots += chain.len();
        }
        assert_eq!(on_roots, g.live);
        for &id in &live {
            let e = slot(&g.slots, id).unwrap();
            assert_eq!(g.find_token(e.token.key()), Some(id), "token index");
        }
        let infinity = live
            .iter()
            .filter(|&&i| slot(&g.slots, i).is_some_and(|e| e.depth == LockDepth::Infinity))
            .count();
        let counted: u32 = g.infinity_at_depth.iter().sum();
        assert_eq!(counted as usize, infinity);
        assert_ne!(g.infinity_at_depth.last(), Some(&0));
        let with_principal: u32 = g.principals.values().sum();
        assert_eq!((with_principal + g.anonymous) as usize, g.live);
        assert_eq!(
            g.held.len(),
            with_principal as usize,
            "every lock with a principal held"
        );
        for (p, root, id) in &g.held {
            let e = slot(&g.slots, *id).expect("a held lock is stored");
            assert_eq!((&e.root, e.principal.as_deref()), (root, Some(&**p)));
        }
    }

    fn visits(store: &MemoryLockStore) -> usize {
        store.read().visits.load(Ordering::Relaxed)
    }

    /// Entries looked at by `f`.
    async fn visited<F: std::future::Future>(store: &MemoryLockStore, f: F) -> (usize, F::Output) {
        let before = visits(store);
        let out = f.await;
        (visits(store) - before, out)
    }

    /// A page of one principal's locks looks at that principal's locks only, however many
    /// locks of others lie between its resources or share them; unlocks and expiries keep
    /// its index right.
    #[tokio::test]
    async fn a_page_of_ones_own_locks_looks_at_none_of_the_others() {
        let clock = Arc::new(ManualClock::new());
        let store = MemoryLockStore::with_clock(clock.clone());
        let shared = |path: &str, who: &str| {
            let lock = NewLock::new(p(path)).scope(LockScope::Shared);
            lock.principal(who).principal_quota(10_000)
        };
        let ann = |i: usize| shared(&format!("/big/m{i:04}/ann"), "ann");
        for i in (0..1000).step_by(200) {
            created(store.create(ann(i)).await.unwrap());
        }
        let mut costs = Vec::new();
        let mut held = 0;
        for others in [100, 1000] {
            while held < others {
                let bob = shared(&format!("/big/m{held:04}"), "bob");
                created(store.create(bob).await.unwrap());
                // Every tenth, a lock of bob's beside one of ann's.
                if held % 10 == 0 {
                    created(store.create(shared("/big/m0200/ann", "bob")).await.unwrap());
                }
                held += 1;
            }
            let page = LockQuery::new()
                .subtree(p("/big"))
                .page(None, 10, Some("ann"));
            let (visits, found) = visited(&store, store.query(&page)).await;
            let found = found.unwrap();
            assert_eq!(found.len(), 5, "{found:?}");
            assert!(found.iter().all(|l| l.principal.as_deref() == Some("ann")));
            costs.push(visits);
        }
        assert!(costs[1] == costs[0] && costs[0] <= 10, "{costs:?}");
        // A page of 2 after the second resource; then one lock released, one expired.
        let after = Some(p("/big/m0200/ann"));
        let page = LockQuery::new()
            .subtree(p("/big"))
            .page(after, 2, Some("ann"));
        let roots = |found: Vec<Lock>| found.into_iter().map(|l| l.root).collect::<Vec<_>>();
        let found = roots(store.query(&page).await.unwrap());
        assert_eq!(found, [p("/big/m0400/ann"), p("/big/m0600/ann")]);
        let m0400 = store
            .query(&LockQuery::new().covering(p("/big/m0400/ann")))
            .await;
        let token = m0400
            .unwrap()
            .into_iter()
            .find(|l| l.principal.as_deref() == Some("ann"));
        let token = token.unwrap().token;
        let m0400 = p("/big/m0400/ann");
        let access = TokenAccess::new(&token, &m0400, Some("ann"));
        assert!(matches!(
            store.unlock(access).await.unwrap(),
            TokenOutcome::Done(_)
        ));
        let short = ann(500).timeout(LockTimeout::Seconds(5));
        created(store.create(short).await.unwrap());
        let found = roots(store.query(&page).await.unwrap());
        assert_eq!(found, [p("/big/m0500/ann"), p("/big/m0600/ann")]);
        clock.advance(Duration::from_secs(5));
        let found = roots(store.query(&page).await.unwrap());
        assert_eq!(found, [p("/big/m0600/ann"), p("/big/m0800/ann")]);
        check_consistent(&store.read());
    }

    /// Security: what many locks on one path, or of one principal, cost the others. Creating,
    /// refreshing, unlocking and expiring a lock look at a bounded number of entries, whether
    /// 1 or 1 500 locks share its root or its principal.
    #[tokio::test]
    async fn sharers_cost_nothing_to_each_other() {
        let clock = Arc::new(ManualClock::new());
        let store = MemoryLockStore::with_clock(clock.clone());
        let shared = |path: &str| {
            NewLock::new(p(path))
                .scope(LockScope::Shared)
                .principal("mallory")
                .principal_quota(5_000)
                .resource_quota(5_000)
                .store_quota(10_000)
        };
        let mut costs = Vec::new();
        for n in [1usize, 1_500] {
            let root = format!("/n{n}/doc");
            let deep = shared(&root).depth(LockDepth::Infinity);
            created(store.create(deep).await.unwrap());
            for i in 1..n {
                created(store.create(shared(&root)).await.unwrap());
                let other = NewLock::new(p(&format!("/other{n}/p{i}"))).principal("mallory");
                created(store.create(other).await.unwrap());
            }
            let (create, lock) = visited(&store, store.create(shared(&root))).await;
            let lock = created(lock.unwrap());
            let expiring = shared(&root).timeout(LockTimeout::Seconds(5));
            let expiring = created(store.create(expiring).await.unwrap());
            let access = TokenAccess::new(&lock.token, &lock.root, Some("mallory"));
            let timeout = LockTimeout::Seconds(60);
            let (refresh, out) = visited(&store, store.refresh(access, timeout)).await;
            assert!(matches!(out.unwrap(), TokenOutcome::Done(_)));
            let (unlock, out) = visited(&store, store.unlock(access)).await;
            assert!(matches!(out.unwrap(), TokenOutcome::Done(_)));
            clock.advance(Duration::from_secs(5));
            let (expire, len) = visited(&store, async { store.len() }).await;
            assert!(store.get(&expiring.token).await.unwrap().is_none());
            // A write below the shared path, holding one of the tokens: refused at once.
            let below = LockQuery::new().covering(p(&format!("{root}/x")));
            let tokens = [lock.token.as_str()];
            let submission = Submission::new(&tokens, Some("mallory"));
            let (check, outcome) = visited(&store, store.check(&below, submission)).await;
            assert!(!outcome.unwrap().allowed());
            costs.push([create, refresh, unlock, expire, check]);
            assert!(len >= 2 * n - 1, "{n}: one lock expired, one unlocked");
            check_consistent(&store.read());
        }
        let [one, many] = [costs[0], costs[1]];
        for (what, (a, b)) in ["create", "refresh", "unlock", "expire", "check"]
            .iter()
            .zip(one.iter().zip(many))
        {
            assert!(
                b <= a + 8 && b <= 24,
                "{what}: {a} entries looked at with 1 sharer, {b} with 1 500"
            );
        }
    }

    #[tokio::test]
    async fn subtree_visits_only_the_subtree_and_check_stops_early() {
        let store = MemoryLockStore::new();
        for i in 0..20_000u32 {
            let path = format!("/t{}/d{}/f{i}", i % 100, i % 1000);
            created(store.create(NewLock::new(p(&path))).await.unwrap());
        }
        created(store.create(NewLock::new(p("/t7x/d7/f7"))).await.unwrap());
        let subtree = LockQuery::new().subtree(p("/t7/d7"));
        let (n, found) = visited(&store, store.query(&subtree)).await;
        let found = found.unwrap();
        assert_eq!(
            (found.len(), n),
            (20, 20),
            "only the subtree's locks are looked at"
        );
        assert!(found.iter().all(|l| l.root.as_str().starts_with("/t7/d7/")));
        assert!(found.is_sorted_by(|a, b| a.root < b.root));
        let (n, outcome) = visited(&store, store.check(&subtree, Submission::default())).await;
        assert_eq!(outcome.unwrap().unsatisfied, found[..16]);
        assert_eq!(
            n,
            16 + 16,
            "stops at the 16th blocker (and builds each of them)"
        );
        let deep = LockQuery::new().covering(p("/t7/d7/f7/deeper/still"));
        let (n, found) = visited(&store, store.query(&deep)).await;
        assert!(found.unwrap().is_empty());
        assert_eq!(
            n, 0,
            "no depth-infinity lock anywhere: one lookup, no lock read"
        );
        check_consistent(&store.read());
    }

    /// Security: a depth-infinity LOCK on a collection with thousands of locked members
    /// stops at the 16th conflict instead of reading (and reporting) every one of them.
    #[tokio::test]
    async fn a_refused_lock_stops_at_the_sixteenth_conflict() {
        let store = MemoryLockStore::new();
        for i in 0..2_000u32 {
            let path = format!("/big/d{}/f{i}", i % 10);
            created(store.create(NewLock::new(p(&path))).await.unwrap());
        }
        let deep = NewLock::new(p("/big")).depth(LockDepth::Infinity);
        let (n, out) = visited(&store, store.create(deep)).await;
        let CreateOutcome::Conflict(conflicts) = out.unwrap() else {
            panic!("2 000 exclusive locks below conflict");
        };
        assert_eq!(conflicts.len(), 16);
        assert!(n <= 2 * 16, "{n} entries looked at for 16 conflicts");
        check_consistent(&store.read());
    }

    /// Security: a removal's query ([`Below::UntilBlocked`]) over a collection with many
    /// locked members walks them only until 16 blocked ones are known, and past the ones its
    /// tokens open; asking for everything below walks them all.
    #[tokio::test]
    async fn a_removal_query_stops_after_sixteen_blocked_members() {
        let store = MemoryLockStore::new();
        let mut tokens = Vec::new();
        for i in 0..2_000u32 {
            let member = NewLock::new(p(&format!("/big/m{i:04}")));
            tokens.push(created(store.create(member).await.unwrap()).token);
        }
        let all = LockQuery::new().subtree(p("/big"));
        let (n, found) = visited(&store, store.query(&all)).await;
        assert_eq!((n, found.unwrap().len()), (2_000, 2_000));
        let (n, found) = visited(&store, store.query(&all.clone().until_blocked(None))).await;
        assert_eq!(found.unwrap().len(), 16);
        assert!(n <= 16 + 4, "{n} entries looked at for 16 blocked members");
        // The first 30 members are open (their tokens are asked for): the walk goes past them.
        let mut opened = all.until_blocked(None);
        for t in &tokens[..30] {
            opened.push_token(t.as_str());
        }
        let (n, found) = visited(&store, store.query(&opened)).await;
        assert_eq!(found.unwrap().len(), 30 + 16);
        // Each asked token's lock is looked up twice (to open its root, then to report it):
        // a removal pays that so that a plain write's query builds no list of token locks.
        assert!(
            n <= 2 * 30 + 30 + 16 + 4,
            "{n} entries looked at past 30 open members"
        );
    }

    /// Security: a shared depth-infinity LOCK looks only at the exclusive locks below its
    /// root, not at the thousands of shared ones it is compatible with.
    #[tokio::test]
    async fn a_shared_lock_reads_only_the_exclusive_locks_below() {
        let store = MemoryLockStore::new();
        for i in 0..2_000u32 {
            let shared =
                NewLock::new(p(&format!("/big/d{}/f{i}", i % 10))).scope(LockScope::Shared);
            created(store.create(shared).await.unwrap());
        }
        let last = created(store.create(NewLock::new(p("/big/z"))).await.unwrap());
        let deep = NewLock::new(p("/big"))
            .scope(LockScope::Shared)
            .depth(LockDepth::Infinity);
        let (n, out) = visited(&store, store.create(deep)).await;
        assert_eq!(out.unwrap(), CreateOutcome::Conflict(vec![last]));
        assert!(n <= 4, "{n} entries looked at");
        // A subtree query still gets every lock below, in root order.
        let all = store
            .query(&LockQuery::new().subtree(p("/big")))
            .await
            .unwrap();
        assert_eq!(all.len(), 2_001);
        assert!(all.is_sorted_by(|a, b| a.root <= b.root));
        check_consistent(&store.read());
    }

    /// `check` reads the locks of the submitted tokens only when an unsatisfied shared lock
    /// might be excused by one of them.
    #[tokio::test]
    async fn check_reads_the_submitted_tokens_locks_only_for_shared_locks() {
        let store = MemoryLockStore::new();
        let doc = created(store.create(NewLock::new(p("/doc"))).await.unwrap());
        let mut others = Vec::new();
        for i in 0..10 {
            let shared = NewLock::new(p(&format!("/other/{i}"))).scope(LockScope::Shared);
            others.push(
                created(store.create(shared).await.unwrap())
                    .token
                    .to_string(),
            );
        }
        let mut tokens: Vec<&str> = others.iter().map(String::as_str).collect();
        tokens.push(doc.token.as_str());
        let query = LockQuery::new().covering(p("/doc"));
        let (n, out) = visited(&store, store.check(&query, Submission::new(&tokens, None))).await;
        assert!(out.unwrap().allowed());
        assert!(n <= 1, "{n} entries read for one satisfied exclusive lock");
    }

    /// Chains stay consistent through every kind of insertion and removal.
    #[tokio::test]
    async fn chains_survive_every_change() {
        let clock = Arc::new(ManualClock::new());
        let store = MemoryLockStore::with_clock(clock.clone());
        let mut held = Vec::new();
        for i in 0..300u32 {
            let root = format!("/r{}", i % 7);
            let depth = if i % 3 == 0 {
                LockDepth::Infinity
            } else {
                LockDepth::Zero
            };
            let req = NewLock::new(p(&root))
                .scope(LockScope::Shared)
                .depth(depth)
                .timeout(LockTimeout::Seconds(1 + i % 13));
            held.push(created(store.create(req).await.unwrap()));
            if i % 4 == 1 {
                let l = held.swap_remove((i as usize * 7) % held.len());
                let access = TokenAccess::new(&l.token, &l.root, None);
                store.unlock(access).await.unwrap();
            }
            if i % 50 == 0 {
                clock.advance(Duration::from_secs(3));
            }
            check_consistent(&store.read());
        }
        let removed = store.remove_subtree(&p("/")).await.unwrap();
        assert_eq!(removed, store.len() + removed);
        assert!(store.is_empty());
        assert!(
            store.read().slots.is_empty(),
            "an empty store gives its memory back"
        );
    }

    #[tokio::test]
    async fn custom_and_case_variant_tokens_are_distinct() {
        let store = MemoryLockStore::new();
        let t = crate::new_token();
        let mut req = NewLock::new(p("/a"));
        req.token = t.to_uppercase().into();
        created(store.create(req).await.unwrap());
        assert!(store.get(&t).await.unwrap().is_none());
        assert!(store.get(&t.to_uppercase()).await.unwrap().is_some());
        let mut dup = NewLock::new(p("/b"));
        dup.token = t.to_uppercase().into();
        assert!(
            store.create(dup).await.is_err(),
            "a token in use is refused"
        );
    }

    #[test]
    fn entry_is_small() {
        assert!(std::mem::size_of::<Option<Entry>>() <= 120);
    }
}
