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
    q: SearchQuery,
) -> ApiResult {
    let s = q.accept("Practitioner", &[])?;
    let list: Vec<Value> = directory::practitioners(state.ctx(), &api.actor, home(&api))
        .await?
        .iter()
        .map(|u| f::practitioner(&practitioner_view(u)))
        .collect();
    s.respond(&state, &api, list).await
}

/// The Practitioner `uid` as the client may read it (`None`: not one it sees).
pub(super) async fn practitioner_json(
    state: &AppState,
    api: &ApiActor,
    uid: UserId,
) -> Result<Option<Value>, AppError> {
    Ok(
        directory::practitioner(state.ctx(), &api.actor, home(api), uid)
            .await?
            .map(|u| f::practitioner(&practitioner_view(&u))),
    )
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
    q: SearchQuery,
) -> ApiResult {
    let s = q.accept("Organization", &[])?;
    let list = organizations(&state, &api).await?;
    s.respond(&state, &api, list).await
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
    q: SearchQuery,
) -> ApiResult {
    let s = q.accept("AuditEvent", &["patient"])?;
    let patient =
        param(&s.list, "patient").map(|p| p.strip_prefix("Patient/").unwrap_or(p).to_owned());
    // The latest entries first, as many as the page needs (plus one, to know
    // there is a next page); sorted or filtered searches read the last 5,000.
    let wanted = if s.sorted() || s.last_updated_range() != (None, None) {
        5_000
    } else {
        s.offset() + s.count() + 1
    };
    let limit = i64::try_from(wanted).unwrap_or(5_000).min(5_000);
    let entries =
        audit_trail::of_establishment(state.ctx(), &api.actor, home(&api), patient, limit).await?;
    let list: Vec<Value> = entries.iter().map(f::audit_event).collect();
    s.respond(&state, &api, list).await
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
