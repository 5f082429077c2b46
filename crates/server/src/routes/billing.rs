//! The billing office's page (`/telesurveillance/facturation`): the month's
//! remote-monitoring statement of an establishment and programme, and its
//! CSV and FHIR exports. The rules are `services::billing`'s.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use domain::billing::Month;
use domain::org::Role;
use domain::policy::choose_establishment;

use super::kit::{Nav, download, establishment_choices, establishment_param, nav, render};
use crate::error::{AppError, PageError};
use crate::extract::Query;
use crate::extract::WebUser;
use crate::services::billing::{self, Statement, euros};
use crate::services::monitoring;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/telesurveillance/facturation", get(page))
        .route("/telesurveillance/facturation.csv", get(csv))
        .route("/telesurveillance/facturation.json", get(fhir))
}

#[derive(serde::Deserialize, Default)]
struct Which {
    #[serde(default)]
    etablissement: String,
    #[serde(default)]
    programme: String,
    #[serde(default)]
    mois: String,
}

const ROLES: [Role; 2] = [Role::Admin, Role::Secretary];

struct Row {
    name: String,
    ipp: String,
    enrolled: u32,
    transmitted: u32,
    alerts: String,
    /// (code, due, amount, why not)
    fees: Vec<(String, bool, String, String)>,
}

#[derive(Template)]
#[template(path = "billing.html")]
struct BillingPage {
    title: String,
    nav: Option<Nav>,
    /// (id, name, selected)
    establishments: Vec<(String, String, bool)>,
    /// (id, title, selected)
    programmes: Vec<(String, String, bool)>,
    month: String,
    month_label: String,
    /// (code, label, amount)
    fees: Vec<(String, String, String)>,
    rows: Vec<Row>,
    total: String,
    reference: String,
    query: String,
}

/// The establishment, programme and month asked for (the first of the
/// user's, the first programme with billing rules, the month before).
async fn chosen(
    state: &AppState,
    w: &WebUser,
    which: &Which,
) -> Result<(domain::EstablishmentId, String, Month), AppError> {
    let wanted = establishment_param(&which.etablissement)?;
    let e = choose_establishment(&w.actor.establishments_as(&ROLES), wanted).map_err(|_| {
        AppError::Forbidden("page réservée aux administrateurs et secrétariats".into())
    })?;
    let offered = state.store.establishment_programmes(e).await?;
    let programme = match which.programme.trim() {
        "" => monitoring::programmes()
            .iter()
            .find(|p| !p.billing.is_empty() && offered.contains(&p.id))
            .map(|p| p.id.clone())
            .ok_or_else(|| {
                AppError::NotFound(
                    "l'établissement ne propose aucun programme de télésurveillance facturable"
                        .into(),
                )
            })?,
        p => p.to_owned(),
    };
    let month = match which.mois.trim() {
        "" => Month::of(state.now_ms())
            .and_then(Month::previous)
            .ok_or_else(|| AppError::BadRequest("invalid", "mois invalide".into()))?,
        m => Month::parse(m).ok_or_else(|| {
            AppError::BadRequest("invalid", "mois attendu au format AAAA-MM".into())
        })?,
    };
    Ok((e, programme, month))
}

async fn statement(state: &AppState, w: &WebUser, which: &Which) -> Result<Statement, AppError> {
    let (e, programme, month) = chosen(state, w, which).await?;
    billing::statement(state.ctx(), &w.actor, e, &programme, month).await
}

fn query_of(s: &Statement) -> String {
    format!(
        "etablissement={}&programme={}&mois={}",
        s.establishment,
        s.programme.id,
        s.month.code()
    )
}

async fn page(
    State(state): State<AppState>,
    w: WebUser,
    Query(which): Query<Which>,
) -> Result<Response, PageError> {
    let s = statement(&state, &w, &which).await?;
    let establishments =
        establishment_choices(&state, &w.actor.establishments_as(&ROLES), s.establishment).await;
    let offered = state
        .store
        .establishment_programmes(s.establishment)
        .await?;
    let programmes = monitoring::programmes()
        .iter()
        .filter(|p| !p.billing.is_empty() && offered.contains(&p.id))
        .map(|p| (p.id.clone(), p.title.clone(), p.id == s.programme.id))
        .collect();
    let rows = s
        .rows
        .iter()
        .map(|r| Row {
            name: r.name.clone(),
            ipp: r.ipp.clone(),
            enrolled: r.month.enrolled_days,
            transmitted: r.month.transmission_days,
            alerts: if r.month.unhandled > 0 {
                format!(
                    "{} dont {} non traitée(s)",
                    r.month.alerts, r.month.unhandled
                )
            } else {
                r.month.alerts.to_string()
            },
            fees: r
                .lines
                .iter()
                .map(|(f, why)| {
                    (
                        f.code.clone(),
                        why.is_empty(),
                        euros(f.amount_cents),
                        why.join(" ; "),
                    )
                })
                .collect(),
        })
        .collect();
    let p = BillingPage {
        title: "Facturation de la télésurveillance".into(),
        nav: nav(&w),
        establishments,
        programmes,
        month: s.month.code(),
        month_label: s.month.label_fr(),
        fees: s
            .programme
            .billing
            .iter()
            .map(|f| (f.code.clone(), f.label.clone(), euros(f.amount_cents)))
            .collect(),
        rows,
        total: euros(s.total_due_cents()),
        reference: s.programme.billing_reference.clone().unwrap_or_default(),
        query: query_of(&s),
    };
    Ok(render(&p)?.into_response())
}

async fn csv(
    State(state): State<AppState>,
    w: WebUser,
    Query(which): Query<Which>,
) -> Result<Response, PageError> {
    let s = statement(&state, &w, &which).await?;
    let name = format!("telesurveillance-{}-{}.csv", s.programme.id, s.month.code());
    Ok(download("text/csv; charset=utf-8", &name, billing::csv(&s)))
}

async fn fhir(
    State(state): State<AppState>,
    w: WebUser,
    Query(which): Query<Which>,
) -> Result<Response, PageError> {
    let s = statement(&state, &w, &which).await?;
    let name = format!(
        "telesurveillance-{}-{}.json",
        s.programme.id,
        s.month.code()
    );
    let body = billing::fhir(&s, state.now_ms()).to_string();
    Ok(download("application/fhir+json", &name, body))
}
