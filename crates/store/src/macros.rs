//! Macros that let one piece of SQL-handling code run on both backends: the body is
//! expanded once per pool type, so sqlx's per-database types line up without
//! `sqlx::Any` (which lacks several types) and without pages of trait bounds.

/// Runs `$body` with `$pool` bound to the backend's pool: `read` uses SQLite's
/// reader pool, `write` its single writer; PostgreSQL has one pool for both.
macro_rules! on_pool {
    ($store:expr, read, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite { read: $pool, .. } => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
    ($store:expr, write, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite { write: $pool, .. } => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}

/// Declares a row struct readable from both backends' rows by column name.
macro_rules! db_row {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone)]
        $vis struct $name { $(pub $f: $t),* }

        impl $crate::macros::FromDbRow<sqlx::sqlite::SqliteRow> for $name {
            fn from_db_row(r: &sqlx::sqlite::SqliteRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row;
                Ok(Self { $($f: r.try_get(stringify!($f))?),* })
            }
        }
        impl $crate::macros::FromDbRow<sqlx::postgres::PgRow> for $name {
            fn from_db_row(r: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row;
                Ok(Self { $($f: r.try_get(stringify!($f))?),* })
            }
        }
    };
}

/// A struct built from a row of backend `R`.
pub(crate) trait FromDbRow<R>: Sized {
    fn from_db_row(r: &R) -> Result<Self, sqlx::Error>;
}

/// Reads every row into `T`.
pub(crate) fn rows_to<R, T: FromDbRow<R>>(rows: &[R]) -> Result<Vec<T>, sqlx::Error> {
    rows.iter().map(T::from_db_row).collect()
}

/// Appends one audit entry inside the open transaction `$tx`. Serialised through
/// the single `audit_head` row (locked by the UPDATE until commit), so the chain has
/// no gaps or forks whatever the concurrency. Put it last in a transaction to hold
/// that lock as briefly as possible.
macro_rules! append_audit {
    ($tx:expr, $new:expr) => {{
        use sqlx::Row as _;
        let new: &$crate::audit::NewAudit = $new;
        let head = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
            .fetch_one(&mut *$tx)
            .await?;
        let seq: i64 = head.try_get("seq")?;
        let prev: String = head.try_get("hash")?;
        let mut e = new.to_entry(seq);
        e.seal(&prev);
        sqlx::query(
            "INSERT INTO audit_log (seq, at_ms, actor_kind, actor_id, role, establishment_id, patient_id, action, resource, outcome, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(e.seq)
        .bind(e.at_ms)
        .bind(&e.actor_kind)
        .bind(&e.actor_id)
        .bind(&e.role)
        .bind(&e.establishment)
        .bind(&e.patient)
        .bind(&e.action)
        .bind(&e.resource)
        .bind(&e.outcome)
        .bind(&e.prev_hash)
        .bind(&e.hash)
        .execute(&mut *$tx)
        .await?;
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&e.hash).execute(&mut *$tx).await?;
        e
    }};
}

/// Appends several audit entries inside `$tx` with one read and one write of the
/// head: the sequence numbers are reserved at once, the hashes chained in memory.
macro_rules! append_audits {
    ($tx:expr, $entries:expr) => {{
        use sqlx::Row as _;
        let entries: &[$crate::audit::NewAudit] = $entries;
        if !entries.is_empty() {
            let n = entries.len() as i64;
            let head = sqlx::query("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
                .bind(n)
                .fetch_one(&mut *$tx)
                .await?;
            let last: i64 = head.try_get("seq")?;
            let mut prev: String = head.try_get("hash")?;
            for (i, new) in entries.iter().enumerate() {
                let mut e = new.to_entry(last - n + 1 + i as i64);
                e.seal(&prev);
                sqlx::query(
                    "INSERT INTO audit_log (seq, at_ms, actor_kind, actor_id, role, establishment_id, patient_id, action, resource, outcome, prev_hash, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(e.seq)
                .bind(e.at_ms)
                .bind(&e.actor_kind)
                .bind(&e.actor_id)
                .bind(&e.role)
                .bind(&e.establishment)
                .bind(&e.patient)
                .bind(&e.action)
                .bind(&e.resource)
                .bind(&e.outcome)
                .bind(&e.prev_hash)
                .bind(&e.hash)
                .execute(&mut *$tx)
                .await?;
                prev = e.hash;
            }
            sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&prev).execute(&mut *$tx).await?;
        }
    }};
}
