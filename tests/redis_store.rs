//! `RedisLockStore` against a real Redis (`REDIS_URL`; see `tests/common/redis.rs`).
//!
//! Every test builds its store with `fresh_store()` (a unique key prefix), so the tests run in
//! parallel on one server. The conformance kit (feature `conformance`) plugs in the same way:
//! hand it `fresh_store` as the store factory.
#![cfg(feature = "redis")]

#[path = "common/redis.rs"]
mod redis_env;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use redis_env::{fresh_store, raw_connection, redis_url, store_with_prefix, unique_prefix};
use tower_locks::{
    CreateOutcome, Lock, LockDepth, LockQuery, LockScope, LockStore, LockStoreError, LockTimeout,
    MemoryLockStore, NewLock, RedisLockStore, ResourcePath, TokenAccess, TokenOutcome,
};

fn p(s: &str) -> ResourcePath {
    ResourcePath::parse(s).unwrap()
}

fn excl(path: &str) -> NewLock {
    NewLock::new(p(path))
}

fn shared(path: &str) -> NewLock {
    NewLock::new(p(path)).scope(LockScope::Shared)
}

async fn granted(store: &impl LockStore, lock: NewLock) -> Lock {
    match store.create(lock.clone()).await.unwrap() {
        CreateOutcome::Created(l) => l,
        other => panic!("expected {lock:?} to be granted, got {other:?}"),
    }
}

async fn conflicts(store: &impl LockStore, lock: NewLock) -> BTreeSet<String> {
    match store.create(lock.clone()).await.unwrap() {
        CreateOutcome::Conflict(ls) => ls.into_iter().map(|l| l.token.to_string()).collect(),
        other => panic!("expected {lock:?} to conflict, got {other:?}"),
    }
}

fn tokens(locks: &[Lock]) -> BTreeSet<String> {
    locks.iter().map(|l| l.token.to_string()).collect()
}

fn set(ts: &[&Lock]) -> BTreeSet<String> {
    ts.iter().map(|l| l.token.to_string()).collect()
}

macro_rules! store_or_skip {
    () => {
        match fresh_store().await {
            Some(s) => s,
            None => return,
        }
    };
}

#[tokio::test]
async fn create_get_query_roundtrip() {
    let store = store_or_skip!();
    let req = excl("/docs/report.txt")
        .owner("<D:href>mailto:ann@example.com</D:href>")
        .principal("ann")
        .timeout(LockTimeout::Seconds(120));
    let lock = granted(&store, req.clone()).await;
    assert_eq!(lock.token, req.token);
    assert_eq!(lock.root, req.root);
    assert_eq!(lock.owner, req.owner);
    assert_eq!(lock.principal.as_deref(), Some("ann"));
    assert_eq!(lock.timeout, LockTimeout::Seconds(120));
    let left = lock
        .expires_at
        .unwrap()
        .duration_since(std::time::SystemTime::now());
    let left = left.unwrap_or_default();
    assert!(
        left > Duration::from_secs(110) && left <= Duration::from_secs(121),
        "{left:?}"
    );
    assert_eq!(store.get(&lock.token).await.unwrap(), Some(lock.clone()));
    assert_eq!(store.get("urn:uuid:nope").await.unwrap(), None);
    assert_eq!(store.get("weird token with spaces {}").await.unwrap(), None);
    let found = store
        .query(&LockQuery::new().covering(p("/docs/report.txt")))
        .await
        .unwrap();
    assert_eq!(found, vec![lock.clone()]);
    assert!(store.query(&LockQuery::new()).await.unwrap().is_empty());
    assert!(store
        .query(&LockQuery::new().covering(p("/docs")))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .query(&LockQuery::new().subtree(p("/docs")))
            .await
            .unwrap(),
        vec![lock]
    );
}

#[tokio::test]
async fn unicode_owner_and_escaping_survive() {
    let store = store_or_skip!();
    let owner = "<D:href>caf\u{e9} \"quoted\" \\ / \u{1F512}\n\t</D:href>";
    let lock = granted(
        &store,
        excl("/caf\u{e9}/a%2Fb/")
            .owner(owner)
            .principal("p \"x\" {y}"),
    )
    .await;
    let got = store.get(&lock.token).await.unwrap().unwrap();
    assert_eq!(got.owner.as_deref(), Some(owner));
    assert_eq!(got.principal.as_deref(), Some("p \"x\" {y}"));
    assert_eq!(got.root.href(), "/caf%C3%A9/a%2Fb/");
    assert_eq!(got, lock);
}

#[tokio::test]
async fn ancestors_conflict_only_with_depth_infinity() {
    let store = store_or_skip!();
    let deep = granted(&store, excl("/a").depth(LockDepth::Infinity)).await;
    let flat = granted(&store, excl("/x")).await;
    assert_eq!(conflicts(&store, excl("/a/b/c")).await, set(&[&deep]));
    assert_eq!(conflicts(&store, excl("/a")).await, set(&[&deep]));
    assert_eq!(conflicts(&store, shared("/a/b")).await, set(&[&deep]));
    // depth 0 on /x does not cover /x/y
    granted(&store, excl("/x/y")).await;
    assert_eq!(conflicts(&store, excl("/x")).await, set(&[&flat]));
    let q = store
        .query(&LockQuery::new().covering(p("/a/b/c")))
        .await
        .unwrap();
    assert_eq!(q, vec![deep]);
}

#[tokio::test]
async fn depth_infinity_requests_see_descendants() {
    let store = store_or_skip!();
    let c1 = granted(&store, excl("/a/b/c")).await;
    let c2 = granted(&store, shared("/a/d")).await;
    let _sibling = granted(&store, excl("/ab")).await;
    let _sibling2 = granted(&store, excl("/a-b/c")).await;
    // depth 0 on /a ignores descendants
    let zero = granted(&store, shared("/a")).await;
    assert_eq!(
        conflicts(&store, excl("/a").depth(LockDepth::Infinity)).await,
        set(&[&c1, &c2, &zero])
    );
    // shared + shared descendants are compatible; the exclusive one conflicts
    assert_eq!(
        conflicts(&store, shared("/a").depth(LockDepth::Infinity)).await,
        set(&[&c1])
    );
    store
        .unlock(TokenAccess::new(&c1.token, &c1.root, None))
        .await
        .unwrap();
    let inf = granted(&store, shared("/a").depth(LockDepth::Infinity)).await;
    let q = store
        .query(&LockQuery::new().subtree(p("/a")))
        .await
        .unwrap();
    assert_eq!(tokens(&q), set(&[&c2, &zero, &inf]));
}

#[tokio::test]
async fn shared_and_exclusive() {
    let store = store_or_skip!();
    let s1 = granted(&store, shared("/f")).await;
    let s2 = granted(&store, shared("/f")).await;
    assert_eq!(conflicts(&store, excl("/f")).await, set(&[&s1, &s2]));
    let store2 = store_or_skip!();
    let e = granted(&store2, excl("/f")).await;
    assert_eq!(conflicts(&store2, shared("/f")).await, set(&[&e]));
    assert_eq!(conflicts(&store2, excl("/f")).await, set(&[&e]));
}

#[tokio::test]
async fn trailing_slash_is_the_same_resource() {
    let store = store_or_skip!();
    let coll = granted(&store, excl("/coll/")).await;
    assert_eq!(coll.root.href(), "/coll/");
    assert_eq!(conflicts(&store, excl("/coll")).await, set(&[&coll]));
    let got = store.get(&coll.token).await.unwrap().unwrap();
    assert_eq!(got.root.href(), "/coll/");
    let q = store
        .query(&LockQuery::new().covering(p("/coll")))
        .await
        .unwrap();
    assert_eq!(q, vec![coll.clone()]);
    let out = store
        .unlock(TokenAccess::new(&coll.token, &p("/coll"), None))
        .await
        .unwrap();
    assert_eq!(out, TokenOutcome::Done(coll));
}

#[tokio::test]
async fn segment_boundaries_and_root() {
    let store = store_or_skip!();
    let a = granted(&store, excl("/a").depth(LockDepth::Infinity)).await;
    let ab = granted(&store, excl("/ab")).await;
    let adash = granted(&store, excl("/a-b")).await;
    let a0 = granted(&store, excl("/a0")).await;
    let bang = granted(&store, excl("/a!")).await;
    // /a's subtree is neither /ab, /a-b, /a0 nor /a!
    let q = store
        .query(&LockQuery::new().subtree(p("/a")))
        .await
        .unwrap();
    assert_eq!(q, vec![a.clone()]);
    assert!(store
        .query(&LockQuery::new().covering(p("/ab")))
        .await
        .unwrap()
        .iter()
        .all(|l| l.token == ab.token));
    // the root: a depth-infinity request conflicts with everything
    let all = set(&[&a, &ab, &adash, &a0, &bang]);
    assert_eq!(
        conflicts(&store, excl("/").depth(LockDepth::Infinity)).await,
        all
    );
    let everything = store
        .query(&LockQuery::new().subtree(p("/")))
        .await
        .unwrap();
    assert_eq!(tokens(&everything), all);
    // a depth-0 lock on the root only conflicts with root locks
    let root = granted(&store, excl("/")).await;
    assert_eq!(conflicts(&store, shared("/")).await, set(&[&root]));
    assert!(store
        .query(&LockQuery::new().covering(p("/zzz")))
        .await
        .unwrap()
        .is_empty());
    let q = store
        .query(&LockQuery::new().covering(p("/")))
        .await
        .unwrap();
    assert_eq!(q, vec![root.clone()]);
    // a depth-infinity root lock covers everything
    assert_eq!(store.remove_subtree(&p("/")).await.unwrap(), 6);
    let top = granted(&store, shared("/").depth(LockDepth::Infinity)).await;
    assert_eq!(conflicts(&store, excl("/q/r/s")).await, set(&[&top]));
    granted(&store, shared("/q/r/s")).await;
}

#[tokio::test]
async fn refresh_outcomes() {
    let store = store_or_skip!();
    let lock = granted(
        &store,
        excl("/r")
            .depth(LockDepth::Infinity)
            .principal("ann")
            .timeout(LockTimeout::Seconds(30)),
    )
    .await;
    let root = p("/r");
    let below = p("/r/x");
    let outside = p("/s");
    let t = lock.token.as_str();
    assert_eq!(
        store
            .refresh(
                TokenAccess::new("urn:uuid:none", &root, Some("ann")),
                LockTimeout::Seconds(9)
            )
            .await
            .unwrap(),
        TokenOutcome::NotFound
    );
    assert_eq!(
        store
            .refresh(
                TokenAccess::new(t, &outside, Some("ann")),
                LockTimeout::Seconds(9)
            )
            .await
            .unwrap(),
        TokenOutcome::OutOfScope(lock.clone())
    );
    assert_eq!(
        store
            .refresh(
                TokenAccess::new(t, &root, Some("bob")),
                LockTimeout::Seconds(9)
            )
            .await
            .unwrap(),
        TokenOutcome::Forbidden(lock.clone())
    );
    // refresh ignores `privileged`, like the reference store
    let mut admin = TokenAccess::new(t, &root, Some("bob"));
    admin.privileged = true;
    assert_eq!(
        store.refresh(admin, LockTimeout::Seconds(9)).await.unwrap(),
        TokenOutcome::Forbidden(lock.clone())
    );
    let TokenOutcome::Done(r) = store
        .refresh(
            TokenAccess::new(t, &below, Some("ann")),
            LockTimeout::Seconds(3000),
        )
        .await
        .unwrap()
    else {
        panic!("refresh through a covered path must succeed")
    };
    assert_eq!(r.timeout, LockTimeout::Seconds(3000));
    assert!(r.expires_at.unwrap() > lock.expires_at.unwrap());
    assert_eq!(
        (r.fence, &r.root, r.scope, r.depth),
        (lock.fence, &lock.root, lock.scope, lock.depth)
    );
    assert_eq!(store.get(t).await.unwrap(), Some(r.clone()));
    // to infinite and back
    let TokenOutcome::Done(inf) = store
        .refresh(
            TokenAccess::new(t, &root, Some("ann")),
            LockTimeout::Infinite,
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!((inf.timeout, inf.expires_at), (LockTimeout::Infinite, None));
    assert_eq!(store.get(t).await.unwrap(), Some(inf));
    let TokenOutcome::Done(back) = store
        .refresh(
            TokenAccess::new(t, &root, Some("ann")),
            LockTimeout::Seconds(5),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(back.timeout, LockTimeout::Seconds(5));
    assert!(back.expires_at.is_some());
}

#[tokio::test]
async fn unlock_outcomes() {
    let store = store_or_skip!();
    let lock = granted(&store, excl("/u").principal("ann")).await;
    let anon = granted(&store, excl("/v")).await;
    let t = lock.token.as_str();
    assert_eq!(
        store
            .unlock(TokenAccess::new(t, &p("/u/x"), Some("ann")))
            .await
            .unwrap(),
        TokenOutcome::OutOfScope(lock.clone()),
        "depth 0 does not cover a member"
    );
    assert_eq!(
        store
            .unlock(TokenAccess::new(t, &p("/u"), None))
            .await
            .unwrap(),
        TokenOutcome::Forbidden(lock.clone())
    );
    assert_eq!(
        store
            .unlock(TokenAccess::new(t, &p("/u"), Some("bob")))
            .await
            .unwrap(),
        TokenOutcome::Forbidden(lock.clone())
    );
    // a lock without a principal may be removed by anyone with its token
    assert_eq!(
        store
            .unlock(TokenAccess::new(&anon.token, &p("/v"), Some("bob")))
            .await
            .unwrap(),
        TokenOutcome::Done(anon.clone())
    );
    let u = p("/u");
    let mut admin = TokenAccess::new(t, &u, Some("bob"));
    admin.privileged = true;
    assert_eq!(
        store.unlock(admin).await.unwrap(),
        TokenOutcome::Done(lock.clone())
    );
    assert_eq!(
        store
            .unlock(TokenAccess::new(t, &p("/u"), Some("ann")))
            .await
            .unwrap(),
        TokenOutcome::NotFound
    );
    assert_eq!(store.get(t).await.unwrap(), None);
    granted(&store, excl("/u")).await;
}

#[tokio::test]
async fn remove_subtree_counts_and_spares_siblings() {
    let store = store_or_skip!();
    for path in ["/t", "/t/a", "/t/a/b", "/t/c"] {
        granted(&store, shared(path)).await;
    }
    let sib = granted(&store, shared("/tt")).await;
    let sib2 = granted(&store, shared("/t-x")).await;
    let up = granted(&store, shared("/").depth(LockDepth::Infinity)).await;
    assert_eq!(store.remove_subtree(&p("/t/a")).await.unwrap(), 2);
    assert_eq!(store.remove_subtree(&p("/t/")).await.unwrap(), 2);
    assert_eq!(store.remove_subtree(&p("/t")).await.unwrap(), 0);
    let left = store
        .query(&LockQuery::new().subtree(p("/")))
        .await
        .unwrap();
    assert_eq!(tokens(&left), set(&[&sib, &sib2, &up]));
    assert_eq!(store.remove_subtree(&p("/")).await.unwrap(), 3);
    assert!(store
        .query(&LockQuery::new().subtree(p("/")))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn principal_quota() {
    let store = store_or_skip!();
    let a = granted(&store, excl("/q1").principal("ann").principal_quota(2)).await;
    granted(&store, excl("/q2").principal("ann").principal_quota(2)).await;
    assert_eq!(
        store
            .create(excl("/q3").principal("ann").principal_quota(2))
            .await
            .unwrap(),
        CreateOutcome::QuotaExceeded {
            quota: tower_locks::Quota::Principal,
            limit: 2
        }
    );
    // other principals and requests without a quota are not limited
    granted(&store, excl("/q3").principal("bob").principal_quota(2)).await;
    granted(&store, excl("/q4").principal("ann")).await;
    // a conflict is reported before the quota
    assert!(matches!(
        store
            .create(excl("/q1").principal("ann").principal_quota(1))
            .await
            .unwrap(),
        CreateOutcome::Conflict(_)
    ));
    store
        .unlock(TokenAccess::new(&a.token, &a.root, Some("ann")))
        .await
        .unwrap();
    // ann now holds /q2 and /q4
    assert_eq!(
        store
            .create(excl("/q5").principal("ann").principal_quota(2))
            .await
            .unwrap(),
        CreateOutcome::QuotaExceeded {
            quota: tower_locks::Quota::Principal,
            limit: 2
        }
    );
    granted(&store, excl("/q5").principal("ann").principal_quota(3)).await;
}

fn quota(quota: tower_locks::Quota, limit: u32) -> CreateOutcome {
    CreateOutcome::QuotaExceeded { quota, limit }
}

#[tokio::test]
async fn anonymous_locks_share_one_quota() {
    let store = store_or_skip!();
    let anon = |path: &str| excl(path).principal_quota(2);
    granted(&store, anon("/a1")).await;
    let second = granted(&store, anon("/a2")).await;
    assert_eq!(
        store.create(anon("/a3")).await.unwrap(),
        quota(tower_locks::Quota::Anonymous, 2)
    );
    // a principal has a bucket of its own
    granted(&store, excl("/a3").principal("ann").principal_quota(2)).await;
    // a conflict is reported before the quota
    assert!(matches!(
        store.create(anon("/a1")).await.unwrap(),
        CreateOutcome::Conflict(_)
    ));
    store
        .unlock(TokenAccess::new(&second.token, &second.root, None))
        .await
        .unwrap();
    granted(&store, anon("/a4")).await;
}

#[tokio::test]
async fn resource_quota_counts_the_locks_rooted_at_a_path() {
    let store = store_or_skip!();
    let on = |path: &str| shared(path).resource_quota(2);
    granted(&store, on("/r")).await;
    let second = granted(&store, on("/r/").depth(LockDepth::Infinity)).await;
    assert_eq!(
        store.create(on("/r")).await.unwrap(),
        quota(tower_locks::Quota::Resource, 2)
    );
    // locks below or above the path are other resources
    granted(&store, on("/r/x")).await;
    granted(&store, on("/")).await;
    // an exclusive request still reports the conflict, not the quota
    assert!(matches!(
        store.create(excl("/r").resource_quota(2)).await.unwrap(),
        CreateOutcome::Conflict(_)
    ));
    store
        .unlock(TokenAccess::new(&second.token, &second.root, None))
        .await
        .unwrap();
    granted(&store, on("/r")).await;
}

#[tokio::test]
async fn store_quota_counts_every_live_lock() {
    let store = store_or_skip!();
    let on = |path: &str| excl(path).store_quota(3);
    granted(&store, on("/s1")).await;
    granted(
        &store,
        excl("/s2").principal("ann").timeout(LockTimeout::Infinite),
    )
    .await;
    let third = granted(&store, on("/s3/x").depth(LockDepth::Infinity)).await;
    assert_eq!(
        store.create(on("/s4")).await.unwrap(),
        quota(tower_locks::Quota::Store, 3)
    );
    assert!(matches!(
        store.create(on("/s1")).await.unwrap(),
        CreateOutcome::Conflict(_)
    ));
    granted(&store, excl("/s4").store_quota(4)).await;
    store.remove_subtree(&p("/s3")).await.unwrap();
    let _ = third;
    granted(&store, excl("/s5").store_quota(4)).await;
}

#[tokio::test]
async fn expired_locks_do_not_count_against_quotas() {
    let store = store_or_skip!();
    let brief = |path: &str| shared(path).timeout(LockTimeout::Seconds(1));
    granted(&store, brief("/x").principal("ann")).await;
    granted(&store, brief("/x")).await;
    granted(&store, brief("/y")).await;
    let all = |path: &str| {
        shared(path)
            .principal_quota(1)
            .resource_quota(2)
            .store_quota(3)
    };
    assert_eq!(
        store.create(all("/x").principal("ann")).await.unwrap(),
        quota(tower_locks::Quota::Principal, 1)
    );
    assert_eq!(
        store.create(all("/x").principal_quota(3)).await.unwrap(),
        quota(tower_locks::Quota::Resource, 2)
    );
    assert_eq!(
        store
            .create(all("/z").principal_quota(3).principal("bob"))
            .await
            .unwrap(),
        quota(tower_locks::Quota::Store, 3)
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // nothing has swept the expired locks yet: they must not count all the same
    granted(&store, all("/x").principal("ann")).await;
    granted(&store, all("/x")).await;
    granted(&store, all("/v").principal("bob")).await;
    assert_eq!(
        store.create(all("/w").principal("cy")).await.unwrap(),
        quota(tower_locks::Quota::Store, 3)
    );
}

#[tokio::test]
async fn fencing_numbers_increase() {
    let store = store_or_skip!();
    let mut last = 0;
    for i in 0..20 {
        let l = granted(&store, excl(&format!("/fence/{i}"))).await;
        assert!(l.fence > last, "{} after {last}", l.fence);
        last = l.fence;
        if i % 3 == 0 {
            store
                .unlock(TokenAccess::new(&l.token, &l.root, None))
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn query_reports_each_lock_once() {
    let store = store_or_skip!();
    let top = granted(&store, shared("/m").depth(LockDepth::Infinity)).await;
    let mid = granted(&store, shared("/m/n").depth(LockDepth::Infinity)).await;
    let leaf = granted(&store, shared("/m/n/o")).await;
    let mut q = LockQuery::new()
        .covering(p("/m/n/o"))
        .subtree(p("/m"))
        .covering(p("/m/n"))
        .subtree(p("/m/n/"));
    q.push(p("/m/n/o/p"), true);
    let found = store.query(&q).await.unwrap();
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(tokens(&found), set(&[&top, &mid, &leaf]));
}

#[tokio::test]
async fn duplicate_token_is_refused() {
    let store = store_or_skip!();
    let req = excl("/dup");
    granted(&store, req.clone()).await;
    let again = store.create(req.root(p("/other"))).await;
    assert!(
        matches!(again, Err(LockStoreError::Backend(_))),
        "{again:?}"
    );
}

trait WithRoot {
    fn root(self, root: ResourcePath) -> Self;
}
impl WithRoot for NewLock {
    fn root(mut self, root: ResourcePath) -> Self {
        self.root = root;
        self
    }
}

#[tokio::test]
async fn corrupt_records_are_reported() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let store = store_with_prefix(&url, &prefix).await;
    let lock = granted(&store, excl("/c")).await;
    let mut raw = raw_connection(&url).await;
    // the record lives in its token's key (see the store's key layout)
    let key = format!("{{{prefix}}}:lock:{}", lock.token);
    let record: String = raw.get(&key).await.unwrap();
    assert!(record.contains(" /c exclusive "), "{record}");
    let _: () = raw
        .set(&key, record.replace(" exclusive ", " sideways "))
        .await
        .unwrap();
    assert!(matches!(
        store.get(&lock.token).await,
        Err(LockStoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.query(&LockQuery::new().covering(p("/c"))).await,
        Err(LockStoreError::Corrupt(_))
    ));
    // fail closed: a corrupt record still blocks
    assert!(matches!(
        store.create(excl("/c")).await,
        Err(LockStoreError::Corrupt(_))
    ));
    assert!(matches!(
        store
            .unlock(TokenAccess::new(&lock.token, &p("/c"), None))
            .await,
        Err(LockStoreError::Corrupt(_))
    ));
    let _: () = raw
        .set(&key, record.replace("2:/c-", "5:/../x-"))
        .await
        .unwrap();
    assert!(matches!(
        store.get(&lock.token).await,
        Err(LockStoreError::Corrupt(_))
    ));
    // a record that lost its path (or does not parse at all) is reported, not skipped
    let _: () = raw.set(&key, record.replace(" /c ", " - ")).await.unwrap();
    assert!(matches!(
        store.query(&LockQuery::new().covering(p("/c"))).await,
        Err(LockStoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.create(excl("/c")).await,
        Err(LockStoreError::Corrupt(_))
    ));
    let _: () = raw.set(&key, "garbage").await.unwrap();
    assert!(matches!(
        store.query(&LockQuery::new().covering(p("/c"))).await,
        Err(LockStoreError::Corrupt(_))
    ));
    // a record rooted elsewhere than its index entry says is reported too
    let other = granted(&store, excl("/d")).await;
    let moved: String = raw
        .get(format!("{{{prefix}}}:lock:{}", other.token))
        .await
        .unwrap();
    let _: () = raw
        .set(&key, moved.replace(&*other.token, &lock.token))
        .await
        .unwrap();
    assert!(matches!(
        store.query(&LockQuery::new().covering(p("/c"))).await,
        Err(LockStoreError::Corrupt(_))
    ));
    // remove_subtree removes what it cannot read as well
    store.remove_subtree(&p("/c")).await.unwrap();
    granted(&store, excl("/c")).await;
    // index members naming no kind of root key are passed over (they never become key names:
    // here they would name the record of a lock whose token is "/t")
    let mut odd = excl("/e");
    odd.token = "/t".into();
    granted(&store, odd).await;
    let _: () = raw
        .zadd(format!("{{{prefix}}}:locks"), "3:abc lock /t -", 1)
        .await
        .unwrap();
    let _: () = raw
        .zadd(format!("{{{prefix}}}:xtree"), "/t lock x", 0)
        .await
        .unwrap();
    assert_eq!(
        tokens(
            &store
                .query(&LockQuery::new().subtree(p("/")))
                .await
                .unwrap()
        )
        .len(),
        3
    );
    assert_eq!(store.remove_subtree(&p("/")).await.unwrap(), 3);
}

#[tokio::test]
async fn locks_expire_with_real_ttls() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let store = store_with_prefix(&url, &prefix).await;
    let short = granted(
        &store,
        excl("/e")
            .depth(LockDepth::Infinity)
            .principal("ann")
            .timeout(LockTimeout::Seconds(1)),
    )
    .await;
    let long = granted(&store, excl("/keep").timeout(LockTimeout::Seconds(60))).await;
    assert!(matches!(
        store.create(excl("/e/x")).await.unwrap(),
        CreateOutcome::Conflict(_)
    ));
    let mut raw = raw_connection(&url).await;
    let pttl: i64 = raw
        .pttl(format!("{{{prefix}}}:lock:{}", short.token))
        .await
        .unwrap();
    assert!(
        pttl > 0 && pttl <= 1000,
        "record carries a Redis TTL: {pttl}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(store.get(&short.token).await.unwrap(), None);
    assert_eq!(
        store
            .query(&LockQuery::new().subtree(p("/")))
            .await
            .unwrap(),
        vec![long.clone()]
    );
    assert_eq!(
        store
            .refresh(
                TokenAccess::new(&short.token, &p("/e"), Some("ann")),
                LockTimeout::Seconds(5)
            )
            .await
            .unwrap(),
        TokenOutcome::NotFound
    );
    assert_eq!(
        store
            .unlock(TokenAccess::new(&short.token, &p("/e"), Some("ann")))
            .await
            .unwrap(),
        TokenOutcome::NotFound
    );
    granted(&store, excl("/e/x").principal("ann").principal_quota(1)).await;
    // Second-0 is granted but dead at once
    let zero = granted(&store, excl("/z").timeout(LockTimeout::Seconds(0))).await;
    assert_eq!(store.get(&zero.token).await.unwrap(), None);
    granted(&store, excl("/z")).await;
    // a refreshed lock outlives its first timeout
    let r = granted(&store, excl("/r").timeout(LockTimeout::Seconds(1))).await;
    // Refreshed at once (no sleep racing the first timeout), to a timeout far past the check.
    let out = store
        .refresh(
            TokenAccess::new(&r.token, &p("/r"), None),
            LockTimeout::Seconds(5),
        )
        .await
        .unwrap();
    assert!(matches!(out, TokenOutcome::Done(_)));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(store.get(&r.token).await.unwrap().is_some());
}

async fn zcard(raw: &mut redis::aio::MultiplexedConnection, key: &str) -> u64 {
    raw.zcard(key).await.unwrap()
}

#[tokio::test]
async fn index_does_not_grow_under_churn() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let store = store_with_prefix(&url, &prefix).await;
    let mut raw = raw_connection(&url).await;
    let paths = format!("{{{prefix}}}:stree");
    let exp = format!("{{{prefix}}}:locks");
    let principals = ["ann", "bob", "cy"];
    for round in 0..3 {
        for i in 0..200 {
            let principal = principals[i % 3];
            let l = granted(
                &store,
                shared(&format!("/churn/{round}/{i}"))
                    .principal(principal)
                    .timeout(LockTimeout::Seconds(1)),
            )
            .await;
            if i % 4 == 0 {
                store
                    .unlock(TokenAccess::new(&l.token, &l.root, Some(principal)))
                    .await
                    .unwrap();
            }
        }
        assert_eq!(zcard(&mut raw, &paths).await, 150);
        assert_eq!(zcard(&mut raw, &exp).await, 150);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    // Everything has expired; the records are gone by Redis TTL. Index entries go with the
    // bounded sweep at the start of each mutation (64 per call by default): a handful of
    // unrelated mutations drains them all.
    for _ in 0..8 {
        store.remove_subtree(&p("/unrelated")).await.unwrap();
    }
    assert_eq!(zcard(&mut raw, &paths).await, 0);
    assert_eq!(zcard(&mut raw, &exp).await, 0);
    for principal in principals {
        let key = format!("{{{prefix}}}:owner:{principal}");
        assert_eq!(zcard(&mut raw, &key).await, 0, "{key}");
    }
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{prefix}}}:*"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(left, vec![format!("{{{prefix}}}:fence")]);
}

#[tokio::test]
async fn dangling_entries_are_removed_when_met() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let store = store_with_prefix(&url, &prefix).await;
    let mut raw = raw_connection(&url).await;
    let gone = granted(
        &store,
        excl("/d/x").principal("ann").timeout(LockTimeout::Infinite),
    )
    .await;
    // the record vanishes behind the store's back (eviction, manual DEL)
    let _: () = raw
        .del(format!("{{{prefix}}}:lock:{}", gone.token))
        .await
        .unwrap();
    assert!(store
        .query(&LockQuery::new().subtree(p("/d")))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .query(&LockQuery::new().covering(p("/d/x")))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.get(&gone.token).await.unwrap(), None);
    // a create that meets the dangling root entry takes it out, and is granted
    granted(&store, excl("/d/x").principal("ann")).await;
    assert_eq!(zcard(&mut raw, &format!("{{{prefix}}}:x0:/d/x")).await, 1);
    // and remove_subtree removes root entries whose record is gone
    let again = granted(&store, excl("/d/y").timeout(LockTimeout::Infinite)).await;
    let _: () = raw
        .del(format!("{{{prefix}}}:lock:{}", again.token))
        .await
        .unwrap();
    assert_eq!(store.remove_subtree(&p("/d")).await.unwrap(), 1);
    assert_eq!(zcard(&mut raw, &format!("{{{prefix}}}:xtree")).await, 0);
    assert_eq!(zcard(&mut raw, &format!("{{{prefix}}}:x0:/d/y")).await, 0);
    assert!(store
        .query(&LockQuery::new().subtree(p("/")))
        .await
        .unwrap()
        .is_empty());
}

/// A principal's own index (its locks by root, read by a listing of its locks) follows them:
/// an unlock takes its entry out, a listing page takes out the entry of a lock whose record
/// has gone behind the store's back, and `remove_subtree` the rest.
#[tokio::test]
async fn a_principals_index_follows_its_locks() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let store = store_with_prefix(&url, &prefix).await;
    let mut raw = raw_connection(&url).await;
    let anns = format!("{{{prefix}}}:htree:ann");
    let ann = |path: &str| excl(path).principal("ann").timeout(LockTimeout::Infinite);
    let a = granted(&store, ann("/h/a")).await;
    let b = granted(&store, ann("/h/b")).await;
    let d = granted(&store, ann("/h/c/d")).await;
    granted(&store, excl("/h/b2").principal("bob")).await;
    assert_eq!(zcard(&mut raw, &anns).await, 3);
    let outcome = store
        .unlock(TokenAccess::new(&a.token, &a.root, Some("ann")))
        .await
        .unwrap();
    assert!(matches!(outcome, TokenOutcome::Done(_)), "{outcome:?}");
    assert_eq!(zcard(&mut raw, &anns).await, 2);
    let _: () = raw
        .del(format!("{{{prefix}}}:lock:{}", b.token))
        .await
        .unwrap();
    let page = LockQuery::new()
        .subtree(p("/h"))
        .page(None, 10, Some("ann"));
    let found = store.query(&page).await.unwrap();
    assert_eq!(found, vec![d]);
    assert_eq!(zcard(&mut raw, &anns).await, 1, "the page took out /h/b");
    assert_eq!(store.remove_subtree(&p("/h")).await.unwrap(), 2);
    assert_eq!(zcard(&mut raw, &anns).await, 0);
}

/// A custom token used again by the same principal, at another path, leaves no entry of the
/// first lock in the principal's index for its listing to trip over: not after the first
/// lock expired and a bounded sweep reached it late, nor after its record vanished and
/// `remove_subtree` took out what was left of it.
#[tokio::test]
async fn a_token_used_again_elsewhere_keeps_its_principals_listing_right() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let store = RedisLockStore::builder(&url)
        .prefix(&prefix)
        .sweep_batch(1)
        .connect()
        .await
        .unwrap();
    let mut raw = raw_connection(&url).await;
    let ann = |path: &str, token: &str, timeout| {
        let mut lock = excl(path).principal("ann").timeout(timeout);
        lock.token = token.into();
        lock
    };
    let anns = |path: &str| {
        LockQuery::new()
            .subtree(p(path))
            .page(None, 10, Some("ann"))
    };
    // Expired, swept late: one lock expires first, so the sweep of one reaches it first.
    granted(&store, ann("/x", "urn:x:first", LockTimeout::Seconds(1))).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    granted(&store, ann("/h/a", "urn:x:again", LockTimeout::Seconds(1))).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let again = granted(&store, ann("/h/b", "urn:x:again", LockTimeout::Infinite)).await;
    granted(&store, excl("/y").principal("bob")).await;
    granted(&store, excl("/z").principal("bob")).await;
    let members = |mut raw: redis::aio::MultiplexedConnection| {
        let key = format!("{{{prefix}}}:htree:ann");
        async move { raw.zrange::<_, Vec<String>>(key, 0, -1).await.unwrap() }
    };
    // The sweep took the first lock's entry out: the index no longer names it.
    assert_eq!(members(raw.clone()).await, ["/h/b x0 urn:x:again"]);
    assert_eq!(store.query(&anns("/h")).await.unwrap(), vec![again]);
    // Vanished behind the store's back, then the subtree removed.
    granted(&store, ann("/k/a", "urn:x:third", LockTimeout::Infinite)).await;
    let _: () = raw
        .del(format!("{{{prefix}}}:lock:urn:x:third"))
        .await
        .unwrap();
    let third = granted(&store, ann("/k/b", "urn:x:third", LockTimeout::Infinite)).await;
    store.remove_subtree(&p("/k/a")).await.unwrap();
    assert_eq!(store.query(&anns("/k")).await.unwrap(), vec![third]);
    // The listing took out the entry `remove_subtree` could not attribute.
    let left = members(raw.clone()).await;
    assert_eq!(left, ["/h/b x0 urn:x:again", "/k/b x0 urn:x:third"]);
}

/// Two stores with separate connections race for the same exclusive lock: one winner a round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_instances_never_both_win() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let a = store_with_prefix(&url, &prefix).await;
    let b = store_with_prefix(&url, &prefix).await;
    for round in 0..1000 {
        let path = format!("/race/{round}");
        let (ra, rb) = tokio::join!(
            tokio::spawn({
                let a = a.clone();
                let path = path.clone();
                async move { a.create(excl(&path)).await }
            }),
            tokio::spawn({
                let b = b.clone();
                let path = path.clone();
                async move { b.create(excl(&path)).await }
            }),
        );
        let won = [ra.unwrap().unwrap(), rb.unwrap().unwrap()]
            .iter()
            .filter(|o| matches!(o, CreateOutcome::Created(_)))
            .count();
        assert_eq!(won, 1, "round {round}");
    }
}

/// A depth-infinity lock on a parent and a lock on its child, racing: never both granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_parent_and_child_never_both_win() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let a = Arc::new(store_with_prefix(&url, &prefix).await);
    let b = Arc::new(store_with_prefix(&url, &prefix).await);
    for round in 0..500 {
        let parent = format!("/tree/{round}");
        let child = format!("/tree/{round}/leaf/x");
        let (ra, rb) = tokio::join!(
            tokio::spawn({
                let a = a.clone();
                async move { a.create(excl(&parent).depth(LockDepth::Infinity)).await }
            }),
            tokio::spawn({
                let b = b.clone();
                async move { b.create(shared(&child)).await }
            }),
        );
        let won = [ra.unwrap().unwrap(), rb.unwrap().unwrap()]
            .iter()
            .filter(|o| matches!(o, CreateOutcome::Created(_)))
            .count();
        assert_eq!(won, 1, "round {round}");
    }
}

/// Tiny deterministic generator, so the differential test is reproducible.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn normalise(mut l: Lock) -> Lock {
    l.fence = 0;
    l.expires_at = None;
    l
}

fn norm_create(o: CreateOutcome) -> String {
    match o {
        CreateOutcome::Created(l) => format!("Created({:?})", normalise(l)),
        CreateOutcome::Conflict(ls) => {
            let mut ls: Vec<_> = ls
                .into_iter()
                .map(normalise)
                .map(|l| format!("{l:?}"))
                .collect();
            ls.sort();
            format!("Conflict({ls:?})")
        }
        other => format!("{other:?}"),
    }
}

fn norm_token(o: TokenOutcome) -> String {
    match o {
        TokenOutcome::Done(l) => format!("Done({:?})", normalise(l)),
        TokenOutcome::OutOfScope(l) => format!("OutOfScope({:?})", normalise(l)),
        TokenOutcome::Forbidden(l) => format!("Forbidden({:?})", normalise(l)),
        other => format!("{other:?}"),
    }
}

fn norm_locks(ls: Vec<Lock>) -> Vec<String> {
    let mut ls: Vec<_> = ls
        .into_iter()
        .map(normalise)
        .map(|l| format!("{l:?}"))
        .collect();
    ls.sort();
    ls
}

/// Random operations on the Redis store and the reference in-memory store agree.
#[tokio::test]
async fn agrees_with_the_memory_store() {
    let store: RedisLockStore = store_or_skip!();
    let reference = MemoryLockStore::new();
    let paths = [
        "/", "/a", "/a/", "/a/b", "/a/b/c", "/ab", "/a-b", "/a0", "/a/b%2Fc", "/b", "/b/a",
    ];
    let principals = [None, Some("ann"), Some("bob")];
    let mut rng = Lcg(0x5eed);
    let mut tokens: Vec<String> = vec!["urn:uuid:unknown".into()];
    for step in 0..600 {
        let path = p(paths[rng.next(paths.len())]);
        let principal = principals[rng.next(principals.len())];
        match rng.next(6) {
            0 | 1 => {
                let mut req = NewLock::new(path).timeout(LockTimeout::Infinite);
                if rng.next(2) == 0 {
                    req = req.scope(LockScope::Shared);
                }
                if rng.next(2) == 0 {
                    req = req.depth(LockDepth::Infinity);
                }
                if let Some(pr) = principal {
                    req = req.principal(pr);
                    if rng.next(3) == 0 {
                        req = req.principal_quota(2);
                    }
                }
                tokens.push(req.token.to_string());
                let r = norm_create(store.create(req.clone()).await.unwrap());
                let m = norm_create(reference.create(req).await.unwrap());
                assert_eq!(r, m, "step {step} create");
            }
            2 => {
                let token = &tokens[rng.next(tokens.len())];
                let mut access = TokenAccess::new(token, &path, principal);
                access.privileged = rng.next(4) == 0;
                let r = norm_token(store.unlock(access).await.unwrap());
                let m = norm_token(reference.unlock(access).await.unwrap());
                assert_eq!(r, m, "step {step} unlock");
            }
            3 => {
                let token = &tokens[rng.next(tokens.len())];
                let access = TokenAccess::new(token, &path, principal);
                let t = LockTimeout::Seconds(1000 + rng.next(100) as u32);
                let r = norm_token(store.refresh(access, t).await.unwrap());
                let m = norm_token(reference.refresh(access, t).await.unwrap());
                assert_eq!(r, m, "step {step} refresh");
            }
            4 => {
                let mut q = LockQuery::new();
                for _ in 0..=rng.next(3) {
                    q.push(p(paths[rng.next(paths.len())]), rng.next(2) == 0);
                }
                let r = norm_locks(store.query(&q).await.unwrap());
                let m = norm_locks(reference.query(&q).await.unwrap());
                assert_eq!(r, m, "step {step} query {q:?}");
            }
            _ => {
                if rng.next(4) == 0 {
                    let r = store.remove_subtree(&path).await.unwrap();
                    let m = reference.remove_subtree(&path).await.unwrap();
                    assert_eq!(r, m, "step {step} remove_subtree {path:?}");
                } else {
                    let token = &tokens[rng.next(tokens.len())];
                    let r = store.get(token).await.unwrap().map(normalise);
                    let m = reference.get(token).await.unwrap().map(normalise);
                    assert_eq!(r, m, "step {step} get");
                }
            }
        }
    }
}

/// A Redis user that may read only the namespace's keys cannot run the one-command covering
/// check (`SORT_RO … GET` needs read access to every key): the store falls back to its query
/// script and finds the same locks.
#[tokio::test]
async fn checks_work_for_a_user_limited_to_the_namespace() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let user = format!("user-{prefix}");
    let mut raw = raw_connection(&url).await;
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("on")
        .arg(">secret")
        .arg(format!("~{{{prefix}}}:*"))
        .arg("+@all")
        .query_async(&mut raw)
        .await
        .unwrap();
    let limited = url.replacen("redis://", &format!("redis://{user}:secret@"), 1);
    let store = store_with_prefix(&limited, &prefix).await;
    let deep = granted(&store, shared("/acl").depth(LockDepth::Infinity)).await;
    let flat = granted(&store, shared("/acl/a/b")).await;
    for _ in 0..2 {
        let found = store
            .query(&LockQuery::new().covering(p("/acl/a/b")))
            .await
            .unwrap();
        assert_eq!(tokens(&found), set(&[&deep, &flat]));
        assert!(store
            .query(&LockQuery::new().covering(p("/other")))
            .await
            .unwrap()
            .is_empty());
        // Locks asked for by token: wherever they are rooted, each once.
        let by_token = LockQuery::new()
            .covering(p("/acl/a"))
            .token(deep.token.as_str())
            .token(flat.token.as_str())
            .token("urn:uuid:00000000-0000-4000-8000-000000000000");
        let found = store.query(&by_token).await.unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(tokens(&found), set(&[&deep, &flat]));
    }
    let _: () = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query_async(&mut raw)
        .await
        .unwrap();
}

/// Odd bytes in the prefix, paths and tokens name no other key (a `*` in the prefix would
/// otherwise be the one a `SORT_RO … GET` pattern substitutes).
#[tokio::test]
async fn odd_prefixes_paths_and_tokens_stay_in_their_keys() {
    let Some(url) = redis_url() else { return };
    let prefix = format!("{}*x:?[a]->b", unique_prefix());
    let store = store_with_prefix(&url, &prefix).await;
    let mut odd = excl("/a*b/c d%20?/[x]->y").depth(LockDepth::Infinity);
    odd.token = "urn:x:*:lock:? {t}->h".into();
    let lock = granted(&store, odd).await;
    for path in ["/a*b/c d%20?/[x]->y", "/a*b/c d%20?/[x]->y/z"] {
        let found = store
            .query(&LockQuery::new().covering(p(path)))
            .await
            .unwrap();
        assert_eq!(found, vec![lock.clone()], "{path}");
    }
    assert!(store
        .query(&LockQuery::new().covering(p("/a*b")))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.get(&lock.token).await.unwrap(), Some(lock.clone()));
    let by_token = LockQuery::new()
        .covering(p("/elsewhere"))
        .token(lock.token.as_str());
    assert_eq!(store.query(&by_token).await.unwrap(), vec![lock.clone()]);
    assert_eq!(
        store.remove_subtree(&p("/a*b")).await.unwrap(),
        1,
        "removed by its root"
    );
}
