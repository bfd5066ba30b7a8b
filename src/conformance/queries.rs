//! Cases on `query` and `check`: the reference semantics, shared locks, and how much a
//! store may leave out below a target.

use std::collections::BTreeSet;

use super::kit::{create_ok, ok, query, query_tokens, random_query, tokens, Ns, Rng};
use super::MIN_REPORTED;
use crate::store::by_root_then_token;
use crate::{
    Below, CheckOutcome, CreateOutcome, Lock, LockDepth, LockQuery, LockScope, LockStore, NewLock,
    ResourcePath, Submission, TokenAccess,
};

/// `query` answers exactly what [`LockQuery::matches`] says, each lock once, for a randomised
/// set of locks and queries (covering, subtree, several targets, tokens of held locks and of
/// none).
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::query_matches_reference(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn query_matches_reference<S: LockStore>(store: &S) {
    const CASE: &str = "query_matches_reference";
    let ns = Ns::new();
    let names = ["a", "b", "ab", "a b", "%2F"];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let random_path = |rng: &mut Rng| ns.random_path(rng, &names, true);
    let mut held: Vec<Lock> = Vec::new();
    for _ in 0..120 {
        let req = NewLock::new(random_path(&mut rng))
            .scope(if rng.below(3) == 0 {
                LockScope::Exclusive
            } else {
                LockScope::Shared
            })
            .depth(if rng.below(3) == 0 {
                LockDepth::Infinity
            } else {
                LockDepth::Zero
            });
        if let CreateOutcome::Created(l) = ok(CASE, store.create(req).await) {
            held.push(l);
        }
    }
    assert!(
        held.len() > 10,
        "conformance `{CASE}`: too few locks granted: {}",
        held.len()
    );
    for _ in 0..200 {
        let q = random_query(&mut rng, &random_path, &held);
        let want = tokens(held.iter().filter(|l| q.matches(l)));
        let got = query_tokens(CASE, store, &q).await;
        assert_eq!(got, want, "conformance `{CASE}`: query {q:?}");
    }
}

/// `any_shared_lock_will_do`: of the shared locks on a resource, `check` is satisfied by any
/// one the submission holds (RFC 4918 §6.2); a collection's shared lock is not satisfied by a
/// member's, nor the other way round, and an exclusive lock still needs its own token.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::any_shared_lock_will_do(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn any_shared_lock_will_do<S: LockStore>(store: &S) {
    const CASE: &str = "any_shared_lock_will_do";
    let ns = Ns::new();
    let shared = |p: &str, depth| NewLock::new(ns.p(p)).scope(LockScope::Shared).depth(depth);
    let a = create_ok(CASE, store, shared("/c/doc", LockDepth::Zero)).await;
    let b = create_ok(CASE, store, shared("/c/doc", LockDepth::Zero)).await;
    let dir = create_ok(CASE, store, shared("/c", LockDepth::Zero)).await;
    let solo = create_ok(CASE, store, NewLock::new(ns.p("/c/solo"))).await;
    async fn blocking<S: LockStore>(store: &S, q: LockQuery, tokens: Vec<&str>) -> Vec<String> {
        let out = ok(CASE, store.check(&q, Submission::new(&tokens, None)).await);
        let mut found: Vec<String> = out
            .unsatisfied
            .iter()
            .map(|l| l.token.to_string())
            .collect();
        found.sort();
        found
    }
    let check = |q, tokens| blocking(store, q, tokens);
    let doc = || LockQuery::new().covering(ns.p("/c/doc"));
    assert_eq!(
        check(doc(), vec![a.token.as_str()]).await,
        Vec::<String>::new(),
        "conformance `{CASE}`: one of two"
    );
    assert_eq!(
        check(doc(), vec![b.token.as_str()]).await,
        Vec::<String>::new(),
        "conformance `{CASE}`: the other"
    );
    let mut both = vec![a.token.to_string(), b.token.to_string()];
    both.sort();
    assert_eq!(
        check(doc(), vec![]).await,
        both,
        "conformance `{CASE}`: none submitted"
    );
    // The collection and its member are two resources.
    let coll = LockQuery::new().covering(ns.p("/c"));
    assert_eq!(
        check(coll, vec![a.token.as_str()]).await,
        vec![dir.token.to_string()],
        "conformance `{CASE}`: a member's lock for the collection"
    );
    // Below a collection, per resource; an exclusive lock needs its own token.
    let subtree = LockQuery::new().subtree(ns.p("/c"));
    assert_eq!(
        check(subtree, vec![dir.token.as_str(), b.token.as_str()]).await,
        vec![solo.token.to_string()],
        "conformance `{CASE}`: the subtree"
    );
}

/// `check` answers what [`CheckOutcome::judge`](crate::CheckOutcome::judge) says of the locks
/// [`LockQuery::matches`] selects (so of the shared locks on a resource, any one satisfied
/// will do): for random shared locks (some of a principal, some with a custom token) and random
/// queries and submissions (held tokens, their upper-case variants, unknown tokens; with the
/// right principal, another one or none), the unsatisfied locks by root then token, each once
/// (all of them, or at least [`MIN_REPORTED`] when there are more), and the highest fencing
/// number among the satisfied ones when nothing is unsatisfied (when something is, the fencing
/// number may be `None`).
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::check_matches_reference(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn check_matches_reference<S: LockStore>(store: &S) {
    const CASE: &str = "check_matches_reference";
    let ns = Ns::new();
    let names = ["a", "b", "ab"];
    let principals = [ns.principal("alice"), ns.principal("bob")];
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let random_path = |rng: &mut Rng| ns.random_path(rng, &names, false);
    let mut held: Vec<Lock> = Vec::new();
    for i in 0..80 {
        let mut req = NewLock::new(random_path(&mut rng))
            .scope(LockScope::Shared)
            .depth(if rng.below(3) == 0 {
                LockDepth::Infinity
            } else {
                LockDepth::Zero
            });
        if rng.below(3) == 0 {
            req = req.principal(principals[rng.below(2) as usize].as_str());
        }
        if rng.below(5) == 0 {
            req.token = format!("opaquelocktoken:{}-{i}", ns.suffix).into();
        }
        if let CreateOutcome::Created(l) = ok(CASE, store.create(req).await) {
            held.push(l);
        }
    }
    assert!(
        held.len() > 40,
        "conformance `{CASE}`: too few locks granted: {}",
        held.len()
    );
    for _ in 0..300 {
        let q = random_query(&mut rng, &random_path, &held);
        let mut owned: Vec<String> = Vec::new();
        for _ in 0..rng.below(6) {
            let lock = &held[rng.below(held.len() as u64) as usize];
            owned.push(match rng.below(6) {
                0 => lock.token.as_str().to_uppercase(),
                1 => format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                _ => lock.token.as_str().to_owned(),
            });
        }
        let submitted: Vec<&str> = owned.iter().map(String::as_str).collect();
        let principal = match rng.below(3) {
            0 => None,
            n => Some(principals[n as usize - 1].as_str()),
        };
        let submission = Submission::new(&submitted, principal);
        let got = ok(CASE, store.check(&q, submission).await);

        let matching: Vec<&Lock> = held.iter().filter(|l| q.matches(l)).collect();
        let reference = CheckOutcome::judge(
            &q,
            matching.iter().map(|&l| l.clone()).collect(),
            submission,
        );
        let want_unsatisfied = tokens(&reference.unsatisfied);
        let want_fence = matching
            .iter()
            .filter(|l| q.matches_targets(l) && submission.satisfies(l))
            .map(|l| l.fence)
            .max();
        let got_tokens = tokens(&got.unsatisfied);
        assert_eq!(
            got_tokens.len(),
            got.unsatisfied.len(),
            "conformance `{CASE}`: a lock reported twice for {q:?}"
        );
        if want_unsatisfied.len() <= MIN_REPORTED {
            assert_eq!(
                got_tokens, want_unsatisfied,
                "conformance `{CASE}`: unsatisfied locks for {q:?} with {submission:?}"
            );
        } else {
            assert!(
                got_tokens.len() >= MIN_REPORTED && got_tokens.is_subset(&want_unsatisfied),
                "conformance `{CASE}`: at least {MIN_REPORTED} of the unsatisfied locks \
                 {want_unsatisfied:?} for {q:?} with {submission:?}, got {got_tokens:?}"
            );
        }
        if got.allowed() {
            assert_eq!(
                got.fence, want_fence,
                "conformance `{CASE}`: fencing number for {q:?} with {submission:?}"
            );
        } else {
            assert!(
                got.fence.is_none() || got.fence == want_fence,
                "conformance `{CASE}`: fencing number of a refused write for {q:?}: {:?}",
                got.fence
            );
        }
        let queried = query(CASE, store, &q).await;
        let mut in_order: Vec<&Lock> = queried
            .iter()
            .filter(|l| got_tokens.contains(l.token.as_str()))
            .collect();
        in_order.sort_unstable_by(|a, b| by_root_then_token(a, b));
        assert_eq!(
            got.unsatisfied.iter().collect::<Vec<_>>(),
            in_order,
            "conformance `{CASE}`: unsatisfied locks not as `query` reports them, by root then \
             token, for {q:?}"
        );
    }
}

/// `check` may stop at the first unsatisfied locks: a check of a collection with many locked
/// members, none of them submitted, reports at least [`MIN_REPORTED`] of them (or all, when
/// there are fewer), each once, by root then token; submitting every token allows the write
/// with the highest fencing number.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::check_reports_enough(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn check_reports_enough<S: LockStore>(store: &S) {
    const CASE: &str = "check_reports_enough";
    let ns = Ns::new();
    let mut held = Vec::new();
    for i in 0..40 {
        held.push(create_ok(CASE, store, NewLock::new(ns.p(&format!("/coll/m{i:02}")))).await);
    }
    let q = LockQuery::new().subtree(ns.p("/coll"));
    let got = ok(CASE, store.check(&q, Submission::default()).await);
    let got_tokens = tokens(&got.unsatisfied);
    assert!(
        got_tokens.len() >= MIN_REPORTED && got_tokens.len() == got.unsatisfied.len(),
        "conformance `{CASE}`: {} unsatisfied locks reported, each once",
        got.unsatisfied.len()
    );
    assert!(
        got_tokens.is_subset(&tokens(&held)),
        "conformance `{CASE}`: only held locks"
    );
    let queried = query(CASE, store, &q).await;
    let mut in_order: Vec<&Lock> = queried
        .iter()
        .filter(|l| got_tokens.contains(l.token.as_str()))
        .collect();
    in_order.sort_unstable_by(|a, b| by_root_then_token(a, b));
    assert_eq!(
        got.unsatisfied.iter().collect::<Vec<_>>(),
        in_order,
        "conformance `{CASE}`: as `query` reports them, by root then token"
    );
    let all: Vec<&str> = held.iter().map(|l| l.token.as_str()).collect();
    let got = ok(CASE, store.check(&q, Submission::new(&all, None)).await);
    assert!(got.allowed(), "conformance `{CASE}`: every token submitted");
    assert_eq!(
        got.fence,
        held.iter().map(|l| l.fence).max(),
        "conformance `{CASE}`: the highest fencing number"
    );
}

/// A query asking only for what judging a removal needs ([`Below::UntilBlocked`]) reports
/// every lock covering its targets and every lock of its tokens, nothing [`Below::All`] would
/// not report, and below each target asking for descendants, every lock of each resource in
/// path order until it has reported [`Below::BLOCKED`] blocked ones. A resource is open when
/// one of its locks has an asked token or is held by the holder, blocked otherwise. Checked on
/// a collection whose first members are open (by token, by holder, and shared locks opened by
/// one sibling's token) and whose last are blocked, and on random locks and queries.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::query_until_blocked_reports_enough(&tower_locks::MemoryLockStore::new())
///     .await;
/// # });
/// ```
pub async fn query_until_blocked_reports_enough<S: LockStore>(store: &S) {
    const CASE: &str = "query_until_blocked_reports_enough";
    let ns = Ns::new();
    let alice = ns.principal("alice");
    let member = |name: String| NewLock::new(ns.p(&format!("/c/{name}")));
    let mut held = Vec::new();
    for i in 0..20 {
        held.push(create_ok(CASE, store, member(format!("a{i:02}"))).await);
    }
    for i in 0..20 {
        let mine = member(format!("b{i:02}")).principal(alice.clone());
        held.push(create_ok(CASE, store, mine).await);
    }
    for _ in 0..3 {
        let shared = member("c".into()).scope(LockScope::Shared);
        held.push(create_ok(CASE, store, shared).await);
    }
    for i in 0..20 {
        held.push(create_ok(CASE, store, member(format!("d{i:02}"))).await);
    }
    let by_token: Vec<&str> = held[..20]
        .iter()
        .chain(&held[40..41])
        .map(|l| l.token.as_str())
        .collect();
    let mut q = LockQuery::new().subtree(ns.p("/c"));
    for t in &by_token {
        q.push_token(t);
    }
    // Open: a*, b* (alice's), c (one token); blocked: d*. Without a holder, b* are blocked.
    for holder in [Some(alice.as_str()), None] {
        assert_reports_enough(CASE, store, &q.clone().until_blocked(holder), &held).await;
    }

    let ns = Ns::new();
    let alice = ns.principal("alice");
    let mut rng = Rng(0x51_7CC1_B727_220A);
    let names = ["a", "b", "ab"];
    let random_path = |rng: &mut Rng| ns.random_path(rng, &names, true);
    let mut held: Vec<Lock> = Vec::new();
    for _ in 0..120 {
        let mut req = NewLock::new(random_path(&mut rng)).scope(if rng.below(2) == 0 {
            LockScope::Exclusive
        } else {
            LockScope::Shared
        });
        if rng.below(2) == 0 {
            req = req.principal(alice.clone());
        }
        if let CreateOutcome::Created(l) = ok(CASE, store.create(req).await) {
            held.push(l);
        }
    }
    for _ in 0..100 {
        let holder = (rng.below(2) == 0).then_some(alice.as_str());
        let q = random_query(&mut rng, &random_path, &held).until_blocked(holder);
        assert_reports_enough(CASE, store, &q, &held).await;
    }
}

/// `store`'s answer to `q` (a [`Below::UntilBlocked`] query) against the contract, `held`
/// being every live lock of the case.
async fn assert_reports_enough<S: LockStore>(case: &str, store: &S, q: &LockQuery, held: &[Lock]) {
    let Below::UntilBlocked { holder } = &q.below else {
        panic!("conformance `{case}`: not an until-blocked query: {q:?}");
    };
    let got = query_tokens(case, store, q).await;
    let all = tokens(held.iter().filter(|l| q.matches(l)));
    assert!(
        got.is_subset(&all),
        "conformance `{case}`: the answer to {q:?} holds locks it does not match: {:?}",
        got.difference(&all).collect::<Vec<_>>()
    );
    let asked = |l: &Lock| q.tokens.iter().any(|t| l.token == **t);
    let needed = |l: &&Lock| asked(l) || q.targets.iter().any(|t| l.covers(&t.path));
    for l in held.iter().filter(needed) {
        assert!(
            got.contains(l.token.as_str()),
            "conformance `{case}`: a lock covering a target, or asked for by token, is missing \
             from the answer to {q:?}: {l:?}"
        );
    }
    for t in q.targets.iter().filter(|t| t.descendants) {
        let mut below: Vec<&Lock> = held
            .iter()
            .filter(|l| t.path.is_ancestor_of(&l.root))
            .collect();
        below.sort_unstable_by(|a, b| by_root_then_token(a, b));
        let mut blocked = 0;
        for same_root in below.chunk_by(|a, b| a.root == b.root) {
            if blocked == Below::BLOCKED {
                break;
            }
            for l in same_root {
                assert!(
                    got.contains(l.token.as_str()),
                    "conformance `{case}`: {l:?} is missing from the answer to {q:?}: it comes \
                     before the {}th blocked resource below {}",
                    Below::BLOCKED,
                    t.path
                );
            }
            let held_by_holder =
                |l: &&Lock| holder.is_some() && l.principal.as_deref() == holder.as_deref();
            let open = same_root.iter().any(|l| asked(l) || held_by_holder(l));
            blocked += usize::from(!open);
        }
    }
}

/// A listing read a page at a time ([`Below::Page`]) holds every lock below the target, each
/// in exactly one page: a page reports every lock of the first resources after its cursor
/// (never part of a resource's locks), and the next page starts after the last of them. Every
/// page also reports the locks covering the target (on the target itself, and depth-infinity
/// locks on its ancestors), as [`LockQuery::matches`] requires. A store may report more than a
/// page (all of it is correct): what it reports at or before the cursor is not counted.
/// Checked with nested resources, shared locks sharing a resource, a name that sorts between
/// a resource and its members, pages of 1 to 100 resources, and cursors outside the target
/// (paths compare byte by byte).
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::query_pages_list_everything(&tower_locks::MemoryLockStore::new())
///     .await;
/// # });
/// ```
pub async fn query_pages_list_everything<S: LockStore>(store: &S) {
    const CASE: &str = "query_pages_list_everything";
    let ns = Ns::new();
    let mut held = Vec::new();
    // Shared locks, so that the target and an ancestor can hold depth-infinity locks too.
    let shared = |rel: &str| NewLock::new(ns.p(rel)).scope(LockScope::Shared);
    for i in 0..30 {
        let mut req = shared(&format!("/l/r{:02}{}", i / 2, ["", "/in"][i % 2]));
        if i % 6 == 3 {
            req = req.depth(LockDepth::Infinity);
        }
        held.push(create_ok(CASE, store, req).await);
    }
    for _ in 0..3 {
        held.push(create_ok(CASE, store, shared("/l/r07!")).await);
    }
    create_ok(CASE, store, shared("/elsewhere")).await;
    // Locks covering the target: on the target itself, and on an ancestor with depth infinity.
    let covering = [
        create_ok(CASE, store, shared("/l")).await,
        create_ok(CASE, store, shared("").depth(LockDepth::Infinity)).await,
    ];
    let target = ns.p("/l");
    let want: BTreeSet<String> = tokens(&held);
    for size in [1, 4, 7, 100] {
        let (mut seen, mut after, mut pages) = (BTreeSet::new(), None, 0);
        loop {
            pages += 1;
            assert!(
                pages <= 40,
                "conformance `{CASE}`: pages of {size} never end"
            );
            // One resource more than the page holds tells whether another page follows.
            let q = LockQuery::new()
                .subtree(target.clone())
                .page(after.clone(), size + 1, None);
            let found = query(CASE, store, &q).await;
            let found_tokens = tokens(&found);
            assert!(
                covering
                    .iter()
                    .all(|l| found_tokens.contains(l.token.as_str())),
                "conformance `{CASE}`: a page below /l after {after:?} leaves out a lock \
                 covering /l (on /l itself or on an ancestor); it found {found:?}"
            );
            let (on_page, page, more) = read_page(found, &target, after.as_ref(), None, size);
            for l in &on_page {
                assert!(
                    seen.insert(l.token.to_string()),
                    "conformance `{CASE}`: {l:?} in two pages of {size}"
                );
            }
            if let Some(first) = page.first() {
                let all_of_first = held.iter().filter(|l| l.root == *first);
                assert!(
                    all_of_first
                        .into_iter()
                        .all(|l| seen.contains(l.token.as_str())),
                    "conformance `{CASE}`: a page of {size} split the locks of {first}"
                );
            }
            if !more {
                break;
            }
            after = page.last().cloned();
        }
        assert_eq!(seen, want, "conformance `{CASE}`: pages of {size}");
    }
    // The first resource below the target after the cursor that a page reports (a store may
    // report more, at or before the cursor).
    let first_after = async |cursor: &str| {
        let cursor = ns.p(cursor);
        let q = LockQuery::new()
            .subtree(target.clone())
            .page(Some(cursor.clone()), 1, None);
        let found = query(CASE, store, &q).await;
        let first = found
            .iter()
            .filter(|l| target.is_ancestor_of(&l.root) && l.root > cursor)
            .min_by(|a, b| by_root_then_token(a, b))
            .map(|l| l.root.clone());
        (found, first)
    };
    // The page after a resource starts right after it in path order.
    let (_, first) = first_after("/l/r07").await;
    assert_eq!(
        first,
        Some(ns.p("/l/r07!")),
        "conformance `{CASE}`: the page after /l/r07 starts right after it (`!` sorts before \
         `/`)"
    );
    // A cursor outside the target that sorts before its members in byte order (`-` is below
    // `/`, whatever a locale's collation says) starts the page at the first member, and a
    // locked sibling between the two is not below the target.
    let sibling = create_ok(CASE, store, shared("/l-b")).await;
    let (found, first) = first_after("/l-a").await;
    assert!(
        !found.iter().any(|l| l.token == sibling.token),
        "conformance `{CASE}`: a page below /l reports the lock of /l-b: {found:?}"
    );
    assert_eq!(
        first,
        Some(ns.p("/l/r00")),
        "conformance `{CASE}`: the page below /l after /l-a starts at its first member"
    );
}

/// A listing of one principal's locks ([`Below::Page`] with a `holder`) pages through the
/// resources holding that principal's live locks only: a page of `n` reports the holder's
/// locks of the first `n` of them after its cursor, however many resources locked by others
/// lie between, so that following the pages from the holder's own resources visits every
/// lock of the holder below the target once (a listing whose cursor names only the holder's
/// resources). Checked with others' locks on every resource between and beside the holder's,
/// shared locks of both on one resource, nested resources, a released lock of the holder's,
/// pages of 1, 2 and 100 resources; every page still reports the locks
/// covering the target, whoever holds them.
///
/// # Panics
/// When the store breaks the rule.
///
/// ```
/// # tokio_test::block_on(async {
/// tower_locks::conformance::query_pages_of_a_holder(&tower_locks::MemoryLockStore::new()).await;
/// # });
/// ```
pub async fn query_pages_of_a_holder<S: LockStore>(store: &S) {
    const CASE: &str = "query_pages_of_a_holder";
    let ns = Ns::new();
    let (ann, bob) = (ns.principal("ann"), ns.principal("bob"));
    let shared = |rel: &str, who: &str| {
        NewLock::new(ns.p(rel))
            .scope(LockScope::Shared)
            .principal(who)
            .principal_quota(10_000)
    };
    let mut anns = Vec::new();
    for i in 0..60 {
        let rel = format!("/h/r{i:02}");
        create_ok(CASE, store, shared(&rel, &bob)).await;
        if i % 7 == 3 {
            anns.push(create_ok(CASE, store, shared(&rel, &ann)).await);
            let nested = shared(&format!("{rel}/in"), &ann).depth(LockDepth::Infinity);
            anns.push(create_ok(CASE, store, nested).await);
        }
    }
    // Locks of ann's that no page may report: a released one, one outside the target.
    let released = create_ok(CASE, store, shared("/h/r60", &ann)).await;
    let access = TokenAccess::new(&released.token, &released.root, Some(ann.as_str()));
    ok(CASE, store.unlock(access).await);
    create_ok(CASE, store, shared("/elsewhere", &ann)).await;
    // Locks covering the target, every page reports them: bob's on /h, and on the namespace.
    let covering = [
        create_ok(CASE, store, shared("/h", &bob)).await,
        create_ok(CASE, store, shared("", &bob).depth(LockDepth::Infinity)).await,
    ];
    let target = ns.p("/h");
    let want = tokens(&anns);
    for size in [1, 2, 100] {
        let (mut seen, mut after, mut pages) = (BTreeSet::new(), None, 0);
        loop {
            pages += 1;
            assert!(
                pages <= 40,
                "conformance `{CASE}`: pages of {size} never end"
            );
            // One resource more than the page holds tells whether another page follows.
            let q = (LockQuery::new().subtree(target.clone())).page(
                after.clone(),
                size + 1,
                Some(ann.as_str()),
            );
            let found = query(CASE, store, &q).await;
            let found_tokens = tokens(&found);
            assert!(
                covering
                    .iter()
                    .all(|l| found_tokens.contains(l.token.as_str())),
                "conformance `{CASE}`: a page of ann's locks below /h leaves out a lock \
                 covering /h; it found {found:?}"
            );
            let (on_page, page, more) =
                read_page(found, &target, after.as_ref(), Some(ann.as_str()), size);
            for l in &on_page {
                assert!(
                    want.contains(l.token.as_str()),
                    "conformance `{CASE}`: a page of ann's locks reports {l:?}, released"
                );
                assert!(
                    seen.insert(l.token.to_string()),
                    "conformance `{CASE}`: {l:?} in two pages of {size}"
                );
            }
            if !more {
                break;
            }
            after = page.last().cloned();
        }
        assert_eq!(
            seen, want,
            "conformance `{CASE}`: pages of {size} of ann's locks, with bob's locks on every \
             resource between them"
        );
    }
}

/// A page as a listing reads it from what a store reported for a query asking for one more
/// resource than `size` (a store may report more): the locks below `target` after the cursor
/// `after` (`holder`'s only, when given) of the first `size` resources in path order, those
/// resources, and whether another page follows.
fn read_page(
    found: Vec<Lock>,
    target: &ResourcePath,
    after: Option<&ResourcePath>,
    holder: Option<&str>,
    size: usize,
) -> (Vec<Lock>, Vec<ResourcePath>, bool) {
    let mut below: Vec<Lock> = found
        .into_iter()
        .filter(|l| {
            target.is_ancestor_of(&l.root)
                && after.is_none_or(|a| l.root > *a)
                && holder.is_none_or(|h| l.principal.as_deref() == Some(h))
        })
        .collect();
    below.sort_unstable_by(by_root_then_token);
    let mut roots: Vec<ResourcePath> = (below.chunk_by(|a, b| a.root == b.root))
        .map(|same| same[0].root.clone())
        .collect();
    let more = roots.len() > size;
    roots.truncate(size);
    below.retain(|l| roots.contains(&l.root));
    (below, roots, more)
}
