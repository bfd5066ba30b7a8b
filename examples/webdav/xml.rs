//! XML in and out: a small namespace-aware reader for PROPFIND and PROPPATCH bodies (built on
//! `quick-xml`, DOCTYPE refused), and the helpers that write multistatus responses.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{PrefixDeclaration, ResolveResult};
use quick_xml::reader::NsReader;

use crate::tree::PropName;

/// The XML namespace, which only the `xml` prefix may name.
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// Deepest element nesting accepted in a request body.
const MAX_DEPTH: usize = 64;

/// Why a request body was refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XmlError(pub(crate) String);

impl<E: std::fmt::Display> From<E> for XmlError {
    fn from(e: E) -> Self {
        XmlError(e.to_string())
    }
}

fn fail<T>(msg: &str) -> Result<T, XmlError> {
    Err(XmlError(msg.to_owned()))
}

/// An element with its namespace resolved.
#[derive(Debug, Clone, Default)]
pub(crate) struct Element {
    ns: String,
    local: String,
    /// Attributes other than namespace declarations: (namespace, local name, value).
    attrs: Vec<(String, String, String)>,
    children: Vec<Child>,
}

#[derive(Debug, Clone)]
enum Child {
    Element(Element),
    Text(String),
}

impl Element {
    fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }

    fn name(&self) -> PropName {
        PropName::new(&self.ns, &self.local)
    }

    fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|c| match c {
            Child::Element(e) => Some(e),
            Child::Text(_) => None,
        })
    }

    fn push_text(&mut self, text: &str) {
        if let Some(Child::Text(last)) = self.children.last_mut() {
            last.push_str(text);
        } else {
            self.children.push(Child::Text(text.to_owned()));
        }
    }
}

/// Parse a whole document into its root element.
pub(crate) fn parse_document(body: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(body)?;
    if text.chars().any(|c| !is_xml_char(c)) {
        return fail("a character XML does not allow");
    }
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let (resolved, event) = reader.read_resolved_event()?;
        let ns = match resolved {
            ResolveResult::Bound(ns) => std::str::from_utf8(ns.as_ref())?.to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(p) => {
                return fail(&format!("unknown prefix {}", String::from_utf8_lossy(&p)))
            }
        };
        match event {
            Event::Start(start) => open(&mut stack, &root, element(&reader, ns, &start)?)?,
            Event::Empty(start) => {
                open(&mut stack, &root, element(&reader, ns, &start)?)?;
                close(&mut stack, &mut root)?;
            }
            Event::End(_) => close(&mut stack, &mut root)?,
            Event::Text(t) => {
                let s = t.xml_content()?;
                match stack.last_mut() {
                    Some(parent) => parent.push_text(&s),
                    None if s.trim().is_empty() => {}
                    None => return fail("text outside the root element"),
                }
            }
            Event::CData(c) => {
                let s = c.decode()?;
                match stack.last_mut() {
                    Some(parent) => parent.push_text(&s),
                    None => return fail("CDATA outside the root element"),
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref()? {
                    Some(ch) if is_xml_char(ch) => ch.to_string(),
                    Some(ch) => {
                        return fail(&format!(
                            "&#x{:X}; is not a character XML allows",
                            ch as u32
                        ))
                    }
                    None => {
                        let name = r.decode()?;
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(s) => s.to_owned(),
                            None => return fail(&format!("undefined entity &{name};")),
                        }
                    }
                };
                match stack.last_mut() {
                    Some(parent) => parent.push_text(&resolved),
                    None => return fail("reference outside the root element"),
                }
            }
            Event::DocType(_) => return fail("DOCTYPE is not allowed"),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return fail("unclosed element");
    }
    root.ok_or_else(|| XmlError("no root element".to_owned()))
}

/// Push a newly opened element.
fn open(stack: &mut Vec<Element>, root: &Option<Element>, el: Element) -> Result<(), XmlError> {
    if root.is_some() && stack.is_empty() {
        return fail("more than one root element");
    }
    if stack.len() >= MAX_DEPTH {
        return fail("elements nested too deeply");
    }
    stack.push(el);
    Ok(())
}

/// Pop the innermost open element and attach it to its parent (or make it the root).
fn close(stack: &mut Vec<Element>, root: &mut Option<Element>) -> Result<(), XmlError> {
    let done = stack
        .pop()
        .ok_or_else(|| XmlError("unbalanced end tag".to_owned()))?;
    match stack.last_mut() {
        Some(parent) => parent.children.push(Child::Element(done)),
        None => *root = Some(done),
    }
    Ok(())
}

/// Build an element from a start tag; refuses `xmlns:p=""` (illegal in XML Namespaces 1.0).
fn element<R>(
    reader: &NsReader<R>,
    ns: String,
    start: &BytesStart<'_>,
) -> Result<Element, XmlError> {
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr?;
        if let Some(decl) = attr.key.as_namespace_binding() {
            if matches!(decl, PrefixDeclaration::Named(_)) && attr.value.is_empty() {
                return fail("a namespace prefix may not be bound to the empty name");
            }
            continue;
        }
        let (resolved, local) = reader.resolve_attribute(attr.key);
        let ans = match resolved {
            ResolveResult::Bound(ns) => std::str::from_utf8(ns.as_ref())?.to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(_) => return fail("unknown attribute prefix"),
        };
        let local = std::str::from_utf8(local.as_ref())?.to_owned();
        let value = attr.unescape_value()?.into_owned();
        attrs.push((ans, local, value));
    }
    let local = std::str::from_utf8(start.local_name().as_ref())?.to_owned();
    Ok(Element {
        ns,
        local,
        attrs,
        children: Vec::new(),
    })
}

/// What a PROPFIND asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Propfind {
    /// `allprop`, plus the names in `include`.
    AllProp(Vec<PropName>),
    /// `propname`: names only.
    PropName,
    /// `prop`: these properties.
    Prop(Vec<PropName>),
}

/// Parse a PROPFIND body; an empty body means `allprop` (RFC 4918 §9.1).
pub(crate) fn parse_propfind(body: &[u8]) -> Result<Propfind, XmlError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Propfind::AllProp(Vec::new()));
    }
    let root = parse_document(body)?;
    if !root.is("DAV:", "propfind") {
        return fail("the root element must be DAV:propfind");
    }
    // Unknown elements are ignored (RFC 4918 §17).
    let mut include = Vec::new();
    let mut chosen = None;
    for el in root.elements() {
        if el.ns != "DAV:" {
            continue;
        }
        match el.local.as_str() {
            "allprop" | "propname" | "prop" if chosen.is_some() => {
                return fail("more than one of allprop, propname and prop");
            }
            "allprop" => chosen = Some(Propfind::AllProp(Vec::new())),
            "propname" => chosen = Some(Propfind::PropName),
            "prop" => chosen = Some(Propfind::Prop(el.elements().map(Element::name).collect())),
            "include" => include.extend(el.elements().map(Element::name)),
            _ => {}
        }
    }
    match chosen {
        Some(Propfind::AllProp(_)) => Ok(Propfind::AllProp(include)),
        Some(other) => Ok(other),
        None => fail("DAV:propfind needs allprop, propname or prop"),
    }
}

/// One PROPPATCH instruction, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatchOp {
    /// Set a property to an XML value (a self-contained fragment).
    Set(PropName, String),
    /// Remove a property.
    Remove(PropName),
}

/// Parse a PROPPATCH body into its instructions.
pub(crate) fn parse_proppatch(body: &[u8]) -> Result<Vec<PatchOp>, XmlError> {
    let root = parse_document(body)?;
    if !root.is("DAV:", "propertyupdate") {
        return fail("the root element must be DAV:propertyupdate");
    }
    let mut ops = Vec::new();
    for action in root.elements() {
        let set = action.is("DAV:", "set");
        if !set && !action.is("DAV:", "remove") {
            continue;
        }
        for prop in action.elements().filter(|e| e.is("DAV:", "prop")) {
            for p in prop.elements() {
                ops.push(if set {
                    let mut value = String::new();
                    write_children(p, 0, &mut value);
                    PatchOp::Set(p.name(), value)
                } else {
                    PatchOp::Remove(p.name())
                });
            }
        }
    }
    if ops.is_empty() {
        return fail("DAV:propertyupdate holds no property");
    }
    Ok(ops)
}

/// Serialise the content of `el` as a fragment that declares every namespace it uses, so it
/// can be pasted anywhere in a response. Prefixes are `v<depth>` (elements) and
/// `a<depth>_<n>` (attributes); unqualified names stay unqualified, as no default namespace is
/// ever declared around them.
fn write_children(el: &Element, depth: usize, out: &mut String) {
    for child in &el.children {
        match child {
            Child::Text(t) => out.push_str(&escape(t)),
            Child::Element(e) => write_element(e, depth, out),
        }
    }
}

fn write_element(el: &Element, depth: usize, out: &mut String) {
    // The XML namespace is bound to `xml:` and no other prefix may declare it.
    let name = if el.ns.is_empty() {
        el.local.clone()
    } else if el.ns == XML_NS {
        format!("xml:{}", el.local)
    } else {
        format!("v{depth}:{}", el.local)
    };
    out.push('<');
    out.push_str(&name);
    if !el.ns.is_empty() && el.ns != XML_NS {
        out.push_str(&format!(" xmlns:v{depth}=\"{}\"", escape(&el.ns)));
    }
    for (i, (ns, local, value)) in el.attrs.iter().enumerate() {
        let value = escape(value);
        if ns.is_empty() {
            out.push_str(&format!(" {local}=\"{value}\""));
        } else if ns == XML_NS {
            out.push_str(&format!(" xml:{local}=\"{value}\""));
        } else {
            let p = format!("a{depth}_{i}");
            out.push_str(&format!(
                " {p}:{local}=\"{value}\" xmlns:{p}=\"{}\"",
                escape(ns)
            ));
        }
    }
    if el.children.is_empty() {
        out.push_str("/>");
    } else {
        out.push('>');
        write_children(el, depth + 1, out);
        out.push_str("</");
        out.push_str(&name);
        out.push('>');
    }
}

/// Escape text or an attribute value.
pub(crate) fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// XML 1.0 `Char`: what a document, and so any value written into one, may contain.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The XML declaration every response body starts with.
pub(crate) const DECL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

/// A property element: `D:` for `DAV:`, unqualified for no namespace, otherwise a prefix
/// declared on the element itself. `value: None` renders an empty element.
pub(crate) fn prop_element(name: &PropName, value: Option<&str>) -> String {
    let (tag, decl) = if name.ns == "DAV:" {
        (format!("D:{}", name.local), String::new())
    } else if name.ns.is_empty() {
        (name.local.clone(), String::new())
    } else {
        (
            format!("P:{}", name.local),
            format!(" xmlns:P=\"{}\"", escape(&name.ns)),
        )
    };
    match value {
        Some(v) if !v.is_empty() => format!("<{tag}{decl}>{v}</{tag}>"),
        _ => format!("<{tag}{decl}/>"),
    }
}

/// The status line used inside multistatus bodies.
pub(crate) fn status_line(code: http::StatusCode) -> String {
    format!(
        "HTTP/1.1 {} {}",
        code.as_u16(),
        code.canonical_reason().unwrap_or("")
    )
}

/// One `<D:response>` with its propstats (status → rendered property elements).
pub(crate) fn response_element(
    href: &str,
    propstats: &[(http::StatusCode, Vec<String>)],
) -> String {
    let mut out = format!("<D:response><D:href>{}</D:href>", escape(href));
    for (status, props) in propstats.iter().filter(|(_, p)| !p.is_empty()) {
        out.push_str("<D:propstat><D:prop>");
        for p in props {
            out.push_str(p);
        }
        out.push_str("</D:prop><D:status>");
        out.push_str(&status_line(*status));
        out.push_str("</D:status></D:propstat>");
    }
    out.push_str("</D:response>\n");
    out
}

/// Wrap responses into a multistatus document.
pub(crate) fn multistatus(responses: &[String]) -> String {
    let mut out = format!("{DECL}<D:multistatus xmlns:D=\"DAV:\">\n");
    for r in responses {
        out.push_str(r);
    }
    out.push_str("</D:multistatus>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propfind_bodies() {
        assert_eq!(parse_propfind(b"").unwrap(), Propfind::AllProp(vec![]));
        let body = br#"<propfind xmlns="DAV:"><foobar/><allprop/></propfind>"#;
        assert_eq!(parse_propfind(body).unwrap(), Propfind::AllProp(vec![]));
        let body = br#"<D:propfind xmlns:D="DAV:"><D:prop><x xmlns=""/><D:getetag/></D:prop></D:propfind>"#;
        assert_eq!(
            parse_propfind(body).unwrap(),
            Propfind::Prop(vec![
                PropName::new("", "x"),
                PropName::new("DAV:", "getetag")
            ])
        );
        assert!(parse_propfind(b"<foo>").is_err());
        let bad_ns =
            br#"<D:propfind xmlns:D="DAV:"><D:prop><bar:foo xmlns:bar=""/></D:prop></D:propfind>"#;
        assert!(parse_propfind(bad_ns).is_err());
        let doctype =
            br#"<!DOCTYPE x [<!ENTITY e "boom">]><propfind xmlns="DAV:"><allprop/></propfind>"#;
        assert!(parse_propfind(doctype).is_err());
        assert!(parse_propfind(b"<a:propfind/>").is_err());
    }

    #[test]
    fn proppatch_values_are_self_contained() {
        let body = "<propertyupdate xmlns='DAV:'><set><prop>\
             <t:v xmlns:t='urn:t'><foo xmlns='bar' q='1'>a&amp;b&#65536;</foo></t:v>\
             </prop></set><remove><prop><n xmlns=''/></prop></remove></propertyupdate>";
        let ops = parse_proppatch(body.as_bytes()).unwrap();
        assert_eq!(
            ops,
            vec![
                PatchOp::Set(
                    PropName::new("urn:t", "v"),
                    "<v0:foo xmlns:v0=\"bar\" q=\"1\">a&amp;b\u{10000}</v0:foo>".to_owned()
                ),
                PatchOp::Remove(PropName::new("", "n")),
            ]
        );
        // An element in the XML namespace keeps the `xml:` prefix, which nothing may declare:
        // the stored value stays well-formed wherever it is pasted.
        let body = "<propertyupdate xmlns='DAV:'><set><prop>\
             <z:p xmlns:z='urn:z'><xml:q/></z:p></prop></set></propertyupdate>";
        let ops = parse_proppatch(body.as_bytes()).unwrap();
        assert_eq!(
            ops,
            vec![PatchOp::Set(
                PropName::new("urn:z", "p"),
                "<xml:q/>".to_owned()
            )]
        );
    }
}
