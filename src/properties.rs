//! `LockPropertiesLayer`: `DAV:lockdiscovery` and `DAV:supportedlock` in the PROPFIND answers
//! of a service that knows nothing about locks.
//!
//! The request body of a PROPFIND (small, bounded) is read to learn what the client asked for,
//! then replayed to the inner service. A `207 Multi-Status` answer is rewritten as it streams:
//! the `response` elements are held, up to 64 while the answer arrives without a pause, the
//! locks of their resources are asked of the store in one query, and each element goes on
//! with the lock properties of its own resource added (and the inner service's own versions
//! of them, or its "404 not found" for them, taken out). A `response` in which the inner service refuses this client a
//! lock property (401 or 403) passes unchanged: the refusal stands (RFC 4918 §20.4). So does
//! an answer declared in another encoding than UTF-8 (its `Content-Type` charset or its XML
//! declaration), in which the UTF-8 text of an owner would be misread. Anything the filter
//! cannot follow passes through unchanged from that point.

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::HeaderMap;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::config::Config;
use crate::dav::{
    is_utf8_name, lockdiscovery_of, multistatus_head, next_piece, parse_propfind, read_response,
    Piece, PropfindKind, ResponseElement,
};
use crate::path::{request_authority, Resolved};
use crate::store::{BoxError, BoxFuture, Lock, LockQuery, LockStoreError};
use crate::ResourcePath;

/// Largest PROPFIND body read to learn what it asks for; a larger one is forwarded as it is
/// and its answer passes unchanged.
const MAX_PROPFIND_BYTES: usize = 16 * 1024;

/// Largest piece of an answer held at once (the start of the multistatus, one `response`).
const MAX_HELD_BYTES: usize = 256 * 1024;

/// Layer that adds `DAV:lockdiscovery` (from the lock store) and `DAV:supportedlock` to each
/// resource of the PROPFIND `207` answers of the service it wraps — for `allprop`, for `prop`
/// requests that name them, and as names for `propname` — so clients that look for the lock
/// they just took (Office, WebDrive) find it behind a service that knows nothing about locks.
/// A `response`'s href names its resource as a `Destination` would (an absolute path, or an
/// absolute URI of the request's own authority, in the client-visible path space); the
/// properties go into its first 2xx propstat, or a new propstat after the last one, and a
/// response without propstat (the status form) is left as it is.
///
/// Built from the [`LockLayer`](crate::LockLayer) it goes with (same store, same mount
/// prefix); put it inside that layer. The wrapped service gets the request body as a
/// [`ReplayBody`]. Memory stays bounded: a PROPFIND body is read up to 16 KiB, and of an
/// answer only what has arrived is held while its resources' locks are asked for (a `response`
/// element of more than 256 KiB, or anything that is not a `DAV:multistatus` it can follow,
/// passes through unchanged), and the elements are written out with their properties one at a
/// time, as the answer is read. The store is asked once for up to 64 elements (fewer when the
/// answer pauses: what has arrived is not held back), so a `Depth: 1` PROPFIND of a thousand
/// members costs a few round trips to Redis, not a thousand, also from a service that writes
/// one element at a time. Each element lists every lock that covers its resource (RFC 4918 §15.8), owners
/// included: what the answer grows by is bounded by the quotas (`Limits`) and
/// `max_owner_bytes`.
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::{BodyExt, Full};
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_locks::{LockLayer, LockStore, MemoryLockStore, NewLock, ReplayBody, ResourcePath};
///
/// # tokio_test::block_on(async {
/// let store = std::sync::Arc::new(MemoryLockStore::new());
/// store.create(NewLock::new(ResourcePath::parse("/doc").unwrap())).await.unwrap();
/// let locks = LockLayer::new(store.clone());
/// // A class-1 server: it reports DAV:lockdiscovery as not found.
/// let class_1 = |_req: Request<ReplayBody<Full<Bytes>>>| async {
///     let body = r#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>/doc</D:href>
///       <D:propstat><D:prop><D:lockdiscovery/></D:prop>
///       <D:status>HTTP/1.1 404 Not Found</D:status></D:propstat></D:response></D:multistatus>"#;
///     let mut res = Response::new(Full::new(Bytes::from(body)));
///     *res.status_mut() = StatusCode::MULTI_STATUS;
///     Ok::<_, Infallible>(res)
/// };
/// let app = ServiceBuilder::new()
///     .layer(locks.clone())
///     .layer(locks.lock_properties())
///     .service_fn(class_1);
/// let propfind = Request::builder()
///     .method("PROPFIND")
///     .uri("/doc")
///     .header("depth", "0")
///     .body(Full::new(Bytes::from(
///         r#"<propfind xmlns="DAV:"><prop><lockdiscovery/></prop></propfind>"#,
///     )))
///     .unwrap();
/// let res = app.oneshot(propfind).await.unwrap();
/// let xml = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
/// assert!(xml.contains("<D:activelock>"));
/// assert!(!xml.contains("HTTP/1.1 404"));
/// # });
/// ```
#[derive(Clone)]
#[must_use]
pub struct LockPropertiesLayer {
    config: Arc<Config>,
}

impl LockPropertiesLayer {
    pub(crate) fn new(config: Arc<Config>) -> Self {
        Self { config }
    }
}

impl fmt::Debug for LockPropertiesLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockPropertiesLayer")
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for LockPropertiesLayer {
    type Service = LockProperties<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LockProperties {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// Middleware that adds the lock properties to PROPFIND answers; see [`LockPropertiesLayer`].
///
/// ```
/// use tower_locks::{LockLayer, LockProperties, MemoryLockStore};
/// use tower::Layer;
///
/// let svc: LockProperties<()> = LockLayer::new(MemoryLockStore::new()).lock_properties().layer(());
/// assert_eq!(svc.get_ref(), &());
/// ```
#[derive(Clone)]
#[must_use]
pub struct LockProperties<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> LockProperties<S> {
    /// The inner service.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, LockProperties, MemoryLockStore};
    /// # use tower::Layer;
    /// let svc: LockProperties<u8> = LockLayer::new(MemoryLockStore::new()).lock_properties().layer(7);
    /// assert_eq!(*svc.get_ref(), 7);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for LockProperties<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockProperties")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Service<Request<B>> for LockProperties<S>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<PropertiesBody<ResBody>>;
    type Error = S::Error;
    type Future = PropertiesFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if req.method().as_str() != "PROPFIND" {
            let future = self.inner.call(req.map(ReplayBody::stream));
            return PropertiesFuture {
                kind: FutureKind::Passthrough { future },
            };
        }
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        // The request's own authority, against which absolute hrefs are matched.
        let authority = request_authority(req.uri(), req.headers()).map(str::to_owned);
        let future = Box::pin(async move {
            let (parts, body) = req.into_parts();
            let (body, kind) = read_propfind(body).await;
            let res = ready.call(Request::from_parts(parts, body)).await?;
            // Only a 207 answer to a PROPFIND that asks for a lock property is rewritten, and
            // only in UTF-8, the encoding of what goes into it.
            let Some(kind) = kind
                .filter(|k| k.wants() != (false, false))
                .filter(|_| res.status() == StatusCode::MULTI_STATUS)
                .filter(|_| charset_is_utf8(res.headers()))
            else {
                return Ok(res.map(PropertiesBody::passthrough));
            };
            let (mut parts, body) = res.into_parts();
            parts.headers.remove(CONTENT_LENGTH);
            let body = PropertiesBody::augment(body, Augment::new(config, kind, authority));
            Ok(Response::from_parts(parts, body))
        });
        PropertiesFuture {
            kind: FutureKind::Propfind { future },
        }
    }
}

/// Whether the `Content-Type` of an answer leaves its body in UTF-8: no `charset` parameter
/// (XML then declares its own, which the body's reader checks), or one naming UTF-8.
fn charset_is_utf8(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    value
        .split(';')
        .skip(1)
        .all(|param| match param.split_once('=') {
            Some((name, charset)) if name.trim().eq_ignore_ascii_case("charset") => {
                is_utf8_name(charset.trim().trim_matches('"').as_bytes())
            }
            _ => true,
        })
}

pin_project! {
    /// Response future for [`LockProperties`]: any request but a PROPFIND passes through
    /// without an allocation; a PROPFIND is read, forwarded and its answer wrapped in one boxed
    /// future.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, Response};
    /// use http_body_util::Empty;
    /// use tower::{Layer, Service, ServiceExt};
    /// use tower_locks::{LockLayer, MemoryLockStore, PropertiesFuture, ReplayBody};
    ///
    /// # tokio_test::block_on(async {
    /// let inner = tower::service_fn(|_req: Request<ReplayBody<Empty<Bytes>>>| async {
    ///     Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
    /// });
    /// let mut svc = LockLayer::new(MemoryLockStore::new()).lock_properties().layer(inner);
    /// let get = Request::get("/doc").body(Empty::new()).unwrap();
    /// let future = svc.ready().await.unwrap().call(get);
    /// assert_eq!(future.await.unwrap().status(), 200);
    /// # });
    /// ```
    pub struct PropertiesFuture<F, B, E> {
        #[pin]
        kind: FutureKind<F, B, E>,
    }
}

pin_project! {
    #[project = FutureKindProj]
    enum FutureKind<F, B, E> {
        Passthrough { #[pin] future: F },
        Propfind { future: BoxFuture<'static, Result<Response<PropertiesBody<B>>, E>> },
    }
}

impl<F, B, E> Future for PropertiesFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<PropertiesBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            FutureKindProj::Passthrough { future } => future
                .poll(cx)
                .map(|res| res.map(|res| res.map(PropertiesBody::passthrough))),
            FutureKindProj::Propfind { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, B, E> fmt::Debug for PropertiesFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PropertiesFuture(..)")
    }
}

/// Read a PROPFIND body up to the limit: the body to forward, and what it asks for (`None`
/// when it is too large or not a `DAV:propfind`).
async fn read_propfind<B>(mut body: B) -> (ReplayBody<B>, Option<PropfindKind>)
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut read = BytesMut::new();
    let mut trailers = None;
    loop {
        match poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            Some(Ok(frame)) => {
                match frame.into_data() {
                    Ok(data) => read.extend_from_slice(&data),
                    Err(frame) => trailers = frame.into_trailers().ok(),
                }
                if read.len() > MAX_PROPFIND_BYTES {
                    return (ReplayBody::prefixed(read.freeze(), body), None);
                }
            }
            Some(Err(e)) => return (ReplayBody::failed(e.into()), None),
            None => break,
        }
    }
    let read = read.freeze();
    let kind = parse_propfind(&read);
    (ReplayBody::buffered(read, trailers), kind)
}

pin_project! {
    /// The request body [`LockProperties`] forwards: the original body, or a PROPFIND body it
    /// read (in part) and replays.
    ///
    /// ```
    /// use http_body::Body;
    /// use tower_locks::ReplayBody;
    ///
    /// let body = ReplayBody::stream(String::from("hello"));
    /// assert_eq!(body.size_hint().exact(), Some(5));
    /// ```
    pub struct ReplayBody<B> {
        #[pin]
        inner: Replay<B>,
    }
}

pin_project! {
    #[project = ReplayProj]
    enum Replay<B> {
        Stream { #[pin] body: B },
        Prefixed { prefix: Option<Bytes>, #[pin] body: B },
        Buffered { data: Option<Bytes>, trailers: Option<HeaderMap> },
        Failed { error: Option<BoxError> },
    }
}

impl<B> ReplayBody<B> {
    /// The original body, passed through.
    ///
    /// ```
    /// use tower_locks::ReplayBody;
    /// let _ = ReplayBody::stream(String::new());
    /// ```
    pub fn stream(body: B) -> Self {
        Self {
            inner: Replay::Stream { body },
        }
    }

    fn prefixed(prefix: Bytes, body: B) -> Self {
        Self {
            inner: Replay::Prefixed {
                prefix: Some(prefix),
                body,
            },
        }
    }

    fn buffered(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        Self {
            inner: Replay::Buffered {
                data: (!data.is_empty()).then_some(data),
                trailers,
            },
        }
    }

    fn failed(error: BoxError) -> Self {
        Self {
            inner: Replay::Failed { error: Some(error) },
        }
    }
}

impl<B: fmt::Debug> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplayBody(..)")
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().inner.project() {
            ReplayProj::Stream { body } => body.poll_frame(cx).map_err(Into::into),
            ReplayProj::Prefixed { prefix, body } => match prefix.take() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None => body.poll_frame(cx).map_err(Into::into),
            },
            ReplayProj::Buffered { data, trailers } => Poll::Ready(
                data.take()
                    .map(Frame::data)
                    .or_else(|| trailers.take().map(Frame::trailers))
                    .map(Ok),
            ),
            ReplayProj::Failed { error } => Poll::Ready(error.take().map(Err)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Replay::Stream { body } => body.is_end_stream(),
            Replay::Prefixed { prefix, body } => prefix.is_none() && body.is_end_stream(),
            Replay::Buffered { data, trailers } => data.is_none() && trailers.is_none(),
            Replay::Failed { error } => error.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Replay::Stream { body } => body.size_hint(),
            Replay::Prefixed { prefix, body } => {
                let extra = prefix.as_ref().map_or(0, |p| p.len() as u64);
                let inner = body.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(inner.lower() + extra);
                if let Some(upper) = inner.upper() {
                    hint.set_upper(upper + extra);
                }
                hint
            }
            Replay::Buffered { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Replay::Failed { .. } => SizeHint::default(),
        }
    }
}

/// Most `response` elements whose locks one store query asks for. The elements of an answer
/// are asked about together, so a `Depth: 1` PROPFIND of a collection of a thousand members
/// costs a handful of store round trips, not a thousand: a batch that is not full waits for
/// more of the answer as long as the answer arrives without a pause (an inner service that
/// writes one element per frame), and is asked about as soon as the answer pauses or ends.
const BATCH: usize = 64;

/// Most pieces (elements and the text between them) a batch that is not full holds while it
/// waits for more of the answer: each frame takes them up again, so this bounds the work per
/// frame, however small the frames.
const MAX_WAITING_PIECES: usize = 4 * BATCH;

/// Where the rewriting of one answer stands.
enum Stage {
    /// Before the end of the multistatus start tag.
    Head,
    /// Between the children of the multistatus element.
    Content,
    /// The pieces read so far wait for the locks of the resources of their `response`
    /// elements, asked for in one query.
    Querying {
        held: Vec<Held>,
        locks: BoxFuture<'static, Result<Vec<Lock>, LockStoreError>>,
    },
    /// Everything else passes as it is.
    Pass,
}

/// A piece of the answer held while its batch's locks are asked for.
enum Held {
    /// Goes on as it is: text between children, a child that is not a `response` with an href
    /// of this server.
    Unchanged(Bytes),
    /// A `response` element, and the resource its href names.
    Response {
        fragment: String,
        element: ResponseElement,
        path: ResourcePath,
    },
}

impl Held {
    fn is_response(&self) -> bool {
        matches!(self, Held::Response { .. })
    }

    fn len(&self) -> usize {
        match self {
            Held::Unchanged(bytes) => bytes.len(),
            Held::Response { fragment, .. } => fragment.len(),
        }
    }

    /// The piece as the inner service wrote it.
    fn into_sent(self) -> Bytes {
        match self {
            Held::Unchanged(bytes) => bytes,
            Held::Response { fragment, .. } => Bytes::from(fragment),
        }
    }
}

/// The rewriting state of one PROPFIND answer.
pub(crate) struct Augment {
    config: Arc<Config>,
    kind: PropfindKind,
    /// The PROPFIND's authority (URI or `Host`), for absolute hrefs.
    authority: Option<String>,
    stage: Stage,
    /// The namespace declarations of the multistatus start tag, which its children inherit.
    decls: String,
    buf: BytesMut,
    /// An incomplete piece at the start of `buf` is read again once `buf` holds this many
    /// bytes (twice what it held), or the answer has ended: a big element arriving in small
    /// chunks then costs linear time, not a rescan per chunk.
    rescan_at: usize,
    out: VecDeque<Bytes>,
    /// The pieces of a batch whose locks are known, rendered one at a time as the answer is
    /// read (so a batch never sits in memory rendered all at once).
    pending: VecDeque<Held>,
    /// The store's answer for the pending pieces' batch.
    answer: Option<Result<Vec<Lock>, LockStoreError>>,
    /// Complete pieces of a batch that is not full, waiting for more of the answer.
    waiting: Vec<Held>,
    /// The answer paused (the inner body was not ready): a waiting batch is asked about now.
    paused: bool,
    inner_done: bool,
    /// The inner body's trailers, sent after everything held.
    trailers: Option<Frame<Bytes>>,
    /// The inner body's error, sent once what arrived before it has gone out.
    error: Option<BoxError>,
    /// `Held` pieces taken into batches (tests assert the work stays linear).
    #[cfg(test)]
    taken: usize,
}

impl Augment {
    fn new(config: Arc<Config>, kind: PropfindKind, authority: Option<String>) -> Self {
        Self {
            config,
            kind,
            authority,
            stage: Stage::Head,
            decls: String::new(),
            buf: BytesMut::new(),
            rescan_at: 0,
            out: VecDeque::new(),
            pending: VecDeque::new(),
            waiting: Vec::new(),
            paused: false,
            answer: None,
            inner_done: false,
            trailers: None,
            error: None,
            #[cfg(test)]
            taken: 0,
        }
    }

    /// Emit the first `n` held bytes unchanged.
    fn emit(&mut self, n: usize) {
        let chunk = self.buf.split_to(n).freeze();
        if !chunk.is_empty() {
            self.out.push_back(chunk);
        }
    }

    /// Give up on this answer: what is held, and the rest, pass as they are.
    fn pass(&mut self) {
        for piece in std::mem::take(&mut self.waiting) {
            let bytes = piece.into_sent();
            if !bytes.is_empty() {
                self.out.push_back(bytes);
            }
        }
        let n = self.buf.len();
        self.emit(n);
        self.stage = Stage::Pass;
    }

    /// The resource of this server an href names: read like a `Destination` (an absolute
    /// path, or an absolute URI of this request's authority), in the client-visible path
    /// space ([decision D10](crate::decisions#d10)).
    fn path_of(&self, href: &str) -> Option<ResourcePath> {
        match self
            .config
            .resolver(self.authority.as_deref())
            .resolve(href)
        {
            Ok(Resolved::Local(path)) => Some(path),
            _ => None,
        }
    }

    /// The child element `fragment`, held: a `response` of a resource of this server, or
    /// bytes that go on unchanged.
    fn hold(&self, fragment: Bytes) -> Held {
        let Ok(text) = std::str::from_utf8(&fragment) else {
            return Held::Unchanged(fragment);
        };
        let Some(element) = read_response(text, &self.decls) else {
            return Held::Unchanged(fragment);
        };
        match self.path_of(&element.href) {
            Some(path) => Held::Response {
                fragment: text.to_owned(),
                element,
                path,
            },
            None => Held::Unchanged(fragment),
        }
    }

    /// The waiting pieces and the complete ones at the start of the buffer, up to [`BATCH`]
    /// `response` elements: what they are, and the piece that stopped the batch (`None` when
    /// it is full).
    fn take_batch(&mut self) -> (Vec<Held>, Option<Result<Piece, ()>>) {
        let mut held = std::mem::take(&mut self.waiting);
        #[cfg(test)]
        {
            self.taken += held.len();
        }
        let mut responses = held.iter().filter(|p| p.is_response()).count();
        while responses < BATCH {
            match next_piece(&self.buf, 0) {
                Ok(Piece::Text(end)) => held.push(Held::Unchanged(self.buf.split_to(end).freeze())),
                Ok(Piece::Child(end)) => {
                    let fragment = self.buf.split_to(end).freeze();
                    let piece = self.hold(fragment);
                    responses += usize::from(piece.is_response());
                    held.push(piece);
                }
                stop => return (held, Some(stop)),
            }
        }
        (held, None)
    }

    /// Let the held pieces go, with the store's answer: [`render_next`](Self::render_next)
    /// writes them out one at a time.
    fn release(&mut self, held: Vec<Held>, locks: Result<Vec<Lock>, LockStoreError>) {
        self.pending = held.into();
        self.answer = Some(locks);
    }

    /// Render the next pending piece into `out`, an element with the lock properties of the
    /// answer's locks that cover its resource (or as it came, without an answer); `false`
    /// when none is left.
    fn render_next(&mut self) -> bool {
        let Some(piece) = self.pending.pop_front() else {
            self.answer = None;
            return false;
        };
        let bytes = match (piece, self.answer.as_ref()) {
            (
                Held::Response {
                    fragment,
                    element,
                    path,
                },
                Some(Ok(locks)),
            ) => {
                let covering = locks.iter().filter(|l| l.covers(&path));
                let discovery = lockdiscovery_of(covering, self.config.store.now_dyn());
                Bytes::from(element.rewrite(&fragment, self.kind, &discovery))
            }
            (piece, _) => piece.into_sent(),
        };
        if !bytes.is_empty() {
            self.out.push_back(bytes);
        }
        true
    }

    /// The piece at the start of the buffer is incomplete: read it again once the buffer has
    /// doubled (or holds more than [`MAX_HELD_BYTES`], when it passes). Always `false`: more
    /// input is needed.
    fn more_needed(&mut self) -> bool {
        self.rescan_at = (self.buf.len() * 2).min(MAX_HELD_BYTES + 1);
        false
    }

    /// Work through what is held. `Ready(())`: the output queue has something, or all is
    /// done; `Pending`: a store query is under way. Returns `false` when more input is needed.
    fn step(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        loop {
            if !self.out.is_empty() {
                return Poll::Ready(true);
            }
            if self.render_next() {
                continue;
            }
            let reading = matches!(self.stage, Stage::Head | Stage::Content);
            if reading && !self.inner_done && self.buf.len() < self.rescan_at {
                return Poll::Ready(false);
            }
            match &mut self.stage {
                Stage::Pass => {
                    let n = self.buf.len();
                    self.emit(n);
                    return Poll::Ready(!self.out.is_empty());
                }
                Stage::Head => match multistatus_head(&self.buf) {
                    Ok(Some((end, decls))) => {
                        self.emit(end);
                        self.decls = decls;
                        self.stage = Stage::Content;
                        self.rescan_at = 0;
                    }
                    Ok(None) if self.buf.len() <= MAX_HELD_BYTES && !self.inner_done => {
                        return Poll::Ready(self.more_needed())
                    }
                    _ => self.pass(),
                },
                Stage::Content => {
                    // `propname` and `supportedlock` alone need no locks.
                    let needs_locks = self.kind.wants().0 && self.kind != PropfindKind::PropName;
                    let (held, stop) = self.take_batch();
                    // Not full, and the answer is still arriving: wait for more of it (at most
                    // a few batches' worth of pieces, each taken again with every frame).
                    let arriving = !self.paused && !self.inner_done;
                    let held_bytes: usize = held.iter().map(Held::len).sum();
                    if needs_locks
                        && arriving
                        && matches!(stop, Some(Ok(Piece::More)))
                        && held.iter().any(Held::is_response)
                        && held.len() < MAX_WAITING_PIECES
                        && held_bytes + self.buf.len() <= MAX_HELD_BYTES
                    {
                        self.waiting = held;
                        return Poll::Ready(self.more_needed());
                    }
                    if !held.is_empty() {
                        self.rescan_at = 0;
                    }
                    let paths: Vec<ResourcePath> = held
                        .iter()
                        .filter_map(|piece| match piece {
                            Held::Response { path, .. } => Some(path.clone()),
                            Held::Unchanged(_) => None,
                        })
                        .collect();
                    if needs_locks && !paths.is_empty() {
                        let store = Arc::clone(&self.config.store);
                        let query = paths
                            .into_iter()
                            .fold(LockQuery::new(), LockQuery::covering);
                        self.stage = Stage::Querying {
                            held,
                            locks: Box::pin(async move { store.query_boxed(&query).await }),
                        };
                        continue;
                    }
                    if !held.is_empty() {
                        self.release(held, Ok(Vec::new()));
                        continue;
                    }
                    match stop {
                        Some(Ok(Piece::More))
                            if self.buf.len() <= MAX_HELD_BYTES && !self.inner_done =>
                        {
                            return Poll::Ready(self.more_needed())
                        }
                        _ => self.pass(),
                    }
                }
                Stage::Querying { held, locks } => {
                    let answer = ready!(locks.as_mut().poll(cx));
                    let held = std::mem::take(held);
                    self.stage = Stage::Content;
                    self.release(held, answer);
                }
            }
        }
    }
}

pin_project! {
    /// Response body for [`LockProperties`]: the inner body, passed through or with the lock
    /// properties added to each `response` of a PROPFIND answer.
    ///
    /// ```
    /// use http_body::Body;
    /// use tower_locks::PropertiesBody;
    ///
    /// let body = PropertiesBody::passthrough(String::from("text"));
    /// assert_eq!(body.size_hint().exact(), Some(4));
    /// ```
    pub struct PropertiesBody<B> {
        #[pin]
        body: B,
        augment: Option<Box<Augment>>,
    }
}

impl<B> PropertiesBody<B> {
    /// `body`, unchanged.
    ///
    /// ```
    /// use tower_locks::PropertiesBody;
    /// let _ = PropertiesBody::passthrough(String::new());
    /// ```
    pub fn passthrough(body: B) -> Self {
        Self {
            body,
            augment: None,
        }
    }

    fn augment(body: B, augment: Augment) -> Self {
        Self {
            body,
            augment: Some(Box::new(augment)),
        }
    }
}

impl<B> fmt::Debug for PropertiesBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PropertiesBody(..)")
    }
}

impl<B> Body for PropertiesBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let Some(augment) = this.augment.as_deref_mut() else {
            return this.body.poll_frame(cx).map_err(Into::into);
        };
        loop {
            if let Some(chunk) = augment.out.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            if ready!(augment.step(cx)) {
                continue;
            }
            if let Some(e) = augment.error.take() {
                return Poll::Ready(Some(Err(e)));
            }
            if augment.inner_done {
                return Poll::Ready(augment.trailers.take().map(Ok));
            }
            let frame = match this.body.as_mut().poll_frame(cx) {
                // The answer pauses: a batch waiting for more of it is asked about now.
                Poll::Pending if !augment.waiting.is_empty() => {
                    (augment.paused, augment.rescan_at) = (true, 0);
                    continue;
                }
                Poll::Pending => return Poll::Pending,
                Poll::Ready(frame) => frame,
            };
            match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        augment.paused = false;
                        augment.buf.extend_from_slice(&data);
                    }
                    // Trailers end the body: what is held goes first, as it is.
                    Err(trailers) => {
                        augment.inner_done = true;
                        augment.trailers = Some(trailers);
                        augment.pass();
                    }
                },
                // What arrived before the error goes out before it: a waiting batch first.
                Some(Err(e)) if !augment.waiting.is_empty() => {
                    augment.error = Some(e.into());
                    (augment.paused, augment.rescan_at) = (true, 0);
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                None => augment.inner_done = true,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.augment {
            None => self.body.is_end_stream(),
            Some(a) => {
                a.inner_done
                    && a.out.is_empty()
                    && a.pending.is_empty()
                    && a.waiting.is_empty()
                    && a.buf.is_empty()
                    && a.trailers.is_none()
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.augment {
            None => self.body.size_hint(),
            Some(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::{Request, Response};
    use http_body_util::{BodyExt, Full};
    use tower::{service_fn, Layer, ServiceExt};

    use crate::store::{LockDepth, LockScope, NewLock};
    use crate::{LockLayer, LockStore, MemoryLockStore, ResourcePath};

    /// A `Depth: 1` `allprop` PROPFIND of `path`.
    fn allprop(path: &str) -> Request<Full<bytes::Bytes>> {
        Request::builder()
            .method("PROPFIND")
            .uri(path)
            .header("depth", "1")
            .body(Full::new(bytes::Bytes::from(
                r#"<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#,
            )))
            .unwrap()
    }

    /// An answer in tiny frames while a batch waits to fill costs work linear in the frames:
    /// the pieces a waiting batch holds, taken up again with every frame, are bounded.
    #[tokio::test]
    async fn tiny_frames_while_a_batch_waits_cost_linear_work() {
        use std::collections::VecDeque;
        use std::pin::Pin;
        use std::task::{Context, Poll};

        use http_body::Frame;

        struct Frames(VecDeque<bytes::Bytes>);
        impl http_body::Body for Frames {
            type Data = bytes::Bytes;
            type Error = Infallible;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<bytes::Bytes>, Infallible>>> {
                Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
            }
        }
        const FRAMES: usize = 4_000;
        let class_1 = service_fn(move |_: Request<super::ReplayBody<Full<bytes::Bytes>>>| {
            let mut frames = VecDeque::from([bytes::Bytes::from(
                "<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>/dir/a</D:href>\
                 <D:propstat><D:prop/><D:status>HTTP/1.1 200 OK</D:status></D:propstat>\
                 </D:response>",
            )]);
            frames.extend((0..FRAMES).map(|_| bytes::Bytes::from_static(b" <!-- -->")));
            frames.push_back(bytes::Bytes::from_static(b"</D:multistatus>"));
            async move {
                let mut res = Response::new(Frames(frames));
                *res.status_mut() = http::StatusCode::MULTI_STATUS;
                Ok::<_, Infallible>(res)
            }
        });
        let svc = LockLayer::new(MemoryLockStore::new())
            .lock_properties()
            .layer(class_1);
        let propfind = allprop("/dir");
        let mut body = svc.oneshot(propfind).await.unwrap().into_body();
        let mut taken = 0;
        while let Some(frame) = body.frame().await {
            frame.unwrap();
            taken = body.augment.as_ref().map_or(taken, |a| a.taken);
        }
        assert!(
            taken <= super::MAX_WAITING_PIECES * FRAMES,
            "{taken} pieces taken up for {FRAMES} frames"
        );
    }

    /// The elements of a batch are written out one at a time as the answer is read: however
    /// many locks cover each, the body never holds more than one element rendered (64 members
    /// under 64 shared locks with 4 KiB owners would otherwise sit in memory as 17 MB at once).
    #[tokio::test]
    async fn a_batch_is_rendered_one_element_at_a_time() {
        let store = MemoryLockStore::new();
        for _ in 0..4 {
            let lock = NewLock::new(ResourcePath::parse("/dir").unwrap())
                .scope(LockScope::Shared)
                .depth(LockDepth::Infinity)
                .owner("o".repeat(1024));
            store.create(lock).await.unwrap();
        }
        let members: String = (0..16)
            .map(|i| {
                format!(
                    "<D:response><D:href>/dir/m{i}</D:href><D:propstat><D:prop/>\
                     <D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
                )
            })
            .collect();
        let answer = format!("<D:multistatus xmlns:D=\"DAV:\">{members}</D:multistatus>");
        let class_1 = service_fn(move |_: Request<super::ReplayBody<Full<bytes::Bytes>>>| {
            let answer = answer.clone();
            async move {
                let mut res = Response::new(Full::new(bytes::Bytes::from(answer)));
                *res.status_mut() = http::StatusCode::MULTI_STATUS;
                Ok::<_, Infallible>(res)
            }
        });
        let svc = LockLayer::new(store).lock_properties().layer(class_1);
        let propfind = allprop("/dir");
        let mut body = svc.oneshot(propfind).await.unwrap().into_body();
        let mut activelocks = 0;
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            activelocks += String::from_utf8_lossy(&data)
                .matches("<D:activelock>")
                .count();
            let held = body.augment.as_ref().map_or(0, |a| a.out.len());
            assert!(held <= 1, "{held} rendered pieces held at once");
        }
        assert_eq!(
            activelocks,
            16 * 4,
            "every member lists every covering lock"
        );
    }
}
