//! Orientation pages: create a request for a patient, list what my establishments
//! sent and received, answer, confirm a place, withdraw; with the timeline and the
//! delays of each answer. The policy decides every step; each view of a request is
//! an audited read of the patient's data.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::PatientId;
use domain::orientation::{RequestStatus, ResponseStatus};
use serde::Deserialize;

use super::kit::{
    Nav, check_csrf, field, form_fields, nav, path_id, render, same_origin, see_other,
};
use crate::error::{AppError, PageError};
use crate::extract::Query;
use crate::extract::WebUser;
use crate::fmt::paris_time;
use crate::services::alerts;
use crate::services::orientation::{self as svc, Draft, Outcome, StepInput};
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
    let rows = svc::list(state.ctx(), &w.actor)
        .await?
        .into_iter()
        .map(|l| ListRow {
            created: paris_time(l.request.created_at_ms),
            patient: l.patient,
            from: l.from,
            target: l.request.target.label_fr().into(),
            status: request_fr(l.request.status).into(),
            urgent: l.request.urgent,
            id: l.request.id.to_string(),
        })
        .collect();
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
    /// The monitoring alert the request comes from, if any.
    #[serde(default)]
    alerte: String,
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
    /// The alert it comes from (its id), and the needs as typed or prefilled.
    alert: String,
    needs: String,
}

/// The alert a request comes from (a form's or a link's `alerte`), if any.
fn alert_of(text: &str) -> Result<Option<domain::AlertId>, AppError> {
    match text.trim() {
        "" => Ok(None),
        t => t
            .parse()
            .map(Some)
            .map_err(|_| AppError::NotFound("alerte introuvable".into())),
    }
}

async fn new_page(
    state: &AppState,
    w: &WebUser,
    pid: PatientId,
    (alert, needs): (Option<domain::AlertId>, Option<&str>),
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let form = svc::form(state.ctx(), &w.actor, pid).await?;
    // From an alert, the needs start with what the record says of it.
    let needs = match (needs, alert) {
        (Some(n), _) => n.to_owned(),
        (None, Some(a)) => alerts::orientation_needs(state.ctx(), &w.actor, a).await?,
        (None, None) => String::new(),
    };
    let page = NewPage {
        title: "Demande d'orientation".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        patient: form.patient.traits.display_name(),
        patient_id: form.patient.id.to_string(),
        today: form.today,
        establishments: form
            .establishments
            .into_iter()
            .map(|(id, name)| (id.to_string(), name))
            .collect(),
        error,
        alert: alert.map(|a| a.to_string()).unwrap_or_default(),
        needs,
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
    let alert = alert_of(&q.alerte)?;
    new_page(&state, &w, pid, (alert, None), StatusCode::OK, None).await
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
    let patient: PatientId = field(&f, "patient")
        .parse()
        .map_err(|_| PageError(AppError::NotFound("patient introuvable".into())))?;
    let draft = Draft {
        patient,
        target: field(&f, "cible"),
        needs: field(&f, "besoins"),
        wished_date: field(&f, "date"),
        urgent: field(&f, "urgent") == "1",
        recipients: f
            .iter()
            .filter(|(k, _)| k == "destinataire")
            .map(|(_, v)| v.as_str())
            .collect(),
    };
    let alert = alert_of(field(&f, "alerte"))?;
    match svc::create(state.ctx(), &w.actor, w.user.id, &draft).await? {
        Outcome::Done(id) => {
            // The alert it came from closes with this outcome (if another
            // step closed it meanwhile, the request stands on its own).
            if let Some(a) = alert {
                let name = &w.user.display_name;
                let ctx = state.ctx();
                if let alerts::Acted::Refused(why) =
                    alerts::oriented(ctx, &w.actor, name, a, draft.target).await?
                {
                    tracing::info!(alert = %a, %why, "orientation requested, alert left as it was");
                }
            }
            Ok(see_other(&format!("/orientation/{id}")))
        }
        Outcome::Refused(why) => {
            new_page(
                &state,
                &w,
                patient,
                (alert, Some(draft.needs)),
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(why),
            )
            .await
        }
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
    let shown = svc::show(state.ctx(), &w.actor, path_id(id, "demande")?).await?;
    let o = shown.request;
    let recipients = shown
        .recipients
        .into_iter()
        .map(|v| RecipientRow {
            id: v.recipient.establishment.to_string(),
            name: v.name,
            status: status_fr(v.recipient.status).into(),
            reason: v.recipient.reason,
            delay: v
                .recipient
                .responded_at_ms
                .map(|t| duration_fr(t - o.created_at_ms))
                .unwrap_or_else(|| "—".into()),
            can_answer: v.can_answer,
            can_confirm: v.can_confirm,
        })
        .collect();
    let timeline = shown
        .events
        .into_iter()
        .map(|(e, establishment)| EventRow {
            at: paris_time(e.at_ms),
            delay: duration_fr(e.at_ms - o.created_at_ms),
            establishment,
            action: event_fr(&e.action).into(),
            detail: e.detail,
        })
        .collect();
    let page = ShowPage {
        title: "Orientation".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        patient: shown.patient,
        target: o.target.label_fr().into(),
        from: shown.from,
        created: paris_time(o.created_at_ms),
        needs: o.needs,
        wished: o.wished_date,
        urgent: o.urgent,
        status: request_fr(o.status).into(),
        recipients,
        can_cancel: shown.can_cancel,
        timeline,
        error,
        id: o.id.to_string(),
    };
    Ok((status, render(&page)?).into_response())
}

fn event_fr(action: &str) -> &str {
    match action {
        "created" => "demande envoyée",
        "accepted" => "place proposée",
        "refused" => "refus",
        "confirmed" => "place confirmée par le demandeur",
        "cancelled" => "demande annulée",
        other => other,
    }
}

async fn show(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    show_page(&state, &w, &id, StatusCode::OK, None).await
}

/// Checks the form, has the service apply the step, shows the request again.
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
    let input = match kind {
        "answer" => StepInput::Answer {
            establishment: field(&f, "etablissement"),
            accept: field(&f, "reponse") == "accepter",
            reason: field(&f, "motif"),
        },
        "confirm" => StepInput::Confirm(field(&f, "etablissement")),
        _ => StepInput::Cancel,
    };
    let oid = path_id(&id, "demande")?;
    match svc::step(state.ctx(), &w.actor, w.user.id, oid, input).await? {
        Outcome::Done(()) => Ok(see_other(&format!("/orientation/{id}"))),
        Outcome::Refused(why) => {
            show_page(&state, &w, &id, StatusCode::UNPROCESSABLE_ENTITY, Some(why)).await
        }
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
