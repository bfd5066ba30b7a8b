//! A removal reads the locks below it only as far as its verdict needs
//! (`Below::UntilBlocked`, decision D19). That must never change the verdict: for random
//! collections of locked members (exclusive and shared locks of alice, bob or nobody, some
//! nested), random submissions (tokens of some of the locks in tagged `If` lists, a bogus
//! token now and then), requesters with and without a principal, `owner_writes` on and off
//! (and an owner writing without tokens among a few foreign locks), DELETE and MOVE, the layer answers exactly as it does when the store is made to report every
//! lock below (a wrapper that turns every query into `Below::All`): the same status, and for a
//! 423 the same lock roots named. The inner service answers 409, so a request let through
//! removes nothing and the two layers see the same locks. Memory store, and Redis when
//! `REDIS_URL` is set.

#[path = "common/adjusted.rs"]
mod adjusted;
mod common;

#[cfg(feature = "redis")]
#[path = "common/redis.rs"]
mod redis_env;

use adjusted::Adjusted;
use common::{empty, req, send, Kv};
use http::StatusCode;
use tower::Layer;
use tower_locks::{
    Below, CreateOutcome, Lock, LockLayer, LockScope, LockStore, MemoryLockStore, NewLock,
    Principal, ResourcePath,
};

/// `store`, made to report every lock below whatever a query asks for.
fn everything<S>(store: S) -> Adjusted<S> {
    Adjusted {
        query: |query| {
            let mut everything = query.clone();
            everything.below = Below::All;
            everything
        },
        ..Adjusted::new(store)
    }
}

/// A small deterministic PRNG (xorshift64*), so a failure names its case.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

const PRINCIPALS: [Option<&str>; 3] = [Some("alice"), Some("bob"), None];

/// Run `cases` random cases on stores from `fresh`.
async fn same_verdicts<S: LockStore + Clone>(cases: u64, mut fresh: impl AsyncFnMut() -> S) {
    let mut rng = Rng(0x2F6A_19C3_77D1_0B45);
    let (mut refused, mut passed) = (0, 0);
    for case in 0..cases {
        let store = fresh().await;
        // A third of the cases are generous: every lock is the requester's or nobody's and
        // every token is submitted, so that many removals are let through. A third are an
        // owner's: alice, writing without tokens, holds nearly every lock.
        let mode = rng.below(3);
        let (generous, owned) = (mode == 0, mode == 1);
        let who = if owned {
            Some("alice")
        } else {
            PRINCIPALS[rng.below(3) as usize]
        };
        let holder = |rng: &mut Rng| {
            if generous {
                [who, None][rng.below(2) as usize]
            } else if owned && rng.below(30) != 0 {
                who
            } else {
                PRINCIPALS[rng.below(3) as usize]
            }
        };
        // Members of /c/ and of /d/ (a MOVE's destination), each with one exclusive lock or
        // one to three shared ones; some nested one level deeper.
        let mut held: Vec<Lock> = Vec::new();
        for collection in ["c", "d"] {
            for i in 0..rng.below(30) {
                let nested = if rng.below(4) == 0 { "/x" } else { "" };
                let root = ResourcePath::parse(&format!("/{collection}/m{i:02}{nested}")).unwrap();
                let shared = rng.below(3) == 0;
                for _ in 0..if shared { 1 + rng.below(3) } else { 1 } {
                    let mut new = NewLock::new(root.clone());
                    if shared {
                        new = new.scope(LockScope::Shared);
                    }
                    if let Some(p) = holder(&mut rng) {
                        new = new.principal(p);
                    }
                    if let CreateOutcome::Created(l) = store.create(new).await.unwrap() {
                        held.push(l);
                    }
                }
            }
        }
        // The submission: each lock's token with a chance of `keep` in 100, all of a
        // resource's chosen tokens in one tagged list; now and then a bogus token of its own.
        let keep = match (generous, owned) {
            (true, _) => 100,
            (_, true) => 0,
            _ => [100, 95, 75, 50][rng.below(4) as usize],
        };
        let mut lists: Vec<(String, Vec<String>)> = Vec::new();
        for l in &held {
            if rng.below(100) < keep {
                let href = l.root.href();
                match lists.iter_mut().find(|(h, _)| *h == href) {
                    Some((_, tokens)) => tokens.push(l.token.to_string()),
                    None => lists.push((href, vec![l.token.to_string()])),
                }
            }
        }
        if rng.below(5) == 0 {
            let bogus = "urn:uuid:00000000-0000-4000-8000-000000000000".to_owned();
            lists.push(("/c/m00".into(), vec![bogus]));
        }
        let header: Vec<String> = lists
            .iter()
            .map(|(href, tokens)| {
                let conditions: Vec<String> = tokens.iter().map(|t| format!("<{t}>")).collect();
                format!("<{href}> ({})", conditions.join(" "))
            })
            .collect();
        let owner_writes = owned || rng.below(2) == 0;
        let method = ["DELETE", "MOVE"][rng.below(2) as usize];
        let request = || {
            let mut r = req(method, "/c/").header("destination", "http://example.com/d/");
            if !header.is_empty() {
                r = r.header("if", header.join(" "));
            }
            let mut r = empty(r);
            if let Some(p) = who {
                r.extensions_mut().insert(Principal::new(p));
            }
            r
        };
        let kv = Kv::default();
        *kv.force_status.lock().unwrap() = Some(StatusCode::CONFLICT);
        let bounded = LockLayer::new(store.clone())
            .owner_writes(owner_writes)
            .layer(kv.clone());
        let full = LockLayer::new(everything(store.clone()))
            .owner_writes(owner_writes)
            .layer(kv.clone());
        let got = send(bounded, request()).await;
        let want = send(full, request()).await;
        let what = format!(
            "case {case}: {method} by {who:?}, owner_writes {owner_writes}, {} locks, {} lists",
            held.len(),
            lists.len()
        );
        assert_eq!(got.status, want.status, "{what}: {}", want.text());
        if want.status == StatusCode::LOCKED {
            refused += 1;
            assert_eq!(
                got.error_hrefs("lock-token-submitted"),
                want.error_hrefs("lock-token-submitted"),
                "{what}"
            );
        } else if want.status == StatusCode::CONFLICT {
            passed += 1;
        }
    }
    // Both verdicts occur, or the comparison proves little.
    assert!(
        refused > cases / 10 && passed > cases / 10,
        "{refused} refused, {passed} let through of {cases}"
    );
}

#[tokio::test]
async fn a_bounded_removal_decides_as_one_that_reads_everything_on_the_memory_store() {
    same_verdicts(300, async || MemoryLockStore::new()).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_bounded_removal_decides_as_one_that_reads_everything_on_redis() {
    let Some(url) = redis_env::redis_url() else {
        return;
    };
    same_verdicts(60, async || {
        redis_env::store_with_prefix(&url, &redis_env::unique_prefix()).await
    })
    .await;
}
