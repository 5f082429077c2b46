//! Fresh databases for tests, on both backends: a new SQLite file, or a new
//! PostgreSQL database named by a UUID on the server given by
//! `PARCOURS_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`).
//! Test databases are named `parcours_t_*`; `.ci/run` drops them afterwards.

use crate::{Result, Store, StoreError};

/// The PostgreSQL server tests use.
pub fn postgres_admin_url() -> String {
    std::env::var("PARCOURS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A URL for a new, empty SQLite file in the temp directory.
pub fn fresh_sqlite_url() -> String {
    let path =
        std::env::temp_dir().join(format!("parcours_t_{}.db", uuid::Uuid::new_v4().simple()));
    format!("sqlite://{}", path.display())
}

/// Creates a new, empty PostgreSQL database and returns its URL.
pub async fn fresh_postgres_url() -> Result<String> {
    let admin = postgres_admin_url();
    let name = format!("parcours_t_{}", uuid::Uuid::new_v4().simple());
    let store = Store::connect(&admin).await?;
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
