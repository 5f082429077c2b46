//! `POST /fhir` with a `transaction` Bundle that is not an MHD submission:
//! Patient create (conditional with `ifNoneExist`) and update (`ifMatch`),
//! Observation create, all or nothing (`services::bundle`). An entry of
//! another kind refuses the whole Bundle before anything is written (a batch
//! takes any request, each on its own).

use super::*;
use crate::services::bundle::{self, Done, Step};

/// Entries per transaction, at most.
const MAX_ENTRIES: usize = 100;

fn at(i: usize, e: AppError) -> AppError {
    let say = |m: String| format!("entrée {} : {m}", i + 1);
    match e {
        AppError::Forbidden(m) => AppError::Forbidden(say(m)),
        AppError::NotFound(m) => AppError::NotFound(say(m)),
        AppError::BadRequest(c, m) => AppError::BadRequest(c, say(m)),
        AppError::Unprocessable(c, m) => AppError::Unprocessable(c, say(m)),
        AppError::Conflict(m) => AppError::Conflict(say(m)),
        AppError::PreconditionFailed(m) => AppError::PreconditionFailed(say(m)),
        other => other,
    }
}

/// One entry read into what it asks (its resource parsed, its condition
/// looked up).
async fn step(state: &AppState, api: &ApiActor, e: &Value) -> Result<Step, AppError> {
    let request = e.get("request").ok_or_else(|| {
        AppError::BadRequest("required", "entry.request (method, url) manquant".into())
    })?;
    let method = request.get("method").and_then(Value::as_str).unwrap_or("");
    let url = request.get("url").and_then(Value::as_str).unwrap_or("");
    let path = url.trim_start_matches('/');
    let resource = e
        .get("resource")
        .ok_or_else(|| AppError::BadRequest("required", "entry.resource manquante".into()))?;
    let bytes = resource.to_string();
    match (
        method,
        path.split_once('/')
            .map_or((path, None), |(t, id)| (t, Some(id))),
    ) {
        ("POST", ("Patient", None)) => {
            let condition = request.get("ifNoneExist").and_then(Value::as_str);
            Ok(
                match create_input(state, api, bytes.as_bytes(), condition).await? {
                    CreateInput::Found(p, _) => Step::Existing(Box::new(p)),
                    CreateInput::New(input, _) => Step::CreatePatient(Box::new(input)),
                },
            )
        }
        ("PUT", ("Patient", Some(id))) => {
            let (pid, input, _) = update_input(state, api, id, bytes.as_bytes()).await?;
            let if_match = request
                .get("ifMatch")
                .and_then(Value::as_str)
                .map(|v| version_of(v, "ifMatch"))
                .transpose()?;
            Ok(Step::UpdatePatient {
                id: pid,
                if_match,
                input: Box::new(input),
            })
        }
        ("POST", ("Observation", None)) => {
            let posted = interop::fhir::observation::parse_observation(bytes.as_bytes())
                .map_err(input_error)?;
            let (patient, source) = measure_of(&posted, api)?;
            Ok(Step::Measure {
                patient,
                posted,
                source,
            })
        }
        _ => Err(AppError::Unprocessable(
            "not-supported",
            format!(
                "{method} {url} : une transaction prend Patient (POST, PUT) et Observation (POST) ; les autres requêtes passent en batch"
            ),
        )),
    }
}

/// Runs a transaction Bundle: 200 with a `transaction-response`, or the
/// error of the entry that stopped it (nothing written).
pub(super) async fn run(state: &AppState, api: &ApiActor, bundle: &Value) -> ApiResult {
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return Err(AppError::BadRequest(
            "too-costly",
            format!("une transaction compte de 1 à {MAX_ENTRIES} entrées"),
        )
        .into());
    }
    let mut steps = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        steps.push(step(state, api, e).await.map_err(|e| at(i, e))?);
    }
    let done = bundle::transaction(state.ctx(), &api.actor, steps)
        .await
        .map_err(|e| match e.entry {
            Some(i) => at(i, e.error),
            None => e.error,
        })?;
    let mut out = Vec::with_capacity(done.len());
    for d in &done {
        out.push(match d {
            Done::Created(p) | Done::Existing(p) | Done::Updated(p) => {
                let oid = domain_oid(state, p.territory).await?;
                let status = match d {
                    Done::Created(_) => "201 Created",
                    _ => "200 OK",
                };
                serde_json::json!({
                    "response": {
                        "status": status,
                        "location": format!("Patient/{}/_history/{}", p.id, p.version),
                        "etag": format!("W/\"{}\"", p.version),
                    },
                    "resource": patient_resource(state, p, &oid).await?,
                })
            }
            Done::Measured(r, patient) => serde_json::json!({
                "response": {
                    "status": "201 Created",
                    "location": format!("Observation/{}-0", r.id),
                },
                "resource": measure_observation(r, *patient)?,
            }),
        });
    }
    Ok(fhir(
        StatusCode::OK,
        &serde_json::json!({"resourceType": "Bundle", "type": "transaction-response", "entry": out}),
    ))
}
