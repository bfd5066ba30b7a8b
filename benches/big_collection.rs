//! What a request over a collection with many locked members costs, through `LockLayer` on
//! `MemoryLockStore`: a DELETE of the collection without tokens (refused, 423), a
//! depth-infinity exclusive LOCK of it (refused: every member conflicts), and a shared one
//! (refused: one exclusive lock among shared ones), with N = 1 000 and N = 100 000 members,
//! each with a lock. Figures that grow with N are what one request can make the server do.
//!
//! ```text
//! cargo bench --bench big_collection -- --warm-up-time 1 --measurement-time 3
//! ```

#[path = "common/layer_setup.rs"]
mod layer_setup;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::{Request, StatusCode};
use http_body_util::Full;
use layer_setup::{inner_full, LOCKINFO_EXCLUSIVE, LOCKINFO_SHARED};
use tower::{service_fn, Layer, ServiceExt};
use tower_locks::{LockLayer, LockScope, LockStore, MemoryLockStore, NewLock, ResourcePath};

/// `n` members of `/big/`, each with a lock: exclusive ones, or shared ones and one exclusive
/// lock last in path order.
async fn members(n: usize, scope: LockScope) -> Arc<MemoryLockStore> {
    let store = Arc::new(MemoryLockStore::new());
    for i in 0..n {
        let path = ResourcePath::parse(&format!("/big/d{}/f{i:06}", i % 100)).unwrap();
        store.create(NewLock::new(path).scope(scope)).await.unwrap();
    }
    let last = ResourcePath::parse("/big/z").unwrap();
    store.create(NewLock::new(last)).await.unwrap();
    store
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("big_collection");
    g.sample_size(20);
    for n in [1_000usize, 100_000] {
        let cases = [
            (
                "DELETE",
                LockScope::Exclusive,
                "DELETE",
                "",
                StatusCode::LOCKED,
            ),
            (
                "LOCK exclusive",
                LockScope::Exclusive,
                "LOCK",
                LOCKINFO_EXCLUSIVE,
                StatusCode::MULTI_STATUS,
            ),
            (
                "LOCK shared",
                LockScope::Shared,
                "LOCK",
                LOCKINFO_SHARED,
                StatusCode::MULTI_STATUS,
            ),
        ];
        for (name, scope, method, body, want) in cases {
            let store = rt.block_on(members(n, scope));
            let mut limits = tower_locks::Limits::default();
            limits.max_anonymous_locks = None;
            limits.max_locks = None;
            let svc = LockLayer::new(store)
                .limits(limits)
                .layer(service_fn(inner_full));
            let req = || {
                Request::builder()
                    .method(method)
                    .uri("/big/")
                    .header("Depth", "infinity")
                    .body(Full::from(body))
                    .unwrap()
            };
            let status = rt.block_on(svc.clone().oneshot(req())).unwrap().status();
            assert_eq!(status, want, "{name} over {n}");
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.to_async(&rt)
                    .iter(|| async { black_box(svc.clone().oneshot(req()).await.unwrap()) })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
