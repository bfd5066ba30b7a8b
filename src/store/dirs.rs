//! [`Dirs`]: the memory store's index of the collections its locks are rooted in, so that the
//! locks below a collection are found from the collection itself — one hash lookup, then its
//! subtree — however many other locks the store holds.
//!
//! Every collection that holds a locked root, directly or further down, is a node: it knows its
//! parent, its subcollections in the index (a list through the nodes) and its members, the
//! chain heads of the roots directly in it (a list kept beside the store's slots, by slot id).
//! Adding the first root under a path creates the missing nodes up to `/`. Removing the last
//! one leaves them: a LOCK and UNLOCK on the same collection again and again neither creates
//! nor removes anything. Nodes with nothing below them are swept out together once the index
//! has doubled since the last sweep, so they never outnumber the others by more than that. A
//! node keeps its path as a prefix of one root below it (shared, not copied).
//!
//! Costs: adding or removing a root `O(1)` (plus `O(d)` when `d` collections are new),
//! visiting what is below a collection one lookup plus `O(collections + roots)` in its
//! subtree, a sweep `O(nodes)` (amortised `O(1)` per node created). An ordered index (a B-tree
//! of every root) would make each of these a descent of `O(log n)` string comparisons.

use std::sync::Arc;

use hashbrown::HashTable;

use crate::path::key_parent;

/// No node / no lock: the end of a list.
const NIL: u32 = u32::MAX;

/// Nodes the index may hold before its first sweep (and beyond twice the live ones after).
const MIN_SWEEP: usize = 64;

/// A collection with locked roots at or below it.
#[derive(Debug)]
struct Dir {
    /// The collection's path is `key[..len]`: `key` is a root below it.
    key: Arc<str>,
    len: u32,
    /// The path's hash in `by_path`, kept so that removing the node hashes nothing.
    hash: u64,
    parent: u32,
    /// The neighbours in the parent's list of subcollections.
    prev: u32,
    next: u32,
    first_sub: u32,
    /// The first and the last chain head rooted directly in this collection (in the order
    /// they were listed: for locks taken one after another in a collection, often already
    /// the order of their names).
    first_member: u32,
    last_member: u32,
}

impl Dir {
    fn path(&self) -> &str {
        self.key.get(..self.len as usize).unwrap_or_default()
    }
}

/// Where a chain head sits among its collection's members (`dir` is `NIL` for a slot that is
/// not a listed chain head).
#[derive(Clone, Copy, Debug)]
struct Member {
    dir: u32,
    prev: u32,
    next: u32,
}

const UNLISTED: Member = Member {
    dir: NIL,
    prev: NIL,
    next: NIL,
};

/// The collections holding locked roots (see the module docs).
#[derive(Debug)]
pub(super) struct Dirs {
    nodes: Vec<Option<Dir>>,
    free: Vec<u32>,
    by_path: HashTable<u32>,
    /// By lock slot id.
    members: Vec<Member>,
    /// Sweep when the index holds more nodes than this.
    sweep_above: usize,
}

impl Default for Dirs {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            free: Vec::new(),
            by_path: HashTable::new(),
            members: Vec::new(),
            sweep_above: MIN_SWEEP,
        }
    }
}

impl Dirs {
    /// Collections in the index (some may have nothing below them until the next sweep).
    pub(super) fn len(&self) -> usize {
        self.by_path.len()
    }

    /// Approximate heap bytes.
    pub(super) fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let buckets = if self.by_path.capacity() == 0 {
            0
        } else {
            (self.by_path.capacity() * 8 / 7).next_power_of_two()
        };
        self.nodes.capacity() * size_of::<Option<Dir>>()
            + self.free.capacity() * size_of::<u32>()
            + buckets * (size_of::<u32>() + 1)
            + self.members.capacity() * size_of::<Member>()
    }

    /// List slot `head` as the chain head of the canonical root `root`, in its parent
    /// collection, whose hash is `parent_hash`. `hash` hashes the paths of the collections
    /// above that are not in the index yet. The root `/` is below nothing and is not listed.
    pub(super) fn add(
        &mut self,
        head: u32,
        root: &Arc<str>,
        parent_hash: u64,
        hash: impl Fn(&str) -> u64,
    ) {
        let Some(parent) = key_parent(root) else {
            return;
        };
        let dir = self.find_or_insert(root, parent.len(), parent_hash, hash);
        let last = self.node(dir).map_or(NIL, |d| d.last_member);
        let m = Member {
            dir,
            prev: last,
            next: NIL,
        };
        self.set_member(head, m);
        self.splice(m, head, head);
    }

    /// The chain listed at slot `old` goes on with `new` (not listed) as its head.
    pub(super) fn replace(&mut self, old: u32, new: u32) {
        let m = self.member(old);
        if m.dir == NIL {
            return;
        }
        self.set_member(old, UNLISTED);
        self.set_member(new, m);
        self.splice(m, new, new);
    }

    /// Unlist the chain head at slot `head` (its root holds no lock any more). Its collection
    /// stays, until a sweep if nothing else is locked below it.
    pub(super) fn remove(&mut self, head: u32) {
        let m = self.member(head);
        if m.dir == NIL {
            return;
        }
        self.set_member(head, UNLISTED);
        self.splice(m, m.next, m.prev);
        if self.len() > self.sweep_above {
            self.sweep();
        }
    }

    /// Remove every node with nothing locked below it; the next sweep comes once the index
    /// has doubled.
    pub(super) fn sweep(&mut self) {
        for id in 0..self.nodes.len() as u32 {
            self.prune(id);
        }
        self.sweep_above = 2 * self.len() + MIN_SWEEP;
    }

    /// Call `f` with the chain head of every locked root strictly below `path` (its hash
    /// `hash`), in no particular order.
    pub(super) fn for_each_below(&self, path: &str, hash: u64, mut f: impl FnMut(u32)) {
        let Some(start) = self.find(path, hash) else {
            return;
        };
        // Depth first over the subcollections, through the parent and sibling links: no stack.
        let mut at = start;
        loop {
            let Some(dir) = self.node(at) else { return };
            let mut m = dir.first_member;
            while m != NIL {
                f(m);
                m = self.member(m).next;
            }
            if dir.first_sub != NIL {
                at = dir.first_sub;
                continue;
            }
            // Up until a collection with a next sibling, but never above `start`.
            loop {
                if at == start {
                    return;
                }
                let Some(dir) = self.node(at) else { return };
                if dir.next != NIL {
                    at = dir.next;
                    break;
                }
                at = dir.parent;
            }
        }
    }

    fn node(&self, id: u32) -> Option<&Dir> {
        self.nodes.get(id as usize).and_then(Option::as_ref)
    }

    fn node_mut(&mut self, id: u32) -> Option<&mut Dir> {
        self.nodes.get_mut(id as usize).and_then(Option::as_mut)
    }

    fn member(&self, slot: u32) -> Member {
        self.members.get(slot as usize).copied().unwrap_or(UNLISTED)
    }

    fn set_member(&mut self, slot: u32, m: Member) {
        let i = slot as usize;
        if self.members.len() <= i {
            self.members.resize(i + 1, UNLISTED);
        }
        self.members[i] = m;
    }

    /// Around the place of member `m` in its collection's list: point its predecessor (or the
    /// collection, when there is none) forward to `forward`, and its successor (or the
    /// collection) back to `back`.
    fn splice(&mut self, m: Member, forward: u32, back: u32) {
        match self.members.get_mut(m.prev as usize) {
            Some(prev) => prev.next = forward,
            None => {
                if let Some(d) = self.node_mut(m.dir) {
                    d.first_member = forward;
                }
            }
        }
        match self.members.get_mut(m.next as usize) {
            Some(next) => next.prev = back,
            None => {
                if let Some(d) = self.node_mut(m.dir) {
                    d.last_member = back;
                }
            }
        }
    }

    fn find(&self, path: &str, hash: u64) -> Option<u32> {
        let nodes = &self.nodes;
        self.by_path
            .find(hash, |&id| {
                nodes
                    .get(id as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|d| d.path() == path)
            })
            .copied()
    }

    /// The node of the collection `key[..len]` (hash `hash`), created with the missing ones
    /// above it if needed.
    fn find_or_insert(
        &mut self,
        key: &Arc<str>,
        len: usize,
        hash: u64,
        hasher: impl Fn(&str) -> u64,
    ) -> u32 {
        let path = key.get(..len).unwrap_or_default();
        if let Some(id) = self.find(path, hash) {
            return id;
        }
        // Up to the first collection that is in the index (or past `/`), then down again.
        let mut missing = vec![(len, hash)];
        let mut above = NIL;
        let mut at = path;
        while let Some(parent) = key_parent(at) {
            let h = hasher(parent);
            if let Some(id) = self.find(parent, h) {
                above = id;
                break;
            }
            missing.push((parent.len(), h));
            at = parent;
        }
        for (len, hash) in missing.into_iter().rev() {
            above = self.insert_node(key.clone(), len, hash, above);
        }
        above
    }

    fn insert_node(&mut self, key: Arc<str>, len: usize, hash: u64, parent: u32) -> u32 {
        let next = self.node(parent).map_or(NIL, |p| p.first_sub);
        let dir = Dir {
            key,
            len: len as u32,
            hash,
            parent,
            prev: NIL,
            next,
            first_sub: NIL,
            first_member: NIL,
            last_member: NIL,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = Some(dir);
                id
            }
            None => {
                self.nodes.push(Some(dir));
                (self.nodes.len() - 1) as u32
            }
        };
        if let Some(n) = self.node_mut(next) {
            n.prev = id;
        }
        if let Some(p) = self.node_mut(parent) {
            p.first_sub = id;
        }
        let nodes = &self.nodes;
        self.by_path.insert_unique(hash, id, |&i| {
            nodes
                .get(i as usize)
                .and_then(Option::as_ref)
                .map_or(0, |d| d.hash)
        });
        id
    }

    /// Remove node `id` and then its ancestors, as long as nothing below them is in the index.
    fn prune(&mut self, mut id: u32) {
        while let Some(dir) = self.node(id) {
            if dir.first_member != NIL || dir.first_sub != NIL {
                return;
            }
            let (parent, prev, next, hash) = (dir.parent, dir.prev, dir.next, dir.hash);
            match self.node_mut(prev) {
                Some(p) => p.next = next,
                None => {
                    if let Some(p) = self.node_mut(parent) {
                        p.first_sub = next;
                    }
                }
            }
            if let Some(n) = self.node_mut(next) {
                n.prev = prev;
            }
            if let Ok(found) = self.by_path.find_entry(hash, |&i| i == id) {
                found.remove();
            }
            self.nodes[id as usize] = None;
            self.free.push(id);
            id = parent;
        }
    }

    /// Panic if a node with nothing below it is left (after a sweep).
    #[cfg(test)]
    pub(super) fn assert_swept(&self) {
        for dir in self.nodes.iter().flatten() {
            let path = dir.path();
            assert!(
                dir.first_member != NIL || dir.first_sub != NIL,
                "{path} left"
            );
        }
    }

    /// Panic unless the index lists exactly `heads` (chain head, root) — each in the node of its
    /// parent path — and every node's links agree with the paths.
    #[cfg(test)]
    pub(super) fn assert_consistent(&self, heads: &[(u32, &str)], hash: impl Fn(&str) -> u64) {
        let mut listed = 0;
        for &(head, root) in heads {
            let m = self.member(head);
            let Some(parent) = key_parent(root) else {
                assert_eq!(m.dir, NIL, "the root / is not listed");
                continue;
            };
            listed += 1;
            let dir = self.node(m.dir).expect("a listed root's collection");
            assert_eq!(dir.path(), parent, "{root} listed in its parent");
            assert_eq!(self.find(parent, hash(parent)), Some(m.dir));
        }
        let mut members = 0;
        let mut nodes = 0;
        for (id, dir) in self.nodes.iter().enumerate() {
            let Some(dir) = dir else { continue };
            let id = id as u32;
            nodes += 1;
            assert_eq!(dir.hash, hash(dir.path()), "kept hash of {}", dir.path());
            assert_eq!(self.find(dir.path(), dir.hash), Some(id));
            match key_parent(dir.path()) {
                Some(parent) => {
                    let p = self.node(dir.parent).expect("parent node");
                    assert_eq!(p.path(), parent, "parent of {}", dir.path());
                }
                None => assert_eq!(dir.parent, NIL),
            }
            let (mut prev, mut m) = (NIL, dir.first_member);
            while m != NIL {
                let member = self.member(m);
                assert_eq!((member.dir, member.prev), (id, prev), "member links");
                members += 1;
                (prev, m) = (m, member.next);
            }
            assert_eq!(dir.last_member, prev, "last member of {}", dir.path());
            let (mut prev, mut s) = (NIL, dir.first_sub);
            while s != NIL {
                let sub = self.node(s).expect("sub node");
                assert_eq!((sub.parent, sub.prev), (id, prev), "subcollection links");
                (prev, s) = (s, sub.next);
            }
        }
        assert_eq!(members, listed, "members listed once each");
        assert_eq!(nodes, self.by_path.len());
        assert_eq!(nodes + self.free.len(), self.nodes.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::hash::{BuildHasher, RandomState};

    /// A small model: roots by slot id, checked against a scan after every step.
    struct Model {
        dirs: Dirs,
        roots: Vec<Option<Arc<str>>>,
        hasher: RandomState,
    }

    impl Model {
        fn new() -> Self {
            Self {
                dirs: Dirs::default(),
                roots: Vec::new(),
                hasher: RandomState::new(),
            }
        }

        fn hash(&self, path: &str) -> u64 {
            self.hasher.hash_one(path)
        }

        fn add(&mut self, root: &str) -> u32 {
            let id = self.roots.len() as u32;
            let root: Arc<str> = Arc::from(root);
            let parent_hash = key_parent(&root).map_or(0, |p| self.hash(p));
            let hasher = self.hasher.clone();
            self.dirs
                .add(id, &root, parent_hash, |p| hasher.hash_one(p));
            self.roots.push(Some(root));
            self.check();
            id
        }

        fn remove(&mut self, id: u32) {
            self.dirs.remove(id);
            self.roots[id as usize] = None;
            self.check();
        }

        /// Move root `id` to a new slot, as the store does when a chain's head goes.
        fn replace(&mut self, id: u32) -> u32 {
            let new = self.roots.len() as u32;
            self.dirs.replace(id, new);
            let root = self.roots[id as usize].take();
            self.roots.push(root);
            self.check();
            new
        }

        fn below(&self, path: &str) -> BTreeSet<u32> {
            let mut out = BTreeSet::new();
            self.dirs
                .for_each_below(path, self.hash(path), |h| assert!(out.insert(h)));
            out
        }

        /// What `below` must give: the live roots strictly under `path`, by scanning.
        fn scan_below(&self, path: &str) -> BTreeSet<u32> {
            (0..self.roots.len() as u32)
                .filter(|&i| {
                    self.roots[i as usize]
                        .as_deref()
                        .is_some_and(|r| crate::path::key_is_ancestor(path, r))
                })
                .collect()
        }

        fn check(&self) {
            let heads: Vec<(u32, &str)> = self
                .roots
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.as_deref().map(|r| (i as u32, r)))
                .collect();
            self.dirs.assert_consistent(&heads, |p| self.hash(p));
        }
    }

    #[test]
    fn finds_exactly_the_roots_below_and_prunes_empty_collections() {
        let mut m = Model::new();
        let a = m.add("/a");
        let ab = m.add("/a/b");
        let abc = m.add("/a/b/c/d/e");
        let ax = m.add("/a-x/y");
        let z = m.add("/z");
        let root = m.add("/");
        for path in [
            "/",
            "/a",
            "/a/b",
            "/a/b/c",
            "/a/b/c/d",
            "/a-x",
            "/z",
            "/nope",
            "/a/b/c/d/e",
        ] {
            assert_eq!(m.below(path), m.scan_below(path), "below {path}");
        }
        assert_eq!(m.below("/a"), BTreeSet::from([ab, abc]));
        assert_eq!(m.below("/"), BTreeSet::from([a, ab, abc, ax, z]));
        // `/a/b/c/d/e` was the only thing under `/a/b/c`: its collections stay until a sweep.
        m.remove(abc);
        assert!(m.below("/a/b").is_empty());
        assert_eq!(m.dirs.len(), 6);
        m.dirs.sweep();
        m.dirs.assert_swept();
        m.check();
        assert_eq!(
            m.dirs.len(),
            3,
            "/, /a, /a-x, with /a/b pruned too: {:?}",
            m.dirs
        );
        let ab2 = m.replace(ab);
        assert_eq!(m.below("/a"), BTreeSet::from([ab2]));
        for id in [a, ab2, ax, z, root] {
            m.remove(id);
        }
        assert!(m.below("/").is_empty());
        m.dirs.sweep();
        assert_eq!(m.dirs.len(), 0);
    }

    #[test]
    fn sweeps_once_the_index_has_doubled() {
        let mut m = Model::new();
        // Each root in a collection of its own: removing it leaves two empty nodes.
        let mut most = 0;
        for i in 0..200 {
            let id = m.add(&format!("/c{i}/d/doc"));
            m.remove(id);
            most = most.max(m.dirs.len());
        }
        assert!(most <= MIN_SWEEP + 3, "{most} nodes at most");
        // One collection used again and again: no node comes or goes.
        let mut m = Model::new();
        let keep = m.add("/keep/x");
        let first = m.add("/bench/dir/doc");
        m.remove(first);
        let nodes = m.dirs.nodes.len();
        for _ in 0..100 {
            let id = m.add("/bench/dir/doc");
            m.remove(id);
        }
        assert_eq!((m.dirs.nodes.len(), m.dirs.len()), (nodes, 4));
        assert_eq!(m.below("/"), BTreeSet::from([keep]));
    }

    #[test]
    fn random_operations_match_a_scan() {
        // A fixed-seed generator: the test is the same every run.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let names = ["a", "b", "c"];
        let mut m = Model::new();
        let mut live: Vec<u32> = Vec::new();
        for _ in 0..600 {
            match next(4) {
                0 | 1 => {
                    let depth = 1 + next(4);
                    let path: String = (0..depth)
                        .map(|_| format!("/{}", names[next(3) as usize]))
                        .collect();
                    live.push(m.add(&path));
                }
                2 if !live.is_empty() => {
                    let i = next(live.len() as u64) as usize;
                    m.remove(live.swap_remove(i));
                }
                _ if !live.is_empty() => {
                    let i = next(live.len() as u64) as usize;
                    live[i] = m.replace(live[i]);
                }
                _ => {}
            }
            let depth = next(3);
            let probe: String = (0..depth)
                .map(|_| format!("/{}", names[next(3) as usize]))
                .collect();
            let probe = if probe.is_empty() {
                "/".to_owned()
            } else {
                probe
            };
            assert_eq!(m.below(&probe), m.scan_below(&probe), "below {probe}");
            if next(50) == 0 {
                m.dirs.sweep();
                m.dirs.assert_swept();
                m.check();
            }
        }
    }
}
