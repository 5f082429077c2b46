//! The directory and the trail: Practitioner, Organization, AuditEvent.

use super::*;
use crate::services::{audit_trail, directory};

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
    let list: Vec<Value> = directory::practitioners(state.ctx(), &api.actor, home(&api))
        .await?
        .iter()
        .map(|u| f::practitioner(&practitioner_view(u)))
        .collect();
    Ok(bundle(&state, list, "Practitioner"))
}

pub(super) async fn read_practitioner(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let not_found = || AppError::NotFound("Practitioner introuvable".into());
    let uid: UserId = id.parse().map_err(|_| not_found())?;
    let user = directory::practitioner(state.ctx(), &api.actor, home(&api), uid)
        .await?
        .ok_or_else(not_found)?;
    Ok(fhir(
        StatusCode::OK,
        &f::practitioner(&practitioner_view(&user)),
    ))
}

pub(super) async fn organizations(
    state: &AppState,
    api: &ApiActor,
) -> Result<Vec<Value>, AppError> {
    let (territory, establishments) =
        directory::organizations(state.ctx(), &api.actor, home(api)).await?;
    let t = territory.id;
    let mut out = vec![f::organization(&f::OrganizationView {
        id: territory.id.to_string(),
        name: territory.name,
        finess: None,
        part_of: None,
        kind: "territory".into(),
    })];
    for e in establishments {
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
    Ok(bundle(
        &state,
        organizations(&state, &api).await?,
        "Organization",
    ))
}

pub(super) async fn read_organization(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    organizations(&state, &api)
        .await?
        .into_iter()
        .find(|o| o.get("id").and_then(Value::as_str) == Some(id.as_str()))
        .map(|o| fhir(StatusCode::OK, &o))
        .ok_or_else(|| AppError::NotFound("Organization introuvable".into()).into())
}

pub(super) async fn search_audit(
    State(state): State<AppState>,
    api: ApiActor,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let list = params(raw.clone(), &["patient", "_count"])?;
    let patient =
        param(&list, "patient").map(|p| p.strip_prefix("Patient/").unwrap_or(p).to_owned());
    let limit = number(&list, "_count", 100, 500)?;
    let entries =
        audit_trail::of_establishment(state.ctx(), &api.actor, home(&api), patient, limit).await?;
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
    let not_found = || AppError::NotFound("AuditEvent introuvable".into());
    let e = audit_trail::entry(state.ctx(), &api.actor, home(&api), &id)
        .await?
        .ok_or_else(not_found)?;
    Ok(fhir(StatusCode::OK, &f::audit_event(&e)))
}
