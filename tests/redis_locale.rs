//! A Redis server started under a locale whose collation is not byte order. Redis sets
//! `LC_COLLATE` from its environment, and Lua's `<` and `>` on strings follow it, while
//! `ZRANGEBYLEX` orders bytes: the store's scripts must compare paths as bytes. The server is
//! this test's own (`en_US.UTF-8`, from the system's locales or built with `localedef` from
//! the `locales` package); without redis-server or the locale the test is skipped, or fails
//! when `CI=true`.
#![cfg(all(feature = "redis", feature = "conformance"))]

#[path = "common/redis.rs"]
mod redis_env;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use redis_env::{in_ci, raw_connection, store_with_prefix, unique_prefix, OwnServer, TempDir};
use tower_locks::conformance;

/// `LOCPATH` for `en_US.UTF-8`: `None` when the system has it already, else a directory
/// `localedef` built it in. `Err` when neither can be had.
fn en_us_locale(dir: &Path) -> Result<Option<&Path>, String> {
    let listed = Command::new("locale").arg("-a").output();
    if listed.is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l == "en_US.utf8")
    }) {
        return Ok(None);
    }
    let built = Command::new("localedef")
        .args(["-i", "en_US", "-f", "UTF-8"])
        .arg(dir.join("en_US.UTF-8"))
        .output()
        .map_err(|e| format!("localedef: {e}"))?;
    // localedef warns (exit 1) about details of the locale sources and still writes it
    if dir.join("en_US.UTF-8").join("LC_COLLATE").is_file() {
        Ok(Some(dir))
    } else {
        Err(format!(
            "localedef -i en_US -f UTF-8 failed ({}): install the `locales` package",
            String::from_utf8_lossy(&built.stderr).trim()
        ))
    }
}

#[tokio::test]
async fn pages_follow_byte_order_under_any_collation() {
    let locales = TempDir::new("locales");
    let locpath = match en_us_locale(&locales.0) {
        Ok(path) => path.map(Path::as_os_str),
        Err(e) => {
            assert!(!in_ci(), "CI=true but no en_US.UTF-8 locale: {e}");
            eprintln!("notice: skipping: {e}");
            return;
        }
    };
    let mut env: Vec<(&str, &OsStr)> = vec![("LC_ALL", OsStr::new("en_US.UTF-8"))];
    if let Some(path) = locpath {
        env.push(("LOCPATH", path));
    }
    let Some(server) = OwnServer::start_with_env("locale", &env) else {
        return;
    };
    // The server does collate otherwise than bytes: '-' is below '/', but en_US ignores it
    // at first and finds "docs-z" after "docs/".
    let mut conn = raw_connection(&server.url).await;
    let collated: String = redis::cmd("EVAL")
        .arg("return tostring('[/docs-z!' > '[/docs/')")
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        collated, "true",
        "the server does not run under en_US collation"
    );
    let store = store_with_prefix(&server.url, &unique_prefix()).await;
    conformance::query_pages_list_everything(&store).await;
    conformance::query_pages_of_a_holder(&store).await;
    conformance::query_until_blocked_reports_enough(&store).await;
    conformance::query_matches_reference(&store).await;
}
