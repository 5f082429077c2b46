//! The virtual waiting room. The patient opens their video appointment's room
//! page, checks camera, microphone and network, then says they are ready: their
//! page keeps a WebSocket open, which is their presence (connected or not, since
//! when). The practitioner's waiting list shows it live: the list is pushed over
//! WebSocket when anyone enters, leaves or loses the connection.

use askama::Template;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use domain::UserId;

use super::kit::{Nav, nav, render};
use crate::error::{AppError, PageError};
use crate::extract::WebUser;
use crate::fmt::paris_time;
use crate::routes::kit::path_id;
use crate::services::room as waiting;
use crate::state::{AppState, LiveEvent};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rdv/{id}/salle", get(room))
        .route("/rdv/{id}/salle/ws", get(presence_ws))
        .route("/salle-attente", get(list))
        .route("/salle-attente/table", get(table))
        .route("/salle-attente/ws", get(list_ws))
        .route("/static/salle.js", get(salle_js))
}

/// The waiting room's script (device check, presence).
async fn salle_js() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        include_str!("../../static/salle.js"),
    )
}

/// The patient's own booked video appointment.
async fn own_video_appointment(
    state: &AppState,
    w: &WebUser,
    id: &str,
) -> Result<store::schedule::Appointment, PageError> {
    Ok(crate::services::room::own_video_appointment(
        state.ctx(),
        &w.actor,
        path_id(id, "rendez-vous")?,
    )
    .await?)
}

#[derive(Template)]
#[template(path = "waiting_room.html")]
struct RoomPage {
    title: String,
    nav: Option<Nav>,
    id: String,
    when: String,
    practitioner: String,
}

/// `GET /rdv/{id}/salle`: the device check and the "I am ready" button.
async fn room(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let a = own_video_appointment(&state, &w, &id).await?;
    let page = RoomPage {
        title: "Salle d'attente".into(),
        nav: nav(&w),
        id: a.id.clone().to_string(),
        when: paris_time(a.start_ms),
        practitioner: crate::services::directory::user_name(state.ctx(), a.practitioner).await?,
    };
    Ok(render(&page)?.into_response())
}

/// `GET /rdv/{id}/salle/ws`: open while the patient waits. The page sends what
/// the device check found (`{"camera":true,"microphone":true}`); closing the
/// page (or losing the network) shows them disconnected, still in the list.
async fn presence_ws(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    ws: WebSocketUpgrade,
) -> Result<Response, PageError> {
    super::kit::same_origin(&state, &headers)?;
    let a = own_video_appointment(&state, &w, &id).await?;
    let session = w.session.clone();
    Ok(ws
        .read_buffer_size(1024)
        .write_buffer_size(1024)
        .max_message_size(1024)
        .on_upgrade(move |socket| wait(socket, state, a, session)))
}

async fn wait(
    mut socket: WebSocket,
    state: AppState,
    a: store::schedule::Appointment,
    session: store::users::Session,
) {
    let ended = crate::extract::session_ended(state.clone(), session);
    tokio::pin!(ended);
    let stopping = state.stopping();
    tokio::pin!(stopping);
    let _open = state.metrics.websocket("waiting_patient");
    let room = a.id.to_string();
    // The presence is this connection's until another one (a reconnection,
    // maybe on another node) takes it; this node's timer says it is alive.
    let connection = uuid::Uuid::new_v4().to_string();
    let open_now = match waiting::arrived(state.ctx(), &a, &connection).await {
        Ok(open) => open,
        Err(e) => {
            tracing::warn!(error = %e, "waiting room: presence not recorded");
            false
        }
    };
    let mut open = state.live.rooms().signal(&room, open_now);
    // Already let in (a reconnection after the doctor opened the room).
    let mut told = false;
    loop {
        if !told && *open.borrow_and_update() {
            told = true;
            if socket.send(Message::Text("entrer".into())).await.is_err() {
                break;
            }
        }
        tokio::select! {
            () = &mut ended => break,
            // The node stops: the page reconnects (here when back, or to
            // another node), the presence kept meanwhile, not ended.
            () = &mut stopping => {
                super::kit::restart_close(&mut socket).await;
                return;
            }
            changed = open.changed() => if changed.is_err() {
                // The room was forgotten (consultation closed): listen afresh.
                let open_now = waiting::is_open(state.ctx(), a.id).await.unwrap_or(false);
                open = state.live.rooms().signal(&room, open_now);
            },
            m = socket.recv() => match m {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                    let flag = |k: &str| v.get(k).and_then(serde_json::Value::as_bool).unwrap_or(false);
                    if let Err(e) = waiting::devices(state.ctx(), &a, &connection, flag("camera"), flag("microphone")).await {
                        tracing::warn!(error = %e, "waiting room: devices not recorded");
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    drop(open);
    state.live.rooms().forget_idle(&room);
    if let Err(e) = waiting::left(state.ctx(), &a, &connection).await {
        tracing::warn!(error = %e, "waiting room: departure not recorded");
    }
}

/// (patient, appointment time, state, since, devices).
type Waiting = (String, String, String, String, String);

#[derive(Template)]
#[template(path = "waiting_table.html")]
struct Table {
    rows: Vec<Waiting>,
}

#[derive(Template)]
#[template(path = "waiting_list.html")]
struct ListPage {
    title: String,
    nav: Option<Nav>,
    rows: Vec<Waiting>,
}

fn practitioner_of(w: &WebUser) -> Result<UserId, PageError> {
    if w.actor
        .grants
        .iter()
        .any(|g| g.role == domain::org::Role::Doctor)
    {
        Ok(w.user.id)
    } else {
        Err(AppError::Forbidden("salle d'attente réservée aux médecins".into()).into())
    }
}

/// Today's video appointments of this doctor with their patients' presence;
/// showing a name is an audited identity read.
async fn rows(state: &AppState, w: &WebUser) -> Result<Vec<Waiting>, PageError> {
    let me = practitioner_of(w)?;
    let list = waiting::todays_video(state.ctx(), &w.actor, &w.session.token_hash, me).await?;
    let mut out = Vec::new();
    for (a, name, presence) in list {
        let (status, since, devices) = match presence {
            Some(p) => (
                if p.connected {
                    "en attente"
                } else {
                    "déconnecté(e)"
                }
                .to_owned(),
                paris_time(p.since_ms),
                format!(
                    "caméra {}, micro {}",
                    if p.camera { "ok" } else { "non vérifiée" },
                    if p.microphone { "ok" } else { "non vérifié" }
                ),
            ),
            None => (
                "pas encore arrivé(e)".to_owned(),
                String::new(),
                String::new(),
            ),
        };
        out.push((name, paris_time(a.start_ms), status, since, devices));
    }
    Ok(out)
}

async fn list(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let rows = rows(&state, &w).await?;
    Ok(render(&ListPage {
        title: "Salle d'attente".into(),
        nav: nav(&w),
        rows,
    })?
    .into_response())
}

async fn table(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let rows = rows(&state, &w).await?;
    Ok(render(&Table { rows })?.into_response())
}

/// `GET /salle-attente/ws`: says `salle` when this doctor's waiting room changes.
async fn list_ws(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    w: WebUser,
    ws: WebSocketUpgrade,
) -> Result<Response, PageError> {
    super::kit::same_origin(&state, &headers)?;
    let me = practitioner_of(&w)?;
    let events = state.live.events();
    let ended = crate::extract::session_ended(state.clone(), w.session.clone());
    Ok(ws
        .read_buffer_size(1024)
        .write_buffer_size(1024)
        .max_message_size(1024)
        .on_upgrade(move |socket| {
            super::kit::push_live(
                socket,
                state,
                "waiting_room",
                events,
                ended,
                "salle",
                move |e| {
                    matches!(e, LiveEvent::WaitingRoom(u) if u == me).then(|| "salle".to_owned())
                },
            )
        }))
}
