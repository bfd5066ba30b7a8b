//! Resource paths: one canonical form for the request URI, `If` resource tags and `Destination`.
//!
//! Every path the layer compares goes through [`ResourcePath::parse`], so that no alias of a
//! locked path can slip past a check (RFC 3986 §2, §6.2.2; RFC 4918 §8.3):
//!
//! - percent-escapes of the characters a segment may carry raw — unreserved (`A–Z a–z 0–9 - .
//!   _ ~`), sub-delims (`! $ & ' ( ) * + , ; =`), `:` and `@` — are decoded, all other escapes
//!   are kept with upper-case hex digits, so `/%7euser` and `/~user` are one resource, and so
//!   are `/a%27b` and `/a'b` (a backend that percent-decodes paths sees one file, so the layer
//!   must see one resource), while `/a%2Fb` stays one segment and never becomes `/a/b`;
//! - bytes that a URI may not carry raw (space, non-ASCII, …) are percent-encoded;
//! - `.` and `..` segments are rejected ([decision D8](crate::decisions#d8)), also when written as `%2E`;
//! - duplicate slashes are collapsed (the layer never probes the existence of what a guarded
//!   request sent with one acts on: [decision D23](crate::decisions#d23));
//! - a trailing slash is remembered for rendering hrefs but ignored for identity, so `/coll`
//!   and `/coll/` are the same resource;
//! - ancestor tests work on segment boundaries: `/a` is an ancestor of `/a/b`, not of `/ab`.
//!
//! Decoding happens exactly once: `%2541` becomes `%2541` (`%` is never decoded), never `%41`
//! or `A`.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

/// Why a path or URI reference was refused. Always answered with `400 Bad Request`.
///
/// ```
/// use tower_locks::{PathError, ResourcePath};
///
/// assert_eq!(ResourcePath::parse("docs/a"), Err(PathError::NotAbsolute));
/// assert_eq!(ResourcePath::parse("/docs/%zz"), Err(PathError::BadEscape));
/// assert_eq!(ResourcePath::parse("/docs/%2E%2E/etc"), Err(PathError::DotSegment));
/// assert_eq!(
///     ResourcePath::parse_limited("/a/b/c", 4096, 2),
///     Err(PathError::TooDeep(2))
/// );
/// assert_eq!(
///     ResourcePath::parse("/a/./b").unwrap_err().to_string(),
///     "dot segments ('.' or '..') are not allowed in paths"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("path must be absolute (start with '/')")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-escape in path")]
    BadEscape,
    /// A `.` or `..` segment (RFC 3986 §5.2.4; rejected by [decision D8](crate::decisions#d8)).
    #[error("dot segments ('.' or '..') are not allowed in paths")]
    DotSegment,
    /// The reference is neither an absolute URI nor an absolute path.
    #[error("not an absolute URI or absolute path")]
    BadReference,
    /// The path is longer than the configured limit.
    #[error("path longer than {0} bytes")]
    TooLong(usize),
    /// The path has more segments than the configured limit.
    #[error("path deeper than {0} segments")]
    TooDeep(usize),
    /// An encoded slash (`%2F`) in a path the layer guards: one segment to the layer, a `/` to
    /// an application or server that decodes it, so two resources would be taken for one
    /// ([decision D21](crate::decisions#d21)). Allowed with
    /// [`LockLayer::allow_encoded_slashes`](crate::LockLayer::allow_encoded_slashes).
    #[error("an encoded slash (%2F) in a path is refused: a server that decodes it sees another resource")]
    EncodedSlash,
}

/// A normalised, absolute resource path: the identity of a lockable resource.
///
/// Equality, hashing and ordering use the canonical key without a trailing slash;
/// [`href`](Self::href) renders the path the way the client addressed it (with the trailing
/// slash of a collection).
///
/// ```
/// use tower_locks::ResourcePath;
///
/// let a = ResourcePath::parse("/docs/%7Eann//report/").unwrap();
/// let b = ResourcePath::parse("/docs/~ann/report").unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a.as_str(), "/docs/~ann/report");
/// assert_eq!(a.href(), "/docs/~ann/report/");
/// assert!(ResourcePath::parse("/docs").unwrap().is_ancestor_of(&a));
/// assert!(ResourcePath::parse("/docs/../etc").is_err());
/// assert_ne!(ResourcePath::parse("/a%2Fb").unwrap(), ResourcePath::parse("/a/b").unwrap());
/// ```
///
/// Cloning and [`parent`](Self::parent) never allocate: the key lives in a shared, immutable
/// buffer, and a parent is a shorter view of its child's buffer.
///
/// ```
/// use tower_locks::ResourcePath;
///
/// let file = ResourcePath::parse("/docs/a/report").unwrap();
/// let dir = file.parent().unwrap(); // shares `file`'s buffer
/// assert_eq!(dir.as_str(), "/docs/a");
/// assert_eq!(dir, ResourcePath::parse("/docs/a/").unwrap());
/// ```
#[derive(Clone)]
pub struct ResourcePath {
    /// The canonical key is `buf[..len]`; a parent shares its child's buffer.
    buf: Arc<str>,
    len: usize,
    trailing_slash: bool,
}

impl ResourcePath {
    /// The root path `/`.
    ///
    /// ```
    /// use tower_locks::ResourcePath;
    ///
    /// let root = ResourcePath::root();
    /// assert!(root.is_root());
    /// assert_eq!(root.href(), "/");
    /// assert_eq!(root.depth(), 0);
    /// assert_eq!(ResourcePath::parse("//").unwrap(), root);
    /// ```
    pub fn root() -> Self {
        static ROOT: OnceLock<Arc<str>> = OnceLock::new();
        Self {
            buf: ROOT.get_or_init(|| Arc::from("/")).clone(),
            len: 1,
            trailing_slash: false,
        }
    }

    /// A path whose whole buffer is the canonical `key`.
    fn owned(key: impl Into<Arc<str>>, trailing_slash: bool) -> Self {
        let buf: Arc<str> = key.into();
        Self {
            len: buf.len(),
            buf,
            trailing_slash,
        }
    }

    /// The canonical key.
    #[inline]
    fn key(&self) -> &str {
        // `len` is always on a char boundary of `buf` (the keys are ASCII); never panic anyway.
        self.buf.get(..self.len).unwrap_or(&self.buf)
    }

    /// Parse and normalise an absolute path (no query, no fragment).
    ///
    /// # Errors
    /// [`PathError`] when the path is not absolute, has a malformed escape or a dot segment.
    ///
    /// ```
    /// use tower_locks::{PathError, ResourcePath};
    ///
    /// // Unreserved escapes are decoded, others kept with upper-case hex; raw bytes escaped.
    /// let p = ResourcePath::parse("/%7eann/a%2fb/caf\u{e9}").unwrap();
    /// assert_eq!(p.as_str(), "/~ann/a%2Fb/caf%C3%A9");
    /// assert_eq!(p.depth(), 3); // `%2F` never splits a segment
    /// // Duplicate slashes collapse; the trailing slash is not part of the identity.
    /// assert_eq!(ResourcePath::parse("//~ann//").unwrap(), ResourcePath::parse("/~ann").unwrap());
    /// // Decoding happens once only.
    /// assert_eq!(ResourcePath::parse("/%2541").unwrap().as_str(), "/%2541");
    /// // Dot segments are refused, not resolved.
    /// assert_eq!(ResourcePath::parse("/a/../b"), Err(PathError::DotSegment));
    /// ```
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        Self::parse_limited(raw, usize::MAX, usize::MAX)
    }

    /// [`parse`](Self::parse) with limits on the normalised length and the number of segments.
    ///
    /// # Errors
    /// As [`parse`](Self::parse), plus [`PathError::TooLong`] and [`PathError::TooDeep`].
    ///
    /// ```
    /// use tower_locks::{PathError, ResourcePath};
    ///
    /// // The length limit applies to the normalised path: `/%7Ea` is `/~a`, 3 bytes.
    /// assert!(ResourcePath::parse_limited("/%7Ea", 3, 10).is_ok());
    /// assert_eq!(ResourcePath::parse_limited("/abcd", 3, 10), Err(PathError::TooLong(3)));
    /// assert_eq!(ResourcePath::parse_limited("/a/b/c", 100, 2), Err(PathError::TooDeep(2)));
    /// assert_eq!(ResourcePath::parse_limited("/a/b", 100, 2).unwrap().depth(), 2);
    /// ```
    pub fn parse_limited(raw: &str, max_len: usize, max_depth: usize) -> Result<Self, PathError> {
        match Self::canonical_as_sent(raw, max_len, max_depth) {
            Some(p) => Ok(p),
            None => Self::rewritten(raw, max_len, max_depth),
        }
    }

    /// The normalising loop of [`parse_limited`](Self::parse_limited).
    fn rewritten(raw: &str, max_len: usize, max_depth: usize) -> Result<Self, PathError> {
        let bytes = raw.as_bytes();
        if bytes.first() != Some(&b'/') {
            return Err(PathError::NotAbsolute);
        }
        // No early length check on `raw`: collapsed slashes shrink it without bound, so only the
        // normalised key is measured. The loop is linear and stops as soon as a limit is passed.
        let mut key = String::with_capacity(raw.len());
        let mut depth = 0usize;
        for segment in segments(raw) {
            let start = key.len();
            key.push('/');
            push_canonical_segment(&mut key, segment)?;
            let seg = &key[start + 1..];
            if seg == "." || seg == ".." {
                return Err(PathError::DotSegment);
            }
            depth += 1;
            if depth > max_depth {
                return Err(PathError::TooDeep(max_depth));
            }
            if key.len() > max_len {
                return Err(PathError::TooLong(max_len));
            }
        }
        if key.is_empty() {
            // The root's key `/` is measured like any other.
            if max_len == 0 {
                return Err(PathError::TooLong(max_len));
            }
            return Ok(Self::root());
        }
        Ok(Self::owned(key.as_str(), raw.ends_with('/')))
    }

    /// `raw` itself when the client sent it in canonical form, as most do: segment-safe bytes
    /// between single slashes (one more may end it), no dot segment, within the limits. The
    /// rewriting loop of [`parse_limited`](Self::parse_limited) would return the same path;
    /// `None` leaves every other input, and every error, to that loop.
    fn canonical_as_sent(raw: &str, max_len: usize, max_depth: usize) -> Option<Self> {
        let trailing_slash = raw.len() > 1 && raw.ends_with('/');
        let key = raw.get(..raw.len() - usize::from(trailing_slash))?;
        // One pass over the bytes: a segment ends at each slash and at the end of the key.
        let (mut depth, mut len, mut dots) = (0usize, 0usize, 0usize);
        for &b in key.strip_prefix('/')?.as_bytes().iter().chain(b"/") {
            if b == b'/' {
                let dot_segment = dots == len && len <= 2;
                if len == 0 || dot_segment {
                    return None;
                }
                (depth, len, dots) = (depth + 1, 0, 0);
            } else if is_segment_safe(b) {
                len += 1;
                dots += usize::from(b == b'.');
            } else {
                return None;
            }
        }
        (depth <= max_depth && key.len() <= max_len).then(|| Self::owned(key, trailing_slash))
    }

    /// Rebuild a path from a key that is already canonical (as returned by
    /// [`as_str`](Self::as_str)), without parsing it again, sharing the caller's buffer: no
    /// allocation. For stores that keep the key.
    pub(crate) fn from_shared(key: Arc<str>, trailing_slash: bool) -> Self {
        let trailing_slash = trailing_slash && &*key != "/";
        Self::owned(key, trailing_slash)
    }

    /// Whether both paths are views of the same buffer with the same key (so equal).
    pub(crate) fn same_buffer(&self, other: &ResourcePath) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf) && self.len == other.len
    }

    /// The key as a shared buffer, when it fills its buffer (a parsed path does; a parent
    /// does not). Lets a store keep the key without copying it.
    pub(crate) fn shared_key(&self) -> Option<&Arc<str>> {
        (self.buf.len() == self.len).then_some(&self.buf)
    }

    /// The canonical key: no trailing slash, `/` for the root.
    ///
    /// ```
    /// use tower_locks::ResourcePath;
    ///
    /// assert_eq!(ResourcePath::parse("/docs/%7Eann/").unwrap().as_str(), "/docs/~ann");
    /// assert_eq!(ResourcePath::root().as_str(), "/");
    /// ```
    #[inline]
    pub fn as_str(&self) -> &str {
        self.key()
    }

    /// The path as an href: the canonical key plus the trailing slash the client used.
    ///
    /// ```
    /// use tower_locks::ResourcePath;
    ///
    /// assert_eq!(ResourcePath::parse("/docs//a%20b/").unwrap().href(), "/docs/a%20b/");
    /// assert_eq!(ResourcePath::parse("/docs/file").unwrap().href(), "/docs/file");
    /// ```
    pub fn href(&self) -> String {
        if self.trailing_slash {
            let mut s = String::with_capacity(self.len + 1);
            s.push_str(self.key());
            s.push('/');
            s
        } else {
            self.key().to_owned()
        }
    }

    /// Whether the client wrote this path with a trailing slash (a collection). Always `true`
    /// for the root.
    ///
    /// ```
    /// use tower_locks::ResourcePath;
    ///
    /// assert!(ResourcePath::parse("/docs/").unwrap().has_trailing_slash());
    /// assert!(!ResourcePath::parse("/docs").unwrap().has_trailing_slash());
    /// assert!(ResourcePath::root().has_trailing_slash());
    /// ```
    #[inline]
    pub fn has_trailing_slash(&self) -> bool {
        self.trailing_slash || self.is_root()
    }

    /// Return the same path marked as written with (or without) a trailing slash. The root
    /// keeps its single `/`.
    ///
    /// ```
    /// use tower_locks::ResourcePath;
    ///
    /// let file = ResourcePath::parse("/docs").unwrap();
    /// let coll = file.clone().with_trailing_slash(true);
    /// assert_eq!(coll.href(), "/docs/");
    /// assert_eq!(coll, file); // same resource
    /// assert_eq!(coll.with_trailing_slash(false).href(), "/docs");
    /// assert_eq!(ResourcePath::root().with_trailing_slash(true).href(), "/");
    /// ```
    #[must_use]
    pub fn with_trailing_slash(mut self, trailing: bool) -> Self {
        self.trailing_slash = trailing && !self.is_root();
        self
    }

    /// Whether this is `/`.
    ///
    /// ```
    /// use tower_locks::ResourcePath;
    ///
    /// assert!(ResourcePath::parse("/").unwrap().is_root());
    /// assert!(!ResourcePath::parse("/a").unwrap().is_root());
    /// ```
    #[inline]
    pub fn is_root(&self) -> bool {
        self.key() == "/"
    }

    /// The number of segments: 0 for `/`, 2 for `/a/b`.
    ///
    /// ```
    /// use tower_locks::ResourcePath;
    ///
    /// assert_eq!(ResourcePath::root().depth(), 0);
    /// assert_eq!(ResourcePath::parse("/a/b/").unwrap().depth(), 2);
    /// assert_eq!(ResourcePath::parse("/a%2Fb").unwrap().depth(), 1);
    /// ```
    pub fn depth(&self) -> usize {
        if self.is_root() {
            0
        } else {
            self.key().bytes().filter(|&b| b == b'/').count()
        }
    }

    /// The segments, still percent-encoded in canonical form.
    ///
    /// ```
    /// use tower_locks::ResourcePath;
    ///
    /// let p = ResourcePath::parse("/docs/a%2fb/x%20y/").unwrap();
    /// assert_eq!(p.segments().collect::<Vec<_>>(), ["docs", "a%2Fb", "x%20y"]);
    /// assert_eq!(ResourcePath::root().segments().count(), 0);
    /// ```
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        segments(self.key())
    }

    /// The parent collection, `None` for the root. The parent is marked as a collection.
    ///
    /// ```
    /// use tower_locks::ResourcePath;
    ///
    /// let p = ResourcePath::parse("/docs/a/report").unwrap();
    /// assert_eq!(p.parent().unwrap().href(), "/docs/a/");
    /// assert_eq!(ResourcePath::parse("/docs").unwrap().parent(), Some(ResourcePath::root()));
    /// assert_eq!(ResourcePath::root().parent(), None);
    /// ```
    pub fn parent(&self) -> Option<ResourcePath> {
        let parent = key_parent(self.key())?;
        if parent == "/" {
            return Some(Self::root());
        }
        Some(Self {
            buf: self.buf.clone(),
            len: parent.len(),
            trailing_slash: true,
        })
    }

    /// Every strict ancestor, from the root down to the parent, as canonical keys.
    ///
    /// ```
    /// use tower_locks::ResourcePath;
    ///
    /// let p = ResourcePath::parse("/docs/a/report").unwrap();
    /// assert_eq!(p.ancestors().collect::<Vec<_>>(), ["/", "/docs", "/docs/a"]);
    /// assert_eq!(ResourcePath::root().ancestors().count(), 0);
    /// ```
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        let key = self.key();
        let root = if self.is_root() { None } else { Some("/") };
        root.into_iter().chain(
            key.bytes()
                .enumerate()
                .skip(1)
                .filter(|&(_, b)| b == b'/')
                .map(move |(i, _)| &key[..i]),
        )
    }

    /// Whether `self` is a strict ancestor of `other` (on segment boundaries).
    ///
    /// ```
    /// use tower_locks::ResourcePath;
    ///
    /// let p = |s| ResourcePath::parse(s).unwrap();
    /// assert!(p("/a").is_ancestor_of(&p("/a/b/c")));
    /// assert!(!p("/a").is_ancestor_of(&p("/ab"))); // not a segment boundary
    /// assert!(!p("/a").is_ancestor_of(&p("/a/"))); // strict: not itself
    /// assert!(ResourcePath::root().is_ancestor_of(&p("/a")));
    /// ```
    #[inline]
    pub fn is_ancestor_of(&self, other: &ResourcePath) -> bool {
        key_is_ancestor(self.key(), other.key())
    }

    /// Whether `self` equals `other` or is one of its ancestors.
    ///
    /// ```
    /// use tower_locks::ResourcePath;
    ///
    /// let p = |s| ResourcePath::parse(s).unwrap();
    /// assert!(p("/a").contains(&p("/a/")));
    /// assert!(p("/a").contains(&p("/a/b")));
    /// assert!(!p("/a").contains(&p("/ab")));
    /// assert!(!p("/a/b").contains(&p("/a")));
    /// ```
    pub fn contains(&self, other: &ResourcePath) -> bool {
        self == other || self.is_ancestor_of(other)
    }

    /// Append one raw segment (it is canonicalised like a parsed one).
    ///
    /// # Errors
    /// [`PathError::DotSegment`], [`PathError::BadEscape`], or [`PathError::BadReference`]
    /// when the segment contains `/` or is empty.
    ///
    /// ```
    /// use tower_locks::{PathError, ResourcePath};
    ///
    /// let docs = ResourcePath::parse("/docs/").unwrap();
    /// let child = docs.join("my report.txt").unwrap();
    /// assert_eq!(child.as_str(), "/docs/my%20report.txt");
    /// assert_eq!(ResourcePath::root().join("a").unwrap().as_str(), "/a");
    /// assert_eq!(docs.join("a/b"), Err(PathError::BadReference));
    /// assert_eq!(docs.join(".."), Err(PathError::DotSegment));
    /// ```
    pub fn join(&self, segment: &str) -> Result<ResourcePath, PathError> {
        if segment.is_empty() || segment.contains('/') {
            return Err(PathError::BadReference);
        }
        let mut key = if self.is_root() {
            String::new()
        } else {
            self.key().to_owned()
        };
        let start = key.len();
        key.push('/');
        push_canonical_segment(&mut key, segment)?;
        let seg = &key[start + 1..];
        if seg == "." || seg == ".." {
            return Err(PathError::DotSegment);
        }
        Ok(Self::owned(key, false))
    }

    /// Strip a mount prefix: `/dav/a` without `/dav` is `/a`. `None` when not under it.
    ///
    /// ```
    /// use tower_locks::ResourcePath;
    ///
    /// let p = |s| ResourcePath::parse(s).unwrap();
    /// let dav = p("/dav");
    /// assert_eq!(p("/dav/a/").strip_prefix(&dav).unwrap().href(), "/a/");
    /// assert_eq!(p("/dav").strip_prefix(&dav), Some(ResourcePath::root()));
    /// assert_eq!(p("/davx/a").strip_prefix(&dav), None);
    /// ```
    pub fn strip_prefix(&self, prefix: &ResourcePath) -> Option<ResourcePath> {
        if prefix.is_root() {
            return Some(self.clone());
        }
        if self == prefix {
            return Some(Self::root());
        }
        if prefix.is_ancestor_of(self) {
            let rest = self.key().get(prefix.len..).unwrap_or("/");
            return Some(Self::owned(rest, self.trailing_slash));
        }
        None
    }

    /// Put this path under a mount prefix: `/a` under `/dav` is `/dav/a`.
    ///
    /// ```
    /// use tower_locks::ResourcePath;
    ///
    /// let p = |s| ResourcePath::parse(s).unwrap();
    /// let dav = p("/dav");
    /// assert_eq!(p("/a/b/").under_prefix(&dav).href(), "/dav/a/b/");
    /// assert_eq!(ResourcePath::root().under_prefix(&dav).href(), "/dav/");
    /// // The inverse of `strip_prefix`.
    /// assert_eq!(p("/a").under_prefix(&dav).strip_prefix(&dav), Some(p("/a")));
    /// ```
    pub fn under_prefix(&self, prefix: &ResourcePath) -> ResourcePath {
        if prefix.is_root() {
            return self.clone();
        }
        if self.is_root() {
            return prefix.clone().with_trailing_slash(true);
        }
        let mut key = String::with_capacity(prefix.len + self.len);
        key.push_str(prefix.key());
        key.push_str(self.key());
        Self::owned(key, self.trailing_slash)
    }
}

/// The parent of the canonical key `key` (`/` for a top-level key), `None` for the root.
#[inline]
pub(crate) fn key_parent(key: &str) -> Option<&str> {
    if key == "/" {
        return None;
    }
    // A byte loop: for keys of a few dozen bytes, `rfind`'s searcher costs more to set up.
    match key.as_bytes().iter().rposition(|&b| b == b'/') {
        Some(0) | None => Some("/"),
        Some(cut) => key.get(..cut),
    }
}

/// Whether the canonical key `a` is a strict ancestor of the canonical key `b` (on segment
/// boundaries).
#[inline]
pub(crate) fn key_is_ancestor(a: &str, b: &str) -> bool {
    if a == "/" {
        return b != "/";
    }
    b.len() > a.len() && b.starts_with(a) && b.as_bytes().get(a.len()) == Some(&b'/')
}

/// Characters kept raw in a canonical segment (unreserved, sub-delims, `:` and `@`): their
/// escapes are decoded, so each of them has exactly one spelling.
fn is_segment_safe(b: u8) -> bool {
    SEGMENT_SAFE[usize::from(b)]
}

/// [`is_segment_safe`] as a table.
static SEGMENT_SAFE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
            );
        b += 1;
    }
    table
};

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The non-empty segments of `path`, between its slashes.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = path;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        // `/` is ASCII: both sides of it are character boundaries.
        let end = rest.bytes().position(|b| b == b'/').unwrap_or(rest.len());
        let segment = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
        if !segment.is_empty() {
            return Some(segment);
        }
    })
}

/// Whether `raw`, a path as sent, has an empty segment (a duplicate slash).
/// [`ResourcePath::parse`] collapses it; a service behind the layer may not (axum's `{*key}`
/// gives `/files//a` the key `/a`), so the layer never probes the collapsed path for the
/// existence of what such a request acts on ([decision D23](crate::decisions#d23)).
pub(crate) fn has_empty_segment(raw: &str) -> bool {
    raw.as_bytes().windows(2).any(|pair| pair == b"//")
}

fn push_escaped(out: &mut String, b: u8) {
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xF)]));
}

/// Append `segment` in canonical form: runs of segment-safe bytes as they are, escapes of
/// segment-safe bytes decoded, every other byte (raw or escaped) as `%XX` in upper case.
fn push_canonical_segment(out: &mut String, segment: &str) -> Result<(), PathError> {
    let mut rest = segment;
    while !rest.is_empty() {
        // Segment-safe bytes are ASCII, so the run ends on a character boundary.
        let run = rest
            .bytes()
            .position(|b| !is_segment_safe(b))
            .unwrap_or(rest.len());
        out.push_str(&rest[..run]);
        rest = &rest[run..];
        let Some(c) = rest.chars().next() else {
            break;
        };
        if c == '%' {
            let bytes = rest.as_bytes();
            let hi = bytes.get(1).copied().and_then(hex_val);
            let lo = bytes.get(2).copied().and_then(hex_val);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadEscape);
            };
            let decoded = hi << 4 | lo;
            if is_segment_safe(decoded) {
                out.push(char::from(decoded));
            } else {
                push_escaped(out, decoded);
            }
            // `%` and two hex digits: ASCII.
            rest = &rest[3..];
        } else {
            // Any other character, escaped byte by byte.
            let mut utf8 = [0; 4];
            for &b in c.encode_utf8(&mut utf8).as_bytes() {
                push_escaped(out, b);
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(())
}

impl PartialEq for ResourcePath {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for ResourcePath {}
impl Hash for ResourcePath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}
impl PartialOrd for ResourcePath {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ResourcePath {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(other.key())
    }
}
impl Borrow<str> for ResourcePath {
    fn borrow(&self) -> &str {
        self.key()
    }
}
impl fmt::Debug for ResourcePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourcePath({:?})", self.href())
    }
}
impl fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.href())
    }
}
impl std::str::FromStr for ResourcePath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Where a URI reference (an `If` resource tag or a `Destination`) points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// A resource of this server, in the client-visible path space.
    Local(ResourcePath),
    /// Another server or another scheme: not a resource this layer guards.
    Foreign,
}

/// The authority a request names itself by: its target's (absolute form), else `Host`.
pub(crate) fn request_authority<'a>(
    uri: &'a http::Uri,
    headers: &'a http::HeaderMap,
) -> Option<&'a str> {
    uri.authority().map(|a| a.as_str()).or_else(|| {
        let host = headers.get(http::header::HOST)?;
        host.to_str().ok()
    })
}

/// How references are matched against the request (RFC 4918 §8.3, RFC 9110 §4.2.3).
#[derive(Debug, Clone)]
pub(crate) struct Resolver<'a> {
    /// The request's authority (`Host` header or URI authority), if any.
    pub(crate) authority: Option<&'a str>,
    /// Compare paths only, ignoring the authority (for host-rewriting reverse proxies).
    pub(crate) any_authority: bool,
    /// The mount prefix; references outside it are foreign.
    pub(crate) prefix: &'a ResourcePath,
    pub(crate) max_len: usize,
    pub(crate) max_depth: usize,
    /// Whether `%2F` may stand in a path ([decision D21](crate::decisions#d21)).
    pub(crate) encoded_slashes: bool,
}

impl Resolver<'_> {
    /// A path as the layer reads every path it guards: normalised within the limits, and
    /// without an encoded slash unless those are allowed.
    pub(crate) fn path(&self, raw: &str) -> Result<ResourcePath, PathError> {
        let p = ResourcePath::parse_limited(raw, self.max_len, self.max_depth)?;
        self.no_encoded_slash(p.as_str())?;
        Ok(p)
    }

    /// A request path as the layer places it in the client-visible path space: read as
    /// [`path`](Self::path) reads it, under the mount prefix. The lock API places its paths
    /// the same way, so that it locks what the layer guards.
    pub(crate) fn request_path(&self, raw: &str) -> Result<ResourcePath, PathError> {
        let p = self.path(raw)?;
        Ok(match self.prefix.is_root() {
            true => p,
            false => p.under_prefix(self.prefix),
        })
    }

    /// [`PathError::EncodedSlash`] when `key` (a canonical key, or its part below the mount
    /// prefix) holds `%2F` and those are not allowed.
    fn no_encoded_slash(&self, key: &str) -> Result<(), PathError> {
        // Escapes are upper-case in a canonical key.
        let bytes = key.as_bytes();
        let escaped = bytes.contains(&b'%') && bytes.windows(3).any(|w| w == b"%2F");
        match !self.encoded_slashes && escaped {
            true => Err(PathError::EncodedSlash),
            false => Ok(()),
        }
    }

    /// Resolve a Simple-ref: `absolute-URI | path-absolute ["?" query]`.
    pub(crate) fn resolve(&self, reference: &str) -> Result<Resolved, PathError> {
        self.resolve_as_sent(reference)
            .map(|(resolved, _)| resolved)
    }

    /// [`resolve`](Self::resolve), and whether the path of a local reference was sent with an
    /// empty segment ([`has_empty_segment`]).
    pub(crate) fn resolve_as_sent(&self, reference: &str) -> Result<(Resolved, bool), PathError> {
        let local = |path: &str| Ok((self.local(path)?, has_empty_segment(path)));
        // `//host/path` is a network-path reference (RFC 3986 §4.2), not a path-absolute: a
        // server that resolves it as a URI reference would act on another resource.
        if reference.starts_with("//") {
            return Err(PathError::BadReference);
        }
        if reference.starts_with('/') {
            let path = reference.split(['?', '#']).next().unwrap_or("");
            return local(path);
        }
        let Some(colon) = reference.find(':') else {
            return Err(PathError::BadReference);
        };
        let scheme = &reference[..colon];
        let valid_scheme = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !valid_scheme {
            return Err(PathError::BadReference);
        }
        let rest = &reference[colon + 1..];
        let scheme_lc = scheme.to_ascii_lowercase();
        let Some(after) = rest.strip_prefix("//") else {
            // e.g. `urn:…`: a valid absolute URI, but not an HTTP resource of ours.
            return Ok((Resolved::Foreign, false));
        };
        if scheme_lc != "http" && scheme_lc != "https" {
            return Ok((Resolved::Foreign, false));
        }
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let authority = &after[..end];
        let tail = &after[end..];
        let path = tail.split(['?', '#']).next().unwrap_or("");
        let path = if path.is_empty() { "/" } else { path };
        if !self.any_authority && !self.same_authority(&scheme_lc, authority) {
            return Ok((Resolved::Foreign, false));
        }
        local(path)
    }

    fn local(&self, path: &str) -> Result<Resolved, PathError> {
        let p = ResourcePath::parse_limited(path, self.max_len, self.max_depth)?;
        if !self.prefix.contains(&p) {
            return Ok(Resolved::Foreign);
        }
        // Judged below the mount prefix, as the request path is: the prefix is the router's.
        self.no_encoded_slash(&p.as_str()[self.prefix.as_str().len()..])?;
        Ok(Resolved::Local(p))
    }

    fn same_authority(&self, scheme: &str, authority: &str) -> bool {
        let Some(request) = self.authority else {
            // No Host to compare with (HTTP/1.0): only the path can be judged.
            return true;
        };
        let default_port = if scheme == "https" { "443" } else { "80" };
        normalise_authority(authority, default_port) == normalise_authority(request, default_port)
    }
}

/// Lower-case host, drop userinfo, drop an empty or default port.
fn normalise_authority(authority: &str, default_port: &str) -> String {
    let hostport = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(stripped) = hostport.strip_prefix('[') {
        // IPv6 literal
        match stripped.find(']') {
            Some(i) => (
                &hostport[..i + 2],
                stripped[i + 1..].strip_prefix(':').unwrap_or(""),
            ),
            None => (hostport, ""),
        }
    } else {
        match hostport.rfind(':') {
            Some(i) => (&hostport[..i], &hostport[i + 1..]),
            None => (hostport, ""),
        }
    };
    let mut out = host.to_ascii_lowercase();
    if !port.is_empty() && port != default_port {
        out.push(':');
        out.push_str(port);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The shortcut for canonical input answers exactly as the loop would, and takes
        /// every path without escapes that the loop leaves unchanged.
        #[test]
        fn the_canonical_shortcut_is_the_loop(
            raw in "(/|//|[a-z.%~]|%2[fF]|%7[eE]|\\.\\.|\\.){0,12}",
            max_len in 0usize..16,
            max_depth in 0usize..5,
        ) {
            let looped = ResourcePath::rewritten(&raw, max_len, max_depth);
            match ResourcePath::canonical_as_sent(&raw, max_len, max_depth) {
                Some(p) => {
                    let looped = looped.expect("the loop accepts what the shortcut takes");
                    proptest::prop_assert_eq!(p.as_str(), looped.as_str());
                    proptest::prop_assert_eq!(p.has_trailing_slash(), looped.has_trailing_slash());
                }
                None => {
                    let unchanged = looped.as_ref().is_ok_and(|p| {
                        !p.is_root() && p.href() == raw && !raw.contains('%')
                    });
                    proptest::prop_assert!(!unchanged, "{raw:?} is canonical");
                }
            }
        }
    }

    #[test]
    fn the_segment_safe_table_is_unreserved_sub_delims_colon_and_at() {
        let allowed: Vec<u8> = (b'a'..=b'z')
            .chain(b'A'..=b'Z')
            .chain(b'0'..=b'9')
            .chain(*b"-._~!$&'()*+,;=:@")
            .collect();
        for b in 0..=255u8 {
            assert_eq!(is_segment_safe(b), allowed.contains(&b), "byte {b:#04x}");
        }
    }

    fn p(s: &str) -> ResourcePath {
        ResourcePath::parse(s).unwrap()
    }

    #[test]
    fn unreserved_escapes_decode_reserved_stay() {
        assert_eq!(p("/%7Esmith").as_str(), "/~smith");
        assert_eq!(p("/%7esmith"), p("/~smith"));
        assert_eq!(p("/a%2fb").as_str(), "/a%2Fb");
        assert_eq!(p("/a%2Fb").depth(), 1);
        assert_ne!(p("/a%2Fb"), p("/a/b"));
        assert_eq!(p("/%41%42c").as_str(), "/ABc");
        // decode once only
        assert_eq!(p("/%2541").as_str(), "/%2541");
        assert_ne!(p("/%2541"), p("/A"));
    }

    #[test]
    fn raw_bytes_are_escaped() {
        assert_eq!(p("/a test"), p("/a%20test"));
        assert_eq!(p("/caf\u{e9}").as_str(), "/caf%C3%A9");
        assert_eq!(p("/caf%c3%a9"), p("/caf\u{e9}"));
    }

    #[test]
    fn dot_segments_are_rejected_even_escaped() {
        for bad in [
            "/a/../b",
            "/a/./b",
            "/..",
            "/a/%2E%2E/b",
            "/a/%2e/b",
            "/a/.%2E",
        ] {
            assert_eq!(
                ResourcePath::parse(bad),
                Err(PathError::DotSegment),
                "{bad}"
            );
        }
        assert!(ResourcePath::parse("/a/...").is_ok());
        assert!(ResourcePath::parse("/a/.hidden").is_ok());
    }

    #[test]
    fn slashes_collapse_and_trailing_slash_is_not_identity() {
        assert_eq!(p("//a///b//"), p("/a/b"));
        assert_eq!(p("/coll/").href(), "/coll/");
        assert_eq!(p("/coll"), p("/coll/"));
        assert_eq!(p("/").href(), "/");
        assert_eq!(p("///"), ResourcePath::root());
    }

    #[test]
    fn bad_input() {
        assert_eq!(ResourcePath::parse("a/b"), Err(PathError::NotAbsolute));
        assert_eq!(ResourcePath::parse(""), Err(PathError::NotAbsolute));
        assert_eq!(ResourcePath::parse("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(ResourcePath::parse("/a%4"), Err(PathError::BadEscape));
        assert_eq!(
            ResourcePath::parse_limited("/a/b/c", 100, 2),
            Err(PathError::TooDeep(2))
        );
        assert_eq!(
            ResourcePath::parse_limited("/abcdef", 4, 10),
            Err(PathError::TooLong(4))
        );
    }

    #[test]
    fn ancestry_on_segment_boundaries() {
        assert!(p("/a").is_ancestor_of(&p("/a/b")));
        assert!(!p("/a").is_ancestor_of(&p("/ab")));
        assert!(!p("/a").is_ancestor_of(&p("/a")));
        assert!(p("/").is_ancestor_of(&p("/a")));
        assert!(!p("/").is_ancestor_of(&p("/")));
        assert_eq!(
            p("/a/b/c").ancestors().collect::<Vec<_>>(),
            ["/", "/a", "/a/b"]
        );
        assert_eq!(p("/").ancestors().count(), 0);
        assert_eq!(p("/a/b").parent().unwrap().href(), "/a/");
        assert_eq!(p("/a").parent().unwrap(), ResourcePath::root());
        assert_eq!(p("/a/b/c").depth(), 3);
    }

    #[test]
    fn prefixes() {
        let dav = p("/dav");
        assert_eq!(p("/x/y").under_prefix(&dav), p("/dav/x/y"));
        assert_eq!(p("/dav/x").strip_prefix(&dav), Some(p("/x")));
        assert_eq!(p("/davx").strip_prefix(&dav), None);
        assert_eq!(p("/dav").strip_prefix(&dav), Some(ResourcePath::root()));
    }

    #[test]
    fn resolver_matches_authority_and_prefix() {
        let root = ResourcePath::root();
        let r = Resolver {
            authority: Some("Example.COM:80"),
            any_authority: false,
            prefix: &root,
            max_len: 4096,
            max_depth: 64,
            encoded_slashes: false,
        };
        assert_eq!(r.path("/a%2fb"), Err(PathError::EncodedSlash));
        assert_eq!(r.resolve("/a%2Fb"), Err(PathError::EncodedSlash));
        let lenient = Resolver {
            encoded_slashes: true,
            ..r
        };
        assert_eq!(lenient.path("/a%2fb").unwrap().as_str(), "/a%2Fb");
        assert_eq!(
            r.resolve("http://example.com/%7Ea/").unwrap(),
            Resolved::Local(p("/~a"))
        );
        assert_eq!(
            r.resolve("http://example.com:80/a?q=1").unwrap(),
            Resolved::Local(p("/a"))
        );
        assert_eq!(r.resolve("http://other.com/a").unwrap(), Resolved::Foreign);
        assert_eq!(r.resolve("urn:uuid:1234").unwrap(), Resolved::Foreign);
        assert_eq!(r.resolve("/a/b").unwrap(), Resolved::Local(p("/a/b")));
        assert_eq!(
            r.resolve("http://example.com").unwrap(),
            Resolved::Local(ResourcePath::root())
        );
        assert!(r.resolve("a/b").is_err());
        assert!(r.resolve("http://example.com/a/../b").is_err());
        let dav = p("/dav");
        let r2 = Resolver { prefix: &dav, ..r };
        assert_eq!(r2.resolve("/other").unwrap(), Resolved::Foreign);
        assert_eq!(r2.resolve("/dav/x").unwrap(), Resolved::Local(p("/dav/x")));
    }

    #[test]
    fn ipv6_authority() {
        assert_eq!(normalise_authority("[::1]:8080", "80"), "[::1]:8080");
        assert_eq!(normalise_authority("[::1]:80", "80"), "[::1]");
        assert_eq!(normalise_authority("user@Host:443", "443"), "host");
    }
}
