//! The nurses' alert queue: which alerts an actor triages, the queue with the
//! patients' names (each an audited read), the unread threads and the
//! proposed enrolments beside it, one alert with the steps open to the actor,
//! and a triage step. The rules (which step from which state, who closes an
//! escalated alert) are `domain::monitoring`'s; the store applies a step with
//! its audit entry in one transaction.

use domain::identity::PatientRecord;
use domain::monitoring::{
    AlertStatus, Outcome, TriageError, TriageStep, Triager, may_triage, triage_steps,
};
use domain::org::Role;
use domain::policy::{Actor, Decision, Grant, PatientAction, authorize_patient};
use domain::{AlertId, EstablishmentId, PatientId};
use store::monitoring::{Alert, Proposal};

use crate::error::AppError;
use crate::live::LiveEvent;
use crate::services::ctx::Ctx;
use crate::services::{monitoring, patients};

/// Establishments whose alerts `actor` triages: where they are a nurse or a
/// doctor, each once.
pub fn triage_establishments(actor: &Actor) -> Vec<EstablishmentId> {
    let mut v: Vec<EstablishmentId> = actor
        .grants
        .iter()
        .filter(|g| matches!(g.role, Role::Nurse | Role::Doctor))
        .map(|g| g.establishment)
        .collect();
    v.dedup();
    v
}

/// Whether `actor` triages `establishment`'s alerts as its doctor or as a nurse.
pub fn triager(actor: &Actor, establishment: EstablishmentId) -> Triager {
    if actor
        .grants
        .iter()
        .any(|g| g.role == Role::Doctor && g.establishment == establishment)
    {
        Triager::Doctor
    } else {
        Triager::Nurse
    }
}

/// Alert `id` if `actor` triages it: a nurse or doctor of the alert's
/// establishment, allowed to write the patient's clinical data.
pub async fn for_triage(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: AlertId,
) -> Result<(Alert, Option<Grant>), AppError> {
    let not_found = || AppError::NotFound("alerte introuvable".into());
    let a = ctx.store.alert(id).await.map_err(|_| not_found())?;
    let (_, grant) = triaged_patient(ctx, actor, a.establishment, a.patient, not_found).await?;
    Ok((a, grant))
}

/// `patient`, followed by `establishment`, if `actor` triages there (a nurse
/// or doctor of it; else `not_found`) and may write the patient's clinical
/// data; with the grant that allows it.
pub(crate) async fn triaged_patient(
    ctx: Ctx<'_>,
    actor: &Actor,
    establishment: EstablishmentId,
    patient: domain::PatientId,
    not_found: impl Fn() -> AppError,
) -> Result<(PatientRecord, Option<Grant>), AppError> {
    if !triage_establishments(actor).contains(&establishment) {
        return Err(not_found());
    }
    let (p, scope) = patients::with_scope(ctx, patient).await?;
    match authorize_patient(actor, PatientAction::WriteClinical, &scope) {
        Decision::Allow(g) => Ok((p, g)),
        Decision::Deny(why) => Err(AppError::Forbidden(why.into())),
    }
}

/// An alert of the queue.
#[derive(Debug)]
pub struct Queued {
    /// The alert.
    pub alert: Alert,
    /// The patient's display name.
    pub patient: String,
    /// Past due and not yet with a nurse, whether escalated or not.
    pub overdue: bool,
}

/// Alerts shown on one page of the queue: the most serious and oldest first,
/// as a nurse works through them. A page of a thousand rows (each read from
/// the database, named and written out) took longer than the goal of 50 ms
/// (benches/README.md, "Pages") and weighed on a phone at every refresh;
/// and each name shown is an audited read, so a page reads only the names
/// it shows.
pub const QUEUE_PAGE: usize = 50;

/// One page of the alert queue.
#[derive(Debug)]
pub struct QueuePage {
    /// Its alerts, in the queue's order.
    pub rows: Vec<Queued>,
    /// Alerts in the whole queue.
    pub total: usize,
    /// This page's number, from 1 (a number past the last gives the last).
    pub page: usize,
    /// Pages in the queue (1 when it is empty).
    pub pages: usize,
}

/// Page `page` (from 1) of the queue of `actor`'s establishments, the most
/// serious alerts then the oldest first across them; showing a patient's
/// name is an audited read of their identity, once per session and patient
/// (the queue refreshes every few seconds), and only for the page shown.
/// Refused to anyone but nurses and doctors.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn queue(
    ctx: Ctx<'_>,
    actor: &Actor,
    session: &str,
    page: usize,
) -> Result<QueuePage, AppError> {
    let ests = triage_establishments(actor);
    if ests.is_empty() {
        return Err(AppError::Forbidden(
            "file d'alertes réservée aux infirmiers et médecins".into(),
        ));
    }
    let now = ctx.now_ms();
    let offset = |page: usize| (page - 1).saturating_mul(QUEUE_PAGE);
    let asked = page.max(1);
    let (mut shown, total) = ctx
        .store
        .alert_queue_page(&ests, QUEUE_PAGE, offset(asked))
        .await?;
    let pages = total.div_ceil(QUEUE_PAGE).max(1);
    let page = asked.min(pages);
    if page != asked {
        // Past the last page: the last one (the queue may have shrunk since
        // the link was made).
        shown = ctx
            .store
            .alert_queue_page(&ests, QUEUE_PAGE, offset(page))
            .await?
            .0;
    }
    let ids: Vec<PatientId> = shown.iter().map(|a| a.patient).collect();
    let names = patients::names_on_live_page(ctx, actor, session, &ids).await?;
    let rows = shown
        .into_iter()
        .map(|a| Queued {
            overdue: matches!(a.status, AlertStatus::Open | AlertStatus::Escalated)
                && now > a.due_at_ms,
            patient: names.of(a.patient),
            alert: a,
        })
        .collect();
    Ok(QueuePage {
        rows,
        total,
        page,
        pages,
    })
}

/// A thread with patient messages the team has not read.
#[derive(Debug)]
pub struct Unread {
    /// The enrolment the thread belongs to.
    pub enrolment: domain::EnrolmentId,
    /// The patient's display name.
    pub patient: String,
    /// How many messages are unread.
    pub unread: i64,
    /// The last message (Unix ms).
    pub last_ms: i64,
}

/// Unread patient messages in `actor`'s establishments (names read audited).
pub async fn unread(ctx: Ctx<'_>, actor: &Actor, session: &str) -> Result<Vec<Unread>, AppError> {
    let mut threads = Vec::new();
    for e in triage_establishments(actor) {
        threads.extend(ctx.store.unread_threads(e).await?);
    }
    let ids: Vec<PatientId> = threads.iter().map(|t| t.1).collect();
    let names = patients::names_on_live_page(ctx, actor, session, &ids).await?;
    Ok(threads
        .into_iter()
        .map(|(enrolment, patient, unread, last_ms)| Unread {
            enrolment,
            patient: names.of(patient),
            unread,
            last_ms,
        })
        .collect())
}

/// Enrolments proposed by ADT events in `actor`'s establishments, with the
/// patients' names (audited reads).
pub async fn proposals(
    ctx: Ctx<'_>,
    actor: &Actor,
    session: &str,
) -> Result<Vec<(Proposal, String)>, AppError> {
    let mut found = Vec::new();
    for e in triage_establishments(actor) {
        found.extend(ctx.store.proposals(e).await?);
    }
    let wanted: Vec<PatientId> = found.iter().map(|p| p.patient).collect();
    let names = patients::names_on_live_page(ctx, actor, session, &wanted).await?;
    Ok(found
        .into_iter()
        .map(|p| {
            let name = names.of(p.patient);
            (p, name)
        })
        .collect())
}

/// One alert as its page shows it.
#[derive(Debug)]
pub struct Shown {
    /// The alert.
    pub alert: Alert,
    /// The patient (an audited read).
    pub patient: PatientRecord,
    /// The steps `actor` may take now.
    pub steps: &'static [TriageStep],
    /// The timeline: (French time, who, what, note).
    pub timeline: Vec<(String, String, String, String)>,
    /// The photo the patient attached, if any (its id).
    pub photo: Option<String>,
}

/// Alert `id` for `actor`, who triages it.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn show(ctx: Ctx<'_>, actor: &Actor, id: AlertId) -> Result<Shown, AppError> {
    let (a, _) = for_triage(ctx, actor, id).await?;
    let patient = patients::read(ctx, actor, a.patient).await?;
    Ok(Shown {
        steps: triage_steps(a.status, triager(actor, a.establishment)),
        timeline: monitoring::timeline(ctx, a.id).await?,
        photo: ctx.store.alert_attachment(a.id).await?,
        patient,
        alert: a,
    })
}

/// What became of a step.
#[derive(Debug)]
pub enum Acted {
    /// Applied; the establishment's queue was told.
    Done,
    /// Refused by the rules (nothing written).
    Refused(domain::DomainError),
}

/// Takes step `step` (a form code) with `note` on alert `id` for `actor`
/// (`name` is shown in the timeline); closing says how the alert ended
/// (`outcome`, a code of [`Outcome`]) and also sends the closing report when
/// an ORU destination is configured.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn act(
    ctx: Ctx<'_>,
    actor: &Actor,
    name: &str,
    id: AlertId,
    step: &str,
    note: &str,
    outcome: &str,
) -> Result<Acted, AppError> {
    let (a, grant) = for_triage(ctx, actor, id).await?;
    let Some(step) = TriageStep::from_code(step) else {
        return Err(AppError::BadRequest("invalid", "action inconnue".into()));
    };
    let outcome = match outcome.trim() {
        "" => None,
        code => Some(
            Outcome::from_code(code)
                .ok_or_else(|| AppError::BadRequest("invalid", "issue inconnue".into()))?,
        ),
    };
    if let Err(e) = may_triage(a.status, triager(actor, a.establishment)) {
        return Ok(Acted::Refused(e.into()));
    }
    let action = step.with_note(note.trim().to_owned());
    let who = domain::audit::AuditActor::new(actor, grant);
    let report = match (&action, outcome) {
        (domain::monitoring::TriageAction::Close(note), Some(kind)) if !note.is_empty() => {
            monitoring::closing_report(ctx, &a, kind, note, name).await?
        }
        _ => None,
    };
    match ctx
        .store
        .triage_alert(
            id,
            &action,
            outcome,
            &who,
            name,
            report.as_ref(),
            ctx.now_ms(),
        )
        .await
    {
        Ok(next) => {
            if next == AlertStatus::Escalated {
                crate::services::care_team::notify_on_call(ctx, &a).await?;
            }
            if next == AlertStatus::Taken {
                acknowledge(ctx, &a).await?;
            }
            ctx.publish(LiveEvent::Alerts(a.establishment));
            crate::services::subscriptions::alert_changed(ctx, &a).await;
            Ok(Acted::Done)
        }
        Err(store::StoreError::Rule(e)) => Ok(Acted::Refused(e)),
        Err(e) => Err(e.into()),
    }
}

/// Tells the patient their alert is in hand (on the channel they chose; no
/// health fact in the text: it may go by SMS). Once per alert.
async fn acknowledge(ctx: Ctx<'_>, a: &Alert) -> Result<(), AppError> {
    let m = store::outbox::NewMessage {
        idempotency_key: format!("prise-en-charge:{}", a.id),
        topic: crate::outbound::NOTIFY_TOPIC.into(),
        destination: format!("portail:{}", a.patient),
        payload: format!(
            "Parcours : l'équipe de suivi a pris en charge votre alerte du {}. Elle vous rappelle si besoin. En cas d'urgence, appelez le 15.",
            crate::fmt::paris_time(a.raised_at_ms)
        ),
        establishment: Some(a.establishment),
    };
    ctx.store.enqueue(&m, ctx.now_ms()).await?;
    Ok(())
}

/// Whether `actor` may close alert `a` now (where the page offers the
/// ways out: a teleconsultation, an orientation).
fn may_close(actor: &Actor, a: &Alert) -> bool {
    triage_steps(a.status, triager(actor, a.establishment)).contains(&TriageStep::Close)
}

/// The doctors of `establishment` (id, name), for a teleconsultation.
pub async fn doctors(
    ctx: Ctx<'_>,
    establishment: EstablishmentId,
) -> Result<Vec<(domain::UserId, String)>, AppError> {
    let est = ctx.store.establishment(establishment).await?;
    Ok(ctx
        .store
        .professionals(est.territory)
        .await?
        .into_iter()
        .filter(|(_, grants)| {
            grants
                .iter()
                .any(|g| g.role == Role::Doctor && g.establishment == establishment)
        })
        .map(|(u, _)| (u.id, u.display_name))
        .collect())
}

/// How far ahead a teleconsultation from an alert is looked for.
const TELE_DAYS: i64 = 14;

/// From alert `id`, books the first free teleconsultation slot of `doctor`
/// (a doctor of the alert's establishment) for the patient — who gets the
/// confirmation and may move it from the portal — and closes the alert with
/// that outcome. Only where the actor may close the alert.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn book_teleconsultation(
    ctx: Ctx<'_>,
    actor: &Actor,
    name: &str,
    id: AlertId,
    doctor: domain::UserId,
) -> Result<Acted, AppError> {
    let (a, _) = for_triage(ctx, actor, id).await?;
    if !may_close(actor, &a) {
        return Ok(Acted::Refused(TriageError::NotNow.into()));
    }
    let Some((_, doctor_name)) = doctors(ctx, a.establishment)
        .await?
        .into_iter()
        .find(|(d, _)| *d == doctor)
    else {
        return Err(AppError::Unprocessable(
            "business-rule",
            "choisissez un médecin de l'établissement".into(),
        ));
    };
    let slot = crate::services::schedule::free_slots(ctx, doctor, a.establishment, TELE_DAYS)
        .await?
        .into_iter()
        .find(|s| s.mode == domain::schedule::Mode::Tele);
    let Some(slot) = slot else {
        return Err(AppError::Unprocessable(
            "business-rule",
            format!(
                "{doctor_name} n'a aucun créneau de téléconsultation libre dans les {TELE_DAYS} jours : choisissez un autre médecin ou prenez rendez-vous depuis l'agenda"
            ),
        ));
    };
    crate::services::schedule::book(
        ctx,
        actor,
        name,
        a.patient,
        doctor,
        a.establishment,
        slot.start_ms,
    )
    .await?;
    let note = format!(
        "Téléconsultation le {} avec {doctor_name}",
        crate::fmt::paris_time(slot.start_ms)
    );
    act(
        ctx,
        actor,
        name,
        id,
        TriageStep::Close.code(),
        &note,
        Outcome::Consultation.code(),
    )
    .await
}

/// What an orientation request asked from alert `id` starts with: the
/// programme, the alert and the steps of its timeline, for `actor` who may
/// close it.
pub async fn orientation_needs(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: AlertId,
) -> Result<String, AppError> {
    let (a, _) = for_triage(ctx, actor, id).await?;
    if !may_close(actor, &a) {
        return Err(AppError::Conflict(
            "prenez d'abord l'alerte en charge (ou, transmise, laissez-la au médecin)".into(),
        ));
    }
    let e = ctx.store.enrolment(a.enrolment).await?;
    let title =
        monitoring::programme(&e.programme).map_or(e.programme.clone(), |p| p.title.clone());
    let mut text = format!(
        "Télésurveillance « {title} » depuis le {}.\nAlerte {} du {} : {} — {}.",
        crate::fmt::paris_date(e.started_at_ms),
        a.level.label_fr(),
        crate::fmt::paris_time(a.raised_at_ms),
        monitoring::item_label(&a.item),
        a.reason
    );
    for (_, who, action, note) in monitoring::timeline(ctx, a.id).await? {
        if !note.is_empty() && action != "alerte reçue" {
            text.push_str(&format!("\n{action} ({who}) : {note}"));
        }
    }
    Ok(text)
}

/// Closes alert `id` as sent to an orientation (request `orientation`,
/// `target` SSR or HAD) once the request is made.
pub async fn oriented(
    ctx: Ctx<'_>,
    actor: &Actor,
    name: &str,
    id: AlertId,
    target: &str,
) -> Result<Acted, AppError> {
    act(
        ctx,
        actor,
        name,
        id,
        TriageStep::Close.code(),
        &format!("Demande d'orientation ({}) envoyée", target.to_uppercase()),
        Outcome::Orientation.code(),
    )
    .await
}
