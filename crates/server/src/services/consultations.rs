//! Closing a teleconsultation and releasing its prescription. The doctor closes
//! with a note and a prescription, later gives the final approval; the fee is
//! settled online (the provider's signed webhook) or at the desk. Every route
//! that could hand the prescription to the patient goes through [`view`] and
//! [`withheld`]: **the patient gets it only once the fee is settled (or waived)
//! and the doctor has approved it**. Professionals allowed to read the record
//! always may (they wrote it, or care for the patient); each read is audited.

use domain::UserId;
use domain::audit::AuditActor;
use domain::consultation::{self as rules, Closing, Method, Withheld};
use domain::policy::{
    Actor, Decision, EstablishmentAction, PatientAction, Principal, authorize_establishment,
    authorize_patient,
};
use domain::schedule::Mode;
use store::consultations::Consultation;
use store::schedule::Appointment;

use crate::error::AppError;
use crate::fmt::{paris_date as date_fr, paris_format};
use crate::payment::{self, CheckoutRequest};
use crate::services::ctx::Ctx;
use crate::services::patients;

fn not_found() -> AppError {
    AppError::NotFound("consultation introuvable".into())
}

/// The appointment `id` if `user` is its practitioner and it is a booked
/// teleconsultation (else 404: others need not know it exists).
async fn own_video_appointment(
    ctx: Ctx<'_>,
    user: UserId,
    id: domain::AppointmentId,
) -> Result<Appointment, AppError> {
    let a = ctx.store.appointment(id).await.map_err(|_| not_found())?;
    if a.practitioner != user || a.mode != Mode::Tele || a.status != "booked" {
        return Err(not_found());
    }
    Ok(a)
}

/// Closes the consultation of appointment `id` (its practitioner only): checks
/// the note and prescription, numbers the prescription, records it (audited)
/// and tells the patient's open room that it is over.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn close(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
    id: domain::AppointmentId,
    closing: Closing,
) -> Result<Consultation, AppError> {
    let a = own_video_appointment(ctx, user, id).await?;
    let closing = rules::check(closing)
        .map_err(|e| AppError::Unprocessable("business-rule", e.to_string()))?;
    let (_, scope) = patients::with_scope(ctx, a.patient).await?;
    let grant = match authorize_patient(actor, PatientAction::WriteClinical, &scope) {
        Decision::Allow(g) => g,
        Decision::Deny(why) => return Err(AppError::Forbidden(why.into())),
    };
    let random = uuid::Uuid::new_v4().into_bytes();
    let mut ten = [0u8; 10];
    ten.copy_from_slice(random.get(..10).unwrap_or(&[0; 10]));
    let number = rules::number(ten);
    match ctx
        .store
        .close_consultation(
            &a,
            &closing,
            &number,
            crate::services::directory::teleconsultation_fee_cents(ctx, a.establishment).await?,
            &[],
            &AuditActor::new(actor, grant),
            ctx.now_ms(),
        )
        .await
    {
        Ok(()) => {}
        Err(store::StoreError::Conflict(_)) => {
            return Err(AppError::Conflict(
                "cette consultation est déjà clôturée".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    ctx.live
        .room_send(&a.id.to_string(), "doctor", r#"{"type":"closed"}"#.into());
    ctx.store.close_room(a.id).await?;
    ctx.live.room_closed(&a.id.to_string());
    crate::services::subscriptions::consultation_closed(ctx, &a).await;
    Ok(ctx.store.consultation(a.id).await?)
}

/// The doctor's final approval of the prescription; `false` if already given.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn approve(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
    id: domain::AppointmentId,
) -> Result<bool, AppError> {
    let c = ctx.store.consultation(id).await.map_err(|_| not_found())?;
    if c.practitioner != user {
        return Err(not_found());
    }
    let (_, scope) = patients::with_scope(ctx, c.patient).await?;
    let grant = match authorize_patient(actor, PatientAction::WriteClinical, &scope) {
        Decision::Allow(g) => g,
        Decision::Deny(why) => return Err(AppError::Forbidden(why.into())),
    };
    Ok(ctx
        .store
        .approve_consultation(&c, &AuditActor::new(actor, grant), ctx.now_ms())
        .await?)
}

/// The closed consultation of appointment `id`, for anyone who may read the
/// patient's record (the patient themselves included); audited. `None` if the
/// appointment exists but is not closed yet.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn view(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: domain::AppointmentId,
) -> Result<Option<Consultation>, AppError> {
    let c = match ctx.store.consultation(id).await {
        Ok(c) => c,
        Err(store::StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    patients::clinical_read(ctx, actor, c.patient, &format!("Consultation/{id}")).await?;
    Ok(Some(c))
}

/// Why the prescription is withheld from this actor, if it is: only ever from
/// the patient, until the fee is settled and the doctor has approved.
pub fn withheld(actor: &Actor, c: &Consultation) -> Option<Withheld> {
    match actor.principal {
        Principal::Patient { .. } => rules::release(c.settled, c.approved_at_ms.is_some()).err(),
        _ => None,
    }
}

/// The prescription PDF, if this actor may have it now (403 with the reason
/// when it is withheld from the patient).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn prescription_pdf(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: domain::AppointmentId,
) -> Result<(Consultation, Vec<u8>), AppError> {
    let c = view(ctx, actor, id).await?.ok_or_else(not_found)?;
    if let Some(why) = withheld(actor, &c) {
        return Err(AppError::Forbidden(why.to_string()));
    }
    let pdf = render_pdf(ctx, &c).await?;
    Ok((c, pdf))
}

/// The address a pharmacist checks a prescription at.
pub fn verify_url(ctx: Ctx<'_>, number: &str) -> String {
    format!("{}/ordonnance/verifier/{number}", ctx.config.public_url())
}

/// The prescription PDF (callers have applied [`withheld`]).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn render_pdf(ctx: Ctx<'_>, c: &Consultation) -> Result<Vec<u8>, AppError> {
    let doctor = ctx.store.user(c.practitioner).await?;
    let est = ctx.store.establishment(c.establishment).await?;
    let p = ctx.store.patient(c.patient).await?;
    let t = &p.traits;
    let family = t
        .used_name
        .as_deref()
        .unwrap_or(&t.birth_name)
        .to_uppercase();
    let given = t
        .used_given_name
        .clone()
        .or_else(|| t.birth_given_names.first().cloned())
        .unwrap_or_default();
    let mut name = format!("{family} {given}");
    if t.used_name.is_some() && t.used_name.as_deref() != Some(t.birth_name.as_str()) {
        name.push_str(&format!(" (née {})", t.birth_name.to_uppercase()));
    }
    let sex = match t.sex {
        domain::identity::Sex::Female => "Féminin",
        domain::identity::Sex::Male => "Masculin",
        domain::identity::Sex::Unknown => "Non renseigné",
    };
    let birth = t.birth_date.strftime("%d/%m/%Y").to_string();
    let ins = p
        .ins
        .as_ref()
        .filter(|_| p.status.ins_exchangeable())
        .map(|i| i.matricule().to_owned());
    let approval = c.approved_at_ms.map(|ms| {
        format!(
            "Validée par le prescripteur le {} à {}",
            date_fr(ms),
            paris_format(ms, "%H:%M")
        )
    });
    let url = verify_url(ctx, &c.number);
    let date = date_fr(c.closed_at_ms);
    Ok(interop::ordonnance::pdf(&interop::ordonnance::Ordonnance {
        number: &c.number,
        practitioner: &doctor.display_name,
        profession: doctor.profession.as_deref(),
        rpps: doctor.rpps.as_deref(),
        establishment: &est.name,
        finess: &est.finess,
        date: &date,
        patient_name: &name,
        patient_birth: &birth,
        patient_sex: sex,
        patient_ins: ins.as_deref(),
        lines: &c.closing.lines,
        free_text: &c.closing.free_text,
        approval: approval.as_deref(),
        verify_url: &url,
    }))
}

/// A settlement recorded at the desk by the establishment's staff.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn settle_at_desk(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: domain::AppointmentId,
    method: Method,
) -> Result<(), AppError> {
    let c = ctx.store.consultation(id).await.map_err(|_| not_found())?;
    let est = ctx.store.establishment(c.establishment).await?;
    let grant = match authorize_establishment(
        actor,
        EstablishmentAction::ManageAppointments,
        c.establishment,
        est.territory,
    ) {
        Decision::Allow(g) => g,
        Decision::Deny(_) => return Err(not_found()),
    };
    rules::settle_at_desk(c.settled, method).map_err(|e| match e {
        rules::SettleError::AlreadySettled(_) => AppError::Conflict(e.to_string()),
        rules::SettleError::CardAtDesk => AppError::Unprocessable("business-rule", e.to_string()),
    })?;
    let done = ctx
        .store
        .settle_consultation(
            &c,
            method,
            None,
            &AuditActor::new(actor, grant),
            ctx.now_ms(),
        )
        .await?;
    if !done {
        return Err(AppError::Conflict(
            "cette consultation vient d'être réglée".into(),
        ));
    }
    Ok(())
}

/// Opens a checkout session for the patient's own unsettled consultation;
/// where to send their browser.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn checkout(
    ctx: Ctx<'_>,
    actor: &Actor,
    email: Option<&str>,
    id: domain::AppointmentId,
) -> Result<(String, i64), AppError> {
    let c = view(ctx, actor, id).await?.ok_or_else(not_found)?;
    if !matches!(actor.principal, Principal::Patient { patient, .. } if patient == c.patient) {
        return Err(AppError::Forbidden(
            "seul le patient règle en ligne sa consultation".into(),
        ));
    }
    if let Some(m) = c.settled {
        return Err(AppError::Conflict(format!(
            "cette consultation est déjà réglée ({})",
            m.label_fr()
        )));
    }
    let Some(provider) = ctx.payment else {
        return Err(AppError::Unprocessable(
            "business-rule",
            "le paiement en ligne n'est pas disponible : réglez au secrétariat".into(),
        ));
    };
    let base = ctx.config.public_url();
    let doctor = ctx.store.user(c.practitioner).await?;
    let label = format!(
        "Téléconsultation du {} avec {}",
        date_fr(c.closed_at_ms),
        doctor.display_name
    );
    let success = format!("{base}/rdv/{id}?paiement=retour");
    let cancel = format!("{base}/rdv/{id}?paiement=abandon");
    // A double click within ten minutes opens the same session.
    let key = format!("parcours-{id}-{}", ctx.now_ms() / 600_000);
    let reference = id.to_string();
    let account =
        crate::services::directory::setting(ctx, c.establishment, "payment_account").await?;
    let session = provider
        .create_checkout(&CheckoutRequest {
            reference: &reference,
            amount_cents: c.fee_cents,
            label: &label,
            success_url: &success,
            cancel_url: &cancel,
            email,
            idempotency_key: &key,
            account: account.as_deref(),
        })
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "checkout session not opened");
            AppError::Unavailable(format!(
                "le paiement en ligne est momentanément indisponible, réessayez dans un instant ({e})"
            ))
        })?;
    if !ctx.store.set_checkout(id, &session.id).await? {
        return Err(AppError::Conflict(
            "cette consultation vient d'être réglée".into(),
        ));
    }
    Ok((session.url, c.fee_cents))
}

/// What a webhook did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// A consultation is now settled.
    Settled,
    /// The same payment told again (the provider retries): nothing to do.
    AlreadySettled,
    /// A second payment for a settled consultation: to refund.
    Duplicate,
    /// Not an event about a payment made, or not ours.
    Ignored,
}

/// Handles the provider's webhook: signature first (400 if it fails), then a
/// paid checkout session settles its consultation once, amount and currency
/// checked (422 if they differ: nothing is settled).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn webhook(
    ctx: Ctx<'_>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<WebhookOutcome, AppError> {
    let Some(provider) = ctx.payment else {
        return Err(AppError::NotFound("paiement en ligne non configuré".into()));
    };
    let now_s = ctx.now_ms() / 1000;
    payment::verify(
        provider.webhook_secret(),
        signature.unwrap_or_default(),
        body,
        now_s,
    )
    .map_err(|e| {
        tracing::warn!(error = %e, "payment webhook refused");
        AppError::BadRequest("security", e.to_string())
    })?;
    let event = payment::parse_event(body).map_err(|e| AppError::BadRequest("invalid", e))?;
    let Some(session) = payment::is_payment(&event) else {
        return Ok(WebhookOutcome::Ignored);
    };
    let Some(reference) = session.client_reference_id.as_deref() else {
        tracing::warn!(event = %event.id, "paid session without reference");
        return Ok(WebhookOutcome::Ignored);
    };
    let Ok(reference) = reference.parse::<domain::AppointmentId>() else {
        tracing::warn!(event = %event.id, "paid session for no consultation of ours");
        return Ok(WebhookOutcome::Ignored);
    };
    let c = match ctx.store.consultation(reference).await {
        Ok(c) => c,
        Err(store::StoreError::NotFound) => {
            tracing::warn!(event = %event.id, "paid session for no consultation of ours");
            return Ok(WebhookOutcome::Ignored);
        }
        Err(e) => return Err(e.into()),
    };
    // Paid to the establishment's own account (or, without one, the
    // platform's): a payment made elsewhere settles nothing here.
    let account =
        crate::services::directory::setting(ctx, c.establishment, "payment_account").await?;
    if event.account != account {
        tracing::error!(event = %event.id, "paid on another account than the establishment's: not settled");
        return Err(AppError::Unprocessable(
            "business-rule",
            "le paiement n'a pas été reçu sur le compte de l'établissement".into(),
        ));
    }
    if session.amount_total != Some(c.fee_cents) || session.currency.as_deref() != Some("eur") {
        tracing::error!(event = %event.id, "paid amount differs from the fee: not settled");
        return Err(AppError::Unprocessable(
            "business-rule",
            "le montant payé ne correspond pas au tarif de la consultation".into(),
        ));
    }
    let settled = ctx
        .store
        .settle_consultation(
            &c,
            Method::Card,
            Some(&session.id),
            &AuditActor::system("paiement"),
            ctx.now_ms(),
        )
        .await?;
    if settled {
        return Ok(WebhookOutcome::Settled);
    }
    if c.checkout_id.as_deref() == Some(session.id.as_str()) {
        Ok(WebhookOutcome::AlreadySettled)
    } else {
        tracing::error!(event = %event.id, session = %session.id, "second payment for a settled consultation: refund it");
        Ok(WebhookOutcome::Duplicate)
    }
}

/// What the verification page shows: enough for a pharmacist to trust the
/// paper in front of them, nothing about the patient.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The number.
    pub number: String,
    /// Date of the prescription.
    pub date: String,
    /// Prescriber.
    pub practitioner: String,
    /// Their RPPS.
    pub rpps: Option<String>,
    /// Establishment.
    pub establishment: String,
    /// How many medications.
    pub lines: usize,
    /// Whether the prescriber approved it.
    pub approved: bool,
}

/// Looks a prescription number up (audited as a verification of the record).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn verify(ctx: Ctx<'_>, typed: &str) -> Result<Option<Verified>, AppError> {
    let Some(number) = rules::normalise_number(typed) else {
        return Ok(None);
    };
    let c = match ctx.store.consultation_by_number(&number).await {
        Ok(c) => c,
        Err(store::StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    ctx.store
        .audit(&store::audit::NewAudit {
            at_ms: ctx.now_ms(),
            actor: AuditActor::system("verification-ordonnance"),
            patient: Some(c.patient.to_string()),
            action: "read-clinical".into(),
            resource: format!("Consultation/{}", c.appointment_id),
            outcome: "success".into(),
        })
        .await?;
    let doctor = ctx.store.user(c.practitioner).await?;
    let est = ctx.store.establishment(c.establishment).await?;
    Ok(Some(Verified {
        number,
        date: date_fr(c.closed_at_ms),
        practitioner: doctor.display_name,
        rpps: doctor.rpps,
        establishment: est.name,
        lines: c.closing.lines.len(),
        approved: c.approved_at_ms.is_some(),
    }))
}

/// A closed teleconsultation as the API shows it: with its practitioner's
/// name and the start of its appointment.
#[derive(Debug)]
pub struct Closed {
    /// The consultation.
    pub consultation: Consultation,
    /// The practitioner's name.
    pub practitioner_name: String,
    /// The appointment's start (Unix ms).
    pub start_ms: i64,
}

/// The patient's closed teleconsultations at `actor`'s establishments (each
/// read audited by [`view`]), without those the release rule withholds.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn closed_of_patient(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: domain::PatientId,
) -> Result<Vec<Closed>, AppError> {
    let mine = crate::services::directory::grant_establishments(actor);
    let mut out = Vec::new();
    for c in ctx.store.consultations_of_patient(patient).await? {
        if !mine.contains(&c.establishment) {
            continue;
        }
        if let Some(c) = view(ctx, actor, c.appointment_id).await?
            && withheld(actor, &c).is_none()
        {
            out.push(closed(ctx, c).await?);
        }
    }
    Ok(out)
}

/// The closed teleconsultation of appointment `id`, if there is one and
/// `actor` may read it (an Encounter under the appointment's id).
pub async fn closed_by_id(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: domain::AppointmentId,
) -> Result<Option<Closed>, AppError> {
    let Ok(c) = ctx.store.consultation(id).await else {
        return Ok(None);
    };
    closed_of_patient(ctx, actor, c.patient)
        .await?
        .into_iter()
        .find(|x| x.consultation.appointment_id == id)
        .map(Some)
        .ok_or_else(|| AppError::NotFound("séjour introuvable".into()))
}

async fn closed(ctx: Ctx<'_>, c: Consultation) -> Result<Closed, AppError> {
    Ok(Closed {
        practitioner_name: ctx.store.user(c.practitioner).await?.display_name,
        start_ms: ctx.store.appointment(c.appointment_id).await?.start_ms,
        consultation: c,
    })
}

/// What the doctor's closing form is for appointment `id`.
#[derive(Debug)]
pub enum ClosingForm {
    /// Closed already: its page shows what follows.
    Closed,
    /// To close: the patient's name (an audited read).
    Open(String),
}

/// The closing form of appointment `id` for its doctor (`user`): a booked
/// video appointment of theirs, else 404.
pub async fn closing_form(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
    id: domain::AppointmentId,
) -> Result<ClosingForm, AppError> {
    let a = own_video_appointment(ctx, user, id).await?;
    if view(ctx, actor, id).await?.is_some() {
        return Ok(ClosingForm::Closed);
    }
    let p = patients::read(ctx, actor, a.patient).await?;
    Ok(ClosingForm::Open(p.traits.display_name()))
}
