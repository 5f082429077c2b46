//! The operator's pages of an establishment's administrator: outbound
//! messages that failed for good (`/admin/envois`: revive, discard) and the
//! HL7 message page's replay and purge. Decisions are
//! `services::dead_letters`'; these handlers read forms and render.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::kit::{Nav, nav, posted_form, render, see_other};
use crate::error::PageError;
use crate::extract::WebUser;
use crate::fmt::paris_time;
use crate::services::dead_letters;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/envois", get(dead_letters_page))
        .route("/admin/envois/{id}/relancer", post(revive))
        .route("/admin/envois/{id}/abandonner", post(discard))
        .route("/admin/hl7/{id}/rejouer", post(replay))
        .route("/admin/hl7/{id}/supprimer", post(purge))
}

struct Row {
    id: String,
    dead_at: String,
    establishment: String,
    topic: String,
    destination: String,
    attempts: i64,
    reason: String,
}

#[derive(Template)]
#[template(path = "admin_dead_letters.html")]
struct DeadLettersPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    rows: Vec<Row>,
    notice: Option<String>,
}

/// A topic as the page names it.
fn topic_fr(topic: &str) -> String {
    match topic {
        crate::outbound::ORU_TOPIC => "résultats (ORU)".into(),
        crate::outbound::SIU_TOPIC => "rendez-vous (SIU)".into(),
        crate::outbound::MHD_TOPIC => "document (MHD, DMP)".into(),
        crate::outbound::NOTIFY_TOPIC => "avis au patient".into(),
        crate::outbound::MSS_TOPIC => "messagerie sécurisée".into(),
        crate::services::subscriptions::TOPIC => "notification FHIR".into(),
        other => other.to_owned(),
    }
}

async fn dead_letters_page(
    State(state): State<AppState>,
    w: WebUser,
) -> Result<Response, PageError> {
    screen(&state, &w, None).await
}

async fn screen(
    state: &AppState,
    w: &WebUser,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let rows = dead_letters::list(state.ctx(), &w.actor)
        .await?
        .into_iter()
        .map(|d| Row {
            dead_at: d.message.dead_at_ms.map(paris_time).unwrap_or_default(),
            establishment: d.establishment,
            topic: topic_fr(&d.message.topic),
            destination: d.message.destination.clone(),
            attempts: d.message.attempts,
            reason: d.message.last_error.clone().unwrap_or_default(),
            id: d.message.id,
        })
        .collect();
    Ok(render(&DeadLettersPage {
        title: "Envois en échec".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        rows,
        notice,
    })?
    .into_response())
}

async fn revive(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    dead_letters::revive(state.ctx(), &w.actor, &id).await?;
    screen(
        &state,
        &w,
        Some("Envoi relancé : il repart maintenant.".into()),
    )
    .await
}

async fn discard(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    dead_letters::discard(state.ctx(), &w.actor, &id).await?;
    screen(&state, &w, Some("Envoi abandonné.".into())).await
}

async fn replay(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    dead_letters::replay_hl7(state.ctx(), &w.actor, &id).await?;
    Ok(see_other("/admin/hl7"))
}

async fn purge(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    dead_letters::purge_hl7(state.ctx(), &w.actor, &id).await?;
    Ok(see_other("/admin/hl7"))
}
