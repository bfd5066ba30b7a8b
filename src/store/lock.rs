//! The lock value types shared by every store.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::LockToken;
use crate::ResourcePath;

/// Exclusive or shared (RFC 4918 §6.2, §14.13).
///
/// ```
/// use tower_locks::{LockScope, NewLock, ResourcePath};
///
/// let new = NewLock::new(ResourcePath::parse("/doc").unwrap());
/// assert_eq!(new.scope, LockScope::Exclusive); // the default
/// assert_eq!(new.scope(LockScope::Shared).scope, LockScope::Shared);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockScope {
    /// Conflicts with every other lock on the same resource.
    Exclusive,
    /// Compatible with other shared locks.
    Shared,
}

impl LockScope {
    /// RFC 4918 §9.10.5: two locks are compatible only when both are shared.
    ///
    /// ```
    /// use tower_locks::LockScope::{Exclusive, Shared};
    ///
    /// assert!(Shared.compatible_with(Shared));
    /// assert!(!Shared.compatible_with(Exclusive));
    /// assert!(!Exclusive.compatible_with(Shared));
    /// assert!(!Exclusive.compatible_with(Exclusive));
    /// ```
    pub fn compatible_with(self, other: LockScope) -> bool {
        self == LockScope::Shared && other == LockScope::Shared
    }
}

/// Depth 0 (the resource, and for a collection its membership) or infinity (the whole subtree).
///
/// ```
/// use tower_locks::{Lock, LockDepth, ResourcePath};
///
/// let p = |s| ResourcePath::parse(s).unwrap();
/// let shallow = Lock::builder(p("/coll/")).depth(LockDepth::Zero).build_unstored();
/// let deep = Lock::builder(p("/coll/")).depth(LockDepth::Infinity).build_unstored();
/// assert!(shallow.covers(&p("/coll")) && deep.covers(&p("/coll")));
/// assert!(!shallow.covers(&p("/coll/member")));
/// assert!(deep.covers(&p("/coll/member")));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockDepth {
    /// `Depth: 0`.
    Zero,
    /// `Depth: infinity`.
    Infinity,
}

/// A granted or requested lock lifetime (RFC 4918 §10.7 `TimeType`).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_locks::LockTimeout;
///
/// let t = LockTimeout::Seconds(30);
/// assert_eq!(t.as_duration(), Some(Duration::from_secs(30)));
/// assert_eq!(LockTimeout::Infinite.expiry_from(SystemTime::UNIX_EPOCH), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockTimeout {
    /// `Second-N`.
    Seconds(u32),
    /// `Infinite`: never expires until unlocked.
    Infinite,
}

impl LockTimeout {
    /// The duration, `None` for [`Infinite`](Self::Infinite).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_locks::LockTimeout;
    ///
    /// assert_eq!(LockTimeout::Seconds(600).as_duration(), Some(Duration::from_secs(600)));
    /// assert_eq!(LockTimeout::Infinite.as_duration(), None);
    /// ```
    pub fn as_duration(self) -> Option<Duration> {
        match self {
            LockTimeout::Seconds(s) => Some(Duration::from_secs(u64::from(s))),
            LockTimeout::Infinite => None,
        }
    }

    /// The expiry instant of a lock granted at `now` with this timeout; `None` for
    /// [`Infinite`](Self::Infinite) (and if the instant is not representable).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_locks::LockTimeout;
    ///
    /// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    /// assert_eq!(
    ///     LockTimeout::Seconds(60).expiry_from(now),
    ///     Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_060))
    /// );
    /// assert_eq!(LockTimeout::Infinite.expiry_from(now), None);
    /// ```
    pub fn expiry_from(self, now: SystemTime) -> Option<SystemTime> {
        self.as_duration().and_then(|d| now.checked_add(d))
    }
}

/// A live write lock, as stored.
///
/// Cheap to build and to clone: the token is inline (or shared), the root shares its buffer
/// and the owner and principal are shared strings, so a store that keeps them the same way
/// reports a lock without allocating.
///
/// ```
/// use tower_locks::{Lock, LockDepth, LockScope, ResourcePath};
///
/// let lock = Lock::builder(ResourcePath::parse("/docs/").unwrap())
///     .depth(LockDepth::Infinity)
///     .build_unstored();
/// assert!(lock.covers(&ResourcePath::parse("/docs/a/b").unwrap()));
/// assert!(!lock.covers(&ResourcePath::parse("/docsx").unwrap()));
/// assert_eq!(lock.scope, LockScope::Exclusive);
/// assert!(lock.token.starts_with("urn:uuid:"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// The lock token: an absolute URI, `urn:uuid:<v4>` for locks this crate creates.
    pub token: LockToken,
    /// The lock root: the path through which the resource was addressed in the LOCK request.
    pub root: ResourcePath,
    /// Exclusive or shared.
    pub scope: LockScope,
    /// Depth 0 or infinity.
    pub depth: LockDepth,
    /// The client's `DAV:owner` XML, verbatim (serialised children of `owner`), if any.
    pub owner: Option<Arc<str>>,
    /// The authenticated principal that created the lock, if any (RFC 4918 §6.4).
    pub principal: Option<Arc<str>>,
    /// The timeout granted at creation or at the last refresh.
    pub timeout: LockTimeout,
    /// When the lock expires; `None` for an infinite lock.
    pub expires_at: Option<SystemTime>,
    /// A fencing number: grows with every grant in the store, so storage behind the layer can
    /// reject writers holding an older grant.
    pub fence: u64,
}

impl Lock {
    /// Start building a lock value on `root` (exclusive, depth 0, 600 s by default).
    ///
    /// Stores create locks through [`LockStore::create`](crate::LockStore::create); this
    /// builder is for tests, renderers and custom stores.
    ///
    /// ```
    /// use tower_locks::{Lock, LockDepth, LockScope, LockTimeout, ResourcePath};
    ///
    /// let lock = Lock::builder(ResourcePath::parse("/doc").unwrap()).build_unstored();
    /// assert_eq!(lock.scope, LockScope::Exclusive);
    /// assert_eq!(lock.depth, LockDepth::Zero);
    /// assert_eq!(lock.timeout, LockTimeout::Seconds(600));
    /// assert!(lock.expires_at.is_some());
    /// ```
    pub fn builder(root: ResourcePath) -> NewLock {
        NewLock::new(root)
    }

    /// Whether `path` is in this lock's scope: the root itself, or (depth infinity) below it.
    ///
    /// ```
    /// use tower_locks::{Lock, LockDepth, ResourcePath};
    ///
    /// let p = |s| ResourcePath::parse(s).unwrap();
    /// let lock = Lock::builder(p("/docs")).depth(LockDepth::Infinity).build_unstored();
    /// assert!(lock.covers(&p("/docs/")));
    /// assert!(lock.covers(&p("/docs/a/b")));
    /// assert!(!lock.covers(&p("/docsx")));
    /// assert!(!lock.covers(&p("/"))); // never an ancestor
    /// ```
    pub fn covers(&self, path: &ResourcePath) -> bool {
        self.root == *path || (self.depth == LockDepth::Infinity && self.root.is_ancestor_of(path))
    }

    /// Whether the lock has expired at `now` (expiry instant included).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_locks::{Lock, LockTimeout, ResourcePath};
    ///
    /// let granted = SystemTime::UNIX_EPOCH;
    /// let lock = Lock::builder(ResourcePath::parse("/doc").unwrap())
    ///     .timeout(LockTimeout::Seconds(60))
    ///     .into_lock(granted, 1);
    /// assert!(!lock.is_expired_at(granted + Duration::from_secs(59)));
    /// assert!(lock.is_expired_at(granted + Duration::from_secs(60)));
    ///
    /// let forever = Lock::builder(ResourcePath::parse("/doc").unwrap())
    ///     .timeout(LockTimeout::Infinite)
    ///     .into_lock(granted, 2);
    /// assert!(!forever.is_expired_at(granted + Duration::from_secs(1 << 40)));
    /// ```
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The timeout left at `now`, rounded up to whole seconds (`Second-0` once expired), never
    /// more than the timeout granted (a `now` read a little before the store's own clock would
    /// say more).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_locks::{Lock, LockTimeout, ResourcePath};
    ///
    /// let granted = SystemTime::UNIX_EPOCH;
    /// let lock = Lock::builder(ResourcePath::parse("/doc").unwrap())
    ///     .timeout(LockTimeout::Seconds(60))
    ///     .into_lock(granted, 1);
    /// let later = granted + Duration::from_millis(10_500);
    /// assert_eq!(lock.remaining_at(later), LockTimeout::Seconds(50)); // 49.5 s, rounded up
    /// assert_eq!(lock.remaining_at(granted + Duration::from_secs(90)), LockTimeout::Seconds(0));
    /// let early = granted - Duration::from_millis(300);
    /// assert_eq!(lock.remaining_at(early), LockTimeout::Seconds(60));
    /// ```
    pub fn remaining_at(&self, now: SystemTime) -> LockTimeout {
        match self.expires_at {
            None => LockTimeout::Infinite,
            Some(at) => {
                let left = at.duration_since(now).unwrap_or_default();
                let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                let secs = u32::try_from(secs).unwrap_or(u32::MAX);
                match self.timeout {
                    LockTimeout::Seconds(granted) => LockTimeout::Seconds(secs.min(granted)),
                    LockTimeout::Infinite => LockTimeout::Seconds(secs),
                }
            }
        }
    }

    /// Whether `principal` may use this lock's token: a lock without a principal may be used by
    /// anyone who submits its token; otherwise only by the same principal.
    ///
    /// ```
    /// use tower_locks::{Lock, ResourcePath};
    ///
    /// let root = ResourcePath::parse("/doc").unwrap();
    /// let anonymous = Lock::builder(root.clone()).build_unstored();
    /// assert!(anonymous.usable_by(None));
    /// assert!(anonymous.usable_by(Some("bob")));
    ///
    /// let alices = Lock::builder(root).principal("alice").build_unstored();
    /// assert!(alices.usable_by(Some("alice")));
    /// assert!(!alices.usable_by(Some("bob")));
    /// assert!(!alices.usable_by(None));
    /// ```
    pub fn usable_by(&self, principal: Option<&str>) -> bool {
        may_use(self.principal.as_deref(), principal)
    }
}

/// Whether `principal` may use a lock created by `owner` (the rule of [`Lock::usable_by`],
/// for stores that judge a lock without building it).
pub(crate) fn may_use(owner: Option<&str>, principal: Option<&str>) -> bool {
    owner.is_none_or(|owner| principal == Some(owner))
}

/// A request for a new lock, handed to [`LockStore::create`](crate::LockStore::create).
///
/// ```
/// use tower_locks::{
///     CreateOutcome, LockDepth, LockScope, LockStore, LockTimeout, MemoryLockStore, NewLock,
///     ResourcePath,
/// };
///
/// # tokio_test::block_on(async {
/// let store = MemoryLockStore::new();
/// let request = NewLock::new(ResourcePath::parse("/docs/").unwrap())
///     .scope(LockScope::Shared)
///     .depth(LockDepth::Infinity)
///     .principal("alice")
///     .timeout(LockTimeout::Seconds(120));
/// let token = request.token.clone();
/// let CreateOutcome::Created(lock) = store.create(request).await.unwrap() else {
///     panic!("nothing conflicts in an empty store");
/// };
/// assert_eq!(lock.token, token);
/// assert_eq!(lock.principal.as_deref(), Some("alice"));
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLock {
    /// A fresh token (`urn:uuid:<v4>`), generated by [`NewLock::new`].
    pub token: LockToken,
    /// The lock root.
    pub root: ResourcePath,
    /// Exclusive or shared.
    pub scope: LockScope,
    /// Depth 0 or infinity.
    pub depth: LockDepth,
    /// The client's owner XML, verbatim.
    pub owner: Option<Arc<str>>,
    /// The creating principal.
    pub principal: Option<Arc<str>>,
    /// The granted timeout (already resolved by the server's policy).
    pub timeout: LockTimeout,
    /// At most this many live locks per principal (counting this one); `None`: no limit.
    /// Locks without a principal count together, as one anonymous principal.
    pub principal_quota: Option<u32>,
    /// At most this many live locks rooted at this lock's root (counting this one); `None`: no
    /// limit. Bounds the shared locks one resource can collect.
    pub resource_quota: Option<u32>,
    /// At most this many live locks in the whole store (counting this one); `None`: no limit.
    pub store_quota: Option<u32>,
}

impl NewLock {
    /// An exclusive depth-0 lock on `root` with a 600-second timeout and a fresh token.
    ///
    /// ```
    /// use tower_locks::{LockDepth, LockScope, LockTimeout, NewLock, ResourcePath};
    ///
    /// let root = ResourcePath::parse("/doc").unwrap();
    /// let a = NewLock::new(root.clone());
    /// assert_eq!((a.scope, a.depth), (LockScope::Exclusive, LockDepth::Zero));
    /// assert_eq!(a.timeout, LockTimeout::Seconds(600));
    /// assert_eq!((a.owner, a.principal, a.principal_quota), (None, None, None));
    /// assert_ne!(a.token, NewLock::new(root).token); // a fresh token every time
    /// ```
    pub fn new(root: ResourcePath) -> Self {
        Self {
            token: new_token(),
            root,
            scope: LockScope::Exclusive,
            depth: LockDepth::Zero,
            owner: None,
            principal: None,
            timeout: LockTimeout::Seconds(600),
            principal_quota: None,
            resource_quota: None,
            store_quota: None,
        }
    }

    /// Set the scope.
    ///
    /// ```
    /// use tower_locks::{LockScope, NewLock, ResourcePath};
    ///
    /// let new = NewLock::new(ResourcePath::root()).scope(LockScope::Shared);
    /// assert_eq!(new.scope, LockScope::Shared);
    /// ```
    #[must_use]
    pub fn scope(mut self, scope: LockScope) -> Self {
        self.scope = scope;
        self
    }

    /// Set the depth.
    ///
    /// ```
    /// use tower_locks::{LockDepth, NewLock, ResourcePath};
    ///
    /// let new = NewLock::new(ResourcePath::root()).depth(LockDepth::Infinity);
    /// assert_eq!(new.depth, LockDepth::Infinity);
    /// ```
    #[must_use]
    pub fn depth(mut self, depth: LockDepth) -> Self {
        self.depth = depth;
        self
    }

    /// Set the owner XML (kept verbatim).
    ///
    /// ```
    /// use tower_locks::{NewLock, ResourcePath};
    ///
    /// let xml = r#"<D:href xmlns:D="DAV:">mailto:ann@example.org</D:href>"#;
    /// let new = NewLock::new(ResourcePath::root()).owner(xml);
    /// assert_eq!(new.owner.as_deref(), Some(xml));
    /// ```
    #[must_use]
    pub fn owner(mut self, owner: impl Into<Arc<str>>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Set the creating principal.
    ///
    /// ```
    /// use tower_locks::{NewLock, ResourcePath};
    ///
    /// let lock = NewLock::new(ResourcePath::root()).principal("alice").build_unstored();
    /// assert_eq!(lock.principal.as_deref(), Some("alice"));
    /// assert!(!lock.usable_by(Some("bob")));
    /// ```
    #[must_use]
    pub fn principal(mut self, principal: impl Into<Arc<str>>) -> Self {
        self.principal = Some(principal.into());
        self
    }

    /// Set the timeout.
    ///
    /// ```
    /// use tower_locks::{LockTimeout, NewLock, ResourcePath};
    ///
    /// let lock = NewLock::new(ResourcePath::root())
    ///     .timeout(LockTimeout::Infinite)
    ///     .build_unstored();
    /// assert_eq!(lock.timeout, LockTimeout::Infinite);
    /// assert_eq!(lock.expires_at, None);
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: LockTimeout) -> Self {
        self.timeout = timeout;
        self
    }

    /// Limit the number of live locks the principal may hold.
    ///
    /// ```
    /// use tower_locks::{CreateOutcome, LockStore, MemoryLockStore, NewLock, Quota, ResourcePath};
    ///
    /// # tokio_test::block_on(async {
    /// let store = MemoryLockStore::new();
    /// let new = |path| {
    ///     NewLock::new(ResourcePath::parse(path).unwrap()).principal("alice").principal_quota(1)
    /// };
    /// assert!(matches!(store.create(new("/a")).await.unwrap(), CreateOutcome::Created(_)));
    /// assert_eq!(
    ///     store.create(new("/b")).await.unwrap(),
    ///     CreateOutcome::QuotaExceeded { quota: Quota::Principal, limit: 1 }
    /// );
    /// # });
    /// ```
    #[must_use]
    pub fn principal_quota(mut self, quota: u32) -> Self {
        self.principal_quota = Some(quota);
        self
    }

    /// Limit the number of live locks rooted at this lock's root.
    ///
    /// ```
    /// use tower_locks::{CreateOutcome, LockScope, LockStore, MemoryLockStore, NewLock, Quota};
    /// use tower_locks::ResourcePath;
    ///
    /// # tokio_test::block_on(async {
    /// let store = MemoryLockStore::new();
    /// let shared = || {
    ///     NewLock::new(ResourcePath::parse("/doc").unwrap())
    ///         .scope(LockScope::Shared)
    ///         .resource_quota(1)
    /// };
    /// assert!(matches!(store.create(shared()).await.unwrap(), CreateOutcome::Created(_)));
    /// assert_eq!(
    ///     store.create(shared()).await.unwrap(),
    ///     CreateOutcome::QuotaExceeded { quota: Quota::Resource, limit: 1 }
    /// );
    /// # });
    /// ```
    #[must_use]
    pub fn resource_quota(mut self, quota: u32) -> Self {
        self.resource_quota = Some(quota);
        self
    }

    /// Limit the number of live locks in the whole store.
    ///
    /// ```
    /// use tower_locks::{CreateOutcome, LockStore, MemoryLockStore, NewLock, Quota, ResourcePath};
    ///
    /// # tokio_test::block_on(async {
    /// let store = MemoryLockStore::new();
    /// let new = |path| NewLock::new(ResourcePath::parse(path).unwrap()).store_quota(1);
    /// assert!(matches!(store.create(new("/a")).await.unwrap(), CreateOutcome::Created(_)));
    /// assert_eq!(
    ///     store.create(new("/b")).await.unwrap(),
    ///     CreateOutcome::QuotaExceeded { quota: Quota::Store, limit: 1 }
    /// );
    /// # });
    /// ```
    #[must_use]
    pub fn store_quota(mut self, quota: u32) -> Self {
        self.store_quota = Some(quota);
        self
    }

    /// Turn the request into the stored value, granted at `now` with fencing number `fence`.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_locks::{LockTimeout, NewLock, ResourcePath};
    ///
    /// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
    /// let new = NewLock::new(ResourcePath::parse("/doc").unwrap())
    ///     .timeout(LockTimeout::Seconds(30));
    /// let token = new.token.clone();
    /// let lock = new.into_lock(now, 7);
    /// assert_eq!(lock.token, token);
    /// assert_eq!(lock.fence, 7);
    /// assert_eq!(lock.expires_at, Some(now + Duration::from_secs(30)));
    /// ```
    pub fn into_lock(self, now: SystemTime, fence: u64) -> Lock {
        Lock {
            expires_at: self.timeout.expiry_from(now),
            token: self.token,
            root: self.root,
            scope: self.scope,
            depth: self.depth,
            owner: self.owner,
            principal: self.principal,
            timeout: self.timeout,
            fence,
        }
    }

    /// The lock value as if granted now with fence 0 (for tests and examples).
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use tower_locks::{NewLock, ResourcePath};
    ///
    /// let lock = NewLock::new(ResourcePath::parse("/doc").unwrap()).build_unstored();
    /// assert_eq!(lock.fence, 0);
    /// assert!(!lock.is_expired_at(SystemTime::now()));
    /// ```
    pub fn build_unstored(self) -> Lock {
        self.into_lock(SystemTime::now(), 0)
    }
}

/// A new, unguessable lock token: `urn:uuid:` and a random (v4) UUID (RFC 4918 §6.5, §20.7).
/// Kept inline: no allocation.
///
/// ```
/// let token = tower_locks::new_token();
/// assert!(token.starts_with("urn:uuid:"));
/// assert_eq!(token.len(), "urn:uuid:".len() + 36);
/// assert_ne!(token, tower_locks::new_token());
/// ```
pub fn new_token() -> LockToken {
    LockToken::random()
}

/// What a store answers to [`create`](crate::LockStore::create).
///
/// ```
/// use tower_locks::{CreateOutcome, LockStore, MemoryLockStore, NewLock, ResourcePath};
///
/// # tokio_test::block_on(async {
/// let store = MemoryLockStore::new();
/// let doc = ResourcePath::parse("/doc").unwrap();
/// let CreateOutcome::Created(first) = store.create(NewLock::new(doc.clone())).await.unwrap()
/// else {
///     panic!("the store is empty");
/// };
/// // A second exclusive lock on the same resource conflicts with the first.
/// assert_eq!(
///     store.create(NewLock::new(doc)).await.unwrap(),
///     CreateOutcome::Conflict(vec![first])
/// );
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CreateOutcome {
    /// The lock was granted.
    Created(Lock),
    /// Conflicting live locks exist (on an ancestor, the root, or — for depth infinity — below):
    /// all of them, or — when more than 16 do — at least 16, each once (a store may stop
    /// there, so that a LOCK on a collection with thousands of locked members costs no more
    /// than one with sixteen).
    Conflict(Vec<Lock>),
    /// A quota was reached; nothing was created. Quotas are checked after conflicts.
    QuotaExceeded {
        /// Which quota.
        quota: Quota,
        /// Its limit.
        limit: u32,
    },
}

/// Which quota refused a new lock ([`CreateOutcome::QuotaExceeded`]).
///
/// ```
/// use tower_locks::Quota;
///
/// // An anonymous request is counted against the one anonymous bucket.
/// assert_ne!(Quota::Principal, Quota::Anonymous);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Quota {
    /// [`NewLock::principal_quota`], for a lock with a principal.
    Principal,
    /// [`NewLock::principal_quota`], for a lock without one: all anonymous locks together.
    Anonymous,
    /// [`NewLock::resource_quota`]: locks rooted at the same path.
    Resource,
    /// [`NewLock::store_quota`]: every live lock in the store.
    Store,
}

/// Who asks to refresh or remove a lock, and through which URL.
///
/// ```
/// use tower_locks::{
///     CreateOutcome, LockStore, MemoryLockStore, NewLock, ResourcePath, TokenAccess, TokenOutcome,
/// };
///
/// # tokio_test::block_on(async {
/// let store = MemoryLockStore::new();
/// let doc = ResourcePath::parse("/doc").unwrap();
/// let CreateOutcome::Created(lock) =
///     store.create(NewLock::new(doc.clone()).principal("alice")).await.unwrap()
/// else {
///     panic!("the store is empty");
/// };
/// // Bob may not remove Alice's lock...
/// let bob = TokenAccess::new(&lock.token, &doc, Some("bob"));
/// assert!(matches!(store.unlock(bob).await.unwrap(), TokenOutcome::Forbidden(_)));
/// // ...unless he is an administrator.
/// let admin = TokenAccess { privileged: true, ..bob };
/// assert_eq!(store.unlock(admin).await.unwrap(), TokenOutcome::Done(lock));
/// # });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokenAccess<'a> {
    /// The lock token.
    pub token: &'a str,
    /// The request URI: it must be in the lock's scope (RFC 4918 §9.10.2, §9.11).
    pub path: &'a ResourcePath,
    /// The authenticated principal, if any.
    pub principal: Option<&'a str>,
    /// May act on locks of other principals (an administrator breaking a lock).
    pub privileged: bool,
}

impl<'a> TokenAccess<'a> {
    /// Access through `path` by `principal`, unprivileged.
    ///
    /// ```
    /// use tower_locks::{ResourcePath, TokenAccess};
    ///
    /// let path = ResourcePath::parse("/doc").unwrap();
    /// let access = TokenAccess::new("urn:uuid:0", &path, Some("alice"));
    /// assert_eq!(access.principal, Some("alice"));
    /// assert!(!access.privileged);
    /// ```
    pub fn new(token: &'a str, path: &'a ResourcePath, principal: Option<&'a str>) -> Self {
        Self {
            token,
            path,
            principal,
            privileged: false,
        }
    }

    /// Judge `lock` (the live lock with this token): [`TokenVerdict::Allowed`] when the
    /// operation may proceed. The scope is checked first, then the principal (unless
    /// `privileged`). Shared by every store so the rules live in one place.
    ///
    /// ```
    /// use tower_locks::{Lock, ResourcePath, TokenAccess, TokenVerdict};
    ///
    /// let p = |s| ResourcePath::parse(s).unwrap();
    /// let (doc, other) = (p("/doc"), p("/other"));
    /// let lock = Lock::builder(doc.clone()).principal("alice").build_unstored();
    ///
    /// let judge = |path, who| TokenAccess::new(&lock.token, path, who).judge(&lock);
    /// assert_eq!(judge(&doc, Some("alice")), TokenVerdict::Allowed);
    /// assert_eq!(judge(&doc, Some("bob")), TokenVerdict::Forbidden);
    /// assert_eq!(judge(&other, Some("alice")), TokenVerdict::OutOfScope);
    ///
    /// let admin = TokenAccess { privileged: true, ..TokenAccess::new(&lock.token, &doc, None) };
    /// assert_eq!(admin.judge(&lock), TokenVerdict::Allowed);
    /// ```
    pub fn judge(&self, lock: &Lock) -> TokenVerdict {
        if !lock.covers(self.path) {
            TokenVerdict::OutOfScope
        } else if !self.privileged && !lock.usable_by(self.principal) {
            TokenVerdict::Forbidden
        } else {
            TokenVerdict::Allowed
        }
    }
}

/// The verdict of [`TokenAccess::judge`].
///
/// ```
/// use tower_locks::{Lock, ResourcePath, TokenAccess, TokenOutcome, TokenVerdict};
///
/// let doc = ResourcePath::parse("/doc").unwrap();
/// let lock = Lock::builder(doc.clone()).principal("alice").build_unstored();
/// let verdict = TokenAccess::new(&lock.token, &doc, Some("bob")).judge(&lock);
/// assert_eq!(verdict, TokenVerdict::Forbidden);
/// assert_eq!(TokenOutcome::from_verdict(verdict, lock.clone()), TokenOutcome::Forbidden(lock));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVerdict {
    /// The operation may proceed.
    Allowed,
    /// The request URI is not in the lock's scope.
    OutOfScope,
    /// Another principal holds the lock.
    Forbidden,
}

/// What a store answers to [`refresh`](crate::LockStore::refresh) and
/// [`unlock`](crate::LockStore::unlock).
///
/// ```
/// use tower_locks::{
///     CreateOutcome, LockDepth, LockStore, LockTimeout, MemoryLockStore, NewLock, ResourcePath,
///     TokenAccess, TokenOutcome,
/// };
///
/// # tokio_test::block_on(async {
/// let store = MemoryLockStore::new();
/// let p = |s| ResourcePath::parse(s).unwrap();
/// let (doc, other) = (p("/doc"), p("/other"));
/// let CreateOutcome::Created(lock) = store.create(NewLock::new(doc.clone())).await.unwrap()
/// else {
///     panic!("the store is empty");
/// };
/// let through = |path| TokenAccess::new(&lock.token, path, None);
///
/// // The request URI must be in the lock's scope.
/// assert!(matches!(store.unlock(through(&other)).await.unwrap(), TokenOutcome::OutOfScope(_)));
/// // A refresh answers the lock as it is afterwards.
/// let TokenOutcome::Done(refreshed) =
///     store.refresh(through(&doc), LockTimeout::Seconds(60)).await.unwrap()
/// else {
///     panic!("the lock is live");
/// };
/// assert_eq!(refreshed.timeout, LockTimeout::Seconds(60));
/// assert_eq!(refreshed.depth, LockDepth::Zero);
/// // Once unlocked, the token names nothing.
/// assert!(matches!(store.unlock(through(&doc)).await.unwrap(), TokenOutcome::Done(_)));
/// assert_eq!(store.unlock(through(&doc)).await.unwrap(), TokenOutcome::NotFound);
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenOutcome {
    /// Done; the lock as it is after a refresh, or as it was before an unlock.
    Done(Lock),
    /// No live lock has this token (never existed, expired or removed).
    NotFound,
    /// The lock exists but the request URI is outside its scope; nothing changed.
    OutOfScope(Lock),
    /// The lock belongs to another principal; nothing changed.
    Forbidden(Lock),
}

impl TokenOutcome {
    /// Build the outcome for a verdict (helper for store implementations).
    ///
    /// ```
    /// use tower_locks::{Lock, ResourcePath, TokenOutcome, TokenVerdict};
    ///
    /// let lock = Lock::builder(ResourcePath::parse("/doc").unwrap()).build_unstored();
    /// assert_eq!(
    ///     TokenOutcome::from_verdict(TokenVerdict::Allowed, lock.clone()),
    ///     TokenOutcome::Done(lock.clone())
    /// );
    /// assert_eq!(
    ///     TokenOutcome::from_verdict(TokenVerdict::OutOfScope, lock.clone()),
    ///     TokenOutcome::OutOfScope(lock)
    /// );
    /// ```
    pub fn from_verdict(verdict: TokenVerdict, lock: Lock) -> Self {
        match verdict {
            TokenVerdict::Allowed => TokenOutcome::Done(lock),
            TokenVerdict::OutOfScope => TokenOutcome::OutOfScope(lock),
            TokenVerdict::Forbidden => TokenOutcome::Forbidden(lock),
        }
    }
}

/// The order reports of locks are in: by root (path order), then token.
pub(crate) fn by_root_then_token(a: &Lock, b: &Lock) -> std::cmp::Ordering {
    a.root.cmp(&b.root).then_with(|| a.token.cmp(&b.token))
}
