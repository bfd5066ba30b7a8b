//! LOCK (create, refresh), UNLOCK and discovery answered by the layer (RFC 4918 §9.10, §9.11).

#[path = "common/adjusted.rs"]
mod adjusted;
mod common;

use std::sync::Arc;
use std::time::Duration;

use adjusted::Adjusted;

use axum::body::Body;
use common::*;
use http::StatusCode;
use tower::Layer;
use tower_locks::{
    LockDepth, LockLayer, LockQuery, LockScope, LockStore, LockTimeout, MemoryLockStore, Principal,
    Rejection,
};

/// A body of one chunk that declares no length (as `Transfer-Encoding: chunked` arrives).
struct Undeclared(Option<bytes::Bytes>);

impl http_body::Body for Undeclared {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.take().map(|b| Ok(http_body::Frame::data(b))))
    }
}

fn lock_req(path: &str, depth: Option<&str>, body: &str) -> http::Request<Body> {
    let mut b = req("LOCK", path).header("content-type", "application/xml");
    if let Some(d) = depth {
        b = b.header("depth", d);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

/// The activelock elements of a LOCK answer, parsed.
struct Active {
    scope: String,
    depth: String,
    timeout: String,
    token: String,
    root: String,
    owner_href: Option<String>,
}

fn dav<'a, 'i>(n: &roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.descendants().find(|c| {
        c.is_element() && c.tag_name().namespace() == Some("DAV:") && c.tag_name().name() == name
    })
}

fn activelock(a: &Answer) -> Active {
    let text = a.text();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let root = doc.root_element();
    assert_eq!(
        (root.tag_name().namespace(), root.tag_name().name()),
        (Some("DAV:"), "prop"),
        "{text}"
    );
    let al = dav(&root, "activelock").expect("activelock");
    let scope = dav(&al, "lockscope")
        .unwrap()
        .children()
        .find(|c| c.is_element())
        .unwrap()
        .tag_name()
        .name()
        .to_owned();
    let text_of = |name: &str| {
        dav(&al, name)
            .and_then(|n| n.text())
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let owner = dav(&al, "owner");
    Active {
        scope,
        depth: text_of("depth"),
        timeout: text_of("timeout"),
        token: dav(&dav(&al, "locktoken").unwrap(), "href")
            .unwrap()
            .text()
            .unwrap()
            .to_owned(),
        root: dav(&dav(&al, "lockroot").unwrap(), "href")
            .unwrap()
            .text()
            .unwrap()
            .to_owned(),
        owner_href: owner
            .and_then(|o| dav(&o, "href"))
            .and_then(|h| h.text())
            .map(str::to_owned),
    }
}

#[tokio::test]
async fn lock_create_answers_with_lockdiscovery_and_lock_token() {
    let (store, _kv, svc) = setup(&["/doc"]);
    let a = send(svc, lock_req("/doc", Some("0"), LOCKINFO_EXCLUSIVE)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(
        a.headers["content-type"],
        "application/xml; charset=\"utf-8\""
    );
    assert_eq!(a.headers["cache-control"], "no-store");
    let header = a.headers["lock-token"].to_str().unwrap().to_owned();
    let al = activelock(&a);
    assert_eq!(header, format!("<{}>", al.token));
    assert!(al.token.starts_with("urn:uuid:"));
    assert_eq!(al.scope, "exclusive");
    assert_eq!(al.depth, "0");
    assert_eq!(al.timeout, "Second-600");
    assert_eq!(al.root, "/doc");
    assert_eq!(al.owner_href.as_deref(), Some("mailto:ann@example.com"));
    let stored = store.get(&al.token).await.unwrap().expect("stored");
    assert_eq!(stored.depth, LockDepth::Zero);
    assert!(stored.owner.unwrap().contains("mailto:ann@example.com"));
}

#[tokio::test]
async fn lock_on_unmapped_url_creates_an_empty_resource_201() {
    let (store, kv, svc) = setup(&[]);
    let a = send(svc.clone(), lock_req("/new", Some("0"), LOCKINFO_EXCLUSIVE)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    assert!(kv.exists("/new"));
    assert_eq!(kv.files.lock().unwrap()["/new"].0.len(), 0);
    let put = kv
        .all_seen()
        .into_iter()
        .find(|s| s.method == "PUT")
        .unwrap();
    assert!(put.sub_request);
    // If-Match: * forbids creating it
    let mut r = lock_req("/other", Some("0"), LOCKINFO_EXCLUSIVE);
    r.headers_mut().insert("if-match", "*".parse().unwrap());
    let a = send(svc.clone(), r).await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED);
    assert!(!kv.exists("/other"));
    // creation failure rolls the lock back: missing parent → the space's 409 is passed on
    *kv.force_status.lock().unwrap() = None;
    let kv2 = Kv::default();
    // A resource space that cannot create anything (409: no parent collection).
    let refusing = tower::service_fn(move |r: http::Request<tower_locks::EmptyBody>| {
        let mut kv2 = kv2.clone();
        async move {
            if r.method() == "PUT" {
                let mut res = http::Response::new(Body::empty());
                *res.status_mut() = StatusCode::CONFLICT;
                return Ok::<_, std::convert::Infallible>(res);
            }
            tower::Service::call(&mut kv2, r).await
        }
    });
    let svc2 = LockLayer::new(store.clone())
        .resource_space(refusing)
        .layer(Kv::default());
    let a = send(svc2, lock_req("/nodir/x", Some("0"), LOCKINFO_EXCLUSIVE)).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(store
        .query(&LockQuery::new().covering(p("/nodir/x")))
        .await
        .unwrap()
        .is_empty());
}

/// A LOCK is answered by the layer, so it evaluates `If-Match` and `If-None-Match` itself
/// (RFC 9110 §13.1.1-2) against what the resource space says, and holds neither when nothing
/// can tell (D13): a LOCK never creates a resource `If-Match` says must exist.
#[tokio::test]
async fn lock_evaluates_if_match_and_if_none_match() {
    let (_, kv, svc) = setup(&["/a"]);
    let etag = kv.etag("/a").unwrap();
    let with = |path: &str, header: &str, value: &str| {
        let mut r = lock_req(path, Some("0"), LOCKINFO_SHARED);
        r.headers_mut().insert(
            http::HeaderName::from_bytes(header.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        r
    };
    let cases = [
        (
            "/a",
            "if-match",
            "\"nope\"",
            StatusCode::PRECONDITION_FAILED,
        ),
        ("/a", "if-match", etag.as_str(), StatusCode::OK),
        ("/a", "if-match", "*", StatusCode::OK),
        ("/a", "if-none-match", "*", StatusCode::PRECONDITION_FAILED),
        (
            "/a",
            "if-none-match",
            etag.as_str(),
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            "/a",
            "if-none-match",
            "\"nope\", W/\"other\"",
            StatusCode::OK,
        ),
        ("/new", "if-none-match", "*", StatusCode::CREATED),
        ("/other", "if-match", "*", StatusCode::PRECONDITION_FAILED),
        ("/a", "if-match", "nope", StatusCode::BAD_REQUEST),
    ];
    for (path, header, value, status) in cases {
        let a = send(svc.clone(), with(path, header, value)).await;
        assert_eq!(
            a.status,
            status,
            "LOCK {path} {header}: {value}: {}",
            a.text()
        );
    }
    assert!(!kv.exists("/other"));

    // A resource space that cannot tell whether anything exists (HEAD is refused): neither
    // header holds, and nothing is created.
    let store = Arc::new(MemoryLockStore::new());
    let blind = Kv::default();
    let refusing = tower::service_fn({
        let blind = blind.clone();
        move |r: http::Request<tower_locks::EmptyBody>| {
            let mut blind = blind.clone();
            async move {
                if r.method() == "HEAD" {
                    let mut res = http::Response::new(Body::empty());
                    *res.status_mut() = StatusCode::FORBIDDEN;
                    return Ok::<_, std::convert::Infallible>(res);
                }
                tower::Service::call(&mut blind, r).await
            }
        }
    });
    let svc = LockLayer::new(store)
        .resource_space(refusing)
        .layer(Kv::default());
    for header in ["if-match", "if-none-match"] {
        let a = send(svc.clone(), with("/doc", header, "*")).await;
        assert_eq!(a.status, StatusCode::PRECONDITION_FAILED, "{header}: *");
    }
    assert!(
        !blind.exists("/doc"),
        "a LOCK created what If-Match said must exist"
    );
    // Nor does a plain LOCK: a resource nobody could tell about may exist, and the space's
    // PUT could empty it. The URL is locked, nothing more.
    let a = send(svc.clone(), lock_req("/doc", Some("0"), LOCKINFO_SHARED)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert!(!blind.exists("/doc"));
}

/// The timeout a LOCK or a refresh answers is the one granted, read off the store's clock: an
/// app host whose clock differs from the store's (Redis judges expiry by its own) does not
/// show a fresh lock as nearly expired.
#[tokio::test]
async fn the_granted_timeout_is_answered_whatever_the_host_clock() {
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let clock = Arc::new(tower_locks::ManualClock::starting_at(hour_ago));
    let store = Arc::new(MemoryLockStore::with_clock(clock));
    let kv = Kv::default();
    let svc = LockLayer::new(store).resource_space(kv.clone()).layer(kv);
    let mut r = lock_req("/doc", Some("0"), LOCKINFO_EXCLUSIVE);
    r.headers_mut()
        .insert("timeout", "Second-600".parse().unwrap());
    let a = send(svc.clone(), r).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let al = activelock(&a);
    assert_eq!(al.timeout, "Second-600");
    let mut refresh = empty(req("LOCK", "/doc").header("if", format!("(<{}>)", al.token)));
    refresh
        .headers_mut()
        .insert("timeout", "Second-300".parse().unwrap());
    let a = send(svc, refresh).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(activelock(&a).timeout, "Second-300");
}

#[tokio::test]
async fn conflicts_423_on_the_target_207_for_descendants() {
    let (store, kv, svc) = setup(&["/c/", "/c/a", "/c/b/deep"]);
    xlock(&*store, "/c/a", LockDepth::Zero).await;
    let a = send(svc.clone(), lock_req("/c/a", Some("0"), LOCKINFO_EXCLUSIVE)).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(a.error_hrefs("no-conflicting-lock"), ["/c/a"]);
    // a depth-infinity lock on /c/ blocked by a lock below: 207, member 423, request URI 424
    let a = send(svc.clone(), lock_req("/c/", None, LOCKINFO_EXCLUSIVE)).await;
    assert_eq!(a.status, StatusCode::MULTI_STATUS, "{}", a.text());
    let text = a.text();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let mut statuses: Vec<(String, String)> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "response" && n.tag_name().namespace() == Some("DAV:"))
        .map(|r| {
            let get = |name: &str| {
                r.children()
                    .find(|c| c.tag_name().name() == name)
                    .and_then(|c| c.text())
                    .unwrap()
                    .to_owned()
            };
            (get("href"), get("status"))
        })
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [
            (
                "/c/".to_owned(),
                "HTTP/1.1 424 Failed Dependency".to_owned()
            ),
            ("/c/a".to_owned(), "HTTP/1.1 423 Locked".to_owned())
        ]
    );
    // depth 0 on the collection is fine
    let a = send(svc.clone(), lock_req("/c/", Some("0"), LOCKINFO_EXCLUSIVE)).await;
    assert_eq!(a.status, StatusCode::OK);
    // shared + shared coexist, exclusive does not
    let a = send(
        svc.clone(),
        lock_req("/c/b/deep", Some("0"), LOCKINFO_SHARED),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = send(
        svc.clone(),
        lock_req("/c/b/deep", Some("0"), LOCKINFO_SHARED),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = send(svc, lock_req("/c/b/deep", Some("0"), LOCKINFO_EXCLUSIVE)).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert!(kv.forwarded().is_empty(), "LOCK is never forwarded");
}

#[tokio::test]
async fn lock_request_validation() {
    let (_store, kv, svc) = setup(&["/d"]);
    let a = send(svc.clone(), lock_req("/d", Some("1"), LOCKINFO_EXCLUSIVE)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = send(svc.clone(), lock_req("/d", Some("2"), LOCKINFO_EXCLUSIVE)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = send(
        svc.clone(),
        lock_req("/d", Some("0"), "<D:lockinfo xmlns:D='DAV:'><unclosed>"),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>&lol2;</D:owner></D:lockinfo>"#;
    let a = send(svc.clone(), lock_req("/d", Some("0"), bomb)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.error_hrefs("no-external-entities"), Vec::<String>::new());
    let big = format!(
        "<D:lockinfo xmlns:D='DAV:'><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>{}</D:owner></D:lockinfo>",
        "x".repeat(70 * 1024)
    );
    let a = send(svc.clone(), lock_req("/d", Some("0"), &big)).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = req("LOCK", "/d")
        .header("timeout", "Fortnight-2")
        .body(Body::from(LOCKINFO_EXCLUSIVE))
        .unwrap();
    assert_eq!(send(svc.clone(), r).await.status, StatusCode::BAD_REQUEST);
    // no body and no If: not a refresh
    assert_eq!(
        send(svc, empty(req("LOCK", "/d"))).await.status,
        StatusCode::BAD_REQUEST
    );
    assert!(kv.forwarded().is_empty());
}

#[tokio::test]
async fn timeout_policy_is_applied() {
    let store = Arc::new(MemoryLockStore::new());
    let svc = LockLayer::new(store.clone())
        .lock_timeouts(
            Duration::from_secs(120),
            Duration::from_secs(60),
            Duration::from_secs(3600),
        )
        .layer(Kv::with_files(&["/a", "/b", "/c", "/d"]));
    let with_timeout = |path: &str, t: Option<&str>| {
        let mut b = req("LOCK", path).header("depth", "0");
        if let Some(t) = t {
            b = b.header("timeout", t);
        }
        b.body(Body::from(LOCKINFO_EXCLUSIVE)).unwrap()
    };
    for (path, asked, granted) in [
        ("/a", None, "Second-120"),
        ("/b", Some("Second-5"), "Second-60"),
        ("/c", Some("Infinite, Second-4100000000"), "Second-3600"),
        ("/d", Some("Second-99999999999999999999"), "Second-3600"),
    ] {
        let a = send(svc.clone(), with_timeout(path, asked)).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert_eq!(activelock(&a).timeout, granted, "{path} {asked:?}");
    }
    let lock = store
        .query(&LockQuery::new().covering(p("/c")))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(lock.timeout, LockTimeout::Seconds(3600));
}

#[tokio::test]
async fn refresh_through_member_url_resets_the_timer_without_lock_token_header() {
    let clock = Arc::new(tower_locks::ManualClock::new());
    let store = Arc::new(MemoryLockStore::with_clock(clock.clone()));
    let svc = LockLayer::new(store.clone()).layer(Kv::with_files(&["/coll/", "/coll/m", "/other"]));
    let a = send(
        svc.clone(),
        lock_req("/coll/", Some("infinity"), LOCKINFO_EXCLUSIVE),
    )
    .await;
    let token = activelock(&a).token;
    assert_eq!(activelock(&a).depth, "infinity");
    clock.advance(Duration::from_secs(500));
    let r = req("LOCK", "/coll/m")
        .header("if", format!("(<{token}>)"))
        .header("timeout", "Second-300");
    let a = send(svc.clone(), empty(r)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert!(a.headers.get("lock-token").is_none());
    let al = activelock(&a);
    assert_eq!(al.token, token);
    assert_eq!(al.root, "/coll/");
    assert_eq!(
        store.get(&token).await.unwrap().unwrap().timeout,
        LockTimeout::Seconds(300)
    );
    clock.advance(Duration::from_secs(299));
    assert!(
        store.get(&token).await.unwrap().is_some(),
        "the refresh restarted the timer"
    );
    // a URL outside the lock's scope, or an unknown token: 412 lock-token-matches-request-uri
    let r = req("LOCK", "/other").header("if", format!("(<{token}>)"));
    let a = send(svc.clone(), empty(r)).await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED);
    a.error_hrefs("lock-token-matches-request-uri");
    let r = req("LOCK", "/coll/").header("if", "(<urn:uuid:00000000-0000-4000-8000-000000000000>)");
    assert_eq!(
        send(svc.clone(), empty(r)).await.status,
        StatusCode::PRECONDITION_FAILED
    );
    // two tokens: 400
    let r = req("LOCK", "/coll/").header("if", format!("(<{token}>) (<urn:x:y>)"));
    assert_eq!(send(svc, empty(r)).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn writes_with_the_token_never_extend_a_lock() {
    let clock = Arc::new(tower_locks::ManualClock::new());
    let store = Arc::new(MemoryLockStore::with_clock(clock.clone()));
    let svc = LockLayer::new(store.clone()).layer(Kv::with_files(&["/a"]));
    let r = req("LOCK", "/a")
        .header("timeout", "Second-100")
        .body(Body::from(LOCKINFO_EXCLUSIVE))
        .unwrap();
    let token = activelock(&send(svc.clone(), r).await).token;
    clock.advance(Duration::from_secs(90));
    let put = req("PUT", "/a").header("if", format!("(<{token}>)"));
    assert_eq!(
        send(svc.clone(), empty(put)).await.status,
        StatusCode::NO_CONTENT
    );
    clock.advance(Duration::from_secs(11));
    assert!(store.get(&token).await.unwrap().is_none());
}

#[tokio::test]
async fn unlock_rules() {
    let (_store, _kv, svc) = setup(&["/coll/", "/coll/m", "/x"]);
    let mut r = lock_req("/coll/", Some("infinity"), LOCKINFO_EXCLUSIVE);
    r.extensions_mut().insert(Principal::new("alice"));
    let token = activelock(&send(svc.clone(), r).await).token;
    // missing or malformed Lock-Token: 400
    assert_eq!(
        send(svc.clone(), empty(req("UNLOCK", "/coll/")))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let bad = req("UNLOCK", "/coll/").header("lock-token", "<not a uri>");
    assert_eq!(
        send(svc.clone(), empty(bad)).await.status,
        StatusCode::BAD_REQUEST
    );
    // another principal: 403
    let mut bob = empty(req("UNLOCK", "/coll/").header("lock-token", format!("<{token}>")));
    bob.extensions_mut().insert(Principal::new("bob"));
    assert_eq!(send(svc.clone(), bob).await.status, StatusCode::FORBIDDEN);
    // outside the scope: 409 lock-token-matches-request-uri
    let mut out = empty(req("UNLOCK", "/x").header("lock-token", format!("<{token}>")));
    out.extensions_mut().insert(Principal::new("alice"));
    let a = send(svc.clone(), out).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    a.error_hrefs("lock-token-matches-request-uri");
    // a body: 415
    let mut body = req("UNLOCK", "/coll/")
        .header("lock-token", format!("<{token}>"))
        .body(Body::from("x"))
        .unwrap();
    body.extensions_mut().insert(Principal::new("alice"));
    assert_eq!(
        send(svc.clone(), body).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // ... also a chunked one, whose length nobody declared
    let mut chunked = req("UNLOCK", "/coll/")
        .header("lock-token", format!("<{token}>"))
        .body(Body::new(Undeclared(Some(bytes::Bytes::from("<x/>")))))
        .unwrap();
    chunked.extensions_mut().insert(Principal::new("alice"));
    assert_eq!(
        send(svc.clone(), chunked).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // through a member URL, bracket-less (Windows): 204
    let mut ok = empty(req("UNLOCK", "/coll/m").header("lock-token", token.clone()));
    ok.extensions_mut().insert(Principal::new("alice"));
    let a = send(svc.clone(), ok).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    // gone now: 409
    let mut again = empty(req("UNLOCK", "/coll/").header("lock-token", format!("<{token}>")));
    again.extensions_mut().insert(Principal::new("alice"));
    assert_eq!(send(svc, again).await.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn administrators_may_break_locks_when_allowed() {
    let store = Arc::new(MemoryLockStore::new());
    let l = lock(
        &*store,
        "/a",
        LockScope::Exclusive,
        LockDepth::Zero,
        Some("alice"),
    )
    .await;
    let svc = LockLayer::new(store.clone())
        .allow_unlock_override(|p| {
            p.extensions
                .get::<Principal>()
                .is_some_and(|u| u.as_str() == "root")
        })
        .layer(Kv::with_files(&["/a"]));
    let mut r = empty(req("UNLOCK", "/a").header("lock-token", format!("<{}>", l.token)));
    r.extensions_mut().insert(Principal::new("root"));
    assert_eq!(send(svc, r).await.status, StatusCode::NO_CONTENT);
    assert!(store.get(&l.token).await.unwrap().is_none());
}

#[tokio::test]
async fn refresh_by_another_principal_is_refused() {
    let store = Arc::new(MemoryLockStore::new());
    let l = lock(
        &*store,
        "/a",
        LockScope::Exclusive,
        LockDepth::Zero,
        Some("alice"),
    )
    .await;
    let svc = LockLayer::new(store).layer(Kv::with_files(&["/a"]));
    let mut r = empty(req("LOCK", "/a").header("if", format!("(<{}>)", l.token)));
    r.extensions_mut().insert(Principal::new("bob"));
    let a = send(svc, r).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.rejection, Some(Rejection::Forbidden));
}

#[tokio::test]
async fn quota_per_principal() {
    let store = Arc::new(MemoryLockStore::new());
    let mut limits = tower_locks::Limits::default();
    limits.max_locks_per_principal = Some(2);
    let svc = LockLayer::new(store)
        .limits(limits)
        .layer(Kv::with_files(&["/a", "/b", "/c"]));
    for (path, status) in [
        ("/a", StatusCode::OK),
        ("/b", StatusCode::OK),
        ("/c", StatusCode::TOO_MANY_REQUESTS),
    ] {
        let mut r = lock_req(path, Some("0"), LOCKINFO_EXCLUSIVE);
        r.extensions_mut().insert(Principal::new("mallory"));
        assert_eq!(send(svc.clone(), r).await.status, status, "{path}");
    }
}

#[tokio::test]
async fn lock_in_a_locked_collection_needs_its_token_to_create_a_member() {
    let (store, kv, svc) = setup(&["/c/"]);
    let l = xlock(&*store, "/c/", LockDepth::Zero).await;
    let a = send(
        svc.clone(),
        lock_req("/c/new", Some("0"), LOCKINFO_EXCLUSIVE),
    )
    .await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert!(!kv.exists("/c/new"));
    let mut r = lock_req("/c/new", Some("0"), LOCKINFO_EXCLUSIVE);
    r.headers_mut()
        .insert("if", format!("</c/> (<{}>)", l.token).parse().unwrap());
    assert_eq!(send(svc, r).await.status, StatusCode::CREATED);
}

/// A resource space that cannot tell (HEAD refused with 403, as servers without a directory
/// listing answer for collections): a LOCK on a collection URL locks it and creates nothing;
/// sub-requests carry no hop-by-hop header of the original connection.
#[tokio::test]
async fn an_unplaceable_collection_is_locked_not_created() {
    let seen: Arc<std::sync::Mutex<Vec<(String, http::HeaderMap)>>> = Arc::default();
    let log = seen.clone();
    let space = tower::service_fn(move |r: http::Request<tower_locks::EmptyBody>| {
        log.lock()
            .unwrap()
            .push((r.method().to_string(), r.headers().clone()));
        async move {
            let mut res = http::Response::new(Body::empty());
            *res.status_mut() = StatusCode::FORBIDDEN;
            Ok::<_, std::convert::Infallible>(res)
        }
    });
    let store = Arc::new(MemoryLockStore::new());
    let svc = LockLayer::new(store.clone())
        .resource_space(space)
        .layer(Kv::default());
    let mut r = lock_req("/coll/", Some("infinity"), LOCKINFO_EXCLUSIVE);
    let h = r.headers_mut();
    h.insert("connection", "keep-alive, x-hop".parse().unwrap());
    h.insert("x-hop", "1".parse().unwrap());
    h.insert("te", "trailers".parse().unwrap());
    h.insert("x-end-to-end", "1".parse().unwrap());
    let a = send(svc, r).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "a HEAD, and no PUT");
    let (method, headers) = &seen[0];
    assert_eq!(method, "HEAD");
    for hop in ["connection", "x-hop", "te"] {
        assert!(
            !headers.contains_key(hop),
            "{hop} reached the resource space"
        );
    }
    assert!(headers.contains_key("x-end-to-end"));
}

/// D7 and RFC 9110 §13.2.1: a LOCK that would create a member of a depth-0-locked collection
/// without the collection's token is a 423 whatever its `If-Match` says; the preconditions
/// are judged only after the locks, as for every other write.
#[tokio::test]
async fn a_missing_token_wins_over_if_match_on_lock() {
    let (store, kv, svc) = setup(&["/c/"]);
    xlock(&*store, "/c", LockDepth::Zero).await;
    for if_match in [None, Some("*")] {
        let mut r = lock_req("/c/new", Some("0"), LOCKINFO_EXCLUSIVE);
        if let Some(v) = if_match {
            r.headers_mut().insert("if-match", v.parse().unwrap());
        }
        let a = send(svc.clone(), r).await;
        assert_eq!(
            a.status,
            StatusCode::LOCKED,
            "If-Match {if_match:?}: {}",
            a.text()
        );
    }
    assert!(!kv.exists("/c/new"));
    // A malformed If-Match is still a 400 before anything is judged.
    let mut r = lock_req("/c/new", Some("0"), LOCKINFO_EXCLUSIVE);
    r.headers_mut().insert("if-match", "nope".parse().unwrap());
    assert_eq!(send(svc, r).await.status, StatusCode::BAD_REQUEST);
}

/// A refresh is a LOCK too, answered by the layer: its `If-Match` and `If-None-Match` are
/// evaluated (412 when false, 400 when malformed), and a refresh whose `If` is false for a
/// reason other than its token (a stale entity tag) is a plain 412, not a token mismatch.
#[tokio::test]
async fn a_refresh_evaluates_its_preconditions() {
    let (store, kv, svc) = setup(&["/a"]);
    let l = xlock(&*store, "/a", LockDepth::Zero).await;
    let etag = kv.etag("/a").unwrap();
    let refresh = |if_header: String, extra: Option<(&str, &str)>| {
        let mut r = req("LOCK", "/a").header("if", if_header);
        if let Some((name, value)) = extra {
            r = r.header(name, value);
        }
        r.body(Body::empty()).unwrap()
    };
    let token = format!("(<{}>)", l.token);
    let cases = [
        (
            Some(("if-match", "\"nope\"")),
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            Some(("if-none-match", "*")),
            StatusCode::PRECONDITION_FAILED,
        ),
        (Some(("if-match", "nope")), StatusCode::BAD_REQUEST),
        (Some(("if-match", etag.as_str())), StatusCode::OK),
        (None, StatusCode::OK),
    ];
    for (extra, status) in cases {
        let a = send(svc.clone(), refresh(token.clone(), extra)).await;
        assert_eq!(a.status, status, "refresh with {extra:?}: {}", a.text());
    }
    let stale = format!("(<{}> [\"stale\"])", l.token);
    let a = send(svc.clone(), refresh(stale, None)).await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        a.rejection,
        Some(Rejection::PreconditionFailed),
        "{}",
        a.text()
    );
    // A token whose lock does not cover the request URI is the mismatch it always was.
    let other = xlock(&*store, "/b", LockDepth::Zero).await;
    let a = send(svc, refresh(format!("(<{}>)", other.token), None)).await;
    assert!(
        matches!(a.rejection, Some(Rejection::LockTokenMismatch { .. })),
        "{:?}",
        a.rejection
    );
}

/// RFC 9110 §13.2.1: preconditions are not judged on a request that fails anyway. A refresh
/// of another principal's lock is a 403 and a LOCK that conflicts with a lock on its target a
/// 423, whatever their `If-Match` says (a 412 would tell a non-holder about the resource).
#[tokio::test]
async fn requests_that_fail_anyway_are_not_judged_on_if_match() {
    let (store, _kv, svc) = setup(&["/doc", "/other"]);
    let l = lock(
        &*store,
        "/doc",
        LockScope::Exclusive,
        LockDepth::Zero,
        Some("ann"),
    )
    .await;
    let mut r = req("LOCK", "/doc")
        .header("if", format!("(<{}>)", l.token))
        .header("if-match", "\"stale\"")
        .body(Body::empty())
        .unwrap();
    r.extensions_mut().insert(Principal::new("bob"));
    let a = send(svc.clone(), r).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text());

    let mut r = lock_req("/doc", Some("0"), LOCKINFO_EXCLUSIVE);
    r.headers_mut()
        .insert("if-match", "\"stale\"".parse().unwrap());
    let a = send(svc.clone(), r).await;
    assert_eq!(a.status, StatusCode::LOCKED, "{}", a.text());
    assert_eq!(a.error_hrefs("no-conflicting-lock"), ["/doc"]);
    // Without a conflict, the false precondition is what answers.
    let mut r = lock_req("/other", Some("0"), LOCKINFO_EXCLUSIVE);
    r.headers_mut()
        .insert("if-match", "\"stale\"".parse().unwrap());
    let a = send(svc, r).await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED, "{}", a.text());
}

/// A refresh's `If-None-Match: *` is judged on the request URI as written: `/a` exists (the
/// router answers its HEAD), `/a/` is another URL (404), and an `If` list tagged `</a/>` that
/// probed `/a/` does not stand in for it.
#[tokio::test]
async fn a_refresh_judges_its_preconditions_on_its_own_url() {
    use axum::routing::get;
    let store = Arc::new(MemoryLockStore::new());
    let app: axum::Router =
        axum::Router::new().route("/a", get(|| async { ([("etag", "\"v1\"")], "doc") }));
    let svc = app
        .clone()
        .layer(LockLayer::new(store.clone()).resource_space(app));
    let l = xlock(&*store, "/a", LockDepth::Zero).await;
    for if_header in [
        format!("(<{}>)", l.token),
        format!("</a/> (<{}> Not [\"zzz\"])", l.token),
    ] {
        let r = req("LOCK", "/a")
            .header("if", &if_header)
            .header("if-none-match", "*")
            .body(Body::empty())
            .unwrap();
        let a = send(svc.clone(), r).await;
        assert_eq!(
            a.status,
            StatusCode::PRECONDITION_FAILED,
            "If: {if_header}: {}",
            a.text()
        );
    }
}

/// RFC 4918 §8.5 ("authorization checks before checking any HTTP conditional header"): an
/// UNLOCK or a refresh of another principal's lock is a 403 whatever its `If` header says.
#[tokio::test]
async fn another_principals_lock_is_a_403_before_any_if() {
    let store = Arc::new(MemoryLockStore::new());
    let l = lock(
        &*store,
        "/a",
        LockScope::Exclusive,
        LockDepth::Zero,
        Some("alice"),
    )
    .await;
    let svc = LockLayer::new(store.clone()).layer(Kv::with_files(&["/a"]));
    // Without an If header: 403.
    let unlock = req("UNLOCK", "/a")
        .header("lock-token", format!("<{}>", l.token))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(svc.clone(), as_user(unlock, Some("bob"))).await.status,
        StatusCode::FORBIDDEN
    );
    // With a false one.
    let unlock = req("UNLOCK", "/a")
        .header("lock-token", format!("<{}>", l.token))
        .header(
            "if",
            "(Not <DAV:no-lock> <urn:uuid:00000000-0000-0000-0000-000000000000>)",
        )
        .body(Body::empty())
        .unwrap();
    let a = send(svc.clone(), as_user(unlock, Some("bob"))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text());
    // A refresh naming alice's lock with a stale entity tag.
    let refresh = req("LOCK", "/a")
        .header("if", format!("(<{}> [\"stale\"])", l.token))
        .body(Body::empty())
        .unwrap();
    let a = send(svc, as_user(refresh, Some("bob"))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text());
}

/// A creator that always fails with 409 (a missing parent collection).
struct NoParent;

impl tower_locks::ResourceCreator for NoParent {
    fn create_empty<'a>(
        &'a self,
        _path: &'a tower_locks::ResourcePath,
        _request: &'a http::request::Parts,
    ) -> tower_locks::BoxFuture<'a, tower_locks::CreateResult> {
        Box::pin(async { tower_locks::CreateResult::Failed(StatusCode::CONFLICT) })
    }
}

/// D20: a LOCK whose resource cannot be created rolls its lock back; when the store fails the
/// roll-back, the lock, whose token nobody received, is removed by the next guarded request.
#[tokio::test]
async fn a_failed_roll_back_is_left_to_the_next_request() {
    let store = Arc::new(Adjusted::new(MemoryLockStore::new()));
    let svc = LockLayer::from_arc(store.clone())
        .with_resource_creator(NoParent)
        .layer(Kv::default());
    store
        .failing_unlocks
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let lock_req = || {
        req("LOCK", "/missing/new.txt")
            .header("timeout", "Second-86400")
            .body(Body::from(LOCKINFO_EXCLUSIVE))
            .unwrap()
    };
    let a = send(svc.clone(), as_user(lock_req(), Some("ann"))).await;
    assert_eq!(
        a.status,
        StatusCode::CONFLICT,
        "creation failed: rolled back"
    );
    assert!(!a.headers.contains_key("lock-token"));
    let held = store
        .inner
        .query(&tower_locks::LockQuery::new().covering(p("/missing/new.txt")))
        .await
        .unwrap();
    assert_eq!(held.len(), 1, "the roll-back failed");
    // The next guarded request (any write) removes the lock nobody holds.
    let put = req("PUT", "/elsewhere").body(Body::from("x")).unwrap();
    let _ = send(svc.clone(), as_user(put, Some("bob"))).await;
    let still = store
        .inner
        .query(&tower_locks::LockQuery::new().covering(p("/missing/new.txt")))
        .await
        .unwrap();
    assert!(
        still.is_empty(),
        "a lock nobody holds stands after its LOCK failed (held before: {}, now: {})",
        held.len(),
        still.len()
    );
}

fn as_user(mut r: http::Request<Body>, user: Option<&str>) -> http::Request<Body> {
    if let Some(u) = user {
        r.extensions_mut().insert(Principal::new(u));
    }
    r
}
