//! Writes decided in `call`: when the store answers at once (`LockStore::query_now`) and the
//! verdict needs no probe, the layer forwards or refuses without a boxed future; in every case
//! the answer is the one the asynchronous flow gives.

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::sync::Arc;

use common::*;
use counting::Counting;
use http::StatusCode;
use tower::Layer;
use tower_locks::{LockDepth, LockLayer, LockScope};

fn layered(store: &Arc<Counting>, kv: &Kv) -> tower_locks::LockService<Kv> {
    LockLayer::new(store.clone()).layer(kv.clone())
}

#[tokio::test]
async fn unlocked_plain_writes_never_take_the_asynchronous_check() {
    let store = Arc::new(Counting::new(true));
    let kv = Kv::with_files(&["/c/", "/c/r"]);
    let svc = layered(&store, &kv);
    for (method, path) in [
        ("PUT", "/c/r"),
        ("PUT", "/c/new"),
        ("POST", "/c/r"),
        ("PATCH", "/c/r"),
        ("PROPPATCH", "/c/r"),
        ("MKCOL", "/c/d"),
        ("FROBNICATE", "/c/r"),
    ] {
        let before = store.counts();
        let forwarded = kv.forwarded().len();
        let a = send(svc.clone(), empty(req(method, path))).await;
        assert_ne!(a.status, StatusCode::LOCKED, "{method} {path}");
        assert_eq!(
            kv.forwarded().len(),
            forwarded + 1,
            "{method} {path} reached the service"
        );
        let after = store.counts();
        assert_eq!(after.0, before.0, "{method} {path} waited for the store");
        assert_eq!(
            after.1,
            before.1 + 1,
            "{method} {path}: one synchronous check"
        );
    }
    assert_eq!(kv.forwarded().len(), 7);
}

#[tokio::test]
async fn every_write_asks_the_store_once_and_at_once() {
    let store = Arc::new(Counting::new(true));
    let kv = Kv::with_files(&["/c/", "/c/r", "/c/s"]);
    let svc = layered(&store, &kv);
    // An `If` header is judged in `call` too; a removal finishes in its future (it cleans up
    // after the inner service answered), with the answer `call` got.
    let cases = [
        req("PUT", "/c/r").header("if", "(Not <urn:uuid:x>)"),
        req("DELETE", "/c/s"),
        req("COPY", "/c/r").header("destination", "http://example.com/c/t"),
        req("MOVE", "/c/t").header("destination", "http://example.com/c/u"),
    ];
    for b in cases {
        let before = store.counts();
        let a = send(svc.clone(), empty(b)).await;
        assert!(a.status.is_success(), "{}", a.status);
        assert_eq!(
            store.counts(),
            (before.0, before.1 + 1),
            "one answer at once"
        );
    }
    // A lock found: refused in `call`.
    let l = xlock(&store.inner, "/c/r", LockDepth::Zero).await;
    let before = store.counts();
    let a = send(svc.clone(), empty(req("PUT", "/c/r"))).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(store.counts(), (before.0, before.1 + 1));
    // ... and with the token the write goes through, with its fencing number.
    let a = send(
        svc,
        empty(req("PUT", "/c/r").header("if", format!("(<{}>)", l.token))),
    )
    .await;
    assert!(a.status.is_success());
    assert_eq!(store.counts(), (before.0, before.1 + 2));
}

#[tokio::test]
async fn a_verdict_that_needs_a_probe_finishes_in_the_future() {
    let store = Arc::new(Counting::new(true));
    let kv = Kv::with_files(&["/c/", "/c/r"]);
    let svc = LockLayer::new(store.clone())
        .resource_space(kv.clone())
        .layer(kv.clone());
    xlock(&store.inner, "/c/", LockDepth::Zero).await;
    let before = store.counts();
    // A member of a depth-0-locked collection: whether it exists decides. The probe is a
    // sub-request to the resource space; the store is not asked again.
    let a = send(svc.clone(), empty(req("PUT", "/c/r"))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = send(svc, empty(req("PUT", "/c/new"))).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(store.counts(), (before.0, before.1 + 2));
    let heads: Vec<_> = kv
        .all_seen()
        .into_iter()
        .filter(|s| s.sub_request)
        .map(|s| (s.method, s.path))
        .collect();
    assert_eq!(
        heads,
        [
            ("HEAD".to_owned(), "/c/r".to_owned()),
            ("HEAD".into(), "/c/new".into())
        ]
    );
}

#[tokio::test]
async fn a_store_that_cannot_answer_at_once_gets_the_full_flow() {
    let store = Arc::new(Counting::new(false));
    let kv = Kv::with_files(&["/c/"]);
    let svc = layered(&store, &kv);
    // Asked once when the layer was built, never again per request.
    assert_eq!(store.counts(), (0, 1));
    let a = send(svc.clone(), empty(req("PUT", "/c/new"))).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(store.counts(), (1, 1));
    let a = send(svc, empty(req("PUT", "/c/other"))).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(store.counts(), (2, 1));
}

/// How a matrix run's layer reaches its store.
#[derive(Clone, Copy, Debug)]
enum Way {
    /// The built-in memory store itself (it answers at once).
    Memory,
    /// A wrapper that answers at once through `LockStore::query_now`.
    QueryNow,
    /// A wrapper that hides its synchronous answer: everything in the future.
    Full,
}

type Held = (&'static str, LockScope, LockDepth, Option<&'static str>);
type Outcome = (StatusCode, bytes::Bytes, Vec<Seen>, Vec<String>);

/// One request through a fresh layer (mounted at `prefix`, if any) with `setup`'s locks
/// (client-visible roots: under the prefix): status, body, the requests the inner service
/// saw, and the files after.
async fn matrix_answer(
    way: Way,
    space: bool,
    prefix: Option<&str>,
    setup: &[Held],
    method: &str,
    path: &str,
) -> Outcome {
    let memory = Arc::new(tower_locks::MemoryLockStore::new());
    let counting = Arc::new(Counting::new(matches!(way, Way::QueryNow)));
    let (store, mut layer) = match way {
        Way::Memory => (&*memory, LockLayer::new(memory.clone())),
        Way::QueryNow | Way::Full => (&counting.inner, LockLayer::new(counting.clone())),
    };
    if let Some(prefix) = prefix {
        layer = layer.mount_prefix(prefix).unwrap();
    }
    for &(root, scope, depth, principal) in setup {
        let root = match prefix {
            Some(prefix) if root == "/" => format!("{prefix}/"),
            Some(prefix) => format!("{prefix}{root}"),
            None => root.to_owned(),
        };
        lock(store, &root, scope, depth, principal).await;
    }
    let kv = Kv::with_files(&["/c/", "/c/r"]);
    if space {
        layer = layer.resource_space(kv.clone());
    }
    let a = send(layer.layer(kv.clone()), empty(req(method, path))).await;
    let files: Vec<String> = kv.files.lock().unwrap().keys().cloned().collect();
    (a.status, a.body, kv.all_seen(), files)
}

/// Every request of a small matrix, against every lock setup, with and without a mount
/// prefix and a resource space, answered by the memory store, by a wrapper through
/// `query_now`, and by a wrapper that hides its synchronous answer: same status, same body,
/// same requests seen by the inner service (sub-requests included), same files after.
#[tokio::test]
async fn decided_at_once_or_later_the_answer_is_the_same() {
    use LockDepth::{Infinity, Zero};
    use LockScope::{Exclusive, Shared};
    let setups: [&[Held]; 6] = [
        &[],
        &[("/c/r", Exclusive, Zero, None)],
        &[("/c/", Exclusive, Zero, None)],
        &[("/c/", Shared, Infinity, None)],
        &[("/", Exclusive, Infinity, Some("ann"))],
        &[("/c/r/below", Exclusive, Zero, None)],
    ];
    let requests = [
        ("PUT", "/c/r"),
        ("PUT", "/c/new"),
        ("PUT", "/elsewhere"),
        ("POST", "/c/r"),
        ("PROPPATCH", "/c/r"),
        ("MKCOL", "/c/newdir"),
        ("MKCOL", "/c/newdir/"),
        ("MKCOL", "/c/r/below/x"),
        ("FROBNICATE", "/c/"),
        ("PUT", "/"),
        ("PUT", "/c/%72"),  // the same resource as /c/r
        ("PUT", "/c/../r"), // 400 in every way
        ("PUT", "/c//r"),
    ];
    for space in [false, true] {
        for prefix in [None, Some("/dav")] {
            for (i, setup) in setups.iter().enumerate() {
                for (method, path) in requests {
                    let full = matrix_answer(Way::Full, space, prefix, setup, method, path).await;
                    for way in [Way::Memory, Way::QueryNow] {
                        assert_eq!(
                            matrix_answer(way, space, prefix, setup, method, path).await,
                            full,
                            "space {space}, prefix {prefix:?}, setup {i}, {method} {path}: \
                             {way:?} (left) vs later (right)"
                        );
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn a_mount_prefix_applies_when_decided_at_once() {
    let store = Arc::new(Counting::new(true));
    let kv = Kv::with_files(&["/r"]);
    let svc = LockLayer::new(store.clone())
        .mount_prefix("/dav")
        .unwrap()
        .layer(kv.clone());
    // The client-visible lock root is /dav/r; the inner service sees /r.
    xlock(&store.inner, "/dav/r", LockDepth::Zero).await;
    let a = send(svc.clone(), empty(req("PUT", "/r"))).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    let a = send(svc, empty(req("PUT", "/other"))).await;
    assert!(a.status.is_success());
    // Both were checked at once against the prefixed path.
    assert_eq!(store.counts(), (0, 3), "(async queries, sync checks)");
}
