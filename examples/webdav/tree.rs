//! The in-memory resource tree and the URL path handling that addresses it.
//!
//! Resources are keyed by their decoded path segments (`["litmus", "res-€"]`), so a
//! segment may hold any UTF-8 text, even a `/` that arrived as `%2F`. The root collection has
//! the empty key. Hrefs are produced by percent-encoding the segments again.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::time::SystemTime;

use bytes::Bytes;

/// A resource key: the decoded path segments.
pub(crate) type Key = Vec<String>;

/// A property name: namespace URI (empty for "no namespace") and local name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PropName {
    pub(crate) ns: String,
    pub(crate) local: String,
}

impl PropName {
    pub(crate) fn new(ns: &str, local: &str) -> Self {
        Self {
            ns: ns.to_owned(),
            local: local.to_owned(),
        }
    }

    pub(crate) fn is_dav(&self, local: &str) -> bool {
        self.ns == "DAV:" && self.local == local
    }
}

/// What a resource is.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// A collection; its members are the keys one segment longer.
    Collection,
    /// A plain resource with a body.
    File {
        body: Bytes,
        content_type: Option<String>,
        /// Strong entity tag, quoted; changes on every write of the body.
        etag: String,
    },
}

/// One resource.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) content: Content,
    pub(crate) created: SystemTime,
    pub(crate) modified: SystemTime,
    /// Dead properties: name → value as a self-contained XML fragment.
    pub(crate) dead: BTreeMap<PropName, String>,
}

impl Node {
    pub(crate) fn collection(now: SystemTime) -> Self {
        Self {
            content: Content::Collection,
            created: now,
            modified: now,
            dead: BTreeMap::new(),
        }
    }

    pub(crate) fn file(content: Content, now: SystemTime) -> Self {
        Self {
            content,
            ..Self::collection(now)
        }
    }

    pub(crate) fn is_collection(&self) -> bool {
        matches!(self.content, Content::Collection)
    }

    /// The bytes this resource keeps: its body and type, and its dead properties.
    pub(crate) fn size(&self) -> usize {
        let content = match &self.content {
            Content::File {
                body, content_type, ..
            } => body.len() + content_type.as_ref().map_or(0, String::len),
            Content::Collection => 0,
        };
        content + dead_size(&self.dead)
    }

    pub(crate) fn etag(&self) -> Option<&str> {
        match &self.content {
            Content::File { etag, .. } => Some(etag),
            Content::Collection => None,
        }
    }
}

/// The bytes a set of dead properties keeps.
pub(crate) fn dead_size(dead: &BTreeMap<PropName, String>) -> usize {
    dead.iter()
        .map(|(n, v)| n.ns.len() + n.local.len() + v.len())
        .sum()
}

/// Everything is kept in memory, so the tree is bounded: no client can grow the process
/// without limit (a write beyond either bound is a 507).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) resources: usize,
    /// The bytes of bodies and dead properties.
    pub(crate) bytes: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            resources: 100_000,
            bytes: 512 * 1024 * 1024,
        }
    }
}

/// The whole tree, behind one mutex in [`MemDav`](crate::service::MemDav).
#[derive(Debug)]
pub(crate) struct Tree {
    nodes: BTreeMap<Key, Node>,
    bounds: Bounds,
    /// Distinguishes ETags of this process from those of an earlier run.
    epoch: u64,
    next_etag: u64,
}

impl Tree {
    pub(crate) fn new(bounds: Bounds) -> Self {
        let now = SystemTime::now();
        let epoch = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut nodes = BTreeMap::new();
        nodes.insert(Vec::new(), Node::collection(now));
        Self {
            nodes,
            bounds,
            epoch,
            next_etag: 1,
        }
    }

    /// A fresh strong ETag, never handed out before by this process.
    pub(crate) fn new_etag(&mut self) -> String {
        let n = self.next_etag;
        self.next_etag += 1;
        format!("\"{:x}-{n:x}\"", self.epoch)
    }

    pub(crate) fn get(&self, key: &[String]) -> Option<&Node> {
        self.nodes.get(key)
    }

    pub(crate) fn get_mut(&mut self, key: &[String]) -> Option<&mut Node> {
        self.nodes.get_mut(key)
    }

    /// Whether the tree can take `resources` more resources and `bytes` more bytes once
    /// `freed` bytes are given back, within its [`Bounds`].
    pub(crate) fn has_room(&self, resources: usize, bytes: usize, freed: usize) -> bool {
        let used: usize = self.nodes.values().map(Node::size).sum();
        self.nodes.len() + resources <= self.bounds.resources
            && used.saturating_sub(freed).saturating_add(bytes) <= self.bounds.bytes
    }

    pub(crate) fn insert(&mut self, key: Key, node: Node) {
        self.nodes.insert(key, node);
    }

    /// Whether the parent of `key` exists and is a collection (false for the root).
    pub(crate) fn parent_is_collection(&self, key: &[String]) -> bool {
        match key.split_last() {
            Some((_, parent)) => self.get(parent).is_some_and(Node::is_collection),
            None => false,
        }
    }

    /// `key` and every resource below it, in key order (a parent before its members).
    pub(crate) fn subtree<'a>(
        &'a self,
        key: &'a [String],
    ) -> impl Iterator<Item = (&'a Key, &'a Node)> + 'a {
        self.nodes
            .range::<[String], _>((Bound::Included(key), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(key))
    }

    /// The direct members of the collection `key`.
    pub(crate) fn members<'a>(
        &'a self,
        key: &'a [String],
    ) -> impl Iterator<Item = (&'a Key, &'a Node)> + 'a {
        let depth = key.len() + 1;
        self.subtree(key).filter(move |(k, _)| k.len() == depth)
    }

    /// Remove `key` and everything below it; returns how many resources went away.
    pub(crate) fn remove_subtree(&mut self, key: &[String]) -> usize {
        let doomed: Vec<Key> = self.subtree(key).map(|(k, _)| k.clone()).collect();
        for k in &doomed {
            self.nodes.remove(k);
        }
        doomed.len()
    }

    /// Copy `from` to `to` (`to` must be free): only `from` itself when `shallow`, else the whole
    /// subtree. Copies are new resources: new ETags and times, dead properties kept.
    pub(crate) fn copy(&mut self, from: &[String], to: &[String], shallow: bool, now: SystemTime) {
        let sources: Vec<(Key, Node)> = if shallow {
            self.get(from)
                .map(|n| (from.to_vec(), n.clone()))
                .into_iter()
                .collect()
        } else {
            self.subtree(from)
                .map(|(k, n)| (k.clone(), n.clone()))
                .collect()
        };
        for (key, mut node) in sources {
            node.created = now;
            node.modified = now;
            if let Content::File { etag, .. } = &mut node.content {
                *etag = self.new_etag();
            }
            self.nodes.insert(rebase(&key, from, to), node);
        }
    }

    /// Move the subtree at `from` to `to` (`to` must be free). Resources keep their ETags.
    pub(crate) fn rename(&mut self, from: &[String], to: &[String]) {
        let keys: Vec<Key> = self.subtree(from).map(|(k, _)| k.clone()).collect();
        for key in keys {
            if let Some(node) = self.nodes.remove(&key) {
                self.nodes.insert(rebase(&key, from, to), node);
            }
        }
    }

    /// Mark the collection holding `key` as modified now.
    pub(crate) fn touch_parent(&mut self, key: &[String], now: SystemTime) {
        if let Some((_, parent)) = key.split_last() {
            if let Some(p) = self.nodes.get_mut(parent) {
                p.modified = now;
            }
        }
    }
}

/// `key` (under `from`) moved under `to`.
fn rebase(key: &[String], from: &[String], to: &[String]) -> Key {
    let mut out = to.to_vec();
    out.extend(key.iter().skip(from.len()).cloned());
    out
}

/// Decode an absolute path (`/a/b%20c/`) into a key; empty segments are ignored. `None` when
/// the path is not absolute, has a bad escape, is not UTF-8 or has a dot segment.
pub(crate) fn parse_path(raw: &str) -> Option<Key> {
    if !raw.starts_with('/') {
        return None;
    }
    let mut key = Vec::new();
    for segment in raw.split('/').filter(|s| !s.is_empty()) {
        let name = percent_decode(segment)?;
        if name == "." || name == ".." || name.is_empty() {
            return None;
        }
        // A name is written into XML answers (`displayname`): no control characters, nothing
        // XML cannot carry.
        if name
            .chars()
            .any(|c| c.is_control() || !crate::xml::is_xml_char(c))
        {
            return None;
        }
        key.push(name);
    }
    Some(key)
}

/// Decode a `Destination` header: an absolute URI or an absolute path. Only the path counts;
/// query and fragment are dropped.
pub(crate) fn parse_destination(raw: &str) -> Option<Key> {
    let raw = raw.trim();
    let path = if raw.starts_with('/') {
        raw
    } else {
        let (scheme, rest) = raw.split_once("://")?;
        let scheme_ok = scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if scheme.is_empty() || !scheme_ok {
            return None;
        }
        match rest.find(['/', '?', '#']) {
            Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
            _ => "/",
        }
    };
    let path = path.split(['?', '#']).next().unwrap_or("/");
    parse_path(path)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decode one segment to UTF-8; `None` on a bad escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex(*bytes.get(i + 1)?)?;
            let lo = hex(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encode one segment: unreserved characters, sub-delims, `:` and `@` stay raw.
fn percent_encode(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xF)] as char);
        }
    }
}

/// The href of a resource: percent-encoded, with a trailing `/` for collections.
pub(crate) fn href(key: &[String], collection: bool) -> String {
    let mut out = String::new();
    for segment in key {
        out.push('/');
        percent_encode(segment, &mut out);
    }
    if collection || key.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        let key = parse_path("/a/res-%e2%82%ac/b%2Fc/").unwrap();
        assert_eq!(key, vec!["a", "res-€", "b/c"]);
        assert_eq!(href(&key, false), "/a/res-%E2%82%AC/b%2Fc");
        assert!(parse_path("/a/../b").is_none());
        assert!(parse_path("/a/%zz").is_none());
        assert!(parse_path("/%ff").is_none());
        assert_eq!(href(&[], true), "/");
    }

    #[test]
    fn destinations() {
        let d = parse_destination("http://h:1/x/y?q#f").unwrap();
        assert_eq!(d, vec!["x", "y"]);
        assert_eq!(parse_destination("/x/").unwrap(), vec!["x"]);
        assert!(parse_destination("http://h:1").unwrap().is_empty());
        assert!(parse_destination("x/y").is_none());
    }
}
