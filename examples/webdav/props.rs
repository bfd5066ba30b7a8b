//! Property rendering for PROPFIND: live properties computed from the tree and the lock
//! store, dead properties as stored.

use std::time::SystemTime;

use http::StatusCode;
use tower_locks::Lock;

use crate::http_util::{http_date, rfc3339};
use crate::tree::{Content, Key, Node, PropName};
use tower_locks::dav::{
    lockdiscovery as render_lockdiscovery, supportedlock as render_supportedlock,
};

use crate::xml::{escape, prop_element, Propfind};

/// The live properties, all in `DAV:`. Every one but `displayname` is protected.
const LIVE: &[&str] = &[
    "resourcetype",
    "getcontentlength",
    "getcontenttype",
    "getetag",
    "getlastmodified",
    "creationdate",
    "displayname",
    "lockdiscovery",
    "supportedlock",
];

/// The locks covering one resource, as PROPFIND needs them (`Err` when the store failed).
pub(crate) type LockLookup = Option<Result<Vec<Lock>, ()>>;

/// Everything needed to render one resource's properties.
pub(crate) struct PropCtx<'a> {
    pub(crate) key: &'a Key,
    pub(crate) node: &'a Node,
    pub(crate) locks: &'a LockLookup,
    pub(crate) now: SystemTime,
}

impl PropCtx<'_> {
    /// The propstat groups for one resource: 200 first, then errors.
    pub(crate) fn propstats(&self, request: &Propfind) -> Vec<(StatusCode, Vec<String>)> {
        let mut ok = Vec::new();
        let mut errors: Vec<(StatusCode, Vec<String>)> = Vec::new();
        let mut add = |name: &PropName| match self.value(name) {
            Ok(element) => ok.push(element),
            Err(code) => match errors.iter_mut().find(|(c, _)| *c == code) {
                Some(group) => group.1.push(prop_element(name, None)),
                None => errors.push((code, vec![prop_element(name, None)])),
            },
        };
        match request {
            Propfind::Prop(names) => names.iter().for_each(&mut add),
            Propfind::AllProp(include) => {
                let mut names = self.names();
                for extra in include {
                    if !names.contains(extra) {
                        names.push(extra.clone());
                    }
                }
                names.iter().for_each(&mut add);
            }
            Propfind::PropName => {
                ok.extend(self.names().iter().map(|n| prop_element(n, None)));
            }
        }
        let mut groups = vec![(StatusCode::OK, ok)];
        groups.extend(errors);
        groups
    }

    /// The names of every property this resource has: applicable live ones, then dead ones.
    fn names(&self) -> Vec<PropName> {
        let mut names: Vec<PropName> = LIVE
            .iter()
            .map(|l| PropName::new("DAV:", l))
            .filter(|n| !self.node.dead.contains_key(n) && self.live(&n.local).is_some())
            .collect();
        names.extend(self.node.dead.keys().cloned());
        names
    }

    /// One property rendered as an element, or the status to report it with.
    fn value(&self, name: &PropName) -> Result<String, StatusCode> {
        if let Some(value) = self.node.dead.get(name) {
            return Ok(prop_element(name, Some(value)));
        }
        if name.ns != "DAV:" {
            return Err(StatusCode::NOT_FOUND);
        }
        self.live(&name.local).unwrap_or(Err(StatusCode::NOT_FOUND))
    }

    /// A live property; `None` when the resource does not have it.
    fn live(&self, local: &str) -> Option<Result<String, StatusCode>> {
        let node = self.node;
        let file = match &node.content {
            Content::File {
                body,
                content_type,
                etag,
            } => Some((body, content_type, etag)),
            Content::Collection => None,
        };
        let text = |v: &str| format!("<D:{local}>{}</D:{local}>", escape(v));
        let rendered = match local {
            "resourcetype" if node.is_collection() => {
                "<D:resourcetype><D:collection/></D:resourcetype>".to_owned()
            }
            "resourcetype" => "<D:resourcetype/>".to_owned(),
            "getcontentlength" => text(&file?.0.len().to_string()),
            "getcontenttype" => text(file?.1.as_deref().unwrap_or("application/octet-stream")),
            "getetag" => text(file?.2),
            "getlastmodified" => text(&http_date(node.modified)),
            "creationdate" => text(&rfc3339(node.created)),
            "displayname" => text(self.key.last().map_or("/", String::as_str)),
            "supportedlock" => render_supportedlock().to_owned(),
            "lockdiscovery" => {
                return Some(match self.locks {
                    Some(Ok(locks)) => Ok(render_lockdiscovery(locks, self.now)),
                    _ => Err(StatusCode::INTERNAL_SERVER_ERROR),
                })
            }
            _ => return None,
        };
        Some(Ok(rendered))
    }
}

/// Live properties a client may not set or remove.
pub(crate) fn is_protected(name: &PropName) -> bool {
    name.ns == "DAV:" && name.local != "displayname" && LIVE.contains(&name.local.as_str())
}
