//! The patient's monitoring pages: the programmes followed, the questionnaire (one
//! question per block, large targets), and right after sending it, what to do now
//! when an answer is serious.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use domain::policy::Principal;
use interop::programme::ItemKind;
use store::monitoring::Enrolment;

use super::web::{Nav, check_csrf, nav, paris_time, render, same_origin};
use crate::error::{AppError, PageError};
use crate::extract::WebUser;
use crate::services::monitoring::{programme, submit};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/suivi", get(list))
        .route("/suivi/{id}", get(form).post(send))
}

async fn own_enrolments(state: &AppState, w: &WebUser) -> Result<Vec<Enrolment>, PageError> {
    let Principal::Patient { patient, .. } = w.actor.principal else {
        return Err(AppError::Forbidden("espace réservé aux patients suivis".into()).into());
    };
    Ok(state
        .store
        .enrolments_of(patient)
        .await?
        .into_iter()
        .filter(|e| e.status == "active")
        .collect())
}

struct Row {
    id: String,
    title: String,
    since: String,
    frequency: i64,
}

#[derive(Template)]
#[template(path = "suivi.html")]
struct ListPage {
    title: String,
    nav: Option<Nav>,
    rows: Vec<Row>,
}

async fn list(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let rows = own_enrolments(&state, &w)
        .await?
        .into_iter()
        .filter_map(|e| {
            programme(&e.programme).map(|p| Row {
                title: p.title.clone(),
                since: paris_time(e.started_at_ms),
                frequency: p.frequency_days,
                id: e.id,
            })
        })
        .collect();
    Ok(render(&ListPage {
        title: "Mon suivi".into(),
        nav: nav(&w),
        rows,
    })?
    .into_response())
}

struct Question {
    id: String,
    text: String,
    options: Vec<(String, String)>,
    boolean: bool,
    unit: Option<String>,
}

#[derive(Template)]
#[template(path = "questionnaire.html")]
struct FormPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    id: String,
    questions: Vec<Question>,
    error: Option<String>,
}

async fn enrolment_of(state: &AppState, w: &WebUser, id: &str) -> Result<Enrolment, PageError> {
    own_enrolments(state, w)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| PageError(AppError::NotFound("suivi introuvable".into())))
}

async fn form_page(
    state: &AppState,
    w: &WebUser,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let e = enrolment_of(state, w, id).await?;
    let p = programme(&e.programme)
        .ok_or_else(|| PageError(AppError::NotFound("programme inconnu".into())))?;
    let questions = p
        .items
        .iter()
        .map(|i| Question {
            id: i.link_id.clone(),
            text: i.text.clone(),
            options: if matches!(i.kind, ItemKind::Grade(_)) {
                i.options
                    .iter()
                    .enumerate()
                    .map(|(g, l)| (g.to_string(), l.clone()))
                    .collect()
            } else {
                vec![]
            },
            boolean: i.kind == ItemKind::Bool,
            unit: i.unit.clone(),
        })
        .collect();
    let page = FormPage {
        title: p.title.clone(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        id: e.id,
        questions,
        error,
    };
    Ok((status, render(&page)?).into_response())
}

async fn form(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    form_page(&state, &w, &id, StatusCode::OK, None).await
}

#[derive(Template)]
#[template(path = "submitted.html")]
struct SubmittedPage {
    title: String,
    nav: Option<Nav>,
    advice: Option<String>,
    warned: bool,
}

async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_str(&body).map_err(|_| {
        PageError(AppError::BadRequest(
            "invalid",
            "formulaire illisible".into(),
        ))
    })?;
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    check_csrf(&w.session.csrf_token, csrf)?;
    let e = enrolment_of(&state, &w, &id).await?;
    match submit(&state, &w.actor, &e, &fields).await {
        Ok(s) => {
            let page = SubmittedPage {
                title: "Réponses envoyées".into(),
                nav: nav(&w),
                warned: !s.alerts.is_empty(),
                advice: s.advice,
            };
            Ok(render(&page)?.into_response())
        }
        Err(AppError::Unprocessable(_, m)) => {
            form_page(&state, &w, &id, StatusCode::UNPROCESSABLE_ENTITY, Some(m)).await
        }
        Err(e) => Err(e.into()),
    }
}
