//! One's own account and the patient portal's doors: "mot de passe oublié",
//! my open sessions (close one), the desk inviting a patient to the portal
//! (a link by e-mail or a printed page with its QR code), and the help page.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::PatientId;

use super::kit::{
    Nav, field, form_fields, nav, path_id, posted_form, render, same_origin, see_other,
};
use crate::error::{AppError, PageError};
use crate::extract::Query;
use crate::extract::{ClientAddr, WebUser};
use crate::fmt::paris_time;
use crate::limiter::Endpoint;
use crate::services::{accounts, help};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/mot-de-passe-oublie", get(forgot_page).post(forgot))
        .route("/mes-connexions", get(sessions_page))
        .route("/mes-connexions/fermer", post(close_session))
        .route("/patients/{id}/portail", post(invite_patient))
        .route("/aide", get(help_page))
        .route("/static/check.js", get(check_js))
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    sent: bool,
}

async fn forgot_page() -> Result<Response, PageError> {
    let page = ForgotPage {
        title: "Mot de passe oublié".into(),
        nav: None,
        csrf: String::new(),
        sent: false,
    };
    Ok(render(&page)?.into_response())
}

/// The same answer whether the account exists or not; limited per address
/// and per login like the password step.
async fn forgot(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: String,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    let f = form_fields(&body)?;
    let login = field(&f, "login").trim();
    if let Err(retry) = state
        .limiter
        .check(Endpoint::PasswordReset, ip, Some(login), state.now_ms())
        .await
    {
        return Err(AppError::TooMany(retry).into());
    }
    accounts::forgotten_password(state.ctx(), login).await?;
    let page = ForgotPage {
        title: "Mot de passe oublié".into(),
        nav: None,
        csrf: String::new(),
        sent: true,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    /// (handle, opened, expires, this one)
    sessions: Vec<(String, String, String, bool)>,
    /// Providers this account may link its identity at: (id, label).
    providers: Vec<(String, String)>,
}

async fn sessions_page(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let sessions = accounts::my_sessions(state.ctx(), w.user.id)
        .await?
        .into_iter()
        .map(|s| {
            let this = s.token_hash == w.session.token_hash;
            (
                s.token_hash,
                paris_time(s.created_at_ms),
                paris_time(s.expires_at_ms),
                this,
            )
        })
        .collect();
    let page = SessionsPage {
        title: "Mes connexions".into(),
        nav: nav(&w),
        csrf: w.session.csrf_token.clone(),
        sessions,
        providers: state
            .oidc
            .for_accounts(w.user.kind == store::users::UserKind::Patient),
    };
    Ok(render(&page)?.into_response())
}

async fn close_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let handle = field(&f, "session");
    accounts::end_my_session(state.ctx(), w.user.id, handle).await?;
    if handle == w.session.token_hash {
        return Ok(see_other("/login"));
    }
    Ok(see_other("/mes-connexions"))
}

#[derive(Template)]
#[template(path = "portal_invite.html")]
struct PortalInvitePage {
    title: String,
    nav: Option<Nav>,
    id: String,
    name: String,
    login: String,
    url: String,
    expires: String,
    qr: Option<String>,
    mailed: bool,
    /// An address was typed but the link could not be mailed to it.
    email_not_kept: bool,
}

async fn invite_patient(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let patient: PatientId = path_id(&id, "patient")?;
    let email = Some(field(&f, "email").trim()).filter(|e| !e.is_empty());
    let invited = accounts::invite_patient(state.ctx(), &w.actor, patient, email).await?;
    let page = PortalInvitePage {
        title: "Invitation au portail".into(),
        nav: nav(&w),
        id,
        name: invited.name,
        login: invited.login,
        qr: crate::auth::qr_svg(&invited.link.url),
        url: invited.link.url,
        expires: paris_time(invited.link.expires_at_ms),
        mailed: invited.link.mailed,
        email_not_kept: email.is_some() && !invited.link.mailed,
    };
    Ok(render(&page)?.into_response())
}

#[derive(serde::Deserialize, Default)]
struct HelpQuery {
    #[serde(default)]
    finess: String,
}

#[derive(Template)]
#[template(path = "help.html")]
struct HelpPage {
    title: String,
    nav: Option<Nav>,
    cells: Vec<help::SupportCell>,
    faq: &'static [(&'static str, &'static str)],
}

/// `GET /aide[?finess=…]`: open to everyone (a patient who cannot log in
/// needs it most); signed in, the support cells of one's own establishments.
async fn help_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HelpQuery>,
) -> Result<Response, PageError> {
    let session = crate::extract::any_session(&state, &headers).await?;
    let user = session.filter(|s| s.mfa_done).map(|s| s.user);
    let cells = help::support_cells(state.ctx(), user, q.finess.trim()).await?;
    let page = HelpPage {
        title: "Aide et assistance".into(),
        nav: None,
        cells,
        faq: help::FAQ,
    };
    Ok(render(&page)?.into_response())
}

/// The device and network check of the help page (camera, microphone,
/// connection to the platform).
async fn check_js() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        include_str!("../../static/check.js"),
    )
}
