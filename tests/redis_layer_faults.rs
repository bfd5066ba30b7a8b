//! The layer on `RedisLockStore` while Redis is down: writes fail closed (503 with
//! `Retry-After`, nothing forwarded), safe requests keep working, and the stack recovers by
//! itself after a restart with no lock lost or duplicated.
//!
//! The test runs its own `redis-server` (append-only file, `appendfsync always`, in a
//! temporary directory) on a free loopback port, like `tests/redis_faults.rs`.
#![cfg(feature = "redis")]

mod common;
#[path = "common/redis.rs"]
mod redis_env;

use std::time::{Duration, Instant};

use axum::body::Body;
use common::{empty, req, send, Answer, Kv, LOCKINFO_EXCLUSIVE};
use http::{Request, StatusCode};
use redis_env::{unique_prefix, OwnServer};
use tower::Layer;
use tower_locks::{LockLayer, LockQuery, LockStore, Principal, RedisLockStore, ResourcePath};

fn as_ann(mut r: Request<Body>) -> Request<Body> {
    r.extensions_mut().insert(Principal::new("ann"));
    r
}

fn lock_req(path: &str) -> Request<Body> {
    as_ann(
        req("LOCK", path)
            .header("content-type", "application/xml")
            .header("depth", "0")
            .body(Body::from(LOCKINFO_EXCLUSIVE))
            .unwrap(),
    )
}

fn put(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = req("PUT", path);
    if let Some(t) = token {
        b = b.header("if", format!("(<{t}>)"));
    }
    as_ann(b.body(Body::from("edited")).unwrap())
}

fn token_of(a: &Answer) -> String {
    a.headers["lock-token"]
        .to_str()
        .unwrap()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

/// How long one refused request may take with Redis down (the store's operation timeout is
/// 1 s; connecting to a closed port fails at once).
const BOUND: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_fail_closed_while_redis_is_down_and_the_stack_recovers() {
    let Some(mut server) = OwnServer::start("layer-faults") else {
        return;
    };
    let url = server.url.clone();
    let store = RedisLockStore::builder(&url)
        .prefix(unique_prefix())
        .operation_timeout(Duration::from_secs(1))
        .connect()
        .await
        .expect("connect to the test server");
    let kv = Kv::with_files(&["/doc", "/other"]);
    let svc = LockLayer::new(store.clone())
        .retry_after(3)
        .layer(kv.clone());

    // A lock taken before the outage.
    let granted = send(svc.clone(), lock_req("/doc")).await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text());
    let token = token_of(&granted);
    let before = store.get(&token).await.unwrap().expect("stored");
    kv.seen.lock().unwrap().clear();

    server.kill();

    // Every write: 503 with Retry-After, quickly, and the inner service sees nothing at all
    // (not even the layer's own sub-requests).
    let writes: Vec<(&str, Request<Body>)> = vec![
        ("PUT without token", put("/doc", None)),
        ("PUT with token", put("/doc", Some(&token))),
        ("PUT elsewhere", put("/other", None)),
        (
            "DELETE",
            as_ann(empty(
                req("DELETE", "/doc").header("if", format!("(<{token}>)")),
            )),
        ),
        ("LOCK", lock_req("/other")),
        ("LOCK (unmapped)", lock_req("/new")),
        (
            "LOCK (refresh)",
            as_ann(empty(
                req("LOCK", "/doc")
                    .header("if", format!("(<{token}>)"))
                    .header("timeout", "Second-60"),
            )),
        ),
        (
            "UNLOCK",
            as_ann(empty(
                req("UNLOCK", "/doc").header("lock-token", format!("<{token}>")),
            )),
        ),
    ];
    for (what, r) in writes {
        let started = Instant::now();
        let a = tokio::time::timeout(BOUND, send(svc.clone(), r))
            .await
            .unwrap_or_else(|_| panic!("{what} hung for more than {BOUND:?} with Redis down"));
        assert_eq!(
            a.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}: {}",
            a.text()
        );
        assert_eq!(
            a.headers.get("retry-after").map(|v| v.to_str().unwrap()),
            Some("3"),
            "{what}: Retry-After"
        );
        assert!(
            kv.all_seen().is_empty(),
            "{what} reached the inner service with Redis down: {:?}",
            kv.all_seen()
        );
        eprintln!("{what}: 503 after {:?}", started.elapsed());
    }
    assert!(!kv.exists("/new"), "the failed LOCK created a resource");
    assert_eq!(kv.files.lock().unwrap()["/doc"].0, "x".as_bytes());

    // Safe requests never touch the store and keep working.
    for (method, want) in [
        ("GET", StatusCode::OK),
        ("HEAD", StatusCode::OK),
        ("PROPFIND", StatusCode::MULTI_STATUS),
        ("OPTIONS", StatusCode::OK),
    ] {
        let a = tokio::time::timeout(BOUND, send(svc.clone(), as_ann(empty(req(method, "/doc")))))
            .await
            .unwrap_or_else(|_| panic!("{method} hung with Redis down"));
        assert_eq!(a.status, want, "{method}: {}", a.text());
    }
    let forwarded: Vec<String> = kv.forwarded().into_iter().map(|s| s.method).collect();
    assert_eq!(forwarded, ["GET", "HEAD", "PROPFIND", "OPTIONS"]);
    kv.seen.lock().unwrap().clear();

    server.restart();

    // The same stack recovers by itself: retry a write without the token until it stops
    // getting 503; it must then be refused with 423, since the lock survived.
    let deadline = Instant::now() + Duration::from_secs(15);
    let recovered = loop {
        let a = send(svc.clone(), put("/doc", None)).await;
        if a.status != StatusCode::SERVICE_UNAVAILABLE {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "the stack did not recover within 15 s: {}",
            a.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        recovered.status,
        StatusCode::LOCKED,
        "the lock taken before the outage was lost: {}",
        recovered.text()
    );
    assert_eq!(recovered.error_hrefs("lock-token-submitted"), ["/doc"]);
    assert!(kv.forwarded().is_empty());

    // The write with the token works, and the store has exactly the one lock on /doc, as it
    // was (the refused refresh, UNLOCK and DELETE changed nothing; the refused LOCKs added
    // nothing).
    let edited = send(svc.clone(), put("/doc", Some(&token))).await;
    assert_eq!(edited.status, StatusCode::NO_CONTENT, "{}", edited.text());
    assert_eq!(kv.files.lock().unwrap()["/doc"].0, "edited".as_bytes());
    let all = store
        .query(&LockQuery::new().subtree(ResourcePath::root()))
        .await
        .unwrap();
    assert_eq!(all, [before], "locks after the restart");
    assert!(!kv.exists("/new"));

    // Locking works again, and the old lock still conflicts.
    let again = send(svc.clone(), lock_req("/other")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    let conflict = send(svc.clone(), lock_req("/doc")).await;
    assert_eq!(conflict.status, StatusCode::LOCKED, "{}", conflict.text());
    let unlocked = send(
        svc,
        as_ann(empty(
            req("UNLOCK", "/doc").header("lock-token", format!("<{token}>")),
        )),
    )
    .await;
    assert_eq!(
        unlocked.status,
        StatusCode::NO_CONTENT,
        "{}",
        unlocked.text()
    );
}
