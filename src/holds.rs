//! Closing the check-then-write gap inside one process.
//!
//! A write is checked against the store and then forwarded; without more, a LOCK could be
//! granted between the two, and the write would land under somebody else's fresh lock. So
//! every checked write registers a *hold* — the paths it touches — **before** it asks the
//! store, and drops it when the inner service's answer is over: its body has ended, failed or
//! been dropped, or the request was cancelled (a handler may keep writing while its answer
//! streams). A
//! new lock is created in the store **first** and then compared with the holds; if it touches
//! an in-flight write it is rolled back and refused. Whatever the interleaving, either the
//! write sees the new lock (and is refused) or the LOCK sees the hold (and is refused).
//!
//! A hold also names the tokens its write relies on, so an UNLOCK cannot pull a lock from
//! under a write that is using it. Until the store has answered that is every token the
//! request submitted; then only those of the locks the write is required to satisfy, while
//! its verdict may wait for a probe; from the verdict on, only the tokens of the locks it did
//! satisfy. A token that is merely mentioned (`Not <token>`, or a lock of another principal)
//! pins nothing while the request body streams in, nor while a probe keeps the verdict
//! waiting. An UNLOCK (or a release or
//! break through the lock API) marks its tokens first, if no write relies on them, and a write
//! whose verdict would rely on a marked token is refused: whatever the interleaving, either
//! the removal sees the write or the write sees the removal. Locks that go whatever happens
//! are marked without asking: those of a resource a DELETE or MOVE removes, from the moment
//! the removal is let through until they are gone, and those left for the next request to
//! remove (`crate::leftovers`). So is a new lock until its LOCK has answered: no write relies
//! on a lock whose grant may still be rolled back. A mark that ended while a write was being
//! checked counts too (the store's answer the write judges may predate the removal): the
//! marks that ended while writes were in flight are remembered, the last 4 096 of them, and a
//! write checked for longer than that relies on no lock at all.
//!
//! Starting and ending a write costs the same however many other writes are in flight: each
//! takes a slot of the table and gives it back. A new lock and an UNLOCK look at every
//! in-flight write, so their cost grows with the number of writes in flight (bounded by the
//! server's connections; figures in BENCHMARKS.md, "Writes in flight").
//!
//! Holds live in the layer, so they cover the requests of one process. Across instances
//! sharing a Redis store, the [`FencingToken`] given to the inner service is the guarantee:
//! storage that remembers the highest fence it has seen per resource can reject a stale
//! writer.

use std::collections::{HashMap, VecDeque};
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

/// One slot per in-flight write. A write takes a free slot and gives it back when it ends,
/// so starting and ending a write cost the same however many others are in flight (a
/// thousand slow uploads do not slow every other write down). A slot keeps its buffers when
/// it is freed: the table stays at the most writes that were ever in flight at once, and a
/// write allocates nothing once the slots have grown. `live` lists the slots in use, so a
/// LOCK looks at the writes in flight now, not at every slot a past burst left behind.
#[derive(Debug, Default)]
struct Inner {
    slots: Vec<Slot>,
    /// The slots of no write (their rows are empty).
    free: Vec<usize>,
    /// The slots of the writes in flight, in no order.
    live: Vec<usize>,
    /// The tokens of the locks being removed (UNLOCK, a release or a break, the locks of a
    /// removed resource) or not yet granted, each with the number of its marks under way.
    removing: HashMap<String, u32>,
    /// Marks that ended while writes were in flight, oldest first, each with the moment it
    /// ended: a write checked before then may have read the lock the store no longer has
    /// (see [`HoldGuard::rely_on`]). At most [`MAX_ENDED`]; emptied when no write is in flight.
    ended: VecDeque<(u64, String)>,
    /// The moment the newest mark that `ended` no longer holds ended: a write checked before
    /// then cannot tell which of its tokens were removed meanwhile.
    forgotten: u64,
    /// The count of marks ended so far: the clock of `ended`.
    clock: u64,
}

/// Most ended marks remembered (about 80 bytes each).
const MAX_ENDED: usize = 4096;

/// The rows of one in-flight write: each path with `true` when everything below it is
/// touched too, and the tokens it relies on.
#[derive(Debug, Default)]
struct Slot {
    paths: Vec<(ResourcePath, bool)>,
    tokens: Vec<String>,
    /// Where this slot is in `live` while it is in use.
    at: usize,
}

impl Inner {
    fn live(&self) -> impl Iterator<Item = &Slot> {
        self.live.iter().map(|&i| &self.slots[i])
    }
}

/// Unmarks the tokens of a removal when dropped.
#[derive(Debug)]
pub(crate) struct RemovalGuard {
    holds: Arc<Holds>,
    tokens: Vec<String>,
}

/// Ends its hold when dropped.
#[derive(Debug)]
pub(crate) struct HoldGuard {
    holds: Arc<Holds>,
    slot: usize,
    /// Whether the hold names tokens (a write without an `If` header names none).
    has_tokens: bool,
    /// The `clock` when the hold began: a mark that ended after it may have ended after the
    /// store answered this write, with the lock gone.
    since: u64,
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
        let slot = match g.free.pop() {
            Some(slot) => slot,
            None => {
                g.slots.push(Slot::default());
                g.slots.len() - 1
            }
        };
        let at = g.live.len();
        g.live.push(slot);
        let rows = &mut g.slots[slot];
        rows.at = at;
        rows.paths.extend(
            paths
                .into_iter()
                .map(|(path, subtree)| (path.clone(), subtree)),
        );
        rows.tokens.extend(tokens.into_iter().map(str::to_owned));
        let has_tokens = !rows.tokens.is_empty();
        let since = g.clock;
        drop(g);
        HoldGuard {
            holds: Arc::clone(self),
            slot,
            has_tokens,
            since,
        }
    }

    /// The paths of in-flight writes that a new `lock` would cover or sit under a removal of.
    /// A LOCK asks this once; it looks at every in-flight write.
    pub(crate) fn blocking(&self, lock: &Lock) -> Vec<ResourcePath> {
        let infinity = lock.depth == LockDepth::Infinity;
        let g = self.lock();
        let mut out = Vec::new();
        for (path, subtree) in g.live().flat_map(|s| &s.paths) {
            let covered = lock.root == *path || (infinity && lock.root.is_ancestor_of(path));
            let removed = *subtree && path.is_ancestor_of(&lock.root);
            if covered || removed {
                out.push(path.clone());
            }
        }
        out
    }

    /// Mark the locks of `tokens` as being removed, unless an in-flight write relies on one
    /// of them (`None`). Until the guard is dropped, no write's verdict relies on them.
    pub(crate) fn begin_removal<'t>(
        self: &Arc<Self>,
        tokens: impl IntoIterator<Item = &'t str>,
    ) -> Option<RemovalGuard> {
        let tokens: Vec<String> = tokens.into_iter().map(str::to_owned).collect();
        let mut g = self.lock();
        if g.live().flat_map(|s| &s.tokens).any(|t| tokens.contains(t)) {
            return None;
        }
        Some(self.mark(&mut g, tokens))
    }

    /// Mark the locks of `tokens` as being removed whoever relies on them now: locks that go
    /// whatever happens (those of a resource a DELETE or MOVE removed, a lock nobody holds),
    /// and a lock not yet granted, which no write may rely on before its LOCK has answered.
    /// Until the guard is dropped, no write's verdict relies on them.
    pub(crate) fn withhold<'t>(
        self: &Arc<Self>,
        tokens: impl IntoIterator<Item = &'t str>,
    ) -> RemovalGuard {
        let tokens: Vec<String> = tokens.into_iter().map(str::to_owned).collect();
        let mut g = self.lock();
        self.mark(&mut g, tokens)
    }

    fn mark(self: &Arc<Self>, g: &mut MutexGuard<'_, Inner>, tokens: Vec<String>) -> RemovalGuard {
        for token in &tokens {
            *g.removing.entry(token.clone()).or_default() += 1;
        }
        RemovalGuard {
            holds: Arc::clone(self),
            tokens,
        }
    }
}

impl Drop for RemovalGuard {
    fn drop(&mut self) {
        let mut g = self.holds.lock();
        g.clock += 1;
        let now = g.clock;
        let remembered = !g.live.is_empty();
        for token in self.tokens.drain(..) {
            if let Some(marks) = g.removing.get_mut(&token) {
                *marks -= 1;
                if *marks == 0 {
                    g.removing.remove(&token);
                }
            }
            if remembered {
                g.ended.push_back((now, token));
            }
        }
        while g.ended.len() > MAX_ENDED {
            if let Some((at, _)) = g.ended.pop_front() {
                g.forgotten = at;
            }
        }
    }
}

impl HoldGuard {
    /// From now on the write relies on `tokens` only (the verdict's); `false`, relying on
    /// none, when one of them is being removed or was at any time since the hold began (the
    /// store's answer the verdict read may predate the removal): the write must then be
    /// refused.
    pub(crate) fn rely_on(&mut self, tokens: Vec<String>) -> bool {
        if !self.has_tokens && tokens.is_empty() {
            return true;
        }
        let mut g = self.holds.lock();
        let since = self.since;
        let lost = |t: &String| {
            g.removing.contains_key(t)
                || since < g.forgotten
                || (g.ended.iter().rev())
                    .take_while(|(at, _)| *at > since)
                    .any(|(_, ended)| ended == t)
        };
        let removed = tokens.iter().any(lost);
        self.has_tokens = !removed && !tokens.is_empty();
        let rows = &mut g.slots[self.slot].tokens;
        rows.clear();
        if !removed {
            rows.extend(tokens);
        }
        !removed
    }
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        let mut g = self.holds.lock();
        let rows = &mut g.slots[self.slot];
        rows.paths.clear();
        rows.tokens.clear();
        let at = rows.at;
        g.live.swap_remove(at);
        if let Some(&moved) = g.live.get(at) {
            g.slots[moved].at = at;
        }
        g.free.push(self.slot);
        if g.live.is_empty() {
            g.ended.clear();
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
        assert!(holds.begin_removal(["urn:x"]).is_none());
        assert!(holds.begin_removal(["urn:y"]).is_some());
        drop(guard);
        assert!(holds.blocking(&on("/a/b", LockDepth::Zero)).is_empty());
        assert!(holds.begin_removal(["urn:x"]).is_some());
    }

    #[test]
    fn each_guard_ends_its_own_hold_and_narrows_its_own_tokens() {
        let holds = Arc::new(Holds::default());
        let (a, b) = (p("/a"), p("/b"));
        let on = |root: &str| NewLock::new(p(root)).build_unstored();
        let ga = holds.acquire([(&a, false)], ["urn:a", "urn:mentioned"]);
        let gb = holds.acquire([(&b, false)], ["urn:b"]);
        let mut ga = ga;
        assert!(ga.rely_on(vec!["urn:a".into()]));
        assert!(holds.begin_removal(["urn:a"]).is_none());
        assert!(holds.begin_removal(["urn:mentioned"]).is_some());
        assert!(holds.begin_removal(["urn:b"]).is_none());
        drop(ga);
        assert!(holds.blocking(&on("/a")).is_empty());
        assert_eq!(holds.blocking(&on("/b")), [p("/b")]);
        drop(gb);
        assert!(holds.blocking(&on("/b")).is_empty());
    }

    #[test]
    fn a_write_relies_on_no_lock_being_removed() {
        let holds = Arc::new(Holds::default());
        let a = p("/a");
        let removal = holds
            .begin_removal(["urn:a"])
            .expect("no write relies on it");
        // A write checked meanwhile may not rely on it, nor take it up again later.
        let mut write = holds.acquire([(&a, false)], ["urn:a"]);
        assert!(!write.rely_on(vec!["urn:a".into()]));
        assert!(
            holds.begin_removal(["urn:a"]).is_some(),
            "the refused write relies on nothing"
        );
        drop(removal);
        // Nor once the removal has ended: its store answer may predate the removal.
        assert!(!write.rely_on(vec!["urn:a".into()]));
        drop(write);
        let mut write = holds.acquire([(&a, false)], ["urn:a"]);
        assert!(write.rely_on(vec!["urn:a".into()]));
        assert!(holds.begin_removal(["urn:a", "urn:b"]).is_none());
        drop(write);
        assert!(holds.begin_removal(["urn:a", "urn:b"]).is_some());
    }

    #[test]
    fn a_write_relies_on_no_lock_marked_while_it_was_checked() {
        let holds = Arc::new(Holds::default());
        let a = p("/a");
        let mut write = holds.acquire([(&a, false)], ["urn:a"]);
        // Marked and unmarked between the write's store answer and its verdict.
        drop(holds.withhold(["urn:a"]));
        assert!(!write.rely_on(vec!["urn:a".into()]));
        // A write checked afterwards is not concerned.
        let mut later = holds.acquire([(&a, false)], ["urn:a"]);
        assert!(later.rely_on(vec!["urn:a".into()]));
        drop((write, later));
        // With no write in flight, nothing is remembered.
        drop(holds.withhold(["urn:a"]));
        assert!(holds.lock().ended.is_empty());
    }

    #[test]
    fn past_the_marks_it_remembers_an_old_write_relies_on_nothing() {
        let holds = Arc::new(Holds::default());
        let (a, b) = (p("/a"), p("/b"));
        let mut old = holds.acquire([(&a, false)], ["urn:a"]);
        for i in 0..=MAX_ENDED {
            drop(holds.withhold([format!("urn:other{i}").as_str()]));
        }
        assert_eq!(holds.lock().ended.len(), MAX_ENDED);
        assert!(!old.rely_on(vec!["urn:a".into()]), "cannot tell: refused");
        let mut new = holds.acquire([(&b, false)], ["urn:a"]);
        assert!(new.rely_on(vec!["urn:a".into()]));
    }

    #[test]
    fn a_freed_slot_serves_the_next_write_with_only_its_rows() {
        let holds = Arc::new(Holds::default());
        let (a, b, c) = (p("/a"), p("/b"), p("/c"));
        let on = |root: &str| NewLock::new(p(root)).build_unstored();
        let ga = holds.acquire([(&a, true)], ["urn:a"]);
        let gb = holds.acquire([(&b, false)], ["urn:b"]);
        drop(ga);
        let gc = holds.acquire([(&c, false)], []);
        assert_eq!(gc.slot, 0, "the first write's slot is taken again");
        assert!(holds.blocking(&on("/a")).is_empty());
        assert!(holds.blocking(&on("/a/x")).is_empty());
        assert!(holds.begin_removal(["urn:a"]).is_some());
        assert_eq!(holds.blocking(&on("/c")), [p("/c")]);
        drop(gb);
        assert_eq!(holds.blocking(&on("/c")), [p("/c")]);
        assert!(holds.begin_removal(["urn:b"]).is_some());
        drop(gc);
        assert!(holds.blocking(&on("/c")).is_empty());
    }

    #[test]
    fn writes_one_after_another_reuse_one_slot() {
        let holds = Arc::new(Holds::default());
        let a = p("/a");
        for i in 0..1000 {
            let guard = holds.acquire([(&a, false)], [format!("urn:{i}").as_str()]);
            drop(guard);
        }
        let g = holds.lock();
        assert_eq!(g.slots.len(), 1);
        assert_eq!(g.free, [0]);
        assert!(g.live.is_empty());
    }

    proptest::proptest! {
        /// Whatever the order writes start and end in, the holds answer as the set of writes
        /// in flight does.
        #[test]
        fn holds_answer_for_the_writes_in_flight(
            steps in proptest::collection::vec((0usize..6, proptest::bool::ANY), 1..60)
        ) {
            let names = ["/a", "/a/b", "/c", "/a/b/d", "/e", "/c/f"];
            let holds = Arc::new(Holds::default());
            // (guard, path index, subtree) of each write in flight.
            let mut live: Vec<(HoldGuard, usize, bool)> = Vec::new();
            for (i, start) in steps {
                if start || live.is_empty() {
                    let subtree = i % 2 == 0;
                    let token = format!("urn:{i}");
                    let guard = holds.acquire([(&p(names[i]), subtree)], [token.as_str()]);
                    live.push((guard, i, subtree));
                } else {
                    live.remove(i % live.len());
                }
                for (j, name) in names.iter().enumerate() {
                    let lock = NewLock::new(p(name)).depth(LockDepth::Infinity).build_unstored();
                    let mut got: Vec<_> = holds.blocking(&lock).iter().map(|q| q.as_str().to_owned()).collect();
                    let mut want: Vec<_> = live
                        .iter()
                        .filter(|(_, k, subtree)| {
                            let path = p(names[*k]);
                            lock.root == path || lock.root.is_ancestor_of(&path) || (*subtree && path.is_ancestor_of(&lock.root))
                        })
                        .map(|(_, k, _)| names[*k].to_owned())
                        .collect();
                    got.sort();
                    want.sort();
                    proptest::prop_assert_eq!(got, want);
                    let relied = live.iter().any(|(_, k, _)| *k == j);
                    let token = format!("urn:{j}");
                    let removable = holds.begin_removal([token.as_str()]).is_some();
                    proptest::prop_assert_eq!(removable, !relied);
                }
            }
        }
    }
}
