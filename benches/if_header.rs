//! What an `If` header naming many resources costs a write through `LockLayer`: one tagged
//! list, against 50 tagged lists on 50 resources 41 segments deep (6.6 KB, under the default
//! 8 KiB limit), all with the same lock token. On `MemoryLockStore`, and on `RedisLockStore`
//! when `REDIS_URL` is set (a covering check is then one round trip to that server).
//!
//! ```text
//! cargo bench --bench if_header -- --warm-up-time 1 --measurement-time 2
//! REDIS_URL=redis://127.0.0.1:6379/ cargo bench --features redis --bench if_header -- --warm-up-time 1 --measurement-time 2
//! ```

#[path = "common/layer_setup.rs"]
mod layer_setup;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, StatusCode};
use http_body_util::Empty;
use layer_setup::inner;
use tower::{service_fn, Layer, ServiceExt};
use tower_locks::{CreateOutcome, LockLayer, LockStore, MemoryLockStore, NewLock, ResourcePath};

/// A lock on `/docs/a` in `store`, and the two `If` headers that submit its token.
async fn headers(store: &impl LockStore) -> [(&'static str, String); 2] {
    let lock = match store
        .create(NewLock::new(ResourcePath::parse("/docs/a").unwrap()))
        .await
        .unwrap()
    {
        CreateOutcome::Created(lock) => lock,
        other => panic!("{other:?}"),
    };
    let one = format!("</docs/a> (<{}>)", lock.token);
    let deep = "/a".repeat(40);
    let many = (0..50)
        .map(|i| format!("</r{i}{deep}> (<{}>)", lock.token))
        .chain([one.clone()])
        .collect();
    [("one tagged list", one), ("51 tagged lists", many)]
}

fn bench_store<S: LockStore + Clone>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: S,
) {
    let cases = rt.block_on(headers(&store));
    let svc = LockLayer::new(store).layer(service_fn(inner));
    let put = |h: &str| {
        Request::put("/docs/a")
            .header("If", h)
            .body(Empty::new())
            .unwrap()
    };
    let mut g = c.benchmark_group("if_header");
    for (case, h) in &cases {
        let status = rt.block_on(svc.clone().oneshot(put(h))).unwrap().status();
        assert_eq!(status, StatusCode::OK, "{case}");
        g.bench_function(format!("{name}/{case}"), |b| {
            b.to_async(rt)
                .iter(|| async { black_box(svc.clone().oneshot(put(h)).await.unwrap()) })
        });
    }
    g.finish();
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    bench_store(
        c,
        &rt,
        "memory",
        std::sync::Arc::new(MemoryLockStore::new()),
    );
    #[cfg(feature = "redis")]
    if let Ok(url) = std::env::var("REDIS_URL") {
        let store = rt.block_on(async {
            tower_locks::RedisLockStore::builder(&url)
                .prefix(format!("tower-locks-bench-if-{}", std::process::id()))
                .connect()
                .await
                .unwrap()
        });
        bench_store(c, &rt, "redis", store);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
