//! `LockService`: the dispatch. Safe methods pass straight through; everything else goes
//! through the guarded flow in [`crate::flow`].

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::advertise::Advertise;
use crate::body::ResponseBody;
use crate::config::Config;
use crate::flow::{start, Started};
use crate::future::ResponseFuture;
use crate::store::{BoxError, LockStore};

/// Middleware that enforces WebDAV write locks in front of `S` and answers LOCK and UNLOCK.
///
/// Created by [`LockLayer`](crate::LockLayer) (or [`LockService::new`]). See also the [crate docs](crate) for
/// an axum example.
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Empty;
/// use tower::{service_fn, ServiceExt};
/// use tower_locks::{LockService, LockStore, MemoryLockStore, NewLock, ResourcePath};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = std::sync::Arc::new(MemoryLockStore::new());
/// let handler = service_fn(|_req: Request<Empty<Bytes>>| async {
///     Ok::<_, Infallible>(Response::new(String::from("done")))
/// });
/// let svc = LockService::new(handler, store.clone());
///
/// store.create(NewLock::new(ResourcePath::parse("/doc").unwrap())).await.unwrap();
/// let put = Request::put("/doc").body(Empty::new()).unwrap();
/// assert_eq!(svc.clone().oneshot(put).await.unwrap().status(), StatusCode::LOCKED);
/// let get = Request::get("/doc").body(Empty::new()).unwrap();
/// assert_eq!(svc.oneshot(get).await.unwrap().status(), StatusCode::OK); // reads pass
/// # }
/// ```
#[must_use]
pub struct LockService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: Clone> Clone for LockService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S> LockService<S> {
    /// Wrap `inner`, enforcing the locks held in `store` with the default configuration
    /// (the same as `LockLayer::new(store).layer(inner)`; see [`LockLayer`](crate::LockLayer)
    /// for the settings).
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, Response, StatusCode};
    /// use http_body_util::Empty;
    /// use tower::{service_fn, ServiceExt};
    /// use tower_locks::{LockService, MemoryLockStore};
    ///
    /// # tokio_test::block_on(async {
    /// let handler = service_fn(|_req: Request<Empty<Bytes>>| async {
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// });
    /// let svc = LockService::new(handler, MemoryLockStore::new());
    /// // Nothing is locked: writes reach the inner service.
    /// let put = Request::put("/doc").body(Empty::new()).unwrap();
    /// assert_eq!(svc.oneshot(put).await.unwrap().status(), StatusCode::OK);
    /// # });
    /// ```
    pub fn new<T: LockStore>(inner: S, store: T) -> Self {
        Self::with_config(inner, Arc::new(Config::new(Arc::new(store))))
    }

    pub(crate) fn with_config(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    /// The inner service.
    ///
    /// ```
    /// use tower_locks::{LockService, MemoryLockStore};
    ///
    /// #[derive(Clone)]
    /// struct Backend {
    ///     name: &'static str,
    /// }
    /// let svc = LockService::new(Backend { name: "files" }, MemoryLockStore::new());
    /// assert_eq!(svc.get_ref().name, "files");
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    ///
    /// ```
    /// use tower_locks::{LockService, MemoryLockStore};
    ///
    /// #[derive(Clone)]
    /// struct Backend {
    ///     name: &'static str,
    /// }
    /// let mut svc = LockService::new(Backend { name: "files" }, MemoryLockStore::new());
    /// svc.get_mut().name = "archive";
    /// assert_eq!(svc.get_ref().name, "archive");
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwrap the inner service.
    ///
    /// ```
    /// use tower_locks::{LockService, MemoryLockStore};
    ///
    /// #[derive(Clone, Debug, PartialEq)]
    /// struct Backend {
    ///     name: &'static str,
    /// }
    /// let svc = LockService::new(Backend { name: "files" }, MemoryLockStore::new());
    /// assert_eq!(svc.into_inner(), Backend { name: "files" });
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LockService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if self.config.is_safe(req.method()) {
            let cfg = &self.config;
            let advertise = (req.method() == Method::OPTIONS
                && (cfg.advertise || cfg.ms_author_via))
                .then_some(Advertise {
                    class_2: cfg.advertise,
                    ms_author_via: cfg.ms_author_via,
                });
            return ResponseFuture::passthrough(self.inner.call(req), advertise);
        }
        match start(Arc::clone(&self.config), req) {
            Started::Forward(req, hold) => ResponseFuture::held(self.inner.call(req), hold),
            Started::Respond(res) => ResponseFuture::ready(res.map(ResponseBody::full)),
            // Keep a fresh clone; move the instance that was polled ready into the future
            // (only a write takes it: LOCK and UNLOCK never call the inner service).
            Started::Later(later) => ResponseFuture::guarded(later.run(|| {
                let clone = self.inner.clone();
                std::mem::replace(&mut self.inner, clone)
            })),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for LockService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockService")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}
