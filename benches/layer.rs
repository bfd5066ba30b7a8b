//! The layer's own cost per request, in process, against the bare inner service: GET, an
//! unlocked PUT, a PUT on a locked path with its token, and a PUT the layer refuses with 423.
//!
//! Each request is sent with `ready().await` then `call(req).await` on a current-thread
//! runtime; requests are built outside the timed section (batches of 4096, `iter_custom`). The
//! inner service is a trivial `service_fn` returning a fixed response; `bare/*` calls it
//! without the layer and is the baseline (same run, same machine). The figure users feel is the
//! end-to-end one (`benches/http.sh`); this one locates it.
//!
//! ```text
//! cargo bench --bench layer -- --warm-up-time 1 --measurement-time 2
//! ```

#[path = "common/layer_setup.rs"]
mod layer_setup;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, StatusCode};
use layer_setup::{inner, store_with_locks, Body};
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_locks::LockLayer;

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
    for batch in batches(iters, make) {
        let start = Instant::now();
        for req in batch {
            black_box(svc.ready().await.unwrap().call(req).await.unwrap());
        }
        total += start.elapsed();
    }
    total
}

/// `iters` requests from `make`, in batches of at most 4096, each built when it is reached.
fn batches<'a>(
    iters: u64,
    make: &'a dyn Fn() -> Request<Body>,
) -> impl Iterator<Item = Vec<Request<Body>>> + 'a {
    (0..iters.div_ceil(4096)).map(move |i| {
        let n = (iters - i * 4096).min(4096);
        (0..n).map(|_| make()).collect()
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // 1000 locks on other paths, one on the path the locked cases write to.
    let (store, token) = rt.block_on(store_with_locks());

    let bare = service_fn(inner);
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
    let mut g = c.benchmark_group("layer");
    for (name, make) in &cases {
        g.bench_function(format!("bare/{name}"), |b| {
            b.to_async(&rt)
                .iter_custom(|iters| timed(bare, iters, make))
        });
        g.bench_function(format!("layer/{name}"), |b| {
            b.to_async(&rt)
                .iter_custom(|iters| timed(layered.clone(), iters, make))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
