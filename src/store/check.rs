//! "May this submission write here?": the input and the answer of [`LockStore::check`].
//!
//! [`LockStore::check`]: crate::LockStore::check

use super::lock::{by_root_then_token, Lock, LockScope};
use super::query::{LockQuery, QueryTarget};

/// The lock tokens a writer presents, and who presents them: the input of
/// [`LockStore::check`](crate::LockStore::check).
///
/// A lock is satisfied when its token is among `tokens` (exact, case-sensitive comparison, as
/// for every token in RFC 4918) and the lock may be used by `principal` (see
/// [`Lock::usable_by`]).
///
/// ```
/// use tower_locks::{Lock, ResourcePath, Submission};
///
/// let lock = Lock::builder(ResourcePath::parse("/doc").unwrap())
///     .principal("alice")
///     .build_unstored();
/// let token = lock.token.as_str();
/// assert!(Submission::new(&[token], Some("alice")).satisfies(&lock));
/// assert!(!Submission::new(&[token], Some("bob")).satisfies(&lock));
/// assert!(!Submission::new(&[], Some("alice")).satisfies(&lock));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Submission<'a> {
    /// The submitted lock tokens (for a WebDAV request, the state tokens of its `If` header).
    pub tokens: &'a [&'a str],
    /// The authenticated principal, if any.
    pub principal: Option<&'a str>,
}

impl<'a> Submission<'a> {
    /// `tokens`, presented by `principal`.
    ///
    /// ```
    /// use tower_locks::Submission;
    ///
    /// let s = Submission::new(&["urn:uuid:0"], None);
    /// assert_eq!(s.tokens, ["urn:uuid:0"]);
    /// ```
    pub fn new(tokens: &'a [&'a str], principal: Option<&'a str>) -> Self {
        Self { tokens, principal }
    }

    /// Whether `lock` is satisfied: its token was submitted, by a principal that may use it.
    ///
    /// ```
    /// use tower_locks::{Lock, ResourcePath, Submission};
    ///
    /// let lock = Lock::builder(ResourcePath::parse("/doc").unwrap()).build_unstored();
    /// assert!(Submission::new(&[lock.token.as_str()], None).satisfies(&lock));
    /// ```
    pub fn satisfies(&self, lock: &Lock) -> bool {
        satisfied(lock, self.tokens.iter().copied(), self.principal)
    }
}

/// Whether `lock` is satisfied by `tokens` presented by `principal`: the one rule behind
/// [`Submission::satisfies`] and the layer's own verdict (which takes its tokens from the `If`
/// header without collecting them).
pub(crate) fn satisfied<'t>(
    lock: &Lock,
    mut tokens: impl Iterator<Item = &'t str>,
    principal: Option<&str>,
) -> bool {
    tokens.any(|t| lock.token == *t) && lock.usable_by(principal)
}

/// The locks protecting one resource, judged against `tokens` presented by `principal`
/// (RFC 4918 §6.2: "any principal that has both access privileges and a valid lock can use
/// the locked resource"): each exclusive lock needs its own token; of the shared locks, any one
/// satisfied will do. With `owner_writes`, a lock held by `principal` itself is satisfied
/// without its token. Returns the satisfied locks and the ones that stand in the way.
pub(crate) fn judge_resource<'a>(
    locks: &[&'a Lock],
    tokens: &[&str],
    principal: Option<&str>,
    owner_writes: bool,
) -> (Vec<&'a Lock>, Vec<&'a Lock>) {
    let held =
        |l: &Lock| owner_writes && principal.is_some() && l.principal.as_deref() == principal;
    let (satisfied, unsatisfied): (Vec<&Lock>, Vec<&Lock>) = locks
        .iter()
        .partition(|l| held(l) || satisfied(l, tokens.iter().copied(), principal));
    let shared_ok = satisfied.iter().any(|l| l.scope == LockScope::Shared);
    let unsatisfied = unsatisfied
        .into_iter()
        .filter(|l| !(shared_ok && l.scope == LockScope::Shared))
        .collect();
    (satisfied, unsatisfied)
}

/// The answer of [`LockStore::check`](crate::LockStore::check).
///
/// ```
/// use tower_locks::{CheckOutcome, Lock, ResourcePath, Submission};
///
/// let p = |s| ResourcePath::parse(s).unwrap();
/// let mine = Lock::builder(p("/a")).build_unstored();
/// let theirs = Lock::builder(p("/b")).build_unstored();
/// let tokens = [mine.token.as_str()];
/// let query = tower_locks::LockQuery::new().covering(p("/a")).covering(p("/b"));
/// let outcome = CheckOutcome::judge(&query, vec![mine.clone(), theirs.clone()], Submission::new(&tokens, None));
/// assert_eq!(outcome.unsatisfied, vec![theirs]);
/// assert_eq!(outcome.fence, Some(mine.fence));
/// assert!(!outcome.allowed());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOutcome {
    /// The live locks matching the query that stand in the way (see [`judge`](Self::judge)),
    /// each once, by root (in path order), then token: all
    /// of them, or — when more than 16 do — at least 16 (a store may stop there). Empty when
    /// nothing stands in the way of the write.
    pub unsatisfied: Vec<Lock>,
    /// The highest fencing number among the matching locks the submission satisfied (`None`
    /// when it satisfied none): what a writer passes on to storage that rejects stale grants.
    /// Exact when nothing stands in the way; otherwise `None` or the exact value.
    pub fence: Option<u64>,
}

impl CheckOutcome {
    /// Judge `locks` (the answer of `query`) against `submission`. This is the reference
    /// semantics of [`LockStore::check`](crate::LockStore::check), and its default body.
    ///
    /// Only the locks answering the query's targets are judged; its
    /// [`tokens`](LockQuery::tokens) play no part in a check.
    ///
    /// A lock is satisfied by its own token, submitted by a principal that may use it. A shared
    /// lock is also excused, for a resource the query touches, when another shared lock of that
    /// resource is satisfied (RFC 4918 §6.2): for a query target, the shared locks covering it;
    /// below a target asking for descendants, the shared locks rooted at the same resource.
    ///
    /// ```
    /// use tower_locks::{CheckOutcome, Lock, LockQuery, LockScope, ResourcePath, Submission};
    ///
    /// let doc = ResourcePath::parse("/doc").unwrap();
    /// let shared = || Lock::builder(doc.clone()).scope(LockScope::Shared).build_unstored();
    /// let (mine, theirs) = (shared(), shared());
    /// let query = LockQuery::new().covering(doc.clone());
    /// let tokens = [mine.token.as_str()];
    /// let outcome = CheckOutcome::judge(&query, vec![mine.clone(), theirs], Submission::new(&tokens, None));
    /// assert!(outcome.allowed()); // one of the shared locks will do
    /// assert_eq!(outcome.fence, Some(mine.fence));
    /// assert!(!CheckOutcome::judge(&query, vec![mine], Submission::default()).allowed());
    /// ```
    pub fn judge(query: &LockQuery, locks: Vec<Lock>, submission: Submission<'_>) -> Self {
        let satisfied: Vec<&Lock> = locks
            .iter()
            .filter(|l| query.matches_targets(l) && submission.satisfies(l))
            .collect();
        let fence = satisfied.iter().map(|l| l.fence).max();
        let shared_ok = |covering: bool, lock: &Lock, target: &QueryTarget| {
            satisfied.iter().any(|s| {
                s.scope == LockScope::Shared
                    && if covering {
                        s.covers(&target.path)
                    } else {
                        s.root == lock.root
                    }
            })
        };
        let blocks = |lock: &Lock| {
            !submission.satisfies(lock)
                && query.targets.iter().any(|t| {
                    let covering = lock.covers(&t.path);
                    let below = t.descendants && t.path.is_ancestor_of(&lock.root);
                    (covering || below)
                        && !(lock.scope == LockScope::Shared && shared_ok(covering, lock, t))
                })
        };
        let mut unsatisfied: Vec<Lock> = locks.iter().filter(|l| blocks(l)).cloned().collect();
        unsatisfied.sort_unstable_by(by_root_then_token);
        Self { unsatisfied, fence }
    }

    /// Whether the write may proceed: every matching lock is satisfied.
    ///
    /// ```
    /// use tower_locks::CheckOutcome;
    ///
    /// assert!(CheckOutcome::default().allowed());
    /// ```
    pub fn allowed(&self) -> bool {
        self.unsatisfied.is_empty()
    }
}
