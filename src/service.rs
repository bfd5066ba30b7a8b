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
use crate::store::{BoxError, LockStore};

/// Middleware that enforces WebDAV write locks in front of `S` and answers LOCK and UNLOCK.
///
/// Created by [`LockLayer`]. See the [crate docs](crate) for an example.
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
    /// Wrap `inner`, enforcing the locks held in `store` with the default configuration.
    pub fn new<T: LockStore>(inner: S, store: T) -> Self {
        Self::from_layer(inner, LockLayer::new(store))
    }

    /// A [`LockLayer`] on `store` (shortcut for [`LockLayer::new`]).
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
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwrap the inner service.
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

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if self.config.is_safe(req.method()) {
            let advertise = self.config.advertise && req.method() == Method::OPTIONS;
            return ResponseFuture::passthrough(self.inner.call(req), advertise);
        }
        // Keep a fresh clone; move the instance that was polled ready into the future. It
        // also serves the layer's sub-requests, so they never wait for capacity that this
        // request itself holds.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        ResponseFuture::guarded(Box::pin(crate::methods::run(config, ready, req)))
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
