//! `RedisLockStore` when Redis dies and comes back: calls fail fast with `Unavailable` or
//! `Backend`, and the store recovers by itself with no lock lost or duplicated.
//!
//! The test runs its own `redis-server` (with an append-only file, `appendfsync always`, in a
//! temporary directory, so the data survives the restart) on a free loopback port.
#![cfg(feature = "redis")]

#[path = "common/redis.rs"]
mod redis_env;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use redis_env::{unique_prefix, OwnServer};
use tower_locks::{
    CreateOutcome, Lock, LockDepth, LockQuery, LockStore, LockStoreError, LockTimeout, NewLock,
    RedisLockStore, ResourcePath, TokenAccess,
};

fn p(s: &str) -> ResourcePath {
    ResourcePath::parse(s).unwrap()
}

fn by_token(locks: Vec<Lock>) -> BTreeMap<String, Lock> {
    let n = locks.len();
    let map: BTreeMap<_, _> = locks
        .into_iter()
        .map(|l| (l.token.to_string(), l))
        .collect();
    assert_eq!(map.len(), n, "a lock was reported twice");
    map
}

const BOUND: Duration = Duration::from_secs(5);

/// Run one store call that must fail, quickly, with a store error.
async fn must_fail<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, LockStoreError>>,
) {
    let started = Instant::now();
    let result = tokio::time::timeout(BOUND, call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for more than {BOUND:?} with Redis down"));
    match result {
        Err(LockStoreError::Unavailable(_) | LockStoreError::Backend(_)) => {}
        other => panic!("{what} with Redis down: expected Unavailable or Backend, got {other:?}"),
    }
    eprintln!("{what} failed after {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_fails_fast_and_recovers_after_a_restart() {
    let Some(mut server) = OwnServer::start("faults") else {
        return;
    };
    let url = server.url.clone();
    let store = RedisLockStore::builder(&url)
        .prefix(unique_prefix())
        .connect()
        .await
        .expect("connect to the test server");

    let mut before = Vec::new();
    for (i, path) in ["/f/a", "/f/b", "/f/c/d", "/g"].iter().enumerate() {
        let mut req = NewLock::new(p(path)).principal("ann");
        req = match i {
            0 => req.timeout(LockTimeout::Infinite),
            1 => req.depth(LockDepth::Infinity),
            _ => req.timeout(LockTimeout::Seconds(3600)),
        };
        let CreateOutcome::Created(lock) = store.create(req).await.unwrap() else {
            panic!("no conflict expected")
        };
        before.push(lock);
    }
    let fence_before = before.iter().map(|l| l.fence).max().unwrap();
    let everything = LockQuery::new().subtree(ResourcePath::root());
    let before = by_token(before);
    assert_eq!(by_token(store.query(&everything).await.unwrap()), before);

    server.kill();

    let any = before.values().next().unwrap().clone();
    let access = TokenAccess::new(&any.token, &any.root, Some("ann"));
    must_fail("create", store.create(NewLock::new(p("/h")))).await;
    must_fail("refresh", store.refresh(access, LockTimeout::Seconds(5))).await;
    must_fail("unlock", store.unlock(access)).await;
    must_fail("remove_subtree", store.remove_subtree(&p("/f"))).await;
    must_fail("query", store.query(&everything)).await;
    must_fail("get", store.get(&any.token)).await;
    // and again, now that the connection manager is reconnecting
    must_fail("query (again)", store.query(&everything)).await;
    must_fail("create (again)", store.create(NewLock::new(p("/h")))).await;

    server.restart();

    // The same store value recovers by itself (it reconnects and reloads its scripts).
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        match store.query(&everything).await {
            Ok(locks) => break locks,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "store did not recover within 10 s: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(
        by_token(after),
        before,
        "locks lost, changed or duplicated by the restart"
    );
    assert_eq!(store.get(&any.token).await.unwrap(), Some(any.clone()));
    // Conflicts still hold, and the fencing counter survived.
    assert!(matches!(
        store.create(NewLock::new(p("/f/b/x"))).await.unwrap(),
        CreateOutcome::Conflict(_)
    ));
    let CreateOutcome::Created(new) = store.create(NewLock::new(p("/h"))).await.unwrap() else {
        panic!("/h is free")
    };
    assert!(
        new.fence > fence_before,
        "fence {} after {fence_before}",
        new.fence
    );
    assert!(matches!(
        store.unlock(access).await.unwrap(),
        tower_locks::TokenOutcome::Done(_)
    ));
}

/// A Redis that accepts connections but never answers (stopped with SIGSTOP) must not hang
/// the store: calls fail within the operation timeout, and work again once it resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_server_does_not_hang_calls() {
    let Some(server) = OwnServer::start("frozen") else {
        return;
    };
    let pid = server.pid().to_string();
    let url = server.url.clone();
    let store = RedisLockStore::builder(&url)
        .prefix(unique_prefix())
        .operation_timeout(Duration::from_millis(1500))
        .connect()
        .await
        .expect("connect to the test server");
    let CreateOutcome::Created(lock) = store.create(NewLock::new(p("/frozen"))).await.unwrap()
    else {
        panic!("no conflict expected")
    };

    let signal = |sig: &str| {
        let status = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} {pid}");
    };
    signal("-STOP");
    must_fail("get (frozen)", store.get(&lock.token)).await;
    must_fail("create (frozen)", store.create(NewLock::new(p("/other")))).await;
    signal("-CONT");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.get(&lock.token).await {
            Ok(found) => {
                assert_eq!(found, Some(lock.clone()));
                break;
            }
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "store did not recover within 10 s: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(server);
}

/// A LOCK that fails must leave no lock behind, also when Redis runs the create after the
/// store gave up on it: here Redis holds every write (`CLIENT PAUSE … WRITE`) past the
/// store's operation timeout, then runs what it queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_fails_leaves_no_lock() {
    let Some(server) = OwnServer::start("ghost") else {
        return;
    };
    let url = server.url.clone();
    let store = RedisLockStore::builder(&url)
        .prefix(unique_prefix())
        .operation_timeout(Duration::from_millis(1000))
        .connect()
        .await
        .expect("connect to the test server");
    // The scripts are loaded before the pause, as they are in a running application (a
    // create queued with a script Redis does not know fails with NOSCRIPT, and proves nothing).
    let warm_up = p("/warm-up");
    let CreateOutcome::Created(_) = store.create(NewLock::new(warm_up.clone())).await.unwrap()
    else {
        panic!("nothing else is locked")
    };
    assert_eq!(store.remove_subtree(&warm_up).await.unwrap(), 1);
    let mut admin = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for (i, depth) in [LockDepth::Zero, LockDepth::Infinity]
        .into_iter()
        .enumerate()
    {
        let path = p(&format!("/ghost/{i}"));
        let req = NewLock::new(path.clone())
            .depth(depth)
            .timeout(LockTimeout::Seconds(86_400));
        let token = req.token.clone();
        let paused_at = Instant::now();
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(2500)
            .arg("WRITE")
            .query_async(&mut admin)
            .await
            .unwrap();
        must_fail("create (writes paused)", store.create(req)).await;
        // Redis runs what it queued once the pause is over
        let resume = Duration::from_millis(2500).saturating_sub(paused_at.elapsed());
        tokio::time::sleep(resume + Duration::from_millis(500)).await;
        assert_eq!(store.get(&token).await.unwrap(), None, "a ghost lock");
        let found = store
            .query(&LockQuery::new().subtree(path.clone()))
            .await
            .unwrap();
        assert!(found.is_empty(), "a ghost lock: {found:?}");
        assert!(
            matches!(
                store.create(NewLock::new(path.clone())).await.unwrap(),
                CreateOutcome::Created(_)
            ),
            "the path stays locked by a lock nobody holds"
        );
        store.remove_subtree(&path).await.unwrap();
    }
}

/// A subtree query (a removal's check, a listing page) only reads what callers rely on: where
/// Redis refuses writes (here `min-replicas-to-write` without replicas; a failed save or a
/// demoted master do the same), the entries of a lock whose record expired stay, and the query
/// still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subtree_query_answers_while_redis_refuses_writes() {
    let Some(server) = OwnServer::start("refusing-writes") else {
        return;
    };
    let store = redis_env::store_with_prefix(&server.url, &unique_prefix()).await;
    let mut raw = redis_env::raw_connection(&server.url).await;
    let short = NewLock::new(p("/c/gone")).timeout(LockTimeout::Seconds(1));
    assert!(matches!(
        store.create(short).await.unwrap(),
        CreateOutcome::Created(_)
    ));
    let live = NewLock::new(p("/c/live"));
    assert!(matches!(
        store.create(live).await.unwrap(),
        CreateOutcome::Created(_)
    ));
    // The first lock's record goes with its TTL, on the server's clock; no change sweeps it.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let refuse = |n: &str| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("min-replicas-to-write")
            .arg(n)
            .to_owned()
    };
    let _: () = refuse("1").query_async(&mut raw).await.unwrap();
    let answer = store
        .query(&LockQuery::new().subtree(p("/c")).until_blocked(None))
        .await;
    let _: () = refuse("0").query_async(&mut raw).await.unwrap();
    let roots: Vec<String> = answer
        .expect("a subtree query answers while Redis refuses writes")
        .iter()
        .map(|l| l.root.to_string())
        .collect();
    assert_eq!(roots, ["/c/live"]);
}
