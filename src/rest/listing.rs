//! `GET /{path}?list`: the locks at or below a path, a page of locked resources at a time, so
//! that one request reads a bounded part of the store however many locks it holds.

use crate::store::{by_root_then_token, Lock, LockQuery};
use crate::ResourcePath;

/// Most locked resources a page of a list holds (with all of their locks).
pub(crate) const PAGE: usize = 100;

/// The store query of the page after `after` (from the start without it): one resource more
/// than the page holds, which tells whether another page follows.
pub(crate) fn query(path: &ResourcePath, after: Option<ResourcePath>) -> LockQuery {
    LockQuery::new().subtree(path.clone()).page(after, PAGE + 1)
}

/// The page `query` asked for, from the store's answer `locks`: the locks rooted at or below
/// `path` (after `after`), of the first [`PAGE`] resources in path order, by root then token;
/// and where the next page starts, when one follows.
pub(crate) fn page(
    path: &ResourcePath,
    after: Option<&ResourcePath>,
    mut locks: Vec<Lock>,
) -> (Vec<Lock>, Option<ResourcePath>) {
    locks.retain(|l| path.contains(&l.root) && after.is_none_or(|a| l.root > *a));
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
