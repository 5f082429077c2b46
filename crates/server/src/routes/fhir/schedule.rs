//! Agendas and teleconsultation: Appointment, Schedule, Slot, MedicationRequest.

use super::*;
use crate::services::{consultations, schedule};

/// `GET /fhir/Appointment?patient=…` or `?practitioner=…`: appointments at the
/// client's establishments; each patient shown is an audited identity read.
pub(super) async fn search_appointments(
    State(state): State<AppState>,
    api: ApiActor,
    q: SearchQuery,
) -> ApiResult {
    let s = q.accept("Appointment", &["patient", "practitioner"])?;
    let ctx = state.ctx();
    let appointments = if let Some(p) = reference_id(&s.list, "patient", "Patient")? {
        schedule::of_patient(ctx, &api.actor, patient_id(p)?).await?
    } else if let Some(u) = reference_id(&s.list, "practitioner", "Practitioner")? {
        let uid: domain::UserId = u
            .parse()
            .map_err(|_| AppError::NotFound("Practitioner introuvable".into()))?;
        schedule::of_practitioner(ctx, &api.actor, uid).await?
    } else {
        return Err(AppError::BadRequest(
            "required",
            "paramètre patient=Patient/id ou practitioner=Practitioner/id obligatoire".into(),
        )
        .into());
    };
    let out = appointments
        .iter()
        .map(|(a, name)| interop::fhir::schedule::appointment(a, name))
        .collect();
    s.respond(&state, &api, out).await
}

/// `POST /fhir/Appointment`: books a free slot of a practitioner's agenda for a
/// patient, at the named Organization or the client's establishment, as the
/// desk would (same rules, same confirmation and SIU); 201 with the Appointment.
pub(super) async fn create_appointment(
    State(state): State<AppState>,
    api: ApiActor,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let bytes = body_bytes(body, &state, &headers)?;
    let a = interop::fhir::schedule::parse_appointment(&bytes).map_err(input_error)?;
    let pid = patient_id(&a.patient)?;
    let uid: UserId = a
        .practitioner
        .parse()
        .map_err(|_| AppError::NotFound("Practitioner introuvable".into()))?;
    let establishment: domain::EstablishmentId = match &a.establishment {
        Some(e) => e
            .parse()
            .map_err(|_| AppError::NotFound("Organization introuvable".into()))?,
        None => api.client.establishment,
    };
    let ctx = state.ctx();
    if let Some(mode) = a.mode {
        let slot = schedule::free_slots(ctx, uid, establishment, 60)
            .await?
            .into_iter()
            .find(|s| s.start_ms == a.start_ms);
        if let Some(s) = slot
            && s.mode != mode
        {
            return Err(AppError::Unprocessable(
                "business-rule",
                format!("ce créneau est {} (serviceType)", s.mode.label_fr()),
            )
            .into());
        }
    }
    let id = schedule::book(
        ctx,
        &api.actor,
        &api.client.name,
        pid,
        uid,
        establishment,
        a.start_ms,
    )
    .await?;
    let made = schedule::of_patient(ctx, &api.actor, pid)
        .await?
        .into_iter()
        .find(|(x, _)| x.id.to_string() == id)
        .ok_or_else(|| AppError::NotFound("rendez-vous introuvable".into()))?;
    Ok(created(
        &state,
        &interop::fhir::schedule::appointment(&made.0, &made.1),
        &format!("Appointment/{id}"),
    ))
}

/// `GET /fhir/Appointment/{id}`: one appointment at the client's establishments.
pub(super) async fn read_appointment(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let aid: domain::AppointmentId = id
        .parse()
        .map_err(|_| AppError::NotFound("Appointment introuvable".into()))?;
    let (a, name) = schedule::one(state.ctx(), &api.actor, aid).await?;
    Ok(fhir(
        StatusCode::OK,
        &interop::fhir::schedule::appointment(&a, &name),
    ))
}

/// The appointments of `pid` at the client's establishments.
pub(crate) async fn appointments_json(
    state: &AppState,
    actor: &Actor,
    pid: PatientId,
) -> Result<Vec<Value>, AppError> {
    Ok(schedule::of_patient(state.ctx(), actor, pid)
        .await?
        .iter()
        .map(|(a, name)| interop::fhir::schedule::appointment(a, name))
        .collect())
}

/// `GET /fhir/Schedule`: the agendas open at the client's establishments.
pub(super) async fn search_schedules(
    State(state): State<AppState>,
    api: ApiActor,
    q: SearchQuery,
) -> ApiResult {
    let s = q.accept("Schedule", &[])?;
    let out = schedule::agendas(state.ctx(), &api.actor)
        .await?
        .into_iter()
        .map(|(u, name, ests)| {
            let ests: Vec<String> = ests.iter().map(ToString::to_string).collect();
            interop::fhir::schedule::schedule(&u.to_string(), &name, &ests)
        })
        .collect();
    s.respond(&state, &api, out).await
}

/// `GET /fhir/Schedule/{id}`: an agenda open at the client's establishments.
pub(super) async fn read_schedule(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let one = schedule::agendas(state.ctx(), &api.actor)
        .await?
        .into_iter()
        .find(|(u, _, _)| u.to_string() == id)
        .ok_or_else(|| AppError::NotFound("Schedule introuvable".into()))?;
    let (u, name, ests) = one;
    let ests: Vec<String> = ests.iter().map(ToString::to_string).collect();
    Ok(fhir(
        StatusCode::OK,
        &interop::fhir::schedule::schedule(&u.to_string(), &name, &ests),
    ))
}

/// `GET /fhir/Slot/{schedule}-{start}`: a slot while it is free (a booked
/// one is gone: 404).
pub(super) async fn read_slot(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let not_found = || AppError::NotFound("Slot introuvable (pris ou inexistant)".into());
    let (schedule_id, start) = id.rsplit_once('-').ok_or_else(not_found)?;
    let uid: domain::UserId = schedule_id.parse().map_err(|_| not_found())?;
    let start_ms: i64 = start.parse().map_err(|_| not_found())?;
    for e in crate::services::directory::grant_establishments(&api.actor) {
        let free = crate::services::schedule::free_slots(state.ctx(), uid, e, 60).await?;
        if let Some(slot) = free.iter().find(|s| s.start_ms == start_ms) {
            return Ok(fhir(
                StatusCode::OK,
                &interop::fhir::schedule::slot(schedule_id, slot),
            ));
        }
    }
    Err(not_found().into())
}

/// `GET /fhir/MedicationRequest/{consultation}-{n}`: one line of a closed
/// teleconsultation's prescription the client may read.
pub(super) async fn read_medication_request(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let not_found = || AppError::NotFound("MedicationRequest introuvable".into());
    let (consultation, _) = id.rsplit_once('-').ok_or_else(not_found)?;
    let aid: domain::AppointmentId = consultation.parse().map_err(|_| not_found())?;
    let c = consultations::closed_by_id(state.ctx(), &api.actor, aid)
        .await?
        .ok_or_else(not_found)?;
    let view = consultation_view(
        &c.consultation,
        &c.practitioner_name,
        c.consultation.closed_at_ms,
    );
    let one = interop::fhir::consultation::medication_requests(&view)
        .into_iter()
        .find(|r| r.get("id").and_then(Value::as_str) == Some(id.as_str()))
        .ok_or_else(not_found)?;
    Ok(fhir(StatusCode::OK, &one))
}

/// `GET /fhir/Slot?schedule=Schedule/…`: its free slots over 14 days, at the
/// client's establishments.
pub(super) async fn search_slots(
    State(state): State<AppState>,
    api: ApiActor,
    q: SearchQuery,
) -> ApiResult {
    let s = q.accept("Slot", &["schedule"])?;
    let id = reference_id(&s.list, "schedule", "Schedule")?.ok_or_else(|| {
        AppError::BadRequest(
            "required",
            "paramètre schedule=Schedule/id obligatoire".into(),
        )
    })?;
    let uid: domain::UserId = id
        .parse()
        .map_err(|_| AppError::NotFound("Schedule introuvable".into()))?;
    let mut out = Vec::new();
    for e in crate::services::directory::grant_establishments(&api.actor) {
        for slot in crate::services::schedule::free_slots(state.ctx(), uid, e, 14).await? {
            out.push(interop::fhir::schedule::slot(id, &slot));
        }
    }
    s.respond(&state, &api, out).await
}

pub(super) fn consultation_view<'a>(
    c: &'a store::consultations::Consultation,
    practitioner_name: &'a str,
    start_ms: i64,
) -> interop::fhir::consultation::ConsultationView<'a> {
    interop::fhir::consultation::ConsultationView {
        id: c.appointment_id.to_string(),
        patient: c.patient.to_string(),
        practitioner: c.practitioner.to_string(),
        practitioner_name,
        establishment: c.establishment.to_string(),
        start_ms,
        closed_at_ms: c.closed_at_ms,
        number: &c.number,
        lines: &c.closing.lines,
        approved: c.approved_at_ms.is_some(),
    }
}

/// `GET /fhir/MedicationRequest?patient=…`: the prescriptions of the patient's
/// closed teleconsultations at the client's establishments.
pub(super) async fn search_medication_requests(
    State(state): State<AppState>,
    api: ApiActor,
    q: SearchQuery,
) -> ApiResult {
    let s = q.accept("MedicationRequest", &["patient"])?;
    let pid = patient_param(&s.list)?;
    let out = medication_requests_json(&state, &api.actor, pid).await?;
    s.respond(&state, &api, out).await
}

/// The prescriptions of `pid`'s closed teleconsultations `actor` may read.
pub(crate) async fn medication_requests_json(
    state: &AppState,
    actor: &Actor,
    pid: PatientId,
) -> Result<Vec<Value>, AppError> {
    let mut out = Vec::new();
    for c in consultations::closed_of_patient(state.ctx(), actor, pid).await? {
        let view = consultation_view(
            &c.consultation,
            &c.practitioner_name,
            c.consultation.closed_at_ms,
        );
        out.extend(interop::fhir::consultation::medication_requests(&view));
    }
    Ok(out)
}
