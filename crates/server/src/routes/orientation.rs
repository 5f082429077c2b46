//! Orientation pages: create a request for a patient, list what my establishments
//! sent and received, answer, confirm a place, withdraw; with the timeline and the
//! delays of each answer. The policy decides every step; each view of a request is
//! an audited read of the patient's data.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::audit::AuditActor;
use domain::orientation::{Answer, RequestStatus, ResponseStatus, TargetType};
use domain::policy::{Decision, OrientationAction, PatientAction, authorize_orientation};
use domain::{EstablishmentId, PatientId};
use serde::Deserialize;
use store::audit::NewAudit;
use store::orientation::{NewOrientation, Orientation, Step};

use super::kit::{Nav, check_csrf, field, form_fields, nav, render, same_origin, see_other};
use super::web::establishment_name;
use crate::error::{AppError, PageError};
use crate::extract::WebUser;
use crate::fmt::paris_time;
use crate::services::patients;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/orientation", get(list).post(create))
        .route("/orientation/nouvelle", get(new_form))
        .route("/orientation/{id}", get(show))
        .route("/orientation/{id}/repondre", post(respond))
        .route("/orientation/{id}/confirmer", post(confirm))
        .route("/orientation/{id}/annuler", post(cancel))
}

fn status_fr(s: ResponseStatus) -> &'static str {
    match s {
        ResponseStatus::Pending => "en attente",
        ResponseStatus::Accepted => "acceptée",
        ResponseStatus::Refused => "refusée",
        ResponseStatus::Chosen => "place retenue",
        ResponseStatus::Closed => "close",
    }
}

fn request_fr(s: RequestStatus) -> &'static str {
    match s {
        RequestStatus::Open => "en cours",
        RequestStatus::Confirmed => "place confirmée",
        RequestStatus::Cancelled => "annulée",
    }
}

fn duration_fr(ms: i64) -> String {
    let min = ms.max(0) / 60_000;
    if min < 60 {
        format!("{min} min")
    } else if min < 48 * 60 {
        format!("{} h {:02}", min / 60, min % 60)
    } else {
        format!("{} j", min / 1440)
    }
}

async fn patient_name(state: &AppState, id: PatientId) -> String {
    state
        .store
        .patient(id)
        .await
        .map(|p| p.traits.display_name())
        .unwrap_or_else(|_| "?".into())
}

/// Loads a request the user may see, and audits the read.
async fn load(state: &AppState, w: &WebUser, id: &str) -> Result<Orientation, PageError> {
    let not_found = || PageError(AppError::NotFound("demande introuvable".into()));
    let o = state.store.orientation(id).await.map_err(|_| not_found())?;
    let to: Vec<EstablishmentId> = o.recipients.iter().map(|r| r.establishment).collect();
    let Decision::Allow(grant) =
        authorize_orientation(&w.actor, OrientationAction::View, o.from, &to)
    else {
        return Err(not_found());
    };
    let row = NewAudit {
        at_ms: state.now_ms(),
        actor: AuditActor::new(&w.actor, grant),
        patient: Some(o.patient.to_string()),
        action: "read-clinical".into(),
        resource: format!("ServiceRequest/{}", o.id),
        outcome: "success".into(),
    };
    state.store.audit(&row).await?;
    Ok(o)
}

struct ListRow {
    id: String,
    created: String,
    patient: String,
    from: String,
    target: String,
    status: String,
    urgent: bool,
}

#[derive(Template)]
#[template(path = "orientation_list.html")]
struct ListPage {
    title: String,
    nav: Option<Nav>,
    rows: Vec<ListRow>,
}

async fn list(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let mine: Vec<EstablishmentId> = w.actor.grants.iter().map(|g| g.establishment).collect();
    let mut rows = Vec::new();
    for id in state.store.orientations_of(&mine).await? {
        let o = load(&state, &w, &id).await?;
        rows.push(ListRow {
            created: paris_time(o.created_at_ms),
            patient: patient_name(&state, o.patient).await,
            from: establishment_name(&state, o.from).await,
            target: o.target.label_fr().into(),
            status: request_fr(o.status).into(),
            urgent: o.urgent,
            id: o.id,
        });
    }
    Ok(render(&ListPage {
        title: "Orientations".into(),
        nav: nav(&w),
        rows,
    })?
    .into_response())
}

#[derive(Deserialize)]
struct NewQuery {
    #[serde(default)]
    patient: String,
}

#[derive(Template)]
#[template(path = "orientation_new.html")]
struct NewPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    patient: String,
    patient_id: String,
    today: String,
    establishments: Vec<(String, String)>,
    error: Option<String>,
}

/// The requesting establishment: where the actor may write the patient's clinical data.
async fn requester(
    state: &AppState,
    w: &WebUser,
    patient: PatientId,
) -> Result<(domain::identity::PatientRecord, domain::policy::Grant), PageError> {
    let p = state
        .store
        .patient(patient)
        .await
        .map_err(|_| PageError(AppError::NotFound("patient introuvable".into())))?;
    let scope = patients::scope_of(state, &p).await?;
    match domain::policy::authorize_patient(&w.actor, PatientAction::WriteClinical, &scope) {
        Decision::Allow(Some(g)) => Ok((p, g)),
        _ => Err(AppError::Forbidden(
            "seul un établissement qui prend en charge ce patient peut demander son orientation"
                .into(),
        )
        .into()),
    }
}

async fn new_page(
    state: &AppState,
    w: &WebUser,
    pid: PatientId,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let (p, grant) = requester(state, w, pid).await?;
    let establishments = state
        .store
        .establishments(p.territory)
        .await?
        .into_iter()
        .filter(|e| e.id != grant.establishment)
        .map(|e| (e.id.to_string(), e.name))
        .collect();
    let today = state
        .clock
        .now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let page = NewPage {
        title: "Demande d'orientation".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        patient: p.traits.display_name(),
        patient_id: p.id.to_string(),
        today,
        establishments,
        error,
    };
    Ok((status, render(&page)?).into_response())
}

async fn new_form(
    State(state): State<AppState>,
    w: WebUser,
    Query(q): Query<NewQuery>,
) -> Result<Response, PageError> {
    let pid: PatientId = q
        .patient
        .parse()
        .map_err(|_| PageError(AppError::NotFound("patient introuvable".into())))?;
    new_page(&state, &w, pid, StatusCode::OK, None).await
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    body: String,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    let f = form_fields(&body)?;
    check_csrf(&w.session.csrf_token, field(&f, "csrf"))?;
    let pid: PatientId = field(&f, "patient")
        .parse()
        .map_err(|_| PageError(AppError::NotFound("patient introuvable".into())))?;
    let (p, grant) = requester(&state, &w, pid).await?;
    let again = |msg: &str| {
        new_page(
            &state,
            &w,
            pid,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(msg.to_owned()),
        )
    };
    let Some(target) = TargetType::from_code(field(&f, "cible")) else {
        return again("choisissez SSR ou HAD").await;
    };
    let needs = field(&f, "besoins").trim().to_owned();
    if needs.is_empty() || needs.chars().count() > 4000 {
        return again("décrivez les besoins cliniques (4 000 caractères au plus)").await;
    }
    let date = field(&f, "date");
    if date.parse::<jiff::civil::Date>().is_err() {
        return again("date souhaitée illisible").await;
    }
    let territory_ests: Vec<EstablishmentId> = state
        .store
        .establishments(p.territory)
        .await?
        .into_iter()
        .map(|e| e.id)
        .collect();
    let mut recipients = Vec::new();
    for (k, v) in &f {
        if k == "destinataire" {
            match v.parse::<EstablishmentId>() {
                Ok(e) if territory_ests.contains(&e) && e != grant.establishment => {
                    recipients.push(e)
                }
                _ => return again("établissement destinataire inconnu").await,
            }
        }
    }
    let n = NewOrientation {
        patient: p.id,
        territory: p.territory,
        from: grant.establishment,
        target,
        needs,
        wished_date: date.to_owned(),
        urgent: field(&f, "urgent") == "1",
        recipients,
    };
    match state
        .store
        .create_orientation(
            &n,
            &AuditActor::new(&w.actor, Some(grant)),
            &w.user.id.to_string(),
            state.now_ms(),
        )
        .await
    {
        Ok(id) => Ok(see_other(&format!("/orientation/{id}"))),
        Err(store::StoreError::Rule(e)) => again(&e.to_string()).await,
        Err(e) => Err(AppError::from(e).into()),
    }
}

struct RecipientRow {
    id: String,
    name: String,
    status: String,
    reason: Option<String>,
    delay: String,
    can_answer: bool,
    can_confirm: bool,
}

struct EventRow {
    at: String,
    delay: String,
    establishment: String,
    action: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "orientation.html")]
struct ShowPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    id: String,
    patient: String,
    target: String,
    from: String,
    created: String,
    needs: String,
    wished: String,
    urgent: bool,
    status: String,
    recipients: Vec<RecipientRow>,
    can_cancel: bool,
    timeline: Vec<EventRow>,
    error: Option<String>,
}

async fn show_page(
    state: &AppState,
    w: &WebUser,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let o = load(state, w, id).await?;
    let to: Vec<EstablishmentId> = o.recipients.iter().map(|r| r.establishment).collect();
    let open = o.status == RequestStatus::Open;
    let decide = authorize_orientation(&w.actor, OrientationAction::Decide, o.from, &to).allowed();
    let mut recipients = Vec::new();
    for r in &o.recipients {
        recipients.push(RecipientRow {
            id: r.establishment.to_string(),
            name: establishment_name(state, r.establishment).await,
            status: status_fr(r.status).into(),
            reason: r.reason.clone(),
            delay: r
                .responded_at_ms
                .map(|t| duration_fr(t - o.created_at_ms))
                .unwrap_or_else(|| "—".into()),
            can_answer: open
                && r.status == ResponseStatus::Pending
                && authorize_orientation(
                    &w.actor,
                    OrientationAction::Answer(r.establishment),
                    o.from,
                    &to,
                )
                .allowed(),
            can_confirm: open && decide && r.status == ResponseStatus::Accepted,
        });
    }
    let mut timeline = Vec::new();
    for e in &o.events {
        let action = match e.action.as_str() {
            "created" => "demande envoyée",
            "accepted" => "place proposée",
            "refused" => "refus",
            "confirmed" => "place confirmée par le demandeur",
            "cancelled" => "demande annulée",
            other => other,
        };
        timeline.push(EventRow {
            at: paris_time(e.at_ms),
            delay: duration_fr(e.at_ms - o.created_at_ms),
            establishment: establishment_name(state, e.establishment).await,
            action: action.into(),
            detail: e.detail.clone(),
        });
    }
    let page = ShowPage {
        title: "Orientation".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        patient: patient_name(state, o.patient).await,
        target: o.target.label_fr().into(),
        from: establishment_name(state, o.from).await,
        created: paris_time(o.created_at_ms),
        needs: o.needs.clone(),
        wished: o.wished_date.clone(),
        urgent: o.urgent,
        status: request_fr(o.status).into(),
        recipients,
        can_cancel: open && decide,
        timeline,
        error,
        id: o.id,
    };
    Ok((status, render(&page)?).into_response())
}

async fn show(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    show_page(&state, &w, &id, StatusCode::OK, None).await
}

/// Checks the form and the policy, applies the step, shows the request again.
async fn step(
    state: AppState,
    headers: HeaderMap,
    w: WebUser,
    id: String,
    body: String,
    kind: &str,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    let f = form_fields(&body)?;
    check_csrf(&w.session.csrf_token, field(&f, "csrf"))?;
    let o = load(&state, &w, &id).await?;
    let to: Vec<EstablishmentId> = o.recipients.iter().map(|r| r.establishment).collect();
    let est = || {
        field(&f, "etablissement")
            .parse::<EstablishmentId>()
            .map_err(|_| {
                PageError(AppError::BadRequest(
                    "invalid",
                    "établissement illisible".into(),
                ))
            })
    };
    let (step, action) = match kind {
        "answer" => {
            let e = est()?;
            let answer = if field(&f, "reponse") == "accepter" {
                Answer::Accept
            } else {
                Answer::Refuse(field(&f, "motif").trim().to_owned())
            };
            (Step::Answer(e, answer), OrientationAction::Answer(e))
        }
        "confirm" => (Step::Confirm(est()?), OrientationAction::Decide),
        _ => (Step::Cancel, OrientationAction::Decide),
    };
    let Decision::Allow(grant) = authorize_orientation(&w.actor, action, o.from, &to) else {
        return Err(
            AppError::Forbidden("cette action revient à un autre établissement".into()).into(),
        );
    };
    let who = AuditActor::new(&w.actor, grant);
    match state
        .store
        .orientation_step(&id, &step, &who, &w.user.id.to_string(), state.now_ms())
        .await
    {
        Ok(()) => Ok(see_other(&format!("/orientation/{id}"))),
        Err(store::StoreError::Rule(e)) => {
            show_page(
                &state,
                &w,
                &id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(e.to_string()),
            )
            .await
        }
        Err(e) => Err(AppError::from(e).into()),
    }
}

async fn respond(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    step(state, headers, w, id, body, "answer").await
}

async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    step(state, headers, w, id, body, "confirm").await
}

async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    step(state, headers, w, id, body, "cancel").await
}
