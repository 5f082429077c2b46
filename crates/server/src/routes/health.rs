//! Liveness, readiness and metrics.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(healthz))
        .route("/metrics", get(metrics))
}

/// 200 when the store answers, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match crate::services::health::ready(state.ctx()).await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "base de données injoignable\n",
            )
        }
    }
}

/// `/metrics` on the main address: only with the configured bearer token
/// (`metrics_token`); without one configured it is not served here (404), only
/// on `metrics_listen`.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = state.config.metrics_token.as_deref() else {
        return (StatusCode::NOT_FOUND, "introuvable\n").into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(crate::extract::bearer)
        .unwrap_or("");
    if !crate::auth::constant_time_eq(given, token) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "jeton requis\n",
        )
            .into_response();
    }
    exposition(&state).await
}

/// The exposition itself (also served, without a token, on `metrics_listen`).
pub async fn exposition(state: &AppState) -> Response {
    let body = state.metrics.render(&state.store, state.now_ms()).await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The router of `metrics_listen`: `/metrics` and nothing else.
pub fn metrics_only(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move { exposition(&state).await }),
        )
        .with_state(state)
}
