//! OAuth2 client credentials (RFC 6749 §4.4): `POST /oauth/token` with form fields
//! `grant_type=client_credentials`, `client_id`, `client_secret` (or HTTP Basic),
//! or a signed `client_assertion` (RFC 7523, SMART Backend Services), and an
//! optional `scope` in SMART form. Answers a bearer token stored only as its
//! hash. Errors follow RFC 6749 §5.2. `/.well-known/smart-configuration` (also
//! under `/fhir`) says how.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::extract::ClientAddr;
use crate::limiter::Endpoint;
use crate::services::tokens;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/.well-known/smart-configuration", get(smart_configuration))
        .route(
            "/fhir/.well-known/smart-configuration",
            get(smart_configuration),
        )
}

/// `GET /.well-known/smart-configuration` (SMART App Launch 2.x): how a
/// backend service gets a token here.
async fn smart_configuration(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({
            "token_endpoint": token_url(&state),
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "scopes_supported": ["system/*.cruds", "system/*.rs", "system/Patient.rs", "system/DocumentReference.cruds"],
            "capabilities": ["client-confidential-asymmetric", "client-confidential-symmetric", "permission-v2", "permission-v1"],
        })
        .to_string(),
    )
        .into_response()
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

/// What a token request carries.
struct TokenRequest {
    client_id: Option<String>,
    proof: tokens::Proof,
    scope: Option<String>,
}

/// The client's credentials from a token request (Basic, the form's
/// `client_id` and `client_secret`, or a signed `client_assertion`), or the
/// OAuth2 error (code, text) to answer with a 400.
fn credentials(
    headers: &HeaderMap,
    body: &str,
) -> Result<TokenRequest, (&'static str, &'static str)> {
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
    let scope = field("scope");
    if let Some(assertion) = field("client_assertion") {
        if field("client_assertion_type").as_deref() != Some(tokens::JWT_BEARER) {
            return Err(bad(
                "invalid_request",
                "client_assertion_type urn:ietf:params:oauth:client-assertion-type:jwt-bearer attendu",
            ));
        }
        return Ok(TokenRequest {
            client_id: field("client_id"),
            proof: tokens::Proof::Assertion(assertion),
            scope,
        });
    }
    let (id, secret) = basic_credentials(headers)
        .or_else(|| Some((field("client_id")?, field("client_secret")?)))
        .ok_or_else(|| bad("invalid_request", "client_id et client_secret requis"))?;
    Ok(TokenRequest {
        client_id: Some(id),
        proof: tokens::Proof::Secret(secret),
        scope,
    })
}

/// Our token endpoint, as assertions must name it (`aud`).
pub fn token_url(state: &AppState) -> String {
    format!(
        "{}/oauth/token",
        state.config.public_url().trim_end_matches('/')
    )
}

async fn token(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: String,
) -> Response {
    let req = match credentials(&headers, &body) {
        Ok(c) => c,
        Err((code, text)) => return oauth_error(StatusCode::BAD_REQUEST, code, text),
    };
    // Counted before the secret is checked (argon2), per address and client.
    if let Err(retry) = state
        .limiter
        .check(
            Endpoint::Token,
            ip,
            req.client_id.as_deref(),
            state.now_ms(),
        )
        .await
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
    let url = token_url(&state);
    match tokens::issue(
        state.ctx(),
        req.client_id.as_deref(),
        req.proof,
        req.scope.as_deref(),
        &url,
    )
    .await
    {
        Ok(t) => {
            let mut body = serde_json::Map::new();
            body.insert("access_token".into(), t.token.into());
            body.insert("token_type".into(), "Bearer".into());
            body.insert("expires_in".into(), t.expires_in.into());
            if let Some(s) = t.scope {
                body.insert("scope".into(), s.into());
            }
            let body = serde_json::Value::Object(body);
            (
                StatusCode::OK,
                [
                    (header::CACHE_CONTROL, "no-store"),
                    (header::CONTENT_TYPE, "application/json"),
                ],
                body.to_string(),
            )
                .into_response()
        }
        Err(tokens::Refused::InvalidClient) => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "identifiants client invalides",
        ),
        Err(tokens::Refused::BadAssertion(why)) => {
            tracing::info!(why = %why, "client assertion refused");
            oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &why)
        }
        Err(tokens::Refused::InvalidScope(why)) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", &why)
        }
        Err(tokens::Refused::Unavailable) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "erreur interne",
        ),
    }
}
