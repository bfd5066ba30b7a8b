//! What a DELETE of a collection holding many of the requester's own locks costs through
//! `LockLayer` (owners write without their tokens): the check reads every lock below, the
//! service removes the collection, and the layer removes each lock the check found, by token,
//! up to 32 at a time. Prints the median time per DELETE for 10, 100 and 1 000 locks below, on
//! the memory store and, when `REDIS_URL` is set, on Redis (where each removal is a round
//! trip, overlapping with the others in flight).
//!
//! ```text
//! cargo run --release --example removal_cost
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --release --features redis --example removal_cost
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use tower::{service_fn, Layer, ServiceExt};
use tower_locks::{LockLayer, LockQuery, LockStore, MemoryLockStore, NewLock, ResourcePath};

const ROUNDS: usize = 9;

fn path(s: &str) -> ResourcePath {
    ResourcePath::parse(s).unwrap()
}

/// The median time of a DELETE of `/big` holding `locks` of alice's locks, over `ROUNDS`.
async fn measure<S: LockStore + 'static>(name: &str, store: Arc<S>) {
    let removed = service_fn(|_: Request<String>| async {
        let mut res = Response::new(String::new());
        *res.status_mut() = StatusCode::NO_CONTENT;
        Ok::<_, Infallible>(res)
    });
    let svc = LockLayer::new(Arc::clone(&store))
        .owner_writes(true)
        .principal_from(|_| Some("alice".into()))
        .layer(removed);
    for locks in [10, 100, 1000] {
        let mut times: Vec<Duration> = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            for i in 0..locks {
                let lock = NewLock::new(path(&format!("/big/m{i:04}")))
                    .principal("alice")
                    .principal_quota(10_000);
                store.create(lock).await.unwrap();
            }
            let delete = Request::delete("/big").body(String::new()).unwrap();
            let start = Instant::now();
            let res = svc.clone().oneshot(delete).await.unwrap();
            times.push(start.elapsed());
            assert_eq!(res.status(), StatusCode::NO_CONTENT);
            let left = store
                .query(&LockQuery::new().subtree(path("/big")))
                .await
                .unwrap();
            assert!(left.is_empty(), "{} locks left", left.len());
        }
        times.sort();
        println!(
            "{name:<6} DELETE over {locks:>5} own locks: {:>9.0} µs",
            times[ROUNDS / 2].as_secs_f64() * 1e6
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    measure("memory", Arc::new(MemoryLockStore::new())).await;
    #[cfg(feature = "redis")]
    if let Ok(url) = std::env::var("REDIS_URL") {
        let prefix = format!("tower-locks-removal-{}", std::process::id());
        let client = redis::Client::open(url.as_str()).unwrap();
        let manager = client.get_connection_manager().await.unwrap();
        let store = tower_locks::RedisLockStore::from_manager(manager, &prefix).unwrap();
        measure("redis", Arc::new(store)).await;
    }
}
