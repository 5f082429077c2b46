//! `POST /fhir` with a `batch` Bundle: each entry is an independent request
//! (its own success or failure, in order) sent through the FHIR routes
//! themselves with the caller's token, so every rule, audit and check of the
//! single request applies unchanged; `request.ifMatch` and
//! `request.ifNoneExist` become their headers. A `transaction` Bundle is an MHD
//! document submission (ITI-65) or, all or nothing, the writes of
//! `transaction.rs`.

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use super::*;

/// Entries per batch, at most.
const MAX_ENTRIES: usize = 100;

pub(super) async fn run(state: &AppState, headers: &HeaderMap, bundle: &Value) -> ApiResult {
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if entries.len() > MAX_ENTRIES {
        return Err(AppError::BadRequest(
            "too-costly",
            format!("un batch compte {MAX_ENTRIES} entrées au plus"),
        )
        .into());
    }
    let auth = headers.get(header::AUTHORIZATION).cloned();
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        out.push(match one(state, auth.as_ref(), e).await {
            Ok(r) => r,
            Err(e) => failed(&e, i),
        });
    }
    Ok(fhir(
        StatusCode::OK,
        &serde_json::json!({"resourceType": "Bundle", "type": "batch-response", "entry": out}),
    ))
}

/// The response entry of a request that could not be sent.
fn failed(e: &AppError, i: usize) -> Value {
    let (status, code, msg) = match e {
        AppError::BadRequest(code, m) => ("400 Bad Request", *code, m.clone()),
        other => ("500 Internal Server Error", "exception", other.to_string()),
    };
    serde_json::json!({"response": {
        "status": status,
        "outcome": f::operation_outcome("error", code, &format!("entrée {}: {msg}", i + 1)),
    }})
}

async fn one(
    state: &AppState,
    auth: Option<&header::HeaderValue>,
    e: &Value,
) -> Result<Value, AppError> {
    let request = e.get("request").ok_or_else(|| {
        AppError::BadRequest("required", "entry.request (method, url) manquant".into())
    })?;
    let method = request.get("method").and_then(Value::as_str).unwrap_or("");
    let url = request.get("url").and_then(Value::as_str).unwrap_or("");
    let path = url.trim_start_matches('/');
    if !matches!(method, "GET" | "POST" | "PUT") {
        return Err(AppError::BadRequest(
            "not-supported",
            format!("méthode {method:?} : GET, POST ou PUT"),
        ));
    }
    if path.is_empty() || path.contains("://") || path.starts_with('?') {
        return Err(AppError::BadRequest(
            "not-supported",
            format!("url {url:?} : un chemin relatif à la base FHIR (Patient, Patient/id…)"),
        ));
    }
    let mut b = Request::builder()
        .method(method)
        .uri(format!("/{path}"))
        .header(header::CONTENT_TYPE, "application/fhir+json");
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    for (field, name) in [("ifMatch", "if-match"), ("ifNoneExist", "if-none-exist")] {
        if let Some(v) = request.get(field).and_then(Value::as_str) {
            b = b.header(name, v);
        }
    }
    let body = match e.get("resource") {
        Some(r) if method != "GET" => Body::from(r.to_string()),
        _ => Body::empty(),
    };
    let req = b
        .body(body)
        .map_err(|_| AppError::BadRequest("invalid", format!("requête {method} {url} invalide")))?;
    let resp = routes()
        .with_state(state.clone())
        .oneshot(req)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("batch: {e}")))?;
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let etag = resp
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = axum::body::to_bytes(resp.into_body(), state.config.max_body_bytes)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("batch: {e}")))?;
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let mut response = serde_json::json!({
        "status": format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")),
    });
    if let Some(o) = response.as_object_mut() {
        if let Some(l) = location {
            o.insert("location".into(), Value::String(l));
        }
        if let Some(t) = etag {
            o.insert("etag".into(), Value::String(t));
        }
        if !status.is_success() {
            o.insert("outcome".into(), answer.clone());
        }
    }
    let mut entry = serde_json::json!({"response": response});
    if status.is_success()
        && answer.is_object()
        && let Some(o) = entry.as_object_mut()
    {
        o.insert("resource".into(), answer);
    }
    Ok(entry)
}
