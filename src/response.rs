//! Why the layer answered a request itself, and the bodies it sends: RFC 4918 `DAV:error` XML
//! by default, RFC 9457 `application/problem+json` for clients that prefer JSON, and
//! `text/plain` for refusals RFC 4918 names no precondition for
//! ([decision D11](crate::decisions#d11)).

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{request, Method, Response, StatusCode};

use crate::dav::{error_body, lock_conflict_multistatus};
use crate::store::Quota;

/// Why the layer answered a request itself. A clone is put in the extensions of every
/// response the layer generates, so outer layers and tests can see the reason without parsing
/// the body.
///
/// ```
/// use http::StatusCode;
/// use tower_locks::Rejection;
///
/// let r = Rejection::Locked { roots: vec!["/docs/".into()], hidden: 0 };
/// assert_eq!(r.status(), StatusCode::LOCKED);
/// assert_eq!(Rejection::PreconditionFailed.status(), StatusCode::PRECONDITION_FAILED);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// 423: a lock covering a resource the request modifies was not submitted (in the `If`
    /// header, by its principal). `roots` are the hrefs of the unsatisfied lock roots the
    /// request may see ([`LockLayer::disclose_lock_roots`](crate::LockLayer::disclose_lock_roots)).
    Locked {
        /// Lock-root hrefs.
        roots: Vec<String>,
        /// How many more locked resources were found in the way, not named (a removal stops
        /// looking below after 16: [decision D19](crate::decisions#d19)).
        hidden: usize,
    },
    /// 423: a LOCK conflicts with existing locks on the resource or its ancestors.
    Conflict {
        /// Lock-root hrefs of the conflicting locks.
        roots: Vec<String>,
        /// How many more conflicting lock roots, not named.
        hidden: usize,
    },
    /// 207: a depth-infinity LOCK is blocked by locks below the request URI (RFC 4918 §9.10.3).
    ConflictBelow {
        /// The request URI's href.
        request: String,
        /// Lock-root hrefs of the blocking locks.
        roots: Vec<String>,
        /// How many more blocking lock roots, not named.
        hidden: usize,
    },
    /// 412: the `If` header, or `If-Match` / `If-None-Match` on a LOCK, evaluated to false.
    PreconditionFailed,
    /// 409 (UNLOCK) or 412 (LOCK refresh): the token does not name a lock whose scope holds
    /// the request URI (`DAV:lock-token-matches-request-uri`).
    LockTokenMismatch {
        /// 409 for UNLOCK, 412 for a refresh.
        status: StatusCode,
    },
    /// 403: the lock belongs to another principal.
    Forbidden,
    /// 403: the LOCK body declared a DTD (`DAV:no-external-entities`, RFC 4918 §20.6).
    ExternalEntities,
    /// 400: malformed request headers or body.
    BadRequest {
        /// What was wrong, for humans.
        reason: String,
    },
    /// 413: the LOCK body is larger than the configured limit.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 415: a body where the method takes none (UNLOCK), RFC 4918 §8.4.
    UnsupportedMediaType,
    /// 502: the `Destination` names another server.
    ForeignDestination,
    /// 403: a COPY or MOVE whose `Destination` is its own source (RFC 4918 §9.8.5, §9.9.4;
    /// [decision D22](crate::decisions#d22)).
    DestinationIsSource,
    /// 429: the principal (or, without one, all anonymous clients together) already holds its
    /// quota of locks.
    TooManyLocks {
        /// The quota.
        limit: u32,
    },
    /// 507: the store has no room for another lock on this resource, or at all (RFC 4918
    /// §11.5).
    InsufficientStorage {
        /// The limit that was reached.
        limit: u32,
    },
    /// 503: the lock store failed; nothing was forwarded (fail closed).
    StoreUnavailable,
    /// 500 (feature `axum`): the layer sits inside an axum `nest` or `nest_service` whose
    /// prefix is not its [`mount_prefix`](crate::LockLayer::mount_prefix), so it would judge
    /// the stripped request path and the client-visible `Destination` and `If` tags as one
    /// path space. Every guarded request gets it; safe methods pass
    /// ([decision D10](crate::decisions#d10)).
    MountPrefixMismatch {
        /// The prefix the layer is nested at, as written in the router (`/api`,
        /// `/t/{tenant}`).
        nested_at: String,
        /// The configured mount prefix, `None` when there is none.
        mount_prefix: Option<String>,
    },
}

impl Rejection {
    /// The refusal for a quota the store reported reached: a client's own allowance (its
    /// principal's, or the anonymous clients') is 429, no room on the resource or in the store
    /// is 507 ([decision D16](crate::decisions#d16)).
    pub(crate) fn quota(quota: Quota, limit: u32) -> Self {
        match quota {
            Quota::Principal | Quota::Anonymous => Rejection::TooManyLocks { limit },
            _ => Rejection::InsufficientStorage { limit },
        }
    }

    /// The status code of the response.
    ///
    /// ```
    /// use http::StatusCode;
    /// use tower_locks::Rejection;
    ///
    /// assert_eq!(Rejection::Conflict { roots: vec![], hidden: 0 }.status(), StatusCode::LOCKED);
    /// let below = Rejection::ConflictBelow { request: "/a/".into(), roots: vec!["/a/b".into()], hidden: 0 };
    /// assert_eq!(below.status(), StatusCode::MULTI_STATUS);
    /// let mismatch = Rejection::LockTokenMismatch { status: StatusCode::CONFLICT };
    /// assert_eq!(mismatch.status(), StatusCode::CONFLICT);
    /// assert_eq!(Rejection::StoreUnavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Locked { .. } | Rejection::Conflict { .. } => StatusCode::LOCKED,
            Rejection::ConflictBelow { .. } => StatusCode::MULTI_STATUS,
            Rejection::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Rejection::LockTokenMismatch { status } => *status,
            Rejection::Forbidden | Rejection::ExternalEntities | Rejection::DestinationIsSource => {
                StatusCode::FORBIDDEN
            }
            Rejection::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Rejection::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::ForeignDestination => StatusCode::BAD_GATEWAY,
            Rejection::TooManyLocks { .. } => StatusCode::TOO_MANY_REQUESTS,
            Rejection::InsufficientStorage { .. } => StatusCode::INSUFFICIENT_STORAGE,
            Rejection::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::MountPrefixMismatch { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The RFC 4918 §16 condition element, if this rejection has one.
    ///
    /// ```
    /// use tower_locks::Rejection;
    ///
    /// let locked = Rejection::Locked { roots: vec!["/docs/".into()], hidden: 0 };
    /// assert_eq!(locked.dav_condition(), Some("lock-token-submitted"));
    /// let conflict = Rejection::Conflict { roots: vec![], hidden: 0 };
    /// assert_eq!(conflict.dav_condition(), Some("no-conflicting-lock"));
    /// assert_eq!(Rejection::PreconditionFailed.dav_condition(), None);
    /// ```
    pub fn dav_condition(&self) -> Option<&'static str> {
        match self {
            Rejection::Locked { .. } => Some("lock-token-submitted"),
            Rejection::Conflict { .. } | Rejection::ConflictBelow { .. } => {
                Some("no-conflicting-lock")
            }
            Rejection::LockTokenMismatch { .. } => Some("lock-token-matches-request-uri"),
            Rejection::ExternalEntities => Some("no-external-entities"),
            _ => None,
        }
    }

    /// The lock roots this rejection names (empty for rejections that name none).
    ///
    /// ```
    /// use tower_locks::Rejection;
    ///
    /// let locked = Rejection::Locked { roots: vec!["/docs/".into(), "/docs/a".into()], hidden: 0 };
    /// assert_eq!(locked.lock_roots(), ["/docs/", "/docs/a"]);
    /// assert!(Rejection::Forbidden.lock_roots().is_empty());
    /// ```
    pub fn lock_roots(&self) -> &[String] {
        match self {
            Rejection::Locked { roots, .. }
            | Rejection::Conflict { roots, .. }
            | Rejection::ConflictBelow { roots, .. } => roots,
            _ => &[],
        }
    }

    pub(crate) fn short_name(&self) -> &'static str {
        match self {
            Rejection::Locked { .. } => "lock-token-submitted",
            Rejection::Conflict { .. } | Rejection::ConflictBelow { .. } => "no-conflicting-lock",
            Rejection::PreconditionFailed => "precondition-failed",
            Rejection::LockTokenMismatch { .. } => "lock-token-matches-request-uri",
            Rejection::Forbidden => "lock-owned-by-another-principal",
            Rejection::ExternalEntities => "no-external-entities",
            Rejection::BadRequest { .. } => "bad-request",
            Rejection::PayloadTooLarge { .. } => "payload-too-large",
            Rejection::UnsupportedMediaType => "unsupported-media-type",
            Rejection::ForeignDestination => "foreign-destination",
            Rejection::DestinationIsSource => "destination-is-source",
            Rejection::TooManyLocks { .. } => "too-many-locks",
            Rejection::InsufficientStorage { .. } => "insufficient-storage",
            Rejection::StoreUnavailable => "lock-store-unavailable",
            Rejection::MountPrefixMismatch { .. } => "mount-prefix-mismatch",
        }
    }

    pub(crate) fn title(&self) -> &'static str {
        match self {
            Rejection::Locked { .. } | Rejection::Conflict { .. } => "Locked",
            Rejection::ConflictBelow { .. } => "Locked",
            Rejection::PreconditionFailed => "Precondition Failed",
            Rejection::LockTokenMismatch { status } if *status == StatusCode::CONFLICT => {
                "Conflict"
            }
            Rejection::LockTokenMismatch { .. } => "Precondition Failed",
            Rejection::Forbidden | Rejection::ExternalEntities | Rejection::DestinationIsSource => {
                "Forbidden"
            }
            Rejection::BadRequest { .. } => "Bad Request",
            Rejection::PayloadTooLarge { .. } => "Content Too Large",
            Rejection::UnsupportedMediaType => "Unsupported Media Type",
            Rejection::ForeignDestination => "Bad Gateway",
            Rejection::TooManyLocks { .. } => "Too Many Requests",
            Rejection::InsufficientStorage { .. } => "Insufficient Storage",
            Rejection::StoreUnavailable => "Service Unavailable",
            Rejection::MountPrefixMismatch { .. } => "Internal Server Error",
        }
    }

    /// A human-readable explanation (the problem+json `detail`).
    ///
    /// ```
    /// use tower_locks::Rejection;
    ///
    /// let locked = Rejection::Locked { roots: vec!["/docs/".into()], hidden: 0 };
    /// assert_eq!(
    ///     locked.detail(),
    ///     "the resource is locked; submit the lock token of /docs/ in the If header"
    /// );
    /// assert_eq!(
    ///     Rejection::TooManyLocks { limit: 50 }.detail(),
    ///     "the principal already holds 50 locks"
    /// );
    /// ```
    pub fn detail(&self) -> String {
        match self {
            Rejection::Locked { roots, hidden } => format!(
                "the resource is locked; submit the lock token of {} in the If header",
                named(roots, *hidden)
            ),
            Rejection::Conflict { roots, hidden }
            | Rejection::ConflictBelow { roots, hidden, .. } => {
                format!("conflicting lock(s) held on {}", named(roots, *hidden))
            }
            Rejection::PreconditionFailed => "the If header evaluated to false".to_owned(),
            Rejection::LockTokenMismatch { .. } => {
                "the lock token does not name a lock whose scope holds the request URI".to_owned()
            }
            Rejection::Forbidden => "the lock is held by another principal".to_owned(),
            Rejection::ExternalEntities => "DTDs and external entities are not allowed".to_owned(),
            Rejection::BadRequest { reason } => reason.clone(),
            Rejection::PayloadTooLarge { limit } => {
                format!("the request body is larger than {limit} bytes")
            }
            Rejection::UnsupportedMediaType => "this method takes no request body".to_owned(),
            Rejection::ForeignDestination => "the Destination names another server".to_owned(),
            Rejection::DestinationIsSource => {
                "the Destination is the resource the request acts on".to_owned()
            }
            Rejection::TooManyLocks { limit } => {
                format!("the principal already holds {limit} locks")
            }
            Rejection::InsufficientStorage { limit } => {
                format!("no room for another lock (limit {limit})")
            }
            Rejection::StoreUnavailable => {
                "the lock store did not answer in time; retry later".to_owned()
            }
            Rejection::MountPrefixMismatch {
                nested_at,
                mount_prefix,
            } => {
                let told = match mount_prefix {
                    Some(p) => format!("its mount prefix is {p}"),
                    None => "it has no mount prefix".to_owned(),
                };
                let fix = match nested_at.contains('{') {
                    true => "a prefix with path parameters can be no mount prefix: put the \
                             layer outside the nest (Router::layer on the router that calls \
                             nest)"
                        .to_owned(),
                    false => format!(
                        "set LockLayer::mount_prefix(\"{nested_at}\"), or put the layer \
                         outside the nest"
                    ),
                };
                format!(
                    "the lock layer is mounted under a nest it was not told about \
                     (nested at {nested_at}, {told}), so it refuses every write, LOCK and UNLOCK; {fix}"
                )
            }
        }
    }
}

/// In dry-run mode ([`LockLayer::dry_run`](crate::LockLayer::dry_run)): the refusal the
/// layer would have sent. Inserted into the extensions of the forwarded request and of its
/// response.
///
/// ```
/// use tower_locks::{Rejection, WouldReject};
///
/// let w = WouldReject(Rejection::PreconditionFailed);
/// assert_eq!(w.0.status(), 412);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WouldReject(pub Rejection);

/// A user-supplied replacement for the default rejection responses.
pub(crate) type Responder =
    Arc<dyn Fn(&Rejection, &request::Parts) -> Response<Bytes> + Send + Sync>;

/// How the default responder renders rejections.
#[derive(Debug, Clone)]
pub(crate) struct ResponseConfig {
    pub(crate) problem_type_base: String,
    pub(crate) retry_after_secs: u32,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        Self {
            problem_type_base:
                "https://docs.rs/tower-locks/latest/tower_locks/enum.Rejection.html#".to_owned(),
            retry_after_secs: 1,
        }
    }
}

/// Build the response for `rejection` to the request of `parts`, whose URI the client sees as
/// `instance()` (mount prefix included, [decision D10](crate::decisions#d10); asked only when
/// the body names it): the custom responder's, or the default one. The rejection is always put
/// in the extensions, and a 503 always carries `Retry-After`.
pub(crate) fn render(
    rejection: Rejection,
    parts: &request::Parts,
    instance: impl Fn() -> String,
    custom: Option<&Responder>,
    cfg: &ResponseConfig,
) -> Response<Bytes> {
    let mut res = match custom {
        Some(f) => f(&rejection, parts),
        None => default_response(&rejection, parts, instance, cfg),
    };
    if rejection == Rejection::StoreUnavailable && !res.headers().contains_key(RETRY_AFTER) {
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(cfg.retry_after_secs));
    }
    res.extensions_mut().insert(rejection);
    res
}

/// The default body: DAV:error XML (or a 207 multistatus), or problem+json when the client
/// prefers JSON and the method is not a WebDAV one ([decision D11](crate::decisions#d11)).
fn default_response(
    rejection: &Rejection,
    parts: &request::Parts,
    instance: impl Fn() -> String,
    cfg: &ResponseConfig,
) -> Response<Bytes> {
    let status = rejection.status();
    let (content_type, body) = if let Rejection::ConflictBelow { request, roots, .. } = rejection {
        let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
        (XML, lock_conflict_multistatus(request, &roots))
    } else if prefers_json(parts) {
        (PROBLEM_JSON, problem_json(rejection, &instance(), cfg))
    } else if let Some(condition) = rejection.dav_condition() {
        let mut roots: Vec<&str> = rejection.lock_roots().iter().map(String::as_str).collect();
        // `lock-token-submitted` needs at least one href: when every root is withheld, the
        // request URI (the locked resource it tried to change) stands for them.
        let request_uri;
        if roots.is_empty() && matches!(rejection, Rejection::Locked { .. }) {
            request_uri = instance();
            roots.push(&request_uri);
        }
        (XML, error_body(condition, &roots))
    } else {
        (TEXT, format!("{}\n", rejection.detail()))
    };
    let mut res = Response::new(Bytes::from(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `roots` joined, and the withheld ones counted.
fn named(roots: &[String], hidden: usize) -> String {
    match (roots.is_empty(), hidden) {
        (_, 0) => roots.join(", "),
        (true, n) => format!("{n} resource(s) the requester may not see"),
        (false, n) => format!("{} and {n} more resource(s)", roots.join(", ")),
    }
}

const XML: &str = "application/xml; charset=\"utf-8\"";
const PROBLEM_JSON: &str = "application/problem+json";
const TEXT: &str = "text/plain; charset=utf-8";

/// The RFC 9457 members every problem the crate writes has: `type` (the configured base and
/// `name`), `title`, `status`, `detail` and `instance` (the request path).
pub(crate) fn problem_object(
    cfg: &ResponseConfig,
    name: &str,
    title: &str,
    status: StatusCode,
    detail: &str,
    instance: &str,
) -> serde_json::Map<String, serde_json::Value> {
    let mut obj = serde_json::Map::new();
    obj.insert(
        "type".into(),
        format!("{}{name}", cfg.problem_type_base).into(),
    );
    obj.insert("title".into(), title.into());
    obj.insert("status".into(), status.as_u16().into());
    obj.insert("detail".into(), detail.into());
    obj.insert("instance".into(), instance.into());
    obj
}

fn problem_json(rejection: &Rejection, instance: &str, cfg: &ResponseConfig) -> String {
    let mut obj = problem_object(
        cfg,
        rejection.short_name(),
        rejection.title(),
        rejection.status(),
        &rejection.detail(),
        instance,
    );
    if matches!(
        rejection,
        Rejection::Locked { .. } | Rejection::Conflict { .. } | Rejection::ConflictBelow { .. }
    ) {
        obj.insert("lockRoots".into(), rejection.lock_roots().to_vec().into());
        if let Rejection::Locked { hidden, .. }
        | Rejection::Conflict { hidden, .. }
        | Rejection::ConflictBelow { hidden, .. } = rejection
        {
            if *hidden > 0 {
                obj.insert("otherLocks".into(), (*hidden).into());
            }
        }
    }
    serde_json::Value::Object(obj).to_string()
}

/// The media types a refusal can be written in: JSON ones first, then XML ones.
const JSON_TYPES: usize = 2;
const ANSWER_TYPES: [(&str, &str); 5] = [
    ("application", "problem+json"),
    ("application", "json"),
    ("application", "xml"),
    ("text", "xml"),
    ("application", "problem+xml"),
];

/// WebDAV methods always get DAV:error; others get JSON when `Accept` ranks
/// `application/problem+json` or `application/json` above every XML type. Each type takes
/// the q-value of the most specific range that matches it (RFC 9110 §12.5.1): `*/*` and
/// `application/*` rank XML types too; at equal q, the type named more specifically wins.
fn prefers_json(parts: &request::Parts) -> bool {
    if is_webdav_method(&parts.method) {
        return false;
    }
    // (specificity, q) per answer type: 3 exact, 2 `type/*`, 1 `*/*`.
    let mut score = [(0u8, 0u16); ANSWER_TYPES.len()];
    for value in parts.headers.get_all(ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut pieces = range.split(';');
            let media = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let Some((kind, sub)) = media.split_once('/') else {
                continue;
            };
            let q = pieces
                .filter_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .or_else(|| p.trim().strip_prefix("Q="))
                })
                .find_map(parse_qvalue)
                .unwrap_or(1000);
            for (i, (t_kind, t_sub)) in ANSWER_TYPES.iter().enumerate() {
                let specificity = match (kind, sub) {
                    (k, s) if k == *t_kind && s == *t_sub => 3,
                    (k, "*") if k == *t_kind => 2,
                    ("*", "*") => 1,
                    _ => continue,
                };
                score[i] = score[i].max((specificity, q));
            }
        }
    }
    // Ranked by q, then by how specifically the client named the type: `application/json,
    // */*` names JSON and only admits XML, so it gets JSON; an exact tie is XML's.
    let best = |scores: &[(u8, u16)]| {
        let (specificity, q) = scores
            .iter()
            .max_by_key(|&&(s, q)| (q, s))
            .copied()
            .unwrap_or_default();
        (q, specificity)
    };
    let (json, xml) = score.split_at(JSON_TYPES);
    let best_json = best(json);
    best_json.0 > 0 && best_json > best(xml)
}

/// `q` values in thousandths (RFC 9110 §12.4.2); `None` when malformed.
fn parse_qvalue(s: &str) -> Option<u16> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    (thousandths <= 1000).then_some(thousandths)
}

fn is_webdav_method(m: &Method) -> bool {
    matches!(
        m.as_str(),
        "LOCK" | "UNLOCK" | "PROPFIND" | "PROPPATCH" | "MKCOL" | "COPY" | "MOVE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, accept: Option<&str>) -> request::Parts {
        let mut b = http::Request::builder().method(method).uri("/docs/1");
        if let Some(a) = accept {
            b = b.header(ACCEPT, a);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn json_only_when_preferred_and_not_webdav() {
        assert!(prefers_json(&parts("PUT", Some("application/json"))));
        assert!(prefers_json(&parts(
            "PUT",
            Some("application/problem+json")
        )));
        assert!(!prefers_json(&parts("PUT", None)));
        assert!(!prefers_json(&parts("PUT", Some("*/*"))));
        assert!(!prefers_json(&parts("MOVE", Some("application/json"))));
        assert!(!prefers_json(&parts(
            "PUT",
            Some("application/json;q=0.5, application/xml")
        )));
        assert!(prefers_json(&parts(
            "PUT",
            Some("application/xml;q=0.2, application/json;q=0.9")
        )));
        assert!(!prefers_json(&parts("PUT", Some("application/json;q=0"))));
        // A wildcard ranks the XML types too; the most specific range decides (RFC 9110
        // §12.5.1).
        for xml in [
            "application/json;q=0.5, */*",
            "application/json;q=0.5, application/*",
            "application/json;q=0.5, text/*",
            "application/*;q=0.9, application/json;q=0.5",
        ] {
            assert!(!prefers_json(&parts("PUT", Some(xml))), "{xml}");
        }
        for json in [
            "application/json, text/plain, */*",
            "*/*;q=0.1, application/json",
            "application/json, application/*;q=0.5",
            "application/*, application/xml;q=0.1, application/problem+xml;q=0",
        ] {
            assert!(prefers_json(&parts("PUT", Some(json))), "{json}");
        }
    }

    #[test]
    fn qvalues() {
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("1.5"), None);
        assert_eq!(parse_qvalue("0.1234"), None);
        assert_eq!(parse_qvalue("abc"), None);
    }

    #[test]
    fn problem_json_has_the_rfc_9457_members() {
        let r = Rejection::Locked {
            roots: vec!["/docs/".into(), "/docs/1".into()],
            hidden: 0,
        };
        let res = render(
            r.clone(),
            &parts("PUT", Some("application/json")),
            || "/docs/1".to_owned(),
            None,
            &ResponseConfig::default(),
        );
        assert_eq!(res.status(), 423);
        assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
        let v: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
        assert_eq!(v["status"], 423);
        assert_eq!(v["title"], "Locked");
        assert_eq!(v["instance"], "/docs/1");
        assert!(v["type"]
            .as_str()
            .unwrap()
            .ends_with("lock-token-submitted"));
        assert_eq!(v["lockRoots"], serde_json::json!(["/docs/", "/docs/1"]));
        assert!(v["detail"].as_str().unwrap().contains("/docs/"));
        assert_eq!(res.extensions().get::<Rejection>(), Some(&r));
    }

    #[test]
    fn store_unavailable_has_retry_after_even_with_custom_responder() {
        let custom: Responder = Arc::new(|_, _| Response::new(Bytes::from_static(b"down")));
        let res = render(
            Rejection::StoreUnavailable,
            &parts("PUT", None),
            || "/docs/1".to_owned(),
            Some(&custom),
            &ResponseConfig::default(),
        );
        assert_eq!(res.headers()[RETRY_AFTER], "1");
        assert_eq!(res.body().as_ref(), b"down");
        assert_eq!(
            res.extensions().get::<Rejection>(),
            Some(&Rejection::StoreUnavailable)
        );
    }
}
