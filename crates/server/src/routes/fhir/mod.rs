//! FHIR R4 REST API at `/fhir`: the routes and what every resource family
//! shares (parameters, bodies, Bundles, errors); one module per family beside
//! it. Bearer tokens only; `application/fhir+json`; every error is an
//! OperationOutcome with a 4xx or 5xx.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::{PatientId, TerritoryId, UserId};
use interop::fhir as f;
use serde_json::Value;
use store::patients::{PatientQuery, PatientSort};

use crate::error::{ApiError, AppError, FHIR_JSON};
use crate::extract::ApiActor;
use crate::services::patients;
use crate::state::AppState;
use domain::policy::Actor;

mod batch;
mod care;
mod directory;
mod documents;
pub(crate) mod everything;
mod monitoring;
mod patient;
mod schedule;
mod search;
mod subscription;
mod transaction;

use care::*;
use directory::*;
use documents::*;
use monitoring::*;
use patient::*;
use schedule::*;
use search::SearchQuery;
pub(crate) use subscription::notified_resource_boxed;
use subscription::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", post(transaction))
        .route("/metadata", get(metadata))
        .route("/Binary/{id}", get(read_binary))
        .route("/DocumentReference/{id}", get(read_document_reference))
        .route("/Patient", get(search_patients).post(create_patient))
        .route("/Patient/$merge", post(merge_patients))
        .route(
            "/Patient/{id}/$everything",
            get(everything::patient_everything),
        )
        .route("/Patient/{id}", get(read_patient).put(update_patient))
        .route("/Encounter", get(search_encounters))
        .route("/Encounter/{id}", get(read_encounter))
        .route("/Location", get(search_locations))
        .route("/Location/{id}", get(read_location))
        .route("/HealthcareService", get(search_services))
        .route("/HealthcareService/{id}", get(read_service))
        .route("/ServiceRequest/{id}", get(read_service_request))
        .route("/Task", get(search_tasks))
        .route(
            "/Observation",
            get(|s, a, q| search_monitoring(s, a, q, "Observation")).post(post_observation),
        )
        .route("/Flag", get(|s, a, q| search_monitoring(s, a, q, "Flag")))
        .route(
            "/Flag/{id}",
            get(|s, a, p| read_monitoring(s, a, p, "Flag")),
        )
        .route(
            "/Task/{id}",
            get(|s, a, p| read_monitoring(s, a, p, "Task")),
        )
        .route(
            "/CarePlan/{id}",
            get(|s, a, p| read_monitoring(s, a, p, "CarePlan")),
        )
        .route(
            "/Observation/{id}",
            get(|s, a, p| read_monitoring(s, a, p, "Observation")),
        )
        .route(
            "/QuestionnaireResponse/{id}",
            get(|s, a, p| read_monitoring(s, a, p, "QuestionnaireResponse")),
        )
        .route(
            "/Communication",
            get(|s, a, q| search_monitoring(s, a, q, "Communication")),
        )
        .route(
            "/Communication/{id}",
            get(|s, a, p| read_monitoring(s, a, p, "Communication")),
        )
        .route(
            "/CarePlan",
            get(|s, a, q| search_monitoring(s, a, q, "CarePlan")),
        )
        .route(
            "/Appointment",
            get(search_appointments).post(create_appointment),
        )
        .route("/Appointment/{id}", get(read_appointment))
        .route("/MedicationRequest", get(search_medication_requests))
        .route("/MedicationRequest/{id}", get(read_medication_request))
        .route("/DocumentReference", get(search_document_references))
        .route("/List", get(search_submission_sets))
        .route("/List/{id}", get(read_submission_set))
        .route("/Schedule", get(search_schedules))
        .route("/Schedule/{id}", get(read_schedule))
        .route("/Slot", get(search_slots))
        .route("/Slot/{id}", get(read_slot))
        .route("/Questionnaire", get(search_questionnaires))
        .route("/Questionnaire/{id}", get(read_questionnaire))
        .route(
            "/QuestionnaireResponse",
            get(|s, a, q| search_monitoring(s, a, q, "QuestionnaireResponse")).post(post_response),
        )
        .route("/Practitioner", get(search_practitioners))
        .route("/Practitioner/{id}", get(read_practitioner))
        .route("/Organization", get(search_organizations))
        .route("/Organization/{id}", get(read_organization))
        .route("/AuditEvent", get(search_audit))
        .route("/AuditEvent/{id}", get(read_audit))
        .route(
            "/Subscription",
            get(search_subscriptions).post(create_subscription),
        )
        .route("/Subscription/$websocket", get(subscription_ws))
        .route(
            "/Subscription/{id}",
            get(read_subscription).delete(delete_subscription),
        )
        .fallback(unknown)
        .method_not_allowed_fallback(method_not_allowed)
}

/// `POST /fhir/` (the base with a slash, as some clients write it: fhirpy):
/// the same batch and transaction Bundles as `POST /fhir`.
pub fn base_with_slash() -> Router<AppState> {
    Router::new().route("/fhir/", post(transaction))
}

type ApiResult = Result<Response, ApiError>;

/// A FHIR answer; a single resource with a `meta.versionId` carries it as its
/// `ETag` (every versioned read, not only the Patient's).
fn fhir(status: StatusCode, body: &Value) -> Response {
    let resp = (
        status,
        [(header::CONTENT_TYPE, FHIR_JSON)],
        body.to_string(),
    )
        .into_response();
    let version = (body.get("resourceType").and_then(Value::as_str) != Some("Bundle"))
        .then(|| interop::json_at(body, &["meta", "versionId"]).as_str())
        .flatten()
        .and_then(|v| v.parse::<i64>().ok());
    match version {
        Some(v) => with_version(resp, v),
        None => resp,
    }
}

/// A 201 with the resource and its `Location` (`{base}/{path}`).
fn created(state: &AppState, body: &Value, path: &str) -> Response {
    let mut resp = fhir(StatusCode::CREATED, body);
    if let Ok(v) = format!("{}/{path}", base(state)).parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn base(state: &AppState) -> String {
    format!("{}/fhir", state.config.public_url())
}

async fn unknown() -> ApiError {
    ApiError(AppError::NotFound(
        "type de ressource ou chemin non pris en charge (voir /fhir/metadata pour ce que ce serveur implémente)".into(),
    ))
}

async fn method_not_allowed() -> Response {
    let body = f::operation_outcome(
        "error",
        "not-supported",
        "interaction non prise en charge sur cette ressource (voir /fhir/metadata)",
    );
    fhir(StatusCode::METHOD_NOT_ALLOWED, &body)
}

async fn metadata(State(state): State<AppState>) -> Response {
    let date = state.clock.now().to_string();
    fhir(
        StatusCode::OK,
        &f::capability_statement(&base(&state), env!("CARGO_PKG_VERSION"), &date),
    )
}

fn param<'a>(list: &'a [(String, String)], name: &str) -> Option<&'a str> {
    list.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn body_bytes(
    body: Result<Bytes, BytesRejection>,
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Bytes, AppError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if media != "application/fhir+json" && media != "application/json" {
        return Err(AppError::BadRequest(
            "not-supported",
            format!("Content-Type {media:?}: application/fhir+json attendu"),
        ));
    }
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge(state.config.max_body_bytes)
        } else {
            AppError::BadRequest("structure", "corps de requête illisible".into())
        }
    })
}

fn parse_input(
    state: &AppState,
    bytes: &[u8],
    domain_oid: &str,
) -> Result<f::ParsedPatient, AppError> {
    let today = state.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    f::parse_patient(bytes, domain_oid, today).map_err(input_error)
}

/// A body that cannot be accepted, as the answer says it.
fn input_error(e: f::FhirInputError) -> AppError {
    match e {
        f::FhirInputError::Structure(m) => AppError::BadRequest("structure", m),
        f::FhirInputError::NotSupported(m) => AppError::Unprocessable("not-supported", m),
        f::FhirInputError::Rule(m) => AppError::Unprocessable("business-rule", m),
    }
}

fn patient_id(id: &str) -> Result<PatientId, AppError> {
    id.parse().map_err(|_| {
        AppError::NotFound(format!(
            "Patient/{} introuvable",
            id.chars().take(64).collect::<String>()
        ))
    })
}

/// A Patient (with its demographics, read after the audited read of `p`).
async fn patient_resource(
    state: &AppState,
    p: &domain::identity::PatientRecord,
    oid: &str,
) -> Result<Value, AppError> {
    let d = crate::services::patients::demographics(state.ctx(), p.id).await?;
    Ok(f::patient(p, &d, oid))
}

/// A Patient answer with its version as ETag.
async fn patient_response(
    state: &AppState,
    status: StatusCode,
    p: &domain::identity::PatientRecord,
    oid: &str,
) -> Result<Response, AppError> {
    let body = patient_resource(state, p, oid).await?;
    Ok(with_version(fhir(status, &body), p.version))
}

/// The required `patient` search parameter (`Patient/id` or `id`).
fn patient_param(list: &[(String, String)]) -> Result<PatientId, AppError> {
    let patient = param(list, "patient").ok_or_else(|| {
        AppError::BadRequest(
            "required",
            "paramètre patient obligatoire (patient=Patient/id)".into(),
        )
    })?;
    patient_id(patient.strip_prefix("Patient/").unwrap_or(patient))
}

fn with_version(mut resp: Response, version: i64) -> Response {
    if let Ok(v) = format!("W/\"{version}\"").parse() {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

async fn domain_oid(state: &AppState, territory: TerritoryId) -> Result<String, AppError> {
    Ok(
        crate::services::directory::territory(state.ctx(), territory)
            .await?
            .oid,
    )
}

/// Checks an establishment-level action for the client's own establishment.
/// Where the client belongs (the services decide what it may do there).
fn home(api: &ApiActor) -> crate::services::directory::Home {
    crate::services::directory::Home {
        establishment: api.client.establishment,
        territory: api.client.territory,
    }
}

fn directory_territories(api: &ApiActor) -> Result<TerritoryId, AppError> {
    crate::services::directory::readable_territory(&api.actor, home(api))
}

fn reference_id<'a>(
    list: &'a [(String, String)],
    name: &str,
    kind: &str,
) -> Result<Option<&'a str>, AppError> {
    match param(list, name) {
        None => Ok(None),
        Some(v) => Ok(Some(v.strip_prefix(&format!("{kind}/")).unwrap_or(v))),
    }
}
