//! Who is making the request (RFC 4918 §6.4): locks are bound to their creator.

use std::fmt;
use std::sync::Arc;

use http::request;

/// The authenticated principal of a request, inserted into the request extensions by an
/// authentication layer that runs **before** (outside) [`LockLayer`](crate::LockLayer).
///
/// A lock records the principal that created it; a token submitted by another principal does
/// not satisfy the lock, cannot refresh it, and cannot UNLOCK it. Requests without a principal
/// create locks that anyone holding the token may use.
///
/// ```
/// use tower_locks::Principal;
///
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(Principal::new("alice"));
/// assert_eq!(req.extensions().get::<Principal>().unwrap().as_str(), "alice");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal(String);

impl Principal {
    /// A principal named `name`.
    ///
    /// ```
    /// use tower_locks::Principal;
    ///
    /// let alice = Principal::new("alice");
    /// assert_eq!(alice, Principal::from(String::from("alice")));
    /// assert_ne!(alice, Principal::new("bob"));
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The principal's name.
    ///
    /// ```
    /// use tower_locks::{Lock, Principal, ResourcePath};
    ///
    /// let p = Principal::new("alice");
    /// assert_eq!(p.as_str(), "alice");
    ///
    /// // Locks record the name; only the same principal may use the lock's token.
    /// let lock = Lock::builder(ResourcePath::parse("/doc").unwrap())
    ///     .principal(p.as_str())
    ///     .build_unstored();
    /// assert!(lock.usable_by(Some(p.as_str())));
    /// assert!(!lock.usable_by(Some("bob")));
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Principal {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Principal {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// A user-supplied principal extractor.
pub(crate) type PrincipalFn = Arc<dyn Fn(&request::Parts) -> Option<String> + Send + Sync>;

#[derive(Clone)]
pub(crate) enum PrincipalSource {
    Extension,
    Custom(PrincipalFn),
}

impl PrincipalSource {
    pub(crate) fn extract(&self, parts: &request::Parts) -> Option<String> {
        match self {
            PrincipalSource::Extension => parts
                .extensions
                .get::<Principal>()
                .map(|p| p.as_str().to_owned()),
            PrincipalSource::Custom(f) => f(parts),
        }
    }
}

impl fmt::Debug for PrincipalSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrincipalSource::Extension => f.write_str("Extension"),
            PrincipalSource::Custom(_) => f.write_str("Custom(<fn>)"),
        }
    }
}
