//! The JSON lock API (`LockApi`) through axum's real `Router`, served by hyper on
//! `127.0.0.1:0`, on the memory store and on Redis: every endpoint, every error, principal
//! isolation, idempotent acquire, owner writes on and off, events in order.

#[path = "common/adjusted.rs"]
mod adjusted;
#[path = "common/loopback.rs"]
mod loopback;
#[cfg(feature = "redis")]
#[path = "common/redis.rs"]
mod redis_env;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adjusted::Adjusted;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::put;
use axum::Router;
use http::{HeaderMap, StatusCode};
use loopback::{serve, Loopback};
use serde_json::Value;
use tower_locks::{
    CreateOutcome, DynLockStore, Limits, Lock, LockEvent, LockLayer, LockPolicy, LockStore,
    LockView, MemoryLockStore, NewLock, Principal, ResourcePath,
};

/// "admin" may list every lock and break every lock but carol's (a legal hold, say).
struct Admins;

impl LockPolicy for Admins {
    fn may_list_all(&self, request: &http::request::Parts, _: &ResourcePath) -> bool {
        is_admin(request)
    }
    fn may_break(&self, request: &http::request::Parts, lock: &Lock) -> bool {
        is_admin(request) && lock.principal.as_deref() != Some("carol")
    }
}

fn is_admin(request: &http::request::Parts) -> bool {
    request
        .extensions
        .get::<Principal>()
        .is_some_and(|p| p.as_str() == "admin")
}

async fn authenticate(mut req: Request, next: Next) -> Response {
    if let Some(user) = req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
        let user = user.to_owned();
        req.extensions_mut().insert(Principal::new(user));
    }
    next.run(req).await
}

/// What the events hook heard, in order: (kind, root, holder, by).
type Heard = Arc<Mutex<Vec<(String, String, Option<String>, Option<String>)>>>;

struct App {
    client: Loopback,
    heard: Heard,
}

async fn app(store: Arc<dyn DynLockStore>, owner_writes: bool, limits: Limits) -> App {
    let heard: Heard = Arc::default();
    let log = heard.clone();
    let locks = LockLayer::from_arc(store)
        .owner_writes(owner_writes)
        .limits(limits)
        .on_lock_event(move |e| {
            let kind = e.kind();
            let by = match e {
                LockEvent::Broken { by, .. } => by.clone(),
                _ => None,
            };
            let lock = e.lock();
            let holder = lock.principal.as_deref().map(str::to_owned);
            log.lock()
                .unwrap()
                .push((kind.to_owned(), lock.root.href(), holder, by));
        });
    let router = Router::new()
        .route(
            "/docs/{id}",
            put(|| async { StatusCode::NO_CONTENT }).get(|| async { "doc" }),
        )
        .layer(locks.clone())
        .nest_service("/locks", locks.lock_api().with_policy(Admins))
        .layer(middleware::from_fn(authenticate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    App {
        client: Loopback::new(addr),
        heard,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

impl App {
    async fn send(
        &self,
        method: &str,
        path: &str,
        user: Option<&str>,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let mut all: Vec<(&str, String)> =
            user.map(|u| ("x-user", u.to_owned())).into_iter().collect();
        all.extend(headers.iter().map(|(k, v)| (*k, (*v).to_owned())));
        // The lock API reads a body declared as JSON.
        let declared = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if path.starts_with("/locks") && !body.is_empty() && !declared {
            all.push(("content-type", "application/json".to_owned()));
        }
        let (status, headers, text) = self.client.send(method, path, &all, body).await;
        Answer {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// `DELETE /locks{path}` with `Lock-Token: <token>`, as `user`: the status.
    async fn release(&self, path: &str, user: Option<&str>, token: &str) -> StatusCode {
        let lt = format!("<{token}>");
        let path = format!("/locks{path}");
        let a = self
            .send("DELETE", &path, user, &[("lock-token", &lt)], "")
            .await;
        a.status
    }

    /// Wait (bounded) until the hook heard `n` events.
    async fn heard(&self, n: usize) -> Vec<(String, String, Option<String>, Option<String>)> {
        let start = Instant::now();
        loop {
            let heard = self.heard.lock().unwrap().clone();
            if heard.len() >= n || start.elapsed() > Duration::from_secs(5) {
                return heard;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn view(a: &Answer) -> LockView {
    serde_json::from_value(a.json.clone()).unwrap_or_else(|e| panic!("{e}: {}", a.json))
}

async fn every_endpoint(store: Arc<dyn DynLockStore>) {
    let app = app(store, false, Limits::default()).await;
    let owner = r#"{"owner": {"name": "Ann"}, "timeoutSeconds": 300}"#;

    // Acquire.
    let a = app
        .send("POST", "/locks/docs/a", Some("ann"), &[], owner)
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    let mine = view(&a);
    let token = mine.token.clone().expect("the holder sees the token");
    assert_eq!(
        (mine.root.as_str(), mine.holder.as_deref()),
        ("/docs/a", Some("ann"))
    );
    assert_eq!(mine.owner, Some(serde_json::json!({"name": "Ann"})));
    assert_eq!(mine.timeout_seconds, Some(300));
    assert!(mine.seconds_left.is_some_and(|s| s <= 300));
    // Acquire again: a refresh, same token.
    let a = app
        .send("POST", "/locks/docs/a", Some("ann"), &[], owner)
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(view(&a).token.as_deref(), Some(token.as_str()));
    // Somebody else: 423 naming the holder and the expiry, with Retry-After.
    let a = app
        .send("POST", "/locks/docs/a", Some("bob"), &[], "")
        .await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(a.headers["content-type"], "application/problem+json");
    assert_eq!(a.json["lockRoots"], serde_json::json!(["/docs/a"]));
    assert_eq!(a.json["holders"][0]["holder"], "ann");
    assert!(a.json["holders"][0]["expiresAt"].is_string());
    assert!(a.headers.contains_key("retry-after"));

    // Read: the token only for its holder.
    let a = app.send("GET", "/locks/docs/a", Some("bob"), &[], "").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["locks"][0]["holder"], "ann");
    assert!(a.json["locks"][0].get("token").is_none(), "{}", a.json);
    let a = app.send("GET", "/locks/docs/a", Some("ann"), &[], "").await;
    assert_eq!(a.json["locks"][0]["token"], token.as_str());

    // The lock protects the document: a refused edit, with its problem+json body.
    let json = [("accept", "application/json")];
    let a = app.send("PUT", "/docs/a", Some("bob"), &json, "x").await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(a.json["lockRoots"], serde_json::json!(["/docs/a"]));
    // Owner writes are off here: even ann needs her token.
    let a = app.send("PUT", "/docs/a", Some("ann"), &[], "x").await;
    assert_eq!(a.status, StatusCode::LOCKED);
    let with = format!("(<{token}>)");
    let a = app
        .send("PUT", "/docs/a", Some("ann"), &[("if", &with)], "x")
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);

    // Refresh: the holder only; unknown tokens 404; a path outside the lock 409.
    let bracketed = format!("<{token}>");
    let lt = [("lock-token", bracketed.as_str())];
    let a = app.send("PUT", "/locks/docs/a", Some("bob"), &lt, "").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = app
        .send(
            "PUT",
            "/locks/docs/a",
            Some("ann"),
            &lt,
            r#"{"timeoutSeconds": 120}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(view(&a).timeout_seconds, Some(120));
    let unknown = [(
        "lock-token",
        "<urn:uuid:00000000-0000-4000-8000-000000000000>",
    )];
    let a = app
        .send("PUT", "/locks/docs/a", Some("ann"), &unknown, "")
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = app
        .send("PUT", "/locks/docs/other", Some("ann"), &lt, "")
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);

    // List: own locks, or all for the policy's administrators.
    let a = app
        .send("GET", "/locks/docs/?list", Some("bob"), &[], "")
        .await;
    assert_eq!(a.json["locks"], serde_json::json!([]));
    let a = app
        .send("GET", "/locks/docs/?list", Some("admin"), &[], "")
        .await;
    assert_eq!(a.json["locks"].as_array().unwrap().len(), 1);

    // Release and break: not for bob.
    let a = app
        .send("DELETE", "/locks/docs/a", Some("bob"), &lt, "")
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = app
        .send("DELETE", "/locks/docs/a?break", Some("bob"), &[], "")
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = app
        .send("POST", "/locks/docs/a?takeover", Some("bob"), &[], "")
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // The administrator takes over.
    let a = app
        .send("POST", "/locks/docs/a?takeover", Some("admin"), &[], "")
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    let admins = view(&a).token.unwrap();
    let a = app
        .send("PUT", "/docs/a", Some("ann"), &[("if", &with)], "x")
        .await;
    assert_eq!(
        a.status,
        StatusCode::PRECONDITION_FAILED,
        "ann's token names no lock any more"
    );
    let lt = format!("<{admins}>");
    let a = app
        .send(
            "DELETE",
            "/locks/docs/a",
            Some("admin"),
            &[("lock-token", &lt)],
            "",
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = app
        .send("DELETE", "/locks/docs/a?break", Some("admin"), &[], "")
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "nothing left to break");

    // Events, in order.
    let heard = app.heard(6).await;
    let kinds: Vec<&str> = heard.iter().map(|(k, ..)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "granted",
            "refreshed",
            "refreshed",
            "broken",
            "granted",
            "released"
        ],
        "{heard:?}"
    );
    assert_eq!(heard[3].2.as_deref(), Some("ann"), "the previous holder");
    assert_eq!(heard[3].3.as_deref(), Some("admin"), "who broke it");

    // Bad input.
    let a = app
        .send("POST", "/locks/docs/b", Some("ann"), &[], "{not json")
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = app
        .send(
            "POST",
            "/locks/docs/b",
            Some("ann"),
            &[],
            r#"{"color": "red"}"#,
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::BAD_REQUEST,
        "unknown members are refused"
    );
    let a = app
        .send(
            "POST",
            "/locks/docs/b",
            Some("ann"),
            &[],
            &"x".repeat(20_000),
        )
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    let a = app
        .send("POST", "/locks/docs/%2e%2e/b", Some("ann"), &[], "")
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = app
        .send("DELETE", "/locks/docs/b", Some("ann"), &[], "")
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "no Lock-Token");
    let a = app
        .send("PATCH", "/locks/docs/b", Some("ann"), &[], "")
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);

    // The lock root is the raw path, normalised as the layer normalises it; an encoded slash
    // is refused by both (D21).
    for method in ["POST", "PUT"] {
        let path = ["/locks/docs/a%2Fb", "/docs/a%2Fb"][usize::from(method == "PUT")];
        let a = app.send(method, path, Some("ann"), &[], "").await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{method} {path}");
    }
    for id in ["a%2Cb", "%2541"] {
        let a = app
            .send("POST", &format!("/locks/docs/{id}"), Some("ann"), &[], "")
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{id}");
        let a = app
            .send("PUT", &format!("/docs/{id}"), Some("bob"), &[], "x")
            .await;
        assert_eq!(a.status, StatusCode::LOCKED, "{id}");
    }
}

async fn owner_writes_and_quotas(store: Arc<dyn DynLockStore>) {
    let mut limits = Limits::default();
    limits.max_anonymous_locks = Some(1);
    let app = app(store, true, limits).await;
    let a = app
        .send("POST", "/locks/docs/w", Some("ann"), &[], "")
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    // Owner writes: the holder writes without the token; nobody else does.
    let a = app.send("PUT", "/docs/w", Some("ann"), &[], "x").await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = app.send("PUT", "/docs/w", Some("bob"), &[], "x").await;
    assert_eq!(a.status, StatusCode::LOCKED);
    let a = app.send("PUT", "/docs/w", None, &[], "x").await;
    assert_eq!(a.status, StatusCode::LOCKED);
    // Anonymous clients share one quota.
    let a = app.send("POST", "/locks/docs/anon1", None, &[], "").await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert!(
        view(&a).token.is_some(),
        "the taker of an anonymous lock gets its token: nothing else holds the lock"
    );
    let a = app.send("POST", "/locks/docs/anon2", None, &[], "").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    // Expiry is heard too.
    let a = app
        .send(
            "POST",
            "/locks/docs/brief",
            Some("ann"),
            &[],
            r#"{"timeoutSeconds": 1}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let start = Instant::now();
    loop {
        let heard = app.heard.lock().unwrap().clone();
        if heard
            .iter()
            .any(|(k, r, ..)| k == "expired" && r == "/docs/brief")
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no expiry event: {heard:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A list comes a page of 100 locked resources at a time; following `next` from the first
/// page visits every lock once: all of them for an administrator, their own for anybody
/// else, whose pages hold their own resources only, so that no `next` names a resource
/// somebody else has locked; an anonymous client lists nothing. The cursor survives a
/// resource name with `&`, `=` and `+` at a page boundary.
async fn lists_come_a_page_at_a_time(store: Arc<dyn DynLockStore>) {
    let app = app(store.clone(), false, Limits::default()).await;
    let mut roots = Vec::new();
    for i in 0..345 {
        // The 100th resource in path order is the one with `&`, `=` and `+`.
        let name = if i == 99 {
            "m0099&x=y+z".to_owned()
        } else {
            format!("m{i:04}")
        };
        let holder = if i % 3 == 0 { "ann" } else { "bob" };
        let lock = NewLock::new(ResourcePath::parse(&format!("/docs/{name}")).unwrap())
            .principal(holder)
            .principal_quota(10_000);
        match store.create_boxed(lock).await.unwrap() {
            CreateOutcome::Created(l) => roots.push((l.root.href(), holder)),
            other => panic!("{other:?}"),
        }
    }
    for user in ["admin", "ann"] {
        let mut link = "/locks/docs/?list".to_owned();
        let (mut seen, mut pages) = (Vec::new(), Vec::new());
        loop {
            let a = app.send("GET", &link, Some(user), &[], "").await;
            assert_eq!(a.status, StatusCode::OK, "{link}: {}", a.json);
            let locks = a.json["locks"].as_array().unwrap();
            pages.push(locks.len());
            seen.extend(locks.iter().map(|l| l["root"].as_str().unwrap().to_owned()));
            match a.json["next"].as_str() {
                Some(next) => {
                    let after = next.strip_prefix("?list&after=").unwrap();
                    let named = roots.iter().find(|(root, _)| {
                        root.replace('&', "%26")
                            .replace('=', "%3D")
                            .replace('+', "%2B")
                            == after
                    });
                    let (_, holder) = named.unwrap_or_else(|| panic!("{next} names no lock"));
                    assert!(
                        user == "admin" || *holder == user,
                        "{user}'s list names {holder}'s {after}"
                    );
                    link = format!("/locks/docs/{next}");
                }
                None => break,
            }
        }
        let want: Vec<String> = roots
            .iter()
            .filter(|(_, holder)| user == "admin" || *holder == user)
            .map(|(root, _)| root.clone())
            .collect();
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(sorted, want, "{user}: every lock once, in order");
        assert_eq!(seen, sorted, "{user}: pages in path order");
        if user == "admin" {
            assert_eq!(pages, [100, 100, 100, 45]);
        } else {
            assert_eq!(
                pages,
                [100, 15],
                "{user}'s own resources, a page of 100 at a time"
            );
        }
    }
    let a = app.send("GET", "/locks/docs/?list", None, &[], "").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["locks"], serde_json::json!([]));
    assert!(
        a.json.get("next").is_none_or(serde_json::Value::is_null),
        "{}",
        a.json
    );
    let a = app
        .send("GET", "/locks/docs/?list&after=%zz", Some("admin"), &[], "")
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

/// Breaking and taking over are all or nothing, and a lock taken without a principal is
/// held by whoever shows its token: nobody else breaks it but as the policy allows.
async fn breaks_are_all_or_nothing(store: Arc<dyn DynLockStore>) {
    let app = app(store.clone(), false, Limits::default()).await;
    let p = |s: &str| ResourcePath::parse(s).unwrap();
    let live = |lock: Lock| {
        let store = store.clone();
        async move { store.get_boxed(&lock.token).await.unwrap().is_some() }
    };
    let lock = |new: NewLock| {
        let store = store.clone();
        async move {
            match store.create_boxed(new).await.unwrap() {
                CreateOutcome::Created(lock) => lock,
                other => panic!("{other:?}"),
            }
        }
    };

    // An anonymous lock: bob may break nothing, an anonymous client is nobody's holder.
    let anon = lock(NewLock::new(p("/docs/anon"))).await;
    let a = app
        .send("DELETE", "/locks/docs/anon?break", Some("bob"), &[], "")
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.json);
    let a = app
        .send("POST", "/locks/docs/anon?takeover", None, &[], "")
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.json);
    assert!(live(anon.clone()).await, "an anonymous lock was broken");
    // Its token is what holds it: shown, anybody releases it (as UNLOCK would).
    assert_eq!(
        app.release("/docs/anon", Some("bob"), &anon.token).await,
        StatusCode::NO_CONTENT
    );
    // The policy may let an administrator break one.
    let anon = lock(NewLock::new(p("/docs/anon"))).await;
    let a = app
        .send("DELETE", "/locks/docs/anon?break", Some("admin"), &[], "")
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.json);
    assert!(!live(anon).await);

    // Shared locks of fifteen users and carol: the policy refuses carol's, so none is broken,
    // in whatever order the store reports them (were they broken one by one until carol's,
    // all but one order would break some).
    let shared = |who: &str| {
        NewLock::new(p("/docs/s"))
            .scope(tower_locks::LockScope::Shared)
            .principal(who)
    };
    let mut on_s = Vec::new();
    for i in 0..15 {
        on_s.push(lock(shared(&format!("s{i}"))).await);
    }
    on_s.push(lock(shared("carol")).await);
    for request in ["DELETE /locks/docs/s?break", "POST /locks/docs/s?takeover"] {
        let (method, path) = request.split_once(' ').unwrap();
        let a = app.send(method, path, Some("admin"), &[], "").await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{request}: {}", a.json);
        for l in &on_s {
            assert!(
                live(l.clone()).await,
                "{request} broke a lock and answered 403"
            );
        }
    }
    let bob_s = on_s[0].clone();

    // A takeover the new lock cannot get even then breaks nothing: dan's lock below blocks a
    // depth-infinity lock on /docs/d, and no takeover of /docs/d removes it.
    let bobs = lock(NewLock::new(p("/docs/d")).principal("bob")).await;
    let dans = lock(NewLock::new(p("/docs/d/x")).principal("dan")).await;
    let deep = r#"{"depth": "infinity"}"#;
    let a = app
        .send("POST", "/locks/docs/d?takeover", Some("admin"), &[], deep)
        .await;
    assert_eq!(a.status, StatusCode::LOCKED, "{}", a.json);
    assert!(
        live(bobs.clone()).await,
        "a refused takeover broke bob's lock"
    );
    // Nor does a lock on an ancestor that the takeover cannot remove (shared, so that frank
    // could lock a member).
    let eves = lock(
        NewLock::new(p("/docs/e/"))
            .depth(tower_locks::LockDepth::Infinity)
            .scope(tower_locks::LockScope::Shared)
            .principal("eve"),
    )
    .await;
    let franks = lock(
        NewLock::new(p("/docs/e/f"))
            .scope(tower_locks::LockScope::Shared)
            .principal("frank"),
    )
    .await;
    let a = app
        .send("POST", "/locks/docs/e/f?takeover", Some("admin"), &[], "")
        .await;
    assert_eq!(a.status, StatusCode::LOCKED, "{}", a.json);
    assert!(
        live(franks).await,
        "a refused takeover broke the lock on /docs/e/f"
    );
    assert!(live(eves).await);
    // Once dan's lock is gone, the takeover breaks bob's and gets its lock.
    assert_eq!(
        app.release("/docs/d/x", Some("dan"), &dans.token).await,
        StatusCode::NO_CONTENT
    );
    let a = app
        .send("POST", "/locks/docs/d?takeover", Some("admin"), &[], deep)
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    assert!(!live(bobs).await);
    // Past sixteen shared locks on the resource (the store may name only sixteen
    // conflicts), an exclusive depth-infinity takeover still sees a lock below.
    let on_g = |who: String| {
        NewLock::new(p("/docs/g"))
            .scope(tower_locks::LockScope::Shared)
            .principal(who)
    };
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(lock(on_g(format!("u{i}"))).await);
    }
    let below = lock(NewLock::new(p("/docs/g/x")).principal("dan")).await;
    let a = app
        .send("POST", "/locks/docs/g?takeover", Some("admin"), &[], deep)
        .await;
    assert_eq!(a.status, StatusCode::LOCKED, "{}", a.json);
    for user in &users {
        assert!(
            live(user.clone()).await,
            "a refused takeover broke a lock on /docs/g"
        );
    }
    assert_eq!(
        app.release("/docs/g/x", Some("dan"), &below.token).await,
        StatusCode::NO_CONTENT
    );
    let a = app
        .send("POST", "/locks/docs/g?takeover", Some("admin"), &[], deep)
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    for user in users {
        assert!(
            !live(user).await,
            "the takeover left a shared lock in its way"
        );
    }

    // A flag takes no value.
    for request in [
        "DELETE /locks/docs/s?break=false",
        "GET /locks/docs/s?list=0",
        "POST /locks/docs/s?takeover=no",
    ] {
        let (method, path) = request.split_once(' ').unwrap();
        let a = app.send(method, path, Some("admin"), &[], "").await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{request}: {}", a.json);
        assert!(a.json["type"].as_str().unwrap().ends_with("#bad-query"));
    }
    assert!(live(bob_s).await, "a refused ?break=false broke a lock");
}

#[tokio::test]
async fn breaks_are_all_or_nothing_on_the_memory_store() {
    breaks_are_all_or_nothing(Arc::new(MemoryLockStore::new())).await;
}

/// A store as terse as the contract allows: of more than sixteen conflicts it names only
/// sixteen, those rooted at the requested path first.
fn terse<S>(store: S) -> Adjusted<S> {
    Adjusted {
        created: |root, outcome| match outcome {
            CreateOutcome::Conflict(mut conflicts) if conflicts.len() > 16 => {
                conflicts.sort_by_key(|l| l.root != *root);
                conflicts.truncate(16);
                CreateOutcome::Conflict(conflicts)
            }
            other => other,
        },
        ..Adjusted::new(store)
    }
}

#[tokio::test]
async fn breaks_are_all_or_nothing_on_a_terse_store() {
    breaks_are_all_or_nothing(Arc::new(terse(MemoryLockStore::new()))).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn breaks_are_all_or_nothing_on_redis() {
    let Some(store) = redis_env::fresh_store().await else {
        return;
    };
    breaks_are_all_or_nothing(Arc::new(store)).await;
}

#[tokio::test]
async fn lists_come_a_page_at_a_time_on_the_memory_store() {
    lists_come_a_page_at_a_time(Arc::new(MemoryLockStore::new())).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn lists_come_a_page_at_a_time_on_redis() {
    let Some(store) = redis_env::fresh_store().await else {
        return;
    };
    lists_come_a_page_at_a_time(Arc::new(store)).await;
}

#[tokio::test]
async fn every_endpoint_on_the_memory_store() {
    every_endpoint(Arc::new(MemoryLockStore::new())).await;
}

#[tokio::test]
async fn owner_writes_quotas_and_expiry_on_the_memory_store() {
    owner_writes_and_quotas(Arc::new(MemoryLockStore::new())).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn every_endpoint_on_redis() {
    let Some(store) = redis_env::fresh_store().await else {
        return;
    };
    every_endpoint(Arc::new(store)).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn owner_writes_quotas_and_expiry_on_redis() {
    let Some(store) = redis_env::fresh_store().await else {
        return;
    };
    owner_writes_and_quotas(Arc::new(store)).await;
}

/// Under a mount prefix (the application nested under `/api`, `mount_prefix("/api")`), the
/// lock API places its paths as the layer does: alice's lock is rooted at `/api/docs/plan`,
/// the resource the layer guards for `PUT /api/docs/plan`, and answers name that root; a
/// list's `next` cursors name client-visible roots and lead through every lock once.
#[tokio::test]
async fn the_lock_api_locks_what_the_layer_guards_under_a_mount_prefix() {
    let store = Arc::new(MemoryLockStore::new());
    let locks = LockLayer::new(store.clone())
        .mount_prefix("/api")
        .unwrap()
        .principal_from(|parts| {
            let user = parts.headers.get("x-user")?.to_str().ok()?;
            Some(user.to_owned())
        });
    let api = Router::new()
        .route(
            "/docs/{id}",
            put(|| async { StatusCode::NO_CONTENT }).get(|| async { "doc" }),
        )
        .layer(locks.clone())
        .nest_service("/locks", locks.lock_api());
    let client = Loopback::new(serve(Router::new().nest("/api", api)).await);
    let as_user = |user: &str| [("x-user", user.to_owned())];

    let (status, _, body) = client
        .send("POST", "/api/locks/docs/plan", &as_user("alice"), "")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let view: LockView = serde_json::from_str(&body).unwrap();
    assert_eq!(view.root, "/api/docs/plan");
    let roots: Vec<String> = store
        .query(&tower_locks::LockQuery::new().subtree(ResourcePath::root()))
        .await
        .unwrap()
        .iter()
        .map(|l| l.root.href())
        .collect();
    assert_eq!(roots, ["/api/docs/plan"]);
    let (status, ..) = client
        .send("PUT", "/api/docs/plan", &as_user("bob"), "bob's")
        .await;
    assert_eq!(status, StatusCode::LOCKED, "bob overwrote alice's document");
    let (status, _, body) = client
        .send("POST", "/api/locks/docs/plan", &as_user("bob"), "")
        .await;
    assert_eq!(status, StatusCode::LOCKED);
    let conflict: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(conflict["lockRoots"], serde_json::json!(["/api/docs/plan"]));

    // 150 more of alice's locks: two pages, every lock once.
    for i in 0..150 {
        let lock = NewLock::new(ResourcePath::parse(&format!("/api/docs/m{i:03}")).unwrap())
            .principal("alice");
        assert!(matches!(
            store.create(lock).await.unwrap(),
            CreateOutcome::Created(_)
        ));
    }
    let mut link = "/api/locks/docs/?list".to_owned();
    let mut seen = Vec::new();
    loop {
        let (status, _, body) = client.send("GET", &link, &as_user("alice"), "").await;
        assert_eq!(status, StatusCode::OK, "{link}: {body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        let locks = page["locks"].as_array().unwrap();
        seen.extend(locks.iter().map(|l| l["root"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with("?list&after=/api/docs/"), "{next}");
                link = format!("/api/locks/docs/{next}");
            }
            None => break,
        }
    }
    let mut want: Vec<String> = (0..150).map(|i| format!("/api/docs/m{i:03}")).collect();
    want.push("/api/docs/plan".to_owned());
    assert_eq!(seen, want);
}
