//! Resource locking for any Tower HTTP service.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod path;
mod store;

pub use path::{PathError, Resolved, ResourcePath};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::{RedisLockStore, RedisLockStoreBuilder};
pub use store::{
    new_token, BoxError, BoxFuture, Clock, CreateOutcome, DynLockStore, Lock, LockDepth,
    LockQuery, LockScope, LockStore, LockStoreError, LockTimeout, ManualClock, MemoryLockStore,
    NewLock, QueryTarget, SystemClock, TokenAccess, TokenOutcome, TokenVerdict,
};
