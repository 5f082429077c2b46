//! The HTTP surface: one router, with security headers, response counting, a body
//! limit and panic catching around every route.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::catch_panic::CatchPanicLayer;

use crate::state::AppState;

pub mod account;
pub mod admin;
pub mod beds;
pub mod billing;
pub mod care_team;
pub mod consultation;
pub mod dmp;
pub mod documents;
pub mod fhir;
pub mod guests;
pub mod health;
pub mod hours;
pub mod kit;
pub mod monitoring;
pub mod my_data;
pub mod oauth;
mod operations;
pub mod orientation;
pub mod record;
pub mod room;
pub mod schedule;
pub mod sso;
pub mod waiting;
pub mod web;

/// The whole application.
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .merge(health::routes())
        .merge(admin::routes())
        .merge(hours::routes())
        .merge(care_team::routes())
        .merge(billing::routes())
        .merge(guests::routes())
        .merge(account::routes())
        .merge(oauth::routes())
        .merge(sso::routes())
        .nest("/fhir", fhir::routes())
        .merge(fhir::base_with_slash())
        .merge(beds::routes())
        .merge(orientation::routes())
        .merge(schedule::routes())
        .merge(waiting::routes())
        .merge(room::routes())
        .merge(consultation::routes())
        .merge(documents::routes())
        .merge(monitoring::routes())
        .merge(record::routes())
        .merge(my_data::routes())
        .merge(dmp::routes())
        .merge(web::routes())
        .merge(operations::routes())
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            headers_and_metrics,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("handler panicked");
            crate::error::PageError(crate::error::AppError::Internal(anyhow::anyhow!("panic")))
                .into_response_now()
        }))
        .with_state(state)
}

impl crate::error::PageError {
    /// Renders now (for the panic handler, outside axum's extractor machinery).
    pub fn into_response_now(self) -> Response {
        axum::response::IntoResponse::into_response(self)
    }
}

/// A request id: the one the caller or a front sent (`X-Request-Id`: letters,
/// digits, `-` and `_`, 64 at most), else a new one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| uuid::Uuid::now_v7().simple().to_string(), str::to_owned)
}

/// Every request in a span carrying its id, route pattern and method (the
/// logs of everything it calls carry them; the path itself is not logged: it
/// may hold an identifier); the id answered in `X-Request-Id`. Security
/// headers on every response; no caching of anything (pages and API answers
/// carry patient data); counted with its latency for `/metrics`.
async fn headers_and_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let id = request_id(&req);
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    // A label from a fixed set: an unknown method does not grow the metrics.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m,
        _ => "other",
    }
    .to_owned();
    let span = tracing::info_span!("request", request_id = %id, route = %route, method = %method);
    let mut resp = next.run(req).instrument(span.clone()).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    span.in_scope(|| tracing::debug!(status, ms = (seconds * 1000.0).round(), "answered"));
    state
        .metrics
        .count_request(&route, &method, status, seconds);
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-request-id", v);
    }
    let set = |h: &mut axum::http::HeaderMap, k: header::HeaderName, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on
    // form posts, which the same-origin check must refuse. URLs never leave the site.
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::CACHE_CONTROL, "no-store");
    resp
}
