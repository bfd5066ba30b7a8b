//! `MemoryLockStore` costs: the check the layer issues (`query`) at N = 0, 1e3, 1e5, 1e6 held
//! locks and path depths 2, 5, 10, 20; LOCK + UNLOCK pairs, single task and 2 tasks
//! contending; and, with `REDIS_URL` and `--features redis`, `RedisLockStore`'s check next to a
//! bare `PING` on the same kind of connection.
//!
//! The layout of the locks is in `benches/common/fixture.rs`; `benches/peer` runs the same
//! cases against dav-server's `MemLs`. Each store is built once and grown from one N to the
//! next, so the 1e6 setup is paid once.
//!
//! ```text
//! cargo bench --bench store -- --warm-up-time 1 --measurement-time 2
//! REDIS_URL=redis://127.0.0.1:6391/ cargo bench --features redis --bench store -- redis
//! ```

#[path = "common/contended.rs"]
mod contended;
#[path = "common/fixture.rs"]
mod fixture;
#[path = "common/store_setup.rs"]
mod store_setup;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use store_setup::{case_query, create, fixture_at, p, pair, CASES};
use tower_locks::{LockStore, MemoryLockStore, NewLock};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The fixture locks of every depth class.
async fn fixture(store: &MemoryLockStore) {
    for d in fixture::DEPTHS {
        fixture_at(store, d).await;
    }
}

fn checks(c: &mut Criterion) {
    let rt = rt();
    let store = MemoryLockStore::new();
    rt.block_on(fixture(&store));
    let mut held = 0;
    let mut g = c.benchmark_group("check");
    for n in fixture::NS {
        rt.block_on(async {
            for (d, i) in fixture::grow(held, n) {
                create(&store, NewLock::new(p(&fixture::background(d, i)))).await;
            }
        });
        held = n;
        for d in fixture::DEPTHS {
            let cases = CASES.map(|case| {
                let (query, found) = case_query(case, d);
                (case, query, found)
            });
            for (case, query, found) in &cases {
                let got = rt.block_on(store.query(query)).unwrap();
                assert_eq!(got.len(), *found, "{case} d={d} n={n}");
                let id = BenchmarkId::new(*case, format!("n={}/d={d}", fixture::label(n)));
                g.bench_function(id, |b| {
                    b.to_async(&rt)
                        .iter(|| async { black_box(store.query(query).await) })
                });
            }
        }
    }
    g.finish();
}

fn lock_unlock(c: &mut Criterion) {
    let rt = rt();
    let store = MemoryLockStore::new();
    rt.block_on(async {
        fixture(&store).await;
        for (d, i) in fixture::grow(0, 1_000) {
            create(&store, NewLock::new(p(&fixture::background(d, i)))).await;
        }
    });
    let mut g = c.benchmark_group("lock+unlock");
    let path = p("/bench/dir/doc");
    g.bench_function("1 task", |b| b.to_async(&rt).iter(|| pair(&store, &path)));
    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let store = Arc::new(store);
    g.bench_function("2 tasks contending (time per pair)", |b| {
        b.iter_custom(|iters| {
            contended::two_tasks(&mt, iters, |t, n| {
                let store = store.clone();
                async move {
                    let path = p(&format!("/bench/t{t}/doc"));
                    for _ in 0..n {
                        pair(&store, &path).await;
                    }
                }
            })
        })
    });
    g.finish();
}

#[cfg(feature = "redis")]
fn redis(c: &mut Criterion) {
    use tower_locks::{CreateOutcome, LockQuery};

    let Ok(url) = std::env::var("REDIS_URL") else {
        println!("redis: REDIS_URL is not set; skipping the RedisLockStore benches");
        return;
    };
    let rt = rt();
    let prefix = format!("tower-locks-bench-{}:", std::process::id());
    let (store, ping) = rt.block_on(async {
        let client = redis::Client::open(url.as_str()).unwrap();
        let store_conn = client.get_connection_manager().await.unwrap();
        let ping_conn = client.get_connection_manager().await.unwrap();
        let store = tower_locks::RedisLockStore::from_manager(store_conn, &prefix).unwrap();
        (store, ping_conn)
    });
    let doc = p("/bench/redis/doc");
    let free = p("/bench/redis/free");
    let token = rt.block_on(async {
        for k in 0..100 {
            store
                .create(NewLock::new(p(&format!("/bench/redis/m{k}"))))
                .await
                .unwrap();
        }
        match store.create(NewLock::new(doc.clone())).await.unwrap() {
            CreateOutcome::Created(l) => l.token,
            other => panic!("{other:?}"),
        }
    });
    let mut g = c.benchmark_group("redis");
    g.bench_function("PING (baseline: one round trip)", |b| {
        b.to_async(&rt).iter(|| {
            // A `ConnectionManager` clone is a handle on the same multiplexed connection.
            let mut conn = ping.clone();
            async move {
                let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
                black_box(pong)
            }
        })
    });
    // The floor of any store call: one `EVALSHA` of a script that reads nothing, with the
    // store's key and argument shape, on the same kind of connection.
    let floor = redis::Script::new("return {}");
    g.bench_function("EVALSHA empty script (floor)", |b| {
        b.to_async(&rt).iter(|| {
            let mut conn = ping.clone();
            let mut inv = floor.prepare_invoke();
            inv.key("{k}:a").key("{k}:b").key("{k}:c");
            inv.arg("{k}:").arg(1).arg("/bench/redis/free").arg(0);
            async move {
                let out: Vec<Vec<u8>> = inv.invoke_async(&mut conn).await.unwrap();
                black_box(out)
            }
        })
    });
    for (name, q) in [
        ("check unlocked", LockQuery::new().covering(free.clone())),
        ("check locked", LockQuery::new().covering(doc.clone())),
        ("check subtree", LockQuery::new().subtree(p("/bench/redis"))),
    ] {
        g.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(store.query(&q).await.unwrap()) })
        });
    }
    g.finish();
    rt.block_on(async {
        store.remove_subtree(&p("/bench")).await.unwrap();
    });
    let _ = token;
}

#[cfg(not(feature = "redis"))]
fn redis(_: &mut Criterion) {
    println!("redis: built without `--features redis`; skipping the RedisLockStore benches");
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = checks, lock_unlock, redis
}
criterion_main!(benches);
