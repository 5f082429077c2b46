//! Remote monitoring: Observation, Flag, Communication, CarePlan,
//! Questionnaire and QuestionnaireResponse (search, and posted by devices).

use super::*;
use crate::services::monitoring::{self, Part};

/// Monitoring resources of one patient (`patient` parameter), read under the
/// clinical-read policy and audited: Task (triage), Flag (alerts), CarePlan
/// (enrolments), Observation (answers), QuestionnaireResponse.
pub(crate) async fn monitoring_search(
    state: &AppState,
    actor: &Actor,
    list: &[(String, String)],
    kind: &str,
) -> Result<(PatientId, Vec<Value>), AppError> {
    use interop::fhir::monitoring as m;
    use monitoring::item_label;
    let pid = patient_param(list)?;
    // Read only what the kind asked for needs.
    let part = match kind {
        "Task" | "Flag" => Part::Alerts,
        "Communication" => Part::Messages,
        "CarePlan" => Part::Enrolments,
        _ => Part::Responses,
    };
    let resource = format!("{kind}?patient={pid}");
    let r = monitoring::record_of(state.ctx(), actor, pid, part, &resource).await?;
    let out = match kind {
        "Task" => r
            .alerts
            .iter()
            .map(|a| m::triage_task(a, &item_label(&a.item)))
            .collect(),
        "Flag" => r
            .alerts
            .iter()
            .map(|a| m::flag(a, &item_label(&a.item)))
            .collect(),
        "Communication" => r
            .messages
            .iter()
            .map(|m| {
                let est = r
                    .enrolments
                    .iter()
                    .find(|e| e.id == m.enrolment)
                    .map(|e| e.establishment.to_string())
                    .unwrap_or_default();
                m::communication(m, est)
            })
            .collect(),
        "CarePlan" => r
            .enrolments
            .iter()
            .map(|e| m::care_plan(e, monitoring::programme(&e.programme)))
            .collect(),
        _ => {
            let observations = kind == "Observation";
            let mut out = Vec::new();
            for r in &r.responses {
                let items = answers_of(r);
                let view = response_view(r, &items, pid);
                if !observations {
                    // A device's measure is an Observation, not a questionnaire answered.
                    if r.source.is_none() {
                        out.push(m::questionnaire_response(&view, &r.programme));
                    }
                } else if let Some(p) = monitoring::programme(&r.programme) {
                    out.extend(m::observations(&view, p));
                }
            }
            out
        }
    };
    Ok((pid, out))
}

/// `GET /fhir/{kind}?patient=…` for the monitoring resources searched by patient.
pub(super) async fn search_monitoring(
    state: State<AppState>,
    api: ApiActor,
    q: SearchQuery,
    kind: &'static str,
) -> ApiResult {
    let State(state) = state;
    let s = q.accept(kind, &["patient"])?;
    let (_, out) = monitoring_search(&state, &api.actor, &s.list, kind).await?;
    s.respond(&state, &api, out).await
}

pub(super) async fn search_questionnaires(
    State(state): State<AppState>,
    api: ApiActor,
    q: SearchQuery,
) -> ApiResult {
    let s = q.accept("Questionnaire", &[])?;
    let list = crate::services::monitoring::programmes()
        .iter()
        .map(|p| p.questionnaire.clone())
        .collect();
    s.respond(&state, &api, list).await
}

pub(super) async fn read_questionnaire(
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
pub(super) async fn post_response(
    State(state): State<AppState>,
    api: ApiActor,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let bytes = body_bytes(body, &state, &headers)?;
    let posted = interop::fhir::monitoring::parse_response(&bytes)
        .map_err(|m| AppError::BadRequest("structure", m))?;
    let pid = patient_id(&posted.patient)?;
    let stored = monitoring::submit_for(
        state.ctx(),
        &api.actor,
        pid,
        &posted.programme,
        &posted.answers,
    )
    .await?;
    let items = answers_of(&stored);
    let view = response_view(&stored, &items, pid);
    Ok(created(
        &state,
        &interop::fhir::monitoring::questionnaire_response(&view, &stored.programme),
        &format!("QuestionnaireResponse/{}", stored.id),
    ))
}

/// A stored response's answers (QuestionnaireResponse items).
fn answers_of(r: &store::monitoring::StoredResponse) -> Value {
    serde_json::from_str(&r.answers).unwrap_or(Value::Array(vec![]))
}

/// What the FHIR mapping shows of a stored response of `patient`, its
/// answers read into `items`.
fn response_view<'a>(
    r: &'a store::monitoring::StoredResponse,
    items: &'a Value,
    patient: PatientId,
) -> interop::fhir::monitoring::ResponseView<'a> {
    interop::fhir::monitoring::ResponseView {
        id: &r.id,
        patient: patient.to_string(),
        authored_ms: r.submitted_at_ms,
        items,
        source: r.source.as_deref(),
        filed_ms: r.filed_at_ms,
    }
}

/// A posted measure's patient, and its source: the device or laboratory it
/// names, else the client.
pub(super) fn measure_of(
    posted: &interop::fhir::observation::PostedObservation,
    api: &ApiActor,
) -> Result<(PatientId, String), AppError> {
    let pid = patient_id(&posted.patient)?;
    let source = posted
        .source
        .clone()
        .unwrap_or_else(|| api.client.name.clone());
    Ok((pid, source))
}

/// The Observation of a stored measure of `patient` (its one answer).
pub(super) fn measure_observation(
    stored: &store::monitoring::StoredResponse,
    patient: PatientId,
) -> Result<Value, AppError> {
    let items = answers_of(stored);
    let view = response_view(stored, &items, patient);
    let p = monitoring::programme(&stored.programme)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("programme disparu")))?;
    interop::fhir::monitoring::observations(&view, p)
        .into_iter()
        .next()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("mesure sans observation")))
}

/// `POST /fhir/Observation`: a device gateway or a laboratory sends a measure
/// (LOINC, UCUM) for a followed patient; filed on the timeline of the
/// follow-up that observes it and graded by its programme's rules. 201 with
/// the stored Observation (alerts raised show on the Flag and Task searches).
pub(super) async fn post_observation(
    State(state): State<AppState>,
    api: ApiActor,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let bytes = body_bytes(body, &state, &headers)?;
    let posted = interop::fhir::observation::parse_observation(&bytes).map_err(input_error)?;
    let (pid, source) = measure_of(&posted, &api)?;
    let (stored, _) = monitoring::file_measure(
        state.ctx(),
        &api.actor,
        &monitoring::Measure {
            patient: pid,
            loinc: &posted.loinc,
            value: posted.value,
            unit: posted.unit.as_deref(),
            at_ms: posted.effective_ms,
            source: &source,
        },
    )
    .await?;
    let observation = measure_observation(&stored, pid)?;
    Ok(created(
        &state,
        &observation,
        &format!("Observation/{}-0", stored.id),
    ))
}

/// `GET /fhir/{kind}/{id}` for the monitoring resources: whose it is is found
/// from the id (the alert of a Flag or Task, the enrolment of a CarePlan, the
/// response of a QuestionnaireResponse or of an Observation `{response}-{n}`),
/// then the resource is read as that patient's search reads it (the policy,
/// the audit); another's, or none, is not found.
pub(super) async fn read_monitoring(
    state: State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
    kind: &'static str,
) -> ApiResult {
    let State(state) = state;
    let one = monitoring_by_id(&state, &api.actor, &id, kind).await?;
    Ok(fhir(StatusCode::OK, &one))
}

/// One monitoring resource `actor` may read, by id.
pub(super) async fn monitoring_by_id(
    state: &AppState,
    actor: &Actor,
    id: &str,
    kind: &str,
) -> Result<Value, AppError> {
    let not_found = || AppError::NotFound(format!("{kind} introuvable"));
    let store = &state.store;
    let pid = match kind {
        "Flag" | "Task" => {
            let aid: domain::AlertId = id.parse().map_err(|_| not_found())?;
            store.alert(aid).await.map_err(|_| not_found())?.patient
        }
        "CarePlan" => {
            let eid: domain::EnrolmentId = id.parse().map_err(|_| not_found())?;
            store.enrolment(eid).await.map_err(|_| not_found())?.patient
        }
        "Communication" => store.message_patient(id).await.map_err(|_| not_found())?,
        _ => {
            // A QuestionnaireResponse's id, or an Observation's `{response}-{n}`.
            let response = match kind {
                "Observation" => id.rsplit_once('-').map(|(r, _)| r).unwrap_or(""),
                _ => id,
            };
            let r = store.response(response).await.map_err(|_| not_found())?;
            store
                .enrolment(r.enrolment)
                .await
                .map_err(|_| not_found())?
                .patient
        }
    };
    let list = vec![("patient".to_owned(), pid.to_string())];
    let (_, found) = monitoring_search(state, actor, &list, kind).await?;
    found
        .into_iter()
        .find(|r| r.get("id").and_then(Value::as_str) == Some(id))
        .ok_or_else(not_found)
}
