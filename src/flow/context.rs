//! Per-request context: the parsed, normalised view of the request the flow works on.

use std::sync::Arc;

use bytes::Bytes;
use http::{request, Response};

use super::verdict::{States, Step};
use crate::body::ResponseBody;
use crate::config::{Config, Disclosure};
use crate::headers::{
    destination, parse_depth, parse_if, parse_lock_token, ConditionKind, HeaderError, IfHeader,
};
use crate::path::{has_empty_segment, request_authority, Resolved};
use crate::response::{render, Rejection};
use crate::store::{Below, Lock, LockQuery, LockStoreError};
use crate::ResourcePath;

pub(crate) struct Ctx {
    pub(crate) cfg: Arc<Config>,
    pub(crate) parts: request::Parts,
    /// The request path in the client-visible space (mount prefix included).
    pub(crate) target: ResourcePath,
    /// The `Destination` of a COPY or MOVE, normalised like the request path.
    pub(crate) destination: Option<ResourcePath>,
    /// Whether the `Destination` was sent with an empty segment (D23).
    destination_collapsed: bool,
    pub(crate) principal: Option<String>,
    pub(crate) if_header: Option<IfHeader>,
    /// A token in a `Lock-Token` header of a write other than UNLOCK, when the layer accepts
    /// those ([`LockLayer::accept_lock_token_header`](crate::LockLayer::accept_lock_token_header)).
    pub(crate) lock_token: Option<String>,
    /// The resource each `If` list applies to (`None`: a foreign or non-HTTP resource).
    pub(crate) if_resources: Vec<Option<ResourcePath>>,
}

impl Ctx {
    /// Parse what every guarded request needs; a malformed request gets its 400 here.
    pub(crate) fn new(
        cfg: Arc<Config>,
        parts: request::Parts,
    ) -> Result<Self, Box<Response<Bytes>>> {
        #[cfg(feature = "axum")]
        if let Some(rejection) = unknown_nest(&cfg, &parts) {
            return Err(Box::new(render_with(&cfg, &parts, rejection)));
        }
        let limits = &cfg.limits;
        let target = match cfg.resolver(None).request_path(parts.uri.path()) {
            Ok(p) => p,
            Err(e) => {
                return Err(Box::new(render_with(
                    &cfg,
                    &parts,
                    bad_request(format!("request path: {e}")),
                )))
            }
        };
        let if_header = match parse_if(&parts.headers, &limits.if_header) {
            Ok(h) => h,
            Err(e) => {
                return Err(Box::new(render_with(
                    &cfg,
                    &parts,
                    bad_request(e.to_string()),
                )))
            }
        };
        // Every guarded method reads `Depth` or must ignore it; a malformed one is a 400 either
        // way (D7), before any lock is judged.
        if let Err(e) = parse_depth(&parts.headers) {
            return Err(Box::new(render_with(
                &cfg,
                &parts,
                bad_request(e.to_string()),
            )));
        }
        let principal = cfg.principal.extract(&parts);
        let mut ctx = Self {
            cfg,
            parts,
            target,
            destination: None,
            destination_collapsed: false,
            principal,
            if_header,
            lock_token: None,
            if_resources: Vec::new(),
        };
        if ctx.cfg.lock_token_submits && !matches!(ctx.parts.method.as_str(), "LOCK" | "UNLOCK") {
            match parse_lock_token(&ctx.parts.headers) {
                Ok(token) => ctx.lock_token = Some(token),
                Err(HeaderError::Missing(_)) => {}
                Err(e) => return Err(Box::new(ctx.render(bad_request(e.to_string())))),
            }
        }
        if let Some(h) = &ctx.if_header {
            let mut resources = Vec::with_capacity(h.lists.len());
            for list in &h.lists {
                let r = match &list.resource {
                    None => Some(ctx.target.clone()),
                    Some(tag) => match ctx.resolve(tag) {
                        Ok(Resolved::Local(p)) => Some(p),
                        Ok(_) => None,
                        Err(e) => {
                            return Err(Box::new(
                                ctx.render(bad_request(format!("If header resource tag: {e}"))),
                            ))
                        }
                    },
                };
                resources.push(r);
            }
            ctx.if_resources = resources;
        }
        if matches!(ctx.parts.method.as_str(), "COPY" | "MOVE") {
            match ctx.destination_path() {
                Ok((d, collapsed)) => {
                    ctx.destination = Some(d);
                    ctx.destination_collapsed = collapsed;
                }
                Err(rejection) => return Err(Box::new(ctx.render(rejection))),
            }
        }
        Ok(ctx)
    }

    /// The `Destination` of a COPY or MOVE, normalised like the request path, and whether it
    /// was sent with an empty segment; never the request's own resource (D22).
    fn destination_path(&self) -> Result<(ResourcePath, bool), Rejection> {
        let raw = destination(&self.parts.headers)
            .map_err(|e| bad_request(e.to_string()))?
            .ok_or_else(|| bad_request("COPY and MOVE need a Destination header"))?;
        let authority = request_authority(&self.parts.uri, &self.parts.headers);
        match self.cfg.resolver(authority).resolve_as_sent(raw) {
            Ok((Resolved::Local(p), _)) if p == self.target => Err(Rejection::DestinationIsSource),
            Ok((Resolved::Local(p), collapsed)) => Ok((p, collapsed)),
            Ok(_) => Err(Rejection::ForeignDestination),
            Err(e) => Err(bad_request(format!("Destination: {e}"))),
        }
    }

    /// Whether `path` is the request URI or its `Destination`: the resources whose state the
    /// layer may ask the resource space for.
    pub(crate) fn acts_on(&self, path: &ResourcePath) -> bool {
        *path == self.target || self.destination.as_ref() == Some(path)
    }

    /// Whether the resource space may be asked about `path`: not when it is the request URI or
    /// the `Destination` sent with an empty segment, whose collapsed path the service behind
    /// may not act on ([decision D23](crate::decisions#d23)). Its state is then unknown.
    fn may_probe(&self, path: &ResourcePath) -> bool {
        let collapsed_target = *path == self.target && has_empty_segment(self.parts.uri.path());
        let collapsed_destination =
            self.destination_collapsed && self.destination.as_ref() == Some(path);
        !(collapsed_target || collapsed_destination)
    }

    /// Resolve an absolute URI or absolute path against this request.
    pub(crate) fn resolve(&self, reference: &str) -> Result<Resolved, crate::PathError> {
        let authority = request_authority(&self.parts.uri, &self.parts.headers);
        self.cfg.resolver(authority).resolve(reference)
    }

    /// Ask `query` for what the verdict needs to know of the submission, in the same store
    /// round trip as the lock requirements.
    ///
    /// For `If` evaluation, the lock of every state token in a list about a resource here
    /// (does the token's lock cover the list's resource?). The locks covering a target of the
    /// query come with it, so the tokens of lists about a target (every untagged list) need
    /// no lookup of their own; tokens in lists about foreign resources match nothing.
    ///
    /// A removal (a target asking for descendants) asks for the lock of every submitted token
    /// and, below its targets, only for what its verdict needs (see
    /// `LockQuery::judge_removal_by`): the resources below it the request can satisfy, and
    /// enough of the others to refuse it. The requester's own locks count when owners write
    /// without their tokens.
    #[inline]
    pub(crate) fn add_submission(&self, query: &mut LockQuery) {
        if query.asks_below() {
            let holder = self.principal.as_deref().filter(|_| self.cfg.owner_writes);
            query.judge_removal_by(self.submitted(), holder);
            return;
        }
        let Some(header) = &self.if_header else {
            return;
        };
        let elsewhere = |resource: &Option<ResourcePath>| {
            resource
                .as_ref()
                .is_some_and(|r| !query.targets.iter().any(|t| t.path == *r))
        };
        let lists = header.lists.iter().zip(&self.if_resources);
        let tokens: Vec<String> = lists
            .filter(|(_, resource)| elsewhere(resource))
            .flat_map(|(list, _)| &list.conditions)
            .filter_map(|c| match &c.kind {
                ConditionKind::StateToken(token) => Some(token.clone()),
                ConditionKind::ETag(_) => None,
            })
            .collect();
        query.tokens.extend(tokens);
        query.tokens.sort_unstable();
        query.tokens.dedup();
    }

    /// Every state token in the `If` header: submitted, wherever it appears (§10.4.1).
    pub(crate) fn submitted(&self) -> impl Iterator<Item = &str> {
        let in_if = self.if_header.iter().flat_map(|h| h.state_tokens());
        in_if.chain(self.lock_token.as_deref())
    }

    /// Settle `step` without waiting: every state it asks for is unknown, which is the truth
    /// when nothing can probe. `None` when a probe could tell (the caller then waits for
    /// [`settle`](Self::settle)).
    pub(crate) fn settle_now<T>(
        &self,
        states: &mut States,
        mut step: impl FnMut(&States) -> Step<T>,
    ) -> Option<T> {
        loop {
            match step(states) {
                Step::Done(t) => return Some(t),
                Step::Need(_) if self.cfg.space.can_probe() => return None,
                Step::Need(path) => states.insert(path, crate::ResourceState::Unknown),
            }
        }
    }

    /// Settle `step`, probing the states it asks for (only ever of the request's own
    /// resources, see `verdict::if_holds`: an `If` header naming many resources cannot turn
    /// one request into many).
    pub(crate) async fn settle<T>(
        &self,
        states: &mut States,
        mut step: impl FnMut(&States) -> Step<T>,
    ) -> T {
        loop {
            match step(states) {
                Step::Done(t) => return t,
                Step::Need(path) => {
                    self.state_of(states, &path).await;
                }
            }
        }
    }

    /// Whether `path` exists, and its ETag: known in `states`, or probed and kept there
    /// (unknown when nothing can tell).
    pub(crate) async fn state_of<'s>(
        &self,
        states: &'s mut States,
        path: &ResourcePath,
    ) -> &'s crate::ResourceState {
        if states.get(path).is_none() {
            let state = match self.may_probe(path) {
                true => {
                    let space = &self.cfg.space;
                    space.probe(path, &self.cfg.prefix, &self.parts).await
                }
                false => crate::ResourceState::Unknown,
            };
            states.insert(path.clone(), state);
        }
        states.get(path).unwrap_or(&crate::ResourceState::Unknown)
    }

    pub(crate) fn reject<B>(&self, rejection: Rejection) -> Response<ResponseBody<B>> {
        self.render(rejection).map(ResponseBody::full)
    }

    pub(crate) fn render(&self, rejection: Rejection) -> Response<Bytes> {
        render_as(&self.cfg, &self.parts, || self.target.href(), rejection)
    }

    /// The 423 for `locks`, naming the roots the disclosure policy allows.
    pub(crate) fn locked(&self, locks: &[&Lock]) -> Rejection {
        let (roots, hidden) = self.disclose(locks);
        Rejection::Locked { roots, hidden }
    }

    /// The lock-root hrefs of `locks` this request may see, sorted and distinct (at most
    /// [`MAX_NAMED_ROOTS`]), and how many more there are. Under [`Disclosure::Related`] a root
    /// is named when it is at or above the request URI or its `Destination`, or held by the
    /// requesting principal.
    pub(crate) fn disclose(&self, locks: &[&Lock]) -> (Vec<String>, usize) {
        if self.cfg.disclosure == Disclosure::All {
            return named(locks.iter().map(|l| &l.root), 0);
        }
        let visible = |l: &Lock| match self.cfg.disclosure {
            Disclosure::All => true,
            Disclosure::Related => {
                l.root.contains(&self.target)
                    || self
                        .destination
                        .as_ref()
                        .is_some_and(|d| l.root.contains(d))
                    || (self.principal.is_some()
                        && l.principal.as_deref() == self.principal.as_deref())
            }
        };
        let (shown, hidden): (Vec<&Lock>, Vec<&Lock>) = locks.iter().partition(|l| visible(l));
        let mut hidden: Vec<&str> = hidden.iter().map(|l| l.root.as_str()).collect();
        hidden.sort_unstable();
        hidden.dedup();
        named(shown.iter().map(|l| &l.root), hidden.len())
    }
}

/// Most lock roots a refusal names; the others are counted. A DELETE or a depth-infinity LOCK
/// of a collection with thousands of locked members gets an answer of a few kilobytes, not
/// one naming every member.
const MAX_NAMED_ROOTS: usize = Below::BLOCKED;

/// The hrefs of the first [`MAX_NAMED_ROOTS`] distinct resources of `roots` in path order, and
/// `hidden` plus how many were left out. Only the named ones are written out as hrefs.
pub(crate) fn named<'a>(
    roots: impl IntoIterator<Item = &'a ResourcePath>,
    hidden: usize,
) -> (Vec<String>, usize) {
    let mut roots: Vec<&ResourcePath> = roots.into_iter().collect();
    roots.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    roots.dedup_by(|a, b| a == b);
    let more = roots.len().saturating_sub(MAX_NAMED_ROOTS);
    let hrefs = roots
        .iter()
        .take(MAX_NAMED_ROOTS)
        .map(|r| r.href())
        .collect();
    (hrefs, hidden + more)
}

/// With feature `axum`: the refusal of every guarded request when the layer sits inside an axum
/// `nest` or `nest_service` ([`NestedPath`](axum::extract::NestedPath) in the request, the
/// prefix as written, nested nests joined) whose prefix is not exactly the configured mount
/// prefix. Such a router strips its prefix from the path the layer sees, while `Destination`
/// and `If` tags keep it: the layer would judge two path spaces as one, and a COPY onto a
/// locked resource would pass without its token ([decision D10](crate::decisions#d10)). A
/// prefix with a path parameter (`/t/{tenant}`) matches no mount prefix.
#[cfg(feature = "axum")]
fn unknown_nest(cfg: &Config, parts: &request::Parts) -> Option<Rejection> {
    let nested_at = parts
        .extensions
        .get::<axum::extract::NestedPath>()?
        .as_str();
    let named =
        !nested_at.contains('{') && ResourcePath::parse(nested_at).is_ok_and(|p| p == cfg.prefix);
    if named {
        return None;
    }
    #[cfg(feature = "tracing")]
    tracing::error!(
        nested_at,
        mount_prefix = cfg.prefix.as_str(),
        "tower-locks: the layer is inside a nest it was not told about; guarded requests get 500"
    );
    Some(Rejection::MountPrefixMismatch {
        nested_at: nested_at.to_owned(),
        mount_prefix: (!cfg.prefix.is_root()).then(|| cfg.prefix.as_str().to_owned()),
    })
}

pub(crate) fn bad_request(reason: impl Into<String>) -> Rejection {
    Rejection::BadRequest {
        reason: reason.into(),
    }
}

/// The store failed: 503 (fail closed; a write under fail-open is forwarded instead), with
/// the store's error and its causes in an ERROR event.
pub(crate) fn store_failed(_err: &LockStoreError) -> Rejection {
    #[cfg(feature = "tracing")]
    tracing::error!(
        error = _err as &(dyn std::error::Error + 'static),
        "tower-locks: lock store failed"
    );
    Rejection::StoreUnavailable
}

/// The refusal of a request the layer could not read far enough to know its resource: named
/// by its path as the client sent it (under the mount prefix).
pub(crate) fn render_with(
    cfg: &Config,
    parts: &request::Parts,
    rejection: Rejection,
) -> Response<Bytes> {
    let path = parts.uri.path();
    let instance = || match cfg.prefix.is_root() {
        true => path.to_owned(),
        false => format!("{}{path}", cfg.prefix.as_str()),
    };
    render_as(cfg, parts, instance, rejection)
}

/// The refusal of the request of `parts`, whose URI the client sees as `instance()`.
fn render_as(
    cfg: &Config,
    parts: &request::Parts,
    instance: impl Fn() -> String,
    rejection: Rejection,
) -> Response<Bytes> {
    #[cfg(feature = "tracing")]
    tracing::debug!(method = %parts.method, path = parts.uri.path(), ?rejection, "tower-locks: request refused");
    render(
        rejection,
        parts,
        instance,
        cfg.responder.as_ref(),
        &cfg.response,
    )
}
