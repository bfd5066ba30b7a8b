//! Several application instances, one truth: two independent layer stacks, each with its own
//! `RedisLockStore` (own connection, same key prefix) in front of its own service instance,
//! the two services sharing one resource map (shared storage). Needs a real Redis
//! (`REDIS_URL`; see `tests/common/redis.rs`).
#![cfg(feature = "redis")]

mod common;
#[path = "common/redis.rs"]
mod redis_env;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use common::{empty, req, send, Answer, Kv, LOCKINFO_EXCLUSIVE};
use http::{Request, StatusCode};
use tower::Layer;
use tower_locks::{
    LockLayer, LockQuery, LockService, LockStore, ManualClock, Principal, RedisLockStore,
    ResourcePath,
};

/// One application instance: its store (own connection), its service and the layer stack.
struct Instance {
    store: RedisLockStore,
    kv: Kv,
    svc: LockService<Kv>,
}

impl Instance {
    async fn send(&self, r: Request<Body>) -> Answer {
        send(self.svc.clone(), r).await
    }

    /// Every lock this instance's store sees at or below `path`.
    async fn locks_below(&self, path: &str) -> Vec<tower_locks::Lock> {
        let q = LockQuery::new().subtree(ResourcePath::parse(path).unwrap());
        self.store.query(&q).await.unwrap()
    }
}

/// Two instances on one namespace of the Redis at `REDIS_URL`; `None` when skipped. `files`
/// exist in the shared storage.
async fn two_instances(files: &[&str]) -> Option<(Instance, Instance)> {
    two_instances_on(files, None).await
}

/// [`two_instances`], both stores judging expiry by `clock` when given.
async fn two_instances_on(
    files: &[&str],
    clock: Option<Arc<ManualClock>>,
) -> Option<(Instance, Instance)> {
    let url = redis_env::redis_url()?;
    let prefix = redis_env::unique_prefix();
    let kv_a = Kv::with_files(files);
    let kv_b = kv_a.sharing_files();
    let mut out = Vec::new();
    for kv in [kv_a, kv_b] {
        let mut store = redis_env::store_with_prefix(&url, &prefix).await;
        if let Some(clock) = &clock {
            store = store.with_clock(clock.clone());
        }
        // One lock policy everywhere, with a 1 s minimum so the expiry test need not wait.
        let layer = LockLayer::new(store.clone())
            .lock_timeouts(
                Duration::from_secs(600),
                Duration::from_secs(1),
                Duration::from_secs(3600),
            )
            .resource_space(kv.clone());
        out.push(Instance {
            store,
            svc: layer.layer(kv.clone()),
            kv,
        });
    }
    let b = out.pop().unwrap();
    let a = out.pop().unwrap();
    Some((a, b))
}

fn as_user(mut r: Request<Body>, user: &str) -> Request<Body> {
    r.extensions_mut().insert(Principal::new(user));
    r
}

fn lock_req(path: &str, user: &str, timeout: Option<&str>) -> Request<Body> {
    let mut b = req("LOCK", path)
        .header("content-type", "application/xml")
        .header("depth", "0");
    if let Some(t) = timeout {
        b = b.header("timeout", t);
    }
    as_user(b.body(Body::from(LOCKINFO_EXCLUSIVE)).unwrap(), user)
}

fn put(path: &str, user: &str, token: Option<&str>) -> Request<Body> {
    let mut b = req("PUT", path);
    if let Some(t) = token {
        b = b.header("if", format!("(<{t}>)"));
    }
    as_user(b.body(Body::from("new content")).unwrap(), user)
}

fn unlock(path: &str, user: &str, token: &str) -> Request<Body> {
    as_user(
        empty(req("UNLOCK", path).header("lock-token", format!("<{token}>"))),
        user,
    )
}

/// The token of a granted LOCK.
fn token_of(a: &Answer) -> String {
    let header = a
        .headers
        .get("lock-token")
        .unwrap_or_else(|| panic!("no Lock-Token in {} {}", a.status, a.text()));
    header
        .to_str()
        .unwrap()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

fn puts(kv: &Kv) -> usize {
    kv.forwarded().iter().filter(|s| s.method == "PUT").count()
}

macro_rules! instances_or_skip {
    ($files:expr) => {
        match two_instances($files).await {
            Some(pair) => pair,
            None => return,
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_taken_through_one_instance_binds_the_other() {
    let (a, b) = instances_or_skip!(&["/docs/report"]);

    let granted = a.send(lock_req("/docs/report", "ann", None)).await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text());
    let token = token_of(&granted);

    // B has never seen this lock, yet refuses a write without the token...
    let refused = b.send(put("/docs/report", "ann", None)).await;
    assert_eq!(refused.status, StatusCode::LOCKED, "{}", refused.text());
    assert_eq!(
        refused.error_hrefs("lock-token-submitted"),
        ["/docs/report"]
    );
    assert!(b.kv.forwarded().is_empty(), "B forwarded a refused write");
    // ...also from another principal holding the token (RFC 4918 §6.4)...
    let stolen = b.send(put("/docs/report", "bob", Some(&token))).await;
    assert_eq!(stolen.status, StatusCode::LOCKED, "{}", stolen.text());
    assert!(b.kv.forwarded().is_empty(), "B forwarded a refused write");
    // ...and a second LOCK through B conflicts.
    let second = b.send(lock_req("/docs/report", "bob", None)).await;
    assert_eq!(second.status, StatusCode::LOCKED, "{}", second.text());

    // The owner's write with the token passes through B.
    let ok = b.send(put("/docs/report", "ann", Some(&token))).await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.text());
    assert_eq!(puts(&b.kv), 1);
    assert_eq!(
        b.kv.files.lock().unwrap()["/docs/report"].0,
        "new content".as_bytes()
    );

    // Unlocked through B, the lock is gone for A too.
    let unlocked = b.send(unlock("/docs/report", "ann", &token)).await;
    assert_eq!(
        unlocked.status,
        StatusCode::NO_CONTENT,
        "{}",
        unlocked.text()
    );
    let free = a.send(put("/docs/report", "bob", None)).await;
    assert_eq!(free.status, StatusCode::NO_CONTENT, "{}", free.text());
    assert!(a.locks_below("/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_lock_requests_have_exactly_one_winner() {
    const ROUNDS: usize = 1000;
    let (a, b) = instances_or_skip!(&["/race"]);
    let started = Instant::now();
    let (mut won_a, mut won_b) = (0, 0);
    for round in 0..ROUNDS {
        let (sa, sb) = (a.svc.clone(), b.svc.clone());
        let ta = tokio::spawn(send(sa, lock_req("/race", "ann", None)));
        let tb = tokio::spawn(send(sb, lock_req("/race", "bob", None)));
        let (ra, rb) = tokio::join!(ta, tb);
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let winner = match (ra.status, rb.status) {
            (StatusCode::OK, StatusCode::LOCKED) => {
                won_a += 1;
                (&ra, "ann")
            }
            (StatusCode::LOCKED, StatusCode::OK) => {
                won_b += 1;
                (&rb, "bob")
            }
            other => panic!(
                "round {round}: expected exactly one winner and one 423, got {other:?}\nA: {}\nB: {}",
                ra.text(),
                rb.text()
            ),
        };
        let token = token_of(winner.0);
        // Unlock through the other instance than the one that granted it, half the time.
        let via = if round % 2 == 0 { &a } else { &b };
        let u = via.send(unlock("/race", winner.1, &token)).await;
        assert_eq!(
            u.status,
            StatusCode::NO_CONTENT,
            "round {round}: {}",
            u.text()
        );
    }
    eprintln!(
        "{ROUNDS} rounds in {:?}: A won {won_a}, B won {won_b}",
        started.elapsed()
    );
    assert_eq!(won_a + won_b, ROUNDS);
    assert!(a.locks_below("/").await.is_empty());
    assert!(b.locks_below("/").await.is_empty());
    // No LOCK ever reached the inner services (the resource exists: no creating PUT either).
    assert!(a.kv.forwarded().is_empty() && b.kv.forwarded().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_is_seen_by_both_instances() {
    let clock = Arc::new(ManualClock::new());
    let Some((a, b)) = two_instances_on(&["/short"], Some(clock.clone())).await else {
        return;
    };
    // Expiry by the shared clock, not real time: a lock long enough that no Redis TTL fires.
    let granted = a.send(lock_req("/short", "ann", Some("Second-600"))).await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text());
    assert!(granted.text().contains("Second-600"), "{}", granted.text());
    let token = token_of(&granted);
    let refused = b.send(put("/short", "bob", None)).await;
    assert_eq!(refused.status, StatusCode::LOCKED, "{}", refused.text());

    clock.advance(Duration::from_secs(601));
    // Both instances agree the lock is gone: writes without a token pass on both...
    let via_b = b.send(put("/short", "bob", None)).await;
    assert_eq!(via_b.status, StatusCode::NO_CONTENT, "{}", via_b.text());
    let via_a = a.send(put("/short", "carol", None)).await;
    assert_eq!(via_a.status, StatusCode::NO_CONTENT, "{}", via_a.text());
    // ...both stores forgot it, and refreshing it through either fails.
    assert_eq!(a.store.get(&token).await.unwrap(), None);
    assert_eq!(b.store.get(&token).await.unwrap(), None);
    assert!(a.locks_below("/").await.is_empty());
    let refresh = as_user(
        empty(
            req("LOCK", "/short")
                .header("if", format!("(<{token}>)"))
                .header("timeout", "Second-60"),
        ),
        "ann",
    );
    let refreshed = b.send(refresh).await;
    assert_eq!(
        refreshed.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        refreshed.text()
    );
    // A new exclusive lock is granted through B.
    let again = b.send(lock_req("/short", "bob", None)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_through_one_instance_cleans_up_locks_for_both() {
    let (a, b) = instances_or_skip!(&["/dir/x", "/dir/y", "/dir/sub/z", "/dirty"]);

    // Locks on members, taken through either instance by the same principal.
    let la = a.send(lock_req("/dir/x", "ann", None)).await;
    assert_eq!(la.status, StatusCode::OK, "{}", la.text());
    let lb = b.send(lock_req("/dir/sub/z", "ann", None)).await;
    assert_eq!(lb.status, StatusCode::OK, "{}", lb.text());
    // A neighbour whose name starts with the directory's keeps its lock.
    let ln = b.send(lock_req("/dirty", "ann", None)).await;
    assert_eq!(ln.status, StatusCode::OK, "{}", ln.text());
    let (ta, tb, tn) = (token_of(&la), token_of(&lb), token_of(&ln));
    assert_eq!(a.locks_below("/dir").await.len(), 2);

    // Without the tokens: 423 naming both lock roots, nothing deleted, nothing forwarded.
    let refused = b.send(as_user(empty(req("DELETE", "/dir/")), "ann")).await;
    assert_eq!(refused.status, StatusCode::LOCKED, "{}", refused.text());
    assert_eq!(
        refused.error_hrefs("lock-token-submitted"),
        ["/dir/sub/z", "/dir/x"]
    );
    assert!(b.kv.forwarded().is_empty());

    // With both tokens, through B: deleted, and the locks at or below /dir are gone for both.
    let delete = as_user(
        empty(
            req("DELETE", "/dir/").header("if", format!("</dir/x> (<{ta}>) </dir/sub/z> (<{tb}>)")),
        ),
        "ann",
    );
    let deleted = b.send(delete).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    assert!(!b.kv.exists("/dir/x") && !a.kv.exists("/dir/sub/z"));
    assert!(a.locks_below("/dir").await.is_empty());
    assert!(b.locks_below("/dir").await.is_empty());
    assert_eq!(a.store.get(&ta).await.unwrap(), None);
    assert_eq!(a.store.get(&tb).await.unwrap(), None);
    assert!(a.store.get(&tn).await.unwrap().is_some());

    // The other instance can now write and lock there without any token.
    let write = a.send(put("/dir/x", "bob", None)).await;
    assert_eq!(write.status, StatusCode::CREATED, "{}", write.text());
    let relock = a.send(lock_req("/dir/sub/z", "bob", None)).await;
    assert_eq!(relock.status, StatusCode::CREATED, "{}", relock.text());
    let still = a.send(put("/dirty", "bob", None)).await;
    assert_eq!(still.status, StatusCode::LOCKED, "{}", still.text());
}
