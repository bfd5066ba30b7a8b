//! Which resources a request touches and which locks it must satisfy (RFC 4918 §7, §7.4–7.6,
//! §9.6, §9.8–9.10): the one place that says so, for every guarded method.
//!
//! | request | locks whose token is required |
//! |---|---|
//! | PUT, POST, PATCH, other writes on R | every lock covering R; when R does not exist (the write creates it), also every lock on R's parent |
//! | PROPPATCH R | every lock covering R |
//! | MKCOL R | every lock covering R and every lock on R's parent |
//! | DELETE R | every lock covering R or rooted below R, and every lock on R's parent |
//! | MOVE S → D | S as for DELETE; D as for DELETE (an existing D is replaced) |
//! | COPY S → D | D as for DELETE; nothing on the source |
//! | LOCK R (new) | when R does not exist (the LOCK creates it), every lock on R's parent; conflicts with locks on R are the store's to find |
//!
//! Locks are judged per resource: each exclusive lock needs its own token, and of the shared
//! locks on one resource any one will do (RFC 4918 §6.2; see `crate::store::check`).
//! Only the resource's own paths decide; the store answers for all of them in one query.

use crate::store::{Lock, LockQuery, QueryTarget};
use crate::ResourcePath;

/// When a need applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum When {
    /// Whatever the state of the resource.
    #[default]
    Always,
    /// Only when the request creates its target (a new member of the parent collection).
    Creating,
}

/// One path the request touches, and how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Need {
    /// Index of the path in the plan's query targets.
    target: usize,
    /// Also every lock rooted below the path (the request removes or replaces the subtree).
    subtree: bool,
    when: When,
}

/// When to remove the locks at and below a path after the inner service answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CleanupWhen {
    /// After any 2xx other than 207 (the resource was removed).
    Removed,
    /// After 204 only (an existing destination was replaced).
    Replaced,
}

/// Most needs a request has: MOVE (source and destination, each with its parent).
pub(crate) const MAX_NEEDS: usize = 4;

/// The plan holds every path once, in its store query; needs and the cleanup list refer to the
/// query's targets by index.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// The store query answering every need (the caller adds the `If` header's tokens;
    /// targets are only ever appended or merged, so the indexes stay valid).
    pub(crate) query: LockQuery,
    needs: [Need; MAX_NEEDS],
    len: usize,
    /// The target a `When::Creating` need depends on.
    created: Option<usize>,
    cleanup: Vec<(usize, CleanupWhen)>,
}

impl Plan {
    /// The plan for `method` on `target`, with `destination` for COPY and MOVE.
    pub(crate) fn new(
        method: &str,
        target: &ResourcePath,
        destination: Option<&ResourcePath>,
    ) -> Plan {
        let mut plan = Plan {
            query: LockQuery {
                targets: Vec::with_capacity(MAX_NEEDS),
                ..LockQuery::default()
            },
            ..Plan::default()
        };
        match method {
            "PROPPATCH" => {
                plan.need(target.clone(), false, When::Always);
            }
            "MKCOL" => {
                plan.need(target.clone(), false, When::Always);
                plan.parent(target, When::Always);
            }
            "DELETE" => {
                let t = plan.removal(target);
                plan.cleanup.push((t, CleanupWhen::Removed));
            }
            "MOVE" => {
                let t = plan.removal(target);
                plan.cleanup.push((t, CleanupWhen::Removed));
                if let Some(d) = destination {
                    let t = plan.removal(d);
                    plan.cleanup.push((t, CleanupWhen::Replaced));
                }
            }
            "COPY" => {
                if let Some(d) = destination {
                    let t = plan.removal(d);
                    plan.cleanup.push((t, CleanupWhen::Replaced));
                }
            }
            "LOCK" => {
                plan.created = Some(plan.target(target.clone()));
                plan.parent(target, When::Creating);
            }
            // PUT, POST, PATCH and every other write: modify R, or create it.
            _ => {
                plan.created = Some(plan.need(target.clone(), false, When::Always));
                plan.parent(target, When::Creating);
            }
        }
        plan
    }

    /// The query target for `path`, added if new; returns its index.
    fn target(&mut self, path: ResourcePath) -> usize {
        match self.query.targets.iter().position(|t| t.path == path) {
            Some(i) => i,
            None => {
                self.query.targets.push(QueryTarget {
                    path,
                    descendants: false,
                });
                self.query.targets.len() - 1
            }
        }
    }

    /// Add a need for `path`; returns its target index.
    fn need(&mut self, path: ResourcePath, subtree: bool, when: When) -> usize {
        let target = self.target(path);
        self.query.targets[target].descendants |= subtree;
        if self.len < MAX_NEEDS {
            self.needs[self.len] = Need {
                target,
                subtree,
                when,
            };
            self.len += 1;
        }
        target
    }

    #[inline]
    fn parent(&mut self, path: &ResourcePath, when: When) {
        if let Some(p) = path.parent() {
            self.need(p, false, when);
        }
    }

    /// DELETE-like: the resource, everything below it, and its parent's membership.
    fn removal(&mut self, path: &ResourcePath) -> usize {
        let t = self.need(path.clone(), true, When::Always);
        self.parent(path, When::Always);
        t
    }

    fn path(&self, target: usize) -> &ResourcePath {
        &self.query.targets[target].path
    }

    /// The paths the request touches, each with `true` when it also touches everything below
    /// (what an in-flight write holds, see `crate::holds`).
    pub(crate) fn touched(&self) -> impl Iterator<Item = (&ResourcePath, bool)> {
        self.needs[..self.len]
            .iter()
            .map(|n| (self.path(n.target), n.subtree))
    }

    /// The resource whose existence decides the `When::Creating` needs.
    pub(crate) fn created(&self) -> Option<&ResourcePath> {
        self.created.map(|t| self.path(t))
    }

    /// Whether the request removes something (its locks then go after a success).
    pub(crate) fn removes(&self) -> bool {
        !self.cleanup.is_empty()
    }

    /// The paths whose locks go after a success, and when.
    pub(crate) fn cleanup(&self) -> impl Iterator<Item = (&ResourcePath, CleanupWhen)> {
        self.cleanup.iter().map(|&(t, when)| (self.path(t), when))
    }

    /// The locks among `locks` the request must satisfy under `when`, one group per resource
    /// they protect, each given to `judge`: the locks covering a needed path, and for a subtree
    /// need, the locks rooted at each resource below it.
    pub(crate) fn for_each_group<'a>(
        &self,
        locks: &'a [Lock],
        when: When,
        mut judge: impl FnMut(&[&'a Lock]),
    ) {
        let mut group: Vec<&Lock> = Vec::new();
        for n in self.needs[..self.len].iter().filter(|n| n.when == when) {
            let path = self.path(n.target);
            group.clear();
            group.extend(locks.iter().filter(|l| l.covers(path)));
            if !group.is_empty() {
                judge(&group);
            }
            if n.subtree {
                group.clear();
                group.extend(locks.iter().filter(|l| path.is_ancestor_of(&l.root)));
                group.sort_by(|a, b| a.root.as_str().cmp(b.root.as_str()));
                for same_root in group.chunk_by(|a, b| a.root == b.root) {
                    judge(same_root);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LockDepth, NewLock};

    fn p(s: &str) -> ResourcePath {
        ResourcePath::parse(s).unwrap()
    }
    fn lock(root: &str, depth: LockDepth) -> Lock {
        NewLock::new(p(root)).depth(depth).build_unstored()
    }
    impl Plan {
        /// The groups `for_each_group` gives, collected.
        fn groups<'a>(&self, locks: &'a [Lock], when: When) -> Vec<Vec<&'a Lock>> {
            let mut groups = Vec::new();
            self.for_each_group(locks, when, |g| groups.push(g.to_vec()));
            groups
        }
    }
    fn roots(groups: Vec<Vec<&Lock>>) -> Vec<Vec<String>> {
        groups
            .into_iter()
            .map(|g| g.iter().map(|l| l.root.as_str().to_owned()).collect())
            .collect()
    }

    #[test]
    fn plain_writes_touch_the_target_and_its_parent() {
        let t = p("/c/r");
        for method in ["PUT", "POST", "PATCH", "MKCOL", "BIND", "X-CUSTOM"] {
            let plan = Plan::new(method, &t, None);
            let touched: Vec<_> = plan.touched().map(|(p, s)| (p.clone(), s)).collect();
            assert_eq!(touched, [(t.clone(), false), (p("/c"), false)], "{method}");
            let queried: Vec<_> = plan.query.targets.iter().map(|q| q.path.clone()).collect();
            assert_eq!(queried, [t.clone(), p("/c")], "{method}");
            assert!(!plan.removes(), "{method}");
        }
        let proppatch = Plan::new("PROPPATCH", &t, None);
        assert_eq!(proppatch.touched().count(), 1);
        assert_eq!(proppatch.created(), None);
    }

    #[test]
    fn put_needs_covering_and_parent_membership_only_on_create() {
        let locks = vec![
            lock("/c", LockDepth::Zero),
            lock("/c/r", LockDepth::Zero),
            lock("/", LockDepth::Infinity),
            lock("/c/r/below", LockDepth::Zero),
            lock("/c/other", LockDepth::Zero),
        ];
        let plan = Plan::new("PUT", &p("/c/r"), None);
        assert_eq!(plan.created(), Some(&p("/c/r")));
        assert_eq!(
            roots(plan.groups(&locks, When::Always)),
            [vec!["/c/r", "/"]]
        );
        assert_eq!(
            roots(plan.groups(&locks, When::Creating)),
            [vec!["/c", "/"]]
        );
    }

    #[test]
    fn lock_needs_only_the_parent_and_only_on_create() {
        let locks = vec![lock("/c", LockDepth::Zero), lock("/c/r", LockDepth::Zero)];
        let plan = Plan::new("LOCK", &p("/c/r"), None);
        assert!(plan.groups(&locks, When::Always).is_empty());
        assert_eq!(roots(plan.groups(&locks, When::Creating)), [vec!["/c"]]);
        assert_eq!(plan.touched().count(), 1, "the parent");
    }

    #[test]
    fn delete_groups_each_locked_resource_below() {
        let locks = vec![
            lock("/c", LockDepth::Zero),
            lock("/c/r/x/y", LockDepth::Zero),
            lock("/c/r/x/y", LockDepth::Zero),
            lock("/c/r/z", LockDepth::Zero),
            lock("/c/rr", LockDepth::Zero),
        ];
        let plan = Plan::new("DELETE", &p("/c/r"), None);
        assert_eq!(
            roots(plan.groups(&locks, When::Always)),
            [vec!["/c/r/x/y", "/c/r/x/y"], vec!["/c/r/z"], vec!["/c"]]
        );
        assert!(plan.groups(&locks, When::Creating).is_empty());
        assert_eq!(
            plan.cleanup().collect::<Vec<_>>(),
            [(&p("/c/r"), CleanupWhen::Removed)]
        );
    }

    #[test]
    fn copy_ignores_the_source_and_move_checks_both() {
        let locks = vec![lock("/src", LockDepth::Zero), lock("/dst", LockDepth::Zero)];
        let copy = Plan::new("COPY", &p("/src"), Some(&p("/dst")));
        assert_eq!(roots(copy.groups(&locks, When::Always)), [vec!["/dst"]]);
        let mv = Plan::new("MOVE", &p("/src"), Some(&p("/dst")));
        assert_eq!(mv.groups(&locks, When::Always).len(), 2);
    }

    #[test]
    fn mkcol_needs_parent_depth0_always() {
        let locks = vec![lock("/c", LockDepth::Zero)];
        let mkcol = Plan::new("MKCOL", &p("/c/new"), None);
        assert_eq!(mkcol.groups(&locks, When::Always).len(), 1);
        let proppatch = Plan::new("PROPPATCH", &p("/c/new"), None);
        assert!(proppatch.groups(&locks, When::Always).is_empty());
    }
}
