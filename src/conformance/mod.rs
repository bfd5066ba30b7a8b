//! The [`LockStore`] conformance kit (feature `conformance`): the checks every store must
//! pass, reusable by third-party store authors.
//!
//! Each case is a `pub async fn` that panics with a message naming the case and the broken
//! rule. [`run_all`] runs every case, each on a **fresh store** from your factory; the factory
//! gets the [`ManualClock`] the store must read time from, so expiry is checked without
//! waiting. Stores that expire locks on their own clock (Redis, a database with TTLs) use
//! [`run_all_real_time`] instead, which checks expiry with one-second locks and real sleeps
//! (about four seconds in all).
//!
//! Every case but one also works **inside a shared store**: it only touches paths under its
//! own namespace `/tower-locks-conformance/<uuid>` and principals with a unique suffix, so the
//! factory of [`run_all_real_time`] may hand out the same store (one Redis database) every
//! time, and that store may hold other data. It must not hold locks on `/` or on
//! `/tower-locks-conformance` while the kit runs. The exception is
//! [`root_lock_covers_everything`], which locks `/` itself: [`run_all`] runs it on a fresh
//! store, [`run_all_real_time`] leaves it out; run it yourself on an empty store (or key
//! prefix) that no other test uses meanwhile.
//!
//! **One kit run at a time per store**: [`anonymous_quota`], [`store_quota`] and
//! [`quota_expiry_manual`] measure counts that span the whole store (all anonymous locks, all
//! locks), so two runs of the kit, or other tests that take locks, at the same time on one
//! store make them fail. Give each concurrent run its own store, database or key prefix.
//!
//! Run the kit on a multi-threaded runtime: the concurrency cases spawn tasks that race.
//! Don't pause tokio's clock (`start_paused`): the real-time cases need time to pass.
//!
//! Run it from a test of your store crate (`tower-locks` as a dev-dependency with the
//! `conformance` feature):
//!
//! ```
//! use std::sync::Arc;
//! use tower_locks::{conformance, ManualClock, MemoryLockStore};
//!
//! // In your tests: `#[tokio::test(flavor = "multi_thread")] async fn conforms() { … }`
//! #[tokio::main(flavor = "multi_thread")]
//! async fn main() {
//!     // A store on an injectable clock: expiry is checked by moving the clock.
//!     conformance::run_all(|clock: Arc<ManualClock>| MemoryLockStore::with_clock(clock)).await;
//!
//!     // Or one case at a time, e.g. while developing:
//!     let store = MemoryLockStore::new();
//!     conformance::exclusive_shared_compatibility(&store).await;
//! }
//! ```
//!
//! A store that keeps its own time (as a Redis store would):
//!
//! ```no_run
//! # use tower_locks::{conformance, MemoryLockStore};
//! # fn connect_to_test_redis() -> MemoryLockStore { MemoryLockStore::new() }
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() {
//! conformance::run_all_real_time(|| connect_to_test_redis()).await;
//! # }
//! ```
//!
//! Lock values are compared field by field, except that a store may round `expires_at` by up
//! to one second (e.g. keeping milliseconds).

mod concurrency;
mod expiry;
mod grants;
mod kit;
mod queries;
mod quotas;
mod tokens;

use std::sync::Arc;

use crate::{LockStore, ManualClock};

pub use concurrency::{
    concurrent_exclusive_create, concurrent_parent_child_create, concurrent_quota_create,
    concurrent_shared_create,
};
pub use expiry::{expiry_manual, expiry_real_time, refresh_resets_timer_manual};
pub use grants::{
    all_conflicts_reported, ancestor_depth_blocks_descendants, create_get_query_round_trip,
    depth_infinity_blocked_by_locks_below, exclusive_shared_compatibility,
    fencing_numbers_increase, root_lock_covers_everything, segment_boundaries, token_format,
    trailing_slash_equivalence,
};
pub use queries::{
    any_shared_lock_will_do, check_matches_reference, check_reports_enough,
    query_matches_reference, query_pages_list_everything, query_pages_of_a_holder,
    query_until_blocked_reports_enough,
};
pub use quotas::{
    anonymous_quota, conflict_before_quota, principal_quota, quota_expiry_manual, resource_quota,
    store_quota,
};
pub use tokens::{refresh_outcomes, remove_subtree_counts, unlock_outcomes};

/// Run every case, each on a fresh store from `make`, which must build a store whose time is
/// the given [`ManualClock`]. This includes [`root_lock_covers_everything`], which locks `/`
/// itself: every store `make` builds must start empty (a fresh database or key prefix) and be
/// used by nothing else while the kit runs.
///
/// # Panics
/// When a case fails, with a message naming it.
///
/// ```
/// # #[tokio::main(flavor = "multi_thread")]
/// # async fn main() {
/// use tower_locks::{conformance, MemoryLockStore};
/// conformance::run_all(|clock| MemoryLockStore::with_clock(clock)).await;
/// # }
/// ```
pub async fn run_all<S: LockStore>(make: impl Fn(Arc<ManualClock>) -> S) {
    let fresh = || make(Arc::new(ManualClock::new()));
    run_clockless(&fresh).await;
    root_lock_covers_everything(&fresh()).await;
    let clock = Arc::new(ManualClock::new());
    expiry_manual(&make(clock.clone()), &clock).await;
    let clock = Arc::new(ManualClock::new());
    refresh_resets_timer_manual(&make(clock.clone()), &clock).await;
    let clock = Arc::new(ManualClock::new());
    quota_expiry_manual(&make(clock.clone()), &clock).await;
}

/// Run every case, each on a fresh store from `make`, checking expiry in real time (locks of
/// one second and sleeps): for stores that expire locks on their own clock.
///
/// `make` may hand out the same store every time (one database shared with other data), as
/// long as no other kit run uses it meanwhile (see the [module docs](self)). Therefore
/// [`root_lock_covers_everything`], which locks `/`, is left out: run it on a store of its
/// own.
///
/// # Panics
/// When a case fails, with a message naming it.
///
/// ```no_run
/// # #[tokio::main(flavor = "multi_thread")]
/// # async fn main() {
/// use tower_locks::{conformance, MemoryLockStore};
/// conformance::run_all_real_time(MemoryLockStore::new).await;
/// # }
/// ```
pub async fn run_all_real_time<S: LockStore>(make: impl Fn() -> S) {
    run_clockless(&make).await;
    expiry_real_time(&make()).await;
}

async fn run_clockless<S: LockStore>(make: &impl Fn() -> S) {
    create_get_query_round_trip(&make()).await;
    token_format(&make()).await;
    exclusive_shared_compatibility(&make()).await;
    ancestor_depth_blocks_descendants(&make()).await;
    depth_infinity_blocked_by_locks_below(&make()).await;
    all_conflicts_reported(&make()).await;
    segment_boundaries(&make()).await;
    trailing_slash_equivalence(&make()).await;
    query_matches_reference(&make()).await;
    check_matches_reference(&make()).await;
    any_shared_lock_will_do(&make()).await;
    check_reports_enough(&make()).await;
    query_until_blocked_reports_enough(&make()).await;
    query_pages_list_everything(&make()).await;
    query_pages_of_a_holder(&make()).await;
    refresh_outcomes(&make()).await;
    unlock_outcomes(&make()).await;
    remove_subtree_counts(&make()).await;
    principal_quota(&make()).await;
    anonymous_quota(&make()).await;
    resource_quota(&make()).await;
    store_quota(&make()).await;
    conflict_before_quota(&make()).await;
    fencing_numbers_increase(&make()).await;
    concurrent_exclusive_create(Arc::new(make())).await;
    concurrent_shared_create(Arc::new(make())).await;
    concurrent_parent_child_create(Arc::new(make())).await;
    concurrent_quota_create(Arc::new(make())).await;
}

/// The fewest unsatisfied locks [`LockStore::check`] may report when there are more: a store
/// may stop there instead of building every blocking lock.
///
/// ```
/// use tower_locks::{conformance::MIN_REPORTED, Below};
///
/// // As many as a removal's check asks for below its target before it may stop.
/// assert_eq!(MIN_REPORTED, Below::BLOCKED);
/// assert_eq!(MIN_REPORTED, 16);
/// ```
pub const MIN_REPORTED: usize = crate::Below::BLOCKED;
