//! The consultation room: the doctor lets the waiting patient in, then both
//! browsers meet on `/consultation/{id}`. The server only relays: WebRTC
//! signalling (offer, answer, ICE candidates), chat lines and what each side
//! does (joined, camera on or off, left) go from one participant's WebSocket to
//! the other's; the media flows between the browsers. STUN/TURN servers are
//! configurable (`PARCOURS_ICE_SERVERS`); none are needed on one network.
//!
//! Locked: the patient enters only once the doctor has let them in, and only
//! the patient and the doctor of the appointment ever. Each room has its own
//! channel; each socket is rate-limited (messages and bytes), checked for its
//! `Origin`, and closed when its session ends.

use askama::Template;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::kit::{Nav, check_csrf, nav, posted_form, render, same_origin, see_other};
use crate::error::{AppError, PageError};
use crate::extract::WebUser;
use crate::routes::kit::path_id;
use crate::state::AppState;

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
    Ok(room::participant(
        state.ctx(),
        &w.actor,
        w.user.id,
        path_id(id, "rendez-vous")?,
    )
    .await?)
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
    let a = room::let_in(
        state.ctx(),
        &w.actor,
        w.user.id,
        path_id(&id, "rendez-vous")?,
    )
    .await?;
    Ok(see_other(&format!("/consultation/{}", a.id)))
}

#[derive(Template)]
#[template(path = "room.html")]
pub(crate) struct RoomPage {
    pub(crate) title: String,
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: String,
    pub(crate) id: String,
    /// `doctor`, `patient` or `guest`.
    pub(crate) role: String,
    /// The relay's name of this side (`guest-ID` for a guest).
    pub(crate) side: String,
    /// The name the others see.
    pub(crate) me: String,
    /// Who is met ("Dr Claire Martin"; a guest sees no patient's name).
    pub(crate) other: String,
    pub(crate) ice: String,
    /// The relay's WebSocket path.
    pub(crate) ws: String,
    /// Where to go once the consultation ends.
    pub(crate) after: String,
    /// Guests waiting to be let in, as JSON (the doctor's page).
    pub(crate) waiting: String,
}

/// The ICE servers pages are given.
pub(crate) fn ice(state: &AppState) -> String {
    state
        .config
        .ice_servers
        .clone()
        .unwrap_or_else(|| "[]".into())
}

async fn page(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (a, role) = participant(&state, &w, &id).await?;
    if room::closed(state.ctx(), a.id).await {
        // Closed: its page has what follows (payment, prescription).
        return Ok(see_other(&format!("/rdv/{}", a.id)));
    }
    let other = room::other_side(state.ctx(), &w.actor, &a, role).await?;
    let waiting: Vec<serde_json::Value> =
        crate::services::guests::list(state.ctx(), &w.actor, w.user.id, a.id)
            .await?
            .into_iter()
            .filter(|g| {
                g.ready_at_ms.is_some() && g.admitted_at_ms.is_none() && g.revoked_at_ms.is_none()
            })
            .map(|g| serde_json::json!({"guest": g.id, "name": g.name}))
            .collect();
    let page = RoomPage {
        title: "Téléconsultation".into(),
        nav: nav(&w),
        csrf: w.session.csrf_token.clone(),
        id: a.id.to_string(),
        role: role.into(),
        side: role.into(),
        me: if role == room::DOCTOR {
            "Médecin"
        } else {
            "Patient"
        }
        .into(),
        other,
        ice: ice(&state),
        ws: format!("/consultation/{}/ws", a.id),
        after: format!("/rdv/{}", a.id),
        waiting: serde_json::Value::Array(waiting).to_string(),
    };
    Ok(render(&page)?.into_response())
}

/// `GET /consultation/{id}/ws`: relays each text message to the other
/// participant (never back to its sender); says `{"type":"peer","event":"joined"}`
/// and `"left"` when the other comes and goes.
async fn relay_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    ws: WebSocketUpgrade,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    let (a, role) = participant(&state, &w, &id).await?;
    let ended = Box::pin(crate::extract::session_ended(
        state.clone(),
        w.session.clone(),
    ));
    Ok(ws
        .read_buffer_size(64 * 1024)
        .write_buffer_size(64 * 1024)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| relay(socket, state, a.id.to_string(), role.to_owned(), ended)))
}

/// Whether a relayed message is for `side`: one naming another (`"to"`) is
/// not; one putting `side` out (a revoked guest) says so.
fn addressed(text: &str, side: &str) -> (bool, bool) {
    if !text.contains("\"to\"") && !text.contains("\"revoked\"") {
        return (true, false);
    }
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let to = v.get("to").and_then(serde_json::Value::as_str);
    let revoked = v.get("type").and_then(serde_json::Value::as_str) == Some("revoked")
        && v.get("guest")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|g| side == crate::services::guests::side(g));
    (to.is_none_or(|t| t == side), revoked)
}

/// A token bucket per socket: `MESSAGES_PER_SECOND` messages and
/// `BYTES_PER_SECOND` bytes on average, bursts up to ten seconds' worth (a
/// WebRTC negotiation sends a few dozen ICE candidates at once).
struct Budget {
    messages: f64,
    bytes: f64,
    at: std::time::Instant,
}

const MESSAGES_PER_SECOND: f64 = 20.0;
const BYTES_PER_SECOND: f64 = 64.0 * 1024.0;
const BURST_SECONDS: f64 = 10.0;

impl Budget {
    fn new() -> Budget {
        Budget {
            messages: MESSAGES_PER_SECOND * BURST_SECONDS,
            bytes: BYTES_PER_SECOND * BURST_SECONDS,
            at: std::time::Instant::now(),
        }
    }

    /// Spends one message of `len` bytes; `false` when over budget.
    fn spend(&mut self, len: usize) -> bool {
        let dt = self.at.elapsed().as_secs_f64();
        self.at = std::time::Instant::now();
        self.messages =
            (self.messages + dt * MESSAGES_PER_SECOND).min(MESSAGES_PER_SECOND * BURST_SECONDS);
        self.bytes = (self.bytes + dt * BYTES_PER_SECOND).min(BYTES_PER_SECOND * BURST_SECONDS);
        #[allow(clippy::cast_precision_loss)]
        let len = len as f64;
        if self.messages < 1.0 || self.bytes < len {
            return false;
        }
        self.messages -= 1.0;
        self.bytes -= len;
        true
    }
}

/// Relays a room's messages between `role`'s socket and the others' until
/// it closes, the application stops, or `ended` (the session's end) comes.
pub(crate) async fn relay(
    mut socket: WebSocket,
    state: AppState,
    room: String,
    role: String,
    mut ended: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) {
    let role = role.as_str();
    let mut rx = state.live.rooms().channel(&room).subscribe();
    let mut budget = Budget::new();
    let stopping = state.stopping();
    tokio::pin!(stopping);
    let _open = state.metrics.websocket("consultation_room");
    state.live.room_send(
        &room,
        role,
        serde_json::json!({"type": "peer", "event": "joined", "from": role}).to_string(),
    );
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Ok(m) if m.from != role => {
                    let (for_me, put_out) = addressed(&m.text, role);
                    if put_out {
                        let _ = socket
                            .send(Message::Text(m.text.into()))
                            .await;
                        let _ = socket
                            .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                                code: 1008,
                                reason: "invitation retirée".into(),
                            })))
                            .await;
                        break;
                    }
                    if for_me && socket.send(Message::Text(m.text.into())).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            m = socket.recv() => match m {
                Some(Ok(Message::Text(t))) => {
                    if !budget.spend(t.len()) {
                        tracing::warn!("consultation room: socket over its message budget, closed");
                        let _ = socket
                            .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                                code: 1008,
                                reason: "trop de messages".into(),
                            })))
                            .await;
                        break;
                    }
                    state.live.room_send(&room, role, t.as_str().to_owned());
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            () = &mut stopping => {
                super::kit::restart_close(&mut socket).await;
                break;
            }
            () = &mut ended => {
                let _ = socket
                    .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                        code: 1008,
                        reason: "session terminée".into(),
                    })))
                    .await;
                break;
            }
        }
    }
    drop(rx);
    state.live.room_send(
        &room,
        role,
        serde_json::json!({"type": "peer", "event": "left", "from": role}).to_string(),
    );
    state.live.rooms().left(&room);
}

use crate::services::room::{self, MAX_FILE};

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
    let (name, bytes) = file.unwrap_or_default();
    let (saved, name) = room::share(state.ctx(), &w.actor, (&a, role), &name, &bytes).await?;
    Ok(axum::Json(serde_json::json!({"id": saved, "name": name})).into_response())
}
