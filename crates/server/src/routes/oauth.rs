//! OAuth2 client credentials (RFC 6749 §4.4): `POST /oauth/token` with form fields
//! `grant_type=client_credentials`, `client_id`, `client_secret` (or HTTP Basic).
//! Answers a bearer token stored only as its hash. Errors follow RFC 6749 §5.2.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use crate::extract::ClientAddr;
use crate::limiter::Endpoint;
use crate::services::tokens;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/oauth/token", post(token))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "application/json"),
        ],
        json!({"error": error, "error_description": description}).to_string(),
    )
        .into_response()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(h.strip_prefix("Basic ")?.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// The client's credentials from a token request (Basic, or the form's
/// `client_id` and `client_secret`), or the OAuth2 error (code, text) to
/// answer with a 400.
fn credentials(
    headers: &HeaderMap,
    body: &str,
) -> Result<(String, String), (&'static str, &'static str)> {
    let bad = |code, text| (code, text);
    let form: Vec<(String, String)> = serde_urlencoded::from_str(body).map_err(|_| {
        bad(
            "invalid_request",
            "corps application/x-www-form-urlencoded attendu",
        )
    })?;
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    match field("grant_type").as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(bad(
                "unsupported_grant_type",
                "seul client_credentials est pris en charge",
            ));
        }
        None => return Err(bad("invalid_request", "grant_type manquant")),
    }
    basic_credentials(headers)
        .or_else(|| Some((field("client_id")?, field("client_secret")?)))
        .ok_or_else(|| bad("invalid_request", "client_id et client_secret requis"))
}

async fn token(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (client_id, secret) = match credentials(&headers, &body) {
        Ok(c) => c,
        Err((code, text)) => return oauth_error(StatusCode::BAD_REQUEST, code, text),
    };
    // Counted before the secret is checked (argon2), per address and client.
    if let Err(retry) = state
        .limiter
        .check(Endpoint::Token, ip, Some(&client_id), state.now_ms())
    {
        let mut r = oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            "trop de tentatives",
        );
        if let Ok(v) = retry.to_string().parse() {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    match tokens::issue(state.ctx(), &client_id, secret).await {
        Ok(t) => (
            StatusCode::OK,
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::CONTENT_TYPE, "application/json"),
            ],
            json!({"access_token": t.token, "token_type": "Bearer", "expires_in": t.expires_in})
                .to_string(),
        )
            .into_response(),
        Err(tokens::Refused::InvalidClient) => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "identifiants client invalides",
        ),
        Err(tokens::Refused::Unavailable) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "erreur interne",
        ),
    }
}
