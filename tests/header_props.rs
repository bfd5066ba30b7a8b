//! Property tests for the header parsers: no panics on arbitrary input, `If` round trips,
//! `Timeout` clamping.

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use tower_locks::{
    destination, parse_depth, parse_if, parse_lock_token, parse_overwrite, parse_timeout,
    parse_timeout_headers, Condition, ConditionKind, EntityTag, IfHeader, IfLimits, IfList,
    LockTimeout,
};

fn map_with(name: &'static str, values: &[Vec<u8>]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for v in values {
        if let Ok(value) = HeaderValue::from_bytes(v) {
            map.append(name, value);
        }
    }
    map
}

/// Strings biased towards the characters the grammars care about.
fn grammar_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("(".to_owned()),
            Just(")".to_owned()),
            Just("<".to_owned()),
            Just(">".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just("\"".to_owned()),
            Just("W/".to_owned()),
            Just("Not".to_owned()),
            Just(" ".to_owned()),
            Just("\t".to_owned()),
            Just(",".to_owned()),
            Just("urn:x".to_owned()),
            Just("Second-".to_owned()),
            Just("Infinite".to_owned()),
            Just("\u{e9}".to_owned()),
            "[0-9]{1,30}",
            any::<char>().prop_map(String::from),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    // (1) no parser panics on arbitrary input

    #[test]
    fn if_parse_never_panics(s in any::<String>()) {
        let _ = IfHeader::parse(&s);
    }

    #[test]
    fn if_parse_never_panics_on_grammar_soup(s in grammar_soup()) {
        if let Ok(h) = IfHeader::parse(&s) {
            prop_assert!(!h.lists.is_empty());
            prop_assert!(h.lists.iter().all(|l| !l.conditions.is_empty()));
            let tagged = h.is_tagged();
            prop_assert!(h.lists.iter().all(|l| l.resource.is_some() == tagged));
        }
        let _ = parse_timeout(&s);
        let _ = EntityTag::parse(&s);
    }

    #[test]
    fn if_parse_respects_small_limits(
        (header, rendered) in if_header_and_rendering(),
        max_len in 0usize..128,
        max_lists in 0usize..6,
        max_conditions in 0usize..12,
    ) {
        let limits = IfLimits { max_len, max_lists, max_conditions };
        let lists = header.lists.len();
        let conditions: usize = header.lists.iter().map(|l| l.conditions.len()).sum();
        let within = rendered.len() <= max_len && lists <= max_lists && conditions <= max_conditions;
        match IfHeader::parse_with_limits(&rendered, &limits) {
            Ok(h) => {
                prop_assert!(within, "accepted beyond {:?}: {:?}", limits, rendered);
                prop_assert_eq!(h, header);
            }
            Err(e) => prop_assert!(!within, "refused within {:?}: {:?}: {}", limits, rendered, e),
        }
    }

    #[test]
    fn header_map_parsers_never_panic(values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..3)) {
        let _ = parse_if(&map_with("if", &values), &IfLimits::default());
        let _ = parse_timeout_headers(&map_with("timeout", &values));
        let _ = parse_depth(&map_with("depth", &values));
        let _ = parse_lock_token(&map_with("lock-token", &values));
        let _ = parse_overwrite(&map_with("overwrite", &values));
        let _ = destination(&map_with("destination", &values));
    }

    #[test]
    fn string_parsers_never_panic(s in any::<String>()) {
        let _ = parse_timeout(&s);
        let _ = EntityTag::parse(&s);
    }

    // (2) If round trip

    #[test]
    fn if_round_trip((header, rendered) in if_header_and_rendering()) {
        let parsed = IfHeader::parse(&rendered);
        prop_assert_eq!(parsed.as_ref(), Ok(&header), "rendered: {:?}", rendered);
        let tokens: Vec<&str> = parsed.as_ref().unwrap().state_tokens().collect();
        let expected: Vec<&str> = header
            .lists
            .iter()
            .flat_map(|l| &l.conditions)
            .filter_map(|c| match &c.kind {
                ConditionKind::StateToken(t) => Some(t.as_str()),
                ConditionKind::ETag(_) => None,
            })
            .collect();
        prop_assert_eq!(tokens, expected);
    }

    #[test]
    fn entity_tag_round_trip(weak in any::<bool>(), opaque in "[!#-~]{0,20}") {
        let tag = EntityTag { weak, opaque };
        prop_assert_eq!(EntityTag::parse(&tag.to_string()), Some(tag.clone()));
        prop_assert!(tag.weak_eq(&tag));
        prop_assert_eq!(tag.strong_eq(&tag), !weak);
    }

    // (3) Timeout clamping

    #[test]
    fn timeout_clamps_any_digit_string(digits in "[0-9]{1,200}", case in 0usize..3) {
        let prefix = ["Second-", "second-", "SECOND-"][case];
        let parsed = parse_timeout(&format!("{prefix}{digits}")).unwrap();
        let expected = digits
            .trim_start_matches('0')
            .parse::<u128>()
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .unwrap_or(if digits.bytes().all(|b| b == b'0') { 0 } else { u32::MAX });
        prop_assert_eq!(parsed, vec![LockTimeout::Seconds(expected)]);
    }

    #[test]
    fn timeout_list_keeps_order(items in proptest::collection::vec(prop_oneof![Just(None), any::<u64>().prop_map(Some)], 1..8), sep_ws in "[ \t]{0,2}") {
        let rendered: Vec<String> = items
            .iter()
            .map(|i| match i {
                None => "Infinite".to_owned(),
                Some(n) => format!("Second-{n}"),
            })
            .collect();
        let parsed = parse_timeout(&rendered.join(&format!("{sep_ws},{sep_ws}"))).unwrap();
        let expected: Vec<LockTimeout> = items
            .iter()
            .map(|i| match i {
                None => LockTimeout::Infinite,
                Some(n) => LockTimeout::Seconds(u32::try_from(*n).unwrap_or(u32::MAX)),
            })
            .collect();
        prop_assert_eq!(parsed, expected);
    }
}

// ---- generators for valid If headers ----

fn state_token() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-f0-9]{8}-[a-f0-9]{4}".prop_map(|u| format!("urn:uuid:{u}")),
        "[a-z0-9]{1,12}".prop_map(|u| format!("opaquelocktoken:{u}")),
        Just("DAV:no-lock".to_owned()),
        "[a-zA-Z][a-zA-Z0-9+.-]{0,5}:[!#-;=?-~]{0,15}",
    ]
}

fn entity_tag() -> impl Strategy<Value = EntityTag> {
    (any::<bool>(), "[!#-~ ]{0,12}").prop_map(|(weak, opaque)| EntityTag { weak, opaque })
}

fn condition() -> impl Strategy<Value = Condition> {
    (
        any::<bool>(),
        prop_oneof![
            state_token().prop_map(ConditionKind::StateToken),
            entity_tag().prop_map(ConditionKind::ETag),
        ],
    )
        .prop_map(|(not, kind)| Condition { not, kind })
}

fn resource_tag() -> impl Strategy<Value = String> {
    prop_oneof![
        "/[!#-;=?-~]{0,15}",
        "http://[a-z]{1,8}(:[0-9]{1,4})?/[!#-;=?-~]{0,10}",
    ]
}

/// Groups of lists: `(resource, lists)`; all tagged or all untagged.
fn if_header() -> impl Strategy<Value = Vec<(Option<String>, Vec<Vec<Condition>>)>> {
    let lists = || proptest::collection::vec(proptest::collection::vec(condition(), 1..4), 1..4);
    prop_oneof![
        lists().prop_map(|ls| vec![(None, ls)]),
        proptest::collection::vec((resource_tag().prop_map(Some), lists()), 1..4),
    ]
}

fn ws() -> impl Strategy<Value = String> {
    "[ \t]{0,2}"
}

fn not_word() -> impl Strategy<Value = String> {
    "[nN][oO][tT]"
}

fn if_header_and_rendering() -> impl Strategy<Value = (IfHeader, String)> {
    if_header().prop_flat_map(|groups| {
        let n_conditions: usize = groups.iter().flat_map(|(_, ls)| ls).map(Vec::len).sum();
        let n_lists: usize = groups.iter().map(|(_, ls)| ls.len()).sum();
        // whitespace slots: before each tag/list, inside each list start/end, before each
        // condition, after each Not; plus a trailing slot.
        let slots = groups.len() + 3 * n_lists + 2 * n_conditions + 1;
        (
            Just(groups),
            proptest::collection::vec(ws(), slots),
            proptest::collection::vec(not_word(), n_conditions.max(1)),
        )
            .prop_map(|(groups, spaces, nots)| render(groups, &spaces, &nots))
    })
}

fn render(
    groups: Vec<(Option<String>, Vec<Vec<Condition>>)>,
    spaces: &[String],
    nots: &[String],
) -> (IfHeader, String) {
    let mut sp = spaces.iter();
    let mut next_ws = || sp.next().cloned().unwrap_or_default();
    let mut nots = nots.iter();
    let mut out = String::new();
    let mut lists = Vec::new();
    for (resource, group) in groups {
        if let Some(r) = &resource {
            out.push_str(&next_ws());
            out.push('<');
            out.push_str(r);
            out.push('>');
        }
        for conditions in group {
            out.push_str(&next_ws());
            out.push('(');
            out.push_str(&next_ws());
            for c in &conditions {
                out.push_str(&next_ws());
                if c.not {
                    out.push_str(nots.next().map(String::as_str).unwrap_or("Not"));
                    out.push_str(&next_ws());
                }
                match &c.kind {
                    ConditionKind::StateToken(t) => {
                        out.push('<');
                        out.push_str(t);
                        out.push('>');
                    }
                    ConditionKind::ETag(e) => {
                        out.push('[');
                        out.push_str(&e.to_string());
                        out.push(']');
                    }
                }
            }
            out.push_str(&next_ws());
            out.push(')');
            lists.push(IfList {
                resource: resource.clone(),
                conditions,
            });
        }
    }
    out.push_str(&next_ws());
    (IfHeader { lists }, out)
}

#[test]
fn round_trip_renderer_is_exercised() {
    // A fixed case, so a broken renderer cannot make the property vacuous.
    let groups = vec![(
        Some("/a".to_owned()),
        vec![vec![Condition {
            not: true,
            kind: ConditionKind::StateToken("urn:x".to_owned()),
        }]],
    )];
    let (header, rendered) = render(groups, &vec![" ".to_owned(); 8], &["nOT".to_owned()]);
    assert_eq!(rendered, " </a> (  nOT <urn:x> ) ");
    assert_eq!(IfHeader::parse(&rendered), Ok(header));
}
