//! The audit trail in storage: appended in the same transaction as the change it
//! records (see [`append_audit`]), or on its own for reads and denials;
//! listed for admins and FHIR AuditEvent; verified end to end.

use domain::audit::{
    AuditActor, AuditEntry, ChainError, ChainVerifier, Checkpoint, CheckpointError, GENESIS,
};

use crate::tx::{AsTx, Tx, q};

use crate::macros::rows_to;
use crate::tx::WritePool as _;
use crate::{Result, Store};

/// An entry to append; sequence and hashes are assigned at append time.
#[derive(Debug, Clone)]
pub struct NewAudit {
    /// When (Unix ms).
    pub at_ms: i64,
    /// Who.
    pub actor: AuditActor,
    /// Which patient record, if any.
    pub patient: Option<String>,
    /// What (`read`, `create`...).
    pub action: String,
    /// The resource (`Patient/…`).
    pub resource: String,
    /// `success`, `denied`, `error`.
    pub outcome: String,
}

impl NewAudit {
    pub(crate) fn to_entry(&self, seq: i64) -> AuditEntry {
        AuditEntry {
            seq,
            at_ms: self.at_ms,
            actor_kind: self.actor.kind.to_owned(),
            actor_id: self.actor.id.clone(),
            role: self.actor.role.map(str::to_owned),
            establishment: self.actor.establishment.clone(),
            patient: self.patient.clone(),
            action: self.action.clone(),
            resource: self.resource.clone(),
            outcome: self.outcome.clone(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }
}

db_row! {
    struct AuditRow {
        seq: i64,
        at_ms: i64,
        actor_kind: String,
        actor_id: String,
        role: Option<String>,
        establishment_id: Option<String>,
        patient_id: Option<String>,
        action: String,
        resource: String,
        outcome: String,
        prev_hash: String,
        hash: String,
    }
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            seq: r.seq,
            at_ms: r.at_ms,
            actor_kind: r.actor_kind,
            actor_id: r.actor_id,
            role: r.role,
            establishment: r.establishment_id,
            patient: r.patient_id,
            action: r.action,
            resource: r.resource,
            outcome: r.outcome,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// Filters for listing the trail (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries made through a role held in this establishment.
    pub establishment: Option<String>,
    /// Only entries about this patient.
    pub patient: Option<String>,
    /// Only entries with a sequence number below this one (paging backwards).
    pub before_seq: Option<i64>,
    /// At most this many (capped at 500).
    pub limit: i64,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked.
    pub checked: i64,
    /// Checkpoints checked (each a cut of the oldest entries).
    pub checkpoints: i64,
    /// The last entry removed by a cut (0 when none was).
    pub cut_through: i64,
    /// The first break, if any.
    pub error: Option<VerifyError>,
}

/// A break found by `verify`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// In the kept entries.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// In the checkpoints.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

db_row! {
    struct CheckpointRow {
        seq: i64,
        from_seq: i64,
        through_seq: i64,
        through_hash: String,
        first_at_ms: i64,
        last_at_ms: i64,
        archive: String,
        archive_sha256: String,
        at_ms: i64,
        prev_hash: String,
        hash: String,
    }
}

impl From<CheckpointRow> for Checkpoint {
    fn from(r: CheckpointRow) -> Self {
        Checkpoint {
            seq: r.seq,
            from_seq: r.from_seq,
            through_seq: r.through_seq,
            through_hash: r.through_hash,
            first_at_ms: r.first_at_ms,
            last_at_ms: r.last_at_ms,
            archive: r.archive,
            archive_sha256: r.archive_sha256,
            at_ms: r.at_ms,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// A cut to record: entries `from_seq..=through_seq` exported to `archive`.
#[derive(Debug, Clone)]
pub struct NewCheckpoint {
    /// First entry removed.
    pub from_seq: i64,
    /// Last entry removed.
    pub through_seq: i64,
    /// The archive's file name.
    pub archive: String,
    /// Its SHA-256 (hex).
    pub archive_sha256: String,
    /// Now (Unix ms).
    pub at_ms: i64,
}

const CHECKPOINT_COLUMNS: &str = "seq, from_seq, through_seq, through_hash, first_at_ms, last_at_ms, archive, archive_sha256, at_ms, prev_hash, hash";

const COLUMNS: &str = "seq, at_ms, actor_kind, actor_id, role, establishment_id, patient_id, action, resource, outcome, prev_hash, hash";

/// The insert of audit entries up to `VALUES ` (rows of [`ENTRY_COLUMNS`]
/// values, bound by [`bind_entry`]).
const INSERT_ENTRIES: &str = "INSERT INTO audit_log (seq, at_ms, actor_kind, actor_id, role, establishment_id, patient_id, action, resource, outcome, prev_hash, hash) VALUES ";

/// The columns of [`INSERT_ENTRIES`].
const ENTRY_COLUMNS: usize = 12;

fn bind_entry(query: crate::tx::Q, e: &AuditEntry) -> crate::tx::Q {
    query
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
}

/// Appends one audit entry inside the open transaction. Serialised through
/// the single `audit_head` row (locked by the UPDATE until commit), so the
/// chain has no gaps or forks whatever the concurrency. Put it last in a
/// transaction to hold that lock as briefly as possible.
pub(crate) async fn append_audit(tx: &mut Tx<'_>, new: &NewAudit) -> Result<AuditEntry> {
    append_audits(tx, std::slice::from_ref(new))
        .await?
        .pop()
        .ok_or(crate::StoreError::NotFound)
}

/// Appends several audit entries inside the open transaction with one read
/// and one write of the head: the sequence numbers are reserved at once, the
/// hashes chained in memory.
pub(crate) async fn append_audits(
    tx: &mut Tx<'_>,
    entries: &[NewAudit],
) -> Result<Vec<AuditEntry>> {
    let mut writes = crate::tx::Writes::default();
    let sealed = audits_into(tx, &mut writes, entries).await?;
    writes.execute(tx).await?;
    Ok(sealed)
}

/// Reserves the entries' sequence numbers on the chain's head (which stays
/// locked until commit), seals them in memory, and adds their inserts and
/// the head's new hash to `writes`: they go with the transaction's other
/// writes (one statement on PostgreSQL, one script on SQLite), so that the
/// head is held for one round trip less. The caller executes `writes`
/// before it commits, and appends nothing else to the chain in between:
/// the head's new hash is written only then (a second append before would
/// chain its entries to the old hash, and on PostgreSQL one statement
/// updates the head's row once).
pub(crate) async fn audits_into(
    tx: &mut Tx<'_>,
    writes: &mut crate::tx::Writes,
    entries: &[NewAudit],
) -> Result<Vec<AuditEntry>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let n = entries.len() as i64;
    let head = q("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
        .bind(n)
        .fetch_one(tx)
        .await?;
    let last: i64 = head.get("seq")?;
    let mut prev: String = head.get("hash")?;
    let mut sealed = Vec::with_capacity(entries.len());
    for (i, new) in entries.iter().enumerate() {
        let mut e = new.to_entry(last - n + 1 + i as i64);
        e.seal(&prev);
        prev.clone_from(&e.hash);
        sealed.push(e);
    }
    writes.insert_many(INSERT_ENTRIES, "", ENTRY_COLUMNS, &sealed, bind_entry);
    writes.push(q("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(prev));
    Ok(sealed)
}

/// Audit entries of concurrent requests on their way to one transaction (a
/// group commit, shared by every clone of the store, `crate::group`): a read
/// of a record writes its entry before the record is shown, and at thousands
/// of reads a second one transaction (one fsync, one turn of the chain's head)
/// per read would be the limit. Each request's entries go in a row.
pub(crate) type AuditQueue = crate::group::GroupQueue<Waiting>;

#[derive(Debug)]
pub(crate) struct Waiting {
    entries: Vec<NewAudit>,
    reply: tokio::sync::oneshot::Sender<Result<Vec<AuditEntry>>>,
}

/// Most entries one group writes (the rest wait for the next).
const MAX_GROUP_ENTRIES: usize = 1024;

impl Store {
    /// Appends `entries` through the group commit; returns them sealed once
    /// committed.
    async fn append_grouped(&self, entries: Vec<NewAudit>) -> Result<Vec<AuditEntry>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.audit_queue
            .submit(
                Waiting { entries, reply },
                answer,
                crate::group::Gather::NEVER,
                take_group,
                |group| {
                    let store = self.clone();
                    async move { store.write_group(group).await }
                },
            )
            .await
            .unwrap_or_else(|| Err(crate::StoreError::Db(sqlx::Error::WorkerCrashed)))
    }

    /// Appends a group's entries in one transaction and answers each request;
    /// if it fails, each request's entries are tried again in a transaction of
    /// their own, so that one request's failure is not the others'.
    async fn write_group(&self, group: Vec<Waiting>) {
        let all: Vec<NewAudit> = group
            .iter()
            .flat_map(|w| w.entries.iter().cloned())
            .collect();
        match self.append_now(&all).await {
            Ok(mut sealed) => {
                for w in group.into_iter().rev() {
                    let mine = sealed.split_off(sealed.len() - w.entries.len());
                    let _ = w.reply.send(Ok(mine));
                }
            }
            Err(e) if group.len() == 1 => {
                if let Some(w) = group.into_iter().next() {
                    let _ = w.reply.send(Err(e));
                }
            }
            Err(_) => {
                for w in group {
                    let _ = w.reply.send(self.append_now(&w.entries).await);
                }
            }
        }
    }

    /// Appends `entries` in a transaction of their own.
    async fn append_now(&self, entries: &[NewAudit]) -> Result<Vec<AuditEntry>> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let sealed = crate::audit::append_audits(&mut tx.as_tx(), entries).await?;
            tx.commit().await?;
            Ok(sealed)
        })
    }
}

/// The first waiting requests, up to [`MAX_GROUP_ENTRIES`] entries (at least one request).
fn take_group(waiting: &mut Vec<Waiting>) -> Vec<Waiting> {
    let mut total = 0;
    let n = waiting
        .iter()
        .take_while(|w| {
            total += w.entries.len();
            total <= MAX_GROUP_ENTRIES
        })
        .count()
        .max(1)
        .min(waiting.len());
    waiting.drain(..n).collect()
}

impl Store {
    /// Appends one entry (reads, searches, denials, logins), committed before
    /// this returns; concurrent calls' entries share a transaction (see
    /// [`AuditQueue`]).
    pub async fn audit(&self, new: &NewAudit) -> Result<AuditEntry> {
        self.append_grouped(vec![new.clone()])
            .await?
            .pop()
            .ok_or(crate::StoreError::NotFound)
    }

    /// Appends several entries in a row of the chain (a search that returns
    /// many records), committed before this returns; returns how many.
    pub async fn audit_many(&self, entries: &[NewAudit]) -> Result<usize> {
        Ok(self.append_grouped(entries.to_vec()).await?.len())
    }

    /// Appends the entries (reads of patients' records shown on a live page)
    /// whose patient this session has not been audited viewing yet, in one
    /// transaction, the others not: a queue of a thousand alerts refreshed
    /// every few seconds costs one transaction, and its entries once per
    /// session and patient. Entries without a patient are all appended.
    /// Returns how many were appended. A reader first finds the patients
    /// this session has seen: a refresh that shows no one new does not take
    /// the writer at all (a transaction each, queued behind the one writer,
    /// was most of an alert queue's time under load); those it did not find
    /// go to the writer, whose `ON CONFLICT` stays the judge when two
    /// refreshes race.
    pub async fn audit_views_once(
        &self,
        session_hash: &str,
        entries: &[NewAudit],
    ) -> Result<usize> {
        let (mut of_patient, others): (Vec<&NewAudit>, Vec<&NewAudit>) =
            entries.iter().partition(|e| e.patient.is_some());
        // One entry per patient, the first.
        let mut seen = std::collections::HashSet::new();
        of_patient.retain(|e| seen.insert(e.patient.clone()));
        let others_count = others.len();
        if !others.is_empty() {
            self.audit_many(&others.into_iter().cloned().collect::<Vec<_>>())
                .await?;
        }
        let patients: Vec<&str> = of_patient
            .iter()
            .filter_map(|e| e.patient.as_deref())
            .collect();
        let known = self.viewed_by_session(session_hash, &patients).await?;
        of_patient.retain(|e| e.patient.as_ref().is_some_and(|p| !known.contains(p)));
        if of_patient.is_empty() {
            return Ok(others_count);
        }
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut first = Vec::new();
            for chunk in of_patient.chunks(crate::tx::MAX_ROWS_PER_INSERT) {
                // The rows inserted now are the patients this session had not
                // seen (RETURNING leaves out the ones DO NOTHING skipped).
                let sql = format!(
                    "INSERT INTO audit_views (session_hash, patient_id, at_ms) VALUES {} ON CONFLICT DO NOTHING RETURNING patient_id",
                    crate::tx::values_rows(3, chunk.len())
                );
                let query = chunk.iter().fold(crate::tx::q_built(sql), |q, e| {
                    q.bind(session_hash)
                        .bind(e.patient.as_deref())
                        .bind(e.at_ms)
                });
                let inserted: std::collections::HashSet<String> = query
                    .fetch_all(&mut tx.as_tx())
                    .await?
                    .iter()
                    .map(|r| r.get::<String>("patient_id"))
                    .collect::<std::result::Result<_, sqlx::Error>>()?;
                first.extend(
                    chunk
                        .iter()
                        .filter(|e| e.patient.as_ref().is_some_and(|p| inserted.contains(p)))
                        .map(|e| (*e).clone()),
                );
            }
            crate::audit::append_audits(&mut tx.as_tx(), &first).await?;
            tx.commit().await?;
            Ok(first.len() + others_count)
        })
    }

    /// Which of `patients` this session has been audited viewing
    /// ([`Store::audit_views_once`]), read on a reader.
    async fn viewed_by_session(
        &self,
        session_hash: &str,
        patients: &[&str],
    ) -> Result<std::collections::HashSet<String>> {
        let mut known = std::collections::HashSet::new();
        for chunk in patients.chunks(crate::tx::MAX_ROWS_PER_INSERT) {
            let sql = format!(
                "SELECT patient_id FROM audit_views WHERE patient_id IN ({}) AND session_hash = ${}",
                crate::tx::in_list(chunk.len()),
                chunk.len() + 1
            );
            let query = chunk
                .iter()
                .fold(crate::tx::q_built(sql), |q, p| q.bind(*p))
                .bind(session_hash);
            let rows = on_pool!(self, read, |pool| {
                let mut conn = pool.acquire().await?;
                query.fetch_all(&mut conn.as_tx()).await?
            });
            for r in rows {
                known.insert(r.get::<String>("patient_id")?);
            }
        }
        Ok(known)
    }

    /// Lists entries, newest first.
    pub async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log WHERE ($1 IS NULL OR establishment_id = $1) \
             AND ($2 IS NULL OR patient_id = $2) AND ($3 IS NULL OR seq < $3) ORDER BY seq DESC LIMIT +$4"
        );
        let limit = f.limit.clamp(1, 500);
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(&f.establishment)
                .bind(&f.patient)
                .bind(f.before_seq)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            Ok(rows_to::<_, AuditRow>(&rows)?
                .into_iter()
                .map(AuditEntry::from)
                .collect())
        })
    }

    /// Reads one entry.
    pub async fn get_audit(&self, seq: i64) -> Result<AuditEntry> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(seq)
                .fetch_all(pool)
                .await?;
            rows_to::<_, AuditRow>(&rows)?
                .into_iter()
                .next()
                .map(AuditEntry::from)
                .ok_or(crate::StoreError::NotFound)
        })
    }

    /// Entries after `after_seq`, in order, at most `limit` (an export).
    pub async fn audit_entries(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditEntry>> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT +$2");
        let rows: Vec<AuditRow> = on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(after_seq)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows_to(&rows)?
        });
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }

    /// The checkpoints, in order.
    pub async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq");
        let rows: Vec<CheckpointRow> = on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .fetch_all(pool)
                .await?;
            rows_to(&rows)?
        });
        Ok(rows.into_iter().map(Checkpoint::from).collect())
    }

    /// The entries the next cut may remove: from the first entry after the
    /// last cut through the last one made before `before_ms` (and before any
    /// newer one), at most `max` of them; `None` when there is none.
    pub async fn audit_cut_range(&self, before_ms: i64, max: i64) -> Result<Option<(i64, i64)>> {
        let from = self
            .audit_checkpoints()
            .await?
            .last()
            .map_or(1, |c| c.through_seq + 1);
        let (first_new, head): (Option<i64>, i64) = on_pool!(self, read, |pool| {
            use sqlx::Row;
            let r = sqlx::query(
                "SELECT (SELECT MIN(seq) FROM audit_log WHERE seq >= $1 AND at_ms >= $2) AS first_new, \
                 (SELECT seq FROM audit_head WHERE id = 1) AS head",
            )
            .bind(from)
            .bind(before_ms)
            .fetch_one(pool)
            .await?;
            (r.try_get("first_new")?, r.try_get("head")?)
        });
        let through = first_new.map_or(head, |n| n - 1).min(from + max.max(1) - 1);
        Ok((through >= from).then_some((from, through)))
    }

    /// Records a cut: checks that it follows the last one and that the
    /// entries it names are there (their first and last times and the last
    /// hash are read from them), then writes the checkpoint, chained. The
    /// entries leave afterwards, in batches ([`Store::remove_cut_audit`]).
    pub async fn add_audit_checkpoint(&self, new: &NewCheckpoint) -> Result<Checkpoint> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let last =
                q("SELECT seq, through_seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut tx.as_tx())
                    .await?;
            let (last_through, prev_hash, seq) = match last {
                Some(r) => (
                    r.get::<i64>("through_seq")?,
                    r.get::<String>("hash")?,
                    r.get::<i64>("seq")? + 1,
                ),
                None => (0, GENESIS.to_owned(), 1),
            };
            if new.from_seq != last_through + 1 || new.through_seq < new.from_seq {
                return Err(crate::StoreError::Refused(format!(
                    "coupe {}..{} : la précédente s'arrête à {last_through}",
                    new.from_seq, new.through_seq
                )));
            }
            let first = q("SELECT at_ms FROM audit_log WHERE seq = $1")
                .bind(new.from_seq)
                .fetch_optional(&mut tx.as_tx())
                .await?;
            let last = q("SELECT at_ms, hash FROM audit_log WHERE seq = $1")
                .bind(new.through_seq)
                .fetch_optional(&mut tx.as_tx())
                .await?;
            let (Some(first), Some(last)) = (first, last) else {
                return Err(crate::StoreError::NotFound);
            };
            let mut cp = Checkpoint {
                seq,
                from_seq: new.from_seq,
                through_seq: new.through_seq,
                through_hash: last.get("hash")?,
                first_at_ms: first.get("at_ms")?,
                last_at_ms: last.get("at_ms")?,
                archive: new.archive.clone(),
                archive_sha256: new.archive_sha256.clone(),
                at_ms: new.at_ms,
                prev_hash: String::new(),
                hash: String::new(),
            };
            cp.seal(&prev_hash);
            q("INSERT INTO audit_checkpoints (seq, from_seq, through_seq, through_hash, first_at_ms, last_at_ms, archive, archive_sha256, at_ms, prev_hash, hash) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
                .bind(cp.seq)
                .bind(cp.from_seq)
                .bind(cp.through_seq)
                .bind(&cp.through_hash)
                .bind(cp.first_at_ms)
                .bind(cp.last_at_ms)
                .bind(&cp.archive)
                .bind(&cp.archive_sha256)
                .bind(cp.at_ms)
                .bind(&cp.prev_hash)
                .bind(&cp.hash)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(cp)
        })
    }

    /// Removes at most `limit` entries a checkpoint covers (the database
    /// refuses to remove any other); returns how many left.
    pub async fn remove_cut_audit(&self, limit: i64) -> Result<u64> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q("DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log \
                       WHERE seq <= (SELECT COALESCE(MAX(through_seq), 0) FROM audit_checkpoints) ORDER BY seq LIMIT +$1)")
                .bind(limit)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(n)
        })
    }

    /// Checks the checkpoints, then recomputes the kept chain from the last
    /// cut, in pages, and checks it against the head. Entries a cut covers
    /// but not yet removed are skipped.
    pub async fn verify_audit(&self) -> Result<VerifyReport> {
        const PAGE: i64 = 5_000;
        let cps = self.audit_checkpoints().await?;
        let mut report = VerifyReport {
            checked: 0,
            checkpoints: cps.len() as i64,
            cut_through: 0,
            error: None,
        };
        let (through, through_hash) = match domain::audit::verify_checkpoints(&cps) {
            Ok(t) => t,
            Err(e) => {
                report.error = Some(e.into());
                return Ok(report);
            }
        };
        report.cut_through = through;
        let mut verifier = ChainVerifier::after(through, &through_hash);
        let mut after = through;
        loop {
            let page = self.audit_entries(after, PAGE).await?;
            let n = page.len();
            for entry in page {
                after = entry.seq;
                if let Err(e) = verifier.push(&entry) {
                    report.error = Some(e.into());
                    return Ok(report);
                }
                report.checked += 1;
            }
            if (n as i64) < PAGE {
                break;
            }
        }
        let (head_seq, head_hash): (i64, String) = on_pool!(self, read, |pool| {
            use sqlx::Row;
            let r = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_one(pool)
                .await?;
            (r.try_get("seq")?, r.try_get("hash")?)
        });
        report.error = verifier.finish(head_seq, &head_hash).err().map(Into::into);
        Ok(report)
    }
}
