//! Sub-requests to the declared resource space carry nothing that describes the original
//! request's body, and an answer the layer cannot read one way is not read any way.
mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use common::*;
use http::{HeaderMap, Request, Response, StatusCode};
use tower_locks::{LockLayer, MemoryLockStore};

type Log = Arc<Mutex<Vec<(String, String, HeaderMap)>>>;

/// A resource space that records every sub-request and answers with `answer`.
fn space(
    log: Log,
    answer: fn(&str) -> Response<Body>,
) -> impl tower::Service<
    Request<tower_locks::EmptyBody>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    tower::service_fn(move |req: Request<tower_locks::EmptyBody>| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push((
                req.method().to_string(),
                req.uri().path().to_owned(),
                req.headers().clone(),
            ));
            Ok::<_, Infallible>(answer(req.method().as_str()))
        }
    })
}

/// A LOCK on an unmapped URL carries headers describing the lockinfo body; the empty PUT does
/// not carry them (they would describe a body it does not have).
#[tokio::test]
async fn empty_put_does_not_carry_body_describing_headers() {
    let log: Log = Arc::default();
    let sp = space(log.clone(), |m| {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = if m == "HEAD" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::CREATED
        };
        r
    });
    let kv = Kv::default();
    let layer = LockLayer::new(Arc::new(MemoryLockStore::new())).resource_space(sp);
    let svc = tower::Layer::layer(&layer, kv);
    let r = req("LOCK", "/new")
        .header("content-type", "application/xml")
        .header("content-language", "de")
        .header("content-location", "/lockinfo.xml")
        .header("content-md5", "Q2hlY2sgSW50ZWdyaXR5IQ==")
        .header(
            "content-digest",
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        )
        .header(
            "repr-digest",
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        )
        .header(
            "digest",
            "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
        )
        .body(Body::from(LOCKINFO_EXCLUSIVE))
        .unwrap();
    let a = send(svc, r).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let log = log.lock().unwrap();
    let put = log
        .iter()
        .find(|(m, _, _)| m == "PUT")
        .expect("an empty PUT");
    let leaked: Vec<&str> = [
        "content-language",
        "content-location",
        "content-md5",
        "content-digest",
        "repr-digest",
        "digest",
    ]
    .into_iter()
    .filter(|h| put.2.contains_key(*h))
    .collect();
    assert!(
        leaked.is_empty(),
        "empty PUT carried {leaked:?}: {:?}",
        put.2
    );
}

/// A HEAD answer with two ETag fields names no current tag: the layer picks neither, so an
/// `If` list with either tag is false (412), as when nothing can tell (D13).
#[tokio::test]
async fn several_etag_headers_are_not_one_etag() {
    let log: Log = Arc::default();
    let sp = space(log.clone(), |_| {
        let mut r = Response::new(Body::empty());
        r.headers_mut().append("etag", "\"a\"".parse().unwrap());
        r.headers_mut().append("etag", "\"b\"".parse().unwrap());
        r
    });
    let kv = Kv::with_files(&["/f"]);
    let layer = LockLayer::new(Arc::new(MemoryLockStore::new())).resource_space(sp);
    let svc = tower::Layer::layer(&layer, kv);
    let a = send(
        svc.clone(),
        empty(req("PUT", "/f").header("if", "([\"a\"])")),
    )
    .await;
    let b = send(svc, empty(req("PUT", "/f").header("if", "([\"b\"])"))).await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(b.status, StatusCode::PRECONDITION_FAILED);
}

/// An ETag is read from the resource space as the `If` parser reads one: `"I am an ETag"`
/// (RFC 4918's own example, a quoted-string with spaces) matches the same tag sent back, and
/// `Not` of it does not hold. A value that is no entity tag at all tells nothing: `Not` of any
/// tag is false there too (D13), never "the resource has no ETag".
#[tokio::test]
async fn an_etag_is_read_as_if_lists_read_it() {
    let log: Log = Arc::default();
    let spaced = space(log.clone(), |_| {
        let mut r = Response::new(Body::empty());
        r.headers_mut()
            .insert("etag", "\"I am an ETag\"".parse().unwrap());
        r
    });
    let unreadable = space(log, |_| {
        let mut r = Response::new(Body::empty());
        r.headers_mut().insert("etag", "no-quotes".parse().unwrap());
        r
    });
    let kv = Kv::with_files(&["/f"]);
    let layer = LockLayer::new(Arc::new(MemoryLockStore::new())).resource_space(spaced);
    let svc = tower::Layer::layer(&layer, kv.clone());
    let put = |list: &str| empty(req("PUT", "/f").header("if", list));
    let same = send(svc.clone(), put("([\"I am an ETag\"])")).await;
    assert_eq!(same.status, StatusCode::NO_CONTENT, "{}", same.text());
    let not = send(svc, put("(Not [\"I am an ETag\"])")).await;
    assert_eq!(not.status, StatusCode::PRECONDITION_FAILED);

    let layer = LockLayer::new(Arc::new(MemoryLockStore::new())).resource_space(unreadable);
    let svc = tower::Layer::layer(&layer, kv.clone());
    let not = send(svc, put("(Not [\"x\"])")).await;
    assert_eq!(
        not.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        not.text()
    );
    assert_eq!(
        kv.forwarded().len(),
        1,
        "only the matching PUT went through"
    );
}

/// Only the request's own resources (its URI, its `Destination`) are probed: an `If` header
/// naming many other resources with entity tags sends no sub-request for them, and their lists
/// are false (D6, D13), so one request never turns into many, and a client learns nothing of
/// a resource it does not act on. A list about the request URI still decides.
#[tokio::test]
async fn only_the_request_s_own_resources_are_probed() {
    let log: Log = Arc::default();
    let sp = space(log.clone(), |_| {
        let mut r = Response::new(Body::empty());
        r.headers_mut().insert("etag", "\"e\"".parse().unwrap());
        r
    });
    let kv = Kv::with_files(&["/f", "/g"]);
    let layer = LockLayer::new(Arc::new(MemoryLockStore::new())).resource_space(sp);
    let svc = tower::Layer::layer(&layer, kv.clone());
    let many = |matching_at: Option<usize>| {
        (0..40)
            .map(|i| match matching_at == Some(i) {
                true => "</f> ([\"e\"])".to_owned(),
                false => format!("</r{i}> ([\"e\"])"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let probed = || -> Vec<String> {
        let log = log.lock().unwrap();
        log.iter().map(|(_, path, _)| path.clone()).collect()
    };
    // Every list names another resource, with the entity tag it has: none holds.
    let a = send(
        svc.clone(),
        empty(req("PUT", "/f").header("if", many(None))),
    )
    .await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED);
    assert!(probed().is_empty(), "{:?}", probed());
    // A list about the request URI holds, wherever it stands among them.
    let a = send(
        svc.clone(),
        empty(req("PUT", "/f").header("if", many(Some(30)))),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text());
    assert_eq!(probed(), ["/f"]);
    // A COPY's Destination is its own too.
    log.lock().unwrap().clear();
    let copy = req("COPY", "/f")
        .header("destination", "/g")
        .header("if", "</g> ([\"e\"])");
    assert_eq!(send(svc, empty(copy)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(probed(), ["/g"]);
}

/// A HEAD answered 200 with an ETag that is no entity tag (`abc123`, unquoted): the resource
/// exists, for the parent rule and for LOCK, while an `If` list with an entity tag is false
/// there (D13): its ETag is the one thing unknown.
#[tokio::test]
async fn an_unreadable_etag_leaves_the_resource_existing() {
    let log: Log = Arc::default();
    let sp = space(log, |m| {
        let mut r = Response::new(Body::empty());
        if m == "HEAD" {
            r.headers_mut().insert("etag", "abc123".parse().unwrap());
        }
        r
    });
    let store = Arc::new(MemoryLockStore::new());
    xlock(&*store, "/c", tower_locks::LockDepth::Zero).await;
    let kv = Kv::with_files(&["/c/", "/c/r"]);
    let layer = LockLayer::new(store).resource_space(sp);
    let svc = tower::Layer::layer(&layer, kv.clone());
    // Changing an existing member of a depth-0-locked collection needs no collection token.
    let a = send(svc.clone(), empty(req("PUT", "/c/r"))).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text());
    for list in ["([\"abc123\"])", "(Not [\"x\"])"] {
        let a = send(svc.clone(), empty(req("PUT", "/c/r").header("if", list))).await;
        assert_eq!(a.status, StatusCode::PRECONDITION_FAILED, "{list}");
    }
    assert_eq!(kv.forwarded().len(), 1);
}

/// D3: the resource space's PUT goes only to a URL that is missing once the lock stands. A
/// client's PUT checked between the LOCK's first HEAD and its grant (no lock yet, so it is
/// allowed) creates the resource; the LOCK asks again after the grant and leaves it as it is,
/// even with a PUT handler that ignores `If-None-Match`.
#[tokio::test]
async fn a_lock_never_empties_a_resource_written_after_its_first_head() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;
    use tower_locks::{EmptyBody, LockService};

    let kv = Kv::default();
    let app: Arc<OnceLock<LockService<Kv>>> = Arc::default();
    let raced = Arc::new(AtomicBool::new(false));
    let space = {
        let (kv, app) = (kv.clone(), app.clone());
        tower::service_fn(move |sub: Request<EmptyBody>| {
            let (kv, app) = (kv.clone(), app.clone());
            let first = !raced.swap(true, Ordering::SeqCst);
            async move {
                let path = sub.uri().path().to_owned();
                let mut res = Response::new(Body::empty());
                match sub.method().as_str() {
                    "HEAD" => {
                        let missing = !kv.exists(&path);
                        // While the first answer travels back, another client writes.
                        if first {
                            let other = app.get().unwrap().clone();
                            let put = req("PUT", &path).body(Body::from("important")).unwrap();
                            assert_eq!(send(other, put).await.status, StatusCode::CREATED);
                        }
                        if missing {
                            *res.status_mut() = StatusCode::NOT_FOUND;
                        }
                    }
                    // A handler that ignores `If-None-Match`.
                    "PUT" => {
                        kv.put(&path, "");
                        *res.status_mut() = StatusCode::CREATED;
                    }
                    _ => *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED,
                }
                Ok::<_, Infallible>(res)
            }
        })
    };
    let layer = LockLayer::new(MemoryLockStore::new()).resource_space(space);
    let svc = tower::Layer::layer(&layer, kv.clone());
    let _ = app.set(svc.clone());
    let lock = req("LOCK", "/report")
        .body(Body::from(LOCKINFO_EXCLUSIVE))
        .unwrap();
    let a = send(svc, lock).await;
    assert_eq!(a.status, StatusCode::OK, "a lock on what exists now");
    let content = kv
        .files
        .lock()
        .unwrap()
        .get("/report")
        .map(|(b, _)| b.clone());
    assert_eq!(content.as_deref(), Some(&b"important"[..]));
}
