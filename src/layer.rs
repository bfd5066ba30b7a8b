//! `LockLayer` and its configuration.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{request, Method, Response};
use tower_layer::Layer;

use crate::headers::IfLimits;
use crate::holds::Holds;
use crate::hooks::{ResourceCreator, ResourceProbe};
use crate::principal::PrincipalSource;
use crate::response::{Rejection, Responder, ResponseConfig};
use crate::service::LockService;
use crate::store::{DynLockStore, LockStore, LockTimeout, MemoryLockStore};
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

/// Size and abuse limits. Every limit refuses the request before anything is forwarded.
///
/// ```
/// use tower_locks::Limits;
///
/// let limits = Limits::default();
/// assert_eq!(limits.max_lockinfo_bytes, 64 * 1024);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Largest accepted LOCK body, in bytes (413 above). Default 64 KiB.
    pub max_lockinfo_bytes: usize,
    /// Largest accepted `DAV:owner` content, in bytes (413 above). Default 4 KiB.
    pub max_owner_bytes: usize,
    /// `If` header limits (400 above). Default 8 KiB, 64 lists, 256 conditions.
    pub if_header: IfLimits,
    /// Longest accepted normalised path, in bytes (400 above). Default 4096.
    pub max_path_bytes: usize,
    /// Deepest accepted path, in segments (400 above). Default 64.
    pub max_path_depth: usize,
    /// Most live locks one principal may hold (429 above); `None` for no limit. Default 1000.
    pub max_locks_per_principal: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_lockinfo_bytes: 64 * 1024,
            max_owner_bytes: 4 * 1024,
            if_header: IfLimits::default(),
            max_path_bytes: 4096,
            max_path_depth: 64,
            max_locks_per_principal: Some(1000),
        }
    }
}

/// Decides whether a request may remove other principals' locks.
pub(crate) type UnlockOverride = Arc<dyn Fn(&request::Parts) -> bool + Send + Sync>;

pub(crate) struct Config {
    pub(crate) store: Arc<dyn DynLockStore>,
    /// Whether `store` answers checks at once ([`LockStore::query_now`]), asked once when the
    /// layer is built: the write fast path is tried only then, so a store that needs I/O never
    /// pays for a fast-path attempt before its full check.
    pub(crate) store_answers_now: bool,
    /// `store` itself when it is the built-in [`MemoryLockStore`] (or an `Arc` of one): the
    /// write fast path then asks it with borrowed keys (see `crate::methods::fast`).
    pub(crate) memory: Option<MemoryLockStore>,
    pub(crate) safe_methods: Vec<Method>,
    pub(crate) prefix: ResourcePath,
    pub(crate) any_authority: bool,
    pub(crate) timeouts: TimeoutPolicy,
    pub(crate) principal: PrincipalSource,
    pub(crate) probe: Option<Arc<dyn ResourceProbe>>,
    pub(crate) creator: Option<Arc<dyn ResourceCreator>>,
    pub(crate) responder: Option<Responder>,
    pub(crate) response: ResponseConfig,
    pub(crate) fail_open: bool,
    pub(crate) advertise: bool,
    pub(crate) unlock_override: Option<UnlockOverride>,
    pub(crate) limits: Limits,
    pub(crate) dry_run: bool,
    pub(crate) holds: Arc<Holds>,
}

impl Clone for Config {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            store_answers_now: self.store_answers_now,
            memory: self.memory.clone(),
            safe_methods: self.safe_methods.clone(),
            prefix: self.prefix.clone(),
            any_authority: self.any_authority,
            timeouts: self.timeouts.clone(),
            principal: self.principal.clone(),
            probe: self.probe.clone(),
            creator: self.creator.clone(),
            responder: self.responder.clone(),
            response: self.response.clone(),
            fail_open: self.fail_open,
            advertise: self.advertise,
            unlock_override: self.unlock_override.clone(),
            limits: self.limits.clone(),
            dry_run: self.dry_run,
            holds: Arc::clone(&self.holds),
        }
    }
}

impl Config {
    /// Whether `method` passes straight through (decision D2: everything not on the safe list
    /// is a write, including unknown extension methods).
    #[inline]
    pub(crate) fn is_safe(&self, method: &Method) -> bool {
        self.safe_methods.iter().any(|m| m == method)
    }
}

/// The default read-only methods: GET, HEAD, OPTIONS, TRACE (RFC 9110 §9.2.1) and PROPFIND,
/// REPORT, SEARCH (WebDAV reads). Deliberately not `Method::is_safe`, which misses the WebDAV
/// ones.
pub(crate) fn default_safe_methods() -> Vec<Method> {
    let mut v = vec![Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE];
    for m in ["PROPFIND", "REPORT", "SEARCH"] {
        v.push(Method::from_bytes(m.as_bytes()).expect("valid method token"));
    }
    v
}

impl LockLayer {
    /// A layer enforcing the locks held in `store`.
    ///
    /// Defaults: the safe methods GET, HEAD, OPTIONS, TRACE, PROPFIND, REPORT, SEARCH; no mount
    /// prefix; `If` tags and `Destination` must name this server's authority; lock timeouts of
    /// 600 s by default, 1 s minimum, 1 day maximum, never infinite; the principal from the
    /// [`Principal`](crate::Principal) request extension; existence and ETags probed with an
    /// inner `HEAD`; unmapped LOCK targets created with an inner empty `PUT`; store failures
    /// answered with 503 (fail closed); OPTIONS answers advertise class 2; [`Limits::default`].
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
        let store_answers_now = store.query_now_dyn(&crate::LockQuery::new()).is_some();
        let any: &dyn Any = &*store;
        let memory = any.downcast_ref::<MemoryLockStore>().cloned().or_else(|| {
            any.downcast_ref::<Arc<MemoryLockStore>>()
                .map(|shared| MemoryLockStore::clone(shared))
        });
        Self {
            config: Arc::new(Config {
                store,
                store_answers_now,
                memory,
                safe_methods: default_safe_methods(),
                prefix: ResourcePath::root(),
                any_authority: false,
                timeouts: TimeoutPolicy::default(),
                principal: PrincipalSource::Extension,
                probe: None,
                creator: None,
                responder: None,
                response: ResponseConfig::default(),
                fail_open: false,
                advertise: true,
                unlock_override: None,
                limits: Limits::default(),
                dry_run: false,
                holds: Arc::default(),
            }),
        }
    }

    fn update(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Replace the list of methods that pass through without a lock check.
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

    /// Add one method to the safe list (for example a custom read-only method).
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
    /// layer sits inside a router that strips it (decision D10). Lock roots, `If` tags,
    /// `Destination` and every href stay in the client-visible path space; sub-requests to the
    /// inner service use the stripped path. Default: none.
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

    /// Use `probe` to learn whether a resource exists and its ETag, instead of an inner `HEAD`.
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
        self.update(|c| c.probe = Some(probe))
    }

    /// Use `creator` to create the empty resource of a LOCK on an unmapped URL, instead of an
    /// inner empty `PUT` with `If-None-Match: *`. See [`ResourceCreator`] and
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
    ///     // HEAD probes answer 404: the LOCK target is unmapped.
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
        self.update(|c| c.creator = Some(creator))
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
    /// responses. Default: `true`.
    ///
    /// ```
    /// # use tower_locks::{LockLayer, MemoryLockStore};
    /// let layer = LockLayer::new(MemoryLockStore::new()).advertise_dav(false);
    /// # let _ = layer;
    /// ```
    pub fn advertise_dav(self, yes: bool) -> Self {
        self.update(|c| c.advertise = yes)
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
    /// refused with 412 or 423 are logged (feature `tracing`) and **forwarded anyway**, with
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
        LockService::from_layer(inner, self.clone())
    }
}

impl fmt::Debug for LockLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("LockLayer")
            .field("store", &"<dyn DynLockStore>")
            .field("safe_methods", &c.safe_methods)
            .field("prefix", &c.prefix)
            .field("any_authority", &c.any_authority)
            .field("timeouts", &c.timeouts)
            .field("fail_open", &c.fail_open)
            .field("advertise", &c.advertise)
            .field("limits", &c.limits)
            .field("dry_run", &c.dry_run)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewLock;

    fn doc() -> NewLock {
        NewLock::new(ResourcePath::parse("/doc").unwrap())
    }

    /// The write fast path asks the memory store with borrowed keys however the store was
    /// passed, and sees the same locks as the store the caller kept.
    #[tokio::test]
    async fn the_memory_store_is_recognised_however_it_is_passed() {
        let owned = MemoryLockStore::new();
        let shared = Arc::new(MemoryLockStore::new());
        let erased: Arc<dyn DynLockStore> = Arc::new(MemoryLockStore::new());
        owned.create(doc()).await.unwrap();
        shared.create(doc()).await.unwrap();
        erased.create_boxed(doc()).await.unwrap();
        for (how, layer) in [
            ("owned", LockLayer::new(owned)),
            ("Arc", LockLayer::new(shared.clone())),
            ("dyn", LockLayer::from_arc(erased)),
        ] {
            let memory = layer.config.memory.as_ref().expect(how);
            assert_eq!(memory.plain_write_locks("/doc", None).len(), 1, "{how}");
            assert!(
                memory.plain_write_locks("/other", Some("/")).is_empty(),
                "{how}"
            );
        }
        // Any other store type (here one more `Arc` around it) takes `query_now`.
        assert!(LockLayer::new(Arc::new(shared)).config.memory.is_none());
    }
}
