//! The consultation room: the doctor lets the waiting patient in, then both
//! browsers meet on `/consultation/{id}`. The server only relays: WebRTC
//! signalling (offer, answer, ICE candidates), chat lines and what each side
//! does (joined, camera on or off, left) go from one participant's WebSocket to
//! the other's; the media flows between the browsers. STUN/TURN servers are
//! configurable (`PARCOURS_ICE_SERVERS`); none are needed on one network.

use askama::Template;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::policy::Principal;
use domain::schedule::Mode;

use super::web::{Nav, check_csrf, nav, posted_form, render, same_origin, see_other};
use crate::error::{AppError, PageError};
use crate::extract::WebUser;
use crate::state::{AppState, RoomMessage};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rdv/{id}/entrer", post(let_in))
        .route("/consultation/{id}", get(page))
        .route("/consultation/{id}/ws", get(relay_ws))
        .route(
            "/consultation/{id}/fichier",
            post(share).layer(axum::extract::DefaultBodyLimit::max(MAX_FILE + 64 * 1024)),
        )
        .route("/static/room.js", get(room_js))
}

async fn room_js() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        include_str!("../../static/room.js"),
    )
}

/// Who is in this room: `doctor` (the practitioner of the video appointment) or
/// `patient` (its patient); anyone else gets 404.
async fn participant(
    state: &AppState,
    w: &WebUser,
    id: &str,
) -> Result<(store::schedule::Appointment, &'static str), PageError> {
    let not_found = || PageError(AppError::NotFound("consultation introuvable".into()));
    let a = state.store.appointment(id).await.map_err(|_| not_found())?;
    if a.status != "booked" || a.mode != Mode::Tele {
        return Err(not_found());
    }
    match w.actor.principal {
        Principal::Patient { patient, .. } if patient == a.patient => Ok((a, "patient")),
        _ if w.user.id == a.practitioner => Ok((a, "doctor")),
        _ => Err(not_found()),
    }
}

/// `POST /rdv/{id}/entrer`: the doctor lets the patient in; the patient's
/// waiting-room page moves to the room.
async fn let_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    let (a, role) = participant(&state, &w, &id).await?;
    if role != "doctor" {
        return Err(AppError::Forbidden("c'est le médecin qui fait entrer".into()).into());
    }
    state.open_room(&a.id);
    Ok(see_other(&format!("/consultation/{}", a.id)))
}

#[derive(Template)]
#[template(path = "room.html")]
struct RoomPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    id: String,
    role: String,
    other: String,
    ice: String,
}

async fn page(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (a, role) = participant(&state, &w, &id).await?;
    if state.store.consultation(&a.id).await.is_ok() {
        // Closed: its page has what follows (payment, prescription).
        return Ok(see_other(&format!("/rdv/{}", a.id)));
    }
    let other = if role == "doctor" {
        crate::services::patients::read(&state, &w.actor, a.patient)
            .await?
            .traits
            .display_name()
    } else {
        state.store.user(a.practitioner).await?.display_name
    };
    let page = RoomPage {
        title: "Téléconsultation".into(),
        nav: nav(&w),
        csrf: w.session.csrf_token.clone(),
        id: a.id,
        role: role.into(),
        other,
        ice: state
            .config
            .ice_servers
            .clone()
            .unwrap_or_else(|| "[]".into()),
    };
    Ok(render(&page)?.into_response())
}

/// `GET /consultation/{id}/ws`: relays each text message to the other
/// participant (never back to its sender); says `{"type":"peer","event":"joined"}`
/// and `"left"` when the other comes and goes.
async fn relay_ws(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
    ws: WebSocketUpgrade,
) -> Result<Response, PageError> {
    let (a, role) = participant(&state, &w, &id).await?;
    Ok(ws
        .read_buffer_size(64 * 1024)
        .write_buffer_size(64 * 1024)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| relay(socket, state, a.id, role)))
}

async fn relay(mut socket: WebSocket, state: AppState, room: String, role: &'static str) {
    let mut rx = state.room_messages.subscribe();
    let send = |text: String| {
        let _ = state.room_messages.send(RoomMessage {
            room: room.clone(),
            from: role,
            text,
        });
    };
    send(r#"{"type":"peer","event":"joined"}"#.into());
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Ok(m) if m.room == room && m.from != role => {
                    if socket.send(Message::Text(m.text.into())).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            m = socket.recv() => match m {
                Some(Ok(Message::Text(t))) => send(t.as_str().to_owned()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    send(r#"{"type":"peer","event":"left"}"#.into());
}

/// Largest file shared in a consultation.
const MAX_FILE: usize = 5 * 1024 * 1024;

/// `POST /consultation/{id}/fichier` (multipart: `csrf`, `fichier`): either
/// participant shares a photo or a PDF; it joins the patient's record (audited)
/// and the other side is told at once. Answers `{"id", "name"}`.
async fn share(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    mut form: axum::extract::Multipart,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    let (a, role) = participant(&state, &w, &id).await?;
    let bad = |m: &str| AppError::BadRequest("invalid", m.to_owned());
    let (mut csrf, mut file) = (String::new(), None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| bad(&format!("formulaire illisible : {e}")))?
    {
        let name = field.name().unwrap_or("").to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let bytes = field
            .bytes()
            .await
            .map_err(|_| AppError::TooLarge(MAX_FILE))?;
        match name.as_str() {
            "csrf" => csrf = String::from_utf8_lossy(&bytes).trim().to_owned(),
            "fichier" => file = Some((file_name.unwrap_or_default(), bytes)),
            _ => {}
        }
    }
    check_csrf(&w.session.csrf_token, &csrf)?;
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return Err(
            AppError::Unprocessable("business-rule", "choisissez un fichier".into()).into(),
        );
    };
    if bytes.len() > MAX_FILE {
        return Err(AppError::TooLarge(MAX_FILE).into());
    }
    let Some(content_type) = super::web::sniff_type(&bytes) else {
        return Err(AppError::Unprocessable(
            "business-rule",
            "seuls les photos (JPEG, PNG) et les PDF sont acceptés".into(),
        )
        .into());
    };
    let grant = if role == "doctor" {
        let p = state.store.patient(a.patient).await?;
        let scope = crate::services::patients::scope_of(&state, &p).await?;
        match domain::policy::authorize_patient(
            &w.actor,
            domain::policy::PatientAction::WriteClinical,
            &scope,
        ) {
            domain::policy::Decision::Allow(g) => g,
            domain::policy::Decision::Deny(why) => {
                return Err(AppError::Forbidden(why.into()).into());
            }
        }
    } else {
        None
    };
    let who = domain::audit::AuditActor::new(&w.actor, grant);
    let saved = state
        .store
        .save_attachment(a.patient, content_type, &bytes, &who, state.now_ms())
        .await?;
    let name: String = name.chars().filter(|c| !c.is_control()).take(120).collect();
    let message = serde_json::json!({"type": "file", "id": saved, "name": name}).to_string();
    let _ = state.room_messages.send(RoomMessage {
        room: a.id,
        from: role,
        text: message,
    });
    Ok(axum::Json(serde_json::json!({"id": saved, "name": name})).into_response())
}
