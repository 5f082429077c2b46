//! The HTML kit every page uses: the layout's navigation, rendering askama
//! templates, the error page, redirects and downloads, form fields, the CSRF
//! and same-origin checks, what a sent file is, and the push socket of live
//! views. No page lives here.

use askama::Template;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use domain::org::Role;
use store::users::UserKind;

use crate::auth::constant_time_eq;
use crate::error::{AppError, PageError};
use crate::extract::WebUser;
pub use crate::layout::{Nav, error_page};
use crate::state::AppState;

pub(crate) fn nav(w: &WebUser) -> Option<Nav> {
    Some(Nav {
        display_name: w.user.display_name.clone(),
        csrf: w.session.csrf_token.clone(),
        professional: w.user.kind == UserKind::Professional,
        admin: w.actor.grants.iter().any(|g| g.role == Role::Admin),
        beds: w
            .actor
            .grants
            .iter()
            .any(|g| matches!(g.role, Role::BedManager | Role::Admin)),
        region: w
            .actor
            .grants
            .iter()
            .any(|g| matches!(g.role, Role::Coordinator | Role::BedManager | Role::Admin)),
        triage: w
            .actor
            .grants
            .iter()
            .any(|g| matches!(g.role, Role::Nurse | Role::Doctor)),
        agenda: can_book(w),
        waiting_room: w.actor.grants.iter().any(|g| g.role == Role::Doctor),
        billing: w
            .actor
            .grants
            .iter()
            .any(|g| matches!(g.role, Role::Admin | Role::Secretary)),
    })
}

/// Whether this user manages the agendas of at least one establishment (books
/// for patients).
pub(crate) fn can_book(w: &WebUser) -> bool {
    !crate::services::schedule::desk_establishments(&w.actor).is_empty()
}

/// A file to save: its type, the name offered, the bytes.
pub(crate) fn download(
    content_type: &str,
    filename: &str,
    body: impl Into<axum::body::Body>,
) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body.into(),
    )
        .into_response()
}

pub(crate) fn render(t: &impl Template) -> Result<Html<String>, AppError> {
    t.render()
        .map(Html)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("template: {e}")))
}

/// Refuses a post whose Origin (when the browser sends one) is not this site.
pub(crate) fn same_origin(state: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let ok = origin == state.config.public_url()
        || origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            == Some(host);
    if ok {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "requête d'une autre origine refusée".into(),
        ))
    }
}

pub(crate) fn check_csrf(expected: &str, given: &str) -> Result<(), AppError> {
    if !expected.is_empty() && constant_time_eq(expected, given) {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "jeton de formulaire (CSRF) absent ou invalide: rechargez la page et recommencez"
                .into(),
        ))
    }
}

/// The fields of an `application/x-www-form-urlencoded` body, repeated keys kept.
/// A page's form post, checked: same origin, readable fields, the session's CSRF
/// token (surrounding spaces ignored). Returns the fields.
pub(crate) fn posted_form(
    state: &AppState,
    headers: &HeaderMap,
    w: &crate::extract::WebUser,
    body: &str,
) -> Result<Vec<(String, String)>, PageError> {
    same_origin(state, headers)?;
    let f = form_fields(body)?;
    check_csrf(&w.session.csrf_token, field(&f, "csrf").trim())?;
    Ok(f)
}

pub(crate) fn form_fields(body: &str) -> Result<Vec<(String, String)>, PageError> {
    serde_urlencoded::from_str(body).map_err(|_| {
        PageError(AppError::BadRequest(
            "invalid",
            "formulaire illisible".into(),
        ))
    })
}

/// A form field as sent (empty when absent).
pub(crate) fn field<'a>(f: &'a [(String, String)], k: &str) -> &'a str {
    f.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The id in a path, of the kind `T`; a malformed one is a thing not found
/// (`what`, in French).
pub(crate) fn path_id<T: std::str::FromStr>(id: &str, what: &str) -> Result<T, AppError> {
    id.parse()
        .map_err(|_| AppError::NotFound(format!("{what} introuvable")))
}

/// Keeps a live view's push socket until its session ends, the page goes or
/// the hub closes: each live event `word` names for this view is sent as that
/// word (the page then fetches its fragment); `lagged` is sent when events
/// were missed, so the page refreshes anyway.
pub(crate) async fn push_live(
    mut socket: axum::extract::ws::WebSocket,
    state: AppState,
    kind: &'static str,
    mut events: tokio::sync::broadcast::Receiver<crate::live::LiveEvent>,
    ended: impl std::future::Future<Output = ()>,
    lagged: &'static str,
    word: impl Fn(crate::live::LiveEvent) -> Option<String>,
) {
    use axum::extract::ws::Message;
    use tokio::sync::broadcast::error::RecvError;
    let _open = state.metrics.websocket(kind);
    let stopping = state.stopping();
    tokio::pin!(ended);
    tokio::pin!(stopping);
    loop {
        let say = tokio::select! {
            () = &mut ended => return,
            () = &mut stopping => {
                restart_close(&mut socket).await;
                return;
            }
            e = events.recv() => match e {
                Ok(e) => word(e),
                Err(RecvError::Lagged(_)) => Some(lagged.to_owned()),
                Err(RecvError::Closed) => return,
            },
            m = socket.recv() => match m {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => None,
            },
        };
        if let Some(w) = say
            && socket.send(Message::Text(w.into())).await.is_err()
        {
            return;
        }
    }
}

/// Tells the client the server restarts (close code 1012, "Service
/// Restart"): the page reconnects, to this node when it is back or another.
pub(crate) async fn restart_close(socket: &mut axum::extract::ws::WebSocket) {
    use axum::extract::ws::{CloseFrame, Message};
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1012,
            reason: "redemarrage du serveur : reconnexion".into(),
        })))
        .await;
}

/// The days of the week as forms list them: (number, name), Monday first.
pub(crate) const DAYS: [(&str, &str); 7] = [
    ("1", "Lundi"),
    ("2", "Mardi"),
    ("3", "Mercredi"),
    ("4", "Jeudi"),
    ("5", "Vendredi"),
    ("6", "Samedi"),
    ("7", "Dimanche"),
];

/// Minutes after midnight as `HH:MM`.
pub(crate) fn hhmm(m: i16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// `HH:MM` as minutes after midnight.
pub(crate) fn minutes(t: &str) -> Option<i16> {
    let (h, m) = t.trim().split_once(':')?;
    Some(h.parse::<i16>().ok()? * 60 + m.parse::<i16>().ok()?)
}

/// An `etablissement` parameter: none when empty, 404 when not an id.
pub(crate) fn establishment_param(v: &str) -> Result<Option<domain::EstablishmentId>, AppError> {
    match v.trim() {
        "" => Ok(None),
        id => id
            .parse()
            .map(Some)
            .map_err(|_| AppError::NotFound("établissement introuvable".into())),
    }
}

/// The establishments to choose from (id, name, the one shown), when more than one.
pub(crate) async fn establishment_choices(
    state: &AppState,
    mine: &[domain::EstablishmentId],
    shown: domain::EstablishmentId,
) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    if mine.len() > 1 {
        for e in mine {
            out.push((
                e.to_string(),
                crate::services::directory::establishment_name(state.ctx(), *e).await,
                *e == shown,
            ));
        }
    }
    out
}

/// The rows of a form's table whose columns each repeat one field name
/// (`jour`, `debut`, `fin`…), in order; a row whose first column is empty is
/// left out. `read` turns a row's values into `T`, with an error that names
/// the row's line.
pub(crate) fn table_rows<T, const N: usize>(
    f: &[(String, String)],
    columns: [&str; N],
    read: impl Fn([&str; N], &dyn Fn(&str) -> AppError) -> Result<T, AppError>,
) -> Result<Vec<T>, AppError> {
    let cols = columns.map(|k| {
        f.iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<&str>>()
    });
    let rows = cols.first().map_or(0, Vec::len);
    let mut out = Vec::new();
    for i in 0..rows {
        let values = cols.each_ref().map(|c| c.get(i).copied().unwrap_or(""));
        if values.first().is_none_or(|v| v.trim().is_empty()) {
            continue;
        }
        let line = i + 1;
        let bad = |what: &str| AppError::BadRequest("invalid", format!("ligne {line} : {what}"));
        out.push(read(values, &bad)?);
    }
    Ok(out)
}
