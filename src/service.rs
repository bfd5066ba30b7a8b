//! `LockService`: the dispatch. Safe methods pass straight through; everything else goes
//! through the guarded flow in [`crate::methods`].

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::future::ResponseFuture;
use crate::layer::{Config, LockLayer};
use crate::methods::Fast;
use crate::store::{BoxError, LockStore};

/// Middleware that enforces WebDAV write locks in front of `S` and answers LOCK and UNLOCK.
///
/// Created by [`LockLayer`] (or [`LockService::new`]). See also the [crate docs](crate) for
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
    /// (the same as `LockLayer::new(store).layer(inner)`).
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
        Self::from_layer(inner, LockLayer::new(store))
    }

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

    pub(crate) fn from_layer(inner: S, layer: LockLayer) -> Self {
        Self {
            inner,
            config: layer.config,
        }
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
    ReqBody: Body + Default + Send + 'static,
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
            let advertise = self.config.advertise && req.method() == Method::OPTIONS;
            return ResponseFuture::passthrough(self.inner.call(req), advertise);
        }
        let found = match crate::methods::plain_write(&self.config, &req) {
            Fast::Forward(hold) => return ResponseFuture::held(self.inner.call(req), hold),
            Fast::Found(found) => Some(found),
            Fast::Full => None,
        };
        // Keep a fresh clone; move the instance that was polled ready into the future. It
        // also serves the layer's sub-requests, so they never wait for capacity that this
        // request itself holds.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        ResponseFuture::guarded(crate::methods::run(config, ready, req, found))
    }
}

impl<S: fmt::Debug> fmt::Debug for LockService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockService")
            .field("inner", &self.inner)
            .field(
                "layer",
                &LockLayer {
                    config: Arc::clone(&self.config),
                },
            )
            .finish()
    }
}
