//! `GET /{path}?list`: the locks at or below a path, a page of locked resources at a time, so
//! that one request reads a bounded part of the store however many locks it holds.

use crate::store::{by_root_then_token, Lock, LockQuery};
use crate::ResourcePath;

/// Most locked resources a page of a list holds (with all of their locks).
pub(crate) const PAGE: usize = 100;

/// The store query of the page after `after` (from the start without it) of everybody's
/// locks, or of `holder`'s: one resource more than the page holds, which tells whether
/// another page follows.
pub(crate) fn query(
    path: &ResourcePath,
    after: Option<ResourcePath>,
    holder: Option<&str>,
) -> LockQuery {
    (LockQuery::new().subtree(path.clone())).page(after, PAGE + 1, holder)
}

/// The page `query` asked for, from the store's answer `locks`: the locks rooted at or below
/// `path` (after `after`; `holder`'s only, when given), of the first [`PAGE`] resources in
/// path order, by root then token; and where the next page starts, when one follows. The
/// next page starts after a resource of this page, so a listing of one holder's locks never
/// names a resource it holds no lock on.
pub(crate) fn page(
    path: &ResourcePath,
    after: Option<&ResourcePath>,
    holder: Option<&str>,
    mut locks: Vec<Lock>,
) -> (Vec<Lock>, Option<ResourcePath>) {
    locks.retain(|l| {
        path.contains(&l.root)
            && after.is_none_or(|a| l.root > *a)
            && holder.is_none_or(|h| l.principal.as_deref() == Some(h))
    });
    locks.sort_unstable_by(by_root_then_token);
    let end: usize = (locks.chunk_by(|a, b| a.root == b.root))
        .take(PAGE)
        .map(<[Lock]>::len)
        .sum();
    let next = (end < locks.len()).then(|| locks[end - 1].root.clone());
    locks.truncate(end);
    (locks, next)
}

/// The `after` value of the page after `root`: its canonical path, with the characters a
/// query string gives a meaning to (`&`, `=`, `+`) escaped; parsing it gives `root` back.
pub(crate) fn next_link(root: &ResourcePath) -> String {
    let mut link = String::from("?list&after=");
    for c in root.as_str().chars() {
        match c {
            '&' => link.push_str("%26"),
            '=' => link.push_str("%3D"),
            '+' => link.push_str("%2B"),
            c => link.push(c),
        }
    }
    link
}
