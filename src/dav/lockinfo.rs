//! Parsing the `DAV:lockinfo` body of a LOCK request (RFC 4918 §9.10, §14.11).

use std::collections::BTreeSet;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{PrefixDeclaration, QName, ResolveResult};
use quick_xml::NsReader;

use super::multistatus::is_utf8_name;
use crate::LockScope;

/// The WebDAV namespace name.
const DAV: &[u8] = b"DAV:";

/// The longest reason kept in [`LockInfoError::NotWellFormed`].
const MAX_REASON: usize = 160;

/// What a LOCK request asks for: the parsed `DAV:lockinfo` body.
///
/// Only write locks exist (RFC 4918 §7), so there is no lock type field.
///
/// ```
/// use tower_locks::dav::{parse_lockinfo, LockInfo};
/// use tower_locks::LockScope;
///
/// let info = parse_lockinfo(
///     b"<lockinfo xmlns='DAV:'><lockscope><exclusive/></lockscope>\
///       <locktype><write/></locktype><owner>litmus test suite</owner></lockinfo>",
///     1024,
/// )
/// .unwrap();
/// assert_eq!(
///     info,
///     LockInfo { scope: LockScope::Exclusive, owner: Some("litmus test suite".to_owned()) }
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// Exclusive or shared (`DAV:lockscope`).
    pub scope: LockScope,
    /// The content of `DAV:owner`, verbatim as XML (text, or elements made self-contained
    /// with the namespace declarations they need); `None` when absent or empty.
    pub owner: Option<String>,
}

/// Why a LOCK body was refused.
///
/// ```
/// use tower_locks::dav::{parse_lockinfo, LockInfoError};
///
/// assert!(matches!(parse_lockinfo(b"", 1024), Err(LockInfoError::NotWellFormed(_))));
/// assert_eq!(
///     parse_lockinfo(b"<propfind xmlns='DAV:'/>", 1024),
///     Err(LockInfoError::NotLockInfo)
/// );
/// assert_eq!(
///     parse_lockinfo(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>", 1024),
///     Err(LockInfoError::DoctypeNotAllowed)
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LockInfoError {
    /// The body is not well-formed, namespace-well-formed XML in UTF-8, or UTF-16 with a byte
    /// order mark (includes an empty body, undefined entity references and an XML declaration
    /// naming another encoding than the body's).
    #[error("request body is not well-formed XML: {0}")]
    NotWellFormed(String),
    /// The root element is not `DAV:lockinfo`.
    #[error("the root element is not DAV:lockinfo")]
    NotLockInfo,
    /// No `DAV:lockscope` holding `DAV:exclusive` or `DAV:shared`.
    #[error("DAV:lockscope with DAV:exclusive or DAV:shared is missing")]
    MissingScope,
    /// The lock scope names both `DAV:exclusive` and `DAV:shared`.
    #[error("DAV:lockscope names both DAV:exclusive and DAV:shared")]
    AmbiguousScope,
    /// No `DAV:locktype` element.
    #[error("DAV:locktype is missing")]
    MissingLockType,
    /// `DAV:locktype` does not hold `DAV:write`, the only lock type (RFC 4918 §7).
    #[error("only DAV:write locks are supported")]
    UnsupportedLockType,
    /// The body has a document type declaration. DTDs are never processed, so no entity can
    /// be declared or expanded (RFC 4918 §20.6; answer with `DAV:no-external-entities`).
    #[error("document type declarations are not allowed")]
    DoctypeNotAllowed,
    /// More than one `DAV:owner` element.
    #[error("more than one DAV:owner element")]
    DuplicateOwner,
    /// The body has more of something than a lockinfo needs (a resource limit).
    #[error("too many {0} in the request body")]
    TooComplex(&'static str),
    /// The owner content is larger than the limit.
    #[error("DAV:owner is larger than {limit} bytes")]
    OwnerTooLarge {
        /// The limit that was exceeded, in bytes.
        limit: usize,
    },
}

/// Parse a LOCK request body (`DAV:lockinfo`, RFC 4918 §14.11).
///
/// - Elements are matched by namespace (`DAV:`) and local name, never by prefix. Unknown
///   elements and attributes are ignored wherever they appear (§17).
/// - A document type declaration is refused ([`LockInfoError::DoctypeNotAllowed`]): no DTD is
///   read and no entity is ever expanded. Only the five predefined entities and character
///   references are accepted.
/// - The body is UTF-8 (a leading byte order mark is accepted) or UTF-16 with its byte order
///   mark (XML 1.0 §4.3.3); an XML declaration naming another encoding is refused.
/// - The `DAV:owner` content is kept verbatim (§14.17: the server "MUST NOT alter the value"),
///   except that the namespace declarations it relies on from its ancestors are added to each
///   of its top-level child elements, so the value can be written back inside any document. An
///   empty or whitespace-only owner gives `None`. Owners longer than `max_owner_bytes` (after
///   adding those declarations) are refused.
///
/// The caller enforces the limit on the whole body size.
///
/// ```
/// use tower_locks::dav::parse_lockinfo;
/// use tower_locks::LockScope;
///
/// let body = br#"<?xml version="1.0" encoding="utf-8" ?>
/// <D:lockinfo xmlns:D='DAV:'>
///   <D:lockscope><D:exclusive/></D:lockscope>
///   <D:locktype><D:write/></D:locktype>
///   <D:owner>
///     <D:href>http://example.org/~ejw/contact.html</D:href>
///   </D:owner>
/// </D:lockinfo>"#;
/// let info = parse_lockinfo(body, 1024).unwrap();
/// assert_eq!(info.scope, LockScope::Exclusive);
/// assert_eq!(
///     info.owner.as_deref(),
///     Some("\n    <D:href xmlns:D=\"DAV:\">http://example.org/~ejw/contact.html</D:href>\n  ")
/// );
/// ```
pub fn parse_lockinfo(body: &[u8], max_owner_bytes: usize) -> Result<LockInfo, LockInfoError> {
    // XML 1.0 §4.3.3: every processor reads UTF-8 and UTF-16, told apart by the byte order
    // mark (RFC 4918 §19 requires the XML specification's encoding support).
    let decoded;
    let (src, utf16) = match body {
        [0xFF, 0xFE, rest @ ..] => {
            decoded = from_utf16(rest, u16::from_le_bytes)?;
            (decoded.as_str(), true)
        }
        [0xFE, 0xFF, rest @ ..] => {
            decoded = from_utf16(rest, u16::from_be_bytes)?;
            (decoded.as_str(), true)
        }
        _ => {
            let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
            let src = std::str::from_utf8(body).map_err(|_| not_wf("body is not UTF-8"))?;
            (src, false)
        }
    };
    if let Some(c) = src.chars().find(|&c| !is_xml_char(c)) {
        return Err(not_wf(&format!(
            "character U+{:04X} is not allowed in XML",
            u32::from(c)
        )));
    }

    let mut reader = NsReader::from_str(src);
    {
        let config = reader.config_mut();
        config.enable_all_checks(true);
        config.allow_unmatched_ends = false;
        config.allow_dangling_amp = false;
        config.expand_empty_elements = false;
        config.trim_text(false);
    }

    let mut state = State::new(max_owner_bytes);
    let mut first_event = true;
    loop {
        let pos = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let (is_dav, event) = match reader.read_resolved_event() {
            Ok((ResolveResult::Unknown(prefix), _)) => {
                return Err(not_wf(&format!(
                    "undeclared namespace prefix '{}'",
                    String::from_utf8_lossy(&prefix)
                )))
            }
            Ok((ns, event)) => (is_dav_namespace(&ns), event),
            Err(e) => {
                return Err(not_wf(&format!(
                    "{e} (at byte {})",
                    reader.error_position()
                )))
            }
        };
        match event {
            Event::Decl(decl) => {
                if !first_event || pos != 0 {
                    return Err(not_wf("XML declaration not at the start"));
                }
                let version = decl.version().map_err(|e| not_wf(&e.to_string()))?;
                if &*version != b"1.0" {
                    return Err(not_wf("unsupported XML version"));
                }
                if let Some(encoding) = decl.encoding() {
                    let encoding = encoding.map_err(|e| not_wf(&e.to_string()))?;
                    let named_utf16 = [&b"utf-16"[..], b"utf-16le", b"utf-16be"]
                        .iter()
                        .any(|e| encoding.eq_ignore_ascii_case(e));
                    if !(utf16 && named_utf16 || !utf16 && is_utf8_name(&encoding)) {
                        return Err(not_wf(
                            "the XML declaration names another encoding than the body's \
                             (UTF-8, or UTF-16 with a byte order mark)",
                        ));
                    }
                }
            }
            Event::DocType(_) => return Err(LockInfoError::DoctypeNotAllowed),
            Event::Start(start) => state.open(&reader, src, pos, &start, is_dav, false)?,
            Event::Empty(start) => state.open(&reader, src, pos, &start, is_dav, true)?,
            Event::End(_) => state.close(src, pos)?,
            Event::Text(text) => {
                let raw = std::str::from_utf8(&text).map_err(|_| not_wf("text is not UTF-8"))?;
                if state.stack.is_empty() && !raw.chars().all(is_xml_space) {
                    return Err(not_wf("text outside the root element"));
                }
                if raw.contains("]]>") {
                    return Err(not_wf("']]>' in character data"));
                }
            }
            Event::GeneralRef(reference) => {
                if state.stack.is_empty() {
                    return Err(not_wf("entity reference outside the root element"));
                }
                check_reference(&reference)?;
            }
            Event::CData(_) => {
                if state.stack.is_empty() {
                    return Err(not_wf("CDATA outside the root element"));
                }
            }
            Event::Comment(comment) => {
                if comment.windows(2).any(|w| w == b"--") || comment.ends_with(b"-") {
                    return Err(not_wf("'--' in a comment"));
                }
            }
            Event::PI(pi) => {
                let target = std::str::from_utf8(pi.target()).unwrap_or("");
                if !is_ncname(target) || target.eq_ignore_ascii_case("xml") {
                    return Err(not_wf("invalid processing instruction target"));
                }
            }
            Event::Eof => break,
        }
        first_event = false;
    }
    state.finish()
}

/// The element a node of the open-element stack is, as far as lockinfo cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    LockInfo,
    LockScope,
    LockType,
    Owner,
    Other,
}

/// A top-level child element of `DAV:owner`, where namespace declarations may be added.
#[derive(Debug)]
struct OwnerChild {
    /// Byte offset in the source just after the element's name.
    insert_at: usize,
    /// Prefixes declared on the element itself (`None`: the default namespace).
    declared: Vec<Option<Vec<u8>>>,
    /// Prefixes used by the element and its descendants (`None`: the default namespace), each
    /// once: a set, so an owner using thousands of prefixes costs `n log n`, not `n²`.
    used: BTreeSet<Option<Vec<u8>>>,
}

/// The `DAV:owner` element being read.
#[derive(Debug)]
struct OwnerCapture {
    /// The index of the owner element in the open-element stack.
    level: usize,
    /// Byte offset where the content starts.
    start: usize,
    /// The namespace bindings in scope inside the owner element: `(prefix, raw value)`.
    bindings: Vec<(Option<Vec<u8>>, Vec<u8>)>,
    children: Vec<OwnerChild>,
}

#[derive(Debug)]
struct State {
    max_owner_bytes: usize,
    stack: Vec<Role>,
    root_seen: bool,
    lockinfo: bool,
    exclusive: bool,
    shared: bool,
    locktype_seen: bool,
    write: bool,
    capture: Option<OwnerCapture>,
    owner: Option<Option<String>>,
    duplicate_owner: bool,
    /// Namespace declarations in scope (on the open elements).
    declarations: usize,
    /// How many of them each open element made.
    declared_by: Vec<usize>,
}

impl State {
    fn new(max_owner_bytes: usize) -> Self {
        Self {
            max_owner_bytes,
            stack: Vec::new(),
            root_seen: false,
            lockinfo: false,
            exclusive: false,
            shared: false,
            locktype_seen: false,
            write: false,
            capture: None,
            owner: None,
            duplicate_owner: false,
            declarations: 0,
            declared_by: Vec::new(),
        }
    }

    fn open(
        &mut self,
        reader: &NsReader<&[u8]>,
        src: &str,
        pos: usize,
        start: &BytesStart<'_>,
        is_dav: bool,
        empty: bool,
    ) -> Result<(), LockInfoError> {
        let name = start.name();
        check_qname(name)?;
        if name.prefix().is_some_and(|p| p.as_ref() == b"xmlns") {
            return Err(not_wf("element name with the 'xmlns' prefix"));
        }
        let in_scope = self.declarations;
        let attrs = check_attributes(reader, start, &mut self.declarations)?;
        let declared = self.declarations - in_scope;

        if self.stack.is_empty() && self.root_seen {
            return Err(not_wf("content after the root element"));
        }
        let local = name.local_name();
        let local = local.as_ref();
        let dav = |n: &[u8]| is_dav && local == n;
        let role = match self.stack.last() {
            None => {
                self.root_seen = true;
                self.lockinfo = dav(b"lockinfo");
                if self.lockinfo {
                    Role::LockInfo
                } else {
                    Role::Other
                }
            }
            Some(Role::LockInfo) if dav(b"lockscope") => Role::LockScope,
            Some(Role::LockInfo) if dav(b"locktype") => {
                self.locktype_seen = true;
                Role::LockType
            }
            Some(Role::LockInfo) if dav(b"owner") => Role::Owner,
            Some(Role::LockScope) => {
                self.exclusive |= dav(b"exclusive");
                self.shared |= dav(b"shared");
                Role::Other
            }
            Some(Role::LockType) => {
                self.write |= dav(b"write");
                Role::Other
            }
            Some(_) => Role::Other,
        };

        // Inside the owner content: remember where declarations may go and what is used.
        if let Some(capture) = &mut self.capture {
            if self.stack.len() == capture.level + 1 {
                let insert_at = tag_name_end(src, pos, name.as_ref())?;
                capture.children.push(OwnerChild {
                    insert_at,
                    declared: attrs.declared.clone(),
                    used: BTreeSet::new(),
                });
            }
            if let Some(child) = capture.children.last_mut() {
                child
                    .used
                    .insert(name.prefix().map(|p| p.as_ref().to_vec()));
                child.used.extend(attrs.used.into_iter().map(Some));
            }
        }

        if role == Role::Owner {
            if self.owner.is_some() || self.capture.is_some() {
                self.duplicate_owner = true;
            }
            if empty {
                self.owner.get_or_insert(None);
            } else if self.capture.is_none() && self.owner.is_none() {
                let start = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
                let bindings = reader
                    .prefixes()
                    .map(|(prefix, ns)| {
                        let prefix = match prefix {
                            PrefixDeclaration::Default => None,
                            PrefixDeclaration::Named(p) => Some(p.to_vec()),
                        };
                        (prefix, ns.as_ref().to_vec())
                    })
                    .collect();
                self.capture = Some(OwnerCapture {
                    level: self.stack.len(),
                    start,
                    bindings,
                    children: Vec::new(),
                });
            }
        }

        if empty {
            // Its declarations go out of scope with it.
            self.declarations -= declared;
        } else {
            self.stack.push(role);
            self.declared_by.push(declared);
        }
        Ok(())
    }

    fn close(&mut self, src: &str, pos: usize) -> Result<(), LockInfoError> {
        self.stack.pop();
        self.declarations -= self.declared_by.pop().unwrap_or(0);
        if let Some(capture) = &self.capture {
            if self.stack.len() == capture.level {
                let capture = self.capture.take().expect("checked above");
                let owner = finish_owner(src, pos, capture, self.max_owner_bytes)?;
                self.owner = Some(owner);
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<LockInfo, LockInfoError> {
        if !self.root_seen {
            return Err(not_wf("no root element"));
        }
        if !self.stack.is_empty() {
            return Err(not_wf("unclosed element at end of body"));
        }
        if !self.lockinfo {
            return Err(LockInfoError::NotLockInfo);
        }
        let scope = match (self.exclusive, self.shared) {
            (true, false) => LockScope::Exclusive,
            (false, true) => LockScope::Shared,
            (true, true) => return Err(LockInfoError::AmbiguousScope),
            (false, false) => return Err(LockInfoError::MissingScope),
        };
        if !self.locktype_seen {
            return Err(LockInfoError::MissingLockType);
        }
        if !self.write {
            return Err(LockInfoError::UnsupportedLockType);
        }
        if self.duplicate_owner {
            return Err(LockInfoError::DuplicateOwner);
        }
        Ok(LockInfo {
            scope,
            owner: self.owner.flatten(),
        })
    }
}

/// Build the owner value from the captured content `src[capture.start..end]`.
fn finish_owner(
    src: &str,
    end: usize,
    capture: OwnerCapture,
    limit: usize,
) -> Result<Option<String>, LockInfoError> {
    let raw = src
        .get(capture.start..end)
        .ok_or_else(|| not_wf("owner content out of bounds"))?;
    let too_large = LockInfoError::OwnerTooLarge { limit };
    if raw.len() > limit {
        return Err(too_large);
    }
    if capture.children.is_empty() {
        if raw.chars().all(is_xml_space) {
            return Ok(None);
        }
        return Ok(Some(raw.to_owned()));
    }

    let mut out = String::with_capacity(raw.len() + 32);
    let mut cursor = capture.start;
    for child in &capture.children {
        out.push_str(&src[cursor..child.insert_at]);
        cursor = child.insert_at;
        for prefix in &child.used {
            if child.declared.contains(prefix) {
                continue;
            }
            let bound = capture
                .bindings
                .iter()
                .rev()
                .find(|(p, _)| p == prefix)
                .map(|(_, ns)| ns.as_slice());
            let value = match (prefix, bound) {
                (_, Some(ns)) => {
                    let ns = std::str::from_utf8(ns).map_err(|_| not_wf("namespace not UTF-8"))?;
                    let ns = quick_xml::escape::unescape(ns)
                        .map_err(|_| not_wf("bad reference in a namespace name"))?;
                    quick_xml::escape::escape(ns.as_ref()).into_owned()
                }
                // Unprefixed names outside any default namespace: say so explicitly, so the
                // value does not pick up the default namespace of the enclosing document.
                (None, None) => String::new(),
                // Declared further down in the child's own subtree.
                (Some(_), None) => continue,
            };
            out.push_str(" xmlns");
            if let Some(p) = prefix {
                out.push(':');
                out.push_str(std::str::from_utf8(p).unwrap_or_default());
            }
            out.push_str("=\"");
            out.push_str(&value);
            out.push('"');
        }
    }
    out.push_str(&src[cursor..end]);
    if out.len() > limit {
        return Err(too_large);
    }
    Ok(Some(out))
}

/// The byte offset just after the element name of the start tag that begins at `pos`.
fn tag_name_end(src: &str, pos: usize, name: &[u8]) -> Result<usize, LockInfoError> {
    let bytes = src.as_bytes();
    let lt = bytes
        .get(pos..)
        .and_then(|rest| rest.iter().position(|&b| b == b'<'))
        .map(|i| pos + i)
        .ok_or_else(|| not_wf("start tag not found"))?;
    let end = lt + 1 + name.len();
    if bytes.get(lt + 1..end) != Some(name) {
        return Err(not_wf("start tag not found"));
    }
    Ok(end)
}

/// Most attributes one element may carry, namespace declarations included. Real lockinfo
/// bodies carry a handful; the cap keeps every per-element check bounded, so parsing costs the
/// same per byte whatever the body's shape.
const MAX_ATTRIBUTES: usize = 32;

/// Most namespace declarations in scope at once (on an element and its ancestors): every
/// prefix resolution scans the declarations in scope, so this bounds that scan.
const MAX_NAMESPACE_DECLARATIONS: usize = 32;

/// What the attributes of one element declare and use.
#[derive(Debug)]
struct Attrs {
    declared: Vec<Option<Vec<u8>>>,
    used: Vec<Vec<u8>>,
}

/// Check every attribute of `start` (syntax, values, prefixes, duplicates) and report the
/// namespace prefixes it declares and uses. Duplicates are found by comparing pairs, which
/// [`MAX_ATTRIBUTES`] keeps to a bounded cost per element.
fn check_attributes(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    declarations: &mut usize,
) -> Result<Attrs, LockInfoError> {
    let mut attrs = Attrs {
        declared: Vec::new(),
        used: Vec::new(),
    };
    check_attribute_spacing(start)?;
    let mut expanded: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (i, attr) in start.attributes().enumerate() {
        if i == MAX_ATTRIBUTES {
            return Err(LockInfoError::TooComplex("attributes on one element"));
        }
        let attr = attr.map_err(|e| not_wf(&format!("bad attribute: {e}")))?;
        check_qname(attr.key)?;
        let value =
            std::str::from_utf8(&attr.value).map_err(|_| not_wf("attribute is not UTF-8"))?;
        check_attribute_value(value)?;
        if let Some(decl) = attr.key.as_namespace_binding() {
            *declarations += 1;
            if *declarations > MAX_NAMESPACE_DECLARATIONS {
                return Err(LockInfoError::TooComplex("namespace declarations"));
            }
            attrs.declared.push(match decl {
                PrefixDeclaration::Default => None,
                // Namespaces in XML 1.0 §5: a prefix cannot be undeclared.
                PrefixDeclaration::Named(_) if value.is_empty() => {
                    return Err(not_wf("empty namespace name for a prefix"))
                }
                PrefixDeclaration::Named(p) => Some(p.to_vec()),
            });
            continue;
        }
        let Some(prefix) = attr.key.prefix() else {
            continue;
        };
        if prefix.as_ref() == b"xml" {
            continue;
        }
        let (ns, local) = reader.resolve_attribute(attr.key);
        match ns {
            ResolveResult::Bound(ns) => {
                let key = (ns.as_ref().to_vec(), local.as_ref().to_vec());
                if expanded.contains(&key) {
                    return Err(not_wf("duplicate attribute"));
                }
                expanded.push(key);
            }
            _ => return Err(not_wf("undeclared namespace prefix on an attribute")),
        }
        if !attrs.used.iter().any(|p| p == prefix.as_ref()) {
            attrs.used.push(prefix.as_ref().to_vec());
        }
    }
    Ok(attrs)
}

/// XML 1.0 §3.1: attributes are separated from the name and from each other by white space
/// (quick-xml accepts `<a x='1'y='2'>`). The rest of the syntax is checked by quick-xml.
fn check_attribute_spacing(start: &BytesStart<'_>) -> Result<(), LockInfoError> {
    let raw: &[u8] = start;
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let mut i = raw.iter().position(is_space).unwrap_or(raw.len());
    loop {
        let spaces = raw[i..].iter().take_while(|b| is_space(b)).count();
        i += spaces;
        if i >= raw.len() || raw[i] == b'/' {
            return Ok(());
        }
        if spaces == 0 {
            return Err(not_wf("missing white space between attributes"));
        }
        let quote = raw[i..]
            .iter()
            .position(|&b| b == b'"' || b == b'\'')
            .map(|q| i + q)
            .ok_or_else(|| not_wf("attribute value must be quoted"))?;
        let close = raw[quote + 1..]
            .iter()
            .position(|&b| b == raw[quote])
            .map(|q| quote + 1 + q)
            .ok_or_else(|| not_wf("unterminated attribute value"))?;
        i = close + 1;
    }
}

/// An attribute value must not hold `<`, and every `&` must start a known reference.
fn check_attribute_value(value: &str) -> Result<(), LockInfoError> {
    if value.contains('<') {
        return Err(not_wf("'<' in an attribute value"));
    }
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        let after = &rest[amp + 1..];
        let semi = after
            .find(';')
            .ok_or_else(|| not_wf("unterminated reference"))?;
        check_reference_name(&after[..semi])?;
        rest = &after[semi + 1..];
    }
    Ok(())
}

fn check_reference(reference: &[u8]) -> Result<(), LockInfoError> {
    let name = std::str::from_utf8(reference).map_err(|_| not_wf("bad reference"))?;
    check_reference_name(name)
}

/// `name` is what stands between `&` and `;`.
fn check_reference_name(name: &str) -> Result<(), LockInfoError> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix('x') {
            Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u32::from_str_radix(hex, 16).ok()
            }
            None if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) => num.parse().ok(),
            _ => None,
        };
        return match code.and_then(char::from_u32) {
            Some(c) if is_xml_char(c) => Ok(()),
            _ => Err(not_wf("invalid character reference")),
        };
    }
    match name {
        "lt" | "gt" | "amp" | "apos" | "quot" => Ok(()),
        _ => Err(not_wf(&format!(
            "undefined entity reference '&{};'",
            truncate(name, 40)
        ))),
    }
}

fn check_qname(name: QName<'_>) -> Result<(), LockInfoError> {
    let ok = std::str::from_utf8(name.as_ref()).is_ok_and(|s| match s.split_once(':') {
        Some((prefix, local)) => is_ncname(prefix) && is_ncname(local),
        None => is_ncname(s),
    });
    if ok {
        Ok(())
    } else {
        Err(not_wf("invalid element or attribute name"))
    }
}

fn is_dav_namespace(ns: &ResolveResult<'_>) -> bool {
    match ns {
        ResolveResult::Bound(ns) => {
            let raw = ns.as_ref();
            raw == DAV
                || (raw.contains(&b'&')
                    && std::str::from_utf8(raw)
                        .ok()
                        .and_then(|s| quick_xml::escape::unescape(s).ok())
                        .is_some_and(|s| s.as_bytes() == DAV))
        }
        _ => false,
    }
}

/// A UTF-16 body (after its byte order mark), decoded; unpaired surrogates and an odd length
/// are not well-formed.
fn from_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, LockInfoError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(not_wf("a UTF-16 body of an odd number of bytes"));
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| unit([pair[0], pair[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| not_wf("body is not valid UTF-16"))
}

/// XML 1.0 `Char`.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// XML 1.0 `S`.
fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// XML 1.0 `NameStartChar` without `:`.
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0 `NameChar` without `:`.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Namespaces in XML `NCName`.
fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn not_wf(reason: &str) -> LockInfoError {
    LockInfoError::NotWellFormed(truncate(reason, MAX_REASON).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_ncname("href"));
        assert!(is_ncname("a-b.c_d9"));
        assert!(is_ncname("é"));
        assert!(!is_ncname(""));
        assert!(!is_ncname("1a"));
        assert!(!is_ncname("-a"));
        assert!(!is_ncname("a:b"));
        assert!(check_qname(QName(b"D:href")).is_ok());
        assert!(check_qname(QName(b"D:")).is_err());
        assert!(check_qname(QName(b":x")).is_err());
        assert!(check_qname(QName(b"a:b:c")).is_err());
    }

    #[test]
    fn references() {
        for ok in ["lt", "gt", "amp", "apos", "quot", "#65", "#x41", "#x1F600"] {
            assert!(check_reference_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "nbsp", "", "#", "#x", "#0", "#x1", "#xD800", "#xFFFE", "#1a", "#x110000",
        ] {
            assert!(check_reference_name(bad).is_err(), "{bad}");
        }
        assert!(check_attribute_value("a &amp; b &#60;").is_ok());
        assert!(check_attribute_value("a & b").is_err());
        assert!(check_attribute_value("a < b").is_err());
        assert!(check_attribute_value("&foo;").is_err());
    }

    #[test]
    fn reason_is_truncated_on_a_char_boundary() {
        let long = "é".repeat(200);
        let LockInfoError::NotWellFormed(reason) = not_wf(&long) else {
            unreachable!()
        };
        assert!(reason.len() <= MAX_REASON);
        assert!(reason.chars().all(|c| c == 'é'));
    }
}
