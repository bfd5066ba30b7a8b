//! `LockLayer`: the builder of the configuration every [`LockService`] it makes shares.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{request, Method, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::body::EmptyBody;
use crate::config::{Config, Disclosure, Limits};
use crate::hooks::{ResourceCreator, ResourceProbe};
use crate::principal::PrincipalSource;
use crate::response::Rejection;
use crate::service::LockService;
use crate::space::ServiceSpace;
use crate::store::{DynLockStore, LockStore, LockTimeout};
use crate::timeout::TimeoutPolicy;
use crate::ResourcePath;

/// Layer that applies [`LockService`], which enforces WebDAV write locks in front of the
/// wrapped service and answers LOCK and UNLOCK itself.
///
/// A lock taken through the store (as a LOCK request would), enforced on a plain Tower
/// service; the [crate docs](crate) show the same with an axum `Router`.
///
/// ```
/// use std::convert::Infallible;
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Empty;
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_locks::{
///     CreateOutcome, LockLayer, LockStore, MemoryLockStore, NewLock, Rejection, ResourcePath,
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = Arc::new(MemoryLockStore::new());
/// let app = ServiceBuilder::new()
///     .layer(LockLayer::new(store.clone()))
///     .service_fn(|_req: Request<Empty<Bytes>>| async {
///         Ok::<_, Infallible>(Response::new(String::from("saved")))
///     });
///
/// let CreateOutcome::Created(lock) = store
///     .create(NewLock::new(ResourcePath::parse("/docs/report").unwrap()))
///     .await
///     .unwrap()
/// else {
///     panic!("nothing else is locked");
/// };
///
/// // Without the token: 423, answered by the layer; the handler never runs.
/// let put = Request::put("/docs/report").body(Empty::new()).unwrap();
/// let res = app.clone().oneshot(put).await.unwrap();
/// assert_eq!(res.status(), StatusCode::LOCKED);
/// let rejection = res.extensions().get::<Rejection>().unwrap();
/// assert_eq!(rejection.lock_roots(), ["/docs/report"]);
///
/// // With the token in the `If` header, the write reaches the handler.
/// let put = Request::put("/docs/report")
///     .header("If", format!("(<{}>)", lock.token))
///     .body(Empty::new())
///     .unwrap();
/// let res = app.oneshot(put).await.unwrap();
/// assert_eq!(res.status(), StatusCode::OK);
/// assert!(res.extensions().get::<Rejection>().is_none());
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct LockLayer {
    pub(crate) config: Arc<Config>,
}

impl LockLayer {
    /// A layer enforcing the locks held in `store`.
    ///
    /// Defaults: the safe methods GET, HEAD, OPTIONS, TRACE, PROPFIND, REPORT, SEARCH; no mount
    /// prefix; `If` tags and `Destination` must name this server's authority; lock timeouts of
    /// 600 s by default, 1 s minimum, 1 day maximum, never infinite; the principal from the
    /// [`Principal`](crate::Principal) request extension; no resource space, so existence and
    /// ETags are unknown (see [`resource_space`](Self::resource_space)); store failures
    /// answered with 503 (fail closed); OPTIONS answers advertise class 2; lock roots named in
    /// refusals (at most 16, the first in path order); [`Limits::default`].
    ///
    /// The layer calls the service it wraps only with the request it was given, so it is
    /// safe however it is mounted, `Router::layer` included.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// let store = std::sync::Arc::new(MemoryLockStore::new());
    /// // Keep `store` to take or list locks from your own code.
    /// let layer = LockLayer::new(store.clone());
    /// # let _ = layer;
    /// ```
    pub fn new<T: LockStore>(store: T) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// A layer on a shared, type-erased store.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_locks::{DynLockStore, LockLayer, MemoryLockStore};
    ///
    /// let store: Arc<dyn DynLockStore> = Arc::new(MemoryLockStore::new());
    /// let layer = LockLayer::from_arc(store.clone());
    /// # let _ = layer;
    /// ```
    pub fn from_arc(store: Arc<dyn DynLockStore>) -> Self {
        Self {
            config: Arc::new(Config::new(store)),
        }
    }

    fn update(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Replace the list of methods that pass through without a lock check. LOCK and UNLOCK
    /// are the layer's whatever the list says, and OPTIONS always passes (its answer carries
    /// the `DAV` header).
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// use http::Method;
    /// // A REST API without WebDAV reads.
    /// let layer = LockLayer::new(MemoryLockStore::new())
    ///     .safe_methods([Method::GET, Method::HEAD, Method::OPTIONS]);
    /// # let _ = layer;
    /// ```
    pub fn safe_methods(self, methods: impl IntoIterator<Item = Method>) -> Self {
        let methods: Vec<Method> = methods.into_iter().collect();
        self.update(|c| c.safe_methods = methods)
    }

    /// Add one method to the safe list (for example a custom read-only method). LOCK and
    /// UNLOCK stay the layer's.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// let layer = LockLayer::new(MemoryLockStore::new())
    ///     .add_safe_method(http::Method::from_bytes(b"QUERY").unwrap());
    /// # let _ = layer;
    /// ```
    pub fn add_safe_method(self, method: Method) -> Self {
        self.update(|c| {
            if !c.safe_methods.contains(&method) {
                c.safe_methods.push(method);
            }
        })
    }

    /// The client-visible path prefix under which the wrapped service is mounted, for when the
    /// layer sits inside a router that strips it ([decision D10](crate::decisions#d10)). Lock roots, `If` tags,
    /// `Destination` and every href stay in the client-visible path space; sub-requests to the
    /// declared resource space use the stripped path. Default: none.
    ///
    /// With feature `axum`, a layer inside an axum `nest` or `nest_service` checks that this is
    /// exactly the prefix the router strips (nested nests joined: `/v1` and `/api` give
    /// `/v1/api`), and otherwise refuses every guarded request with a 500
    /// ([`Rejection::MountPrefixMismatch`](crate::Rejection::MountPrefixMismatch)); safe
    /// methods pass. A prefix with a path parameter (`/t/{tenant}`) can be no mount prefix: put
    /// the layer outside that nest. Without feature `axum`, or under another router that
    /// strips a prefix, the layer cannot see the prefix, and a forgotten one goes unnoticed: the
    /// layer then judges the stripped request path against the client's `Destination` and `If`
    /// tags.
    ///
    /// # Errors
    /// [`PathError`](crate::PathError) when `prefix` is not a valid absolute path.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// // The service below sees `/files/a.txt`; clients address `/dav/files/a.txt`.
    /// let layer = LockLayer::new(MemoryLockStore::new()).mount_prefix("/dav").unwrap();
    /// # let _ = layer;
    /// ```
    pub fn mount_prefix(self, prefix: &str) -> Result<Self, crate::PathError> {
        let p = ResourcePath::parse(prefix)?;
        Ok(self.update(|c| c.prefix = p))
    }

    /// Compare only paths, not authorities, for absolute URIs in `If` tags and `Destination`
    /// (behind a reverse proxy that rewrites `Host`). Default: `false`.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// let layer = LockLayer::new(MemoryLockStore::new()).match_any_authority(true);
    /// # let _ = layer;
    /// ```
    pub fn match_any_authority(self, yes: bool) -> Self {
        self.update(|c| c.any_authority = yes)
    }

    /// Accept an encoded slash (`%2F`) in the paths the layer guards (request path,
    /// `Destination`, `If` tags). Default: `false`, they are a 400: axum's `Path` extractor,
    /// nginx and most file servers decode `%2F` into a `/`, so `PUT /files/a%2Fb` would write
    /// what the layer judges as the unlocked `/files/a/b` ([decision D21](crate::decisions#d21)).
    /// Allow them only when everything behind the layer keeps `%2F` as part of a name.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// let layer = LockLayer::new(MemoryLockStore::new()).allow_encoded_slashes(true);
    /// # let _ = layer;
    /// ```
    pub fn allow_encoded_slashes(self, yes: bool) -> Self {
        self.update(|c| c.encoded_slashes = yes)
    }

    /// Lock timeout policy: the timeout granted when the client asks for none, and the
    /// bounds every request is clamped to. Defaults: 600 s, 1 s, 86 400 s.
    ///
    /// # Panics
    /// When `min > max` or `default` is outside `min..=max`.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// use std::time::Duration;
    /// let layer = LockLayer::new(MemoryLockStore::new()).lock_timeouts(
    ///     Duration::from_secs(300),
    ///     Duration::from_secs(30),
    ///     Duration::from_secs(3600),
    /// );
    /// assert_eq!(layer.default_timeout(), tower_locks::LockTimeout::Seconds(300));
    /// ```
    pub fn lock_timeouts(self, default: Duration, min: Duration, max: Duration) -> Self {
        let mut policy = TimeoutPolicy::new(default, min, max);
        self.update(|c| {
            policy.allow_infinite = c.timeouts.allow_infinite;
            c.timeouts = policy;
        })
    }

    /// Grant `Timeout: Infinite` when a client asks for it. ⚠️ An infinite lock left by a
    /// crashed client stays until an administrator removes it. Default: `false` (Infinite is
    /// granted as the maximum).
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// let layer = LockLayer::new(MemoryLockStore::new()).allow_infinite_timeout(true);
    /// # let _ = layer;
    /// ```
    pub fn allow_infinite_timeout(self, yes: bool) -> Self {
        self.update(|c| c.timeouts.allow_infinite = yes)
    }

    /// Read the principal with `f` instead of from the [`Principal`](crate::Principal)
    /// extension.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// // Trust a header set by an authenticating reverse proxy in front of the app.
    /// let layer = LockLayer::new(MemoryLockStore::new()).principal_from(|parts| {
    ///     parts.headers.get("x-authenticated-user")?.to_str().ok().map(str::to_owned)
    /// });
    /// # let _ = layer;
    /// ```
    pub fn principal_from<F>(self, f: F) -> Self
    where
        F: Fn(&request::Parts) -> Option<String> + Send + Sync + 'static,
    {
        self.update(|c| c.principal = PrincipalSource::Custom(Arc::new(f)))
    }

    /// Use `probe` to learn whether a resource exists and its ETag (it takes precedence over
    /// the [`resource_space`](Self::resource_space)'s `HEAD`).
    /// See [`ResourceProbe`] for the trait and [`ResourceState`](crate::ResourceState) for a
    /// probe with ETags.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, Response, StatusCode};
    /// use http_body_util::Empty;
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_locks::{
    ///     BoxFuture, EntityTag, LockLayer, MemoryLockStore, ResourcePath, ResourceProbe,
    ///     ResourceState,
    /// };
    ///
    /// /// Every resource exists, at version "v1".
    /// struct AllAtV1;
    ///
    /// impl ResourceProbe for AllAtV1 {
    ///     fn probe<'a>(
    ///         &'a self,
    ///         _path: &'a ResourcePath,
    ///         _request: &'a http::request::Parts,
    ///     ) -> BoxFuture<'a, ResourceState> {
    ///         Box::pin(async { ResourceState::Exists { etag: EntityTag::parse("\"v1\"") } })
    ///     }
    /// }
    ///
    /// # tokio_test::block_on(async {
    /// let app = ServiceBuilder::new()
    ///     .layer(LockLayer::new(MemoryLockStore::new()).with_resource_probe(AllAtV1))
    ///     .service_fn(|_req: Request<Empty<Bytes>>| async {
    ///         Ok::<_, Infallible>(Response::new(String::new()))
    ///     });
    /// let put = |condition: &str| {
    ///     Request::put("/doc").header("If", condition).body(Empty::new()).unwrap()
    /// };
    /// // ETag conditions in `If` are evaluated against the probe's answer.
    /// let res = app.clone().oneshot(put(r#"(["v2"])"#)).await.unwrap();
    /// assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    /// let res = app.oneshot(put(r#"(["v1"])"#)).await.unwrap();
    /// assert_eq!(res.status(), StatusCode::OK);
    /// # });
    /// ```
    pub fn with_resource_probe(self, probe: impl ResourceProbe) -> Self {
        let probe: Arc<dyn ResourceProbe> = Arc::new(probe);
        self.update(|c| c.space.probe = Some(probe))
    }

    /// Use `creator` to create the empty resource of a LOCK on an unmapped URL (it takes
    /// precedence over the [`resource_space`](Self::resource_space)'s empty `PUT`). See [`ResourceCreator`] and
    /// [`CreateResult`](crate::CreateResult) for more.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::{Arc, Mutex};
    /// use bytes::Bytes;
    /// use http::{Request, Response, StatusCode};
    /// use http_body_util::Full;
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_locks::{
    ///     BoxFuture, CreateResult, LockLayer, MemoryLockStore, ResourceCreator, ResourcePath,
    /// };
    ///
    /// /// Records what it was asked to create.
    /// #[derive(Clone, Default)]
    /// struct Recorder(Arc<Mutex<Vec<String>>>);
    ///
    /// impl ResourceCreator for Recorder {
    ///     fn create_empty<'a>(
    ///         &'a self,
    ///         path: &'a ResourcePath,
    ///         _request: &'a http::request::Parts,
    ///     ) -> BoxFuture<'a, CreateResult> {
    ///         self.0.lock().unwrap().push(path.href());
    ///         Box::pin(async { CreateResult::Created })
    ///     }
    /// }
    ///
    /// # tokio_test::block_on(async {
    /// let created = Recorder::default();
    /// let app = ServiceBuilder::new()
    ///     .layer(LockLayer::new(MemoryLockStore::new()).with_resource_creator(created.clone()))
    ///     // No probe: existence is unknown, so the LOCK may create its target.
    ///     .service_fn(|_req: Request<Full<Bytes>>| async {
    ///         let mut res = Response::new(String::new());
    ///         *res.status_mut() = StatusCode::NOT_FOUND;
    ///         Ok::<_, Infallible>(res)
    ///     });
    ///
    /// let lockinfo = r#"<?xml version="1.0" encoding="utf-8"?>
    /// <D:lockinfo xmlns:D="DAV:">
    ///   <D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>
    /// </D:lockinfo>"#;
    /// let lock = Request::builder()
    ///     .method("LOCK")
    ///     .uri("/new.txt")
    ///     .body(Full::new(Bytes::from(lockinfo)))
    ///     .unwrap();
    /// let res = app.oneshot(lock).await.unwrap();
    /// assert_eq!(res.status(), StatusCode::CREATED);
    /// assert_eq!(*created.0.lock().unwrap(), ["/new.txt"]);
    /// # });
    /// ```
    pub fn with_resource_creator(self, creator: impl ResourceCreator) -> Self {
        let creator: Arc<dyn ResourceCreator> = Arc::new(creator);
        self.update(|c| c.space.creator = Some(creator))
    }

    /// Declare `service` the one that answers for the whole resource space: the layer sends it
    /// a `HEAD` to learn whether a resource exists and its ETag (only when the answer matters:
    /// an `If` header with entity tags, a write that may create a member of a locked
    /// collection, a LOCK), and an empty `PUT` with `If-None-Match: *` to create the resource
    /// of a LOCK on a URL its `HEAD` answered 404 or 410 (never when existence is unknown,
    /// [decision D3](crate::decisions#d3)). Sub-requests carry the original request's headers (minus
    /// its body, conditions and WebDAV headers, so authentication layers in front of `service`
    /// see the same credentials), its [`Principal`](crate::Principal) and a
    /// [`SubRequest`](crate::SubRequest) marker, but no other extension (they may hold the state
    /// of a router the request already went through); their paths are stripped of the
    /// [`mount_prefix`](Self::mount_prefix).
    ///
    /// Without a resource space (the default) the layer never sends a sub-request: existence is
    /// unknown, so a write that may create a member of a locked collection needs the
    /// collection's token, an `If` list with an entity tag is false, and a LOCK on an unmapped
    /// URL locks the URL without creating anything (see the crate docs, "Existence and
    /// ETags").
    ///
    /// With axum's `Router::layer`, pass the router *without* the layer: the layer wraps each
    /// handler separately, and a sub-request must reach the router to find its handler.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use http::{Request, StatusCode};
    /// use tower::ServiceExt;
    /// use tower_locks::{LockLayer, LockStore, LockDepth, MemoryLockStore, NewLock, ResourcePath};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = std::sync::Arc::new(MemoryLockStore::new());
    /// let routes = Router::new()
    ///     .route("/docs/report", get(|| async { "a report" }).put(|| async { "saved" }));
    /// let app = routes
    ///     .clone()
    ///     .layer(LockLayer::new(store.clone()).resource_space(routes));
    ///
    /// // /docs/ is locked at depth 0: nobody may add members without its token...
    /// let docs = ResourcePath::parse("/docs/").unwrap();
    /// store.create(NewLock::new(docs).depth(LockDepth::Zero)).await.unwrap();
    /// // ...but an existing member may still be changed: the probe tells it exists.
    /// let put = Request::put("/docs/report").body(axum::body::Body::empty()).unwrap();
    /// assert_eq!(app.oneshot(put).await.unwrap().status(), StatusCode::OK);
    /// # }
    /// ```
    pub fn resource_space<S, B>(self, service: S) -> Self
    where
        S: Service<Request<EmptyBody>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        B: Send + 'static,
    {
        let service = Arc::new(ServiceSpace::new(service));
        self.update(|c| c.space.service = Some(service))
    }

    /// The JSON lock API on this layer's store and settings (principal source, timeouts,
    /// quotas, disclosure, event hook): a tower service to mount beside the guarded routes,
    /// for REST clients that acquire, read, list, refresh, release, break and take over locks.
    /// See [`LockApi`](crate::LockApi).
    ///
    /// ```
    /// use axum::{routing::put, Router};
    /// use tower_locks::{LockLayer, MemoryLockStore};
    ///
    /// let locks = LockLayer::new(MemoryLockStore::new()).owner_writes(true);
    /// let app: Router = Router::new()
    ///     .route("/docs/{id}", put(|| async { "saved" }))
    ///     .layer(locks.clone())
    ///     .nest_service("/locks", locks.lock_api());
    /// ```
    pub fn lock_api(&self) -> crate::LockApi {
        crate::LockApi::new(Arc::clone(&self.config))
    }

    /// A [`LockPropertiesLayer`](crate::LockPropertiesLayer) on this layer's store and mount
    /// prefix: it adds `DAV:lockdiscovery` and `DAV:supportedlock` to the PROPFIND answers of
    /// a service that knows nothing about locks. Put it inside this layer.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// let locks = LockLayer::new(MemoryLockStore::new());
    /// let properties = locks.lock_properties();
    /// # let _ = properties;
    /// ```
    pub fn lock_properties(&self) -> crate::LockPropertiesLayer {
        crate::LockPropertiesLayer::new(Arc::clone(&self.config))
    }

    /// Which lock roots a refusal names. [`Disclosure::All`] (the default) names the locks
    /// that stand in the way, as RFC 4918 suggests (at most 16, the first in path order, so
    /// that a refusal stays small); [`Disclosure::Related`] names only the
    /// lock roots at or above the request URI (or its `Destination`) and those held by the
    /// requesting principal, and counts the others without naming them. Use `Related` when
    /// resource names are private and a listing of a collection is not open to everyone:
    /// otherwise a `DELETE` of a collection tells who locked what below it.
    ///
    /// ```
    /// use tower_locks::{Disclosure, LockLayer, MemoryLockStore};
    /// let layer = LockLayer::new(MemoryLockStore::new()).disclose_lock_roots(Disclosure::Related);
    /// # let _ = layer;
    /// ```
    pub fn disclose_lock_roots(self, disclosure: Disclosure) -> Self {
        self.update(|c| c.disclosure = disclosure)
    }

    /// Replace the responses the layer generates. The [`Rejection`] is still put in the
    /// extensions, and a 503 still gets `Retry-After` unless `f` set one.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// use bytes::Bytes;
    /// let layer = LockLayer::new(MemoryLockStore::new()).with_rejection_response(|rejection, _req| {
    ///     let mut res = http::Response::new(Bytes::from(rejection.detail()));
    ///     *res.status_mut() = rejection.status();
    ///     res
    /// });
    /// # let _ = layer;
    /// ```
    pub fn with_rejection_response<F>(self, f: F) -> Self
    where
        F: Fn(&Rejection, &request::Parts) -> Response<Bytes> + Send + Sync + 'static,
    {
        self.update(|c| c.responder = Some(Arc::new(f)))
    }

    /// The base of the problem `type` URIs (the rejection's name is appended).
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// let layer = LockLayer::new(MemoryLockStore::new())
    ///     .problem_type_base("https://api.example.com/problems/");
    /// # let _ = layer;
    /// ```
    pub fn problem_type_base(self, base: impl Into<String>) -> Self {
        let base = base.into();
        self.update(|c| c.response.problem_type_base = base)
    }

    /// The `Retry-After` seconds on a 503 for a failed store. Default 1.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// let layer = LockLayer::new(MemoryLockStore::new()).retry_after(5);
    /// # let _ = layer;
    /// ```
    pub fn retry_after(self, secs: u32) -> Self {
        self.update(|c| c.response.retry_after_secs = secs)
    }

    /// ⚠️ **Insecure.** When the store fails, forward writes **unchecked** instead of answering
    /// 503. A store outage then silently disables locking: concurrent editors can overwrite
    /// each other. Only for services where availability matters more than lock safety. LOCK,
    /// UNLOCK and cleanup still fail. Default: `false`.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// // Only where a write outage is worse than a lost update.
    /// let layer = LockLayer::new(MemoryLockStore::new()).fail_open_on_store_error_insecure(true);
    /// # let _ = layer;
    /// ```
    pub fn fail_open_on_store_error_insecure(self, yes: bool) -> Self {
        self.update(|c| c.fail_open = yes)
    }

    /// Add `DAV: 1, 2` and `LOCK, UNLOCK` (in an existing `Allow`) to successful OPTIONS
    /// responses. Default: `true`. Set it to `false` where LOCK cannot reach the layer, as
    /// under axum's `MethodRouter::route_layer` (LOCK gets axum's 405 there).
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// let layer = LockLayer::new(MemoryLockStore::new()).advertise_dav(false);
    /// # let _ = layer;
    /// ```
    pub fn advertise_dav(self, yes: bool) -> Self {
        self.update(|c| c.advertise = yes)
    }

    /// Let the principal that holds a lock write to its resources without submitting the
    /// token, as REST lock APIs (Microsoft Graph, WOPI hosts, Nextcloud's user locks) do.
    /// Everybody else still needs the token, and requests without a principal always do.
    ///
    /// ⚠️ The trade-off: the token no longer tells two tabs or devices of the same user
    /// apart — a second tab or device of the lock's holder writes over the first one's work
    /// without being refused. Keep the RFC 4918 default (`false`) for WebDAV clients, which
    /// submit their tokens anyway.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, Response, StatusCode};
    /// use http_body_util::Empty;
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_locks::{LockLayer, LockStore, MemoryLockStore, NewLock, Principal, ResourcePath};
    ///
    /// # tokio_test::block_on(async {
    /// let store = std::sync::Arc::new(MemoryLockStore::new());
    /// let doc = ResourcePath::parse("/doc").unwrap();
    /// store.create(NewLock::new(doc).principal("alice")).await.unwrap();
    /// let app = ServiceBuilder::new()
    ///     .layer(LockLayer::new(store.clone()).owner_writes(true))
    ///     .service_fn(|_req: Request<Empty<Bytes>>| async {
    ///         Ok::<_, Infallible>(Response::new(String::new()))
    ///     });
    /// let put = |who: &str| {
    ///     let mut req = Request::put("/doc").body(Empty::new()).unwrap();
    ///     req.extensions_mut().insert(Principal::new(who));
    ///     req
    /// };
    /// assert_eq!(app.clone().oneshot(put("alice")).await.unwrap().status(), StatusCode::OK);
    /// assert_eq!(app.oneshot(put("bob")).await.unwrap().status(), StatusCode::LOCKED);
    /// # });
    /// ```
    pub fn owner_writes(self, yes: bool) -> Self {
        self.update(|c| c.owner_writes = yes)
    }

    /// Call `hook` with every [`LockEvent`](crate::LockEvent): grants, refreshes, releases
    /// and breaks made through this layer (LOCK, UNLOCK, the [`LockApi`](crate::LockApi)),
    /// locks removed with their resource, and expiries. For audit logs and notifications.
    ///
    /// The hook never runs on a request: events queue (at most 4096 waiting; more are dropped,
    /// and counted in the layer's `Debug` output) and one thread per layer calls `hook` in
    /// order, so a slow hook delays only other events; a hook that panics loses that event
    /// only. Expiries are those of the locks this layer heard of (see the [`LockEvent`] docs).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use tower_locks::{LockEvent, LockLayer, MemoryLockStore};
    ///
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let seen = log.clone();
    /// let layer = LockLayer::new(MemoryLockStore::new()).on_lock_event(move |event| {
    ///     seen.lock().unwrap().push(format!("{:?} {}", std::mem::discriminant(event), event.lock().root));
    /// });
    /// # let _ = layer;
    /// ```
    ///
    /// [`LockEvent`]: crate::LockEvent
    pub fn on_lock_event<F>(self, hook: F) -> Self
    where
        F: Fn(&crate::LockEvent) + Send + Sync + 'static,
    {
        let events = Arc::new(crate::events::Events::start(Arc::new(hook)));
        self.update(|c| c.events = Some(events))
    }

    /// Compatibility switch for Microsoft Word 2016, which sends its lock token in a
    /// `Lock-Token` header on PUT instead of in `If`: with `true`, a `Lock-Token` header on any
    /// write other than LOCK and UNLOCK counts as a submitted token, still only for the lock's
    /// own principal. RFC 4918 §6.1 (7) counts only the `If` header; leave this off unless such
    /// clients must save. Default: `false`.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, Response, StatusCode};
    /// use http_body_util::Empty;
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_locks::{CreateOutcome, LockLayer, LockStore, MemoryLockStore, NewLock, ResourcePath};
    ///
    /// # tokio_test::block_on(async {
    /// let store = std::sync::Arc::new(MemoryLockStore::new());
    /// let CreateOutcome::Created(lock) =
    ///     store.create(NewLock::new(ResourcePath::parse("/doc").unwrap())).await.unwrap()
    /// else { panic!("nothing else is locked") };
    /// let app = ServiceBuilder::new()
    ///     .layer(LockLayer::new(store.clone()).accept_lock_token_header(true))
    ///     .service_fn(|_req: Request<Empty<Bytes>>| async {
    ///         Ok::<_, Infallible>(Response::new(String::new()))
    ///     });
    /// let put = Request::put("/doc")
    ///     .header("lock-token", format!("<{}>", lock.token))
    ///     .body(Empty::new())
    ///     .unwrap();
    /// assert_eq!(app.oneshot(put).await.unwrap().status(), StatusCode::OK);
    /// # });
    /// ```
    pub fn accept_lock_token_header(self, yes: bool) -> Self {
        self.update(|c| c.lock_token_submits = yes)
    }

    /// Add `MS-Author-Via: DAV` to successful OPTIONS answers, which older Microsoft Office
    /// versions look for before they edit in place. Default: `false`.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// let layer = LockLayer::new(MemoryLockStore::new()).advertise_ms_author_via(true);
    /// # let _ = layer;
    /// ```
    pub fn advertise_ms_author_via(self, yes: bool) -> Self {
        self.update(|c| c.ms_author_via = yes)
    }

    /// Let requests for which `f` answers `true` (an administrator) UNLOCK locks of other
    /// principals (RFC 4918 §6.4). Default: nobody.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// use tower_locks::Principal;
    /// let layer = LockLayer::new(MemoryLockStore::new()).allow_unlock_override(|parts| {
    ///     parts.extensions.get::<Principal>().is_some_and(|p| p.as_str() == "admin")
    /// });
    /// # let _ = layer;
    /// ```
    pub fn allow_unlock_override<F>(self, f: F) -> Self
    where
        F: Fn(&request::Parts) -> bool + Send + Sync + 'static,
    {
        self.update(|c| c.unlock_override = Some(Arc::new(f)))
    }

    /// Dry-run mode, for a safe rollout in front of an existing app: writes that would be
    /// refused with 412, 423 or 503 (the store failed) are logged (feature `tracing`) and
    /// **forwarded anyway** (a write relying on a lock an UNLOCK is removing is still refused
    /// with 423), with
    /// a [`WouldReject`](crate::WouldReject) in the request and response extensions. LOCK
    /// and UNLOCK still work normally, so clients can start taking locks before they are
    /// enforced. Default: `false`.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// let layer = LockLayer::new(MemoryLockStore::new()).dry_run(true);
    /// # let _ = layer;
    /// ```
    pub fn dry_run(self, yes: bool) -> Self {
        self.update(|c| c.dry_run = yes)
    }

    /// Replace the abuse limits.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// let mut limits = tower_locks::Limits::default();
    /// limits.max_locks_per_principal = Some(50);
    /// let layer = LockLayer::new(MemoryLockStore::new()).limits(limits);
    /// # let _ = layer;
    /// ```
    pub fn limits(self, limits: Limits) -> Self {
        self.update(|c| c.limits = limits)
    }

    /// The store this layer uses.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// let layer = LockLayer::new(MemoryLockStore::new());
    /// let store = layer.store().clone(); // the same store, for your own endpoints
    /// # let _ = store;
    /// ```
    pub fn store(&self) -> &Arc<dyn DynLockStore> {
        &self.config.store
    }

    /// The default timeout granted (for rendering and tests).
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// let layer = LockLayer::new(MemoryLockStore::new());
    /// assert_eq!(layer.default_timeout(), tower_locks::LockTimeout::Seconds(600));
    /// ```
    pub fn default_timeout(&self) -> LockTimeout {
        self.config.timeouts.default_timeout()
    }
}

impl<S> Layer<S> for LockLayer {
    type Service = LockService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LockService::with_config(inner, Arc::clone(&self.config))
    }
}

impl fmt::Debug for LockLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockLayer")
            .field("config", &self.config)
            .finish()
    }
}

impl<S> LockService<S> {
    /// A [`LockLayer`] on `store` (shortcut for [`LockLayer::new`]).
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, Response, StatusCode};
    /// use http_body_util::Empty;
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_locks::{LockService, MemoryLockStore};
    ///
    /// # tokio_test::block_on(async {
    /// let svc = ServiceBuilder::new()
    ///     .layer(LockService::<()>::layer(MemoryLockStore::new()))
    ///     .service_fn(|_req: Request<Empty<Bytes>>| async {
    ///         Ok::<_, Infallible>(Response::new(String::new()))
    ///     });
    /// let res = svc.oneshot(Request::options("/").body(Empty::new()).unwrap()).await.unwrap();
    /// assert_eq!(res.headers()["dav"], "1, 2"); // OPTIONS answers advertise class 2
    /// # });
    /// ```
    pub fn layer<T: LockStore>(store: T) -> LockLayer {
        LockLayer::new(store)
    }
}
