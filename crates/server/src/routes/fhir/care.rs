//! Stays, beds and orientation: Encounter, Location (ROR capacity),
//! HealthcareService, ServiceRequest and Task.

use super::*;
use crate::services::{beds, consultations, directory};

pub(super) async fn encounter_view(
    state: &AppState,
    e: &store::encounters::EncounterRecord,
) -> Result<f::EncounterView, AppError> {
    let est = directory::establishment(state.ctx(), e.establishment).await?;
    let l = &e.location;
    let location = l.unit.as_ref().map(|u| {
        let mut t = u.clone();
        if let Some(r) = &l.room {
            t.push_str(&format!(", chambre {r}"));
        }
        if let Some(b) = &l.bed {
            t.push_str(&format!(", lit {b}"));
        }
        t
    });
    Ok(f::EncounterView {
        id: e.id.to_string(),
        patient: e.patient.to_string(),
        establishment: e.establishment.to_string(),
        finess: est.finess,
        visit_number: e.visit_number.clone(),
        status: e.status.code().to_owned(),
        class: e.class.clone(),
        location,
        start_ms: e.started_at_ms,
        end_ms: e.ended_at_ms,
        version: e.version,
        updated_ms: e.updated_at_ms,
    })
}

pub(super) async fn search_encounters(
    State(state): State<AppState>,
    api: ApiActor,
    q: SearchQuery,
) -> ApiResult {
    let s = q.accept("Encounter", &["patient"])?;
    let pid = patient_param(&s.list)?;
    let out = encounters_json(&state, &api.actor, pid).await?;
    s.respond(&state, &api, out).await
}

/// The stays and closed teleconsultations of `pid` the client may read.
pub(crate) async fn encounters_json(
    state: &AppState,
    actor: &Actor,
    pid: PatientId,
) -> Result<Vec<Value>, AppError> {
    let mut out = Vec::new();
    for e in patients::encounters(state.ctx(), actor, pid).await? {
        out.push(f::encounter(&encounter_view(state, &e).await?));
    }
    // Closed teleconsultations at the client's establishments (class VR).
    for c in consultations::closed_of_patient(state.ctx(), actor, pid).await? {
        let view = consultation_view(&c.consultation, &c.practitioner_name, c.start_ms);
        out.push(interop::fhir::consultation::encounter(&view));
    }
    Ok(out)
}

pub(super) async fn read_encounter(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let e = encounter_by_id(&state, &api.actor, &id).await?;
    Ok(fhir(StatusCode::OK, &e))
}

/// One Encounter `actor` may read: a stay, or a closed teleconsultation
/// (under its appointment's id).
pub(super) async fn encounter_by_id(
    state: &AppState,
    actor: &Actor,
    id: &str,
) -> Result<Value, AppError> {
    let closed = match id.parse::<domain::AppointmentId>() {
        Ok(aid) => consultations::closed_by_id(state.ctx(), actor, aid).await?,
        Err(_) => None,
    };
    if let Some(c) = closed {
        let view = consultation_view(&c.consultation, &c.practitioner_name, c.start_ms);
        return Ok(interop::fhir::consultation::encounter(&view));
    }
    let eid: domain::EncounterId = id
        .parse()
        .map_err(|_| AppError::NotFound("séjour introuvable".into()))?;
    let e = patients::encounter(state.ctx(), actor, eid).await?;
    Ok(f::encounter(&encounter_view(state, &e).await?))
}

pub(super) fn bed_view(b: &store::beds::UnitBeds) -> f::BedLocationView {
    f::BedLocationView {
        id: b.unit.to_string(),
        name: b.unit_name.clone(),
        code: b.unit_code.clone(),
        establishment: b.establishment.to_string(),
        finess: b.finess.clone(),
        category: b.category.label_fr().into(),
        category_code: b.category.code().into(),
        available: b.counts.available(),
        closed: b.counts.closed,
        updated_ms: b.last_update_ms,
    }
}

pub(super) async fn search_locations(
    State(state): State<AppState>,
    api: ApiActor,
    q: SearchQuery,
) -> ApiResult {
    let s = q.accept("Location", &[])?;
    let t = directory_territories(&api)?;
    let list = beds::of_territory(state.ctx(), t)
        .await?
        .iter()
        .map(|b| f::bed_location(&bed_view(b)))
        .collect();
    s.respond(&state, &api, list).await
}

pub(super) async fn read_location(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let t = directory_territories(&api)?;
    let not_found = || AppError::NotFound("Location introuvable".into());
    let uid: domain::UnitId = id.parse().map_err(|_| not_found())?;
    let b = beds::unit_in_territory(state.ctx(), t, uid)
        .await?
        .ok_or_else(not_found)?;
    Ok(fhir(StatusCode::OK, &f::bed_location(&bed_view(&b))))
}

/// `GET /fhir/HealthcareService/{id}`: a unit of the client's territory.
pub(super) async fn read_service(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let t = directory_territories(&api)?;
    let not_found = || AppError::NotFound("HealthcareService introuvable".into());
    let uid: domain::UnitId = id.parse().map_err(|_| not_found())?;
    let b = beds::unit_in_territory(state.ctx(), t, uid)
        .await?
        .ok_or_else(not_found)?;
    Ok(fhir(StatusCode::OK, &f::bed_service(&bed_view(&b))))
}

pub(super) async fn search_services(
    State(state): State<AppState>,
    api: ApiActor,
    q: SearchQuery,
) -> ApiResult {
    let s = q.accept("HealthcareService", &[])?;
    let t = directory_territories(&api)?;
    let beds = beds::of_territory(state.ctx(), t).await?;
    let services = beds.iter().map(|x| f::bed_service(&bed_view(x))).collect();
    let s = if s.wants_include("HealthcareService:location") {
        let locations = beds.iter().map(|x| f::bed_location(&bed_view(x))).collect();
        s.with_included(locations)
    } else {
        s
    };
    s.respond(&state, &api, services).await
}

/// Loads an orientation the client may see (requesting or asked establishment),
/// audits the read and returns its FHIR view.
pub(super) async fn orientation_view(
    state: &AppState,
    api: &ApiActor,
    id: &str,
) -> Result<f::OrientationView, AppError> {
    let not_found = || AppError::NotFound("demande d'orientation introuvable".into());
    let id: domain::OrientationId = id.parse().map_err(|_| not_found())?;
    let o = crate::services::orientation::view(state.ctx(), &api.actor, id)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::NotFound("demande d'orientation introuvable".into()),
            other => other,
        })?;
    Ok(f::OrientationView {
        id: o.id.to_string(),
        patient: o.patient.to_string(),
        from: o.from.to_string(),
        target: (o.target.code().into(), o.target.label_fr().into()),
        needs: o.needs.clone(),
        wished_date: o.wished_date.clone(),
        urgent: o.urgent,
        status: o.status.code().into(),
        created_ms: o.created_at_ms,
        recipients: o
            .recipients
            .iter()
            .map(|r| {
                (
                    r.establishment.to_string(),
                    r.status.code().to_owned(),
                    r.reason.clone(),
                    r.responded_at_ms,
                )
            })
            .collect(),
    })
}

pub(super) async fn read_service_request(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let o = orientation_view(&state, &api, &id).await?;
    Ok(fhir(StatusCode::OK, &f::service_request(&o)))
}

pub(super) async fn search_tasks(
    State(state): State<AppState>,
    api: ApiActor,
    q: SearchQuery,
) -> ApiResult {
    let s = q.accept("Task", &["focus", "patient"])?;
    if param(&s.list, "patient").is_some() {
        // The triage tasks of the patient's monitoring alerts.
        let (_, resources) = monitoring_search(&state, &api.actor, &s.list, "Task").await?;
        return s.respond(&state, &api, resources).await;
    }
    let focus = param(&s.list, "focus")
        .and_then(|f| f.strip_prefix("ServiceRequest/"))
        .ok_or_else(|| {
            AppError::BadRequest(
                "required",
                "paramètre focus=ServiceRequest/id ou patient=Patient/id obligatoire".into(),
            )
        })?;
    let o = orientation_view(&state, &api, focus).await?;
    let tasks = f::orientation_tasks(&o);
    s.respond(&state, &api, tasks).await
}
