//! What one store call costs Redis must not depend on how many other locks share the path or
//! the principal: otherwise one client piling up shared locks stalls the shared Redis for
//! everybody (every script runs alone on the server).
//!
//! The tests assert structure, never wall-clock time:
//! - no key of the namespace holds more than one lock's record, so no single key read or
//!   write moves the records of the other locks of a path;
//! - the number of keys a call looks up (`keyspace_hits` + `keyspace_misses` of `INFO stats`,
//!   which counts every key lookup, inside scripts too) is the same whether 10 or 60 locks
//!   share the path and the principal;
//! - a write's covering check is one round trip (one `MULTI`/`EXEC`, nothing before it) on a
//!   locked path as on a free one.
//!
//! The counting tests run their own `redis-server`, so the server's counters see their calls
//! only.
#![cfg(feature = "redis")]

#[path = "common/redis.rs"]
mod redis_env;

use std::time::Duration;

use redis::AsyncCommands;
use redis_env::{raw_connection, redis_url, store_with_prefix, unique_prefix, OwnServer};
use tower_locks::{
    CreateOutcome, Lock, LockDepth, LockQuery, LockScope, LockStore, LockTimeout, MemoryLockStore,
    NewLock, RedisLockStore, ResourcePath, Submission, TokenAccess, TokenOutcome,
};

fn p(s: &str) -> ResourcePath {
    ResourcePath::parse(s).unwrap()
}

async fn granted(store: &impl LockStore, lock: NewLock) -> Lock {
    match store.create(lock.clone()).await.unwrap() {
        CreateOutcome::Created(l) => l,
        other => panic!("expected {lock:?} to be granted, got {other:?}"),
    }
}

const OWNER: usize = 16 * 1024;

#[tokio::test]
async fn no_key_holds_more_than_one_record() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let store = store_with_prefix(&url, &prefix).await;
    let owner = "o".repeat(OWNER);
    for i in 0..40 {
        let mut req = NewLock::new(p(if i % 4 == 3 { "/doc/" } else { "/doc" }))
            .scope(LockScope::Shared)
            .owner(owner.as_str())
            .timeout(if i % 5 == 0 {
                LockTimeout::Infinite
            } else {
                LockTimeout::Seconds(600)
            });
        if i % 2 == 0 {
            req = req.principal("ann").principal_quota(1000);
        }
        if i % 3 == 0 {
            req = req.depth(LockDepth::Infinity);
        }
        granted(&store, req).await;
    }
    let mut raw = raw_connection(&url).await;
    let keys: Vec<String> = raw.keys(format!("{{{prefix}}}:*")).await.unwrap();
    assert!(keys.len() > 40, "{keys:?}");
    for key in keys {
        let bytes: u64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(
            bytes < (OWNER + OWNER / 2) as u64,
            "{key} holds {bytes} bytes: more than one lock's record"
        );
    }
}

/// A store on a Redis server of the test's own, and a raw connection to read its counters.
async fn counted(
    tag: &str,
) -> Option<(OwnServer, RedisLockStore, redis::aio::MultiplexedConnection)> {
    let server = OwnServer::start(tag)?;
    let store = store_with_prefix(&server.url, &unique_prefix()).await;
    let raw = raw_connection(&server.url).await;
    Some((server, store, raw))
}

/// One section of `INFO`.
async fn info(raw: &mut redis::aio::MultiplexedConnection, section: &str) -> String {
    redis::cmd("INFO")
        .arg(section)
        .query_async(raw)
        .await
        .unwrap()
}

/// Key lookups so far (`keyspace_hits` + `keyspace_misses`).
async fn lookups(raw: &mut redis::aio::MultiplexedConnection) -> u64 {
    info(raw, "stats")
        .await
        .lines()
        .filter_map(|l| {
            l.strip_prefix("keyspace_hits:")
                .or_else(|| l.strip_prefix("keyspace_misses:"))
        })
        .map(|v| v.trim().parse::<u64>().unwrap())
        .sum()
}

/// The key lookups of one store call.
async fn cost<T>(
    raw: &mut redis::aio::MultiplexedConnection,
    call: impl std::future::Future<Output = T>,
) -> (T, u64) {
    let before = lookups(raw).await;
    let out = call.await;
    let after = lookups(raw).await;
    (out, after - before)
}

/// Costs of one create, check, refresh, get and unlock of a shared lock on `/doc` by `ann`.
async fn verb_costs(
    store: &impl LockStore,
    raw: &mut redis::aio::MultiplexedConnection,
    owner: &str,
) -> [u64; 5] {
    let req = NewLock::new(p("/doc"))
        .scope(LockScope::Shared)
        .owner(owner)
        .principal("ann")
        .principal_quota(1000)
        .resource_quota(1000)
        .store_quota(1000);
    let (out, create) = cost(raw, store.create(req)).await;
    let CreateOutcome::Created(lock) = out.unwrap() else {
        panic!("shared locks do not conflict")
    };
    // a write below /doc: its covering check must not read /doc's depth-0 locks
    let below = LockQuery::new().covering(p("/doc/child"));
    let (found, check) = cost(raw, store.query(&below)).await;
    assert!(found.unwrap().is_empty());
    let access = TokenAccess::new(&lock.token, &lock.root, Some("ann"));
    let (out, refresh) = cost(raw, store.refresh(access, LockTimeout::Seconds(900))).await;
    assert!(matches!(out.unwrap(), TokenOutcome::Done(_)));
    let (out, get) = cost(raw, store.get(&lock.token)).await;
    assert!(out.unwrap().is_some());
    let (out, unlock) = cost(raw, store.unlock(access)).await;
    assert!(matches!(out.unwrap(), TokenOutcome::Done(_)));
    [create, check, refresh, get, unlock]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_per_call_does_not_grow_with_the_locks_sharing_a_path() {
    let Some((_server, store, mut raw)) = counted("costs").await else {
        return;
    };
    let owner = "o".repeat(1024);
    let mut costs = Vec::new();
    let mut held = 0;
    for target in [10, 60] {
        while held < target {
            let req = NewLock::new(p("/doc"))
                .scope(LockScope::Shared)
                .owner(owner.as_str())
                .principal("ann")
                .principal_quota(1000);
            granted(&store, req).await;
            held += 1;
        }
        costs.push(verb_costs(&store, &mut raw, &owner).await);
    }
    let names = ["create", "check below", "refresh", "get", "unlock"];
    for (i, name) in names.iter().enumerate() {
        let (few, many) = (costs[0][i], costs[1][i]);
        assert!(
            many <= few + 2,
            "{name}: {few} key lookups with 10 locks on the path, {many} with 60"
        );
    }
}

/// Calls per command so far (`INFO commandstats`), without the `INFO` calls themselves.
async fn command_calls(
    raw: &mut redis::aio::MultiplexedConnection,
) -> std::collections::BTreeMap<String, u64> {
    info(raw, "commandstats")
        .await
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.strip_prefix("calls=")?.split(',').next()?;
            (name != "info").then(|| (name.to_owned(), calls.parse().unwrap()))
        })
        .collect()
}

/// What `call` sends Redis: its output, and the commands by name with how many of each.
async fn commands_of<T>(
    raw: &mut redis::aio::MultiplexedConnection,
    call: impl std::future::Future<Output = T>,
) -> (T, Vec<(String, u64)>) {
    let before = command_calls(raw).await;
    let out = call.await;
    let after = command_calls(raw).await;
    let sent = after
        .into_iter()
        .map(|(name, n)| {
            let d = n - before.get(&name).copied().unwrap_or(0);
            (name, d)
        })
        .filter(|(_, d)| *d > 0)
        .collect();
    (out, sent)
}

/// The commands one covering query sends, and how many locks it found.
async fn check_commands(
    store: &impl LockStore,
    raw: &mut redis::aio::MultiplexedConnection,
    path: &str,
) -> (usize, Vec<(String, u64)>) {
    let query = LockQuery::new().covering(p(path));
    let (found, sent) = commands_of(raw, store.query(&query)).await;
    (found.unwrap().len(), sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_check_is_one_round_trip_on_a_locked_path_as_on_a_free_one() {
    let Some((_server, store, mut raw)) = counted("round-trip").await else {
        return;
    };
    granted(&store, NewLock::new(p("/docs/locked"))).await;
    let (found, locked) = check_commands(&store, &mut raw, "/docs/locked").await;
    assert_eq!(found, 1);
    let (found, free) = check_commands(&store, &mut raw, "/docs/free").await;
    assert_eq!(found, 0);
    for sent in [&locked, &free] {
        // One transaction: MULTI, the reads, TIME, EXEC, sent together; nothing before it.
        let names: Vec<&str> = sent.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["exec", "multi", "sort_ro", "time"], "{sent:?}");
        let count = |name: &str| sent.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(
            (count("multi"), count("exec"), count("time")),
            (1, 1, 1),
            "{sent:?}"
        );
    }
    assert_eq!(
        locked, free,
        "a locked path costs the same commands as a free one"
    );
}

/// The commands a write through the layer sends Redis, by name, with how many of each.
async fn write_commands(
    store: &RedisLockStore,
    raw: &mut redis::aio::MultiplexedConnection,
    if_header: &str,
) -> (http::StatusCode, Vec<(String, u64)>) {
    use tower::{Layer, ServiceExt};
    let svc = tower_locks::LockLayer::new(store.clone()).layer(tower::service_fn(
        |_req: http::Request<http_body_util::Empty<bytes::Bytes>>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        },
    ));
    let req = http::Request::put("/docs/a")
        .header("If", if_header)
        .body(http_body_util::Empty::new())
        .unwrap();
    let (res, sent) = commands_of(raw, svc.oneshot(req)).await;
    (res.unwrap().status(), sent)
}

/// An `If` header may name many resources, each deep; what the write's check asks Redis must
/// not grow with them (one lookup per distinct token, none per resource or ancestor), or one
/// request could hold the shared Redis for milliseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_if_header_naming_many_deep_resources_costs_redis_one_lookup_per_token() {
    let Some((_server, store, mut raw)) = counted("if-header").await else {
        return;
    };
    let lock = granted(&store, NewLock::new(p("/docs/a"))).await;
    let on = |resource: &str| format!("<{resource}> (<{}>)", lock.token);
    let deep = "/a".repeat(40);
    // A list about the request URI needs no lookup: its covering locks come with the check.
    let (status, plain) = write_commands(&store, &mut raw, &on("/docs/a")).await;
    assert_eq!(status, http::StatusCode::OK);
    let (status, one) = write_commands(&store, &mut raw, &(on("/r") + &on("/docs/a"))).await;
    assert_eq!(status, http::StatusCode::OK);
    let many: String = (0..50)
        .map(|i| on(&format!("/r{i}{deep}")))
        .chain([on("/docs/a")])
        .collect();
    let (status, lots) = write_commands(&store, &mut raw, &many).await;
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(lots, one, "51 tagged lists on 51 resources, one token");
    let count = |sent: &[(String, u64)], name: &str| {
        sent.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| *c)
    };
    assert_eq!(count(&one, "get"), 1, "{one:?}");
    assert_eq!(count(&plain, "get"), 0, "{plain:?}");
    assert_eq!(count(&one, "sort_ro"), count(&plain, "sort_ro"));
}

/// A DELETE's check of a collection with many locked members (a query asking only for what
/// judging a removal needs, and `check`, which asks that of `query`) reads the locks below a
/// page at a time and stops once 16 blocked members are known: what a refused removal costs
/// Redis does not grow with the members. Asking for every lock below reads them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_removal_over_many_members_reads_a_bounded_number_of_keys() {
    let Some((_server, store, mut raw)) = counted("removals").await else {
        return;
    };
    let (mut bounded, mut checked, mut everything) = (Vec::new(), Vec::new(), Vec::new());
    let mut held = 0;
    for members in [100, 600] {
        while held < members {
            granted(&store, NewLock::new(p(&format!("/big/m{held:04}")))).await;
            held += 1;
        }
        let all = LockQuery::new().subtree(p("/big"));
        let enough = all.clone().until_blocked(None);
        let (found, lookups) = cost(&mut raw, store.query(&enough)).await;
        assert!(found.unwrap().len() >= 16);
        bounded.push(lookups);
        let (out, lookups) = cost(&mut raw, store.check(&all, Submission::default())).await;
        assert!(out.unwrap().unsatisfied.len() >= 16);
        checked.push(lookups);
        let (found, lookups) = cost(&mut raw, store.query(&all)).await;
        assert_eq!(found.unwrap().len(), members);
        everything.push(lookups);
    }
    assert!(
        bounded[1] <= bounded[0] + 2 && checked[1] <= checked[0] + 2,
        "key lookups with 100 members, then 600: until blocked {bounded:?}, check {checked:?}"
    );
    // A page of a listing reads its own resources, not the whole collection.
    let (found, lookups) = cost(
        &mut raw,
        store.query(&LockQuery::new().subtree(p("/big")).page(None, 20, None)),
    )
    .await;
    assert!(found.unwrap().len() >= 20);
    assert!(
        lookups < everything[0],
        "a page of 20: {lookups} key lookups"
    );
    assert!(
        everything[1] > everything[0] + 400,
        "every lock below: {everything:?} key lookups"
    );
}

/// A page of one principal's locks reads that principal's own index: with 100 or 1 000 locks
/// of somebody else's between its resources, it costs Redis the same key lookups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_ones_own_locks_reads_none_of_the_others() {
    let Some((_server, store, mut raw)) = counted("own-pages").await else {
        return;
    };
    let ann = |i: usize| NewLock::new(p(&format!("/big/m{i:04}/ann"))).principal("ann");
    for i in (0..1000).step_by(200) {
        granted(&store, ann(i)).await;
    }
    let mut costs = Vec::new();
    let mut held = 0;
    for others in [100, 1000] {
        while held < others {
            let bob = NewLock::new(p(&format!("/big/m{held:04}"))).principal("bob");
            granted(&store, bob.principal_quota(10_000)).await;
            held += 1;
        }
        let page = LockQuery::new()
            .subtree(p("/big"))
            .page(None, 10, Some("ann"));
        let (found, lookups) = cost(&mut raw, store.query(&page)).await;
        let found = found.unwrap();
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(found.iter().all(|l| l.principal.as_deref() == Some("ann")));
        costs.push(lookups);
    }
    assert!(
        costs[1] <= costs[0] + 2 && costs[0] < 40,
        "key lookups of a page of ann's locks with 100, then 1 000 of bob's: {costs:?}"
    );
}

/// A depth-infinity LOCK on a collection with many locked members reads the locks below a
/// page at a time and stops once 16 conflicts are known: what it costs Redis does not grow
/// with the members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_lock_over_many_members_reads_a_bounded_number_of_keys() {
    let Some((_server, store, mut raw)) = counted("conflicts").await else {
        return;
    };
    let mut costs = Vec::new();
    let mut held = 0;
    for members in [100, 600] {
        while held < members {
            granted(&store, NewLock::new(p(&format!("/big/m{held:04}")))).await;
            held += 1;
        }
        let deep = NewLock::new(p("/big")).depth(LockDepth::Infinity);
        let (out, lookups) = cost(&mut raw, store.create(deep)).await;
        let CreateOutcome::Conflict(conflicts) = out.unwrap() else {
            panic!("exclusive locks below conflict");
        };
        assert!(conflicts.len() >= 16, "{}", conflicts.len());
        costs.push(lookups);
    }
    assert!(
        costs[1] <= costs[0] + 2,
        "key lookups with 100 members {}, with 600 {}",
        costs[0],
        costs[1]
    );
}

/// Decision D19: a removal's check reads what its verdict needs, not the whole subtree. Locks
/// below that expired together (not yet swept: only changes sweep) are read by the first walk,
/// which takes their entries out; the next checks cost what they cost while the locks lived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_check_reads_the_expired_locks_below_once() {
    let Some((_server, store, mut raw)) = counted("expired-below").await else {
        return;
    };
    const N: usize = 3000;
    for i in 0..16 {
        // 16 live blockers, at the end of the subtree in path order
        granted(&store, NewLock::new(p(&format!("/big/z{i:02}")))).await;
    }
    for i in 0..N {
        granted(
            &store,
            NewLock::new(p(&format!("/big/m{i:05}"))).timeout(LockTimeout::Seconds(2)),
        )
        .await;
    }
    let enough = LockQuery::new().subtree(p("/big")).until_blocked(None);
    let before = lookups(&mut raw).await;
    assert!(store.query(&enough).await.unwrap().len() >= 16);
    let live_cost = lookups(&mut raw).await - before;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut costs = Vec::new();
    for _ in 0..3 {
        let before = lookups(&mut raw).await;
        let started = std::time::Instant::now();
        let found = store.query(&enough).await.unwrap();
        let took = started.elapsed();
        assert_eq!(found.len(), 16);
        costs.push((lookups(&mut raw).await - before, took));
    }
    eprintln!("live: {live_cost} lookups; expired, three checks in a row: {costs:?}");
    // 16 blocked roots are what the check needs: a couple of pages, as when they were live.
    // (The first walk after the expiry may pay for the expired entries once; the next ones
    // must not pay for them again.)
    assert!(
        costs[1..].iter().all(|(n, _)| *n < 200),
        "a removal check over {N} expired locks below: {costs:?} key lookups each"
    );
}

/// A refused exclusive LOCK reads and reports a bounded number of the locks at and above its
/// path (the trait asks for at least 16 when there are more), not every shared lock an
/// anonymous client may pile up there within the default quotas (64 per resource, 4 KiB
/// owners, on every segment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_lock_reads_a_bounded_number_of_conflicts_above() {
    let Some(url) = redis_url() else { return };
    let redis = store_with_prefix(&url, &unique_prefix()).await;
    let memory = MemoryLockStore::new();
    let owner = "o".repeat(4 * 1024);
    let mut path = String::new();
    let mut held = 0;
    for level in 0..16 {
        path.push_str(&format!("/l{level}"));
        for _ in 0..62 {
            // what an anonymous client may hold under the default limits
            let req = NewLock::new(p(&path))
                .scope(LockScope::Shared)
                .depth(LockDepth::Infinity)
                .owner(owner.as_str())
                .principal_quota(1000)
                .resource_quota(64)
                .store_quota(100_000);
            granted(&redis, req.clone()).await;
            granted(&memory, req).await;
            held += 1;
        }
    }
    let leaf = p(&format!("{path}/leaf"));
    let started = std::time::Instant::now();
    let CreateOutcome::Conflict(from_redis) =
        redis.create(NewLock::new(leaf.clone())).await.unwrap()
    else {
        panic!("shared locks above conflict")
    };
    let took = started.elapsed();
    let CreateOutcome::Conflict(from_memory) = memory.create(NewLock::new(leaf)).await.unwrap()
    else {
        panic!("shared locks above conflict")
    };
    let bytes: usize = from_redis
        .iter()
        .map(|l| l.owner.as_deref().map_or(0, str::len))
        .sum();
    eprintln!(
        "{held} shared locks above: redis reports {} ({bytes} owner bytes, {took:?}), memory {}",
        from_redis.len(),
        from_memory.len()
    );
    assert!(
        from_redis.len() <= 2 * from_memory.len(),
        "redis reported {} conflicts, memory {}",
        from_redis.len(),
        from_memory.len()
    );
}
