//! Closing the check-then-write gap inside one process.
//!
//! A write is checked against the store and then forwarded; without more, a LOCK could be
//! granted between the two, and the write would land under somebody else's fresh lock. So
//! every checked write registers a *hold* — the paths it touches — **before** it asks the
//! store, and drops it when the inner service has answered (or the request is cancelled). A
//! new lock is created in the store **first** and then compared with the holds; if it touches
//! an in-flight write it is rolled back and refused. Whatever the interleaving, either the
//! write sees the new lock (and is refused) or the LOCK sees the hold (and is refused).
//!
//! A hold also names the tokens its write relies on, so an UNLOCK cannot pull a lock from
//! under a write that is using it. Until the verdict that is every token the request
//! submitted; from the verdict on, only the tokens of the locks the write was required to
//! satisfy and did. A token that is merely mentioned (`Not <token>`, or a lock of another
//! principal) pins nothing while the request body streams in.
//!
//! Holds live in the layer, so they cover the requests of one process. Across instances
//! sharing a Redis store, the [`FencingToken`] given to the inner service is the guarantee:
//! storage that remembers the highest fence it has seen per resource can reject a stale
//! writer.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::store::{Lock, LockDepth};
use crate::ResourcePath;

/// The fencing number of the newest lock grant a forwarded write relied on, inserted into
/// the request extensions of every write that satisfied at least one lock.
///
/// Fencing numbers grow with every grant in the store, so storage behind the layer can keep
/// the highest number it has seen for a resource and reject a write carrying a lower one —
/// a writer whose lock expired or was broken while its request was under way.
///
/// ```
/// use tower_locks::FencingToken;
///
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(FencingToken(42));
/// assert_eq!(req.extensions().get::<FencingToken>(), Some(&FencingToken(42)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(pub u64);

/// The in-flight writes of one layer (shared by all its services).
#[derive(Debug, Default)]
pub(crate) struct Holds {
    inner: Mutex<Inner>,
}

/// One row per path and per token of every in-flight write, tagged with its hold's id: a
/// write adds its rows and removes them, with no allocation of its own.
#[derive(Debug, Default)]
struct Inner {
    next: u64,
    /// Each path with `true` when everything below it is touched too.
    paths: Vec<(u64, ResourcePath, bool)>,
    tokens: Vec<(u64, String)>,
}

/// Ends its hold when dropped.
#[derive(Debug)]
pub(crate) struct HoldGuard {
    holds: Arc<Holds>,
    id: u64,
    /// Whether the hold names tokens (a write without an `If` header names none).
    has_tokens: bool,
}

impl Holds {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register an in-flight write touching `paths`, relying on `tokens`.
    pub(crate) fn acquire<'a, 't>(
        self: &Arc<Self>,
        paths: impl IntoIterator<Item = (&'a ResourcePath, bool)>,
        tokens: impl IntoIterator<Item = &'t str>,
    ) -> HoldGuard {
        let mut g = self.lock();
        g.next += 1;
        let id = g.next;
        for (path, subtree) in paths {
            g.paths.push((id, path.clone(), subtree));
        }
        let before = g.tokens.len();
        for token in tokens {
            g.tokens.push((id, token.to_owned()));
        }
        let has_tokens = g.tokens.len() > before;
        drop(g);
        HoldGuard {
            holds: Arc::clone(self),
            id,
            has_tokens,
        }
    }

    /// The paths of in-flight writes that a new `lock` would cover or sit under a removal of.
    pub(crate) fn blocking(&self, lock: &Lock) -> Vec<ResourcePath> {
        let infinity = lock.depth == LockDepth::Infinity;
        let g = self.lock();
        let mut out = Vec::new();
        for (_, path, subtree) in &g.paths {
            let covered = lock.root == *path || (infinity && lock.root.is_ancestor_of(path));
            let removed = *subtree && path.is_ancestor_of(&lock.root);
            if covered || removed {
                out.push(path.clone());
            }
        }
        out
    }

    /// Whether an in-flight write relies on `token`.
    pub(crate) fn relies_on(&self, token: &str) -> bool {
        let g = self.lock();
        let relied = g.tokens.iter().any(|(_, t)| t == token);
        relied
    }
}

impl HoldGuard {
    /// From now on the write relies on `tokens` only (the verdict's).
    pub(crate) fn rely_on(&mut self, tokens: Vec<String>) {
        if !self.has_tokens && tokens.is_empty() {
            return;
        }
        let id = self.id;
        self.has_tokens = !tokens.is_empty();
        let mut g = self.holds.lock();
        g.tokens.retain(|(hold, _)| *hold != id);
        g.tokens.extend(tokens.into_iter().map(|t| (id, t)));
    }
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        let id = self.id;
        let mut g = self.holds.lock();
        g.paths.retain(|(hold, ..)| *hold != id);
        if self.has_tokens {
            g.tokens.retain(|(hold, _)| *hold != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewLock;

    fn p(s: &str) -> ResourcePath {
        ResourcePath::parse(s).unwrap()
    }

    #[test]
    fn holds_block_covering_locks_until_dropped() {
        let holds = Arc::new(Holds::default());
        let (ab, d) = (p("/a/b"), p("/d"));
        let guard = holds.acquire([(&ab, false), (&d, true)], ["urn:x"]);
        let on = |root: &str, depth| NewLock::new(p(root)).depth(depth).build_unstored();
        assert_eq!(holds.blocking(&on("/a/b", LockDepth::Zero)), [p("/a/b")]);
        assert_eq!(holds.blocking(&on("/a", LockDepth::Infinity)), [p("/a/b")]);
        assert!(holds.blocking(&on("/a", LockDepth::Zero)).is_empty());
        assert!(holds.blocking(&on("/a/b/c", LockDepth::Zero)).is_empty());
        assert_eq!(holds.blocking(&on("/d/e/f", LockDepth::Zero)), [p("/d")]);
        assert!(holds.relies_on("urn:x"));
        assert!(!holds.relies_on("urn:y"));
        drop(guard);
        assert!(holds.blocking(&on("/a/b", LockDepth::Zero)).is_empty());
        assert!(!holds.relies_on("urn:x"));
    }

    #[test]
    fn each_guard_ends_its_own_hold_and_narrows_its_own_tokens() {
        let holds = Arc::new(Holds::default());
        let (a, b) = (p("/a"), p("/b"));
        let on = |root: &str| NewLock::new(p(root)).build_unstored();
        let ga = holds.acquire([(&a, false)], ["urn:a", "urn:mentioned"]);
        let gb = holds.acquire([(&b, false)], ["urn:b"]);
        let mut ga = ga;
        ga.rely_on(vec!["urn:a".into()]);
        assert!(holds.relies_on("urn:a"));
        assert!(!holds.relies_on("urn:mentioned"));
        assert!(holds.relies_on("urn:b"));
        drop(ga);
        assert!(holds.blocking(&on("/a")).is_empty());
        assert_eq!(holds.blocking(&on("/b")), [p("/b")]);
        drop(gb);
        assert!(holds.blocking(&on("/b")).is_empty());
    }
}
