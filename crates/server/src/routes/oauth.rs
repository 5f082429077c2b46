//! OAuth2 client credentials (RFC 6749 §4.4): `POST /oauth/token` with form fields
//! `grant_type=client_credentials`, `client_id`, `client_secret` (or HTTP Basic).
//! Answers a bearer token stored only as its hash. Errors follow RFC 6749 §5.2.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use crate::auth::{dummy_hash, random_token, token_hash, verify_secret};
use crate::extract::ClientAddr;
use crate::limiter::Endpoint;
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

async fn token(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: String,
) -> Response {
    let slow_down = |retry: i64| {
        let mut r = oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            "trop de tentatives",
        );
        if let Ok(v) = retry.to_string().parse() {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    };
    let form: Vec<(String, String)> = match serde_urlencoded::from_str(&body) {
        Ok(f) => f,
        Err(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "corps application/x-www-form-urlencoded attendu",
            );
        }
    };
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    match field("grant_type").as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "seul client_credentials est pris en charge",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type manquant",
            );
        }
    }
    let Some((client_id, secret)) = basic_credentials(&headers)
        .or_else(|| Some((field("client_id")?, field("client_secret")?)))
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id et client_secret requis",
        );
    };
    // Counted before the secret is checked (argon2), per address and client.
    if let Err(retry) = state
        .limiter
        .check(Endpoint::Token, ip, Some(&client_id), state.now_ms())
    {
        return slow_down(retry);
    }
    let client = match state.store.client_by_client_id(&client_id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "token: store error");
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "erreur interne",
            );
        }
    };
    let hash = client
        .as_ref()
        .map(|c| c.secret_hash.clone())
        .unwrap_or_else(dummy_hash);
    let ok = verify_secret(hash, secret).await;
    let client = match client {
        Some(c) if ok && c.active => c,
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "identifiants client invalides",
            );
        }
    };
    let token = random_token();
    let now = state.now_ms();
    let ttl = state.config.token_ttl_seconds;
    if let Err(e) = state
        .store
        .create_access_token(&token_hash(&token), client.id, now, now + ttl * 1000)
        .await
    {
        tracing::error!(error = %e, "token: store error");
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "erreur interne",
        );
    }
    (
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "application/json"),
        ],
        json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl}).to_string(),
    )
        .into_response()
}
