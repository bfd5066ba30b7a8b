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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::path::key_is_ancestor;
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

/// A slot keeps a key buffer up to this size for its next hold; a larger one is freed.
const KEPT_KEY_BYTES: usize = 1024;

/// A path a write touches, as a hold records it: its canonical key, whether the client wrote
/// it with a trailing slash, and whether everything below it is touched too.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Touched<'a> {
    pub(crate) key: &'a str,
    pub(crate) trailing_slash: bool,
    pub(crate) subtree: bool,
}

impl<'a> Touched<'a> {
    /// `path` (`subtree`: and everything below it).
    #[inline]
    pub(crate) fn path(path: &'a ResourcePath, subtree: bool) -> Self {
        Self {
            key: path.as_str(),
            trailing_slash: path.has_trailing_slash(),
            subtree,
        }
    }
}

/// One held path: where its key is in its hold's buffer, and how it is held.
#[derive(Debug, Clone, Copy)]
struct HeldPath {
    start: usize,
    end: usize,
    trailing_slash: bool,
    subtree: bool,
}

/// One slot of the registry, written in place (no hold is moved in or out). The keys are
/// copied into the slot's own buffer, which the slot's next hold reuses: a write registers
/// its paths with no allocation and no reference count.
#[derive(Debug, Default)]
struct Hold {
    /// Shared with the hold's guard, which ends the hold by clearing it: one store, without
    /// the registry's mutex. A slot is reused only once this is `false`.
    live: Arc<AtomicBool>,
    /// The held paths' canonical keys, one after another; a key that starts the memory of
    /// the key before it (a parent) is not copied again.
    keys: String,
    paths: Vec<HeldPath>,
    tokens: Vec<String>,
}

impl Hold {
    fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Each held path's key, with how it is held.
    fn paths(&self) -> impl Iterator<Item = (&str, HeldPath)> {
        self.paths.iter().map(|held| {
            let key = self.keys.get(held.start..held.end).unwrap_or_default();
            (key, *held)
        })
    }

    /// Forget the previous hold of this slot (its guard is gone), keeping the buffers unless
    /// a long path made the key buffer large.
    fn reset(&mut self) {
        if self.keys.capacity() > KEPT_KEY_BYTES {
            self.keys = String::new();
        } else {
            self.keys.clear();
        }
        self.paths.clear();
        self.tokens.clear();
    }
}

/// The in-flight writes of one layer (shared by all its services).
#[derive(Debug, Default)]
pub(crate) struct Holds {
    inner: Mutex<HoldsInner>,
}

/// A slab of holds. A write takes a slot whose hold has ended, looking at a few slots from
/// where the last search stopped and adding a slot when those are all live (so the slab
/// stays within a small factor of the most writes ever in flight at once); its guard ends
/// the hold without the mutex. Only a LOCK or UNLOCK looks at every slot.
#[derive(Debug, Default)]
struct HoldsInner {
    slots: Vec<Hold>,
    cursor: usize,
}

impl HoldsInner {
    /// Slots looked at for an ended hold before a new one is added.
    const PROBES: usize = 8;

    fn live(&self) -> impl Iterator<Item = &Hold> {
        self.slots.iter().filter(|h| h.is_live())
    }

    /// A slot whose hold has ended, or a new one.
    #[inline]
    fn free_slot(&mut self) -> usize {
        let n = self.slots.len();
        for _ in 0..n.min(Self::PROBES) {
            let i = if self.cursor < n { self.cursor } else { 0 };
            self.cursor = i + 1;
            if !self.slots[i].is_live() {
                return i;
            }
        }
        self.slots.push(Hold::default());
        n
    }
}

/// Ends its hold when dropped.
#[derive(Debug)]
pub(crate) struct HoldGuard {
    live: Arc<AtomicBool>,
}

impl Holds {
    /// Register an in-flight write touching `paths` (at most [`MAX_HELD`], further ones are
    /// not expected and ignored), relying on `tokens`.
    // Inlined into the write fast path whatever the code-generation units turn out to be
    // (when it was not, an unlocked PUT cost ≈ 50 instructions more).
    #[inline]
    pub(crate) fn acquire<'a>(
        &self,
        paths: impl IntoIterator<Item = Touched<'a>>,
        tokens: Vec<String>,
    ) -> HoldGuard {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let slot = g.free_slot();
        let hold = &mut g.slots[slot];
        hold.reset();
        // The previous key as given, and where its copy starts: a key that is the start of
        // the same memory (a parent borrowed from its child's key, or sharing its child's
        // buffer) is already copied.
        let mut previous: Option<(&str, usize)> = None;
        for touched in paths.into_iter().take(MAX_HELD) {
            let start = match previous {
                Some((prev, at))
                    if prev.as_ptr() == touched.key.as_ptr() && touched.key.len() <= prev.len() =>
                {
                    at
                }
                _ => {
                    let at = hold.keys.len();
                    hold.keys.push_str(touched.key);
                    at
                }
            };
            hold.paths.push(HeldPath {
                start,
                end: start + touched.key.len(),
                trailing_slash: touched.trailing_slash,
                subtree: touched.subtree,
            });
            previous = Some((touched.key, start));
        }
        if !tokens.is_empty() {
            hold.tokens = tokens;
        }
        // Under the mutex, like every reader of the slot's paths and tokens.
        hold.live.store(true, Ordering::Relaxed);
        let live = Arc::clone(&hold.live);
        drop(g);
        HoldGuard { live }
    }

    /// The paths of in-flight writes that a new `lock` would cover or sit under a removal of.
    pub(crate) fn blocking(&self, lock: &Lock) -> Vec<ResourcePath> {
        let root = lock.root.as_str();
        let infinity = lock.depth == LockDepth::Infinity;
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for hold in g.live() {
            for (key, held) in hold.paths() {
                let covered = root == key || (infinity && key_is_ancestor(root, key));
                let removed = held.subtree && key_is_ancestor(key, root);
                if covered || removed {
                    out.push(ResourcePath::from_key(key, held.trailing_slash));
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
        // The slot's paths and tokens stay until its next hold replaces them; nobody reads
        // them once this is clear.
        self.live.store(false, Ordering::Release);
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
        let guard = holds.acquire(
            [Touched::path(&ab, false), Touched::path(&d, true)],
            vec!["urn:x".into()],
        );
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
        let ga = holds.acquire([Touched::path(&a, false)], Vec::new());
        let gb = holds.acquire([Touched::path(&b, false)], Vec::new());
        drop(ga);
        let gc = holds.acquire([Touched::path(&c, false)], Vec::new());
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

    #[test]
    fn a_slot_reuses_its_key_buffer_and_frees_a_long_one() {
        let holds = Holds::default();
        let on = |root: &str| NewLock::new(p(root)).build_unstored();
        let slot = |holds: &Holds| {
            let g = holds.inner.lock().unwrap();
            assert_eq!(g.slots.len(), 1, "one slot, reused");
            (g.slots[0].keys.clone(), g.slots[0].keys.capacity())
        };
        let (ab, dir) = (p("/a/b"), p("/dir/"));
        drop(holds.acquire(
            [Touched::path(&ab, false), Touched::path(&dir, false)],
            Vec::new(),
        ));
        // An ended hold blocks nothing, though its keys stay until the slot is reused.
        assert!(holds.blocking(&on("/a/b")).is_empty());
        let (keys, kept) = slot(&holds);
        assert_eq!(keys, "/a/b/dir");
        // The next hold of the slot writes into the same buffer, and only its own paths
        // count; a held collection keeps its trailing slash.
        let g = holds.acquire([Touched::path(&dir, false)], Vec::new());
        assert_eq!(slot(&holds), ("/dir".to_owned(), kept));
        assert!(holds.blocking(&on("/a/b")).is_empty());
        let blocked = holds.blocking(&on("/dir"));
        assert_eq!(blocked, [p("/dir")]);
        assert_eq!(blocked[0].href(), "/dir/");
        drop(g);
        // A key longer than a slot keeps is held like any other; the slot's next hold
        // starts from a new, small buffer.
        let long = p(&format!("/{}", "x".repeat(2 * KEPT_KEY_BYTES)));
        let g = holds.acquire([Touched::path(&long, false)], Vec::new());
        assert_eq!(
            holds.blocking(&on(long.as_str())),
            std::slice::from_ref(&long)
        );
        drop(g);
        assert!(holds.blocking(&on(long.as_str())).is_empty());
        let _g = holds.acquire([Touched::path(&ab, false)], Vec::new());
        let (keys, capacity) = slot(&holds);
        assert_eq!(keys, "/a/b");
        assert!(capacity <= KEPT_KEY_BYTES, "{capacity}");
    }

    #[test]
    fn the_slab_grows_only_when_the_slots_looked_at_are_live() {
        let holds = Holds::default();
        let on = |root: &str| NewLock::new(p(root)).build_unstored();
        let slots = |holds: &Holds| holds.inner.lock().unwrap().slots.len();
        let paths: Vec<ResourcePath> = (0..40).map(|i| p(&format!("/f{i}"))).collect();
        let acquire = |path| holds.acquire([Touched::path(path, false)], Vec::new());
        let mut live: Vec<Option<HoldGuard>> = paths.iter().map(|p| Some(acquire(p))).collect();
        assert_eq!(slots(&holds), 40, "all live: one slot each");
        // End every other hold: new holds take those slots, wherever the search starts.
        for guard in live.iter_mut().step_by(2) {
            *guard = None;
        }
        let other = p("/other");
        let again: Vec<_> = (0..20).map(|_| acquire(&other)).collect();
        assert_eq!(slots(&holds), 40, "every ended slot reused");
        for (i, path) in paths.iter().enumerate() {
            assert_eq!(holds.blocking(&on(path.as_str())).len(), i % 2, "/f{i}");
        }
        assert_eq!(holds.blocking(&on("/other")).len(), 20);
        // Every slot live: one more hold adds a slot.
        let extra = acquire(&other);
        assert_eq!(slots(&holds), 41);
        drop((live, again, extra));
        assert!(holds.blocking(&on("/other")).is_empty());
        let all: Vec<_> = paths.iter().map(acquire).collect();
        assert_eq!(slots(&holds), 41, "all ended: no slot added");
        drop(all);
    }

    #[test]
    fn a_parent_sharing_its_childs_memory_is_not_copied_again() {
        let holds = Holds::default();
        let on = |root: &str| NewLock::new(p(root)).build_unstored();
        let doc = p("/docs/a/report");
        let parent = doc.parent().unwrap();
        let other = p("/docs/a"); // equal to the parent, in a buffer of its own
        let _g = holds.acquire(
            [
                Touched::path(&doc, false),
                Touched::path(&parent, false),
                Touched::path(&other, true),
            ],
            Vec::new(),
        );
        let keys = holds.inner.lock().unwrap().slots[0].keys.clone();
        assert_eq!(keys, "/docs/a/report/docs/a");
        let coll = p("/docs/a/");
        assert_eq!(holds.blocking(&on("/docs/a")), [coll.clone(), coll.clone()]);
        // Below the subtree the third path holds, too.
        assert_eq!(holds.blocking(&on("/docs/a/report")), [doc, coll]);
        assert!(holds.blocking(&on("/docs")).is_empty());
    }
}
