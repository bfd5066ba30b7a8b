//! `LockPropertiesLayer`: the lock properties in the PROPFIND answers of a class-1 service,
//! whatever prefixes and white space it uses, for every kind of PROPFIND, streaming.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

#[path = "common/counting.rs"]
mod counting;
#[cfg(feature = "redis")]
#[path = "common/redis.rs"]
mod redis_env;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_locks::{
    LockDepth, LockLayer, LockScope, LockStore, MemoryLockStore, NewLock, ReplayBody, ResourcePath,
};

/// A body delivered in the given chunks.
struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

/// A request body of one data frame and trailers.
struct WithTrailers(Option<Bytes>, Option<HeaderMap>);

impl Body for WithTrailers {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.0.take() {
            Some(data) => Some(Frame::data(data)),
            None => self.1.take().map(Frame::trailers),
        };
        Poll::Ready(frame.map(Ok))
    }
}

/// A class-1 server that answers every PROPFIND with `answer` (status `status`), in chunks of
/// `chunk` bytes, and records the request bodies (and trailers) it got.
#[derive(Clone)]
struct Class1 {
    answer: String,
    status: StatusCode,
    content_type: Option<&'static str>,
    chunk: usize,
    bodies: Arc<Mutex<Vec<Bytes>>>,
    trailers: Arc<Mutex<Vec<Option<HeaderMap>>>>,
}

impl Class1 {
    fn new(answer: &str) -> Self {
        Class1 {
            answer: answer.to_owned(),
            status: StatusCode::MULTI_STATUS,
            content_type: None,
            chunk: usize::MAX,
            bodies: Arc::default(),
            trailers: Arc::default(),
        }
    }
}

impl<B> tower::Service<Request<ReplayBody<B>>> for Class1
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Chunks>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Response<Chunks>, Infallible>> + Send>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<ReplayBody<B>>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let collected = req.into_body().collect().await.unwrap();
            this.trailers
                .lock()
                .unwrap()
                .push(collected.trailers().cloned());
            this.bodies.lock().unwrap().push(collected.to_bytes());
            let bytes = this.answer.as_bytes();
            let chunks = bytes
                .chunks(this.chunk.min(bytes.len().max(1)))
                .map(Bytes::copy_from_slice)
                .collect();
            let mut res = Response::new(Chunks(chunks));
            *res.status_mut() = this.status;
            res.headers_mut()
                .insert("content-length", bytes.len().to_string().parse().unwrap());
            if let Some(content_type) = this.content_type {
                res.headers_mut()
                    .insert("content-type", content_type.parse().unwrap());
            }
            Ok(res)
        })
    }
}

struct Run {
    status: StatusCode,
    text: String,
    content_length: bool,
}

async fn propfind<S: LockStore>(store: &Arc<S>, server: Class1, path: &str, body: &str) -> Run {
    propfind_through(LockLayer::new(store.clone()), server, path, body).await
}

/// A `Depth: 1` PROPFIND of `path` with `body`.
fn propfind_request(path: &str, body: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method("PROPFIND")
        .uri(path)
        .header("depth", "1")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// A PROPFIND through `locks` and its lock properties, to `server`.
async fn propfind_through(locks: LockLayer, server: Class1, path: &str, body: &str) -> Run {
    let app = ServiceBuilder::new()
        .layer(locks.clone())
        .layer(locks.lock_properties())
        .service(server);
    let res = app.oneshot(propfind_request(path, body)).await.unwrap();
    let status = res.status();
    let content_length = res.headers().contains_key("content-length");
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Run {
        status,
        text,
        content_length,
    }
}

/// A propstat's status code and the property names in it.
type Propstat = (u16, Vec<String>);

/// For each response: its href, and per propstat its status code and the `{DAV:}` property
/// names in it, with the number of activelocks of a lockdiscovery.
fn shape(xml: &str) -> Vec<(String, Vec<Propstat>)> {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let dav = |n: &roxmltree::Node<'_, '_>, name: &str| {
        n.is_element() && n.tag_name().namespace() == Some("DAV:") && n.tag_name().name() == name
    };
    let mut out = Vec::new();
    for response in doc.root_element().children().filter(|n| dav(n, "response")) {
        let href = response
            .children()
            .find(|n| dav(n, "href"))
            .and_then(|n| n.text())
            .unwrap_or_default()
            .trim()
            .to_owned();
        let mut stats = Vec::new();
        for ps in response.children().filter(|n| dav(n, "propstat")) {
            let status = ps
                .children()
                .find(|n| dav(n, "status"))
                .and_then(|n| n.text())
                .and_then(|t| t.split_whitespace().nth(1))
                .and_then(|c| c.parse().ok())
                .unwrap();
            let mut props = Vec::new();
            for prop in ps.children().filter(|n| dav(n, "prop")) {
                for p in prop.children().filter(|n| n.is_element()) {
                    let mut name = p.tag_name().name().to_owned();
                    if dav(&p, "lockdiscovery") {
                        let n = p.children().filter(|a| dav(a, "activelock")).count();
                        name = format!("lockdiscovery({n})");
                    }
                    if dav(&p, "supportedlock") {
                        let n = p.children().filter(|a| dav(a, "lockentry")).count();
                        name = format!("supportedlock({n})");
                    }
                    props.push(name);
                }
            }
            stats.push((status, props));
        }
        out.push((href, stats));
    }
    out
}

const PROP_LOCKDISCOVERY: &str = r#"<?xml version="1.0"?><propfind xmlns="DAV:"><prop><lockdiscovery/><getetag/></prop></propfind>"#;

/// nginx-style answer: prefix `D:`, the lock property reported missing.
const NGINX_404: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
<D:multistatus xmlns:D="DAV:">
<D:response><D:href>/dir/</D:href>
<D:propstat><D:prop><D:getetag>"1"</D:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
<D:propstat><D:prop><D:lockdiscovery/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>
</D:response>
<D:response><D:href>/dir/locked.txt</D:href>
<D:propstat><D:prop><D:getetag>"2"</D:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
<D:propstat><D:prop><D:lockdiscovery/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>
</D:response>
</D:multistatus>"#;

async fn store_with_lock() -> Arc<MemoryLockStore> {
    let store = Arc::new(MemoryLockStore::new());
    let root = ResourcePath::parse("/dir/locked.txt").unwrap();
    store.create(NewLock::new(root)).await.unwrap();
    store
}

#[tokio::test]
async fn prop_requests_get_the_locks_in_place_of_not_found() {
    let store = store_with_lock().await;
    for chunk in [usize::MAX, 1, 7] {
        let mut server = Class1::new(NGINX_404);
        server.chunk = chunk;
        let run = propfind(&store, server.clone(), "/dir/", PROP_LOCKDISCOVERY).await;
        assert_eq!(run.status, StatusCode::MULTI_STATUS);
        assert!(!run.content_length, "the length changed");
        assert_eq!(
            shape(&run.text),
            [
                (
                    "/dir/".to_owned(),
                    vec![(
                        200,
                        vec!["getetag".to_owned(), "lockdiscovery(0)".to_owned()]
                    )]
                ),
                (
                    "/dir/locked.txt".to_owned(),
                    vec![(
                        200,
                        vec!["getetag".to_owned(), "lockdiscovery(1)".to_owned()]
                    )]
                ),
            ],
            "chunks of {chunk}: {}",
            run.text
        );
        // The request body reached the server unchanged.
        assert_eq!(
            server.bodies.lock().unwrap()[0],
            PROP_LOCKDISCOVERY.as_bytes()
        );
    }
}

/// A lock property the inner service refuses this client (403, RFC 4918 §20.4) stays
/// refused: the owner of the lock is not added in its place, alone or beside a property the
/// client may read.
#[tokio::test]
async fn a_refused_lock_property_stays_refused() {
    let store = Arc::new(MemoryLockStore::new());
    let root = ResourcePath::parse("/dir/secret.txt").unwrap();
    let lock = NewLock::new(root).owner("<D:href xmlns:D=\"DAV:\">mailto:ceo@example.com</D:href>");
    store.create(lock).await.unwrap();
    for props in ["<D:getetag/><D:lockdiscovery/>", "<D:lockdiscovery/>"] {
        let answer = format!(
            r#"<?xml version="1.0"?><D:multistatus xmlns:D="DAV:"><D:response><D:href>/dir/secret.txt</D:href><D:propstat><D:prop>{props}</D:prop><D:status>HTTP/1.1 403 Forbidden</D:status></D:propstat></D:response></D:multistatus>"#
        );
        for chunk in [usize::MAX, 1, 7] {
            let mut server = Class1::new(&answer);
            server.chunk = chunk;
            let run = propfind(&store, server, "/dir/secret.txt", PROP_LOCKDISCOVERY).await;
            assert!(
                !run.text.contains("ceo@example.com"),
                "{props}: {}",
                run.text
            );
            assert_eq!(run.text, answer, "{props}, chunks of {chunk}");
        }
    }
}

/// An answer in another encoding than UTF-8, declared by its XML declaration or by the
/// `charset` of its `Content-Type`, passes unchanged: an owner written into it in UTF-8 would
/// be misread (XML 1.0 §4.3.3). Declared UTF-8, in any case, it gets the lock properties.
#[tokio::test]
async fn an_answer_in_another_encoding_passes_unchanged() {
    let store = Arc::new(MemoryLockStore::new());
    let root = ResourcePath::parse("/dir/locked.txt").unwrap();
    store
        .create(NewLock::new(root).owner("José"))
        .await
        .unwrap();
    let body = |encoding: &str| {
        NGINX_404.replacen(
            r#"encoding="utf-8""#,
            &format!(r#"encoding="{encoding}""#),
            1,
        )
    };
    for (encoding, content_type) in [
        ("ISO-8859-1", None),
        ("utf-8", Some("application/xml; charset=iso-8859-1")),
        ("utf-8", Some("text/xml;charset=\"windows-1252\"")),
    ] {
        let answer = body(encoding);
        let mut server = Class1::new(&answer);
        server.content_type = content_type;
        let run = propfind(&store, server, "/dir/", PROP_LOCKDISCOVERY).await;
        assert_eq!(run.text, answer, "{encoding} {content_type:?}");
    }
    for (encoding, content_type) in [
        ("UTF-8", None),
        ("utf-8", Some("application/xml; charset=\"UTF-8\"")),
        ("utf-8", Some("text/xml")),
    ] {
        let mut server = Class1::new(&body(encoding));
        server.content_type = content_type;
        let run = propfind(&store, server, "/dir/", PROP_LOCKDISCOVERY).await;
        assert!(
            run.text.contains("José"),
            "{encoding} {content_type:?}: {}",
            run.text
        );
    }
}

#[tokio::test]
async fn any_prefix_default_namespace_and_absolute_hrefs() {
    let store = store_with_lock().await;
    let answer = r#"<multistatus xmlns="DAV:" xmlns:x="urn:other">
      <response>
        <href>http://example.com/dir/locked.txt</href>
        <propstat><prop><x:color>red</x:color></prop><status>HTTP/1.1 200 OK</status></propstat>
      </response></multistatus>"#;
    let run = propfind(&store, Class1::new(answer), "/dir/locked.txt", "").await;
    assert_eq!(
        shape(&run.text),
        [(
            "http://example.com/dir/locked.txt".to_owned(),
            vec![(
                200,
                vec![
                    "color".to_owned(),
                    "lockdiscovery(1)".to_owned(),
                    "supportedlock(2)".to_owned()
                ]
            )]
        )],
        "{}",
        run.text
    );
    let prefixed = answer.replace(
        "<multistatus xmlns=\"DAV:\"",
        "<z:multistatus xmlns:z=\"DAV:\" xmlns=\"DAV:\"",
    );
    let prefixed = prefixed.replace("</multistatus>", "</z:multistatus>");
    let run = propfind(&store, Class1::new(&prefixed), "/dir/locked.txt", "").await;
    assert_eq!(shape(&run.text)[0].1[0].1.len(), 3, "{}", run.text);
}

#[tokio::test]
async fn propname_gets_the_names_and_a_server_s_own_versions_give_way() {
    let store = store_with_lock().await;
    // The server lists its own (empty) lock properties: ours replace them.
    let answer = r#"<d:multistatus xmlns:d="DAV:"><d:response><d:href>/dir/locked.txt</d:href>
      <d:propstat><d:prop><d:lockdiscovery/><d:supportedlock/><d:getetag/></d:prop>
      <d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#;
    let run = propfind(
        &store,
        Class1::new(answer),
        "/dir/locked.txt",
        "<propfind xmlns='DAV:'><propname/></propfind>",
    )
    .await;
    assert_eq!(
        shape(&run.text),
        [(
            "/dir/locked.txt".to_owned(),
            vec![(
                200,
                vec![
                    "getetag".to_owned(),
                    "lockdiscovery(0)".to_owned(),
                    "supportedlock(0)".to_owned()
                ]
            )]
        )],
        "{}",
        run.text
    );
    let run = propfind(
        &store,
        Class1::new(answer),
        "/dir/locked.txt",
        "<propfind xmlns='DAV:'><allprop/></propfind>",
    )
    .await;
    assert_eq!(
        shape(&run.text)[0].1,
        [(
            200,
            vec![
                "getetag".to_owned(),
                "lockdiscovery(1)".to_owned(),
                "supportedlock(2)".to_owned()
            ]
        )],
        "{}",
        run.text
    );
}

#[tokio::test]
async fn a_response_without_a_2xx_propstat_gets_one() {
    let store = store_with_lock().await;
    let answer = r#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>/dir/locked.txt</D:href>
      <D:propstat><D:prop><D:lockdiscovery/><D:foo/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>
      </D:response></D:multistatus>"#;
    let body = r#"<propfind xmlns="DAV:"><prop><lockdiscovery/><foo/></prop></propfind>"#;
    let run = propfind(&store, Class1::new(answer), "/dir/locked.txt", body).await;
    assert_eq!(
        shape(&run.text),
        [(
            "/dir/locked.txt".to_owned(),
            vec![
                (404, vec!["foo".to_owned()]),
                (200, vec!["lockdiscovery(1)".to_owned()])
            ]
        )],
        "{}",
        run.text
    );
}

#[tokio::test]
async fn what_cannot_be_followed_passes_unchanged() {
    let store = store_with_lock().await;
    for answer in [
        "not xml at all",
        "<D:error xmlns:D='DAV:'/>",
        "<D:multistatus xmlns:D='DAV:'><D:response><D:href>/dir/locked.txt</D:href>",
    ] {
        let run = propfind(&store, Class1::new(answer), "/dir/", "").await;
        assert_eq!(run.text, answer);
    }
    // Not a 207: untouched.
    let mut server = Class1::new(NGINX_404);
    server.status = StatusCode::OK;
    let run = propfind(&store, server, "/dir/", "").await;
    assert_eq!(run.text, NGINX_404);
    // A PROPFIND the filter cannot read: the answer passes unchanged, the body still arrives.
    let server = Class1::new(NGINX_404);
    let run = propfind(&store, server.clone(), "/dir/", "<not-propfind/>").await;
    assert_eq!(run.text, NGINX_404);
    assert_eq!(
        server.bodies.lock().unwrap()[0],
        "<not-propfind/>".as_bytes()
    );
    let big = format!(
        "<propfind xmlns='DAV:'><allprop/>{}</propfind>",
        " ".repeat(20_000)
    );
    let run = propfind(&store, server.clone(), "/dir/", &big).await;
    assert_eq!(run.text, NGINX_404);
    assert_eq!(server.bodies.lock().unwrap()[1].len(), big.len());
}

#[tokio::test]
async fn shared_and_inherited_locks_are_listed() {
    let store = Arc::new(MemoryLockStore::new());
    let p = |s| ResourcePath::parse(s).unwrap();
    store
        .create(
            NewLock::new(p("/dir/"))
                .depth(LockDepth::Infinity)
                .scope(LockScope::Shared),
        )
        .await
        .unwrap();
    store
        .create(NewLock::new(p("/dir/locked.txt")).scope(LockScope::Shared))
        .await
        .unwrap();
    let run = propfind(&store, Class1::new(NGINX_404), "/dir/", PROP_LOCKDISCOVERY).await;
    let s = shape(&run.text);
    assert_eq!(s[0].1[0].1[1], "lockdiscovery(1)");
    assert_eq!(s[1].1[0].1[1], "lockdiscovery(2)");
}

/// The activelocks of each response, by href.
fn activelocks(xml: &str) -> Vec<(String, usize)> {
    shape(xml)
        .into_iter()
        .map(|(href, stats)| {
            let n = stats
                .iter()
                .flat_map(|s| &s.1)
                .filter_map(|p| p.strip_prefix("lockdiscovery("))
                .map(|n| n.trim_end_matches(')').parse::<usize>().unwrap())
                .sum();
            (href, n)
        })
        .collect()
}

/// One `response` of `href` with a 200 propstat.
fn found(href: &str) -> String {
    format!(
        "<D:response><D:href>{href}</D:href><D:propstat><D:prop><D:getetag>\"1\"</D:getetag>\
         </D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
    )
}

fn multistatus(responses: &[String]) -> String {
    format!(
        r#"<D:multistatus xmlns:D="DAV:">{}</D:multistatus>"#,
        responses.concat()
    )
}

/// An href is read like a `Destination` (RFC 4918 §8.3): an absolute path, or an absolute
/// URI of the request's own authority; query and fragment are not part of the resource; text
/// in CDATA counts; and hrefs are client-visible, mount prefix included (decision D10).
#[tokio::test]
async fn hrefs_name_resources_as_destinations_do() {
    let store = Arc::new(MemoryLockStore::new());
    let p = |s: &str| ResourcePath::parse(s).unwrap();
    for path in ["/secret.txt", "/a", "/dav/doc"] {
        store.create(NewLock::new(p(path))).await.unwrap();
    }
    let answer = multistatus(&[
        found("/search?u=http://x/secret.txt"),
        found("http://example.com/secret.txt?x#y"),
        found("http://elsewhere.example/secret.txt"),
        found("<![CDATA[/a]]>"),
        found("/dav/doc"),
    ]);
    let locks = LockLayer::new(store.clone());
    let run = propfind_through(locks, Class1::new(&answer), "http://example.com/", "").await;
    assert_eq!(
        activelocks(&run.text),
        [
            ("/search?u=http://x/secret.txt".to_owned(), 0),
            ("http://example.com/secret.txt?x#y".to_owned(), 1),
            ("http://elsewhere.example/secret.txt".to_owned(), 0),
            ("/a".to_owned(), 1),
            ("/dav/doc".to_owned(), 1),
        ],
        "{}",
        run.text
    );
    // The empty path of an absolute URI is `/`.
    let root = NewLock::new(ResourcePath::root());
    assert!(matches!(
        store.create(root).await.unwrap(),
        tower_locks::CreateOutcome::Created(_)
    ));
    let answer = multistatus(&[found("http://example.com")]);
    let locks = LockLayer::new(store.clone());
    let run = propfind_through(locks, Class1::new(&answer), "http://example.com/", "").await;
    assert_eq!(
        activelocks(&run.text),
        [("http://example.com".to_owned(), 1)]
    );
    // Under a mount prefix, the service's hrefs carry it, as the client sees them.
    let locks = LockLayer::new(store.clone()).mount_prefix("/dav").unwrap();
    let answer = multistatus(&[found("/dav/doc"), found("/doc")]);
    let run = propfind_through(locks, Class1::new(&answer), "/doc", "").await;
    assert_eq!(
        activelocks(&run.text),
        [("/dav/doc".to_owned(), 1), ("/doc".to_owned(), 0)],
        "{}",
        run.text
    );
}

/// The properties go where RFC 4918 §14.24 lets them: into the first 2xx propstat (an empty
/// `prop` opened with its attributes kept), or a new propstat after the last one and before
/// `responsedescription`; a response of the status form, without propstat, is left as it is;
/// and a PROPFIND that asks for neither lock property gets the answer unchanged without a
/// store query.
#[tokio::test]
async fn the_properties_go_where_the_rfc_puts_them() {
    let store = Arc::new(counting::Counting::new(true));
    store
        .create(NewLock::new(ResourcePath::parse("/a").unwrap()))
        .await
        .unwrap();
    let empty_prop = r#"<multistatus xmlns="DAV:"><response><href>/a</href><propstat><x:prop xmlns:x="DAV:" /><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#;
    let run = propfind(&store, Class1::new(empty_prop), "/", "").await;
    assert_eq!(
        activelocks(&run.text),
        [("/a".to_owned(), 1)],
        "{}",
        run.text
    );

    let described = r#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>/a</D:href><D:propstat><D:prop><D:lockdiscovery/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat><D:responsedescription>why</D:responsedescription></D:response></D:multistatus>"#;
    let run = propfind(&store, Class1::new(described), "/", PROP_LOCKDISCOVERY).await;
    let (propstat, description) = (
        run.text.find("propstat").unwrap(),
        run.text.find("responsedescription").unwrap(),
    );
    assert!(propstat < description, "{}", run.text);
    assert_eq!(
        activelocks(&run.text),
        [("/a".to_owned(), 1)],
        "{}",
        run.text
    );

    let status_form = r#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>/gone</D:href><D:href>/a</D:href><D:status>HTTP/1.1 404 Not Found</D:status></D:response></D:multistatus>"#;
    let run = propfind(&store, Class1::new(status_form), "/", "").await;
    assert_eq!(run.text, status_form);

    let before = store.counts().0;
    let etag_only = r#"<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>"#;
    let run = propfind(&store, Class1::new(described), "/", etag_only).await;
    assert_eq!(run.text, described);
    assert!(
        run.content_length,
        "an answer passed unchanged keeps its length"
    );
    let propname = r#"<propfind xmlns="DAV:"><propname/></propfind>"#;
    let run = propfind(&store, Class1::new(described), "/", propname).await;
    assert!(run.text.contains("lockdiscovery"), "{}", run.text);
    assert_eq!(store.counts().0, before, "names alone need no store query");
}

/// A PROPFIND's request trailers reach the server with the body that was read.
#[tokio::test]
async fn propfind_request_trailers_reach_the_server() {
    let store = Arc::new(MemoryLockStore::new());
    let server = Class1::new(&multistatus(&[]));
    let locks = LockLayer::new(store);
    let app = ServiceBuilder::new()
        .layer(locks.clone())
        .layer(locks.lock_properties())
        .service(server.clone());
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", "abc".parse().unwrap());
    let body = WithTrailers(
        Some(Bytes::from(PROP_LOCKDISCOVERY)),
        Some(trailers.clone()),
    );
    let req = Request::builder()
        .method("PROPFIND")
        .uri("/")
        .body(body)
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    res.into_body().collect().await.unwrap();
    assert_eq!(server.trailers.lock().unwrap()[0], Some(trailers));
    assert_eq!(
        server.bodies.lock().unwrap()[0],
        PROP_LOCKDISCOVERY.as_bytes()
    );
}

/// A `Depth: 1` answer about many members costs one store query per 64 `response` elements
/// that have arrived, not one per element, and each element still gets exactly the locks
/// that cover its own resource: the collection's depth-infinity lock, and its own.
async fn members_are_asked_about_together<S: LockStore>(
    store: Arc<counting::Counting<S>>,
    base: &str,
) {
    let p = |s: &str| ResourcePath::parse(&format!("{base}{s}")).unwrap();
    let members = 150;
    store
        .create(
            NewLock::new(p("/big/"))
                .depth(LockDepth::Infinity)
                .scope(LockScope::Shared),
        )
        .await
        .unwrap();
    for i in (0..members).step_by(7) {
        let lock = NewLock::new(p(&format!("/big/m{i}"))).scope(LockScope::Shared);
        store.create(lock).await.unwrap();
    }
    let mut answer = String::from(r#"<D:multistatus xmlns:D="DAV:">"#);
    let hrefs = std::iter::once(p("/big/")).chain((0..members).map(|i| p(&format!("/big/m{i}"))));
    for href in hrefs {
        answer.push_str(&format!(
            "<D:response><D:href>{}</D:href><D:propstat><D:prop><D:getetag>\"1\"</D:getetag>\
             </D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>\n",
            href.href()
        ));
    }
    answer.push_str("</D:multistatus>");
    // One element per frame (an inner service that writes each as it goes) or less: the
    // elements still wait for one another while the answer arrives without a pause.
    let one = answer.find("</D:response>").unwrap() + "</D:response>\n".len();
    for (chunk, most_queries) in [(usize::MAX, 3), (4096, 40), (one, 4), (16, 4)] {
        let mut server = Class1::new(&answer);
        server.chunk = chunk;
        let before = store.counts().0;
        let run = propfind(&store, server, &p("/big/").href(), PROP_LOCKDISCOVERY).await;
        let queries = store.counts().0 - before;
        assert!(
            (1..=most_queries).contains(&queries),
            "chunks of {chunk}: {queries} store queries for {} responses",
            members + 1
        );
        let shape = shape(&run.text);
        assert_eq!(shape.len(), members + 1);
        for (i, (href, stats)) in shape.into_iter().enumerate() {
            // The collection's own lock covers every member; every seventh has its own too.
            let own = i > 0 && (i - 1) % 7 == 0;
            let expected = format!("lockdiscovery({})", 1 + usize::from(own));
            assert_eq!(
                stats,
                [(200, vec!["getetag".to_owned(), expected])],
                "{href}"
            );
        }
    }
}

#[tokio::test]
async fn the_members_of_an_answer_are_asked_about_together() {
    members_are_asked_about_together(Arc::new(counting::Counting::new(true)), "").await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn the_members_of_an_answer_are_asked_about_together_on_redis() {
    let Some(url) = redis_env::redis_url() else {
        return;
    };
    let store = redis_env::store_with_prefix(&url, &redis_env::unique_prefix()).await;
    members_are_asked_about_together(Arc::new(counting::Counting::over(store)), "/props").await;
}

/// The time a lock has left is counted on the store's clock, not this host's: a store whose
/// clock is far from the host's (here an injected one, 11 days after the epoch; a Redis
/// server's may differ too) reports a 600-second lock 100 seconds on as having 500 left.
#[tokio::test]
async fn the_time_left_is_the_stores() {
    use std::time::{Duration, UNIX_EPOCH};
    let clock = Arc::new(tower_locks::ManualClock::starting_at(
        UNIX_EPOCH + Duration::from_secs(1_000_000),
    ));
    let store = Arc::new(MemoryLockStore::with_clock(clock.clone()));
    let root = ResourcePath::parse("/dir/locked.txt").unwrap();
    let lock = NewLock::new(root).timeout(tower_locks::LockTimeout::Seconds(600));
    store.create(lock).await.unwrap();
    clock.advance(Duration::from_secs(100));
    let run = propfind(&store, Class1::new(NGINX_404), "/dir/", PROP_LOCKDISCOVERY).await;
    assert!(
        run.text.contains("<D:timeout>Second-500</D:timeout>"),
        "{}",
        run.text
    );
}

/// A body whose frames the test sends one at a time: between them, it is not ready.
struct Fed(tokio::sync::mpsc::UnboundedReceiver<Bytes>);
impl Body for Fed {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// Elements waiting for a full batch go out, with their lock properties, as soon as the
/// answer pauses: a slow inner service never holds back what it has already written.
#[tokio::test]
async fn a_batch_goes_out_when_the_answer_pauses() {
    let store = store_with_lock().await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let rx = Arc::new(Mutex::new(Some(rx)));
    let server = tower::service_fn(move |req: Request<ReplayBody<Full<Bytes>>>| {
        let rx = rx.lock().unwrap().take().unwrap();
        async move {
            drop(req);
            let mut res = Response::new(Fed(rx));
            *res.status_mut() = StatusCode::MULTI_STATUS;
            Ok::<_, Infallible>(res)
        }
    });
    let app = LockLayer::new(store.clone())
        .lock_properties()
        .layer(server);
    let req = propfind_request("/dir/", PROP_LOCKDISCOVERY);
    let member = |name: &str| {
        format!(
            "<D:response><D:href>/dir/{name}</D:href><D:propstat><D:prop><D:lockdiscovery/>\
             </D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat></D:response>"
        )
    };
    tx.send(Bytes::from(r#"<D:multistatus xmlns:D="DAV:">"#))
        .unwrap();
    for name in ["a.txt", "locked.txt"] {
        tx.send(Bytes::from(member(name))).unwrap();
    }
    let mut body = app.oneshot(req).await.unwrap().into_body();
    let mut seen = String::new();
    let wait = std::time::Duration::from_secs(10);
    while seen.matches("</D:response>").count() < 2 {
        let frame = tokio::time::timeout(wait, body.frame()).await;
        let frame = frame
            .expect("the elements written so far went out")
            .unwrap()
            .unwrap();
        seen.push_str(std::str::from_utf8(&frame.into_data().unwrap()).unwrap());
    }
    assert!(seen.contains("<D:activelock>"), "{seen}");
    tx.send(Bytes::from(member("b.txt") + "</D:multistatus>"))
        .unwrap();
    drop(tx);
    let rest = body.collect().await.unwrap().to_bytes();
    seen.push_str(std::str::from_utf8(&rest).unwrap());
    assert_eq!(shape(&seen).len(), 3, "{seen}");
}

/// A body of data frames, then an error, then more data.
struct Failing(VecDeque<Result<Bytes, &'static str>>);
impl Body for Failing {
    type Data = Bytes;
    type Error = &'static str;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
        Poll::Ready(self.0.pop_front().map(|r| r.map(Frame::data)))
    }
}

/// An error from the inner body comes after what arrived before it: an element waiting for
/// its batch to fill goes out, with its lock properties, before the error.
#[tokio::test]
async fn what_came_before_an_error_goes_out_before_it() {
    let store = store_with_lock().await;
    let server = tower::service_fn(|_: Request<ReplayBody<Full<Bytes>>>| async {
        let frames = VecDeque::from([
            Ok(Bytes::from(
                r#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>/dir/locked.txt</D:href><D:propstat><D:prop/><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"#,
            )),
            Err("backend went away"),
        ]);
        let mut res = Response::new(Failing(frames));
        *res.status_mut() = StatusCode::MULTI_STATUS;
        Ok::<_, Infallible>(res)
    });
    let app = LockLayer::new(store.clone())
        .lock_properties()
        .layer(server);
    let req = propfind_request("/dir/", PROP_LOCKDISCOVERY);
    let mut body = app.oneshot(req).await.unwrap().into_body();
    let mut before = String::new();
    let error = loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                before.push_str(std::str::from_utf8(frame.data_ref().unwrap()).unwrap())
            }
            Some(Err(e)) => break e.to_string(),
            None => panic!("no error: {before}"),
        }
    };
    assert_eq!(error, "backend went away");
    assert!(
        before.contains("<D:activelock>"),
        "before the error: {before}"
    );
}

/// Whatever multistatus the inner service answers, cut into whatever chunks: a well-formed
/// answer stays well-formed and every response with a propstat gets the lock properties in a
/// 2xx propstat (none left in another one), one without gets none; and no answer at all
/// makes the filter panic.
#[test]
fn any_answer_in_any_chunks() {
    use proptest::prelude::*;
    let prop = prop::sample::select(vec![
        "<D:lockdiscovery/>",
        "<D:supportedlock/>",
        "<D:getetag>\"1\"</D:getetag>",
        "<x:color xmlns:x='urn:x'>red</x:color>",
    ]);
    let status = prop::sample::select(vec!["200 OK", "404 Not Found", "403 Forbidden"]);
    let propstat = (prop::collection::vec(prop, 0..4), status).prop_map(|(props, status)| {
        let props = if props.is_empty() {
            "<D:prop/>".to_owned()
        } else {
            format!("<D:prop>{}</D:prop>", props.concat())
        };
        format!("<D:propstat>{props}<D:status>HTTP/1.1 {status}</D:status></D:propstat>")
    });
    let href = prop::sample::select(vec![
        "/dir/",
        "/dir/locked.txt",
        "http://h/dir/locked.txt",
        "/dir/%6Cocked.txt",
    ]);
    let junk = prop::sample::select(vec!["", "\n  ", "<!-- > -->", "<?pi x?>"]);
    let response =
        (href, prop::collection::vec(propstat, 0..3), junk).prop_map(|(href, stats, junk)| {
            format!(
                "{junk}<D:response>{junk}<D:href>{href}</D:href>{}</D:response>",
                stats.concat()
            )
        });
    let strategy = (
        prop::collection::vec(response, 0..5),
        1usize..64,
        prop::sample::select(vec![
            "",
            PROP_LOCKDISCOVERY,
            "<propfind xmlns='DAV:'><propname/></propfind>",
        ]),
        prop::collection::vec(any::<u8>(), 0..64),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = rt.block_on(store_with_lock());
    proptest!(ProptestConfig::with_cases(400), |((responses, chunk, request, noise) in strategy)| {
        let answer = format!(
            r#"<?xml version="1.0"?><D:multistatus xmlns:D="DAV:">{}</D:multistatus>"#,
            responses.concat()
        );
        let mut server = Class1::new(&answer);
        server.chunk = chunk;
        let run = rt.block_on(propfind(&store, server, "/dir/", request));
        prop_assert!(roxmltree::Document::parse(&run.text).is_ok(), "{answer}\n=> {}", run.text);
        let shapes = shape(&run.text);
        prop_assert_eq!(shapes.len(), responses.len());
        let given = shape(&answer);
        for (((href, stats), response), given) in shapes.into_iter().zip(&responses).zip(given) {
            // A lock property the inner service refuses (403) stays refused: unchanged.
            let refused = response.split("<D:propstat>").any(|s| {
                s.contains("403 Forbidden")
                    && (s.contains("<D:lockdiscovery/>") || s.contains("<D:supportedlock/>"))
            });
            if refused {
                prop_assert_eq!(&stats, &given.1, "{}: {}", href, run.text);
                continue;
            }
            let ours = |s: &Propstat| s.1.iter().filter(|p| p.starts_with("lockdiscovery")).count();
            let in_2xx: usize = stats.iter().filter(|s| s.0 / 100 == 2).map(ours).sum();
            let elsewhere: usize = stats.iter().filter(|s| s.0 / 100 != 2).map(ours).sum();
            // A response without a propstat says nothing about properties: none is added.
            let want = if response.contains("<D:propstat>") { (1, 0) } else { (0, 0) };
            prop_assert_eq!((in_2xx, elsewhere), want, "{}: {}", href, run.text);
        }
        // Noise instead of XML: passed on unchanged, without a panic.
        let noise = String::from_utf8_lossy(&noise).into_owned();
        let mut server = Class1::new(&noise);
        server.chunk = chunk;
        let run = rt.block_on(propfind(&store, server, "/dir/", request));
        prop_assert_eq!(run.text, noise);
    });
}
