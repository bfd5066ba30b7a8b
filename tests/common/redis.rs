//! Shared helpers for the tests that need a real Redis (feature `redis`).
//!
//! Include with `#[path = "common/redis.rs"] mod redis_env;`.
//!
//! - `REDIS_URL` names the server (e.g. `redis://127.0.0.1:6390/`). When it is unset the test
//!   fails if `CI=true`, and otherwise prints a notice and returns early (local runs only).
//! - Every store gets a unique random key prefix, so tests run in parallel on one server.
#![allow(dead_code, unreachable_pub)]

use std::ffi::OsStr;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tower_locks::RedisLockStore;

/// Whether we run in CI, where a missing Redis is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// `REDIS_URL`, or `None` (with a notice) when it is unset outside CI.
///
/// # Panics
/// When `REDIS_URL` is unset and `CI=true`.
pub fn redis_url() -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !in_ci(),
                "REDIS_URL is not set, but CI=true: the Redis store tests must run in CI. \
                 Start a server (redis-server --port 6390 --save '' --appendonly no) and set \
                 REDIS_URL=redis://127.0.0.1:6390/"
            );
            eprintln!("notice: REDIS_URL is not set; skipping this Redis test (set it to run)");
            None
        }
    }
}

/// A fresh random key prefix, e.g. `tl-test-3f2a…`.
pub fn unique_prefix() -> String {
    format!("tl-test-{}", uuid::Uuid::new_v4().simple())
}

/// A store on `REDIS_URL` in a namespace of its own; `None` when the test is skipped.
pub async fn fresh_store() -> Option<RedisLockStore> {
    let url = redis_url()?;
    Some(store_with_prefix(&url, &unique_prefix()).await)
}

/// A store (with its own connection) on `url` and `prefix`.
pub async fn store_with_prefix(url: &str, prefix: &str) -> RedisLockStore {
    RedisLockStore::builder(url)
        .prefix(prefix)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to Redis at {url}: {e}"))
}

/// A plain connection, to look at the keys behind a store.
pub async fn raw_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("valid REDIS_URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis")
}

/// The `redis-server` binary on `PATH`; `None` (with a notice) when missing outside CI.
///
/// # Panics
/// When the binary is missing and `CI=true`.
pub fn redis_server_binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("redis-server"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !in_ci(),
            "redis-server is not installed, but CI=true: install it (apt-get install -y \
             redis-server) so the Redis fault tests can run"
        );
        eprintln!("notice: redis-server not found on PATH; skipping this Redis fault test");
    }
    found
}

/// A private `redis-server` child process (for the fault tests), killed when dropped.
///
/// It persists with an append-only file (`appendfsync always`) in `dir`, so a server started
/// again on the same directory has every lock the previous one acknowledged.
pub struct Server {
    pub child: Child,
}

impl Server {
    /// Start `binary` on `127.0.0.1:port` with its data in `dir`, and wait until it accepts
    /// connections.
    pub fn start(binary: &Path, port: u16, dir: &Path) -> Self {
        Self::start_with_env(binary, port, dir, &[])
    }

    /// [`start`](Self::start), with these environment variables set for the server.
    pub fn start_with_env(binary: &Path, port: u16, dir: &Path, env: &[(&str, &OsStr)]) -> Self {
        let child = Command::new(binary)
            .envs(env.iter().copied())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(dir)
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let server = Self { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Stop the server now (SIGKILL) and reap it.
    pub fn kill(mut self) {
        self.child.kill().expect("kill redis-server");
        self.child.wait().expect("reap redis-server");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redis-server` of one test's own, on a free loopback port with its own data directory:
/// its counters see that test's calls only, and the test may stop and start it.
pub struct OwnServer {
    /// `None` while stopped. Declared before `dir`, so the server stops before its directory
    /// is removed.
    server: Option<Server>,
    dir: TempDir,
    binary: PathBuf,
    port: u16,
    /// `redis://127.0.0.1:{port}/`.
    pub url: String,
}

impl OwnServer {
    /// Start one, its data under a directory named after `tag`. `None` when redis-server is
    /// not installed (outside CI only: in CI that fails the test).
    pub fn start(tag: &str) -> Option<Self> {
        Self::start_with_env(tag, &[])
    }

    /// [`start`](Self::start), with these environment variables set for the server ([`restart`]
    /// starts it without them).
    ///
    /// [`restart`]: Self::restart
    pub fn start_with_env(tag: &str, env: &[(&str, &OsStr)]) -> Option<Self> {
        let binary = redis_server_binary()?;
        let dir = TempDir::new(tag);
        let port = free_port();
        let server = Server::start_with_env(&binary, port, &dir.0, env);
        Some(Self {
            server: Some(server),
            dir,
            binary,
            port,
            url: format!("redis://127.0.0.1:{port}/"),
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.server
            .as_ref()
            .expect("the server is running")
            .child
            .id()
    }

    /// Stop it now (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(server) = self.server.take() {
            server.kill();
        }
    }

    /// Start it again on the same port and directory: it has every lock the previous one
    /// acknowledged.
    pub fn restart(&mut self) {
        self.kill();
        self.server = Some(Server::start(&self.binary, self.port, &self.dir.0));
    }
}

/// A temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory under the system temporary directory, named after `tag`.
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tower-locks-{tag}-{}", unique_prefix()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
