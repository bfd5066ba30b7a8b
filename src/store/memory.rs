//! `MemoryLockStore`: the embedded default store.
//!
//! # Data structure
//!
//! All state sits behind one `RwLock`, so every verb is one linearisable step. What needs no
//! state (parsing a submitted token, hashing it and a new lock's root) is done before the lock
//! is taken, so a writer holds it for less time.
//!
//! - **slab** `Vec<Option<Entry>>` with a free list: each live lock is one compact entry,
//!   addressed everywhere else by its 4-byte slot id. The entry keeps `urn:uuid:` tokens as 16
//!   raw bytes, the root as an `Arc<str>` shared by every lock on that root (and with the
//!   request's [`ResourcePath`] that created it), the owner as an `Arc<str>`, the principal as
//!   an `Arc<str>` shared with the quota counter, and scope, depth, timeout kind and trailing
//!   slash as bit flags. Reporting a lock is therefore a few reference-count increments and
//!   the formatting of the token into an inline [`LockToken`]: no allocation.
//! - **token index** `HashTable<u32>`: token → slot id (the table holds ids only; hashing and
//!   equality look at the slab).
//! - **root index** `HashTable<u32>`: canonical root path → the first lock rooted there (the
//!   head); the other locks on the same root are chained through the entries (`next`). A new
//!   lock on a held root goes second in the chain, so the head changes only when it is removed.
//!   It is keyed by 32 bits of the root's SipHash, which every entry keeps in what was
//!   padding: removing a lock and growing the table hash no path.
//! - **root filter** ([`RootFilter`]): a counting filter over the same roots (one byte
//!   counter per slot, about 8 slots per root, picked by a cheap keyed hash). A path whose
//!   counter is zero holds no lock, so a check of an unlocked path usually skips the SipHash
//!   and the root index probe.
//! - **depth-infinity list** ([`InfinityList`]): while at most 64 depth-infinity locks are
//!   stored, each one's root hash (FNV-1a, as the depth-infinity filter uses) and slot id. A
//!   covering check finds the depth-infinity locks on an ancestor by scanning it instead of
//!   hashing the ancestor with SipHash; with more such locks the root index serves.
//! - **collections** ([`Dirs`]): every collection with a locked root at or below it, linked to
//!   its parent, its subcollections and the chain heads rooted directly in it. A subtree query
//!   looks the collection up once and walks what is below it, however many locks are held
//!   elsewhere; the roots it finds are sorted (compared inline a word at a time, see
//!   [`byte_order`]) where a report must come in root order.
//! - **expiry heap** `BinaryHeap<Reverse<(SystemTime, u32)>>`: popped at the start of every
//!   mutating verb. An entry is acted on only if that slot still holds a lock expiring at exactly
//!   that instant, so entries left behind by a refresh, an unlock or a reused slot are harmless;
//!   the heap is rebuilt when stale entries outnumber live locks.
//! - **principal counters** `HashMap<Arc<str>, u32>`: live locks per principal, for quotas.
//!
//! Reads look at the clock only when they look at a lock that can expire: an unlocked check
//! never reads it.
//!
//! Costs, with `d` the path depth, `k` the locks reported or removed and `n` the locks held:
//! `query` covering: `O(d)` hash lookups (the one on the path itself usually skipped, without
//! hashing, when no lock is rooted there); with descendants: `+ O(1 + c + k log k)`, `c` the
//! collections below holding locks; `get`: `O(1)`; `create`: `O(d)` (`+ O(1 + c + k log k)` for
//! depth infinity); `refresh`, `unlock`: `O(1)` plus the chain of locks on the same root (plus
//! `O(d)` when collections appear or go); `remove_subtree`: `O(1 + c + k)`; expiry: amortised
//! `O(log n)` per expired lock. Nothing scans all locks, except the occasional rebuild that
//! compacts the slab after at least three quarters of it were freed (amortised `O(1)`).

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use hashbrown::HashTable;

use super::byte_order::byte_order;
use super::dirs::Dirs;
use super::lock::may_use;
use super::root_filter::{fold, RootFilter};
use super::{
    CheckOutcome, Clock, CreateOutcome, Lock, LockDepth, LockQuery, LockScope, LockStore,
    LockStoreError, LockTimeout, LockToken, NewLock, Quota, Submission, SystemClock, TokenAccess,
    TokenOutcome, TokenVerdict,
};
use crate::path::key_parent;
use crate::ResourcePath;

/// The in-memory lock store: the default, for a single application instance.
///
/// Cloning is cheap and clones share the same locks. Every verb works synchronously under one
/// internal lock (never held across an `.await`); checks take it shared, changes exclusive.
/// A check costs `O(path depth)` hash lookups however many locks are held, a subtree query one
/// lookup plus the collections and locks in the subtree. Expired locks are never reported,
/// never block, and are dropped from memory by the next change (or the next check that looks
/// at a lock, when it can do so without waiting).
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
    /// The same keys as the `Inner`'s (they never change): tokens and roots are hashed before
    /// the write lock is taken, so the critical section is shorter.
    hashers: Hashers,
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
        let inner = Inner::new();
        Self {
            hashers: inner.hashers.clone(),
            inner: Arc::new(RwLock::new(inner)),
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
        let now = self.clock.now();
        let mut g = self.write();
        g.purge(now);
        g.live
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

    /// `query`, synchronously (the memory store never waits).
    fn query_sync(&self, query: &LockQuery) -> Vec<Lock> {
        let targets = query.targets.iter();
        self.found(targets.map(|t| (t.path.as_str(), t.descendants)))
    }

    /// The locks matching `targets` (canonical keys, `true`: with descendants), as `query`
    /// reports them.
    #[inline(always)]
    fn found<'a>(&self, targets: impl Iterator<Item = (&'a str, bool)>) -> Vec<Lock> {
        self.read_step(|g, now| {
            // Ids first, then the locks into one exact allocation (none when nothing is found).
            // The targets are walked here rather than through `Inner::matching`: with two
            // callers `covering` is no longer inlined, about 30 instructions per check more.
            let mut ids: Ids = Ids::default();
            let mut several = false;
            for (i, (key, descendants)) in targets.enumerate() {
                several = i > 0;
                let mut push = |id| ids.push(id);
                g.covering(key, None, now, |_| true, &mut push);
                if descendants {
                    g.below(key, now, |_| true, true, &mut push);
                }
            }
            let mut found = Found {
                locks: Vec::with_capacity(ids.len()),
                shared_root: false,
            };
            for id in ids.iter() {
                found.push(g.to_lock(id));
            }
            found.into_sorted(several)
        })
    }

    /// `check`, synchronously: the satisfied locks are judged where they are stored, and only
    /// the others are built into `Lock`s.
    fn check_sync(&self, query: &LockQuery, submission: Submission<'_>) -> CheckOutcome {
        self.read_step(|g, now| {
            let mut ids: Ids = Ids::default();
            let unordered = g.matching(query, now, &mut ids);
            let mut outcome = CheckOutcome::default();
            if ids.len() == 0 {
                return outcome;
            }
            let mut unsatisfied = Found::default();
            for id in ids.iter() {
                let Some(e) = g.entry(id) else { continue };
                let usable = may_use(e.principal.as_deref(), submission.principal);
                if usable && e.token.submitted_in(submission.tokens) {
                    outcome.fence = outcome.fence.max(Some(e.fence));
                } else {
                    unsatisfied.push(g.to_lock(id));
                }
            }
            outcome.unsatisfied = unsatisfied.into_sorted(unordered);
            outcome
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Run a read-only step; afterwards purge expired locks if that is possible without waiting
    /// (only when the step read the clock: a step that looked at no lock does not).
    fn read_step<R>(&self, f: impl FnOnce(&Inner, &Now<'_>) -> R) -> R {
        let now = Now::lazy(&*self.clock);
        let (out, due) = {
            let g = self.read();
            let out = f(&g, &now);
            (out, now.read().filter(|&t| g.has_due(t)))
        };
        if let Some(now) = due {
            if let Ok(mut g) = self.inner.try_write() {
                g.purge(now);
            }
        }
        out
    }

    /// Run a mutating step after purging expired locks.
    #[inline(always)]
    fn write_step<R>(&self, f: impl FnOnce(&mut Inner, SystemTime) -> R) -> R {
        let now = self.clock.now();
        let mut g = self.write();
        g.purge(now);
        let out = f(&mut g, now);
        g.maybe_compact();
        out
    }
}

impl LockStore for MemoryLockStore {
    async fn create(&self, lock: NewLock) -> Result<CreateOutcome, LockStoreError> {
        let keys = NewKeys::of(&lock, &self.hashers);
        self.write_step(|g, now| g.create(lock, keys, now))
    }

    async fn refresh(
        &self,
        access: TokenAccess<'_>,
        timeout: LockTimeout,
    ) -> Result<TokenOutcome, LockStoreError> {
        let key = TokenKey::of_text(access.token.as_bytes());
        let token_hash = self.hashers.token(key);
        Ok(self.write_step(|g, now| {
            let Some(id) = g.find_token_hashed(key, token_hash) else {
                return TokenOutcome::NotFound;
            };
            let mut lock = g.to_lock(id);
            // A refresh is never privileged: only the lock's own principal may extend it.
            let verdict = TokenAccess {
                privileged: false,
                ..access
            }
            .judge(&lock);
            if verdict == TokenVerdict::Allowed {
                let expires_at = timeout.expiry_from(now);
                g.set_timeout(id, timeout, expires_at);
                lock.timeout = timeout;
                lock.expires_at = expires_at;
            }
            TokenOutcome::from_verdict(verdict, lock)
        }))
    }

    async fn unlock(&self, access: TokenAccess<'_>) -> Result<TokenOutcome, LockStoreError> {
        let key = TokenKey::of_text(access.token.as_bytes());
        let token_hash = self.hashers.token(key);
        Ok(self.write_step(|g, _| {
            let Some(id) = g.find_token_hashed(key, token_hash) else {
                return TokenOutcome::NotFound;
            };
            let lock = g.to_lock(id);
            let verdict = access.judge(&lock);
            if verdict == TokenVerdict::Allowed {
                g.remove_hashed(id, token_hash);
            }
            TokenOutcome::from_verdict(verdict, lock)
        }))
    }

    async fn remove_subtree(&self, path: &ResourcePath) -> Result<usize, LockStoreError> {
        Ok(self.write_step(|g, _| {
            // Every lock on the path and below, each chain head first, so that every removal
            // takes the head of its chain.
            let mut ids = Vec::new();
            let mut chain = |head: u32| {
                let mut id = head;
                while let Some(e) = g.entry(id) {
                    ids.push(id);
                    id = e.next;
                }
            };
            if let Some(head) = g.root_head(path.as_str()) {
                chain(head);
            }
            g.for_each_root_below(path.as_str(), &mut chain);
            for &id in &ids {
                g.remove(id);
            }
            ids.len()
        }))
    }

    async fn query(&self, query: &LockQuery) -> Result<Vec<Lock>, LockStoreError> {
        Ok(self.query_sync(query))
    }

    fn query_now(&self, query: &LockQuery) -> Option<Result<Vec<Lock>, LockStoreError>> {
        Some(Ok(self.query_sync(query)))
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
            g.find_token(token)
                .filter(|&id| g.entry(id).is_some_and(|e| e.is_live(now)))
                .map(|id| g.to_lock(id))
        }))
    }
}

/// No lock / end of a chain.
const NIL: u32 = u32::MAX;

/// Entry flags.
const SHARED: u8 = 1;
const INFINITY: u8 = 2;
const TRAILING_SLASH: u8 = 4;
const NO_TIMEOUT: u8 = 8;

/// A lock token as stored: the canonical `urn:uuid:` form as its 16 bytes (parsed and
/// formatted with lookup tables), anything else verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Uuid([u8; 16]),
    Other(Arc<str>),
}

/// A token as looked up: hashed and compared the same way as a stored one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TokenKey<'a> {
    Uuid([u8; 16]),
    Other(&'a [u8]),
}

impl<'a> TokenKey<'a> {
    fn of_text(text: &'a [u8]) -> Self {
        match super::token::parse_uuid_urn(text) {
            Some(b) => TokenKey::Uuid(b),
            None => TokenKey::Other(text),
        }
    }
}

impl Token {
    #[cfg(test)]
    fn parse(s: &str) -> Self {
        Self::of(&LockToken::from(s))
    }

    fn of(token: &LockToken) -> Self {
        match (token.uuid_bytes(), token.shared()) {
            (Some(b), _) => Token::Uuid(b),
            (None, Some(s)) => Token::Other(s.clone()),
            (None, None) => Token::Other(Arc::from(token.as_str())),
        }
    }

    fn key(&self) -> TokenKey<'_> {
        match self {
            Token::Uuid(b) => TokenKey::Uuid(*b),
            Token::Other(s) => TokenKey::Other(s.as_bytes()),
        }
    }

    /// Whether this token is one of `submitted` (compared as text, like `LockToken`'s `==`):
    /// a UUID token is rendered once, not each submitted token parsed.
    fn submitted_in(&self, submitted: &[&str]) -> bool {
        match self {
            Token::Uuid(b) => {
                let text = super::token::render_uuid_urn(b);
                // The last eight characters are random hex: comparing them first turns away
                // almost every other token without a call to `memcmp`.
                let tail = |t: &[u8]| t.last_chunk::<8>().copied();
                let own = tail(&text);
                submitted
                    .iter()
                    .any(|t| tail(t.as_bytes()) == own && t.as_bytes() == text)
            }
            Token::Other(s) => submitted.iter().any(|t| *t == &**s),
        }
    }

    fn render(&self) -> LockToken {
        match self {
            Token::Uuid(b) => LockToken::from_uuid_bytes(*b),
            Token::Other(s) => LockToken::from_shared(s),
        }
    }
}

/// The store's hash keys, drawn at random per store.
///
/// Paths and foreign tokens are chosen by clients, so they go through SipHash (std's
/// `RandomState`), which resists crafted collisions. The UUID of a canonical token is not:
/// `new_token` drew it at random, so one keyed 64×64→128-bit multiplication spreads it well
/// enough, for about 170 instructions less than SipHash (a LOCK + UNLOCK hashes a token
/// twice). An application that sets `NewLock::token` itself to such a UUID gets the same
/// hash; crafting colliding ones would still need this store's random keys.
#[derive(Clone, Debug)]
struct Hashers {
    sip: RandomState,
    uuid: [u64; 2],
}

/// Fresh random keys, like `new`: no store ever hashes tokens unkeyed.
impl Default for Hashers {
    fn default() -> Self {
        Self::new()
    }
}

impl Hashers {
    fn new() -> Self {
        let sip = RandomState::new();
        let uuid = [sip.hash_one(1u8), sip.hash_one(2u8)];
        Self { sip, uuid }
    }

    /// `path`'s hash in the root index: the low 32 bits of its SipHash, which each lock
    /// keeps (in what was padding) so that removing it hashes nothing. Still keyed, so
    /// colliding roots cannot be crafted without this store's keys; two roots sharing all 32
    /// bits by chance (about a hundred pairs among a million roots) cost one more string
    /// comparison.
    fn path(&self, path: &str) -> RootHash {
        RootHash(self.sip.hash_one(path) as u32)
    }

    /// A collection's hash in [`Dirs`]: its full SipHash (client-chosen paths, keyed).
    fn dir(&self, path: &str) -> u64 {
        self.sip.hash_one(path)
    }

    fn token(&self, key: TokenKey<'_>) -> u64 {
        match key {
            TokenKey::Uuid(b) => {
                let v = u128::from_le_bytes(b);
                let [k0, k1] = self.uuid;
                fold(v as u64 ^ k0, (v >> 64) as u64 ^ k1)
            }
            TokenKey::Other(text) => self.sip.hash_one(text),
        }
    }
}

/// A root's keyed hash, 32 bits of SipHash (see [`Hashers::path`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RootHash(u32);

impl RootHash {
    /// The 64-bit hash `by_root` is keyed with: the 32 bits spread by an odd multiplier, so
    /// the table's bucket bits (low) and tag bits (top seven) both depend on all of them.
    fn table(self) -> u64 {
        u64::from(self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

/// What `create` needs hashed, computed before the write lock is taken.
struct NewKeys {
    token: Token,
    token_hash: u64,
    root_hash: RootHash,
    /// The hash of the root's collection in [`Dirs`] (0 for `/`, which has none).
    parent_hash: u64,
}

impl NewKeys {
    fn of(lock: &NewLock, hashers: &Hashers) -> Self {
        let token = Token::of(&lock.token);
        let root = lock.root.as_str();
        Self {
            token_hash: hashers.token(token.key()),
            root_hash: hashers.path(root),
            parent_hash: key_parent(root).map_or(0, |p| hashers.dir(p)),
            token,
        }
    }
}

/// One stored lock.
#[derive(Debug)]
struct Entry {
    token: Token,
    /// Canonical root key, shared with the other locks on this root and with [`Dirs`].
    root: Arc<str>,
    /// `root`'s hash, kept so that removing the lock and growing `by_root` rehash nothing.
    root_hash: RootHash,
    owner: Option<Arc<str>>,
    /// Shared with the principal counter.
    principal: Option<Arc<str>>,
    expires_at: Option<SystemTime>,
    fence: u64,
    /// The granted seconds, unless `NO_TIMEOUT`.
    timeout_secs: u32,
    /// The next lock on the same root, or `NIL`.
    next: u32,
    flags: u8,
}

impl Entry {
    fn is_live(&self, now: &Now<'_>) -> bool {
        self.expires_at.is_none_or(|at| at > now.get())
    }

    fn is_infinity(&self) -> bool {
        self.flags & INFINITY != 0
    }

    fn scope(&self) -> LockScope {
        if self.flags & SHARED != 0 {
            LockScope::Shared
        } else {
            LockScope::Exclusive
        }
    }

    fn timeout(&self) -> LockTimeout {
        if self.flags & NO_TIMEOUT != 0 {
            LockTimeout::Infinite
        } else {
            LockTimeout::Seconds(self.timeout_secs)
        }
    }

    fn set_timeout(&mut self, timeout: LockTimeout) {
        match timeout {
            LockTimeout::Infinite => {
                self.flags |= NO_TIMEOUT;
                self.timeout_secs = 0;
            }
            LockTimeout::Seconds(s) => {
                self.flags &= !NO_TIMEOUT;
                self.timeout_secs = s;
            }
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    live: usize,
    by_token: HashTable<u32>,
    /// Root key → first lock on that root.
    by_root: HashTable<u32>,
    /// The collections holding locked roots, with the heads of their chains.
    dirs: Dirs,
    /// Counts the roots in `by_root`: a lookup of a path it rules out skips `by_root`.
    roots: RootFilter,
    /// Live depth-infinity locks per root depth (segments): a covering check looks up only
    /// the ancestors at depths that hold one, so without such locks it is one lookup.
    infinity_at_depth: Vec<u32>,
    /// A counting filter over the roots of depth-infinity locks: slot `fnv(root) % 1024` counts
    /// them (empty until the first one). A check looks an ancestor up only if its slot is not
    /// zero. The hash is not keyed: a crafted path can at worst make a check do the exact
    /// (SipHash) lookup it would do without the filter. It is not a second [`RootFilter`] on
    /// purpose: FNV-1a extends from a prefix to the whole path, so one pass over the path
    /// hashes every ancestor; the root filter's word hash would take a pass per ancestor
    /// (measured: 12–44 ns slower per check at depths 2 and 20).
    infinity_filter: Vec<u32>,
    /// The depth-infinity locks, while there are few (see [`InfinityList`]).
    infinity_list: InfinityList,
    due: BinaryHeap<Reverse<(SystemTime, u32)>>,
    principals: HashMap<Arc<str>, u32>,
    fence: u64,
    hashers: Hashers,
    /// Bytes of the strings the store owns (roots once, owners, custom tokens, principals).
    string_bytes: usize,
    /// Lock entries looked at by read paths (tests assert subtree queries stay local).
    #[cfg(test)]
    examined: std::sync::atomic::AtomicUsize,
}

/// Rough per-string heap cost: the bytes plus an `Arc` header where there is one.
const ARC_HEADER: usize = 2 * std::mem::size_of::<usize>();

impl Inner {
    /// Empty, with fresh random hash keys (the root filter's seed drawn from them).
    fn new() -> Self {
        let hashers = Hashers::new();
        Self {
            roots: RootFilter::new(&hashers.sip),
            hashers,
            ..Self::default()
        }
    }

    fn entry(&self, id: u32) -> Option<&Entry> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    fn entry_mut(&mut self, id: u32) -> Option<&mut Entry> {
        self.slots.get_mut(id as usize).and_then(Option::as_mut)
    }

    fn hash_root(&self, s: &str) -> RootHash {
        self.hashers.path(s)
    }

    fn hash_token(&self, key: TokenKey<'_>) -> u64 {
        self.hashers.token(key)
    }

    fn find_token(&self, token: &str) -> Option<u32> {
        let key = TokenKey::of_text(token.as_bytes());
        self.find_token_hashed(key, self.hash_token(key))
    }

    fn find_token_hashed(&self, key: TokenKey<'_>, hash: u64) -> Option<u32> {
        let slots = &self.slots;
        self.by_token
            .find(hash, |&id| {
                slot(slots, id).is_some_and(|e| e.token.key() == key)
            })
            .copied()
    }

    /// The head of the chain on `root`; hashes `root` only if the root filter lets it pass.
    fn root_head(&self, root: &str) -> Option<u32> {
        if !self.roots.may_contain(root) {
            return None;
        }
        self.root_head_hashed(root, self.hash_root(root))
    }

    fn root_head_hashed(&self, root: &str, hash: RootHash) -> Option<u32> {
        let slots = &self.slots;
        self.by_root
            .find(hash.table(), |&id| {
                slot(slots, id).is_some_and(|e| &*e.root == root)
            })
            .copied()
    }

    /// Call `f` for every lock on the chain starting at `head` (live or not).
    fn each_in_chain(&self, head: u32, mut f: impl FnMut(u32, &Entry)) {
        let mut id = head;
        while let Some(e) = self.entry(id) {
            #[cfg(test)]
            self.examined
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            f(id, e);
            id = e.next;
        }
    }

    /// Call `f` for every lock on `root` (live or not).
    fn each_on_root(&self, root: &str, f: impl FnMut(u32, &Entry)) {
        if let Some(head) = self.root_head(root) {
            self.each_in_chain(head, f);
        }
    }

    /// Call `f` with the chain head of every root strictly below `path` that holds locks, in
    /// no particular order.
    fn for_each_root_below(&self, path: &str, f: impl FnMut(u32)) {
        if self.dirs.len() > 0 {
            self.dirs.for_each_below(path, self.hashers.dir(path), f);
        }
    }

    /// Live locks covering the canonical path `key` (depth-infinity locks on ancestors, every
    /// lock on `key`) that pass `keep`, given to `out`.
    ///
    /// The locks come in root order (ancestors are prefixes of `key`, from the root down),
    /// locks on one root next to each other. `path_hash` is `key`'s SipHash if the caller has
    /// it; otherwise it is computed only if the root filter does not rule `key` out.
    fn covering(
        &self,
        key: &str,
        path_hash: Option<RootHash>,
        now: &Now<'_>,
        keep: impl Fn(&Entry) -> bool,
        out: &mut impl FnMut(u32),
    ) {
        // Only the depths that hold a depth-infinity lock (the vector ends with one), and only
        // the ancestors the filter does not rule out; one pass over the path hashes them all.
        let depths = self.infinity_at_depth.len();
        let mut ancestor = |depth: usize, key: &str, fnv: u64| {
            if self.infinity_at_depth.get(depth).is_some_and(|&n| n > 0)
                && self.may_hold_infinity(fnv)
            {
                let mut found = |id, e: &Entry| {
                    if e.is_infinity() && keep(e) && e.is_live(now) {
                        out(id);
                    }
                };
                match self.infinity_list.get() {
                    // A few depth-infinity locks: scan them, no SipHash.
                    Some(list) => {
                        for &(hash, id) in list {
                            if hash == fnv {
                                if let Some(e) = self.entry(id).filter(|e| &*e.root == key) {
                                    #[cfg(test)]
                                    self.examined
                                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    found(id, e);
                                }
                            }
                        }
                    }
                    None => self.each_on_root(key, found),
                }
            }
        };
        if depths > 0 && key != "/" {
            ancestor(0, "/", fnv1a(FNV_OFFSET, b"/"));
            let mut fnv = FNV_OFFSET;
            let mut depth = 0;
            for (i, &b) in key.as_bytes().iter().enumerate() {
                if b == b'/' && i > 0 {
                    depth += 1;
                    if depth >= depths {
                        break;
                    }
                    ancestor(depth, key.get(..i).unwrap_or("/"), fnv);
                }
                fnv = fnv1a(fnv, &[b]);
            }
        }
        let head = if self.roots.may_contain(key) {
            let hash = path_hash.unwrap_or_else(|| self.hash_root(key));
            self.root_head_hashed(key, hash)
        } else {
            None
        };
        if let Some(head) = head {
            self.each_in_chain(head, |id, e| {
                if keep(e) && e.is_live(now) {
                    out(id);
                }
            });
        }
    }

    /// Whether the filter allows a depth-infinity lock on the root whose FNV-1a hash is `fnv`.
    fn may_hold_infinity(&self, fnv: u64) -> bool {
        let slot = (fnv % INFINITY_FILTER as u64) as usize;
        self.infinity_filter.get(slot).is_some_and(|&n| n > 0)
    }

    /// Count a depth-infinity lock whose root's FNV-1a hash is `fnv` in (or, `add` false, out
    /// of) the filter.
    fn count_infinity(&mut self, fnv: u64, add: bool) {
        if self.infinity_filter.is_empty() {
            self.infinity_filter = vec![0; INFINITY_FILTER];
        }
        let slot = (fnv % INFINITY_FILTER as u64) as usize;
        if let Some(n) = self.infinity_filter.get_mut(slot) {
            *n = if add { *n + 1 } else { n.saturating_sub(1) };
        }
    }

    /// Live locks rooted strictly below `path` that pass `keep`, given to `out`: in root
    /// order if `sorted`, else in no particular order (the caller sorts what it reports).
    fn below(
        &self,
        path: &str,
        now: &Now<'_>,
        keep: impl Fn(&Entry) -> bool,
        sorted: bool,
        out: &mut impl FnMut(u32),
    ) {
        let mut chain = |head| {
            self.each_in_chain(head, |id, e| {
                if keep(e) && e.is_live(now) {
                    out(id);
                }
            });
        };
        if !sorted {
            return self.for_each_root_below(path, chain);
        }
        // The roots below `path` all start with `path/`: sort them by the next eight bytes (a
        // big-endian word, zero-padded), and compare the rest only where those are equal.
        let slots = &self.slots;
        let root = |id| slot(slots, id).map_or(&b""[..], |e| e.root.as_bytes());
        let skip = if path == "/" { 1 } else { path.len() + 1 };
        let mut heads: Ids<(u64, u32), 16> = Ids::default();
        self.for_each_root_below(path, |head| {
            let rest = root(head).get(skip..).unwrap_or_default();
            let word = match rest.first_chunk::<8>() {
                Some(w) => u64::from_be_bytes(*w),
                None => {
                    let w = rest.iter().fold(0, |w, &b| w << 8 | u64::from(b));
                    w.wrapping_shl(8 * (8 - rest.len() as u32))
                }
            };
            heads.push((word, head));
        });
        if heads.len() > 1 {
            heads.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| byte_order(root(a.1), root(b.1))));
        }
        heads.iter().for_each(|(_, head)| chain(head));
    }

    /// Add the ids of the live locks matching `query` to `ids` (a lock matching several
    /// targets more than once). Filled in place: returning the buffer would copy it. Returns
    /// whether the ids may be out of root order or repeat: several targets, or a subtree
    /// (whose roots come in no particular order).
    fn matching(&self, query: &LockQuery, now: &Now<'_>, ids: &mut Ids) -> bool {
        let mut unordered = query.targets.len() > 1;
        for target in &query.targets {
            let mut push = |id| ids.push(id);
            self.covering(target.path.as_str(), None, now, |_| true, &mut push);
            if target.descendants {
                self.below(target.path.as_str(), now, |_| true, false, &mut push);
                unordered = true;
            }
        }
        unordered
    }

    fn to_lock(&self, id: u32) -> Lock {
        let Some(e) = self.entry(id) else {
            // Unreachable while the indexes are consistent; never panic on it.
            return NewLock::new(ResourcePath::root()).into_lock(SystemTime::UNIX_EPOCH, 0);
        };
        Lock {
            token: e.token.render(),
            root: ResourcePath::from_shared(e.root.clone(), e.flags & TRAILING_SLASH != 0),
            scope: e.scope(),
            depth: if e.is_infinity() {
                LockDepth::Infinity
            } else {
                LockDepth::Zero
            },
            owner: e.owner.clone(),
            principal: e.principal.clone(),
            timeout: e.timeout(),
            expires_at: e.expires_at,
            fence: e.fence,
        }
    }

    fn create(
        &mut self,
        lock: NewLock,
        keys: NewKeys,
        now: SystemTime,
    ) -> Result<CreateOutcome, LockStoreError> {
        let NewKeys {
            token,
            token_hash,
            root_hash,
            parent_hash,
        } = keys;
        if self.find_token_hashed(token.key(), token_hash).is_some() {
            return Err(LockStoreError::backend(format!(
                "lock token {} is already in use",
                lock.token
            )));
        }
        let scope = lock.scope;
        let mut conflicts = Found::default();
        let incompatible = |e: &Entry| !e.scope().compatible_with(scope);
        let mut push = |id| conflicts.push(self.to_lock(id));
        let lazy = Now::at(now);
        self.covering(
            lock.root.as_str(),
            Some(root_hash),
            &lazy,
            incompatible,
            &mut push,
        );
        if lock.depth == LockDepth::Infinity {
            self.below(lock.root.as_str(), &lazy, incompatible, false, &mut push);
        }
        if !conflicts.locks.is_empty() {
            let infinity = lock.depth == LockDepth::Infinity;
            return Ok(CreateOutcome::Conflict(conflicts.into_sorted(infinity)));
        }
        if let Some(limit) = lock.principal_quota {
            let (quota, held) = match lock.principal.as_deref() {
                Some(p) => (
                    Quota::Principal,
                    self.principals.get(p).copied().unwrap_or(0),
                ),
                None => {
                    let anonymous = self.slots.iter().flatten();
                    let n = anonymous.filter(|e| e.principal.is_none()).count();
                    (Quota::Anonymous, u32::try_from(n).unwrap_or(u32::MAX))
                }
            };
            if held >= limit {
                return Ok(CreateOutcome::QuotaExceeded { quota, limit });
            }
        }
        if let Some(limit) = lock.resource_quota {
            let mut held = 0u32;
            self.each_on_root(lock.root.as_str(), |_, _| held = held.saturating_add(1));
            if held >= limit {
                let quota = Quota::Resource;
                return Ok(CreateOutcome::QuotaExceeded { quota, limit });
            }
        }
        if let Some(limit) = lock.store_quota {
            let live = self.slots.len() - self.free.len();
            if live >= limit as usize {
                let quota = Quota::Store;
                return Ok(CreateOutcome::QuotaExceeded { quota, limit });
            }
        }
        if self.slots.len() >= NIL as usize && self.free.is_empty() {
            return Err(LockStoreError::backend("memory lock store is full"));
        }
        let fence = self
            .fence
            .checked_add(1)
            .ok_or_else(|| LockStoreError::backend("fencing numbers exhausted"))?;
        self.fence = fence;
        let lock = lock.into_lock(now, fence);
        let mut flags = 0;
        if lock.scope == LockScope::Shared {
            flags |= SHARED;
        }
        if lock.depth == LockDepth::Infinity {
            flags |= INFINITY;
        }
        if lock.root.has_trailing_slash() && !lock.root.is_root() {
            flags |= TRAILING_SLASH;
        }
        let mut entry = Entry {
            token,
            root: match lock.root.shared_key() {
                Some(key) => key.clone(),
                None => Arc::from(lock.root.as_str()),
            },
            root_hash,
            owner: lock.owner.clone(),
            principal: lock.principal.clone(),
            expires_at: lock.expires_at,
            fence,
            timeout_secs: 0,
            next: NIL,
            flags,
        };
        entry.set_timeout(lock.timeout);
        self.insert_hashed(entry, token_hash, parent_hash);
        Ok(CreateOutcome::Created(lock))
    }

    /// Put `entry` into a slot and every index.
    fn insert(&mut self, entry: Entry) -> u32 {
        let token_hash = self.hash_token(entry.token.key());
        let parent_hash = key_parent(&entry.root).map_or(0, |p| self.hashers.dir(p));
        self.insert_hashed(entry, token_hash, parent_hash)
    }

    /// [`insert`](Self::insert) with the token's and the root's collection's hashes already
    /// computed.
    fn insert_hashed(&mut self, mut entry: Entry, token_hash: u64, parent_hash: u64) -> u32 {
        let root_hash = entry.root_hash;
        // Share the root string with the other locks on the same root.
        let head = self.root_head_hashed(&entry.root, root_hash);
        match head.and_then(|h| self.entry(h)) {
            Some(h) => {
                entry.root = h.root.clone();
                // Second in the chain: the head (and so both root indexes) stay as they are.
                entry.next = h.next;
            }
            None => {
                self.string_bytes += entry.root.len() + ARC_HEADER;
                entry.next = NIL;
            }
        }
        // Share the principal string with its counter.
        if let Some(p) = entry.principal.take() {
            let key = match self.principals.get_key_value(&*p) {
                Some((k, _)) => k.clone(),
                None => {
                    self.string_bytes += p.len() + ARC_HEADER;
                    p
                }
            };
            *self.principals.entry(key.clone()).or_insert(0) += 1;
            entry.principal = Some(key);
        }
        if let Some(o) = &entry.owner {
            self.string_bytes += o.len() + ARC_HEADER;
        }
        if let Token::Other(t) = &entry.token {
            self.string_bytes += t.len() + ARC_HEADER;
        }
        let expires_at = entry.expires_at;
        let new_root = head.is_none().then(|| entry.root.clone());
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(entry);
                id
            }
            None => {
                self.slots.push(Some(entry));
                (self.slots.len() - 1) as u32
            }
        };
        self.live += 1;
        if let Some(d) = infinity_depth(&self.slots, id) {
            if self.infinity_at_depth.len() <= d {
                self.infinity_at_depth.resize(d + 1, 0);
            }
            self.infinity_at_depth[d] += 1;
            if let Some(fnv) = slot(&self.slots, id).map(|e| fnv1a(FNV_OFFSET, e.root.as_bytes())) {
                self.count_infinity(fnv, true);
                self.infinity_list.add(fnv, id);
            }
        }
        let (slots, hashers) = (&self.slots, &self.hashers);
        self.by_token.insert_unique(token_hash, id, |&i| {
            slot(slots, i).map_or(0, |e| hashers.token(e.token.key()))
        });
        match head {
            Some(h) => {
                if let Some(e) = self.slots.get_mut(h as usize).and_then(Option::as_mut) {
                    e.next = id;
                }
            }
            None => {
                self.by_root.insert_unique(root_hash.table(), id, |&i| {
                    slot(slots, i).map_or(0, |e| e.root_hash.table())
                });
                if let Some(root) = new_root {
                    self.roots.add(&root);
                    let hashers = &self.hashers;
                    self.dirs.add(id, &root, parent_hash, |p| hashers.dir(p));
                    if self.roots.needs_growth() {
                        // Every head is in its slot: `by_root` and the slots agree.
                        let heads = self.by_root.iter().map(|&i| slot(slots, i));
                        self.roots
                            .rebuild(heads.map(|e| e.map_or("", |e| &*e.root)));
                    }
                }
            }
        }
        if let Some(at) = expires_at {
            self.due.push(Reverse((at, id)));
        }
        id
    }

    /// Take lock `id` out of its slot and every index.
    fn remove(&mut self, id: u32) -> Option<Entry> {
        let token_hash = self.hash_token(self.entry(id)?.token.key());
        self.remove_hashed(id, token_hash)
    }

    /// [`remove`](Self::remove) with the token's hash already computed.
    fn remove_hashed(&mut self, id: u32, token_hash: u64) -> Option<Entry> {
        // Look the entry up in the indexes while it is still in its slot.
        let e = self.entry(id)?;
        let root_hash = e.root_hash;
        let head = self.root_head_hashed(&e.root, root_hash);
        let infinity =
            infinity_depth(&self.slots, id).map(|d| (d, fnv1a(FNV_OFFSET, e.root.as_bytes())));
        if let Some((d, fnv)) = infinity {
            if let Some(n) = self.infinity_at_depth.get_mut(d) {
                *n -= 1;
            }
            // Keep the vector ending with a depth that holds one: checks stop there.
            while self.infinity_at_depth.last() == Some(&0) {
                self.infinity_at_depth.pop();
            }
            self.count_infinity(fnv, false);
            self.infinity_list
                .remove(id, self.infinity_at_depth.is_empty());
        }
        let entry = self.slots.get_mut(id as usize)?.take()?;
        self.free.push(id);
        self.live -= 1;
        if let Ok(found) = self.by_token.find_entry(token_hash, |&i| i == id) {
            found.remove();
        }
        if head == Some(id) {
            if entry.next == NIL {
                if let Ok(found) = self.by_root.find_entry(root_hash.table(), |&i| i == id) {
                    found.remove();
                }
                self.dirs.remove(id);
                self.roots.remove(&entry.root);
                self.string_bytes -= entry.root.len() + ARC_HEADER;
            } else {
                if let Some(v) = self.by_root.find_mut(root_hash.table(), |&i| i == id) {
                    *v = entry.next;
                }
                self.dirs.replace(id, entry.next);
            }
        } else {
            let mut prev = head.unwrap_or(NIL);
            while let Some(e) = self.entry_mut(prev) {
                if e.next == id {
                    e.next = entry.next;
                    break;
                }
                prev = e.next;
            }
        }
        if let Some(p) = &entry.principal {
            if let Some(n) = self.principals.get_mut(&**p) {
                *n -= 1;
                if *n == 0 {
                    self.principals.remove(&**p);
                    self.string_bytes -= p.len() + ARC_HEADER;
                }
            }
        }
        if let Some(o) = &entry.owner {
            self.string_bytes -= o.len() + ARC_HEADER;
        }
        if let Token::Other(t) = &entry.token {
            self.string_bytes -= t.len() + ARC_HEADER;
        }
        Some(entry)
    }

    fn set_timeout(&mut self, id: u32, timeout: LockTimeout, expires_at: Option<SystemTime>) {
        if let Some(e) = self.entry_mut(id) {
            e.set_timeout(timeout);
            e.expires_at = expires_at;
            if let Some(at) = expires_at {
                self.due.push(Reverse((at, id)));
            }
        }
    }

    fn has_due(&self, now: SystemTime) -> bool {
        self.due.peek().is_some_and(|Reverse((at, _))| *at <= now)
    }

    /// Drop every lock whose expiry has passed.
    fn purge(&mut self, now: SystemTime) {
        let mut removed = false;
        while let Some(&Reverse((at, id))) = self.due.peek() {
            if at > now {
                break;
            }
            self.due.pop();
            // Act only if the slot still holds a lock expiring at exactly this instant; other
            // entries were left behind by a refresh, an unlock or a reused slot.
            if self.entry(id).is_some_and(|e| e.expires_at == Some(at)) {
                self.remove(id);
                removed = true;
                #[cfg(feature = "tracing")]
                tracing::debug!(lock_id = id, "tower-locks: lock expired");
            }
        }
        if removed {
            self.maybe_compact();
        }
    }

    /// Give memory back once most of it is unused; amortised O(1) per removal.
    fn maybe_compact(&mut self) {
        if self.live == 0 {
            if !self.slots.is_empty() || !self.due.is_empty() {
                let fence = self.fence;
                let hashers = self.hashers.clone();
                *self = Inner {
                    fence,
                    hashers,
                    roots: self.roots.cleared(),
                    ..Inner::default()
                };
            }
            return;
        }
        if self.slots.len() >= 1024 && self.live * 4 < self.slots.len() {
            self.rebuild();
        } else if self.due.len() >= 1024 && self.due.len() > 2 * self.live {
            let slots = &self.slots;
            self.due.retain(|Reverse((at, id))| {
                slot(slots, *id).is_some_and(|e| e.expires_at == Some(*at))
            });
            self.due.shrink_to_fit();
        }
    }

    /// Re-insert every live lock into fresh, right-sized structures.
    fn rebuild(&mut self) {
        let fence = self.fence;
        let hashers = self.hashers.clone();
        let roots = self.roots.cleared();
        let old = std::mem::take(self);
        *self = Inner {
            fence,
            hashers,
            roots,
            slots: Vec::with_capacity(old.live),
            ..Inner::default()
        };
        for entry in old.slots.into_iter().flatten() {
            self.insert(entry);
        }
    }

    fn approx_memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let table = |t: &HashTable<u32>| {
            let buckets = if t.capacity() == 0 {
                0
            } else {
                (t.capacity() * 8 / 7).next_power_of_two()
            };
            buckets * (size_of::<u32>() + 1)
        };
        let principals = self.principals.capacity() * (size_of::<(Arc<str>, u32)>() + 1);
        self.slots.capacity() * size_of::<Option<Entry>>()
            + self.free.capacity() * size_of::<u32>()
            + table(&self.by_token)
            + table(&self.by_root)
            + self.dirs.memory_bytes()
            + self.roots.memory_bytes()
            + self.due.capacity() * size_of::<Reverse<(SystemTime, u32)>>()
            + self.infinity_list.locks.capacity() * size_of::<(u64, u32)>()
            + principals
            + self.string_bytes
    }
}

/// Depth-infinity locks that [`InfinityList`] keeps, at most.
const SMALL_INFINITY: usize = 64;

/// Every stored depth-infinity lock as `(FNV-1a hash of its root, id)`, in no particular
/// order, while there are at most [`SMALL_INFINITY`]: a covering check then finds the
/// locks on an ancestor with a short scan instead of a SipHash lookup in the root index. The
/// scan is bounded, so a crafted root whose hash collides costs at most one comparison per
/// kept lock. With more locks the list is dropped and the root index serves, until no
/// depth-infinity lock is left (or the store is rebuilt).
#[derive(Debug)]
struct InfinityList {
    complete: bool,
    locks: Vec<(u64, u32)>,
}

impl Default for InfinityList {
    fn default() -> Self {
        Self {
            complete: true,
            locks: Vec::new(),
        }
    }
}

impl InfinityList {
    /// The list, when it holds every depth-infinity lock.
    fn get(&self) -> Option<&[(u64, u32)]> {
        self.complete.then_some(&self.locks[..])
    }

    fn add(&mut self, fnv: u64, id: u32) {
        if !self.complete {
            return;
        }
        if self.locks.len() < SMALL_INFINITY {
            self.locks.push((fnv, id));
        } else {
            *self = Self {
                complete: false,
                locks: Vec::new(),
            };
        }
    }

    /// Forget lock `id`; `none_left`: it was the last depth-infinity lock.
    fn remove(&mut self, id: u32, none_left: bool) {
        if let Some(i) = self.locks.iter().position(|&(_, x)| x == id) {
            self.locks.swap_remove(i);
        }
        if none_left {
            *self = Self::default();
        }
    }
}

/// Lock ids found by a query (or other small values): the first `N` on the stack, the rest in
/// a `Vec`.
struct Ids<T = u32, const N: usize = 32> {
    inline: [T; N],
    len: usize,
    spill: Vec<T>,
}

impl<T: Copy + Default, const N: usize> Default for Ids<T, N> {
    fn default() -> Self {
        Self {
            inline: [T::default(); N],
            len: 0,
            spill: Vec::new(),
        }
    }
}

impl<T: Copy, const N: usize> Ids<T, N> {
    fn push(&mut self, id: T) {
        if self.len < N {
            self.inline[self.len] = id;
        } else {
            self.spill.push(id);
        }
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.inline[..self.len.min(N)]
            .iter()
            .chain(&self.spill)
            .copied()
    }

    /// Sort by `order`, so that [`iter`](Self::iter) gives the values in that order.
    fn sort_by(&mut self, mut order: impl FnMut(&T, &T) -> std::cmp::Ordering) {
        if self.len <= N {
            self.inline[..self.len].sort_unstable_by(order);
            return;
        }
        // Spilled (rare): sort them all in one `Vec`, then put the first `N` back.
        let mut all: Vec<T> = self.iter().collect();
        all.sort_unstable_by(&mut order);
        self.spill = all.split_off(N);
        self.inline.copy_from_slice(&all);
    }
}

/// Locks reported for one target come in root order (see [`Inner::covering`] and
/// [`Inner::below`] when asked for it), so they need sorting only where one root holds several
/// locks.
#[derive(Default)]
struct Found {
    locks: Vec<Lock>,
    /// Two consecutive locks share a root.
    shared_root: bool,
}

impl Found {
    fn push(&mut self, lock: Lock) {
        if let Some(last) = self.locks.last() {
            // The store gives every lock on a root the same buffer.
            self.shared_root |= last.root.same_buffer(&lock.root);
        }
        self.locks.push(lock);
    }

    /// Sorted by root, then token. With `unordered` (several targets, or roots found in no
    /// particular order), sort everything and drop repeats (a lock reported for several
    /// targets).
    // Inlined into `query_sync`, as it was when that was its only caller: the call costs an
    // unlocked check 17 instructions.
    #[inline(always)]
    fn into_sorted(mut self, unordered: bool) -> Vec<Lock> {
        let by_root_then_token =
            |a: &Lock, b: &Lock| a.root.cmp(&b.root).then_with(|| a.token.cmp(&b.token));
        if self.locks.len() < 2 {
            // Nothing to order or to merge.
        } else if unordered {
            self.locks.sort_unstable_by(by_root_then_token);
            self.locks.dedup_by(|a, b| a.token == b.token);
        } else if self.shared_root {
            self.locks.sort_unstable_by(by_root_then_token);
        }
        debug_assert!(self
            .locks
            .is_sorted_by(|a, b| by_root_then_token(a, b).is_lt()));
        self.locks
    }
}

/// The time of a step, read from the clock at most once and only when first needed.
struct Now<'a> {
    clock: Option<&'a dyn Clock>,
    at: Cell<Option<SystemTime>>,
}

impl<'a> Now<'a> {
    /// Read `clock` when first asked.
    fn lazy(clock: &'a dyn Clock) -> Self {
        Self {
            clock: Some(clock),
            at: Cell::new(None),
        }
    }

    /// Already read.
    fn at(now: SystemTime) -> Self {
        Self {
            clock: None,
            at: Cell::new(Some(now)),
        }
    }

    fn get(&self) -> SystemTime {
        if let Some(at) = self.at.get() {
            return at;
        }
        let at = self.clock.map_or(SystemTime::UNIX_EPOCH, |c| c.now());
        self.at.set(Some(at));
        at
    }

    /// The time, if it was read.
    fn read(&self) -> Option<SystemTime> {
        self.at.get()
    }
}

/// Slots of the depth-infinity filter.
const INFINITY_FILTER: usize = 1024;
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, continued from `h` over `bytes` (so a prefix's hash extends to the whole key).
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The root depth (segments) of lock `id`, if it is a depth-infinity lock.
fn infinity_depth(slots: &[Option<Entry>], id: u32) -> Option<usize> {
    let e = slot(slots, id).filter(|e| e.is_infinity())?;
    Some(if &*e.root == "/" {
        0
    } else {
        e.root.bytes().filter(|&b| b == b'/').count()
    })
}

fn slot(slots: &[Option<Entry>], id: u32) -> Option<&Entry> {
    slots.get(id as usize).and_then(Option::as_ref)
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

    fn check_consistent(g: &Inner) {
        let live: Vec<u32> = (0..g.slots.len() as u32)
            .filter(|&i| g.entry(i).is_some())
            .collect();
        assert_eq!(live.len(), g.live);
        assert_eq!(g.by_token.len(), g.live);
        assert_eq!(g.free.len() + g.live, g.slots.len());
        let mut on_roots = 0;
        for &id in &live {
            let token = g
                .entry(id)
                .map(|e| e.token.render().to_string())
                .unwrap_or_default();
            assert_eq!(g.find_token(&token), Some(id), "token index");
            let e = g.entry(id).unwrap();
            assert_eq!(e.root_hash, g.hashers.path(&e.root), "kept root hash");
        }
        let heads: Vec<(u32, &str)> = g
            .by_root
            .iter()
            .map(|&head| (head, &*g.entry(head).expect("a head in its slot").root))
            .collect();
        for &(head, root) in &heads {
            assert_eq!(g.root_head(root), Some(head), "root {root}: heads disagree");
            g.each_on_root(root, |_, e| {
                assert_eq!(&*e.root, root);
                on_roots += 1;
            });
            assert!(
                g.roots.may_contain(root),
                "root filter: false negative for {root}"
            );
        }
        assert_eq!(on_roots, g.live);
        assert_eq!(g.roots.len(), heads.len(), "roots counted in the filter");
        g.dirs.assert_consistent(&heads, |p| g.hashers.dir(p));
        let infinity = live
            .iter()
            .filter(|&&i| g.entry(i).is_some_and(|e| e.is_infinity()))
            .count();
        assert_eq!(
            g.infinity_at_depth
                .iter()
                .map(|&n| n as usize)
                .sum::<usize>(),
            infinity
        );
        if let Some(list) = g.infinity_list.get() {
            let mut listed: Vec<(u64, u32)> = list.to_vec();
            let mut want: Vec<(u64, u32)> = live
                .iter()
                .filter_map(|&i| g.entry(i).filter(|e| e.is_infinity()).map(|e| (i, e)))
                .map(|(i, e)| (fnv1a(FNV_OFFSET, e.root.as_bytes()), i))
                .collect();
            listed.sort_unstable();
            want.sort_unstable();
            assert_eq!(listed, want, "infinity list");
        } else {
            assert!(
                infinity > 0,
                "the list is dropped only while there are such locks"
            );
        }
        assert_eq!(
            g.infinity_filter.iter().map(|&n| n as usize).sum::<usize>(),
            infinity,
            "infinity filter"
        );
        let per_principal: usize = g.principals.values().map(|&n| n as usize).sum();
        let with_principal = live
            .iter()
            .filter(|&&i| g.entry(i).is_some_and(|e| e.principal.is_some()))
            .count();
        assert_eq!(per_principal, with_principal);
    }

    #[test]
    fn uuid_tokens_are_stored_compactly_and_round_trip() {
        let t = crate::new_token();
        assert!(matches!(Token::parse(&t), Token::Uuid(_)));
        assert_eq!(Token::parse(&t).render(), t);
        let upper = t.to_uppercase().replace("URN:UUID:", "urn:uuid:");
        assert!(matches!(Token::parse(&upper), Token::Other(_)));
        assert_eq!(Token::parse(&upper).render(), upper);
        for odd in [
            "",
            "urn:uuid:",
            "opaquelocktoken:x",
            "urn:uuid:zzzzzzzz-0000-0000-0000-000000000000",
        ] {
            assert_eq!(Token::parse(odd).render(), odd);
        }
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

    /// Many submitted tokens, the matching ones last: every one is compared.
    #[tokio::test]
    async fn check_compares_every_submitted_token() {
        let store = MemoryLockStore::new();
        let mut held = Vec::new();
        for i in 0..3 {
            let req = NewLock::new(p(&format!("/dir/{i}")));
            held.push(created(store.create(req).await.unwrap()));
        }
        let query = LockQuery::new().subtree(p("/dir"));
        let strangers: Vec<LockToken> = (0..20).map(|_| crate::new_token()).collect();
        let mut tokens: Vec<&str> = strangers.iter().map(LockToken::as_str).collect();
        tokens.push(held[2].token.as_str());
        tokens.push(held[0].token.as_str());
        let outcome = store
            .check(&query, Submission::new(&tokens, None))
            .await
            .unwrap();
        assert_eq!(outcome.unsatisfied, vec![held[1].clone()]);
        assert_eq!(outcome.fence, Some(held[2].fence));
        let outcome = store
            .check(&query, Submission::new(&tokens[..20], None))
            .await
            .unwrap();
        assert_eq!(outcome.unsatisfied.len(), 3);
        assert_eq!(outcome.fence, None);
    }

    #[tokio::test]
    async fn many_infinity_locks_are_all_found() {
        let store = MemoryLockStore::new();
        // Far more depth-infinity roots than the infinity filter has slots (and two shared
        // locks on some): colliding roots share a counter, and none may be forgotten.
        let mut locks = Vec::new();
        for i in 0..600 {
            let root = format!("/a{}/c{i}", i % 7);
            let req = NewLock::new(p(&root))
                .depth(LockDepth::Infinity)
                .scope(LockScope::Shared);
            locks.push(created(store.create(req).await.unwrap()));
            if i % 5 == 0 {
                let req = NewLock::new(p(&root))
                    .depth(LockDepth::Infinity)
                    .scope(LockScope::Shared);
                locks.push(created(store.create(req).await.unwrap()));
            }
        }
        check_consistent(&store.read());
        let covering = |i: usize| LockQuery::new().covering(p(&format!("/a{}/c{i}/x/y", i % 7)));
        for i in 0..600 {
            let want = if i % 5 == 0 { 2 } else { 1 };
            assert_eq!(store.query(&covering(i)).await.unwrap().len(), want, "c{i}");
        }
        // Unlock every other lock: the filter forgets none of the ones left.
        for l in locks.iter().step_by(2) {
            let access = TokenAccess::new(&l.token, &l.root, None);
            assert!(matches!(
                store.unlock(access).await.unwrap(),
                TokenOutcome::Done(_)
            ));
        }
        check_consistent(&store.read());
        for l in locks.iter().skip(1).step_by(2) {
            let q = LockQuery::new().covering(p(&format!("{}/below", l.root.as_str())));
            let found = store.query(&q).await.unwrap();
            assert!(
                found.iter().any(|f| f.token == l.token),
                "{}",
                l.root.as_str()
            );
        }
    }

    #[tokio::test]
    async fn purge_frees_everything() {
        let clock = Arc::new(ManualClock::new());
        let store = MemoryLockStore::with_clock(clock.clone());
        for i in 0..2000 {
            let req = NewLock::new(p(&format!("/d{}/f{i}", i % 17)))
                .principal(format!("u{}", i % 5))
                .owner("<href>x</href>")
                .timeout(LockTimeout::Seconds(10 + (i % 3)));
            created(store.create(req).await.unwrap());
        }
        // Refreshes leave stale heap entries behind.
        let some = store
            .query(&LockQuery::new().subtree(p("/d3")))
            .await
            .unwrap();
        for l in &some {
            let access = TokenAccess::new(&l.token, &l.root, l.principal.as_deref());
            let out = store
                .refresh(access, LockTimeout::Seconds(20))
                .await
                .unwrap();
            assert!(matches!(out, TokenOutcome::Done(_)));
        }
        assert_eq!(store.len(), 2000);
        check_consistent(&store.read());
        clock.advance(Duration::from_secs(12));
        assert_eq!(store.len(), some.len());
        check_consistent(&store.read());
        clock.advance(Duration::from_secs(10));
        assert_eq!(store.len(), 0);
        {
            let g = store.read();
            check_consistent(&g);
            assert!(g.slots.is_empty() && g.free.is_empty() && g.due.is_empty());
            assert!(g.by_token.is_empty() && g.by_root.is_empty() && g.dirs.len() == 0);
            assert!(g.principals.is_empty());
            assert_eq!(g.string_bytes, 0);
            assert_eq!(g.fence, 2000, "fencing numbers survive a reset");
        }
        after_reset_or_rebuild(&store, "/d3/again").await;
    }

    /// The store hashes tokens and roots with its own copy of the keys before taking the
    /// lock: after the inner state was reset or rebuilt, the verbs must still find what they
    /// hashed.
    async fn after_reset_or_rebuild(store: &MemoryLockStore, path: &str) {
        assert_eq!(
            store.hashers.uuid,
            store.read().hashers.uuid,
            "one set of keys"
        );
        let path = p(path);
        let lock = created(store.create(NewLock::new(path.clone())).await.unwrap());
        let conflict = store.create(NewLock::new(path.clone())).await.unwrap();
        assert!(
            matches!(conflict, CreateOutcome::Conflict(_)),
            "{conflict:?}"
        );
        let access = TokenAccess::new(&lock.token, &path, None);
        let out = store
            .refresh(access, LockTimeout::Seconds(30))
            .await
            .unwrap();
        assert!(matches!(out, TokenOutcome::Done(_)), "{out:?}");
        let out = store.unlock(access).await.unwrap();
        assert!(matches!(out, TokenOutcome::Done(_)), "{out:?}");
        assert_eq!(store.get(&lock.token).await.unwrap(), None);
        check_consistent(&store.read());
    }

    #[tokio::test]
    async fn compaction_keeps_locks_and_indexes() {
        let store = MemoryLockStore::new();
        let mut kept = Vec::new();
        for i in 0..4000 {
            let l = created(
                store
                    .create(NewLock::new(p(&format!("/c/{i}"))).scope(LockScope::Shared))
                    .await
                    .unwrap(),
            );
            if i % 10 == 0 {
                kept.push(l);
            }
        }
        // Shared locks on one root exercise the chains.
        for _ in 0..5 {
            created(
                store
                    .create(NewLock::new(p("/c/0")).scope(LockScope::Shared))
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(store.remove_subtree(&p("/c/1")).await.unwrap(), 1);
        for i in (0..4000).filter(|i| i % 10 != 0 && *i != 1) {
            let n = store.remove_subtree(&p(&format!("/c/{i}"))).await.unwrap();
            assert_eq!(n, 1);
        }
        {
            let g = store.read();
            check_consistent(&g);
            assert!(
                g.slots.len() < 4000,
                "slab was compacted: {}",
                g.slots.len()
            );
        }
        for l in &kept {
            assert_eq!(store.get(&l.token).await.unwrap().as_ref(), Some(l));
        }
        assert_eq!(store.len(), kept.len() + 5);
        let all = store
            .query(&LockQuery::new().subtree(p("/c")))
            .await
            .unwrap();
        assert_eq!(all.len(), kept.len() + 5);
        after_reset_or_rebuild(&store, "/c/new").await;
        // Unlock the survivors of the rebuild: found by the token hashed outside the lock,
        // taken out of the root index by the root hash each entry kept.
        for l in &kept {
            let out = store
                .unlock(TokenAccess::new(&l.token, &l.root, None))
                .await
                .unwrap();
            assert!(matches!(out, TokenOutcome::Done(_)), "{out:?}");
        }
        assert_eq!(store.len(), 5);
        check_consistent(&store.read());
    }

    #[tokio::test]
    async fn subtree_query_visits_only_the_subtree() {
        let store = MemoryLockStore::new();
        for i in 0..100_000u32 {
            let path = format!("/t{}/d{}/f{i}", i % 100, i % 1000);
            created(store.create(NewLock::new(p(&path))).await.unwrap());
        }
        created(store.create(NewLock::new(p("/t7x/d7/f7"))).await.unwrap());
        let examined = || store.read().examined.load(Ordering::Relaxed);
        let before = examined();
        let found = store
            .query(&LockQuery::new().subtree(p("/t7/d7")))
            .await
            .unwrap();
        assert_eq!(found.len(), 100);
        assert!(found.iter().all(|l| l.root.as_str().starts_with("/t7/d7/")));
        // More than fit inline in `Ids`: every one reported once, in root order.
        let mut tokens: Vec<_> = found.iter().map(|l| l.token.clone()).collect();
        tokens.sort();
        tokens.dedup();
        assert_eq!(tokens.len(), 100);
        assert!(found.is_sorted_by(|a, b| a.root <= b.root));
        assert_eq!(
            examined() - before,
            100,
            "only the subtree's locks were looked at"
        );
        let before = examined();
        let found = store
            .query(&LockQuery::new().covering(p("/t7/d7/f7/deeper/still")))
            .await
            .unwrap();
        assert!(
            found.is_empty(),
            "depth-0 lock on an ancestor does not cover"
        );
        assert!(
            examined() - before <= 1,
            "a covering check looks only at the ancestors (here: at none, as no ancestor \
             depth holds a depth-infinity lock)"
        );
        let bytes = store.approx_memory_bytes() / store.len();
        assert!(bytes <= 300, "about {bytes} bytes per lock");
        check_consistent(&store.read());
    }

    #[test]
    fn entry_is_small() {
        assert!(std::mem::size_of::<Option<Entry>>() <= 112);
    }

    fn covering_count(store: &MemoryLockStore, path: &str) -> usize {
        store.query_sync(&LockQuery::new().covering(p(path))).len()
    }

    #[tokio::test]
    async fn many_depth_infinity_locks_leave_the_short_list_for_the_root_index() {
        let store = MemoryLockStore::new();
        let infinity = |root: String| NewLock::new(p(&root)).depth(LockDepth::Infinity);
        let n = SMALL_INFINITY + 10;
        let mut locks = Vec::new();
        for i in 0..n {
            locks.push(created(
                store.create(infinity(format!("/c{i}"))).await.unwrap(),
            ));
            let listed = store.read().infinity_list.get().map(<[_]>::len);
            assert_eq!(listed, (i < SMALL_INFINITY).then_some(i + 1), "after {i}");
            assert_eq!(covering_count(&store, &format!("/c{i}/x/y")), 1);
        }
        check_consistent(&store.read());
        for lock in locks.drain(..n - 2) {
            let access = TokenAccess::new(&lock.token, &lock.root, None);
            assert!(matches!(
                store.unlock(access).await.unwrap(),
                TokenOutcome::Done(_)
            ));
        }
        // Two are left: the list stays dropped, and the root index still finds them.
        assert!(store.read().infinity_list.get().is_none());
        check_consistent(&store.read());
        assert_eq!(covering_count(&store, &format!("/c{}/x", n - 1)), 1);
        assert_eq!(covering_count(&store, "/c0/x"), 0);
        for lock in locks.drain(..) {
            let access = TokenAccess::new(&lock.token, &lock.root, None);
            assert!(matches!(
                store.unlock(access).await.unwrap(),
                TokenOutcome::Done(_)
            ));
        }
        // None is left: the list is whole again, and fills from the next one.
        created(store.create(NewLock::new(p("/keep"))).await.unwrap());
        assert_eq!(store.read().infinity_list.get(), Some(&[][..]));
        created(store.create(infinity("/d".into())).await.unwrap());
        assert_eq!(store.read().infinity_list.get().map(<[_]>::len), Some(1));
        assert_eq!(covering_count(&store, "/d/x"), 1);
        check_consistent(&store.read());
    }

    /// The short list is found by hash; a kept lock whose hash matches an ancestor's but whose
    /// root is another path is not reported (a hash collision).
    #[tokio::test]
    async fn the_short_list_compares_roots_not_only_hashes() {
        let store = MemoryLockStore::new();
        let lock = NewLock::new(p("/y")).depth(LockDepth::Infinity);
        created(store.create(lock).await.unwrap());
        created(
            store
                .create(NewLock::new(p("/x")).depth(LockDepth::Infinity))
                .await
                .unwrap(),
        );
        assert_eq!(covering_count(&store, "/x/doc"), 1);
        {
            // Give the lock on /y the hash of /x, as a collision would.
            let mut g = store.write();
            let x = fnv1a(FNV_OFFSET, b"/x");
            let y = fnv1a(FNV_OFFSET, b"/y");
            for entry in &mut g.infinity_list.locks {
                if entry.0 == y {
                    entry.0 = x;
                }
            }
        }
        assert_eq!(covering_count(&store, "/x/doc"), 1, "only the lock on /x");
        assert_eq!(
            store.query_sync(&LockQuery::new().covering(p("/x/doc")))[0].root,
            p("/x")
        );
    }
}
