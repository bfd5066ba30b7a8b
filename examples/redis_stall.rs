//! Can one client stall the shared Redis? Many shared locks with large owners on one path,
//! while another client (its own thread and connection) sends `PING` in a loop.
//!
//! 0. The baseline: `PING` with nothing else going on, for `SECS` seconds (default 3), as
//!    the machine's own noise.
//! 1. `LOCKS` shared locks (default 1500) with `OWNER` bytes of owner XML (default 4096) on one
//!    path, each with principal `ann` when `PRINCIPAL=1` (and then principal, resource and store
//!    quotas, so every quota is counted): the Redis time of each `LOCK` (`INFO commandstats`, `evalsha`) at
//!    lock #1, #10, #100, … and the last; then one exclusive `LOCK` on the path, which
//!    conflicts with (and reports) all of them.
//! 2. A refresh loop over those locks for `SECS` seconds (default 3): the Redis time of a
//!    refresh, and the other client's `PING` (median, p99, max) meanwhile.
//! 3. An expiry sweep: `EXPIRE` more shared locks (default 700) with `EXPIRE_SECS` timeouts
//!    (default 1) and the same owners on another path; once they have expired, unrelated mutations (each sweeps a bounded
//!    batch) until every one of them is gone: the other client's `PING` meanwhile, and the
//!    longest single call.
//! 4. A collection with `MEMBERS` locked members (default 20 000, one exclusive lock each):
//!    the Redis time of what a refused `DELETE` of it asks (a query of the locks below until
//!    16 blocked members are known), of `check` of the subtree with nothing submitted, of a
//!    page of the lock API's list (101 resources), and of a query of every lock below; then a loop of refused removals for `SECS` seconds, and the
//!    other client's `PING` meanwhile.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --release --features redis --example redis_stall
//! ```
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tower_locks::{
    CreateOutcome, Lock, LockQuery, LockScope, LockStore, LockTimeout, NewLock, RedisLockStore,
    ResourcePath, Submission, TokenAccess,
};

fn p(s: &str) -> ResourcePath {
    ResourcePath::parse(s).unwrap()
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Total `EVALSHA` + `EVAL` calls and microseconds so far, by Redis's own accounting.
async fn script_usec(conn: &mut redis::aio::MultiplexedConnection) -> (u64, u64) {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    let (mut calls, mut usec) = (0, 0);
    for line in info.lines() {
        if let Some(rest) = line
            .strip_prefix("cmdstat_evalsha:")
            .or_else(|| line.strip_prefix("cmdstat_eval:"))
        {
            for kv in rest.split(',') {
                match kv.split_once('=') {
                    Some(("calls", v)) => calls += v.parse::<u64>().unwrap(),
                    Some(("usec", v)) => usec += v.parse::<u64>().unwrap(),
                    _ => {}
                }
            }
        }
    }
    (calls, usec)
}

/// The Redis time (µs) of the script calls `f` makes.
async fn redis_usec<T>(
    info: &mut redis::aio::MultiplexedConnection,
    f: impl std::future::Future<Output = T>,
) -> (T, u64) {
    let (_, before) = script_usec(info).await;
    let out = f.await;
    let (_, after) = script_usec(info).await;
    (out, after - before)
}

/// `PING` latencies (µs) from a thread of their own, on a connection of their own.
struct Pinger {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<u64>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pinger {
    fn start(url: &str) -> Self {
        let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let thread = std::thread::spawn({
            let (stop, samples) = (stop.clone(), samples.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let _: String = redis::cmd("PING").query(&mut conn).unwrap();
                    let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
                    samples.lock().unwrap().push(us);
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        Self {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// Forget the samples so far.
    fn reset(&self) {
        self.samples.lock().unwrap().clear();
    }

    /// "median / p99 / max (n)" of the samples since the last reset, in ms.
    fn summary(&self) -> String {
        let mut v = self.samples.lock().unwrap().clone();
        if v.is_empty() {
            return "no samples".to_owned();
        }
        v.sort_unstable();
        let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
        format!(
            "PING median {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
            at(0.5),
            at(0.99),
            at(1.0),
            v.len()
        )
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn shared_lock(path: &ResourcePath, owner: &str, principal: bool) -> NewLock {
    let mut req = NewLock::new(path.clone())
        .scope(LockScope::Shared)
        .owner(owner);
    if principal {
        // every quota the store knows, so each is counted on every LOCK
        req = req
            .principal("ann")
            .principal_quota(1_000_000)
            .resource_quota(1_000_000)
            .store_quota(1_000_000);
    }
    req
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::var("REDIS_URL").expect("set REDIS_URL");
    let locks = env("LOCKS", 1500);
    let owner = "x".repeat(usize::try_from(env("OWNER", 4096)).unwrap());
    let principal = env("PRINCIPAL", 0) == 1;
    let secs = env("SECS", 3);
    let expire = env("EXPIRE", 700);
    let expire_secs = u32::try_from(env("EXPIRE_SECS", 1)).unwrap();
    let members = env("MEMBERS", 20_000);
    let prefix = format!("tower-locks-stall-{}", std::process::id());
    let store = RedisLockStore::builder(&url)
        .prefix(&prefix)
        .operation_timeout(Duration::from_secs(30))
        .response_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut info = client.get_multiplexed_async_connection().await.unwrap();
    let pinger = Pinger::start(&url);
    println!(
        "{locks} shared locks, {} B owners, principal: {principal}",
        owner.len()
    );

    // 0. the baseline: this machine's PING latency with nothing else going on
    tokio::time::sleep(Duration::from_secs(secs)).await;
    println!("idle: {}", pinger.summary());
    pinger.reset();

    // 1. locks piling up on one path
    let doc = p("/stall/doc");
    let mut held: Vec<Lock> = Vec::new();
    let mut first = 0;
    let mut worst = 0;
    for i in 1..=locks {
        let (out, us) = redis_usec(
            &mut info,
            store.create(shared_lock(&doc, &owner, principal)),
        )
        .await;
        match out.unwrap() {
            CreateOutcome::Created(lock) => held.push(lock),
            other => panic!("{other:?}"),
        }
        if i == 1 {
            first = us;
        }
        worst = worst.max(us);
        if i == locks || [1, 10, 100, 250, 500, 1000].contains(&i) {
            println!("LOCK #{i:5}: {us:7} µs of Redis time");
        }
    }
    println!(
        "LOCK: first {first} µs, slowest {worst} µs of Redis time; {}",
        pinger.summary()
    );

    // an exclusive request conflicts with every one of them, and reports each
    let (out, us) = redis_usec(&mut info, store.create(NewLock::new(doc.clone()))).await;
    match out.unwrap() {
        CreateOutcome::Conflict(locks) => println!(
            "exclusive LOCK on the same path: {} conflicts reported, {us} µs of Redis time",
            locks.len()
        ),
        other => panic!("{other:?}"),
    }

    // 2. a refresh loop
    pinger.reset();
    let until = Instant::now() + Duration::from_secs(secs);
    let (mut n, mut worst, mut total) = (0u64, 0u64, 0u64);
    let mut last = 0;
    while Instant::now() < until {
        let lock = &held[usize::try_from(n).unwrap() % held.len()];
        let who = lock.principal.as_deref();
        let access = TokenAccess::new(&lock.token, &lock.root, who);
        let (out, us) =
            redis_usec(&mut info, store.refresh(access, LockTimeout::Seconds(600))).await;
        out.unwrap();
        n += 1;
        total += us;
        worst = worst.max(us);
        last = us;
    }
    println!(
        "refresh: {n} calls, mean {} µs, slowest {worst} µs, last {last} µs of Redis time; {}",
        total / n.max(1),
        pinger.summary()
    );

    // 3. an expiry sweep
    let gone = p("/stall/expiring");
    let created = Instant::now();
    for _ in 0..expire {
        let req = shared_lock(&gone, &owner, false).timeout(LockTimeout::Seconds(expire_secs));
        store.create(req).await.unwrap();
    }
    let expired =
        created + Duration::from_secs(u64::from(expire_secs)) + Duration::from_millis(500);
    tokio::time::sleep_until(expired.into()).await;
    pinger.reset();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let started = Instant::now();
    let mut calls = 0;
    let mut worst = Duration::ZERO;
    loop {
        // the expired locks' index entries, in whichever index the store keeps them
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let mut pending = 0u64;
        for key in ["exp", "locks"] {
            let n: u64 = redis::cmd("ZCOUNT")
                .arg(format!("{{{prefix}}}:{key}"))
                .arg("-inf")
                .arg(now.to_string())
                .query_async(&mut conn)
                .await
                .unwrap();
            pending += n;
        }
        if pending == 0 || calls > 10_000 {
            break;
        }
        let t = Instant::now();
        store.remove_subtree(&p("/stall/unrelated")).await.unwrap();
        worst = worst.max(t.elapsed());
        calls += 1;
    }
    println!(
        "sweep of {expire} expired locks: {calls} calls in {:?}, slowest call {worst:?}; {}",
        started.elapsed(),
        pinger.summary()
    );

    // 4. a refused removal of a collection with many locked members
    for i in 0..members {
        let member = NewLock::new(p(&format!("/stall/big/d{}/m{i:07}", i % 100)));
        store.create(member).await.unwrap();
    }
    let all = LockQuery::new().subtree(p("/stall/big"));
    let removal = all.clone().until_blocked(None);
    let (out, us) = redis_usec(&mut info, store.query(&removal)).await;
    println!(
        "{members} locked members: a DELETE's query {us} µs of Redis time ({} locks reported)",
        out.unwrap().len()
    );
    let (out, us) = redis_usec(&mut info, store.check(&all, Submission::default())).await;
    println!(
        "  check of the subtree: {us} µs ({} unsatisfied reported)",
        out.unwrap().unsatisfied.len()
    );
    let page = all.clone().page(None, 101, None);
    let (out, us) = redis_usec(&mut info, store.query(&page)).await;
    println!(
        "  a page of the lock API's list: {us} µs ({} locks)",
        out.unwrap().len()
    );
    let (out, us) = redis_usec(&mut info, store.query(&all)).await;
    println!("  every lock below: {us} µs ({} locks)", out.unwrap().len());
    pinger.reset();
    let until = Instant::now() + Duration::from_secs(secs);
    let (mut n, mut total) = (0u64, 0u64);
    while Instant::now() < until {
        let (out, us) = redis_usec(&mut info, store.query(&removal)).await;
        out.unwrap();
        n += 1;
        total += us;
    }
    println!(
        "  refused removals: {n} calls, mean {} µs of Redis time; {}",
        total / n.max(1),
        pinger.summary()
    );
    drop(pinger);
    if let Err(e) = store.remove_subtree(&p("/stall")).await {
        println!("cleanup failed: {e}");
    }
}
