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

use crate::store::{Lock, LockQuery};
use crate::ResourcePath;

/// One path the request touches, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Need {
    pub(crate) path: ResourcePath,
    /// Also every lock rooted below `path` (the request removes or replaces the subtree).
    pub(crate) subtree: bool,
}

/// When to remove the locks at and below a path after the inner service answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CleanupWhen {
    /// After any 2xx other than 207 (the resource was removed).
    Removed,
    /// After 204 only (an existing destination was replaced).
    Replaced,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    pub(crate) needs: Vec<Need>,
    /// `(resource, parent)`: a write that may create `resource`; the parent's depth-0 locks
    /// must then be satisfied too (decision D4).
    pub(crate) may_create: Option<(ResourcePath, ResourcePath)>,
    pub(crate) cleanup: Vec<(ResourcePath, CleanupWhen)>,
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
            "PROPPATCH" => plan.covering(target),
            "MKCOL" => {
                plan.covering(target);
                plan.parent(target);
            }
            "DELETE" => {
                plan.removal(target);
                plan.cleanup.push((target.clone(), CleanupWhen::Removed));
            }
            "MOVE" => {
                plan.removal(target);
                plan.cleanup.push((target.clone(), CleanupWhen::Removed));
                if let Some(d) = destination {
                    plan.removal(d);
                    plan.cleanup.push((d.clone(), CleanupWhen::Replaced));
                }
            }
            "COPY" => {
                if let Some(d) = destination {
                    plan.removal(d);
                    plan.cleanup.push((d.clone(), CleanupWhen::Replaced));
                }
            }
            // PUT, POST, PATCH and every other write: modify R, or create it.
            _ => {
                plan.covering(target);
                if let Some(parent) = target.parent() {
                    plan.needs.push(Need {
                        path: parent.clone(),
                        subtree: false,
                    });
                    plan.may_create = Some((target.clone(), parent));
                }
            }
        }
        plan
    }

    fn covering(&mut self, path: &ResourcePath) {
        self.needs.push(Need {
            path: path.clone(),
            subtree: false,
        });
    }

    fn parent(&mut self, path: &ResourcePath) {
        if let Some(p) = path.parent() {
            self.covering(&p);
        }
    }

    /// DELETE-like: the resource, everything below it, and its parent's membership.
    fn removal(&mut self, path: &ResourcePath) {
        self.needs.push(Need {
            path: path.clone(),
            subtree: true,
        });
        self.parent(path);
    }

    /// The store query answering every need.
    pub(crate) fn query(&self) -> LockQuery {
        let mut q = LockQuery::new();
        for n in &self.needs {
            q.push(n.path.clone(), n.subtree);
        }
        q
    }

    /// The locks among `locks` whose tokens the request must submit regardless of existence.
    pub(crate) fn required<'a>(&self, locks: &'a [Lock]) -> Vec<&'a Lock> {
        locks
            .iter()
            .filter(|l| {
                self.needs.iter().any(|n| {
                    let creating_parent = self
                        .may_create
                        .as_ref()
                        .is_some_and(|(_, parent)| *parent == n.path);
                    // The parent of a may-create write is only asked for its membership
                    // locks, which `create_only` returns; its covering locks that also cover
                    // the target are caught by the target's own need.
                    !creating_parent
                        && (l.covers(&n.path) || (n.subtree && n.path.is_ancestor_of(&l.root)))
                })
            })
            .collect()
    }

    /// The locks that must be satisfied only if the write creates its target: locks on the
    /// parent that do not cover the target (depth-0 locks on the parent collection).
    pub(crate) fn create_only<'a>(&self, locks: &'a [Lock]) -> Vec<&'a Lock> {
        let Some((target, parent)) = &self.may_create else {
            return Vec::new();
        };
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
        assert_eq!(plan.cleanup, [(p("/c/r"), CleanupWhen::Removed)]);
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
