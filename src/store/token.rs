//! [`LockToken`]: a lock token that costs no allocation for this crate's `urn:uuid:` tokens.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// `urn:uuid:` and 36 characters of hyphenated hex.
const URN_LEN: usize = 45;
const PREFIX: &[u8; 9] = b"urn:uuid:";
/// Where the two hex digits of each UUID byte go in the 36 characters after the prefix.
const BYTE_AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
/// The two lower-case hex digits of every byte value.
const HEX_PAIR: [[u8; 2]; 256] = {
    let digits = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [digits[i >> 4], digits[i & 0xF]];
        i += 1;
    }
    t
};
/// The canonical text with every hex digit zero: the template a render fills in.
const TEMPLATE: &[u8; URN_LEN] = b"urn:uuid:00000000-0000-0000-0000-000000000000";
/// Each lower-case hex digit's value; `0xFF` for every other byte.
const HEX_VAL: [u8; 256] = {
    let mut t = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};
/// A lock token (RFC 4918 §6.5): an absolute URI, `urn:uuid:<v4>` for the locks this crate
/// creates. It dereferences to `str` and compares, hashes and orders exactly like its text.
///
/// Why not a `String`: every lock a store reports carries its token, and a check reports every
/// lock covering the resource. A token in this crate's own form (`urn:uuid:` and lower-case
/// hyphenated hex, the form [`new_token`](crate::new_token) makes) is kept inline as its 45
/// ASCII bytes, beside the 16 bytes of its UUID, so creating, cloning or reporting it never
/// allocates and a store never parses it back; any other token (one a custom store or an old
/// deployment made) is kept verbatim in a shared `Arc<str>`, so a clone is a reference-count
/// increment.
///
/// ```
/// use std::collections::HashSet;
/// use tower_locks::LockToken;
///
/// let token = tower_locks::new_token();
/// assert!(token.starts_with("urn:uuid:")); // `Deref<Target = str>`
/// assert_eq!(token.len(), 45);
/// let text: String = token.to_string();
/// assert_eq!(token, text);
/// assert_eq!(LockToken::from(text.as_str()), token);
///
/// let foreign = LockToken::from("opaquelocktoken:f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
/// assert_eq!(foreign, "opaquelocktoken:f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
///
/// // Hashes like `str`: look tokens up by text.
/// let held: HashSet<LockToken> = [token.clone(), foreign].into_iter().collect();
/// assert!(held.contains(text.as_str()));
/// ```
#[derive(Clone)]
pub struct LockToken(Repr);

#[derive(Clone)]
enum Repr {
    /// A canonical `urn:uuid:` token: its text (ASCII only) and the UUID that text spells.
    Urn { text: [u8; URN_LEN], uuid: [u8; 16] },
    /// Any other token, verbatim.
    Other(Arc<str>),
}

impl LockToken {
    /// A new, unguessable token: `urn:uuid:` and a random (v4) UUID (RFC 4918 §6.5, §20.7).
    /// The same as [`new_token`](crate::new_token).
    ///
    /// ```
    /// use tower_locks::LockToken;
    ///
    /// let a = LockToken::random();
    /// assert!(a.starts_with("urn:uuid:") && a.len() == 45);
    /// assert_ne!(a, LockToken::random());
    /// ```
    pub fn random() -> Self {
        Self::from_uuid_bytes(*uuid::Uuid::new_v4().as_bytes())
    }

    /// The token for a UUID, in the canonical `urn:uuid:` form, rendered into the inline
    /// buffer: one table lookup per byte, no allocation (every reported lock pays one render).
    fn from_uuid_bytes(uuid: [u8; 16]) -> Self {
        Self(Repr::Urn {
            text: render_uuid_urn(&uuid),
            uuid,
        })
    }

    /// `text` as a token: inline when in the canonical form, else in a buffer from `shared`.
    fn from_text(text: &[u8], shared: impl FnOnce() -> Arc<str>) -> Self {
        match (parse_uuid_urn(text), <[u8; URN_LEN]>::try_from(text)) {
            (Some(uuid), Ok(text)) => Self(Repr::Urn { text, uuid }),
            _ => Self(Repr::Other(shared())),
        }
    }

    /// The token text.
    ///
    /// ```
    /// use tower_locks::LockToken;
    ///
    /// assert_eq!(LockToken::from("urn:x").as_str(), "urn:x");
    /// ```
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Built from ASCII only, so this never fails; an empty string if it ever did.
            Repr::Urn { text, .. } => std::str::from_utf8(text).unwrap_or_default(),
            Repr::Other(s) => s,
        }
    }

    /// The token text as bytes (without the UTF-8 check `as_str` makes).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Urn { text, .. } => text,
            Repr::Other(s) => s.as_bytes(),
        }
    }
}

/// A token as the memory store keeps it: a canonical `urn:uuid:` token as its 16 bytes (a
/// third of its text), any other one verbatim, sharing the buffer of the `LockToken`.
#[derive(Debug)]
pub(crate) enum StoredToken {
    Uuid([u8; 16]),
    Other(Arc<str>),
}

/// A token as looked up. Stored tokens hash and compare through theirs; parsing is exact (the
/// rule `LockToken` keeps its text by), so a text and the token it names meet in one form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum TokenKey<'a> {
    Uuid([u8; 16]),
    Other(&'a str),
}

impl<'a> TokenKey<'a> {
    pub(crate) fn parse(text: &'a str) -> Self {
        parse_uuid_urn(text.as_bytes()).map_or(TokenKey::Other(text), TokenKey::Uuid)
    }
}

impl StoredToken {
    pub(crate) fn of(token: &LockToken) -> Self {
        match &token.0 {
            Repr::Urn { uuid, .. } => StoredToken::Uuid(*uuid),
            Repr::Other(s) => StoredToken::Other(s.clone()),
        }
    }

    pub(crate) fn key(&self) -> TokenKey<'_> {
        match self {
            StoredToken::Uuid(b) => TokenKey::Uuid(*b),
            StoredToken::Other(s) => TokenKey::Other(s),
        }
    }

    /// The token as reported: rendered inline, or sharing the buffer; no allocation.
    pub(crate) fn to_token(&self) -> LockToken {
        match self {
            StoredToken::Uuid(b) => LockToken::from_uuid_bytes(*b),
            StoredToken::Other(s) => LockToken(Repr::Other(s.clone())),
        }
    }

    /// Whether this token is one of `submitted`, compared as text (like `LockToken`'s `==`):
    /// a UUID is rendered once rather than every submitted token parsed.
    pub(crate) fn submitted_in(&self, submitted: &[&str]) -> bool {
        match self {
            StoredToken::Uuid(b) => {
                let text = render_uuid_urn(b);
                submitted.iter().any(|t| same_text(t.as_bytes(), &text))
            }
            StoredToken::Other(s) => submitted.iter().any(|t| *t == &**s),
        }
    }
}

/// The canonical `urn:uuid:` text of a UUID: one table lookup per byte.
fn render_uuid_urn(uuid: &[u8; 16]) -> [u8; URN_LEN] {
    let mut text = *TEMPLATE;
    for (byte, at) in uuid.iter().zip(BYTE_AT) {
        let [hi, lo] = HEX_PAIR[usize::from(*byte)];
        text[PREFIX.len() + at] = hi;
        text[PREFIX.len() + at + 1] = lo;
    }
    text
}

/// The UUID of a token in exactly the form [`LockToken::random`] renders (`urn:uuid:` and
/// lower-case hyphenated hex), so that parsing and rendering are inverse and token comparison
/// stays byte-exact; `None` for any other text. Table-driven, no branch per digit.
fn parse_uuid_urn(s: &[u8]) -> Option<[u8; 16]> {
    let hex: &[u8; URN_LEN - PREFIX.len()] = s.strip_prefix(PREFIX.as_slice())?.try_into().ok()?;
    if hex[8] != b'-' || hex[13] != b'-' || hex[18] != b'-' || hex[23] != b'-' {
        return None;
    }
    let mut out = [0u8; 16];
    let mut bad = 0u8;
    for (o, at) in out.iter_mut().zip(BYTE_AT) {
        let hi = HEX_VAL[usize::from(hex[at])];
        let lo = HEX_VAL[usize::from(hex[at + 1])];
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0xF);
    }
    (bad & 0xF0 == 0).then_some(out)
}

impl From<&str> for LockToken {
    /// Keep `token` (inline when in the canonical `urn:uuid:` form).
    ///
    /// ```
    /// use tower_locks::LockToken;
    ///
    /// let t = LockToken::from("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
    /// assert_eq!(t, "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
    /// ```
    fn from(token: &str) -> Self {
        Self::from_text(token.as_bytes(), || Arc::from(token))
    }
}

impl From<String> for LockToken {
    /// Keep `token` (inline when in the canonical `urn:uuid:` form).
    ///
    /// ```
    /// use tower_locks::LockToken;
    ///
    /// let t = LockToken::from(String::from("opaquelocktoken:abc"));
    /// assert_eq!(t, "opaquelocktoken:abc");
    /// ```
    fn from(token: String) -> Self {
        // `Arc<str>` needs its own allocation (with the counts) either way.
        Self::from(token.as_str())
    }
}

impl From<LockToken> for String {
    /// The token text.
    ///
    /// ```
    /// let token = tower_locks::new_token();
    /// let text = String::from(token.clone());
    /// assert_eq!(token, text);
    /// ```
    fn from(token: LockToken) -> Self {
        token.as_str().to_owned()
    }
}

impl Deref for LockToken {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for LockToken {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for LockToken {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for LockToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for LockToken {
    /// Like the `str`'s: quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Byte equality, looking at the last 8 bytes first: tokens share their `urn:uuid:` prefix and
/// differ in their random tail, so most unequal pairs are told apart without a full compare.
fn same_text(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    match (a.last_chunk::<8>(), b.last_chunk::<8>()) {
        (Some(x), Some(y)) if x != y => false,
        _ => a == b,
    }
}

impl PartialEq for LockToken {
    fn eq(&self, other: &Self) -> bool {
        same_text(self.as_bytes(), other.as_bytes())
    }
}
impl Eq for LockToken {}

impl PartialOrd for LockToken {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for LockToken {
    /// Byte order, like `str`.
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for LockToken {
    /// Exactly as the token's `str` hashes (so `Borrow<str>` lookups work).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for LockToken {
    fn eq(&self, other: &str) -> bool {
        same_text(self.as_bytes(), other.as_bytes())
    }
}
impl PartialEq<&str> for LockToken {
    fn eq(&self, other: &&str) -> bool {
        same_text(self.as_bytes(), other.as_bytes())
    }
}
impl PartialEq<String> for LockToken {
    fn eq(&self, other: &String) -> bool {
        same_text(self.as_bytes(), other.as_bytes())
    }
}
impl PartialEq<LockToken> for str {
    fn eq(&self, other: &LockToken) -> bool {
        other == self
    }
}
impl PartialEq<LockToken> for &str {
    fn eq(&self, other: &LockToken) -> bool {
        other == *self
    }
}
impl PartialEq<LockToken> for String {
    fn eq(&self, other: &LockToken) -> bool {
        other == self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn renders_like_uuid_and_round_trips() {
        for _ in 0..100 {
            let u = uuid::Uuid::new_v4();
            let t = LockToken::from_uuid_bytes(*u.as_bytes());
            assert_eq!(t.as_str(), u.urn().to_string());
            assert!(matches!(StoredToken::of(&t), StoredToken::Uuid(b) if b == *u.as_bytes()));
            assert_eq!(parse_uuid_urn(t.as_bytes()), Some(*u.as_bytes()));
            assert!(matches!(LockToken::from(t.as_str()).0, Repr::Urn { .. }));
            assert_eq!(StoredToken::of(&t).to_token(), t);
            let stored = StoredToken::of(&LockToken::from(t.to_string()));
            assert!(matches!(stored, StoredToken::Uuid(b) if b == *u.as_bytes()));
        }
        let upper = "urn:uuid:F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6";
        let t = LockToken::from(upper);
        assert!(matches!(t.0, Repr::Other(_)));
        assert_eq!(t, upper);
        assert!(matches!(StoredToken::of(&t), StoredToken::Other(_)));
        assert_eq!(StoredToken::of(&t).to_token(), upper);
        assert_eq!(parse_uuid_urn(upper.as_bytes()), None);
        for odd in [
            "",
            "urn:uuid:",
            "urn:uuid:zzzzzzzz-0000-0000-0000-000000000000",
        ] {
            assert_eq!(LockToken::from(odd), odd);
        }
    }

    /// The reference: a canonical token is exactly the prefix and the lower-case hyphenated
    /// form of the UUID it parses to.
    fn reference_parse(s: &[u8]) -> Option<[u8; 16]> {
        let rest = std::str::from_utf8(s.strip_prefix(PREFIX.as_slice())?).ok()?;
        let u = uuid::Uuid::try_parse(rest).ok()?;
        (u.hyphenated().to_string() == rest).then_some(*u.as_bytes())
    }

    /// Every position of random canonical tokens replaced by bytes around each class edge
    /// (digits, letters, hyphen, upper case, high bytes): the table parser agrees with the
    /// reference on each.
    #[test]
    fn parses_exactly_the_canonical_form() {
        let edges: Vec<u8> = b"/09:@AFG`afgz-{ "
            .iter()
            .copied()
            .chain([0, 0x7F, 0x80, 0xB0, 0xE6, 0xFF])
            .collect();
        for _ in 0..20 {
            let text = crate::new_token().as_bytes().to_vec();
            assert_eq!(parse_uuid_urn(&text), reference_parse(&text));
            assert!(parse_uuid_urn(&text).is_some());
            for at in 0..text.len() {
                for &b in &edges {
                    let mut t = text.clone();
                    t[at] = b;
                    assert_eq!(parse_uuid_urn(&t), reference_parse(&t), "{t:?}");
                }
            }
            assert_eq!(parse_uuid_urn(&text[..44]), None);
            let mut longer = text.clone();
            longer.push(b'0');
            assert_eq!(parse_uuid_urn(&longer), None);
        }
        for word in [0u64, u64::MAX, 0x3030_3030_3030_3030, 0x6666_6666_6666_6666] {
            let text: Vec<u8> = [
                PREFIX.as_slice(),
                &word.to_le_bytes(),
                b"-0000-0000-0000-000000000000",
            ]
            .concat();
            assert_eq!(parse_uuid_urn(&text), reference_parse(&text));
        }
    }

    #[test]
    fn compares_and_hashes_like_str() {
        let s = std::hash::RandomState::new();
        let a = crate::new_token();
        let b = LockToken::from("opaquelocktoken:x");
        for t in [&a, &b] {
            assert_eq!(s.hash_one(t), s.hash_one(t.as_str()));
            assert_eq!(*t, t.to_string());
        }
        assert_eq!(a.cmp(&b), a.as_str().cmp(b.as_str()));
        for (x, y) in [("", ""), ("a", "a"), ("a", "b"), ("123456789", "023456789")] {
            assert_eq!(same_text(x.as_bytes(), y.as_bytes()), x == y, "{x} {y}");
            let token = LockToken::from(x);
            assert_eq!(token == y, x == y);
        }
        assert_ne!(a, crate::new_token());
        assert_eq!(format!("{a:?}"), format!("{:?}", a.as_str()));
    }
}
