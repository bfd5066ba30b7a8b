//! Regression tests for what the fuzz targets (`fuzz/`) found. Each test names its target
//! and the minimised input.

mod common;

use common::*;
use http::StatusCode;
use tower_locks::{LockDepth, ResourcePath};

/// fuzz target `path`: `/docs/~ann/repo'rt` and `/%64…/repo%27rt` (every byte escaped) were two
/// resources to the layer, but one file to any backend that percent-decodes its paths (the
/// WebDAV example, axum, most file servers): a write through the escaped spelling of a
/// sub-delim bypassed the lock on the raw spelling.
#[test]
fn escaped_sub_delims_are_the_same_resource() {
    let p = |s: &str| ResourcePath::parse(s).unwrap();
    for (raw, escaped) in [
        ("/repo'rt", "/repo%27rt"),
        ("/a!b", "/a%21b"),
        ("/a$b", "/a%24b"),
        ("/a&b", "/a%26b"),
        ("/a(b)", "/a%28b%29"),
        ("/a*b", "/a%2ab"),
        ("/a+b", "/a%2Bb"),
        ("/a,b", "/a%2Cb"),
        ("/a;b", "/a%3bb"),
        ("/a=b", "/a%3Db"),
        ("/a:b", "/a%3Ab"),
        ("/a@b", "/a%40b"),
    ] {
        assert_eq!(p(raw), p(escaped), "{raw} vs {escaped}");
        assert_eq!(p(escaped).as_str(), raw);
    }
    // Gen-delims other than ':' and '@' keep their escapes: decoding would change the URI.
    for kept in ["/a%2Fb", "/a%3Fb", "/a%23b", "/a%5Bb%5D", "/a%25b"] {
        assert_eq!(p(kept).as_str(), kept);
    }
    assert_eq!(p("/a%2Fb").depth(), 1);
}

#[tokio::test]
async fn lock_on_raw_sub_delim_blocks_the_escaped_spelling() {
    let (store, kv, svc) = setup(&["/repo'rt", "/a@b"]);
    xlock(&*store, "/repo'rt", LockDepth::Zero).await;
    xlock(&*store, "/a%40b", LockDepth::Zero).await;
    for path in ["/repo%27rt", "/repo'rt", "/a@b", "/a%40b"] {
        let res = send(svc.clone(), empty(req("PUT", path))).await;
        assert_eq!(res.status, StatusCode::LOCKED, "PUT {path}");
    }
    assert!(kv.forwarded().iter().all(|s| s.method != "PUT"));
}

/// fuzz target `path`: `parse_limited` refused `///////a` with `TooLong(2)` although its
/// canonical form `/a` is 2 bytes long: an early "3x the limit" check on the raw input assumed
/// input can shrink at most 3x, but collapsed slashes shrink it without bound.
#[test]
fn limits_measure_the_canonical_form() {
    let raw = format!("{}a", "/".repeat(100));
    assert_eq!(
        ResourcePath::parse_limited(&raw, 2, 1).map(|p| p.as_str().to_owned()),
        Ok("/a".to_owned())
    );
    assert!(ResourcePath::parse_limited(&format!("{raw}bc"), 2, 1).is_err());
}

/// fuzz target `path`: `parse_limited("/", 0, _)` returned the root, whose key is 1 byte.
#[test]
fn the_root_is_measured_too() {
    assert_eq!(
        ResourcePath::parse_limited("/", 0, 0),
        Err(tower_locks::PathError::TooLong(0))
    );
    assert_eq!(
        ResourcePath::parse_limited("//", 1, 0),
        Ok(ResourcePath::root())
    );
}

/// Found by the `lockinfo` target: namespace declarations were limited per body, so an owner
/// whose many children each got the declaration they inherit could not be read back. The
/// limit is on the declarations in scope at once (what a prefix lookup scans); declarations
/// on siblings do not add up.
#[test]
fn declarations_on_siblings_do_not_add_up() {
    use tower_locks::dav::parse_lockinfo;
    let children: String = (0..100)
        .map(|i| format!(r#"<a xmlns="DAV:">{i}</a>"#))
        .collect();
    let body = format!(
        "<lockinfo xmlns='DAV:'><lockscope><exclusive/></lockscope><locktype><write/></locktype>\
         <owner>{children}</owner></lockinfo>"
    );
    let owner = parse_lockinfo(body.as_bytes(), 64 * 1024)
        .unwrap()
        .owner
        .unwrap();
    let wrapped = format!(
        "<X:lockinfo xmlns:X=\"DAV:\"><X:lockscope><X:shared/></X:lockscope>\
         <X:locktype><X:write/></X:locktype><X:owner>{owner}</X:owner></X:lockinfo>"
    );
    let again = parse_lockinfo(wrapped.as_bytes(), 64 * 1024).unwrap();
    assert_eq!(again.owner.as_deref(), Some(owner.as_str()));
    // Nested, they do: the scan a prefix lookup makes stays bounded.
    let nested: String = (0..40)
        .map(|i| format!(r#"<a xmlns:p{i}="urn:{i}">"#))
        .collect::<String>()
        + &"</a>".repeat(40);
    let body = format!(
        "<lockinfo xmlns='DAV:'><lockscope><exclusive/></lockscope><locktype><write/></locktype>\
         <owner>{nested}</owner></lockinfo>"
    );
    assert!(parse_lockinfo(body.as_bytes(), 64 * 1024).is_err());
}
