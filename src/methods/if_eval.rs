//! Evaluating the `If` header (RFC 4918 §10.4.3, §10.4.4).
//!
//! The header is an OR over its lists (all of them, tagged for any resource: decision D6),
//! each list an AND of conditions, `Not` negating one condition. A state token matches when
//! a live lock with that token has the list's resource in its scope (so an unknown or bogus
//! token is simply false, never an error). An entity tag matches the resource's current ETag
//! under the weak comparison; an unmapped or foreign resource has no state, so both kinds of
//! condition are false for it (and `Not …` true). ETags are probed lazily: only for lists
//! whose other conditions already hold, and once per resource.

use std::collections::HashMap;

use http::{Request, Response};
use tower_service::Service;

use super::{Ctx, Inner};
use crate::headers::{ConditionKind, EntityTag, IfList};
use crate::hooks::ResourceState;
use crate::store::Lock;
use crate::ResourcePath;

/// Whether the request's `If` header holds (`true` when there is none).
pub(crate) async fn if_holds<S, ReqBody, ResBody>(
    ctx: &Ctx,
    locks: &[Lock],
    inner: &mut Inner<S>,
) -> bool
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Default,
{
    let Some(header) = &ctx.if_header else {
        return true;
    };
    let mut etags: HashMap<ResourcePath, Option<EntityTag>> = HashMap::new();
    for (list, resource) in header.lists.iter().zip(&ctx.if_resources) {
        if !tokens_hold(list, resource.as_ref(), locks) {
            continue;
        }
        let needs_etag = list
            .conditions
            .iter()
            .any(|c| matches!(c.kind, ConditionKind::ETag(_)));
        let current = match (needs_etag, resource) {
            (true, Some(path)) => {
                if !etags.contains_key(path) {
                    let etag = match inner.probe::<ReqBody, ResBody>(ctx, path).await {
                        ResourceState::Exists { etag } => etag,
                        _ => None,
                    };
                    etags.insert(path.clone(), etag);
                }
                etags.get(path).and_then(Option::as_ref)
            }
            _ => None,
        };
        if etags_hold(list, current) {
            return true;
        }
    }
    false
}

fn tokens_hold(list: &IfList, resource: Option<&ResourcePath>, locks: &[Lock]) -> bool {
    list.conditions.iter().all(|c| match &c.kind {
        ConditionKind::StateToken(token) => {
            let matched =
                resource.is_some_and(|r| locks.iter().any(|l| l.token == *token && l.covers(r)));
            matched != c.not
        }
        ConditionKind::ETag(_) => true,
    })
}

fn etags_hold(list: &IfList, current: Option<&EntityTag>) -> bool {
    list.conditions.iter().all(|c| match &c.kind {
        ConditionKind::ETag(tag) => current.is_some_and(|cur| cur.weak_eq(tag)) != c.not,
        ConditionKind::StateToken(_) => true,
    })
}
