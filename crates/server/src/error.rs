//! One error type for every handler, rendered two ways: as a FHIR
//! OperationOutcome for the API ([`ApiError`]) and as a French HTML page for the
//! web ([`PageError`]). 500s are logged with their cause chain and never echo
//! internals to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use store::StoreError;

/// What went wrong, independent of how it is shown.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No or bad credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing (or not visible to this actor).
    #[error("{0}")]
    NotFound(String),
    /// Malformed request (FHIR issue code `structure` or `invalid`).
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// Well-formed but refused by a rule (FHIR issue code `business-rule`,
    /// `not-supported`...).
    #[error("{1}")]
    Unprocessable(&'static str, String),
    /// Conflicts with stored data (duplicate).
    #[error("{0}")]
    Conflict(String),
    /// The resource changed since the version the client holds.
    #[error("{0}")]
    PreconditionFailed(String),
    /// Body over the limit.
    #[error("requête trop volumineuse (limite {0} octets)")]
    TooLarge(usize),
    /// Too many attempts.
    #[error("trop de tentatives, réessayez dans {0} s")]
    TooMany(i64),
    /// A service we depend on (the payment provider) did not answer: try later.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: logged, shown as a generic message.
    #[error("erreur interne")]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound("ressource introuvable".into()),
            StoreError::Refused(why) => AppError::Unprocessable("business-rule", why),
            StoreError::Rule(e) => AppError::Unprocessable("business-rule", e.to_string()),
            StoreError::Conflict(c) => AppError::Conflict(conflict_message(&c)),
            StoreError::Stale { current } => AppError::PreconditionFailed(format!(
                "la ressource a été modifiée entre-temps (version actuelle {current})"
            )),
            other => AppError::Internal(anyhow::Error::new(other)),
        }
    }
}

fn conflict_message(c: &store::Conflict) -> String {
    use store::Conflict;
    match c {
        Conflict::DuplicateIns => {
            "une identité active porte déjà cette INS dans ce domaine d'identification".into()
        }
        Conflict::DuplicateIpp => {
            "cet IPP est déjà attribué dans ce domaine d'identification".into()
        }
        Conflict::DuplicateMovement => {
            "identifiant de mouvement (ZBE-1) déjà utilisé dans cette venue".into()
        }
        Conflict::DuplicateUsername => "cet identifiant de connexion existe déjà".into(),
        other => format!("conflit avec des données existantes ({other})"),
    }
}

impl AppError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadRequest(..) => StatusCode::BAD_REQUEST,
            AppError::Unprocessable(..) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The FHIR issue type code.
    pub fn fhir_code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated(_) => "login",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not-found",
            AppError::BadRequest(code, _) | AppError::Unprocessable(code, _) => code,
            AppError::Conflict(_) => "duplicate",
            AppError::PreconditionFailed(_) => "conflict",
            AppError::TooLarge(_) => "too-costly",
            AppError::TooMany(_) => "throttled",
            AppError::Unavailable(_) => "transient",
            AppError::Internal(_) => "exception",
        }
    }

    fn log(&self) {
        if let AppError::Internal(e) = self {
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
    }

    fn retry_after(&self, resp: &mut Response) {
        if let AppError::TooMany(secs) = self
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
}

/// An error answered as a FHIR OperationOutcome.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

/// The FHIR media type.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        e.log();
        let body = interop::fhir::operation_outcome(
            if matches!(e, AppError::Internal(_)) {
                "fatal"
            } else {
                "error"
            },
            e.fhir_code(),
            &e.to_string(),
        );
        let mut resp = (
            e.status(),
            [(header::CONTENT_TYPE, FHIR_JSON)],
            body.to_string(),
        )
            .into_response();
        if matches!(e, AppError::Unauthenticated(_)) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"parcours\""),
            );
        }
        e.retry_after(&mut resp);
        resp
    }
}

/// An error answered as a web page (or a redirect to the login page).
#[derive(Debug)]
pub struct PageError(pub AppError);

impl<E: Into<AppError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        e.log();
        if matches!(e, AppError::Unauthenticated(_)) {
            return Redirect::to("/login").into_response();
        }
        let mut resp = (
            e.status(),
            crate::layout::error_page(e.status().as_u16(), &e.to_string()),
        )
            .into_response();
        e.retry_after(&mut resp);
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_statuses() {
        let cases = [
            (AppError::from(StoreError::NotFound), 404),
            (
                AppError::from(StoreError::Conflict(store::Conflict::DuplicateIns)),
                409,
            ),
            (AppError::from(StoreError::Stale { current: 3 }), 412),
            (AppError::from(StoreError::Corrupt("x".into())), 500),
        ];
        for (e, status) in cases {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
        }
        assert!(
            AppError::from(StoreError::Conflict(store::Conflict::DuplicateIns))
                .to_string()
                .contains("INS")
        );
        assert_eq!(
            AppError::from(StoreError::Corrupt("secret detail".into())).to_string(),
            "erreur interne"
        );
    }
}
