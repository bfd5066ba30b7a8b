//! The lock layout shared by the store benches of this crate and of `benches/peer` (which
//! includes this file with `#[path]`), so both stores are measured on identical paths.
//!
//! For each checked depth `D` (2, 5, 10, 20), with `P = /s1/s2/…/s{D-2}` (empty for D = 2):
//!
//! - background: `N / 4` depth-0 exclusive locks at `P/g{i / 16}/f{i % 16}` (depth `D`,
//!   16 per collection), on paths no case checks;
//! - fixture: 16 depth-0 locks `P/gx/m0…m15`, and one depth-infinity lock on `P/gi`.
//!
//! The cases, all at depth `D` except the subtree one:
//!
//! | case | checked path | locks found |
//! |---|---|---|
//! | unlocked | `P/gx/free` (a sibling of locked members) | none |
//! | locked | `P/gx/m0` (its token submitted) | 1 |
//! | under-infinity | `P/gi/doc` (the ancestor's token submitted) | 1 |
//! | subtree | `P/gx` (depth `D - 1`, DELETE-style, all 16 tokens submitted) | 16 |
#![allow(dead_code)]

/// The checked depths.
pub(crate) const DEPTHS: [usize; 4] = [2, 5, 10, 20];
/// Locks held besides the fixture (spread over the four depth classes).
pub(crate) const NS: [usize; 4] = [0, 1_000, 100_000, 1_000_000];
/// Depth-0 locks in the fixture collection `P/gx`.
pub(crate) const MEMBERS: usize = 16;

/// `P` for depth `d`.
pub(crate) fn prefix(d: usize) -> String {
    (1..d.saturating_sub(1)).map(|j| format!("/s{j}")).collect()
}

/// The `i`-th background lock path of depth class `d`.
pub(crate) fn background(d: usize, i: usize) -> String {
    format!("{}/g{}/f{}", prefix(d), i / 16, i % 16)
}

pub(crate) fn collection(d: usize) -> String {
    format!("{}/gx", prefix(d))
}

pub(crate) fn member(d: usize, k: usize) -> String {
    format!("{}/gx/m{k}", prefix(d))
}

pub(crate) fn unlocked(d: usize) -> String {
    format!("{}/gx/free", prefix(d))
}

pub(crate) fn infinity_root(d: usize) -> String {
    format!("{}/gi", prefix(d))
}

pub(crate) fn under_infinity(d: usize) -> String {
    format!("{}/gi/doc", prefix(d))
}

/// The background locks to add to grow a store from `from` to `to` held locks: `(depth, i)`.
pub(crate) fn grow(from: usize, to: usize) -> impl Iterator<Item = (usize, usize)> {
    (from..to).map(|k| (DEPTHS[k % 4], k / 4))
}

/// A human label for `n`.
pub(crate) fn label(n: usize) -> String {
    match n {
        0 => "0".into(),
        n if n % 1_000_000 == 0 => format!("1e{}", 6 + (n / 1_000_000).ilog10()),
        n if n % 1_000 == 0 => format!("1e{}", n.ilog10()),
        n => n.to_string(),
    }
}
