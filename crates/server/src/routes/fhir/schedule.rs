//! Agendas and teleconsultation: Appointment, Schedule, Slot, MedicationRequest.

use super::*;

/// `GET /fhir/Appointment?patient=…` or `?practitioner=…`: appointments at the
/// client's establishments; each patient shown is an audited identity read.
pub(super) async fn search_appointments(
    State(state): State<AppState>,
    api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let list = params(raw.clone(), &["patient", "practitioner"])?;
    let mine = grant_establishments(&api);
    let appointments = if let Some(p) = reference_id(&list, "patient", "Patient")? {
        let pid = patient_id(p)?;
        patients::read(state.ctx(), &api.actor, pid).await?;
        state.store.appointments_of_patient(pid).await?
    } else if let Some(u) = reference_id(&list, "practitioner", "Practitioner")? {
        let uid: domain::UserId = u
            .parse()
            .map_err(|_| AppError::NotFound("Practitioner introuvable".into()))?;
        let now = state.now_ms();
        let day = 24 * 3600 * 1000;
        let list = state
            .store
            .agenda(uid, now - 30 * day, now + 90 * day)
            .await?;
        let mut seen = Vec::new();
        for a in list.iter().filter(|a| mine.contains(&a.establishment)) {
            if !seen.contains(&a.patient) {
                patients::read(state.ctx(), &api.actor, a.patient).await?;
                seen.push(a.patient);
            }
        }
        list
    } else {
        return Err(AppError::BadRequest(
            "required",
            "paramètre patient=Patient/id ou practitioner=Practitioner/id obligatoire".into(),
        )
        .into());
    };
    let mut out = Vec::new();
    for a in appointments
        .iter()
        .filter(|a| mine.contains(&a.establishment))
    {
        let name = state.store.user(a.practitioner).await?.display_name;
        out.push(interop::fhir::schedule::appointment(a, &name));
    }
    Ok(bundle(
        &state,
        out,
        &format!("Appointment?{}", raw.unwrap_or_default()),
    ))
}

/// `GET /fhir/Schedule`: the agendas open at the client's establishments.
pub(super) async fn search_schedules(
    State(state): State<AppState>,
    api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    params(raw, &[])?;
    let mut by_practitioner: Vec<(domain::UserId, Vec<String>)> = Vec::new();
    for e in grant_establishments(&api) {
        for u in state.store.scheduled_practitioners(e).await? {
            match by_practitioner.iter_mut().find(|(p, _)| *p == u) {
                Some((_, ests)) => ests.push(e.to_string()),
                None => by_practitioner.push((u, vec![e.to_string()])),
            }
        }
    }
    let mut out = Vec::new();
    for (u, ests) in by_practitioner {
        let name = state.store.user(u).await?.display_name;
        out.push(interop::fhir::schedule::schedule(
            &u.to_string(),
            &name,
            &ests,
        ));
    }
    Ok(bundle(&state, out, "Schedule"))
}

/// `GET /fhir/Slot?schedule=Schedule/…`: its free slots over 14 days, at the
/// client's establishments.
pub(super) async fn search_slots(
    State(state): State<AppState>,
    api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let list = params(raw.clone(), &["schedule"])?;
    let id = reference_id(&list, "schedule", "Schedule")?.ok_or_else(|| {
        AppError::BadRequest(
            "required",
            "paramètre schedule=Schedule/id obligatoire".into(),
        )
    })?;
    let uid: domain::UserId = id
        .parse()
        .map_err(|_| AppError::NotFound("Schedule introuvable".into()))?;
    let mut out = Vec::new();
    for e in grant_establishments(&api) {
        for s in crate::services::schedule::free_slots(state.ctx(), uid, e, 14).await? {
            out.push(interop::fhir::schedule::slot(id, &s));
        }
    }
    Ok(bundle(
        &state,
        out,
        &format!("Slot?{}", raw.unwrap_or_default()),
    ))
}

/// The patient's closed teleconsultations at the client's establishments (the
/// read audited by the consultations service).
pub(super) async fn consultations_of(
    state: &AppState,
    api: &ApiActor,
    pid: PatientId,
) -> Result<Vec<store::consultations::Consultation>, AppError> {
    let mine = grant_establishments(api);
    let mut out = Vec::new();
    for c in state.store.consultations_of_patient(pid).await? {
        if !mine.contains(&c.establishment) {
            continue;
        }
        if let Some(c) =
            crate::services::consultations::view(state.ctx(), &api.actor, &c.appointment_id).await?
        {
            // The release rule (withheld only from patients) holds here too.
            if crate::services::consultations::withheld(&api.actor, &c).is_none() {
                out.push(c);
            }
        }
    }
    Ok(out)
}

pub(super) fn consultation_view<'a>(
    c: &'a store::consultations::Consultation,
    practitioner_name: &'a str,
    start_ms: i64,
) -> interop::fhir::consultation::ConsultationView<'a> {
    interop::fhir::consultation::ConsultationView {
        id: &c.appointment_id,
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
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let list = params(raw.clone(), &["patient"])?;
    let pid = patient_param(&list)?;
    let mut out = Vec::new();
    for c in consultations_of(&state, &api, pid).await? {
        let name = state.store.user(c.practitioner).await?.display_name;
        out.extend(interop::fhir::consultation::medication_requests(
            &consultation_view(&c, &name, c.closed_at_ms),
        ));
    }
    Ok(bundle(
        &state,
        out,
        &format!("MedicationRequest?{}", raw.unwrap_or_default()),
    ))
}
