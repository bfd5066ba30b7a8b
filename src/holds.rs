//! Closing the check-then-write gap inside one process.
//!
//! A write is checked against the store and then forwarded; without more, a LOCK could be
//! granted between the two, and the write would land under somebody else's fresh lock. So
//! every checked write registers a *hold* — the paths it touches and the tokens it submitted —
//! **before** it asks the store, and drops it when the inner service has answered (or the
//! request is cancelled). A new lock is created in the store **first** and then compared with
//! the holds; if it touches an in-flight write it is rolled back and refused. Whatever the
//! interleaving, either the write sees the new lock (and is refused) or the LOCK sees the hold
//! (and is refused). An UNLOCK of a token an in-flight write relies on is refused too.
//!
//! Holds live in the layer, so they cover the requests of one process. Across instances
//! sharing a Redis store, the [`FencingToken`] given to the inner service is the guarantee:
//! storage that remembers the highest fence it has seen per resource can reject a stale
//! writer.

use std::sync::{Arc, Mutex};

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

/// Most paths one write touches (MOVE: source and destination, each with its parent).
pub(crate) const MAX_HELD: usize = crate::plan::MAX_NEEDS;

/// The paths of one hold, inline (no allocation per write); `true`: and everything below.
pub(crate) type HeldPaths = [Option<(ResourcePath, bool)>; MAX_HELD];

/// One slot of the registry, written and cleared in place (no hold is moved in or out).
#[derive(Debug, Default)]
struct Hold {
    live: bool,
    paths: HeldPaths,
    tokens: Vec<String>,
}

/// The in-flight writes of one layer (shared by all its services).
#[derive(Debug, Default)]
pub(crate) struct Holds {
    inner: Mutex<HoldsInner>,
}

/// A slab of holds: a write takes a free slot and its guard gives that slot back, so both
/// are `O(1)`; only a LOCK or UNLOCK looks at every live hold.
#[derive(Debug, Default)]
struct HoldsInner {
    slots: Vec<Hold>,
    free: Vec<usize>,
}

impl HoldsInner {
    fn live(&self) -> impl Iterator<Item = &Hold> {
        self.slots.iter().filter(|h| h.live)
    }
}

/// Removes its hold when dropped.
#[derive(Debug)]
pub(crate) struct HoldGuard {
    holds: Arc<Holds>,
    slot: usize,
}

impl Holds {
    /// Register an in-flight write touching `paths` (`true`: and everything below; at most
    /// [`MAX_HELD`], further ones are not expected and ignored), relying on `tokens`.
    pub(crate) fn acquire<'a>(
        self: &Arc<Self>,
        paths: impl IntoIterator<Item = (&'a ResourcePath, bool)>,
        tokens: Vec<String>,
    ) -> HoldGuard {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let slot = match g.free.pop() {
            Some(i) => i,
            None => {
                g.slots.push(Hold::default());
                g.slots.len() - 1
            }
        };
        let hold = &mut g.slots[slot];
        hold.live = true;
        for (held, (path, subtree)) in hold.paths.iter_mut().zip(paths) {
            *held = Some((path.clone(), subtree));
        }
        if !tokens.is_empty() {
            hold.tokens = tokens;
        }
        drop(g);
        HoldGuard {
            holds: Arc::clone(self),
            slot,
        }
    }

    /// The paths of in-flight writes that a new `lock` would cover or sit under a removal of.
    pub(crate) fn blocking(&self, lock: &Lock) -> Vec<ResourcePath> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for hold in g.live() {
            for (path, subtree) in hold.paths.iter().flatten() {
                let covered = lock.root == *path
                    || (lock.depth == LockDepth::Infinity && lock.root.is_ancestor_of(path));
                let removed = *subtree && path.is_ancestor_of(&lock.root);
                if covered || removed {
                    out.push(path.clone());
                }
            }
        }
        out
    }

    /// Whether an in-flight write relies on `token`.
    pub(crate) fn relies_on(&self, token: &str) -> bool {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let relied = g.live().any(|h| h.tokens.iter().any(|t| t == token));
        relied
    }
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        let mut g = self.holds.inner.lock().unwrap_or_else(|e| e.into_inner());
        let hold = &mut g.slots[self.slot];
        hold.live = false;
        // Cleared in place: the paths are shared with the request (a reference count each),
        // and the token list is usually empty.
        for held in &mut hold.paths {
            if held.take().is_none() {
                break;
            }
        }
        hold.tokens.clear();
        g.free.push(self.slot);
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
        let guard = holds.acquire([(&ab, false), (&d, true)], vec!["urn:x".into()]);
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
    fn slots_are_reused_and_each_guard_releases_its_own() {
        let holds = Arc::new(Holds::default());
        let (a, b, c) = (p("/a"), p("/b"), p("/c"));
        let on = |root: &str| NewLock::new(p(root)).build_unstored();
        let ga = holds.acquire([(&a, false)], Vec::new());
        let gb = holds.acquire([(&b, false)], Vec::new());
        drop(ga);
        let gc = holds.acquire([(&c, false)], Vec::new());
        assert_eq!(
            holds.inner.lock().unwrap().slots.len(),
            2,
            "slot of /a reused"
        );
        assert!(holds.blocking(&on("/a")).is_empty());
        assert_eq!(holds.blocking(&on("/b")), [p("/b")]);
        assert_eq!(holds.blocking(&on("/c")), [p("/c")]);
        drop(gb);
        assert!(holds.blocking(&on("/b")).is_empty());
        assert_eq!(holds.blocking(&on("/c")), [p("/c")]);
        drop(gc);
        assert!(holds.blocking(&on("/c")).is_empty());
    }
}
