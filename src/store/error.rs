//! Store errors.

/// A boxed error, `Send + Sync`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a [`LockStore`](crate::LockStore) call failed. The layer answers every store failure
/// with `503 Service Unavailable` (fail closed) unless fail-open was chosen.
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
    pub fn unavailable(e: impl Into<BoxError>) -> Self {
        Self::Unavailable(e.into())
    }

    /// Wrap a backend failure.
    pub fn backend(e: impl Into<BoxError>) -> Self {
        Self::Backend(e.into())
    }
}
