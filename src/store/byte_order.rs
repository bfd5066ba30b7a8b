//! [`byte_order`]: `str`'s order for the memory store's roots, compared inline.
//!
//! Reports with several roots (a subtree query, a depth-infinity LOCK's conflicts) are sorted
//! by root. `str` compares through a `memcmp` call, which for paths of a few dozen bytes costs
//! more in the call than in the comparing; this orders exactly the same, eight bytes at a time
//! as big-endian words, inline.

use std::cmp::Ordering;

/// `a.cmp(b)` for byte slices: whole words first, compared as big-endian integers (which
/// orders them like their bytes), then at most seven bytes one by one, then the lengths.
#[inline]
pub(super) fn byte_order(a: &[u8], b: &[u8]) -> Ordering {
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
                let order = byte_order(a.as_bytes(), b.as_bytes());
                assert_eq!(order, a.as_str().cmp(b), "{a:?} vs {b:?}");
            }
        }
    }
}
