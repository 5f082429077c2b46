//! Orientation (SSR, HAD): a request for a patient sent by an establishment
//! that cares for them to others of the territory, who answer; the requester
//! confirms a place or withdraws. The policy decides each step; each view of a
//! request is an audited read of the patient's data; the request's rules
//! (`domain::orientation`) are checked in the store's transaction and a
//! refusal comes back as [`Outcome::Refused`] for the page to show.

use domain::audit::AuditActor;
use domain::identity::PatientRecord;
use domain::orientation::{Answer, RequestStatus, ResponseStatus, TargetType};
use domain::policy::{
    Actor, Decision, Grant, OrientationAction, PatientAction, authorize_orientation,
    authorize_patient,
};
use domain::{EstablishmentId, OrientationId, PatientId, UserId};
use store::audit::NewAudit;
use store::orientation::{NewOrientation, Orientation, OrientationEvent, Recipient, Step};

use crate::error::AppError;
use crate::services::ctx::Ctx;
use crate::services::{directory, patients};

/// What became of a change.
#[derive(Debug)]
pub enum Outcome<T> {
    /// Applied.
    Done(T),
    /// Refused by the rules or the input (nothing written): why, in French.
    Refused(String),
}

fn not_found() -> AppError {
    AppError::NotFound("demande introuvable".into())
}

/// The request `id` if `actor` may see it (its sender or one of its
/// recipients); the read is audited.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn view(ctx: Ctx<'_>, actor: &Actor, id: OrientationId) -> Result<Orientation, AppError> {
    let o = ctx.store.orientation(id).await.map_err(|_| not_found())?;
    let to: Vec<EstablishmentId> = o.recipients.iter().map(|r| r.establishment).collect();
    let Decision::Allow(grant) = authorize_orientation(actor, OrientationAction::View, o.from, &to)
    else {
        return Err(not_found());
    };
    let row = NewAudit {
        at_ms: ctx.now_ms(),
        actor: AuditActor::new(actor, grant),
        patient: Some(o.patient.to_string()),
        action: "read-clinical".into(),
        resource: format!("ServiceRequest/{}", o.id),
        outcome: "success".into(),
    };
    ctx.store.audit(&row).await?;
    Ok(o)
}

/// A request of a list, with the names shown beside it.
#[derive(Debug)]
pub struct Listed {
    /// The request.
    pub request: Orientation,
    /// The patient's display name.
    pub patient: String,
    /// The requesting establishment's name.
    pub from: String,
}

/// The requests `actor`'s establishments sent or received, each read audited.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(ctx: Ctx<'_>, actor: &Actor) -> Result<Vec<Listed>, AppError> {
    let mine: Vec<EstablishmentId> = actor.grants.iter().map(|g| g.establishment).collect();
    let mut rows = Vec::new();
    for id in ctx.store.orientations_of(&mine).await? {
        let request = view(ctx, actor, id).await?;
        rows.push(Listed {
            patient: patients::display_name(ctx, request.patient).await,
            from: directory::establishment_name(ctx, request.from).await,
            request,
        });
    }
    Ok(rows)
}

/// The patient and the grant under which `actor` may ask for their
/// orientation: an establishment that writes their clinical data.
pub async fn requester(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: PatientId,
) -> Result<(PatientRecord, Grant), AppError> {
    let p = ctx
        .store
        .patient(patient)
        .await
        .map_err(|_| AppError::NotFound("patient introuvable".into()))?;
    let scope = patients::scope_of(ctx, &p).await?;
    match authorize_patient(actor, PatientAction::WriteClinical, &scope) {
        Decision::Allow(Some(g)) => Ok((p, g)),
        _ => Err(AppError::Forbidden(
            "seul un établissement qui prend en charge ce patient peut demander son orientation"
                .into(),
        )),
    }
}

/// What the new-request form offers.
#[derive(Debug)]
pub struct Form {
    /// The patient.
    pub patient: PatientRecord,
    /// The establishments of the territory a request may go to (id, name).
    pub establishments: Vec<(EstablishmentId, String)>,
    /// Today (the default wished date), `YYYY-MM-DD`.
    pub today: String,
}

/// The form to ask for `patient`'s orientation.
pub async fn form(ctx: Ctx<'_>, actor: &Actor, patient: PatientId) -> Result<Form, AppError> {
    let (p, grant) = requester(ctx, actor, patient).await?;
    let establishments = ctx
        .store
        .establishments(p.territory)
        .await?
        .into_iter()
        .filter(|e| e.id != grant.establishment)
        .map(|e| (e.id, e.name))
        .collect();
    let today = ctx
        .clock
        .now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    Ok(Form {
        patient: p,
        establishments,
        today,
    })
}

/// A request as the form sends it.
#[derive(Debug)]
pub struct Draft<'a> {
    /// The patient.
    pub patient: PatientId,
    /// `SSR` or `HAD`.
    pub target: &'a str,
    /// The clinical needs.
    pub needs: &'a str,
    /// The wished date, `YYYY-MM-DD`.
    pub wished_date: &'a str,
    /// Urgent.
    pub urgent: bool,
    /// The recipients' ids, in order.
    pub recipients: Vec<&'a str>,
}

/// The most characters of the needs.
pub const MAX_NEEDS: usize = 4000;

/// Sends `draft` from the establishment where `actor` cares for the patient;
/// the new request's id.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn create(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
    draft: &Draft<'_>,
) -> Result<Outcome<OrientationId>, AppError> {
    let (p, grant) = requester(ctx, actor, draft.patient).await?;
    let refused = |why: &str| Ok(Outcome::Refused(why.to_owned()));
    let Some(target) = TargetType::from_code(draft.target) else {
        return refused("choisissez SSR ou HAD");
    };
    let needs = draft.needs.trim();
    if needs.is_empty() || needs.chars().count() > MAX_NEEDS {
        return refused("décrivez les besoins cliniques (4 000 caractères au plus)");
    }
    if draft.wished_date.parse::<jiff::civil::Date>().is_err() {
        return refused("date souhaitée illisible");
    }
    let territory: Vec<EstablishmentId> = ctx
        .store
        .establishments(p.territory)
        .await?
        .into_iter()
        .map(|e| e.id)
        .collect();
    let mut recipients = Vec::new();
    for r in &draft.recipients {
        match r.parse::<EstablishmentId>() {
            Ok(e) if territory.contains(&e) && e != grant.establishment => recipients.push(e),
            _ => return refused("établissement destinataire inconnu"),
        }
    }
    let n = NewOrientation {
        patient: p.id,
        territory: p.territory,
        from: grant.establishment,
        target,
        needs: needs.to_owned(),
        wished_date: draft.wished_date.to_owned(),
        urgent: draft.urgent,
        recipients,
    };
    let who = AuditActor::new(actor, Some(grant));
    match ctx
        .store
        .create_orientation(&n, &who, &user.to_string(), ctx.now_ms())
        .await
    {
        Ok(id) => Ok(Outcome::Done(id)),
        Err(store::StoreError::Rule(e)) => Ok(Outcome::Refused(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// A step on a request, as the page sends it.
#[derive(Debug)]
pub enum StepInput<'a> {
    /// A recipient (its id) accepts, or refuses with a reason.
    Answer {
        /// The answering establishment.
        establishment: &'a str,
        /// Accepts.
        accept: bool,
        /// The reason of a refusal.
        reason: &'a str,
    },
    /// The requester confirms the place this recipient offered.
    Confirm(&'a str),
    /// The requester withdraws the request.
    Cancel,
}

/// Applies `input` to request `id` for `actor`, whose establishment must be
/// the one the step belongs to.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn step(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
    id: OrientationId,
    input: StepInput<'_>,
) -> Result<Outcome<()>, AppError> {
    let o = view(ctx, actor, id).await?;
    let to: Vec<EstablishmentId> = o.recipients.iter().map(|r| r.establishment).collect();
    let est = |e: &str| {
        e.parse::<EstablishmentId>()
            .map_err(|_| AppError::BadRequest("invalid", "établissement illisible".into()))
    };
    let (step, action) = match input {
        StepInput::Answer {
            establishment,
            accept,
            reason,
        } => {
            let e = est(establishment)?;
            let answer = if accept {
                Answer::Accept
            } else {
                Answer::Refuse(reason.trim().to_owned())
            };
            (Step::Answer(e, answer), OrientationAction::Answer(e))
        }
        StepInput::Confirm(e) => (Step::Confirm(est(e)?), OrientationAction::Decide),
        StepInput::Cancel => (Step::Cancel, OrientationAction::Decide),
    };
    let Decision::Allow(grant) = authorize_orientation(actor, action, o.from, &to) else {
        return Err(AppError::Forbidden(
            "cette action revient à un autre établissement".into(),
        ));
    };
    let who = AuditActor::new(actor, grant);
    match ctx
        .store
        .orientation_step(id, &step, &who, &user.to_string(), ctx.now_ms())
        .await
    {
        Ok(()) => Ok(Outcome::Done(())),
        Err(store::StoreError::Rule(e)) => Ok(Outcome::Refused(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// A recipient as the request's page shows it.
#[derive(Debug)]
pub struct RecipientView {
    /// The recipient.
    pub recipient: Recipient,
    /// Its name.
    pub name: String,
    /// Whether `actor` may answer for it now.
    pub can_answer: bool,
    /// Whether `actor` may confirm its place now.
    pub can_confirm: bool,
}

/// A request as its page shows it, with what `actor` may do.
#[derive(Debug)]
pub struct Shown {
    /// The request.
    pub request: Orientation,
    /// The patient's display name.
    pub patient: String,
    /// The requesting establishment's name.
    pub from: String,
    /// The recipients, in order.
    pub recipients: Vec<RecipientView>,
    /// The timeline with each step's establishment name.
    pub events: Vec<(OrientationEvent, String)>,
    /// Whether `actor` may withdraw the request now.
    pub can_cancel: bool,
}

/// Request `id` with the names and the steps open to `actor` (an audited read).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn show(ctx: Ctx<'_>, actor: &Actor, id: OrientationId) -> Result<Shown, AppError> {
    let o = view(ctx, actor, id).await?;
    let to: Vec<EstablishmentId> = o.recipients.iter().map(|r| r.establishment).collect();
    let open = o.status == RequestStatus::Open;
    let decide = authorize_orientation(actor, OrientationAction::Decide, o.from, &to).allowed();
    let mut recipients = Vec::new();
    for r in &o.recipients {
        let answer = OrientationAction::Answer(r.establishment);
        recipients.push(RecipientView {
            name: directory::establishment_name(ctx, r.establishment).await,
            can_answer: open
                && r.status == ResponseStatus::Pending
                && authorize_orientation(actor, answer, o.from, &to).allowed(),
            can_confirm: open && decide && r.status == ResponseStatus::Accepted,
            recipient: r.clone(),
        });
    }
    let mut events = Vec::new();
    for e in &o.events {
        events.push((
            e.clone(),
            directory::establishment_name(ctx, e.establishment).await,
        ));
    }
    Ok(Shown {
        patient: patients::display_name(ctx, o.patient).await,
        from: directory::establishment_name(ctx, o.from).await,
        recipients,
        events,
        can_cancel: open && decide,
        request: o,
    })
}
