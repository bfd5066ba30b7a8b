//! `If` header (RFC 4918 §10.4): no panic on any input, and every accepted header obeys the
//! grammar's invariants and survives a render/re-parse round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_locks::{parse_if, ConditionKind, IfHeader, IfLimits, ResourcePath};

fn render(h: &IfHeader) -> String {
    let mut out = String::new();
    for list in &h.lists {
        if let Some(tag) = &list.resource {
            out.push('<');
            out.push_str(tag);
            out.push_str("> ");
        }
        out.push('(');
        for (i, c) in list.conditions.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            if c.not {
                out.push_str("Not ");
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
        out.push_str(") ");
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        // The header-map entry point sees raw bytes too.
        if let Ok(v) = http::HeaderValue::from_bytes(data) {
            let mut map = http::HeaderMap::new();
            map.insert("if", v);
            let _ = parse_if(&map, &IfLimits::default());
        }
        return;
    };
    let limits = IfLimits::default();
    let Ok(h) = IfHeader::parse(s) else {
        return;
    };
    assert!(s.len() <= limits.max_len);
    assert!(!h.lists.is_empty() && h.lists.len() <= limits.max_lists);
    let total: usize = h.lists.iter().map(|l| l.conditions.len()).sum();
    assert!(total <= limits.max_conditions);
    let tagged = h.is_tagged();
    for list in &h.lists {
        assert_eq!(
            list.resource.is_some(),
            tagged,
            "mixed lists accepted: {s:?}"
        );
        assert!(!list.conditions.is_empty());
        if let Some(tag) = &list.resource {
            assert!(!tag.is_empty() && !tag.contains([' ', '\t', '<', '>']));
            // Resolving a tag as a path never panics.
            if tag.starts_with('/') {
                let path = tag.split(['?', '#']).next().unwrap_or("");
                let _ = ResourcePath::parse_limited(path, 4096, 64);
            }
        }
    }
    for t in h.state_tokens() {
        assert!(
            t.contains(':') && !t.contains([' ', '\t', '<', '>']),
            "{t:?}"
        );
    }
    // Round trip: our canonical rendering parses to the same header.
    let rendered = render(&h);
    let again = IfHeader::parse_with_limits(
        &rendered,
        &IfLimits {
            max_len: usize::MAX,
            ..limits
        },
    )
    .unwrap_or_else(|e| panic!("rendering {rendered:?} of {s:?} does not parse: {e}"));
    assert_eq!(again, h, "round trip of {s:?} via {rendered:?}");
    // The HeaderMap entry point agrees with the string parser.
    if let Ok(v) = http::HeaderValue::from_str(s) {
        let mut map = http::HeaderMap::new();
        map.insert("if", v);
        assert_eq!(parse_if(&map, &limits).ok().flatten().as_ref(), Some(&h));
    }
});
