//! A practitioner's consultation hours at an establishment: the weekly
//! pattern and the absences (holidays, closed days), set by the doctor or by
//! a secretary or an admin of the establishment. Booking reads them
//! (`schedule::free_slots`, `schedule::book`).

use domain::audit::AuditActor;
use domain::org::Role;
use domain::policy::{Actor, Principal};
use domain::schedule::{Absence, ExtraOpening, Opening, check, check_absence, french_date};
use domain::{EstablishmentId, UserId};
use store::audit::NewAudit;

use crate::error::AppError;
use crate::services::ctx::Ctx;

/// Who may set `practitioner`'s hours at `establishment`: the doctor
/// themselves (a doctor there), or a secretary or an admin there, for a
/// doctor of the establishment. The audit actor.
pub async fn may_edit(
    ctx: Ctx<'_>,
    actor: &Actor,
    practitioner: UserId,
    establishment: EstablishmentId,
) -> Result<AuditActor, AppError> {
    let doctor_there = ctx
        .store
        .grants(practitioner)
        .await?
        .iter()
        .any(|g| g.role == Role::Doctor && g.establishment == establishment);
    if !doctor_there {
        return Err(AppError::NotFound(
            "aucun médecin de cet établissement ne porte cet identifiant".into(),
        ));
    }
    let grant = actor.grants.iter().find(|g| {
        g.establishment == establishment
            && match g.role {
                Role::Doctor => actor.principal == Principal::Professional(practitioner),
                Role::Secretary | Role::Admin => true,
                _ => false,
            }
    });
    match grant {
        Some(g) => Ok(AuditActor::new(actor, Some(*g))),
        None => Err(AppError::Forbidden(
            "les horaires d'un médecin sont tenus par lui-même ou le secrétariat de l'établissement"
                .into(),
        )),
    }
}

/// The doctors whose hours `actor` may set, per establishment: (doctor,
/// establishment, doctor's name, establishment's name).
pub async fn editable(
    ctx: Ctx<'_>,
    actor: &Actor,
) -> Result<Vec<(UserId, EstablishmentId, String, String)>, AppError> {
    let mut out = Vec::new();
    for g in &actor.grants {
        let e = ctx.store.establishment(g.establishment).await?;
        match g.role {
            Role::Doctor => {
                if let Principal::Professional(me) = actor.principal {
                    let name = ctx.store.user(me).await?.display_name;
                    out.push((me, e.id, name, e.name.clone()));
                }
            }
            Role::Secretary | Role::Admin => {
                for (u, grants) in ctx.store.professionals(e.territory).await? {
                    if grants
                        .iter()
                        .any(|x| x.role == Role::Doctor && x.establishment == e.id)
                    {
                        out.push((u.id, e.id, u.display_name, e.name.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| (&a.3, &a.2).cmp(&(&b.3, &b.2)));
    out.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    Ok(out)
}

/// A practitioner's hours at an establishment.
#[derive(Debug, Clone)]
pub struct Hours {
    /// The weekly pattern.
    pub openings: Vec<Opening>,
    /// Absences: (id, absence).
    pub absences: Vec<(String, Absence)>,
    /// One-off openings: (id, opening).
    pub extras: Vec<(String, ExtraOpening)>,
}

/// Reads the hours (for who may set them).
pub async fn hours(
    ctx: Ctx<'_>,
    actor: &Actor,
    practitioner: UserId,
    establishment: EstablishmentId,
) -> Result<Hours, AppError> {
    may_edit(ctx, actor, practitioner, establishment).await?;
    Ok(Hours {
        openings: establishment_openings(ctx, practitioner, establishment).await?,
        absences: ctx.store.absences(practitioner, establishment).await?,
        extras: ctx
            .store
            .extra_openings(practitioner, establishment)
            .await?,
    })
}

/// The weekly openings of `practitioner` at `establishment`.
pub async fn establishment_openings(
    ctx: Ctx<'_>,
    practitioner: UserId,
    establishment: EstablishmentId,
) -> Result<Vec<Opening>, AppError> {
    Ok(ctx
        .store
        .openings(practitioner)
        .await?
        .into_iter()
        .filter(|(e, _)| *e == establishment)
        .map(|(_, o)| o)
        .collect())
}

/// The absences of `practitioner` at `establishment`.
pub async fn absences(
    ctx: Ctx<'_>,
    practitioner: UserId,
    establishment: EstablishmentId,
) -> Result<Vec<Absence>, AppError> {
    Ok(ctx
        .store
        .absences(practitioner, establishment)
        .await?
        .into_iter()
        .map(|(_, a)| a)
        .collect())
}

async fn trace(
    ctx: Ctx<'_>,
    who: AuditActor,
    action: &str,
    practitioner: UserId,
) -> Result<(), AppError> {
    ctx.store
        .audit(&NewAudit {
            at_ms: ctx.now_ms(),
            actor: who,
            patient: None,
            action: action.into(),
            resource: format!("Schedule/{practitioner}"),
            outcome: "success".into(),
        })
        .await?;
    Ok(())
}

/// Replaces the weekly pattern. Each opening is checked, and two openings of
/// the same day may not overlap. Booked appointments stay as they are.
pub async fn set_weekly(
    ctx: Ctx<'_>,
    actor: &Actor,
    practitioner: UserId,
    establishment: EstablishmentId,
    openings: &[Opening],
) -> Result<(), AppError> {
    let who = may_edit(ctx, actor, practitioner, establishment).await?;
    for (i, o) in openings.iter().enumerate() {
        check(o).map_err(|e| AppError::BadRequest("invalid", format!("ligne {} : {e}", i + 1)))?;
        let overlaps = openings.iter().enumerate().any(|(j, p)| {
            j != i && p.weekday == o.weekday && p.start_min < o.end_min && o.start_min < p.end_min
        });
        if overlaps {
            return Err(AppError::BadRequest(
                "invalid",
                format!("ligne {} : chevauche une autre plage du même jour", i + 1),
            ));
        }
    }
    ctx.store
        .set_openings(practitioner, establishment, openings)
        .await?;
    trace(ctx, who, "agenda.openings", practitioner).await
}

/// Records an absence; how many appointments already booked fall in it (to
/// move: they are not cancelled by themselves).
pub async fn add_absence(
    ctx: Ctx<'_>,
    actor: &Actor,
    practitioner: UserId,
    establishment: EstablishmentId,
    absence: &Absence,
) -> Result<usize, AppError> {
    let who = may_edit(ctx, actor, practitioner, establishment).await?;
    let today = french_date(ctx.now_ms())
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("date du jour")))?;
    check_absence(absence, today).map_err(|e| AppError::BadRequest("invalid", e.to_string()))?;
    ctx.store
        .add_absence(practitioner, establishment, absence, &who.id, ctx.now_ms())
        .await?;
    trace(ctx, who, "agenda.absence", practitioner).await?;
    let now = ctx.now_ms();
    let span = std::slice::from_ref(absence);
    Ok(ctx
        .store
        .agenda(practitioner, now, now + 400 * 24 * 3600 * 1000)
        .await?
        .iter()
        .filter(|a| {
            a.establishment == establishment
                && a.status == "booked"
                && domain::schedule::is_absent(span, a.start_ms)
        })
        .count())
}

/// Removes an absence.
pub async fn remove_absence(
    ctx: Ctx<'_>,
    actor: &Actor,
    practitioner: UserId,
    establishment: EstablishmentId,
    id: &str,
) -> Result<(), AppError> {
    let who = may_edit(ctx, actor, practitioner, establishment).await?;
    if !ctx
        .store
        .remove_absence(id, practitioner, establishment)
        .await?
    {
        return Err(AppError::NotFound("absence introuvable".into()));
    }
    trace(ctx, who, "agenda.absence-removed", practitioner).await
}

/// The one-off openings of `practitioner` at `establishment`.
pub async fn extras(
    ctx: Ctx<'_>,
    practitioner: UserId,
    establishment: EstablishmentId,
) -> Result<Vec<ExtraOpening>, AppError> {
    Ok(ctx
        .store
        .extra_openings(practitioner, establishment)
        .await?
        .into_iter()
        .map(|(_, x)| x)
        .collect())
}

/// Records a one-off opening on a date to come (checked like a weekly one).
pub async fn add_extra(
    ctx: Ctx<'_>,
    actor: &Actor,
    practitioner: UserId,
    establishment: EstablishmentId,
    extra: &ExtraOpening,
) -> Result<(), AppError> {
    let who = may_edit(ctx, actor, practitioner, establishment).await?;
    check(&extra.opening).map_err(|e| AppError::BadRequest("invalid", e.to_string()))?;
    let today = french_date(ctx.now_ms())
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("date du jour")))?;
    if extra.day < today {
        return Err(AppError::BadRequest(
            "invalid",
            "cette date est passée : choisissez un jour à venir".into(),
        ));
    }
    ctx.store
        .add_extra_opening(practitioner, establishment, extra, &who.id, ctx.now_ms())
        .await?;
    trace(ctx, who, "agenda.extra-opening", practitioner).await
}

/// Removes a one-off opening (appointments already booked in it stay).
pub async fn remove_extra(
    ctx: Ctx<'_>,
    actor: &Actor,
    practitioner: UserId,
    establishment: EstablishmentId,
    id: &str,
) -> Result<(), AppError> {
    let who = may_edit(ctx, actor, practitioner, establishment).await?;
    if !ctx
        .store
        .remove_extra_opening(id, practitioner, establishment)
        .await?
    {
        return Err(AppError::NotFound("ouverture introuvable".into()));
    }
    trace(ctx, who, "agenda.extra-opening-removed", practitioner).await
}
