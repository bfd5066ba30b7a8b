//! The XML bodies and property values: parsed back with roxmltree, asserted by namespace.

use std::time::{Duration, SystemTime};

use roxmltree::{Document, Node};
use tower_locks::dav::{
    activelock, error_body, escape_href, lock_conflict_multistatus, lock_response_body,
    lockdiscovery, supportedlock,
};
use tower_locks::{Lock, LockDepth, LockScope, LockTimeout, ResourcePath};

const DAV: &str = "DAV:";

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn lock(root: &str) -> Lock {
    Lock::builder(ResourcePath::parse(root).unwrap())
        .timeout(LockTimeout::Seconds(3600))
        .into_lock(t0(), 7)
}

/// Wrap a fragment in a document declaring the `D:` prefix.
fn wrap(fragment: &str) -> String {
    format!("<D:prop xmlns:D=\"DAV:\">{fragment}</D:prop>")
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Node<'a, 'i> {
    node.children()
        .find(|n| n.has_tag_name((DAV, name)))
        .unwrap_or_else(|| panic!("no DAV:{name} in {:?}", node.tag_name()))
}

fn element_children<'a, 'i>(node: Node<'a, 'i>) -> Vec<Node<'a, 'i>> {
    node.children().filter(Node::is_element).collect()
}

fn text_of(node: Node<'_, '_>, path: &[&str]) -> String {
    let mut node = node;
    for name in path {
        node = child(node, name);
    }
    node.text().unwrap_or_default().to_owned()
}

fn only_child_name(node: Node<'_, '_>) -> String {
    let children = element_children(node);
    assert_eq!(children.len(), 1, "{:?}", node.tag_name());
    assert_eq!(children[0].tag_name().namespace(), Some(DAV));
    children[0].tag_name().name().to_owned()
}

#[test]
fn activelock_has_every_element_with_exact_values() {
    let lock = Lock::builder(ResourcePath::parse("/docs/report/").unwrap())
        .scope(LockScope::Shared)
        .depth(LockDepth::Infinity)
        .timeout(LockTimeout::Seconds(600))
        .owner(r#"<D:href xmlns:D="DAV:">mailto:ann@example.org</D:href>"#)
        .into_lock(t0(), 1);
    let xml = wrap(&activelock(&lock, t0()));
    let doc = Document::parse(&xml).unwrap();
    let al = child(doc.root_element(), "activelock");
    let names: Vec<_> = element_children(al)
        .iter()
        .map(|n| n.tag_name().name().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "locktype",
            "lockscope",
            "depth",
            "owner",
            "timeout",
            "locktoken",
            "lockroot"
        ]
    );
    assert!(element_children(al)
        .iter()
        .all(|n| n.tag_name().namespace() == Some(DAV)));
    assert_eq!(only_child_name(child(al, "locktype")), "write");
    assert_eq!(only_child_name(child(al, "lockscope")), "shared");
    assert_eq!(text_of(al, &["depth"]), "infinity");
    assert_eq!(text_of(al, &["timeout"]), "Second-600");
    assert_eq!(text_of(al, &["locktoken", "href"]), lock.token);
    assert!(lock.token.starts_with("urn:uuid:"));
    assert_eq!(text_of(al, &["lockroot", "href"]), "/docs/report/");
    assert_eq!(text_of(al, &["owner", "href"]), "mailto:ann@example.org");

    let exclusive = Lock::builder(ResourcePath::parse("/x").unwrap()).into_lock(t0(), 2);
    let xml = wrap(&activelock(&exclusive, t0()));
    let doc = Document::parse(&xml).unwrap();
    let al = child(doc.root_element(), "activelock");
    assert_eq!(only_child_name(child(al, "lockscope")), "exclusive");
    assert_eq!(text_of(al, &["depth"]), "0");
    assert!(al.children().all(|n| !n.has_tag_name((DAV, "owner"))));
}

#[test]
fn timeout_is_the_time_remaining() {
    let lock = lock("/a");
    let timeout_at = |now: SystemTime| {
        let xml = wrap(&activelock(&lock, now));
        let doc = Document::parse(&xml).unwrap();
        text_of(child(doc.root_element(), "activelock"), &["timeout"])
    };
    assert_eq!(timeout_at(t0()), "Second-3600");
    assert_eq!(timeout_at(t0() + Duration::from_secs(1)), "Second-3599");
    assert_eq!(
        timeout_at(t0() + Duration::from_millis(1500)),
        "Second-3599"
    );
    assert_eq!(timeout_at(t0() + Duration::from_secs(3599)), "Second-1");
    assert_eq!(timeout_at(t0() + Duration::from_secs(4000)), "Second-0");

    let infinite = Lock::builder(ResourcePath::parse("/a").unwrap())
        .timeout(LockTimeout::Infinite)
        .into_lock(t0(), 1);
    let xml = wrap(&activelock(
        &infinite,
        t0() + Duration::from_secs(1_000_000),
    ));
    let doc = Document::parse(&xml).unwrap();
    assert_eq!(
        text_of(child(doc.root_element(), "activelock"), &["timeout"]),
        "Infinite"
    );
}

#[test]
fn hrefs_and_tokens_are_escaped_and_round_trip() {
    let root = ResourcePath::parse("/a&b/c<d>/").unwrap();
    let href = root.href();
    let mut lock = Lock::builder(root).into_lock(t0(), 1);
    lock.token = "urn:x:<&\">".into();
    let xml = lock_response_body(&lock, t0());
    let doc = Document::parse(&xml).unwrap();
    let al = child(child(doc.root_element(), "lockdiscovery"), "activelock");
    assert_eq!(text_of(al, &["lockroot", "href"]), href);
    assert_eq!(text_of(al, &["locktoken", "href"]), "urn:x:<&\">");

    assert_eq!(escape_href("a&b<c>\"'"), "a&amp;b&lt;c&gt;&quot;&apos;");

    let xml = error_body("lock-token-submitted", &["/q?a=1&b=<2>"]);
    let doc = Document::parse(&xml).unwrap();
    assert_eq!(
        text_of(doc.root_element(), &["lock-token-submitted", "href"]),
        "/q?a=1&b=<2>"
    );

    let xml = lock_conflict_multistatus("/r&s/", &["/r&s/<t>"]);
    let doc = Document::parse(&xml).unwrap();
    let hrefs: Vec<_> = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name((DAV, "response")))
        .map(|r| text_of(r, &["href"]))
        .collect();
    assert_eq!(hrefs, ["/r&s/<t>", "/r&s/"]);
}

#[test]
fn lock_response_body_structure() {
    let lock = lock("/coll/");
    let xml = lock_response_body(&lock, t0());
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"));
    let doc = Document::parse(&xml).unwrap();
    let prop = doc.root_element();
    assert!(prop.has_tag_name((DAV, "prop")));
    let ld = child(prop, "lockdiscovery");
    assert_eq!(element_children(ld).len(), 1);
    let al = child(ld, "activelock");
    assert_eq!(text_of(al, &["locktoken", "href"]), lock.token);
    assert_eq!(text_of(al, &["lockroot", "href"]), "/coll/");
}

#[test]
fn lockdiscovery_lists_every_lock() {
    let xml = wrap(&lockdiscovery(&[], t0()));
    let doc = Document::parse(&xml).unwrap();
    let ld = child(doc.root_element(), "lockdiscovery");
    assert!(element_children(ld).is_empty());

    let locks = [lock("/a"), lock("/a/b")];
    let xml = wrap(&lockdiscovery(&locks, t0()));
    let doc = Document::parse(&xml).unwrap();
    let ld = child(doc.root_element(), "lockdiscovery");
    let tokens: Vec<_> = element_children(ld)
        .into_iter()
        .map(|al| {
            assert!(al.has_tag_name((DAV, "activelock")));
            text_of(al, &["locktoken", "href"])
        })
        .collect();
    assert_eq!(tokens, [locks[0].token.clone(), locks[1].token.clone()]);
}

#[test]
fn supportedlock_has_both_entries() {
    let xml = wrap(supportedlock());
    let doc = Document::parse(&xml).unwrap();
    let sl = child(doc.root_element(), "supportedlock");
    let entries = element_children(sl);
    assert_eq!(entries.len(), 2);
    let mut scopes: Vec<_> = entries
        .iter()
        .map(|e| {
            assert!(e.has_tag_name((DAV, "lockentry")));
            assert_eq!(only_child_name(child(*e, "locktype")), "write");
            only_child_name(child(*e, "lockscope"))
        })
        .collect();
    scopes.sort();
    assert_eq!(scopes, ["exclusive", "shared"]);
}

#[test]
fn error_body_structure() {
    let xml = error_body("lock-token-submitted", &["/locked/", "/other/"]);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"));
    let doc = Document::parse(&xml).unwrap();
    let error = doc.root_element();
    assert!(error.has_tag_name((DAV, "error")));
    let cond = element_children(error);
    assert_eq!(cond.len(), 1);
    assert!(cond[0].has_tag_name((DAV, "lock-token-submitted")));
    let hrefs: Vec<_> = element_children(cond[0])
        .iter()
        .map(|h| {
            assert!(h.has_tag_name((DAV, "href")));
            h.text().unwrap().to_owned()
        })
        .collect();
    assert_eq!(hrefs, ["/locked/", "/other/"]);

    let xml = error_body("lock-token-matches-request-uri", &[]);
    let doc = Document::parse(&xml).unwrap();
    let cond = element_children(doc.root_element());
    assert_eq!(cond.len(), 1);
    assert!(cond[0].has_tag_name((DAV, "lock-token-matches-request-uri")));
    assert!(cond[0].children().next().is_none());
}

fn responses(xml: &str) -> Vec<(String, String, Option<Vec<String>>)> {
    let doc = Document::parse(xml).unwrap();
    let ms = doc.root_element();
    assert!(ms.has_tag_name((DAV, "multistatus")));
    element_children(ms)
        .into_iter()
        .map(|r| {
            assert!(r.has_tag_name((DAV, "response")));
            let hrefs: Vec<_> = r
                .children()
                .filter(|n| n.has_tag_name((DAV, "href")))
                .collect();
            assert_eq!(hrefs.len(), 1, "one href per response");
            let error = r
                .children()
                .find(|n| n.has_tag_name((DAV, "error")))
                .map(|e| {
                    let ncl = child(e, "no-conflicting-lock");
                    assert_eq!(element_children(e).len(), 1);
                    element_children(ncl)
                        .iter()
                        .map(|h| h.text().unwrap().to_owned())
                        .collect()
                });
            (
                hrefs[0].text().unwrap().to_owned(),
                text_of(r, &["status"]),
                error,
            )
        })
        .collect()
}

#[test]
fn conflict_multistatus_structure() {
    let xml = lock_conflict_multistatus("/coll/", &["/coll/a", "/coll/b/", "/coll/a"]);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"));
    let got = responses(&xml);
    let locked = "HTTP/1.1 423 Locked".to_owned();
    assert_eq!(
        got,
        [
            (
                "/coll/a".to_owned(),
                locked.clone(),
                Some(vec!["/coll/a".to_owned()])
            ),
            (
                "/coll/b/".to_owned(),
                locked,
                Some(vec!["/coll/b/".to_owned()])
            ),
            (
                "/coll/".to_owned(),
                "HTTP/1.1 424 Failed Dependency".to_owned(),
                None
            ),
        ]
    );
}

#[test]
fn conflict_multistatus_never_repeats_the_request_uri() {
    let got = responses(&lock_conflict_multistatus("/coll/", &["/coll/", "/coll/x"]));
    let hrefs: Vec<_> = got.iter().map(|(h, _, _)| h.as_str()).collect();
    assert_eq!(hrefs, ["/coll/", "/coll/x"]);
    assert!(got.iter().all(|(_, s, _)| s == "HTTP/1.1 423 Locked"));

    let got = responses(&lock_conflict_multistatus("/coll/", &[]));
    assert_eq!(
        got,
        [(
            "/coll/".to_owned(),
            "HTTP/1.1 424 Failed Dependency".to_owned(),
            None
        )]
    );
}
