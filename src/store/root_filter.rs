//! A counting filter over the roots that hold locks.
//!
//! The memory store keeps every locked root in a SipHash-keyed table, and most checks look up
//! a path no lock is rooted at. This filter sits in front of that table: a `false` from
//! [`RootFilter::may_contain`] proves the path is not a root, so the check skips both the
//! SipHash and the table probe; a `true` only means "do the exact lookup".
//!
//! Each root bumps one byte counter, picked by a cheap keyed hash of its bytes; removing the
//! root decrements it again. A counter that reached 255 is *sticky*: it is never decremented
//! (it may count more roots than it can hold) until the filter is rebuilt. The owner keeps
//! about [`COUNTERS_PER_ROOT`] counters per counted root by rebuilding the filter from all its
//! roots when [`RootFilter::needs_growth`] says so; the size doubles at least each time, so
//! this is amortised `O(1)` per root added.
//!
//! The hash is deliberately **not** HashDoS-resistant: it reads the path a word at a time and
//! mixes with folded 64×64→128-bit multiplications, keyed with a per-store random seed. A
//! client who crafts paths that share counters with locked roots gains nothing but the exact
//! SipHash lookup the store would do without the filter; it can never make the filter answer
//! `false` for a counted root, so the store's answers never depend on the hash's quality.

use std::fmt;
use std::hash::{BuildHasher, RandomState};

/// Counters kept per counted root: about 1 in 8 uncounted paths hits a non-zero counter.
const COUNTERS_PER_ROOT: usize = 8;
/// The smallest filter that holds a counter at all.
const MIN_COUNTERS: usize = 1024;
/// A counter at this value stays there until the next rebuild.
const STICKY: u8 = u8::MAX;
/// Odd 64-bit mixing constants (the golden ratio and a MurmurHash3 finaliser constant).
const MUL: u64 = 0x9e37_79b9_7f4a_7c15;
const FINISH: u64 = 0xff51_afd7_ed55_8ccd;

/// A counting filter over the roots that hold locks. See the [module docs](self).
#[derive(Clone, Default)]
pub(super) struct RootFilter {
    /// A power of two of them, or none while no root is counted.
    counters: Vec<u8>,
    /// `64 - log2(counters.len())`: the index is the hash's high bits.
    shift: u32,
    /// Roots counted (added and not removed since).
    roots: usize,
    seed: u64,
}

impl fmt::Debug for RootFilter {
    /// The sizes only: neither the counters nor the seed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootFilter")
            .field("roots", &self.roots)
            .field("counters", &self.counters.len())
            .finish()
    }
}

impl RootFilter {
    /// An empty filter seeded from `keys` (the store's own random hash keys).
    pub(super) fn new(keys: &RandomState) -> Self {
        Self::with_seed(keys.hash_one(0u8))
    }

    fn with_seed(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    /// An empty filter with the same seed.
    pub(super) fn cleared(&self) -> Self {
        Self::with_seed(self.seed)
    }

    /// The number of roots counted.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.roots
    }

    /// Heap bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        self.counters.capacity()
    }

    /// `false` if `root` is certainly not counted; `true` if it may be.
    pub(super) fn may_contain(&self, root: &str) -> bool {
        self.roots > 0 && self.counters.get(self.index(root)).is_some_and(|&n| n > 0)
    }

    /// Count `root`. Afterwards the owner checks [`needs_growth`](Self::needs_growth).
    pub(super) fn add(&mut self, root: &str) {
        if self.counters.is_empty() {
            self.resize(MIN_COUNTERS);
        }
        self.bump(root);
    }

    /// Uncount `root`, which must have been counted. Frees the counters with the last root.
    pub(super) fn remove(&mut self, root: &str) {
        debug_assert!(self.roots > 0, "removing a root that was never counted");
        let i = self.index(root);
        if let Some(n) = self.counters.get_mut(i) {
            debug_assert!(*n > 0, "removing a root that was never counted");
            if *n != STICKY {
                *n = n.saturating_sub(1);
            }
        }
        self.roots = self.roots.saturating_sub(1);
        if self.roots == 0 {
            *self = self.cleared();
        }
    }

    /// Whether more roots are counted than the counters are sized for: then the owner
    /// [`rebuild`](Self::rebuild)s the filter from all its roots.
    pub(super) fn needs_growth(&self) -> bool {
        self.roots > self.counters.len() / COUNTERS_PER_ROOT
    }

    /// Count exactly `roots`, in counters sized for them (sticky counters are reset).
    pub(super) fn rebuild<'a>(&mut self, roots: impl ExactSizeIterator<Item = &'a str>) {
        *self = self.cleared();
        let wanted = roots.len().saturating_mul(COUNTERS_PER_ROOT);
        if wanted == 0 {
            return;
        }
        self.resize(wanted.next_power_of_two().max(MIN_COUNTERS));
        for root in roots {
            self.bump(root);
        }
    }

    /// Zeroed counters, `len` of them (a power of two).
    fn resize(&mut self, len: usize) {
        debug_assert!(len.is_power_of_two());
        self.counters = vec![0; len];
        self.shift = 64 - len.trailing_zeros();
    }

    fn bump(&mut self, root: &str) {
        let i = self.index(root);
        if let Some(n) = self.counters.get_mut(i) {
            *n = n.saturating_add(1);
        }
        self.roots += 1;
    }

    /// The counter for `root` (meaningless while there are none).
    fn index(&self, root: &str) -> usize {
        (self.hash(root.as_bytes()) >> self.shift) as usize
    }

    /// Word-at-a-time keyed hash: each 8-byte little-endian word (the tail zero-padded) is
    /// folded into the state with a multiplication, then the length is mixed in.
    fn hash(&self, bytes: &[u8]) -> u64 {
        let (words, tail) = bytes.as_chunks::<8>();
        let mut h = self.seed;
        for &word in words {
            h = fold(h ^ u64::from_le_bytes(word), MUL);
        }
        if !tail.is_empty() {
            let mut last = [0u8; 8];
            last[..tail.len()].copy_from_slice(tail);
            h = fold(h ^ u64::from_le_bytes(last), MUL);
        }
        fold(h ^ bytes.len() as u64, FINISH)
    }
}

/// The 128-bit product of `a` and `b`, its halves xor-ed together.
pub(super) fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A small deterministic xorshift generator (the tests need no real randomness).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn path(&mut self) -> String {
            let depth = 1 + self.next() % 4;
            (0..depth)
                .map(|_| format!("/s{}", self.next() % 5000))
                .collect()
        }
    }

    fn filter() -> RootFilter {
        RootFilter::new(&RandomState::new())
    }

    fn assert_no_false_negatives(f: &RootFilter, roots: &HashSet<String>) {
        assert_eq!(f.len(), roots.len());
        for r in roots {
            assert!(f.may_contain(r), "false negative for {r}");
        }
    }

    #[test]
    fn empty_filter_answers_false_and_holds_nothing() {
        let f = filter();
        assert!(!f.may_contain("/"));
        assert!(!f.may_contain("/a"));
        assert_eq!(f.memory_bytes(), 0);
        assert!(!f.needs_growth());
        let mut f = filter();
        f.add("/a");
        assert!(f.may_contain("/a"));
        f.remove("/a");
        assert!(!f.may_contain("/a"));
        assert_eq!(f.memory_bytes(), 0, "the last root frees the counters");
    }

    #[test]
    fn no_false_negatives_under_add_remove_and_growth() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut f = filter();
        let mut roots = HashSet::new();
        let mut grown = 0;
        for step in 0..20_000 {
            let path = rng.path();
            // Mostly adds early on, so the filter grows several times, then churn.
            if !rng.next().is_multiple_of(3) || step < 5_000 {
                if roots.insert(path.clone()) {
                    f.add(&path);
                    if f.needs_growth() {
                        f.rebuild(roots.iter().map(String::as_str));
                        grown += 1;
                    }
                }
            } else if let Some(r) = roots.iter().next().cloned() {
                roots.remove(&r);
                f.remove(&r);
            }
            if step % 1000 == 0 {
                assert_no_false_negatives(&f, &roots);
            }
        }
        assert!(grown >= 2, "the filter grew {grown} times");
        assert!(f.counters.len() >= roots.len() * COUNTERS_PER_ROOT);
        assert_no_false_negatives(&f, &roots);
        for r in roots.clone() {
            roots.remove(&r);
            f.remove(&r);
        }
        assert_no_false_negatives(&f, &roots);
        assert_eq!(f.memory_bytes(), 0);
    }

    #[test]
    fn uncounted_paths_are_mostly_ruled_out() {
        let mut f = filter();
        for i in 0..100 {
            f.add(&format!("/locked/{i}"));
        }
        let hits = (0..10_000)
            .filter(|i| f.may_contain(&format!("/free/{i}.txt")))
            .count();
        // 100 roots in 1024 counters: about 9 % of other paths collide.
        assert!(hits < 1_500, "{hits} of 10000 uncounted paths passed");
    }

    #[test]
    fn removal_clears_a_counter_held_alone() {
        let mut f = filter();
        let a = "/a/alone";
        f.add(a);
        let b = (0..)
            .map(|i| format!("/b/{i}"))
            .find(|p| f.index(p) != f.index(a))
            .unwrap_or_default();
        f.add(&b);
        f.remove(a);
        assert!(!f.may_contain(a), "its counter went back to zero");
        assert!(f.may_contain(&b));
    }

    #[test]
    fn saturated_counters_are_sticky_until_rebuilt() {
        let mut f = filter();
        f.add("/x");
        let shared = f.index("/x");
        // Find roots sharing the counter of `/x` until it saturates.
        let mut same: Vec<String> = (0..)
            .map(|i| format!("/y{i}"))
            .filter(|p| f.index(p) == shared)
            .take(usize::from(STICKY) + 5)
            .collect();
        for p in &same {
            f.add(p);
        }
        assert_eq!(f.counters[shared], STICKY);
        f.remove("/x");
        for p in same.drain(..) {
            f.remove(&p);
            if f.len() > 0 {
                assert!(f.may_contain("/x"), "a saturated counter never goes down");
            }
        }
        assert_eq!(f.len(), 0);
        assert!(!f.may_contain("/x"), "an empty filter holds nothing");
        // A rebuild resets it.
        f.add("/z");
        let x = f.index("/x");
        f.counters[x] = STICKY;
        assert!(f.may_contain("/x"));
        f.rebuild(["/z"].into_iter());
        assert!(f.may_contain("/z"));
        assert!(!f.may_contain("/x") || f.index("/x") == f.index("/z"));
    }

    #[test]
    fn seeds_differ_between_stores_and_survive_clearing() {
        let a = filter();
        let b = filter();
        assert_ne!(a.seed, b.seed);
        assert_eq!(a.cleared().seed, a.seed);
        let mut c = a.clone();
        c.add("/a");
        c.rebuild(std::iter::empty());
        assert_eq!(c.seed, a.seed);
    }
}
