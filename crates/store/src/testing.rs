//! Fresh databases for tests, on both backends: a new SQLite file, or a new
//! PostgreSQL database named by a UUID on the server given by
//! `PARCOURS_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`).
//! Test databases are named `parcours_t_{unix seconds}_{uuid}`; `.ci/run`
//! drops them afterwards, and a test process drops those (and removes the
//! SQLite files) that are older than [`STALE_AFTER_SECS`] when it makes its
//! first, so that `cargo nextest` run directly does not pile them up.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Result, Store, StoreError};

/// How old a test database or file is before a later test process drops it:
/// well past the longest test run, so none still in use is touched.
pub const STALE_AFTER_SECS: u64 = 2 * 3600;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A new test database's or file's name (without the file's extension).
fn fresh_name() -> String {
    format!(
        "parcours_t_{}_{}",
        now_secs(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether `name` (a database, or a file with its extension) is a test
/// database made more than [`STALE_AFTER_SECS`] before `now`. Names without
/// a time (an e2e run's, older runs') are never stale here.
pub fn is_stale(name: &str, now: u64) -> bool {
    name.strip_prefix("parcours_t_")
        .and_then(|rest| rest.split_once('_'))
        .and_then(|(secs, _)| secs.parse::<u64>().ok())
        .is_some_and(|made| now.saturating_sub(made) > STALE_AFTER_SECS)
}

/// Removes the stale SQLite test files (and their `-wal`, `-shm`) in `dir`;
/// how many.
pub fn remove_stale_sqlite_files(dir: &std::path::Path, now: u64) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| is_stale(n, now)))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// Drops the stale PostgreSQL test databases of the server `admin` is
/// connected to; how many.
pub async fn drop_stale_postgres_databases(admin: &Store, now: u64) -> Result<usize> {
    on_pool!(admin, write, |pool| {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'parcours\\_t\\_%'",
        )
        .fetch_all(pool)
        .await?;
        let mut dropped = 0;
        for name in names.iter().filter(|n| is_stale(n, now)) {
            // `is_stale` reads only the name's start: a name with other
            // characters than ours (letters, digits, underscores) is not
            // written into the statement.
            if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                continue;
            }
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(pool)
            .await?;
            dropped += 1;
        }
        Ok(dropped)
    })
}

/// The PostgreSQL server tests use.
pub fn postgres_admin_url() -> String {
    std::env::var("PARCOURS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A URL for a new, empty SQLite file in the temp directory.
pub fn fresh_sqlite_url() -> String {
    static SWEPT: Once = Once::new();
    let dir = std::env::temp_dir();
    SWEPT.call_once(|| {
        remove_stale_sqlite_files(&dir, now_secs());
    });
    let path = dir.join(format!("{}.db", fresh_name()));
    format!("sqlite://{}", path.display())
}

/// Creates a new, empty PostgreSQL database and returns its URL.
pub async fn fresh_postgres_url() -> Result<String> {
    static SWEPT: AtomicBool = AtomicBool::new(false);
    let admin = postgres_admin_url();
    let store = Store::connect(&admin).await?;
    if !SWEPT.swap(true, Ordering::SeqCst) {
        // Clean-up only: a test does not fail for it, but says so.
        if let Err(e) = drop_stale_postgres_databases(&store, now_secs()).await {
            eprintln!("anciennes bases de test non supprimées : {e}");
        }
    }
    let name = fresh_name();
    on_pool!(store, write, |pool| {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(pool)
            .await?;
    });
    store.close().await;
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .ok_or_else(|| StoreError::BadUrl(admin.clone()))?;
    Ok(format!("{base}/{name}"))
}

/// Both backends, migrated and empty: `[("sqlite", …), ("postgres", …)]`.
pub async fn both_backends(now_ms: i64) -> Result<Vec<(&'static str, Store)>> {
    let sqlite = Store::connect(&fresh_sqlite_url()).await?;
    sqlite.migrate(now_ms).await?;
    let pg = Store::connect(&fresh_postgres_url().await?).await?;
    pg.migrate(now_ms).await?;
    Ok(vec![("sqlite", sqlite), ("postgres", pg)])
}

/// Runs raw SQL against a store, bypassing the application (tests that play an
/// intruder with database access, e.g. to tamper with the audit trail).
pub async fn raw_sql(store: &Store, sql: &str) -> Result<u64> {
    on_pool!(store, write, |pool| {
        let r = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(pool)
            .await?;
        Ok(r.rows_affected())
    })
}

/// Holds the group commit of `apply_writes` (as a group being written
/// would): the callers meanwhile wait together and go in the next group.
pub async fn hold_writes(store: &Store) -> tokio::sync::OwnedMutexGuard<()> {
    store.write_queue.hold().await
}

/// How many callers of `apply_writes` wait for the next group.
pub fn waiting_writes(store: &Store) -> usize {
    store.write_queue.waiting_len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_timed_test_names_past_their_time_are_stale() {
        let now = 1_800_000_000;
        let old = now - STALE_AFTER_SECS - 1;
        assert!(is_stale(&format!("parcours_t_{old}_abc"), now));
        assert!(is_stale(&format!("parcours_t_{old}_abc.db-wal"), now));
        // Just made, or exactly at the limit: kept.
        assert!(!is_stale(&format!("parcours_t_{now}_abc"), now));
        assert!(!is_stale(
            &format!("parcours_t_{}_abc", now - STALE_AFTER_SECS),
            now
        ));
        // A clock set back does not make a database stale.
        assert!(!is_stale(&format!("parcours_t_{}_abc", now + 60), now));
        // Names without a time, or not ours.
        assert!(!is_stale("parcours_t_e2e_1796636714524", now));
        assert!(!is_stale(
            "parcours_t_4f40ae557d97449f812c7c045bf9e187",
            now
        ));
        assert!(!is_stale(&format!("parcours_bench_{old}_abc"), now));
        assert!(!is_stale("test", now));
    }

    #[test]
    fn stale_sqlite_files_are_removed_and_the_others_kept() {
        let dir = std::env::temp_dir().join(format!("parcours-sweep-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let now = now_secs();
        let old = now - STALE_AFTER_SECS - 10;
        let stale = [
            format!("parcours_t_{old}_a.db"),
            format!("parcours_t_{old}_a.db-wal"),
            format!("parcours_t_{old}_a.db-shm"),
        ];
        let kept = [
            format!("parcours_t_{now}_b.db"),
            "parcours_t_c.db".to_owned(),
            "notes.txt".to_owned(),
        ];
        for name in stale.iter().chain(&kept) {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        assert_eq!(remove_stale_sqlite_files(&dir, now), 3);
        for name in &stale {
            assert!(!dir.join(name).exists(), "{name}");
        }
        for name in &kept {
            assert!(dir.join(name).exists(), "{name}");
        }
        assert_eq!(remove_stale_sqlite_files(&dir.join("none"), now), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn stale_postgres_databases_are_dropped_and_the_others_kept() {
        let admin = postgres_admin_url();
        let now = now_secs();
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let old = format!("parcours_t_{}_{tag}", now - STALE_AFTER_SECS - 10);
        let fresh = format!("parcours_t_{now}_{tag}");
        let untimed = format!("parcours_t_sweep_{tag}");
        let store = Store::connect(&admin).await.unwrap();
        for name in [&old, &fresh, &untimed] {
            raw_sql(&store, &format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
        }
        let exists = |name: String| {
            let store = store.clone();
            async move {
                on_pool!(store, write, |pool| {
                    sqlx::query_scalar::<_, i64>(
                        "SELECT count(*) FROM pg_database WHERE datname = $1",
                    )
                    .bind(name)
                    .fetch_one(pool)
                    .await
                    .unwrap()
                        == 1
                })
            }
        };
        // Other stale databases of this server may go too: at least ours.
        assert!(drop_stale_postgres_databases(&store, now).await.unwrap() >= 1);
        assert!(!exists(old.clone()).await, "{old}");
        assert!(exists(fresh.clone()).await, "{fresh}");
        assert!(exists(untimed.clone()).await, "{untimed}");
        for name in [&fresh, &untimed] {
            raw_sql(&store, &format!("DROP DATABASE {name} WITH (FORCE)"))
                .await
                .unwrap();
        }
        store.close().await;
    }
}
