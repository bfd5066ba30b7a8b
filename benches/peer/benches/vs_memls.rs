//! tower-locks' `MemoryLockStore` next to dav-server's `MemLs`, same cases, same run.
//!
//! Like for like, each check case twice on our side: `tower-locks-check` is
//! `LockStore::check` with the submitted tokens, the verb that does what `MemLs::check` does;
//! `tower-locks-query` is `query` plus verifying that every lock found was submitted, which is
//! what the layer pays (it needs the locks). Against `MemLs::check(deep = false)` for the
//! covering cases and `check(deep = true)` for the subtree, with the same submitted tokens.
//! LOCK + UNLOCK is `create` + `unlock` against `lock` + `unlock`. Layout:
//! `benches/common/fixture.rs`, plus *locked-blocked* (the locked path, its token not
//! submitted), the cases at depth 1 (`/top-free`, `/top-locked`) and two refused DELETE-style
//! subtree checks (`subtree-100-blocked`, `subtree-1000-blocked`: that many
//! locked members of `/wide100` or `/wide1000`, no token submitted). Filter with criterion's
//! regex, e.g. `cargo bench -- 'n=(1e3|1e6)/'`.
//!
//! ```text
//! cd benches/peer && cargo bench
//! ```

#[path = "../../common/contended.rs"]
mod contended;
#[path = "../../common/fixture.rs"]
mod fixture;
#[path = "../../common/store_setup.rs"]
mod store_setup;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dav_server::davpath::DavPath;
use dav_server::ls::DavLockSystem;
use dav_server::memls::MemLs;
use store_setup::{p, pair};
use tower_locks::{
    CreateOutcome, LockDepth, LockQuery, LockStore, LockTimeout, MemoryLockStore, NewLock,
    Submission,
};

/// Long enough that no fixture lock expires during a full run (a run takes over 10 minutes;
/// with 600 s the 1e6 cases would check expired locks).
const TIMEOUT: Duration = Duration::from_secs(86_400);

fn dp(s: &str) -> DavPath {
    DavPath::new(s).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Both stores, holding the same locks.
struct Stores {
    ours: MemoryLockStore,
    memls: Box<MemLs>,
}

impl Stores {
    /// Lock `path` in both stores; returns both tokens.
    async fn lock(&self, path: &str, infinity: bool) -> (String, String) {
        let depth = if infinity {
            LockDepth::Infinity
        } else {
            LockDepth::Zero
        };
        let ours = match self
            .ours
            .create(
                NewLock::new(p(path))
                    .depth(depth)
                    .timeout(LockTimeout::Seconds(TIMEOUT.as_secs() as u32)),
            )
            .await
            .unwrap()
        {
            CreateOutcome::Created(l) => l.token.to_string(),
            other => panic!("{other:?}"),
        };
        let theirs = self
            .memls
            .lock(&dp(path), None, None, Some(TIMEOUT), false, infinity)
            .await
            .unwrap_or_else(|l| panic!("MemLs conflict on {path}: {l:?}"))
            .token;
        (ours, theirs)
    }
}

/// One case: what each store is asked, and the tokens the client submits to each.
struct Case {
    name: &'static str,
    ours: LockQuery,
    ours_tokens: Vec<String>,
    theirs: DavPath,
    theirs_deep: bool,
    theirs_tokens: Vec<String>,
}

async fn ours_query(store: &MemoryLockStore, q: &LockQuery, submitted: &[String]) -> bool {
    let locks = store.query(q).await.unwrap();
    locks
        .iter()
        .all(|l| submitted.iter().any(|s| *s == l.token))
}

async fn ours_check(store: &MemoryLockStore, q: &LockQuery, submitted: &[&str]) -> bool {
    let outcome = store
        .check(q, Submission::new(submitted, None))
        .await
        .unwrap();
    outcome.allowed()
}

fn checks(c: &mut Criterion) {
    let rt = rt();
    let stores = Stores {
        ours: MemoryLockStore::new(),
        memls: MemLs::new(),
    };
    // The fixture, and the tokens each store gave it.
    let cases: Vec<(usize, Vec<Case>)> = rt.block_on(async {
        let mut out = Vec::new();
        for d in fixture::DEPTHS {
            let mut members = Vec::new();
            for k in 0..fixture::MEMBERS {
                members.push(stores.lock(&fixture::member(d, k), false).await);
            }
            let inf = stores.lock(&fixture::infinity_root(d), true).await;
            let (ours_m, theirs_m): (Vec<_>, Vec<_>) = members.iter().cloned().unzip();
            let cases = vec![
                Case {
                    name: "unlocked",
                    ours: LockQuery::new().covering(p(&fixture::unlocked(d))),
                    ours_tokens: vec![],
                    theirs: dp(&fixture::unlocked(d)),
                    theirs_deep: false,
                    theirs_tokens: vec![],
                },
                Case {
                    name: "locked",
                    ours: LockQuery::new().covering(p(&fixture::member(d, 0))),
                    ours_tokens: vec![members[0].0.clone()],
                    theirs: dp(&fixture::member(d, 0)),
                    theirs_deep: false,
                    theirs_tokens: vec![members[0].1.clone()],
                },
                Case {
                    name: "locked-blocked",
                    ours: LockQuery::new().covering(p(&fixture::member(d, 0))),
                    ours_tokens: vec![],
                    theirs: dp(&fixture::member(d, 0)),
                    theirs_deep: false,
                    theirs_tokens: vec![],
                },
                Case {
                    name: "under-infinity",
                    ours: LockQuery::new().covering(p(&fixture::under_infinity(d))),
                    ours_tokens: vec![inf.0.clone()],
                    theirs: dp(&fixture::under_infinity(d)),
                    theirs_deep: false,
                    theirs_tokens: vec![inf.1.clone()],
                },
                Case {
                    name: "subtree",
                    ours: LockQuery::new().subtree(p(&fixture::collection(d))),
                    ours_tokens: ours_m,
                    // MemLs keys collections without the trailing slash too.
                    theirs: dp(&fixture::collection(d)),
                    theirs_deep: true,
                    theirs_tokens: theirs_m,
                },
            ];
            out.push((d, cases));
        }
        // Depth 1: a member of `/`. (No under-infinity case: it would need a depth-infinity
        // lock on `/`, which covers every other case.)
        let top = stores.lock("/top-locked", false).await;
        out.push((
            1,
            vec![
                Case {
                    name: "unlocked",
                    ours: LockQuery::new().covering(p("/top-free")),
                    ours_tokens: vec![],
                    theirs: dp("/top-free"),
                    theirs_deep: false,
                    theirs_tokens: vec![],
                },
                Case {
                    name: "locked",
                    ours: LockQuery::new().covering(p("/top-locked")),
                    ours_tokens: vec![top.0],
                    theirs: dp("/top-locked"),
                    theirs_deep: false,
                    theirs_tokens: vec![top.1],
                },
                Case {
                    name: "locked-blocked",
                    ours: LockQuery::new().covering(p("/top-locked")),
                    ours_tokens: vec![],
                    theirs: dp("/top-locked"),
                    theirs_deep: false,
                    theirs_tokens: vec![],
                },
            ],
        ));
        // A DELETE of a collection with many locked members, none of them submitted: the
        // answer is "refused", and which locks block.
        let mut wide = Vec::new();
        for (name, members) in [
            ("subtree-100-blocked", 100),
            ("subtree-1000-blocked", 1_000),
        ] {
            let coll = format!("/wide{members}");
            for k in 0..members {
                stores.lock(&format!("{coll}/m{k}"), false).await;
            }
            wide.push(Case {
                name,
                ours: LockQuery::new().subtree(p(&coll)),
                ours_tokens: vec![],
                theirs: dp(&coll),
                theirs_deep: true,
                theirs_tokens: vec![],
            });
        }
        out.push((2, wide));
        out
    });

    let mut held = 0;
    let mut g = c.benchmark_group("check");
    for n in fixture::NS {
        rt.block_on(async {
            for (d, i) in fixture::grow(held, n) {
                stores.lock(&fixture::background(d, i), false).await;
            }
        });
        held = n;
        for (d, cases) in &cases {
            for case in cases {
                // Both stores must agree on the answer.
                let tokens: Vec<&str> = case.ours_tokens.iter().map(String::as_str).collect();
                let ok = rt.block_on(ours_query(&stores.ours, &case.ours, &case.ours_tokens));
                assert_eq!(
                    ok,
                    rt.block_on(ours_check(&stores.ours, &case.ours, &tokens))
                );
                let theirs = rt.block_on(stores.memls.check(
                    &case.theirs,
                    None,
                    false,
                    case.theirs_deep,
                    &case.theirs_tokens,
                ));
                let blocked = case.name.ends_with("-blocked");
                assert!(
                    ok != blocked && theirs.is_ok() != blocked,
                    "{} d={d}",
                    case.name
                );
                let param = format!("n={}/d={d}", fixture::label(n));
                g.bench_function(
                    BenchmarkId::new(format!("{}/tower-locks-check", case.name), &param),
                    |b| {
                        b.to_async(&rt).iter(|| async {
                            black_box(ours_check(&stores.ours, &case.ours, &tokens).await)
                        })
                    },
                );
                g.bench_function(
                    BenchmarkId::new(format!("{}/tower-locks-query", case.name), &param),
                    |b| {
                        b.to_async(&rt).iter(|| async {
                            black_box(ours_query(&stores.ours, &case.ours, &case.ours_tokens).await)
                        })
                    },
                );
                g.bench_function(
                    BenchmarkId::new(format!("{}/MemLs", case.name), &param),
                    |b| {
                        b.to_async(&rt).iter(|| async {
                            black_box(
                                stores
                                    .memls
                                    .check(
                                        &case.theirs,
                                        None,
                                        false,
                                        case.theirs_deep,
                                        &case.theirs_tokens,
                                    )
                                    .await,
                            )
                        })
                    },
                );
            }
        }
    }
    g.finish();
}

async fn memls_pair(store: &MemLs, path: &DavPath) {
    let lock = store
        .lock(path, None, None, Some(TIMEOUT), false, false)
        .await
        .unwrap();
    store.unlock(path, &lock.token).await.unwrap();
}

fn lock_unlock(c: &mut Criterion) {
    let rt = rt();
    let stores = Stores {
        ours: MemoryLockStore::new(),
        memls: MemLs::new(),
    };
    rt.block_on(async {
        for (d, i) in fixture::grow(0, 1_000) {
            stores.lock(&fixture::background(d, i), false).await;
        }
    });
    let mut g = c.benchmark_group("lock+unlock");
    let (path, dpath) = (p("/bench/dir/doc"), dp("/bench/dir/doc"));
    g.bench_function("1 task/tower-locks", |b| {
        b.to_async(&rt).iter(|| pair(&stores.ours, &path))
    });
    g.bench_function("1 task/MemLs", |b| {
        b.to_async(&rt).iter(|| memls_pair(&stores.memls, &dpath))
    });
    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let ours = Arc::new(stores.ours);
    let memls: Arc<MemLs> = Arc::new(*stores.memls);
    g.bench_function("2 tasks/tower-locks", |b| {
        b.iter_custom(|iters| {
            contended::two_tasks(&mt, iters, |t, n| {
                let store = ours.clone();
                async move {
                    let path = p(&format!("/bench/t{t}/doc"));
                    for _ in 0..n {
                        pair(&store, &path).await;
                    }
                }
            })
        })
    });
    g.bench_function("2 tasks/MemLs", |b| {
        b.iter_custom(|iters| {
            contended::two_tasks(&mt, iters, |t, n| {
                let store = memls.clone();
                async move {
                    let path = dp(&format!("/bench/t{t}/doc"));
                    for _ in 0..n {
                        memls_pair(&store, &path).await;
                    }
                }
            })
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(700))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = checks, lock_unlock
}
criterion_main!(benches);
