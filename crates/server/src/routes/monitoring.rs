//! The patient's monitoring pages: the programmes followed, the questionnaire (one
//! question per block, large targets), and right after sending it, what to do now
//! when an answer is serious.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use domain::policy::Principal;
use interop::programme::ItemKind;
use store::monitoring::Enrolment;

use super::kit::{Nav, check_csrf, field, form_fields, nav, posted_form, render, same_origin};
use crate::error::{AppError, PageError};
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

async fn own_enrolments(state: &AppState, w: &WebUser) -> Result<Vec<Enrolment>, PageError> {
    let Principal::Patient { patient, .. } = w.actor.principal else {
        return Err(AppError::Forbidden("espace réservé aux patients suivis".into()).into());
    };
    Ok(state
        .store
        .enrolments_of(patient)
        .await?
        .into_iter()
        .filter(|e| e.status == "active")
        .collect())
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
    let enrolments = own_enrolments(&state, &w).await?;
    let (messages, responses) = match enrolments.first() {
        Some(e) => (
            state.store.messages_of(e.patient).await?,
            state.store.responses_of(e.patient).await?,
        ),
        None => (vec![], vec![]),
    };
    let now = state.now_ms();
    let rows = enrolments
        .into_iter()
        .filter_map(|e| {
            programme(&e.programme).map(|p| Row {
                title: p.title.clone(),
                since: paris_time(e.started_at_ms),
                frequency: p.frequency_days,
                unread: messages
                    .iter()
                    .filter(|m| m.enrolment == e.id && !m.from_patient && m.read_at_ms.is_none())
                    .count(),
                due: domain::monitoring::questionnaire_due(
                    e.started_at_ms,
                    responses
                        .iter()
                        .filter(|r| r.enrolment == e.id)
                        .map(|r| r.submitted_at_ms)
                        .max(),
                    p.frequency_days,
                    now,
                )
                .map(paris_time),
                id: e.id,
            })
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

async fn enrolment_of(state: &AppState, w: &WebUser, id: &str) -> Result<Enrolment, PageError> {
    own_enrolments(state, w)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| PageError(AppError::NotFound("suivi introuvable".into())))
}

async fn form_page(
    state: &AppState,
    w: &WebUser,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let e = enrolment_of(state, w, id).await?;
    let p = programme(&e.programme)
        .ok_or_else(|| PageError(AppError::NotFound("programme inconnu".into())))?;
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
        id: e.id,
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
    let e = enrolment_of(&state, &w, &id).await?;
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

use domain::EstablishmentId;
use domain::monitoring::{AlertStatus, TriageAction};
use domain::policy::{Decision, PatientAction, authorize_patient};
use store::monitoring::Alert;

use crate::services::patients::scope_of;

/// Establishments whose alerts this user triages: nurses and doctors.
fn triage_establishments(w: &WebUser) -> Vec<EstablishmentId> {
    let mut v: Vec<EstablishmentId> = w
        .actor
        .grants
        .iter()
        .filter(|g| matches!(g.role, domain::org::Role::Nurse | domain::org::Role::Doctor))
        .map(|g| g.establishment)
        .collect();
    v.dedup();
    v
}

/// Whether the user is a doctor of that establishment (doctors close escalations).
fn is_doctor_of(w: &WebUser, establishment: EstablishmentId) -> bool {
    w.actor
        .grants
        .iter()
        .any(|g| g.role == domain::org::Role::Doctor && g.establishment == establishment)
}

fn status_fr(s: AlertStatus) -> &'static str {
    match s {
        AlertStatus::Open => "à prendre",
        AlertStatus::Taken => "prise en charge",
        AlertStatus::Escalated => "transmise au médecin",
        AlertStatus::Closed => "close",
    }
}

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
    threads: Vec<ThreadRow>,
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
    let mut out = Vec::new();
    for e in triage_establishments(w) {
        for (enrolment, patient, unread, last) in state.store.unread_threads(e).await? {
            let p = crate::services::patients::read(state.ctx(), &w.actor, patient).await?;
            out.push(ThreadRow {
                enrolment,
                patient: p.traits.display_name(),
                unread,
                last: paris_time(last),
            });
        }
    }
    Ok(out)
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    rows: Vec<AlertRow>,
    threads: Vec<ThreadRow>,
    /// (id, patient, programme title, reason, when).
    proposals: Vec<(String, String, String, String, String)>,
}

/// The queue rows; showing a patient's name is an audited read of their identity.
async fn queue_rows(state: &AppState, w: &WebUser) -> Result<Vec<AlertRow>, PageError> {
    let ests = triage_establishments(w);
    if ests.is_empty() {
        return Err(AppError::Forbidden(
            "file d'alertes réservée aux infirmiers et médecins".into(),
        )
        .into());
    }
    let now = state.now_ms();
    let mut rows = Vec::new();
    for e in ests {
        for a in state.store.alert_queue(e).await? {
            let p = crate::services::patients::read(state.ctx(), &w.actor, a.patient).await?;
            rows.push(AlertRow {
                level: a.level.label_fr().into(),
                level_code: a.level.code().into(),
                patient: p.traits.display_name(),
                label: crate::services::monitoring::item_label(&a.item),
                item: a.item.clone(),
                reason: a.reason.clone(),
                raised: paris_time(a.raised_at_ms),
                due: paris_time(a.due_at_ms),
                // Past due and not yet with a nurse, whether escalated or not.
                overdue: matches!(a.status, AlertStatus::Open | AlertStatus::Escalated)
                    && now > a.due_at_ms,
                status: status_fr(a.status).into(),
                id: a.id,
            });
        }
    }
    Ok(rows)
}

async fn alerts_page(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let rows = queue_rows(&state, &w).await?;
    let mut proposals = Vec::new();
    for e in triage_establishments(&w) {
        for p in state.store.proposals(e).await? {
            let patient = crate::services::patients::read(state.ctx(), &w.actor, p.patient).await?;
            proposals.push((
                p.id,
                patient.traits.display_name(),
                programme(&p.programme).map_or(p.programme.clone(), |x| x.title.clone()),
                p.reason,
                paris_time(p.created_at_ms),
            ));
        }
    }
    Ok(render(&AlertsPage {
        title: "Alertes".into(),
        nav: nav(&w),
        csrf: w.session.csrf_token.clone(),
        threads: unread_rows(&state, &w).await?,
        rows,
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
    let mut found = None;
    for e in triage_establishments(&w) {
        if let Some(p) = state
            .store
            .proposals(e)
            .await?
            .into_iter()
            .find(|p| p.id == id)
        {
            found = Some(p);
        }
    }
    let p = found
        .ok_or_else(|| AppError::NotFound("proposition introuvable ou déjà traitée".into()))?;
    let accept = match field(&f, "action").trim() {
        "accept" => true,
        "decline" => false,
        _ => return Err(AppError::BadRequest("invalid", "action inconnue".into()).into()),
    };
    if accept && field(&f, "consentement").trim() != "1" {
        return Err(AppError::Unprocessable(
            "business-rule",
            "le consentement du patient doit être recueilli avant l'inscription".into(),
        )
        .into());
    }
    let (_, grant) = carer(&state, &w, &p.patient.to_string()).await?;
    let who = domain::audit::AuditActor::new(&w.actor, Some(grant));
    match state
        .store
        .decide_proposal(&p, accept, &w.user.id.to_string(), &who, state.now_ms())
        .await?
    {
        Some(_) => Ok(super::kit::see_other("/alertes")),
        None => Err(AppError::Conflict("proposition déjà traitée".into()).into()),
    }
}

async fn alerts_table(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let rows = queue_rows(&state, &w).await?;
    let threads = unread_rows(&state, &w).await?;
    Ok(render(&AlertsTable { rows, threads })?.into_response())
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
}

/// Loads an alert this user may triage: a nurse or doctor of the alert's
/// establishment, allowed to write the patient's clinical data.
async fn load_alert(
    state: &AppState,
    w: &WebUser,
    id: &str,
) -> Result<(Alert, Option<domain::policy::Grant>), PageError> {
    let not_found = || PageError(AppError::NotFound("alerte introuvable".into()));
    let a = state.store.alert(id).await.map_err(|_| not_found())?;
    if !triage_establishments(w).contains(&a.establishment) {
        return Err(not_found());
    }
    let p = state.store.patient(a.patient).await?;
    let scope = scope_of(state.ctx(), &p).await?;
    match authorize_patient(&w.actor, PatientAction::WriteClinical, &scope) {
        Decision::Allow(g) => Ok((a, g)),
        Decision::Deny(why) => Err(AppError::Forbidden(why.into()).into()),
    }
}

async fn alert_page(
    state: &AppState,
    w: &WebUser,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let (a, _) = load_alert(state, w, id).await?;
    let p = crate::services::patients::read(state.ctx(), &w.actor, a.patient).await?;
    let doctor = is_doctor_of(w, a.establishment);
    let mut actions: Vec<(String, String, bool, String)> = Vec::new();
    let mut add = |code: &str, label: &str, note: bool, note_label: &str| {
        actions.push((code.into(), label.into(), note, note_label.into()))
    };
    match a.status {
        AlertStatus::Open => {
            add("take", "Prendre en charge", false, "");
            add(
                "escalate",
                "Transmettre au médecin",
                true,
                "Note pour le médecin",
            );
        }
        AlertStatus::Taken => {
            add(
                "callback",
                "Patient rappelé",
                true,
                "Compte rendu de l'appel",
            );
            add("advise", "Conseil donné", true, "Conseil");
            add(
                "escalate",
                "Transmettre au médecin",
                true,
                "Note pour le médecin",
            );
            add("close", "Clore", true, "Issue");
        }
        AlertStatus::Escalated if doctor => add("close", "Clore", true, "Décision du médecin"),
        _ => {}
    }
    let timeline = crate::services::monitoring::timeline(state.ctx(), &a.id).await?;
    let page = AlertPage {
        title: "Alerte".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        level: a.level.label_fr().into(),
        patient: p.traits.display_name(),
        item: crate::services::monitoring::item_label(&a.item),
        reason: a.reason.clone(),
        raised: paris_time(a.raised_at_ms),
        due: paris_time(a.due_at_ms),
        status: status_fr(a.status).into(),
        actions,
        timeline,
        error,
        photo: state.store.alert_attachment(&a.id).await?,
        thread: a.enrolment.clone(),
        id: a.id,
    };
    Ok((status, render(&page)?).into_response())
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
    let get = |k: &str| field(&f, k).trim().to_owned();
    let (a, grant) = load_alert(&state, &w, &id).await?;
    let action = match get("action").as_str() {
        "take" => TriageAction::Take,
        "callback" => TriageAction::CallBack(get("note")),
        "advise" => TriageAction::Advise(get("note")),
        "escalate" => TriageAction::Escalate(get("note")),
        "close" => TriageAction::Close(get("note")),
        _ => return Err(AppError::BadRequest("invalid", "action inconnue".into()).into()),
    };
    let doctor = is_doctor_of(&w, a.establishment);
    if a.status == AlertStatus::Escalated && !doctor {
        return alert_page(
            &state,
            &w,
            &id,
            StatusCode::FORBIDDEN,
            Some("une alerte transmise est close par le médecin".into()),
        )
        .await;
    }
    let who = domain::audit::AuditActor::new(&w.actor, grant);
    let report = match &action {
        TriageAction::Close(outcome) if !outcome.is_empty() => {
            crate::services::monitoring::closing_report(
                state.ctx(),
                &a,
                outcome,
                &w.user.display_name,
            )
            .await?
        }
        _ => None,
    };
    match state
        .store
        .triage_alert(
            &id,
            &action,
            &who,
            &w.user.display_name,
            report.as_ref(),
            state.now_ms(),
        )
        .await
    {
        Ok(_) => {
            let _ = state.events.send(LiveEvent::Alerts(a.establishment));
            Ok(super::kit::see_other(&format!("/alertes/{id}")))
        }
        Err(store::StoreError::Rule(e)) => {
            alert_page(
                &state,
                &w,
                &id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(e.to_string()),
            )
            .await
        }
        Err(e) => Err(AppError::from(e).into()),
    }
}

// ---------------------------------------------------------------- live push

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};

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
    let mine = triage_establishments(&w);
    if mine.is_empty() {
        return Err(AppError::Forbidden(
            "file d'alertes réservée aux infirmiers et médecins".into(),
        )
        .into());
    }
    let events = state.events.subscribe();
    let ended = crate::extract::session_ended(state.clone(), w.session.clone());
    Ok(ws
        .read_buffer_size(1024)
        .write_buffer_size(1024)
        .max_message_size(4096)
        .on_upgrade(move |socket| push(socket, events, mine, ended)))
}

async fn push(
    mut socket: WebSocket,
    mut events: tokio::sync::broadcast::Receiver<LiveEvent>,
    mine: Vec<EstablishmentId>,
    ended: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(ended);
    loop {
        tokio::select! {
            () = &mut ended => return,
            e = events.recv() => match e {
                Ok(LiveEvent::Alerts(est)) if mine.contains(&est) => {
                    if socket.send(Message::Text("alertes".into())).await.is_err() {
                        return;
                    }
                }
                // Says which response raised them (the load benchmark times each one).
                Ok(LiveEvent::NewAlerts(est, response)) if mine.contains(&est) => {
                    if socket.send(Message::Text(format!("alertes:{response}").into())).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                // Missed events: ask for a refresh anyway.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    if socket.send(Message::Text("alertes".into())).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            m = socket.recv() => match m {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

// ---------------------------------------------------------------- enrolment by hand

/// The establishment from which `w` may enrol `patient` (write its clinical data).
async fn carer(
    state: &AppState,
    w: &WebUser,
    patient: &str,
) -> Result<(domain::PatientId, domain::policy::Grant), PageError> {
    let not_found = || PageError(AppError::NotFound("patient introuvable".into()));
    let pid: domain::PatientId = patient.parse().map_err(|_| not_found())?;
    let p = state.store.patient(pid).await.map_err(|_| not_found())?;
    let scope = scope_of(state.ctx(), &p).await?;
    match authorize_patient(&w.actor, PatientAction::WriteClinical, &scope) {
        Decision::Allow(Some(g)) => Ok((pid, g)),
        _ => Err(AppError::Forbidden(
            "seul un établissement qui prend en charge ce patient peut l'inscrire".into(),
        )
        .into()),
    }
}

async fn enrol(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let (pid, grant) = carer(&state, &w, &id).await?;
    let Some(p) = programme(field(&f, "programme").trim()) else {
        return Err(AppError::Unprocessable("business-rule", "programme inconnu".into()).into());
    };
    if field(&f, "consentement").trim() != "1" {
        return Err(AppError::Unprocessable(
            "business-rule",
            "le consentement du patient doit être recueilli avant l'inscription".into(),
        )
        .into());
    }
    let n = store::monitoring::NewEnrolment {
        patient: pid,
        establishment: grant.establishment,
        programme: p.id.clone(),
        consent_at_ms: state.now_ms(),
        created_by: w.user.id.to_string(),
    };
    state
        .store
        .enrol(
            &n,
            &domain::audit::AuditActor::new(&w.actor, Some(grant)),
            state.now_ms(),
        )
        .await?;
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
    let (pid, grant) = carer(&state, &w, &id).await?;
    let reason = field(&f, "motif").trim();
    if reason.is_empty() {
        return Err(AppError::Unprocessable(
            "business-rule",
            "indiquez le motif de fin du suivi".into(),
        )
        .into());
    }
    let Some(ours) = state
        .store
        .enrolments_of(pid)
        .await?
        .into_iter()
        .find(|e| e.id == enrolment && e.establishment == grant.establishment)
    else {
        return Err(AppError::NotFound("suivi introuvable".into()).into());
    };
    let who = domain::audit::AuditActor::new(&w.actor, Some(grant));
    let report = if ours.status == "active" {
        crate::services::monitoring::summary_report(state.ctx(), &ours, reason).await?
    } else {
        None
    };
    if !state
        .store
        .end_enrolment(&enrolment, reason, report.as_ref(), &who, state.now_ms())
        .await?
    {
        return Err(AppError::Conflict("ce suivi est déjà terminé".into()).into());
    }
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
    let mut establishments: Vec<EstablishmentId> = w
        .actor
        .grants
        .iter()
        .filter(|g| {
            matches!(
                g.role,
                domain::org::Role::Nurse | domain::org::Role::Doctor | domain::org::Role::Admin
            )
        })
        .map(|g| g.establishment)
        .collect();
    establishments.sort_by_key(ToString::to_string);
    establishments.dedup();
    if establishments.is_empty() {
        return Err(AppError::Forbidden(
            "tableau de bord réservé aux équipes de télésurveillance".into(),
        )
        .into());
    }
    let now = state.now_ms();
    let since = now - i64::try_from(WEEKS).unwrap_or(8) * 7 * 24 * 3600 * 1000;
    let mut sections = Vec::new();
    for e in establishments {
        let name = state.store.establishment(e).await?.name;
        let facts = state.store.alert_facts(e, since).await?;
        let followed = state.store.active_enrolments(e).await?;
        for p in crate::services::monitoring::programmes() {
            let mine: Vec<domain::monitoring::AlertFact> = facts
                .iter()
                .filter(|(id, _)| *id == p.id)
                .map(|(_, f)| *f)
                .collect();
            let patients = followed
                .iter()
                .find(|(id, _)| *id == p.id)
                .map_or(0, |(_, n)| *n);
            if mine.is_empty() && patients == 0 {
                continue;
            }
            let d = domain::monitoring::dashboard(&mine, now, WEEKS);
            let max = d
                .weeks
                .iter()
                .map(|w| w.iter().sum::<usize>())
                .max()
                .unwrap_or(0)
                .max(1);
            let bars = d
                .weeks
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
                    let weeks_ago = WEEKS - i - 1;
                    let label = match weeks_ago {
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
                .collect();
            let total: usize = d.by_level.iter().sum();
            sections.push(DashboardSection {
                establishment: name.clone(),
                title: p.title.clone(),
                followed: patients,
                info: d.by_level[0],
                warning: d.by_level[1],
                urgent: d.by_level[2],
                median: d.median_handle_ms.map_or_else(|| "—".into(), duration_fr),
                sla: d.sla_percent().map_or_else(
                    || "—".into(),
                    |pct| format!("{pct:.0} % ({} sur {})", d.within_sla, d.sla_decided),
                ),
                bars,
                chart_label: format!(
                    "Alertes par semaine sur {WEEKS} semaines, {} au total : {} urgente(s), {} à surveiller, {} pour information",
                    total, d.by_level[2], d.by_level[1], d.by_level[0]
                ),
            });
        }
    }
    let page = DashboardPage {
        title: "Tableau de bord de télésurveillance".into(),
        nav: nav(&w),
        weeks: WEEKS,
        sections,
    };
    Ok(render(&page)?.into_response())
}

// ---------------------------------------------------------------- patient alert, photo, messages

/// Largest photo a patient may send with an alert.
const MAX_PHOTO: usize = 5 * 1024 * 1024;

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
    let e = enrolment_of(state, w, id).await?;
    let p = programme(&e.programme)
        .ok_or_else(|| PageError(AppError::NotFound("programme inconnu".into())))?;
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
        id: e.id,
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
    let e = enrolment_of(&state, &w, &id).await?;
    let p = programme(&e.programme)
        .ok_or_else(|| PageError(AppError::NotFound("programme inconnu".into())))?;
    let fail = async |m: &str| {
        raise_page(
            &state,
            &w,
            &id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(m.to_owned()),
            false,
        )
        .await
    };
    if e.status != "active" {
        return fail(
            "ce suivi est terminé : appelez le service qui vous suivait, ou le 15 en cas d'urgence",
        )
        .await;
    }
    let label = if symptom == "autre" {
        "Autre chose".to_owned()
    } else if let Some(i) = p.items.iter().find(|i| i.link_id == symptom) {
        i.label.clone()
    } else {
        return fail("choisissez ce qui ne va pas dans la liste").await;
    };
    if text.is_empty() {
        return fail("décrivez en quelques mots ce qui ne va pas").await;
    }
    let photo = match &photo {
        Some(b) if b.len() > MAX_PHOTO => {
            return fail("la photo dépasse 5 Mo : choisissez une photo plus petite").await;
        }
        Some(b) => match super::kit::sniff_type(b) {
            Some(t) if t.starts_with("image/") => Some((t, b.as_ref())),
            _ => return fail("la photo doit être au format JPEG ou PNG").await,
        },
        None => None,
    };
    let alert = store::monitoring::NewAlert {
        level: domain::monitoring::AlertLevel::Warning,
        item: symptom,
        reason: format!("signalé par le patient ({label}) : {text}"),
        advice: "Une infirmière vous rappellera dans la demi-journée.".into(),
    };
    let who = domain::audit::AuditActor::new(&w.actor, None);
    state
        .store
        .raise_patient_alert(
            &e,
            &alert,
            photo,
            &w.user.display_name,
            p.sla_hours * 3600 * 1000,
            &who,
            state.now_ms(),
        )
        .await?;
    let _ = state.events.send(LiveEvent::Alerts(e.establishment));
    raise_page(&state, &w, &id, StatusCode::OK, None, true).await
}

/// `GET /pieces/{id}`: a file a patient sent, for the patient and for carers who
/// may read their clinical data (an audited read). Served so that a browser
/// cannot run it: fixed type, no sniffing, sandboxed.
async fn attachment(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let not_found = || PageError(AppError::NotFound("pièce introuvable".into()));
    let a = state.store.attachment(&id).await.map_err(|_| not_found())?;
    let own =
        matches!(w.actor.principal, Principal::Patient { patient, .. } if patient == a.patient);
    if !own {
        crate::services::patients::clinical_read(
            state.ctx(),
            &w.actor,
            a.patient,
            &format!("Binary/{id}"),
        )
        .await
        .map_err(|e| match e {
            AppError::Forbidden(_) => not_found(),
            other => other.into(),
        })?;
    }
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

/// Who opens a thread: the patient (their enrolment) or a nurse or doctor of the
/// enrolment's establishment allowed to write the patient's clinical data.
async fn thread_access(
    state: &AppState,
    w: &WebUser,
    id: &str,
) -> Result<(Enrolment, bool, Option<domain::policy::Grant>), PageError> {
    if matches!(w.actor.principal, Principal::Patient { .. }) {
        return Ok((enrolment_of(state, w, id).await?, true, None));
    }
    let not_found = || PageError(AppError::NotFound("suivi introuvable".into()));
    let e = state.store.enrolment(id).await.map_err(|_| not_found())?;
    if !triage_establishments(w).contains(&e.establishment) {
        return Err(not_found());
    }
    let (_, grant) = carer(state, w, &e.patient.to_string()).await?;
    Ok((e, false, Some(grant)))
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
    let (e, patient_side, grant) = thread_access(state, w, id).await?;
    let heading = if patient_side {
        "Messages avec l'équipe de soins".to_owned()
    } else {
        let p = crate::services::patients::read(state.ctx(), &w.actor, e.patient).await?;
        format!("Messages — {}", p.traits.display_name())
    };
    // Reading the thread marks the other side's messages read.
    state
        .store
        .mark_read(&e.id, !patient_side, state.now_ms())
        .await?;
    if grant.is_some() {
        crate::services::patients::clinical_read(
            state.ctx(),
            &w.actor,
            e.patient,
            &format!("Communication?based-on=CarePlan/{}", e.id),
        )
        .await?;
    }
    let messages = state
        .store
        .messages_of(e.patient)
        .await?
        .into_iter()
        .filter(|m| m.enrolment == e.id)
        .map(|m| {
            (
                m.from_patient == patient_side,
                m.author,
                paris_time(m.at_ms),
                m.body,
            )
        })
        .collect();
    let page = ThreadPage {
        title: "Messages".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        id: e.id,
        patient_side,
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
    let (e, patient_side, grant) = thread_access(&state, &w, &id).await?;
    let text = field(&f, "message").trim();
    if text.is_empty() || text.chars().count() > 2000 {
        return thread_render(
            &state,
            &w,
            &id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("écrivez un message (2 000 caractères au plus)".into()),
        )
        .await;
    }
    if e.status != "active" {
        return thread_render(
            &state,
            &w,
            &id,
            StatusCode::CONFLICT,
            Some("ce suivi est terminé".into()),
        )
        .await;
    }
    let who = domain::audit::AuditActor::new(&w.actor, grant);
    state
        .store
        .post_message(
            &e,
            patient_side,
            &w.user.display_name,
            text,
            &who,
            state.now_ms(),
        )
        .await?;
    if patient_side {
        let _ = state.events.send(LiveEvent::Alerts(e.establishment));
    }
    Ok(super::kit::see_other(&format!("/suivi/{id}/messages")))
}
