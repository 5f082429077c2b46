//! The audit trail in storage: appended in the same transaction as the change it
//! records (see [`append_audit`]), or on its own for reads and denials;
//! listed for admins and FHIR AuditEvent; verified end to end.

use domain::audit::{AuditActor, AuditEntry, ChainError, ChainVerifier};

use crate::tx::{AsTx, Tx, q};

use crate::macros::rows_to;
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
    /// The first break, if any.
    pub error: Option<ChainError>,
}

const COLUMNS: &str = "seq, at_ms, actor_kind, actor_id, role, establishment_id, patient_id, action, resource, outcome, prev_hash, hash";

const INSERT_ENTRY: &str = "INSERT INTO audit_log (seq, at_ms, actor_kind, actor_id, role, establishment_id, patient_id, action, resource, outcome, prev_hash, hash) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

async fn insert_entry(tx: &mut Tx<'_>, e: &AuditEntry) -> Result<()> {
    q(INSERT_ENTRY)
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
        .execute(tx)
        .await?;
    Ok(())
}

/// Appends one audit entry inside the open transaction. Serialised through
/// the single `audit_head` row (locked by the UPDATE until commit), so the
/// chain has no gaps or forks whatever the concurrency. Put it last in a
/// transaction to hold that lock as briefly as possible.
pub(crate) async fn append_audit(tx: &mut Tx<'_>, new: &NewAudit) -> Result<AuditEntry> {
    let head = q("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(tx)
        .await?;
    let seq: i64 = head.get("seq")?;
    let prev: String = head.get("hash")?;
    let mut e = new.to_entry(seq);
    e.seal(&prev);
    insert_entry(tx, &e).await?;
    q("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&e.hash)
        .execute(tx)
        .await?;
    Ok(e)
}

/// Appends several audit entries inside the open transaction with one read
/// and one write of the head: the sequence numbers are reserved at once, the
/// hashes chained in memory.
pub(crate) async fn append_audits(tx: &mut Tx<'_>, entries: &[NewAudit]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let n = entries.len() as i64;
    let head = q("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
        .bind(n)
        .fetch_one(tx)
        .await?;
    let last: i64 = head.get("seq")?;
    let mut prev: String = head.get("hash")?;
    for (i, new) in entries.iter().enumerate() {
        let mut e = new.to_entry(last - n + 1 + i as i64);
        e.seal(&prev);
        insert_entry(tx, &e).await?;
        prev = e.hash;
    }
    q("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(tx)
        .await?;
    Ok(())
}

impl Store {
    /// Appends one entry in its own transaction (reads, searches, denials, logins).
    pub async fn audit(&self, new: &NewAudit) -> Result<AuditEntry> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let e = crate::audit::append_audit(&mut tx.as_tx(), new).await?;
            tx.commit().await?;
            Ok(e)
        })
    }

    /// Appends several entries in one transaction (a search that returns many
    /// records); returns how many.
    pub async fn audit_many(&self, entries: &[NewAudit]) -> Result<usize> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            for new in entries {
                crate::audit::append_audit(&mut tx.as_tx(), new).await?;
            }
            tx.commit().await?;
            Ok(entries.len())
        })
    }

    /// Lists entries, newest first.
    pub async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log WHERE ($1 IS NULL OR establishment_id = $1) \
             AND ($2 IS NULL OR patient_id = $2) AND ($3 IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4"
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

    /// Recomputes the whole chain, in pages, and checks it against the head.
    pub async fn verify_audit(&self) -> Result<VerifyReport> {
        const PAGE: i64 = 5_000;
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        let mut verifier = ChainVerifier::default();
        let mut after = 0i64;
        let mut checked = 0i64;
        loop {
            let page: Vec<AuditRow> = on_pool!(self, read, |pool| {
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(after)
                    .bind(PAGE)
                    .fetch_all(pool)
                    .await?;
                rows_to(&rows)?
            });
            let n = page.len();
            for row in page {
                after = row.seq;
                let entry = AuditEntry::from(row);
                if let Err(e) = verifier.push(&entry) {
                    return Ok(VerifyReport {
                        checked,
                        error: Some(e),
                    });
                }
                checked += 1;
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
        let error = verifier.finish(head_seq, &head_hash).err();
        Ok(VerifyReport { checked, error })
    }
}
