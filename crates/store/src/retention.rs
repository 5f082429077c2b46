//! What leaves the database, and when: old HL7 messages, delivered outbox
//! messages, expired sessions, tokens, invitations and sign-ins under way,
//! audited views of live pages. Each kind is removed in small batches, one
//! short transaction each, oldest first, so that the intake keeps writing
//! between them; the caller decides the cut-offs (the configuration) and how
//! many batches a run may take. Space is given back by SQLite's incremental
//! vacuum (PostgreSQL's autovacuum does it there). Backups are here too: an
//! online copy of a consistent snapshot of SQLite.

use std::path::Path;

use crate::tx::WritePool as _;
use crate::tx::{AsTx, q};
use crate::{Backend, Engine, Result, Store, StoreError};

/// A kind of row that leaves after its retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prunable {
    /// HL7 messages accepted (AA), with their ACK, received before the cut-off.
    Hl7Accepted,
    /// HL7 messages refused or in error (AE, AR), received before the cut-off.
    Hl7Errors,
    /// Outbox messages delivered before the cut-off (a document recipient's
    /// state is kept on the recipient first).
    OutboxDelivered,
    /// Sessions expired before the cut-off.
    Sessions,
    /// API access tokens expired before the cut-off.
    AccessTokens,
    /// One-time links (invitations, resets) expired before the cut-off.
    Invitations,
    /// OpenID Connect sign-ins under way, and sessions' ID tokens, expired
    /// before the cut-off; client assertions' `jti` expired.
    SignIns,
    /// Live views audited once per session, made before the cut-off (their
    /// session has ended).
    AuditViews,
}

impl Prunable {
    /// Every kind.
    pub const ALL: [Prunable; 8] = [
        Prunable::Hl7Accepted,
        Prunable::Hl7Errors,
        Prunable::OutboxDelivered,
        Prunable::Sessions,
        Prunable::AccessTokens,
        Prunable::Invitations,
        Prunable::SignIns,
        Prunable::AuditViews,
    ];

    /// Its name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Prunable::Hl7Accepted => "hl7_messages",
            Prunable::Hl7Errors => "hl7_errors",
            Prunable::OutboxDelivered => "outbox_delivered",
            Prunable::Sessions => "sessions",
            Prunable::AccessTokens => "access_tokens",
            Prunable::Invitations => "invitations",
            Prunable::SignIns => "sign_ins",
            Prunable::AuditViews => "audit_views",
        }
    }

    /// The tables a batch removes rows from (PostgreSQL vacuums them after).
    fn tables(self) -> &'static [&'static str] {
        match self {
            Prunable::Hl7Accepted | Prunable::Hl7Errors => &["hl7_messages"],
            Prunable::OutboxDelivered => &["outbox", "document_recipients"],
            Prunable::Sessions => &["sessions"],
            Prunable::AccessTokens => &["access_tokens"],
            Prunable::Invitations => &["invitations"],
            Prunable::SignIns => &["oidc_logins", "oidc_sessions", "client_assertions"],
            Prunable::AuditViews => &["audit_views"],
        }
    }

    /// The statements that remove one batch (`$1` the cut-off, `$2` the
    /// batch size), run in order in one transaction.
    fn statements(self) -> &'static [&'static str] {
        match self {
            // A message replayed is kept while its replay is: the replay names it.
            Prunable::Hl7Accepted => &[
                "DELETE FROM hl7_messages WHERE id IN (SELECT m.id FROM hl7_messages m \
                 WHERE m.received_at_ms < $1 AND m.status = 'accepted' \
                 AND NOT EXISTS (SELECT 1 FROM hl7_messages r WHERE r.replay_of = m.id) \
                 ORDER BY m.received_at_ms LIMIT +$2)",
            ],
            Prunable::Hl7Errors => &[
                "DELETE FROM hl7_messages WHERE id IN (SELECT m.id FROM hl7_messages m \
                 WHERE m.received_at_ms < $1 AND m.status <> 'accepted' \
                 AND NOT EXISTS (SELECT 1 FROM hl7_messages r WHERE r.replay_of = m.id) \
                 ORDER BY m.received_at_ms LIMIT +$2)",
            ],
            Prunable::OutboxDelivered => &[
                "UPDATE document_recipients SET state = 'delivered', detail = NULL, \
                 updated_at_ms = (SELECT o.delivered_at_ms FROM outbox o WHERE o.idempotency_key = document_recipients.outbox_key), \
                 outbox_key = NULL \
                 WHERE outbox_key IN (SELECT idempotency_key FROM outbox WHERE delivered_at_ms < $1 ORDER BY delivered_at_ms, id LIMIT +$2)",
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE delivered_at_ms < $1 ORDER BY delivered_at_ms, id LIMIT +$2)",
            ],
            Prunable::Sessions => &[
                "DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions WHERE expires_at_ms < $1 ORDER BY expires_at_ms LIMIT +$2)",
            ],
            Prunable::AccessTokens => &[
                "DELETE FROM access_tokens WHERE token_hash IN (SELECT token_hash FROM access_tokens WHERE expires_at_ms < $1 ORDER BY expires_at_ms LIMIT +$2)",
            ],
            Prunable::Invitations => &[
                "DELETE FROM invitations WHERE token_hash IN (SELECT token_hash FROM invitations WHERE expires_at_ms < $1 ORDER BY expires_at_ms LIMIT +$2)",
            ],
            Prunable::SignIns => &[
                "DELETE FROM oidc_logins WHERE state_hash IN (SELECT state_hash FROM oidc_logins WHERE expires_at_ms < $1 LIMIT +$2)",
                "DELETE FROM oidc_sessions WHERE session_hash IN (SELECT session_hash FROM oidc_sessions WHERE expires_at_ms < $1 LIMIT +$2)",
                "DELETE FROM client_assertions WHERE (client_pk, jti) IN (SELECT client_pk, jti FROM client_assertions WHERE expires_at_ms < $1 LIMIT +$2)",
            ],
            Prunable::AuditViews => &[
                "DELETE FROM audit_views WHERE (session_hash, patient_id) IN (SELECT session_hash, patient_id FROM audit_views WHERE at_ms < $1 ORDER BY at_ms LIMIT +$2)",
            ],
        }
    }
}

/// How big the database is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseSize {
    /// Bytes the database takes on disk (SQLite: the main file; PostgreSQL:
    /// `pg_database_size`).
    pub bytes: i64,
    /// Bytes free for reuse inside it (SQLite's free pages; 0 on PostgreSQL).
    pub free_bytes: i64,
}

/// What a checkpoint of SQLite's write-ahead log did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalCheckpoint {
    /// Pages the log holds (since it last started over).
    pub log_pages: i64,
    /// Of those, the pages now in the database file.
    pub copied_pages: i64,
}

impl Store {
    /// Removes one batch of `kind` older than `before_ms`, at most `limit`
    /// rows (each statement); returns how many rows left.
    pub async fn prune_batch(&self, kind: Prunable, before_ms: i64, limit: i64) -> Result<u64> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut n = 0u64;
            for sql in kind.statements() {
                let removed = q(sql)
                    .bind(before_ms)
                    .bind(limit)
                    .execute(&mut tx.as_tx())
                    .await?;
                // The recipients' update keeps state; only deletions count.
                if sql.starts_with("DELETE") {
                    n += removed;
                }
            }
            tx.commit().await?;
            Ok(n)
        })
    }

    /// Makes the space of removed rows usable again: SQLite gives at most
    /// `pages` free pages back to the file system (incremental vacuum);
    /// PostgreSQL runs an ordinary `VACUUM` of the tables `pruned` (and the
    /// audit trail's when `audit` entries left) — it takes no lock that
    /// stops reads or writes, and the next rows reuse the space rather than
    /// grow the files (autovacuum would, later). Returns the size after.
    pub async fn reclaim_space(
        &self,
        pages: i64,
        pruned: &[Prunable],
        audit: bool,
    ) -> Result<DatabaseSize> {
        match &self.backend {
            Backend::Sqlite { write, .. } => {
                let sql = format!("PRAGMA incremental_vacuum({})", pages.max(1));
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(write).await?;
            }
            Backend::Postgres { write: pool, .. } => {
                let mut tables: Vec<&str> =
                    pruned.iter().flat_map(|k| k.tables()).copied().collect();
                if audit {
                    tables.push("audit_log");
                }
                tables.sort_unstable();
                tables.dedup();
                if !tables.is_empty() {
                    // Table names from the list above, never from input.
                    let sql = format!("VACUUM (ANALYZE) {}", tables.join(", "));
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(pool)
                        .await?;
                }
            }
        }
        self.database_size().await
    }

    /// Connections open in the pools and idle ones (the writers' and the
    /// readers' together, and SQLite's checkpointer).
    pub fn pool_stats(&self) -> (u32, usize) {
        match &self.backend {
            Backend::Sqlite { write, read, wal } => (
                write.size() + read.size() + wal.size(),
                write.num_idle() + read.num_idle() + wal.num_idle(),
            ),
            Backend::Postgres {
                write,
                read,
                search,
            } => (
                write.size() + read.size() + search.size(),
                write.num_idle() + read.num_idle() + search.num_idle(),
            ),
        }
    }

    /// SQLite: copies the write-ahead log's committed pages into the
    /// database file without waiting for anyone (`PRAGMA
    /// wal_checkpoint(PASSIVE)`: pages a reader still needs stay for the next
    /// time), on a connection of its own, so that the writer's commits do
    /// not (each node's server calls it several times a second). Once the
    /// file holds the whole log, the writer starts the log over at its next
    /// commit. PostgreSQL: `None` (its own checkpointer does this).
    pub async fn checkpoint_wal(&self) -> Result<Option<WalCheckpoint>> {
        use sqlx::Row;
        let Backend::Sqlite { wal, .. } = &self.backend else {
            return Ok(None);
        };
        let r = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(wal)
            .await?;
        Ok(Some(WalCheckpoint {
            log_pages: r.try_get(1)?,
            copied_pages: r.try_get(2)?,
        }))
    }

    /// The database's size.
    pub async fn database_size(&self) -> Result<DatabaseSize> {
        use sqlx::Row;
        match &self.backend {
            Backend::Sqlite { read, .. } => {
                let page: i64 = sqlx::query("PRAGMA page_size")
                    .fetch_one(read)
                    .await?
                    .try_get(0)?;
                let count: i64 = sqlx::query("PRAGMA page_count")
                    .fetch_one(read)
                    .await?
                    .try_get(0)?;
                let free: i64 = sqlx::query("PRAGMA freelist_count")
                    .fetch_one(read)
                    .await?
                    .try_get(0)?;
                Ok(DatabaseSize {
                    bytes: page * count,
                    free_bytes: page * free,
                })
            }
            Backend::Postgres { read: pool, .. } => {
                let bytes: i64 = sqlx::query("SELECT pg_database_size(current_database())")
                    .fetch_one(pool)
                    .await?
                    .try_get(0)?;
                Ok(DatabaseSize {
                    bytes,
                    free_bytes: 0,
                })
            }
        }
    }

    /// SQLite only: makes a file made before incremental vacuum give its free
    /// pages back on demand (`auto_vacuum = INCREMENTAL`; a new file has it
    /// from `connect`). The setting takes effect through a full `VACUUM`,
    /// done here once (it rewrites the file: seconds for a small database,
    /// longer for a large one, which is why it is logged by the caller).
    /// Returns whether the file was rewritten.
    pub async fn enable_incremental_vacuum(&self) -> Result<bool> {
        use sqlx::Row;
        let Backend::Sqlite { write, .. } = &self.backend else {
            return Ok(false);
        };
        let mode: i64 = sqlx::query("PRAGMA auto_vacuum")
            .fetch_one(write)
            .await?
            .try_get(0)?;
        if mode == 2 {
            return Ok(false);
        }
        sqlx::query("PRAGMA auto_vacuum = INCREMENTAL")
            .execute(write)
            .await?;
        sqlx::query("VACUUM").execute(write).await?;
        Ok(true)
    }

    /// SQLite only: writes a consistent snapshot of the database to `file`
    /// (which must not exist) while the database keeps serving: `VACUUM INTO`
    /// on a reading connection, a snapshot of the last commit. PostgreSQL:
    /// `StoreError::Refused` (use `pg_dump`, which the binary calls).
    pub async fn backup_to(&self, file: &Path) -> Result<()> {
        let Backend::Sqlite { read, .. } = &self.backend else {
            return Err(StoreError::Refused(
                "sauvegarde PostgreSQL : pg_dump".into(),
            ));
        };
        if file.exists() {
            return Err(StoreError::Refused(format!(
                "{} existe déjà : la sauvegarde n'écrase pas un fichier",
                file.display()
            )));
        }
        let path = file
            .to_str()
            .ok_or_else(|| StoreError::Refused("chemin de sauvegarde non UTF-8".into()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(read)
            .await?;
        Ok(())
    }

    /// Whether the database holds no table yet (a restore goes only into an
    /// empty database).
    pub async fn is_empty(&self) -> Result<bool> {
        use sqlx::Row;
        let sql = match self.engine() {
            Engine::Sqlite => "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            Engine::Postgres => {
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
            }
        };
        let n: i64 = on_pool!(self, read, |pool| sqlx::query(sql)
            .fetch_one(pool)
            .await?
            .try_get(0)?);
        Ok(n == 0)
    }

    /// SQLite: `PRAGMA integrity_check` answers `ok`.
    pub async fn integrity_ok(&self) -> Result<bool> {
        use sqlx::Row;
        let Backend::Sqlite { read, .. } = &self.backend else {
            return Ok(true);
        };
        let r: String = sqlx::query("PRAGMA integrity_check")
            .fetch_one(read)
            .await?
            .try_get(0)?;
        Ok(r == "ok")
    }
}
