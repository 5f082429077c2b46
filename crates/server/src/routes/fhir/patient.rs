//! FHIR Patient: read, search, create, update (If-Match), `$merge`.

use super::*;

pub(super) async fn read_patient(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let p = patients::read(state.ctx(), &api.actor, patient_id(&id)?).await?;
    let oid = domain_oid(&state, p.territory).await?;
    Ok(patient_response(&state, StatusCode::OK, &p, &oid).await?)
}

pub(super) async fn search_patients(
    State(state): State<AppState>,
    api: ApiActor,
    sq: SearchQuery,
) -> ApiResult {
    let s = sq.accept("Patient", &["identifier", "family", "given", "birthdate"])?;
    let list = s.list.clone();
    let (updated_min_ms, updated_max_ms) = s.last_updated_range();
    let sort = match s.sort_names().as_slice() {
        [] => PatientSort::Name,
        [("_lastUpdated", false)] => PatientSort::LastUpdated,
        [("_lastUpdated", true)] => PatientSort::LastUpdatedDesc,
        [("_id", false)] => PatientSort::Id,
        [("_id", true)] => PatientSort::IdDesc,
        _ => {
            return Err(AppError::BadRequest(
                "not-supported",
                "Patient: une seule clé de tri (_lastUpdated ou _id, - pour décroissant)".into(),
            )
            .into());
        }
    };
    let mut q = PatientQuery {
        limit: i64::try_from(s.count().max(1)).unwrap_or(200),
        offset: i64::try_from(s.offset()).unwrap_or(i64::MAX),
        updated_min_ms,
        updated_max_ms,
        sort,
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
        only_territory = by_identifier(&state, ident, &mut q).await?;
    }
    let forbidden_domain = only_territory.is_some()
        && !api
            .actor
            .grants
            .iter()
            .any(|g| Some(g.territory) == only_territory);
    if s.summary_count() {
        let total = if forbidden_domain {
            0
        } else {
            patients::count(state.ctx(), &api.actor, &q, only_territory).await?
        };
        return s.respond_count(&state, total);
    }
    let found = if forbidden_domain {
        Vec::new()
    } else {
        patients::search(state.ctx(), &api.actor, &q, only_territory).await?
    };
    let ids: Vec<PatientId> = found.iter().map(|(p, _)| p.id).collect();
    let mut demographics = patients::demographics_of(state.ctx(), &ids).await?;
    let resources: Vec<Value> = found
        .iter()
        .map(|(p, oid)| f::patient(p, &demographics.remove(&p.id).unwrap_or_default(), oid))
        .collect();
    let has_more = found.len() as i64 >= q.limit;
    s.respond_page(&state, &api, resources, None, has_more)
        .await
}

pub(super) fn creation_domain(api: &ApiActor) -> TerritoryId {
    api.client.territory
}

pub(super) async fn create_patient(
    State(state): State<AppState>,
    api: ApiActor,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let bytes = body_bytes(body, &state, &headers)?;
    // The condition in If-None-Exist (FHIR) or, as some clients send it
    // (fhirpy, Aidbox), in the query string of the POST.
    let condition = match headers.get("if-none-exist") {
        Some(h) => Some(
            h.to_str()
                .map_err(|_| AppError::BadRequest("invalid", "If-None-Exist illisible".into()))?
                .to_owned(),
        ),
        None => query.filter(|q| !q.is_empty()),
    };
    let (input, oid) = match create_input(&state, &api, &bytes, condition.as_deref()).await? {
        CreateInput::Found(p, oid) => {
            return Ok(patient_response(&state, StatusCode::OK, &p, &oid).await?);
        }
        CreateInput::New(input, oid) => (input, oid),
    };
    let (p, demographics) = patients::create(state.ctx(), &api.actor, input).await?;
    let mut resp = with_version(
        fhir(StatusCode::CREATED, &f::patient(&p, &demographics, &oid)),
        p.version,
    );
    if let Ok(v) = format!("{}/Patient/{}/_history/{}", base(&state), p.id, p.version).parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// What a Patient create asks, read (the single request's and a
/// transaction entry's): the identity to create, or the record its condition
/// finds; with its domain's OID.
pub(super) enum CreateInput {
    /// To create.
    New(f::ParsedPatient, String),
    /// Found by the condition: nothing to create.
    Found(domain::identity::PatientRecord, String),
}

/// Reads a Patient to create and looks up its condition (`identifier=…`).
pub(super) async fn create_input(
    state: &AppState,
    api: &ApiActor,
    bytes: &[u8],
    condition: Option<&str>,
) -> Result<CreateInput, AppError> {
    let oid = domain_oid(state, creation_domain(api)).await?;
    let input = parse_input(state, bytes, &oid)?;
    if let Some(h) = condition {
        match existing(state, api, h).await?.as_slice() {
            [] => {}
            [(p, oid)] => return Ok(CreateInput::Found(p.clone(), oid.clone())),
            _ => {
                return Err(AppError::PreconditionFailed(
                    "If-None-Exist: plusieurs patients portent cet identifiant".into(),
                ));
            }
        }
    }
    Ok(CreateInput::New(input, oid))
}

/// Reads a Patient that replaces `Patient/{id}` (the body's id must be the
/// URL's): the record's id, the new content, its domain's OID.
pub(super) async fn update_input(
    state: &AppState,
    api: &ApiActor,
    id: &str,
    bytes: &[u8],
) -> Result<(PatientId, f::ParsedPatient, String), AppError> {
    let pid = patient_id(id)?;
    let current = patients::read(state.ctx(), &api.actor, pid).await?;
    let oid = domain_oid(state, current.territory).await?;
    let input = parse_input(state, bytes, &oid)?;
    if input.id.as_deref() != Some(id) {
        return Err(AppError::BadRequest(
            "invalid",
            "l'id du corps doit être celui de l'URL".into(),
        ));
    }
    Ok((pid, input, oid))
}

pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<i64>, AppError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    version_of(v.to_str().unwrap_or(""), "If-Match").map(Some)
}

/// The version in an If-Match value (`W/"3"`); `what` names where it was.
pub(super) fn version_of(text: &str, what: &str) -> Result<i64, AppError> {
    let inner = text.trim().trim_start_matches("W/").trim_matches('"');
    inner.parse().map_err(|_| {
        AppError::BadRequest("invalid", format!("{what} {text:?}: W/\"version\" attendu"))
    })
}

pub(super) async fn update_patient(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let bytes = body_bytes(body, &state, &headers)?;
    // An unknown id is not found before a bad If-Match is said.
    patient_id(&id)?;
    let expected = if_match(&headers)?;
    let (pid, input, oid) = update_input(&state, &api, &id, &bytes).await?;
    let p = patients::update(state.ctx(), &api.actor, pid, expected, input).await?;
    Ok(patient_response(&state, StatusCode::OK, &p, &oid).await?)
}

/// `POST /fhir/Patient/$merge` with a Parameters resource naming `source-patient`
/// (merged away) and `target-patient` (survivor), as references.
pub(super) async fn merge_patients(
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
    let merged = patients::merge(state.ctx(), &api.actor, target, source).await?;
    let oid = domain_oid(&state, merged.territory).await?;
    Ok(fhir(
        StatusCode::OK,
        &patient_resource(&state, &merged, &oid).await?,
    ))
}

/// Reads `identifier=system|value` into `q`: an INS (any domain) or an IPP (the
/// domain whose OID is the system, returned).
async fn by_identifier(
    state: &AppState,
    ident: &str,
    q: &mut PatientQuery,
) -> Result<Option<TerritoryId>, AppError> {
    let (system, value) = ident
        .split_once('|')
        .filter(|(s, v)| !s.is_empty() && !v.is_empty())
        .ok_or_else(|| {
            AppError::BadRequest("invalid", "identifier: system|value attendu".into())
        })?;
    let oid = system.strip_prefix("urn:oid:").unwrap_or("");
    if domain::InsKind::from_oid(oid).is_some() {
        q.ins = Some(value.to_owned());
        return Ok(None);
    }
    match crate::services::directory::territory_by_oid(state.ctx(), oid).await? {
        Some(t) => {
            q.ipp = Some(value.to_owned());
            Ok(Some(t.id))
        }
        None => Err(AppError::BadRequest(
            "not-supported",
            format!("système d'identifiant inconnu: {system}"),
        )),
    }
}

/// `If-None-Exist: identifier=system|value` (conditional create): the records
/// already carrying that identifier, as the client may see them.
async fn existing(
    state: &AppState,
    api: &ApiActor,
    header: &str,
) -> Result<Vec<(domain::identity::PatientRecord, String)>, AppError> {
    let list: Vec<(String, String)> = serde_urlencoded::from_str(header.trim_start_matches('?'))
        .map_err(|_| AppError::BadRequest("invalid", "If-None-Exist illisible".into()))?;
    let ident = match list.as_slice() {
        [(k, v)] if k == "identifier" => v,
        _ => {
            return Err(AppError::BadRequest(
                "not-supported",
                "If-None-Exist: seul identifier=system|value est pris en charge".into(),
            ));
        }
    };
    let mut q = PatientQuery {
        limit: 2,
        ..Default::default()
    };
    let only = by_identifier(state, ident, &mut q).await?;
    if only.is_some_and(|t| !api.actor.grants.iter().any(|g| g.territory == t)) {
        return Ok(Vec::new());
    }
    let mut found = patients::search(state.ctx(), &api.actor, &q, only).await?;
    found.retain(|(p, _)| p.active());
    Ok(found)
}
