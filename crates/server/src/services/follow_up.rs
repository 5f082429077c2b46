//! A patient's own remote monitoring: their active enrolments with what waits
//! for them, raising an alert themselves (a symptom, their words, a photo),
//! the message thread with the care team (for the patient, or a nurse or
//! doctor of the enrolment's establishment), and the files patients sent.

use domain::EnrolmentId;
use domain::audit::AuditActor;
use domain::monitoring::{AlertLevel, questionnaire_due};
use domain::policy::{Actor, Grant, Principal};
use interop::programme::Programme;
use store::monitoring::{Attachment, Enrolment, NewAlert};

use crate::error::AppError;
use crate::live::LiveEvent;
use crate::services::ctx::Ctx;
use crate::services::enrolments::carer;
use crate::services::uploads::{MAX_PHOTO, sniff_type};
use crate::services::{alerts, monitoring, patients};

/// What became of a patient's or a carer's post.
#[derive(Debug, PartialEq, Eq)]
pub enum Posted {
    /// Recorded.
    Done,
    /// Refused (nothing written): why, in French, safe to show.
    Refused(&'static str),
    /// The enrolment has ended.
    Ended,
}

/// The active enrolments of the patient `actor` is.
pub async fn own_enrolments(ctx: Ctx<'_>, actor: &Actor) -> Result<Vec<Enrolment>, AppError> {
    let Principal::Patient { patient, .. } = actor.principal else {
        return Err(AppError::Forbidden(
            "espace réservé aux patients suivis".into(),
        ));
    };
    Ok(ctx
        .store
        .enrolments_of(patient)
        .await?
        .into_iter()
        .filter(|e| e.status == "active")
        .collect())
}

/// The patient's own active enrolment `id`.
pub async fn own(ctx: Ctx<'_>, actor: &Actor, id: EnrolmentId) -> Result<Enrolment, AppError> {
    own_enrolments(ctx, actor)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| AppError::NotFound("suivi introuvable".into()))
}

/// The patient's own enrolment `id` with its programme.
pub async fn own_with_programme(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: EnrolmentId,
) -> Result<(Enrolment, &'static Programme), AppError> {
    let e = own(ctx, actor, id).await?;
    let p = monitoring::programme(&e.programme)
        .ok_or_else(|| AppError::NotFound("programme inconnu".into()))?;
    Ok((e, p))
}

/// An enrolment as the patient's page lists it.
#[derive(Debug)]
pub struct Followed {
    /// The enrolment.
    pub enrolment: Enrolment,
    /// Its programme.
    pub programme: &'static Programme,
    /// Team messages the patient has not read.
    pub unread: usize,
    /// Since when the questionnaire waits (Unix ms), if it does.
    pub due_ms: Option<i64>,
}

/// The patient's active enrolments, with unread messages and due questionnaires.
pub async fn overview(ctx: Ctx<'_>, actor: &Actor) -> Result<Vec<Followed>, AppError> {
    let enrolments = own_enrolments(ctx, actor).await?;
    let (messages, responses) = match enrolments.first() {
        Some(e) => (
            ctx.store.messages_of(e.patient).await?,
            ctx.store.responses_of(e.patient).await?,
        ),
        None => (vec![], vec![]),
    };
    let now = ctx.now_ms();
    Ok(enrolments
        .into_iter()
        .filter_map(|e| {
            let p = monitoring::programme(&e.programme)?;
            // A device's measure is not the questionnaire answered.
            let last = responses
                .iter()
                .filter(|r| r.enrolment == e.id && r.source.is_none())
                .map(|r| r.submitted_at_ms)
                .max();
            Some(Followed {
                unread: messages
                    .iter()
                    .filter(|m| m.enrolment == e.id && !m.from_patient && m.read_at_ms.is_none())
                    .count(),
                due_ms: questionnaire_due(e.started_at_ms, last, p.frequency_days, now),
                programme: p,
                enrolment: e,
            })
        })
        .collect())
}

/// An alert as the patient raises it.
#[derive(Debug)]
pub struct Raised<'a> {
    /// The item of the programme (`autre`: something else).
    pub symptom: &'a str,
    /// Their words.
    pub text: &'a str,
    /// A photo, if they attached one.
    pub photo: Option<&'a [u8]>,
}

/// The patient raises an alert on their enrolment `id`: it lands in the
/// nurses' queue at once.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn raise(
    ctx: Ctx<'_>,
    actor: &Actor,
    name: &str,
    id: EnrolmentId,
    r: &Raised<'_>,
) -> Result<Posted, AppError> {
    let (e, p) = own_with_programme(ctx, actor, id).await?;
    if e.status != "active" {
        return Ok(Posted::Ended);
    }
    let label = if r.symptom == "autre" {
        "Autre chose".to_owned()
    } else if let Some(i) = p.items.iter().find(|i| i.link_id == r.symptom) {
        i.label.clone()
    } else {
        return Ok(Posted::Refused("choisissez ce qui ne va pas dans la liste"));
    };
    if r.text.is_empty() {
        return Ok(Posted::Refused(
            "décrivez en quelques mots ce qui ne va pas",
        ));
    }
    let photo = match r.photo {
        Some(b) if b.len() > MAX_PHOTO => {
            return Ok(Posted::Refused(
                "la photo dépasse 5 Mo : choisissez une photo plus petite",
            ));
        }
        Some(b) => match sniff_type(b) {
            Some(t) if t.starts_with("image/") => Some((t, b)),
            _ => return Ok(Posted::Refused("la photo doit être au format JPEG ou PNG")),
        },
        None => None,
    };
    let alert = NewAlert {
        level: AlertLevel::Warning,
        item: r.symptom.to_owned(),
        reason: format!("signalé par le patient ({label}) : {}", r.text),
        advice: "Une infirmière vous rappellera dans la demi-journée.".into(),
        // The patient raised it: never muted.
        mute: None,
    };
    let who = AuditActor::new(actor, None);
    let now = ctx.now_ms();
    let due = crate::services::monitoring::due_at(ctx.store, e.establishment, p, now).await?;
    ctx.store
        .raise_patient_alert(&e, &alert, photo, name, due, &who, now)
        .await?;
    ctx.publish(LiveEvent::Alerts(e.establishment));
    crate::services::subscriptions::alerts_raised(ctx, e.patient, e.establishment, now).await;
    Ok(Posted::Done)
}

/// A file a patient sent, for the patient and for carers who may read their
/// clinical data (an audited read).
pub async fn attachment(ctx: Ctx<'_>, actor: &Actor, id: &str) -> Result<Attachment, AppError> {
    let not_found = || AppError::NotFound("pièce introuvable".into());
    let a = ctx.store.attachment(id).await.map_err(|_| not_found())?;
    let own = matches!(actor.principal, Principal::Patient { patient, .. } if patient == a.patient);
    if !own {
        patients::clinical_read(ctx, actor, a.patient, &format!("Binary/{id}"))
            .await
            .map_err(|e| match e {
                AppError::Forbidden(_) => not_found(),
                other => other,
            })?;
    }
    Ok(a)
}

/// Who opens thread `id`: the patient (their enrolment; `true`) or a nurse
/// or doctor of the enrolment's establishment allowed to write the patient's
/// clinical data.
async fn thread_access(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: EnrolmentId,
) -> Result<(Enrolment, bool, Option<Grant>), AppError> {
    if matches!(actor.principal, Principal::Patient { .. }) {
        return Ok((own(ctx, actor, id).await?, true, None));
    }
    let not_found = || AppError::NotFound("suivi introuvable".into());
    let e = ctx.store.enrolment(id).await.map_err(|_| not_found())?;
    if !alerts::triage_establishments(actor).contains(&e.establishment) {
        return Err(not_found());
    }
    let (_, grant) = carer(ctx, actor, &e.patient.to_string()).await?;
    Ok((e, false, Some(grant)))
}

/// A thread as its reader sees it.
#[derive(Debug)]
pub struct Thread {
    /// The enrolment.
    pub enrolment: Enrolment,
    /// Whether the reader is the patient.
    pub patient_side: bool,
    /// The patient's name, for a carer (an audited read).
    pub patient: Option<String>,
    /// (from the reader's side, author, Unix ms, text), oldest first.
    pub messages: Vec<(bool, String, i64, String)>,
}

/// Thread `id` for `actor`; reading it marks the other side's messages read.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn thread(ctx: Ctx<'_>, actor: &Actor, id: EnrolmentId) -> Result<Thread, AppError> {
    let (e, patient_side, grant) = thread_access(ctx, actor, id).await?;
    let patient = if patient_side {
        None
    } else {
        Some(
            patients::read(ctx, actor, e.patient)
                .await?
                .traits
                .display_name(),
        )
    };
    ctx.store
        .mark_read(e.id, !patient_side, ctx.now_ms())
        .await?;
    if grant.is_some() {
        let resource = format!("Communication?based-on=CarePlan/{}", e.id);
        patients::clinical_read(ctx, actor, e.patient, &resource).await?;
    }
    let messages = ctx
        .store
        .messages_of(e.patient)
        .await?
        .into_iter()
        .filter(|m| m.enrolment == e.id)
        .map(|m| (m.from_patient == patient_side, m.author, m.at_ms, m.body))
        .collect();
    Ok(Thread {
        enrolment: e,
        patient_side,
        patient,
        messages,
    })
}

/// The most characters of a message.
pub const MAX_MESSAGE: usize = 2000;

/// Posts `text` in thread `id` as `actor` (`name` shown as its author); a
/// patient's message tells the team's queue.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn post(
    ctx: Ctx<'_>,
    actor: &Actor,
    name: &str,
    id: EnrolmentId,
    text: &str,
) -> Result<Posted, AppError> {
    let (e, patient_side, grant) = thread_access(ctx, actor, id).await?;
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_MESSAGE {
        return Ok(Posted::Refused(
            "écrivez un message (2 000 caractères au plus)",
        ));
    }
    if e.status != "active" {
        return Ok(Posted::Ended);
    }
    let who = AuditActor::new(actor, grant);
    ctx.store
        .post_message(&e, patient_side, name, text, &who, ctx.now_ms())
        .await?;
    if patient_side {
        ctx.publish(LiveEvent::Alerts(e.establishment));
    }
    Ok(Posted::Done)
}
