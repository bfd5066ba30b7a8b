//! `LockApi`: pessimistic locking for REST APIs, as a JSON service over the layer's store.

mod listing;
mod policy;
mod removal;
mod types;

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{request, Method, Request, Response, StatusCode};
use http_body::Body;
use tower_service::Service;

pub use policy::{HolderOnly, LockPolicy};
pub use types::{AcquireRequest, ApiDepth, ApiScope, LockList, LockView, RefreshRequest};

use crate::body::{read_limited, EmptyBody, ReadError, ResponseBody};
use crate::config::{Config, Disclosure};
use crate::events::LockEvent;
use crate::headers::parse_lock_token;
use crate::holds::RemovalGuard;
use crate::response::{problem_object, Rejection};
use crate::store::{
    Below, BoxError, BoxFuture, CreateOutcome, Lock, LockDepth, LockQuery, LockScope, LockTimeout,
    NewLock, TokenAccess, TokenOutcome,
};
use crate::ResourcePath;
use removal::Removal;

/// Largest accepted request body, in bytes (413 above).
const MAX_BODY: usize = 16 * 1024;

/// The JSON lock API, a tower service. Built with
/// [`LockLayer::lock_api`](crate::LockLayer::lock_api), so it shares the layer's store,
/// principal source, timeouts, quotas, disclosure policy and event hook.
///
/// Mounted under a path of the application's choosing (axum: `nest_service("/locks", api)`),
/// every request path below it names a resource, normalised exactly as the
/// [`LockLayer`](crate::LockLayer) normalises request paths (an encoded slash `%2F` is a 400
/// unless [`LockLayer::allow_encoded_slashes`](crate::LockLayer::allow_encoded_slashes),
/// [decision D21](crate::decisions#d21)) and placed under the layer's
/// [`mount_prefix`](crate::LockLayer::mount_prefix) as the layer places them: with
/// `mount_prefix("/api")`, `POST /api/locks/docs/a` (the API seeing `/docs/a`) locks
/// `/api/docs/a`, what the layer guards for `PUT /api/docs/a`. Lock roots in answers (`root`,
/// `lockRoots`) and the `after` of a list's `next` are client-visible paths, prefix included:
///
/// | request | does |
/// |---|---|
/// | `POST /{path}` with an optional [`AcquireRequest`] | acquire: 201 and the lock (with its token); the same principal acquiring the same lock again refreshes it: 200, same token |
/// | `POST /{path}?takeover` | break the locks rooted at `{path}` that stand in the way, then acquire: when the policy lets the requester break every one of them (403 otherwise) and nothing else stands in the way (423 otherwise); a refused or failed takeover breaks nothing |
/// | `GET /{path}` | the locks covering `{path}` ([`LockList`]) |
/// | `GET /{path}?list` | the locks at or below `{path}`: the requester's own, or all when the policy allows; a page of 100 locked resources at a time (of the requester's own resources when it lists its own), with the reference of the next page in `next` (`?list&after=…`, naming the last resource of the page) |
/// | `HEAD /{path}`, `HEAD /{path}?list` | the same as `GET`, without the body |
/// | `PUT /{path}` with `Lock-Token` and an optional [`RefreshRequest`] | refresh |
/// | `DELETE /{path}` with `Lock-Token` | release (the holder; others when the policy allows) |
/// | `DELETE /{path}?break` | break every lock rooted at `{path}`, or none (403) when the policy refuses one |
///
/// A lock a checked write relies on while it is in flight is neither released, broken nor
/// taken over: 423 `write-in-flight`, with `Retry-After`.
///
/// Locks are bound to the principal exactly as LOCK and UNLOCK bind them (the same principal
/// source), and tokens are shown only to their holder. A lock taken without a principal is
/// held by whoever shows its token: it is released with `Lock-Token`, and broken or taken over
/// only as the policy allows. A flag (`list`, `break`, `takeover`) takes no value:
/// `?break=false` is a 400.
///
/// A body is JSON, declared so (`Content-Type: application/json` or `application/*+json`);
/// an empty body may come without `Content-Type`. A browser sends a form or `text/plain`
/// cross-site without asking first, with the user's cookies; such a request is a 415, and a
/// POST, PUT or DELETE the browser marks as cross-site (`Sec-Fetch-Site: cross-site`) is a
/// 403 ([decision D24](crate::decisions#d24)).
///
/// Errors are RFC 9457 problem+json:
///
/// | status | when |
/// |---|---|
/// | 400 | a malformed path, query, `Lock-Token` or JSON body |
/// | 403 | a foreign principal's lock, or a policy refusing a break or takeover; a cross-site request that would change a lock (`cross-site`) |
/// | 404 | no such lock |
/// | 405 | another method; `Allow: POST, GET, HEAD, PUT, DELETE` |
/// | 409 | a token whose lock does not cover the path |
/// | 413 | a body or owner too large |
/// | 415 | a `Content-Type` other than JSON, or a body without one |
/// | 423 | a conflict: the roots, and holders and expiries where the disclosure policy allows, with `Retry-After` (seconds, rounded up) until the first shown lock expires, none when none is shown; or a write in flight (`write-in-flight`, `Retry-After: 1`) |
/// | 429, 507 | quotas |
/// | 503 | the store, with `Retry-After` |
///
/// A release, break or takeover removes its locks all or nothing: a request that fails after
/// removing some (the store failing half way, a quota or conflict refusing a takeover's new
/// lock, a write in flight) puts them back as they were, for the time they had left, and they
/// are announced ([`LockEvent::Released`](crate::LockEvent::Released),
/// [`LockEvent::Broken`](crate::LockEvent::Broken)) only once the request has gone through.
/// A lock that cannot be put back (the resource was locked since, the store fails) stays
/// removed and is announced.
///
/// ```
/// use axum::Router;
/// use http::{Request, StatusCode};
/// use http_body_util::BodyExt;
/// use tower::ServiceExt;
/// use tower_locks::{LockLayer, LockView, MemoryLockStore, Principal};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let locks = LockLayer::new(MemoryLockStore::new());
/// let app: Router = Router::new().nest_service("/locks", locks.lock_api());
///
/// let mut acquire = Request::post("/locks/docs/a").body(axum::body::Body::empty()).unwrap();
/// acquire.extensions_mut().insert(Principal::new("ann"));
/// let res = app.oneshot(acquire).await.unwrap();
/// assert_eq!(res.status(), StatusCode::CREATED);
/// let view: LockView =
///     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
/// assert_eq!(view.root, "/docs/a");
/// assert!(view.token.unwrap().starts_with("urn:uuid:"));
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct LockApi {
    config: Arc<Config>,
    policy: Arc<dyn LockPolicy>,
}

impl LockApi {
    pub(crate) fn new(config: Arc<Config>) -> Self {
        Self {
            config,
            policy: Arc::new(HolderOnly),
        }
    }

    /// Who may list every lock and break other principals' locks (default: [`HolderOnly`]).
    ///
    /// ```
    /// use tower_locks::{Lock, LockLayer, LockPolicy, MemoryLockStore};
    ///
    /// struct Everybody;
    /// impl LockPolicy for Everybody {
    ///     fn may_break(&self, _: &http::request::Parts, _: &Lock) -> bool {
    ///         true
    ///     }
    /// }
    /// let api = LockLayer::new(MemoryLockStore::new()).lock_api().with_policy(Everybody);
    /// # let _ = api;
    /// ```
    pub fn with_policy(self, policy: impl LockPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
            ..self
        }
    }
}

impl fmt::Debug for LockApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockApi").finish_non_exhaustive()
    }
}

impl<B> Service<Request<B>> for LockApi
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<EmptyBody>>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let api = self.clone();
        let head = req.method() == Method::HEAD;
        Box::pin(async move {
            let res = api.handle(req).await.unwrap_or_else(|p| p.response());
            Ok(if head { without_body(res) } else { res })
        })
    }
}

/// What an acquire's create came to.
enum Taken {
    /// The new lock, granted.
    Created(Lock),
    /// The requester's own identical lock, which a concurrent acquire created: refresh it.
    Held(Lock),
}

/// A request, parsed.
struct Call {
    parts: request::Parts,
    path: ResourcePath,
    principal: Option<String>,
}

impl Call {
    /// Whether the flag `name` (`?list`, `?break`, `?takeover`) is set. A flag takes no value:
    /// `?break=false` is not read as either answer, it is refused.
    fn flag(&self, name: &str) -> Result<bool, String> {
        match self.params().find(|(k, _)| *k == name) {
            None => Ok(false),
            Some((_, "")) => Ok(true),
            Some((_, v)) => Err(format!("?{name} takes no value (got {name}={v})")),
        }
    }

    /// The value of the query parameter `name`, as written (not percent-decoded).
    fn value(&self, name: &str) -> Option<&str> {
        self.params().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        let query = self.parts.uri.query().unwrap_or_default();
        query
            .split('&')
            .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
    }
}

impl LockApi {
    async fn handle<B>(&self, req: Request<B>) -> Result<Response<ResponseBody<EmptyBody>>, Problem>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        self.config.finish_leftovers().await;
        let (parts, body) = req.into_parts();
        // Placed under the mount prefix as the layer places the paths it guards.
        let path = self
            .config
            .resolver(None)
            .request_path(parts.uri.path())
            .map_err(|e| {
                self.problem(&parts, StatusCode::BAD_REQUEST, "bad-path", &e.to_string())
            })?;
        let principal = self.config.principal.extract(&parts);
        let call = Call {
            parts,
            path,
            principal,
        };
        let method = call.parts.method.clone();
        if ![
            Method::POST,
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::DELETE,
        ]
        .contains(&method)
        {
            let mut p = self.problem(
                &call.parts,
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "the lock API answers POST, GET, HEAD, PUT and DELETE",
            );
            p.allow = Some("POST, GET, HEAD, PUT, DELETE");
            return Err(p);
        }
        self.same_site(&call)?;
        let declared = self.json_declared(&call)?;
        let body = read_limited(&call.parts.headers, body, MAX_BODY)
            .await
            .map_err(|e| match e {
                ReadError::TooLarge => {
                    self.rejected(&call, &Rejection::PayloadTooLarge { limit: MAX_BODY })
                }
                ReadError::Failed(e) => self.problem(
                    &call.parts,
                    StatusCode::BAD_REQUEST,
                    "bad-body",
                    &format!("the request body could not be read: {e}"),
                ),
            })?;
        if !body.is_empty() && !declared {
            return Err(self.unsupported_media_type(&call, "a request body without Content-Type"));
        }
        let flag = |name| {
            call.flag(name)
                .map_err(|e| self.problem(&call.parts, StatusCode::BAD_REQUEST, "bad-query", &e))
        };
        match method {
            Method::POST => self.acquire(&call, &body, flag("takeover")?).await,
            Method::GET | Method::HEAD if flag("list")? => self.list(&call).await,
            Method::GET | Method::HEAD => self.read(&call).await,
            Method::PUT => self.refresh(&call, &body).await,
            Method::DELETE if flag("break")? => self.break_all(&call).await,
            _ => self.release(&call).await,
        }
    }

    /// 403 for a request a browser marks as sent by another site (`Sec-Fetch-Site:
    /// cross-site`) that would change a lock: a cross-site page must not use the user's
    /// cookies to take, break or release locks ([decision D24](crate::decisions#d24)).
    fn same_site(&self, call: &Call) -> Result<(), Problem> {
        let changes = matches!(
            call.parts.method,
            Method::POST | Method::PUT | Method::DELETE
        );
        let cross_site = call
            .parts
            .headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
        match changes && cross_site {
            true => Err(self.problem(
                &call.parts,
                StatusCode::FORBIDDEN,
                "cross-site",
                "the lock API does not change locks for a request another site sent",
            )),
            false => Ok(()),
        }
    }

    /// Whether the request declares a JSON body (`application/json` or `application/*+json`,
    /// parameters allowed); `false` without `Content-Type`; 415 for any other declared type,
    /// which a browser may send cross-site without asking first ([decision
    /// D24](crate::decisions#d24)).
    fn json_declared(&self, call: &Call) -> Result<bool, Problem> {
        let Some(value) = call.parts.headers.get(CONTENT_TYPE) else {
            return Ok(false);
        };
        let essence = value
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        let json = essence.as_deref().is_some_and(|e| {
            e == "application/json"
                || e.strip_prefix("application/")
                    .and_then(|sub| sub.strip_suffix("+json"))
                    .is_some_and(|sub| !sub.is_empty() && !sub.contains('/'))
        });
        match json {
            true => Ok(true),
            false => Err(self.unsupported_media_type(call, "a Content-Type other than JSON")),
        }
    }

    fn unsupported_media_type(&self, call: &Call, what: &str) -> Problem {
        let detail = format!("the lock API reads application/json; it got {what}");
        self.problem(
            &call.parts,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            &detail,
        )
    }

    async fn acquire(
        &self,
        call: &Call,
        body: &[u8],
        takeover: bool,
    ) -> Result<Response<ResponseBody<EmptyBody>>, Problem> {
        let request: AcquireRequest = json(body).map_err(|e| self.bad_json(call, &e))?;
        let cfg = &self.config;
        let timeout = cfg.timeouts.resolve(
            request
                .timeout_seconds
                .map(LockTimeout::Seconds)
                .as_slice()
                .into(),
        );
        let scope = request.scope.unwrap_or_default().into();
        let depth = request.depth.unwrap_or_default().into();
        let mine = |l: &Lock| {
            call.principal.is_some()
                && l.principal.as_deref() == call.principal.as_deref()
                && l.root == call.path
                && l.scope == scope
                && l.depth == depth
        };
        // The holder acquiring the same lock again: a refresh, same token.
        let covering = self
            .query(call, LockQuery::new().covering(call.path.clone()))
            .await?;
        if let Some(lock) = covering.iter().find(|l| mine(l)) {
            return self.refreshed(call, lock, timeout, StatusCode::OK).await;
        }
        let mut new = cfg
            .new_lock(call.path.clone(), call.principal.as_deref())
            .scope(scope)
            .depth(depth)
            .timeout(timeout);
        if let Some(owner) = &request.owner {
            let stored = types::stored_owner(owner);
            let limit = cfg.limits.max_owner_bytes;
            if stored.len() > limit {
                return Err(self.rejected(call, &Rejection::PayloadTooLarge { limit }));
            }
            new.owner = Some(stored.into());
        }
        // A takeover breaks what stands in the way, then asks once more; all or nothing: what
        // it broke is put back when it fails after all.
        let mut broken = Removal::new(cfg, call.principal.clone());
        // No write relies on the new lock before this request has answered (D15).
        let _pending = cfg.holds.withhold([new.token.as_str()]);
        let taken = self
            .take(call, &new, takeover, &covering, &mine, &mut broken)
            .await;
        let lock = match taken {
            Ok(Taken::Created(lock)) => lock,
            // A concurrent acquire of the same lock by the same holder won the race.
            Ok(Taken::Held(lock)) => {
                let refreshed = self.refreshed(call, &lock, timeout, StatusCode::OK).await;
                match refreshed.is_ok() {
                    true => broken.done(),
                    false => broken.undo().await,
                }
                return refreshed;
            }
            Err(problem) => {
                broken.undo().await;
                return Err(problem);
            }
        };
        broken.done();
        cfg.event(|| LockEvent::Granted { lock: lock.clone() });
        // The taker gets its token, with a principal or without (then the token is all that
        // holds the lock).
        let mut view = LockView::of(&lock, call.principal.as_deref(), cfg.store.now_dyn());
        view.token = Some(lock.token.to_string());
        Ok(json_response(StatusCode::CREATED, &view))
    }

    /// Create `new`; with `takeover`, break the locks in its way (into `broken`) and create it
    /// then. The lock created, kept only when no write checked before it existed is in
    /// flight; or the requester's own lock (`mine`) that a concurrent acquire created.
    async fn take(
        &self,
        call: &Call,
        new: &NewLock,
        takeover: bool,
        covering: &[Lock],
        mine: &(dyn Fn(&Lock) -> bool + Sync),
        broken: &mut Removal<'_>,
    ) -> Result<Taken, Problem> {
        let cfg = &self.config;
        let mut broke = false;
        let lock = loop {
            // Dropped before the store answers, or the store failing to answer, the lock it
            // may have created is held by nobody: the next request removes it (D20), as for a
            // DAV LOCK.
            let unheld = cfg.leftovers.guard_unheld(&new.token, &new.root);
            let outcome = cfg.store.create_boxed(new.clone()).await;
            let outcome = match outcome {
                Ok(outcome) => {
                    unheld.done();
                    outcome
                }
                Err(_) => return Err(self.unavailable(call)),
            };
            match outcome {
                CreateOutcome::Created(lock) => break lock,
                CreateOutcome::Conflict(conflicts) => {
                    if let Some(lock) = conflicts.iter().find(|l| mine(l)) {
                        return Ok(Taken::Held(lock.clone()));
                    }
                    if !takeover || broke {
                        return Err(self.conflict(call, &conflicts));
                    }
                    let (in_way, removal) = self
                        .to_take_over(call, covering, &conflicts, new.scope, new.depth)
                        .await?;
                    broken.mark(removal);
                    for lock in &in_way {
                        self.remove(call, broken, lock, false).await?;
                    }
                    broke = true;
                }
                CreateOutcome::QuotaExceeded { quota, limit } => {
                    return Err(self.rejected(call, &Rejection::quota(quota, limit)));
                }
            }
        };
        // A write checked before the lock existed is still in flight: roll back.
        if cfg.keep_unless_in_flight(&lock).await.is_err() {
            return Err(self
                .problem(
                    &call.parts,
                    StatusCode::LOCKED,
                    "write-in-flight",
                    "a write to this resource is in flight; retry",
                )
                .retry_after(1));
        }
        Ok(Taken::Created(lock))
    }

    /// What a takeover breaks, decided before it breaks anything: the locks rooted at the path
    /// that stand in the way of the new lock (`covering`: the path's covering locks;
    /// `conflicts`: what the store refused the new lock for). 423 when something else stands
    /// in the way, which no takeover removes; 403 when the policy does not let this request
    /// break every one of them.
    async fn to_take_over(
        &self,
        call: &Call,
        covering: &[Lock],
        conflicts: &[Lock],
        scope: LockScope,
        depth: LockDepth,
    ) -> Result<(Vec<Lock>, RemovalGuard), Problem> {
        let in_way = |l: &Lock| !l.scope.compatible_with(scope);
        let mut elsewhere = conflicts.iter().any(|l| l.root != call.path)
            || covering.iter().any(|l| l.root != call.path && in_way(l));
        // The store names at least 16 conflicts, not always all: past that many, one below a
        // depth-infinity lock may be unnamed, so look.
        if !elsewhere && depth == LockDepth::Infinity && conflicts.len() >= Below::BLOCKED {
            let below = LockQuery::new()
                .subtree(call.path.clone())
                .until_blocked(None);
            let found = self.query(call, below).await?;
            elsewhere = found
                .iter()
                .any(|l| call.path.is_ancestor_of(&l.root) && in_way(l));
        }
        if elsewhere {
            return Err(self.conflict(call, conflicts));
        }
        let here: Vec<Lock> = covering
            .iter()
            .filter(|l| l.root == call.path && in_way(l))
            .cloned()
            .collect();
        if !here.iter().all(|l| self.may_remove(call, l, false)) {
            return Err(self.forbidden(call));
        }
        let removal = self.begin_removal(call, &here)?;
        Ok((here, removal))
    }

    /// Mark `locks` as being removed, or 423 when a checked write relying on one of them is
    /// in flight: a lock never vanishes under the write it let through ([decision
    /// D15](crate::decisions#d15)). Keep the guard until they are removed.
    fn begin_removal<'a>(
        &self,
        call: &Call,
        locks: impl IntoIterator<Item = &'a Lock>,
    ) -> Result<RemovalGuard, Problem> {
        let tokens = locks.into_iter().map(|l| l.token.as_str());
        self.config.holds.begin_removal(tokens).ok_or_else(|| {
            self.problem(
                &call.parts,
                StatusCode::LOCKED,
                "write-in-flight",
                "a write relying on this lock is in flight; retry",
            )
            .retry_after(1)
        })
    }

    /// Whether this request may remove `lock`: as its holder (the lock's principal, or for a
    /// lock taken without one, whoever shows its token), or as somebody the policy lets
    /// break it.
    fn may_remove(&self, call: &Call, lock: &Lock, token_shown: bool) -> bool {
        self.holds(call, lock, token_shown) || self.policy.may_break(&call.parts, lock)
    }

    /// Whether this request holds `lock`: it is the lock's principal, or the lock has none
    /// and the request showed its token (nothing else tells who holds an anonymous lock).
    fn holds(&self, call: &Call, lock: &Lock, token_shown: bool) -> bool {
        match lock.principal.as_deref() {
            Some(holder) => call.principal.as_deref() == Some(holder),
            None => token_shown,
        }
    }

    /// Remove `lock` into `removal`: its holder releases it, anybody else breaks it if the
    /// policy allows. `token_shown`: the request named the lock by its token.
    async fn remove(
        &self,
        call: &Call,
        removal: &mut Removal<'_>,
        lock: &Lock,
        token_shown: bool,
    ) -> Result<(), Problem> {
        if !self.may_remove(call, lock, token_shown) {
            return Err(self.forbidden(call));
        }
        let holder = self.holds(call, lock, token_shown);
        let mut access = TokenAccess::new(&lock.token, &lock.root, call.principal.as_deref());
        access.privileged = !holder;
        match removal.unlock(access, holder).await {
            Ok(TokenOutcome::Done(_) | TokenOutcome::NotFound) => Ok(()),
            Ok(_) => Err(self.forbidden(call)),
            Err(_) => Err(self.unavailable(call)),
        }
    }

    /// Remove `locks` all or nothing, under their removal mark `guard`: when one cannot be
    /// removed, those removed before it are put back.
    async fn remove_all<'a>(
        &self,
        call: &Call,
        guard: RemovalGuard,
        locks: impl IntoIterator<Item = &'a Lock>,
        token_shown: bool,
    ) -> Result<(), Problem> {
        let mut removal = Removal::new(&self.config, call.principal.clone());
        removal.mark(guard);
        for lock in locks {
            if let Err(problem) = self.remove(call, &mut removal, lock, token_shown).await {
                removal.undo().await;
                return Err(problem);
            }
        }
        removal.done();
        Ok(())
    }

    async fn read(&self, call: &Call) -> Result<Response<ResponseBody<EmptyBody>>, Problem> {
        let locks = self
            .query(call, LockQuery::new().covering(call.path.clone()))
            .await?;
        let visible = locks.iter().filter(|l| self.discloses(call, l));
        Ok(self.list_response(call, visible, None))
    }

    async fn list(&self, call: &Call) -> Result<Response<ResponseBody<EmptyBody>>, Problem> {
        let limits = &self.config.limits;
        let after = call
            .value("after")
            .map(|a| ResourcePath::parse_limited(a, limits.max_path_bytes, limits.max_path_depth))
            .transpose()
            .map_err(|e| {
                let detail = format!("after: {e}");
                self.problem(&call.parts, StatusCode::BAD_REQUEST, "bad-cursor", &detail)
            })?;
        // Who may not list everything lists their own locks, and pages through their own
        // resources only: a page's `next` names one of them, never somebody else's.
        let holder = match (
            self.policy.may_list_all(&call.parts, &call.path),
            &call.principal,
        ) {
            (true, _) => None,
            (false, Some(principal)) => Some(principal.as_str()),
            (false, None) => return Ok(self.list_response(call, [].iter(), None)),
        };
        let query = listing::query(&call.path, after.clone(), holder);
        let found = self.query(call, query).await?;
        let (locks, next) = listing::page(&call.path, after.as_ref(), holder, found);
        let next = next.as_ref().map(listing::next_link);
        Ok(self.list_response(call, locks.iter(), next))
    }

    async fn refresh(
        &self,
        call: &Call,
        body: &[u8],
    ) -> Result<Response<ResponseBody<EmptyBody>>, Problem> {
        let request: RefreshRequest = json(body).map_err(|e| self.bad_json(call, &e))?;
        let token = self.token(call)?;
        let timeout = self.config.timeouts.resolve(
            request
                .timeout_seconds
                .map(LockTimeout::Seconds)
                .as_slice()
                .into(),
        );
        let access = TokenAccess::new(&token, &call.path, call.principal.as_deref());
        match self.config.store.refresh_boxed(access, timeout).await {
            Ok(TokenOutcome::Done(lock)) => {
                self.config
                    .event(|| LockEvent::Refreshed { lock: lock.clone() });
                Ok(self.view(call, &lock, StatusCode::OK))
            }
            Ok(outcome) => Err(self.token_problem(call, &outcome)),
            Err(_) => Err(self.unavailable(call)),
        }
    }

    /// The holder acquired the same lock again: refresh it and answer with `status`.
    async fn refreshed(
        &self,
        call: &Call,
        lock: &Lock,
        timeout: LockTimeout,
        status: StatusCode,
    ) -> Result<Response<ResponseBody<EmptyBody>>, Problem> {
        let access = TokenAccess::new(&lock.token, &call.path, call.principal.as_deref());
        match self.config.store.refresh_boxed(access, timeout).await {
            Ok(TokenOutcome::Done(lock)) => {
                self.config
                    .event(|| LockEvent::Refreshed { lock: lock.clone() });
                Ok(self.view(call, &lock, status))
            }
            Ok(outcome) => Err(self.token_problem(call, &outcome)),
            Err(_) => Err(self.unavailable(call)),
        }
    }

    async fn release(&self, call: &Call) -> Result<Response<ResponseBody<EmptyBody>>, Problem> {
        let token = self.token(call)?;
        let lock = match self.config.store.get_boxed(&token).await {
            Ok(Some(lock)) if lock.covers(&call.path) => lock,
            Ok(Some(lock)) => return Err(self.token_problem(call, &TokenOutcome::OutOfScope(lock))),
            Ok(None) => return Err(self.token_problem(call, &TokenOutcome::NotFound)),
            Err(_) => return Err(self.unavailable(call)),
        };
        let guard = self.begin_removal(call, [&lock])?;
        self.remove_all(call, guard, [&lock], true).await?;
        Ok(empty(StatusCode::NO_CONTENT))
    }

    async fn break_all(&self, call: &Call) -> Result<Response<ResponseBody<EmptyBody>>, Problem> {
        let locks = self
            .query(call, LockQuery::new().covering(call.path.clone()))
            .await?;
        let rooted: Vec<&Lock> = locks.iter().filter(|l| l.root == call.path).collect();
        if rooted.is_empty() {
            return Err(self.problem(
                &call.parts,
                StatusCode::NOT_FOUND,
                "no-lock",
                "no lock is rooted here",
            ));
        }
        // All or nothing: a break the policy refuses for one lock removes none.
        if !rooted.iter().all(|l| self.may_remove(call, l, false)) {
            return Err(self.forbidden(call));
        }
        let guard = self.begin_removal(call, rooted.iter().copied())?;
        self.remove_all(call, guard, rooted, false).await?;
        Ok(empty(StatusCode::NO_CONTENT))
    }

    async fn query(&self, call: &Call, query: LockQuery) -> Result<Vec<Lock>, Problem> {
        self.config
            .store
            .query_boxed(&query)
            .await
            .map_err(|_| self.unavailable(call))
    }

    fn token(&self, call: &Call) -> Result<String, Problem> {
        parse_lock_token(&call.parts.headers).map_err(|e| {
            self.problem(
                &call.parts,
                StatusCode::BAD_REQUEST,
                "bad-lock-token",
                &e.to_string(),
            )
        })
    }

    /// Whether the requester may see `lock` named (the layer's disclosure policy).
    fn discloses(&self, call: &Call, lock: &Lock) -> bool {
        match self.config.disclosure {
            Disclosure::All => true,
            Disclosure::Related => {
                lock.root.contains(&call.path)
                    || (call.principal.is_some()
                        && lock.principal.as_deref() == call.principal.as_deref())
            }
        }
    }

    fn view(
        &self,
        call: &Call,
        lock: &Lock,
        status: StatusCode,
    ) -> Response<ResponseBody<EmptyBody>> {
        let view = LockView::of(lock, call.principal.as_deref(), self.config.store.now_dyn());
        json_response(status, &view)
    }

    fn list_response<'a>(
        &self,
        call: &Call,
        locks: impl Iterator<Item = &'a Lock>,
        next: Option<String>,
    ) -> Response<ResponseBody<EmptyBody>> {
        let now = self.config.store.now_dyn();
        let locks = locks
            .map(|l| LockView::of(l, call.principal.as_deref(), now))
            .collect();
        json_response(StatusCode::OK, &LockList { locks, next })
    }

    fn problem(
        &self,
        parts: &request::Parts,
        status: StatusCode,
        name: &str,
        detail: &str,
    ) -> Problem {
        let title = status.canonical_reason().unwrap_or("");
        let path = parts.uri.path();
        let obj = problem_object(&self.config.response, name, title, status, detail, path);
        Problem {
            status,
            body: obj,
            retry_after: None,
            allow: None,
        }
    }

    fn bad_json(&self, call: &Call, e: &serde_json::Error) -> Problem {
        self.problem(
            &call.parts,
            StatusCode::BAD_REQUEST,
            "bad-json",
            &format!("request body: {e}"),
        )
    }

    /// The problem for one of the layer's own refusals, named and worded as the layer does.
    fn rejected(&self, call: &Call, rejection: &Rejection) -> Problem {
        let status = rejection.status();
        let mut p = self.problem(
            &call.parts,
            status,
            rejection.short_name(),
            &rejection.detail(),
        );
        p.body.insert("title".into(), rejection.title().into());
        p
    }

    fn forbidden(&self, call: &Call) -> Problem {
        self.rejected(call, &Rejection::Forbidden)
    }

    fn unavailable(&self, call: &Call) -> Problem {
        let secs = self.config.response.retry_after_secs;
        self.rejected(call, &Rejection::StoreUnavailable)
            .retry_after(u64::from(secs))
    }

    fn token_problem(&self, call: &Call, outcome: &TokenOutcome) -> Problem {
        match outcome {
            TokenOutcome::Forbidden(_) => self.forbidden(call),
            TokenOutcome::OutOfScope(_) => self.problem(
                &call.parts,
                StatusCode::CONFLICT,
                "lock-token-matches-request-uri",
                "the lock does not cover this path",
            ),
            _ => self.problem(
                &call.parts,
                StatusCode::NOT_FOUND,
                "no-lock",
                "no live lock has this token",
            ),
        }
    }

    /// 423 for a conflict: the roots the disclosure policy allows, with their holders and
    /// expiries, and `Retry-After` until the first of those expires (none when none is shown
    /// or none expires).
    fn conflict(&self, call: &Call, conflicts: &[Lock]) -> Problem {
        let shown: Vec<&Lock> = conflicts
            .iter()
            .filter(|l| self.discloses(call, l))
            .collect();
        let mut p = self.problem(
            &call.parts,
            StatusCode::LOCKED,
            "no-conflicting-lock",
            "the resource is locked",
        );
        let mut roots: Vec<String> = shown.iter().map(|l| l.root.href()).collect();
        roots.sort();
        roots.dedup();
        p.body.insert("lockRoots".into(), roots.into());
        let holders: Vec<serde_json::Value> = shown
            .iter()
            .map(|l| {
                serde_json::json!({
                    "root": l.root.href(),
                    "holder": l.principal.as_deref(),
                    "expiresAt": l.expires_at.map(types::rfc3339),
                })
            })
            .collect();
        p.body.insert("holders".into(), holders.into());
        let hidden = conflicts.len() - shown.len();
        if hidden > 0 {
            p.body.insert("otherLocks".into(), hidden.into());
        }
        // Only what is shown: the expiry of a hidden lock is not disclosed this way either.
        // Rounded up, so that a client waiting as told does not find the lock still there.
        let now = self.config.store.now_dyn();
        let first = shown
            .iter()
            .filter_map(|l| match l.remaining_at(now) {
                LockTimeout::Seconds(secs) => Some(u64::from(secs.max(1))),
                LockTimeout::Infinite => None,
            })
            .min();
        match first {
            Some(secs) => p.retry_after(secs),
            None => p,
        }
    }
}

/// A problem+json answer.
struct Problem {
    status: StatusCode,
    body: serde_json::Map<String, serde_json::Value>,
    retry_after: Option<u64>,
    allow: Option<&'static str>,
}

impl Problem {
    fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    fn response(self) -> Response<ResponseBody<EmptyBody>> {
        let body = serde_json::Value::Object(self.body).to_string();
        let mut res = Response::new(ResponseBody::full(body));
        *res.status_mut() = self.status;
        let h = res.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            h.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(allow) = self.allow {
            h.insert(http::header::ALLOW, HeaderValue::from_static(allow));
        }
        res
    }
}

fn json_response<T: serde::Serialize>(
    status: StatusCode,
    value: &T,
) -> Response<ResponseBody<EmptyBody>> {
    let body = serde_json::to_string(value).unwrap_or_default();
    let mut res = Response::new(ResponseBody::full(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The answer to a HEAD: the GET's, with its length and without its body.
fn without_body(res: Response<ResponseBody<EmptyBody>>) -> Response<ResponseBody<EmptyBody>> {
    let (mut parts, body) = res.into_parts();
    if let Some(len) = body.size_hint().exact() {
        parts
            .headers
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Response::from_parts(parts, ResponseBody::empty())
}

fn empty(status: StatusCode) -> Response<ResponseBody<EmptyBody>> {
    let mut res = Response::new(ResponseBody::empty());
    *res.status_mut() = status;
    res
}

/// `body` as JSON; an empty body is the type's default.
fn json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, serde_json::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
}
