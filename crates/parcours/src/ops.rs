//! The operator's commands: backup and restore, pruning now, the audit trail's
//! verification with its archives and an export of a range, and the outbound
//! messages that failed for good (list, revive, discard).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use domain::audit::AuditActor;
use server::Config;
use store::Store;
use store::audit::NewAudit;

use crate::{now_ms, open_store};

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// List the outbound messages that failed for good, newest first.
    Dead {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Put a dead letter back in the queue, due now.
    Revive {
        /// Its id (from `outbox dead`).
        id: String,
    },
    /// Discard a dead letter for good.
    Discard {
        /// Its id (from `outbox dead`).
        id: String,
    },
}

/// The first bytes of a SQLite file.
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";
/// The first bytes of a `pg_dump` custom-format archive.
const PG_MAGIC: &[u8] = b"PGDMP";

fn starts_with(file: &Path, magic: &[u8]) -> anyhow::Result<bool> {
    use std::io::Read;
    let mut f = std::fs::File::open(file).with_context(|| format!("{}", file.display()))?;
    let mut head = vec![0u8; magic.len()];
    Ok(f.read_exact(&mut head).is_ok() && head == magic)
}

/// Runs a PostgreSQL client tool; its error output when it fails.
async fn pg_tool(name: &str, mut c: tokio::process::Command) -> anyhow::Result<()> {
    let out = c.output().await.with_context(|| {
        format!("{name} introuvable : installez le client PostgreSQL de la version du serveur")
    })?;
    if !out.status.success() {
        bail!(
            "{name} a échoué : {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `parcours backup FILE`: SQLite — a consistent snapshot taken while the
/// server runs (`VACUUM INTO`); PostgreSQL — `pg_dump` in custom format.
pub async fn backup(config: &Config, file: &Path) -> anyhow::Result<()> {
    if file.exists() {
        bail!(
            "{} existe déjà : choisissez un nouveau nom (une sauvegarde n'écrase rien)",
            file.display()
        );
    }
    let url = config.database_url();
    let started = std::time::Instant::now();
    if url.starts_with("sqlite:") {
        let store = Store::connect(&url)
            .await
            .with_context(|| format!("connexion à {}", store::redact_url(&url)))?;
        store.backup_to(file).await.context("sauvegarde")?;
        store.close().await;
    } else {
        let mut c = tokio::process::Command::new("pg_dump");
        c.args(["--format=custom", "--no-owner", "--file"])
            .arg(file)
            .arg("--dbname")
            .arg(&url);
        pg_tool("pg_dump", c).await?;
    }
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    println!(
        "Sauvegarde écrite : {} ({} Kio, {:.1} s).",
        file.display(),
        size / 1024,
        started.elapsed().as_secs_f64()
    );
    println!(
        "La clé des secrets ({}) n'y est pas : gardez-la à part, elle est nécessaire à la restauration.",
        config.secret_key_file().display()
    );
    Ok(())
}

/// `parcours restore FILE`: into an empty database only (SQLite: a file that
/// does not exist yet or has no table; PostgreSQL: a database without
/// tables), then the migrations of this version and the audit trail checked
/// (with the archives of the configured folder).
pub async fn restore(config: &Config, file: &Path) -> anyhow::Result<bool> {
    if !file.is_file() {
        bail!("{} : fichier de sauvegarde introuvable", file.display());
    }
    let url = config.database_url();
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = PathBuf::from(path.split('?').next().unwrap_or(path));
        if !starts_with(file, SQLITE_MAGIC)? {
            bail!(
                "{} n'est pas une sauvegarde SQLite de Parcours (une sauvegarde PostgreSQL se restaure dans PostgreSQL)",
                file.display()
            );
        }
        if path.exists() {
            let existing = Store::connect(&url).await?;
            let empty = existing.is_empty().await?;
            existing.close().await;
            if !empty {
                bail!(
                    "{} contient déjà des données : la restauration ne va que dans une base vide",
                    path.display()
                );
            }
            std::fs::remove_file(&path).with_context(|| format!("{}", path.display()))?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = PathBuf::from(format!("{}.restauration", path.display()));
        std::fs::copy(file, &tmp).with_context(|| format!("copie vers {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)?;
        let s = Store::connect(&url).await?;
        if !s.integrity_ok().await? {
            bail!("la base restaurée ne passe pas le contrôle d'intégrité de SQLite");
        }
        s.close().await;
    } else {
        if !starts_with(file, PG_MAGIC)? {
            bail!(
                "{} n'est pas une sauvegarde pg_dump (format custom) : une sauvegarde SQLite se restaure dans SQLite",
                file.display()
            );
        }
        let existing = Store::connect(&url)
            .await
            .with_context(|| format!("connexion à {}", store::redact_url(&url)))?;
        let empty = existing.is_empty().await?;
        existing.close().await;
        if !empty {
            bail!(
                "la base PostgreSQL contient déjà des tables : la restauration ne va que dans une base vide"
            );
        }
        let mut c = tokio::process::Command::new("pg_restore");
        c.args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--dbname",
        ])
        .arg(&url)
        .arg(file);
        pg_tool("pg_restore", c).await?;
    }
    println!("Base restaurée depuis {}.", file.display());
    // Migrated to this version and checked as `parcours audit verify` does.
    audit_verify(config, None).await
}

/// `parcours prune`: one retention run now, as the timer would.
pub async fn prune(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let before = store.database_size().await?;
    let state = server::AppState::new(
        store.clone(),
        std::sync::Arc::new(domain::SystemClock),
        config.clone(),
    );
    let report = server::services::retention::prune(state.ctx())
        .await
        .map_err(anyhow::Error::new)?;
    for (kind, n) in &report.removed {
        println!("{} : {n} supprimé(s)", kind.name());
    }
    if let Some(c) = &report.cut {
        println!(
            "journal d'audit : entrées {}..{} archivées dans {} puis retirées ({} retirées)",
            c.from_seq, c.through_seq, c.archive, report.audit_removed
        );
    }
    if let Some(after) = report.size {
        println!(
            "taille de la base : {} Kio avant, {} Kio après",
            before.bytes / 1024,
            after.bytes / 1024
        );
    }
    store.close().await;
    Ok(())
}

/// `parcours audit verify`: the kept chain from the last cut, the
/// checkpoints, and every archive found in `archives` (default: the
/// configured archive folder) against its checkpoint.
pub async fn audit_verify(config: &Config, archives: Option<PathBuf>) -> anyhow::Result<bool> {
    let store = open_store(config).await?;
    let report = store.verify_audit().await?;
    let checkpoints = store.audit_checkpoints().await?;
    store.close().await;
    let mut ok = true;
    match &report.error {
        None if report.cut_through > 0 => println!(
            "Journal d'audit intact : {} entrées vérifiées après la coupe de l'entrée {} ({} point(s) de contrôle).",
            report.checked, report.cut_through, report.checkpoints
        ),
        None => println!(
            "Journal d'audit intact : {} entrées vérifiées.",
            report.checked
        ),
        Some(e) => {
            ok = false;
            println!(
                "Journal d'audit ALTÉRÉ après {} entrées valides : {e}",
                report.checked
            );
        }
    }
    let dir = archives.unwrap_or_else(|| config.audit_archive_dir());
    for cp in &checkpoints {
        let file = dir.join(&cp.archive);
        if !file.exists() {
            println!(
                "Archive {} (entrées {}..{}) absente de {} : la coupe reste prouvée, pas le contenu retiré.",
                cp.archive,
                cp.from_seq,
                cp.through_seq,
                dir.display()
            );
            continue;
        }
        match server::services::retention::verify_archive(&file, &checkpoints) {
            Ok(c) => println!(
                "Archive {} intacte : {} entrées, point de contrôle {}.",
                cp.archive, c.entries, c.checkpoint
            ),
            Err(why) => {
                ok = false;
                println!("Archive ALTÉRÉE : {why}");
            }
        }
    }
    Ok(ok)
}

/// `parcours audit export --from N --through M FILE`: a range of entries as
/// JSON lines (before a removal, or for a request), with its SHA-256.
pub async fn audit_export(
    config: &Config,
    from: i64,
    through: i64,
    file: &Path,
) -> anyhow::Result<()> {
    if from < 1 || through < from {
        bail!("intervalle invalide : --from {from} --through {through}");
    }
    if file.exists() {
        bail!("{} existe déjà", file.display());
    }
    let store = open_store(config).await?;
    let sha = server::services::retention::export(&store, from, through, file).await?;
    store.close().await;
    println!(
        "Entrées {from}..{through} écrites dans {} (SHA-256 {sha}).",
        file.display()
    );
    Ok(())
}

/// `parcours outbox …`.
pub async fn outbox(config: &Config, command: OutboxCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let audit = |action: &str, id: &str| NewAudit {
        at_ms: now_ms(),
        actor: AuditActor::system("cli"),
        patient: None,
        action: action.to_owned(),
        resource: format!("Outbox/{id}"),
        outcome: "success".into(),
    };
    match command {
        OutboxCommand::Dead { limit } => {
            let dead = store.outbox_dead(limit.clamp(1, 10_000)).await?;
            if dead.is_empty() {
                println!("Aucun envoi en échec.");
            }
            for m in dead {
                println!(
                    "{} {} {} essais={} établissement={} raison={}",
                    m.id,
                    m.topic,
                    m.destination,
                    m.attempts,
                    m.establishment_id.as_deref().unwrap_or("-"),
                    m.last_error.as_deref().unwrap_or("-")
                );
            }
        }
        OutboxCommand::Revive { id } => {
            store
                .outbox_revive(&id, now_ms())
                .await
                .map_err(|e| not_dead(e, &id))?;
            store.audit(&audit("revive", &id)).await?;
            println!("Envoi {id} relancé.");
        }
        OutboxCommand::Discard { id } => {
            store
                .outbox_discard(&id)
                .await
                .map_err(|e| not_dead(e, &id))?;
            store.audit(&audit("discard", &id)).await?;
            println!("Envoi {id} abandonné.");
        }
    }
    store.close().await;
    Ok(())
}

fn not_dead(e: store::StoreError, id: &str) -> anyhow::Error {
    match e {
        store::StoreError::NotFound => {
            anyhow::anyhow!("{id} : aucun envoi en échec de ce nom (voir `parcours outbox dead`)")
        }
        other => other.into(),
    }
}
