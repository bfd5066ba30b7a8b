//! The question every check asks a store: [`LockQuery`], its targets, and how much it asks
//! for below them ([`Below`]).

use super::lock::Lock;
use crate::ResourcePath;

/// One path of a [`LockQuery`].
///
/// ```
/// use tower_locks::{LockQuery, QueryTarget, ResourcePath};
///
/// let docs = ResourcePath::parse("/docs").unwrap();
/// let query = LockQuery::new().subtree(docs.clone());
/// assert_eq!(query.targets, [QueryTarget { path: docs, descendants: true }]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryTarget {
    /// The resource.
    pub path: ResourcePath,
    /// Also report every live lock rooted strictly below `path`.
    pub descendants: bool,
}

/// "Which live locks cover these resources?": for each target, the depth-infinity locks on its
/// ancestors, every lock rooted at it, and optionally every lock rooted below it; and the live
/// lock of each of `tokens`, wherever it is rooted. The answer holds each lock once.
///
/// The tokens are how the layer evaluates an `If` header: whether a state token's lock covers
/// its list's resource is read off that one lock, so the resources an `If` header names cost
/// one lookup per token, not one per ancestor of every resource.
///
/// ```
/// use tower_locks::{CreateOutcome, LockQuery, LockStore, MemoryLockStore, NewLock, ResourcePath};
///
/// # tokio_test::block_on(async {
/// let store = MemoryLockStore::new();
/// let p = |s| ResourcePath::parse(s).unwrap();
/// let CreateOutcome::Created(member) = store.create(NewLock::new(p("/docs/a"))).await.unwrap()
/// else {
///     panic!("the store is empty");
/// };
/// // A depth-0 lock on `/docs/a` does not cover `/docs`...
/// assert!(store.query(&LockQuery::new().covering(p("/docs"))).await.unwrap().is_empty());
/// // ...but a DELETE of `/docs` must also ask about the locks below it.
/// let found = store.query(&LockQuery::new().subtree(p("/docs"))).await.unwrap();
/// assert_eq!(found, vec![member]);
/// # });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockQuery {
    /// The resources asked about.
    pub targets: Vec<QueryTarget>,
    /// Lock tokens whose live locks are asked about too, each once.
    pub tokens: Vec<String>,
    /// How much of what lies below the targets asking for descendants must be reported:
    /// every lock ([`Below::All`], the default), or enough to judge a removal.
    pub below: Below,
}

/// How much a [`LockQuery`] asks for below its targets that ask for descendants.
///
/// A writer that removes a subtree (DELETE, MOVE, a COPY onto an existing collection) must
/// satisfy every lock rooted below it, and it can satisfy only the locks whose tokens it
/// submits, or, where owners write without tokens, its own. Call a resource below a target
/// *open* when one of its live locks has a token among the query's
/// [`tokens`](LockQuery::tokens) or is held by `holder`, and *blocked* when it has live locks
/// and none of them is open. [`UntilBlocked`](Below::UntilBlocked) asks for every live lock of
/// the open resources, and lets a store stop, below each target, once it has reported every
/// live lock of the first [`BLOCKED`](Below::BLOCKED) blocked resources in path order: those
/// are enough to refuse the write and to name who stands in the way, so that a refused
/// `DELETE /` costs the store a bounded amount of work however many locks it holds.
///
/// A listing reads a subtree a [`Page`](Below::Page) at a time, each the locks of a number of
/// resources in path order after the last one of the page before.
///
/// In every mode a store may report more than it is asked for; one that always reports
/// everything is correct.
///
/// ```
/// use tower_locks::{Below, LockQuery, LockStore, MemoryLockStore, NewLock, ResourcePath};
///
/// # tokio_test::block_on(async {
/// let store = MemoryLockStore::new();
/// let p = |s: &str| ResourcePath::parse(s).unwrap();
/// for i in 0..100 {
///     store.create(NewLock::new(p(&format!("/big/{i:03}")))).await.unwrap();
/// }
/// let all = store.query(&LockQuery::new().subtree(p("/big"))).await.unwrap();
/// assert_eq!(all.len(), 100);
/// let enough = LockQuery::new().subtree(p("/big")).until_blocked(None);
/// assert_eq!(enough.below, Below::UntilBlocked { holder: None });
/// let found = store.query(&enough).await.unwrap();
/// assert!(found.len() >= Below::BLOCKED && found.len() < 100);
/// assert_eq!(found[0].root, p("/big/000")); // the first ones in path order
/// # });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Below {
    /// Every live lock rooted below the target.
    #[default]
    All,
    /// Every live lock of the open resources below the target, and those of at least the
    /// first [`BLOCKED`](Below::BLOCKED) blocked ones when there are more.
    UntilBlocked {
        /// The principal whose own locks count as open (when owners may write without
        /// their tokens), or `None`.
        holder: Option<String>,
    },
    /// A page of a listing: every live lock of the first `resources` locked resources below
    /// the target in path order, counting only those after `after` when it is given (the
    /// last resource of the page before; its own locks and those of the resources before it
    /// are not reported). With a `holder`, the page lists that principal's locks: it counts
    /// only the resources holding a live lock of `holder`, however many others lie between
    /// them, and of those it must report the holder's locks. A store may report more.
    Page {
        /// Where the page starts: after this resource and before its members' locks.
        after: Option<ResourcePath>,
        /// How many locked resources the page holds, at least when there are that many.
        resources: usize,
        /// The principal whose locks are listed, or `None` for everybody's.
        holder: Option<String>,
    },
}

impl Below {
    /// How many blocked resources below a target a store reports, at least, before it may
    /// stop (see [`Below`]).
    ///
    /// ```
    /// assert_eq!(tower_locks::Below::BLOCKED, 16);
    /// ```
    pub const BLOCKED: usize = 16;
}

impl LockQuery {
    /// An empty query. It matches no lock.
    ///
    /// ```
    /// use tower_locks::{Lock, LockQuery, ResourcePath};
    ///
    /// let query = LockQuery::new();
    /// assert!(query.targets.is_empty());
    /// let lock = Lock::builder(ResourcePath::root()).build_unstored();
    /// assert!(!query.matches(&lock));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask about the locks covering `path`.
    ///
    /// ```
    /// use tower_locks::{Lock, LockDepth, LockQuery, ResourcePath};
    ///
    /// let p = |s| ResourcePath::parse(s).unwrap();
    /// let query = LockQuery::new().covering(p("/docs/a"));
    /// let deep = Lock::builder(p("/docs")).depth(LockDepth::Infinity).build_unstored();
    /// let shallow = Lock::builder(p("/docs")).build_unstored();
    /// let below = Lock::builder(p("/docs/a/b")).build_unstored();
    /// assert!(query.matches(&deep));
    /// assert!(!query.matches(&shallow));
    /// assert!(!query.matches(&below));
    /// ```
    #[must_use]
    pub fn covering(mut self, path: ResourcePath) -> Self {
        self.push(path, false);
        self
    }

    /// Ask about the locks covering `path` and every lock below it.
    ///
    /// ```
    /// use tower_locks::{Lock, LockQuery, ResourcePath};
    ///
    /// let p = |s| ResourcePath::parse(s).unwrap();
    /// let query = LockQuery::new().subtree(p("/docs/a"));
    /// assert!(query.matches(&Lock::builder(p("/docs/a")).build_unstored()));
    /// assert!(query.matches(&Lock::builder(p("/docs/a/b")).build_unstored()));
    /// assert!(!query.matches(&Lock::builder(p("/docs/ab")).build_unstored()));
    /// ```
    #[must_use]
    pub fn subtree(mut self, path: ResourcePath) -> Self {
        self.push(path, true);
        self
    }

    /// Ask about the live lock with `token` too, wherever it is rooted.
    ///
    /// ```
    /// use tower_locks::{Lock, LockQuery, ResourcePath};
    ///
    /// let p = |s| ResourcePath::parse(s).unwrap();
    /// let elsewhere = Lock::builder(p("/elsewhere")).build_unstored();
    /// let query = LockQuery::new().covering(p("/docs")).token(elsewhere.token.as_str());
    /// assert!(query.matches(&elsewhere));
    /// assert!(!query.matches(&Lock::builder(p("/other")).build_unstored()));
    /// ```
    #[must_use]
    pub fn token(mut self, token: &str) -> Self {
        self.push_token(token);
        self
    }

    /// Add a token, unless it is already asked about.
    ///
    /// ```
    /// use tower_locks::LockQuery;
    ///
    /// let mut query = LockQuery::new();
    /// query.push_token("urn:uuid:0");
    /// query.push_token("urn:uuid:0");
    /// assert_eq!(query.tokens, ["urn:uuid:0"]);
    /// ```
    pub fn push_token(&mut self, token: &str) {
        if !self.tokens.iter().any(|t| t == token) {
            self.tokens.push(token.to_owned());
        }
    }

    /// Ask, below the targets asking for descendants, only for what judging a removal
    /// needs ([`Below::UntilBlocked`]): `holder` is the principal whose own locks count as
    /// satisfied, if any.
    ///
    /// ```
    /// use tower_locks::{Below, LockQuery, ResourcePath};
    ///
    /// let query = LockQuery::new()
    ///     .subtree(ResourcePath::parse("/docs").unwrap())
    ///     .until_blocked(Some("alice"));
    /// assert_eq!(query.below, Below::UntilBlocked { holder: Some("alice".into()) });
    /// ```
    #[must_use]
    pub fn until_blocked(mut self, holder: Option<&str>) -> Self {
        self.below = Below::UntilBlocked {
            holder: holder.map(str::to_owned),
        };
        self
    }

    /// Ask, below the targets asking for descendants, for one page of a listing
    /// ([`Below::Page`]): the locks of `resources` locked resources in path order, after
    /// `after` when given; with a `holder`, of the resources holding that principal's locks
    /// (a listing of one's own locks then never names a resource locked by somebody else).
    ///
    /// ```
    /// use tower_locks::{LockQuery, LockStore, MemoryLockStore, NewLock, ResourcePath};
    ///
    /// # tokio_test::block_on(async {
    /// let store = MemoryLockStore::new();
    /// let p = |s: &str| ResourcePath::parse(s).unwrap();
    /// for name in ["a", "b", "c"] {
    ///     store.create(NewLock::new(p(&format!("/docs/{name}")))).await.unwrap();
    /// }
    /// let page = |after| LockQuery::new().subtree(p("/docs")).page(after, 2, None);
    /// let first = store.query(&page(None)).await.unwrap();
    /// assert_eq!(first.len(), 2);
    /// let next = store.query(&page(Some(first[1].root.clone()))).await.unwrap();
    /// assert_eq!(next.len(), 1);
    /// assert_eq!(next[0].root, p("/docs/c"));
    ///
    /// // Ann's locks only, a resource at a time: bob's lock on /docs/b is not counted.
    /// for name in ["a", "c"] {
    ///     store.create(NewLock::new(p(&format!("/docs/{name}/x"))).principal("ann")).await.unwrap();
    /// }
    /// store.create(NewLock::new(p("/docs/b/x")).principal("bob")).await.unwrap();
    /// let anns = |after| LockQuery::new().subtree(p("/docs")).page(after, 1, Some("ann"));
    /// let first = store.query(&anns(None)).await.unwrap();
    /// let first: Vec<_> = first.iter().filter(|l| l.principal.as_deref() == Some("ann")).collect();
    /// assert_eq!(first[0].root, p("/docs/a/x"));
    /// let next = store.query(&anns(Some(first[0].root.clone()))).await.unwrap();
    /// assert!(next.iter().any(|l| l.root == p("/docs/c/x")));
    /// # });
    /// ```
    #[must_use]
    pub fn page(
        mut self,
        after: Option<ResourcePath>,
        resources: usize,
        holder: Option<&str>,
    ) -> Self {
        self.below = Below::Page {
            after,
            resources,
            holder: holder.map(str::to_owned),
        };
        self
    }

    /// Whether a target asks for the locks below it (the query judges a removal).
    #[inline]
    pub(crate) fn asks_below(&self) -> bool {
        self.targets.iter().any(|t| t.descendants)
    }

    /// Make this query judge a removal by `submitted` tokens (and, when owners write without
    /// their tokens, by `holder`'s own locks) while reading below only what that needs: the
    /// lock of every submitted token, and [`Below::UntilBlocked`]. Every submitted token must
    /// be asked for, because the store stops after [`Below::BLOCKED`] resources it was not
    /// asked about: a resource the submission satisfies must never look blocked to it.
    pub(crate) fn judge_removal_by<'t>(
        &mut self,
        submitted: impl IntoIterator<Item = &'t str>,
        holder: Option<&str>,
    ) {
        self.tokens.extend(submitted.into_iter().map(str::to_owned));
        self.tokens.sort_unstable();
        self.tokens.dedup();
        self.below = Below::UntilBlocked {
            holder: holder.map(str::to_owned),
        };
    }

    /// Add a target, merging with an existing target for the same path.
    ///
    /// ```
    /// use tower_locks::{LockQuery, ResourcePath};
    ///
    /// let mut query = LockQuery::new();
    /// query.push(ResourcePath::parse("/a").unwrap(), false);
    /// query.push(ResourcePath::parse("/a/").unwrap(), true); // the same resource
    /// query.push(ResourcePath::parse("/b").unwrap(), false);
    /// assert_eq!(query.targets.len(), 2);
    /// assert!(query.targets[0].descendants);
    /// ```
    pub fn push(&mut self, path: ResourcePath, descendants: bool) {
        if let Some(t) = self.targets.iter_mut().find(|t| t.path == path) {
            t.descendants |= descendants;
        } else {
            self.targets.push(QueryTarget { path, descendants });
        }
    }

    /// Whether `lock` answers this query (the reference semantics every store must match;
    /// with [`below`](Self::below) other than [`Below::All`], a store may leave out some of
    /// the locks below the targets, as [`Below`] says).
    ///
    /// ```
    /// use tower_locks::{Lock, LockDepth, LockQuery, ResourcePath};
    ///
    /// let p = |s| ResourcePath::parse(s).unwrap();
    /// // A MOVE from /src/x to /dst/x asks about both resources, and the subtree it removes.
    /// let query = LockQuery::new().subtree(p("/src/x")).covering(p("/dst/x"));
    /// let on_dst = Lock::builder(p("/dst")).depth(LockDepth::Infinity).build_unstored();
    /// let below_src = Lock::builder(p("/src/x/y")).build_unstored();
    /// let elsewhere = Lock::builder(p("/src/z")).build_unstored();
    /// assert!(query.matches(&on_dst));
    /// assert!(query.matches(&below_src));
    /// assert!(!query.matches(&elsewhere));
    /// ```
    pub fn matches(&self, lock: &Lock) -> bool {
        self.matches_targets(lock) || self.tokens.iter().any(|t| lock.token == **t)
    }

    /// Whether `lock` answers one of the targets (covers it, or is rooted below a target
    /// asking for descendants).
    ///
    /// ```
    /// use tower_locks::{Lock, LockQuery, ResourcePath};
    ///
    /// let p = |s| ResourcePath::parse(s).unwrap();
    /// let elsewhere = Lock::builder(p("/elsewhere")).build_unstored();
    /// let query = LockQuery::new().covering(p("/docs")).token(elsewhere.token.as_str());
    /// assert!(!query.matches_targets(&elsewhere));
    /// assert!(query.matches_targets(&Lock::builder(p("/docs")).build_unstored()));
    /// ```
    pub fn matches_targets(&self, lock: &Lock) -> bool {
        self.targets
            .iter()
            .any(|t| lock.covers(&t.path) || (t.descendants && t.path.is_ancestor_of(&lock.root)))
    }
}
