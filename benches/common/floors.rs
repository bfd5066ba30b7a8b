//! Minimal middlewares that say what a middleware costs in `benches/layer.rs` before it does
//! any work of its own, each one step closer to the lock layer's shape (only their GET path
//! is measured):
//!
//! - [`Forward`]: forwards every request, with its own future type (a struct around the
//!   inner future). The floor of a middleware that never answers by itself.
//! - [`Either`]: forwards the safe methods and answers everything else itself (an empty 423),
//!   so its future is an enum: the inner future, or its own ready answer. The floor of a
//!   middleware that may answer instead of the inner service, as the lock layer must (423,
//!   412, LOCK, UNLOCK), and as tower-http's validating middlewares do. It keeps the inner
//!   body type.
//! - [`EitherBody`]: [`Either`] with a response body type of its own, mapped in its own
//!   `poll`, as the layer needs for the bodies it writes.
//! - [`Shape`]: [`EitherBody`] with the two other kinds of future the layer has: a forwarded
//!   write carrying a guard (the in-flight hold) and a boxed async flow (the guarded flow).
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::{Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::Service;
use tower_locks::ResponseBody;

/// The methods these middlewares forward as reads.
fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The inner service's answer with the body wrapped, as the lock layer passes answers on.
#[inline]
fn wrapped<B, E>(res: Result<Response<B>, E>) -> Result<Response<ResponseBody<B>>, E> {
    res.map(|res| res.map(ResponseBody::passthrough))
}

/// Forwards every request (see the module docs).
#[derive(Clone)]
pub(crate) struct Forward<S> {
    pub(crate) inner: S,
}

pin_project! {
    pub(crate) struct ForwardFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for ForwardFuture<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

impl<S: Service<Request<B>>, B> Service<Request<B>> for Forward<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = ForwardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<B>) -> Self::Future {
        ForwardFuture {
            inner: self.inner.call(req),
        }
    }
}

/// Forwards GET, HEAD and OPTIONS; answers anything else with an empty 423 (see the module
/// docs).
#[derive(Clone)]
pub(crate) struct Either<S> {
    pub(crate) inner: S,
}

pin_project! {
    #[project = EitherProj]
    pub(crate) enum EitherFuture<F, O> {
        Inner { #[pin] inner: F },
        Answer { answer: Option<O> },
    }
}

impl<F: Future<Output = O>, O> Future for EitherFuture<F, O> {
    type Output = O;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O> {
        match self.project() {
            EitherProj::Inner { inner } => inner.poll(cx),
            EitherProj::Answer { answer } => Poll::Ready(answer.take().expect("polled again")),
        }
    }
}

impl<S, B, ResBody> Service<Request<B>> for Either<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = EitherFuture<S::Future, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<B>) -> Self::Future {
        if is_read(req.method()) {
            return EitherFuture::Inner {
                inner: self.inner.call(req),
            };
        }
        let mut res = Response::new(ResBody::default());
        *res.status_mut() = StatusCode::LOCKED;
        EitherFuture::Answer {
            answer: Some(Ok(res)),
        }
    }
}

/// Forwards the safe methods like [`Either`], but gives responses its own body type
/// ([`ResponseBody`]), mapped in its own `poll`: the floor of a middleware that may answer by
/// itself with a body of its own (the layer's 423, 412 and LOCK answers need one).
#[derive(Clone)]
pub(crate) struct EitherBody<S> {
    pub(crate) inner: S,
}

pin_project! {
    #[project = EitherBodyProj]
    pub(crate) enum EitherBodyFuture<F> {
        Inner { #[pin] inner: F },
        Answer { status: StatusCode },
    }
}

impl<F, B, E> Future for EitherBodyFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            EitherBodyProj::Inner { inner } => Poll::Ready(wrapped(ready!(inner.poll(cx)))),
            EitherBodyProj::Answer { status } => {
                let mut res = Response::new(ResponseBody::empty());
                *res.status_mut() = *status;
                Poll::Ready(Ok(res))
            }
        }
    }
}

impl<S, B, ResBody> Service<Request<B>> for EitherBody<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = EitherBodyFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<B>) -> Self::Future {
        if is_read(req.method()) {
            return EitherBodyFuture::Inner {
                inner: self.inner.call(req),
            };
        }
        EitherBodyFuture::Answer {
            status: StatusCode::LOCKED,
        }
    }
}

/// A middleware with the shape of the lock layer's future and nothing else: reads forwarded
/// as they are; PUT forwarded with a guard released when the answer comes (as the layer's
/// in-flight hold on an unlocked plain write); anything else answered by a boxed async flow
/// (as the layer's guarded flow); its own body type. What [`EitherBody`] costs plus what
/// those two variants cost, before any lock check.
#[derive(Clone)]
pub(crate) struct Shape<S> {
    pub(crate) inner: S,
}

type Flow<B, E> = Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send>>;

pin_project! {
    #[project = ShapeProj]
    pub(crate) enum ShapeFuture<F, B, E> {
        Inner { #[pin] inner: F },
        Held { #[pin] inner: F, guard: Option<Arc<AtomicBool>> },
        Flow { flow: Flow<B, E> },
    }
}

impl<F, B, E> Future for ShapeFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ShapeProj::Inner { inner } => Poll::Ready(wrapped(ready!(inner.poll(cx)))),
            ShapeProj::Held { inner, guard } => {
                let res = ready!(inner.poll(cx));
                if let Some(g) = guard.take() {
                    g.store(false, Ordering::Release);
                }
                Poll::Ready(wrapped(res))
            }
            ShapeProj::Flow { flow } => flow.as_mut().poll(cx),
        }
    }
}

impl<S, B, ResBody> Service<Request<B>> for Shape<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ShapeFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<B>) -> Self::Future {
        if is_read(req.method()) {
            return ShapeFuture::Inner {
                inner: self.inner.call(req),
            };
        }
        if *req.method() == Method::PUT {
            return ShapeFuture::Held {
                inner: self.inner.call(req),
                guard: Some(Arc::new(AtomicBool::new(true))),
            };
        }
        ShapeFuture::Flow {
            flow: Box::pin(async {
                let mut res = Response::new(ResponseBody::empty());
                *res.status_mut() = StatusCode::LOCKED;
                Ok(res)
            }),
        }
    }
}
