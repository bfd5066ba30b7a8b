//! What slow writes cost everybody else: an unlocked PUT, and a LOCK followed by its UNLOCK,
//! through `LockLayer`, while `N` other writes are in flight (0, 1 000, 10 000), and the LOCK
//! and UNLOCK again once those writes have ended. An in-flight write is what a slow upload
//! is: checked, forwarded, and holding its paths until the inner service answers (see
//! `src/holds.rs`). Here each one is a PUT on its own path whose response future is kept, not
//! polled, until it is dropped.
//!
//! ```text
//! cargo bench --bench in_flight -- --warm-up-time 1 --measurement-time 2
//! ```

#[path = "common/layer_setup.rs"]
mod layer_setup;

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::Response;
use http::{Request, StatusCode};
use http_body_util::Full;
use layer_setup::{inner_full, LOCKINFO_EXCLUSIVE};
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_locks::LockLayer;
use tower_locks::MemoryLockStore;

type Body = Full<Bytes>;

fn put(path: &str) -> Request<Body> {
    Request::put(path).body(Body::default()).unwrap()
}

/// A LOCK of a new resource, then its UNLOCK.
async fn lock_unlock<S>(mut s: S)
where
    S: Service<Request<Body>, Response = Response<tower_locks::ResponseBody<&'static str>>>,
    S::Error: std::fmt::Debug,
{
    let lock = Request::builder()
        .method("LOCK")
        .uri("/docs/new.txt")
        .header("Timeout", "Second-60")
        .body(Body::from(LOCKINFO_EXCLUSIVE))
        .unwrap();
    let res = s.ready().await.unwrap().call(lock).await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let token = res.headers()["Lock-Token"].clone();
    let unlock = Request::builder()
        .method("UNLOCK")
        .uri("/docs/new.txt")
        .header("Lock-Token", token)
        .body(Body::default())
        .unwrap();
    let res = s.ready().await.unwrap().call(unlock).await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("in_flight");
    for n in [0usize, 1_000, 10_000] {
        let svc = LockLayer::new(MemoryLockStore::new()).layer(service_fn(inner_full));
        // `call` registers the hold; the future that would release it is kept, not polled.
        let mut slow = svc.clone();
        let in_flight: Vec<_> = (0..n)
            .map(|i| slow.call(put(&format!("/uploads/u{i}"))))
            .collect();
        g.bench_with_input(BenchmarkId::new("PUT unlocked", n), &n, |b, _| {
            b.to_async(&rt).iter(|| {
                let mut s = svc.clone();
                async move {
                    black_box(
                        s.ready()
                            .await
                            .unwrap()
                            .call(put("/docs/free.txt"))
                            .await
                            .unwrap(),
                    )
                }
            })
        });
        g.bench_with_input(BenchmarkId::new("LOCK+UNLOCK", n), &n, |b, _| {
            b.to_async(&rt).iter(|| lock_unlock(svc.clone()))
        });
        drop(in_flight);
        if n > 0 {
            // The burst has ended: a LOCK looks at the writes in flight now, none.
            g.bench_with_input(
                BenchmarkId::new("LOCK+UNLOCK, burst ended", n),
                &n,
                |b, _| b.to_async(&rt).iter(|| lock_unlock(svc.clone())),
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
