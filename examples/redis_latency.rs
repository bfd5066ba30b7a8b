//! Interleaved latency of `RedisLockStore` checks next to a bare `PING` and an empty
//! `EVALSHA` on the same kind of connection (`ConnectionManager`): rounds of 200 calls of each
//! case in turn, so load on a shared machine hits every case alike. Prints the median and the
//! best round per case, and the median of each round's ratio to that round's `PING`.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379/ ROUNDS=100 cargo run --release --features redis --example redis_latency
//! ```
use std::time::Instant;
use tower_locks::{CreateOutcome, LockQuery, LockStore, NewLock, RedisLockStore, ResourcePath};

fn p(s: &str) -> ResourcePath {
    ResourcePath::parse(s).unwrap()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::var("REDIS_URL").unwrap();
    let prefix = format!("tower-locks-latency-{}", std::process::id());
    let client = redis::Client::open(url.as_str()).unwrap();
    let store =
        RedisLockStore::from_manager(client.get_connection_manager().await.unwrap(), &prefix)
            .unwrap();
    let ping = client.get_connection_manager().await.unwrap();
    for k in 0..100 {
        store
            .create(NewLock::new(p(&format!("/bench/redis/m{k}"))))
            .await
            .unwrap();
    }
    let doc = p("/bench/redis/doc");
    match store.create(NewLock::new(doc.clone())).await.unwrap() {
        CreateOutcome::Created(_) => {}
        other => panic!("{other:?}"),
    }
    let floor = redis::Script::new("return {}");
    let qs = [
        LockQuery::new().covering(p("/bench/redis/free")),
        LockQuery::new().covering(doc.clone()),
        LockQuery::new().subtree(p("/bench/redis")),
    ];
    let names = [
        "PING",
        "EVALSHA empty",
        "check unlocked",
        "check locked",
        "check subtree",
    ];
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(40);
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..rounds {
        for (c, per_c) in per.iter_mut().enumerate() {
            let n = if c == 4 { 20 } else { 200 };
            let start = Instant::now();
            for _ in 0..n {
                match c {
                    0 => {
                        let mut conn = ping.clone();
                        let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
                    }
                    1 => {
                        let mut conn = ping.clone();
                        let mut inv = floor.prepare_invoke();
                        inv.key("{k}:a").key("{k}:b").key("{k}:c");
                        inv.arg("{k}:").arg(1).arg("/bench/redis/free").arg(0);
                        let _: Vec<Vec<u8>> = inv.invoke_async(&mut conn).await.unwrap();
                    }
                    _ => {
                        let out = store.query(&qs[c - 2]).await.unwrap();
                        std::hint::black_box(out);
                    }
                }
            }
            per_c.push(start.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
    }
    let med = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (v[v.len() / 2], v[0])
    };
    let (ping_med, ping_min) = med(&per[0]);
    for (c, name) in names.iter().enumerate() {
        let (m, mn) = med(&per[c]);
        // per-round ratio to that round's PING
        let mut ratios: Vec<f64> = per[c].iter().zip(&per[0]).map(|(a, b)| a / b).collect();
        ratios.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{name:16} median {m:8.1} µs ({:.2}x)  min {mn:8.1} µs ({:.2}x)  median per-round ratio {:.2}x",
            m / ping_med,
            mn / ping_min,
            ratios[ratios.len() / 2]
        );
    }
    store.remove_subtree(&p("/bench")).await.unwrap();
}
