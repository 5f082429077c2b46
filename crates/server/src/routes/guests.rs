//! A guest in a video consultation. The doctor invites from the
//! appointment's page (`/rdv/{id}/invites`), withdraws an invitation, and
//! lets a ready guest in from the room. The guest, with no account, follows
//! the link (`/invite/{token}`): the first browser to open it keeps it (a
//! cookie of its own), checks camera and microphone, says they are ready,
//! waits, and enters the room once let in — the call only, no record. The
//! rules are `services::guests`'.

use askama::Template;
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::kit::{Nav, field, nav, path_id, posted_form, render, same_origin, see_other};
use crate::error::{AppError, PageError};
use crate::extract::WebUser;
use crate::services::guests::{self, Stage};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rdv/{id}/invites", post(invite))
        .route("/rdv/{id}/invites/{guest}/retirer", post(revoke))
        .route("/consultation/{id}/invites/{guest}/entrer", post(admit))
        .route("/invite/{token}", get(guest_page))
        .route("/invite/{token}/pret", post(ready))
        .route("/invite/{token}/etat", get(stage))
        .route("/invite/{token}/salle", get(guest_room))
        .route("/invite/{token}/ws", get(guest_ws))
        .route("/invite/fin", get(ended))
        .route("/static/invite.js", get(invite_js))
}

async fn invite_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/invite.js"),
    )
}

#[derive(Template)]
#[template(path = "guest_invited.html")]
struct InvitedPage {
    title: String,
    nav: Option<Nav>,
    id: String,
    url: String,
    sent: Option<&'static str>,
}

/// `POST /rdv/{id}/invites` (`nom`, `qualite`, `contact`): the link, shown
/// once, and where it was sent.
async fn invite(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let aid = path_id(&id, "rendez-vous")?;
    let input = (field(&f, "nom"), field(&f, "qualite"), field(&f, "contact"));
    let done = guests::invite(state.ctx(), &w.actor, w.user.id, aid, input).await?;
    let page = InvitedPage {
        title: "Invitation".into(),
        nav: nav(&w),
        id,
        url: done.url,
        sent: done.sent,
    };
    Ok(render(&page)?.into_response())
}

/// `POST /rdv/{id}/invites/{guest}/retirer`.
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path((id, guest)): Path<(String, String)>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    let aid = path_id(&id, "rendez-vous")?;
    guests::revoke(state.ctx(), &w.actor, w.user.id, aid, &guest).await?;
    Ok(see_other(&format!("/rdv/{id}")))
}

/// `POST /consultation/{id}/invites/{guest}/entrer` (from the room's page):
/// 204 once let in.
async fn admit(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path((id, guest)): Path<(String, String)>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    let aid = path_id(&id, "rendez-vous")?;
    guests::admit(state.ctx(), &w.actor, w.user.id, aid, &guest).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The guest's browser: its own cookie (set on the first visit), kept as a
/// hash by the invitation.
const BROWSER_COOKIE: &str = "parcours_invite";

fn browser(headers: &HeaderMap) -> Option<String> {
    crate::extract::cookie(headers, BROWSER_COOKIE).filter(|c| c.len() >= 32)
}

#[derive(Template)]
#[template(path = "invite.html")]
struct GuestPage {
    title: String,
    nav: Option<Nav>,
    token: String,
    name: String,
    when: String,
    waiting: bool,
}

/// `GET /invite/{token}`: the devices check and "I am ready", or the wait.
async fn guest_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let (cookie, fresh) = match browser(&headers) {
        Some(c) => (c, false),
        None => (crate::auth::random_token(), true),
    };
    let (g, a, stage) =
        guests::open(state.ctx(), &token, &crate::auth::token_hash(&cookie)).await?;
    if stage == Stage::Admitted {
        return Ok(see_other(&format!("/invite/{token}/salle")));
    }
    let page = GuestPage {
        title: "Invitation à une téléconsultation".into(),
        nav: None,
        token,
        name: g.name,
        when: crate::fmt::paris_time(a.start_ms),
        waiting: stage == Stage::Waiting,
    };
    let mut r = render(&page)?.into_response();
    if fresh {
        r.headers_mut().append(
            header::SET_COOKIE,
            super::web::cookie_with(&state, BROWSER_COOKIE, &cookie, "/invite", None, "Strict"),
        );
    }
    Ok(r)
}

/// The guest of `token` in this browser (403 without its cookie).
async fn guest_of(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
) -> Result<(store::guests::Guest, domain::schedule::Appointment, Stage), AppError> {
    let cookie = browser(headers).ok_or_else(|| {
        AppError::Forbidden("ouvrez d'abord le lien d'invitation dans ce navigateur".into())
    })?;
    guests::open(state.ctx(), token, &crate::auth::token_hash(&cookie)).await
}

/// `POST /invite/{token}/pret`.
async fn ready(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    let cookie = browser(&headers).ok_or_else(|| {
        AppError::Forbidden("ouvrez d'abord le lien d'invitation dans ce navigateur".into())
    })?;
    guests::ready(state.ctx(), &token, &crate::auth::token_hash(&cookie)).await?;
    Ok(see_other(&format!("/invite/{token}")))
}

/// `GET /invite/{token}/etat`: `{"stage": "opened"|"waiting"|"admitted"}`.
async fn stage(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let (_, _, stage) = guest_of(&state, &headers, &token).await?;
    let code = match stage {
        Stage::Opened => "opened",
        Stage::Waiting => "waiting",
        Stage::Admitted => "admitted",
    };
    Ok(axum::Json(serde_json::json!({ "stage": code })).into_response())
}

/// `GET /invite/{token}/salle`: the room, once let in.
async fn guest_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let (g, a, stage) = guest_of(&state, &headers, &token).await?;
    if stage != Stage::Admitted {
        return Ok(see_other(&format!("/invite/{token}")));
    }
    let page = super::room::RoomPage {
        title: "Téléconsultation".into(),
        nav: None,
        csrf: String::new(),
        id: a.id.to_string(),
        role: "guest".into(),
        side: guests::side(&g.id),
        me: format!("{} ({})", g.name, guests::kind_label(&g.kind)),
        other: crate::services::directory::user_name(state.ctx(), a.practitioner).await?,
        ice: super::room::ice(&state),
        ws: format!("/invite/{token}/ws"),
        after: "/invite/fin".into(),
        waiting: "[]".into(),
    };
    Ok(render(&page)?.into_response())
}

/// `GET /invite/{token}/ws`: the guest's side of the relay, once let in;
/// their coming and going is traced.
async fn guest_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    ws: WebSocketUpgrade,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    let (g, a, stage) = guest_of(&state, &headers, &token).await?;
    if stage != Stage::Admitted {
        return Err(
            AppError::Forbidden("le médecin ne vous a pas encore fait entrer".into()).into(),
        );
    }
    Ok(ws
        .read_buffer_size(64 * 1024)
        .write_buffer_size(64 * 1024)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            let _ = guests::presence(state.ctx(), &g, &a, true).await;
            super::room::relay(
                socket,
                state.clone(),
                a.id.to_string(),
                guests::side(&g.id),
                Box::pin(std::future::pending()),
            )
            .await;
            let _ = guests::presence(state.ctx(), &g, &a, false).await;
        }))
}

#[derive(Template)]
#[template(path = "invite_end.html")]
struct EndPage {
    title: String,
    nav: Option<Nav>,
}

/// `GET /invite/fin`.
async fn ended() -> Result<Response, PageError> {
    Ok(render(&EndPage {
        title: "Consultation terminée".into(),
        nav: None,
    })?
    .into_response())
}
