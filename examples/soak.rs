//! A bounded soak/load driver for the WebDAV example (`scripts/soak.sh` runs both).
//!
//! ```text
//! cargo run --release --example soak -- --url http://127.0.0.1:4918 --secs 60 --clients 32 \
//!     [--paths 8] [--pid <server pid>] [--max-requests-per-client 200000] [--seed 1]
//! ```
//!
//! Many concurrent clients share a small set of files (`/soak-0` … `/soak-N`, on loopback
//! only) and mix: exclusive LOCK → PUT with the token → GET → refresh → GET → UNLOCK; PUT
//! without a token; PUT with a bogus token (`If` false → 412); GET; PROPFIND. As it goes it
//! checks:
//!
//! - **one exclusive holder**: a grant is recorded from the 200 of the LOCK until just before
//!   the UNLOCK is sent; a second grant of the same path inside that window is a violation;
//! - **no write without the token**: every PUT writes a unique marker; while a client holds
//!   the lock, GET must return its own marker. A foreign marker is a violation when its PUT
//!   was *sent* after the LOCK's 200 arrived (its lock check ran against the live lock). One
//!   sent before the LOCK was sent is an in-flight race — its check passed before the lock
//!   existed, its write landed after: the check-then-write window of any guard in front of
//!   storage, which fencing numbers exist for — and one sent while the LOCK was in flight is
//!   ambiguous; both are counted separately;
//! - **expected statuses**: LOCK 200/423, PUT with token 2xx, PUT without 2xx/423, PUT with a
//!   bogus token 412, GET 200, PROPFIND 207, UNLOCK 204, refresh 200; anything else counts;
//! - **memory flat**: with `--pid`, the server's `VmRSS` is sampled every second.
//!
//! Every loop is bounded by time and by a request count, and the driver exits by itself with
//! status 1 when any invariant was violated.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

const LOCKINFO: &str = r#"<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>soak</D:owner></D:lockinfo>"#;
const PROPFIND: &str = r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/><D:getetag/></D:prop></D:propfind>"#;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

#[derive(Debug, Clone)]
struct Args {
    url: String,
    secs: u64,
    clients: usize,
    paths: usize,
    pid: Option<u32>,
    max_requests_per_client: u64,
    seed: u64,
}

fn parse_args() -> Args {
    let mut args = Args {
        url: "http://127.0.0.1:4918".to_owned(),
        secs: 60,
        clients: 32,
        paths: 8,
        pid: None,
        max_requests_per_client: 200_000,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value().trim_end_matches('/').to_owned(),
            "--secs" => args.secs = value().parse().expect("--secs N"),
            "--clients" => args.clients = value().parse().expect("--clients N"),
            "--paths" => args.paths = value().parse().expect("--paths N"),
            "--pid" => args.pid = Some(value().parse().expect("--pid N")),
            "--max-requests-per-client" => {
                args.max_requests_per_client = value().parse().expect("a count");
            }
            "--seed" => args.seed = value().parse().expect("--seed N"),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        args.url.starts_with("http://127.") || args.url.starts_with("http://localhost"),
        "the soak driver only talks to loopback addresses"
    );
    args
}

/// What every client records.
#[derive(Default)]
struct Shared {
    /// path index → (client, grant instant) of the current exclusive holder.
    holders: Mutex<HashMap<usize, (usize, Instant)>>,
    /// marker → when its PUT was sent.
    markers: Mutex<HashMap<String, Instant>>,
    /// (request kind, status) → count.
    statuses: Mutex<BTreeMap<(&'static str, u16), u64>>,
    requests: AtomicU64,
    violations: Mutex<Vec<String>>,
    benign_races: AtomicU64,
    ambiguous_races: AtomicU64,
    transport_errors: AtomicU64,
}

impl Shared {
    fn violation(&self, what: String) {
        eprintln!("VIOLATION: {what}");
        let mut v = self.violations.lock().unwrap();
        if v.len() < 100 {
            v.push(what);
        }
    }

    fn record(&self, kind: &'static str, status: StatusCode, expected: &[u16]) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        *self
            .statuses
            .lock()
            .unwrap()
            .entry((kind, status.as_u16()))
            .or_default() += 1;
        if !expected.contains(&status.as_u16()) {
            self.violation(format!("{kind}: unexpected status {status}"));
        }
    }
}

/// xorshift64*: a tiny deterministic RNG per client.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Answer {
    status: StatusCode,
    lock_token: Option<String>,
    body: Bytes,
}

async fn send(
    client: &HttpClient,
    shared: &Shared,
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Option<Answer> {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("valid request");
    let res = match tokio::time::timeout(Duration::from_secs(30), client.request(req)).await {
        Ok(Ok(res)) => res,
        Ok(Err(e)) => {
            eprintln!("transport error: {e}");
            shared.transport_errors.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Err(_) => {
            shared.violation(format!("request to {url} took over 30 s"));
            return None;
        }
    };
    let status = res.status();
    let lock_token = res
        .headers()
        .get("lock-token")
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        });
    let body = res.into_body().collect().await.ok()?.to_bytes();
    Some(Answer {
        status,
        lock_token,
        body,
    })
}

async fn client_loop(id: usize, args: Arc<Args>, shared: Arc<Shared>, deadline: Instant) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut rng = Rng(args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (id as u64 + 1) << 17 | 1);
    let mut seq = 0u64;
    let mut sent = 0u64;
    while Instant::now() < deadline && sent < args.max_requests_per_client {
        let i = rng.below(args.paths);
        let url = format!("{}/soak-{i}", args.url);
        let roll = rng.below(100);
        seq += 1;
        let marker = format!("c{id}-{seq}");
        if roll < 40 {
            // The lock cycle.
            sent += 1;
            let lock_sent = Instant::now();
            let Some(a) = send(
                &client,
                &shared,
                Method::from_bytes(b"LOCK").unwrap(),
                &url,
                &[
                    ("timeout", "Second-600".into()),
                    ("content-type", "application/xml".into()),
                ],
                LOCKINFO,
            )
            .await
            else {
                continue;
            };
            shared.record("LOCK", a.status, &[200, 423]);
            if a.status != StatusCode::OK {
                continue;
            }
            let Some(token) = a.lock_token else {
                shared.violation(format!("LOCK {url}: 200 without Lock-Token"));
                continue;
            };
            let granted = Instant::now();
            if let Some((other, _)) = shared.holders.lock().unwrap().insert(i, (id, granted)) {
                shared.violation(format!(
                    "two exclusive holders of /soak-{i}: client {other} and client {id}"
                ));
            }
            let if_header = format!("(<{token}>)");
            shared
                .markers
                .lock()
                .unwrap()
                .insert(marker.clone(), Instant::now());
            sent += 4;
            if let Some(a) = send(
                &client,
                &shared,
                Method::PUT,
                &url,
                &[("if", if_header.clone())],
                &marker,
            )
            .await
            {
                shared.record("PUT with token", a.status, &[200, 201, 204]);
            }
            for round in 0..2 {
                if round == 1 {
                    // Hold a little longer, with a refresh, so others hammer the lock.
                    if let Some(a) = send(
                        &client,
                        &shared,
                        Method::from_bytes(b"LOCK").unwrap(),
                        &url,
                        &[("if", if_header.clone()), ("timeout", "Second-600".into())],
                        "",
                    )
                    .await
                    {
                        shared.record("LOCK refresh", a.status, &[200]);
                    }
                }
                if let Some(a) = send(&client, &shared, Method::GET, &url, &[], "").await {
                    shared.record("GET", a.status, &[200]);
                    let seen = String::from_utf8_lossy(&a.body).into_owned();
                    if seen != marker {
                        let sent_at = shared.markers.lock().unwrap().get(&seen).copied();
                        match sent_at {
                            Some(t) if t < lock_sent => {
                                shared.benign_races.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(t) if t < granted => {
                                shared.ambiguous_races.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => shared.violation(format!(
                                "/soak-{i} locked by client {id} holds {seen:?}, not {marker:?}"
                            )),
                        }
                    }
                }
            }
            // Release the grant record before the UNLOCK can take effect.
            shared.holders.lock().unwrap().remove(&i);
            if let Some(a) = send(
                &client,
                &shared,
                Method::from_bytes(b"UNLOCK").unwrap(),
                &url,
                &[("lock-token", format!("<{token}>"))],
                "",
            )
            .await
            {
                shared.record("UNLOCK", a.status, &[204]);
            }
        } else if roll < 70 {
            sent += 1;
            shared
                .markers
                .lock()
                .unwrap()
                .insert(marker.clone(), Instant::now());
            if let Some(a) = send(&client, &shared, Method::PUT, &url, &[], &marker).await {
                shared.record("PUT without token", a.status, &[200, 201, 204, 423]);
            }
        } else if roll < 80 {
            sent += 1;
            let bogus = format!(
                "(<urn:uuid:00000000-0000-4000-8000-{:012x}>)",
                rng.next() >> 16
            );
            if let Some(a) = send(
                &client,
                &shared,
                Method::PUT,
                &url,
                &[("if", bogus)],
                "never",
            )
            .await
            {
                shared.record("PUT bogus token", a.status, &[412]);
            }
        } else if roll < 92 {
            sent += 1;
            if let Some(a) = send(&client, &shared, Method::GET, &url, &[], "").await {
                shared.record("GET", a.status, &[200]);
            }
        } else {
            sent += 1;
            if let Some(a) = send(
                &client,
                &shared,
                Method::from_bytes(b"PROPFIND").unwrap(),
                &url,
                &[
                    ("depth", "0".into()),
                    ("content-type", "application/xml".into()),
                ],
                PROPFIND,
            )
            .await
            {
                shared.record("PROPFIND", a.status, &[207]);
            }
        }
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() {
    let args = Arc::new(parse_args());
    let shared = Arc::new(Shared::default());

    // The files exist before the run, so LOCK answers 200 (not 201) and GET 200.
    let setup: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    for i in 0..args.paths {
        let url = format!("{}/soak-{i}", args.url);
        let a = send(&setup, &shared, Method::PUT, &url, &[], "init")
            .await
            .expect("the server answers");
        assert!(a.status.is_success(), "setup PUT {url}: {}", a.status);
    }
    shared
        .markers
        .lock()
        .unwrap()
        .insert("init".to_owned(), Instant::now());
    shared.statuses.lock().unwrap().clear();
    shared.requests.store(0, Ordering::Relaxed);

    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.secs);
    let sampler = args.pid.map(|pid| {
        tokio::spawn(async move {
            let mut samples = Vec::new();
            // Bounded: one sample a second until the deadline (plus a little).
            while Instant::now() < deadline + Duration::from_secs(2) {
                if let Some(kib) = rss_kib(pid) {
                    samples.push(kib);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            samples
        })
    });
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..args.clients {
        tasks.spawn(client_loop(id, args.clone(), shared.clone(), deadline));
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("client task");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let samples = match sampler {
        Some(s) => s.await.expect("sampler"),
        None => Vec::new(),
    };

    let requests = shared.requests.load(Ordering::Relaxed);
    println!(
        "== soak: {} clients, {} paths, {elapsed:.1} s",
        args.clients, args.paths
    );
    println!(
        "requests: {requests} ({:.0} req/s)",
        requests as f64 / elapsed
    );
    let mut by_status: BTreeMap<u16, u64> = BTreeMap::new();
    for ((kind, status), n) in shared.statuses.lock().unwrap().iter() {
        println!("  {kind:<18} {status}  {n}");
        *by_status.entry(*status).or_default() += n;
    }
    println!("status histogram: {by_status:?}");
    println!(
        "transport errors: {}",
        shared.transport_errors.load(Ordering::Relaxed)
    );
    println!(
        "in-flight races (a PUT sent before the LOCK, landing after the grant): {}",
        shared.benign_races.load(Ordering::Relaxed)
    );
    println!(
        "ambiguous races (a PUT sent while the LOCK was in flight): {}",
        shared.ambiguous_races.load(Ordering::Relaxed)
    );
    if let (Some(first), Some(last), Some(max)) =
        (samples.first(), samples.last(), samples.iter().max())
    {
        println!(
            "server RSS: start {first} KiB, end {last} KiB, max {max} KiB ({} samples)",
            samples.len()
        );
        let every_10s: Vec<u64> = samples.iter().step_by(10).copied().collect();
        println!("server RSS every 10 s (KiB): {every_10s:?}");
    }
    let violations = shared.violations.lock().unwrap();
    println!("invariant violations: {}", violations.len());
    for v in violations.iter().take(20) {
        println!("  {v}");
    }
    if !violations.is_empty() || shared.transport_errors.load(Ordering::Relaxed) > 0 {
        std::process::exit(1);
    }
}
