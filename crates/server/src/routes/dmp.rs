//! The DMP from the patient's page (`services::dmp`): the list, one document
//! opened (its PDF, or a structured CDA as text), a copy filed in the record.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::PatientId;

use super::kit::{Nav, download, nav, path_id, posted_form, render, see_other};
use crate::error::{AppError, PageError};
use crate::extract::WebUser;
use crate::fmt::fhir_day as day;
use crate::services::{dmp, documents, patients};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/patients/{id}/dmp", get(list))
        .route("/patients/{id}/dmp/{doc}", get(open))
        .route("/patients/{id}/dmp/{doc}/copier", post(copy))
}

struct Row {
    id: String,
    title: String,
    kind: String,
    date: String,
}

#[derive(Template)]
#[template(path = "dmp.html")]
struct DmpPage {
    title: String,
    nav: Option<Nav>,
    id: String,
    csrf: String,
    rows: Vec<Row>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "dmp_document.html")]
struct DmpDocumentPage {
    title: String,
    nav: Option<Nav>,
    id: String,
    doc: String,
    csrf: String,
    kind: String,
    date: String,
    lines: Vec<String>,
}

async fn list(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let pid: PatientId = path_id(&id, "patient")?;
    let p = patients::read(state.ctx(), &w.actor, pid).await?;
    let (rows, error) = match dmp::documents(state.ctx(), &w.actor, pid).await {
        Ok(found) => (
            found
                .into_iter()
                .map(|d| Row {
                    id: d.id,
                    title: d.title,
                    kind: d.type_code.1,
                    date: day(&d.date),
                })
                .collect(),
            None,
        ),
        // Why the DMP cannot be read is said on the page (identity, no DMP,
        // unreachable); a refusal of access stays an error page.
        Err(AppError::Unprocessable(_, m) | AppError::Unavailable(m)) => (Vec::new(), Some(m)),
        Err(e) => return Err(e.into()),
    };
    let page = DmpPage {
        title: format!("DMP de {}", p.traits.display_name()),
        nav: nav(&w),
        id,
        csrf: w.session.csrf_token.clone(),
        rows,
        error,
    };
    Ok(render(&page)?.into_response())
}

async fn open(
    State(state): State<AppState>,
    w: WebUser,
    Path((id, doc)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let pid: PatientId = path_id(&id, "patient")?;
    let (found, media, body) = dmp::open(state.ctx(), &w.actor, pid, &doc).await?;
    if let Some(pdf) = documents::pdf_in(&media, &body) {
        return Ok(download("application/pdf", "document-dmp.pdf", pdf));
    }
    let lines = interop::cda::readable_text(&body).map_err(|e| {
        AppError::Unprocessable("business-rule", format!("document illisible : {e}"))
    })?;
    let page = DmpDocumentPage {
        title: found.title,
        nav: nav(&w),
        id,
        doc,
        csrf: w.session.csrf_token.clone(),
        kind: found.type_code.1,
        date: day(&found.date),
        lines,
    };
    Ok(render(&page)?.into_response())
}

async fn copy(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path((id, doc)): Path<(String, String)>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    let pid: PatientId = path_id(&id, "patient")?;
    let filed = dmp::file_copy(state.ctx(), &w.actor, pid, &doc).await?;
    Ok(see_other(&format!("/documents/{filed}")))
}
