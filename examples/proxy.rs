//! A streaming reverse proxy with a `LockLayer` in front: it turns any class-1 WebDAV server
//! (nginx's dav module, WsgiDAV without lock storage, …) into a class-2 one.
//!
//! ```text
//! cargo run --example proxy -- LISTEN_ADDR UPSTREAM_URL
//! cargo run --example proxy -- 127.0.0.1:4918 http://127.0.0.1:8080/
//!
//! # locks in Redis, shared by every proxy started like this (see `lock_store`)
//! REDIS_URL=redis://127.0.0.1:6379/ LOCK_PREFIX=dav cargo run --features redis --example proxy -- …
//!
//! # how long the upstream may do nothing (seconds, default 60): 504 before its response
//! # head, a body that ends in an error after it
//! UPSTREAM_TIMEOUT=30 cargo run --example proxy -- …
//! ```
//!
//! What the proxy does on the way:
//!
//! - The layer answers LOCK and UNLOCK itself, refuses writes that lack a lock's token and
//!   adds `DAV: 1, 2` to OPTIONS. Everything it lets through is forwarded; the forwarding
//!   service is also the layer's resource space, so the layer's own HEAD probes and the empty
//!   `PUT` (`If-None-Match: *`) of a LOCK on an unmapped URL reach the upstream.
//! - Bodies stream both ways: an upload reaches the upstream while the client still sends it, a
//!   download reaches the client while the upstream still sends it, 207 answers too: their
//!   hrefs are mapped as they pass, and only the text after the last `<` of a piece waits
//!   for the next piece.
//! - Hop-by-hop headers (RFC 9110 §7.6.1: `Connection` and every header it names,
//!   `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`,
//!   `Proxy-Authenticate`, `Proxy-Authorization`) are dropped in both directions; `Via` is
//!   added in both directions (RFC 9110 §7.6.3). `Expect` is dropped too: the proxy's own
//!   server already answered `100 Continue` when the body was first read.
//! - The `If` header is dropped after the layer evaluated it: its state tokens are the layer's,
//!   a class-1 upstream never issued them and would answer 412 for them (RFC 4918 §10.4.1).
//! - `Host` becomes the upstream's authority. The client-visible root `/` maps to the
//!   upstream URL's path (`http://127.0.0.1:8080/dav/` serves `/x` from `/dav/x`): the request
//!   path, the `Destination` header (when it names this proxy or no authority; a `Destination`
//!   on another server is passed unchanged and the upstream refuses it), and, back, `Location`
//!   and the hrefs of 207 bodies (absolute ones written with the upstream's authority too:
//!   servers that build them from `Host` see the upstream's).
//! - An upstream that cannot be reached gives 502, one that takes no upload piece and sends no
//!   response head for `UPSTREAM_TIMEOUT` gives 504 (each piece of an upload that goes out
//!   starts the time again, so a big PUT is never cut off while it streams). A response body
//!   from which nothing arrives for `UPSTREAM_TIMEOUT` ends in an error, so a stalled upstream
//!   holds neither the client nor the layer's hold on the written paths.
//!
//! `match_any_authority` is not needed: the layer sits in front of the proxy and sees the
//! requests as the client sent them, so the authorities of `If` tags and `Destination` are
//! the ones the client used in `Host`.

#[path = "common/lock_store.rs"]
mod lock_store;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder};
use tower_locks::DynLockStore;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of every request to and every response from the upstream.
type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most text a 207 body may hold back while its hrefs are mapped (one piece without a
/// `<`): past it, what is held passes as it is.
const MAX_HELD: usize = 1 << 20;
const VIA: &str = "1.1 tower-locks-proxy";

/// The hop-by-hop headers of RFC 9110 §7.6.1 (and the obsolete `Keep-Alive` and
/// `Proxy-Connection`), dropped in both directions besides the ones `Connection` names.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Where the proxy forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Upstream {
    scheme: Scheme,
    authority: Authority,
    /// The upstream path the client-visible `/` maps to, without its trailing slash: `""`
    /// for `/`, `"/dav"` for `/dav/`.
    base: String,
}

impl Upstream {
    fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("bad upstream URL {url:?}: {e}"))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or("the upstream URL needs http://")?;
        if scheme != Scheme::HTTP {
            return Err(format!(
                "only http:// upstreams are supported, not {scheme}"
            ));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or("the upstream URL needs a host")?;
        if uri.query().is_some() {
            return Err("the upstream URL may not have a query".to_owned());
        }
        let base = uri.path().trim_end_matches('/').to_owned();
        Ok(Upstream {
            scheme,
            authority,
            base,
        })
    }

    /// `http://host:port`.
    fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }

    /// The upstream URI of a client-visible path (and query), which starts with `/`.
    fn uri_for(&self, path_and_query: &str) -> Option<Uri> {
        if !path_and_query.starts_with('/') {
            return None;
        }
        format!("{}{}{path_and_query}", self.origin(), self.base)
            .parse()
            .ok()
    }

    /// The client-visible path of an upstream path, `None` outside the base path.
    fn client_path<'a>(&self, upstream_path: &'a str) -> Option<&'a str> {
        if self.base.is_empty() {
            return Some(upstream_path);
        }
        let rest = upstream_path.strip_prefix(self.base.as_str())?;
        if rest.is_empty() {
            Some("/")
        } else if rest.starts_with('/') {
            Some(rest)
        } else {
            None
        }
    }
}

/// A request body that tells `progress` each time a piece of it goes to the upstream.
struct Sending {
    body: ProxyBody,
    progress: Arc<tokio::sync::Notify>,
}

impl http_body::Body for Sending {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = polled {
            self.progress.notify_one();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The upstream sent nothing of a response body for the time limit.
#[derive(Debug)]
struct Stalled;

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the upstream sent nothing for the time limit")
    }
}

impl std::error::Error for Stalled {}

/// A response body that fails with [`Stalled`] when the upstream keeps it waiting for `limit`.
/// The time runs from the moment it first has nothing to give after a piece, so a client that
/// reads slowly never trips it.
struct Idle {
    body: ProxyBody,
    limit: Duration,
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for Idle {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            this.waiting = None;
            return Poll::Ready(frame);
        }
        let limit = this.limit;
        let waiting = this
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match waiting.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(Stalled)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A 207 body with its hrefs mapped as it streams: [`map_hrefs`] on each run of text up to
/// the last `<` that has arrived. What follows that `<` waits for the next piece, which tells
/// whether it starts an `href` element and what its text begins with. A body whose XML
/// declaration names another encoding than UTF-8 passes as it is.
struct MapHrefs {
    body: ProxyBody,
    client_origin: String,
    up: Arc<Upstream>,
    /// What arrived from the last `<` on.
    held: Vec<u8>,
    /// Frames ready to go: the rest of `held` and the trailers, once the body has ended.
    ready: std::collections::VecDeque<http_body::Frame<Bytes>>,
    ended: bool,
    /// Whether the body's start (and its XML declaration, if any) has been read.
    started: bool,
    /// The body is in another encoding than UTF-8: it passes unchanged.
    foreign: bool,
}

impl MapHrefs {
    fn new(body: ProxyBody, client_origin: String, up: Arc<Upstream>) -> Self {
        MapHrefs {
            body,
            client_origin,
            up,
            held: Vec::new(),
            ready: std::collections::VecDeque::new(),
            ended: false,
            started: false,
            foreign: false,
        }
    }

    /// The mapped text of `held` up to `end`, which leaves `held`. When `end` is a `<` that
    /// stays, it is mapped with the text before it (an href's text ends where it starts) and
    /// left out of the result: [`map_hrefs`] passes a `<` as it is.
    fn map_until(&mut self, end: usize) -> Bytes {
        if !self.started {
            self.started = true;
            self.foreign = declared_encoding(&self.held).is_some_and(|e| {
                !e.eq_ignore_ascii_case("utf-8") && !e.eq_ignore_ascii_case("utf8")
            });
        }
        if self.foreign {
            return Bytes::from(self.held.drain(..end).collect::<Vec<u8>>());
        }
        let look = self.held.get(end) == Some(&b'<');
        let with_next = end + usize::from(look);
        let mut mapped = map_hrefs(&self.held[..with_next], &self.client_origin, &self.up);
        if look {
            mapped.pop();
        }
        self.held.drain(..end);
        Bytes::from(mapped)
    }

    /// Where to cut `held` once a piece has arrived: at its last `<` past the first byte;
    /// without one, nowhere (`None`: wait for more) until it holds more than [`MAX_HELD`],
    /// then at its end, short of a character the piece cut in two.
    fn cut(&self) -> Option<usize> {
        match self.held.iter().rposition(|&b| b == b'<') {
            Some(last) if last > 0 => Some(last),
            _ if self.held.len() > MAX_HELD => Some(match std::str::from_utf8(&self.held) {
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                _ => self.held.len(),
            }),
            _ => None,
        }
    }
}

/// Whether `Content-Type` names a charset other than UTF-8.
fn foreign_charset(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    value.split(';').skip(1).any(|param| {
        let (name, charset) = param.split_once('=').unwrap_or((param, ""));
        let charset = charset.trim().trim_matches('"');
        name.trim().eq_ignore_ascii_case("charset")
            && !charset.eq_ignore_ascii_case("utf-8")
            && !charset.eq_ignore_ascii_case("utf8")
    })
}

/// The encoding an XML declaration at the start of `text` names (after a UTF-8 byte order
/// mark, if any).
fn declared_encoding(text: &[u8]) -> Option<&str> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let declaration = text.strip_prefix(b"<?xml")?;
    let declaration = &declaration[..declaration.windows(2).position(|w| w == b"?>")?];
    let declaration = std::str::from_utf8(declaration).ok()?;
    let value = declaration.split_once("encoding")?.1.trim_start();
    let value = value.strip_prefix('=')?.trim_start();
    let quote = value.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    value[1..].split(quote).next()
}

impl http_body::Body for MapHrefs {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(frame) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(frame)));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            let frame = match std::task::ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    this.ended = true;
                    let rest = this.map_until(this.held.len());
                    this.ready.push_back(http_body::Frame::data(rest));
                    continue;
                }
            };
            match frame.into_data() {
                Ok(data) => {
                    this.held.extend_from_slice(&data);
                    let Some(end) = this.cut() else {
                        continue;
                    };
                    let mapped = this.map_until(end);
                    if !mapped.is_empty() {
                        return Poll::Ready(Some(Ok(http_body::Frame::data(mapped))));
                    }
                }
                Err(trailers) => {
                    this.ended = true;
                    let rest = this.map_until(this.held.len());
                    this.ready.push_back(http_body::Frame::data(rest));
                    this.ready.push_back(trailers);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.ready.is_empty()
    }
}

/// Drop the hop-by-hop headers: those `Connection` names, then the fixed list.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// The upstream form of a `Destination` value; `None` when it cannot be mapped (no URI, or an
/// authority that is not the request's), which the proxy refuses with 400 rather than let the
/// upstream read it otherwise than the layer did.
fn map_destination(
    value: &HeaderValue,
    client_host: Option<&str>,
    up: &Upstream,
) -> Option<HeaderValue> {
    let uri: Uri = value.to_str().ok()?.parse().ok()?;
    if let (Some(authority), Some(host)) = (uri.authority(), client_host) {
        if !same_authority(authority.as_str(), host) {
            return None;
        }
    }
    let path = uri.path_and_query()?.as_str();
    if !path.starts_with('/') || splits_otherwise(path) {
        return None;
    }
    HeaderValue::from_str(&format!("{}{}{path}", up.origin(), up.base)).ok()
}

/// Whether two authorities name the same server: case aside, and the default port written
/// or not (as the layer compares them).
fn same_authority(a: &str, b: &str) -> bool {
    let plain = |s: &str| s.to_ascii_lowercase().trim_end_matches(":80").to_owned();
    plain(a) == plain(b)
}

/// Whether the upstream may split a path into other segments than the layer did: the layer
/// keeps `%2F` inside a segment, a server such as nginx decodes it into a `/`.
fn splits_otherwise(path_and_query: &str) -> bool {
    let path = path_and_query.split('?').next().unwrap_or("");
    path.contains("%2F") || path.contains("%2f")
}

/// The client-visible form of an upstream `Location`, `None` to pass it unchanged (it points
/// elsewhere).
fn map_location(
    value: &HeaderValue,
    client_origin: Option<&str>,
    up: &Upstream,
) -> Option<HeaderValue> {
    let s = value.to_str().ok()?;
    let origin = up.origin();
    let mapped = if s.len() >= origin.len()
        && s[..origin.len()].eq_ignore_ascii_case(&origin)
        && s[origin.len()..].starts_with('/')
    {
        let path = up.client_path(&s[origin.len()..])?;
        format!("{}{path}", client_origin.unwrap_or(""))
    } else if s.starts_with('/') && !s.starts_with("//") {
        up.client_path(s)?.to_owned()
    } else {
        return None;
    };
    HeaderValue::from_str(&mapped).ok()
}

/// Map the hrefs of a 207 body from upstream to client-visible paths: the text of an `href`
/// element (any namespace prefix) that starts with the upstream's origin and base path, or
/// with the base path, loses them. Other elements (property values) are left as they are.
/// Textual on purpose: the element may carry any namespace prefix.
fn map_hrefs(body: &[u8], client_origin: &str, up: &Upstream) -> Vec<u8> {
    // Not UTF-8 (a body in another charset that did not say so): passed unchanged rather than
    // mangled.
    let Ok(text) = std::str::from_utf8(body) else {
        return body.to_vec();
    };
    let absolute = format!(">{}{}", up.origin(), up.base);
    let relative = format!(">{}", up.base);
    let mut out = String::with_capacity(text.len());
    let mut rest: &str = text;
    while let Some(i) = rest.find('>') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let (prefix, replacement) = if !opens_href(&out) {
            out.push('>');
            rest = &rest[1..];
            continue;
        } else if rest.starts_with(&absolute) {
            (absolute.len(), format!(">{client_origin}"))
        } else if !up.base.is_empty() && rest.starts_with(&relative) {
            (relative.len(), ">".to_owned())
        } else {
            out.push('>');
            rest = &rest[1..];
            continue;
        };
        let after = &rest[prefix..];
        if after.starts_with('/') {
            out.push_str(&replacement);
            rest = after;
        } else if after.starts_with('<') {
            out.push_str(&replacement);
            out.push('/');
            rest = after;
        } else {
            out.push('>');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out.into_bytes()
}

/// Whether `text` ends inside the start tag of an `href` element (`<D:href`, `<href`, with
/// any attributes), whose `>` comes next.
fn opens_href(text: &str) -> bool {
    let Some(lt) = text.rfind('<') else {
        return false;
    };
    let tag = &text[lt + 1..];
    let name = tag.split([' ', '\t', '\r', '\n', '/']).next().unwrap_or("");
    !tag.starts_with('/') && !tag.ends_with('/') && name.rsplit(':').next() == Some("href")
}

/// A body held whole.
fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn status_response(status: StatusCode) -> Response<ProxyBody> {
    let mut res = Response::new(full(format!("{status}\n")));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// The forwarding service: every request it gets goes to the upstream.
#[derive(Clone)]
struct Forward {
    client: Client<HttpConnector, ProxyBody>,
    up: Arc<Upstream>,
    timeout: Duration,
}

impl std::fmt::Debug for Forward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forward")
            .field("upstream", &self.up)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Forward {
    fn new(up: Upstream, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        Forward {
            client: Client::builder(TokioExecutor::new()).build(connector),
            up: Arc::new(up),
            timeout,
        }
    }
}

impl<B> Service<Request<B>> for Forward
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.send(req.map(|body| body.map_err(Into::into).boxed_unsync()))
    }
}

impl Forward {
    /// Forward one request (what `call` does, for a body already boxed).
    fn send(
        &self,
        req: Request<ProxyBody>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>> {
        let (mut parts, body) = req.into_parts();
        let up = self.up.clone();
        // The request's authority as the layer reads it: the target's, else `Host`.
        let client_host = parts
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                let host = parts.headers.get(header::HOST)?;
                host.to_str().ok().map(str::to_owned)
            });
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        type Answer = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;
        let bad_request =
            || -> Answer { Box::pin(async { Ok(status_response(StatusCode::BAD_REQUEST)) }) };
        if splits_otherwise(path_and_query) {
            return bad_request();
        }
        let Some(uri) = up.uri_for(path_and_query) else {
            return bad_request();
        };
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        let headers = &mut parts.headers;
        strip_hop_by_hop(headers);
        headers.remove(header::EXPECT);
        headers.remove("if");
        if let Some(destination) = headers.get("destination") {
            match map_destination(destination, client_host.as_deref(), &up) {
                Some(mapped) => {
                    headers.insert("destination", mapped);
                }
                None => return bad_request(),
            }
        }
        if let Ok(host) = HeaderValue::from_str(up.authority.as_str()) {
            headers.insert(header::HOST, host);
        }
        headers.append(header::VIA, HeaderValue::from_static(VIA));

        // The time limit is for the upstream doing nothing: every piece of the upload that goes
        // out starts it again, so a big PUT takes as long as it takes.
        let progress = Arc::new(tokio::sync::Notify::new());
        let body = Sending {
            body,
            progress: Arc::clone(&progress),
        };
        let request = self
            .client
            .request(Request::from_parts(parts, body.boxed_unsync()));
        let timeout = self.timeout;
        Box::pin(async move {
            let mut request = std::pin::pin!(request);
            let answered = loop {
                tokio::select! {
                    res = &mut request => break Some(res),
                    () = progress.notified() => {}
                    () = tokio::time::sleep(timeout) => break None,
                }
            };
            let res = match answered {
                None => return Ok(status_response(StatusCode::GATEWAY_TIMEOUT)),
                Some(Err(e)) => {
                    eprintln!("upstream error: {e}");
                    return Ok(status_response(StatusCode::BAD_GATEWAY));
                }
                Some(Ok(res)) => res,
            };
            let (mut parts, body) = res.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            let client_origin = client_host.map(|h| format!("http://{h}"));
            if let Some(mapped) = parts
                .headers
                .get(header::LOCATION)
                .and_then(|l| map_location(l, client_origin.as_deref(), &up))
            {
                parts.headers.insert(header::LOCATION, mapped);
            }
            parts
                .headers
                .append(header::VIA, HeaderValue::from_static(VIA));
            let body = Idle {
                body: body.map_err(Into::into).boxed_unsync(),
                limit: timeout,
                waiting: None,
            }
            .boxed_unsync();
            // Only a plain UTF-8 207 is rewritten: an encoded one (gzip, …), or one in another
            // charset, passes as it came.
            let encoded = parts.headers.contains_key(header::CONTENT_ENCODING);
            if parts.status != StatusCode::MULTI_STATUS
                || encoded
                || foreign_charset(&parts.headers)
            {
                return Ok(Response::from_parts(parts, body));
            }
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.remove(header::ETAG);
            let origin = client_origin.unwrap_or_default();
            let body = MapHrefs::new(body, origin, up).boxed_unsync();
            Ok(Response::from_parts(parts, body))
        })
    }
}

/// What a probe asks when HEAD is refused: is there a resource, and its ETag.
const PROBE_PROPFIND: &str = r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getetag/></D:prop></D:propfind>"#;

/// The layer's resource space: the forwarding service, except that a HEAD probe the
/// upstream refuses (403 or 405, as nginx without `autoindex` and WsgiDAV without its
/// directory browser answer for a collection) is asked again as a PROPFIND with Depth 0: 207
/// means the resource exists (with the ETag it lists), 404 or 410 that it does not. Without
/// this, a collection's existence would be unknown: a LOCK on it would lock it without
/// creating anything, and writes into a depth-0-locked collection would need its token.
#[derive(Clone, Debug)]
struct Space {
    forward: Forward,
}

impl Service<Request<tower_locks::EmptyBody>> for Space {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<tower_locks::EmptyBody>) -> Self::Future {
        let forward = self.forward.clone();
        let req = req.map(|body| body.map_err(|never| match never {}).boxed_unsync());
        if req.method() != http::Method::HEAD {
            return forward.send(req);
        }
        let (uri, headers) = (req.uri().clone(), req.headers().clone());
        Box::pin(async move {
            let res = forward.send(req).await?;
            if !matches!(
                res.status(),
                StatusCode::FORBIDDEN | StatusCode::METHOD_NOT_ALLOWED
            ) {
                return Ok(res);
            }
            let mut propfind = Request::new(full(PROBE_PROPFIND));
            *propfind.method_mut() = http::Method::from_bytes(b"PROPFIND").expect("a method");
            *propfind.uri_mut() = uri;
            *propfind.headers_mut() = headers;
            let h = propfind.headers_mut();
            h.insert("depth", HeaderValue::from_static("0"));
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml; charset=utf-8"),
            );
            let answer = forward.send(propfind).await?;
            let status = answer.status();
            if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                return Ok(status_response(status));
            }
            if status != StatusCode::MULTI_STATUS {
                return Ok(res);
            }
            // At most 1 MiB of it: one resource's two properties.
            let (mut answer, mut body) = (answer.into_body(), Vec::new());
            while let Some(frame) = answer.frame().await {
                match frame.map(|f| f.into_data()) {
                    Ok(Ok(data)) if body.len() + data.len() <= 1 << 20 => {
                        body.extend_from_slice(&data)
                    }
                    Ok(Err(_trailers)) => {}
                    _ => return Ok(res),
                }
            }
            let mut exists = status_response(StatusCode::OK);
            if let Some(etag) = getetag(&body).and_then(|e| HeaderValue::from_str(&e).ok()) {
                exists.headers_mut().insert(header::ETAG, etag);
            }
            Ok(exists)
        })
    }
}

/// The text of the first non-empty DAV:getetag element of a 207 body (any prefix).
fn getetag(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("getetag>")? + "getetag>".len();
    let value = &text[start..];
    let value = value[..value.find('<')?].trim();
    (!value.is_empty()).then(|| value.replace("&quot;", "\"").replace("&amp;", "&"))
}

/// The layer in front of the forwarding service, which (through `Space`) is also its
/// resource space.
fn lock_layer(store: Arc<dyn DynLockStore>, forward: Forward) -> tower_locks::LockLayer {
    tower_locks::LockLayer::from_arc(store).resource_space(Space { forward })
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: proxy LISTEN_ADDR UPSTREAM_URL   (e.g. 127.0.0.1:4918 http://127.0.0.1:8080/)"
        );
        std::process::exit(2);
    };
    let addr: SocketAddr = listen.parse()?;
    let up = Upstream::parse(&upstream)?;
    let timeout = match std::env::var("UPSTREAM_TIMEOUT") {
        Ok(secs) => Duration::from_secs_f64(secs.parse()?),
        Err(_) => DEFAULT_TIMEOUT,
    };

    let store = lock_store::lock_store("tower-locks-proxy").await?;
    let forward = Forward::new(up.clone(), timeout);
    let locks = lock_layer(store, forward.clone());
    let svc = ServiceBuilder::new()
        .layer(locks.clone())
        // DAV:lockdiscovery and DAV:supportedlock in the upstream's PROPFIND answers.
        .layer(locks.lock_properties())
        .service(forward);

    let listener = TcpListener::bind(addr).await?;
    println!(
        "proxy listening on http://{}/ for {}{}/",
        listener.local_addr()?,
        up.origin(),
        up.base
    );
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => {
                println!("shutting down");
                return Ok(());
            }
        };
        let svc = TowerToHyperService::new(svc.clone());
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                eprintln!("connection error: {e}");
            }
        });
    }
}

/// An empty body.
#[cfg(test)]
fn empty() -> ProxyBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Incoming;
    use std::sync::Mutex;
    use tokio::sync::{mpsc, oneshot};
    use tower::ServiceExt;

    /// A request body fed through a channel: it is not complete until the sender is dropped.
    pub(super) struct ChannelBody(pub(super) mpsc::Receiver<Bytes>);

    impl http_body::Body for ChannelBody {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
            self.0
                .poll_recv(cx)
                .map(|chunk| chunk.map(|c| Ok(http_body::Frame::data(c))))
        }
    }

    type Seen = Arc<Mutex<Vec<(http::request::Parts, Bytes)>>>;

    const COLL_207: &str = r#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>/coll/</D:href><D:propstat><D:prop><D:getetag>"c1"</D:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>"#;

    /// An upstream on loopback that records each request (head and whole body) and answers
    /// (see the `match`) with a few hop-by-hop headers and a `Location`.
    async fn recording_upstream() -> (SocketAddr, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Seen = Arc::default();
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let record = record.clone();
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let record = record.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let location = format!("http://{}{}", addr, parts.uri.path());
                        // A collection /coll/ exists but refuses HEAD (as WsgiDAV without its
                        // directory browser does); nothing else exists; anything else creates.
                        let (status, reply) = match (parts.method.as_str(), parts.uri.path()) {
                            ("HEAD", "/coll/") => (StatusCode::FORBIDDEN, ""),
                            ("PROPFIND", "/coll/") => (StatusCode::MULTI_STATUS, COLL_207),
                            ("HEAD" | "PROPFIND", _) => (StatusCode::NOT_FOUND, ""),
                            _ => (StatusCode::CREATED, ""),
                        };
                        record.lock().unwrap().push((parts, body));
                        Response::builder()
                            .status(status)
                            .header("connection", "x-private")
                            .header("x-private", "1")
                            .header("keep-alive", "timeout=5")
                            .header("proxy-authenticate", "Basic")
                            .header("x-end-to-end", "1")
                            .header("location", location)
                            .body(Full::new(Bytes::from_static(reply.as_bytes())))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc),
                );
            }
        });
        (addr, seen)
    }

    fn forward_to(url: &str) -> Forward {
        Forward::new(Upstream::parse(url).unwrap(), Duration::from_secs(5))
    }

    #[test]
    fn hop_by_hop_headers_are_stripped() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("connection", "close, X-Private"),
            ("connection", "x-other"),
            ("x-private", "1"),
            ("x-other", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic eDp5"),
            ("proxy-authenticate", "Basic"),
            ("authorization", "Basic eDp5"),
            ("destination", "http://a/b"),
            ("content-length", "3"),
        ] {
            h.append(name, HeaderValue::from_static(value));
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["authorization", "content-length", "destination"]);
    }

    #[test]
    fn upstream_url_and_base_path() {
        let up = Upstream::parse("http://10.0.0.1:8080/dav/").unwrap();
        assert_eq!(up.base, "/dav");
        assert_eq!(
            up.uri_for("/a%20b?x=1").unwrap(),
            "http://10.0.0.1:8080/dav/a%20b?x=1"
        );
        assert_eq!(up.client_path("/dav/x/"), Some("/x/"));
        assert_eq!(up.client_path("/dav"), Some("/"));
        assert_eq!(up.client_path("/davx"), None);
        let root = Upstream::parse("http://10.0.0.1:8080").unwrap();
        assert_eq!(root.base, "");
        assert_eq!(root.uri_for("/x").unwrap(), "http://10.0.0.1:8080/x");
        assert!(Upstream::parse("https://10.0.0.1/").is_err());
    }

    #[test]
    fn destination_is_mapped_to_the_upstream() {
        let up = Upstream::parse("http://10.0.0.1:8080/dav/").unwrap();
        let host = Some("127.0.0.1:4918");
        let map = |d: &'static str| {
            map_destination(&HeaderValue::from_static(d), host, &up)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            map("http://127.0.0.1:4918/a%20b/c").as_deref(),
            Some("http://10.0.0.1:8080/dav/a%20b/c")
        );
        assert_eq!(map("/a/c").as_deref(), Some("http://10.0.0.1:8080/dav/a/c"));
        // Another server: unchanged (the upstream answers 502 for it, as RFC 4918 says).
        assert_eq!(map("http://elsewhere.example/a"), None);
    }

    #[test]
    fn location_and_hrefs_are_mapped_back() {
        let up = Upstream::parse("http://10.0.0.1:8080/dav/").unwrap();
        let client = Some("http://127.0.0.1:4918");
        let map = |l: &'static str| {
            map_location(&HeaderValue::from_static(l), client, &up)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            map("http://10.0.0.1:8080/dav/x").as_deref(),
            Some("http://127.0.0.1:4918/x")
        );
        assert_eq!(map("/dav/x/").as_deref(), Some("/x/"));
        assert_eq!(map("http://elsewhere.example/dav/x"), None);
        assert_eq!(map("/other"), None);

        let body = b"<D:href>/dav/a/</D:href><d:href>http://10.0.0.1:8080/dav</d:href><x>/davy</x>\
            <D:displayname>/dav/b</D:displayname>";
        assert_eq!(
            String::from_utf8(map_hrefs(body, "http://127.0.0.1:4918", &up)).unwrap(),
            "<D:href>/a/</D:href><d:href>http://127.0.0.1:4918/</d:href><x>/davy</x>\
             <D:displayname>/dav/b</D:displayname>"
        );
    }

    #[test]
    fn getetag_from_a_multistatus() {
        let body = br#"<D:multistatus xmlns:D="DAV:"><D:response><D:propstat><D:prop><D:getetag/></D:prop></D:propstat><D:propstat><D:prop><D:getetag>&quot;abc&quot;</D:getetag></D:prop></D:propstat></D:response></D:multistatus>"#;
        assert_eq!(getetag(body).as_deref(), Some("\"abc\""));
        assert_eq!(getetag(b"<D:prop><D:getetag/></D:prop>"), None);
        let body = br#"<ns0:getetag>"x-1"</ns0:getetag>"#;
        assert_eq!(getetag(body).as_deref(), Some("\"x-1\""));
    }

    #[tokio::test]
    async fn host_destination_and_hop_by_hop_both_ways() {
        let (addr, seen) = recording_upstream().await;
        let forward = forward_to(&format!("http://{addr}/dav/"));
        let req = Request::builder()
            .method("COPY")
            .uri("/a/b?q=1")
            .header("host", "127.0.0.1:4918")
            .header("destination", "http://127.0.0.1:4918/a/c")
            .header("connection", "x-hop")
            .header("x-hop", "1")
            .header("te", "trailers")
            .header("if", "(<urn:uuid:00000000-0000-4000-8000-000000000000>)")
            .header("x-end-to-end", "1")
            .body(Full::new(Bytes::from_static(b"abc")))
            .unwrap();
        let res = forward.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let h = res.headers();
        for hop in [
            "connection",
            "x-private",
            "keep-alive",
            "proxy-authenticate",
        ] {
            assert!(h.get(hop).is_none(), "{hop} reached the client");
        }
        assert_eq!(h["x-end-to-end"], "1");
        assert_eq!(h["location"], "http://127.0.0.1:4918/a/b");
        assert_eq!(h["via"], VIA);

        let seen = seen.lock().unwrap();
        let (parts, body) = &seen[0];
        assert_eq!(parts.method, "COPY");
        assert_eq!(parts.uri, "/dav/a/b?q=1");
        assert_eq!(parts.headers["host"], addr.to_string());
        assert_eq!(
            parts.headers["destination"],
            format!("http://{addr}/dav/a/c")
        );
        assert_eq!(parts.headers["x-end-to-end"], "1");
        for hop in ["x-hop", "te", "if"] {
            assert!(
                parts.headers.get(hop).is_none(),
                "{hop} reached the upstream"
            );
        }
        assert_eq!(&body[..], b"abc");
    }

    #[tokio::test]
    async fn dead_upstream_is_502() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let res = forward_to(&format!("http://{addr}/"))
            .oneshot(Request::get("/x").body(empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    }

    #[tokio::test]
    async fn silent_upstream_is_504() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts and reads, never answers.
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                held.push(stream);
            }
        });
        let forward = Forward::new(
            Upstream::parse(&format!("http://{addr}/")).unwrap(),
            Duration::from_millis(300),
        );
        let res = forward
            .oneshot(Request::get("/x").body(empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
        silent.abort();
    }

    #[tokio::test]
    async fn uploads_stream_to_the_upstream() {
        // The upstream tells when the first chunk arrived, then reads the rest.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (first_tx, first_rx) = oneshot::channel::<Bytes>();
        let first_tx = Arc::new(Mutex::new(Some(first_tx)));
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let first_tx = first_tx.clone();
                async move {
                    let mut body = req.into_body();
                    let mut all = Vec::new();
                    while let Some(frame) = body.frame().await {
                        if let Ok(data) = frame.unwrap().into_data() {
                            if let Some(tx) = first_tx.lock().unwrap().take() {
                                let _ = tx.send(data.clone());
                            }
                            all.extend_from_slice(&data);
                        }
                    }
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(all))))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });

        let (tx, rx) = mpsc::channel(1);
        let req = Request::put("/big").body(ChannelBody(rx)).unwrap();
        let pending = tokio::spawn(forward_to(&format!("http://{addr}/")).oneshot(req));
        tx.send(Bytes::from_static(b"first ")).await.unwrap();
        // The upstream has the first chunk while the upload is still open.
        let first = tokio::time::timeout(Duration::from_secs(5), first_rx)
            .await
            .expect("the first chunk did not reach the upstream before the body ended")
            .unwrap();
        assert_eq!(&first[..], b"first ");
        tx.send(Bytes::from_static(b"second")).await.unwrap();
        drop(tx);
        let res = pending.await.unwrap().unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let echoed = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&echoed[..], b"first second");
    }

    /// An exclusive LOCK on `path` through the proxy's stack in front of a recording upstream:
    /// the answer, and what the upstream saw.
    async fn lock_through_proxy(
        path: &str,
    ) -> (Response<tower_locks::ResponseBody<ProxyBody>>, Seen) {
        let (addr, seen) = recording_upstream().await;
        let forward = forward_to(&format!("http://{addr}/"));
        let svc = ServiceBuilder::new()
            .layer(lock_layer(
                Arc::new(tower_locks::MemoryLockStore::new()),
                forward.clone(),
            ))
            .service(forward);
        let lockinfo = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;
        let req = Request::builder()
            .method("LOCK")
            .uri(path)
            .header("host", "127.0.0.1:4918")
            .body(Full::new(Bytes::from_static(lockinfo.as_bytes())))
            .unwrap();
        (svc.oneshot(req).await.unwrap(), seen)
    }

    #[tokio::test]
    async fn lock_on_an_unmapped_url_creates_it_upstream() {
        let (res, seen) = lock_through_proxy("/new.txt").await;
        assert!(res.status().is_success(), "{}", res.status());
        assert!(res.headers().contains_key("lock-token"));
        let seen = seen.lock().unwrap();
        assert!(seen.iter().any(|(p, _)| p.method == "PUT"
            && p.uri == "/new.txt"
            && p.headers["if-none-match"] == "*"));
    }

    #[tokio::test]
    async fn a_collection_that_refuses_head_is_found_with_propfind() {
        let (res, seen) = lock_through_proxy("/coll/").await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "an existing collection is locked"
        );
        let seen = seen.lock().unwrap();
        assert!(seen
            .iter()
            .any(|(p, _)| p.method == "PROPFIND" && p.headers["depth"] == "0"));
        assert!(
            !seen.iter().any(|(p, _)| p.method == "PUT"),
            "nothing is created"
        );
    }
}

#[cfg(test)]
mod layer_and_upstream_agree {
    use super::*;
    use hyper::body::Incoming;
    use std::sync::Mutex;
    use tower::ServiceExt;

    type Seen = Arc<Mutex<Vec<(http::request::Parts, Bytes)>>>;
    /// An answer of the upstream's: status, headers and body.
    type Fixed = (StatusCode, Vec<(&'static str, &'static str)>, Vec<u8>);

    /// An upstream on loopback that records what it gets: HEAD and PROPFIND get 404,
    /// everything else 201 (or `fixed` for every request).
    async fn upstream(fixed: Option<Fixed>) -> (SocketAddr, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Seen = Arc::default();
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let record = record.clone();
                let fixed = fixed.clone();
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let record = record.clone();
                    let fixed = fixed.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|c| c.to_bytes())
                            .unwrap_or_default();
                        let mut b = Response::builder();
                        let reply = if let Some((st, hs, body)) = fixed {
                            b = b.status(st);
                            for (k, v) in hs {
                                b = b.header(k, v);
                            }
                            body
                        } else {
                            b = b.status(match parts.method.as_str() {
                                "HEAD" | "PROPFIND" => StatusCode::NOT_FOUND,
                                _ => StatusCode::CREATED,
                            });
                            Vec::new()
                        };
                        record.lock().unwrap().push((parts, body));
                        b.body(Full::new(Bytes::from(reply)))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc),
                );
            }
        });
        (addr, seen)
    }

    fn stack(
        url: &str,
    ) -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<tower_locks::ResponseBody<ProxyBody>>,
        Error = Infallible,
    > + Clone {
        let forward = Forward::new(Upstream::parse(url).unwrap(), Duration::from_secs(5));
        ServiceBuilder::new()
            .layer(lock_layer(
                Arc::new(tower_locks::MemoryLockStore::new()),
                forward.clone(),
            ))
            .service(forward)
    }

    const LOCKINFO: &str = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;

    /// The proxy in front of an upstream at `base`, with `path` locked by somebody else; the
    /// upstream's record starts empty.
    async fn locked_behind(
        base: &str,
        path: &str,
    ) -> (
        impl Service<
                Request<Full<Bytes>>,
                Response = Response<tower_locks::ResponseBody<ProxyBody>>,
                Error = Infallible,
            > + Clone,
        Seen,
    ) {
        let (addr, seen) = upstream(None).await;
        let svc = stack(&format!("http://{addr}{base}"));
        let lock = req("LOCK", path, &[], LOCKINFO);
        let res = svc.clone().oneshot(lock).await.unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        seen.lock().unwrap().clear();
        (svc, seen)
    }

    fn req(
        method: &str,
        uri: &str,
        hs: &[(&str, &str)],
        body: &'static str,
    ) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "127.0.0.1:4918");
        for (k, v) in hs {
            b = b.header(*k, *v);
        }
        b.body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    }

    /// A 207 that is encoded (gzip) or not UTF-8 reaches the client byte for byte: its hrefs
    /// cannot be read, so they are not rewritten.
    #[tokio::test]
    async fn an_encoded_or_foreign_charset_207_passes_unchanged() {
        let body: Vec<u8> = vec![
            0x1f, 0x8b, 0x08, 0x00, 0xff, 0xfe, 0x3e, 0x2f, 0x64, 0x61, 0x76,
        ];
        let headers = vec![
            ("content-encoding", "gzip"),
            ("content-type", "application/xml"),
        ];
        let (addr, _) = upstream(Some((StatusCode::MULTI_STATUS, headers, body.clone()))).await;
        let up = Upstream::parse(&format!("http://{addr}/dav/")).unwrap();
        let forward = Forward::new(up.clone(), Duration::from_secs(5));
        let propfind = req("PROPFIND", "/", &[("accept-encoding", "gzip")], "");
        let res = forward.oneshot(propfind).await.unwrap();
        assert_eq!(res.status(), StatusCode::MULTI_STATUS);
        let got = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&got[..], &body[..]);
        // ISO-8859-1 text: left as it is.
        let latin1 = b"<D:href>/dav/caf\xe9</D:href>";
        assert_eq!(
            map_hrefs(latin1, "http://127.0.0.1:4918", &up),
            latin1.to_vec()
        );
    }

    /// The upstream's time limit runs from the end of the upload: a PUT whose body takes
    /// longer to send than the limit (here 0.8 s against 0.3 s) is not cut off with a 504.
    #[tokio::test]
    async fn a_slow_upload_is_not_timed_out() {
        let (addr, _) = upstream(None).await;
        let up = Upstream::parse(&format!("http://{addr}/")).unwrap();
        let forward = Forward::new(up, Duration::from_millis(300));
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        let put = Request::put("/big")
            .body(super::tests::ChannelBody(rx))
            .unwrap();
        let pending = tokio::spawn(forward.oneshot(put));
        for _ in 0..8 {
            tx.send(Bytes::from_static(b"chunk")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(tx);
        let res = pending.await.unwrap().unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }

    /// A `%2F` is one segment to the layer and a `/` to servers that decode it (nginx): such
    /// a path is refused, never forwarded for the upstream to read as the locked path.
    #[tokio::test]
    async fn an_encoded_slash_is_refused() {
        let (svc, seen) = locked_behind("/", "/dir/a.txt").await;
        let res = svc
            .clone()
            .oneshot(req("PUT", "/dir/a.txt", &[], "x"))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::LOCKED);
        // nginx (and any server that decodes %2F) would write /dir/a.txt for this.
        let res = svc
            .clone()
            .oneshot(req("PUT", "/dir%2Fa.txt", &[], "evil"))
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(
            seen.iter().all(|(p, _)| p.method != "PUT"),
            "PUT /dir%2Fa.txt reached the upstream unlocked"
        );
    }

    /// A `Destination` the proxy cannot map is refused, never forwarded as it came for the
    /// upstream to read otherwise than the layer did.
    #[tokio::test]
    async fn an_unmappable_destination_is_refused() {
        let (svc, seen) = locked_behind("/dav/", "/locked").await;
        let res = svc
            .clone()
            .oneshot(req("MOVE", "/src", &[("destination", "/locked")], ""))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::LOCKED);
        seen.lock().unwrap().clear();
        let res = svc
            .clone()
            .oneshot(req(
                "MOVE",
                "/src",
                &[("destination", "/dav/locked?a\"b")],
                "",
            ))
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        let dests: Vec<_> = seen
            .iter()
            .filter_map(|(p, _)| p.headers.get("destination").cloned())
            .collect();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{dests:?}");
        // Unmapped, the upstream's `/dav/locked` is the client's locked `/locked`.
        assert!(
            dests
                .iter()
                .all(|d| d.to_str().unwrap().contains("/dav/dav/")),
            "Destination forwarded unmapped: {dests:?}"
        );
    }

    /// The proxy reads the request's authority where the layer does (the target's, else
    /// `Host`), so the `Destination` the layer judged local is the one mapped.
    #[tokio::test]
    async fn the_destination_is_mapped_by_the_layer_s_authority() {
        let (svc, seen) = locked_behind("/dav/", "/locked").await;
        // The layer takes the authority from the absolute-form target, not from Host.
        let mut r = req(
            "MOVE",
            "http://127.0.0.1:4918/src",
            &[("destination", "http://127.0.0.1:4918/dav/locked")],
            "",
        );
        r.headers_mut()
            .insert("host", HeaderValue::from_static("elsewhere"));
        let res = svc.clone().oneshot(r).await.unwrap();
        let seen = seen.lock().unwrap();
        let dests: Vec<_> = seen
            .iter()
            .filter_map(|(p, _)| p.headers.get("destination").cloned())
            .collect();
        assert!(res.status().is_success(), "{}", res.status());
        assert_eq!(
            dests.len(),
            1,
            "the MOVE reached the upstream with one Destination"
        );
        assert!(
            dests
                .iter()
                .all(|d| d.to_str().unwrap().contains("/dav/dav/")),
            "Destination forwarded unmapped: {dests:?}"
        );
    }
}

#[cfg(test)]
mod streaming {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tower::ServiceExt;

    /// An upstream that answers every request with `head` (and the start of a body), then
    /// sends nothing more while keeping the connection open.
    async fn stalling_upstream(head: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    s.write_all(head.as_bytes()).await.unwrap();
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    drop(s);
                });
            }
        });
        addr
    }

    /// A response body the upstream stops sending ends in an error once it has sent nothing
    /// for the time limit: the client is not held, nor the layer's hold on the written path.
    /// A 207 (hrefs mapped as it streams) the same.
    #[tokio::test]
    async fn a_stalled_response_body_ends_in_an_error() {
        let heads = [
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\npartial",
            "HTTP/1.1 207 Multi-Status\r\ncontent-type: application/xml\r\n\
             content-length: 1000\r\n\r\n<D:multistatus xmlns:D=\"DAV:\">",
        ];
        for head in heads {
            let addr = stalling_upstream(head).await;
            let up = Upstream::parse(&format!("http://{addr}/dav/")).unwrap();
            let forward = Forward::new(up, Duration::from_millis(300));
            let propfind = Request::builder()
                .method("PROPFIND")
                .uri("/x")
                .body(empty())
                .unwrap();
            let res = forward.oneshot(propfind).await.unwrap();
            let body = tokio::time::timeout(Duration::from_secs(5), res.into_body().collect());
            let body = body.await.expect("the body ends within the limit");
            let err = body.expect_err("a body cut short ends in an error");
            assert!(err.is::<Stalled>(), "{err}");
        }
    }

    /// Servers that build absolute hrefs from `Host` get the upstream's authority: the 207's
    /// hrefs are mapped back with the root as base path too.
    #[tokio::test]
    async fn absolute_hrefs_are_mapped_with_a_root_base_too() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let body = format!(
                "<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>http://{addr}/doc.txt\
                 </D:href><D:status>HTTP/1.1 200 OK</D:status></D:response></D:multistatus>"
            );
            let head = format!(
                "HTTP/1.1 207 Multi-Status\r\ncontent-type: application/xml\r\n\
                 content-length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).await.unwrap();
            s.write_all(body.as_bytes()).await.unwrap();
        });
        let up = Upstream::parse(&format!("http://{addr}/")).unwrap();
        let forward = Forward::new(up, Duration::from_secs(5));
        let propfind = Request::builder()
            .method("PROPFIND")
            .uri("/doc.txt")
            .header("host", "127.0.0.1:4918")
            .body(empty())
            .unwrap();
        let res = forward.oneshot(propfind).await.unwrap();
        assert_eq!(res.status(), StatusCode::MULTI_STATUS);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            body.contains("<D:href>http://127.0.0.1:4918/doc.txt</D:href>"),
            "{body}"
        );
    }

    /// Mapped as it streams, a 207 comes out as it would mapped whole, however it is cut into
    /// pieces (an href's start tag, its text or a multi-byte character split between two).
    #[tokio::test]
    async fn hrefs_are_mapped_as_they_stream_whatever_the_pieces() {
        let up = Arc::new(Upstream::parse("http://10.0.0.1:8080/dav/").unwrap());
        let origin = "http://127.0.0.1:4918";
        let answer = "<?xml version=\"1.0\"?><D:multistatus xmlns:D=\"DAV:\"><D:response>\
            <D:href>/dav/caf\u{e9}/</D:href><D:propstat><D:prop><D:displayname>/dav/x\
            </D:displayname></D:prop></D:propstat></D:response><D:response>\
            <D:href>http://10.0.0.1:8080/dav/a%20b</D:href></D:response><D:response>\
            <lp1:href xmlns:lp1=\"DAV:\">/dav</lp1:href></D:response></D:multistatus>";
        let whole = map_hrefs(answer.as_bytes(), origin, &up);
        assert_ne!(whole, answer.as_bytes(), "something to map");
        let bytes = answer.as_bytes();
        for size in [1, 2, 3, 5, 7, 11, 64, bytes.len()] {
            let pieces = Pieces(bytes.chunks(size).map(Bytes::copy_from_slice).collect());
            let mapped = MapHrefs::new(pieces.boxed_unsync(), origin.to_owned(), up.clone());
            let got = mapped.collect().await.unwrap().to_bytes();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&whole),
                "pieces of {size}"
            );
        }
    }

    /// `frames` through [`MapHrefs`].
    async fn streamed(frames: Vec<Vec<u8>>, up: &Arc<Upstream>, origin: &str) -> Vec<u8> {
        let body = Pieces(frames.into_iter().map(Bytes::from).collect()).boxed_unsync();
        let mapped = MapHrefs::new(body, origin.to_owned(), up.clone());
        mapped.collect().await.unwrap().to_bytes().to_vec()
    }

    /// With the root as base path, only absolute hrefs change: an empty href stays empty.
    #[tokio::test]
    async fn an_empty_href_stays_empty_with_a_root_base() {
        let up = Arc::new(Upstream::parse("http://10.0.0.1:8080/").unwrap());
        let answer = "<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href></D:href>\
            <D:status>HTTP/1.1 200 OK</D:status></D:response></D:multistatus>";
        let got = streamed(vec![answer.into()], &up, "http://127.0.0.1:4918").await;
        assert_eq!(String::from_utf8_lossy(&got), answer);
    }

    /// A property value longer than what is held back, arriving in big pieces: the href after
    /// it is mapped, whether a piece ends inside that href or inside a character of the value.
    #[tokio::test]
    async fn an_href_after_a_big_property_value_is_mapped() {
        let up = Arc::new(Upstream::parse("http://10.0.0.1:8080/dav/").unwrap());
        let origin = "http://127.0.0.1:4918";
        for filler in ["b", "\u{e9}"] {
            let head = "<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>/dav/a</D:href>\
                <D:propstat><D:prop><x:big xmlns:x=\"urn:x\">";
            let big = filler.repeat(MAX_HELD / filler.len() + 7);
            let tail = "</x:big></D:prop></D:propstat></D:response><D:response>\
                <D:href>/dav/y</D:href></D:response></D:multistatus>";
            let whole = format!("{head}{big}{tail}");
            let bytes = whole.as_bytes();
            // 400 kB pieces, one of them ending in the middle of the last href, and (for the
            // two-byte filler) pieces of an odd length that cut characters in two.
            let cut = whole.find("/dav/y").unwrap() + 3;
            let mut frames = Vec::new();
            let mut at = 0;
            while at < cut {
                let end = (at + 400_001).min(cut);
                frames.push(bytes[at..end].to_vec());
                at = end;
            }
            frames.push(bytes[cut..].to_vec());
            let got = streamed(frames, &up, origin).await;
            assert_eq!(got, map_hrefs(bytes, origin, &up), "filler {filler:?}");
            assert!(String::from_utf8_lossy(&got).contains("<D:href>/y</D:href>"));
        }
    }

    /// A 207 whose XML declaration, or whose `Content-Type`, names another charset than UTF-8
    /// passes byte for byte, however it is cut.
    #[tokio::test]
    async fn a_207_in_another_charset_passes_unchanged() {
        let up = Arc::new(Upstream::parse("http://10.0.0.1:8080/dav/").unwrap());
        let first = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><D:multistatus \
            xmlns:D=\"DAV:\"><D:response><D:href>/dav/a</D:href></D:response>"
            .to_vec();
        let second = b"<D:response><D:href>/dav/caf\xe9</D:href></D:response></D:multistatus>";
        let whole = [first.clone(), second.to_vec()].concat();
        let got = streamed(vec![first, second.to_vec()], &up, "http://127.0.0.1:4918").await;
        assert_eq!(got, whole);
        let mut headers = HeaderMap::new();
        let latin1 = HeaderValue::from_static("application/xml; charset=\"ISO-8859-1\"");
        headers.insert(header::CONTENT_TYPE, latin1);
        assert!(foreign_charset(&headers));
        let utf8 = HeaderValue::from_static("text/xml; Charset=UTF-8");
        headers.insert(header::CONTENT_TYPE, utf8);
        assert!(!foreign_charset(&headers));
    }

    /// A body that gives its pieces one frame each.
    struct Pieces(std::collections::VecDeque<Bytes>);

    impl http_body::Body for Pieces {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
        }
    }
}
