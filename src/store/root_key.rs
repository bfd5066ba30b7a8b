//! [`RootKey`]: a lock root as a key of the memory store's ordered index, compared inline.
//!
//! Every LOCK on a new root inserts one key into the ordered `BTreeMap`, and the UNLOCK of its
//! last lock removes it: a dozen or more key comparisons each, more as the store grows. `str`
//! compares through a `memcmp` call, which for paths of a few dozen bytes costs more in the call
//! than in the comparing. [`RootKey`] orders exactly like `str` (byte order), but compares eight
//! bytes at a time as big-endian words, inline.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::sync::Arc;

/// A root path as an ordered-index key: ordered, compared and borrowed exactly like its `str`.
#[derive(Clone, Debug)]
pub(super) struct RootKey(pub(super) Arc<str>);

impl PartialEq for RootKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for RootKey {}

impl PartialOrd for RootKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RootKey {
    fn cmp(&self, other: &Self) -> Ordering {
        byte_order(self.0.as_bytes(), other.0.as_bytes())
    }
}

/// Lookups by `&str` (range scans) compare like the keys do, as `Borrow` requires.
impl Borrow<str> for RootKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// `a.cmp(b)` for byte slices: whole words first, compared as big-endian integers (which
/// orders them like their bytes), then at most seven bytes one by one, then the lengths.
#[inline]
fn byte_order(a: &[u8], b: &[u8]) -> Ordering {
    let (mut x, mut y) = (a, b);
    while let (Some((wx, rx)), Some((wy, ry))) =
        (x.split_first_chunk::<8>(), y.split_first_chunk::<8>())
    {
        if wx != wy {
            return u64::from_be_bytes(*wx).cmp(&u64::from_be_bytes(*wy));
        }
        (x, y) = (rx, ry);
    }
    for (bx, by) in x.iter().zip(y) {
        if bx != by {
            return bx.cmp(by);
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> RootKey {
        RootKey(Arc::from(s))
    }

    #[test]
    fn orders_exactly_like_str() {
        let mut samples: Vec<String> = [
            "",
            "/",
            "/a",
            "/a/",
            "/a/b",
            "/ab",
            "/a\0",
            "/a\0b",
            "/a\0\0\0\0\0\0\0b",
            "/s1/s2/s3/g1/f1",
            "/s1/s2/s3/g1/f10",
            "/s1/s2/s3/g10/f1",
            "/s1/s2/s3/g1/f1\0",
            "/docs/ä",
            "/docs/z",
            "/docs/\u{7f}",
            "/docs/\u{80}",
            "/12345678",
            "/1234567",
            "/123456789",
            "/1234567\0",
            "/1234567\u{ff}",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        // A deterministic spread of lengths (0..40) over a small alphabet with `\0` and a
        // multi-byte character, so tails, padding and equal prefixes all come up.
        let alphabet = ['\0', '/', 'a', 'b', 'é'];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..400 {
            let len = (next() % 40) as usize;
            let s: String = (0..len).map(|_| alphabet[(next() % 5) as usize]).collect();
            samples.push(s);
        }
        for a in &samples {
            for b in &samples {
                assert_eq!(key(a).cmp(&key(b)), a.as_str().cmp(b), "{a:?} vs {b:?}");
                assert_eq!(key(a) == key(b), a == b);
            }
        }
    }
}
