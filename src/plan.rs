//! Which locks a request must satisfy (RFC 4918 §7, §7.4–7.6, §9.6, §9.8, §9.9).
//!
//! | request | locks whose token is required |
//! |---|---|
//! | PUT, POST, PATCH, PROPPATCH, other writes on R | every lock covering R; when the request may create R, also the depth-0 locks on R's parent (only when R turns out not to exist) |
//! | MKCOL R | every lock covering R and every lock on R's parent |
//! | DELETE R | every lock covering R or below R, and every lock on R's parent |
//! | MOVE S → D | S as for DELETE; D as for DELETE (an existing D is replaced) |
//! | COPY S → D | D as for DELETE; nothing on the source |
//!
//! Only the resource's own paths decide; the store answers for all of them in one query.

use crate::store::{Lock, LockQuery, QueryTarget};
use crate::ResourcePath;

/// One path the request touches, and how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Need {
    /// Index of the path in the plan's query targets.
    target: usize,
    /// Also every lock rooted below the path (the request removes or replaces the subtree).
    subtree: bool,
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

/// Whether a plain write (one that neither removes nor has a destination: PUT, POST, PATCH,
/// PROPPATCH, MKCOL, extension methods) touches its target's parent as well as the target:
/// every one but PROPPATCH may create the target, which changes the parent's membership.
/// [`Plan::new`] and the write fast path (`crate::methods::fast`) both follow it.
pub(crate) fn plain_write_touches_parent(method: &str) -> bool {
    method != "PROPPATCH"
}

/// The plan holds every path once, in its store query; needs, the may-create pair and the
/// cleanup list refer to the query's targets by index (no per-request path clones).
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// The store query answering every need (the caller may add more targets; targets are
    /// only ever appended or merged, so the indexes stay valid).
    pub(crate) query: LockQuery,
    needs: [Need; MAX_NEEDS],
    len: usize,
    /// `(resource, parent)`: a write that may create `resource`; the parent's depth-0 locks
    /// must then be satisfied too (decision D4).
    may_create: Option<(usize, usize)>,
    cleanup: Vec<(usize, CleanupWhen)>,
}

impl Plan {
    /// The plan for `method` on `target`, with `destination` for COPY and MOVE.
    pub(crate) fn new(
        method: &str,
        target: &ResourcePath,
        destination: Option<&ResourcePath>,
    ) -> Plan {
        let mut plan = Plan::default();
        match method {
            "PROPPATCH" => {
                plan.need(target.clone(), false);
            }
            "MKCOL" => {
                plan.need(target.clone(), false);
                plan.parent(target);
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
            // PUT, POST, PATCH and every other write: modify R, or create it.
            _ => {
                let t = plan.need(target.clone(), false);
                if let Some(parent) = target.parent() {
                    let p = plan.need(parent, false);
                    plan.may_create = Some((t, p));
                }
            }
        }
        plan
    }

    /// Add a need for `path`; returns its target index.
    fn need(&mut self, path: ResourcePath, subtree: bool) -> usize {
        let target = match self.query.targets.iter().position(|t| t.path == path) {
            Some(i) => i,
            None => {
                self.query.targets.push(QueryTarget {
                    path,
                    descendants: false,
                });
                self.query.targets.len() - 1
            }
        };
        self.query.targets[target].descendants |= subtree;
        if self.len < MAX_NEEDS {
            self.needs[self.len] = Need { target, subtree };
            self.len += 1;
        }
        target
    }

    fn parent(&mut self, path: &ResourcePath) {
        if let Some(p) = path.parent() {
            self.need(p, false);
        }
    }

    /// DELETE-like: the resource, everything below it, and its parent's membership.
    fn removal(&mut self, path: &ResourcePath) -> usize {
        let t = self.need(path.clone(), true);
        self.parent(path);
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

    /// The paths whose locks go after a success, and when.
    pub(crate) fn cleanup(&self) -> impl Iterator<Item = (&ResourcePath, CleanupWhen)> {
        self.cleanup.iter().map(|&(t, when)| (self.path(t), when))
    }

    /// The locks among `locks` whose tokens the request must submit regardless of existence.
    pub(crate) fn required<'a>(&self, locks: &'a [Lock]) -> Vec<&'a Lock> {
        let needs = &self.needs[..self.len];
        locks
            .iter()
            .filter(|l| {
                needs.iter().any(|n| {
                    let creating_parent = self
                        .may_create
                        .is_some_and(|(_, parent)| *self.path(parent) == *self.path(n.target));
                    let path = self.path(n.target);
                    // The parent of a may-create write is only asked for its membership
                    // locks, which `create_only` returns; its covering locks that also cover
                    // the target are caught by the target's own need.
                    !creating_parent
                        && (l.covers(path) || (n.subtree && path.is_ancestor_of(&l.root)))
                })
            })
            .collect()
    }

    /// The locks that must be satisfied only if the write creates its target: locks on the
    /// parent that do not cover the target (depth-0 locks on the parent collection).
    pub(crate) fn create_only<'a>(&self, locks: &'a [Lock]) -> Vec<&'a Lock> {
        let Some((target, parent)) = self.may_create else {
            return Vec::new();
        };
        let (target, parent) = (self.path(target), self.path(parent));
        locks
            .iter()
            .filter(|l| l.covers(parent) && !l.covers(target))
            .collect()
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

    #[test]
    fn plain_write_paths_match_the_plan() {
        let t = p("/c/r");
        for method in [
            "PUT",
            "POST",
            "PATCH",
            "PROPPATCH",
            "MKCOL",
            "BIND",
            "X-CUSTOM",
        ] {
            let plan = Plan::new(method, &t, None);
            let touched: Vec<_> = plan.touched().map(|(p, s)| (p.clone(), s)).collect();
            let mut want = vec![(t.clone(), false)];
            if plain_write_touches_parent(method) {
                want.push((p("/c"), false));
            }
            assert_eq!(touched, want, "{method}");
            let queried: Vec<_> = plan.query.targets.iter().map(|q| q.path.clone()).collect();
            let want_paths: Vec<_> = want.iter().map(|(p, _)| p.clone()).collect();
            assert_eq!(queried, want_paths, "{method}");
            assert!(
                plan.query.targets.iter().all(|q| !q.descendants),
                "{method}"
            );
            assert!(plan.cleanup().next().is_none(), "{method}");
        }
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
        let req: Vec<_> = plan
            .required(&locks)
            .iter()
            .map(|l| l.root.as_str().to_owned())
            .collect();
        assert_eq!(req, ["/c/r", "/"]);
        let extra: Vec<_> = plan
            .create_only(&locks)
            .iter()
            .map(|l| l.root.as_str().to_owned())
            .collect();
        assert_eq!(extra, ["/c"]);
    }

    #[test]
    fn delete_needs_subtree_and_parent() {
        let locks = vec![
            lock("/c", LockDepth::Zero),
            lock("/c/r/x/y", LockDepth::Zero),
            lock("/c/rr", LockDepth::Zero),
        ];
        let plan = Plan::new("DELETE", &p("/c/r"), None);
        let req: Vec<_> = plan
            .required(&locks)
            .iter()
            .map(|l| l.root.as_str().to_owned())
            .collect();
        assert_eq!(req, ["/c", "/c/r/x/y"]);
        assert!(plan.create_only(&locks).is_empty());
        assert_eq!(
            plan.cleanup().collect::<Vec<_>>(),
            [(&p("/c/r"), CleanupWhen::Removed)]
        );
    }

    #[test]
    fn copy_ignores_the_source_and_move_checks_both() {
        let locks = vec![lock("/src", LockDepth::Zero), lock("/dst", LockDepth::Zero)];
        let copy = Plan::new("COPY", &p("/src"), Some(&p("/dst")));
        let req: Vec<_> = copy
            .required(&locks)
            .iter()
            .map(|l| l.root.as_str().to_owned())
            .collect();
        assert_eq!(req, ["/dst"]);
        let mv = Plan::new("MOVE", &p("/src"), Some(&p("/dst")));
        assert_eq!(mv.required(&locks).len(), 2);
    }

    #[test]
    fn mkcol_needs_parent_depth0() {
        let locks = vec![lock("/c", LockDepth::Zero)];
        assert_eq!(
            Plan::new("MKCOL", &p("/c/new"), None)
                .required(&locks)
                .len(),
            1
        );
        assert_eq!(
            Plan::new("PROPPATCH", &p("/c/new"), None)
                .required(&locks)
                .len(),
            0
        );
    }
}
