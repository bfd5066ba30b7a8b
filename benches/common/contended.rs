//! The "two tasks contending" harness shared by the LOCK+UNLOCK benches of this crate
//! (`benches/store.rs`) and of `benches/peer` (which includes this file with `#[path]`).
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

/// Run `iters` operations split over two tasks on `rt` (a multi-thread runtime with two
/// workers) and return the wall time. `task(t, n)` is task `t`'s future, which must perform
/// `n` operations (each task gets half of `iters`, rounded up).
pub(crate) fn two_tasks<F, Fut>(rt: &Runtime, iters: u64, task: F) -> Duration
where
    F: Fn(usize, u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let start = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..2)
            .map(|t| tokio::spawn(task(t, iters.div_ceil(2))))
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    start.elapsed()
}
