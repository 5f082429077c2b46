//! After the video: the doctor closes the consultation (note and prescription)
//! and approves the prescription; the patient pays online (the provider's page,
//! confirmed by its signed webhook) or the desk records the settlement; the
//! prescription PDF is given to the patient only once both are done (the rule
//! lives in `services::consultations`); a pharmacist checks a prescription's
//! number on a public page that shows nothing about the patient.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::consultation::{Closing, Line, Method};
use domain::policy::Principal;
use serde::Deserialize;

use super::kit::{Nav, field, nav, posted_form, render, see_other};
use crate::error::{AppError, PageError};
use crate::extract::Query;
use crate::extract::WebUser;
use crate::routes::kit::path_id;
use crate::services::consultations as svc;
use crate::state::AppState;

/// Medication rows on the closing form.
const ROWS: usize = 4;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/consultation/{id}/cloture", get(closing_page).post(close))
        .route("/rdv/{id}/valider", post(approve))
        .route("/rdv/{id}/ordonnance.pdf", get(download))
        .route("/rdv/{id}/paiement", post(pay))
        .route("/rdv/{id}/reglement", post(settle))
        .route(
            "/paiement/webhook",
            post(webhook).layer(axum::extract::DefaultBodyLimit::max(256 * 1024)),
        )
        .route("/ordonnance/verifier", get(verify_form))
        .route("/ordonnance/verifier/{number}", get(verify_number))
}

/// "30,00 €".
pub(crate) fn euros(cents: i64) -> String {
    format!("{},{:02} €", cents / 100, (cents % 100).abs())
}

#[derive(Template)]
#[template(path = "closing.html")]
struct ClosingPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    id: String,
    patient: String,
    note: String,
    rows: Vec<(usize, Line)>,
    free_text: String,
    error: Option<String>,
}

fn closing_from(f: &[(String, String)]) -> Closing {
    Closing {
        note: field(f, "note").to_owned(),
        lines: (1..=ROWS)
            .map(|i| Line {
                medication: field(f, &format!("medicament_{i}")).to_owned(),
                dose: field(f, &format!("dose_{i}")).to_owned(),
                frequency: field(f, &format!("frequence_{i}")).to_owned(),
                duration: field(f, &format!("duree_{i}")).to_owned(),
            })
            .collect(),
        free_text: field(f, "texte").to_owned(),
    }
}

async fn closing_render(
    state: &AppState,
    w: &WebUser,
    id: &str,
    closing: Closing,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let patient = match svc::closing_form(
        state.ctx(),
        &w.actor,
        w.user.id,
        path_id(id, "rendez-vous")?,
    )
    .await?
    {
        svc::ClosingForm::Closed => return Ok(see_other(&format!("/rdv/{id}"))),
        svc::ClosingForm::Open(patient) => patient,
    };
    let mut lines = closing.lines;
    lines.resize(
        ROWS.max(lines.len()),
        Line {
            medication: String::new(),
            dose: String::new(),
            frequency: String::new(),
            duration: String::new(),
        },
    );
    let page = ClosingPage {
        title: "Clôturer la consultation".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        id: id.to_owned(),
        patient,
        note: closing.note,
        rows: lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .collect(),
        free_text: closing.free_text,
        error,
    };
    Ok((status, render(&page)?).into_response())
}

/// `GET /consultation/{id}/cloture`: the doctor's closing form.
async fn closing_page(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let empty = Closing {
        note: String::new(),
        lines: vec![],
        free_text: String::new(),
    };
    closing_render(&state, &w, &id, empty, StatusCode::OK, None).await
}

/// `POST /consultation/{id}/cloture`: records the note and prescription; a
/// form with a mistake comes back with what was typed and the reason.
async fn close(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let closing = closing_from(&f);
    match svc::close(
        state.ctx(),
        &w.actor,
        w.user.id,
        path_id(&id, "rendez-vous")?,
        closing.clone(),
    )
    .await
    {
        Ok(_) => Ok(see_other(&format!("/rdv/{id}"))),
        Err(AppError::Unprocessable(_, m)) => {
            closing_render(
                &state,
                &w,
                &id,
                closing,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(m),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /rdv/{id}/valider`: the doctor's final approval.
async fn approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    svc::approve(
        state.ctx(),
        &w.actor,
        w.user.id,
        path_id(&id, "rendez-vous")?,
    )
    .await?;
    Ok(see_other(&format!("/rdv/{id}")))
}

/// `GET /rdv/{id}/ordonnance.pdf`: the prescription, if this user may have it now.
async fn download(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (c, pdf) =
        svc::prescription_pdf(state.ctx(), &w.actor, path_id(&id, "rendez-vous")?).await?;
    Ok(super::kit::download(
        "application/pdf",
        &format!("ordonnance-{}.pdf", c.number),
        pdf,
    ))
}

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage {
    title: String,
    nav: Option<Nav>,
    url: String,
    amount: String,
}

/// `POST /rdv/{id}/paiement`: opens a checkout session and gives the patient a
/// link to the provider's secure page (a link, not a redirect: the page's CSP
/// allows forms to post only here).
async fn pay(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    let (url, fee) =
        svc::checkout(state.ctx(), &w.actor, None, path_id(&id, "rendez-vous")?).await?;
    let page = CheckoutPage {
        title: "Paiement".into(),
        nav: nav(&w),
        url,
        amount: euros(fee),
    };
    Ok(render(&page)?.into_response())
}

/// `POST /rdv/{id}/reglement` (`mode` = desk, tiers-payant or waived): the desk
/// records a settlement.
async fn settle(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let Some(method) = Method::from_code(field(&f, "mode")) else {
        return Err(AppError::BadRequest(
            "invalid",
            "mode de règlement inconnu (desk, tiers-payant ou waived)".into(),
        )
        .into());
    };
    svc::settle_at_desk(state.ctx(), &w.actor, path_id(&id, "rendez-vous")?, method).await?;
    Ok(see_other(&format!("/rdv/{id}")))
}

/// `POST /paiement/webhook`: the provider's signed event. No session, no CSRF:
/// the signature is the authentication. Answers JSON.
async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    match svc::webhook(state.ctx(), signature, &body).await {
        Ok(outcome) => {
            let word = match outcome {
                svc::WebhookOutcome::Settled => "settled",
                svc::WebhookOutcome::AlreadySettled => "already-settled",
                svc::WebhookOutcome::Duplicate => "duplicate",
                svc::WebhookOutcome::Ignored => "ignored",
            };
            axum::Json(serde_json::json!({"received": true, "outcome": word})).into_response()
        }
        Err(e) => (
            e.status(),
            axum::Json(serde_json::json!({"received": false, "error": e.to_string()})),
        )
            .into_response(),
    }
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    title: String,
    nav: Option<Nav>,
    typed: String,
    found: Option<svc::Verified>,
    searched: bool,
}

#[derive(Deserialize)]
struct VerifyQuery {
    numero: Option<String>,
}

async fn verify_render(state: &AppState, typed: Option<String>) -> Result<Response, PageError> {
    let (found, searched) = match typed.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => (svc::verify(state.ctx(), t).await?, true),
        _ => (None, false),
    };
    let status = if searched && found.is_none() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    let page = VerifyPage {
        title: "Vérifier une ordonnance".into(),
        nav: None,
        typed: typed.unwrap_or_default(),
        found,
        searched,
    };
    Ok((status, render(&page)?).into_response())
}

/// `GET /ordonnance/verifier?numero=…`: the form a pharmacist types a number in.
async fn verify_form(
    State(state): State<AppState>,
    Query(q): Query<VerifyQuery>,
) -> Result<Response, PageError> {
    verify_render(&state, q.numero).await
}

/// `GET /ordonnance/verifier/{number}`: where the QR code leads.
async fn verify_number(
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Result<Response, PageError> {
    verify_render(&state, Some(number)).await
}

/// What the appointment page shows of a closed consultation.
pub(crate) struct Block {
    pub closed_on: String,
    pub fee: String,
    pub settled: Option<String>,
    pub approved_on: Option<String>,
    pub withheld: Option<String>,
    pub number: String,
    pub note: Option<String>,
    pub lines: Vec<Line>,
    pub free_text: String,
    pub can_pay_online: bool,
    pub can_settle: bool,
    pub can_approve: bool,
}

/// The consultation block of appointment `id` for this user, if it is closed.
pub(crate) async fn block(
    state: &AppState,
    w: &WebUser,
    id: &str,
    desk: bool,
) -> Result<Option<Block>, AppError> {
    let Some(c) = svc::view(state.ctx(), &w.actor, path_id(id, "rendez-vous")?).await? else {
        return Ok(None);
    };
    let patient_side = matches!(w.actor.principal, Principal::Patient { .. });
    let withheld = svc::withheld(&w.actor, &c).map(|why| why.to_string());
    let released = withheld.is_none();
    Ok(Some(Block {
        closed_on: crate::fmt::paris_time(c.closed_at_ms),
        fee: euros(c.fee_cents),
        settled: c.settled.map(|m| m.label_fr().to_owned()),
        approved_on: c.approved_at_ms.map(crate::fmt::paris_time),
        withheld,
        number: c.number.clone(),
        note: (!patient_side).then(|| c.closing.note.clone()),
        lines: if released {
            c.closing.lines.clone()
        } else {
            vec![]
        },
        free_text: if released {
            c.closing.free_text.clone()
        } else {
            String::new()
        },
        can_pay_online: patient_side && c.settled.is_none() && state.payment.is_some(),
        can_settle: desk && !patient_side && c.settled.is_none(),
        can_approve: w.user.id == c.practitioner && c.approved_at_ms.is_none(),
    }))
}
