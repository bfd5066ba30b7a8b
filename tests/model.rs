//! Model-based tests of the lock stores: random sequences of `create` (exclusive/shared, depth
//! 0/infinity, random principals, quotas), `refresh`, `unlock`, `query` (covering and subtree
//! targets), `get`, `remove_subtree` and clock advances, run against a store and against a
//! small reference model — a plain `Vec` of locks with the semantics the `LockStore` trait
//! docs spell out, written independently of the stores (and of `LockQuery::matches`). After
//! every step the observable outcomes must be identical: the outcome kind, the locks returned
//! (every field; fencing numbers are taken from the store at grant time and must then never
//! change, and must grow with every grant), and query answers as sets.
//!
//! - `MemoryLockStore` runs on a `ManualClock` the sequences advance, so expiry is exact
//!   (a lock is dead once `expires_at <= now`) and compared to the nanosecond. Proptest runs
//!   200 sequences of 50 steps and shrinks a failure to a minimal sequence; set
//!   `PROPTEST_RNG_SEED=<n>` to replay a run (the seed in use is printed on failure).
//! - `RedisLockStore` (feature `redis`, `REDIS_URL`) runs the same sequences, clock advances
//!   included, on a `ManualClock` handed to the store with `with_clock` (the scripts then
//!   judge expiry by that clock): 48 sequences of 50 steps, exact to the millisecond Redis
//!   keeps.
//! - `RedisLockStore` on the server's own clock (how it runs in production), which a test
//!   cannot move: these sequences use only long timeouts (1 hour,
//!   infinite, and `Second-0`, which is dead on arrival) plus an explicit expiry step — a lock
//!   created or refreshed with `Second-1`, followed at once by a real 1.2 s sleep, after which
//!   the model drops it — at most once per sequence. The sequences run concurrently (each on
//!   its own key prefix), so the sleeps overlap. Expiry instants are compared within 1.5 s.

#[cfg(feature = "redis")]
#[path = "common/redis.rs"]
mod redis_env;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use tower_locks::{
    CreateOutcome, Lock, LockDepth, LockQuery, LockScope, LockStore, LockTimeout, ManualClock,
    MemoryLockStore, NewLock, Quota, ResourcePath, TokenAccess, TokenOutcome,
};

/// The resources the sequences touch: a small tree, so that locks meet often.
const PATHS: &[&str] = &["/", "/a", "/a/b", "/a/b/c", "/a/d", "/e", "/e/f"];
const PRINCIPALS: &[Option<&str>] = &[None, Some("alice"), Some("bob")];
/// Timeouts for the memory store (the clock is ours to move).
const MEMORY_TIMEOUTS: &[LockTimeout] = &[
    LockTimeout::Seconds(0),
    LockTimeout::Seconds(1),
    LockTimeout::Seconds(5),
    LockTimeout::Seconds(60),
    LockTimeout::Infinite,
];
/// Timeouts for Redis, whose clock we cannot move: nothing expires by surprise.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
const REDIS_TIMEOUTS: &[LockTimeout] = &[
    LockTimeout::Seconds(0),
    LockTimeout::Seconds(3600),
    LockTimeout::Seconds(7200),
    LockTimeout::Infinite,
];
const BOGUS_TOKEN: &str = "urn:uuid:00000000-0000-4000-8000-000000000000";

#[derive(Debug, Clone)]
enum Op {
    Get {
        token: usize,
    },
    Query {
        targets: Vec<(usize, bool)>,
    },
    Create {
        path: usize,
        slash: bool,
        shared: bool,
        infinity: bool,
        principal: usize,
        timeout: usize,
        quota: Option<u32>,
        owner: bool,
    },
    Refresh {
        token: usize,
        path: usize,
        principal: usize,
        privileged: bool,
        timeout: usize,
    },
    Unlock {
        token: usize,
        path: usize,
        principal: usize,
        privileged: bool,
    },
    RemoveSubtree {
        path: usize,
    },
    /// Memory only: move the manual clock.
    Advance {
        secs: u64,
    },
    /// Redis only: create (`token == None`) or refresh a lock with `Second-1`, then sleep
    /// until it has expired.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    ExpireShort {
        create: Option<usize>,
        token: usize,
        path: usize,
    },
}

fn path_ix() -> impl Strategy<Value = usize> {
    0..PATHS.len()
}

fn principal_ix() -> impl Strategy<Value = usize> {
    0..PRINCIPALS.len()
}

/// Non-mutating operations come first, so shrinking turns steps into harmless ones.
fn common_op(timeouts: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => any::<usize>().prop_map(|token| Op::Get { token }),
        3 => proptest::collection::vec((path_ix(), any::<bool>()), 1..3)
            .prop_map(|targets| Op::Query { targets }),
        6 => (
            path_ix(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            principal_ix(),
            0..timeouts,
            proptest::option::weighted(0.25, 1u32..7),
            any::<bool>(),
        )
            .prop_map(
                |(path, slash, shared, infinity, principal, timeout, quota, owner)| Op::Create {
                    path,
                    slash,
                    shared,
                    infinity,
                    principal,
                    timeout,
                    quota,
                    owner,
                }
            ),
        2 => (any::<usize>(), path_ix(), principal_ix(), proptest::bool::weighted(0.2), 0..timeouts)
            .prop_map(|(token, path, principal, privileged, timeout)| Op::Refresh {
                token,
                path,
                principal,
                privileged,
                timeout,
            }),
        2 => (any::<usize>(), path_ix(), principal_ix(), proptest::bool::weighted(0.2))
            .prop_map(|(token, path, principal, privileged)| Op::Unlock {
                token,
                path,
                principal,
                privileged,
            }),
        1 => path_ix().prop_map(|path| Op::RemoveSubtree { path }),
    ]
}

fn memory_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => common_op(MEMORY_TIMEOUTS.len()),
        1 => prop::sample::select(&[0u64, 1, 2, 4, 5, 30, 61][..]).prop_map(|secs| Op::Advance { secs }),
    ]
}

#[cfg(feature = "redis")]
fn redis_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        40 => common_op(REDIS_TIMEOUTS.len()),
        1 => (proptest::option::of(principal_ix()), any::<usize>(), path_ix())
            .prop_map(|(create, token, path)| Op::ExpireShort { create, token, path }),
    ]
}

/// The reference model: every lock ever granted and not removed, dead or alive.
#[derive(Debug, Default)]
struct Model {
    locks: Vec<Lock>,
    /// Every token handed out (also unlocked and expired ones), for ops to pick from.
    tokens: Vec<String>,
    max_fence: u64,
}

fn live_at(lock: &Lock, now: SystemTime) -> bool {
    match lock.expires_at {
        None => true,
        Some(at) => at > now,
    }
}

/// `path` is in the scope of `lock`: its root, or below a depth-infinity root.
fn in_scope(lock: &Lock, path: &ResourcePath) -> bool {
    let below = lock.root.segments().count() < path.segments().count()
        && lock
            .root
            .segments()
            .zip(path.segments())
            .all(|(a, b)| a == b);
    lock.root == *path || (lock.depth == LockDepth::Infinity && below)
}

/// `root` is at `path` or anywhere below it.
fn at_or_below(root: &ResourcePath, path: &ResourcePath) -> bool {
    path.segments().count() <= root.segments().count()
        && path.segments().zip(root.segments()).all(|(a, b)| a == b)
}

impl Model {
    fn live(&self, now: SystemTime) -> impl Iterator<Item = &Lock> {
        self.locks.iter().filter(move |l| live_at(l, now))
    }

    fn find(&self, token: &str, now: SystemTime) -> Option<&Lock> {
        self.live(now).find(|l| l.token == token)
    }

    fn token(&self, ix: usize) -> String {
        // One pick in eight is a token no store ever issued.
        if self.tokens.is_empty() || ix.is_multiple_of(8) {
            BOGUS_TOKEN.to_owned()
        } else {
            self.tokens[ix % self.tokens.len()].clone()
        }
    }

    /// RFC 4918 §6.1, §9.10.5: a live lock on the root or a depth-infinity one on an
    /// ancestor, and for a depth-infinity request any live lock below; shared+shared is fine.
    fn conflicts(&self, new: &NewLock, now: SystemTime) -> Vec<&Lock> {
        self.live(now)
            .filter(|l| {
                let meets = in_scope(l, &new.root)
                    || (new.depth == LockDepth::Infinity && at_or_below(&l.root, &new.root));
                let both_shared = l.scope == LockScope::Shared && new.scope == LockScope::Shared;
                meets && !both_shared
            })
            .collect()
    }

    fn query(&self, targets: &[(ResourcePath, bool)], now: SystemTime) -> Vec<&Lock> {
        self.live(now)
            .filter(|l| {
                targets.iter().any(|(p, descendants)| {
                    in_scope(l, p) || (*descendants && at_or_below(&l.root, p) && l.root != *p)
                })
            })
            .collect()
    }

    /// The verdict on a token operation: `Done(lock)` when it is allowed.
    fn judge(
        &self,
        token: &str,
        path: &ResourcePath,
        principal: Option<&str>,
        privileged: bool,
        now: SystemTime,
    ) -> TokenOutcome {
        let Some(lock) = self.find(token, now) else {
            return TokenOutcome::NotFound;
        };
        if !in_scope(lock, path) {
            return TokenOutcome::OutOfScope(lock.clone());
        }
        let owner_ok = match &lock.principal {
            None => true,
            Some(p) => principal == Some(&**p),
        };
        if !privileged && !owner_ok {
            return TokenOutcome::Forbidden(lock.clone());
        }
        TokenOutcome::Done(lock.clone())
    }
}

/// How closely expiry instants must agree.
#[derive(Debug, Clone, Copy)]
enum Precision {
    Exact,
    Within(Duration),
}

fn same_lock(got: &Lock, want: &Lock, precision: Precision) -> Result<(), String> {
    let differs = |what: &str| Err(format!("{what} differs:\n  got  {got:?}\n  want {want:?}"));
    if got.token != want.token {
        return differs("token");
    }
    if got.root != want.root || got.root.href() != want.root.href() {
        return differs("root");
    }
    if got.scope != want.scope || got.depth != want.depth {
        return differs("scope/depth");
    }
    if got.owner != want.owner || got.principal != want.principal {
        return differs("owner/principal");
    }
    if got.timeout != want.timeout {
        return differs("timeout");
    }
    if want.fence != 0 && got.fence != want.fence {
        return differs("fence");
    }
    let expiry_ok = match (got.expires_at, want.expires_at, precision) {
        (None, None, _) => true,
        (Some(a), Some(b), Precision::Exact) => a == b,
        (Some(a), Some(b), Precision::Within(d)) => {
            a.duration_since(b).unwrap_or_else(|e| e.duration()) <= d
        }
        _ => false,
    };
    if !expiry_ok {
        return differs("expires_at");
    }
    Ok(())
}

fn same_set(got: &[Lock], want: &[&Lock], precision: Precision) -> Result<(), String> {
    let mut got_tokens: Vec<&str> = got.iter().map(|l| l.token.as_str()).collect();
    let mut want_tokens: Vec<&str> = want.iter().map(|l| l.token.as_str()).collect();
    got_tokens.sort_unstable();
    want_tokens.sort_unstable();
    if got_tokens != want_tokens {
        return Err(format!(
            "lock sets differ:\n  got  {got:#?}\n  want {want:#?}"
        ));
    }
    for g in got {
        let w = want
            .iter()
            .find(|w| w.token == g.token)
            .expect("same tokens");
        same_lock(g, w, precision)?;
    }
    Ok(())
}

fn same_token_outcome(
    got: &TokenOutcome,
    want: &TokenOutcome,
    precision: Precision,
) -> Result<(), String> {
    match (got, want) {
        (TokenOutcome::NotFound, TokenOutcome::NotFound) => Ok(()),
        (TokenOutcome::Done(g), TokenOutcome::Done(w))
        | (TokenOutcome::OutOfScope(g), TokenOutcome::OutOfScope(w))
        | (TokenOutcome::Forbidden(g), TokenOutcome::Forbidden(w)) => same_lock(g, w, precision),
        _ => Err(format!("outcome differs:\n  got  {got:?}\n  want {want:?}")),
    }
}

/// Where "now" comes from.
enum Time<'a> {
    Manual(&'a ManualClock),
    /// The real clock (Redis); `Precision` says how far the server may be off.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Real,
}

impl Time<'_> {
    fn now(&self) -> SystemTime {
        use tower_locks::Clock;
        match self {
            Time::Manual(c) => c.now(),
            Time::Real => SystemTime::now(),
        }
    }

    fn precision(&self) -> Precision {
        match self {
            Time::Manual(_) => Precision::Exact,
            Time::Real => Precision::Within(Duration::from_millis(1500)),
        }
    }
}

/// Run `ops` against `store` and the model; `Err` names the first step that differs.
async fn run<S: LockStore>(
    store: &S,
    ops: &[Op],
    time: Time<'_>,
    timeouts: &[LockTimeout],
) -> Result<(), String> {
    let mut model = Model::default();
    let precision = time.precision();
    let path = |ix: usize| ResourcePath::parse(PATHS[ix]).unwrap();
    for (step, op) in ops.iter().enumerate() {
        let at = |e: String| format!("step {step} ({op:?}): {e}");
        match op {
            Op::Get { token } => {
                let token = model.token(*token);
                let got = store.get(&token).await.map_err(|e| at(e.to_string()))?;
                let now = time.now();
                let want = model.find(&token, now);
                match (&got, want) {
                    (None, None) => {}
                    (Some(g), Some(w)) => same_lock(g, w, precision).map_err(at)?,
                    _ => return Err(at(format!("get: got {got:?}, want {want:?}"))),
                }
            }
            Op::Query { targets } => {
                let targets: Vec<(ResourcePath, bool)> =
                    targets.iter().map(|&(p, d)| (path(p), d)).collect();
                let mut query = LockQuery::new();
                for (p, d) in &targets {
                    query.push(p.clone(), *d);
                }
                let got = store.query(&query).await.map_err(|e| at(e.to_string()))?;
                let mut seen: Vec<&str> = got.iter().map(|l| l.token.as_str()).collect();
                seen.sort_unstable();
                seen.dedup();
                if seen.len() != got.len() {
                    return Err(at(format!("query returned a lock twice: {got:?}")));
                }
                let now = time.now();
                same_set(&got, &model.query(&targets, now), precision).map_err(at)?;
            }
            Op::Create {
                path: p,
                slash,
                shared,
                infinity,
                principal,
                timeout,
                quota,
                owner,
            } => {
                let mut new = NewLock::new(path(*p).with_trailing_slash(*slash))
                    .scope(if *shared {
                        LockScope::Shared
                    } else {
                        LockScope::Exclusive
                    })
                    .depth(if *infinity {
                        LockDepth::Infinity
                    } else {
                        LockDepth::Zero
                    })
                    .timeout(timeouts[*timeout]);
                if let Some(pr) = PRINCIPALS[*principal] {
                    new = new.principal(pr);
                }
                // One number drives the quotas: 1-2 a principal quota; 3-4 also one lock per
                // resource, 5-6 also up to 2-3 per resource and 6-7 in the store.
                if let Some(q) = *quota {
                    new = new.principal_quota(q.min(2));
                    if q >= 3 {
                        new = new.resource_quota(q - 2);
                    }
                    if q >= 5 {
                        new = new.store_quota(q + 1);
                    }
                }
                if *owner {
                    new = new.owner("<D:href xmlns:D=\"DAV:\">mailto:x@example.com</D:href>");
                }
                create_step(store, &mut model, new, &time)
                    .await
                    .map_err(at)?;
            }
            Op::Refresh {
                token,
                path: p,
                principal,
                privileged,
                timeout,
            } => {
                let token = model.token(*token);
                refresh_step(
                    store,
                    &mut model,
                    &token,
                    &path(*p),
                    PRINCIPALS[*principal],
                    *privileged,
                    timeouts[*timeout],
                    &time,
                )
                .await
                .map_err(at)?;
            }
            Op::Unlock {
                token,
                path: p,
                principal,
                privileged,
            } => {
                let token = model.token(*token);
                let p = path(*p);
                let mut access = TokenAccess::new(&token, &p, PRINCIPALS[*principal]);
                access.privileged = *privileged;
                let got = store.unlock(access).await.map_err(|e| at(e.to_string()))?;
                let now = time.now();
                let want = match model.judge(&token, &p, PRINCIPALS[*principal], *privileged, now) {
                    TokenOutcome::Done(lock) => {
                        model.locks.retain(|l| l.token != token);
                        TokenOutcome::Done(lock)
                    }
                    refused => refused,
                };
                same_token_outcome(&got, &want, precision).map_err(at)?;
            }
            Op::RemoveSubtree { path: p } => {
                let p = path(*p);
                let got = store
                    .remove_subtree(&p)
                    .await
                    .map_err(|e| at(e.to_string()))?;
                let now = time.now();
                let want = model.live(now).filter(|l| at_or_below(&l.root, &p)).count();
                model.locks.retain(|l| !at_or_below(&l.root, &p));
                if got != want {
                    return Err(at(format!("remove_subtree removed {got}, want {want}")));
                }
            }
            Op::Advance { secs } => match &time {
                Time::Manual(clock) => clock.advance(Duration::from_secs(*secs)),
                Time::Real => return Err(at("cannot advance the real clock".into())),
            },
            Op::ExpireShort {
                create,
                token,
                path: p,
            } => {
                let short = LockTimeout::Seconds(1);
                match create {
                    Some(principal) => {
                        let mut new = NewLock::new(path(*p)).timeout(short);
                        if let Some(pr) = PRINCIPALS[*principal] {
                            new = new.principal(pr);
                        }
                        create_step(store, &mut model, new, &time)
                            .await
                            .map_err(at)?;
                    }
                    None => {
                        let token = model.token(*token);
                        refresh_step(
                            store,
                            &mut model,
                            &token,
                            &path(*p),
                            None,
                            false,
                            short,
                            &time,
                        )
                        .await
                        .map_err(at)?;
                    }
                }
                tokio::time::sleep(Duration::from_millis(1200)).await;
            }
        }
    }
    Ok(())
}

async fn create_step<S: LockStore>(
    store: &S,
    model: &mut Model,
    new: NewLock,
    time: &Time<'_>,
) -> Result<(), String> {
    let got = store.create(new.clone()).await.map_err(|e| e.to_string())?;
    let now = time.now();
    let conflicts = model.conflicts(&new, now);
    let precision = time.precision();
    if !conflicts.is_empty() {
        return match &got {
            CreateOutcome::Conflict(locks) => same_set(locks, &conflicts, precision),
            other => Err(format!(
                "create: got {other:?}, want conflict with {conflicts:?}"
            )),
        };
    }
    // Quotas after conflicts, each counting live locks only; all anonymous locks count as one
    // principal.
    let principal = new.principal.as_deref();
    let quotas = [
        (
            new.principal_quota,
            if principal.is_some() {
                Quota::Principal
            } else {
                Quota::Anonymous
            },
            model
                .live(now)
                .filter(|l| l.principal.as_deref() == principal)
                .count(),
        ),
        (
            new.resource_quota,
            Quota::Resource,
            model.live(now).filter(|l| l.root == new.root).count(),
        ),
        (new.store_quota, Quota::Store, model.live(now).count()),
    ];
    let exceeded: Vec<(Quota, u32)> = quotas
        .iter()
        .filter_map(|&(limit, quota, held)| {
            limit.filter(|&l| held >= l as usize).map(|l| (quota, l))
        })
        .collect();
    if !exceeded.is_empty() {
        return match got {
            CreateOutcome::QuotaExceeded { quota, limit } if exceeded.contains(&(quota, limit)) => {
                Ok(())
            }
            other => Err(format!("create: got {other:?}, want one of {exceeded:?}")),
        };
    }
    let CreateOutcome::Created(lock) = got else {
        return Err(format!("create: got {got:?}, want created"));
    };
    if lock.fence <= model.max_fence {
        return Err(format!(
            "fence {} not above every earlier grant ({})",
            lock.fence, model.max_fence
        ));
    }
    // Granted "now": the store read its clock between our two readings.
    let want = new.into_lock(now, lock.fence);
    same_lock(&lock, &want, precision)?;
    model.max_fence = lock.fence;
    model.tokens.push(lock.token.to_string());
    model.locks.push(want);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn refresh_step<S: LockStore>(
    store: &S,
    model: &mut Model,
    token: &str,
    path: &ResourcePath,
    principal: Option<&str>,
    privileged: bool,
    timeout: LockTimeout,
    time: &Time<'_>,
) -> Result<(), String> {
    let mut access = TokenAccess::new(token, path, principal);
    access.privileged = privileged;
    let got = store
        .refresh(access, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let now = time.now();
    // Only unlock honours `privileged`: nobody refreshes another principal's lock.
    let want = match model.judge(token, path, principal, false, now) {
        TokenOutcome::Done(_) => {
            let lock = model
                .locks
                .iter_mut()
                .find(|l| l.token == token)
                .expect("judged live");
            lock.timeout = timeout;
            lock.expires_at = timeout.expiry_from(now);
            TokenOutcome::Done(lock.clone())
        }
        refused => refused,
    };
    same_token_outcome(&got, &want, time.precision())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `cases` runs from one seed, and that seed: `PROPTEST_RNG_SEED` if set, else the time. The
/// seed is printed (test output is shown only for failing tests), so a failure can be replayed.
fn config(cases: u32) -> (u64, ProptestConfig) {
    let seed = seed();
    println!("model test seed: PROPTEST_RNG_SEED={seed}");
    let config = ProptestConfig {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    (seed, config)
}

fn seed() -> u64 {
    std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64
        })
}

#[test]
fn memory_store_matches_the_model() {
    let (seed, config) = config(200);
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&proptest::collection::vec(memory_op(), 50), |ops| {
        let clock = Arc::new(ManualClock::new());
        let store = MemoryLockStore::with_clock(clock.clone());
        let outcome = rt().block_on(run(&store, &ops, Time::Manual(&clock), MEMORY_TIMEOUTS));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
        Ok(())
    });
    if let Err(e) = result {
        panic!("model test failed (PROPTEST_RNG_SEED={seed}): {e}");
    }
}

/// The model itself, on hand-written steps: a checker that agreed with any store would be
/// worthless, so pin down the semantics it encodes.
#[test]
fn model_semantics() {
    let clock = Arc::new(ManualClock::new());
    let store = MemoryLockStore::with_clock(clock.clone());
    let ops = [
        // exclusive depth-infinity on /a, then a shared lock below it conflicts
        Op::Create {
            path: 1,
            slash: true,
            shared: false,
            infinity: true,
            principal: 1,
            timeout: 2,
            quota: None,
            owner: true,
        },
        Op::Create {
            path: 3,
            slash: false,
            shared: true,
            infinity: false,
            principal: 2,
            timeout: 4,
            quota: None,
            owner: false,
        },
        Op::Query {
            targets: vec![(0, true)],
        },
        // bob may not refresh alice's lock, even privileged; alice may, through a member
        Op::Refresh {
            token: 1,
            path: 2,
            principal: 2,
            privileged: true,
            timeout: 3,
        },
        Op::Refresh {
            token: 1,
            path: 2,
            principal: 1,
            privileged: false,
            timeout: 1,
        },
        // after 1 s the refreshed (Second-1) lock is dead: expiry at expires_at <= now
        Op::Advance { secs: 1 },
        Op::Get { token: 1 },
        Op::Create {
            path: 3,
            slash: false,
            shared: true,
            infinity: false,
            principal: 2,
            timeout: 4,
            quota: Some(1),
            owner: false,
        },
        Op::Create {
            path: 5,
            slash: false,
            shared: true,
            infinity: false,
            principal: 2,
            timeout: 4,
            quota: Some(1),
            owner: false,
        },
        Op::RemoveSubtree { path: 1 },
        Op::Query {
            targets: vec![(1, true), (5, false)],
        },
    ];
    rt().block_on(run(&store, &ops, Time::Manual(&clock), MEMORY_TIMEOUTS))
        .unwrap();
    assert_eq!(store.len(), 0);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_matches_the_model() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    let Some(url) = redis_env::redis_url() else {
        return;
    };
    const SEQUENCES: usize = 24;
    const STEPS: usize = 40;
    let seed = seed();
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = proptest::collection::vec(redis_op(), STEPS);
    let sequences: Vec<Vec<Op>> = (0..SEQUENCES)
        .map(|_| {
            let mut ops = strategy.new_tree(&mut runner).unwrap().current();
            // At most one real sleep per sequence.
            let mut slept = false;
            ops.retain(|op| {
                let short = matches!(op, Op::ExpireShort { .. });
                let keep = !(short && slept);
                slept |= short;
                keep
            });
            ops
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, ops) in sequences.into_iter().enumerate() {
        let url = url.clone();
        tasks.spawn(async move {
            let store = redis_env::store_with_prefix(&url, &redis_env::unique_prefix()).await;
            let outcome = run(&store, &ops, Time::Real, REDIS_TIMEOUTS).await;
            (i, ops, outcome)
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (i, ops, outcome) = done.expect("sequence task");
        if let Err(e) = outcome {
            failures.push(format!("sequence {i}: {e}\n  ops: {ops:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "Redis store differs from the model (PROPTEST_RNG_SEED={seed}):\n{}",
        failures.join("\n")
    );
}

/// The same model run as for the memory store, clock advances included, against Redis on a
/// `ManualClock` (`RedisLockStore::with_clock`): expiry is exact, not timed.
#[cfg(feature = "redis")]
#[test]
fn redis_store_on_a_manual_clock_matches_the_model() {
    let Some(url) = redis_env::redis_url() else {
        return;
    };
    let (seed, config) = config(48);
    let rt = rt();
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&proptest::collection::vec(memory_op(), 50), |ops| {
        // An hour ahead of real time: record TTLs (PEXPIREAT) follow this clock, so it must
        // never fall behind real time while the sequence runs. Redis keeps milliseconds, so
        // the clock starts on a whole millisecond (the sequences advance whole seconds).
        let ahead = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            + Duration::from_secs(3600);
        let start = SystemTime::UNIX_EPOCH + Duration::from_millis(ahead.as_millis() as u64);
        let clock = Arc::new(ManualClock::starting_at(start));
        let outcome = rt.block_on(async {
            let store = redis_env::store_with_prefix(&url, &redis_env::unique_prefix())
                .await
                .with_clock(clock.clone());
            run(&store, &ops, Time::Manual(&clock), MEMORY_TIMEOUTS).await
        });
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
        Ok(())
    });
    if let Err(e) = result {
        panic!("Redis (manual clock) differs from the model (PROPTEST_RNG_SEED={seed}): {e}");
    }
}
