//! Sign-in through OpenID Connect providers (`oidc`): `/connexion/oidc/{id}`
//! starts the code flow (state and PKCE verifier kept server-side, bound to
//! this browser by a cookie); `/connexion/oidc/{id}/retour` finishes it,
//! signs the person in or links the provider's identity to the account that
//! asked, and says every refusal plainly (audited, never a token in the
//! logs). The session cookie is strict: after the provider's redirect the
//! page goes on to `/` by itself, so that the browser sends it.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::auth::{random_token, token_hash};
use crate::error::{AppError, PageError};
use crate::extract::Query;
use crate::extract::{ClientAddr, WebUser};
use crate::layout::Nav;
use crate::limiter::Endpoint;
use crate::oidc::Provider;
use crate::services::sign_in::{self, SignIn};
use crate::state::AppState;

use super::kit::*;
use super::web::{cookie_with, session_cookie};

/// The cookie binding a login under way to the browser that started it.
const BROWSER_COOKIE: &str = "parcours_oidc";
/// Where that cookie goes back to.
const COOKIE_PATH: &str = "/connexion/oidc";
/// How long a login under way may take.
const LOGIN_TTL_MS: i64 = 10 * 60_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connexion/oidc/{id}", get(start))
        .route("/connexion/oidc/{id}/lier", post(start_link))
        .route("/connexion/oidc/{id}/retour", get(finish))
}

#[derive(Template)]
#[template(path = "sso_done.html")]
struct Done {
    title: String,
    nav: Option<Nav>,
    heading: String,
    message: Option<String>,
    error: Option<String>,
    next: Option<String>,
}

fn refused(status: StatusCode, why: String) -> Result<Response, PageError> {
    let page = Done {
        title: "Connexion refusée".into(),
        nav: None,
        heading: "Connexion refusée".into(),
        message: None,
        error: Some(why),
        next: None,
    };
    Ok((status, render(&page)?).into_response())
}

fn provider<'a>(state: &'a AppState, id: &str) -> Result<&'a Provider, AppError> {
    state
        .oidc
        .get(id)
        .ok_or_else(|| AppError::NotFound("fournisseur d'identité inconnu".into()))
}

fn redirect_uri(state: &AppState, id: &str) -> String {
    format!(
        "{}/connexion/oidc/{id}/retour",
        state.config.public_url().trim_end_matches('/')
    )
}

/// Records the login under way and sends the browser to the provider.
async fn begin(
    state: &AppState,
    p: &Provider,
    link_user: Option<domain::UserId>,
) -> Result<Response, PageError> {
    let (login, browser, nonce, verifier) = (
        random_token(),
        random_token(),
        random_token(),
        random_token(),
    );
    let url = match p
        .authorize_url(
            &redirect_uri(state, &p.config.id),
            &login,
            &nonce,
            &verifier,
        )
        .await
    {
        Ok(u) => u,
        Err(e) => {
            sign_in::oidc_refused(state.ctx(), e.code()).await;
            return refused(StatusCode::BAD_GATEWAY, e.to_string());
        }
    };
    state
        .store
        .begin_oidc_login(
            &token_hash(&login),
            &store::sso::PendingLogin {
                browser_hash: token_hash(&browser),
                provider: p.config.id.clone(),
                nonce,
                verifier,
                link_user,
                expires_at_ms: state.now_ms() + LOGIN_TTL_MS,
            },
        )
        .await
        .map_err(AppError::from)?;
    let mut resp = see_other(&url);
    // Lax: the provider's redirect back is a top-level navigation from its site.
    resp.headers_mut().append(
        header::SET_COOKIE,
        cookie_with(
            state,
            BROWSER_COOKIE,
            &browser,
            COOKIE_PATH,
            Some(600),
            "Lax",
        ),
    );
    Ok(resp)
}

/// `GET /connexion/oidc/{id}`: sign in with this provider. Counted per
/// address like the password step: each start is stored until it ends.
async fn start(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let p = provider(&state, &id)?;
    if let Err(retry) = state
        .limiter
        .check(Endpoint::FederatedLogin, ip, None, state.now_ms())
        .await
    {
        return Err(AppError::TooMany(retry).into());
    }
    begin(&state, p, None).await
}

/// `POST /connexion/oidc/{id}/lier`: the signed-in account links its
/// identity at this provider (patients once after a password sign-in).
async fn start_link(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    w: WebUser,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    let p = provider(&state, &id)?;
    begin(&state, p, Some(w.user.id)).await
}

#[derive(Deserialize, Default)]
struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// `GET /connexion/oidc/{id}/retour`: the provider's answer.
async fn finish(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(cb): Query<Callback>,
) -> Result<Response, PageError> {
    let p = provider(&state, &id)?;
    let ctx = state.ctx();
    if !cb.error.is_empty() {
        sign_in::oidc_refused(ctx, "provider-error").await;
        let why = if cb.error_description.is_empty() {
            cb.error.clone()
        } else {
            cb.error_description.clone()
        };
        return refused(
            StatusCode::FORBIDDEN,
            format!("Le fournisseur d'identité n'a pas authentifié la connexion : {why}."),
        );
    }
    let pending = state
        .store
        .take_oidc_login(&token_hash(&cb.state), state.now_ms())
        .await
        .map_err(AppError::from)?;
    let browser = crate::extract::cookie(&headers, BROWSER_COOKIE).unwrap_or_default();
    let Some(pending) = pending.filter(|l| {
        l.provider == p.config.id
            && crate::auth::constant_time_eq(&l.browser_hash, &token_hash(&browser))
    }) else {
        sign_in::oidc_refused(ctx, "state").await;
        return refused(
            StatusCode::BAD_REQUEST,
            "Cette demande de connexion est inconnue, déjà utilisée, expirée ou commencée dans un autre navigateur. Recommencez depuis la page de connexion.".into(),
        );
    };
    let who = match p
        .finish(
            &cb.code,
            &redirect_uri(&state, &id),
            &pending.verifier,
            &pending.nonce,
            state.now_ms() / 1000,
        )
        .await
    {
        Ok(w) => w,
        Err(e) => {
            sign_in::oidc_refused(ctx, e.code()).await;
            let status = match e {
                crate::oidc::OidcError::Provider(_) => StatusCode::BAD_GATEWAY,
                _ => StatusCode::FORBIDDEN,
            };
            return refused(status, format!("Connexion refusée : {e}."));
        }
    };
    if let Some(user) = pending.link_user {
        return match sign_in::link_identity(ctx, &p.config, user, &who).await? {
            Ok(()) => {
                let page = Done {
                    title: "Identité liée".into(),
                    nav: None,
                    heading: "Identité liée".into(),
                    message: Some(format!(
                        "Vous pourrez désormais vous connecter avec {}.",
                        p.config.label
                    )),
                    error: None,
                    next: Some("/mes-connexions".into()),
                };
                Ok(render(&page)?.into_response())
            }
            Err(why) => refused(StatusCode::CONFLICT, why),
        };
    }
    match sign_in::with_identity(ctx, &p.config, &who).await? {
        SignIn::Session { token, .. } => {
            let page = Done {
                title: "Connexion".into(),
                nav: None,
                heading: "Connexion réussie".into(),
                message: Some(format!("Connecté(e) avec {}.", p.config.label)),
                error: None,
                next: Some("/".into()),
            };
            let mut resp = render(&page)?.into_response();
            resp.headers_mut()
                .append(header::SET_COOKIE, session_cookie(&state, &token));
            resp.headers_mut().append(
                header::SET_COOKIE,
                cookie_with(&state, BROWSER_COOKIE, "", COOKIE_PATH, Some(0), "Lax"),
            );
            Ok(resp)
        }
        SignIn::Refused(_, why) => refused(StatusCode::FORBIDDEN, why),
    }
}
