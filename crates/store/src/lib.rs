//! Parcours persistence: one [`Store`] over an embedded SQLite file or PostgreSQL,
//! chosen by the URL scheme. Most SQL text is shared (SQLite accepts `$1`
//! placeholders); each backend has its own migrations. The store writes the audit
//! trail: every write of patient data appends its audit entry in the same
//! transaction, so a change and its trace commit or fail together.
//!
//! Not here: authorisation (the domain's policy module decides before the store is
//! called), HTTP, clocks (callers pass the time in Unix milliseconds).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

#[macro_use]
mod macros;
pub mod accounts;
pub mod audit;
pub mod beds;
pub mod billing;
pub mod bundle;
pub mod care_team;
pub mod cluster;
pub mod consultations;
pub mod demographics;
pub mod documents;
pub mod encounters;
mod group;
pub mod guests;
pub mod hl7;
pub mod incoming;
pub mod migrate;
pub mod monitoring;
pub mod notices;
pub mod orgs;
pub mod orientation;
pub mod outbox;
pub mod patients;
pub mod retention;
pub mod schedule;
pub mod secrets;
pub mod sso;
pub mod subscriptions;
pub mod testing;
mod tx;
pub mod users;

/// Errors of the store, mapped by the server to HTTP statuses and by the HL7
/// engine to AE/AR acknowledgements.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write conflicts with stored data (a duplicate, an unknown or
    /// merged record the change needs): typed, so that HTTP statuses and HL7
    /// error codes come from a `match`.
    #[error("conflit: {0}")]
    Conflict(Conflict),
    /// Refused by a rule checked in the transaction (nothing was written);
    /// the reason is safe to show.
    #[error("{0}")]
    Refused(String),
    /// Refused by a domain rule (nothing was written).
    #[error(transparent)]
    Rule(#[from] domain::DomainError),
    /// The row does not exist.
    #[error("introuvable")]
    NotFound,
    /// The row changed since it was read (optimistic locking).
    #[error("la ressource a été modifiée entre-temps (version {current})")]
    Stale {
        /// The current version.
        current: i64,
    },
    /// A value read from storage is not valid (corruption or manual edit).
    #[error("donnée invalide en base: {0}")]
    Corrupt(String),
    /// A database or connection error.
    #[error("erreur de base de données: {0}")]
    Db(#[source] sqlx::Error),
    /// A migration failed.
    #[error("migration {version} échouée: {source}")]
    Migration {
        /// The migration that failed.
        version: i64,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// The database URL is not understood.
    #[error("URL de base de données non reconnue (sqlite:// ou postgres://): {0}")]
    BadUrl(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                // PostgreSQL names the constraint; SQLite names the columns in its message.
                StoreError::Conflict(Conflict::from_unique(
                    d.constraint().unwrap_or_else(|| d.message()),
                ))
            }
            _ => StoreError::Db(e),
        }
    }
}

/// What a write conflicts with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// An active identity of the domain already carries this INS.
    #[error("patients_active_ins")]
    DuplicateIns,
    /// The IPP is already given in the domain.
    #[error("patients_ipp")]
    DuplicateIpp,
    /// (sender, control id) is logged already: a repeated HL7 message.
    #[error("hl7_messages_dedup")]
    DuplicateMessage,
    /// The login name exists.
    #[error("users_username")]
    DuplicateUsername,
    /// The ZBE-1 movement id is used in the visit already.
    #[error("movements_movement_id")]
    DuplicateMovement,
    /// Another uniqueness rule, as the database names it.
    #[error("{0}")]
    Duplicate(String),
    /// No record carries this IPP in the domain.
    #[error("IPP {0} inconnu")]
    UnknownIpp(String),
    /// The record with this IPP was merged into another.
    #[error("le dossier IPP {0} a été fusionné")]
    MergedIpp(String),
    /// No stay has this visit number (nothing to cancel).
    #[error("venue {0} inconnue: rien à annuler")]
    UnknownVisit(String),
    /// The movement to cancel is not in the visit.
    #[error("mouvement à annuler introuvable dans la venue {0}")]
    UnknownMovement(String),
    /// The visit belongs to another patient.
    #[error("la venue {0} appartient à un autre patient")]
    VisitOfAnotherPatient(String),
    /// One of the records is merged already.
    #[error("un des dossiers est déjà fusionné")]
    AlreadyMerged,
    /// A merged record cannot be edited.
    #[error("dossier fusionné")]
    Merged,
    /// A record merged with itself.
    #[error("un dossier ne peut pas être fusionné avec lui-même")]
    SelfMerge,
    /// Records of two identity domains.
    #[error("les dossiers appartiennent à deux domaines d'identification")]
    OtherDomains,
}

impl Conflict {
    /// Names the rule a unique violation broke, from the constraint
    /// (PostgreSQL) or the columns (SQLite) the database reports: the one
    /// place that reads those names.
    pub fn from_unique(name: &str) -> Conflict {
        if name.contains("hl7_messages") {
            Conflict::DuplicateMessage
        } else if name.contains("patients_active_ins") || name.contains("ins_value") {
            Conflict::DuplicateIns
        } else if name.contains("ipp") {
            Conflict::DuplicateIpp
        } else if name.contains("movements") || name.contains("movement_id") {
            Conflict::DuplicateMovement
        } else if name.contains("username") {
            Conflict::DuplicateUsername
        } else {
            Conflict::Duplicate(name.to_owned())
        }
    }

    /// Whether the record the change names does not exist (HL7 204).
    pub fn is_unknown_key(&self) -> bool {
        matches!(
            self,
            Conflict::UnknownIpp(_) | Conflict::UnknownVisit(_) | Conflict::UnknownMovement(_)
        )
    }
}

/// Shorthand.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// PostgreSQL connections per node for writes, for reads and for patient
/// searches ([`Backend::Postgres`]): 22 in all, so that three nodes stay
/// within the server's default 100. The searches' four were the readers'
/// until they had a pool of their own.
const PG_WRITERS: u32 = 10;
const PG_READERS: u32 = 8;
const PG_SEARCHERS: u32 = 4;
// No more connections than before the search pool: the three nodes of a
// cluster on one PostgreSQL (scripts/cluster) stay well under its default 100.
const _: () = assert!(PG_WRITERS + PG_READERS + PG_SEARCHERS <= 22);
/// How long a PostgreSQL connection (and the plans it keeps) lives.
const PG_CONNECTION_LIFETIME: Duration = Duration::from_secs(10);
/// How many pages SQLite's write-ahead log may hold before the writer
/// checkpoints it itself, in its commit: the fallback when no server runs
/// [`Store::checkpoint_wal`] (a command of the binary, a test). SQLite's
/// default, 1,000, had the writer copy the log into the file every
/// twenty-odd commits of the HL7 feed (a tenth of its time).
pub const WAL_AUTOCHECKPOINT_PAGES: i64 = 16_384;
/// The size a write-ahead log is cut back to when it starts over (bytes).
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Which engine, with its pools.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// SQLite: one writer connection (SQLite has one writer at a time anyway, and a
    /// single writer avoids SQLITE_BUSY on read-then-write transactions), a few
    /// readers (WAL lets them read while the writer writes), and a connection
    /// of its own, opened on first use, that copies the write-ahead log into
    /// the file beside the writer ([`Store::checkpoint_wal`]).
    Sqlite {
        write: SqlitePool,
        read: SqlitePool,
        wal: SqlitePool,
    },
    /// PostgreSQL: a pool for writes, a read-only one for reads, and a
    /// read-only one for patient searches whose statements always take
    /// their generic plan; every connection lives ten seconds with the
    /// plans it keeps ([`Store::connect`] says why).
    Postgres {
        write: PgPool,
        read: PgPool,
        search: PgPool,
    },
}

/// The store: cheap to clone (pools inside).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) backend: Backend,
    /// The key ring that seals secrets at rest (shared by every clone; set
    /// once the server has read its key file).
    pub(crate) keys: std::sync::Arc<std::sync::RwLock<Option<std::sync::Arc<secrets::KeyRing>>>>,
    /// The audit entries on their way to the next group commit.
    pub(crate) audit_queue: std::sync::Arc<audit::AuditQueue>,
    /// The transactions of writes (`apply_writes`) on their way to the next
    /// group commit.
    pub(crate) write_queue: std::sync::Arc<bundle::WriteQueue>,
    /// The territories read so far (see `Store::territory`).
    pub(crate) territories: std::sync::Arc<orgs::TerritoryCache>,
    /// The bearer tokens found valid lately (see
    /// `Store::client_and_scopes_for_token`).
    pub(crate) tokens: std::sync::Arc<users::TokenCache>,
    /// HL7 intake groups taken again one message at a time (see
    /// `Store::apply_feeds`).
    pub(crate) intake_taken_again: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Store {
    /// Connects to `url` (`sqlite://PATH` or `postgres://...`), creating the SQLite
    /// file if missing. Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts =
                PgConnectOptions::from_str(url).map_err(|_| StoreError::BadUrl(redact_url(url)))?;
            let pool = |max: u32| {
                PgPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(Duration::from_secs(10))
                    // No ping before each use (a round trip per transaction, a
                    // quarter of a small group commit's): a connection the server
                    // dropped fails its statement, which fails the request, and
                    // the pool replaces it.
                    .test_before_acquire(false)
            };
            // PostgreSQL's own choice of plan (`auto`) on both pools: a
            // generic plan once it costs no more than the custom ones, which
            // spares planning a statement at every run (planning was half of
            // PostgreSQL's time on FHIR reads, 1,650 → 2,650 reads/s, and a
            // fifth of an HL7 group's: its inserts as one statement with
            // seven parts, and each foreign key's check, were planned at
            // each run when the writers forced custom plans). A generic plan
            // is made for the table as it was: made on an empty
            // `patient_addresses`, the demographics read scanned the whole
            // table while FHIR creates filled it (7,600 scans, 40 million
            // rows read in a few minutes of benchmark). So a connection, and
            // the plans it holds, lives ten seconds: the next one plans for
            // the tables as they are then (an analyze, with autovacuum on,
            // also drops them). And a lookup whose best index depends on its
            // values is planned at each run whatever the mode
            // (`Q::planned_each_time`: the lookups by IPP, whose generic plan
            // once read every patient of the territory).
            let write = pool(PG_WRITERS)
                .max_lifetime(PG_CONNECTION_LIFETIME)
                .connect_with(opts.clone())
                .await?;
            // The readers are read-only, as SQLite's are: a write sent there
            // by mistake fails.
            let read_only = opts.options([("default_transaction_read_only", "on")]);
            let read = pool(PG_READERS)
                .max_lifetime(PG_CONNECTION_LIFETIME)
                .connect_with(read_only.clone())
                .await?;
            // A patient search's page and count (`patients.rs`) are prepared
            // like any statement, but `auto` never settled on their generic
            // plan: PostgreSQL finds a range of unknown bounds dearer than
            // the custom plans, and so planned the page again at every run
            // (a sixth of its time on the FHIR search mix, 222 µs a page).
            // Their statements are built for the criteria given (no `$n IS
            // NULL OR …`), so the generic plan reads the same index ranges;
            // the mix made 8 to 15 % more with it (benches/README.md, "What
            // PostgreSQL spends on the search mix, and a pool for
            // searches"). Only those statements go through this pool: the
            // readers' other statements keep `auto` (some are planned at
            // each run on purpose, some read skewed columns).
            let search = pool(PG_SEARCHERS)
                .max_lifetime(PG_CONNECTION_LIFETIME)
                .connect_with(read_only.options([("plan_cache_mode", "force_generic_plan")]))
                .await?;
            return Ok(Store {
                backend: Backend::Postgres {
                    write,
                    read,
                    search,
                },
                keys: Default::default(),
                audit_queue: Default::default(),
                write_queue: Default::default(),
                territories: Default::default(),
                tokens: Default::default(),
                intake_taken_again: Default::default(),
            });
        }
        if !url.starts_with("sqlite:") {
            return Err(StoreError::BadUrl(redact_url(url)));
        }
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|_| StoreError::BadUrl(redact_url(url)))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL keeps every commit across a process crash (SIGKILL);
            // only a power loss can lose the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // The writer opens (and creates) the file first. A new file gives the
        // space of pruned rows back on demand (`reclaim_space`), a setting
        // that must precede WAL, which writes the header. An existing file is
        // not touched here: setting it there would be a write, which another
        // process's open transaction (a server, while `parcours backup` runs)
        // would find in its way; `migrate` converts an older file once.
        let new_file = !opts.get_filename().exists();
        let write_opts = if new_file {
            opts.clone().auto_vacuum(SqliteAutoVacuum::Incremental)
        } else {
            opts.clone()
        };
        // The writer leaves checkpoints to the `wal` connection (see
        // `WAL_AUTOCHECKPOINT_PAGES`), and cuts the log back when it starts
        // it over. It keeps its statement journals in memory: inside a
        // group's transaction, SQLite copies each page a multi-row insert
        // changes first into that journal (to undo the one statement if a
        // constraint fails), and past 64 KiB the journal went to a temporary
        // file, two writes a page (a fifth of the writer's samples under
        // MLLP intake). No connection is pinged before use: they are
        // in-process, and a ping is one more hand-over to the connection's
        // thread.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(
                write_opts
                    .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
                    .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string())
                    .pragma("temp_store", "memory"),
            )
            .await?;
        let wal = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_lazy_with(opts.clone());
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(opts.read_only(true))
            .await?;
        Ok(Store {
            backend: Backend::Sqlite { write, read, wal },
            keys: Default::default(),
            audit_queue: Default::default(),
            write_queue: Default::default(),
            territories: Default::default(),
            tokens: Default::default(),
            intake_taken_again: Default::default(),
        })
    }

    /// Seals secrets at rest with `ring` from now on (for every clone).
    pub fn set_key_ring(&self, ring: secrets::KeyRing) {
        if let Ok(mut k) = self.keys.write() {
            *k = Some(std::sync::Arc::new(ring));
        }
    }

    pub(crate) fn key_ring(&self) -> Option<std::sync::Arc<secrets::KeyRing>> {
        self.keys.read().ok().and_then(|k| k.clone())
    }

    /// The engine in use.
    pub fn engine(&self) -> Engine {
        match self.backend {
            Backend::Sqlite { .. } => Engine::Sqlite,
            Backend::Postgres { .. } => Engine::Postgres,
        }
    }

    /// Answers when the database can be queried (for `/healthz`).
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, read, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        })
    }

    /// Closes the pools (waits for connections to return).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { write, read, wal } => {
                wal.close().await;
                read.close().await;
                write.close().await;
            }
            Backend::Postgres {
                write,
                read,
                search,
            } => {
                search.close().await;
                read.close().await;
                write.close().await;
            }
        }
    }
}

/// Removes a password from a database URL before it reaches a log or an error.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let creds = url.get(s + 3..at).unwrap_or("");
            let user = creds.split(':').next().unwrap_or("");
            format!(
                "{}{}:***{}",
                url.get(..s + 3).unwrap_or(""),
                user,
                url.get(at..).unwrap_or("")
            )
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Backend, Store, redact_url};
    use crate::tx::AsTx;
    use sqlx::Row;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }

    /// SQLite is built as `.cargo/config.toml` asks (`LIBSQLITE3_FLAGS`):
    /// without the count of memory in use, which every allocation of every
    /// connection updated under one global mutex, and with a page cache per
    /// connection instead of one LRU list shared behind a mutex.
    #[tokio::test]
    async fn sqlite_is_built_without_its_global_memory_mutexes() {
        let store = Store::connect(&crate::testing::fresh_sqlite_url())
            .await
            .unwrap();
        let Backend::Sqlite { read, .. } = &store.backend else {
            panic!("a SQLite URL opens SQLite");
        };
        let options: Vec<String> = sqlx::query("PRAGMA compile_options")
            .fetch_all(read)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
        // The rest of libsqlite3-sys's options stay: STAT4 plans by values.
        assert!(options.iter().any(|o| o == "ENABLE_STAT4"), "{options:?}");
    }

    /// A setting as a PostgreSQL pool's connections have it.
    async fn setting(pool: &sqlx::PgPool, name: &str) -> String {
        sqlx::query(sqlx::AssertSqlSafe(format!("SHOW {name}")))
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test]
    async fn reads_go_to_read_only_connections_and_writes_to_the_writers() {
        for (engine, store) in crate::testing::both_backends(0).await.unwrap() {
            let through_readers = on_pool!(store, read, |pool| {
                sqlx::raw_sql("CREATE TABLE probe_pools (a INTEGER)")
                    .execute(pool)
                    .await
                    .map(|_| ())
            });
            let refused = through_readers.expect_err(engine).to_string();
            assert!(
                refused.contains("read-only") || refused.contains("readonly"),
                "{engine}: {refused}"
            );
            on_pool!(store, write, |pool| {
                sqlx::raw_sql("CREATE TABLE probe_pools (a INTEGER)")
                    .execute(pool)
                    .await
                    .expect(engine);
            });
            let n: i64 = on_pool!(store, read, |pool| {
                sqlx::query("SELECT COUNT(*) FROM probe_pools")
                    .fetch_one(pool)
                    .await
                    .expect(engine)
                    .get(0)
            });
            assert_eq!(n, 0, "{engine}: the readers see what the writers made");
        }
    }

    #[tokio::test]
    async fn sqlite_writer_keeps_its_statement_journal_in_memory_and_undoes_one_statement() {
        let store = Store::connect(&crate::testing::fresh_sqlite_url())
            .await
            .unwrap();
        let Backend::Sqlite { write, read, .. } = &store.backend else {
            panic!("a SQLite URL opens SQLite");
        };
        let temp_store = |pool: &sqlx::SqlitePool| {
            let pool = pool.clone();
            async move {
                sqlx::query("PRAGMA temp_store")
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                    .get::<i64, _>(0)
            }
        };
        // 2: MEMORY. The readers write nothing and keep the default (0).
        assert_eq!(temp_store(write).await, 2);
        assert_eq!(temp_store(read).await, 0);
        // A statement journal past its 64 KiB in memory still undoes its one
        // statement: 300 rows of 1 KiB, the last one refused.
        let mut tx = write.begin().await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE probe_journal (k INTEGER PRIMARY KEY, v BLOB); \
             INSERT INTO probe_journal VALUES (0, zeroblob(1000))",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        let refused = sqlx::raw_sql(
            "WITH RECURSIVE n(i) AS (SELECT 300 UNION ALL SELECT i - 1 FROM n WHERE i > 0) \
             INSERT INTO probe_journal SELECT i, zeroblob(1000) FROM n",
        )
        .execute(&mut *tx)
        .await
        .expect_err("the last row repeats key 0");
        assert!(refused.to_string().contains("UNIQUE"), "{refused}");
        tx.commit().await.unwrap();
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM probe_journal")
            .fetch_one(write)
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            n, 1,
            "the refused statement's 300 rows undone, the first kept"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn sqlite_copies_its_log_into_the_file_beside_the_writer() {
        for (engine, store) in crate::testing::both_backends(0).await.unwrap() {
            let Backend::Sqlite { write, wal, .. } = &store.backend else {
                assert_eq!(store.checkpoint_wal().await.expect(engine), None);
                continue;
            };
            let threshold: i64 = sqlx::query("PRAGMA wal_autocheckpoint")
                .fetch_one(write)
                .await
                .unwrap()
                .get(0);
            assert_eq!(threshold, super::WAL_AUTOCHECKPOINT_PAGES);
            assert_eq!(wal.size(), 0, "the checkpointer opens on first use");
            sqlx::raw_sql(
                "CREATE TABLE probe_wal (a BLOB); \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
                 INSERT INTO probe_wal SELECT zeroblob(3000) FROM n",
            )
            .execute(write)
            .await
            .unwrap();
            let first = store.checkpoint_wal().await.unwrap().unwrap();
            assert!(first.log_pages >= 200, "{first:?}");
            assert_eq!(
                first.copied_pages, first.log_pages,
                "no reader holds a page back"
            );
            assert_eq!(wal.size(), 1);
            // All of it in the file, the writer starts the log over: the
            // next commit's pages are the log's only ones.
            sqlx::query("INSERT INTO probe_wal VALUES (zeroblob(10))")
                .execute(write)
                .await
                .unwrap();
            let next = store.checkpoint_wal().await.unwrap().unwrap();
            assert!(
                next.log_pages > 0 && next.log_pages < 10,
                "{next:?} after {first:?}"
            );
            assert_eq!(next.copied_pages, next.log_pages);
            let n: i64 = on_pool!(store, read, |pool| sqlx::query(
                "SELECT COUNT(*) FROM probe_wal"
            )
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0));
            assert_eq!(n, 201);
            store.close().await;
        }
    }

    #[tokio::test]
    async fn postgres_connections_keep_plans_ten_seconds_and_readers_are_read_only() {
        let url = crate::testing::fresh_postgres_url().await.unwrap();
        let store = Store::connect(&url).await.unwrap();
        let Backend::Postgres {
            write,
            read,
            search,
        } = &store.backend
        else {
            panic!("a PostgreSQL URL gives the PostgreSQL backend");
        };
        assert_eq!(setting(write, "plan_cache_mode").await, "auto");
        assert_eq!(setting(write, "default_transaction_read_only").await, "off");
        assert_eq!(setting(read, "plan_cache_mode").await, "auto");
        assert_eq!(setting(read, "default_transaction_read_only").await, "on");
        assert_eq!(
            setting(search, "plan_cache_mode").await,
            "force_generic_plan"
        );
        assert_eq!(setting(search, "default_transaction_read_only").await, "on");
        assert_eq!(write.options().get_max_connections(), super::PG_WRITERS);
        assert_eq!(read.options().get_max_connections(), super::PG_READERS);
        assert_eq!(search.options().get_max_connections(), super::PG_SEARCHERS);
        for pool in [write, read, search] {
            assert_eq!(
                pool.options().get_max_lifetime(),
                Some(super::PG_CONNECTION_LIFETIME)
            );
        }
        // A query planned at each run is not kept prepared on the
        // connection (PostgreSQL plans an unnamed statement for its values);
        // an ordinary one is, and may settle on a generic plan.
        let mut conn = write.acquire().await.unwrap();
        let kept = |sql: &'static str| {
            sqlx::query("SELECT COUNT(*) FROM pg_prepared_statements WHERE statement = $1")
                .bind(sql)
        };
        const EACH: &str = "SELECT 1 AS one WHERE $1::text = 'each'";
        const KEPT: &str = "SELECT 1 AS one WHERE $1::text = 'kept'";
        for _ in 0..6 {
            crate::tx::q(EACH)
                .planned_each_time()
                .bind("each")
                .fetch_one(&mut conn.as_tx())
                .await
                .unwrap();
            crate::tx::q(KEPT)
                .bind("kept")
                .fetch_one(&mut conn.as_tx())
                .await
                .unwrap();
        }
        let each: i64 = kept(EACH).fetch_one(&mut *conn).await.unwrap().get(0);
        let prepared: i64 = kept(KEPT).fetch_one(&mut *conn).await.unwrap().get(0);
        assert_eq!((each, prepared), (0, 1));
        drop(conn);
        store.close().await;
    }
}
