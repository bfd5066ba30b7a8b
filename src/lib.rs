//! Real resource locking for any Tower HTTP service: RFC 4918 (WebDAV class 2) write locks
//! and REST pessimistic locking, enforced by a layer in front of your service.
//!
//! [`LockLayer`] wraps any `tower::Service<http::Request<B>>` — an axum `Router`, a hyper
//! service, a reverse proxy. Before every request that would modify a resource it asks a
//! pluggable [`LockStore`] which write locks cover the resources the request touches, and
//! whether the request carries their tokens (in the `If` header, RFC 4918 §10.4, submitted by
//! the principal that created the lock). When it does not, the layer answers `423 Locked`
//! itself — with a `DAV:error` body naming the unsatisfied lock roots (up to 16, the others
//! counted), or an RFC 9457
//! `application/problem+json` body for clients that prefer JSON — and the inner service never
//! sees the request. A false `If` header gets `412`. Safe methods (GET, HEAD, OPTIONS, TRACE,
//! PROPFIND, REPORT, SEARCH) pass straight through without touching the store.
//!
//! The layer also answers `LOCK` (create and refresh) and `UNLOCK` itself, so a service that
//! knows nothing about locks becomes a class-2 WebDAV resource, and removes the locks of
//! resources that a successful DELETE or MOVE unmapped.
//!
//! Beside it:
//!
//! - [`LockApi`] ([`LockLayer::lock_api`]): a JSON lock API for REST clients — acquire, read,
//!   list, refresh, release, break, take over — on the same store and rules;
//! - [`LockPropertiesLayer`] ([`LockLayer::lock_properties`]): `DAV:lockdiscovery` and
//!   `DAV:supportedlock` added to the PROPFIND answers of a service that knows nothing about
//!   locks;
//! - [`LockLayer::on_lock_event`]: grants, refreshes, releases, breaks and expiries, for audit
//!   logs and notifications;
//! - [`decisions`]: the choices the crate makes where the RFCs leave one open.
//!
//! # Example (axum)
//!
//! Mount it like any other layer:
//!
//! ```
//! use axum::{routing::put, Router};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//! use tower_locks::{CreateOutcome, LockLayer, LockStore, MemoryLockStore, NewLock, ResourcePath};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = std::sync::Arc::new(MemoryLockStore::new());
//! let app = Router::new()
//!     .route("/docs/{id}", put(|| async { "saved" }).get(|| async { "doc" }))
//!     .layer(LockLayer::new(store.clone()));
//!
//! // Somebody locks /docs/1 (here directly through the store; a client would send LOCK).
//! let CreateOutcome::Created(lock) = store
//!     .create(NewLock::new(ResourcePath::parse("/docs/1").unwrap()))
//!     .await
//!     .unwrap() else { unreachable!() };
//!
//! // A write without the token is refused before it reaches the handler...
//! let res = app.clone()
//!     .oneshot(Request::put("/docs/1").body(axum::body::Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(res.status(), StatusCode::LOCKED);
//!
//! // ...and passes with it.
//! let res = app
//!     .oneshot(
//!         Request::put("/docs/1")
//!             .header("If", format!("(<{}>)", lock.token))
//!             .body(axum::body::Body::empty())
//!             .unwrap(),
//!     )
//!     .await
//!     .unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//! # }
//! ```
//!
//! # Where it goes in the stack
//!
//! Put the layer **inside** authentication and authorization (RFC 4918 §8.1: a 401 or 403 must
//! win over a 423, so a client cannot learn that a resource it may not see is locked). The
//! authentication layer tells the lock layer who is asking by inserting a [`Principal`] into
//! the request extensions (or see [`LockLayer::principal_from`]).
//!
//! The layer calls the service it wraps only with the request it was given
//! ([decision D18](crate::decisions#d18)), so every way of mounting it is safe for what that
//! mounting covers:
//!
//! | mounting | what it covers |
//! |---|---|
//! | `Router::layer` | every route, the router's fallback, LOCK and UNLOCK on any path |
//! | `Router::route_layer` | the routes, each route's own `.fallback(..)` included; **not** the router's `.fallback(..)`: a write to a path no route matches that the router's fallback serves is unguarded (use `Router::layer` for such a router); without one, such a path gets axum's 404 (a LOCK there locks nothing) |
//! | `MethodRouter::route_layer` (`get(..).put(..).route_layer(..)`) | that route's listed methods only; **not** its `.fallback(..)` (or `any`), through which axum routes COPY, MOVE, LOCK and every method it has no `MethodFilter` for: writes served there are unguarded, so give such a route `.layer(..)` instead. Without a fallback, LOCK and UNLOCK get axum's 405 and lock nothing (take locks through the JSON lock API or a mounting above), yet the layer still advertises class 2 on the OPTIONS answers it sees: set [`advertise_dav(false)`](LockLayer::advertise_dav) for this mounting |
//! | `MethodRouter::layer` (`get(..).put(..).fallback(..).layer(..)`) | that route, its fallback included: LOCK and UNLOCK on its path |
//! | `tower::ServiceBuilder` around the `Router`, `fallback_service` | everything the router serves |
//! | `Router::nest` / `nest_service` under a prefix | the nested routes; name the prefix with [`LockLayer::mount_prefix`] ([decision D10](crate::decisions#d10)). With feature `axum`, a layer inside a nest it was not told about (no or another mount prefix) refuses every guarded request with a 500 saying so ([`Rejection::MountPrefixMismatch`]); without it the layer cannot tell, and judges the stripped path against the client's `Destination` and `If` tags. A prefix with a path parameter (`nest("/t/{tenant}", ..)`) can be no mount prefix: put the layer outside the nest (`Router::layer` on the router that calls `nest`). With `nest` and `Router::layer` inside, a path no nested route matches gets the outer 404 |
//! | a bare hyper 1 service, a reverse proxy | everything |
//!
//! # Existence and ETags
//!
//! Three rules need to know whether a resource exists or its current ETag: creating a member
//! of a depth-0-locked collection needs the collection's token, modifying an existing one does
//! not ([decision D4](crate::decisions#d4)); an `If` list may name an entity tag; a LOCK on an
//! unmapped URL creates an empty resource ([decision D3](crate::decisions#d3)). The layer asks
//! only hooks ([`LockLayer::with_resource_probe`], [`LockLayer::with_resource_creator`]) or a
//! service you declare to answer for the whole resource space
//! ([`LockLayer::resource_space`]; with `Router::layer`, the router without the layer):
//!
//! ```
//! # use axum::{routing::get, Router};
//! # use tower_locks::{LockLayer, MemoryLockStore};
//! let routes: Router = Router::new().route("/docs/{id}", get(|| async { "doc" }));
//! let app: Router = routes.clone().layer(LockLayer::new(MemoryLockStore::new()).resource_space(routes));
//! ```
//!
//! Without them existence is unknown and the layer fails closed: a write to a member of a
//! depth-0-locked collection needs the collection's token, an `If` list with an entity tag is
//! false ([decision D13](crate::decisions#d13)), and a LOCK on an unmapped URL locks the URL
//! without creating anything.
//!
//! # 423 or 412
//!
//! In this order ([decision D7](crate::decisions#d7)): a malformed `If`, `Depth`, `Timeout`,
//! `Lock-Token` or `Destination` gets **400**; an `If` header that evaluates to false gets
//! **412**; a lock the request must satisfy whose token was not submitted (anywhere in the
//! `If` header, by the lock's principal) gets **423**; only then does the inner service run and
//! evaluate `If-Match` and friends. Unknown tokens are simply false, never a 400. Of the shared
//! locks on one resource, any one will do ([decision D14](crate::decisions#d14)).
//!
//! # Feature flags
//!
//! | feature | enables |
//! |---|---|
//! | `redis` | `RedisLockStore`: locks shared by several app instances |
//! | `tracing` | a span per guarded request; events for grants, refusals, refreshes, unlocks, store errors and latency (never a lock token) |
//! | `conformance` | `conformance`: the test kit every `LockStore` implementation can run |
//! | `axum` | [`RouterLocksExt::with_locks`]: `router.with_locks(layer)` mounts the layer with `Router::layer` and declares the router the resource space; a layer inside an axum `nest` or `nest_service` whose prefix is not its mount prefix refuses guarded requests with a 500 ([decision D10](crate::decisions#d10)) |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod advertise;
mod body;
mod config;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
pub mod dav;
pub mod decisions;
mod events;
mod flow;
mod future;
mod headers;
mod holds;
mod hooks;
mod layer;
mod leftovers;
mod path;
mod principal;
mod properties;
mod response;
mod rest;
#[cfg(feature = "axum")]
mod router;
mod service;
mod space;
mod store;
mod timeout;

pub use body::{EmptyBody, ResponseBody};
pub use config::{Disclosure, Limits};
pub use events::LockEvent;
pub use future::ResponseFuture;
pub use headers::{
    destination, parse_depth, parse_if, parse_lock_token, parse_overwrite, parse_timeout,
    parse_timeout_headers, Condition, ConditionKind, Depth, EntityTag, HeaderError, IfHeader,
    IfHeaderError, IfLimits, IfList,
};
pub use holds::FencingToken;
pub use hooks::{CreateResult, ResourceCreator, ResourceProbe, ResourceState};
pub use layer::LockLayer;
pub use path::{PathError, ResourcePath};
pub use principal::Principal;
pub use properties::{
    LockProperties, LockPropertiesLayer, PropertiesBody, PropertiesFuture, ReplayBody,
};
pub use response::{Rejection, WouldReject};
pub use rest::{
    AcquireRequest, ApiDepth, ApiScope, HolderOnly, LockApi, LockList, LockPolicy, LockView,
    RefreshRequest,
};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use router::RouterLocksExt;
pub use service::LockService;
pub use space::SubRequest;
pub use store::{
    new_token, Below, BoxError, BoxFuture, CheckOutcome, Clock, CreateOutcome, DynLockStore, Lock,
    LockDepth, LockQuery, LockScope, LockStore, LockStoreError, LockTimeout, LockToken,
    ManualClock, MemoryLockStore, NewLock, QueryTarget, Quota, Submission, SystemClock,
    TokenAccess, TokenOutcome, TokenVerdict,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::{RedisLockStore, RedisLockStoreBuilder};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
