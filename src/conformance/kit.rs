//! What the cases share: a namespace per case, assertions on outcomes, random queries and a
//! reproducible PRNG.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use crate::{
    CreateOutcome, Lock, LockQuery, LockStore, LockStoreError, NewLock, ResourcePath, TokenAccess,
    TokenOutcome,
};

/// A unique path namespace for one case.
pub(super) struct Ns {
    base: String,
    pub(super) suffix: String,
}

impl Ns {
    pub(super) fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            base: format!("/tower-locks-conformance/{id}"),
            suffix: id,
        }
    }

    /// `rel` ("/a/b", or "" for the namespace root) inside the namespace.
    pub(super) fn p(&self, rel: &str) -> ResourcePath {
        let raw = format!("{}{rel}", self.base);
        ResourcePath::parse(&raw).unwrap_or_else(|e| panic!("conformance: bad path {raw}: {e}"))
    }

    /// A random path in the namespace: up to three segments drawn from `names`, and with
    /// `trailing_slash` a one-in-four chance of a trailing slash.
    pub(super) fn random_path(
        &self,
        rng: &mut Rng,
        names: &[&str],
        trailing_slash: bool,
    ) -> ResourcePath {
        let mut s = String::new();
        for _ in 0..rng.below(4) {
            s.push('/');
            s.push_str(names[rng.below(names.len() as u64) as usize]);
        }
        if trailing_slash && rng.below(4) == 0 {
            s.push('/');
        }
        self.p(&s)
    }

    /// A principal name unique to this case.
    pub(super) fn principal(&self, name: &str) -> String {
        format!("{name}-{}", self.suffix)
    }
}

pub(super) fn ok<T>(case: &str, r: Result<T, LockStoreError>) -> T {
    r.unwrap_or_else(|e| panic!("conformance `{case}`: store error: {e} ({e:?})"))
}

pub(super) async fn create_ok<S: LockStore>(case: &str, store: &S, req: NewLock) -> Lock {
    let what = format!("{req:?}");
    match ok(case, store.create(req).await) {
        CreateOutcome::Created(l) => l,
        other => panic!("conformance `{case}`: expected {what} to be granted, got {other:?}"),
    }
}

pub(super) async fn create_conflict<S: LockStore>(
    case: &str,
    store: &S,
    req: NewLock,
) -> Vec<Lock> {
    let what = format!("{req:?}");
    match ok(case, store.create(req).await) {
        CreateOutcome::Conflict(l) => l,
        other => panic!("conformance `{case}`: expected {what} to conflict, got {other:?}"),
    }
}

/// Unlock `lock` through `path` as `principal`; it must succeed.
pub(super) async fn unlock_ok<S: LockStore>(
    case: &str,
    store: &S,
    lock: &Lock,
    path: &ResourcePath,
    principal: Option<&str>,
) {
    let out = ok(
        case,
        store
            .unlock(TokenAccess::new(&lock.token, path, principal))
            .await,
    );
    assert!(
        matches!(out, TokenOutcome::Done(_)),
        "conformance `{case}`: {out:?}"
    );
}

pub(super) fn tokens<'a>(locks: impl IntoIterator<Item = &'a Lock>) -> BTreeSet<String> {
    locks.into_iter().map(|l| l.token.to_string()).collect()
}

/// `store.query(q)`, which must succeed. When the store also answers at once
/// ([`LockStore::query_now`] gives `Some`), that answer must hold the same locks: the layer
/// decides writes from it alone.
pub(super) async fn query<S: LockStore>(case: &str, store: &S, q: &LockQuery) -> Vec<Lock> {
    let now = store.query_now(q);
    let found = ok(case, store.query(q).await);
    if let Some(now) = now {
        let now = ok(case, now);
        assert!(
            now.len() == found.len() && tokens(&now) == tokens(&found),
            "conformance `{case}`: query_now {q:?} answered\n {now:?}\nbut query\n {found:?}"
        );
    }
    found
}

pub(super) async fn query_tokens<S: LockStore>(
    case: &str,
    store: &S,
    q: &LockQuery,
) -> BTreeSet<String> {
    let found = query(case, store, q).await;
    let set = tokens(&found);
    assert_eq!(
        set.len(),
        found.len(),
        "conformance `{case}`: query {q:?} reported a lock twice: {found:?}"
    );
    set
}

/// Field-by-field equality, allowing `expires_at` to differ by up to one second.
pub(super) fn assert_same_lock(case: &str, got: &Lock, want: &Lock) {
    let ctx = || format!("conformance `{case}`: lock differs:\n got  {got:?}\n want {want:?}");
    assert_eq!(got.token, want.token, "{}", ctx());
    assert_eq!(got.root, want.root, "{}", ctx());
    assert_eq!(
        got.root.href(),
        want.root.href(),
        "{} (trailing slash)",
        ctx()
    );
    assert_eq!(got.scope, want.scope, "{}", ctx());
    assert_eq!(got.depth, want.depth, "{}", ctx());
    assert_eq!(got.owner, want.owner, "{}", ctx());
    assert_eq!(got.principal, want.principal, "{}", ctx());
    assert_eq!(got.timeout, want.timeout, "{}", ctx());
    assert_eq!(got.fence, want.fence, "{}", ctx());
    match (got.expires_at, want.expires_at) {
        (None, None) => {}
        (Some(a), Some(b)) => assert!(close(a, b, Duration::from_secs(1)), "{}", ctx()),
        _ => panic!("{}", ctx()),
    }
}

/// One to three random targets, each covering or subtree, and up to two tokens: of `held`
/// locks, or of no lock.
pub(super) fn random_query(
    rng: &mut Rng,
    path: &impl Fn(&mut Rng) -> ResourcePath,
    held: &[Lock],
) -> LockQuery {
    let mut q = LockQuery::new();
    for _ in 0..1 + rng.below(3) {
        q.push(path(rng), rng.below(2) == 0);
    }
    for _ in 0..rng.below(3) {
        match rng.below(4) {
            0 => q.push_token(&format!("urn:uuid:{}", uuid::Uuid::new_v4())),
            _ => q.push_token(held[rng.below(held.len() as u64) as usize].token.as_str()),
        }
    }
    q
}

pub(super) fn close(a: SystemTime, b: SystemTime, tolerance: Duration) -> bool {
    let diff = a.duration_since(b).or_else(|_| b.duration_since(a));
    diff.is_ok_and(|d| d <= tolerance)
}

/// A small deterministic PRNG (xorshift64*), so failures are reproducible.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
