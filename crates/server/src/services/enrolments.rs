//! Enrolling a patient in a remote-monitoring programme by hand, ending an
//! enrolment (with its summary report), and deciding on an enrolment an ADT
//! event proposed. Only an establishment that cares for the patient (writes
//! their clinical data) enrols them; the patient's consent is required.

use domain::PatientId;
use domain::UserId;
use domain::audit::AuditActor;
use domain::policy::{Actor, Decision, Grant, PatientAction, authorize_patient};
use store::monitoring::NewEnrolment;

use crate::error::AppError;
use crate::services::ctx::Ctx;
use crate::services::{alerts, monitoring, patients};

fn consent_missing() -> AppError {
    AppError::Unprocessable(
        "business-rule",
        "le consentement du patient doit être recueilli avant l'inscription".into(),
    )
}

/// The grant under which `actor` may enrol `patient` (its id as text): an
/// establishment that writes their clinical data.
pub async fn carer(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: &str,
) -> Result<(PatientId, Grant), AppError> {
    let not_found = || AppError::NotFound("patient introuvable".into());
    let pid: PatientId = patient.parse().map_err(|_| not_found())?;
    let (_, scope) = patients::with_scope(ctx, pid)
        .await
        .map_err(|_| not_found())?;
    match authorize_patient(actor, PatientAction::WriteClinical, &scope) {
        Decision::Allow(Some(g)) => Ok((pid, g)),
        _ => Err(AppError::Forbidden(
            "seul un établissement qui prend en charge ce patient peut l'inscrire".into(),
        )),
    }
}

/// Enrols `patient` in `programme` from `actor`'s establishment, once the
/// patient consented.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn enrol(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
    patient: &str,
    programme: &str,
    consent: bool,
) -> Result<(), AppError> {
    let (pid, grant) = carer(ctx, actor, patient).await?;
    let Some(p) = monitoring::programme(programme.trim()) else {
        return Err(AppError::Unprocessable(
            "business-rule",
            "programme inconnu".into(),
        ));
    };
    if !ctx
        .store
        .establishment_programmes(grant.establishment)
        .await?
        .contains(&p.id)
    {
        return Err(AppError::Unprocessable(
            "business-rule",
            format!(
                "votre établissement ne propose pas le programme « {} » : son administrateur l'ajoute à la liste des programmes de l'établissement",
                p.title
            ),
        ));
    }
    if !consent {
        return Err(consent_missing());
    }
    let n = NewEnrolment {
        patient: pid,
        establishment: grant.establishment,
        programme: p.id.clone(),
        consent_at_ms: ctx.now_ms(),
        created_by: user.to_string(),
    };
    ctx.store
        .enrol(&n, &AuditActor::new(actor, Some(grant)), ctx.now_ms())
        .await?;
    Ok(())
}

/// Ends `patient`'s enrolment `enrolment` of `actor`'s establishment for
/// `reason`; an active one sends its summary report.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn end(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: &str,
    enrolment: domain::EnrolmentId,
    reason: &str,
) -> Result<(), AppError> {
    let (pid, grant) = carer(ctx, actor, patient).await?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AppError::Unprocessable(
            "business-rule",
            "indiquez le motif de fin du suivi".into(),
        ));
    }
    let Some(ours) = ctx
        .store
        .enrolments_of(pid)
        .await?
        .into_iter()
        .find(|e| e.id == enrolment && e.establishment == grant.establishment)
    else {
        return Err(AppError::NotFound("suivi introuvable".into()));
    };
    let who = AuditActor::new(actor, Some(grant));
    let report = if ours.status == "active" {
        monitoring::summary_report(ctx, &ours, reason).await?
    } else {
        None
    };
    if !ctx
        .store
        .end_enrolment(enrolment, reason, report.as_ref(), &who, ctx.now_ms())
        .await?
    {
        return Err(AppError::Conflict("ce suivi est déjà terminé".into()));
    }
    Ok(())
}

/// A nurse or doctor of the establishment accepts (`accept`, the patient's
/// consent given) or declines proposal `id`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn decide_proposal(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
    id: &str,
    accept: bool,
    consent: bool,
) -> Result<(), AppError> {
    let mut found = None;
    for e in alerts::triage_establishments(actor) {
        if let Some(p) = ctx
            .store
            .proposals(e)
            .await?
            .into_iter()
            .find(|p| p.id == id)
        {
            found = Some(p);
        }
    }
    let p = found
        .ok_or_else(|| AppError::NotFound("proposition introuvable ou déjà traitée".into()))?;
    if accept && !consent {
        return Err(consent_missing());
    }
    let (_, grant) = carer(ctx, actor, &p.patient.to_string()).await?;
    let who = AuditActor::new(actor, Some(grant));
    match ctx
        .store
        .decide_proposal(&p, accept, &user.to_string(), &who, ctx.now_ms())
        .await?
    {
        Some(_) => Ok(()),
        None => Err(AppError::Conflict("proposition déjà traitée".into())),
    }
}
