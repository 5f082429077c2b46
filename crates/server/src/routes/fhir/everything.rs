//! `Patient/$everything`: what the platform holds on one patient, as the caller
//! may read it — the Patient (with its demographics), stays and closed
//! teleconsultations, appointments, validated documents and prescriptions, and
//! the remote monitoring (enrolments, answers, measures, alerts, triage,
//! messages). Each part is read through the same service as its own search
//! (the policy, then the audit); a part the caller may not read is left out
//! and named in the Bundle's OperationOutcome. The patient's own export from
//! the portal (`routes::documents`, "Mes données") is built here too.

use super::*;

/// The parts of a patient's record, in the order the Bundle lists them.
const PARTS: [&str; 10] = [
    "Encounter",
    "Appointment",
    "DocumentReference",
    "MedicationRequest",
    "CarePlan",
    "QuestionnaireResponse",
    "Observation",
    "Flag",
    "Task",
    "Communication",
];

/// Everything `actor` may read of `pid`: the Patient first, then each part;
/// the parts refused are named in the second list.
pub(crate) async fn everything(
    state: &AppState,
    actor: &Actor,
    pid: PatientId,
) -> Result<(Vec<Value>, Vec<&'static str>), AppError> {
    let p = patients::read(state.ctx(), actor, pid).await?;
    let oid = domain_oid(state, p.territory).await?;
    let mut out = vec![patient_resource(state, &p, &oid).await?];
    let mut left_out = Vec::new();
    let list = vec![("patient".to_owned(), pid.to_string())];
    for kind in PARTS {
        let part = match kind {
            "Encounter" => care::encounters_json(state, actor, pid).await,
            "Appointment" => schedule::appointments_json(state, actor, pid).await,
            "DocumentReference" => documents::document_references_json(state, actor, pid).await,
            "MedicationRequest" => schedule::medication_requests_json(state, actor, pid).await,
            _ => monitoring_search(state, actor, &list, kind)
                .await
                .map(|(_, v)| v),
        };
        match part {
            Ok(v) => out.extend(v),
            Err(AppError::Forbidden(_) | AppError::NotFound(_)) => left_out.push(kind),
            Err(e) => return Err(e),
        }
    }
    Ok((out, left_out))
}

/// `GET /fhir/Patient/{id}/$everything`.
pub(super) async fn patient_everything(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let pid = patient_id(&id)?;
    let (resources, left_out) = everything(&state, &api.actor, pid).await?;
    let b = base(&state);
    let total = resources.len();
    let mut entries: Vec<Value> = resources
        .into_iter()
        .map(|r| search::entry(&b, r, "match"))
        .collect();
    if !left_out.is_empty() {
        entries.push(serde_json::json!({
            "resource": f::operation_outcome(
                "warning",
                "suppressed",
                &format!("hors de vos droits, non inclus : {}", left_out.join(", ")),
            ),
            "search": {"mode": "outcome"},
        }));
    }
    let links = vec![
        serde_json::json!({"relation": "self", "url": format!("{b}/Patient/{pid}/$everything")}),
    ];
    Ok(fhir(
        StatusCode::OK,
        &search::searchset(links, entries, Some(total)),
    ))
}
