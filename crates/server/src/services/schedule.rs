//! Booking: free slots of a practitioner (openings minus what is booked), a
//! booking by the patient on the portal or by the establishment's staff, and
//! cancellation, each with a message to the patient (text and an iCalendar
//! event) through the outbox, in the booking's transaction.

use domain::UserId;
use domain::audit::AuditActor;
use domain::policy::{Actor, Decision, EstablishmentAction, Principal, authorize_establishment};
use domain::schedule::{Slot, available_slots, bookable_slot};
use domain::{EstablishmentId, PatientId};
use store::outbox::NewMessage;
use store::schedule::{Appointment, NewAppointment};

use crate::error::AppError;
use crate::services::ctx::Ctx;
use crate::services::patients;

/// The free slots of a practitioner at an establishment over `days` days.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn free_slots(
    ctx: Ctx<'_>,
    practitioner: UserId,
    establishment: domain::EstablishmentId,
    days: i64,
) -> Result<Vec<Slot>, AppError> {
    let now = ctx.now_ms();
    let openings =
        crate::services::openings::establishment_openings(ctx, practitioner, establishment).await?;
    let absences = crate::services::openings::absences(ctx, practitioner, establishment).await?;
    let extras = crate::services::openings::extras(ctx, practitioner, establishment).await?;
    let taken: Vec<i64> = ctx
        .store
        .agenda(practitioner, now, now + (days + 1) * 24 * 3600 * 1000)
        .await?
        .iter()
        .map(|a| a.start_ms)
        .collect();
    Ok(available_slots(&openings, &extras, &absences, now, days)
        .into_iter()
        .filter(|s| !taken.contains(&s.start_ms))
        .collect())
}

/// Who may book for this patient at this establishment: the patient themselves
/// (an establishment of their territory), or the establishment's staff for a
/// patient of its territory. Returns the audit actor.
async fn may_book(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: PatientId,
    establishment: domain::EstablishmentId,
) -> Result<AuditActor, AppError> {
    let est = ctx.store.establishment(establishment).await?;
    let record = ctx.store.patient(patient).await?;
    if record.territory != est.territory {
        return Err(AppError::NotFound("patient introuvable".into()));
    }
    if let Principal::Patient { patient: own, .. } = actor.principal {
        return if own == patient {
            Ok(AuditActor::new(actor, None))
        } else {
            Err(AppError::NotFound("patient introuvable".into()))
        };
    }
    // The staff must see the patient's identity (shared in the territory) …
    patients::read(ctx, actor, patient).await?;
    // … and manage the agendas of that establishment.
    match authorize_establishment(
        actor,
        EstablishmentAction::ManageAppointments,
        establishment,
        est.territory,
    ) {
        Decision::Allow(g) => Ok(AuditActor::new(actor, g)),
        Decision::Deny(why) => Err(AppError::Forbidden(why.into())),
    }
}

/// The message to the patient: a line of text and the event (iCalendar).
/// What a message to the patient is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Booked.
    Confirmation,
    /// Cancelled.
    Cancellation,
    /// The day before.
    Reminder,
}

#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn notice(
    ctx: Ctx<'_>,
    id: domain::AppointmentId,
    n: &NewAppointment,
    kind: Notice,
) -> Result<NewMessage, store::StoreError> {
    let who = ctx.store.user(n.practitioner).await?.display_name;
    let place = ctx.store.establishment(n.establishment).await?.name;
    let when = crate::fmt::paris_time(n.start_ms);
    let location = if n.mode == domain::schedule::Mode::Tele {
        "Téléconsultation (lien dans votre espace Parcours)".to_owned()
    } else {
        place.clone()
    };
    let how = n.mode.label_fr();
    let (text, key) = match kind {
        Notice::Cancellation => (
            format!("Votre rendez-vous du {when} avec {who} est annulé."),
            "annulation",
        ),
        Notice::Confirmation => (
            format!("Rendez-vous confirmé le {when} avec {who}, {how} ({place})."),
            "confirmation",
        ),
        Notice::Reminder => (
            format!("Rappel : rendez-vous le {when} avec {who}, {how} ({place})."),
            "rappel",
        ),
    };
    let ics = interop::ical::calendar(&interop::ical::Event {
        uid: &format!("{id}@parcours"),
        start_ms: n.start_ms,
        end_ms: n.end_ms,
        stamp_ms: ctx.now_ms(),
        summary: &format!("Rendez-vous avec {who}"),
        location: &location,
        description: &text,
        cancelled: kind == Notice::Cancellation,
    });
    Ok(NewMessage {
        idempotency_key: format!("rdv:{id}:{key}"),
        topic: crate::outbound::NOTIFY_TOPIC.into(),
        destination: format!("portail:{}", n.patient),
        payload: format!("{text}\n\n{ics}"),
        establishment: Some(n.establishment),
    })
}

/// Enqueues the reminder of every appointment starting in the next 24 hours
/// (once each: the key names the appointment); returns how many were new.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn remind_appointments(ctx: Ctx<'_>) -> Result<usize, store::StoreError> {
    let now = ctx.now_ms();
    let mut new = 0;
    for a in ctx
        .store
        .appointments_between(now, now + 24 * 3600 * 1000)
        .await?
    {
        let n = NewAppointment {
            practitioner: a.practitioner,
            establishment: a.establishment,
            patient: a.patient,
            start_ms: a.start_ms,
            end_ms: a.end_ms,
            mode: a.mode,
            booked_by: String::new(),
        };
        let m = notice(ctx, a.id, &n, Notice::Reminder).await?;
        if ctx.store.enqueue(&m, now).await? {
            new += 1;
        }
    }
    Ok(new)
}

/// The SIU for the clinic's agenda (S12 booked, S15 cancelled), when a
/// destination is configured.
async fn siu(ctx: Ctx<'_>, a: &Appointment) -> Result<Option<NewMessage>, AppError> {
    let Some(destination) =
        crate::services::directory::siu_destination(ctx, a.establishment).await?
    else {
        return Ok(None);
    };
    let patient = ctx.store.patient(a.patient).await?;
    let demographics = ctx.store.demographics(a.patient).await?;
    let domain_oid = ctx.store.territory(patient.territory).await?.oid;
    let finess = ctx.store.establishment(a.establishment).await?.finess;
    let practitioner = ctx.store.user(a.practitioner).await?;
    let event = if a.status == "booked" { "S12" } else { "S15" };
    let key = format!("siu:{}:{event}", a.id);
    let digest = crate::auth::token_hash(&key);
    let control = format!("PS{}", digest.get(..18).unwrap_or(&digest));
    let payload = interop::siu::build(&interop::siu::SiuEvent {
        control_id: &control,
        timestamp: &crate::fmt::hl7_now(ctx.clock.now()),
        receiver: ("AGENDA", &finess),
        appointment: a,
        start: &crate::fmt::hl7_dtm(a.start_ms),
        patient: &patient,
        demographics: &demographics,
        domain_oid: &domain_oid,
        practitioner: (practitioner.rpps.as_deref(), &practitioner.display_name),
    })
    .map_err(|e| AppError::Internal(anyhow::anyhow!("SIU: {e}")))?;
    Ok(Some(NewMessage {
        idempotency_key: key,
        topic: crate::outbound::SIU_TOPIC.into(),
        destination,
        payload,
        establishment: Some(a.establishment),
    }))
}

/// Books the slot starting at `start_ms`; its id. A slot that is not in the
/// practitioner's openings or already past is refused (422), one just taken is a
/// conflict (409).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn book(
    ctx: Ctx<'_>,
    actor: &Actor,
    booked_by: &str,
    patient: PatientId,
    practitioner: UserId,
    establishment: domain::EstablishmentId,
    start_ms: i64,
) -> Result<String, AppError> {
    let who = may_book(ctx, actor, patient, establishment).await?;
    let openings =
        crate::services::openings::establishment_openings(ctx, practitioner, establishment).await?;
    let absences = crate::services::openings::absences(ctx, practitioner, establishment).await?;
    let extras = crate::services::openings::extras(ctx, practitioner, establishment).await?;
    let slot = bookable_slot(&openings, &extras, &absences, start_ms, ctx.now_ms());
    let Some(slot) = slot else {
        return Err(AppError::Unprocessable(
            "business-rule",
            "ce créneau n'existe pas ou est passé : choisissez-en un dans la liste".into(),
        ));
    };
    let n = NewAppointment {
        practitioner,
        establishment,
        patient,
        start_ms: slot.start_ms,
        end_ms: slot.end_ms,
        mode: slot.mode,
        booked_by: booked_by.to_owned(),
    };
    // The id is needed by the confirmation: book under a known id.
    let id = domain::AppointmentId::new();
    let mut messages = vec![notice(ctx, id, &n, Notice::Confirmation).await?];
    let booked = Appointment {
        id,
        practitioner,
        establishment,
        patient,
        start_ms: n.start_ms,
        end_ms: n.end_ms,
        mode: n.mode,
        status: "booked".into(),
        cancel_reason: None,
    };
    messages.extend(siu(ctx, &booked).await?);
    match ctx
        .store
        .book_as(id, &n, &messages, &who, ctx.now_ms())
        .await
    {
        Ok(()) => Ok(id.to_string()),
        Err(store::StoreError::Conflict(_)) => Err(AppError::Conflict(
            "ce créneau vient d'être pris : choisissez-en un autre".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Moves appointment `old` to the slot starting at `start_ms` of the same
/// agenda: the new slot is booked first (a slot just taken leaves the old
/// appointment as it was), then the old one is cancelled; the patient gets the
/// new confirmation and the cancellation, the clinic's agenda an S12 and an S15.
/// The new appointment's id.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn reschedule(
    ctx: Ctx<'_>,
    actor: &Actor,
    booked_by: &str,
    old: &Appointment,
    start_ms: i64,
) -> Result<String, AppError> {
    if start_ms == old.start_ms {
        return Err(AppError::Unprocessable(
            "business-rule",
            "c'est déjà l'horaire de ce rendez-vous".into(),
        ));
    }
    let id = book(
        ctx,
        actor,
        booked_by,
        old.patient,
        old.practitioner,
        old.establishment,
        start_ms,
    )
    .await?;
    let when = crate::fmt::paris_time(start_ms);
    if let Err(e) = cancel(ctx, actor, old.id, &format!("déplacé au {when}")).await {
        // Two appointments rather than none: the desk sees both and cancels one.
        tracing::error!(error = %e, old = %old.id, new = %id, "rescheduled but the old appointment stays");
    }
    Ok(id)
}

/// Cancels an appointment: the patient their own, or the establishment's staff.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn cancel(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: domain::AppointmentId,
    reason: &str,
) -> Result<Appointment, AppError> {
    let a = ctx
        .store
        .appointment(id)
        .await
        .map_err(|_| AppError::NotFound("rendez-vous introuvable".into()))?;
    let who = may_book(ctx, actor, a.patient, a.establishment).await?;
    let n = NewAppointment {
        practitioner: a.practitioner,
        establishment: a.establishment,
        patient: a.patient,
        start_ms: a.start_ms,
        end_ms: a.end_ms,
        mode: a.mode,
        booked_by: String::new(),
    };
    let mut messages = vec![notice(ctx, id, &n, Notice::Cancellation).await?];
    let cancelled = Appointment {
        status: "cancelled".into(),
        cancel_reason: Some(reason.to_owned()),
        ..a.clone()
    };
    messages.extend(siu(ctx, &cancelled).await?);
    if !ctx
        .store
        .cancel_appointment(&a, reason, &messages, &who, ctx.now_ms())
        .await?
    {
        return Err(AppError::Conflict("ce rendez-vous est déjà annulé".into()));
    }
    Ok(a)
}

/// Appointments at `actor`'s establishments with their practitioner's name.
pub type Listed = Vec<(Appointment, String)>;

async fn with_names(
    ctx: Ctx<'_>,
    actor: &Actor,
    list: Vec<Appointment>,
) -> Result<Listed, AppError> {
    let mine = crate::services::directory::grant_establishments(actor);
    let mut out = Vec::new();
    for a in list.into_iter().filter(|a| mine.contains(&a.establishment)) {
        let name = ctx.store.user(a.practitioner).await?.display_name;
        out.push((a, name));
    }
    Ok(out)
}

/// One appointment at `actor`'s establishments, with its practitioner's name
/// (the patient's identity read audited); another establishment's is not found.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn one(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: domain::AppointmentId,
) -> Result<(Appointment, String), AppError> {
    let not_found = || AppError::NotFound("Appointment introuvable".into());
    let a = ctx.store.appointment(id).await.map_err(|_| not_found())?;
    // Another establishment's appointment is not found before anything is read.
    let listed = with_names(ctx, actor, vec![a])
        .await?
        .into_iter()
        .next()
        .ok_or_else(not_found)?;
    patients::read(ctx, actor, listed.0.patient).await?;
    Ok(listed)
}

/// The patient's appointments at `actor`'s establishments (the patient's
/// identity read audited).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn of_patient(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: PatientId,
) -> Result<Listed, AppError> {
    patients::read(ctx, actor, patient).await?;
    let list = ctx.store.appointments_of_patient(patient).await?;
    with_names(ctx, actor, list).await
}

/// A practitioner's appointments from 30 days ago to 90 days ahead at
/// `actor`'s establishments; each patient shown is an audited identity read.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn of_practitioner(
    ctx: Ctx<'_>,
    actor: &Actor,
    practitioner: domain::UserId,
) -> Result<Listed, AppError> {
    let mine = crate::services::directory::grant_establishments(actor);
    let now = ctx.now_ms();
    let day = 24 * 3600 * 1000;
    let list = ctx
        .store
        .agenda(practitioner, now - 30 * day, now + 90 * day)
        .await?;
    let mut seen = Vec::new();
    for a in list.iter().filter(|a| mine.contains(&a.establishment)) {
        if !seen.contains(&a.patient) {
            patients::read(ctx, actor, a.patient).await?;
            seen.push(a.patient);
        }
    }
    with_names(ctx, actor, list).await
}

/// The agendas open at `actor`'s establishments: each practitioner, their
/// name and where they consult.
pub async fn agendas(
    ctx: Ctx<'_>,
    actor: &Actor,
) -> Result<Vec<(domain::UserId, String, Vec<EstablishmentId>)>, AppError> {
    let mut by_practitioner: Vec<(domain::UserId, Vec<EstablishmentId>)> = Vec::new();
    for e in crate::services::directory::grant_establishments(actor) {
        for u in ctx.store.scheduled_practitioners(e).await? {
            match by_practitioner.iter_mut().find(|(p, _)| *p == u) {
                Some((_, ests)) => ests.push(e),
                None => by_practitioner.push((u, vec![e])),
            }
        }
    }
    let mut out = Vec::new();
    for (u, ests) in by_practitioner {
        out.push((u, ctx.store.user(u).await?.display_name, ests));
    }
    Ok(out)
}

/// Establishments whose agendas `actor` manages (the desk and carers).
pub fn desk_establishments(actor: &Actor) -> Vec<EstablishmentId> {
    let mut v = crate::services::directory::establishments_for(
        actor,
        EstablishmentAction::ManageAppointments,
    );
    v.sort_by_key(ToString::to_string);
    v.dedup();
    v
}

/// The patient `actor` is, if a patient.
pub fn own_patient(actor: &Actor) -> Option<PatientId> {
    match actor.principal {
        Principal::Patient { patient, .. } => Some(patient),
        _ => None,
    }
}

/// Appointment `id` if `actor` may see it: the patient's own, or one of the
/// desk's establishments; whether it is the patient's own.
pub async fn visible(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: domain::AppointmentId,
) -> Result<(Appointment, bool), AppError> {
    let not_found = || AppError::NotFound("rendez-vous introuvable".into());
    let a = ctx.store.appointment(id).await.map_err(|_| not_found())?;
    let mine = own_patient(actor) == Some(a.patient);
    if !mine && !desk_establishments(actor).contains(&a.establishment) {
        return Err(not_found());
    }
    Ok((a, mine))
}

/// The appointments `actor` lists: a patient's own (`true`), or the desk's
/// agendas for the next seven days (`false`: with the patients' names).
pub async fn listing(ctx: Ctx<'_>, actor: &Actor) -> Result<(bool, Vec<Appointment>), AppError> {
    if let Some(p) = own_patient(actor) {
        return Ok((true, ctx.store.appointments_of_patient(p).await?));
    }
    let ests = desk_establishments(actor);
    if ests.is_empty() {
        return Err(AppError::Forbidden(
            "agendas réservés au secrétariat et aux soignants".into(),
        ));
    }
    let now = ctx.now_ms();
    let mut out = Vec::new();
    for e in ests {
        for u in ctx.store.scheduled_practitioners(e).await? {
            let agenda = ctx
                .store
                .agenda(u, now - 3600 * 1000, now + 7 * 24 * 3600 * 1000)
                .await?;
            out.extend(agenda.into_iter().filter(|a| a.establishment == e));
        }
    }
    Ok((false, out))
}

/// What the booking form offers.
#[derive(Debug)]
pub struct BookingForm {
    /// Whose appointment.
    pub patient: PatientId,
    /// Their name (empty for the patient themselves).
    pub patient_name: String,
    /// (practitioner, establishment, "Dr X, profession — Clinique").
    pub practitioners: Vec<(UserId, EstablishmentId, String)>,
}

/// Whose appointment: the patient themselves, or `patient` (its id as text)
/// for the desk (an audited read).
pub async fn target_patient(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: Option<&str>,
) -> Result<(PatientId, String), AppError> {
    if let Some(p) = own_patient(actor) {
        return Ok((p, String::new()));
    }
    let id: PatientId = patient.and_then(|p| p.parse().ok()).ok_or_else(|| {
        AppError::BadRequest("required", "patient à préciser (depuis sa fiche)".into())
    })?;
    let p = patients::read(ctx, actor, id).await?;
    Ok((id, p.traits.display_name()))
}

/// The booking form for `patient`: the practitioners of the patient's
/// territory (for the patient) or of the desk's establishments.
pub async fn booking_form(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: Option<&str>,
) -> Result<BookingForm, AppError> {
    let (patient, patient_name) = target_patient(ctx, actor, patient).await?;
    let ests: Vec<EstablishmentId> = if own_patient(actor).is_some() {
        let record = ctx.store.patient(patient).await?;
        ctx.store
            .establishments(record.territory)
            .await?
            .into_iter()
            .map(|e| e.id)
            .collect()
    } else {
        desk_establishments(actor)
    };
    let mut practitioners = Vec::new();
    for e in ests {
        let name = ctx.store.establishment(e).await?.name;
        for u in ctx.store.scheduled_practitioners(e).await? {
            let user = ctx.store.user(u).await?;
            let what = user
                .profession
                .clone()
                .map(|p| format!(", {p}"))
                .unwrap_or_default();
            practitioners.push((u, e, format!("{}{what} — {name}", user.display_name)));
        }
    }
    Ok(BookingForm {
        patient,
        patient_name,
        practitioners,
    })
}

/// A slot chosen on the booking form.
#[derive(Debug)]
pub struct Chosen<'a> {
    /// For whom (the desk names the patient; a patient books for themselves).
    pub patient: Option<&'a str>,
    /// With whom.
    pub practitioner: UserId,
    /// Where.
    pub establishment: EstablishmentId,
    /// When (Unix ms).
    pub start_ms: i64,
    /// The appointment this one replaces, when moving it.
    pub moving: Option<domain::AppointmentId>,
}

/// Books the chosen slot, or moves appointment `moving` to it: only an
/// appointment `actor` may see, of this patient, with this practitioner,
/// still booked and not yet held. The appointment's id.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn book_chosen(
    ctx: Ctx<'_>,
    actor: &Actor,
    by: &str,
    c: &Chosen<'_>,
) -> Result<String, AppError> {
    let (patient, _) = target_patient(ctx, actor, c.patient).await?;
    let Some(old) = c.moving else {
        return book(
            ctx,
            actor,
            by,
            patient,
            c.practitioner,
            c.establishment,
            c.start_ms,
        )
        .await;
    };
    let (a, _) = visible(ctx, actor, old).await?;
    if a.patient != patient
        || a.practitioner != c.practitioner
        || a.establishment != c.establishment
        || a.status != "booked"
        || ctx.store.consultation(old).await.is_ok()
    {
        return Err(AppError::Unprocessable(
            "business-rule",
            "ce rendez-vous ne peut plus être déplacé".into(),
        ));
    }
    reschedule(ctx, actor, by, &a, c.start_ms).await
}
