//! The patient's monitoring pages: the programmes followed, the questionnaire (one
//! question per block, large targets), and right after sending it, what to do now
//! when an answer is serious.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use interop::programme::ItemKind;
use serde::Deserialize;

use super::kit::{
    Nav, check_csrf, field, form_fields, nav, path_id, posted_form, render, same_origin,
};
use crate::error::{AppError, PageError};
use crate::extract::Query;
use crate::extract::WebUser;
use crate::fmt::paris_time;
use crate::services::monitoring::{programme, submit};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/suivi", get(list))
        .route("/suivi/{id}", get(form).post(send))
        .route("/alertes", get(alerts_page))
        .route("/alertes/table", get(alerts_table))
        .route("/alertes/ws", get(alerts_ws))
        .route("/patients/{id}/suivi", axum::routing::post(enrol))
        .route(
            "/patients/{id}/suivi/{enrolment}/terminer",
            axum::routing::post(end),
        )
        .route("/alertes/{id}", get(alert_show).post(alert_act))
        .route(
            "/alertes/{id}/teleconsultation",
            axum::routing::post(alert_teleconsultation),
        )
        .route("/telesurveillance", get(dashboard))
        .route("/propositions/{id}", axum::routing::post(decide_proposal))
        .route(
            "/suivi/{id}/alerte",
            get(raise_form)
                .post(raise)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_PHOTO + 64 * 1024)),
        )
        .route("/suivi/{id}/messages", get(thread_page).post(thread_post))
        .route("/pieces/{id}", get(attachment))
}

struct Row {
    id: String,
    title: String,
    since: String,
    frequency: i64,
    /// Team messages not yet read by the patient.
    unread: usize,
    /// Since when the questionnaire is waiting, if it is.
    due: Option<String>,
}

#[derive(Template)]
#[template(path = "suivi.html")]
struct ListPage {
    title: String,
    nav: Option<Nav>,
    rows: Vec<Row>,
}

async fn list(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let rows = follow_up::overview(state.ctx(), &w.actor)
        .await?
        .into_iter()
        .map(|f| Row {
            title: f.programme.title.clone(),
            since: paris_time(f.enrolment.started_at_ms),
            frequency: f.programme.frequency_days,
            unread: f.unread,
            due: f.due_ms.map(paris_time),
            id: f.enrolment.id.to_string(),
        })
        .collect();
    Ok(render(&ListPage {
        title: "Mon suivi".into(),
        nav: nav(&w),
        rows,
    })?
    .into_response())
}

struct Question {
    id: String,
    text: String,
    options: Vec<(String, String)>,
    boolean: bool,
    unit: Option<String>,
}

#[derive(Template)]
#[template(path = "questionnaire.html")]
struct FormPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    id: String,
    questions: Vec<Question>,
    error: Option<String>,
}

async fn form_page(
    state: &AppState,
    w: &WebUser,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let (e, p) =
        follow_up::own_with_programme(state.ctx(), &w.actor, path_id(id, "suivi")?).await?;
    let questions = p
        .items
        .iter()
        .map(|i| Question {
            id: i.link_id.clone(),
            text: i.text.clone(),
            options: if matches!(i.kind, ItemKind::Grade(_)) {
                i.options
                    .iter()
                    .enumerate()
                    .map(|(g, l)| (g.to_string(), l.clone()))
                    .collect()
            } else {
                vec![]
            },
            boolean: i.kind == ItemKind::Bool,
            unit: i.unit.clone(),
        })
        .collect();
    let page = FormPage {
        title: p.title.clone(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        id: e.id.to_string(),
        questions,
        error,
    };
    Ok((status, render(&page)?).into_response())
}

async fn form(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    form_page(&state, &w, &id, StatusCode::OK, None).await
}

#[derive(Template)]
#[template(path = "submitted.html")]
struct SubmittedPage {
    title: String,
    nav: Option<Nav>,
    advice: Option<String>,
    warned: bool,
}

async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    let fields = form_fields(&body)?;
    let csrf = field(&fields, "csrf");
    check_csrf(&w.session.csrf_token, csrf)?;
    let e = follow_up::own(state.ctx(), &w.actor, path_id(&id, "suivi")?).await?;
    match submit(state.ctx(), &w.actor, &e, &fields).await {
        Ok(s) => {
            let page = SubmittedPage {
                title: "Réponses envoyées".into(),
                nav: nav(&w),
                warned: !s.alerts.is_empty(),
                advice: s.advice,
            };
            Ok(render(&page)?.into_response())
        }
        Err(AppError::Unprocessable(_, m)) => {
            form_page(&state, &w, &id, StatusCode::UNPROCESSABLE_ENTITY, Some(m)).await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- nurse triage

use domain::monitoring::{AlertStatus, TriageError, TriageStep};

use crate::services::alerts::{self, Acted, triage_establishments};
use crate::services::enrolments;
use crate::services::follow_up::{self, Posted};

struct AlertRow {
    id: String,
    level: String,
    level_code: String,
    patient: String,
    item: String,
    label: String,
    reason: String,
    raised: String,
    due: String,
    overdue: bool,
    status: String,
}

#[derive(Template)]
#[template(path = "alerts_table.html")]
struct AlertsTable {
    rows: Vec<AlertRow>,
    pager: Pager,
    threads: Vec<ThreadRow>,
}

/// Where a page of the alert queue stands in it (`alerts::QUEUE_PAGE` alerts
/// a page).
struct Pager {
    /// Alerts in the queue.
    total: usize,
    /// This page, from 1.
    page: usize,
    /// Pages in the queue.
    pages: usize,
    /// The rank of this page's first and last alerts in the queue, from 1.
    first: usize,
    last: usize,
    /// The pages before and after this one, if any.
    prev: Option<usize>,
    next: Option<usize>,
}

/// `?page=N` of the alert queue and of its live table (`live.js` asks the
/// table with the page's own query).
#[derive(Deserialize)]
struct QueueQuery {
    #[serde(default)]
    page: String,
}

impl QueueQuery {
    /// The page asked, 1 when none; a bad number is refused (a number past
    /// the last page gives the last).
    fn page(&self) -> Result<usize, AppError> {
        let page = self.page.trim();
        if page.is_empty() {
            return Ok(1);
        }
        match page.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(AppError::BadRequest(
                "invalid",
                format!("numéro de page invalide : « {page} » (un entier à partir de 1)"),
            )),
        }
    }
}

/// A thread with patient messages the team has not read.
struct ThreadRow {
    enrolment: String,
    patient: String,
    unread: i64,
    last: String,
}

/// Unread patient messages in the user's establishments (names read audited).
async fn unread_rows(state: &AppState, w: &WebUser) -> Result<Vec<ThreadRow>, PageError> {
    Ok(alerts::unread(state.ctx(), &w.actor, &w.session.token_hash)
        .await?
        .into_iter()
        .map(|t| ThreadRow {
            enrolment: t.enrolment.to_string(),
            patient: t.patient,
            unread: t.unread,
            last: paris_time(t.last_ms),
        })
        .collect())
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    rows: Vec<AlertRow>,
    pager: Pager,
    threads: Vec<ThreadRow>,
    /// (id, patient, programme title, reason, when).
    proposals: Vec<(String, String, String, String, String)>,
}

/// One page of the queue's rows; showing a patient's name is an audited read
/// of their identity.
async fn queue_rows(
    state: &AppState,
    w: &WebUser,
    q: &QueueQuery,
) -> Result<(Vec<AlertRow>, Pager), PageError> {
    let queue = alerts::queue(state.ctx(), &w.actor, &w.session.token_hash, q.page()?).await?;
    let first = (queue.page - 1) * alerts::QUEUE_PAGE + 1;
    let pager = Pager {
        total: queue.total,
        page: queue.page,
        pages: queue.pages,
        first,
        last: first + queue.rows.len().saturating_sub(1),
        prev: (queue.page > 1).then(|| queue.page - 1),
        next: (queue.page < queue.pages).then(|| queue.page + 1),
    };
    let rows = queue
        .rows
        .into_iter()
        .map(|q| {
            let a = q.alert;
            AlertRow {
                level: a.level.label_fr().into(),
                level_code: a.level.code().into(),
                patient: q.patient,
                label: crate::services::monitoring::item_label(&a.item),
                item: a.item,
                reason: a.reason,
                raised: paris_time(a.raised_at_ms),
                due: paris_time(a.due_at_ms),
                overdue: q.overdue,
                status: a.status.label_fr().into(),
                id: a.id.to_string(),
            }
        })
        .collect();
    Ok((rows, pager))
}

async fn alerts_page(
    State(state): State<AppState>,
    w: WebUser,
    Query(q): Query<QueueQuery>,
) -> Result<Response, PageError> {
    let (rows, pager) = queue_rows(&state, &w, &q).await?;
    let proposals = alerts::proposals(state.ctx(), &w.actor, &w.session.token_hash)
        .await?
        .into_iter()
        .map(|(p, patient)| {
            (
                p.id,
                patient,
                programme(&p.programme).map_or(p.programme.clone(), |x| x.title.clone()),
                p.reason,
                paris_time(p.created_at_ms),
            )
        })
        .collect();
    Ok(render(&AlertsPage {
        title: "Alertes".into(),
        nav: nav(&w),
        csrf: w.session.csrf_token.clone(),
        threads: unread_rows(&state, &w).await?,
        rows,
        pager,
        proposals,
    })?
    .into_response())
}

/// `POST /propositions/{id}`: a nurse or doctor of the establishment accepts (the
/// patient's consent ticked) or declines an enrolment proposed by an ADT event.
async fn decide_proposal(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let accept = match field(&f, "action").trim() {
        "accept" => true,
        "decline" => false,
        _ => return Err(AppError::BadRequest("invalid", "action inconnue".into()).into()),
    };
    let consent = field(&f, "consentement").trim() == "1";
    enrolments::decide_proposal(state.ctx(), &w.actor, w.user.id, &id, accept, consent).await?;
    Ok(super::kit::see_other("/alertes"))
}

async fn alerts_table(
    State(state): State<AppState>,
    w: WebUser,
    Query(q): Query<QueueQuery>,
) -> Result<Response, PageError> {
    let (rows, pager) = queue_rows(&state, &w, &q).await?;
    let threads = unread_rows(&state, &w).await?;
    Ok(render(&AlertsTable {
        rows,
        pager,
        threads,
    })?
    .into_response())
}

#[derive(Template)]
#[template(path = "alert.html")]
struct AlertPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    id: String,
    level: String,
    patient: String,
    item: String,
    reason: String,
    raised: String,
    due: String,
    status: String,
    actions: Vec<(String, String, bool, String)>,
    timeline: Vec<(String, String, String, String)>,
    error: Option<String>,
    photo: Option<String>,
    thread: String,
    patient_id: String,
    /// Where the actor may close it: the ways out (a teleconsultation, an
    /// orientation) are offered.
    can_close: bool,
    /// (code, label) of the outcomes.
    outcomes: Vec<(&'static str, &'static str)>,
    /// The establishment's doctors (id, name), for a teleconsultation.
    doctors: Vec<(String, String)>,
    /// How it ended, once closed.
    ended: Option<String>,
}

async fn alert_page(
    state: &AppState,
    w: &WebUser,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let shown = alerts::show(state.ctx(), &w.actor, path_id(id, "alerte")?).await?;
    let a = shown.alert;
    let actions = shown
        .steps
        .iter()
        .map(|step| {
            let (label, note) = step_fr(*step, a.status);
            (
                step.code().to_owned(),
                label.to_owned(),
                !note.is_empty(),
                note.to_owned(),
            )
        })
        .collect();
    let can_close = shown.steps.contains(&TriageStep::Close);
    let doctors = if can_close {
        alerts::doctors(state.ctx(), a.establishment)
            .await?
            .into_iter()
            .map(|(id, n)| (id.to_string(), n))
            .collect()
    } else {
        Vec::new()
    };
    let page = AlertPage {
        title: "Alerte".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        level: a.level.label_fr().into(),
        patient: shown.patient.traits.display_name(),
        item: crate::services::monitoring::item_label(&a.item),
        reason: a.reason,
        raised: paris_time(a.raised_at_ms),
        due: paris_time(a.due_at_ms),
        status: a.status.label_fr().into(),
        actions,
        timeline: shown.timeline,
        error,
        photo: shown.photo,
        thread: a.enrolment.to_string(),
        id: a.id.to_string(),
        patient_id: a.patient.to_string(),
        can_close,
        outcomes: domain::monitoring::Outcome::ALL
            .iter()
            .map(|o| (o.code(), o.label_fr()))
            .collect(),
        doctors,
        ended: a.outcome_kind.map(|o| o.label_fr().to_owned()),
    };
    Ok((status, render(&page)?).into_response())
}

/// A step's button and the label of its note (empty: no note).
fn step_fr(step: TriageStep, status: AlertStatus) -> (&'static str, &'static str) {
    match step {
        TriageStep::Take => ("Prendre en charge", ""),
        TriageStep::CallBack => ("Patient rappelé", "Compte rendu de l'appel"),
        TriageStep::Advise => ("Conseil donné", "Conseil"),
        TriageStep::Escalate => ("Transmettre au médecin", "Note pour le médecin"),
        TriageStep::Close if status == AlertStatus::Escalated => ("Clore", "Décision du médecin"),
        TriageStep::Close => ("Clore", "Issue"),
    }
}

async fn alert_show(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    alert_page(&state, &w, &id, StatusCode::OK, None).await
}

async fn alert_act(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let step = field(&f, "action").trim();
    let note = field(&f, "note");
    let aid = path_id(&id, "alerte")?;
    let outcome = field(&f, "issue");
    let acted = alerts::act(
        state.ctx(),
        &w.actor,
        &w.user.display_name,
        aid,
        step,
        note,
        outcome,
    )
    .await?;
    after_step(&state, &w, &id, acted).await
}

/// `POST /alertes/{id}/teleconsultation`: the first free video slot of the
/// chosen doctor, booked for the patient; the alert closes with it.
async fn alert_teleconsultation(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let aid = path_id(&id, "alerte")?;
    let doctor = path_id(field(&f, "medecin"), "médecin")?;
    let name = &w.user.display_name;
    match alerts::book_teleconsultation(state.ctx(), &w.actor, name, aid, doctor).await {
        Ok(acted) => after_step(&state, &w, &id, acted).await,
        Err(AppError::Unprocessable(_, why)) => {
            alert_page(&state, &w, &id, StatusCode::UNPROCESSABLE_ENTITY, Some(why)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn after_step(
    state: &AppState,
    w: &WebUser,
    id: &str,
    acted: Acted,
) -> Result<Response, PageError> {
    match acted {
        Acted::Done => Ok(super::kit::see_other(&format!("/alertes/{id}"))),
        Acted::Refused(why) => {
            let status = match why {
                domain::DomainError::Triage(TriageError::DoctorOnly) => StatusCode::FORBIDDEN,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            alert_page(state, w, id, status, Some(why.to_string())).await
        }
    }
}

// ---------------------------------------------------------------- live push

use axum::extract::ws::WebSocketUpgrade;

use crate::state::LiveEvent;

/// `GET /alertes/ws`: a WebSocket that says `alertes` whenever the queue of one of
/// the user's establishments changes; the page then fetches the fresh fragment.
/// Small buffers: thousands of open queues must stay cheap.
async fn alerts_ws(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    w: WebUser,
    ws: WebSocketUpgrade,
) -> Result<Response, PageError> {
    super::kit::same_origin(&state, &headers)?;
    let mine = triage_establishments(&w.actor);
    if mine.is_empty() {
        return Err(AppError::Forbidden(
            "file d'alertes réservée aux infirmiers et médecins".into(),
        )
        .into());
    }
    let events = state.live.events();
    let ended = crate::extract::session_ended(state.clone(), w.session.clone());
    Ok(ws
        .read_buffer_size(1024)
        .write_buffer_size(1024)
        .max_message_size(4096)
        .on_upgrade(move |socket| {
            super::kit::push_live(
                socket,
                state,
                "alerts",
                events,
                ended,
                "alertes",
                move |e| match e {
                    LiveEvent::Alerts(est) if mine.contains(&est) => Some("alertes".into()),
                    // Says which response raised them (the load benchmark times each one).
                    LiveEvent::NewAlerts(est, response) if mine.contains(&est) => {
                        Some(format!("alertes:{response}"))
                    }
                    _ => None,
                },
            )
        }))
}

// ---------------------------------------------------------------- enrolment by hand

async fn enrol(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let consent = field(&f, "consentement").trim() == "1";
    let programme = field(&f, "programme");
    enrolments::enrol(state.ctx(), &w.actor, w.user.id, &id, programme, consent).await?;
    Ok(super::kit::see_other(&format!("/patients/{id}")))
}

async fn end(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path((id, enrolment)): Path<(String, String)>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let reason = field(&f, "motif");
    enrolments::end(
        state.ctx(),
        &w.actor,
        &id,
        path_id(&enrolment, "suivi")?,
        reason,
    )
    .await?;
    Ok(super::kit::see_other(&format!("/patients/{id}")))
}

// ---------------------------------------------------------------- dashboard

/// One week's stacked bar.
struct WeekBar {
    /// Left edge in the SVG.
    x: usize,
    /// (y, height, level code) of each non-empty level.
    parts: Vec<(f64, f64, &'static str)>,
    /// "il y a 2 semaines".
    label: String,
    /// Alerts per level: info, warning, urgent.
    counts: [usize; 3],
}

/// One programme's figures at one establishment.
struct DashboardSection {
    establishment: String,
    title: String,
    followed: i64,
    info: usize,
    warning: usize,
    urgent: usize,
    median: String,
    sla: String,
    bars: Vec<WeekBar>,
    chart_label: String,
    /// Closed alerts per outcome: (code, label, count).
    outcomes: Vec<(&'static str, &'static str, usize)>,
}

#[derive(Template)]
#[template(path = "monitoring_dashboard.html")]
struct DashboardPage {
    title: String,
    nav: Option<Nav>,
    weeks: usize,
    sections: Vec<DashboardSection>,
}

/// "1 h 05", "35 min", "2 j 3 h".
fn duration_fr(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    let (d, h, m) = (minutes / 1440, (minutes / 60) % 24, minutes % 60);
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m:02}"),
        _ => format!("{d} j {h} h"),
    }
}

/// `GET /telesurveillance`: per establishment of the user (nurses, doctors,
/// administrators) and programme, the patients followed, alerts per level over
/// eight weeks, the median time to the first action and the SLA compliance, with a
/// weekly chart. Aggregates only: no patient is named.
async fn dashboard(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    const WEEKS: usize = 8;
    let sections = crate::services::monitoring::dashboard(state.ctx(), &w.actor, WEEKS)
        .await?
        .into_iter()
        .map(|f| {
            let d = &f.figures;
            let total: usize = d.by_level.iter().sum();
            DashboardSection {
                establishment: f.establishment,
                title: f.programme.title.clone(),
                followed: f.followed,
                info: d.by_level[0],
                warning: d.by_level[1],
                urgent: d.by_level[2],
                median: d.median_handle_ms.map_or_else(|| "—".into(), duration_fr),
                sla: d.sla_percent().map_or_else(
                    || "—".into(),
                    |pct| format!("{pct:.0} % ({} sur {})", d.within_sla, d.sla_decided),
                ),
                bars: week_bars(d, WEEKS),
                outcomes: domain::monitoring::Outcome::ALL
                    .iter()
                    .zip(d.outcomes)
                    .map(|(o, n)| (o.code(), o.label_fr(), n))
                    .collect(),
                chart_label: format!(
                    "Alertes par semaine sur {WEEKS} semaines, {} au total : {} urgente(s), {} à surveiller, {} pour information",
                    total, d.by_level[2], d.by_level[1], d.by_level[0]
                ),
            }
        })
        .collect();
    let page = DashboardPage {
        title: "Tableau de bord de télésurveillance".into(),
        nav: nav(&w),
        weeks: WEEKS,
        sections,
    };
    Ok(render(&page)?.into_response())
}

/// The weekly stacked bars of the chart, oldest week first.
fn week_bars(d: &domain::monitoring::Dashboard, weeks: usize) -> Vec<WeekBar> {
    let max = d
        .weeks
        .iter()
        .map(|w| w.iter().sum::<usize>())
        .max()
        .unwrap_or(0)
        .max(1);
    d.weeks
        .iter()
        .enumerate()
        .map(|(i, counts)| {
            let mut y = 80.0;
            let mut parts = Vec::new();
            for (n, code) in counts.iter().zip(["info", "warning", "urgent"]) {
                let h = *n as f64 / max as f64 * 72.0;
                y -= h;
                if *n > 0 {
                    parts.push((y, h, code));
                }
            }
            let label = match weeks - i - 1 {
                0 => "cette semaine".to_owned(),
                1 => "il y a 1 semaine".to_owned(),
                n => format!("il y a {n} semaines"),
            };
            WeekBar {
                x: 8 + i * 36,
                parts,
                label,
                counts: *counts,
            }
        })
        .collect()
}

// ---------------------------------------------------------------- patient alert, photo, messages

use crate::services::uploads::MAX_PHOTO;

#[derive(Template)]
#[template(path = "raise.html")]
struct RaisePage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    id: String,
    symptoms: Vec<(String, String)>,
    error: Option<String>,
    sent: bool,
}

async fn raise_page(
    state: &AppState,
    w: &WebUser,
    id: &str,
    status: StatusCode,
    error: Option<String>,
    sent: bool,
) -> Result<Response, PageError> {
    let (e, p) =
        follow_up::own_with_programme(state.ctx(), &w.actor, path_id(id, "suivi")?).await?;
    let mut symptoms: Vec<(String, String)> = p
        .items
        .iter()
        .filter(|i| matches!(i.kind, ItemKind::Grade(_) | ItemKind::Bool))
        .map(|i| (i.link_id.clone(), i.label.clone()))
        .collect();
    symptoms.push(("autre".into(), "Autre chose".into()));
    let page = RaisePage {
        title: "Signaler un problème".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        id: e.id.to_string(),
        symptoms,
        error,
        sent,
    };
    Ok((status, render(&page)?).into_response())
}

async fn raise_form(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    raise_page(&state, &w, &id, StatusCode::OK, None, false).await
}

/// `POST /suivi/{id}/alerte` (multipart): the patient raises an alert: a symptom,
/// their words, optionally a photo (JPEG or PNG, 5 Mo at most). It lands in the
/// nurses' queue at once; the patient is told when they will be called back and
/// to call 15 if they feel in danger.
async fn raise(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    mut form: axum::extract::Multipart,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    let bad = |m: &str| AppError::BadRequest("invalid", m.to_owned());
    let (mut csrf, mut symptom, mut text, mut photo) =
        (String::new(), String::new(), String::new(), None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| bad(&format!("formulaire illisible : {e}")))?
    {
        let name = field.name().unwrap_or("").to_owned();
        let has_file = field.file_name().is_some_and(|f| !f.is_empty());
        let bytes = field
            .bytes()
            .await
            .map_err(|_| AppError::TooLarge(MAX_PHOTO))?;
        let text_of = |b: &[u8]| String::from_utf8_lossy(b).trim().to_owned();
        match name.as_str() {
            "csrf" => csrf = text_of(&bytes),
            "symptome" => symptom = text_of(&bytes),
            "texte" => text = text_of(&bytes).chars().take(1000).collect(),
            "photo" if has_file && !bytes.is_empty() => photo = Some(bytes),
            _ => {}
        }
    }
    check_csrf(&w.session.csrf_token, &csrf)?;
    let raised = follow_up::Raised {
        symptom: &symptom,
        text: &text,
        photo: photo.as_deref(),
    };
    let why = match follow_up::raise(
        state.ctx(),
        &w.actor,
        &w.user.display_name,
        path_id(&id, "suivi")?,
        &raised,
    )
    .await?
    {
        Posted::Done => return raise_page(&state, &w, &id, StatusCode::OK, None, true).await,
        Posted::Ended => {
            "ce suivi est terminé : appelez le service qui vous suivait, ou le 15 en cas d'urgence"
        }
        Posted::Refused(why) => why,
    };
    raise_page(
        &state,
        &w,
        &id,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(why.to_owned()),
        false,
    )
    .await
}

/// `GET /pieces/{id}`: a file a patient sent, for the patient and for carers who
/// may read their clinical data (an audited read). Served so that a browser
/// cannot run it: fixed type, no sniffing, sandboxed.
async fn attachment(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let a = follow_up::attachment(state.ctx(), &w.actor, &id).await?;
    let mut resp = a.bytes.into_response();
    let h = resp.headers_mut();
    for (k, v) in [
        ("content-type", a.content_type.as_str()),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "private, no-store"),
        ("content-security-policy", "default-src 'none'; sandbox"),
    ] {
        if let Ok(v) = v.parse() {
            h.insert(k, v);
        }
    }
    Ok(resp)
}

#[derive(Template)]
#[template(path = "messages.html")]
struct ThreadPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    id: String,
    patient_side: bool,
    heading: String,
    /// (from the reader's side, author, when, text).
    messages: Vec<(bool, String, String, String)>,
    error: Option<String>,
}

async fn thread_render(
    state: &AppState,
    w: &WebUser,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let t = follow_up::thread(state.ctx(), &w.actor, path_id(id, "suivi")?).await?;
    let heading = match t.patient {
        None => "Messages avec l'équipe de soins".to_owned(),
        Some(name) => format!("Messages — {name}"),
    };
    let messages = t
        .messages
        .into_iter()
        .map(|(own, author, at_ms, body)| (own, author, paris_time(at_ms), body))
        .collect();
    let page = ThreadPage {
        title: "Messages".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        id: t.enrolment.id.to_string(),
        patient_side: t.patient_side,
        heading,
        messages,
        error,
    };
    Ok((status, render(&page)?).into_response())
}

async fn thread_page(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    thread_render(&state, &w, &id, StatusCode::OK, None).await
}

async fn thread_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let text = field(&f, "message");
    let (status, why) = match follow_up::post(
        state.ctx(),
        &w.actor,
        &w.user.display_name,
        path_id(&id, "suivi")?,
        text,
    )
    .await?
    {
        Posted::Done => return Ok(super::kit::see_other(&format!("/suivi/{id}/messages"))),
        Posted::Refused(why) => (StatusCode::UNPROCESSABLE_ENTITY, why),
        Posted::Ended => (StatusCode::CONFLICT, "ce suivi est terminé"),
    };
    thread_render(&state, &w, &id, status, Some(why.to_owned())).await
}
