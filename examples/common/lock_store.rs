//! The lock store the example servers use (`examples/webdav`, `examples/proxy.rs`).

use std::sync::Arc;

use tower_locks::{DynLockStore, MemoryLockStore};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Built with `--features redis` and run with `REDIS_URL` set, a `RedisLockStore` (key prefix
/// from `LOCK_PREFIX`, default `default_prefix`): every server started that way on the same
/// Redis and prefix shares one lock space. Otherwise the in-memory store of this process.
pub(crate) async fn lock_store(default_prefix: &str) -> Result<Arc<dyn DynLockStore>, BoxError> {
    #[cfg(feature = "redis")]
    if let Some(url) = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) {
        let prefix = std::env::var("LOCK_PREFIX")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| default_prefix.to_owned());
        let store = tower_locks::RedisLockStore::builder(url)
            .prefix(prefix)
            .connect()
            .await?;
        // The URL may hold a password: name the namespace only.
        println!(
            "lock store: Redis (REDIS_URL), key prefix {:?}",
            store.prefix()
        );
        return Ok(Arc::new(store));
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = default_prefix;
        if std::env::var_os("REDIS_URL").is_some() {
            println!("note: REDIS_URL is ignored: build with `--features redis` to use it");
        }
    }
    println!("lock store: memory (this process only)");
    Ok(Arc::new(MemoryLockStore::new()))
}
