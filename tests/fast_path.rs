//! The fast path for plain writes (`src/methods/fast.rs`): taken exactly when the store
//! answers at once, no `If` header came and nothing is locked; and in every case the answer
//! is the one the full flow gives.

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
        assert_eq!(after.0, before.0, "{method} {path} took the full flow");
        assert_eq!(
            after.1,
            before.1 + 1,
            "{method} {path}: one synchronous check"
        );
    }
    assert_eq!(kv.forwarded().len(), 7);
}

#[tokio::test]
async fn anything_else_falls_back_to_the_full_flow() {
    let store = Arc::new(Counting::new(true));
    let kv = Kv::with_files(&["/c/", "/c/r", "/c/s"]);
    let svc = layered(&store, &kv);
    // An `If` header, and the methods with a destination or a cleanup: the full flow only.
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
        let after = store.counts();
        assert_eq!(after.0, before.0 + 1, "one asynchronous query");
        assert_eq!(after.1, before.1, "no synchronous check");
    }
    // A lock found: the full flow decides (423), with the fast path's answer: the store is
    // asked once, synchronously, and not again.
    let l = xlock(&store.inner, "/c/r", LockDepth::Zero).await;
    let before = store.counts();
    let a = send(svc.clone(), empty(req("PUT", "/c/r"))).await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(store.counts(), (before.0, before.1 + 1));
    // ... and with the token the write goes through the full flow, with its fencing number.
    let a = send(
        svc,
        empty(req("PUT", "/c/r").header("if", format!("(<{}>)", l.token))),
    )
    .await;
    assert!(a.status.is_success());
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
    /// The built-in memory store itself: the fast path asks it with borrowed keys.
    Borrowed,
    /// A wrapper that answers at once: the fast path through `LockStore::query_now`.
    QueryNow,
    /// A wrapper that hides its synchronous answer: the full flow only.
    Full,
}

type Held = (&'static str, LockScope, LockDepth, Option<&'static str>);
type Outcome = (StatusCode, bytes::Bytes, Vec<Seen>, Vec<String>);

/// One request through a fresh layer (mounted at `prefix`, if any) with `setup`'s locks
/// (client-visible roots: under the prefix): status, body, the requests the inner service
/// saw, and the files after.
async fn matrix_answer(
    way: Way,
    prefix: Option<&str>,
    setup: &[Held],
    method: &str,
    path: &str,
) -> Outcome {
    let memory = Arc::new(tower_locks::MemoryLockStore::new());
    let counting = Arc::new(Counting::new(matches!(way, Way::QueryNow)));
    let (store, mut layer) = match way {
        Way::Borrowed => (&*memory, LockLayer::new(memory.clone())),
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
    let a = send(layer.layer(kv.clone()), empty(req(method, path))).await;
    let files: Vec<String> = kv.files.lock().unwrap().keys().cloned().collect();
    (a.status, a.body, kv.all_seen(), files)
}

/// Every request of a small matrix, against every lock setup, with and without a mount
/// prefix, answered by the fast path on borrowed keys (the memory store itself), by the fast
/// path through `query_now` (a wrapper store), and by the full flow (a wrapper that hides its
/// synchronous answer): same status, same body, same requests seen by the inner service
/// (sub-requests included), same files after.
#[tokio::test]
async fn the_fast_path_answers_exactly_as_the_full_flow() {
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
    for prefix in [None, Some("/dav")] {
        for (i, setup) in setups.iter().enumerate() {
            for (method, path) in requests {
                let full = matrix_answer(Way::Full, prefix, setup, method, path).await;
                for way in [Way::Borrowed, Way::QueryNow] {
                    assert_eq!(
                        matrix_answer(way, prefix, setup, method, path).await,
                        full,
                        "prefix {prefix:?}, setup {i}, {method} {path}: {way:?} (left) vs the \
                         full flow (right)"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn a_mount_prefix_applies_on_the_fast_path_too() {
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
    // Both were checked at once against the prefixed path; the locked one's verdict used
    // that answer.
    assert_eq!(store.counts(), (0, 3), "(async queries, sync checks)");
}
