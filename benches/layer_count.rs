//! A driver for instruction counts of the layer's own work per request, in process: sends `N`
//! requests of one case through `LockLayer` over the trivial inner service of
//! `benches/common/layer_setup.rs` (or through that service alone, `bare`), with 1 000 locks
//! held on other paths. `axum-layer` and `axum-bare` send them through an axum `Router` with
//! the layer mounted by `Router::layer`, and without it (the app of `benches/http.sh`, without
//! the network). Run under `valgrind --tool=callgrind` by
//! `benches/instructions.sh layer`, which subtracts a run with zero requests, divides by `N`
//! and prints the layer's count beside the bare service's. Instructions are not nanoseconds,
//! but they are the same on every run, so a change to the flow shows at once on a noisy
//! machine; `benches/layer.rs` and `benches/http.sh` give the times.
//!
//! ```text
//! cargo bench --bench layer_count --no-run
//! target/release/deps/layer_count-* <layer|bare|axum-layer|axum-bare> <get|put|put-token|refused> <N>
//! ```

#[path = "common/layer_setup.rs"]
mod layer_setup;

use std::hint::black_box;

use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use layer_setup::{inner, store_with_locks, Body};
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_locks::LockLayer;

fn request(case: &str, token: &str) -> Request<Body> {
    let b = match case {
        "get" => Request::get("/docs/a.txt"),
        "put" => Request::put("/docs/free.txt"),
        "put-token" => Request::put("/docs/locked.txt").header("If", format!("(<{token}>)")),
        "refused" => Request::put("/docs/locked.txt"),
        other => panic!("unknown case {other}"),
    };
    b.body(Body::new()).unwrap()
}

/// The app of `benches/http_server.rs`.
fn routes() -> Router {
    Router::new().route(
        "/docs/{name}",
        get(|| async { "hello" }).put(|| async { StatusCode::NO_CONTENT }),
    )
}

/// The router as `axum::serve` serves it: its routes built once (`with_state`), not for every
/// request.
fn served(router: Router) -> Router {
    router.with_state(())
}

async fn drive<S>(mut svc: S, n: u64, make: impl Fn() -> Request<Body>)
where
    S: Service<Request<Body>>,
    S::Error: std::fmt::Debug,
{
    for _ in 0..n {
        let req = make();
        black_box(svc.ready().await.unwrap().call(req).await.unwrap());
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let config = args.next().expect("layer or bare");
    let case = args.next().expect("case");
    let n: u64 = args.next().and_then(|n| n.parse().ok()).expect("N");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (store, token) = store_with_locks().await;
        let make = || request(&case, &token);
        match config.as_str() {
            "layer" => drive(LockLayer::new(store).layer(service_fn(inner)), n, make).await,
            "bare" => drive(service_fn(inner), n, make).await,
            "axum-layer" => drive(served(routes().layer(LockLayer::new(store))), n, make).await,
            "axum-bare" => drive(served(routes()), n, make).await,
            // A tower-http layer that wraps the response body as this one does, for scale.
            "axum-limit" => {
                let limit = tower_http::limit::RequestBodyLimitLayer::new(1 << 20);
                drive(served(routes().layer(limit)), n, make).await
            }
            other => panic!("unknown config {other}"),
        }
    });
}
