//! Resource locking for any Tower HTTP service.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod headers;
mod path;
mod store;

pub use headers::{
    destination, parse_depth, parse_if, parse_lock_token, parse_overwrite, parse_timeout,
    parse_timeout_headers, Condition, ConditionKind, Depth, EntityTag, HeaderError, IfHeader,
    IfHeaderError, IfLimits, IfList,
};
pub use path::{PathError, Resolved, ResourcePath};
pub use store::{
    new_token, BoxError, BoxFuture, Clock, CreateOutcome, DynLockStore, Lock, LockDepth,
    LockQuery, LockScope, LockStore, LockStoreError, LockTimeout, ManualClock, MemoryLockStore,
    NewLock, QueryTarget, SystemClock, TokenAccess, TokenOutcome, TokenVerdict,
};
