//! FHIR R4 REST API at `/fhir`: metadata, Patient (read, create, update, search,
//! `$merge`), Practitioner, Organization, AuditEvent. Bearer tokens only;
//! `application/fhir+json`; every error is an OperationOutcome with a 4xx or 5xx.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::policy::{EstablishmentAction, authorize_establishment};
use domain::{PatientId, TerritoryId, UserId};
use interop::fhir as f;
use serde_json::Value;
use store::audit::AuditFilter;
use store::patients::PatientQuery;

use crate::error::{ApiError, AppError, FHIR_JSON};
use crate::extract::ApiActor;
use crate::services::patients;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", post(transaction))
        .route("/metadata", get(metadata))
        .route("/Binary/{id}", get(read_binary))
        .route("/DocumentReference/{id}", get(read_document_reference))
        .route("/Patient", get(search_patients).post(create_patient))
        .route("/Patient/$merge", post(merge_patients))
        .route("/Patient/{id}", get(read_patient).put(update_patient))
        .route("/Encounter", get(search_encounters))
        .route("/Encounter/{id}", get(read_encounter))
        .route("/Location", get(search_locations))
        .route("/Location/{id}", get(read_location))
        .route("/HealthcareService", get(search_services))
        .route("/ServiceRequest/{id}", get(read_service_request))
        .route("/Task", get(search_tasks))
        .route(
            "/Observation",
            get(|s, a, q| search_monitoring(s, a, q, "Observation")),
        )
        .route("/Flag", get(|s, a, q| search_monitoring(s, a, q, "Flag")))
        .route(
            "/Communication",
            get(|s, a, q| search_monitoring(s, a, q, "Communication")),
        )
        .route(
            "/CarePlan",
            get(|s, a, q| search_monitoring(s, a, q, "CarePlan")),
        )
        .route("/Appointment", get(search_appointments))
        .route("/MedicationRequest", get(search_medication_requests))
        .route("/DocumentReference", get(search_document_references))
        .route("/List", get(search_submission_sets))
        .route("/Schedule", get(search_schedules))
        .route("/Slot", get(search_slots))
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
        .fallback(unknown)
        .method_not_allowed_fallback(method_not_allowed)
}

type ApiResult = Result<Response, ApiError>;

fn fhir(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, FHIR_JSON)],
        body.to_string(),
    )
        .into_response()
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

/// Query parameters, refusing any this server does not implement.
fn params(raw: Option<String>, allowed: &[&str]) -> Result<Vec<(String, String)>, AppError> {
    let list: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|_| AppError::BadRequest("invalid", "chaîne de requête illisible".into()))?;
    for (k, _) in &list {
        if k != "_format" && !allowed.contains(&k.as_str()) {
            return Err(AppError::BadRequest(
                "not-supported",
                format!(
                    "paramètre de recherche non pris en charge: {k} (acceptés: {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(list)
}

fn param<'a>(list: &'a [(String, String)], name: &str) -> Option<&'a str> {
    list.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn number(list: &[(String, String)], name: &str, default: i64, max: i64) -> Result<i64, AppError> {
    match param(list, name) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| n.min(max))
            .ok_or_else(|| {
                AppError::BadRequest("invalid", format!("{name}: entier positif attendu"))
            }),
    }
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
    f::parse_patient(bytes, domain_oid, today).map_err(|e| match e {
        f::FhirInputError::Structure(m) => AppError::BadRequest("structure", m),
        f::FhirInputError::NotSupported(m) => AppError::Unprocessable("not-supported", m),
        f::FhirInputError::Rule(m) => AppError::Unprocessable("business-rule", m),
    })
}

fn patient_id(id: &str) -> Result<PatientId, AppError> {
    id.parse().map_err(|_| {
        AppError::NotFound(format!(
            "Patient/{} introuvable",
            id.chars().take(64).collect::<String>()
        ))
    })
}

/// A Patient answer with its version as ETag.
fn patient_response(
    status: StatusCode,
    p: &domain::identity::PatientRecord,
    oid: &str,
) -> Response {
    with_version(fhir(status, &f::patient(p, oid)), p.version)
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
    Ok(state.store.territory(territory).await?.oid)
}

async fn read_patient(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let p = patients::read(&state, &api.actor, patient_id(&id)?).await?;
    let oid = domain_oid(&state, p.territory).await?;
    Ok(patient_response(StatusCode::OK, &p, &oid))
}

async fn search_patients(
    State(state): State<AppState>,
    api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let list = params(
        raw.clone(),
        &[
            "identifier",
            "family",
            "given",
            "birthdate",
            "_count",
            "_offset",
        ],
    )?;
    let count = number(&list, "_count", 50, 200)?;
    let offset = number(&list, "_offset", 0, i64::MAX)?;
    let mut q = PatientQuery {
        limit: count.max(1),
        offset,
        ..Default::default()
    };
    q.family = param(&list, "family").map(str::to_owned);
    q.given = param(&list, "given").map(str::to_owned);
    if let Some(d) = param(&list, "birthdate") {
        let d = d.strip_prefix("eq").unwrap_or(d);
        q.birth_date = Some(d.parse().map_err(|_| {
            AppError::BadRequest(
                "not-supported",
                "birthdate: date exacte AAAA-MM-JJ (préfixe eq seul) attendue".into(),
            )
        })?);
    }
    let mut only_territory = None;
    if let Some(ident) = param(&list, "identifier") {
        let (system, value) = ident
            .split_once('|')
            .filter(|(s, v)| !s.is_empty() && !v.is_empty())
            .ok_or_else(|| {
                AppError::BadRequest("invalid", "identifier: system|value attendu".into())
            })?;
        let oid = system.strip_prefix("urn:oid:").unwrap_or("");
        if domain::InsKind::from_oid(oid).is_some() {
            q.ins = Some(value.to_owned());
        } else {
            match state.store.territory_by_oid(oid).await? {
                Some(t) => {
                    only_territory = Some(t.id);
                    q.ipp = Some(value.to_owned());
                }
                None => {
                    return Err(AppError::BadRequest(
                        "not-supported",
                        format!("système d'identifiant inconnu: {system}"),
                    )
                    .into());
                }
            }
        }
    }
    let found = if only_territory.is_some()
        && !api
            .actor
            .grants
            .iter()
            .any(|g| Some(g.territory) == only_territory)
    {
        Vec::new()
    } else {
        patients::search(&state, &api.actor, &q, only_territory).await?
    };
    let resources: Vec<Value> = found.iter().map(|(p, oid)| f::patient(p, oid)).collect();
    let b = base(&state);
    let self_url = format!("{b}/Patient?{}", raw.clone().unwrap_or_default());
    let next = (found.len() as i64 >= q.limit).then(|| {
        let kept: Vec<(String, String)> = list
            .iter()
            .filter(|(k, _)| k != "_offset")
            .cloned()
            .collect();
        let mut qs = serde_urlencoded::to_string(&kept).unwrap_or_default();
        if !qs.is_empty() {
            qs.push('&');
        }
        format!("{b}/Patient?{qs}_offset={}", offset + q.limit)
    });
    Ok(fhir(
        StatusCode::OK,
        &f::searchset(&b, resources, &self_url, next.as_deref()),
    ))
}

fn creation_domain(api: &ApiActor) -> TerritoryId {
    api.client.territory
}

async fn create_patient(
    State(state): State<AppState>,
    api: ApiActor,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let bytes = body_bytes(body, &state, &headers)?;
    let oid = domain_oid(&state, creation_domain(&api)).await?;
    let input = parse_input(&state, &bytes, &oid)?;
    let p = patients::create(&state, &api.actor, input).await?;
    let mut resp = patient_response(StatusCode::CREATED, &p, &oid);
    if let Ok(v) = format!("{}/Patient/{}/_history/{}", base(&state), p.id, p.version).parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

fn if_match(headers: &HeaderMap) -> Result<Option<i64>, AppError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("");
    let inner = text.trim().trim_start_matches("W/").trim_matches('"');
    inner.parse().map(Some).map_err(|_| {
        AppError::BadRequest(
            "invalid",
            format!("If-Match {text:?}: W/\"version\" attendu"),
        )
    })
}

async fn update_patient(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let bytes = body_bytes(body, &state, &headers)?;
    let pid = patient_id(&id)?;
    let expected = if_match(&headers)?;
    let current = patients::read(&state, &api.actor, pid).await?;
    let oid = domain_oid(&state, current.territory).await?;
    let input = parse_input(&state, &bytes, &oid)?;
    if input.id.as_deref() != Some(id.as_str()) {
        return Err(AppError::BadRequest(
            "invalid",
            "l'id du corps doit être celui de l'URL".into(),
        )
        .into());
    }
    let p = patients::update(&state, &api.actor, pid, expected, input).await?;
    Ok(patient_response(StatusCode::OK, &p, &oid))
}

/// `POST /fhir/Patient/$merge` with a Parameters resource naming `source-patient`
/// (merged away) and `target-patient` (survivor), as references.
async fn merge_patients(
    State(state): State<AppState>,
    api: ApiActor,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let bytes = body_bytes(body, &state, &headers)?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| AppError::BadRequest("structure", format!("JSON invalide: {e}")))?;
    if v.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(AppError::BadRequest(
            "structure",
            "une ressource Parameters est attendue".into(),
        )
        .into());
    }
    let reference = |name: &str| -> Result<PatientId, AppError> {
        let r = v
            .get("parameter")
            .and_then(Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
            })
            .and_then(|p| p.get("valueReference"))
            .and_then(|r| r.get("reference"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                AppError::BadRequest(
                    "required",
                    format!("paramètre {name} (valueReference) manquant"),
                )
            })?;
        patient_id(r.strip_prefix("Patient/").unwrap_or(r))
    };
    let (source, target) = (reference("source-patient")?, reference("target-patient")?);
    let merged = patients::merge(&state, &api.actor, target, source).await?;
    let oid = domain_oid(&state, merged.territory).await?;
    Ok(fhir(StatusCode::OK, &f::patient(&merged, &oid)))
}

/// Checks an establishment-level action for the client's own establishment.
fn client_may(api: &ApiActor, action: EstablishmentAction, why: &str) -> Result<(), AppError> {
    let c = &api.client;
    if authorize_establishment(&api.actor, action, c.establishment, c.territory).allowed() {
        Ok(())
    } else {
        Err(AppError::Forbidden(why.to_owned()))
    }
}

fn directory_territories(api: &ApiActor) -> Result<TerritoryId, AppError> {
    client_may(
        api,
        EstablishmentAction::ReadDirectory,
        "annuaire non accessible",
    )?;
    Ok(api.client.territory)
}

/// A searchset Bundle response; `self_path` is relative to the FHIR base.
fn bundle(state: &AppState, resources: Vec<Value>, self_path: &str) -> Response {
    let b = base(state);
    fhir(
        StatusCode::OK,
        &f::searchset(&b, resources, &format!("{b}/{self_path}"), None),
    )
}

fn practitioner_view(u: &store::users::User) -> f::PractitionerView {
    f::PractitionerView {
        id: u.id.to_string(),
        display_name: u.display_name.clone(),
        rpps: u.rpps.clone(),
        active: u.active,
    }
}

async fn search_practitioners(
    State(state): State<AppState>,
    api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    params(raw.clone(), &[])?;
    let t = directory_territories(&api)?;
    let list: Vec<Value> = state
        .store
        .professionals(t)
        .await?
        .iter()
        .map(|(u, _)| f::practitioner(&practitioner_view(u)))
        .collect();
    Ok(bundle(&state, list, "Practitioner"))
}

async fn read_practitioner(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let t = directory_territories(&api)?;
    let not_found = || AppError::NotFound("Practitioner introuvable".into());
    let uid: UserId = id.parse().map_err(|_| not_found())?;
    let user = state.store.user(uid).await.map_err(|_| not_found())?;
    let in_territory = state
        .store
        .grants(uid)
        .await?
        .iter()
        .any(|g| g.territory == t);
    if user.kind != store::users::UserKind::Professional || !in_territory {
        return Err(not_found().into());
    }
    Ok(fhir(
        StatusCode::OK,
        &f::practitioner(&practitioner_view(&user)),
    ))
}

async fn organizations(state: &AppState, t: TerritoryId) -> Result<Vec<Value>, AppError> {
    let territory = state.store.territory(t).await?;
    let mut out = vec![f::organization(&f::OrganizationView {
        id: territory.id.to_string(),
        name: territory.name,
        finess: None,
        part_of: None,
        kind: "territory".into(),
    })];
    for e in state.store.establishments(t).await? {
        out.push(f::organization(&f::OrganizationView {
            id: e.id.to_string(),
            name: e.name,
            finess: Some(e.finess),
            part_of: Some(t.to_string()),
            kind: e.kind,
        }));
    }
    Ok(out)
}

async fn search_organizations(
    State(state): State<AppState>,
    api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    params(raw, &[])?;
    let t = directory_territories(&api)?;
    Ok(bundle(
        &state,
        organizations(&state, t).await?,
        "Organization",
    ))
}

async fn read_organization(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let t = directory_territories(&api)?;
    organizations(&state, t)
        .await?
        .into_iter()
        .find(|o| o.get("id").and_then(Value::as_str) == Some(id.as_str()))
        .map(|o| fhir(StatusCode::OK, &o))
        .ok_or_else(|| AppError::NotFound("Organization introuvable".into()).into())
}

fn audit_establishment(api: &ApiActor) -> Result<String, AppError> {
    client_may(
        api,
        EstablishmentAction::ReadAudit,
        "journal d'audit réservé aux administrateurs de l'établissement",
    )?;
    Ok(api.client.establishment.to_string())
}

async fn search_audit(
    State(state): State<AppState>,
    api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let list = params(raw.clone(), &["patient", "_count"])?;
    let establishment = audit_establishment(&api)?;
    let patient =
        param(&list, "patient").map(|p| p.strip_prefix("Patient/").unwrap_or(p).to_owned());
    let limit = number(&list, "_count", 100, 500)?;
    let entries = state
        .store
        .list_audit(&AuditFilter {
            establishment: Some(establishment),
            patient,
            before_seq: None,
            limit: limit.max(1),
        })
        .await?;
    let list: Vec<Value> = entries.iter().map(f::audit_event).collect();
    Ok(bundle(
        &state,
        list,
        &format!("AuditEvent?{}", raw.unwrap_or_default()),
    ))
}

async fn read_audit(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let establishment = audit_establishment(&api)?;
    let not_found = || AppError::NotFound("AuditEvent introuvable".into());
    let seq: i64 = id.parse().map_err(|_| not_found())?;
    let e = state.store.get_audit(seq).await.map_err(|_| not_found())?;
    if e.establishment.as_deref() != Some(establishment.as_str()) {
        return Err(not_found().into());
    }
    Ok(fhir(StatusCode::OK, &f::audit_event(&e)))
}

async fn encounter_view(
    state: &AppState,
    e: &store::encounters::EncounterRecord,
) -> Result<f::EncounterView, AppError> {
    let est = state.store.establishment(e.establishment).await?;
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
    })
}

async fn search_encounters(
    State(state): State<AppState>,
    api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let list = params(raw.clone(), &["patient"])?;
    let pid = patient_param(&list)?;
    let mut out = Vec::new();
    for e in patients::encounters(&state, &api.actor, pid).await? {
        out.push(f::encounter(&encounter_view(&state, &e).await?));
    }
    // Closed teleconsultations at the client's establishments (class VR).
    for c in consultations_of(&state, &api, pid).await? {
        let name = state.store.user(c.practitioner).await?.display_name;
        let start = state.store.appointment(&c.appointment_id).await?.start_ms;
        out.push(interop::fhir::consultation::encounter(&consultation_view(
            &c, &name, start,
        )));
    }
    Ok(bundle(
        &state,
        out,
        &format!("Encounter?{}", raw.unwrap_or_default()),
    ))
}

async fn read_encounter(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    // A closed teleconsultation is an Encounter under its appointment's id.
    if let Ok(c) = state.store.consultation(&id).await {
        let c = consultations_of(&state, &api, c.patient)
            .await?
            .into_iter()
            .find(|x| x.appointment_id == id)
            .ok_or_else(|| AppError::NotFound("séjour introuvable".into()))?;
        let name = state.store.user(c.practitioner).await?.display_name;
        let start = state.store.appointment(&c.appointment_id).await?.start_ms;
        return Ok(fhir(
            StatusCode::OK,
            &interop::fhir::consultation::encounter(&consultation_view(&c, &name, start)),
        ));
    }
    let eid: domain::EncounterId = id
        .parse()
        .map_err(|_| AppError::NotFound("séjour introuvable".into()))?;
    let e = patients::encounter(&state, &api.actor, eid).await?;
    Ok(fhir(
        StatusCode::OK,
        &f::encounter(&encounter_view(&state, &e).await?),
    ))
}

fn bed_view(b: &store::beds::UnitBeds) -> f::BedLocationView {
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

async fn search_locations(
    State(state): State<AppState>,
    api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    params(raw.clone(), &[])?;
    let t = directory_territories(&api)?;
    let list = state
        .store
        .beds(t, None)
        .await?
        .iter()
        .map(|b| f::bed_location(&bed_view(b)))
        .collect();
    Ok(bundle(&state, list, "Location"))
}

async fn read_location(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let t = directory_territories(&api)?;
    let not_found = || AppError::NotFound("Location introuvable".into());
    let uid: domain::UnitId = id.parse().map_err(|_| not_found())?;
    let b = state.store.unit_beds(uid).await.map_err(|_| not_found())?;
    let in_territory = state.store.establishment(b.establishment).await?.territory == t;
    if !in_territory {
        return Err(not_found().into());
    }
    Ok(fhir(StatusCode::OK, &f::bed_location(&bed_view(&b))))
}

async fn search_services(
    State(state): State<AppState>,
    api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let list = params(raw.clone(), &["_include"])?;
    let include = match param(&list, "_include") {
        None => false,
        Some("HealthcareService:location") => true,
        Some(other) => {
            return Err(AppError::BadRequest(
                "not-supported",
                format!("_include {other:?}: seul HealthcareService:location est pris en charge"),
            )
            .into());
        }
    };
    let t = directory_territories(&api)?;
    let beds = state.store.beds(t, None).await?;
    let b = base(&state);
    let mut out = f::searchset(
        &b,
        beds.iter().map(|x| f::bed_service(&bed_view(x))).collect(),
        &format!("{b}/HealthcareService?{}", raw.unwrap_or_default()),
        None,
    );
    if include && let Some(entries) = out.get_mut("entry").and_then(Value::as_array_mut) {
        for x in &beds {
            let loc = f::bed_location(&bed_view(x));
            entries.push(serde_json::json!({"fullUrl": format!("{b}/Location/{}", x.unit), "resource": loc, "search": {"mode": "include"}}));
        }
    }
    Ok(fhir(StatusCode::OK, &out))
}

/// Loads an orientation the client may see (requesting or asked establishment),
/// audits the read and returns its FHIR view.
async fn orientation_view(
    state: &AppState,
    api: &ApiActor,
    id: &str,
) -> Result<f::OrientationView, AppError> {
    let not_found = || AppError::NotFound("demande d'orientation introuvable".into());
    let o = state.store.orientation(id).await.map_err(|_| not_found())?;
    let to: Vec<domain::EstablishmentId> = o.recipients.iter().map(|r| r.establishment).collect();
    let domain::policy::Decision::Allow(grant) = domain::policy::authorize_orientation(
        &api.actor,
        domain::policy::OrientationAction::View,
        o.from,
        &to,
    ) else {
        return Err(not_found());
    };
    let row = store::audit::NewAudit {
        at_ms: state.now_ms(),
        actor: domain::audit::AuditActor::new(&api.actor, grant),
        patient: Some(o.patient.to_string()),
        action: "read-clinical".into(),
        resource: format!("ServiceRequest/{}", o.id),
        outcome: "success".into(),
    };
    state.store.audit(&row).await?;
    Ok(f::OrientationView {
        id: o.id.clone(),
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

async fn read_service_request(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let o = orientation_view(&state, &api, &id).await?;
    Ok(fhir(StatusCode::OK, &f::service_request(&o)))
}

async fn search_tasks(
    State(state): State<AppState>,
    api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let list = params(raw.clone(), &["focus", "patient"])?;
    let self_link = format!("Task?{}", raw.unwrap_or_default());
    if param(&list, "patient").is_some() {
        // The triage tasks of the patient's monitoring alerts.
        let (_, resources) = monitoring_search(&state, &api, &list, "Task").await?;
        return Ok(bundle(&state, resources, &self_link));
    }
    let focus = param(&list, "focus")
        .and_then(|f| f.strip_prefix("ServiceRequest/"))
        .ok_or_else(|| {
            AppError::BadRequest(
                "required",
                "paramètre focus=ServiceRequest/id ou patient=Patient/id obligatoire".into(),
            )
        })?;
    let o = orientation_view(&state, &api, focus).await?;
    Ok(bundle(&state, f::orientation_tasks(&o), &self_link))
}

/// Monitoring resources of one patient (`patient` parameter), read under the
/// clinical-read policy and audited: Task (triage), Flag (alerts), CarePlan
/// (enrolments), Observation (answers), QuestionnaireResponse.
async fn monitoring_search(
    state: &AppState,
    api: &ApiActor,
    list: &[(String, String)],
    kind: &str,
) -> Result<(PatientId, Vec<Value>), AppError> {
    use crate::services::monitoring::item_label;
    use interop::fhir::monitoring as m;
    let pid = patient_param(list)?;
    patients::clinical_read(state, &api.actor, pid, &format!("{kind}?patient={pid}")).await?;
    // Read only what the kind asked for needs.
    let alerts = || async { state.store.alerts_of(pid).await };
    let enrolments = || async { state.store.enrolments_of(pid).await };
    let out = match kind {
        "Task" => alerts()
            .await?
            .iter()
            .map(|a| m::triage_task(a, &item_label(&a.item)))
            .collect(),
        "Flag" => alerts()
            .await?
            .iter()
            .map(|a| m::flag(a, &item_label(&a.item)))
            .collect(),
        "Communication" => {
            let enrolments = enrolments().await?;
            state
                .store
                .messages_of(pid)
                .await?
                .iter()
                .map(|m| {
                    let est = enrolments
                        .iter()
                        .find(|e| e.id == m.enrolment)
                        .map(|e| e.establishment.to_string())
                        .unwrap_or_default();
                    m::communication(m, est)
                })
                .collect()
        }
        "CarePlan" => enrolments()
            .await?
            .iter()
            .map(|e| m::care_plan(e, crate::services::monitoring::programme(&e.programme)))
            .collect(),
        _ => {
            let observations = kind == "Observation";
            let mut out = Vec::new();
            for r in state.store.responses_of(pid).await? {
                let items: Value = serde_json::from_str(&r.answers).unwrap_or(Value::Array(vec![]));
                let view = m::ResponseView {
                    id: &r.id,
                    patient: pid.to_string(),
                    authored_ms: r.submitted_at_ms,
                    items: &items,
                };
                if !observations {
                    out.push(m::questionnaire_response(&view, &r.programme));
                } else if let Some(p) = crate::services::monitoring::programme(&r.programme) {
                    out.extend(m::observations(&view, p));
                }
            }
            out
        }
    };
    Ok((pid, out))
}

/// `GET /fhir/{kind}?patient=…` for the monitoring resources searched by patient.
async fn search_monitoring(
    state: State<AppState>,
    api: ApiActor,
    raw: RawQuery,
    kind: &str,
) -> ApiResult {
    let (State(state), RawQuery(raw)) = (state, raw);
    let list = params(raw.clone(), &["patient"])?;
    let (_, out) = monitoring_search(&state, &api, &list, kind).await?;
    Ok(bundle(
        &state,
        out,
        &format!("{kind}?{}", raw.unwrap_or_default()),
    ))
}

async fn search_questionnaires(
    State(state): State<AppState>,
    _api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    params(raw, &[])?;
    let list = crate::services::monitoring::programmes()
        .iter()
        .map(|p| p.questionnaire.clone())
        .collect();
    Ok(bundle(&state, list, "Questionnaire"))
}

async fn read_questionnaire(
    State(_state): State<AppState>,
    _api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    crate::services::monitoring::programme(&id)
        .map(|p| fhir(StatusCode::OK, &p.questionnaire))
        .ok_or_else(|| AppError::NotFound("Questionnaire introuvable".into()).into())
}

/// `POST /fhir/QuestionnaireResponse`: a client (a patient app, a device gateway)
/// submits answers for a patient enrolled in the programme. Graded by the same
/// rules as the patient's form, alerts raised and pushed to the open queues;
/// 201 with the stored response, 422 if the patient is not followed in it.
async fn post_response(
    State(state): State<AppState>,
    api: ApiActor,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let bytes = body_bytes(body, &state, &headers)?;
    let posted = interop::fhir::monitoring::parse_response(&bytes)
        .map_err(|m| AppError::BadRequest("structure", m))?;
    let pid = patient_id(&posted.patient)?;
    // The patient must be readable by this client before anything else is said.
    patients::read(&state, &api.actor, pid).await?;
    let enrolment = state
        .store
        .enrolments_of(pid)
        .await?
        .into_iter()
        .find(|e| e.programme == posted.programme && e.status == "active")
        .ok_or_else(|| {
            AppError::Unprocessable(
                "business-rule",
                format!(
                    "ce patient n'est pas suivi dans le programme {}",
                    posted.programme
                ),
            )
        })?;
    let done = crate::services::monitoring::submit(&state, &api.actor, &enrolment, &posted.answers)
        .await?;
    let stored = state.store.response(&done.response).await?;
    let items: Value = serde_json::from_str(&stored.answers).unwrap_or(Value::Array(vec![]));
    let view = interop::fhir::monitoring::ResponseView {
        id: &stored.id,
        patient: pid.to_string(),
        authored_ms: stored.submitted_at_ms,
        items: &items,
    };
    let mut resp = fhir(
        StatusCode::CREATED,
        &interop::fhir::monitoring::questionnaire_response(&view, &stored.programme),
    );
    if let Ok(v) = format!("{}/QuestionnaireResponse/{}", base(&state), stored.id).parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// Establishments where the client holds a grant (agendas it may see).
fn grant_establishments(api: &ApiActor) -> Vec<domain::EstablishmentId> {
    let mut v: Vec<domain::EstablishmentId> =
        api.actor.grants.iter().map(|g| g.establishment).collect();
    v.sort_by_key(ToString::to_string);
    v.dedup();
    v
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

/// `GET /fhir/Appointment?patient=…` or `?practitioner=…`: appointments at the
/// client's establishments; each patient shown is an audited identity read.
async fn search_appointments(
    State(state): State<AppState>,
    api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let list = params(raw.clone(), &["patient", "practitioner"])?;
    let mine = grant_establishments(&api);
    let appointments = if let Some(p) = reference_id(&list, "patient", "Patient")? {
        let pid = patient_id(p)?;
        patients::read(&state, &api.actor, pid).await?;
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
                patients::read(&state, &api.actor, a.patient).await?;
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
async fn search_schedules(
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
async fn search_slots(
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
        for s in crate::services::schedule::free_slots(&state, uid, e, 14).await? {
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
async fn consultations_of(
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
            crate::services::consultations::view(state, &api.actor, &c.appointment_id).await?
        {
            // The release rule (withheld only from patients) holds here too.
            if crate::services::consultations::withheld(&api.actor, &c).is_none() {
                out.push(c);
            }
        }
    }
    Ok(out)
}

fn consultation_view<'a>(
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
async fn search_medication_requests(
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

/// `GET /fhir/DocumentReference?patient=…`: the prescription PDFs, each
/// pointing at its download address (which applies the same rules).
async fn search_document_references(
    State(state): State<AppState>,
    api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let list = params(raw.clone(), &["patient", "patient.identifier", "status"])?;
    let pid = match param(&list, "patient.identifier") {
        Some(ident) => patient_by_identifier(&state, &api, ident).await?,
        None => Some(patient_param(&list)?),
    };
    let query = format!("DocumentReference?{}", raw.clone().unwrap_or_default());
    // Nobody carries that identifier here: the same empty Bundle as for a
    // patient with nothing for this client (existence is not told).
    let Some(pid) = pid else {
        return Ok(bundle(&state, Vec::new(), &query));
    };
    let mut out = Vec::new();
    // Clinical documents (drafts only to their establishment's staff, never
    // through the API: validated ones).
    let fhir_base = base(&state);
    for d in client_documents(&state, &api, pid, "DocumentReference").await? {
        let content = state.store.document_content(&d.id).await?;
        out.push(document_reference_json(&d, content.as_ref(), &fhir_base));
    }
    let base = state.config.public_url();
    for c in consultations_of(&state, &api, pid).await? {
        let name = state.store.user(c.practitioner).await?.display_name;
        let url = format!("{base}/rdv/{}/ordonnance.pdf", c.appointment_id);
        let pdf = crate::services::consultations::render_pdf(&state, &c).await?;
        out.push(interop::fhir::consultation::document_reference(
            &consultation_view(&c, &name, c.closed_at_ms),
            &url,
            &pdf,
        ));
    }
    Ok(bundle(&state, out, &query))
}

fn document_reference_json(
    d: &store::documents::Document,
    content: Option<&(String, Vec<u8>)>,
    fhir_base: &str,
) -> Value {
    interop::fhir::mhd::stored_reference(&stored_view(d, content, fhir_base))
}

fn stored_view<'a>(
    d: &'a store::documents::Document,
    content: Option<&'a (String, Vec<u8>)>,
    fhir_base: &'a str,
) -> interop::fhir::mhd::StoredView<'a> {
    interop::fhir::mhd::StoredView {
        id: &d.id,
        unique_id: &d.unique_id,
        patient: d.patient.to_string(),
        establishment: d.establishment.to_string(),
        type_code: d.kind.loinc(),
        class_code: d.kind.class(),
        title: &d.title,
        date_ms: d.validated_at_ms.unwrap_or(d.created_at_ms),
        final_: d.status == domain::documents::Status::Validated,
        superseded: d.superseded_by.is_some(),
        content: content.map(|(t, c)| (t.as_str(), c.as_slice())),
        base: fhir_base,
    }
}

/// The patient's validated documents at the client's establishments; reading
/// them is reading the record (allowed and audited as `resource`, or refused),
/// nothing to read is nothing audited.
async fn client_documents(
    state: &AppState,
    api: &ApiActor,
    pid: PatientId,
    resource: &str,
) -> Result<Vec<store::documents::Document>, AppError> {
    let mine = grant_establishments(api);
    let docs: Vec<_> = state
        .store
        .documents_of_patient(pid)
        .await?
        .into_iter()
        .filter(|d| {
            d.status == domain::documents::Status::Validated && mine.contains(&d.establishment)
        })
        .collect();
    if !docs.is_empty() {
        patients::clinical_read(state, &api.actor, pid, resource).await?;
    }
    Ok(docs)
}

/// `patient.identifier=urn:oid:…|INS` (ITI-67): the identity in the client's
/// domain that carries it, found through the patient search service (the
/// policy, then the audit); `None` when there is none.
async fn patient_by_identifier(
    state: &AppState,
    api: &ApiActor,
    ident: &str,
) -> Result<Option<PatientId>, AppError> {
    let (system, value) = ident.split_once('|').ok_or_else(|| {
        AppError::BadRequest(
            "invalid",
            "patient.identifier : système|valeur attendu".into(),
        )
    })?;
    let oid = system.strip_prefix("urn:oid:").unwrap_or(system);
    let Some(g) = api.actor.grants.first() else {
        return Err(AppError::Forbidden("client sans établissement".into()));
    };
    let ins = (oid == domain::ins::OID_INS_NIR || oid == domain::ins::OID_INS_NIA)
        .then(|| value.to_owned());
    let ipp = (ins.is_none()).then(|| value.to_owned());
    let q = store::patients::PatientQuery {
        ins,
        ipp,
        family: None,
        given: None,
        birth_date: None,
        limit: 2,
        offset: 0,
    };
    let found = patients::search(state, &api.actor, &q, Some(g.territory)).await?;
    Ok(found
        .into_iter()
        .find(|(p, _)| p.active())
        .map(|(p, _)| p.id))
}

/// `POST /fhir` with a transaction Bundle: the ITI-65 Provide Document Bundle
/// of an MHD Document Source. Answers a transaction-response.
async fn transaction(
    State(state): State<AppState>,
    api: ApiActor,
    body: axum::body::Bytes,
) -> ApiResult {
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest("structure", format!("JSON illisible : {e}")))?;
    let ids =
        crate::services::documents::receive(&state, &api.actor, &api.client.client_id, &v).await?;
    let entries: Vec<Value> = ids
        .iter()
        .map(|id| {
            serde_json::json!({"response": {"status": "201 Created", "location": format!("DocumentReference/{id}")}})
        })
        .collect();
    Ok(fhir(
        StatusCode::OK,
        &serde_json::json!({"resourceType": "Bundle", "type": "transaction-response", "entry": entries}),
    ))
}

/// `GET /fhir/DocumentReference/{id}`.
async fn read_document_reference(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    visible_document(&state, &api, &id).await?;
    let (d, t, c) = crate::services::documents::content(&state, &api.actor, &id).await?;
    Ok(fhir(
        StatusCode::OK,
        &document_reference_json(&d, Some(&(t, c)), &base(&state)),
    ))
}

/// `GET /fhir/Binary/{id}` (ITI-68): the document as stored (the CDA).
async fn read_binary(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    visible_document(&state, &api, &id).await?;
    let (_, t, c) = crate::services::documents::content(&state, &api.actor, &id).await?;
    Ok(([(header::CONTENT_TYPE, t)], c).into_response())
}

/// A document of one of the client's establishments (else 404: another
/// establishment's documents are not even said to exist).
async fn visible_document(state: &AppState, api: &ApiActor, id: &str) -> Result<(), AppError> {
    let not_found = || AppError::NotFound("document introuvable".into());
    let d = state.store.document(id).await.map_err(|_| not_found())?;
    if grant_establishments(api).contains(&d.establishment) {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// `GET /fhir/List?patient=…` (ITI-66): the submission sets of the patient's
/// validated documents at the client's establishments.
async fn search_submission_sets(
    State(state): State<AppState>,
    api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let list = params(raw.clone(), &["patient", "code"])?;
    let pid = patient_param(&list)?;
    let fhir_base = base(&state);
    let out = client_documents(&state, &api, pid, "List")
        .await?
        .iter()
        .map(|d| interop::fhir::mhd::submission_set(&stored_view(d, None, &fhir_base)))
        .collect();
    Ok(bundle(
        &state,
        out,
        &format!("List?{}", raw.unwrap_or_default()),
    ))
}
