//! The JSON bodies of the [`LockApi`](crate::LockApi).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::store::{Lock, LockDepth, LockScope, LockTimeout};

/// Exclusive or shared, in JSON: `"exclusive"` or `"shared"`.
///
/// ```
/// use tower_locks::ApiScope;
/// assert_eq!(serde_json::to_string(&ApiScope::Shared).unwrap(), r#""shared""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiScope {
    /// Nobody else may lock the resource (the default).
    #[default]
    Exclusive,
    /// Others may take shared locks too.
    Shared,
}

/// Depth 0 or infinity, in JSON: `"0"` or `"infinity"`.
///
/// ```
/// use tower_locks::ApiDepth;
/// assert_eq!(serde_json::to_string(&ApiDepth::Infinity).unwrap(), r#""infinity""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ApiDepth {
    /// The resource only (the default).
    #[default]
    #[serde(rename = "0")]
    Zero,
    /// The resource and everything below it.
    #[serde(rename = "infinity")]
    Infinity,
}

impl From<ApiScope> for LockScope {
    fn from(s: ApiScope) -> Self {
        match s {
            ApiScope::Exclusive => LockScope::Exclusive,
            ApiScope::Shared => LockScope::Shared,
        }
    }
}

impl From<ApiDepth> for LockDepth {
    fn from(d: ApiDepth) -> Self {
        match d {
            ApiDepth::Zero => LockDepth::Zero,
            ApiDepth::Infinity => LockDepth::Infinity,
        }
    }
}

/// The body of an acquire (`POST`); every member is optional, and an empty body takes the
/// defaults.
///
/// ```
/// use tower_locks::{AcquireRequest, ApiDepth, ApiScope};
///
/// let req: AcquireRequest =
///     serde_json::from_str(r#"{"timeoutSeconds": 300, "owner": {"name": "Ann"}, "scope": "shared"}"#)
///         .unwrap();
/// assert_eq!(req.timeout_seconds, Some(300));
/// assert_eq!(req.scope, Some(ApiScope::Shared));
/// assert_eq!(req.depth, None); // depth 0
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct AcquireRequest {
    /// The timeout wished for, in seconds; the layer's timeout policy has the last word.
    pub timeout_seconds: Option<u32>,
    /// Who holds the lock, for people reading it: any JSON value.
    pub owner: Option<serde_json::Value>,
    /// Depth 0 (default) or infinity.
    pub depth: Option<ApiDepth>,
    /// Exclusive (default) or shared.
    pub scope: Option<ApiScope>,
}

/// The body of a refresh (`PUT` with `Lock-Token`); optional.
///
/// ```
/// use tower_locks::RefreshRequest;
///
/// let req: RefreshRequest = serde_json::from_str(r#"{"timeoutSeconds": 60}"#).unwrap();
/// assert_eq!(req.timeout_seconds, Some(60));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct RefreshRequest {
    /// The new timeout wished for, in seconds; default: the policy's default.
    pub timeout_seconds: Option<u32>,
}

/// A lock, as the API shows it. The token is shown only to the lock's holder.
///
/// ```
/// use tower_locks::LockView;
///
/// let json = r#"{"root":"/docs/a","scope":"exclusive","depth":"0","holder":"ann",
///                "timeoutSeconds":600,"expiresAt":"2026-12-07T10:00:00Z","secondsLeft":42}"#;
/// let view: LockView = serde_json::from_str(json).unwrap();
/// assert_eq!(view.holder.as_deref(), Some("ann"));
/// assert_eq!(view.token, None);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LockView {
    /// The lock token; only in answers to the lock's holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The locked resource (the lock root), as an href.
    pub root: String,
    /// Exclusive or shared.
    pub scope: ApiScope,
    /// Depth 0 or infinity.
    pub depth: ApiDepth,
    /// The principal holding the lock; `None` for a lock taken anonymously.
    pub holder: Option<String>,
    /// The owner information given when the lock was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<serde_json::Value>,
    /// The granted timeout in seconds; `None` for an infinite lock.
    pub timeout_seconds: Option<u32>,
    /// When the lock expires (RFC 3339, UTC); `None` for an infinite lock.
    pub expires_at: Option<String>,
    /// Seconds until it expires, rounded up; `None` for an infinite lock.
    pub seconds_left: Option<u64>,
}

impl LockView {
    /// `lock` as `viewer` may see it at `now`.
    pub(crate) fn of(lock: &Lock, viewer: Option<&str>, now: SystemTime) -> Self {
        let holder = lock.principal.as_deref().map(str::to_owned);
        let is_holder = viewer.is_some() && lock.principal.as_deref() == viewer;
        LockView {
            token: is_holder.then(|| lock.token.to_string()),
            root: lock.root.href(),
            scope: match lock.scope {
                LockScope::Exclusive => ApiScope::Exclusive,
                LockScope::Shared => ApiScope::Shared,
            },
            depth: match lock.depth {
                LockDepth::Zero => ApiDepth::Zero,
                LockDepth::Infinity => ApiDepth::Infinity,
            },
            holder,
            owner: lock.owner.as_deref().map(owner_value),
            timeout_seconds: match lock.timeout {
                LockTimeout::Seconds(s) => Some(s),
                LockTimeout::Infinite => None,
            },
            expires_at: lock.expires_at.map(rfc3339),
            seconds_left: match lock.remaining_at(now) {
                LockTimeout::Seconds(secs) => Some(u64::from(secs)),
                LockTimeout::Infinite => None,
            },
        }
    }
}

/// The answer to a read or a list.
///
/// A list comes a page at a time: `next`, when present, is the reference of the next page,
/// relative to the list's own URL (`?list&after=…`).
///
/// ```
/// use tower_locks::LockList;
///
/// let list: LockList = serde_json::from_str(r#"{"locks":[]}"#).unwrap();
/// assert!(list.locks.is_empty() && list.next.is_none());
/// let page: LockList = serde_json::from_str(r#"{"locks":[],"next":"?list&after=/docs/a"}"#).unwrap();
/// assert_eq!(page.next.as_deref(), Some("?list&after=/docs/a"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LockList {
    /// The locks.
    pub locks: Vec<LockView>,
    /// The next page of a list, relative to this one's URL; absent on the last page and on a
    /// read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The owner as stored: JSON text, escaped as XML character data, so a WebDAV client reading
/// `DAV:lockdiscovery` sees it as text.
pub(crate) fn stored_owner(owner: &serde_json::Value) -> String {
    // U+FFFE and U+FFFF are no XML characters; outside strings JSON text is ASCII, so their
    // JSON escapes stand for them.
    let json = owner
        .to_string()
        .replace('\u{FFFE}', "\\ufffe")
        .replace('\u{FFFF}', "\\uffff");
    quick_xml::escape::escape(json).into_owned()
}

/// A stored owner as JSON: what [`stored_owner`] wrote, or a WebDAV client's owner XML as a
/// string.
fn owner_value(stored: &str) -> serde_json::Value {
    quick_xml::escape::unescape(stored)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| serde_json::Value::String(stored.to_owned()))
}

/// `at` as an RFC 3339 UTC timestamp with seconds.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_dates() {
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(at(1_796_605_261)), "2026-12-07T01:01:01Z");
    }

    #[test]
    fn owners_round_trip_and_stay_xml_text() {
        let owner = serde_json::json!({"name": "<Ann & co>"});
        let stored = stored_owner(&owner);
        assert!(!stored.contains('<'));
        assert_eq!(owner_value(&stored), owner);
        let xml = "<D:href xmlns:D=\"DAV:\">mailto:a@b</D:href>";
        assert_eq!(owner_value(xml), serde_json::Value::String(xml.into()));
    }
}
