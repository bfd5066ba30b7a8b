//! The JSON lock API's edges: what it shares with the WebDAV flow (owner limit, owner text a
//! lockdiscovery can carry, the taker's token), and the HTTP and RFC 9457 details of its
//! refusals.

mod common;

use std::sync::Arc;

use axum::body::Body;
use common::*;
use http::{Request, StatusCode};
use tower::Layer;
use tower_locks::{LockLayer, LockStore, MemoryLockStore, Principal};

fn as_user(mut r: Request<Body>, user: Option<&str>) -> Request<Body> {
    if let Some(u) = user {
        r.extensions_mut().insert(Principal::new(u));
    }
    r
}

fn api_req(method: &str, path: &str, user: Option<&str>, body: &str) -> Request<Body> {
    let r = req(method, path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    as_user(r, user)
}

fn json(a: &Answer) -> serde_json::Value {
    serde_json::from_slice(&a.body).unwrap_or(serde_json::Value::Null)
}

/// `Limits::max_owner_bytes` bounds an owner however the lock is taken: a LOCK body's and the
/// lock API's owner (measured as stored, escapes included) are a 413 past it.
#[tokio::test]
async fn the_owner_limit_is_the_lock_bodys() {
    let store = Arc::new(MemoryLockStore::new());
    let layer = LockLayer::new(store.clone());
    let api = layer.lock_api();

    // The WebDAV side refuses a 5 000-byte owner with 413.
    let big = "a".repeat(5_000);
    let body = format!(
        r#"<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>{big}</D:owner></D:lockinfo>"#
    );
    let svc = layer.layer(Kv::default());
    let a = send(
        svc,
        as_user(
            req("LOCK", "/dav").body(Body::from(body)).unwrap(),
            Some("ann"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "WebDAV LOCK");

    // The same through the lock API; and 7 000 quotes, within the limit as sent, are not once
    // stored (escaped).
    let a = send(
        api.clone(),
        api_req(
            "POST",
            "/docs/a",
            Some("ann"),
            &format!(r#"{{"owner": "{big}"}}"#),
        ),
    )
    .await;
    let quotes = "\\\"".repeat(7_000);
    let b = send(
        api,
        api_req(
            "POST",
            "/docs/b",
            Some("ann"),
            &format!(r#"{{"owner": "{quotes}"}}"#),
        ),
    )
    .await;
    let stored: Vec<usize> = store
        .query(&tower_locks::LockQuery::new().subtree(p("/docs")))
        .await
        .unwrap()
        .iter()
        .map(|l| l.owner.as_ref().map_or(0, |o| o.len()))
        .collect();
    assert_eq!(
        (a.status, b.status),
        (StatusCode::PAYLOAD_TOO_LARGE, StatusCode::PAYLOAD_TOO_LARGE),
        "owners stored through the lock API, sizes {stored:?}"
    );
}

/// An owner taken through the lock API is stored as JSON text escaped for XML, with the
/// characters XML 1.0 does not allow (U+FFFE, U+FFFF) as JSON escapes: every
/// `DAV:lockdiscovery` written for the lock (here the answer to a WebDAV refresh) is
/// well-formed.
#[tokio::test]
async fn an_owner_keeps_lockdiscovery_well_formed() {
    let store = Arc::new(MemoryLockStore::new());
    let layer = LockLayer::new(store.clone());
    let api = layer.lock_api();
    let a = send(
        api,
        api_req("POST", "/docs/a", Some("ann"), r#"{"owner": "x\uFFFEy"}"#),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let token = json(&a)["token"].as_str().unwrap().to_owned();

    let svc = layer.layer(Kv::default());
    let refresh = req("LOCK", "/docs/a")
        .header("if", format!("(<{token}>)"))
        .body(Body::empty())
        .unwrap();
    let a = send(svc, as_user(refresh, Some("ann"))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let text = a.text();
    assert!(
        roxmltree::Document::parse(&text).is_ok(),
        "the refresh answer is not well-formed XML: {:?}",
        roxmltree::Document::parse(&text).err()
    );
}

/// A lock taken without a principal is held by whoever shows its token, so its taker gets the
/// token, through the lock API as through a WebDAV LOCK.
#[tokio::test]
async fn an_anonymous_taker_gets_its_token() {
    let store = Arc::new(MemoryLockStore::new());
    let layer = LockLayer::new(store.clone());
    let svc = layer.clone().layer(Kv::default());
    let lock = req("LOCK", "/dav")
        .body(Body::from(LOCKINFO_EXCLUSIVE))
        .unwrap();
    let a = send(svc, lock).await;
    assert!(
        a.headers.contains_key("lock-token"),
        "WebDAV LOCK gives the token"
    );

    let a = send(layer.lock_api(), api_req("POST", "/docs/a", None, "")).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert!(
        json(&a)["token"].is_string(),
        "the anonymous taker got no token: {}",
        a.text()
    );
}

/// RFC 9110 §15.5.6: "The origin server MUST generate an Allow header field in a 405
/// response".
#[tokio::test]
async fn a_405_names_the_allowed_methods() {
    let layer = LockLayer::new(MemoryLockStore::new());
    let a = send(
        layer.lock_api(),
        api_req("PATCH", "/docs/a", Some("ann"), ""),
    )
    .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        a.headers.contains_key("allow"),
        "405 without Allow: {:?}",
        a.headers
    );
}

/// One problem type, one title (RFC 9457 §3.1.3: it "SHOULD NOT change from occurrence to
/// occurrence"): the lock API words the layer's refusals as the layer does.
#[tokio::test]
async fn one_problem_type_has_one_title() {
    let layer = LockLayer::new(MemoryLockStore::new());
    let body = format!(r#"{{"owner": "{}"}}"#, "a".repeat(20_000));
    let a = send(
        layer.lock_api(),
        api_req("POST", "/docs/a", Some("ann"), &body),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    let v = json(&a);
    assert_eq!(v["title"], "Content Too Large", "{v}");
}

/// The lock API counts the time a lock has left on the store's clock: with a store whose
/// clock is far from this host's (an injected one here; a Redis server's may be off too), a
/// 600-second lock taken and then read 100 seconds on has 600, then 500 seconds left.
#[tokio::test]
async fn seconds_left_are_counted_on_the_stores_clock() {
    use std::time::{Duration, UNIX_EPOCH};
    let clock = Arc::new(tower_locks::ManualClock::starting_at(
        UNIX_EPOCH + Duration::from_secs(1_000_000),
    ));
    let store = Arc::new(MemoryLockStore::with_clock(clock.clone()));
    let api = LockLayer::new(store).lock_api();
    let taken = send(
        api.clone(),
        api_req("POST", "/docs/a", Some("ann"), r#"{"timeoutSeconds": 600}"#),
    )
    .await;
    assert_eq!(taken.status, StatusCode::CREATED);
    assert_eq!(json(&taken)["secondsLeft"], 600, "{}", json(&taken));
    clock.advance(Duration::from_secs(100));
    let read = send(api, api_req("GET", "/docs/a", Some("ann"), "")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(
        json(&read)["locks"][0]["secondsLeft"],
        500,
        "{}",
        json(&read)
    );
}
