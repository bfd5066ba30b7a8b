//! The JSON lock API's edges: what it shares with the WebDAV flow (owner limit, owner text a
//! lockdiscovery can carry, the taker's token), and the HTTP and RFC 9457 details of its
//! refusals.

mod common;

use std::sync::Arc;

use axum::body::Body;
use common::*;
use http::{Request, StatusCode};
use tower::Layer;
use tower_locks::{Disclosure, LockLayer, LockStore, ManualClock, MemoryLockStore, Principal};

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
/// response"; it names HEAD with GET.
#[tokio::test]
async fn a_405_names_the_allowed_methods() {
    let layer = LockLayer::new(MemoryLockStore::new());
    let a = send(
        layer.lock_api(),
        api_req("PATCH", "/docs/a", Some("ann"), ""),
    )
    .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        a.headers.get("allow").map(|v| v.to_str().unwrap()),
        Some("POST, GET, HEAD, PUT, DELETE"),
        "{:?}",
        a.headers
    );
}

/// RFC 9110 §9.3.2: HEAD is GET without the content: the same status and headers (the length
/// the GET's body has), an empty body; for a read, a list and a refusal alike.
#[tokio::test]
async fn head_is_get_without_the_body() {
    let api = LockLayer::new(MemoryLockStore::new()).lock_api();
    let a = send(api.clone(), api_req("POST", "/docs/a", Some("ann"), "")).await;
    assert_eq!(a.status, StatusCode::CREATED);
    for path in ["/docs/a", "/docs/?list", "/docs/a?list=0"] {
        let get = send(api.clone(), api_req("GET", path, Some("ann"), "")).await;
        let head = send(api.clone(), api_req("HEAD", path, Some("ann"), "")).await;
        assert_eq!(head.status, get.status, "{path}: {}", head.text());
        assert!(head.body.is_empty(), "{path}: {}", head.text());
        for name in ["content-type", "cache-control"] {
            assert_eq!(
                head.headers.get(name),
                get.headers.get(name),
                "{path}: {name}"
            );
        }
        let length = head
            .headers
            .get("content-length")
            .map(|v| v.to_str().unwrap());
        assert_eq!(length, Some(get.body.len().to_string().as_str()), "{path}");
    }
}

/// `Retry-After` and `secondsLeft` are rounded up: with 9.5 s left, a client that waits as
/// long as `Retry-After` says finds the lock gone, and the read before says 10 s left, not 9.
#[tokio::test]
async fn retry_after_and_seconds_left_round_up() {
    use std::time::{Duration, UNIX_EPOCH};
    let clock = Arc::new(ManualClock::starting_at(
        UNIX_EPOCH + Duration::from_secs(1_000_000),
    ));
    let store = Arc::new(MemoryLockStore::with_clock(clock.clone()));
    let api = LockLayer::new(store).lock_api();
    let ten = r#"{"timeoutSeconds": 10}"#;
    let a = send(api.clone(), api_req("POST", "/doc", Some("ann"), ten)).await;
    assert_eq!(a.status, StatusCode::CREATED);

    clock.advance(Duration::from_millis(500));
    let a = send(api.clone(), api_req("POST", "/doc", Some("bob"), "")).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(a.headers["retry-after"], "10");
    let read = send(api.clone(), api_req("GET", "/doc", Some("bob"), "")).await;
    assert_eq!(
        json(&read)["locks"][0]["secondsLeft"],
        10,
        "{}",
        json(&read)
    );

    clock.advance(Duration::from_secs(10));
    let again = send(api.clone(), api_req("POST", "/doc", Some("bob"), "")).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text());
}

/// With `Disclosure::Related`, a conflict with a lock the requester may not know about names
/// neither its root, nor its holder, nor its expiry, and `Retry-After` does not tell the
/// expiry either: there is none. A conflict with a shown lock has one.
#[tokio::test]
async fn retry_after_comes_from_the_shown_conflicts_only() {
    let api = LockLayer::new(MemoryLockStore::new())
        .disclose_lock_roots(Disclosure::Related)
        .lock_api();
    let secret = r#"{"timeoutSeconds": 4321}"#;
    let a = send(
        api.clone(),
        api_req("POST", "/home/alice/secret", Some("alice"), secret),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let deep = r#"{"depth": "infinity"}"#;
    let a = send(api.clone(), api_req("POST", "/home", Some("bob"), deep)).await;
    assert_eq!(a.status, StatusCode::LOCKED, "{}", a.text());
    let v = json(&a);
    assert_eq!(
        (&v["lockRoots"], &v["holders"], &v["otherLocks"]),
        (
            &serde_json::json!([]),
            &serde_json::json!([]),
            &serde_json::json!(1)
        ),
        "{v}"
    );
    assert_eq!(a.headers.get("retry-after"), None);

    let a = send(
        api.clone(),
        api_req("POST", "/home/alice/secret", Some("bob"), ""),
    )
    .await;
    assert_eq!(a.status, StatusCode::LOCKED, "{}", a.text());
    assert_eq!(a.headers["retry-after"], "4321");
}

/// A browser sends a form, `text/plain` or a body without Content-Type cross-site without a
/// CORS preflight, with the user's cookies: the lock API reads JSON declared as JSON only, so
/// such a request (415) takes over no lock; `application/json` and `application/*+json` with
/// parameters are JSON, and an empty body needs no Content-Type (`curl -X POST`).
#[tokio::test]
async fn a_body_not_declared_json_is_a_415() {
    struct Anybody;
    impl tower_locks::LockPolicy for Anybody {
        fn may_break(&self, _: &http::request::Parts, _: &tower_locks::Lock) -> bool {
            true
        }
    }
    let store = Arc::new(MemoryLockStore::new());
    let api = LockLayer::new(store.clone())
        .lock_api()
        .with_policy(Anybody);
    let a = send(api.clone(), api_req("POST", "/doc", Some("bob"), "")).await;
    let bobs = json(&a)["token"].as_str().unwrap().to_owned();
    let deep = r#"{"depth": "infinity"}"#;
    for (content_type, body) in [
        (Some("text/plain"), deep),
        (Some("application/x-www-form-urlencoded"), ""),
        (Some("multipart/form-data; boundary=x"), ""),
        (Some("application/jsonx"), deep),
        (Some("application/+json"), deep),
        (None, deep),
    ] {
        let mut r = req("POST", "/doc?takeover");
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        let r = as_user(r.body(Body::from(body)).unwrap(), Some("admin"));
        let a = send(api.clone(), r).await;
        assert_eq!(
            a.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_eq!(a.headers["content-type"], "application/problem+json");
    }
    assert!(
        store.get(&bobs).await.unwrap().is_some(),
        "bob's lock was taken over"
    );

    for (i, content_type) in [
        Some("application/json; charset=utf-8"),
        Some("Application/Merge-Patch+JSON"),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = req("POST", &format!("/docs/{i}"));
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        let body = if content_type.is_some() { deep } else { "" };
        let a = send(
            api.clone(),
            as_user(r.body(Body::from(body)).unwrap(), Some("ann")),
        )
        .await;
        assert_eq!(
            a.status,
            StatusCode::CREATED,
            "{content_type:?}: {}",
            a.text()
        );
    }
}

/// A request a browser marks as another site's (`Sec-Fetch-Site: cross-site`) changes no
/// lock (403 `cross-site`): neither acquire, refresh, release nor break. It may read; and a
/// same-site or same-origin request, or one a user made (`none`), may change locks.
#[tokio::test]
async fn a_cross_site_request_changes_no_lock() {
    let store = Arc::new(MemoryLockStore::new());
    let api = LockLayer::new(store.clone()).lock_api();
    let a = send(api.clone(), api_req("POST", "/doc", Some("ann"), "")).await;
    let token = json(&a)["token"].as_str().unwrap().to_owned();
    let lt = format!("<{token}>");
    let cross = |method: &str, path: &str| {
        let r = req(method, path)
            .header("sec-fetch-site", "cross-site")
            .header("lock-token", &lt)
            .body(Body::empty())
            .unwrap();
        as_user(r, Some("ann"))
    };
    for (method, path) in [
        ("POST", "/other"),
        ("PUT", "/doc"),
        ("DELETE", "/doc"),
        ("DELETE", "/doc?break"),
    ] {
        let a = send(api.clone(), cross(method, path)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert!(json(&a)["type"].as_str().unwrap().ends_with("#cross-site"));
    }
    assert!(store.get(&token).await.unwrap().is_some());
    let a = send(api.clone(), cross("GET", "/doc")).await;
    assert_eq!(a.status, StatusCode::OK);
    for (i, site) in ["same-origin", "same-site", "none"].into_iter().enumerate() {
        let r = req("POST", &format!("/docs/{i}"))
            .header("sec-fetch-site", site)
            .body(Body::empty())
            .unwrap();
        let a = send(api.clone(), as_user(r, Some("ann"))).await;
        assert_eq!(a.status, StatusCode::CREATED, "{site}");
    }
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
