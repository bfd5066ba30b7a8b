//! Writing lock discovery, supported locks, error and multistatus bodies (RFC 4918 §14–§16).

use std::fmt::Write as _;
use std::time::SystemTime;

use crate::{Lock, LockDepth, LockScope, LockTimeout};

/// The XML declaration that starts every whole document.
const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

/// Escape `s` for XML character data or a quoted attribute value (`&`, `<`, `>`, `'`, `"`).
///
/// Hrefs are already percent-encoded URI references, but may still hold `&` (query-like
/// segments) and, from foreign stores, anything else.
///
/// ```
/// use tower_locks::dav::escape_href;
///
/// assert_eq!(escape_href("/a&b/<c>"), "/a&amp;b/&lt;c&gt;");
/// assert_eq!(escape_href("/plain/"), "/plain/");
/// ```
pub fn escape_href(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// One `DAV:activelock` element (RFC 4918 §14.1) for `lock`, as seen at `now`.
///
/// A fragment: it uses the prefix `D:` and expects the enclosing document to declare
/// `xmlns:D="DAV:"`. The timeout is the time *remaining* at `now`
/// ([`Lock::remaining_at`]), the lock root is [`ResourcePath::href`](crate::ResourcePath::href),
/// and the owner is written back verbatim: it must be a well-formed, self-contained XML
/// fragment, which is what [`parse_lockinfo`](crate::dav::parse_lockinfo) produces.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_locks::dav::activelock;
/// use tower_locks::{Lock, LockDepth, LockTimeout, ResourcePath};
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
/// let lock = Lock::builder(ResourcePath::parse("/docs/").unwrap())
///     .depth(LockDepth::Infinity)
///     .timeout(LockTimeout::Seconds(600))
///     .owner("litmus test suite")
///     .into_lock(now, 1);
/// let xml = activelock(&lock, now + Duration::from_secs(100));
/// assert!(xml.starts_with("<D:activelock><D:locktype><D:write/></D:locktype>"));
/// assert!(xml.contains("<D:depth>infinity</D:depth>"));
/// assert!(xml.contains("<D:owner>litmus test suite</D:owner>"));
/// assert!(xml.contains("<D:timeout>Second-500</D:timeout>"));
/// assert!(xml.contains(&format!("<D:locktoken><D:href>{}</D:href></D:locktoken>", lock.token)));
/// assert!(xml.ends_with("<D:lockroot><D:href>/docs/</D:href></D:lockroot></D:activelock>"));
/// ```
pub fn activelock(lock: &Lock, now: SystemTime) -> String {
    let mut out = String::with_capacity(384 + lock.owner.as_ref().map_or(0, |o| o.len()));
    write_activelock(&mut out, lock, now);
    out
}

fn write_activelock(out: &mut String, lock: &Lock, now: SystemTime) {
    out.push_str("<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope>");
    out.push_str(match lock.scope {
        LockScope::Exclusive => "<D:exclusive/>",
        LockScope::Shared => "<D:shared/>",
    });
    out.push_str("</D:lockscope><D:depth>");
    out.push_str(match lock.depth {
        LockDepth::Zero => "0",
        LockDepth::Infinity => "infinity",
    });
    out.push_str("</D:depth>");
    if let Some(owner) = &lock.owner {
        out.push_str("<D:owner>");
        out.push_str(owner);
        out.push_str("</D:owner>");
    }
    out.push_str("<D:timeout>");
    match lock.remaining_at(now) {
        LockTimeout::Seconds(n) => {
            let _ = write!(out, "Second-{n}");
        }
        LockTimeout::Infinite => out.push_str("Infinite"),
    }
    out.push_str("</D:timeout><D:locktoken><D:href>");
    out.push_str(&escape_href(&lock.token));
    out.push_str("</D:href></D:locktoken><D:lockroot><D:href>");
    out.push_str(&escape_href(&lock.root.href()));
    out.push_str("</D:href></D:lockroot></D:activelock>");
}

/// The `DAV:lockdiscovery` property value (RFC 4918 §15.8): one `DAV:activelock` per lock,
/// `<D:lockdiscovery/>` when there is none.
///
/// A fragment using the prefix `D:`; the enclosing document declares `xmlns:D="DAV:"`.
///
/// ```
/// use std::time::SystemTime;
/// use tower_locks::dav::lockdiscovery;
/// use tower_locks::{Lock, ResourcePath};
///
/// assert_eq!(lockdiscovery(&[], SystemTime::now()), "<D:lockdiscovery/>");
/// let lock = Lock::builder(ResourcePath::parse("/a").unwrap()).build_unstored();
/// let xml = lockdiscovery(&[lock.clone(), lock], SystemTime::now());
/// assert_eq!(xml.matches("<D:activelock>").count(), 2);
/// ```
pub fn lockdiscovery(locks: &[Lock], now: SystemTime) -> String {
    lockdiscovery_of(locks, now)
}

/// [`lockdiscovery`] of the locks `locks` yields, without gathering them first.
pub(crate) fn lockdiscovery_of<'a>(
    locks: impl IntoIterator<Item = &'a Lock>,
    now: SystemTime,
) -> String {
    let mut locks = locks.into_iter().peekable();
    if locks.peek().is_none() {
        return "<D:lockdiscovery/>".to_owned();
    }
    let mut out = String::with_capacity(464);
    out.push_str("<D:lockdiscovery>");
    for lock in locks {
        write_activelock(&mut out, lock, now);
    }
    out.push_str("</D:lockdiscovery>");
    out
}

/// The `DAV:supportedlock` property value (RFC 4918 §15.10): exclusive and shared write locks.
///
/// A fragment using the prefix `D:`; the enclosing document declares `xmlns:D="DAV:"`.
///
/// ```
/// use tower_locks::dav::supportedlock;
///
/// let xml = supportedlock();
/// assert_eq!(xml.matches("<D:lockentry>").count(), 2);
/// assert!(xml.contains("<D:exclusive/>") && xml.contains("<D:shared/>"));
/// ```
pub fn supportedlock() -> &'static str {
    "<D:supportedlock>\
     <D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>\
     <D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>\
     </D:supportedlock>"
}

/// The body of a successful LOCK response (RFC 4918 §9.10.1, §9.10.2): a whole document
/// `<D:prop xmlns:D="DAV:"><D:lockdiscovery>` holding the `DAV:activelock` of `lock`.
///
/// ```
/// use std::time::SystemTime;
/// use tower_locks::dav::lock_response_body;
/// use tower_locks::{Lock, ResourcePath};
///
/// let lock = Lock::builder(ResourcePath::parse("/a").unwrap()).build_unstored();
/// let xml = lock_response_body(&lock, SystemTime::now());
/// assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"));
/// assert!(xml.contains("<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery><D:activelock>"));
/// assert!(xml.ends_with("</D:activelock></D:lockdiscovery></D:prop>"));
/// ```
pub fn lock_response_body(lock: &Lock, now: SystemTime) -> String {
    let mut out = String::with_capacity(512 + lock.owner.as_ref().map_or(0, |o| o.len()));
    out.push_str(XML_DECL);
    out.push_str("<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery>");
    write_activelock(&mut out, lock, now);
    out.push_str("</D:lockdiscovery></D:prop>");
    out
}

/// A whole `DAV:error` document (RFC 4918 §16) carrying one precondition or postcondition.
///
/// `condition` is the local name of a `DAV:` condition element, such as
/// `lock-token-submitted`, `no-conflicting-lock`, `lock-token-matches-request-uri` or
/// `no-external-entities`; it is written as is and must be a trusted XML name. Each href is
/// escaped and written as a `DAV:href` child; with no hrefs the element is empty.
///
/// ```
/// use tower_locks::dav::error_body;
///
/// let xml = error_body("lock-token-submitted", &["/locked/"]);
/// assert!(xml.ends_with(
///     "<D:error xmlns:D=\"DAV:\"><D:lock-token-submitted><D:href>/locked/</D:href>\
///      </D:lock-token-submitted></D:error>"
/// ));
/// assert!(error_body("lock-token-matches-request-uri", &[])
///     .ends_with("<D:error xmlns:D=\"DAV:\"><D:lock-token-matches-request-uri/></D:error>"));
/// ```
pub fn error_body(condition: &str, hrefs: &[&str]) -> String {
    debug_assert!(
        is_condition_name(condition),
        "not a condition name: {condition:?}"
    );
    let mut out = String::with_capacity(128 + hrefs.iter().map(|h| h.len() + 20).sum::<usize>());
    out.push_str(XML_DECL);
    out.push_str("<D:error xmlns:D=\"DAV:\">");
    write_condition(&mut out, condition, hrefs);
    out.push_str("</D:error>");
    out
}

fn write_condition(out: &mut String, condition: &str, hrefs: &[&str]) {
    out.push_str("<D:");
    out.push_str(condition);
    if hrefs.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for href in hrefs {
        out.push_str("<D:href>");
        out.push_str(&escape_href(href));
        out.push_str("</D:href>");
    }
    out.push_str("</D:");
    out.push_str(condition);
    out.push('>');
}

/// The 207 Multi-Status body for a depth-infinity LOCK refused because of locks rooted below
/// the request URI (RFC 4918 §9.10.3; decision 2 of the checklist's section 12).
///
/// One `DAV:response` per distinct blocking lock root, with status `423 Locked` and a
/// `DAV:no-conflicting-lock` error naming that root; then one `DAV:response` for
/// `request_href` with `424 Failed Dependency`. Every href appears once (§14.24): duplicate
/// roots are merged, and a root equal to `request_href` makes the request URI's own response
/// the 423 one (no 424 is added). Hrefs are compared as given, so pass them in the same form
/// (for instance all from [`ResourcePath::href`](crate::ResourcePath::href)).
///
/// ```
/// use tower_locks::dav::lock_conflict_multistatus;
///
/// let xml = lock_conflict_multistatus("/coll/", &["/coll/a", "/coll/a", "/coll/b/"]);
/// assert_eq!(xml.matches("<D:response>").count(), 3);
/// assert_eq!(xml.matches("HTTP/1.1 423 Locked").count(), 2);
/// assert!(xml.contains(
///     "<D:response><D:href>/coll/</D:href><D:status>HTTP/1.1 424 Failed Dependency</D:status></D:response>"
/// ));
/// ```
pub fn lock_conflict_multistatus(request_href: &str, blocking_hrefs: &[&str]) -> String {
    let mut unique = std::collections::HashSet::with_capacity(blocking_hrefs.len());
    let seen: Vec<&str> = blocking_hrefs
        .iter()
        .copied()
        .filter(|href| unique.insert(*href))
        .collect();
    let mut out = String::with_capacity(256 + 220 * seen.len());
    out.push_str(XML_DECL);
    out.push_str("<D:multistatus xmlns:D=\"DAV:\">");
    for href in &seen {
        let escaped = escape_href(href);
        let _ = write!(
            out,
            "<D:response><D:href>{escaped}</D:href><D:status>HTTP/1.1 423 Locked</D:status>\
             <D:error><D:no-conflicting-lock><D:href>{escaped}</D:href></D:no-conflicting-lock>\
             </D:error></D:response>"
        );
    }
    if !unique.contains(request_href) {
        let _ = write!(
            out,
            "<D:response><D:href>{}</D:href><D:status>HTTP/1.1 424 Failed Dependency</D:status>\
             </D:response>",
            escape_href(request_href)
        );
    }
    out.push_str("</D:multistatus>");
    out
}

/// Whether `s` looks like a condition element's local name (ASCII letters, digits, `-`).
fn is_condition_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}
