//! The layer's own cost per request, in process, against the bare inner service.
//!
//! Every case sends one request through `ready().call()` on a current-thread runtime; the
//! request is built outside the timed section (`iter_batched`). The inner service is a
//! trivial `service_fn` returning a fixed response; `bare/*` calls it without the layer and is
//! the baseline every other case is compared with (same run, same machine). `body-map/*` is the
//! bare service with only its response body wrapped in `ResponseBody`: the floor of any
//! middleware that gives responses its own body type. For GET, two more floors
//! (`benches/common/floors.rs`): `forward/GET`, a middleware that only forwards, and
//! `either/GET`, one that forwards reads and answers writes itself (its future an enum of the
//! inner future and its own answer, as any middleware that may answer instead of the inner
//! service has; the body type unchanged).
//!
//! ```text
//! cargo bench --bench layer -- --warm-up-time 1 --measurement-time 2
//! ```

#[path = "common/floors.rs"]
mod floors;
#[path = "common/layer_setup.rs"]
mod layer_setup;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, StatusCode};
use layer_setup::{inner, store_with_locks, Body};
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_locks::{LockLayer, ResponseBody};

type MakeRequest<'a> = Box<dyn Fn() -> Request<Body> + 'a>;

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::new()).unwrap()
}

fn put(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::put(path);
    if let Some(t) = token {
        b = b.header("If", format!("(<{t}>)"));
    }
    b.body(Body::new()).unwrap()
}

/// Send `iters` requests through `svc`, timing only the calls: requests are built untimed,
/// in batches, before each timed batch.
async fn timed<S>(mut svc: S, iters: u64, make: &dyn Fn() -> Request<Body>) -> Duration
where
    S: Service<Request<Body>>,
    S::Error: std::fmt::Debug,
{
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(4096);
        left -= n;
        let batch: Vec<_> = (0..n).map(|_| make()).collect();
        let start = Instant::now();
        for req in batch {
            black_box(svc.ready().await.unwrap().call(req).await.unwrap());
        }
        total += start.elapsed();
    }
    total
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // 1000 locks on other paths, one on the path the locked cases write to.
    let (store, token) = rt.block_on(store_with_locks());

    let bare = service_fn(inner);
    // The floor of any middleware that gives responses its own body type: only the body
    // wrapped, as the layer does for everything it forwards.
    let body_map = service_fn(inner).map_response(|res| res.map(ResponseBody::passthrough));
    let layered = LockLayer::new(store.clone()).layer(service_fn(inner));

    // Sanity: the cases do what their names say.
    rt.block_on(async {
        let mut s = layered.clone();
        for (req, want) in [
            (get("/docs/a.txt"), StatusCode::OK),
            (put("/docs/free.txt", None), StatusCode::OK),
            (put("/docs/locked.txt", Some(&token)), StatusCode::OK),
            (put("/docs/locked.txt", None), StatusCode::LOCKED),
        ] {
            let res = s.ready().await.unwrap().call(req).await.unwrap();
            assert_eq!(res.status(), want);
        }
    });

    let mut g = c.benchmark_group("layer");
    let cases: [(&str, MakeRequest<'_>); 4] = [
        ("GET", Box::new(|| get("/docs/a.txt"))),
        ("PUT unlocked", Box::new(|| put("/docs/free.txt", None))),
        (
            "PUT locked+token",
            Box::new(|| put("/docs/locked.txt", Some(&token))),
        ),
        (
            "PUT refused 423",
            Box::new(|| put("/docs/locked.txt", None)),
        ),
    ];
    for (name, make) in &cases {
        g.bench_function(format!("bare/{name}"), |b| {
            b.to_async(&rt)
                .iter_custom(|iters| timed(bare, iters, make))
        });
        g.bench_function(format!("body-map/{name}"), |b| {
            b.to_async(&rt)
                .iter_custom(|iters| timed(body_map.clone(), iters, make))
        });
        if *name == "GET" {
            g.bench_function("forward/GET", |b| {
                let svc = floors::Forward {
                    inner: service_fn(inner),
                };
                b.to_async(&rt)
                    .iter_custom(|iters| timed(svc.clone(), iters, make))
            });
            g.bench_function("either/GET", |b| {
                let svc = floors::Either {
                    inner: service_fn(inner),
                };
                b.to_async(&rt)
                    .iter_custom(|iters| timed(svc.clone(), iters, make))
            });
        }
        g.bench_function(format!("layer/{name}"), |b| {
            b.to_async(&rt)
                .iter_custom(|iters| timed(layered.clone(), iters, make))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
