//! Real resource locking for any Tower HTTP service: RFC 4918 (WebDAV class 2) write locks
//! and REST pessimistic locking, enforced by a layer in front of your service.
//!
//! [`LockLayer`] wraps any `tower::Service<http::Request<B>>` — an axum `Router`, a hyper
//! service, a reverse proxy. Before every request that would modify a resource it asks a
//! pluggable [`LockStore`] which write locks cover the resources the request touches, and
//! whether the request carries their tokens (in the `If` header, RFC 4918 §10.4, submitted by
//! the principal that created the lock). When it does not, the layer answers `423 Locked`
//! itself — with a `DAV:error` body naming every unsatisfied lock root, or an RFC 9457
//! `application/problem+json` body for clients that prefer JSON — and the inner service never
//! sees the request. A false `If` header gets `412`. Safe methods (GET, HEAD, OPTIONS, TRACE,
//! PROPFIND, REPORT, SEARCH) pass straight through without touching the store.
//!
//! The layer also answers `LOCK` (create and refresh) and `UNLOCK` itself, so a service that
//! knows nothing about locks becomes a class-2 WebDAV resource, and removes the locks of
//! resources that a successful DELETE or MOVE unmapped.
//!
//! # Example (axum)
//!
//! ```
//! use axum::{routing::put, Router};
//! use http::{Request, StatusCode};
//! use tower::{Layer, ServiceExt};
//! use tower_locks::{LockLayer, LockStore, MemoryLockStore, NewLock, ResourcePath, CreateOutcome};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = std::sync::Arc::new(MemoryLockStore::new());
//! let routes = Router::new().route("/docs/{id}", put(|| async { "saved" }).get(|| async { "doc" }));
//! // Wrap the whole router (see "Mounting it in axum" below), then serve `app` as usual.
//! let app = Router::new().fallback_service(LockLayer::new(store.clone()).layer(routes));
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
//! Put the layer **inside** authentication (RFC 4918 §8.1: authorization errors come before
//! 423, so an anonymous client cannot learn that a hidden resource is locked) and **outside**
//! any router nesting that strips a path prefix (or name the prefix with
//! [`LockLayer::mount_prefix`]). The authentication layer tells the lock layer who is asking
//! by inserting a [`Principal`] into the request extensions.
//!
//! # Mounting it in axum
//!
//! Wrap the **whole** router, as above (or with `tower::ServiceBuilder`): the layer sends the
//! inner service sub-requests of its own — a `HEAD` to learn whether a resource exists and
//! its ETag, an empty `PUT` to create the resource of a LOCK on an unmapped URL — and they
//! must reach the router, which dispatches them to the right handler. Do **not** use
//! `Router::layer` or `route_layer` for this layer: axum applies those to each method handler
//! separately, so the sub-requests would land on the handler of the original request (a PUT
//! handler answering the HEAD probe, for instance), and LOCK would hit a 405 fallback.
//! `Router::new().fallback_service(layer.layer(routes))` keeps axum's own response type, so
//! `axum::serve` and further `.layer(..)`s (authentication!) work on the outer router.
//!
//! # 423 or 412
//!
//! In this order (decision D7 of the project's RFC checklist): a malformed `If`, `Depth`,
//! `Timeout`, `Lock-Token` or `Destination` gets **400**; an `If` header that evaluates to
//! false gets **412**; a covering lock whose token was not submitted (anywhere in the `If`
//! header, by the lock's principal) gets **423**; only then does the inner service run and
//! evaluate `If-Match` and friends. Unknown tokens are simply false, never a 400.
//!
//! # Feature flags
//!
//! | feature | enables |
//! |---|---|
//! | `redis` | `RedisLockStore`: locks shared by several app instances |
//! | `tracing` | spans and events for grants, refusals, refreshes, unlocks, store errors |
//! | `conformance` | `conformance`: the test kit every `LockStore` implementation can run |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod advertise;
mod body;
mod config;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
pub mod dav;
pub mod decisions;
mod flow;
mod future;
mod headers;
mod holds;
mod hooks;
mod layer;
mod path;
mod principal;
mod response;
mod service;
mod space;
mod store;
mod timeout;

pub use body::{ResponseBody, SubRequestBody};
pub use config::{Disclosure, Limits};
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
pub use response::{Rejection, WouldReject};
pub use service::LockService;
pub use space::SubRequest;
pub use store::{
    new_token, BoxError, BoxFuture, CheckOutcome, Clock, CreateOutcome, DynLockStore, Lock,
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
