//! Per-request context: the parsed, normalised view of the request the flow works on.

use std::sync::Arc;

use bytes::Bytes;
use http::header::HOST;
use http::{request, Response};

use crate::body::ResponseBody;
use crate::headers::{parse_if, IfHeader};
use crate::layer::Config;
use crate::path::Resolved;
use crate::path::Resolver;
use crate::response::{render, Rejection};
use crate::store::{satisfied, Lock, LockQuery};
use crate::ResourcePath;

pub(crate) struct Ctx {
    pub(crate) cfg: Arc<Config>,
    pub(crate) parts: request::Parts,
    /// The request path in the client-visible space (mount prefix included).
    pub(crate) target: ResourcePath,
    pub(crate) principal: Option<String>,
    pub(crate) if_header: Option<IfHeader>,
    /// The resource each `If` list applies to (`None`: a foreign or non-HTTP resource).
    pub(crate) if_resources: Vec<Option<ResourcePath>>,
}

impl Ctx {
    /// Parse what every guarded request needs; a malformed request gets its 400 here.
    pub(crate) fn new<B>(
        cfg: Arc<Config>,
        parts: request::Parts,
    ) -> Result<Self, Box<Response<ResponseBody<B>>>> {
        let limits = &cfg.limits;
        let target = match ResourcePath::parse_limited(
            parts.uri.path(),
            limits.max_path_bytes,
            limits.max_path_depth,
        ) {
            Ok(p) if cfg.prefix.is_root() => p,
            Ok(p) => p.under_prefix(&cfg.prefix),
            Err(e) => {
                return Err(Box::new(reject_with(
                    &cfg,
                    &parts,
                    bad_request(format!("request path: {e}")),
                )))
            }
        };
        let if_header = match parse_if(&parts.headers, &limits.if_header) {
            Ok(h) => h,
            Err(e) => {
                return Err(Box::new(reject_with(
                    &cfg,
                    &parts,
                    bad_request(e.to_string()),
                )))
            }
        };
        let principal = cfg.principal.extract(&parts);
        let mut ctx = Self {
            cfg,
            parts,
            target,
            principal,
            if_header,
            if_resources: Vec::new(),
        };
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
                                ctx.reject(bad_request(format!("If header resource tag: {e}"))),
                            ))
                        }
                    },
                };
                resources.push(r);
            }
            ctx.if_resources = resources;
        }
        Ok(ctx)
    }

    /// Resolve an absolute URI or absolute path against this request.
    pub(crate) fn resolve(&self, reference: &str) -> Result<Resolved, crate::PathError> {
        let authority = self
            .parts
            .uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| self.parts.headers.get(HOST).and_then(|h| h.to_str().ok()));
        Resolver {
            authority,
            any_authority: self.cfg.any_authority,
            prefix: &self.cfg.prefix,
            max_len: self.cfg.limits.max_path_bytes,
            max_depth: self.cfg.limits.max_path_depth,
        }
        .resolve(reference)
    }

    /// Add every `If` resource to `query`, so one store round trip answers both the token
    /// evaluation and the lock requirements.
    pub(crate) fn add_if_targets(&self, query: &mut LockQuery) {
        for p in self.if_resources.iter().flatten() {
            query.push(p.clone(), false);
        }
    }

    /// Every state token in the `If` header: submitted, wherever it appears (§10.4.1).
    pub(crate) fn submitted(&self) -> impl Iterator<Item = &str> {
        self.if_header.iter().flat_map(|h| h.state_tokens())
    }

    /// The locks in `required` whose token was not submitted by their principal.
    pub(crate) fn unsatisfied<'a>(
        &self,
        required: impl IntoIterator<Item = &'a Lock>,
    ) -> Vec<&'a Lock> {
        // The header holds few tokens (bounded by `IfLimits`): a scan needs no allocation.
        required
            .into_iter()
            .filter(|l| !satisfied(l, self.submitted(), self.principal.as_deref()))
            .collect()
    }

    pub(crate) fn reject<B>(&self, rejection: Rejection) -> Response<ResponseBody<B>> {
        reject_with(&self.cfg, &self.parts, rejection)
    }

    pub(crate) fn locked<B>(&self, locks: &[&Lock]) -> Response<ResponseBody<B>> {
        self.reject(Rejection::Locked {
            roots: roots(locks),
        })
    }
}

pub(crate) fn bad_request(reason: impl Into<String>) -> Rejection {
    Rejection::BadRequest {
        reason: reason.into(),
    }
}

/// The distinct lock-root hrefs of `locks`, sorted.
pub(crate) fn roots(locks: &[&Lock]) -> Vec<String> {
    let mut v: Vec<String> = locks.iter().map(|l| l.root.href()).collect();
    v.sort();
    v.dedup();
    v
}

pub(crate) fn reject_with<B>(
    cfg: &Config,
    parts: &request::Parts,
    rejection: Rejection,
) -> Response<ResponseBody<B>> {
    #[cfg(feature = "tracing")]
    tracing::debug!(method = %parts.method, path = parts.uri.path(), ?rejection, "tower-locks: request refused");
    let res: Response<Bytes> = render(rejection, parts, cfg.responder.as_ref(), &cfg.response);
    res.map(ResponseBody::full)
}
