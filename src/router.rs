//! With feature `axum`: mounting the layer on a `Router` in one call.

use crate::LockLayer;

/// Mount a [`LockLayer`] on an axum [`Router`](axum::Router) the idiomatic way, with the
/// router itself declared as the resource space.
///
/// `router.with_locks(layer)` is `router.clone().layer(layer.resource_space(router))`:
/// every route and the fallback are guarded ([`Router::layer`](axum::Router::layer)), and the
/// layer learns whether a resource exists, and its ETag, from the routes themselves (a `HEAD`
/// sub-request, [decision D4](crate::decisions#d4)), so writes to existing members of a
/// depth-0-locked collection need no collection token, `If` lists with entity tags are judged,
/// and a LOCK on a URL the router answers 404 for creates it with an empty `PUT`
/// ([decision D3](crate::decisions#d3)). Call it last, as `Router::layer`: routes added
/// afterwards are neither guarded nor in the resource space. A router with state gets it
/// first (`with_state`).
///
/// ```
/// use axum::{routing::get, Router};
/// use tower::ServiceExt;
/// use tower_locks::{LockLayer, MemoryLockStore, RouterLocksExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = std::sync::Arc::new(MemoryLockStore::new());
/// let app: Router = Router::new()
///     .route("/docs/{id}", get(|| async { "doc" }).put(|| async { "saved" }))
///     .with_locks(LockLayer::new(store.clone()));
///
/// let lockinfo = r#"<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>
///     <D:locktype><D:write/></D:locktype></D:lockinfo>"#;
/// let lock = http::Request::builder()
///     .method("LOCK")
///     .uri("/docs/a")
///     .body(axum::body::Body::from(lockinfo))
///     .unwrap();
/// assert_eq!(app.clone().oneshot(lock).await.unwrap().status(), 200);
/// let put = http::Request::put("/docs/a").body(axum::body::Body::from("x")).unwrap();
/// assert_eq!(app.oneshot(put).await.unwrap().status(), 423);
/// # }
/// ```
pub trait RouterLocksExt {
    /// Guard every route with `layer`, the router itself declared as the resource space.
    fn with_locks(self, layer: LockLayer) -> Self;
}

impl RouterLocksExt for axum::Router {
    fn with_locks(self, layer: LockLayer) -> Self {
        self.clone().layer(layer.resource_space(self))
    }
}
