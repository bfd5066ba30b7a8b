//! Replaceable hooks: how the layer learns whether a resource exists (and its ETag), and how
//! it creates the empty resource of a LOCK on an unmapped URL.
//!
//! The defaults ask the inner service: a `HEAD` sub-request, and an empty `PUT` with
//! `If-None-Match: *`. That works for any service that implements HEAD and PUT, costs one
//! extra inner call only when the answer matters (an `If` header with ETag conditions, a
//! write that may create a member of a depth-0-locked collection, a LOCK), and never
//! overwrites a resource created concurrently. Services where a HEAD is expensive or has side
//! effects, or that cannot create resources with an empty PUT, plug in their own.

use http::{request, StatusCode};

use crate::headers::EntityTag;
use crate::store::BoxFuture;
use crate::ResourcePath;

/// What a probe learned about a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResourceState {
    /// Not mapped (404 or 410).
    Missing,
    /// Mapped, with its current entity tag if it has one.
    Exists {
        /// The current ETag.
        etag: Option<EntityTag>,
    },
    /// The probe could not tell. Treated as "may be created" (fail closed) and as having no
    /// ETag.
    Unknown,
}

/// Tells whether a resource exists and what its ETag is.
///
/// ```
/// use tower_locks::{BoxFuture, ResourcePath, ResourceProbe, ResourceState};
///
/// /// Everything exists, nothing has an ETag.
/// struct AlwaysThere;
///
/// impl ResourceProbe for AlwaysThere {
///     fn probe<'a>(
///         &'a self,
///         _path: &'a ResourcePath,
///         _request: &'a http::request::Parts,
///     ) -> BoxFuture<'a, ResourceState> {
///         Box::pin(async { ResourceState::Exists { etag: None } })
///     }
/// }
/// let layer = tower_locks::LockLayer::new(tower_locks::MemoryLockStore::new())
///     .with_resource_probe(AlwaysThere);
/// # let _ = layer;
/// ```
pub trait ResourceProbe: Send + Sync + 'static {
    /// Probe `path` (client-visible, mount prefix included) for the request `request`.
    fn probe<'a>(
        &'a self,
        path: &'a ResourcePath,
        request: &'a request::Parts,
    ) -> BoxFuture<'a, ResourceState>;
}

/// The result of creating the empty resource of a LOCK on an unmapped URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CreateResult {
    /// Created: the LOCK answers 201.
    Created,
    /// It already existed: the LOCK answers 200.
    AlreadyExists,
    /// Creation failed with this status (for example 409 for a missing parent): the lock is
    /// rolled back and the LOCK answers this status.
    Failed(StatusCode),
}

/// Creates the empty resource of a LOCK on an unmapped URL (RFC 4918 §7.3).
///
/// ```
/// use tower_locks::{BoxFuture, CreateResult, ResourceCreator, ResourcePath};
///
/// /// Lock-null-like behaviour: never create anything.
/// struct NoCreate;
///
/// impl ResourceCreator for NoCreate {
///     fn create_empty<'a>(
///         &'a self,
///         _path: &'a ResourcePath,
///         _request: &'a http::request::Parts,
///     ) -> BoxFuture<'a, CreateResult> {
///         Box::pin(async { CreateResult::AlreadyExists })
///     }
/// }
/// let layer = tower_locks::LockLayer::new(tower_locks::MemoryLockStore::new())
///     .with_resource_creator(NoCreate);
/// # let _ = layer;
/// ```
pub trait ResourceCreator: Send + Sync + 'static {
    /// Create an empty, non-collection resource at `path` (client-visible) unless one exists.
    fn create_empty<'a>(
        &'a self,
        path: &'a ResourcePath,
        request: &'a request::Parts,
    ) -> BoxFuture<'a, CreateResult>;
}
