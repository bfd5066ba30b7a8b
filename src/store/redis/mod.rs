//! `RedisLockStore`: one lock namespace shared by every instance of an application.
//!
//! The design (key layout, scripts, expiry, Cluster) is documented on [`RedisLockStore`],
//! the public face of this private module.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, ErrorKind, FromRedisValue, RedisError, Script, ServerErrorKind};

use super::{
    Below, Clock, CreateOutcome, Lock, LockDepth, LockQuery, LockScope, LockStore, LockStoreError,
    LockTimeout, NewLock, Quota, TokenAccess, TokenOutcome,
};
use crate::ResourcePath;

macro_rules! script {
    ($file:literal) => {
        LazyLock::new(|| Script::new(concat!(include_str!("prelude.lua"), include_str!($file))))
    };
}

static CREATE: LazyLock<Script> = script!("create.lua");
static REFRESH: LazyLock<Script> = script!("refresh.lua");
static UNLOCK: LazyLock<Script> = script!("unlock.lua");
static REMOVE_SUBTREE: LazyLock<Script> = script!("remove_subtree.lua");
static QUERY: LazyLock<Script> = script!("query.lua");
static GET: LazyLock<Script> = script!("get.lua");
static ABORT: LazyLock<Script> = script!("abort.lua");

const DEFAULT_PREFIX: &str = "tower-locks";
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_SWEEP_BATCH: u32 = 64;
const MAX_PREFIX_LEN: usize = 256;
/// How often a create whose outcome was lost is compensated (`abort.lua`) before giving up:
/// the first attempt at once, the next after 50 ms, then twice as long each time up to 5 s
/// (16 s of pauses, each attempt bounded by the operation timeout).
const ABORT_ATTEMPTS: u32 = 10;
/// The kinds of root keys (`prelude.lua`): scope and depth of the locks they hold.
const KINDS: [&str; 4] = ["x0", "xinf", "s0", "sinf"];
/// The kinds an ancestor's locks must have to cover a path below it (depth infinity).
const DEEP_KINDS: [&str; 2] = ["xinf", "sinf"];

/// A [`LockStore`] in Redis: every instance of an application that uses the same Redis and
/// prefix sees the same locks, and every call is one atomic server-side step.
///
/// Cloning is cheap and shares the connection.
///
/// # Key layout
///
/// Every key of a namespace starts with the hash tag `{prefix}` (default prefix
/// `tower-locks`). Each lock has **one record, in a key of its own**, and four index entries
/// (five with a principal); no key holds the records of several locks:
///
/// | key | type | content |
/// | --- | --- | --- |
/// | `{prefix}:lock:<token>` | STRING | the lock's record (see below); `PEXPIREAT` at its expiry |
/// | `{prefix}:<kind>:<path>` | ZSET, score = expiry | the token of every lock rooted at `<path>` of that kind: `x0`, `xinf` (exclusive, depth 0 / infinity), `s0`, `sinf` (shared) |
/// | `{prefix}:owner:<principal>` | ZSET, score = expiry | the token of every lock of that principal |
/// | `{prefix}:anon` | ZSET, score = expiry | the token of every lock without a principal |
/// | `{prefix}:locks` | ZSET, score = expiry | the `ref` of every lock of the namespace |
/// | `{prefix}:xtree`, `{prefix}:stree` | ZSET, score 0 | one member `"<path> <kind> <token>"` per exclusive (`xtree`) or shared (`stree`) lock: the lexicographic index of the locks by root |
/// | `{prefix}:htree:<principal>` | ZSET, score 0 | the same member for every lock of that principal: its locks by root, for a listing of its own locks |
/// | `{prefix}:fence` | STRING | the fencing counter (`INCR`) |
///
/// Scores are the expiry in ms since the epoch, `+inf` for an infinite lock. A `ref` is
/// `"<len>:<token> <kind> <path> "` then `+<principal>` or `-`: from it the sweep finds every
/// entry of an expired lock, also once its record has gone by its TTL.
///
/// A record is one string: `"2 <exp> <depth> <path> <scope> <timeout> <fence> "` (format `2`;
/// `<exp>` in ms since the epoch, `-` when the lock is infinite; `<depth>` `0` / `infinity`;
/// `<path>` the canonical root; `<scope>` `exclusive` / `shared`; `<timeout>` seconds or
/// `infinite`; none of these holds a space), then the `token`, the `href` (the root as the
/// client wrote it, with its trailing slash), the `principal` and the `owner`, each
/// `<len>:<bytes>` (length in bytes) or `-` when absent. Scripts hand records to the client
/// as stored; the client splits them and validates every field (the root is re-parsed with
/// [`ResourcePath::parse`] and must give back the stored path, which must be the root of the
/// key the record was found through); anything else is [`LockStoreError::Corrupt`]. A record
/// the scripts cannot parse is never changed, never expires and keeps blocking until the
/// client reports it (fail closed). Nothing executable is ever deserialised; tokens,
/// principals and paths are only ever the tail of a key name after a fixed kind, and a kind
/// read back from an index member must be one of the four, so no value can name another kind
/// of key.
///
/// Canonical paths never contain a space or any byte below `!`, so the locks rooted strictly
/// below `/a` are the range `["/a/", "/a0")` of a tree (`'0'` is `'/' + 1`): subtree
/// questions are one `ZRANGEBYLEX` per tree and one `MGET` of the records, never `KEYS` or
/// `SCAN`, and `/ab` or `/a-b` never fall into `/a`'s range.
///
/// # Atomicity
///
/// Each mutating call is **one Lua script** (`EVALSHA`, loaded automatically on `NOSCRIPT`),
/// which Redis runs atomically: `create` checks the ancestors, the root and (depth infinity)
/// the subtree, the quotas, draws the fencing number and writes the record and its index
/// entries in one step, so two application instances racing for a lock can never both win.
/// `refresh` and `unlock` judge the lock and change it in the same step.
///
/// `query` answers from one atomic step and judges the records on the client. A query without
/// descendants (the covering check of every write) is **one round trip, whether anything is
/// locked or not**: one `MULTI`/`EXEC` over the root keys that could hold a matching lock
/// (every kind at each target, `xinf` and `sinf` at its ancestors), with per key one
/// `SORT_RO <key> BY nosort GET {prefix}:lock:*` (the records of its locks, in one command;
/// nothing for a key that does not exist), and `TIME`. A lock holder's writes, the ones a
/// locking layer exists for, so cost the same round trip as anybody's. Where Redis refuses `SORT_RO` with a `GET` pattern (an ACL user
/// without read access to every key, or Redis before 7.0) the store notices once and uses the
/// query script instead. A query asking for descendants is one script, which reads the live
/// entries of those keys and the locks below each target (`ZRANGEBYLEX` per tree), and their
/// records with `MGET`; with [`Below::UntilBlocked`] or [`Below::Page`] it reads the trees 64
/// entries at a time and stops where those allow. Expiry is judged by the server's `TIME`,
/// so every instance agrees on it; `get` is one script as well. [`LockStore::now`] is the
/// server's time as the last reply that carried it showed it against this host's clock, so
/// the time a lock has left is reported as the server counts it.
///
/// # Costs
///
/// Counting is by expiry: every count is a `ZCOUNT` of the entries whose score is still ahead,
/// so an expired lock never counts, swept or not. With *N* the number of locks in the
/// namespace and *d* the depth of a path, and whatever else shares the path or the principal:
///
/// - `create` is O(d log N) plus O(log N) per conflicting lock it reports: a shared request
///   reads only the exclusive kinds (at most one live lock each), so a thousand shared locks
///   on a document cost a thousand-and-first shared lock nothing more; an exclusive request
///   reads the locks it conflicts with, to report them. A depth-infinity request also reads
///   the locks below its root that could conflict (one `ZRANGEBYLEX` of `xtree`, and of
///   `stree` for an exclusive request), O(1) each. The quotas are one `ZCOUNT` each;
/// - `refresh`, `unlock` and `get` are O(log N): one record and its index entries;
/// - a covering `query` is O(d) when nothing is locked, else O(d) plus O(1) per lock it
///   returns (locks at the target, depth-infinity locks above it, and expired ones not yet
///   swept there); descendants add O(log N) plus O(1) per lock below: every lock below with
///   [`Below::All`]; with [`Below::UntilBlocked`], those of the resources the asked tokens or
///   the holder open and of 16 others; with [`Below::Page`], those of the page's resources
///   (with a holder, read from the holder's own tree: others' locks between them cost
///   nothing);
/// - `remove_subtree` is O(log N) per lock removed;
/// - the sweep at the start of every mutation is O(log N) per expired lock, at most
///   [`sweep_batch`](RedisLockStoreBuilder::sweep_batch) of them.
///
/// Memory, measured on Redis 7.0 with `urn:uuid` tokens, 20-byte paths and principals and no
/// owner (`INFO memory`, 1,000 locks): about 1 KB per lock, whether each is on a path of its
/// own or all share one: the record, about 260 bytes plus the owner XML; about 135, 180 and
/// 165 bytes in the holder's key, `locks` and the tree; the root key (about 140 bytes while
/// it holds one lock, about 100 per lock beyond 128); the rest is Redis's own per-key
/// overhead. A lock with a principal adds about 100 bytes to its principal's tree, and each
/// principal's tree costs about 1 KB of its own (its members are over 64 bytes, so Redis
/// keeps it as a skiplist).
///
/// # Expiry and cleanup
///
/// A finite lock's record carries a Redis TTL (`PEXPIREAT`), and its index entries are scored
/// by the same expiry, which every read and count compares with the server time: an expired
/// lock never blocks, is never reported and never counts, even while its entries are still
/// stored. Index entries cannot carry their own TTL, so:
///
/// - every mutating script first **sweeps** the oldest entries of `locks` whose score is past,
///   at most [`sweep_batch`](RedisLockStoreBuilder::sweep_batch) (default 64), removing each
///   lock's root, tree and holder entries (and its record, if still there). Each create adds one
///   lock and sweeps up to 64, so expired entries cannot pile up under churn;
/// - mutating scripts remove an expired record they meet; a create that meets the root entry
///   of a lock whose record has gone behind the store's back (eviction, manual `DEL`) takes it
///   out (with its tree entry), `remove_subtree` takes out every entry of its subtree; a
///   subtree query (a removal's check, a page of a listing) takes out the root and tree
///   entries of the locks whose record has expired, so a walk below a collection reads each
///   expired lock once, not on every request until a sweep reaches it (where Redis refuses
///   writes, it leaves them and still answers); a page of one principal's locks also takes
///   out the entries of its tree whose token now names a lock elsewhere or another
///   principal's (a custom token used again); a covering check only reads;
/// - unlocking and `remove_subtree` delete the record and all its entries.
///
/// # Failed creates leave no lock
///
/// A `create` that returns an error must not leave a lock that nobody holds the token of,
/// also when Redis ran it after the store gave up (Redis held it, e.g. under
/// `CLIENT PAUSE … WRITE`, or its reply was lost). So `create` first reads the server's `TIME`
/// (a read, served even while writes are paused) and hands the script a deadline in server
/// time: half of what is left of the operation timeout. A script that starts later refuses
/// to create anything. A create whose outcome the store did not learn (timeout, lost
/// connection, undecodable reply) is also **taken back by token**: an `abort` script is sent
/// at once on the same connection (so Redis runs it after the create if both are still
/// queued) and retried in the background for at least 16 s while Redis cannot be reached.
/// Either mechanism alone passes `a_create_that_fails_leaves_no_lock`
/// (`tests/redis_faults.rs`); together they leave a window only if the create's reply is lost
/// and Redis stays unreachable through every retry.
///
/// # Redis Cluster
///
/// All keys of a namespace share the hash tag `{prefix}`, so they live in **one hash slot, on
/// one shard**: a namespace does not spread over the cluster (use several prefixes to spread
/// several applications). Scripts declare the `xtree`, `stree`, `locks` and `fence` keys (so
/// the call is routed to the right node) and derive the per-root, per-lock and per-principal keys
/// inside the same slot; a covering query's `SORT_RO` commands name keys (and a `GET`
/// pattern) of that one slot only. Connect to the node that owns the slot (or a proxy); this
/// store uses a single-node connection.
///
/// # Operations
///
/// - Run Redis with `maxmemory-policy noeviction`: an evicted lock record is a lost lock, and
///   its holder and `locks` entries keep counting against its principal's and the store's
///   quota until its expiry (an infinite lock's: until they are removed by hand).
/// - Without persistence (`--save ''`, no AOF) a restarted Redis has forgotten every lock and
///   restarts the fencing counter; use AOF (`appendfsync always` for no loss at all) if locks
///   must survive a restart.
/// - Connection and response timeouts default to 1 s and every call is bounded by an operation
///   timeout (default 2 s): a dead Redis answers [`LockStoreError::Unavailable`] quickly, and
///   the [`ConnectionManager`] reconnects by itself once Redis is back.
/// - Set a [`resource_quota`](NewLock::resource_quota): an exclusive request on a path reads
///   and reports every lock there, so the shared locks one path can collect bound what one
///   refused LOCK costs.
/// - A Redis user limited to the namespace's keys (`~{prefix}:*`) works, but `SORT_RO … GET`
///   is denied to it, so covering checks run the query script (a few microseconds more);
///   give the user read access to all keys (`%R~*`) to avoid that.
/// - Any locale will do: Redis sets its collation from its environment, and Lua's string
///   comparisons follow it, so the scripts compare paths byte by byte, as Redis sorts them
///   (`tests/redis_locale.rs` runs the store on a server under `en_US.UTF-8`).
///
/// # Example
///
/// ```no_run
/// use tower_locks::{CreateOutcome, LockStore, NewLock, RedisLockStore, ResourcePath};
///
/// # async fn demo() -> Result<(), tower_locks::LockStoreError> {
/// let store = RedisLockStore::connect("redis://127.0.0.1:6379/").await?;
/// let root = ResourcePath::parse("/docs/report.txt").unwrap();
/// match store.create(NewLock::new(root)).await? {
///     CreateOutcome::Created(lock) => println!("granted {}", lock.token),
///     CreateOutcome::Conflict(locks) => println!("{} conflicting locks", locks.len()),
///     _ => {}
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisLockStore {
    conn: ConnectionManager,
    keys: Arc<Keys>,
    operation_timeout: Duration,
    sweep_batch: u32,
    clock: Option<Arc<dyn Clock>>,
    /// Set once Redis refused the `SORT_RO` of a covering check (an ACL without read access
    /// to every key, or a Redis before 7.0): checks run the query script from then on.
    sort_refused: Arc<AtomicBool>,
    /// The server's clock minus this host's (ms), as the last reply carrying the server's
    /// time showed: [`LockStore::now`] is the server's time without a round trip.
    server_offset_ms: Arc<AtomicI64>,
}

#[derive(Debug)]
struct Keys {
    prefix: String,
    /// `{prefix}:`
    base: String,
    /// `{prefix}:lock:*`, the `GET` pattern of a covering check's `SORT_RO`
    lock_pattern: String,
    xtree: String,
    stree: String,
    locks: String,
    fence: String,
}

impl Keys {
    fn new(prefix: &str) -> Result<Self, LockStoreError> {
        if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN {
            return Err(LockStoreError::backend(format!(
                "redis key prefix must be 1 to {MAX_PREFIX_LEN} bytes long"
            )));
        }
        if prefix.contains(['{', '}']) {
            return Err(LockStoreError::backend(
                "redis key prefix must not contain '{' or '}' (it becomes the hash tag)",
            ));
        }
        if prefix.contains('\0') {
            return Err(LockStoreError::backend(
                "redis key prefix must not contain a NUL byte",
            ));
        }
        let base = format!("{{{prefix}}}:");
        Ok(Self {
            prefix: prefix.to_owned(),
            xtree: format!("{base}xtree"),
            stree: format!("{base}stree"),
            locks: format!("{base}locks"),
            lock_pattern: format!("{base}lock:*"),
            fence: format!("{base}fence"),
            base,
        })
    }
}

impl fmt::Debug for RedisLockStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection's Debug would print the connection info (and maybe a password).
        f.debug_struct("RedisLockStore")
            .field("prefix", &self.keys.prefix)
            .field("operation_timeout", &self.operation_timeout)
            .field("sweep_batch", &self.sweep_batch)
            .finish_non_exhaustive()
    }
}

/// Configures and connects a [`RedisLockStore`]; made by [`RedisLockStore::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use tower_locks::RedisLockStore;
///
/// # async fn demo() -> Result<(), tower_locks::LockStoreError> {
/// let store = RedisLockStore::builder("redis://127.0.0.1:6379/")
///     .prefix("myapp")
///     .operation_timeout(Duration::from_millis(1500))
///     .connect()
///     .await?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisLockStoreBuilder {
    url: String,
    prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    operation_timeout: Duration,
    sweep_batch: u32,
}

impl RedisLockStoreBuilder {
    /// The key prefix (namespace); default `tower-locks`. It becomes the hash tag `{prefix}`
    /// of every key, so it must not contain `{` or `}`, and must be 1 to 256 bytes long
    /// (checked by [`connect`](Self::connect)).
    ///
    /// ```
    /// let builder = tower_locks::RedisLockStore::builder("redis://127.0.0.1/").prefix("app-a");
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one attempt to (re)connect may take; default 1 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = tower_locks::RedisLockStore::builder("redis://127.0.0.1/")
    ///     .connect_timeout(Duration::from_millis(500));
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long Redis may take to answer one command; default 1 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = tower_locks::RedisLockStore::builder("redis://127.0.0.1/")
    ///     .response_timeout(Duration::from_millis(500));
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The upper bound of a whole store call, reconnecting included; default 2 s. A call
    /// that takes longer fails with [`LockStoreError::Unavailable`] (a refresh, unlock or
    /// `remove_subtree` may or may not have happened then; a create leaves no lock, see
    /// "Failed creates leave no lock" on [`RedisLockStore`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = tower_locks::RedisLockStore::builder("redis://127.0.0.1/")
    ///     .operation_timeout(Duration::from_secs(1));
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// How many expired locks each mutating call cleans up at most; default 64 (at least 1).
    ///
    /// ```
    /// let builder = tower_locks::RedisLockStore::builder("redis://127.0.0.1/").sweep_batch(128);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn sweep_batch(mut self, batch: u32) -> Self {
        self.sweep_batch = batch.max(1);
        self
    }

    /// Connect (the first connection is made now, reconnections happen by themselves).
    ///
    /// # Errors
    /// [`LockStoreError::Unavailable`] when Redis cannot be reached,
    /// [`LockStoreError::Backend`] for a bad URL or prefix.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tower_locks::LockStoreError> {
    /// let store = tower_locks::RedisLockStore::builder("redis://127.0.0.1/").connect().await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(self) -> Result<RedisLockStore, LockStoreError> {
        let keys = Keys::new(&self.prefix)?;
        let client = Client::open(self.url.as_str()).map_err(map_err)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connecting = ConnectionManager::new_with_config(client, config);
        let conn = match tokio::time::timeout(self.operation_timeout, connecting).await {
            Ok(conn) => conn.map_err(map_err)?,
            Err(_) => return Err(timed_out()),
        };
        Ok(RedisLockStore {
            conn,
            keys: Arc::new(keys),
            operation_timeout: self.operation_timeout,
            sweep_batch: self.sweep_batch,
            clock: None,
            sort_refused: Arc::default(),
            server_offset_ms: Arc::default(),
        })
    }
}

impl RedisLockStore {
    /// Connect to `url` (`redis://[user:password@]host[:port][/db]`, or `rediss://` when the
    /// `redis` crate's TLS features are on) with the default prefix `tower-locks`.
    ///
    /// # Errors
    /// As [`RedisLockStoreBuilder::connect`].
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tower_locks::LockStoreError> {
    /// let store = tower_locks::RedisLockStore::connect("redis://127.0.0.1:6379/").await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, LockStoreError> {
        Self::builder(url).connect().await
    }

    /// Start configuring a store for `url`.
    ///
    /// ```
    /// let builder = tower_locks::RedisLockStore::builder("redis://127.0.0.1:6379/");
    /// # let _ = builder;
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisLockStoreBuilder {
        RedisLockStoreBuilder {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            sweep_batch: DEFAULT_SWEEP_BATCH,
        }
    }

    /// Use a connection manager you configured yourself, with key prefix `prefix`. Give it
    /// connection and response timeouts: calls are bounded by the operation timeout (2 s,
    /// see [`with_operation_timeout`](Self::with_operation_timeout)) in any case.
    ///
    /// # Errors
    /// [`LockStoreError::Backend`] for a bad prefix (see [`RedisLockStoreBuilder::prefix`]).
    ///
    /// ```no_run
    /// use redis::aio::{ConnectionManager, ConnectionManagerConfig};
    /// use tower_locks::RedisLockStore;
    ///
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::Client::open("redis://127.0.0.1/")?;
    /// let manager = ConnectionManager::new_with_config(client, ConnectionManagerConfig::new()).await?;
    /// let store = RedisLockStore::from_manager(manager, "myapp")?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_manager(conn: ConnectionManager, prefix: &str) -> Result<Self, LockStoreError> {
        Ok(Self {
            conn,
            keys: Arc::new(Keys::new(prefix)?),
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            sweep_batch: DEFAULT_SWEEP_BATCH,
            clock: None,
            sort_refused: Arc::default(),
            server_offset_ms: Arc::default(),
        })
    }

    /// The same store with another bound on every call (default 2 s).
    ///
    /// ```no_run
    /// # async fn demo(store: tower_locks::RedisLockStore) {
    /// let store = store.with_operation_timeout(std::time::Duration::from_secs(1));
    /// # let _ = store;
    /// # }
    /// ```
    #[must_use]
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// The same store judging expiry by `clock` instead of the Redis server's `TIME`: **for
    /// deterministic tests only** (move a [`ManualClock`](crate::ManualClock) and locks expire
    /// exactly then). Every instance sharing a namespace must then use the same clock; in
    /// production keep the server's clock, which all instances agree on. Record TTLs
    /// (`PEXPIREAT`) follow this clock too, so it must not run behind real time.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use tower_locks::ManualClock;
    ///
    /// # async fn demo(store: tower_locks::RedisLockStore) {
    /// let clock = Arc::new(ManualClock::new());
    /// let store = store.with_clock(clock.clone());
    /// clock.advance(std::time::Duration::from_secs(601)); // default-timeout locks are gone
    /// # let _ = store;
    /// # }
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The key prefix (namespace) of this store.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tower_locks::LockStoreError> {
    /// let store = tower_locks::RedisLockStore::builder("redis://127.0.0.1/")
    ///     .prefix("myapp")
    ///     .connect()
    ///     .await?;
    /// assert_eq!(store.prefix(), "myapp");
    /// # Ok(())
    /// # }
    /// ```
    pub fn prefix(&self) -> &str {
        &self.keys.prefix
    }

    /// A `TIME` reply (seconds, microseconds) in milliseconds, its offset from this host's
    /// clock learnt.
    fn time_reply(&self, (secs, micros): (u64, u64)) -> u128 {
        let ms = u128::from(secs) * 1000 + u128::from(micros / 1000);
        self.saw_server_time(ms);
        ms
    }

    /// Learn the server's offset from this host's clock from `server_ms`, its time in a reply.
    fn saw_server_time(&self, server_ms: u128) {
        let host_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let offset = i128::try_from(server_ms).unwrap_or(i128::MAX)
            - i128::try_from(host_ms).unwrap_or(i128::MAX);
        let offset = i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX });
        self.server_offset_ms.store(offset, Ordering::Relaxed);
    }

    fn invocation(&self, script: &'static Script) -> ::redis::ScriptInvocation<'static> {
        let mut inv = script.prepare_invoke();
        inv.key(&self.keys.xtree)
            .key(&self.keys.stree)
            .key(&self.keys.locks)
            .key(&self.keys.fence);
        match &self.clock {
            None => {
                inv.arg(&self.keys.base);
            }
            Some(clock) => {
                let ms = clock
                    .now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                let mut base = self.keys.base.as_bytes().to_vec();
                base.push(0);
                base.extend_from_slice(ms.to_string().as_bytes());
                inv.arg(base);
            }
        }
        inv
    }

    /// The root keys that could hold a lock covering one of the targets of `query` (all
    /// kinds at each target, the depth-infinity kinds at its ancestors), each once, as
    /// `(root, own, key)`: `own` when it is a target's (all its locks match), else it is an
    /// ancestor's (only depth-infinity ones, and it holds no other).
    fn covering_keys<'q>(&self, query: &'q LockQuery) -> Vec<(&'q str, bool, String)> {
        let mut keys: Vec<(&str, bool, String)> = Vec::new();
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        for t in &query.targets {
            let roots = t.path.ancestors().map(|a| (a, false, &DEEP_KINDS[..]));
            for (root, own, kinds) in roots.chain([(t.path.as_str(), true, &KINDS[..])]) {
                for kind in kinds {
                    if seen.insert((root, kind)) {
                        keys.push((root, own, format!("{}{kind}:{root}", self.keys.base)));
                    }
                }
            }
        }
        keys
    }

    /// The locks in the root keys `keys` (see [`covering_keys`](Self::covering_keys)), in
    /// one round trip and without a script: one `MULTI`/`EXEC` (atomic) of a
    /// `SORT_RO <root key> BY nosort GET {prefix}:lock:*` per key, which reads the records of
    /// a root key's locks in one command, and `TIME` (unless a clock is injected); the client
    /// judges the records. `None` when Redis refuses `SORT_RO` with a pattern.
    async fn read_covering(
        &self,
        keys: &[(&str, bool, String)],
        tokens: &[String],
    ) -> Result<Option<Vec<Lock>>, LockStoreError> {
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        for (_, _, key) in keys {
            pipe.cmd("SORT_RO")
                .arg(key)
                .arg("BY")
                .arg("nosort")
                .arg("GET")
                .arg(&self.keys.lock_pattern);
        }
        for token in tokens {
            pipe.cmd("GET")
                .arg(format!("{}lock:{token}", self.keys.base));
        }
        let clock = self.clock.as_ref().map(|clock| {
            clock
                .now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        });
        if clock.is_none() {
            pipe.cmd("TIME");
        }
        let reply: Result<Vec<::redis::Value>, RedisError> = self
            .bounded_raw(pipe.query_async(&mut self.conn.clone()))
            .await?;
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => match map_err(e) {
                LockStoreError::Backend(_) => {
                    self.sort_refused.store(true, Ordering::Relaxed);
                    return Ok(None);
                }
                e => return Err(e),
            },
        };
        let unexpected = || LockStoreError::backend("unexpected reply from redis");
        let convert = |e: ::redis::ParsingError| LockStoreError::backend(e.to_string());
        let mut reply = reply.into_iter();
        let mut records: Vec<Vec<Option<Vec<u8>>>> = Vec::with_capacity(keys.len());
        for _ in keys {
            let value = reply.next().ok_or_else(unexpected)?;
            records.push(::redis::from_redis_value(value).map_err(convert)?);
        }
        let mut by_token: Vec<Option<Vec<u8>>> = Vec::with_capacity(tokens.len());
        for _ in tokens {
            let value = reply.next().ok_or_else(unexpected)?;
            by_token.push(::redis::from_redis_value(value).map_err(convert)?);
        }
        let now_ms = match clock {
            Some(ms) => ms,
            None => {
                let value = reply.next().ok_or_else(unexpected)?;
                let time: (u64, u64) = ::redis::from_redis_value(value).map_err(convert)?;
                self.time_reply(time)
            }
        };
        // a record gone since its entry was read (`None`) is no lock
        let found = keys
            .iter()
            .zip(&records)
            .flat_map(|((root, own, _), recs)| {
                recs.iter()
                    .flatten()
                    .map(move |raw| (Stored::Under(root, *own), raw.as_slice()))
            });
        let of_tokens = tokens
            .iter()
            .zip(&by_token)
            .filter_map(|(token, raw)| Some((Stored::Token(token), raw.as_deref()?)));
        judge_records(found.chain(of_tokens), now_ms).map(Some)
    }

    /// Run `call`, bounded by the operation timeout.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<T, LockStoreError> {
        self.bounded_raw(call).await?.map_err(map_err)
    }

    /// Run `call`, bounded by the operation timeout, leaving Redis's own errors to the caller.
    async fn bounded_raw<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<Result<T, RedisError>, LockStoreError> {
        tokio::time::timeout(self.operation_timeout, call)
            .await
            .map_err(|_| timed_out())
    }

    /// Remove the lock a create may have made though its caller got an error, by token (and
    /// root): in the background, the first attempt at once on the same connection (so Redis
    /// runs it after the create if both are still queued), then retried with backoff while
    /// Redis cannot be reached. The deadline the create carries already refuses a create that
    /// runs late; this covers one whose reply was lost.
    fn abort_later(&self, token: &str, root: &ResourcePath) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.clone();
        let (token, root) = (token.to_owned(), root.as_str().to_owned());
        runtime.spawn(async move {
            let mut delay = Duration::from_millis(50);
            for _ in 0..ABORT_ATTEMPTS {
                let mut inv = store.invocation(&ABORT);
                inv.arg(&token).arg(&root);
                if store.run::<i64>(inv).await.is_ok() {
                    return;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        });
    }

    /// The deadline (server time, ms) for a create that starts now and must answer within
    /// `budget`: half of what is left after reading the server's `TIME`, so a create that
    /// Redis starts by then has the other half to answer.
    async fn deadline(&self, budget: Duration) -> Result<u128, LockStoreError> {
        let started = tokio::time::Instant::now();
        let time = self
            .bounded(::redis::cmd("TIME").query_async(&mut self.conn.clone()))
            .await?;
        let server_ms = self.time_reply(time);
        let left = budget.saturating_sub(started.elapsed());
        Ok(server_ms + left.as_millis() / 2)
    }

    async fn run<T: FromRedisValue>(
        &self,
        inv: ::redis::ScriptInvocation<'static>,
    ) -> Result<T, LockStoreError> {
        self.bounded(inv.invoke_async(&mut self.conn.clone())).await
    }
}

/// A connection-level failure becomes `Unavailable`, any other `Backend`.
fn map_err(e: RedisError) -> LockStoreError {
    let unavailable = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                )
        );
    if unavailable {
        LockStoreError::unavailable(e)
    } else {
        LockStoreError::backend(e)
    }
}

fn timed_out() -> LockStoreError {
    LockStoreError::unavailable("redis did not answer within the operation timeout")
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

fn timeout_arg(t: LockTimeout) -> String {
    match t {
        LockTimeout::Seconds(s) => s.to_string(),
        LockTimeout::Infinite => "infinite".to_owned(),
    }
}

fn corrupt(what: &str) -> LockStoreError {
    LockStoreError::Corrupt(format!("redis lock record: {what}"))
}

/// The fields of a stored record, in their order (`decode_rec` and `encode` in
/// `prelude.lua`): six space-free ones, each followed by a space, then four length-prefixed.
const FIELDS: usize = 10;

/// Split a stored record, `"2 <exp> <depth> <path> <scope> <timeout> <fence> "` then the
/// token, href, principal and owner, each `<len>:<bytes>` or `-` (absent; `-` is also the
/// `<exp>` of an infinite lock).
fn fields(raw: &[u8]) -> Result<[Option<&str>; FIELDS], LockStoreError> {
    let text = std::str::from_utf8(raw).map_err(|_| corrupt("not UTF-8"))?;
    let mut rest = text
        .strip_prefix("2 ")
        .ok_or_else(|| corrupt("unknown format"))?;
    let mut out = [None; FIELDS];
    for field in &mut out[..6] {
        let (value, after) = rest.split_once(' ').ok_or_else(|| corrupt("truncated"))?;
        if value.is_empty() {
            return Err(corrupt("empty field"));
        }
        *field = Some(value).filter(|v| *v != "-");
        rest = after;
    }
    for field in &mut out[6..] {
        if let Some(after) = rest.strip_prefix('-') {
            rest = after;
            continue;
        }
        let (len, after) = rest.split_once(':').ok_or_else(|| corrupt("truncated"))?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(corrupt("bad field length"));
        }
        let len: usize = len.parse().map_err(|_| corrupt("bad field length"))?;
        let value = after.get(..len).ok_or_else(|| corrupt("truncated"))?;
        *field = Some(value);
        rest = &after[len..];
    }
    if !rest.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(out)
}

/// Decode and validate one record into a [`Lock`]. The root is re-parsed with
/// [`ResourcePath::parse`] and must give back the stored canonical path.
fn decode(raw: &[u8]) -> Result<Lock, LockStoreError> {
    let [exp, depth, path, scope, timeout, fence, token, href, principal, owner] = fields(raw)?;
    let missing = |what: &str| corrupt(&format!("no {what}"));
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| missing("token"))?;
    let href = href.ok_or_else(|| missing("root"))?;
    let root = ResourcePath::parse(href).map_err(|e| corrupt(&format!("bad root ({e})")))?;
    if Some(root.as_str()) != path {
        return Err(corrupt("root and path disagree"));
    }
    let scope = match scope {
        Some("exclusive") => LockScope::Exclusive,
        Some("shared") => LockScope::Shared,
        _ => return Err(corrupt("bad scope")),
    };
    let depth = match depth {
        Some("0") => LockDepth::Zero,
        Some("infinity") => LockDepth::Infinity,
        _ => return Err(corrupt("bad depth")),
    };
    let (timeout, expires_at) = match (timeout, exp) {
        (Some("infinite"), None) => (LockTimeout::Infinite, None),
        (Some(secs), Some(exp)) => {
            let secs = secs.parse().map_err(|_| corrupt("bad timeout"))?;
            let ms: u64 = exp.parse().map_err(|_| corrupt("bad expiry"))?;
            let at = UNIX_EPOCH
                .checked_add(Duration::from_millis(ms))
                .ok_or_else(|| corrupt("bad expiry"))?;
            (LockTimeout::Seconds(secs), Some(at))
        }
        _ => return Err(corrupt("timeout and expiry disagree")),
    };
    let fence: u64 = fence
        .and_then(|f| f.parse().ok())
        .filter(|&f| f != 0)
        .ok_or_else(|| corrupt("bad fence"))?;
    Ok(Lock {
        token: token.into(),
        root,
        scope,
        depth,
        owner: owner.map(Into::into),
        principal: principal.map(Into::into),
        timeout,
        expires_at,
        fence,
    })
}

/// Where a record read by a query was found.
#[derive(Clone, Copy)]
enum Stored<'a> {
    /// In the root key of this path; `true` when the path is a target's (every kind matches),
    /// `false` at an ancestor (depth-infinity locks only).
    Under(&'a str, bool),
    /// Under the lock key of this token.
    Token(&'a str),
}

/// The live locks of the records a query read, each once (a token's lock may also have been
/// found under its root). Every record is validated and must be stored where it was found:
/// under its own root (with depth infinity when read at an ancestor), or under its own token.
/// Records expired by `now_ms` are dropped.
fn judge_records<'a>(
    found: impl Iterator<Item = (Stored<'a>, &'a [u8])>,
    now_ms: u128,
) -> Result<Vec<Lock>, LockStoreError> {
    let mut out: Vec<Lock> = Vec::new();
    for (stored, raw) in found {
        let lock = decode(raw)?;
        match stored {
            Stored::Under(root, _) if lock.root.as_str() != root => {
                return Err(corrupt("stored under another root"));
            }
            Stored::Under(_, false) if lock.depth != LockDepth::Infinity => {
                return Err(corrupt("stored under another depth"));
            }
            Stored::Token(token) if lock.token != *token => {
                return Err(corrupt("stored under another token"));
            }
            Stored::Token(token) if out.iter().any(|l| l.token == *token) => continue,
            _ => {}
        }
        let expired = lock
            .expires_at
            .is_some_and(|at| at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()) <= now_ms);
        if !expired {
            out.push(lock);
        }
    }
    Ok(out)
}

/// Split a script reply `[status, records...]`.
fn reply(raw: Vec<Vec<u8>>) -> Result<(String, Vec<Vec<u8>>), LockStoreError> {
    let mut it = raw.into_iter();
    let status = it
        .next()
        .and_then(|s| String::from_utf8(s).ok())
        .ok_or_else(|| LockStoreError::backend("unexpected reply from lock script"))?;
    Ok((status, it.collect()))
}

fn single(records: &[Vec<u8>]) -> Result<Lock, LockStoreError> {
    match records {
        [one] => decode(one),
        _ => Err(LockStoreError::backend("unexpected reply from lock script")),
    }
}

fn token_outcome(raw: Vec<Vec<u8>>) -> Result<TokenOutcome, LockStoreError> {
    let (status, records) = reply(raw)?;
    match status.as_str() {
        "not_found" => Ok(TokenOutcome::NotFound),
        "done" => Ok(TokenOutcome::Done(single(&records)?)),
        "out_of_scope" => Ok(TokenOutcome::OutOfScope(single(&records)?)),
        "forbidden" => Ok(TokenOutcome::Forbidden(single(&records)?)),
        // a record the script could not parse: the client's decoding says what is wrong
        "corrupt" => Err(single(&records)
            .err()
            .unwrap_or_else(|| corrupt("rejected by the lock script"))),
        _ => Err(LockStoreError::backend("unexpected reply from lock script")),
    }
}

impl LockStore for RedisLockStore {
    async fn create(&self, lock: NewLock) -> Result<CreateOutcome, LockStoreError> {
        let started = tokio::time::Instant::now();
        let deadline = self.deadline(self.operation_timeout).await?;
        let quota = |q: Option<u32>| q.map(|q| q.to_string()).unwrap_or_default();
        let mut inv = self.invocation(&CREATE);
        inv.arg(self.sweep_batch)
            .arg(deadline.to_string())
            .arg(lock.token.as_str())
            .arg(lock.root.as_str())
            .arg(lock.root.href())
            .arg(match lock.scope {
                LockScope::Exclusive => "exclusive",
                LockScope::Shared => "shared",
            })
            .arg(match lock.depth {
                LockDepth::Zero => "0",
                LockDepth::Infinity => "infinity",
            })
            .arg(timeout_arg(lock.timeout))
            .arg(flag(lock.owner.is_some()))
            .arg(lock.owner.as_deref().unwrap_or(""))
            .arg(flag(lock.principal.is_some()))
            .arg(lock.principal.as_deref().unwrap_or(""))
            .arg(quota(lock.principal_quota))
            .arg(quota(lock.resource_quota))
            .arg(quota(lock.store_quota))
            .arg(Below::BLOCKED);
        let mut conn = self.conn.clone();
        let call = inv.invoke_async(&mut conn);
        let raw = match tokio::time::timeout_at(started + self.operation_timeout, call).await {
            Ok(Ok(raw)) => raw,
            // Redis may still run (or have run) the create: take back what it made
            Ok(Err(e)) => {
                // refused: the create never reached Redis
                let sent = !e.is_connection_refusal();
                let e = map_err(e);
                if sent && matches!(e, LockStoreError::Unavailable(_)) {
                    self.abort_later(&lock.token, &lock.root);
                }
                return Err(e);
            }
            Err(_) => {
                self.abort_later(&lock.token, &lock.root);
                return Err(timed_out());
            }
        };
        let (status, records) = reply(raw)?;
        let limit = |q: Option<u32>| q.unwrap_or_default();
        match (status.as_str(), records.first().map(Vec::as_slice)) {
            ("created", _) => single(&records)
                .map(CreateOutcome::Created)
                .inspect_err(|_| {
                    // granted, but the caller gets an error: nobody would hold this lock
                    self.abort_later(&lock.token, &lock.root);
                }),
            ("conflict", _) => Ok(CreateOutcome::Conflict(
                records
                    .iter()
                    .map(|r| decode(r))
                    .collect::<Result<_, _>>()?,
            )),
            ("quota", Some(b"principal")) => Ok(CreateOutcome::QuotaExceeded {
                quota: Quota::Principal,
                limit: limit(lock.principal_quota),
            }),
            ("quota", Some(b"anonymous")) => Ok(CreateOutcome::QuotaExceeded {
                quota: Quota::Anonymous,
                limit: limit(lock.principal_quota),
            }),
            ("quota", Some(b"resource")) => Ok(CreateOutcome::QuotaExceeded {
                quota: Quota::Resource,
                limit: limit(lock.resource_quota),
            }),
            ("quota", Some(b"store")) => Ok(CreateOutcome::QuotaExceeded {
                quota: Quota::Store,
                limit: limit(lock.store_quota),
            }),
            ("late", _) => Err(LockStoreError::unavailable(
                "redis ran the create after its deadline and refused it; no lock was created",
            )),
            ("duplicate", _) => Err(LockStoreError::backend(
                "a live lock with this token already exists",
            )),
            _ => Err(LockStoreError::backend("unexpected reply from lock script")),
        }
    }

    async fn refresh(
        &self,
        access: TokenAccess<'_>,
        timeout: LockTimeout,
    ) -> Result<TokenOutcome, LockStoreError> {
        let mut inv = self.invocation(&REFRESH);
        inv.arg(self.sweep_batch)
            .arg(access.token)
            .arg(access.path.as_str())
            .arg(flag(access.principal.is_some()))
            .arg(access.principal.unwrap_or(""))
            .arg(timeout_arg(timeout));
        token_outcome(self.run(inv).await?)
    }

    async fn unlock(&self, access: TokenAccess<'_>) -> Result<TokenOutcome, LockStoreError> {
        let mut inv = self.invocation(&UNLOCK);
        inv.arg(self.sweep_batch)
            .arg(access.token)
            .arg(access.path.as_str())
            .arg(flag(access.principal.is_some()))
            .arg(access.principal.unwrap_or(""))
            .arg(flag(access.privileged));
        token_outcome(self.run(inv).await?)
    }

    async fn remove_subtree(&self, path: &ResourcePath) -> Result<usize, LockStoreError> {
        let mut inv = self.invocation(&REMOVE_SUBTREE);
        inv.arg(self.sweep_batch).arg(path.as_str());
        let removed: u64 = self.run(inv).await?;
        usize::try_from(removed).map_err(LockStoreError::backend)
    }

    async fn query(&self, query: &LockQuery) -> Result<Vec<Lock>, LockStoreError> {
        if query.targets.is_empty() && query.tokens.is_empty() {
            return Ok(Vec::new());
        }
        // `SORT_RO`'s pattern substitutes the first `*`, which must be the one after `lock:`
        if query.targets.iter().all(|t| !t.descendants)
            && !self.sort_refused.load(Ordering::Relaxed)
            && !self.keys.prefix.contains('*')
        {
            let keys = self.covering_keys(query);
            if let Some(locks) = self.read_covering(&keys, &query.tokens).await? {
                return Ok(locks);
            }
        }
        let mut inv = self.invocation(&QUERY);
        inv.arg(query.targets.len());
        for t in &query.targets {
            let below = match (&query.below, t.descendants) {
                (_, false) => "0",
                (Below::All, true) => "1",
                (Below::UntilBlocked { .. }, true) => "2",
                (Below::Page { .. }, true) => "3",
            };
            inv.arg(t.path.as_str()).arg(below);
        }
        inv.arg(query.tokens.len());
        for token in &query.tokens {
            inv.arg(token.as_str());
        }
        let (count, given, lister) = match &query.below {
            Below::All => (0, None, None),
            Below::UntilBlocked { holder } => (Below::BLOCKED, holder.as_deref(), None),
            Below::Page {
                after,
                resources,
                holder,
            } => (
                *resources,
                after.as_ref().map(ResourcePath::as_str),
                holder.as_deref(),
            ),
        };
        inv.arg(count);
        for value in [given, lister] {
            match value {
                Some(value) => inv.arg("1").arg(value),
                None => inv.arg("0"),
            };
        }
        let reply: Vec<Vec<u8>> = self.run(inv).await?;
        let bad = || LockStoreError::backend("unexpected reply from lock script");
        let (now, rest) = reply.split_first().ok_or_else(bad)?;
        let now_ms: u128 = std::str::from_utf8(now)
            .ok()
            .and_then(|n| n.parse().ok())
            .ok_or_else(bad)?;
        if self.clock.is_none() {
            self.saw_server_time(now_ms);
        }
        if rest.len() % 3 != 0 {
            return Err(bad());
        }
        let mut found = Vec::with_capacity(rest.len() / 3);
        for chunk in rest.chunks_exact(3) {
            let at = std::str::from_utf8(&chunk[1]).map_err(|_| bad())?;
            let stored = match chunk[0].as_slice() {
                b"t" => Stored::Token(at),
                own => Stored::Under(at, own == b"1"),
            };
            found.push((stored, chunk[2].as_slice()));
        }
        judge_records(found.into_iter(), now_ms)
    }

    /// The server's time (as the last reply that carried it showed it against this host's
    /// clock), or the injected clock's.
    fn now(&self) -> SystemTime {
        if let Some(clock) = &self.clock {
            return clock.now();
        }
        let offset = self.server_offset_ms.load(Ordering::Relaxed);
        let host = SystemTime::now();
        let by = Duration::from_millis(offset.unsigned_abs());
        let server = if offset < 0 {
            host.checked_sub(by)
        } else {
            host.checked_add(by)
        };
        server.unwrap_or(host)
    }

    async fn get(&self, token: &str) -> Result<Option<Lock>, LockStoreError> {
        let mut inv = self.invocation(&GET);
        inv.arg(token);
        let record: Option<Vec<u8>> = self.run(inv).await?;
        record.as_deref().map(decode).transpose()
    }
}

/// A lock's expiry as the store saw it, for tests of this module.
#[cfg(test)]
fn expiry_ms(lock: &Lock) -> Option<u128> {
    lock.expires_at
        .map(|t| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encode a record as the scripts do (`encode` in `prelude.lua`).
    fn record(fields: &[(&str, &str)]) -> Vec<u8> {
        let get = |name: &str| fields.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let mut out = String::from("2 ");
        for name in ["exp", "depth", "path", "scope", "timeout", "fence"] {
            out.push_str(get(name).unwrap_or("-"));
            out.push(' ');
        }
        for name in ["token", "href", "principal", "owner"] {
            match get(name) {
                Some(v) => out.push_str(&format!("{}:{v}", v.len())),
                None => out.push('-'),
            }
        }
        out.into_bytes()
    }

    const GOOD: &[(&str, &str)] = &[
        ("token", "urn:uuid:1"),
        ("path", "/a/b"),
        ("href", "/a/b/"),
        ("scope", "shared"),
        ("depth", "infinity"),
        ("timeout", "60"),
        ("exp", "1700000000123"),
        ("fence", "7"),
        ("principal", "ann"),
    ];

    #[test]
    fn decodes_a_valid_record() {
        let lock = decode(&record(GOOD)).unwrap();
        assert_eq!(lock.root.href(), "/a/b/");
        assert_eq!(lock.scope, LockScope::Shared);
        assert_eq!(lock.depth, LockDepth::Infinity);
        assert_eq!(lock.timeout, LockTimeout::Seconds(60));
        assert_eq!(expiry_ms(&lock), Some(1_700_000_000_123));
        assert_eq!(lock.fence, 7);
        assert_eq!(lock.principal.as_deref(), Some("ann"));
        assert_eq!(lock.owner, None);
        // lengths count bytes; values may hold the separators
        let raw = "2 - 0 /x exclusive infinite 1 3:t:-2:/x3:a b6:\u{e9}-:2\n";
        let lock = decode(raw.as_bytes()).unwrap();
        assert_eq!(lock.root.as_str(), "/x");
        assert_eq!(lock.token, "t:-");
        assert_eq!(lock.owner.as_deref(), Some("\u{e9}-:2\n"));
        assert_eq!(lock.principal.as_deref(), Some("a b"));
        assert_eq!(lock.expires_at, None);
        assert_eq!(lock.timeout, LockTimeout::Infinite);
        let empty_owner = decode(&record(&[GOOD, &[("owner", "")]].concat())).unwrap();
        assert_eq!(empty_owner.owner.as_deref(), Some(""));
    }

    #[test]
    fn rejects_corrupt_records() {
        let with = |k: &str, v: &str| {
            let mut f: Vec<(&str, &str)> = GOOD.iter().filter(|(n, _)| *n != k).copied().collect();
            f.push((k, v));
            record(&f)
        };
        let without = |k: &str| {
            record(
                &GOOD
                    .iter()
                    .filter(|(n, _)| *n != k)
                    .copied()
                    .collect::<Vec<_>>(),
            )
        };
        let good = record(GOOD);
        let bad = [
            b"not a record".to_vec(),
            Vec::new(),
            [b"1".as_slice(), &good[1..]].concat(),
            [good.as_slice(), b"-"].concat(),
            good[..good.len() - 3].to_vec(),
            b"2 - 0 /x exclusive infinite 1 1+1:t2:/x--".to_vec(),
            b"2 - 0 /x exclusive infinite 1 9999:t".to_vec(),
            b"2 - 0 /x exclusive  infinite 1 1:t2:/x--".to_vec(),
            b"2 - 0 /x exclusive infinite 1 1:t2:/x-".to_vec(),
            vec![b'2', b' ', 0xff],
            with("token", ""),
            with("href", "relative"),
            with("href", "/a/../b"),
            with("path", "/a/c"),
            with("scope", "weird"),
            with("depth", "1"),
            with("timeout", "-5"),
            with("timeout", "infinite"),
            with("exp", "soon"),
            with("fence", "0"),
            with("fence", "x"),
            without("exp"),
            without("fence"),
            without("path"),
            without("token"),
        ];
        for raw in bad {
            assert!(
                matches!(decode(&raw), Err(LockStoreError::Corrupt(_))),
                "{}",
                String::from_utf8_lossy(&raw)
            );
        }
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(Keys::new("").is_err());
        assert!(Keys::new("a{b").is_err());
        assert!(Keys::new("a}b").is_err());
        assert!(Keys::new(&"x".repeat(300)).is_err());
        let k = Keys::new("app").unwrap();
        assert_eq!(k.xtree, "{app}:xtree");
        assert_eq!(k.base, "{app}:");
    }
}
