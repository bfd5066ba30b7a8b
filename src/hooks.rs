//! Replaceable hooks: how the layer learns whether a resource exists (and its ETag), and how
//! it creates the empty resource of a LOCK on an unmapped URL.
//!
//! A hook is asked only when the answer matters (an `If` header with ETag conditions, a write
//! that may create a member of a depth-0-locked collection, a LOCK). Without hooks, a service
//! declared with [`LockLayer::resource_space`](crate::LockLayer::resource_space) answers a
//! `HEAD` and an empty `PUT` with `If-None-Match: *`, the latter only for a URL its `HEAD`
//! answered 404 or 410 (a handler may ignore `If-None-Match`,
//! [decision D3](crate::decisions#d3)); without either, existence is unknown and the layer
//! fails closed.
//! Services where a HEAD is expensive or has side effects, or that cannot create resources
//! with an empty PUT, plug in their own.

use http::{request, StatusCode};

use crate::headers::EntityTag;
use crate::store::BoxFuture;
use crate::ResourcePath;

/// What a probe learned about a resource.
///
/// ```
/// use tower_locks::{BoxFuture, EntityTag, ResourcePath, ResourceProbe, ResourceState};
///
/// /// Answers from a fixed list of documents and their ETags.
/// struct Catalogue(Vec<(&'static str, &'static str)>);
///
/// impl ResourceProbe for Catalogue {
///     fn probe<'a>(
///         &'a self,
///         path: &'a ResourcePath,
///         _request: &'a http::request::Parts,
///     ) -> BoxFuture<'a, ResourceState> {
///         let found = self.0.iter().find(|(p, _)| *p == path.as_str());
///         Box::pin(async move {
///             match found {
///                 Some((_, etag)) => ResourceState::Exists { etag: EntityTag::parse(etag) },
///                 None => ResourceState::Missing,
///             }
///         })
///     }
/// }
///
/// # tokio_test::block_on(async {
/// let probe = Catalogue(vec![("/docs/a", "\"v7\"")]);
/// let (parts, ()) = http::Request::new(()).into_parts();
/// let p = |s| ResourcePath::parse(s).unwrap();
/// let ResourceState::Exists { etag: Some(etag) } = probe.probe(&p("/docs/a"), &parts).await
/// else {
///     panic!("/docs/a exists and has an ETag");
/// };
/// assert!(etag.strong_eq(&EntityTag::parse("\"v7\"").unwrap()));
/// assert_eq!(probe.probe(&p("/docs/b"), &parts).await, ResourceState::Missing);
/// # });
/// ```
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
    /// Mapped, but its entity tag could not be read (several `ETag` fields, or a value that
    /// is no entity tag): it exists for every rule, and an `If` list with an entity tag is
    /// false there, `Not` included ([decision D13](crate::decisions#d13)).
    ExistsWithUnreadableEtag,
    /// The probe could not tell. Treated as "may be created" (fail closed); an `If` list
    /// with an entity tag is false there, `Not` included
    /// ([decision D13](crate::decisions#d13)).
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
///
/// ```
/// use http::StatusCode;
/// use tower_locks::{BoxFuture, CreateResult, ResourceCreator, ResourcePath};
///
/// /// Creates documents only inside existing folders.
/// struct Folders(Vec<&'static str>);
///
/// impl ResourceCreator for Folders {
///     fn create_empty<'a>(
///         &'a self,
///         path: &'a ResourcePath,
///         _request: &'a http::request::Parts,
///     ) -> BoxFuture<'a, CreateResult> {
///         let parent_exists = path.parent().is_some_and(|p| self.0.contains(&p.as_str()));
///         Box::pin(async move {
///             if parent_exists {
///                 CreateResult::Created // the LOCK answers 201
///             } else {
///                 CreateResult::Failed(StatusCode::CONFLICT) // the LOCK answers 409
///             }
///         })
///     }
/// }
///
/// # tokio_test::block_on(async {
/// let creator = Folders(vec!["/docs"]);
/// let (parts, ()) = http::Request::new(()).into_parts();
/// let p = |s| ResourcePath::parse(s).unwrap();
/// assert_eq!(creator.create_empty(&p("/docs/new"), &parts).await, CreateResult::Created);
/// assert_eq!(
///     creator.create_empty(&p("/nowhere/new"), &parts).await,
///     CreateResult::Failed(StatusCode::CONFLICT)
/// );
/// # });
/// ```
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
