//! Who may list every lock, and who may break or take over somebody else's.

use http::request;

use crate::store::Lock;
use crate::ResourcePath;

/// The administrative decisions of the [`LockApi`](crate::LockApi). The defaults answer "no":
/// a list shows the requester's own locks only, and only a lock's holder may remove it.
///
/// ```
/// use tower_locks::{Lock, LockPolicy, Principal, ResourcePath};
///
/// /// Administrators see and break every lock.
/// struct Admins;
///
/// impl LockPolicy for Admins {
///     fn may_list_all(&self, request: &http::request::Parts, _prefix: &ResourcePath) -> bool {
///         is_admin(request)
///     }
///     fn may_break(&self, request: &http::request::Parts, _lock: &Lock) -> bool {
///         is_admin(request)
///     }
/// }
///
/// fn is_admin(request: &http::request::Parts) -> bool {
///     request.extensions.get::<Principal>().is_some_and(|p| p.as_str() == "admin")
/// }
///
/// let (parts, ()) = http::Request::new(()).into_parts();
/// assert!(!Admins.may_list_all(&parts, &ResourcePath::root()));
/// ```
pub trait LockPolicy: Send + Sync + 'static {
    /// Whether `request` may list every lock at or below `prefix` (otherwise it sees its
    /// own). Default: no.
    fn may_list_all(&self, request: &request::Parts, prefix: &ResourcePath) -> bool {
        let _ = (request, prefix);
        false
    }

    /// Whether `request` may break (or take over) `lock`, which another principal holds.
    /// Default: no.
    fn may_break(&self, request: &request::Parts, lock: &Lock) -> bool {
        let _ = (request, lock);
        false
    }
}

/// The default [`LockPolicy`]: nobody lists other principals' locks, nobody but the holder
/// removes a lock.
///
/// ```
/// use tower_locks::{HolderOnly, Lock, LockPolicy, ResourcePath};
///
/// let (parts, ()) = http::Request::new(()).into_parts();
/// let lock = Lock::builder(ResourcePath::parse("/a").unwrap()).build_unstored();
/// assert!(!HolderOnly.may_break(&parts, &lock));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HolderOnly;

impl LockPolicy for HolderOnly {}
