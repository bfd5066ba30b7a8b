//! The `If` request header (RFC 4918 §10.4) and entity tags (RFC 9110 §8.8.3).

use std::fmt;

use super::{is_ows, looks_like_absolute_uri};

/// A parsed `If` header: one or more lists, OR-ed together (RFC 4918 §10.4.3).
///
/// The header is either all untagged lists (every [`IfList::resource`] is `None`, they apply
/// to the Request-URI) or all tagged lists (every `resource` is `Some`); a Resource-Tag
/// followed by several lists yields several [`IfList`]s carrying the same tag.
///
/// ```
/// use tower_locks::{ConditionKind, IfHeader};
///
/// let h = IfHeader::parse(
///     "</resource1> (<urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2> [W/\"A weak ETag\"]) ([\"strong ETag\"])",
/// )
/// .unwrap();
/// assert!(h.is_tagged());
/// assert_eq!(h.lists.len(), 2);
/// assert_eq!(h.lists[1].resource.as_deref(), Some("/resource1"));
/// assert!(h.has_etag_conditions());
/// assert_eq!(
///     h.state_tokens().collect::<Vec<_>>(),
///     ["urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2"]
/// );
/// assert!(matches!(&h.lists[1].conditions[0].kind, ConditionKind::ETag(t) if !t.weak));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfHeader {
    /// The lists in header order (at least one).
    pub lists: Vec<IfList>,
}

/// One `List` production: the AND of its conditions, with the resource it applies to.
///
/// ```
/// use tower_locks::IfHeader;
///
/// let h = IfHeader::parse("<http://www.example.com/specs/> (<urn:uuid:a>)").unwrap();
/// let list = &h.lists[0];
/// assert_eq!(list.resource.as_deref(), Some("http://www.example.com/specs/"));
/// assert_eq!(list.conditions.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfList {
    /// The raw text inside the Resource-Tag `<…>`, unresolved; `None` for an untagged list.
    pub resource: Option<String>,
    /// The conditions (at least one), all of which must hold.
    pub conditions: Vec<Condition>,
}

/// One `Condition`: a state token or an entity tag, possibly negated with `Not`.
///
/// ```
/// use tower_locks::{ConditionKind, IfHeader};
///
/// let h = IfHeader::parse("(not <DAV:no-lock>)").unwrap();
/// let c = &h.lists[0].conditions[0];
/// assert!(c.not);
/// assert_eq!(c.kind, ConditionKind::StateToken("DAV:no-lock".to_owned()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Whether the condition was prefixed with `Not` (any case).
    pub not: bool,
    /// What the condition tests.
    pub kind: ConditionKind,
}

/// What a [`Condition`] tests.
///
/// ```
/// use tower_locks::{ConditionKind, EntityTag, IfHeader};
///
/// let h = IfHeader::parse("(<urn:x> [\"4217\"])").unwrap();
/// let kinds: Vec<_> = h.lists[0].conditions.iter().map(|c| c.kind.clone()).collect();
/// assert_eq!(
///     kinds,
///     [
///         ConditionKind::StateToken("urn:x".to_owned()),
///         ConditionKind::ETag(EntityTag::parse("\"4217\"").unwrap()),
///     ]
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionKind {
    /// A `State-token` (`Coded-URL`): the text inside `<…>`, an absolute URI.
    StateToken(String),
    /// An entity tag inside `[…]`. Unlike [`EntityTag::parse`], the `If` parser also accepts
    /// SP and HTAB between the quotes (RFC 2616 `quoted-string`, which RFC 4918 refers to and
    /// its examples use: `["I am an ETag"]`).
    ETag(EntityTag),
}

/// An entity tag (RFC 9110 §8.8.3): `"opaque"` or `W/"opaque"`.
///
/// ```
/// use tower_locks::EntityTag;
///
/// let weak = EntityTag::parse("W/\"1\"").unwrap();
/// let strong = EntityTag::parse("\"1\"").unwrap();
/// assert!(weak.weak && !strong.weak);
/// assert_eq!(weak.opaque, "1");
/// assert!(weak.weak_eq(&strong));
/// assert!(!weak.strong_eq(&strong));
/// assert_eq!(weak.to_string(), "W/\"1\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityTag {
    /// Whether the tag carries the `W/` weakness indicator.
    pub weak: bool,
    /// The opaque tag without the surrounding double quotes.
    pub opaque: String,
}

impl EntityTag {
    /// Parse a complete entity tag: `"abc"` or `W/"abc"` (`W` is case-sensitive, RFC 9110
    /// `weak = %s"W/"`). Between the quotes only `etagc` is allowed: `%x21 / %x23-7E /
    /// obs-text` (no whitespace, no `"`). No surrounding whitespace is accepted.
    ///
    /// ```
    /// use tower_locks::EntityTag;
    ///
    /// assert_eq!(EntityTag::parse("\"\"").unwrap().opaque, "");
    /// assert!(EntityTag::parse("abc").is_none());
    /// assert!(EntityTag::parse("\"a b\"").is_none());
    /// assert!(EntityTag::parse("w/\"a\"").is_none());
    /// ```
    pub fn parse(s: &str) -> Option<EntityTag> {
        match parse_etag_at(s, 0, false) {
            Some((tag, end)) if end == s.len() => Some(tag),
            _ => None,
        }
    }

    /// Weak comparison (RFC 9110 §8.8.3.2): the opaque tags are equal, weakness ignored.
    ///
    /// ```
    /// use tower_locks::EntityTag;
    ///
    /// let a = EntityTag::parse("W/\"1\"").unwrap();
    /// assert!(a.weak_eq(&EntityTag::parse("W/\"1\"").unwrap()));
    /// assert!(!a.weak_eq(&EntityTag::parse("W/\"2\"").unwrap()));
    /// ```
    pub fn weak_eq(&self, other: &EntityTag) -> bool {
        self.opaque == other.opaque
    }

    /// Strong comparison (RFC 9110 §8.8.3.2): neither tag is weak and the opaque tags are equal.
    ///
    /// ```
    /// use tower_locks::EntityTag;
    ///
    /// let a = EntityTag::parse("\"1\"").unwrap();
    /// assert!(a.strong_eq(&EntityTag::parse("\"1\"").unwrap()));
    /// assert!(!a.strong_eq(&EntityTag::parse("W/\"1\"").unwrap()));
    /// ```
    pub fn strong_eq(&self, other: &EntityTag) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }
}

impl fmt::Display for EntityTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weak {
            f.write_str("W/")?;
        }
        write!(f, "\"{}\"", self.opaque)
    }
}

/// `etagc = %x21 / %x23-7E / obs-text`; non-ASCII text is obs-text.
fn is_etagc(c: char) -> bool {
    c == '\x21' || ('\x23'..='\x7e').contains(&c) || !c.is_ascii()
}

/// Parse an entity tag starting at byte `pos`; returns the tag and the byte after it.
///
/// With `quoted_string_ws`, SP and HTAB are also accepted between the quotes: RFC 4918 refers
/// to the RFC 2616 entity-tag (a `quoted-string`), and its own `If` examples use tags such as
/// `"I am an ETag"`. Backslashes are taken literally, as in RFC 9110.
pub(crate) fn parse_etag_at(
    s: &str,
    pos: usize,
    quoted_string_ws: bool,
) -> Option<(EntityTag, usize)> {
    let rest = s.get(pos..)?;
    let (weak, rest, start) = match rest.strip_prefix("W/") {
        Some(r) => (true, r, pos + 2),
        None => (false, rest, pos),
    };
    let body = rest.strip_prefix('"')?;
    let close = body.find('"')?;
    let opaque = &body[..close];
    if !opaque
        .chars()
        .all(|c| is_etagc(c) || (quoted_string_ws && (c == ' ' || c == '\t')))
    {
        return None;
    }
    let end = start + 1 + close + 1;
    Some((
        EntityTag {
            weak,
            opaque: opaque.to_owned(),
        },
        end,
    ))
}

/// Limits applied while parsing an `If` header, so a hostile header cannot cost much.
///
/// ```
/// use tower_locks::{IfHeader, IfHeaderError, IfLimits};
///
/// let limits = IfLimits { max_lists: 1, ..IfLimits::default() };
/// assert_eq!(IfLimits::default().max_len, 8192);
/// assert_eq!(
///     IfHeader::parse_with_limits("(<urn:a>) (<urn:b>)", &limits),
///     Err(IfHeaderError::TooManyLists { limit: 1 })
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfLimits {
    /// Maximum length of the header value in bytes (default 8192).
    pub max_len: usize,
    /// Maximum number of lists (default 64).
    pub max_lists: usize,
    /// Maximum number of conditions over all lists (default 256).
    pub max_conditions: usize,
}

impl Default for IfLimits {
    fn default() -> Self {
        Self {
            max_len: 8192,
            max_lists: 64,
            max_conditions: 256,
        }
    }
}

/// Why an `If` header was refused (answered with `400 Bad Request`). Byte positions are
/// 0-based offsets into the header value.
///
/// ```
/// use tower_locks::{IfHeader, IfHeaderError};
///
/// let err = IfHeader::parse("(<urn:a>) </r> (<urn:b>)").unwrap_err();
/// assert_eq!(err, IfHeaderError::Mixed);
/// assert_eq!(err.to_string(), "If header: mixed tagged and untagged lists");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IfHeaderError {
    /// The value is longer than [`IfLimits::max_len`].
    #[error("If header too long (limit {limit} bytes)")]
    TooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// More lists than [`IfLimits::max_lists`].
    #[error("If header: too many lists (limit {limit})")]
    TooManyLists {
        /// The limit.
        limit: usize,
    },
    /// More conditions than [`IfLimits::max_conditions`].
    #[error("If header: too many conditions (limit {limit})")]
    TooManyConditions {
        /// The limit.
        limit: usize,
    },
    /// The value is empty or only whitespace.
    #[error("If header: empty value")]
    Empty,
    /// A character that is not visible ASCII, SP or HTAB.
    #[error("If header: invalid character at byte {at}")]
    InvalidChar {
        /// Where.
        at: usize,
    },
    /// Tagged and untagged lists in one header (RFC 4918 §10.4.2).
    #[error("If header: mixed tagged and untagged lists")]
    Mixed,
    /// Something else was found where `expected` was required.
    #[error("If header: expected {expected} at byte {at}")]
    Expected {
        /// What the grammar required, e.g. `'('`.
        expected: &'static str,
        /// Where.
        at: usize,
    },
    /// A list `()` without conditions.
    #[error("If header: empty list at byte {at}")]
    EmptyList {
        /// Where the list starts.
        at: usize,
    },
    /// A Resource-Tag not followed by a list.
    #[error("If header: resource tag without a list at byte {at}")]
    TagWithoutList {
        /// Where the tag starts.
        at: usize,
    },
    /// Whitespace inside `<…>` (no LWS is allowed in a Coded-URL or Resource-Tag).
    #[error("If header: whitespace inside <...> at byte {at}")]
    WhitespaceInAngle {
        /// Where the whitespace is.
        at: usize,
    },
    /// A `<` without its `>`, or a `<` inside `<…>`.
    #[error("If header: unterminated <...> starting at byte {at}")]
    UnterminatedAngle {
        /// Where the `<` is.
        at: usize,
    },
    /// `<>` with nothing inside.
    #[error("If header: empty <> at byte {at}")]
    EmptyAngle {
        /// Where the `<` is.
        at: usize,
    },
    /// A state token that is not an absolute URI (`scheme ":" …`).
    #[error("If header: state token is not an absolute URI at byte {at}")]
    NotAbsoluteUri {
        /// Where the `<` is.
        at: usize,
    },
    /// A malformed `[entity-tag]`.
    #[error("If header: malformed entity tag at byte {at}")]
    BadEntityTag {
        /// Where the `[` is.
        at: usize,
    },
}

impl IfHeader {
    /// Parse an `If` header value with [`IfLimits::default`].
    ///
    /// ```
    /// use tower_locks::IfHeader;
    ///
    /// let h = IfHeader::parse("(<opaquelocktoken:abcx>) (Not <DAV:no-lock>)").unwrap();
    /// assert!(!h.is_tagged());
    /// assert_eq!(h.lists.len(), 2);
    /// ```
    ///
    /// # Errors
    /// [`IfHeaderError`] when the value does not follow RFC 4918 §10.4.2 or exceeds a limit.
    pub fn parse(s: &str) -> Result<IfHeader, IfHeaderError> {
        Self::parse_with_limits(s, &IfLimits::default())
    }

    /// Parse an `If` header value with explicit limits. The length limit is checked before
    /// anything else, the list and condition limits while parsing.
    ///
    /// ```
    /// use tower_locks::{IfHeader, IfHeaderError, IfLimits};
    ///
    /// let limits = IfLimits { max_conditions: 2, ..IfLimits::default() };
    /// assert!(IfHeader::parse_with_limits("(<urn:a> <urn:b>)", &limits).is_ok());
    /// assert_eq!(
    ///     IfHeader::parse_with_limits("(<urn:a> <urn:b> <urn:c>)", &limits),
    ///     Err(IfHeaderError::TooManyConditions { limit: 2 })
    /// );
    /// ```
    ///
    /// # Errors
    /// [`IfHeaderError`] when the value does not follow RFC 4918 §10.4.2 or exceeds a limit.
    pub fn parse_with_limits(s: &str, limits: &IfLimits) -> Result<IfHeader, IfHeaderError> {
        if s.len() > limits.max_len {
            return Err(IfHeaderError::TooLong {
                limit: limits.max_len,
            });
        }
        let allowed = |b: u8| b == b'\t' || (b' '..=b'~').contains(&b);
        // One branch-free pass (vectorised) for the common, valid value; the position of the
        // first bad byte is looked for only when there is one.
        if !s.bytes().fold(true, |ok, b| ok & allowed(b)) {
            let at = s.bytes().position(|b| !allowed(b)).unwrap_or_default();
            return Err(IfHeaderError::InvalidChar { at });
        }
        Self::parse_visible(s, limits)
    }

    /// [`parse_with_limits`](Self::parse_with_limits) for a value already known to hold only
    /// visible ASCII, SP and HTAB (a `HeaderValue::to_str` result) and to be within the length
    /// limit: the characters are not checked again.
    pub(crate) fn parse_visible(s: &str, limits: &IfLimits) -> Result<IfHeader, IfHeaderError> {
        debug_assert!(s.len() <= limits.max_len);
        debug_assert!(s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)));
        Parser {
            s,
            b: s.as_bytes(),
            pos: 0,
            limits,
            conditions: 0,
        }
        .header()
    }

    /// Whether the lists are tagged (carry a Resource-Tag).
    ///
    /// ```
    /// use tower_locks::IfHeader;
    ///
    /// assert!(IfHeader::parse("</a> (<urn:x>)").unwrap().is_tagged());
    /// assert!(!IfHeader::parse("(<urn:x>)").unwrap().is_tagged());
    /// ```
    pub fn is_tagged(&self) -> bool {
        self.lists.iter().any(|l| l.resource.is_some())
    }

    /// Every state token anywhere in the header, in header order, duplicates kept: also those
    /// after `Not` and those in lists tagged for other resources. All of them count as
    /// "submitted" with the request (RFC 4918 §10.4.1).
    ///
    /// ```
    /// use tower_locks::IfHeader;
    ///
    /// let h = IfHeader::parse("</a> (Not <urn:x> [\"e\"]) </b> (<urn:y>)").unwrap();
    /// assert_eq!(h.state_tokens().collect::<Vec<_>>(), ["urn:x", "urn:y"]);
    /// ```
    pub fn state_tokens(&self) -> impl Iterator<Item = &str> + '_ {
        self.lists
            .iter()
            .flat_map(|l| l.conditions.iter())
            .filter_map(|c| match &c.kind {
                ConditionKind::StateToken(t) => Some(t.as_str()),
                ConditionKind::ETag(_) => None,
            })
    }

    /// Whether any condition tests an entity tag (the layer then needs the resource's ETag).
    ///
    /// ```
    /// use tower_locks::IfHeader;
    ///
    /// assert!(IfHeader::parse("(Not [\"4217\"])").unwrap().has_etag_conditions());
    /// assert!(!IfHeader::parse("(<urn:x>)").unwrap().has_etag_conditions());
    /// ```
    pub fn has_etag_conditions(&self) -> bool {
        self.lists
            .iter()
            .flat_map(|l| l.conditions.iter())
            .any(|c| matches!(c.kind, ConditionKind::ETag(_)))
    }
}

/// Recursive-descent parser over an ASCII-only value (checked by the caller).
struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    limits: &'a IfLimits,
    conditions: usize,
}

impl<'a> Parser<'a> {
    fn skip_ws(&mut self) {
        while self.b.get(self.pos).copied().is_some_and(is_ows) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn header(mut self) -> Result<IfHeader, IfHeaderError> {
        let mut lists = Vec::new();
        self.skip_ws();
        let tagged = match self.peek() {
            None => return Err(IfHeaderError::Empty),
            Some(b'<') => true,
            Some(b'(') => false,
            Some(_) => {
                return Err(IfHeaderError::Expected {
                    expected: "'(' or '<'",
                    at: self.pos,
                })
            }
        };
        loop {
            self.skip_ws();
            match self.peek() {
                None => break,
                Some(b'(') if !tagged => {
                    let conditions = self.list(lists.len())?;
                    lists.push(IfList {
                        resource: None,
                        conditions,
                    });
                }
                Some(b'<') if tagged => {
                    let tag_at = self.pos;
                    let resource = self.angle()?;
                    self.skip_ws();
                    if self.peek() != Some(b'(') {
                        return Err(IfHeaderError::TagWithoutList { at: tag_at });
                    }
                    while self.peek() == Some(b'(') {
                        let conditions = self.list(lists.len())?;
                        lists.push(IfList {
                            resource: Some(resource.to_owned()),
                            conditions,
                        });
                        self.skip_ws();
                    }
                }
                Some(b'<') => return Err(IfHeaderError::Mixed),
                Some(_) => {
                    return Err(IfHeaderError::Expected {
                        expected: if tagged { "'<'" } else { "'('" },
                        at: self.pos,
                    })
                }
            }
        }
        Ok(IfHeader { lists })
    }

    /// A `List` at `(`; `existing` lists were parsed before it.
    fn list(&mut self, existing: usize) -> Result<Vec<Condition>, IfHeaderError> {
        if existing >= self.limits.max_lists {
            return Err(IfHeaderError::TooManyLists {
                limit: self.limits.max_lists,
            });
        }
        let start = self.pos;
        self.pos += 1; // '('
        let mut conditions = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b')') => {
                    self.pos += 1;
                    if conditions.is_empty() {
                        return Err(IfHeaderError::EmptyList { at: start });
                    }
                    return Ok(conditions);
                }
                None => {
                    return Err(IfHeaderError::Expected {
                        expected: "')'",
                        at: self.pos,
                    })
                }
                Some(_) => {
                    if self.conditions >= self.limits.max_conditions {
                        return Err(IfHeaderError::TooManyConditions {
                            limit: self.limits.max_conditions,
                        });
                    }
                    conditions.push(self.condition()?);
                    self.conditions += 1;
                }
            }
        }
    }

    fn condition(&mut self) -> Result<Condition, IfHeaderError> {
        let not = self
            .b
            .get(self.pos..self.pos + 3)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"not"));
        if not {
            self.pos += 3;
            self.skip_ws();
        }
        let kind = match self.peek() {
            Some(b'<') => {
                let at = self.pos;
                let token = self.angle()?;
                if !looks_like_absolute_uri(token) {
                    return Err(IfHeaderError::NotAbsoluteUri { at });
                }
                ConditionKind::StateToken(token.to_owned())
            }
            Some(b'[') => {
                let at = self.pos;
                let (tag, end) = parse_etag_at(self.s, at + 1, true)
                    .ok_or(IfHeaderError::BadEntityTag { at })?;
                if self.b.get(end) != Some(&b']') {
                    return Err(IfHeaderError::BadEntityTag { at });
                }
                self.pos = end + 1;
                ConditionKind::ETag(tag)
            }
            _ => {
                return Err(IfHeaderError::Expected {
                    expected: if not {
                        "'<' or '['"
                    } else {
                        "'Not', '<' or '['"
                    },
                    at: self.pos,
                })
            }
        };
        Ok(Condition { not, kind })
    }

    /// The text of a `<…>` at `<`: non-empty, no whitespace, no nested `<`.
    fn angle(&mut self) -> Result<&'a str, IfHeaderError> {
        let start = self.pos;
        let inside = self.b.get(start + 1..).unwrap_or_default();
        let stop = inside
            .iter()
            .position(|&c| matches!(c, b'>' | b'<') || is_ows(c));
        let i = match stop.map(|n| (start + 1 + n, inside[n])) {
            None | Some((_, b'<')) => return Err(IfHeaderError::UnterminatedAngle { at: start }),
            Some((i, b'>')) => i,
            Some((i, _)) => return Err(IfHeaderError::WhitespaceInAngle { at: i }),
        };
        if i == start + 1 {
            return Err(IfHeaderError::EmptyAngle { at: start });
        }
        self.pos = i + 1;
        Ok(&self.s[start + 1..i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2";
    const T2: &str = "urn:uuid:58f202ac-22cf-11d1-b12d-002035b29092";

    fn tok(not: bool, t: &str) -> Condition {
        Condition {
            not,
            kind: ConditionKind::StateToken(t.to_owned()),
        }
    }

    fn etag(not: bool, weak: bool, o: &str) -> Condition {
        Condition {
            not,
            kind: ConditionKind::ETag(EntityTag {
                weak,
                opaque: o.to_owned(),
            }),
        }
    }

    fn list(resource: Option<&str>, conditions: Vec<Condition>) -> IfList {
        IfList {
            resource: resource.map(str::to_owned),
            conditions,
        }
    }

    fn parse(s: &str) -> IfHeader {
        IfHeader::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    // ---- RFC 4918 examples ----

    #[test]
    fn rfc_10_4_6_untagged_etags() {
        let h = parse(&format!(
            "(<{T1}> [\"I am an ETag\"]) ([\"I am another ETag\"])"
        ));
        assert_eq!(
            h.lists,
            vec![
                list(
                    None,
                    vec![tok(false, T1), etag(false, false, "I am an ETag")]
                ),
                list(None, vec![etag(false, false, "I am another ETag")]),
            ]
        );
        assert!(!h.is_tagged());
        assert!(h.has_etag_conditions());
    }

    #[test]
    fn rfc_10_4_7_not_and_two_tokens() {
        let h = parse(&format!("(Not <{T1}> <{T2}>)"));
        assert_eq!(
            h.lists,
            vec![list(None, vec![tok(true, T1), tok(false, T2)])]
        );
        assert_eq!(h.state_tokens().collect::<Vec<_>>(), [T1, T2]);
        assert!(!h.has_etag_conditions());
    }

    #[test]
    fn rfc_10_4_8_not_no_lock() {
        let h = parse(&format!("(<{T1}>) (Not <DAV:no-lock>)"));
        assert_eq!(
            h.lists,
            vec![
                list(None, vec![tok(false, T1)]),
                list(None, vec![tok(true, "DAV:no-lock")]),
            ]
        );
        assert_eq!(h.state_tokens().collect::<Vec<_>>(), [T1, "DAV:no-lock"]);
    }

    #[test]
    fn rfc_10_4_9_tagged_weak_and_strong() {
        let h = parse(&format!(
            "</resource1> (<{T1}> [W/\"A weak ETag\"]) ([\"strong ETag\"])"
        ));
        assert_eq!(
            h.lists,
            vec![
                list(
                    Some("/resource1"),
                    vec![tok(false, T1), etag(false, true, "A weak ETag")]
                ),
                list(Some("/resource1"), vec![etag(false, false, "strong ETag")]),
            ]
        );
        assert!(h.is_tagged());
    }

    #[test]
    fn rfc_10_4_10_absolute_tag() {
        let h = parse(&format!("<http://www.example.com/specs/> (<{T1}>)"));
        assert_eq!(
            h.lists,
            vec![list(
                Some("http://www.example.com/specs/"),
                vec![tok(false, T1)]
            )]
        );
    }

    #[test]
    fn rfc_10_4_11_and_12_etag_only() {
        let h = parse("</specs/rfc2518.doc> ([\"4217\"])");
        assert_eq!(
            h.lists,
            vec![list(
                Some("/specs/rfc2518.doc"),
                vec![etag(false, false, "4217")]
            )]
        );
        let h = parse("</specs/rfc2518.doc> (Not [\"4217\"])");
        assert_eq!(
            h.lists,
            vec![list(
                Some("/specs/rfc2518.doc"),
                vec![etag(true, false, "4217")]
            )]
        );
        let h = parse("([\"4217\"])");
        assert_eq!(h.lists, vec![list(None, vec![etag(false, false, "4217")])]);
        let h = parse("(Not [\"4217\"])");
        assert_eq!(h.lists, vec![list(None, vec![etag(true, false, "4217")])]);
        assert_eq!(h.state_tokens().count(), 0);
    }

    #[test]
    fn rfc_7_5_2_and_9_x_examples() {
        // §7.5.2 / §9.8.8 / §9.9.6 style: a tagged absolute URI with one lock token.
        let h = parse(
            "<http://www.example.com/users/f/fielding/index.html> \
             (<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>)",
        );
        assert_eq!(
            h.lists,
            vec![list(
                Some("http://www.example.com/users/f/fielding/index.html"),
                vec![tok(false, "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")]
            )]
        );
        // §9.10.8 refresh.
        let h = parse("(<urn:uuid:e71d4fae-5dec-22d6-fea5-00a0c91e6be4>)");
        assert_eq!(
            h.lists,
            vec![list(
                None,
                vec![tok(false, "urn:uuid:e71d4fae-5dec-22d6-fea5-00a0c91e6be4")]
            )]
        );
    }

    #[test]
    fn several_tags_each_with_lists() {
        let h = parse("</a> (<urn:1>) (<urn:2>) <http://h/b> (Not <urn:3> [\"x\"])");
        assert_eq!(
            h.lists,
            vec![
                list(Some("/a"), vec![tok(false, "urn:1")]),
                list(Some("/a"), vec![tok(false, "urn:2")]),
                list(
                    Some("http://h/b"),
                    vec![tok(true, "urn:3"), etag(false, false, "x")]
                ),
            ]
        );
        assert_eq!(
            h.state_tokens().collect::<Vec<_>>(),
            ["urn:1", "urn:2", "urn:3"]
        );
    }

    // ---- litmus (LITMUS.md §3, §4) ----

    #[test]
    fn litmus_headers() {
        let t = "opaquelocktoken:f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
        let et = "W/\"20-5f0c2b94a71\"";
        let bad = "W/\"20-5f0c2b94a81\"";
        // refresh, tests 8/35/36
        assert_eq!(
            parse(&format!("(<{t}>)")).lists,
            vec![list(None, vec![tok(false, t)])]
        );
        // owner_modify, tests 11/26/32/33
        let h = parse(&format!(
            "<http://127.0.0.1:8088/dav/litmus/lockme> (<{t}>)"
        ));
        assert_eq!(
            h.lists[0].resource.as_deref(),
            Some("http://127.0.0.1:8088/dav/litmus/lockme")
        );
        // cond_put 15
        let h = parse(&format!("(<{t}> [{et}])"));
        assert_eq!(
            h.lists,
            vec![list(
                None,
                vec![tok(false, t), etag(false, true, "20-5f0c2b94a71")]
            )]
        );
        // fail_cond_put 16: <DAV:no-lock> must parse (a 400 would FAIL litmus)
        let h = parse(&format!("(<DAV:no-lock> [{et}])"));
        assert_eq!(h.state_tokens().collect::<Vec<_>>(), ["DAV:no-lock"]);
        // cond_put_with_not 17
        let h = parse(&format!("(<{t}>) (Not <DAV:no-lock>)"));
        assert_eq!(h.lists.len(), 2);
        // cond_put_corrupt_token 18: litmus sends "(<%sx>) (Not <DAV:no-lock>)"
        let h = parse(&format!("(<{t}x>) (Not <DAV:no-lock>)"));
        let corrupt = format!("{t}x");
        assert_eq!(
            h.state_tokens().collect::<Vec<_>>(),
            [corrupt.as_str(), "DAV:no-lock"]
        );
        // The form written in LITMUS.md's table, an 'x' after '>', is not valid syntax.
        assert_eq!(
            IfHeader::parse(&format!("(<{t}>x) (Not <DAV:no-lock>)")),
            Err(IfHeaderError::Expected {
                expected: "'Not', '<' or '['",
                at: t.len() + 3
            })
        );
        // complex_cond_put 19 / fail_complex_cond_put 20
        for e in [et, bad] {
            let h = parse(&format!("(<{t}> [{e}]) (Not <DAV:no-lock> [{e}])"));
            assert_eq!(h.lists[1].conditions[0], tok(true, "DAV:no-lock"));
            assert!(matches!(
                h.lists[1].conditions[1].kind,
                ConditionKind::ETag(_)
            ));
        }
        // fail_cond_put_unlocked 22
        assert_eq!(
            parse("(<DAV:no-lock>)").lists,
            vec![list(None, vec![tok(false, "DAV:no-lock")])]
        );
        // unknown tokens are fine
        parse("(<urn:uuid:bogus>) (<opaquelocktoken:foobar>)");
    }

    // ---- whitespace and case ----

    #[test]
    fn whitespace_variants() {
        let expect = vec![
            list(None, vec![tok(true, "urn:x")]),
            list(None, vec![tok(false, "urn:y"), etag(false, false, "e")]),
        ];
        for s in [
            "(Not <urn:x>) (<urn:y> [\"e\"])",
            "(Not<urn:x>)(<urn:y>[\"e\"])",
            "( Not <urn:x> ) ( <urn:y> [\"e\"] )",
            "  \t(Not\t<urn:x>)\t\t(<urn:y>  [\"e\"])  ",
            "(NOT <urn:x>)(<urn:y>[\"e\"])",
            "(not<urn:x>)(<urn:y>[\"e\"])",
            "(nOt <urn:x>) (<urn:y> [\"e\"])",
        ] {
            assert_eq!(parse(s).lists, expect, "{s:?}");
        }
        let h = parse("</a>(<urn:x>)</b>(<urn:y>)");
        assert_eq!(h.lists.len(), 2);
        assert_eq!(h.lists[1].resource.as_deref(), Some("/b"));
    }

    // ---- malformed ----

    fn err(s: &str) -> IfHeaderError {
        match IfHeader::parse(s) {
            Ok(h) => panic!("{s:?} parsed as {h:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn malformed() {
        use IfHeaderError as E;
        assert_eq!(err(""), E::Empty);
        assert_eq!(err("   \t "), E::Empty);
        assert_eq!(err("()"), E::EmptyList { at: 0 });
        assert_eq!(err("(<urn:x>) ( )"), E::EmptyList { at: 10 });
        assert_eq!(
            err("(<urn:x>"),
            E::Expected {
                expected: "')'",
                at: 8
            }
        );
        assert_eq!(err("(<urn:x"), E::UnterminatedAngle { at: 1 });
        assert_eq!(err("(<urn:<x>)"), E::UnterminatedAngle { at: 1 });
        assert_eq!(
            err("<urn:x> (<urn:y>"),
            E::Expected {
                expected: "')'",
                at: 16
            }
        );
        assert_eq!(err("<urn:x>) (<urn:y>)"), E::TagWithoutList { at: 0 });
        assert_eq!(
            err("(<urn:x>))"),
            E::Expected {
                expected: "'('",
                at: 9
            }
        );
        assert_eq!(err("(<urn:a>) </r> (<urn:b>)"), E::Mixed);
        assert_eq!(
            err("</r> (<urn:a>) (<urn:b>) x"),
            E::Expected {
                expected: "'<'",
                at: 25
            }
        );
        assert_eq!(err("</r>"), E::TagWithoutList { at: 0 });
        assert_eq!(err("</r> </s> (<urn:a>)"), E::TagWithoutList { at: 0 });
        assert_eq!(err("(<urn:a>) </r>"), E::Mixed);
        assert_eq!(err("(< urn:x>)"), E::WhitespaceInAngle { at: 2 });
        assert_eq!(err("(<urn:x >)"), E::WhitespaceInAngle { at: 7 });
        assert_eq!(err("(<urn: x>)"), E::WhitespaceInAngle { at: 6 });
        assert_eq!(err("</a b> (<urn:x>)"), E::WhitespaceInAngle { at: 3 });
        assert_eq!(err("<> (<urn:x>)"), E::EmptyAngle { at: 0 });
        assert_eq!(err("(<>)"), E::EmptyAngle { at: 1 });
        assert_eq!(err("(<no-scheme>)"), E::NotAbsoluteUri { at: 1 });
        assert_eq!(err("(</path>)"), E::NotAbsoluteUri { at: 1 });
        assert_eq!(err("(<1x:y>)"), E::NotAbsoluteUri { at: 1 });
        assert_eq!(err("([ \"e\"])"), E::BadEntityTag { at: 1 });
        assert_eq!(err("([\"e\" ])"), E::BadEntityTag { at: 1 });
        assert_eq!(err("([\"e\"x])"), E::BadEntityTag { at: 1 });
        assert_eq!(err("([e])"), E::BadEntityTag { at: 1 });
        assert_eq!(err("([\"e])"), E::BadEntityTag { at: 1 });
        assert_eq!(err("([w/\"e\"])"), E::BadEntityTag { at: 1 });
        assert_eq!(err("([])"), E::BadEntityTag { at: 1 });
        assert_eq!(
            err("(Not)"),
            E::Expected {
                expected: "'<' or '['",
                at: 4
            }
        );
        assert_eq!(
            err("(Not Not <urn:x>)"),
            E::Expected {
                expected: "'<' or '['",
                at: 5
            }
        );
        assert_eq!(
            err("(No <urn:x>)"),
            E::Expected {
                expected: "'Not', '<' or '['",
                at: 1
            }
        );
        assert_eq!(
            err("(Nope<urn:x>)"),
            E::Expected {
                expected: "'Not', '<' or '['",
                at: 1
            }
        );
        assert_eq!(
            err("(Notx<urn:x>)"),
            E::Expected {
                expected: "'<' or '['",
                at: 4
            }
        );
        assert_eq!(
            err("garbage"),
            E::Expected {
                expected: "'(' or '<'",
                at: 0
            }
        );
        assert_eq!(
            err("((<urn:x>))"),
            E::Expected {
                expected: "'Not', '<' or '['",
                at: 1
            }
        );
        assert_eq!(
            err("(<urn:x>) , (<urn:y>)"),
            E::Expected {
                expected: "'('",
                at: 10
            }
        );
        assert_eq!(err("(<urn:\u{e9}>)"), E::InvalidChar { at: 6 });
        assert_eq!(err("(<urn:x>)\r\n (<urn:y>)"), E::InvalidChar { at: 9 });
        assert_eq!(err("(<urn:x>\0)"), E::InvalidChar { at: 8 });
        assert_eq!(err("([\"\u{7f}\"])"), E::InvalidChar { at: 3 });
    }

    #[test]
    fn limits() {
        let huge = format!("({})", "<urn:x>".repeat(2000));
        assert_eq!(err(&huge), IfHeaderError::TooLong { limit: 8192 });
        let long_garbage = "\u{e9}".repeat(10_000);
        assert_eq!(err(&long_garbage), IfHeaderError::TooLong { limit: 8192 });

        let many_lists = "(<urn:x>)".repeat(65);
        assert_eq!(err(&many_lists), IfHeaderError::TooManyLists { limit: 64 });
        assert_eq!(parse(&"(<urn:x>)".repeat(64)).lists.len(), 64);

        let many_conds = format!("({})", "<u:x>".repeat(257));
        assert_eq!(
            err(&many_conds),
            IfHeaderError::TooManyConditions { limit: 256 }
        );
        assert_eq!(
            parse(&format!("({})", "<u:x>".repeat(256))).lists[0]
                .conditions
                .len(),
            256
        );
        // the condition limit counts over all lists
        let spread = "(<u:x><u:y><u:z><u:w>)".repeat(64);
        assert_eq!(parse(&spread).state_tokens().count(), 256);
        let limits = IfLimits {
            max_conditions: 5,
            ..IfLimits::default()
        };
        assert_eq!(
            IfHeader::parse_with_limits("(<u:a> <u:b>) (<u:c> <u:d>) (<u:e> <u:f>)", &limits),
            Err(IfHeaderError::TooManyConditions { limit: 5 })
        );
        let limits = IfLimits {
            max_len: 9,
            ..IfLimits::default()
        };
        assert!(IfHeader::parse_with_limits("(<urn:x>)", &limits).is_ok());
        assert_eq!(
            IfHeader::parse_with_limits("(<urn:x>) ", &limits),
            Err(IfHeaderError::TooLong { limit: 9 })
        );
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            IfHeaderError::Expected {
                expected: "'('",
                at: 12
            }
            .to_string(),
            "If header: expected '(' at byte 12"
        );
        assert_eq!(
            IfHeaderError::TooLong { limit: 8192 }.to_string(),
            "If header too long (limit 8192 bytes)"
        );
        assert_eq!(
            IfHeaderError::Mixed.to_string(),
            "If header: mixed tagged and untagged lists"
        );
    }

    #[test]
    fn if_entity_tags_allow_quoted_string_whitespace() {
        // RFC 4918 examples use "I am an ETag": RFC 2616 quoted-string, not RFC 9110 etagc.
        let h = parse("([\"a b\"] [W/\"\tc\"])");
        assert_eq!(
            h.lists[0].conditions,
            vec![etag(false, false, "a b"), etag(false, true, "\tc")]
        );
        assert_eq!(EntityTag::parse("\"a b\""), None);
        assert_eq!(err("([\"a\"b\"])"), IfHeaderError::BadEntityTag { at: 1 });
        // no quoted-pair processing: the backslash is part of the opaque tag
        assert_eq!(
            parse("([\"a\\\"])").lists[0].conditions,
            vec![etag(false, false, "a\\")]
        );
    }

    // ---- entity tags ----

    #[test]
    fn entity_tag_parse() {
        assert_eq!(
            EntityTag::parse("\"xyzzy\""),
            Some(EntityTag {
                weak: false,
                opaque: "xyzzy".into()
            })
        );
        assert_eq!(
            EntityTag::parse("W/\"xyzzy\""),
            Some(EntityTag {
                weak: true,
                opaque: "xyzzy".into()
            })
        );
        assert_eq!(
            EntityTag::parse("\"\"").map(|t| t.opaque),
            Some(String::new())
        );
        assert_eq!(
            EntityTag::parse("\"!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\"").map(|t| t.opaque.len()),
            Some(31)
        );
        assert_eq!(
            EntityTag::parse("\"caf\u{e9}\"").map(|t| t.weak),
            Some(false)
        );
        for bad in [
            "",
            "\"",
            "xyzzy",
            "\"a\"b",
            "\"a\" ",
            " \"a\"",
            "W/",
            "W/a",
            "w/\"a\"",
            "W /\"a\"",
            "\"a b\"",
            "\"a\tb\"",
            "\"a\u{1}\"",
            "\"a\u{7f}\"",
            "\"a\"\"",
            "WW/\"a\"",
            "*",
        ] {
            assert_eq!(EntityTag::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn entity_tag_comparison_table_rfc9110_8_8_3_2() {
        let p = |s: &str| EntityTag::parse(s).unwrap();
        // (ETag 1, ETag 2, strong comparison, weak comparison)
        let table = [
            ("W/\"1\"", "W/\"1\"", false, true),
            ("W/\"1\"", "W/\"2\"", false, false),
            ("W/\"1\"", "\"1\"", false, true),
            ("\"1\"", "\"1\"", true, true),
        ];
        for (a, b, strong, weak) in table {
            let (a, b) = (p(a), p(b));
            assert_eq!(a.strong_eq(&b), strong, "{a} {b}");
            assert_eq!(b.strong_eq(&a), strong, "{b} {a}");
            assert_eq!(a.weak_eq(&b), weak, "{a} {b}");
            assert_eq!(b.weak_eq(&a), weak, "{b} {a}");
        }
        assert!(!p("\"1\"").strong_eq(&p("\"2\"")));
        assert!(!p("\"1\"").weak_eq(&p("\"2\"")));
    }

    #[test]
    fn entity_tag_display_round_trips() {
        for s in ["\"a\"", "W/\"a\"", "\"\""] {
            assert_eq!(EntityTag::parse(s).unwrap().to_string(), s);
        }
    }
}
