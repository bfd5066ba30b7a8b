//! A test service: PUTs wait at a gate, so a write can be held in flight.

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};

use axum::body::Body;
use http::{Request, Response, StatusCode};
use tokio::sync::Notify;
use tower_locks::{FencingToken, WouldReject};

/// An inner service whose PUTs wait for `gate` (HEAD answers 200 at once).
#[derive(Clone, Default)]
pub struct Slow {
    pub gate: Arc<Notify>,
    pub entered: Arc<Notify>,
    pub fences: Arc<Mutex<Vec<Option<FencingToken>>>>,
    pub would: Arc<Mutex<Vec<Option<WouldReject>>>>,
}

impl tower::Service<Request<Body>> for Slow {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<Body>, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            if req.method() == "PUT" && req.extensions().get::<tower_locks::SubRequest>().is_none()
            {
                this.fences
                    .lock()
                    .unwrap()
                    .push(req.extensions().get::<FencingToken>().copied());
                this.would
                    .lock()
                    .unwrap()
                    .push(req.extensions().get::<WouldReject>().cloned());
                this.entered.notify_one();
                this.gate.notified().await;
            }
            let mut res = Response::new(Body::empty());
            *res.status_mut() = if req.method() == "PUT" {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::OK
            };
            Ok(res)
        })
    }
}
