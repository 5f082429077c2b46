//! Bed pages: the bed manager's screen (close, reopen, count for units without an
//! ADT feed), the regional view for coordinators with live refresh and filters,
//! and its CSV download. Counts only: no patient data here.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::beds::{BedCategory, BedChange, OccupancySource, is_stale};
use domain::{EstablishmentId, TerritoryId, UnitId};
use serde::Deserialize;
use store::beds::UnitBeds;

use super::kit::{Nav, check_csrf, nav, render, same_origin, see_other};
use crate::error::{AppError, PageError};
use crate::extract::WebUser;
use crate::extract::{Form, Query};
use crate::fmt::paris_time;
use crate::services::beds::{self, Changed};
use crate::state::AppState;

/// A manual figure older than this is flagged.
const STALE_AFTER_MS: i64 = 12 * 3600 * 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/lits", get(beds_page))
        .route("/lits/{unit}/fermer", post(close))
        .route("/lits/{unit}/rouvrir", post(reopen))
        .route("/lits/{unit}/occupation", post(occupy))
        .route("/region", get(region_page))
        .route("/region/table", get(region_table))
        .route("/region/ws", get(region_ws))
        .route("/region.csv", get(region_csv))
        .route("/static/live.js", get(live_js))
}

/// The small script that refreshes live fragments (regional view, triage queue).
async fn live_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/live.js"),
    )
}

/// Establishments whose beds this user manages (the policy decides).
fn managed(w: &WebUser) -> Vec<(EstablishmentId, TerritoryId)> {
    crate::services::beds::managed(&w.actor)
}

struct UnitView {
    id: String,
    name: String,
    category: String,
    capacity: i64,
    occupied: i64,
    closed: i64,
    available: i64,
    reason: Option<String>,
    adt: bool,
    updated: String,
    stale: bool,
}

fn unit_view(b: &UnitBeds, now_ms: i64) -> UnitView {
    UnitView {
        id: b.unit.to_string(),
        name: b.unit_name.clone(),
        category: b.category.label_fr().into(),
        capacity: b.counts.capacity,
        occupied: b.counts.occupied,
        closed: b.counts.closed,
        available: b.counts.available(),
        reason: b.closed_reason.clone(),
        adt: b.source == OccupancySource::Adt,
        updated: paris_time(b.last_update_ms),
        stale: is_stale(b.source, b.last_update_ms, now_ms, STALE_AFTER_MS),
    }
}

#[derive(Template)]
#[template(path = "beds.html")]
struct BedsPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    establishments: String,
    units: Vec<UnitView>,
    error: Option<String>,
    notice: Option<String>,
}

async fn beds_screen(
    state: &AppState,
    w: &WebUser,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let ests = managed(w);
    if ests.is_empty() {
        return Err(AppError::Forbidden("écran réservé aux gestionnaires de lits".into()).into());
    }
    let mut units = Vec::new();
    let mut names = Vec::new();
    for (e, t) in &ests {
        names.push(crate::services::directory::establishment_name(state.ctx(), *e).await);
        units.extend(
            beds::of_establishment(state.ctx(), *t, *e)
                .await?
                .iter()
                .map(|b| unit_view(b, state.now_ms())),
        );
    }
    let page = BedsPage {
        title: "Lits".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        establishments: names.join(", "),
        units,
        error,
        notice,
    };
    Ok((status, render(&page)?).into_response())
}

async fn beds_page(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    beds_screen(&state, &w, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    nombre: Option<String>,
    #[serde(default)]
    motif: Option<String>,
    #[serde(default)]
    delta: Option<String>,
}

async fn apply_change(
    state: AppState,
    headers: HeaderMap,
    w: WebUser,
    unit: String,
    form: ChangeForm,
    kind: &str,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    check_csrf(&w.session.csrf_token, &form.csrf)?;
    let uid: UnitId = unit
        .parse()
        .map_err(|_| PageError(AppError::NotFound("unité introuvable".into())))?;
    let number = |s: &Option<String>| -> Result<i64, PageError> {
        s.as_deref()
            .unwrap_or("1")
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n != 0 && n.abs() <= 10_000)
            .ok_or_else(|| {
                PageError(AppError::BadRequest(
                    "invalid",
                    "nombre de lits invalide".into(),
                ))
            })
    };
    let change = match kind {
        "close" => BedChange::Close(number(&form.nombre)?.abs()),
        "reopen" => BedChange::Reopen(number(&form.nombre)?.abs()),
        _ => BedChange::Occupy(number(&form.delta)?),
    };
    let reason = if kind == "close" {
        form.motif
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
    } else {
        None
    };
    let by = w.user.id.to_string();
    match crate::services::beds::change(state.ctx(), &w.actor, &by, uid, change, reason).await? {
        // Post/redirect/get: the bed manager lands back on the screen, figures updated.
        Changed::Done(_) => Ok(see_other("/lits")),
        Changed::Refused { unit_name, why } => {
            beds_screen(
                &state,
                &w,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(format!("{unit_name} : {why}")),
                None,
            )
            .await
        }
    }
}

async fn close(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(unit): Path<String>,
    Form(f): Form<ChangeForm>,
) -> Result<Response, PageError> {
    apply_change(state, headers, w, unit, f, "close").await
}

async fn reopen(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(unit): Path<String>,
    Form(f): Form<ChangeForm>,
) -> Result<Response, PageError> {
    apply_change(state, headers, w, unit, f, "reopen").await
}

async fn occupy(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(unit): Path<String>,
    Form(f): Form<ChangeForm>,
) -> Result<Response, PageError> {
    apply_change(state, headers, w, unit, f, "occupy").await
}

// ---------------------------------------------------------------- regional view

#[derive(Deserialize, Default)]
struct RegionQuery {
    #[serde(default)]
    categorie: String,
    #[serde(default)]
    etablissement: String,
}

struct RegionRow {
    establishment: String,
    finess: String,
    unit: String,
    unit_code: String,
    category: String,
    capacity: i64,
    available: i64,
    occupied: i64,
    closed: i64,
    adt: bool,
    updated: String,
    stale: bool,
}

#[derive(Template)]
#[template(path = "region_table.html")]
struct RegionTable {
    refreshed: String,
    totals: Vec<(String, i64, i64)>,
    rows: Vec<RegionRow>,
}

struct Chart {
    label: String,
    caption: String,
    points: String,
}

/// A category's free beds over the last 24 hours as SVG polyline points (300×80).
fn chart(category: BedCategory, history: &[(i64, i64, i64)], now_ms: i64) -> Option<Chart> {
    let since = now_ms - 24 * 3600 * 1000;
    let max = history.iter().map(|h| h.2).max().filter(|m| *m > 0)?;
    let points: Vec<String> = history
        .iter()
        .map(|(t, free, _)| {
            let x =
                (t - since).clamp(0, 24 * 3600 * 1000) as f64 / (24.0 * 3600.0 * 1000.0) * 300.0;
            let y = 80.0 - (*free as f64 / max as f64) * 75.0;
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let (first, last) = (history.first()?.1, history.last()?.1);
    Some(Chart {
        label: format!(
            "Lits libres — {} sur 24 heures : de {first} à {last} (sur {max})",
            category.label_fr()
        ),
        caption: format!("{} : {last} libre(s) sur {max}", category.label_fr()),
        points: points.join(" "),
    })
}

#[derive(Template)]
#[template(path = "region.html")]
struct RegionPage {
    charts: Vec<Chart>,
    title: String,
    nav: Option<Nav>,
    territory: String,
    categories: Vec<(String, String)>,
    category: String,
    establishment_options: Vec<(String, String)>,
    establishment: String,
    refreshed: String,
    totals: Vec<(String, i64, i64)>,
    rows: Vec<RegionRow>,
}

/// The territory this user may view (any grant there: non-patient data) and its
/// beds after the filters.
async fn region_data(
    state: &AppState,
    w: &WebUser,
    q: &RegionQuery,
) -> Result<(TerritoryId, Vec<UnitBeds>), PageError> {
    // Who may view the region is told before what is wrong with the filters.
    beds::region_of(&w.actor)?;
    let category = BedCategory::from_code(q.categorie.trim());
    if !q.categorie.trim().is_empty() && category.is_none() {
        return Err(AppError::BadRequest(
            "invalid",
            format!("catégorie inconnue {:?}", q.categorie),
        )
        .into());
    }
    let establishment: Option<EstablishmentId> = match q.etablissement.trim() {
        "" => None,
        e => Some(e.parse().map_err(|_| {
            PageError(AppError::BadRequest(
                "invalid",
                "établissement inconnu".into(),
            ))
        })?),
    };
    Ok(beds::region(state.ctx(), &w.actor, establishment, category).await?)
}

fn rows_and_totals(beds: &[UnitBeds], now_ms: i64) -> (Vec<RegionRow>, Vec<(String, i64, i64)>) {
    let rows = beds
        .iter()
        .map(|b| RegionRow {
            establishment: b.establishment_name.clone(),
            finess: b.finess.clone(),
            unit: b.unit_name.clone(),
            unit_code: b.unit_code.clone(),
            category: b.category.label_fr().into(),
            capacity: b.counts.capacity,
            available: b.counts.available(),
            occupied: b.counts.occupied,
            closed: b.counts.closed,
            adt: b.source == OccupancySource::Adt,
            updated: paris_time(b.last_update_ms),
            stale: is_stale(b.source, b.last_update_ms, now_ms, STALE_AFTER_MS),
        })
        .collect();
    let totals = BedCategory::ALL
        .iter()
        .filter_map(|c| {
            let of: Vec<&UnitBeds> = beds.iter().filter(|b| b.category == *c).collect();
            (!of.is_empty()).then(|| {
                (
                    c.label_fr().to_owned(),
                    of.iter().map(|b| b.counts.available()).sum(),
                    of.iter().map(|b| b.counts.capacity).sum(),
                )
            })
        })
        .collect();
    (rows, totals)
}

async fn region_page(
    State(state): State<AppState>,
    w: WebUser,
    Query(q): Query<RegionQuery>,
) -> Result<Response, PageError> {
    let (territory, beds) = region_data(&state, &w, &q).await?;
    let now = state.now_ms();
    let (rows, totals) = rows_and_totals(&beds, now);
    let t = crate::services::directory::territory(state.ctx(), territory).await?;
    let establishment_options = crate::services::directory::establishments(state.ctx(), territory)
        .await?
        .into_iter()
        .map(|e| (e.id.to_string(), e.name))
        .collect();
    let mut charts = Vec::new();
    for c in BedCategory::ALL {
        if !beds.iter().any(|b| b.category == c) {
            continue;
        }
        let history = beds::history(state.ctx(), territory, c).await?;
        charts.extend(chart(c, &history, now));
    }
    let page = RegionPage {
        charts,
        title: "Vue régionale des lits".into(),
        nav: nav(&w),
        territory: t.name,
        categories: BedCategory::ALL
            .iter()
            .map(|c| (c.code().to_owned(), c.label_fr().to_owned()))
            .collect(),
        category: q.categorie.trim().to_owned(),
        establishment_options,
        establishment: q.etablissement.trim().to_owned(),
        refreshed: paris_time(now),
        totals,
        rows,
    };
    Ok(render(&page)?.into_response())
}

async fn region_table(
    State(state): State<AppState>,
    w: WebUser,
    Query(q): Query<RegionQuery>,
) -> Result<Response, PageError> {
    let (_, beds) = region_data(&state, &w, &q).await?;
    let now = state.now_ms();
    let (rows, totals) = rows_and_totals(&beds, now);
    Ok(render(&RegionTable {
        refreshed: paris_time(now),
        totals,
        rows,
    })?
    .into_response())
}

fn csv_field(s: &str) -> String {
    if s.contains([';', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

async fn region_csv(
    State(state): State<AppState>,
    w: WebUser,
    Query(q): Query<RegionQuery>,
) -> Result<Response, PageError> {
    let (_, beds) = region_data(&state, &w, &q).await?;
    let mut out = String::from(
        "etablissement;finess;unite;code_unite;categorie;capacite;occupes;fermes;disponibles;source;mise_a_jour_utc\n",
    );
    for b in &beds {
        let when = jiff::Timestamp::from_millisecond(b.last_update_ms)
            .map(|t| t.to_string())
            .unwrap_or_default();
        out.push_str(&format!(
            "{};{};{};{};{};{};{};{};{};{};{}\n",
            csv_field(&b.establishment_name),
            b.finess,
            csv_field(&b.unit_name),
            csv_field(&b.unit_code),
            b.category.code(),
            b.counts.capacity,
            b.counts.occupied,
            b.counts.closed,
            b.counts.available(),
            b.source.code(),
            when
        ));
    }
    Ok(super::kit::download(
        "text/csv; charset=utf-8",
        "lits.csv",
        out,
    ))
}

/// `GET /region/ws`: says `lits` when the beds of the user's territory change
/// (an admission fed by ADT, a bed manager's change), whichever node took it.
async fn region_ws(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    w: WebUser,
    ws: axum::extract::WebSocketUpgrade,
) -> Result<Response, PageError> {
    super::kit::same_origin(&state, &headers)?;
    let territory = beds::region_of(&w.actor)?;
    let events = state.live.events();
    let ended = crate::extract::session_ended(state.clone(), w.session.clone());
    Ok(ws
        .read_buffer_size(1024)
        .write_buffer_size(1024)
        .max_message_size(1024)
        .on_upgrade(move |socket| {
            super::kit::push_live(socket, state, "beds", events, ended, "lits", move |e| {
                matches!(e, crate::live::LiveEvent::Beds(t) if t == territory)
                    .then(|| "lits".to_owned())
            })
        }))
}
