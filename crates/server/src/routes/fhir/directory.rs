//! The directory and the trail: Practitioner, Organization, AuditEvent.

use super::*;

pub(super) fn practitioner_view(u: &store::users::User) -> f::PractitionerView {
    f::PractitionerView {
        id: u.id.to_string(),
        display_name: u.display_name.clone(),
        rpps: u.rpps.clone(),
        active: u.active,
    }
}

pub(super) async fn search_practitioners(
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

pub(super) async fn read_practitioner(
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

pub(super) async fn organizations(
    state: &AppState,
    t: TerritoryId,
) -> Result<Vec<Value>, AppError> {
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

pub(super) async fn search_organizations(
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

pub(super) async fn read_organization(
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

pub(super) fn audit_establishment(api: &ApiActor) -> Result<String, AppError> {
    client_may(
        api,
        EstablishmentAction::ReadAudit,
        "journal d'audit réservé aux administrateurs de l'établissement",
    )?;
    Ok(api.client.establishment.to_string())
}

pub(super) async fn search_audit(
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

pub(super) async fn read_audit(
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
