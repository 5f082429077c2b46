//! The care team's side of remote monitoring: a patient's monitoring history
//! as nurses and doctors read it (responses, alerts with the muted ones, the
//! mutings), muting one item's alerts for a while and lifting it, the team's
//! opening hours that SLAs count in, the doctors' on-call rota, and the
//! notice that tells the doctor on call of an escalated alert. The rules
//! (how long a muting lasts, what it silences, the working time, who is on
//! call) are `domain`'s.

use domain::audit::AuditActor;
use domain::calendar::{OnCall, TeamHours, check_hours, check_on_call, on_call_at};
use domain::identity::PatientRecord;
use domain::monitoring::{AlertLevel, MuteError, check_mute};
use domain::org::Role;
use domain::policy::{Actor, Decision, EstablishmentAction, Grant, authorize_establishment};
use domain::{EnrolmentId, EstablishmentId, UserId};
use interop::programme::{ItemKind, Programme};
use store::care_team::{NewMute, StoredMute};
use store::monitoring::{Alert, Enrolment, StoredResponse};

use crate::error::AppError;
use crate::services::ctx::Ctx;
use crate::services::{alerts, monitoring, patients};

/// Enrolment `id` if `actor` follows it: a nurse or doctor of its
/// establishment who writes the patient's clinical data.
async fn followed(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: EnrolmentId,
) -> Result<(Enrolment, PatientRecord, Option<Grant>), AppError> {
    let not_found = || AppError::NotFound("suivi introuvable".into());
    let e = ctx.store.enrolment(id).await.map_err(|_| not_found())?;
    let (p, grant) =
        alerts::triaged_patient(ctx, actor, e.establishment, e.patient, not_found).await?;
    Ok((e, p, grant))
}

/// An item the team may mute: it has alert rules.
#[derive(Debug, Clone)]
pub struct MutableItem {
    /// linkId.
    pub link_id: String,
    /// Short name.
    pub label: String,
    /// Graded (CTCAE), up to this grade: the muting names the highest
    /// grade it silences.
    pub grades: Option<u8>,
}

/// The items of `p` that raise alerts.
pub fn mutable_items(p: &Programme) -> Vec<MutableItem> {
    p.items
        .iter()
        .filter(|i| p.rules.iter().any(|r| rule_item(r) == i.link_id))
        .map(|i| MutableItem {
            link_id: i.link_id.clone(),
            label: i.label.clone(),
            grades: match i.kind {
                ItemKind::Grade(max) => Some(max),
                _ => None,
            },
        })
        .collect()
}

fn rule_item(r: &domain::monitoring::Rule) -> &str {
    use domain::monitoring::Rule;
    match r {
        Rule::Grade { item, .. }
        | Rule::Above { item, .. }
        | Rule::Below { item, .. }
        | Rule::Yes { item, .. }
        | Rule::Drop { item, .. } => item,
    }
}

/// A patient's monitoring in one enrolment, as the team reads it.
#[derive(Debug)]
pub struct History {
    /// The enrolment.
    pub enrolment: Enrolment,
    /// Its programme.
    pub programme: &'static Programme,
    /// The patient's display name.
    pub patient: String,
    /// The responses, newest first.
    pub responses: Vec<StoredResponse>,
    /// The alerts, newest first (muted ones included).
    pub alerts: Vec<Alert>,
    /// The mutings, newest first.
    pub mutes: Vec<StoredMute>,
    /// What may be muted.
    pub items: Vec<MutableItem>,
}

/// The history of enrolment `id` (an audited clinical read).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn history(ctx: Ctx<'_>, actor: &Actor, id: EnrolmentId) -> Result<History, AppError> {
    let (e, p, _) = followed(ctx, actor, id).await?;
    patients::clinical_read(ctx, actor, e.patient, &format!("CarePlan/{id}")).await?;
    let programme = monitoring::programme(&e.programme)
        .ok_or_else(|| AppError::NotFound("programme inconnu".into()))?;
    let (mut responses, mut alerts) = monitoring::enrolment_history(ctx, &e).await?;
    responses.reverse();
    alerts.reverse();
    Ok(History {
        mutes: ctx.store.mutes_of(id).await?,
        items: mutable_items(programme),
        programme,
        patient: p.traits.display_name(),
        responses,
        alerts,
        enrolment: e,
    })
}

/// A muting as a form asks for it.
#[derive(Debug, Clone)]
pub struct MuteRequest<'a> {
    /// Item.
    pub item: &'a str,
    /// Highest grade muted (graded items).
    pub max_grade: Option<u8>,
    /// Highest level muted (other items).
    pub max_level: AlertLevel,
    /// Days.
    pub days: i64,
    /// Why.
    pub reason: &'a str,
}

fn refused(e: MuteError) -> AppError {
    AppError::Unprocessable("business-rule", e.to_string())
}

/// Mutes one item's alerts on enrolment `id` for `actor` (`name` is shown on
/// the page); audited. Its id.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn mute(
    ctx: Ctx<'_>,
    actor: &Actor,
    name: &str,
    id: EnrolmentId,
    r: &MuteRequest<'_>,
) -> Result<String, AppError> {
    let (e, _, grant) = followed(ctx, actor, id).await?;
    if e.status != "active" {
        return Err(AppError::Conflict("ce suivi est terminé".into()));
    }
    let p = monitoring::programme(&e.programme)
        .ok_or_else(|| AppError::NotFound("programme inconnu".into()))?;
    let Some(item) = mutable_items(p).into_iter().find(|i| i.link_id == r.item) else {
        return Err(refused(MuteError::Item));
    };
    // A graded item is muted up to a grade (its level is the rules' for that
    // grade: never urgent); another up to a level.
    let max_grade = match item.grades {
        Some(top) => Some(
            r.max_grade
                .filter(|g| *g <= top)
                .ok_or_else(|| refused(MuteError::Grade))?,
        ),
        None => None,
    };
    let max_level = if item.grades.is_some() {
        AlertLevel::Warning
    } else {
        r.max_level
    };
    check_mute(r.days, r.reason, max_level, max_grade).map_err(refused)?;
    let now = ctx.now_ms();
    let new = NewMute {
        enrolment: e.id,
        patient: e.patient,
        item: &item.link_id,
        max_grade,
        max_level,
        reason: r.reason.trim(),
        until_ms: now + r.days * 24 * 3600 * 1000,
        created_by: name,
    };
    match ctx
        .store
        .add_mute(&new, &AuditActor::new(actor, grant), now)
        .await
    {
        Ok(id) => Ok(id),
        Err(store::StoreError::Refused(_)) => Err(refused(MuteError::Item)),
        Err(e) => Err(e.into()),
    }
}

/// Lifts muting `id` before its end (`note`: why), audited; the enrolment.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn lift(
    ctx: Ctx<'_>,
    actor: &Actor,
    name: &str,
    id: &str,
    note: &str,
) -> Result<EnrolmentId, AppError> {
    let not_found = || AppError::NotFound("mise en sourdine introuvable".into());
    let m = ctx.store.mute(id).await.map_err(|_| not_found())?;
    let (e, _, grant) = followed(ctx, actor, m.enrolment).await?;
    let lifted = ctx
        .store
        .lift_mute(
            id,
            name,
            note.trim(),
            &AuditActor::new(actor, grant),
            ctx.now_ms(),
        )
        .await?;
    if !lifted {
        return Err(AppError::Conflict(
            "cette mise en sourdine est déjà terminée".into(),
        ));
    }
    Ok(e.id)
}

/// The establishment `actor` sets the care team of, when allowed.
async fn manager(
    ctx: Ctx<'_>,
    actor: &Actor,
    establishment: EstablishmentId,
) -> Result<AuditActor, AppError> {
    let est = ctx
        .store
        .establishment(establishment)
        .await
        .map_err(|_| AppError::NotFound("établissement introuvable".into()))?;
    match authorize_establishment(
        actor,
        EstablishmentAction::ManageCareTeam,
        establishment,
        est.territory,
    ) {
        Decision::Allow(g) => Ok(AuditActor::new(actor, g)),
        Decision::Deny(why) => Err(AppError::Forbidden(why.into())),
    }
}

/// A care team's settings as its page shows them.
#[derive(Debug)]
pub struct Team {
    /// The hours.
    pub hours: TeamHours,
    /// On-call periods not over, with the doctor's name.
    pub rota: Vec<(OnCall, String)>,
    /// The establishment's doctors (id, name), for the rota.
    pub doctors: Vec<(UserId, String)>,
}

/// The care team of `establishment`.
pub async fn team(
    ctx: Ctx<'_>,
    actor: &Actor,
    establishment: EstablishmentId,
) -> Result<Team, AppError> {
    manager(ctx, actor, establishment).await?;
    let doctors = alerts::doctors(ctx, establishment).await?;
    let name_of = |id: UserId| {
        doctors
            .iter()
            .find(|(d, _)| *d == id)
            .map_or_else(|| "médecin".to_owned(), |(_, n)| n.clone())
    };
    let rota = ctx
        .store
        .on_call_rota(establishment, ctx.now_ms())
        .await?
        .into_iter()
        .map(|p| {
            let n = name_of(p.doctor);
            (p, n)
        })
        .collect();
    Ok(Team {
        hours: ctx.store.team_hours(establishment).await?,
        rota,
        doctors,
    })
}

/// Replaces the team hours of `establishment`.
pub async fn set_hours(
    ctx: Ctx<'_>,
    actor: &Actor,
    establishment: EstablishmentId,
    hours: &TeamHours,
) -> Result<(), AppError> {
    let who = manager(ctx, actor, establishment).await?;
    check_hours(hours).map_err(|e| AppError::Unprocessable("business-rule", e.to_string()))?;
    ctx.store
        .set_team_hours(establishment, hours, &who, ctx.now_ms())
        .await?;
    Ok(())
}

/// Adds an on-call period for one of the establishment's doctors.
pub async fn add_on_call(
    ctx: Ctx<'_>,
    actor: &Actor,
    name: &str,
    establishment: EstablishmentId,
    doctor: UserId,
    starts_at_ms: i64,
    ends_at_ms: i64,
) -> Result<String, AppError> {
    let who = manager(ctx, actor, establishment).await?;
    let now = ctx.now_ms();
    check_on_call(starts_at_ms, ends_at_ms, now)
        .map_err(|e| AppError::Unprocessable("business-rule", e.to_string()))?;
    let grants = ctx.store.grants(doctor).await.unwrap_or_default();
    if !grants
        .iter()
        .any(|g| g.role == Role::Doctor && g.establishment == establishment)
    {
        return Err(AppError::Unprocessable(
            "business-rule",
            "l'astreinte est tenue par un médecin de l'établissement".into(),
        ));
    }
    Ok(ctx
        .store
        .add_on_call(
            establishment,
            doctor,
            (starts_at_ms, ends_at_ms),
            &who,
            name,
            now,
        )
        .await?)
}

/// Removes an on-call period of `establishment`.
pub async fn remove_on_call(
    ctx: Ctx<'_>,
    actor: &Actor,
    establishment: EstablishmentId,
    id: &str,
) -> Result<(), AppError> {
    let who = manager(ctx, actor, establishment).await?;
    if !ctx
        .store
        .remove_on_call(establishment, id, &who, ctx.now_ms())
        .await?
    {
        return Err(AppError::NotFound("période d'astreinte introuvable".into()));
    }
    Ok(())
}

/// Tells the doctor on call that `alert` was escalated: an e-mail (through
/// the outbox, with a link only: no health data leaves by mail) when the
/// doctor has an address and mail is configured. Whatever happens is
/// written in the alert's timeline, so that the queue shows whether anyone
/// was reached.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn notify_on_call(ctx: Ctx<'_>, alert: &Alert) -> Result<(), AppError> {
    let now = ctx.now_ms();
    let rota = ctx.store.on_call_rota(alert.establishment, now).await?;
    let (note, notice) = match on_call_at(&rota, now) {
        None => (
            "aucun médecin d'astreinte à cette heure : alerte dans la file des médecins".to_owned(),
            None,
        ),
        Some(p) => {
            let doctor = ctx.store.user(p.doctor).await?;
            match (ctx.mailer, ctx.store.user_email(p.doctor).await?) {
                (Some(_), Some(_)) => (
                    format!("{} (astreinte) prévenu(e) par e-mail", doctor.display_name),
                    Some(store::outbox::NewMessage {
                        idempotency_key: format!("astreinte:{}", alert.id),
                        topic: crate::outbound::NOTIFY_TOPIC.into(),
                        destination: format!("pro:{}", p.doctor),
                        payload: format!(
                            "Une alerte de télésurveillance ({}) vous est transmise : {}/alertes/{}",
                            alert.level.label_fr(),
                            ctx.config.public_url().trim_end_matches('/'),
                            alert.id
                        ),
                        establishment: Some(alert.establishment),
                    }),
                ),
                (None, _) => (
                    format!(
                        "{} (astreinte) non prévenu(e) : messagerie non configurée",
                        doctor.display_name
                    ),
                    None,
                ),
                (_, None) => (
                    format!(
                        "{} (astreinte) non prévenu(e) : aucune adresse e-mail",
                        doctor.display_name
                    ),
                    None,
                ),
            }
        }
    };
    ctx.store
        .note_alert(alert.id, "notified", &note, notice.as_ref(), now)
        .await?;
    Ok(())
}
