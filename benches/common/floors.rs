//! Two minimal middlewares that say what any middleware costs in `benches/layer.rs`, before
//! it does any work of its own:
//!
//! - [`Forward`]: forwards every request, with its own future type (a struct around the
//!   inner future). The floor of a middleware that never answers by itself.
//! - [`Either`]: forwards the safe methods and answers everything else itself (an empty 423),
//!   so its future is an enum: the inner future, or its own ready answer. The floor of a
//!   middleware that may answer instead of the inner service, as the lock layer must (423,
//!   412, LOCK, UNLOCK), and as tower-http's validating middlewares do. It keeps the inner
//!   body type, so changing the body type (the body-map floor) comes on top.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::Service;

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
        if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
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
