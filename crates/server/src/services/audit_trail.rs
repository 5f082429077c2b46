//! The audit trail as administrators read it: the entries of the
//! establishments they administer (the policy decides), newest first, and the
//! hash chain's check on demand.

use domain::audit::AuditEntry;
use domain::policy::{Actor, EstablishmentAction};
use store::audit::{AuditFilter, VerifyReport};

use crate::error::AppError;
use crate::services::ctx::Ctx;
use crate::services::directory::{self, establishments_for};

/// The most entries a page shows.
pub const PAGE: usize = 200;

/// What the audit page shows.
#[derive(Debug)]
pub struct Trail {
    /// The names of the establishments read.
    pub establishments: Vec<String>,
    /// The entries, newest first.
    pub entries: Vec<AuditEntry>,
    /// The chain's check, when asked.
    pub chain: Option<VerifyReport>,
}

/// The trail `actor` may read, about `patient` only when given; the whole
/// chain checked when `verify`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn read(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: Option<String>,
    verify: bool,
) -> Result<Trail, AppError> {
    let admin_of = establishments_for(actor, EstablishmentAction::ReadAudit);
    if admin_of.is_empty() {
        return Err(AppError::Forbidden(
            "journal d'audit réservé aux administrateurs".into(),
        ));
    }
    let mut entries = Vec::new();
    let mut establishments = Vec::new();
    for e in &admin_of {
        establishments.push(directory::establishment_name(ctx, *e).await);
        let filter = AuditFilter {
            establishment: Some(e.to_string()),
            patient: patient.clone(),
            before_seq: None,
            limit: PAGE as i64,
        };
        entries.extend(ctx.store.list_audit(&filter).await?);
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.seq));
    entries.truncate(PAGE);
    let chain = if verify {
        Some(ctx.store.verify_audit().await?)
    } else {
        None
    };
    Ok(Trail {
        establishments,
        entries,
        chain,
    })
}

fn establishment_trail(
    actor: &Actor,
    home: crate::services::directory::Home,
) -> Result<String, AppError> {
    crate::services::directory::may(
        actor,
        home,
        EstablishmentAction::ReadAudit,
        "journal d'audit réservé aux administrateurs de l'établissement",
    )?;
    Ok(home.establishment.to_string())
}

/// The latest `limit` entries of `home`'s establishment (about `patient`
/// only, when given), for an administrator's client.
pub async fn of_establishment(
    ctx: Ctx<'_>,
    actor: &Actor,
    home: crate::services::directory::Home,
    patient: Option<String>,
    limit: i64,
) -> Result<Vec<AuditEntry>, AppError> {
    let establishment = establishment_trail(actor, home)?;
    Ok(ctx
        .store
        .list_audit(&AuditFilter {
            establishment: Some(establishment),
            patient,
            before_seq: None,
            limit: limit.max(1),
        })
        .await?)
}

/// Entry `seq` (its number as text), if it belongs to `home`'s establishment.
pub async fn entry(
    ctx: Ctx<'_>,
    actor: &Actor,
    home: crate::services::directory::Home,
    seq: &str,
) -> Result<Option<AuditEntry>, AppError> {
    let establishment = establishment_trail(actor, home)?;
    let Ok(seq) = seq.parse::<i64>() else {
        return Ok(None);
    };
    Ok(ctx
        .store
        .get_audit(seq)
        .await
        .ok()
        .filter(|e| e.establishment.as_deref() == Some(establishment.as_str())))
}
