//! Store errors.

/// A boxed error, `Send + Sync`.
///
/// ```
/// use tower_locks::BoxError;
///
/// let e: BoxError = "connection reset".into();
/// assert_eq!(e.to_string(), "connection reset");
/// let io: BoxError = std::io::Error::other("timed out").into();
/// assert!(io.downcast_ref::<std::io::Error>().is_some());
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a [`LockStore`](crate::LockStore) call failed. The layer answers every store failure
/// with `503 Service Unavailable` (fail closed) unless fail-open was chosen.
///
/// ```
/// use std::error::Error as _;
/// use tower_locks::LockStoreError;
///
/// let e = LockStoreError::Corrupt("bad record".into());
/// assert_eq!(e.to_string(), "lock store holds corrupt data: bad record");
/// assert!(e.source().is_none());
///
/// let e = LockStoreError::unavailable("connection refused");
/// assert!(matches!(e, LockStoreError::Unavailable(_)));
/// assert_eq!(e.source().unwrap().to_string(), "connection refused");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockStoreError {
    /// The backend could not be reached (connection refused, timed out, …).
    #[error("lock store unavailable")]
    Unavailable(#[source] BoxError),
    /// The backend answered with an error.
    #[error("lock store backend error")]
    Backend(#[source] BoxError),
    /// Stored data could not be decoded.
    #[error("lock store holds corrupt data: {0}")]
    Corrupt(String),
}

impl LockStoreError {
    /// Wrap a connection-level failure.
    ///
    /// ```
    /// use std::error::Error as _;
    /// use tower_locks::LockStoreError;
    ///
    /// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    /// let e = LockStoreError::unavailable(io);
    /// assert_eq!(e.to_string(), "lock store unavailable");
    /// let cause = e.source().unwrap().downcast_ref::<std::io::Error>().unwrap();
    /// assert_eq!(cause.kind(), std::io::ErrorKind::ConnectionRefused);
    /// ```
    pub fn unavailable(e: impl Into<BoxError>) -> Self {
        Self::Unavailable(e.into())
    }

    /// Wrap a backend failure.
    ///
    /// ```
    /// use std::error::Error as _;
    /// use tower_locks::LockStoreError;
    ///
    /// let e = LockStoreError::backend(format!("ERR {}", "wrong type"));
    /// assert!(matches!(e, LockStoreError::Backend(_)));
    /// assert_eq!(e.to_string(), "lock store backend error");
    /// assert_eq!(e.source().unwrap().to_string(), "ERR wrong type");
    /// ```
    pub fn backend(e: impl Into<BoxError>) -> Self {
        Self::Backend(e.into())
    }
}
