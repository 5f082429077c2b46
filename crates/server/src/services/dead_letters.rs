//! What is stuck, for the establishment's administrators: outbound messages
//! that failed for good (ORU and SIU over MLLP, MHD, mail, notices,
//! rest-hooks) with the reason, revived (due now, attempts reset) or
//! discarded; and HL7 messages received in error or refused, replayed
//! through the intake or purged after review. Every action is authorised by
//! `policy::authorize_establishment(ManageMessages)` and audited. The
//! instance's own messages (no establishment) are handled with the CLI
//! (`parcours outbox`).

use domain::EstablishmentId;
use domain::audit::AuditActor;
use domain::policy::{Actor, EstablishmentAction};
use store::audit::NewAudit;
use store::outbox::OutboxMessage;

use crate::error::AppError;
use crate::services::ctx::Ctx;
use crate::services::directory::establishments_for;

/// The most dead letters a page lists per establishment.
pub const PAGE: i64 = 200;

/// A dead letter as the page lists it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The message.
    pub message: OutboxMessage,
    /// Its establishment's name.
    pub establishment: String,
}

fn managed(actor: &Actor) -> Result<Vec<EstablishmentId>, AppError> {
    let ests = establishments_for(actor, EstablishmentAction::ManageMessages);
    if ests.is_empty() {
        return Err(AppError::Forbidden(
            "envois en échec réservés aux administrateurs d'établissement".into(),
        ));
    }
    Ok(ests)
}

fn audit(
    ctx: Ctx<'_>,
    actor: &Actor,
    est: EstablishmentId,
    action: &str,
    resource: String,
) -> NewAudit {
    let grant = actor
        .grants
        .iter()
        .find(|g| g.establishment == est)
        .copied();
    NewAudit {
        at_ms: ctx.now_ms(),
        actor: AuditActor::new(actor, grant),
        patient: None,
        action: action.to_owned(),
        resource,
        outcome: "success".into(),
    }
}

/// The dead letters of the establishments `actor` administers, newest first.
pub async fn list(ctx: Ctx<'_>, actor: &Actor) -> Result<Vec<DeadLetter>, AppError> {
    let mut out = Vec::new();
    for e in managed(actor)? {
        let name = crate::services::directory::establishment_name(ctx, e).await;
        for m in ctx.store.outbox_dead_of(Some(e), PAGE).await? {
            out.push(DeadLetter {
                message: m,
                establishment: name.clone(),
            });
        }
    }
    out.sort_by_key(|d| std::cmp::Reverse(d.message.dead_at_ms));
    Ok(out)
}

/// Dead letter `id` if it is one of `actor`'s establishments' (else not found).
async fn own(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: &str,
) -> Result<(OutboxMessage, EstablishmentId), AppError> {
    let not_found = || AppError::NotFound("envoi introuvable".into());
    let allowed = managed(actor)?;
    let m = ctx.store.outbox_by_id(id).await.map_err(|_| not_found())?;
    match m.establishment() {
        Some(e) if allowed.contains(&e) && m.dead_at_ms.is_some() => Ok((m, e)),
        _ => Err(not_found()),
    }
}

/// Puts dead letter `id` back in the queue, due now.
pub async fn revive(ctx: Ctx<'_>, actor: &Actor, id: &str) -> Result<(), AppError> {
    let (m, e) = own(ctx, actor, id).await?;
    ctx.store.outbox_revive(&m.id, ctx.now_ms()).await?;
    ctx.store
        .audit(&audit(ctx, actor, e, "revive", format!("Outbox/{}", m.id)))
        .await?;
    Ok(())
}

/// Discards dead letter `id` for good.
pub async fn discard(ctx: Ctx<'_>, actor: &Actor, id: &str) -> Result<(), AppError> {
    let (m, e) = own(ctx, actor, id).await?;
    ctx.store.outbox_discard(&m.id).await?;
    ctx.store
        .audit(&audit(ctx, actor, e, "discard", format!("Outbox/{}", m.id)))
        .await?;
    Ok(())
}

/// HL7 message `id` of an establishment `actor` administers (its read audited).
async fn own_hl7(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: &str,
) -> Result<(store::hl7::Hl7LogEntry, EstablishmentId), AppError> {
    let m = crate::services::hl7::log::message(ctx, actor, id).await?;
    let allowed = managed(actor)?;
    match m
        .establishment_id
        .as_deref()
        .and_then(|e| e.parse::<EstablishmentId>().ok())
        .filter(|e| allowed.contains(e))
    {
        Some(e) => Ok((m, e)),
        None => Err(AppError::NotFound("message introuvable".into())),
    }
}

/// Replays HL7 message `id` through the intake, as its sender (logged as a
/// replay of it); returns the ACK.
pub async fn replay_hl7(ctx: Ctx<'_>, actor: &Actor, id: &str) -> Result<String, AppError> {
    let (m, e) = own_hl7(ctx, actor, id).await?;
    ctx.store
        .audit(&audit(
            ctx,
            actor,
            e,
            "replay",
            format!("Hl7Message/{}", m.id),
        ))
        .await?;
    match crate::services::hl7::ingest(
        ctx,
        &m.raw,
        Some(m.id.clone()),
        &crate::services::hl7::Peer::Internal,
    )
    .await
    {
        crate::services::hl7::Outcome::Ack(ack) => Ok(ack),
        crate::services::hl7::Outcome::NoAck => Err(AppError::Unavailable(
            "la base de données n'a pas pu enregistrer le rejeu : réessayez".into(),
        )),
    }
}

/// Purges HL7 message `id` (in error or refused, not replayed) after review.
pub async fn purge_hl7(ctx: Ctx<'_>, actor: &Actor, id: &str) -> Result<(), AppError> {
    let (m, e) = own_hl7(ctx, actor, id).await?;
    ctx.store.purge_hl7_message(&m.id).await?;
    ctx.store
        .audit(&audit(
            ctx,
            actor,
            e,
            "purge",
            format!("Hl7Message/{}", m.id),
        ))
        .await?;
    Ok(())
}
