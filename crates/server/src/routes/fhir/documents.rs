//! Documents and the MHD recipient: DocumentReference, Binary, List (ITI-66,
//! 67, 68) and the ITI-65 transaction.

use super::*;
use crate::routes::kit::path_id;
use crate::services::{consultations, documents};

/// `GET /fhir/DocumentReference?patient=…`: the prescription PDFs, each
/// pointing at its download address (which applies the same rules).
pub(super) async fn search_document_references(
    State(state): State<AppState>,
    api: ApiActor,
    q: SearchQuery,
) -> ApiResult {
    let s = q.accept(
        "DocumentReference",
        &["patient", "patient.identifier", "status"],
    )?;
    let pid = match param(&s.list, "patient.identifier") {
        Some(ident) => patient_by_identifier(&state, &api, ident).await?,
        None => Some(patient_param(&s.list)?),
    };
    // Nobody carries that identifier here: the same empty Bundle as for a
    // patient with nothing for this client (existence is not told).
    let Some(pid) = pid else {
        return s.respond(&state, &api, Vec::new()).await;
    };
    let out = document_references_json(&state, &api.actor, pid).await?;
    s.respond(&state, &api, out).await
}

/// The validated documents and prescriptions of `pid` the client may read.
pub(crate) async fn document_references_json(
    state: &AppState,
    actor: &Actor,
    pid: PatientId,
) -> Result<Vec<Value>, AppError> {
    let mut out = Vec::new();
    // Clinical documents (drafts only to their establishment's staff, never
    // through the API: validated ones).
    let fhir_base = base(state);
    for d in documents::validated_of_patient(state.ctx(), actor, pid, "DocumentReference").await? {
        // The size and hash were stored with the content; only a row from
        // before them (filled in at the next start) has its bytes read.
        let digest = match &d.digest {
            Some(digest) => Some(digest.clone()),
            None => documents::stored_file(state.ctx(), d.id)
                .await?
                .map(|(_, content)| store::documents::Digest::of(&content)),
        };
        out.push(document_reference_json(&d, digest.as_ref(), &fhir_base));
    }
    let base = state.config.public_url();
    for closed in consultations::closed_of_patient(state.ctx(), actor, pid).await? {
        let c = &closed.consultation;
        let url = format!("{base}/rdv/{}/ordonnance.pdf", c.appointment_id);
        let pdf = consultations::render_pdf(state.ctx(), c).await?;
        let view = consultation_view(c, &closed.practitioner_name, c.closed_at_ms);
        out.push(interop::fhir::consultation::document_reference(
            &view, &url, &pdf,
        ));
    }
    Ok(out)
}

pub(super) fn document_reference_json(
    d: &store::documents::Document,
    digest: Option<&store::documents::Digest>,
    fhir_base: &str,
) -> Value {
    interop::fhir::mhd::stored_reference(&stored_view(d, digest, fhir_base))
}

/// What the MHD resources show of stored document `d`; its content described
/// by `digest` (its size and hash), none when `None` or without a media type.
pub(super) fn stored_view<'a>(
    d: &'a store::documents::Document,
    digest: Option<&'a store::documents::Digest>,
    fhir_base: &'a str,
) -> interop::fhir::mhd::StoredView<'a> {
    interop::fhir::mhd::StoredView {
        id: d.id.to_string(),
        unique_id: &d.unique_id,
        patient: d.patient.to_string(),
        establishment: d.establishment.to_string(),
        type_code: d.kind.loinc(),
        class_code: d.kind.class(),
        title: &d.title,
        date_ms: d.validated_at_ms.unwrap_or(d.created_at_ms),
        final_: d.status == domain::documents::Status::Validated,
        superseded: d.superseded_by.is_some(),
        content: d
            .content_type
            .as_deref()
            .zip(digest)
            .map(|(content_type, digest)| interop::fhir::mhd::Attached {
                content_type,
                size: digest.size,
                sha1: &digest.sha1,
            }),
        base: fhir_base,
    }
}

/// The patient's validated documents at the client's establishments; reading
/// them is reading the record (allowed and audited as `resource`, or refused),
/// nothing to read is nothing audited.
pub(super) async fn client_documents(
    state: &AppState,
    api: &ApiActor,
    pid: PatientId,
    resource: &str,
) -> Result<Vec<store::documents::Document>, AppError> {
    documents::validated_of_patient(state.ctx(), &api.actor, pid, resource).await
}

/// `patient.identifier=urn:oid:…|INS` (ITI-67): the identity in the client's
/// domain that carries it, found through the patient search service (the
/// policy, then the audit); `None` when there is none.
pub(super) async fn patient_by_identifier(
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
        ..Default::default()
    };
    let found = patients::search(state.ctx(), &api.actor, &q, Some(g.territory)).await?;
    Ok(found
        .into_iter()
        .find(|(p, _)| p.active())
        .map(|(p, _)| p.id))
}

/// `POST /fhir` with a transaction Bundle: the ITI-65 Provide Document Bundle
/// of an MHD Document Source. Answers a transaction-response.
pub(super) async fn transaction(
    State(state): State<AppState>,
    api: ApiActor,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest("structure", format!("JSON illisible : {e}")))?;
    match v.get("type").and_then(Value::as_str) {
        Some("batch") => return super::batch::run(&state, &headers, &v).await,
        Some("transaction") if !is_mhd(&v) => {
            return super::transaction::run(&state, &api, &v).await;
        }
        Some("transaction") => {}
        other => {
            return Err(AppError::BadRequest(
                "not-supported",
                format!(
                    "Bundle de type {:?} : batch ou transaction",
                    other.unwrap_or("")
                ),
            )
            .into());
        }
    }
    let ids =
        crate::services::documents::receive(state.ctx(), &api.actor, &api.client.client_id, &v)
            .await?;
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

/// Whether a transaction Bundle is an MHD submission (ITI-65): it carries a
/// SubmissionSet List, a DocumentReference or a Binary.
fn is_mhd(bundle: &Value) -> bool {
    bundle
        .get("entry")
        .and_then(Value::as_array)
        .is_some_and(|entries| {
            entries.iter().any(|e| {
                matches!(
                    interop::json_at(e, &["resource", "resourceType"]).as_str(),
                    Some("List" | "DocumentReference" | "Binary")
                )
            })
        })
}

/// `GET /fhir/DocumentReference/{id}`.
pub(super) async fn read_document_reference(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let r = document_reference_by_id(&state, &api.actor, &id).await?;
    Ok(fhir(StatusCode::OK, &r))
}

/// One DocumentReference `actor` may read (another establishment's is not
/// even said to exist).
pub(super) async fn document_reference_by_id(
    state: &AppState,
    actor: &Actor,
    id: &str,
) -> Result<Value, AppError> {
    let did = path_id(id, "document")?;
    documents::visible(state.ctx(), actor, did).await?;
    let (d, _, c) = crate::services::documents::content(state.ctx(), actor, did).await?;
    let digest = d
        .digest
        .clone()
        .unwrap_or_else(|| store::documents::Digest::of(&c));
    Ok(document_reference_json(&d, Some(&digest), &base(state)))
}

/// `GET /fhir/Binary/{id}` (ITI-68): the document as stored (the CDA).
pub(super) async fn read_binary(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    visible_document(&state, &api, &id).await?;
    let (_, t, c) =
        crate::services::documents::content(state.ctx(), &api.actor, path_id(&id, "document")?)
            .await?;
    Ok(([(header::CONTENT_TYPE, t)], c).into_response())
}

/// A document of one of the client's establishments (else 404: another
/// establishment's documents are not even said to exist).
pub(super) async fn visible_document(
    state: &AppState,
    api: &ApiActor,
    id: &str,
) -> Result<(), AppError> {
    documents::visible(state.ctx(), &api.actor, path_id(id, "document")?).await
}

/// `GET /fhir/List/ss-{document}`: the submission set of a validated document
/// the client may read.
pub(super) async fn read_submission_set(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let not_found = || AppError::NotFound("List introuvable".into());
    let doc = id.strip_prefix("ss-").ok_or_else(not_found)?;
    let did = path_id(doc, "document")?;
    documents::visible(state.ctx(), &api.actor, did).await?;
    // Validated documents only (a draft is not found).
    let (d, _, _) = documents::content(state.ctx(), &api.actor, did).await?;
    Ok(fhir(
        StatusCode::OK,
        &interop::fhir::mhd::submission_set(&stored_view(&d, None, &base(&state))),
    ))
}

/// `GET /fhir/List?patient=…` (ITI-66): the submission sets of the patient's
/// validated documents at the client's establishments.
pub(super) async fn search_submission_sets(
    State(state): State<AppState>,
    api: ApiActor,
    q: SearchQuery,
) -> ApiResult {
    let s = q.accept("List", &["patient", "code"])?;
    let pid = patient_param(&s.list)?;
    let fhir_base = base(&state);
    let out = client_documents(&state, &api, pid, "List")
        .await?
        .iter()
        .map(|d| interop::fhir::mhd::submission_set(&stored_view(d, None, &fhir_base)))
        .collect();
    s.respond(&state, &api, out).await
}
