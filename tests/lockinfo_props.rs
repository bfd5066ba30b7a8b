//! Property tests: `parse_lockinfo` never panics, and accepted owners survive rendering.

use std::time::SystemTime;

use proptest::prelude::*;
use quick_xml::escape::escape;
use tower_locks::dav::{activelock, parse_lockinfo};
use tower_locks::{Lock, ResourcePath};

const SEEDS: &[&str] = &[
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<lockinfo xmlns='DAV:'>\n \
     <lockscope><exclusive/></lockscope>\n<locktype><write/></locktype>\
     <owner>litmus test suite</owner>\n</lockinfo>\n",
    "<D:lockinfo xmlns:D='DAV:' xmlns:x=\"urn:x\"><D:lockscope><D:shared/></D:lockscope>\
     <D:locktype><D:write/></D:locktype><D:owner>a &amp; <D:href>h</D:href>\
     <x:n x:a='v' b=\"&lt;\"><![CDATA[c]]><!--k--></x:n></D:owner></D:lockinfo>",
];

/// Render `owner` in an activelock inside a DAV-declared document.
fn embed(owner: &str) -> String {
    let lock = Lock::builder(ResourcePath::parse("/p").unwrap())
        .owner(owner)
        .build_unstored();
    format!(
        "<D:prop xmlns:D=\"DAV:\" xmlns=\"urn:enclosing-default\">{}</D:prop>",
        activelock(&lock, SystemTime::now())
    )
}

fn owner_node<'a>(doc: &'a roxmltree::Document<'a>) -> roxmltree::Node<'a, 'a> {
    doc.descendants()
        .find(|n| n.has_tag_name(("DAV:", "owner")))
        .unwrap()
}

fn lockinfo_with_owner(owner: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><D:lockinfo xmlns:D=\"DAV:\" xmlns:x=\"urn:x\">\
         <D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>\
         <D:owner>{owner}</D:owner></D:lockinfo>"
    )
}

/// Characters allowed in XML, except white space other than the space.
fn attr_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => proptest::char::range(' ', '~'),
        1 => proptest::char::range('\u{A0}', '\u{D7FF}'),
        1 => proptest::char::range('\u{E000}', '\u{FFFD}'),
        1 => proptest::char::range('\u{10000}', '\u{10FFFF}'),
    ]
}

/// Characters allowed in XML, without `\r` (end-of-line normalisation would change it).
fn xml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => attr_char(),
        1 => Just('\n'),
        1 => Just('\t'),
    ]
}

fn xml_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(xml_char(), 0..max).prop_map(String::from_iter)
}

/// One edit applied to a seed body.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, u8),
    Delete(usize),
    Replace(usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![
        3 => proptest::sample::select(b"<>/='\"&;:!?[]- \nxDAV#".to_vec()),
        1 => any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Replace(i, b)),
    ]
}

fn apply(seed: &str, edits: &[Edit]) -> Vec<u8> {
    let mut body = seed.as_bytes().to_vec();
    for edit in edits {
        let len = body.len();
        match *edit {
            Edit::Insert(i, b) => body.insert(i % (len + 1), b),
            Edit::Delete(i) if len > 0 => {
                body.remove(i % len);
            }
            Edit::Replace(i, b) if len > 0 => body[i % len] = b,
            _ => {}
        }
    }
    body
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_lockinfo(&body, 256);
    }

    #[test]
    fn never_panics_on_markup_soup(body in "[<>/='\"&;:!?\\[\\] a-eDAVx#0-9\n-]{0,200}") {
        let _ = parse_lockinfo(body.as_bytes(), 256);
    }

    /// Mutated real bodies: never a panic, and whatever owner is accepted embeds into a
    /// well-formed, namespace-well-formed document.
    #[test]
    fn accepted_owners_are_well_formed(
        seed in proptest::sample::select(SEEDS),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let body = apply(seed, &edits);
        if let Ok(info) = parse_lockinfo(&body, 4096) {
            if let Some(owner) = info.owner {
                let xml = embed(&owner);
                prop_assert!(
                    roxmltree::Document::parse(&xml).is_ok(),
                    "body {:?} gave owner {:?}", String::from_utf8_lossy(&body), owner
                );
            }
        }
    }

    #[test]
    fn owner_text_round_trips(text in xml_text(64)) {
        let body = lockinfo_with_owner(&escape(text.as_str()));
        let info = parse_lockinfo(body.as_bytes(), 4096).unwrap();
        if text.trim_matches([' ', '\t', '\n']).is_empty() {
            prop_assert_eq!(info.owner, None);
        } else {
            let owner = info.owner.unwrap();
            let xml = embed(&owner);
            let doc = roxmltree::Document::parse(&xml).unwrap();
            prop_assert_eq!(owner_node(&doc).text(), Some(text.as_str()));
        }
    }

    #[test]
    fn owner_element_text_and_attribute_round_trip(
        text in xml_text(32),
        // No `\t` or `\n`: attribute-value normalisation turns them into spaces.
        value in proptest::collection::vec(attr_char(), 0..32).prop_map(String::from_iter),
        declare_on_child in any::<bool>(),
    ) {
        let decl = if declare_on_child { " xmlns:x=\"urn:x\"" } else { "" };
        let owner = format!(
            "<x:note{decl} x:v=\"{}\" plain='{}'>{}</x:note>",
            escape(value.as_str()),
            escape(value.as_str()),
            escape(text.as_str()),
        );
        let body = lockinfo_with_owner(&owner);
        let info = parse_lockinfo(body.as_bytes(), 4096).unwrap();
        let xml = embed(&info.owner.unwrap());
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let note = owner_node(&doc).first_element_child().unwrap();
        prop_assert!(note.has_tag_name(("urn:x", "note")));
        prop_assert_eq!(note.attribute(("urn:x", "v")), Some(value.as_str()));
        prop_assert_eq!(note.attribute("plain"), Some(value.as_str()));
        prop_assert_eq!(note.text().unwrap_or(""), text.as_str());
    }
}
