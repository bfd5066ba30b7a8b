//! `MemDav`: the WebDAV class 1 service. It knows nothing about locking except how to show
//! the lock properties in PROPFIND; LOCK, UNLOCK and lock enforcement belong to the layer.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::SystemTime;

use axum::body::Body;
use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, ETAG, LAST_MODIFIED, LOCATION};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower_locks::{DynLockStore, Lock, LockQuery, ResourcePath};
use tower_service::Service;

use crate::http_util::{check_preconditions, header, http_date, set_header, status};
use crate::props::{is_protected, PropCtx};
use crate::tree::{
    dead_size, href, parse_destination, parse_path, Bounds, Content, Key, Node, PropName, Tree,
};
use crate::xml::{
    self, escape, multistatus, parse_propfind, parse_proppatch, prop_element, response_element,
    PatchOp, Propfind,
};

/// The methods this service implements (the lock layer adds LOCK and UNLOCK).
const ALLOWED: &str = "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH";
/// Largest resource body accepted by PUT.
const MAX_RESOURCE: usize = 64 * 1024 * 1024;
/// Largest XML request body accepted.
const MAX_XML: usize = 1024 * 1024;
/// An in-memory WebDAV class 1 resource tree, cheap to clone (all clones share the tree).
#[derive(Clone)]
pub(crate) struct MemDav {
    tree: Arc<Mutex<Tree>>,
    locks: Arc<dyn DynLockStore>,
}

impl std::fmt::Debug for MemDav {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemDav").finish_non_exhaustive()
    }
}

impl Service<Request<Body>> for MemDav {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

impl MemDav {
    /// An empty tree (just `/`) that reads lock properties from `locks`.
    pub(crate) fn new(locks: Arc<dyn DynLockStore>) -> Self {
        Self::bounded(locks, Bounds::default())
    }

    /// A tree that holds at most `bounds`.
    pub(crate) fn bounded(locks: Arc<dyn DynLockStore>, bounds: Bounds) -> Self {
        Self {
            tree: Arc::new(Mutex::new(Tree::new(bounds))),
            locks,
        }
    }

    /// The tree; never held across an `.await`.
    fn tree(&self) -> MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn handle(self, req: Request<Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let Some(key) = parse_path(parts.uri.path()) else {
            return status(StatusCode::BAD_REQUEST, "malformed request path");
        };
        let result = match parts.method.as_str() {
            "OPTIONS" => Ok(options()),
            "GET" => Ok(self.get(&parts, &key, true)),
            "HEAD" => Ok(self.get(&parts, &key, false)),
            "PUT" => self.put(&parts, key, body).await,
            "DELETE" => self.delete(&parts, &key, body).await,
            "MKCOL" => self.mkcol(&parts, key, body).await,
            "COPY" => self.copy_or_move(&parts, &key, body, false).await,
            "MOVE" => self.copy_or_move(&parts, &key, body, true).await,
            "PROPFIND" => self.propfind(&parts, &key, body).await,
            "PROPPATCH" => self.proppatch(&parts, &key, body).await,
            _ => {
                let mut resp = status(StatusCode::METHOD_NOT_ALLOWED, "method not supported");
                set_header(&mut resp, ALLOW, ALLOWED);
                Ok(resp)
            }
        };
        result.unwrap_or_else(|refusal| refusal)
    }

    /// GET and HEAD: the body (or an HTML listing for a collection) with its validators.
    fn get(&self, parts: &Parts, key: &Key, with_body: bool) -> Response<Body> {
        let tree = self.tree();
        let Some(node) = tree.get(key) else {
            return status(StatusCode::NOT_FOUND, "no such resource");
        };
        if let Err(code) = check_preconditions(&parts.headers, true, node.etag(), true) {
            let mut resp = status(code, "precondition failed");
            if let Some(etag) = node.etag() {
                set_header(&mut resp, ETAG, etag);
            }
            return resp;
        }
        let (bytes, media_type) = match &node.content {
            Content::File {
                body, content_type, ..
            } => (
                body.clone(),
                content_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".to_owned()),
            ),
            Content::Collection => (
                Bytes::from(listing(&tree, key)),
                "text/html; charset=utf-8".to_owned(),
            ),
        };
        let mut resp = Response::new(if with_body {
            Body::from(bytes.clone())
        } else {
            Body::empty()
        });
        set_header(&mut resp, CONTENT_TYPE, &media_type);
        set_header(&mut resp, CONTENT_LENGTH, &bytes.len().to_string());
        set_header(&mut resp, LAST_MODIFIED, &http_date(node.modified));
        if let Some(etag) = node.etag() {
            set_header(&mut resp, ETAG, etag);
        }
        resp
    }

    /// PUT: 201 on create, 204 on overwrite.
    async fn put(
        &self,
        parts: &Parts,
        key: Key,
        body: Body,
    ) -> Result<Response<Body>, Response<Body>> {
        if key.is_empty() {
            return Err(status(
                StatusCode::METHOD_NOT_ALLOWED,
                "the root is a collection",
            ));
        }
        if parts.headers.contains_key("content-range") {
            return Err(status(
                StatusCode::BAD_REQUEST,
                "partial PUT is not supported",
            ));
        }
        let bytes = read_body(body, MAX_RESOURCE).await?;
        let content_type = header(&parts.headers, "content-type").map(str::to_owned);
        let now = SystemTime::now();
        let mut tree = self.tree();
        let existing = tree.get(&key);
        if existing.is_some_and(Node::is_collection) {
            return Err(status(
                StatusCode::METHOD_NOT_ALLOWED,
                "cannot PUT to a collection",
            ));
        }
        if !tree.parent_is_collection(&key) {
            return Err(status(
                StatusCode::CONFLICT,
                "the parent collection does not exist",
            ));
        }
        let etag_now = existing.and_then(Node::etag);
        check_preconditions(&parts.headers, existing.is_some(), etag_now, false)
            .map_err(|code| status(code, "precondition failed"))?;
        let (added, freed) = match existing {
            Some(node) => (0, node.size()),
            None => (1, 0),
        };
        if !tree.has_room(added, bytes.len(), freed) {
            return Err(full());
        }
        let etag = tree.new_etag();
        let content = Content::File {
            body: bytes,
            content_type,
            etag: etag.clone(),
        };
        let created = match tree.get_mut(&key) {
            Some(node) => {
                node.content = content;
                node.modified = now;
                false
            }
            None => {
                let node = Node::file(content, now);
                tree.insert(key.clone(), node);
                tree.touch_parent(&key, now);
                true
            }
        };
        let mut resp = if created {
            let mut r = status(StatusCode::CREATED, "created");
            set_header(&mut r, LOCATION, &href(&key, false));
            r
        } else {
            status(StatusCode::NO_CONTENT, "")
        };
        set_header(&mut resp, ETAG, &etag);
        Ok(resp)
    }

    /// DELETE: always recursive (RFC 4918 §9.6.1).
    async fn delete(
        &self,
        parts: &Parts,
        key: &Key,
        body: Body,
    ) -> Result<Response<Body>, Response<Body>> {
        expect_no_body(body).await?;
        if key.is_empty() {
            return Err(status(StatusCode::FORBIDDEN, "the root cannot be deleted"));
        }
        let mut tree = self.tree();
        let Some(node) = tree.get(key) else {
            return Err(status(StatusCode::NOT_FOUND, "no such resource"));
        };
        check_preconditions(&parts.headers, true, node.etag(), false)
            .map_err(|code| status(code, "precondition failed"))?;
        tree.remove_subtree(key);
        tree.touch_parent(key, SystemTime::now());
        Ok(status(StatusCode::NO_CONTENT, ""))
    }

    /// MKCOL: 201, 405 when mapped, 409 without a parent, 415 with a body.
    async fn mkcol(
        &self,
        parts: &Parts,
        key: Key,
        body: Body,
    ) -> Result<Response<Body>, Response<Body>> {
        let bytes = read_body(body, MAX_XML).await?;
        if !bytes.is_empty() {
            return Err(status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "MKCOL with a body is not supported",
            ));
        }
        let now = SystemTime::now();
        let mut tree = self.tree();
        if tree.get(&key).is_some() {
            return Err(status(
                StatusCode::METHOD_NOT_ALLOWED,
                "the resource already exists",
            ));
        }
        if !tree.parent_is_collection(&key) {
            return Err(status(
                StatusCode::CONFLICT,
                "the parent collection does not exist",
            ));
        }
        check_preconditions(&parts.headers, false, None, false)
            .map_err(|code| status(code, "precondition failed"))?;
        if !tree.has_room(1, 0, 0) {
            return Err(full());
        }
        tree.insert(key.clone(), Node::collection(now));
        tree.touch_parent(&key, now);
        let mut resp = status(StatusCode::CREATED, "created");
        set_header(&mut resp, LOCATION, &href(&key, true));
        Ok(resp)
    }

    /// COPY and MOVE: 201 when the destination was created, 204 when it was replaced.
    async fn copy_or_move(
        &self,
        parts: &Parts,
        key: &Key,
        body: Body,
        is_move: bool,
    ) -> Result<Response<Body>, Response<Body>> {
        expect_no_body(body).await?;
        let headers = &parts.headers;
        let bad = |why: &str| status(StatusCode::BAD_REQUEST, why);
        let Some(dest) = header(headers, "destination").and_then(parse_destination) else {
            return Err(bad("missing or malformed Destination header"));
        };
        let shallow = match header(headers, "depth") {
            None => false,
            Some(d) if d.eq_ignore_ascii_case("infinity") => false,
            Some("0") if !is_move => true,
            Some(_) => {
                return Err(bad(
                    "Depth must be 0 or infinity for COPY, infinity for MOVE",
                ))
            }
        };
        let overwrite = match header(headers, "overwrite") {
            None | Some("T" | "t") => true,
            Some("F" | "f") => false,
            Some(_) => return Err(bad("Overwrite must be T or F")),
        };
        if dest == *key {
            return Err(status(
                StatusCode::FORBIDDEN,
                "source and destination are the same",
            ));
        }
        let now = SystemTime::now();
        let mut tree = self.tree();
        let Some(source) = tree.get(key) else {
            return Err(status(StatusCode::NOT_FOUND, "no such resource"));
        };
        check_preconditions(headers, true, source.etag(), false)
            .map_err(|code| status(code, "precondition failed"))?;
        let into_itself = dest.starts_with(key) && (is_move || !shallow);
        if into_itself || key.starts_with(&dest) {
            return Err(status(
                StatusCode::FORBIDDEN,
                "source and destination overlap",
            ));
        }
        if !tree.parent_is_collection(&dest) {
            return Err(status(
                StatusCode::CONFLICT,
                "the destination's parent collection does not exist",
            ));
        }
        let replaced = tree.get(&dest).is_some();
        if replaced && !overwrite {
            return Err(status(
                StatusCode::PRECONDITION_FAILED,
                "the destination exists and Overwrite is F",
            ));
        }
        if !is_move {
            let copied = tree.subtree(key).take(if shallow { 1 } else { usize::MAX });
            let (resources, bytes) =
                copied.fold((0, 0), |(n, b), (_, node)| (n + 1, b + node.size()));
            if !tree.has_room(resources, bytes, 0) {
                return Err(full());
            }
        }
        if replaced {
            tree.remove_subtree(&dest);
        }
        if is_move {
            tree.rename(key, &dest);
            tree.touch_parent(key, now);
        } else {
            tree.copy(key, &dest, shallow, now);
        }
        tree.touch_parent(&dest, now);
        Ok(if replaced {
            status(StatusCode::NO_CONTENT, "")
        } else {
            let collection = tree.get(&dest).is_some_and(Node::is_collection);
            let mut r = status(StatusCode::CREATED, "created");
            set_header(&mut r, LOCATION, &href(&dest, collection));
            r
        })
    }

    /// PROPFIND, Depth 0 or 1.
    async fn propfind(
        &self,
        parts: &Parts,
        key: &Key,
        body: Body,
    ) -> Result<Response<Body>, Response<Body>> {
        // `None`: infinity, which no Depth header also means (RFC 4918 §9.1).
        let depth_one = match header(&parts.headers, "depth") {
            Some("0") => Some(false),
            Some("1") => Some(true),
            None => None,
            Some(d) if d.eq_ignore_ascii_case("infinity") => None,
            Some(_) => {
                return Err(status(
                    StatusCode::BAD_REQUEST,
                    "Depth must be 0, 1 or infinity",
                ))
            }
        };
        let bytes = read_body(body, MAX_XML).await?;
        let request = parse_propfind(&bytes).map_err(|e| {
            status(
                StatusCode::BAD_REQUEST,
                &format!("bad PROPFIND body: {}", e.0),
            )
        })?;
        // Snapshot the resources, then release the tree before asking the lock store.
        let resources: Vec<(Key, Node)> = {
            let tree = self.tree();
            let Some(node) = tree.get(key) else {
                return Err(status(StatusCode::NOT_FOUND, "no such resource"));
            };
            // Infinite depth is refused on collections only (§9.1); a non-collection has no
            // members, so there it is Depth 0.
            let depth_one = match depth_one {
                Some(one) => one,
                None if node.is_collection() => return Err(finite_depth()),
                None => false,
            };
            let mut found = vec![(key.clone(), node.clone())];
            if depth_one && node.is_collection() {
                found.extend(tree.members(key).map(|(k, n)| (k.clone(), n.clone())));
            }
            found
        };
        let wants_locks = match &request {
            Propfind::AllProp(_) => true,
            Propfind::Prop(names) => names.iter().any(|n| n.is_dav("lockdiscovery")),
            Propfind::PropName => false,
        };
        let now = SystemTime::now();
        let mut responses = Vec::with_capacity(resources.len());
        for (k, node) in &resources {
            let href = href(k, node.is_collection());
            let locks = if wants_locks {
                Some(self.locks_covering(&href).await)
            } else {
                None
            };
            let ctx = PropCtx {
                key: k,
                node,
                locks: &locks,
                now,
            };
            responses.push(response_element(&href, &ctx.propstats(&request)));
        }
        Ok(xml_207(multistatus(&responses)))
    }

    /// The live locks covering the resource at `href`, from the shared store.
    async fn locks_covering(&self, href: &str) -> Result<Vec<Lock>, ()> {
        let path = ResourcePath::parse(href).map_err(|_| ())?;
        let query = LockQuery::new().covering(path);
        self.locks.query_boxed(&query).await.map_err(|_| ())
    }

    /// PROPPATCH: all instructions in document order, all or nothing.
    async fn proppatch(
        &self,
        parts: &Parts,
        key: &Key,
        body: Body,
    ) -> Result<Response<Body>, Response<Body>> {
        let bytes = read_body(body, MAX_XML).await?;
        let ops = parse_proppatch(&bytes).map_err(|e| {
            status(
                StatusCode::BAD_REQUEST,
                &format!("bad PROPPATCH body: {}", e.0),
            )
        })?;
        let mut tree = self.tree();
        let Some(node) = tree.get(key) else {
            return Err(status(StatusCode::NOT_FOUND, "no such resource"));
        };
        check_preconditions(&parts.headers, true, node.etag(), false)
            .map_err(|code| status(code, "precondition failed"))?;
        let is_collection = node.is_collection();
        let mut dead = node.dead.clone();
        let mut outcome: Vec<(PropName, StatusCode)> = Vec::new();
        let mut failed = false;
        for op in ops {
            let name = match &op {
                PatchOp::Set(n, _) | PatchOp::Remove(n) => n.clone(),
            };
            let code = if is_protected(&name) {
                failed = true;
                StatusCode::FORBIDDEN
            } else {
                match op {
                    PatchOp::Set(n, v) => dead.insert(n, v),
                    PatchOp::Remove(n) => dead.remove(&n),
                };
                StatusCode::OK
            };
            match outcome.iter_mut().find(|(n, _)| *n == name) {
                Some(entry) => entry.1 = entry.1.max(code),
                None => outcome.push((name, code)),
            }
        }
        if failed {
            for entry in &mut outcome {
                if entry.1 == StatusCode::OK {
                    entry.1 = StatusCode::FAILED_DEPENDENCY;
                }
            }
        } else {
            let freed = tree.get(key).map_or(0, |n| dead_size(&n.dead));
            if !tree.has_room(0, dead_size(&dead), freed) {
                return Err(full());
            }
            if let Some(node) = tree.get_mut(key) {
                node.dead = dead;
            }
        }
        drop(tree);
        let mut groups: Vec<(StatusCode, Vec<String>)> = Vec::new();
        for (name, code) in outcome {
            let element = prop_element(&name, None);
            match groups.iter_mut().find(|(c, _)| *c == code) {
                Some(group) => group.1.push(element),
                None => groups.push((code, vec![element])),
            }
        }
        let response = response_element(&href(key, is_collection), &groups);
        Ok(xml_207(multistatus(&[response])))
    }
}

/// OPTIONS: class 1 only; the lock layer adds class 2, LOCK and UNLOCK.
fn options() -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(ALLOW, ALLOWED)
        .header("dav", "1")
        .header("ms-author-via", "DAV")
        .header(CONTENT_LENGTH, 0)
        .body(Body::empty())
        .unwrap_or_default()
}

/// 207 Multi-Status.
fn xml_207(body: String) -> Response<Body> {
    xml_response(StatusCode::MULTI_STATUS, body)
}

fn xml_response(code: StatusCode, body: String) -> Response<Body> {
    crate::http_util::xml(code, body)
}

/// 403 with the `propfind-finite-depth` precondition (RFC 4918 §9.1).
fn finite_depth() -> Response<Body> {
    xml_response(
        StatusCode::FORBIDDEN,
        tower_locks::dav::error_body("propfind-finite-depth", &[]),
    )
}

/// 507: the tree is at its [`Bounds`].
fn full() -> Response<Body> {
    status(
        StatusCode::INSUFFICIENT_STORAGE,
        "this server keeps everything in memory and is full",
    )
}

/// Read a request body up to `limit` bytes: 413 beyond it, 400 when the body breaks off.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Response<Body>> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        )),
        Err(_) => Err(status(
            StatusCode::BAD_REQUEST,
            "could not read the request body",
        )),
    }
}

/// RFC 4918 §8.4: a body the method would ignore is refused with 415.
async fn expect_no_body(body: Body) -> Result<(), Response<Body>> {
    let bytes = read_body(body, MAX_XML).await?;
    if bytes.is_empty() {
        Ok(())
    } else {
        Err(status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "this method takes no request body",
        ))
    }
}

/// A small HTML page listing a collection's members.
fn listing(tree: &Tree, key: &Key) -> String {
    let here = href(key, true);
    let mut out = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {0}</title></head>\
         <body><h1>Index of {0}</h1><ul>\n",
        xml::escape(&here)
    );
    for (k, node) in tree.members(key) {
        let name = k.last().map_or("", String::as_str);
        let slash = if node.is_collection() { "/" } else { "" };
        out.push_str(&format!(
            "<li><a href=\"{}\">{}{slash}</a></li>\n",
            escape(&href(k, node.is_collection())),
            escape(name)
        ));
    }
    out.push_str("</ul></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;
    use tower_locks::{
        CreateOutcome, LockDepth, LockStore, LockStoreError, LockTimeout, MemoryLockStore, NewLock,
        TokenAccess, TokenOutcome,
    };

    /// A store whose every call fails, to see PROPFIND degrade to a 500 propstat.
    struct Broken;

    fn down() -> LockStoreError {
        LockStoreError::unavailable("down")
    }

    impl LockStore for Broken {
        async fn create(&self, _: NewLock) -> Result<CreateOutcome, LockStoreError> {
            Err(down())
        }
        async fn refresh(
            &self,
            _: TokenAccess<'_>,
            _: LockTimeout,
        ) -> Result<TokenOutcome, LockStoreError> {
            Err(down())
        }
        async fn unlock(&self, _: TokenAccess<'_>) -> Result<TokenOutcome, LockStoreError> {
            Err(down())
        }
        async fn remove_subtree(&self, _: &ResourcePath) -> Result<usize, LockStoreError> {
            Err(down())
        }
        async fn query(&self, _: &LockQuery) -> Result<Vec<Lock>, LockStoreError> {
            Err(down())
        }
        async fn get(&self, _: &str) -> Result<Option<Lock>, LockStoreError> {
            Err(down())
        }
    }

    async fn send(dav: &MemDav, method: &str, uri: &str, depth: &str, body: &str) -> (u16, String) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("depth", depth)
            .body(Body::from(body.to_owned()))
            .unwrap();
        let resp = dav.clone().oneshot(req).await.unwrap();
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (code, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// webdav4's `cat` sends PROPFIND without Depth to a file: that is Depth 0 there, while a
    /// collection still refuses infinite depth.
    #[tokio::test]
    async fn propfind_without_depth_works_on_files_only() {
        let dav = MemDav::new(Arc::new(MemoryLockStore::new()));
        assert_eq!(send(&dav, "PUT", "/f", "0", "hello").await.0, 201);
        let propfind = |uri: &str| {
            Request::builder()
                .method("PROPFIND")
                .uri(uri)
                .body(Body::from(LOCKDISCOVERY))
                .unwrap()
        };
        let res = dav.clone().oneshot(propfind("/f")).await.unwrap();
        assert_eq!(res.status(), 207);
        let res = dav.clone().oneshot(propfind("/")).await.unwrap();
        assert_eq!(res.status(), 403);
        let (code, _) = send(&dav, "PROPFIND", "/f", "infinity", LOCKDISCOVERY).await;
        assert_eq!(code, 207);
    }

    const LOCKDISCOVERY: &str =
        r#"<D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>"#;

    #[tokio::test]
    async fn propfind_renders_locks_from_the_store() {
        let store = Arc::new(MemoryLockStore::new());
        let dav = MemDav::new(store.clone());
        assert_eq!(send(&dav, "MKCOL", "/coll/", "0", "").await.0, 201);
        assert_eq!(send(&dav, "PUT", "/coll/doc", "0", "x").await.0, 201);
        let lock = NewLock::new(ResourcePath::parse("/coll/").unwrap())
            .depth(LockDepth::Infinity)
            .owner("<D:href xmlns:D=\"DAV:\">me</D:href>")
            .timeout(LockTimeout::Seconds(600));
        let CreateOutcome::Created(lock) = store.create(lock).await.unwrap() else {
            panic!("lock refused");
        };

        let (code, body) = send(&dav, "PROPFIND", "/coll/doc", "0", LOCKDISCOVERY).await;
        assert_eq!(code, 207);
        let doc = roxmltree::Document::parse(&body).unwrap();
        let active: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name(("DAV:", "activelock")))
            .collect();
        assert_eq!(active.len(), 1, "{body}");
        let text = |name: &str| {
            active[0]
                .descendants()
                .find(|n| n.has_tag_name(("DAV:", name)))
                .and_then(|n| n.text())
                .map(str::to_owned)
        };
        assert_eq!(text("depth").as_deref(), Some("infinity"));
        assert!(body.contains(lock.token.as_str()));
        assert!(body.contains("<D:lockroot><D:href>/coll/</D:href></D:lockroot>"));

        // A copy is not locked by the source's lock.
        assert_eq!(send(&dav, "MKCOL", "/other/", "0", "").await.0, 201);
        let copy = Request::builder()
            .method("COPY")
            .uri("/coll/doc")
            .header("destination", "http://localhost/other/doc")
            .body(Body::empty())
            .unwrap();
        assert_eq!(dav.clone().oneshot(copy).await.unwrap().status(), 201);
        let (_, body) = send(&dav, "PROPFIND", "/other/doc", "0", LOCKDISCOVERY).await;
        assert!(body.contains("<D:lockdiscovery/>"), "{body}");
    }

    #[tokio::test]
    async fn store_failure_is_a_500_propstat() {
        let dav = MemDav::new(Arc::new(Broken));
        let (code, body) = send(&dav, "PROPFIND", "/", "0", "").await;
        assert_eq!(code, 207);
        roxmltree::Document::parse(&body).unwrap();
        assert!(
            body.contains("<D:lockdiscovery/></D:prop><D:status>HTTP/1.1 500"),
            "{body}"
        );
        assert!(body.contains("<D:resourcetype><D:collection/></D:resourcetype>"));
    }

    #[tokio::test]
    async fn dead_properties_keep_their_xml() {
        let dav = MemDav::new(Arc::new(MemoryLockStore::new()));
        assert_eq!(send(&dav, "PUT", "/p", "0", "").await.0, 201);
        let patch = "<propertyupdate xmlns='DAV:'><set><prop>\
             <t:v xmlns:t='urn:t'><foo xmlns='bar'><x a='1'/></foo></t:v>\
             <displayname>Nice</displayname></prop></set></propertyupdate>";
        let (code, body) = send(&dav, "PROPPATCH", "/p", "0", patch).await;
        assert_eq!(code, 207);
        assert!(
            body.contains("HTTP/1.1 200 OK") && !body.contains("HTTP/1.1 424"),
            "{body}"
        );
        let (_, body) = send(&dav, "PROPFIND", "/p", "0", "").await;
        let doc = roxmltree::Document::parse(&body).unwrap();
        let v = doc
            .descendants()
            .find(|n| n.has_tag_name(("urn:t", "v")))
            .unwrap();
        let foo = v.first_element_child().unwrap();
        assert!(foo.has_tag_name(("bar", "foo")));
        let x = foo.first_element_child().unwrap();
        assert!(x.has_tag_name(("bar", "x")) && x.attribute("a") == Some("1"));
        assert!(body.contains("<D:displayname>Nice</D:displayname>"));
        assert_eq!(body.matches("displayname").count(), 2, "{body}");
    }

    /// Everything the service writes into a multistatus stays well-formed XML: a name or a
    /// property value with a character XML cannot carry is refused (400), so one request
    /// cannot make a collection unlistable.
    #[tokio::test]
    async fn names_and_values_stay_well_formed_xml() {
        let dav = MemDav::new(Arc::new(MemoryLockStore::new()));
        assert_eq!(send(&dav, "PUT", "/a%01b", "0", "x").await.0, 400);
        assert_eq!(send(&dav, "PUT", "/a%0Ab", "0", "x").await.0, 400);
        assert_eq!(send(&dav, "PUT", "/ok", "0", "x").await.0, 201);
        for value in ["x&#1;y", "x&#xFFFE;y", "x\u{1}y"] {
            let patch = format!(
                "<D:propertyupdate xmlns:D='DAV:'><D:set><D:prop>\
                 <D:displayname>{value}</D:displayname></D:prop></D:set></D:propertyupdate>"
            );
            assert_eq!(
                send(&dav, "PROPPATCH", "/ok", "0", &patch).await.0,
                400,
                "{value:?}"
            );
        }
        let (code, body) = send(&dav, "PROPFIND", "/", "1", "").await;
        assert_eq!(code, 207);
        roxmltree::Document::parse(&body).unwrap();
    }

    /// The tree is bounded: a PUT, MKCOL, COPY or PROPPATCH beyond its bounds is a 507 and
    /// changes nothing; an overwrite counts only what it adds.
    #[tokio::test]
    async fn the_tree_is_bounded() {
        let bounds = Bounds {
            resources: 4,
            bytes: 100,
        };
        let dav = MemDav::bounded(Arc::new(MemoryLockStore::new()), bounds);
        let big = "x".repeat(60);
        assert_eq!(send(&dav, "PUT", "/a", "0", &big).await.0, 201);
        assert_eq!(send(&dav, "PUT", "/b", "0", &big).await.0, 507);
        assert_eq!(send(&dav, "GET", "/b", "0", "").await.0, 404);
        assert_eq!(send(&dav, "PUT", "/a", "0", &"y".repeat(90)).await.0, 204);
        assert_eq!(
            send(&dav, "COPY", "/a", "0", "").await.0,
            400,
            "no Destination"
        );
        let copy = Request::builder()
            .method("COPY")
            .uri("/a")
            .header("destination", "/c")
            .body(Body::empty())
            .unwrap();
        assert_eq!(dav.clone().oneshot(copy).await.unwrap().status(), 507);
        let patch = format!(
            "<D:propertyupdate xmlns:D='DAV:'><D:set><D:prop>\
             <D:displayname>{big}</D:displayname></D:prop></D:set></D:propertyupdate>"
        );
        assert_eq!(send(&dav, "PROPPATCH", "/a", "0", &patch).await.0, 507);
        assert_eq!(send(&dav, "MKCOL", "/d1", "0", "").await.0, 201);
        assert_eq!(send(&dav, "MKCOL", "/d2", "0", "").await.0, 201);
        assert_eq!(
            send(&dav, "MKCOL", "/d3", "0", "").await.0,
            507,
            "a fifth resource"
        );
        assert_eq!(send(&dav, "GET", "/a", "0", "").await.1, "y".repeat(90));
    }
}
