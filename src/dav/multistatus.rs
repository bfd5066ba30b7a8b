//! Adding `DAV:lockdiscovery` and `DAV:supportedlock` to the PROPFIND answers of a service
//! that knows nothing about locks: what the client asked for, where a multistatus body's
//! `response` elements begin and end, and each `response` rewritten with the two properties.
//!
//! Pure functions over text; the streaming and the store live in
//! [`LockPropertiesLayer`](crate::LockPropertiesLayer). Namespaces are resolved, never
//! matched by prefix, and the inserted elements declare their own (`xmlns:D="DAV:"`), so the
//! inner service may use any prefix and any white space.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// What a PROPFIND asks for (RFC 4918 §9.1, §14.20).
///
/// ```
/// use tower_locks::dav::{parse_propfind, PropfindKind};
///
/// let body = br#"<propfind xmlns="DAV:"><prop><supportedlock/></prop></propfind>"#;
/// assert_eq!(
///     parse_propfind(body),
///     Some(PropfindKind::Prop { lockdiscovery: false, supportedlock: true })
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropfindKind {
    /// `allprop` (or an empty body): every live property, the lock properties included.
    AllProp,
    /// `propname`: the names only.
    PropName,
    /// `prop`: the named properties; whether the lock properties are among them.
    Prop {
        /// `DAV:lockdiscovery` was named.
        lockdiscovery: bool,
        /// `DAV:supportedlock` was named.
        supportedlock: bool,
    },
}

impl PropfindKind {
    /// Whether the answer gets `(lockdiscovery, supportedlock)`.
    pub(crate) fn wants(self) -> (bool, bool) {
        match self {
            PropfindKind::AllProp | PropfindKind::PropName => (true, true),
            PropfindKind::Prop {
                lockdiscovery,
                supportedlock,
            } => (lockdiscovery, supportedlock),
        }
    }
}

/// What a PROPFIND body asks for; `None` when it is not a well-formed `DAV:propfind`.
///
/// ```
/// use tower_locks::dav::{parse_propfind, PropfindKind};
///
/// assert_eq!(parse_propfind(b""), Some(PropfindKind::AllProp));
/// let body = br#"<propfind xmlns="DAV:"><prop><lockdiscovery/><getetag/></prop></propfind>"#;
/// assert_eq!(
///     parse_propfind(body),
///     Some(PropfindKind::Prop { lockdiscovery: true, supportedlock: false })
/// );
/// assert_eq!(parse_propfind(b"<x:propfind xmlns:x='DAV:'><x:propname/></x:propfind>"),
///            Some(PropfindKind::PropName));
/// assert_eq!(parse_propfind(b"<oops"), None);
/// ```
pub fn parse_propfind(body: &[u8]) -> Option<PropfindKind> {
    let text = std::str::from_utf8(body).ok()?;
    if text.trim().is_empty() {
        return Some(PropfindKind::AllProp);
    }
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut kind = None;
    let mut in_prop = false;
    let (mut lockdiscovery, mut supportedlock) = (false, false);
    loop {
        let (ns, event) = reader.read_resolved_event().ok()?;
        let dav = matches!(ns, ResolveResult::Bound(ref n) if n.as_ref() == b"DAV:");
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local = e.local_name();
                let local = local.as_ref();
                match depth {
                    0 if !(dav && local == b"propfind") => return None,
                    1 if dav && local == b"allprop" => kind = Some(PropfindKind::AllProp),
                    1 if dav && local == b"propname" => kind = Some(PropfindKind::PropName),
                    1 if dav && local == b"prop" => in_prop = !empty,
                    2 if in_prop && dav => {
                        lockdiscovery |= local == b"lockdiscovery";
                        supportedlock |= local == b"supportedlock";
                    }
                    _ => {}
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::End(_) => {
                depth = depth.checked_sub(1)?;
                if depth == 1 {
                    in_prop = false;
                }
            }
            Event::Eof => break,
            Event::DocType(_) => return None,
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    Some(kind.unwrap_or(PropfindKind::Prop {
        lockdiscovery,
        supportedlock,
    }))
}

/// Where the start tag of a multistatus body's root element ends, and the namespace
/// declarations it carries (as attribute text, to re-declare around each `response`).
/// `Ok(None)`: more input is needed; `Err(())`: not a `DAV:multistatus` body, or one whose XML
/// declaration names an encoding other than UTF-8 (text written into it would be misread).
pub(crate) fn multistatus_head(buf: &[u8]) -> Result<Option<(usize, String)>, ()> {
    let mut pos = 0;
    loop {
        let Some((lt, end)) = next_markup(buf, pos)? else {
            return Ok(None);
        };
        match buf.get(lt + 1) {
            Some(b'?') if !utf8_or_undeclared(&buf[lt..end]) => return Err(()),
            Some(b'?' | b'!') => pos = end,
            _ => {
                let tag = std::str::from_utf8(&buf[lt..end]).map_err(|_| ())?;
                let mut reader = NsReader::from_str(tag);
                let (ns, event) = reader.read_resolved_event().map_err(|_| ())?;
                let Event::Start(start) = event else {
                    return Err(());
                };
                let dav = matches!(ns, ResolveResult::Bound(ref n) if n.as_ref() == b"DAV:");
                if !dav || start.local_name().as_ref() != b"multistatus" {
                    return Err(());
                }
                return Ok(Some((end, declarations(&start))));
            }
        }
    }
}

/// Whether `markup`, a processing instruction, leaves the document in UTF-8: anything but an
/// XML declaration naming another encoding (or one that cannot be read).
fn utf8_or_undeclared(markup: &[u8]) -> bool {
    match quick_xml::Reader::from_reader(markup).read_event() {
        Ok(Event::Decl(decl)) => match decl.encoding() {
            None => true,
            Some(Ok(name)) => is_utf8_name(&name),
            Some(Err(_)) => false,
        },
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Whether `name` (an XML `encoding` or a `charset` parameter) names UTF-8 (its IANA name,
/// in any case).
pub(crate) fn is_utf8_name(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"utf-8")
}

/// The `xmlns` attributes of `start`, as attribute text.
fn declarations(start: &BytesStart<'_>) -> String {
    let mut out = String::new();
    for attr in start.attributes().flatten() {
        if attr.key.as_namespace_binding().is_some() {
            out.push(' ');
            out.push_str(&String::from_utf8_lossy(attr.key.as_ref()));
            out.push_str("=\"");
            out.push_str(&String::from_utf8_lossy(&attr.value).replace('"', "&quot;"));
            out.push('"');
        }
    }
    out
}

/// One step through the content of the multistatus element, from `pos`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Bytes up to here are text (or comments) between children: pass them on.
    Text(usize),
    /// A child element spans `pos..end`.
    Child(usize),
    /// The multistatus element ends at `pos`: everything from there on passes as it is.
    Close,
    /// More input is needed.
    More,
}

/// The next piece of the multistatus content starting at `pos`. `Err(())`: not XML this
/// module can follow (the rest then passes through unchanged).
pub(crate) fn next_piece(buf: &[u8], pos: usize) -> Result<Piece, ()> {
    let Some(lt) = buf[pos..].iter().position(|&b| b == b'<').map(|i| pos + i) else {
        return Ok(if buf.len() > pos {
            Piece::Text(buf.len())
        } else {
            Piece::More
        });
    };
    if lt > pos {
        return Ok(Piece::Text(lt));
    }
    match buf.get(lt + 1) {
        None => Ok(Piece::More),
        Some(b'/') => Ok(Piece::Close),
        Some(b'?' | b'!') => Ok(match markup_end(buf, lt)? {
            Some(end) => Piece::Text(end),
            None => Piece::More,
        }),
        Some(_) => Ok(match element_end(buf, lt)? {
            Some(end) => Piece::Child(end),
            None => Piece::More,
        }),
    }
}

/// The end of the element whose start tag begins at `start`; `None` if not in `buf` yet.
fn element_end(buf: &[u8], start: usize) -> Result<Option<usize>, ()> {
    let mut depth = 0usize;
    let mut pos = start;
    loop {
        let Some((lt, end)) = next_markup(buf, pos)? else {
            return Ok(None);
        };
        match buf.get(lt + 1) {
            Some(b'/') => depth = depth.checked_sub(1).ok_or(())?,
            Some(b'?' | b'!') => {}
            _ if buf[end - 2] == b'/' => {}
            _ => depth += 1,
        }
        if depth == 0 {
            return Ok(Some(end));
        }
        pos = end;
    }
}

/// The next complete markup from `pos`: where its `<` is and where it ends; `None` if it is
/// not all in `buf` yet.
fn next_markup(buf: &[u8], pos: usize) -> Result<Option<(usize, usize)>, ()> {
    let Some(lt) = buf[pos..].iter().position(|&b| b == b'<').map(|i| pos + i) else {
        return Ok(None);
    };
    Ok(markup_end(buf, lt)?.map(|end| (lt, end)))
}

/// The end (one past `>`) of the markup beginning with `<` at `lt`: a tag (quoted attribute
/// values may hold `>`), a comment, a CDATA section or a processing instruction.
fn markup_end(buf: &[u8], lt: usize) -> Result<Option<usize>, ()> {
    let rest = &buf[lt..];
    let find = |pattern: &[u8]| {
        rest.windows(pattern.len())
            .position(|w| w == pattern)
            .map(|i| lt + i + pattern.len())
    };
    if rest.starts_with(b"<!--") {
        return Ok(find(b"-->"));
    }
    if rest.starts_with(b"<![CDATA[") {
        return Ok(find(b"]]>"));
    }
    if rest.len() < 9 && (b"<![CDATA[".starts_with(rest) || b"<!--".starts_with(rest)) {
        return Ok(None);
    }
    if rest.starts_with(b"<?") {
        return Ok(find(b"?>"));
    }
    if rest.starts_with(b"<!") {
        // A DOCTYPE has no place inside a multistatus.
        return Err(());
    }
    let mut quote = None;
    for (i, &b) in rest.iter().enumerate().skip(1) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'>') => return Ok(Some(lt + i + 1)),
            (None, b'<') => return Err(()),
            _ => {}
        }
    }
    Ok(None)
}

/// A `response` element, read.
#[derive(Debug)]
pub(crate) struct ResponseElement {
    /// The first `DAV:href`, unescaped of XML entities (still a URI reference).
    pub(crate) href: String,
    edits: Vec<(usize, usize, String)>,
    /// Where the lock properties go: inside the prop of the first 2xx propstat (`true`), or
    /// as a new propstat before the end of the response (`false`).
    insert_at: usize,
    in_prop: bool,
}

/// Read the child element `fragment` of a multistatus whose root declared `decls`; `None`
/// when it is not a `DAV:response` with an href and a propstat (it then passes unchanged).
pub(crate) fn read_response(fragment: &str, decls: &str) -> Option<ResponseElement> {
    // The fragment inside a wrapper that declares what the multistatus declared.
    let mut doc = String::with_capacity(decls.len() + fragment.len() + 7);
    doc.push_str("<w");
    doc.push_str(decls);
    doc.push('>');
    let off = doc.len();
    doc.push_str(fragment);
    doc.push_str("</w>");
    let mut reader = NsReader::from_str(&doc);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Tag> = Vec::new();
    let mut href: Option<String> = None;
    let mut in_href = false;
    let mut closed = false;
    // The current propstat: its start, whether its status is 2xx, whether it is a refusal
    // (401, 403), the prop's content end, the lock properties in it, and the other children
    // of its prop.
    struct Propstat {
        start: usize,
        ok: Option<bool>,
        refused: bool,
        prop_end: Option<usize>,
        prop_empty: Option<(usize, usize, String, String)>,
        ours: Vec<(usize, usize)>,
        others: usize,
    }
    let mut propstats: Vec<Propstat> = Vec::new();
    // Where the last propstat ends: a new one goes there, before any `responsedescription`,
    // `error` or `location` (RFC 4918 §14.24).
    let mut propstats_end = None;
    let mut status_text = String::new();
    let mut in_status = false;
    loop {
        let before = usize::try_from(reader.buffer_position()).ok()?;
        let (ns, event) = reader.read_resolved_event().ok()?;
        let dav = matches!(ns, ResolveResult::Bound(ref n) if n.as_ref() == b"DAV:");
        let after = usize::try_from(reader.buffer_position()).ok()?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local = e.local_name();
                let local = local.as_ref();
                let depth = stack.len();
                match (depth, dav, local) {
                    (1, true, b"response") => {}
                    (1, _, _) => return None,
                    (2, true, b"href") if href.is_none() => in_href = !empty,
                    (2, true, b"propstat") => propstats.push(Propstat {
                        start: before - off,
                        ok: None,
                        refused: false,
                        prop_end: None,
                        prop_empty: None,
                        ours: Vec::new(),
                        others: 0,
                    }),
                    (3, true, b"status") if in_propstat(&stack) => in_status = !empty,
                    (3, true, b"prop") if empty && in_propstat(&stack) => {
                        let p = propstats.last_mut()?;
                        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                        // The start tag as written (attributes and declarations kept), opened.
                        let tag = &doc[before..after];
                        let open = format!("{}>", tag.strip_suffix("/>")?.trim_end());
                        p.prop_empty = Some((before - off, after - off, open, name));
                    }
                    (4, _, _) if in_prop(&stack) => {
                        let p = propstats.last_mut()?;
                        if dav && (local == b"lockdiscovery" || local == b"supportedlock") {
                            let end = if empty {
                                after
                            } else {
                                element_end(doc.as_bytes(), before).ok()??
                            };
                            p.ours.push((before - off, end - off));
                        } else {
                            p.others += 1;
                        }
                    }
                    _ => {}
                }
                if !empty {
                    stack.push(Tag::of(dav, local));
                }
            }
            Event::Text(ref t) if in_href => {
                href.get_or_insert_with(String::new)
                    .push_str(&t.xml_content().ok()?);
            }
            Event::CData(ref t) if in_href => {
                href.get_or_insert_with(String::new)
                    .push_str(std::str::from_utf8(t).ok()?);
            }
            Event::GeneralRef(ref r) if in_href => {
                let name = String::from_utf8_lossy(r.as_ref()).into_owned();
                let ch = match name.as_str() {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    _ => r.resolve_char_ref().ok()??,
                };
                href.get_or_insert_with(String::new).push(ch);
            }
            Event::Text(ref t) if in_status => status_text.push_str(&t.xml_content().ok()?),
            Event::End(_) => {
                let tag = stack.pop()?;
                match (stack.len(), tag) {
                    (2, Tag::Href) => in_href = false,
                    (3, Tag::Status) if in_propstat(&stack) => {
                        in_status = false;
                        let code = status_text.split_whitespace().nth(1).unwrap_or("");
                        let p = propstats.last_mut()?;
                        p.ok = Some(code.starts_with('2'));
                        p.refused = matches!(code, "401" | "403");
                        status_text.clear();
                    }
                    (3, Tag::Prop) if in_propstat(&stack) => {
                        propstats.last_mut()?.prop_end = Some(before - off);
                    }
                    (2, Tag::Propstat) => propstats_end = Some(after - off),
                    (1, Tag::Response) => closed = true,
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let href = href?.trim().to_owned();
    if !closed {
        return None;
    }
    // A response of the status form (hrefs and a status, no propstat) says nothing about
    // properties: it passes unchanged.
    let propstats_end = propstats_end?;
    // The inner service refuses this client a lock property (RFC 4918 §20.4 lets a server
    // keep `lockdiscovery` to itself): the refusal stands, the response passes unchanged.
    if propstats.iter().any(|p| p.refused && !p.ours.is_empty()) {
        return None;
    }
    let mut edits = Vec::new();
    // Properties the inner service wrote itself, or reported missing, give way to ours.
    for p in &propstats {
        if p.ok != Some(true) && p.others == 0 && !p.ours.is_empty() {
            let end = element_end(fragment.as_bytes(), p.start).ok()??;
            edits.push((p.start, end, String::new()));
        } else {
            edits.extend(p.ours.iter().map(|&(s, e)| (s, e, String::new())));
        }
    }
    let target = propstats.iter().find(|p| p.ok == Some(true));
    let (insert_at, in_prop) = match target {
        Some(p) => match (&p.prop_empty, p.prop_end) {
            (Some((s, e, open, name)), _) => {
                // `<D:prop/>`: open it, so the properties go inside.
                edits.push((*s, *e, format!("{open}\u{0}</{name}>")));
                (*s, true)
            }
            (None, Some(end)) => (end, true),
            _ => (propstats_end, false),
        },
        None => (propstats_end, false),
    };
    Some(ResponseElement {
        href,
        edits,
        insert_at,
        in_prop,
    })
}

/// An open element of a `response`, as far as reading it needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Response,
    Href,
    Propstat,
    Status,
    Prop,
    /// Any other element, in the `DAV:` namespace or not.
    Other,
}

impl Tag {
    fn of(dav: bool, local: &[u8]) -> Self {
        match (dav, local) {
            (true, b"response") => Tag::Response,
            (true, b"href") => Tag::Href,
            (true, b"propstat") => Tag::Propstat,
            (true, b"status") => Tag::Status,
            (true, b"prop") => Tag::Prop,
            _ => Tag::Other,
        }
    }
}

fn in_propstat(stack: &[Tag]) -> bool {
    stack.get(2) == Some(&Tag::Propstat)
}

fn in_prop(stack: &[Tag]) -> bool {
    in_propstat(stack) && stack.get(3) == Some(&Tag::Prop)
}

impl ResponseElement {
    /// `fragment` with the lock properties the request asked for: `lockdiscovery` (the
    /// rendered `DAV:lockdiscovery` element, prefix `D:`) and `DAV:supportedlock`.
    pub(crate) fn rewrite(
        &self,
        fragment: &str,
        kind: PropfindKind,
        lockdiscovery: &str,
    ) -> String {
        let (want_ld, want_sl) = kind.wants();
        let names_only = kind == PropfindKind::PropName;
        let mut props = String::new();
        if want_ld {
            if names_only {
                props.push_str(r#"<D:lockdiscovery xmlns:D="DAV:"/>"#);
            } else {
                props.push_str(&declare_dav(lockdiscovery));
            }
        }
        if want_sl {
            if names_only {
                props.push_str(r#"<D:supportedlock xmlns:D="DAV:"/>"#);
            } else {
                props.push_str(&declare_dav(super::supportedlock()));
            }
        }
        let insert = if self.in_prop {
            props
        } else {
            format!(
                r#"<D:propstat xmlns:D="DAV:"><D:prop>{props}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"#
            )
        };
        let mut edits: Vec<(usize, usize, String)> = self.edits.clone();
        let opened = edits.iter_mut().find(|(_, _, t)| t.contains('\u{0}'));
        match opened {
            Some(edit) => edit.2 = edit.2.replace('\u{0}', &insert),
            None => edits.push((self.insert_at, self.insert_at, insert)),
        }
        edits.sort_by_key(|&(s, e, _)| (s, e));
        let mut out = String::with_capacity(fragment.len() + 512);
        let mut at = 0;
        for (s, e, text) in edits {
            if s < at {
                continue;
            }
            out.push_str(&fragment[at..s]);
            out.push_str(&text);
            at = e;
        }
        out.push_str(&fragment[at..]);
        out
    }
}

/// A rendered `D:` element with its own `xmlns:D="DAV:"`, so it reads the same under any
/// prefix the enclosing document uses.
fn declare_dav(element: &str) -> String {
    match element.find(['>', '/']) {
        Some(i) => format!(r#"{} xmlns:D="DAV:"{}"#, &element[..i], &element[i..]),
        None => element.to_owned(),
    }
}
