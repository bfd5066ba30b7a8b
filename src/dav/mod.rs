//! The WebDAV XML this crate reads and writes (RFC 4918 §14–§16).
//!
//! Pure functions only: no HTTP, no store access. The layer calls them to
//!
//! - parse a LOCK request body into a [`LockInfo`] with [`parse_lockinfo`]
//!   (namespace-aware, unknown elements ignored per §17, DTDs and entity declarations refused
//!   per §20.6, the `DAV:owner` content kept verbatim per §14.17);
//! - render the `DAV:lockdiscovery` and `DAV:supportedlock` properties, the LOCK response body,
//!   the `DAV:error` bodies of §16 and the 207 Multi-Status body of a depth-infinity LOCK that a
//!   lock below the request URI blocked (§9.10.3).
//!
//! # Prefixes
//!
//! Every element this module writes uses the prefix `D:`. The *fragments*
//! ([`activelock`], [`lockdiscovery`], [`supportedlock`]) assume that the enclosing document
//! declares `xmlns:D="DAV:"`; the *documents* ([`lock_response_body`], [`error_body`],
//! [`lock_conflict_multistatus`]) start with an XML declaration and declare it themselves.
//!
//! ```
//! use std::time::SystemTime;
//! use tower_locks::dav::{lock_response_body, parse_lockinfo};
//! use tower_locks::{Lock, LockScope, ResourcePath};
//!
//! let body = br#"<?xml version="1.0" encoding="utf-8"?>
//! <D:lockinfo xmlns:D="DAV:">
//!   <D:lockscope><D:shared/></D:lockscope>
//!   <D:locktype><D:write/></D:locktype>
//!   <D:owner><D:href>mailto:ann@example.org</D:href></D:owner>
//! </D:lockinfo>"#;
//! let info = parse_lockinfo(body, 4096).unwrap();
//! assert_eq!(info.scope, LockScope::Shared);
//!
//! let mut builder = Lock::builder(ResourcePath::parse("/docs/").unwrap()).scope(info.scope);
//! if let Some(owner) = info.owner {
//!     builder = builder.owner(owner);
//! }
//! let lock = builder.build_unstored();
//! let xml = lock_response_body(&lock, SystemTime::now());
//! assert!(xml.contains("<D:shared/>"));
//! assert!(xml.contains(r#"<D:owner><D:href xmlns:D="DAV:">mailto:ann@example.org</D:href></D:owner>"#));
//! ```

mod lockinfo;
mod multistatus;
mod render;

pub use lockinfo::{parse_lockinfo, LockInfo, LockInfoError};
pub(crate) use multistatus::{
    is_utf8_name, multistatus_head, next_piece, read_response, Piece, ResponseElement,
};
pub use multistatus::{parse_propfind, PropfindKind};
pub(crate) use render::lockdiscovery_of;
pub use render::{
    activelock, error_body, escape_href, lock_conflict_multistatus, lock_response_body,
    lockdiscovery, supportedlock,
};
