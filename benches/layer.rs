//! The layer's own cost per request, in process, against the bare inner service.
//!
//! Two ways of driving a service, each its own group, since what a middleware costs depends
//! on how its caller holds the response future:
//!
//! - `layer/*`: `ready().await` then `call(req).await` inside an async fn on a current-thread
//!   runtime (the future lives in the caller's state machine, as with `oneshot().await`);
//! - `slot/*`: the response future put in one reused `Pin<Box<Option<_>>>` and polled in
//!   place, as hyper's HTTP/1 server keeps its in-flight future.
//!
//! Requests are built outside the timed section (batches of 4096, `iter_custom`). The inner
//! service is a trivial `service_fn` returning a fixed response; `bare/*` calls it without the
//! layer and is the baseline every other case is compared with (same run, same machine).
//! `body-map/*` is the bare service with tower's `map_response` wrapping the body in
//! `ResponseBody`. For GET, floors that only forward (`benches/common/floors.rs`), each one
//! step closer to the layer's shape: `forward/GET`, `either/GET` (may answer by itself),
//! `either-body/GET` (and has its own body type) and `shape/GET` (and the layer's two other
//! kinds of future: a write carrying a guard, a boxed flow).
//!
//! ```text
//! cargo bench --bench layer -- --warm-up-time 1 --measurement-time 2
//! ```

#[path = "common/floors.rs"]
mod floors;
#[path = "common/layer_setup.rs"]
mod layer_setup;

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
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

/// Like [`timed`], but the way hyper's HTTP/1 server drives a service: each response future
/// goes into one reused pinned slot and is polled there (every case here answers without
/// waiting, so a no-op waker serves).
fn polled<S>(mut svc: S, iters: u64, make: &dyn Fn() -> Request<Body>) -> Duration
where
    S: Service<Request<Body>>,
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    let mut slot: Pin<Box<Option<S::Future>>> = Box::pin(None);
    let mut total = Duration::ZERO;
    for batch in batches(iters, make) {
        let start = Instant::now();
        for req in batch {
            assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
            slot.set(Some(svc.call(req)));
            let future = slot.as_mut().as_pin_mut().expect("just set");
            let Poll::Ready(res) = future.poll(&mut cx) else {
                panic!("every in-process case answers at its first poll");
            };
            black_box(res.unwrap());
            slot.set(None);
        }
        total += start.elapsed();
    }
    total
}

/// How a bench drives the service under test: [`timed`] or [`polled`].
#[derive(Clone, Copy)]
enum Driver {
    Awaited,
    Slot,
}

impl Driver {
    fn group(self) -> &'static str {
        match self {
            Driver::Awaited => "layer",
            Driver::Slot => "slot",
        }
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // 1000 locks on other paths, one on the path the locked cases write to.
    let (store, token) = rt.block_on(store_with_locks());

    let bare = service_fn(inner);
    // Only the body wrapped, with tower's `map_response` (whose future, futures-util's `Map`,
    // moves the inner future out when it completes: dearer than the floors below).
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
    for driver in [Driver::Awaited, Driver::Slot] {
        let mut g = c.benchmark_group(driver.group());
        for (name, make) in &cases {
            // One bench of `svc` under `id`, driven by `driver`.
            macro_rules! case {
                ($id:expr, $svc:expr) => {
                    g.bench_function($id, |b| match driver {
                        Driver::Awaited => b
                            .to_async(&rt)
                            .iter_custom(|iters| timed($svc, iters, make)),
                        Driver::Slot => b.iter_custom(|iters| polled($svc, iters, make)),
                    });
                };
            }
            case!(format!("bare/{name}"), bare);
            case!(format!("body-map/{name}"), body_map.clone());
            if *name == "GET" {
                let inner = service_fn(inner);
                case!("forward/GET", floors::Forward { inner });
                case!("either/GET", floors::Either { inner });
                case!("either-body/GET", floors::EitherBody { inner });
                case!("shape/GET", floors::Shape { inner });
            }
            case!(format!("layer/{name}"), layered.clone());
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
