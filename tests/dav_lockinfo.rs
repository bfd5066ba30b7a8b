//! `parse_lockinfo`: RFC 4918 and litmus bodies, namespaces, owners, hostile input.

use std::time::SystemTime;

use tower_locks::dav::{activelock, parse_lockinfo, LockInfo, LockInfoError};
use tower_locks::{Lock, LockScope, ResourcePath};

const LIMIT: usize = 4096;

fn parse(body: &str) -> Result<LockInfo, LockInfoError> {
    parse_lockinfo(body.as_bytes(), LIMIT)
}

fn owner_of(body: &str) -> String {
    parse(body).unwrap().owner.expect("owner present")
}

fn assert_not_wf(body: &[u8]) {
    match parse_lockinfo(body, LIMIT) {
        Err(LockInfoError::NotWellFormed(reason)) => assert!(!reason.is_empty()),
        other => panic!(
            "expected NotWellFormed for {:?}, got {other:?}",
            String::from_utf8_lossy(body)
        ),
    }
}

/// Render `owner` inside an activelock in a DAV-declared document and parse it back.
fn render_owner_document(owner: &str) -> String {
    let lock = Lock::builder(ResourcePath::parse("/a").unwrap())
        .owner(owner)
        .build_unstored();
    format!(
        "<D:prop xmlns:D=\"DAV:\">{}</D:prop>",
        activelock(&lock, SystemTime::now())
    )
}

fn dav_owner<'a>(doc: &'a roxmltree::Document<'a>) -> roxmltree::Node<'a, 'a> {
    doc.descendants()
        .find(|n| n.has_tag_name(("DAV:", "owner")))
        .expect("DAV:owner rendered")
}

// RFC 4918 §9.10.7.
const RFC_EXAMPLE_EXCLUSIVE: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
     <D:lockinfo xmlns:D='DAV:'>
       <D:lockscope><D:exclusive/></D:lockscope>
       <D:locktype><D:write/></D:locktype>
       <D:owner>
         <D:href>http://example.org/~ejw/contact.html</D:href>
       </D:owner>
     </D:lockinfo>"#;

// RFC 4918 §9.10.8 (a collection lock: same body shape, with Depth: infinity).
const RFC_EXAMPLE_COLLECTION: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
     <D:lockinfo xmlns:D="DAV:">
       <D:locktype><D:write/></D:locktype>
       <D:lockscope><D:exclusive/></D:lockscope>
       <D:owner>
         <D:href>http://example.org/~ejw/contact.html</D:href>
       </D:owner>
     </D:lockinfo>"#;

// LITMUS.md §3.3 (neon's ne_lock).
const LITMUS: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
<lockinfo xmlns='DAV:'>\n <lockscope><exclusive/></lockscope>\n\
<locktype><write/></locktype><owner>litmus test suite</owner>\n</lockinfo>\n";

#[test]
fn rfc_example_exclusive() {
    let info = parse(RFC_EXAMPLE_EXCLUSIVE).unwrap();
    assert_eq!(info.scope, LockScope::Exclusive);
    let owner = info.owner.unwrap();
    assert_eq!(
        owner.trim(),
        r#"<D:href xmlns:D="DAV:">http://example.org/~ejw/contact.html</D:href>"#
    );
}

#[test]
fn rfc_example_collection_element_order_is_irrelevant() {
    let info = parse(RFC_EXAMPLE_COLLECTION).unwrap();
    assert_eq!(info.scope, LockScope::Exclusive);
    assert!(info
        .owner
        .unwrap()
        .contains("http://example.org/~ejw/contact.html"));
}

#[test]
fn litmus_body_exclusive_and_shared() {
    assert_eq!(
        parse(LITMUS).unwrap(),
        LockInfo {
            scope: LockScope::Exclusive,
            owner: Some("litmus test suite".to_owned()),
        }
    );
    let shared = LITMUS.replace("<exclusive/>", "<shared/>");
    assert_eq!(parse(&shared).unwrap().scope, LockScope::Shared);
}

#[test]
fn prefix_is_irrelevant_only_namespace_counts() {
    let body = "<x:lockinfo xmlns:x='DAV:'><x:lockscope><x:shared/></x:lockscope>\
                <x:locktype><x:write/></x:locktype></x:lockinfo>";
    assert_eq!(
        parse(body).unwrap(),
        LockInfo {
            scope: LockScope::Shared,
            owner: None
        }
    );
    // The conventional prefix bound to another namespace is not DAV:.
    let body = "<D:lockinfo xmlns:D='urn:not-dav'><D:lockscope><D:shared/></D:lockscope>\
                <D:locktype><D:write/></D:locktype></D:lockinfo>";
    assert_eq!(parse(body), Err(LockInfoError::NotLockInfo));
}

#[test]
fn non_dav_lockinfo_is_rejected() {
    let body = "<lockinfo xmlns=\"urn:other\"><lockscope><exclusive/></lockscope>\
                <locktype><write/></locktype></lockinfo>";
    assert_eq!(parse(body), Err(LockInfoError::NotLockInfo));
    let body =
        "<lockinfo><lockscope><exclusive/></lockscope><locktype><write/></locktype></lockinfo>";
    assert_eq!(parse(body), Err(LockInfoError::NotLockInfo));
    assert_eq!(
        parse("<D:propfind xmlns:D='DAV:'/>"),
        Err(LockInfoError::NotLockInfo)
    );
}

#[test]
fn children_in_another_namespace_do_not_count() {
    let body = "<lockinfo xmlns='DAV:' xmlns:x='urn:x'><x:lockscope><exclusive/></x:lockscope>\
                <locktype><write/></locktype></lockinfo>";
    assert_eq!(parse(body), Err(LockInfoError::MissingScope));
}

#[test]
fn unknown_elements_and_attributes_are_ignored() {
    let body = "<D:lockinfo xmlns:D='DAV:' xmlns:x='urn:x' x:flag='1' other='2'>\
                <x:extension><D:lockscope><D:shared/></D:lockscope></x:extension>\
                <D:unknown-dav-element/>\
                <D:lockscope x:a='b'><x:local/><D:exclusive foo='bar'/><D:future/></D:lockscope>\
                <D:locktype><D:write/><x:other/></D:locktype>\
                <!-- a comment --><?pi data?>\
                <x:trailer>text &amp; more</x:trailer>\
                </D:lockinfo>";
    assert_eq!(
        parse(body).unwrap(),
        LockInfo {
            scope: LockScope::Exclusive,
            owner: None
        }
    );
}

#[test]
fn scope_and_type_errors() {
    let wrap = |inner: &str| format!("<lockinfo xmlns='DAV:'>{inner}</lockinfo>");
    assert_eq!(
        parse(&wrap("<locktype><write/></locktype>")),
        Err(LockInfoError::MissingScope)
    );
    assert_eq!(
        parse(&wrap("<lockscope/><locktype><write/></locktype>")),
        Err(LockInfoError::MissingScope)
    );
    assert_eq!(
        parse(&wrap(
            "<lockscope><local/></lockscope><locktype><write/></locktype>"
        )),
        Err(LockInfoError::MissingScope)
    );
    assert_eq!(
        parse(&wrap(
            "<lockscope><exclusive/><shared/></lockscope><locktype><write/></locktype>"
        )),
        Err(LockInfoError::AmbiguousScope)
    );
    assert_eq!(
        parse(&wrap("<lockscope><exclusive/></lockscope>")),
        Err(LockInfoError::MissingLockType)
    );
    assert_eq!(
        parse(&wrap(
            "<lockscope><exclusive/></lockscope><locktype><read/></locktype>"
        )),
        Err(LockInfoError::UnsupportedLockType)
    );
    assert_eq!(
        parse(&wrap(
            "<lockscope><exclusive/></lockscope><locktype xmlns:x='urn:x'><x:write/></locktype>"
        )),
        Err(LockInfoError::UnsupportedLockType)
    );
    assert_eq!(
        parse(&wrap(
            "<lockscope><exclusive/></lockscope><locktype><write/></locktype>\
             <owner>a</owner><owner>b</owner>"
        )),
        Err(LockInfoError::DuplicateOwner)
    );
}

#[test]
fn owner_with_href_and_prefix_on_root_round_trips() {
    let owner = owner_of(RFC_EXAMPLE_EXCLUSIVE);
    let xml = render_owner_document(&owner);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let owner = dav_owner(&doc);
    let href = owner
        .children()
        .find(|n| n.is_element())
        .expect("href child");
    assert_eq!(href.tag_name().namespace(), Some("DAV:"));
    assert_eq!(href.tag_name().name(), "href");
    assert_eq!(href.text(), Some("http://example.org/~ejw/contact.html"));
}

#[test]
fn owner_with_default_namespace_gets_it_declared() {
    let body = "<lockinfo xmlns='DAV:'><lockscope><exclusive/></lockscope>\
                <locktype><write/></locktype><owner><href>mailto:a@example.org</href></owner>\
                </lockinfo>";
    let owner = owner_of(body);
    assert_eq!(owner, r#"<href xmlns="DAV:">mailto:a@example.org</href>"#);
    let xml = render_owner_document(&owner);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let href = dav_owner(&doc).first_element_child().unwrap();
    assert!(href.has_tag_name(("DAV:", "href")));
    assert_eq!(href.text(), Some("mailto:a@example.org"));
}

#[test]
fn owner_with_foreign_namespace_child() {
    let body = "<D:lockinfo xmlns:D='DAV:'><D:lockscope><D:exclusive/></D:lockscope>\
                <D:locktype><D:write/></D:locktype>\
                <D:owner><x:name xmlns:x=\"urn:x\">Ann <x:b>Lee</x:b></x:name></D:owner>\
                </D:lockinfo>";
    let owner = owner_of(body);
    // Already self-contained: kept byte for byte.
    assert_eq!(
        owner,
        "<x:name xmlns:x=\"urn:x\">Ann <x:b>Lee</x:b></x:name>"
    );
    let xml = render_owner_document(&owner);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let name = dav_owner(&doc).first_element_child().unwrap();
    assert!(name.has_tag_name(("urn:x", "name")));
    let b = name.first_element_child().unwrap();
    assert!(b.has_tag_name(("urn:x", "b")));
    assert_eq!(b.text(), Some("Lee"));
}

#[test]
fn owner_namespaces_declared_on_the_owner_element_and_ancestors() {
    let body = "<D:lockinfo xmlns:D='DAV:' xmlns:y=\"urn:y&amp;z\">\
                <D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>\
                <D:owner xmlns:x='urn:\"x\"'>text <x:a y:attr='1'><D:href>h</D:href></x:a>\
                <plain/> tail</D:owner></D:lockinfo>";
    let owner = owner_of(body);
    let xml = render_owner_document(&owner);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let owner_node = dav_owner(&doc);
    let mut children = owner_node.children();
    assert_eq!(children.next().unwrap().text(), Some("text "));
    let a = children.next().unwrap();
    assert!(a.has_tag_name(("urn:\"x\"", "a")));
    assert_eq!(a.attribute(("urn:y&z", "attr")), Some("1"));
    assert!(a
        .first_element_child()
        .unwrap()
        .has_tag_name(("DAV:", "href")));
    // An unprefixed element with no default namespace stays in no namespace, even inside a
    // document with a default namespace.
    let plain = children.next().unwrap();
    assert_no_namespace(plain);
    assert_eq!(plain.tag_name().name(), "plain");
    assert_eq!(children.next().unwrap().text(), Some(" tail"));
    let embedded =
        format!("<D:prop xmlns:D='DAV:' xmlns='urn:default'><D:owner>{owner}</D:owner></D:prop>");
    let doc = roxmltree::Document::parse(&embedded).unwrap();
    let plain = doc
        .descendants()
        .find(|n| n.tag_name().name() == "plain")
        .unwrap();
    assert_no_namespace(plain);
}

/// roxmltree reports an element under `xmlns=""` as namespace `""`; both mean "none".
fn assert_no_namespace(node: roxmltree::Node<'_, '_>) {
    let ns = node.tag_name().namespace();
    assert!(ns.is_none_or(str::is_empty), "namespace {ns:?}");
}

#[test]
fn text_owner_is_kept_raw() {
    let body = "<lockinfo xmlns='DAV:'><lockscope><exclusive/></lockscope>\
                <locktype><write/></locktype><owner>Ann &amp; Bob &lt;ab@example.org&gt; &#233;</owner>\
                </lockinfo>";
    let owner = owner_of(body);
    assert_eq!(owner, "Ann &amp; Bob &lt;ab@example.org&gt; &#233;");
    let xml = render_owner_document(&owner);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(dav_owner(&doc).text(), Some("Ann & Bob <ab@example.org> é"));
}

#[test]
fn empty_owner_is_none() {
    for owner in ["<owner/>", "<owner></owner>", "<owner>  \n </owner>"] {
        let body = format!(
            "<lockinfo xmlns='DAV:'><lockscope><exclusive/></lockscope>\
             <locktype><write/></locktype>{owner}</lockinfo>"
        );
        assert_eq!(parse(&body).unwrap().owner, None, "{owner}");
    }
}

#[test]
fn owner_size_limit() {
    let body = |text: &str| {
        format!(
            "<lockinfo xmlns='DAV:'><lockscope><exclusive/></lockscope>\
             <locktype><write/></locktype><owner>{text}</owner></lockinfo>"
        )
    };
    let text = "x".repeat(100);
    assert_eq!(
        parse_lockinfo(body(&text).as_bytes(), 100).unwrap().owner,
        Some(text.clone())
    );
    assert_eq!(
        parse_lockinfo(body(&format!("{text}y")).as_bytes(), 100),
        Err(LockInfoError::OwnerTooLarge { limit: 100 })
    );
    // The added namespace declarations count.
    let href = "<href>h</href>"; // becomes <href xmlns="DAV:">h</href>: 27 bytes
    assert_eq!(r#"<href xmlns="DAV:">h</href>"#.len(), 27);
    assert!(parse_lockinfo(body(href).as_bytes(), 27).is_ok());
    assert_eq!(
        parse_lockinfo(body(href).as_bytes(), 26),
        Err(LockInfoError::OwnerTooLarge { limit: 26 })
    );
}

#[test]
fn bom_and_declaration_accepted() {
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend_from_slice(LITMUS.as_bytes());
    assert_eq!(
        parse_lockinfo(&body, LIMIT).unwrap().scope,
        LockScope::Exclusive
    );
    let upper = LITMUS.replace("utf-8", "UTF-8");
    assert!(parse(&upper).is_ok());
    let no_decl = LITMUS.split_once('\n').unwrap().1;
    assert!(parse(no_decl).is_ok());
}

#[test]
fn doctype_and_billion_laughs_are_refused() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><write/></locktype>
<owner>&lol4;</owner></lockinfo>"#;
    assert_eq!(parse(laughs), Err(LockInfoError::DoctypeNotAllowed));
    let simple = "<!DOCTYPE lockinfo><lockinfo xmlns='DAV:'><lockscope><exclusive/></lockscope>\
                  <locktype><write/></locktype></lockinfo>";
    assert_eq!(parse(simple), Err(LockInfoError::DoctypeNotAllowed));
}

#[test]
fn external_entity_is_refused() {
    let xxe = r#"<?xml version="1.0"?>
<!DOCTYPE lockinfo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><write/></locktype>
<owner>&xxe;</owner></lockinfo>"#;
    assert_eq!(parse(xxe), Err(LockInfoError::DoctypeNotAllowed));
    let external_dtd =
        r#"<!DOCTYPE lockinfo SYSTEM "http://evil.example/x.dtd"><lockinfo xmlns="DAV:"/>"#;
    assert_eq!(parse(external_dtd), Err(LockInfoError::DoctypeNotAllowed));
}

#[test]
fn undefined_entities_are_not_well_formed() {
    let body = "<lockinfo xmlns='DAV:'><lockscope><exclusive/></lockscope>\
                <locktype><write/></locktype><owner>&xxe;</owner></lockinfo>";
    assert_not_wf(body.as_bytes());
    let attr = "<lockinfo xmlns='DAV:' a='&nbsp;'><lockscope><exclusive/></lockscope>\
                <locktype><write/></locktype></lockinfo>";
    assert_not_wf(attr.as_bytes());
    assert_not_wf(b"<lockinfo xmlns='DAV:'>&#0;</lockinfo>");
}

#[test]
fn malformed_bodies_are_not_well_formed() {
    let cases: &[&[u8]] = &[
        b"",
        b"   \n",
        b"<?xml version=\"1.0\"?>",
        b"not xml at all",
        b"<lockinfo xmlns='DAV:'>",
        b"<lockinfo xmlns='DAV:'><lockscope><exclusive/></locktype></lockinfo>",
        b"<lockinfo xmlns='DAV:'></lockinfo>trailing",
        b"<lockinfo xmlns='DAV:'></lockinfo><lockinfo xmlns='DAV:'/>",
        b"</lockinfo>",
        b"text<lockinfo xmlns='DAV:'/>",
        b"<lockinfo xmlns='DAV:' a='1' a='2'/>",
        b"<lockinfo xmlns='DAV:' xmlns:p='urn:p' xmlns:q='urn:p' p:a='1' q:a='2'/>",
        b"<lockinfo xmlns='DAV:' a=1/>",
        b"<lockinfo xmlns='DAV:' a='<'/>",
        b"<lockinfo xmlns='DAV:'>a & b</lockinfo>",
        b"<lockinfo xmlns='DAV:'><p:x/></lockinfo>",
        b"<lockinfo xmlns='DAV:' p:a='1'/>",
        b"<1lockinfo/>",
        b"<lockinfo xmlns='DAV:'><!-- a -- b --></lockinfo>",
        b"<lockinfo xmlns='DAV:'>]]></lockinfo>",
        b"<lockinfo xmlns='DAV:'>\x01</lockinfo>",
        b"<lockinfo xmlns='DAV:'>\xff\xfe</lockinfo>",
        b"\xFF\xFE<\0l\0o\0c\0k\0i\0n\0f\0o\0/\0>\0\0",
        b"\xFF\xFE\x00\xD8<\0/\0>\0",
        b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><lockinfo xmlns='DAV:'/>",
        b"<lockinfo xmlns='DAV:'/><?xml version=\"1.0\"?>",
        b" <?xml version=\"1.0\"?><lockinfo xmlns='DAV:'/>",
        b"<lockinfo xmlns='DAV:'><![CDATA[x]]></lockinfo><![CDATA[y]]>",
        b"<lockinfo xmlns='DAV:'><a x='1'y='2'/></lockinfo>",
        b"<lockinfo xmlns='DAV:'><a xmlns:p=''/></lockinfo>",
        b"<lockinfo xmlns='DAV:'><a:b:c xmlns:a='urn:a'/></lockinfo>",
        b"<lockinfo xmlns='DAV:'><!ENTITY x 'y'></lockinfo>",
        b"<lockinfo xmlns='DAV:'><a\x0b/></lockinfo>",
    ];
    for case in cases {
        assert_not_wf(case);
    }
}

#[test]
fn cdata_comments_and_pis_in_owner_are_kept() {
    let body = "<lockinfo xmlns='DAV:'><lockscope><exclusive/></lockscope>\
                <locktype><write/></locktype><owner><![CDATA[<me>]]><!--c--><?p x?></owner>\
                </lockinfo>";
    let owner = owner_of(body);
    assert_eq!(owner, "<![CDATA[<me>]]><!--c--><?p x?>");
    let xml = render_owner_document(&owner);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(dav_owner(&doc).text(), Some("<me>"));
}

/// A lockinfo whose ignored elements (at least one) carry `per_element` attributes each (plus
/// `decls` namespace declarations on the root), about `size` bytes long.
fn wide(per_element: usize, decls: usize, size: usize) -> String {
    let mut root = String::from(r#"<D:lockinfo xmlns:D="DAV:""#);
    for i in 0..decls {
        root.push_str(&format!(r#" xmlns:n{i}="urn:x:{i}""#));
    }
    root.push('>');
    let mut body = root;
    body.push_str("<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>");
    loop {
        body.push_str("<D:ignored");
        for i in 0..per_element {
            body.push_str(&format!(r#" a{i}="v""#));
        }
        body.push_str("/>");
        if body.len() >= size {
            break;
        }
    }
    body.push_str("</D:lockinfo>");
    body
}

/// Parsing costs the same per byte whatever the shape: an element with thousands of
/// attributes (quadratic duplicate checks) or thousands of namespace declarations (every
/// prefix resolution scans them) is refused as too complex; bodies at the limits parse.
#[test]
fn attribute_and_namespace_counts_are_bounded() {
    let many_attributes = wide(6000, 0, 0);
    assert!(many_attributes.len() > 50_000);
    assert!(matches!(
        parse(&many_attributes),
        Err(LockInfoError::TooComplex(_))
    ));
    assert!(matches!(
        parse(&wide(0, 1000, 0)),
        Err(LockInfoError::TooComplex(_))
    ));
    // At the limits (32 attributes an element, 31 declarations beside DAV:), a 53 KB body is a
    // valid lockinfo.
    let info = parse(&wide(32, 31, 53_000)).unwrap();
    assert_eq!(info.scope, LockScope::Exclusive);
    assert!(matches!(
        parse(&wide(33, 0, 0)),
        Err(LockInfoError::TooComplex(_))
    ));
}

#[test]
fn duplicate_attributes_are_still_refused() {
    assert_not_wf(br#"<D:lockinfo xmlns:D="DAV:" a="1" a="2"/>"#);
    assert_not_wf(
        br#"<D:lockinfo xmlns:D="DAV:" xmlns:x="urn:a" xmlns:y="urn:a" x:a="1" y:a="2"/>"#,
    );
}

/// XML 1.0 §4.3.3 (RFC 4918 §19): a UTF-16 body with its byte order mark, either byte order,
/// reads as its UTF-8 twin, owner included; a declaration naming another encoding than the
/// body's is refused.
#[test]
fn utf16_bodies_read_as_their_utf8_twins() {
    let utf8 = parse(RFC_EXAMPLE_EXCLUSIVE).unwrap();
    let text = RFC_EXAMPLE_EXCLUSIVE.replace("encoding=\"utf-8\"", "encoding=\"UTF-16\"");
    for little_endian in [true, false] {
        let mut body = if little_endian {
            vec![0xFF, 0xFE]
        } else {
            vec![0xFE, 0xFF]
        };
        for unit in text.encode_utf16() {
            body.extend(if little_endian {
                unit.to_le_bytes()
            } else {
                unit.to_be_bytes()
            });
        }
        let info = parse_lockinfo(&body, LIMIT).unwrap();
        assert_eq!(info.scope, utf8.scope);
        assert_eq!(info.owner, utf8.owner, "little endian: {little_endian}");
    }
    let mut mislabelled = vec![0xFF, 0xFE];
    for unit in RFC_EXAMPLE_EXCLUSIVE.encode_utf16() {
        mislabelled.extend(unit.to_le_bytes());
    }
    assert_not_wf(&mislabelled);
    assert_not_wf(text.as_bytes());
}
