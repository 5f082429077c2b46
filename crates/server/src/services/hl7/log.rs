//! The HL7 message log as administrators browse it: the messages of the
//! establishments whose log the policy lets them read, and one message in
//! full (an audited read: the raw message carries patient data).

use domain::EstablishmentId;
use domain::audit::AuditActor;
use domain::policy::{Actor, EstablishmentAction};
use store::audit::NewAudit;
use store::hl7::Hl7LogEntry;

use crate::error::AppError;
use crate::services::ctx::Ctx;
use crate::services::directory;
use crate::services::directory::establishments_for;

/// The most messages a page shows.
pub const PAGE: usize = 200;

/// The names of the establishments read and their latest messages, newest first.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn latest(
    ctx: Ctx<'_>,
    actor: &Actor,
) -> Result<(Vec<String>, Vec<Hl7LogEntry>), AppError> {
    let ests = establishments_for(actor, EstablishmentAction::ReadMessages);
    if ests.is_empty() {
        return Err(AppError::Forbidden(
            "journal des messages réservé aux administrateurs".into(),
        ));
    }
    let mut names = Vec::new();
    let mut entries = Vec::new();
    for e in &ests {
        names.push(directory::establishment_name(ctx, *e).await);
        entries.extend(
            ctx.store
                .hl7_messages_of(Some(*e), None, PAGE as i64)
                .await?,
        );
    }
    entries.sort_by_key(|m| std::cmp::Reverse((m.received_at_ms, m.id.clone())));
    entries.truncate(PAGE);
    Ok((names, entries))
}

/// Message `id` in full, if it belongs to an establishment whose log `actor`
/// reads; the read is audited.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn message(ctx: Ctx<'_>, actor: &Actor, id: &str) -> Result<Hl7LogEntry, AppError> {
    let not_found = || AppError::NotFound("message introuvable".into());
    let m = ctx.store.hl7_message(id).await.map_err(|_| not_found())?;
    let allowed = establishments_for(actor, EstablishmentAction::ReadMessages);
    let Some(est) = m
        .establishment_id
        .as_deref()
        .and_then(|e| e.parse::<EstablishmentId>().ok())
        .filter(|e| allowed.contains(e))
    else {
        return Err(not_found());
    };
    let grant = actor
        .grants
        .iter()
        .find(|g| g.establishment == est)
        .copied();
    let row = NewAudit {
        at_ms: ctx.now_ms(),
        actor: AuditActor::new(actor, grant),
        patient: m.patient_id.clone(),
        action: "read".into(),
        resource: format!("Hl7Message/{}", m.id),
        outcome: "success".into(),
    };
    ctx.store.audit(&row).await?;
    Ok(m)
}
