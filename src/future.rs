//! `ResponseFuture`: the pass-through future (no allocation) or the guarded flow (one box).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use crate::advertise::{advertise, Advertise};
use crate::body::ResponseBody;
use crate::holds::HoldGuard;
use crate::store::BoxFuture;

pin_project! {
    /// Response future for [`LockService`](crate::LockService): what its
    /// [`Service::call`](tower_service::Service::call) returns. Requests with a safe method
    /// pass through without an allocation; so do writes the layer decides in `call`, forwarded
    /// or refused, when the store answers at once
    /// ([`LockStore::query_now`](crate::LockStore::query_now)); the others run the rest of the
    /// lock check in one boxed future.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, Response, StatusCode};
    /// use http_body_util::{BodyExt, Empty};
    /// use tower::{service_fn, Service, ServiceExt};
    /// use tower_locks::{
    ///     LockService, LockStore, MemoryLockStore, NewLock, ResourcePath, ResponseFuture,
    /// };
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = std::sync::Arc::new(MemoryLockStore::new());
    /// let handler = service_fn(|_req: Request<Empty<Bytes>>| async {
    ///     Ok::<_, Infallible>(Response::new(String::from("hello")))
    /// });
    /// let mut svc = LockService::new(handler, store.clone());
    ///
    /// let get = Request::get("/doc").body(Empty::new()).unwrap();
    /// let future: ResponseFuture<_, String, Infallible> = svc.ready().await.unwrap().call(get);
    /// let res = future.await.unwrap();
    /// assert_eq!(res.status(), StatusCode::OK);
    /// assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hello");
    ///
    /// store.create(NewLock::new(ResourcePath::parse("/doc").unwrap())).await.unwrap();
    /// let put = Request::put("/doc").body(Empty::new()).unwrap();
    /// let res = svc.ready().await.unwrap().call(put).await.unwrap();
    /// assert_eq!(res.status(), StatusCode::LOCKED);
    /// # }
    /// ```
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        // A safe request: the answer only has its body type changed. OPTIONS, whose answers
        // advertise class 2, has its own variant, so this one carries no flag to test.
        Passthrough { #[pin] future: F },
        Advertise { #[pin] future: F, what: Advertise },
        // A write decided in `call` and forwarded; the hold moves into the answer's body and
        // ends with it (D15).
        Held { #[pin] future: F, hold: Option<HoldGuard> },
        // The layer's own answer, decided in `call` (a refusal).
        Ready { response: Option<Response<ResponseBody<B>>> },
        Guarded { future: BoxFuture<'static, Result<Response<ResponseBody<B>>, E>> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    #[inline]
    pub(crate) fn passthrough(future: F, advertise: Option<Advertise>) -> Self {
        Self {
            kind: match advertise {
                Some(what) => Kind::Advertise { future, what },
                None => Kind::Passthrough { future },
            },
        }
    }

    #[inline]
    pub(crate) fn held(future: F, hold: HoldGuard) -> Self {
        Self {
            kind: Kind::Held {
                future,
                hold: Some(hold),
            },
        }
    }

    pub(crate) fn ready(response: Response<ResponseBody<B>>) -> Self {
        Self {
            kind: Kind::Ready {
                response: Some(response),
            },
        }
    }

    pub(crate) fn guarded(
        future: BoxFuture<'static, Result<Response<ResponseBody<B>>, E>>,
    ) -> Self {
        Self {
            kind: Kind::Guarded { future },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Passthrough { future } => {
                let res = ready!(future.poll(cx));
                Poll::Ready(res.map(|res| res.map(ResponseBody::passthrough)))
            }
            KindProj::Advertise { future, what } => {
                let res = ready!(future.poll(cx));
                let what = *what;
                Poll::Ready(res.map(|res| advertised(res, what)))
            }
            KindProj::Held { future, hold } => {
                let res = ready!(future.poll(cx));
                let hold = hold.take();
                Poll::Ready(res.map(|res| res.map(|b| ResponseBody::held(b, hold))))
            }
            KindProj::Ready { response } => match response.take() {
                Some(res) => Poll::Ready(Ok(res)),
                None => Poll::Pending,
            },
            KindProj::Guarded { future } => future.as_mut().poll(cx),
        }
    }
}

/// An OPTIONS answer with class 2 advertised (out of line: the pass-through path of every
/// other safe request then keeps its response out of memory).
#[cold]
#[inline(never)]
fn advertised<B>(mut res: Response<B>, what: Advertise) -> Response<ResponseBody<B>> {
    advertise(&mut res, what);
    res.map(ResponseBody::passthrough)
}

impl<F, B, E> fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture(..)")
    }
}
