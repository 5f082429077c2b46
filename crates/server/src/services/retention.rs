//! Retention: what leaves the database and when, run by the timer job (once
//! across the nodes) or by `parcours prune`. Each kind goes in batches, one
//! short transaction each, with a pause between them so that the HL7 intake
//! and the pages keep writing. The audit trail's oldest entries leave only
//! past `retention.audit` and only after an export: the archive is written
//! (JSON lines, fsynced), a checkpoint records its range, last hash and
//! SHA-256 in the database, and only then the entries are removed — so
//! `parcours audit verify` proves the kept chain from the cut, and
//! `--archive` proves an archive against its checkpoint.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use domain::audit::{AuditEntry, Checkpoint};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::retention::{DatabaseSize, Prunable};

use crate::config::Config;
use crate::error::AppError;
use crate::services::ctx::Ctx;

/// At most this many batches of one kind per run (the next run goes on).
const MAX_BATCHES: usize = 200;
/// At most this many audit entries per cut.
const MAX_CUT: i64 = 100_000;
/// Pages given back to the file system per run (SQLite, 4 KiB each).
const RECLAIM_PAGES: i64 = 25_000;

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    /// Rows removed, per kind.
    pub removed: Vec<(Prunable, u64)>,
    /// The audit cut made, if any.
    pub cut: Option<Checkpoint>,
    /// Audit entries removed.
    pub audit_removed: u64,
    /// The database's size after.
    pub size: Option<DatabaseSize>,
}

impl PruneReport {
    /// Rows removed in all.
    pub fn total(&self) -> u64 {
        self.removed.iter().map(|(_, n)| n).sum::<u64>() + self.audit_removed
    }
}

/// The cut-off of `kind` at `now_ms` under `config`, `None` when it is kept.
fn cutoff(config: &Config, kind: Prunable, now_ms: i64) -> Option<i64> {
    let r = &config.retention;
    let keep = match kind {
        Prunable::Hl7Accepted => r.span_ms(&r.hl7_messages),
        Prunable::Hl7Errors => r.span_ms(&r.hl7_errors),
        Prunable::OutboxDelivered => r.span_ms(&r.outbox_delivered),
        Prunable::Sessions | Prunable::AccessTokens | Prunable::Invitations | Prunable::SignIns => {
            r.span_ms(&r.expired)
        }
        // A view is remembered as long as a session can last.
        Prunable::AuditViews => Some(config.session_ttl_minutes.max(1) * 60_000),
    }?;
    Some(now_ms - keep)
}

/// Runs every kind's pruning, the audit cut when configured, and gives the
/// space back.
pub async fn prune(ctx: Ctx<'_>) -> Result<PruneReport, AppError> {
    let now = ctx.now_ms();
    let batch = ctx.config.retention.batch.clamp(1, 100_000);
    let mut report = PruneReport::default();
    for kind in Prunable::ALL {
        let Some(before) = cutoff(ctx.config, kind, now) else {
            continue;
        };
        let mut removed = 0;
        for _ in 0..MAX_BATCHES {
            let n = ctx.store.prune_batch(kind, before, batch).await?;
            removed += n;
            if n < u64::try_from(batch).unwrap_or(u64::MAX) {
                break;
            }
            // Let the intake's writes in between two batches.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        if removed > 0 {
            ctx.metrics.count_pruned(kind.name(), removed);
            report.removed.push((kind, removed));
        }
    }
    let r = &ctx.config.retention;
    if let Some(keep) = r.span_ms(&r.audit) {
        report.cut = cut_audit(ctx, now - keep).await?;
    }
    // A cut whose removal was interrupted goes on here too.
    loop {
        let n = ctx.store.remove_cut_audit(batch).await?;
        report.audit_removed += n;
        if n < u64::try_from(batch).unwrap_or(u64::MAX) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    if report.audit_removed > 0 {
        ctx.metrics.count_pruned("audit_log", report.audit_removed);
    }
    let pruned: Vec<Prunable> = report.removed.iter().map(|(k, _)| *k).collect();
    report.size = Some(
        ctx.store
            .reclaim_space(RECLAIM_PAGES, &pruned, report.audit_removed > 0)
            .await?,
    );
    if report.total() > 0 {
        tracing::info!(
            removed = report.total(),
            cut = report.cut.as_ref().map(|c| c.through_seq),
            "retention: rows removed"
        );
    }
    Ok(report)
}

/// Exports the audit entries made before `before_ms` (after the last cut) to
/// an archive and records the checkpoint; the entries leave afterwards.
async fn cut_audit(ctx: Ctx<'_>, before_ms: i64) -> Result<Option<Checkpoint>, AppError> {
    let Some((from, through)) = ctx.store.audit_cut_range(before_ms, MAX_CUT).await? else {
        return Ok(None);
    };
    let dir = ctx.config.audit_archive_dir();
    let name = archive_name(from, through);
    let sha = export(ctx.store, from, through, &dir.join(&name)).await?;
    let cp = ctx
        .store
        .add_audit_checkpoint(&store::audit::NewCheckpoint {
            from_seq: from,
            through_seq: through,
            archive: name,
            archive_sha256: sha,
            at_ms: ctx.now_ms(),
        })
        .await?;
    tracing::info!(from, through, archive = %cp.archive, "audit: oldest entries archived and cut");
    Ok(Some(cp))
}

/// The archive file name of entries `from..=through`.
fn archive_name(from: i64, through: i64) -> String {
    format!("audit-{from:012}-{through:012}.jsonl")
}

/// One archived entry, as a line of the archive: the entry's own fields
/// (serde's remote derive: the domain does not depend on serde).
#[derive(Serialize, Deserialize)]
#[serde(remote = "AuditEntry", deny_unknown_fields)]
struct Archived {
    seq: i64,
    at_ms: i64,
    actor_kind: String,
    actor_id: String,
    role: Option<String>,
    establishment: Option<String>,
    patient: Option<String>,
    action: String,
    resource: String,
    outcome: String,
    prev_hash: String,
    hash: String,
}

/// Writes entries `from..=through` to `file` (JSON lines; written to a
/// temporary name, synced, then renamed; the temporary file removed when the
/// export fails), returns its SHA-256. Every entry of the range must be there.
pub async fn export(
    store: &store::Store,
    from: i64,
    through: i64,
    file: &Path,
) -> anyhow::Result<String> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, &e))?;
    }
    let tmp = PathBuf::from(format!("{}.partiel", file.display()));
    match write_range(store, from, through, &tmp).await {
        Ok(sha) => {
            std::fs::rename(&tmp, file).map_err(|e| io_error(file, &e))?;
            Ok(sha)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Writes entries `from..=through` to `tmp` and syncs it; its SHA-256.
async fn write_range(
    store: &store::Store,
    from: i64,
    through: i64,
    tmp: &Path,
) -> anyhow::Result<String> {
    const PAGE: i64 = 5_000;
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(tmp).map_err(|e| io_error(tmp, &e))?);
    let mut hasher = Sha256::new();
    let mut next = from;
    while next <= through {
        let page = store
            .audit_entries(next - 1, PAGE.min(through - next + 1))
            .await?;
        if page.is_empty() {
            break;
        }
        for e in page {
            if e.seq != next {
                anyhow::bail!(
                    "export du journal d'audit : entrée {next} absente (trouvé {})",
                    e.seq
                );
            }
            let mut line = Vec::new();
            Archived::serialize(&e, &mut serde_json::Serializer::new(&mut line))?;
            line.push(b'\n');
            hasher.update(&line);
            out.write_all(&line).map_err(|e| io_error(tmp, &e))?;
            next += 1;
        }
    }
    if next != through + 1 {
        anyhow::bail!("export du journal d'audit : entrées {next}..{through} absentes");
    }
    let f = out.into_inner().map_err(|e| io_error(tmp, e.error()))?;
    f.sync_all().map_err(|e| io_error(tmp, &e))?;
    Ok(hex::encode(hasher.finalize()))
}

fn io_error(path: &Path, e: &std::io::Error) -> anyhow::Error {
    anyhow::anyhow!("{} : {e}", path.display())
}

/// What checking an archive found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveCheck {
    /// The checkpoint it belongs to.
    pub checkpoint: i64,
    /// Entries in it.
    pub entries: i64,
}

/// Checks an archive file against the checkpoint that names it: its SHA-256,
/// and its entries chained from the previous cut to the checkpoint's last
/// hash. The reason of a failure is in French.
pub fn verify_archive(file: &Path, checkpoints: &[Checkpoint]) -> Result<ArchiveCheck, String> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} : nom de fichier illisible", file.display()))?;
    let (i, cp) = checkpoints
        .iter()
        .enumerate()
        .find(|(_, c)| c.archive == name)
        .ok_or_else(|| format!("{name} : aucun point de contrôle ne nomme cette archive"))?;
    let bytes = std::fs::read(file).map_err(|e| format!("{} : {e}", file.display()))?;
    if hex::encode(Sha256::digest(&bytes)) != cp.archive_sha256 {
        return Err(format!(
            "{name} : empreinte SHA-256 différente de celle du point de contrôle {} (fichier modifié)",
            cp.seq
        ));
    }
    let mut entries = Vec::new();
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let mut de = serde_json::Deserializer::from_slice(line);
        let entry = Archived::deserialize(&mut de)
            .and_then(|e| de.end().map(|()| e))
            .map_err(|e| format!("{name}, ligne {} : {e}", n + 1))?;
        entries.push(entry);
    }
    let prev = match i.checked_sub(1).and_then(|p| checkpoints.get(p)) {
        Some(p) => p.through_hash.clone(),
        None => domain::audit::GENESIS.to_owned(),
    };
    let n =
        domain::audit::verify_archive(cp, &prev, &entries).map_err(|e| format!("{name} : {e}"))?;
    Ok(ArchiveCheck {
        checkpoint: cp.seq,
        entries: n - cp.from_seq + 1,
    })
}
