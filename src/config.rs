//! The settled configuration a [`LockLayer`](crate::LockLayer) hands to every service it
//! builds: the store, the policies and the limits. The builder lives in `crate::layer`; the
//! request flow (`crate::flow`) only reads this.

use std::sync::Arc;

use http::{request, Method};

use crate::events::{Events, LockEvent};
use crate::headers::IfLimits;
use crate::holds::Holds;
use crate::leftovers::{Leftovers, Remover};
use crate::path::Resolver;
use crate::principal::PrincipalSource;
use crate::response::{Responder, ResponseConfig};
use crate::space::Space;
use crate::store::{DynLockStore, Lock, NewLock, TokenAccess};
use crate::timeout::TimeoutPolicy;
use crate::ResourcePath;

/// Size and abuse limits. Every limit refuses the request before anything is forwarded.
///
/// The lock quotas are enforced by the store in the same atomic step that creates a lock
/// (see [`NewLock::principal_quota`](crate::NewLock::principal_quota) and its siblings). A
/// LOCK over a client's own allowance (its principal's, or the one shared by all anonymous
/// clients) gets `429 Too Many Requests`; a LOCK the store has no room for (the resource or
/// the whole store is full) gets `507 Insufficient Storage` (RFC 4918 §11.5).
///
/// ```
/// use tower_locks::Limits;
///
/// let limits = Limits::default();
/// assert_eq!(limits.max_lockinfo_bytes, 64 * 1024);
/// assert_eq!(limits.max_locks_per_principal, Some(1000));
/// assert_eq!(limits.max_anonymous_locks, Some(1000));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Largest accepted LOCK body, in bytes (413 above). Default 64 KiB.
    pub max_lockinfo_bytes: usize,
    /// Largest accepted `DAV:owner` content, in bytes (413 above). Default 4 KiB.
    pub max_owner_bytes: usize,
    /// `If` header limits (400 above). Default 8 KiB, 64 lists, 256 conditions.
    pub if_header: IfLimits,
    /// Longest accepted normalised path, in bytes (400 above). Default 4096.
    pub max_path_bytes: usize,
    /// Deepest accepted path, in segments (400 above). Default 64.
    pub max_path_depth: usize,
    /// Most live locks one principal may hold (429 above); `None` for no limit. Default 1000.
    pub max_locks_per_principal: Option<u32>,
    /// Most live locks all requests without a principal may hold together (429 above);
    /// `None` for no limit. Default 1000.
    pub max_anonymous_locks: Option<u32>,
    /// Most live locks rooted at one resource, shared locks included (507 above); `None`
    /// for no limit. Default 64.
    pub max_locks_per_resource: Option<u32>,
    /// Most live locks in the store (507 above); `None` for no limit. Default 100 000.
    pub max_locks: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_lockinfo_bytes: 64 * 1024,
            max_owner_bytes: 4 * 1024,
            if_header: IfLimits::default(),
            max_path_bytes: 4096,
            max_path_depth: 64,
            max_locks_per_principal: Some(1000),
            max_anonymous_locks: Some(1000),
            max_locks_per_resource: Some(64),
            max_locks: Some(100_000),
        }
    }
}

/// Decides whether a request may remove other principals' locks.
pub(crate) type UnlockOverride = Arc<dyn Fn(&request::Parts) -> bool + Send + Sync>;

/// Which lock roots a refusal may name. Either way a refusal names at most 16 and counts the
/// others it found ([decision D17](crate::decisions#d17)).
///
/// ```
/// use http::{Request, StatusCode};
/// use tower::{service_fn, Layer, ServiceExt};
/// use tower_locks::{
///     Disclosure, LockLayer, LockStore, MemoryLockStore, NewLock, Principal, Rejection,
///     ResourcePath,
/// };
///
/// # tokio_test::block_on(async {
/// let store = MemoryLockStore::new();
/// // Alice's depth-infinity lock on her folder covers everything in it.
/// let alice = NewLock::new(ResourcePath::parse("/home/alice").unwrap()).principal("alice");
/// store.create(alice).await.unwrap();
/// let svc = LockLayer::new(store)
///     .disclose_lock_roots(Disclosure::Related)
///     .layer(service_fn(|_req: Request<String>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
///     }));
/// // Bob writes in it: the root stands above his request URI, so it is named.
/// let mut put = Request::put("/home/alice/notes").body(String::new()).unwrap();
/// put.extensions_mut().insert(Principal::new("bob"));
/// let res = svc.clone().oneshot(put).await.unwrap();
/// assert_eq!(res.status(), StatusCode::LOCKED);
/// let Some(Rejection::Locked { roots, hidden }) = res.extensions().get::<Rejection>() else {
///     panic!("refused for the lock");
/// };
/// assert_eq!((roots.as_slice(), *hidden), (&["/home/alice".to_owned()][..], 0));
/// // Deleting the whole of /home: Alice's lock is below, neither his nor related: counted.
/// let mut delete = Request::delete("/home").body(String::new()).unwrap();
/// delete.extensions_mut().insert(Principal::new("bob"));
/// let res = svc.oneshot(delete).await.unwrap();
/// let Some(Rejection::Locked { roots, hidden }) = res.extensions().get::<Rejection>() else {
///     panic!("refused for the lock below");
/// };
/// assert_eq!((roots.len(), *hidden), (0, 1));
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disclosure {
    /// Every lock root that stands in the way (the RFC 4918 default).
    #[default]
    All,
    /// Only lock roots at or above the request URI (and the `Destination`), and those held
    /// by the requesting principal; the others are counted, not named.
    Related,
}

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) store: Arc<dyn DynLockStore>,
    /// Whether `store` answers queries at once ([`LockStore::query_now`]), asked once when
    /// the layer is built: only then is a write decided synchronously in `call`.
    ///
    /// [`LockStore::query_now`]: crate::LockStore::query_now
    pub(crate) store_answers_now: bool,
    pub(crate) safe_methods: Vec<Method>,
    pub(crate) prefix: ResourcePath,
    pub(crate) any_authority: bool,
    /// Whether a guarded path may hold `%2F` ([decision D21](crate::decisions#d21)).
    pub(crate) encoded_slashes: bool,
    pub(crate) timeouts: TimeoutPolicy,
    pub(crate) principal: PrincipalSource,
    /// Where existence, ETags and creation come from (never from the wrapped service).
    pub(crate) space: Space,
    pub(crate) responder: Option<Responder>,
    pub(crate) response: ResponseConfig,
    pub(crate) fail_open: bool,
    pub(crate) advertise: bool,
    pub(crate) ms_author_via: bool,
    pub(crate) lock_token_submits: bool,
    pub(crate) owner_writes: bool,
    pub(crate) events: Option<Arc<Events>>,
    pub(crate) unlock_override: Option<UnlockOverride>,
    pub(crate) limits: Limits,
    pub(crate) disclosure: Disclosure,
    pub(crate) dry_run: bool,
    pub(crate) holds: Arc<Holds>,
    pub(crate) leftovers: Arc<Leftovers>,
}

impl Config {
    pub(crate) fn new(store: Arc<dyn DynLockStore>) -> Self {
        let store_answers_now = store.query_now_dyn(&crate::LockQuery::new()).is_some();
        let holds = Arc::<Holds>::default();
        Self {
            store,
            store_answers_now,
            safe_methods: default_safe_methods(),
            prefix: ResourcePath::root(),
            any_authority: false,
            encoded_slashes: false,
            timeouts: TimeoutPolicy::default(),
            principal: PrincipalSource::Extension,
            space: Space::default(),
            responder: None,
            response: ResponseConfig::default(),
            fail_open: false,
            advertise: true,
            ms_author_via: false,
            lock_token_submits: false,
            owner_writes: false,
            events: None,
            unlock_override: None,
            limits: Limits::default(),
            disclosure: Disclosure::All,
            dry_run: false,
            leftovers: Arc::new(Leftovers::new(Arc::clone(&holds))),
            holds,
        }
    }

    /// Do the store work earlier requests left unfinished (see `crate::leftovers`), before
    /// this one asks the store anything.
    pub(crate) async fn finish_leftovers(&self) {
        self.leftovers.finish(self.remover()).await;
    }

    /// What removing known locks takes (see `crate::leftovers`).
    pub(crate) fn remover(&self) -> Remover<'_> {
        Remover {
            store: &*self.store,
            events: self.events.as_deref(),
        }
    }

    /// How this layer reads references (`Destination`, `If` tags, 207 hrefs) of a request
    /// that names itself by `authority`.
    pub(crate) fn resolver<'a>(&'a self, authority: Option<&'a str>) -> Resolver<'a> {
        Resolver {
            authority,
            any_authority: self.any_authority,
            prefix: &self.prefix,
            max_len: self.limits.max_path_bytes,
            max_depth: self.limits.max_path_depth,
            encoded_slashes: self.encoded_slashes,
        }
    }

    /// A new lock on `root` for `principal`, with every quota of [`Limits`] set (the
    /// principal's, or the anonymous clients' when there is none).
    pub(crate) fn new_lock(&self, root: ResourcePath, principal: Option<&str>) -> NewLock {
        let limits = &self.limits;
        let mut new = NewLock::new(root);
        new.principal = principal.map(Into::into);
        new.principal_quota = match principal {
            Some(_) => limits.max_locks_per_principal,
            None => limits.max_anonymous_locks,
        };
        new.resource_quota = limits.max_locks_per_resource;
        new.store_quota = limits.max_locks;
        new
    }

    /// A lock just granted stays only if no checked write it would cover is in flight (see
    /// `crate::holds`); otherwise it is removed again and the paths of those writes returned.
    pub(crate) async fn keep_unless_in_flight(&self, lock: &Lock) -> Result<(), Vec<ResourcePath>> {
        let in_flight = self.holds.blocking(lock);
        if in_flight.is_empty() {
            return Ok(());
        }
        self.roll_back(lock).await;
        Err(in_flight)
    }

    /// Remove a lock this layer just created (privileged: it is ours).
    pub(crate) async fn roll_back(&self, lock: &Lock) {
        // Nobody received the token: a roll-back the store fails (or that is dropped) is left
        // to the next guarded request (D20).
        let guard = self.leftovers.guard_unheld(&lock.token, &lock.root);
        let mut access = TokenAccess::new(&lock.token, &lock.root, None);
        access.privileged = true;
        if self.store.unlock_boxed(access).await.is_ok() {
            guard.done();
        }
    }

    /// Tell the application's event hook, if there is one.
    pub(crate) fn event(&self, event: impl FnOnce() -> LockEvent) {
        if let Some(events) = &self.events {
            events.send(event());
        }
    }

    /// Whether `method` passes straight through: everything not on the safe list is a write,
    /// including unknown extension methods ([decision D2](crate::decisions#d2)). LOCK and
    /// UNLOCK are never safe (the layer answers them) and OPTIONS always is (it changes
    /// nothing, and its answer is where the layer advertises class 2), whatever the list says.
    #[inline]
    pub(crate) fn is_safe(&self, method: &Method) -> bool {
        match method.as_str() {
            "LOCK" | "UNLOCK" => false,
            "OPTIONS" => true,
            _ => self.safe_methods.iter().any(|m| m == method),
        }
    }
}

/// The default read-only methods: GET, HEAD, OPTIONS, TRACE (RFC 9110 §9.2.1) and PROPFIND,
/// REPORT, SEARCH (WebDAV reads). Deliberately not `Method::is_safe`, which misses the WebDAV
/// ones.
pub(crate) fn default_safe_methods() -> Vec<Method> {
    let mut v = vec![Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE];
    for m in ["PROPFIND", "REPORT", "SEARCH"] {
        v.push(Method::from_bytes(m.as_bytes()).expect("valid method token"));
    }
    v
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("safe_methods", &self.safe_methods)
            .field("prefix", &self.prefix)
            .field("any_authority", &self.any_authority)
            .field("encoded_slashes", &self.encoded_slashes)
            .field("timeouts", &self.timeouts)
            .field("resource_space", &self.space.can_probe())
            .field("fail_open", &self.fail_open)
            .field("advertise", &self.advertise)
            .field("ms_author_via", &self.ms_author_via)
            .field("lock_token_submits", &self.lock_token_submits)
            .field("owner_writes", &self.owner_writes)
            .field("limits", &self.limits)
            .field("disclosure", &self.disclosure)
            .field("dry_run", &self.dry_run)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}
