//! Server-rendered pages in French: login with TOTP, a home page per role, patient
//! search and identity page for professionals, the patient's own page, the audit
//! trail for admins. Forms carry a CSRF token (double-submit cookie before login,
//! the session's synchroniser token after), and cross-origin posts are refused.

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use domain::audit::AuditActor;
use domain::identity::{IdentityStatus, PatientRecord, Sex};
use domain::org::Role;
use domain::policy::{EstablishmentAction, Principal, authorize_establishment};
use domain::{EstablishmentId, PatientId};
use serde::Deserialize;
use store::audit::{AuditFilter, NewAudit};
use store::patients::PatientQuery;
use store::users::{Session, User, UserKind};

use crate::auth::{self, random_token, token_hash};
use crate::error::{AppError, PageError};
use crate::extract::{ClientAddr, LOGIN_CSRF_COOKIE, SESSION_COOKIE, WebUser, any_session};
use crate::fmt::paris_time;
use crate::limiter::Endpoint;
use crate::services::patients;
use crate::state::AppState;

use super::kit::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/login/totp", get(totp_form).post(totp))
        .route("/logout", axum::routing::post(logout))
        .route("/patients", get(search_page))
        .route("/patients/{id}", get(patient_page))
        .route("/admin/audit", get(audit_page))
        .route("/admin/hl7", get(hl7_log_page))
        .route("/admin/hl7/{id}", get(hl7_message_page))
        .route("/static/app.css", get(css))
        .fallback(not_found)
}

async fn not_found() -> PageError {
    PageError(AppError::NotFound("cette page n'existe pas".into()))
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/app.css"),
    )
}

fn cookie_header(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<i64>,
) -> HeaderValue {
    let secure = if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict{secure}{age}"
    ))
    .unwrap_or(HeaderValue::from_static(""))
}

// ---------------------------------------------------------------- login

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    username: String,
    error: Option<String>,
}

fn login_page(
    state: &AppState,
    status: StatusCode,
    username: &str,
    error: Option<String>,
) -> Result<Response, AppError> {
    let csrf = random_token();
    let page = LoginPage {
        title: "Connexion".into(),
        nav: None,
        csrf: csrf.clone(),
        username: username.into(),
        error,
    };
    let mut resp = (status, render(&page)?).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(state, LOGIN_CSRF_COOKIE, &csrf, "/login", Some(1800)),
    );
    Ok(resp)
}

async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if let Some(s) = any_session(&state, &headers).await?
        && s.mfa_done
    {
        return Ok(see_other("/"));
    }
    Ok(login_page(&state, StatusCode::OK, "", None)?)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

async fn audit_login(state: &AppState, user: Option<&User>, action: &str, outcome: &str) {
    let actor = match user {
        Some(u) if u.kind == UserKind::Patient => AuditActor {
            kind: "patient",
            id: u.id.to_string(),
            role: None,
            establishment: None,
        },
        Some(u) => AuditActor {
            kind: "user",
            id: u.id.to_string(),
            role: None,
            establishment: None,
        },
        None => AuditActor {
            kind: "user",
            id: "inconnu".into(),
            role: None,
            establishment: None,
        },
    };
    let row = NewAudit {
        at_ms: state.now_ms(),
        actor,
        patient: None,
        action: action.into(),
        resource: "session".into(),
        outcome: outcome.into(),
    };
    if let Err(e) = state.store.audit(&row).await {
        tracing::error!(error = %e, "audit of a login failed");
    }
}

/// Counts a failed factor; tells the user whether the account is now locked.
async fn failed_factor(state: &AppState, user: &User) -> Result<String, AppError> {
    state
        .metrics
        .logins_failed
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let c = &state.config;
    let locked = state
        .store
        .record_login_failure(
            user.id,
            state.now_ms(),
            c.login_max_failures,
            c.login_lock_minutes * 60_000,
        )
        .await?;
    audit_login(state, Some(user), "login", "denied").await;
    Ok(match locked {
        Some(until) => format!(
            "Trop d'échecs: compte verrouillé jusqu'à {} (heure de Paris).",
            paris_time(until)
        ),
        None => "Identifiant, mot de passe ou code incorrect.".into(),
    })
}

fn locked_message(state: &AppState, user: &User) -> Option<String> {
    user.locked_until_ms
        .filter(|until| *until > state.now_ms())
        .map(|until| {
            format!(
                "Compte verrouillé jusqu'à {} (heure de Paris) après plusieurs échecs.",
                paris_time(until)
            )
        })
}

fn session_cookie(state: &AppState, token: &str) -> HeaderValue {
    cookie_header(state, SESSION_COOKIE, token, "/", None)
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    let cookie = crate::extract::cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    check_csrf(&cookie, &form.csrf)?;
    let username = form.username.trim();
    if let Err(retry) = state
        .limiter
        .check(Endpoint::Login, ip, Some(username), state.now_ms())
    {
        return Err(AppError::TooMany(retry).into());
    }
    let user = state.store.user_by_username(username).await?;
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(auth::dummy_hash);
    let password_ok = auth::verify_secret(hash, form.password).await;
    let Some(user) = user.filter(|u| u.active) else {
        state
            .metrics
            .logins_failed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        audit_login(&state, None, "login", "denied").await;
        return Ok(login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            username,
            Some("Identifiant, mot de passe ou code incorrect.".into()),
        )?);
    };
    if let Some(msg) = locked_message(&state, &user) {
        return Ok(login_page(
            &state,
            StatusCode::FORBIDDEN,
            username,
            Some(msg),
        )?);
    }
    if !password_ok {
        let msg = failed_factor(&state, &user).await?;
        return Ok(login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            username,
            Some(msg),
        )?);
    }
    let needs_totp = user.kind == UserKind::Professional || user.totp_secret.is_some();
    if needs_totp && user.totp_secret.is_none() {
        return Ok(login_page(
            &state,
            StatusCode::FORBIDDEN,
            username,
            Some("Second facteur non configuré pour ce compte: demandez à votre administrateur de l'activer.".into()),
        )?);
    }
    let token = random_token();
    let now = state.now_ms();
    let ttl = if needs_totp {
        5 * 60_000
    } else {
        state.config.session_ttl_minutes * 60_000
    };
    let session = Session {
        token_hash: token_hash(&token),
        user: user.id,
        csrf_token: random_token(),
        mfa_done: !needs_totp,
        expires_at_ms: now + ttl,
    };
    state.store.create_session(&session, now).await?;
    if !needs_totp {
        state.store.reset_login_failures(user.id).await?;
        state
            .metrics
            .logins_ok
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        audit_login(&state, Some(&user), "login", "success").await;
    }
    let mut resp = see_other(if needs_totp { "/login/totp" } else { "/" });
    resp.headers_mut()
        .append(header::SET_COOKIE, session_cookie(&state, &token));
    resp.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(&state, LOGIN_CSRF_COOKIE, "", "/login", Some(0)),
    );
    Ok(resp)
}

#[derive(Template)]
#[template(path = "totp.html")]
struct TotpPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    error: Option<String>,
}

async fn half_session(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, AppError> {
    Ok(any_session(state, headers).await?.filter(|s| !s.mfa_done))
}

async fn totp_form(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Some(s) = half_session(&state, &headers).await? else {
        return Ok(see_other("/login"));
    };
    let page = TotpPage {
        title: "Code de vérification".into(),
        nav: None,
        csrf: s.csrf_token,
        error: None,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
struct TotpForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
}

async fn totp(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<TotpForm>,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    let Some(half) = half_session(&state, &headers).await? else {
        return Ok(see_other("/login"));
    };
    check_csrf(&half.csrf_token, &form.csrf)?;
    let account = half.user.to_string();
    if let Err(retry) = state
        .limiter
        .check(Endpoint::Totp, ip, Some(&account), state.now_ms())
    {
        return Err(AppError::TooMany(retry).into());
    }
    let user = state.store.user(half.user).await?;
    let again = |status: StatusCode, msg: String| -> Result<Response, PageError> {
        let page = TotpPage {
            title: "Code de vérification".into(),
            nav: None,
            csrf: half.csrf_token.clone(),
            error: Some(msg),
        };
        Ok((status, render(&page)?).into_response())
    };
    if let Some(msg) = locked_message(&state, &user) {
        state.store.delete_session(&half.token_hash).await?;
        return again(StatusCode::FORBIDDEN, msg);
    }
    let secs = u64::try_from(state.now_ms() / 1000).unwrap_or(0);
    let step = user
        .totp_secret
        .as_deref()
        .and_then(|s| auth::totp_matching_step(s, &form.code, secs));
    let fresh = match step {
        Some(step) => state.store.consume_totp_step(user.id, step).await?,
        None => false,
    };
    if !fresh {
        let msg = failed_factor(&state, &user).await?;
        return again(StatusCode::UNAUTHORIZED, msg);
    }
    state.store.reset_login_failures(user.id).await?;
    let token = random_token();
    let now = state.now_ms();
    let full = Session {
        token_hash: token_hash(&token),
        user: user.id,
        csrf_token: random_token(),
        mfa_done: true,
        expires_at_ms: now + state.config.session_ttl_minutes * 60_000,
    };
    state
        .store
        .upgrade_session(&half.token_hash, &full, now)
        .await?;
    state
        .metrics
        .logins_ok
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    audit_login(&state, Some(&user), "login", "success").await;
    let mut resp = see_other("/");
    resp.headers_mut()
        .append(header::SET_COOKIE, session_cookie(&state, &token));
    Ok(resp)
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    same_origin(&state, &headers)?;
    check_csrf(&w.session.csrf_token, &form.csrf)?;
    state.store.delete_session(&w.session.token_hash).await?;
    // Its open WebSockets (room, queues) close now.
    let _ = state.session_ends.send(crate::state::SessionEnd::Session(
        w.session.token_hash.clone(),
    ));
    audit_login(&state, Some(&w.user), "logout", "success").await;
    let mut resp = see_other("/login");
    resp.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(&state, SESSION_COOKIE, "", "/", Some(0)),
    );
    Ok(resp)
}

// ---------------------------------------------------------------- home

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    title: String,
    nav: Option<Nav>,
    display_name: String,
    roles: Vec<(String, String)>,
    actions: Vec<(String, String)>,
    notes: Vec<String>,
    patient_link: Option<String>,
}

pub(crate) async fn establishment_name(state: &AppState, id: EstablishmentId) -> String {
    state
        .store
        .establishment(id)
        .await
        .map(|e| e.name)
        .unwrap_or_else(|_| id.to_string())
}

async fn home(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let mut roles = Vec::new();
    for g in &w.actor.grants {
        roles.push((
            g.role.label_fr().to_owned(),
            establishment_name(&state, g.establishment).await,
        ));
    }
    let has = |rs: &[Role]| w.actor.grants.iter().any(|g| rs.contains(&g.role));
    let mut actions = Vec::new();
    let mut notes = Vec::new();
    if has(&[Role::Doctor, Role::Nurse, Role::Secretary, Role::Admin]) {
        actions.push(("/patients".to_owned(), "Rechercher un patient".to_owned()));
        actions.push(("/rdv".to_owned(), "Agendas et rendez-vous".to_owned()));
        actions.push((
            "/documents".to_owned(),
            "Diffusion des documents".to_owned(),
        ));
    }
    if has(&[Role::Doctor, Role::Nurse, Role::Secretary]) {
        actions.push((
            "/documents/recus".to_owned(),
            "Documents reçus par messagerie".to_owned(),
        ));
    }
    if has(&[Role::Admin]) {
        actions.push((
            "/admin/audit".to_owned(),
            "Consulter le journal d'audit".to_owned(),
        ));
    }
    if has(&[Role::Doctor]) {
        actions.push((
            "/salle-attente".to_owned(),
            "Salle d'attente des téléconsultations".to_owned(),
        ));
    }
    if has(&[Role::Nurse, Role::Doctor]) {
        actions.push((
            "/alertes".to_owned(),
            "Alertes de télésurveillance".to_owned(),
        ));
    }
    if has(&[Role::BedManager, Role::Admin]) {
        actions.push((
            "/lits".to_owned(),
            "Gérer les lits de mon établissement".to_owned(),
        ));
    }
    if has(&[Role::Coordinator, Role::BedManager, Role::Admin]) {
        actions.push(("/region".to_owned(), "Vue régionale des lits".to_owned()));
    }
    if has(&[Role::Coordinator]) {
        notes.push(
            "Les demandes d'orientation (SSR, HAD) arrivent avec la suite du module Lits."
                .to_owned(),
        );
    }
    let patient_link = match w.actor.principal {
        Principal::Patient { patient, .. } => {
            actions.push((
                "/suivi".to_owned(),
                "Mon suivi : répondre au questionnaire".to_owned(),
            ));
            actions.push(("/rdv".to_owned(), "Mes rendez-vous".to_owned()));
            actions.push(("/mes-documents".to_owned(), "Mes documents".to_owned()));
            actions.push((
                "/mon-compte".to_owned(),
                "Mes coordonnées (e-mail)".to_owned(),
            ));
            Some(format!("/patients/{patient}"))
        }
        _ => None,
    };
    let page = HomePage {
        title: "Accueil".into(),
        display_name: w.user.display_name.clone(),
        nav: nav(&w),
        roles,
        actions,
        notes,
        patient_link,
    };
    Ok(render(&page)?.into_response())
}

// ---------------------------------------------------------------- patients

#[derive(Deserialize, Default)]
struct SearchForm {
    #[serde(default)]
    nom: String,
    #[serde(default)]
    prenom: String,
    #[serde(default)]
    naissance: String,
    #[serde(default)]
    ident: String,
}

struct Row {
    id: String,
    name: String,
    birth: String,
    ipp: String,
    status: String,
    status_code: String,
}

#[derive(Template)]
#[template(path = "patients.html")]
struct SearchPage {
    title: String,
    nav: Option<Nav>,
    nom: String,
    prenom: String,
    naissance: String,
    ident: String,
    searched: bool,
    rows: Vec<Row>,
    error: Option<String>,
}

fn french_date(d: jiff::civil::Date) -> String {
    d.strftime("%d/%m/%Y").to_string()
}

async fn search_page(
    State(state): State<AppState>,
    w: WebUser,
    Query(f): Query<SearchForm>,
) -> Result<Response, PageError> {
    let mut page = SearchPage {
        title: "Patients".into(),
        nav: nav(&w),
        nom: f.nom.clone(),
        prenom: f.prenom.clone(),
        naissance: f.naissance.clone(),
        ident: f.ident.clone(),
        searched: false,
        rows: vec![],
        error: None,
    };
    let blank = |s: &str| s.trim().is_empty();
    if blank(&f.nom) && blank(&f.prenom) && blank(&f.naissance) && blank(&f.ident) {
        return Ok(render(&page)?.into_response());
    }
    let mut q = PatientQuery {
        limit: 50,
        ..Default::default()
    };
    q.family = Some(f.nom.trim().to_owned()).filter(|s| !s.is_empty());
    q.given = Some(f.prenom.trim().to_owned()).filter(|s| !s.is_empty());
    if !blank(&f.naissance) {
        match f.naissance.trim().parse() {
            Ok(d) => q.birth_date = Some(d),
            Err(_) => {
                page.error =
                    Some("Date de naissance illisible (format attendu: JJ/MM/AAAA).".into());
                return Ok((StatusCode::BAD_REQUEST, render(&page)?).into_response());
            }
        }
    }
    let ident: String = f.ident.chars().filter(|c| !c.is_whitespace()).collect();
    if !ident.is_empty() {
        if ident.len() == 15 {
            q.ins = Some(ident.to_ascii_uppercase());
        } else {
            q.ipp = Some(ident);
        }
    }
    let found = patients::search(state.ctx(), &w.actor, &q, None).await?;
    page.searched = true;
    page.rows = found
        .into_iter()
        .map(|(p, _)| Row {
            id: p.id.to_string(),
            name: p.traits.display_name(),
            birth: french_date(p.traits.birth_date),
            ipp: p.ipp.clone(),
            status: p.status.label_fr().into(),
            status_code: p.status.code().into(),
        })
        .collect();
    Ok(render(&page)?.into_response())
}

struct PatientView {
    name: String,
    sex: String,
    birth: String,
    birthplace: Option<String>,
    status: String,
    status_code: String,
    birth_name: String,
    given: String,
    used_name: Option<String>,
    ipp: String,
    ins: Option<String>,
    ins_usable: bool,
}

impl From<&PatientRecord> for PatientView {
    fn from(p: &PatientRecord) -> Self {
        let t = &p.traits;
        PatientView {
            name: t.display_name(),
            sex: match t.sex {
                Sex::Male => "Homme",
                Sex::Female => "Femme",
                Sex::Unknown => "Sexe non renseigné",
            }
            .into(),
            birth: french_date(t.birth_date),
            birthplace: t.birthplace_code.clone(),
            status: p.status.label_fr().into(),
            status_code: p.status.code().into(),
            birth_name: t.birth_name.clone(),
            given: t.birth_given_names.join(" "),
            used_name: t.used_name.clone(),
            ipp: p.ipp.clone(),
            ins: p.ins.as_ref().map(|i| i.value()),
            ins_usable: p.status == IdentityStatus::Qualified,
        }
    }
}

#[derive(Template)]
#[template(path = "patient.html")]
struct PatientPage {
    title: String,
    nav: Option<Nav>,
    id: String,
    can_orient: bool,
    can_book: bool,
    can_documents: bool,
    dmp: String,
    csrf: String,
    enrolments: Vec<(String, String, String, bool)>,
    programmes: Vec<(String, String)>,
    p: PatientView,
    establishments: Vec<String>,
    merged_into: Option<String>,
}

async fn patient_page(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let pid: PatientId = id
        .parse()
        .map_err(|_| AppError::NotFound("patient introuvable".into()))?;
    let p = patients::read(state.ctx(), &w.actor, pid).await?;
    let mut establishments = Vec::new();
    for e in patients::establishments(state.ctx(), pid).await? {
        establishments.push(establishment_name(&state, e).await);
    }
    let scope = patients::scope_of(state.ctx(), &p).await?;
    let can_orient = domain::policy::authorize_patient(
        &w.actor,
        domain::policy::PatientAction::WriteClinical,
        &scope,
    )
    .allowed();
    let enrolments = if can_orient {
        state
            .store
            .enrolments_of(p.id)
            .await?
            .into_iter()
            .map(|e| {
                let title = crate::services::monitoring::programme(&e.programme)
                    .map(|x| x.title.clone())
                    .unwrap_or(e.programme.clone());
                let state_fr = match &e.end_reason {
                    Some(r) => format!("terminé : {r}"),
                    None => format!("en cours depuis le {}", paris_time(e.started_at_ms)),
                };
                (e.id, title, state_fr, e.status == "active")
            })
            .collect()
    } else {
        vec![]
    };
    let programmes = crate::services::monitoring::programmes()
        .iter()
        .map(|x| (x.id.clone(), x.title.clone()))
        .collect();
    let page = PatientPage {
        id: p.id.to_string(),
        can_orient,
        can_book: can_book(&w),
        dmp: {
            let (d, opposition) = state.store.dmp_of(p.id).await?;
            format!(
                "{}{}",
                d.label_fr(),
                if opposition {
                    " (opposition à l'alimentation)"
                } else {
                    ""
                }
            )
        },
        can_documents: domain::policy::authorize_patient(
            &w.actor,
            domain::policy::PatientAction::DraftDocument,
            &scope,
        )
        .allowed(),
        csrf: w.session.csrf_token.clone(),
        enrolments,
        programmes,
        title: p.traits.display_name(),
        nav: nav(&w),
        p: PatientView::from(&p),
        establishments,
        merged_into: p.merged_into.map(|m| m.to_string()),
    };
    Ok(render(&page)?.into_response())
}

// ---------------------------------------------------------------- audit

struct AuditRow {
    seq: i64,
    at: String,
    who: String,
    role: String,
    action: String,
    resource: String,
    outcome: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    title: String,
    nav: Option<Nav>,
    establishments: String,
    rows: Vec<AuditRow>,
    chain: String,
    patient: String,
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    #[serde(default)]
    patient: String,
    #[serde(default)]
    verifier: Option<String>,
}

async fn audit_page(
    State(state): State<AppState>,
    w: WebUser,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    // The policy decides which establishments' trails this actor may read.
    let mut admin_of: Vec<EstablishmentId> = w
        .actor
        .grants
        .iter()
        .filter(|g| {
            authorize_establishment(
                &w.actor,
                EstablishmentAction::ReadAudit,
                g.establishment,
                g.territory,
            )
            .allowed()
        })
        .map(|g| g.establishment)
        .collect();
    admin_of.dedup();
    if admin_of.is_empty() {
        return Err(
            AppError::Forbidden("journal d'audit réservé aux administrateurs".into()).into(),
        );
    }
    let patient = Some(q.patient.trim().to_owned()).filter(|p| !p.is_empty());
    let mut entries = Vec::new();
    let mut names = Vec::new();
    for e in &admin_of {
        names.push(establishment_name(&state, *e).await);
        let filter = AuditFilter {
            establishment: Some(e.to_string()),
            patient: patient.clone(),
            before_seq: None,
            limit: 200,
        };
        entries.extend(state.store.list_audit(&filter).await?);
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.seq));
    entries.truncate(200);
    let chain = if q.verifier.is_some() {
        let r = state.store.verify_audit().await?;
        match r.error {
            None => format!("intacte ({} entrées vérifiées)", r.checked),
            Some(e) => format!("ROMPUE: {e}"),
        }
    } else {
        "non vérifiée sur cette page (ajoutez ?verifier=1 ou lancez parcours audit verify)".into()
    };
    let rows = entries
        .into_iter()
        .map(|e| AuditRow {
            seq: e.seq,
            at: paris_time(e.at_ms),
            who: format!("{} {}", e.actor_kind, e.actor_id),
            role: e
                .role
                .as_deref()
                .and_then(Role::from_code)
                .map(|r| r.label_fr().to_owned())
                .unwrap_or_default(),
            action: e.action,
            resource: e.resource,
            outcome: e.outcome,
        })
        .collect();
    let page = AuditPage {
        title: "Journal d'audit".into(),
        nav: nav(&w),
        establishments: names.join(", "),
        rows,
        chain,
        patient: q.patient,
    };
    Ok(render(&page)?.into_response())
}

// ---------------------------------------------------------------- HL7 message log

/// The establishments whose HL7 log this user may browse (the policy decides).
fn message_log_establishments(w: &WebUser) -> Vec<EstablishmentId> {
    let mut v: Vec<EstablishmentId> = w
        .actor
        .grants
        .iter()
        .filter(|g| {
            authorize_establishment(
                &w.actor,
                EstablishmentAction::ReadMessages,
                g.establishment,
                g.territory,
            )
            .allowed()
        })
        .map(|g| g.establishment)
        .collect();
    v.dedup();
    v
}

struct Hl7Row {
    id: String,
    at: String,
    sender: String,
    control_id: String,
    message_type: String,
    status: String,
    status_class: String,
    errors: String,
}

fn status_fr(status: &str) -> &'static str {
    match status {
        "accepted" => "accepté (AA)",
        "error" => "erreur (AE)",
        _ => "rejeté (AR)",
    }
}

#[derive(Template)]
#[template(path = "hl7_log.html")]
struct Hl7LogPage {
    title: String,
    nav: Option<Nav>,
    establishments: String,
    rows: Vec<Hl7Row>,
}

async fn hl7_log_page(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let ests = message_log_establishments(&w);
    if ests.is_empty() {
        return Err(
            AppError::Forbidden("journal des messages réservé aux administrateurs".into()).into(),
        );
    }
    let mut names = Vec::new();
    let mut entries = Vec::new();
    for e in &ests {
        names.push(establishment_name(&state, *e).await);
        entries.extend(state.store.hl7_messages_of(Some(*e), None, 200).await?);
    }
    entries.sort_by_key(|m| std::cmp::Reverse((m.received_at_ms, m.id.clone())));
    entries.truncate(200);
    let rows = entries
        .into_iter()
        .map(|m| Hl7Row {
            at: paris_time(m.received_at_ms),
            sender: m.sender,
            control_id: m.control_id.unwrap_or_default(),
            message_type: m.message_type,
            status: status_fr(&m.status).into(),
            status_class: m.status,
            errors: m.errors.replace('\n', " / "),
            id: m.id,
        })
        .collect();
    let page = Hl7LogPage {
        title: "Messages HL7".into(),
        nav: nav(&w),
        establishments: names.join(", "),
        rows,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "hl7_message.html")]
struct Hl7MessagePage {
    title: String,
    nav: Option<Nav>,
    id: String,
    at: String,
    sender: String,
    control_id: String,
    message_type: String,
    status: String,
    errors: String,
    patient: Option<String>,
    raw: String,
    ack: String,
}

async fn hl7_message_page(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let not_found = || PageError(AppError::NotFound("message introuvable".into()));
    let m = state
        .store
        .hl7_message(&id)
        .await
        .map_err(|_| not_found())?;
    let allowed = message_log_establishments(&w);
    let Some(est) = m
        .establishment_id
        .as_deref()
        .and_then(|e| e.parse::<EstablishmentId>().ok())
        .filter(|e| allowed.contains(e))
    else {
        return Err(not_found());
    };
    // The raw message carries patient data: its display is an audited read.
    let grant = w
        .actor
        .grants
        .iter()
        .find(|g| g.establishment == est)
        .copied();
    let row = NewAudit {
        at_ms: state.now_ms(),
        actor: AuditActor::new(&w.actor, grant),
        patient: m.patient_id.clone(),
        action: "read".into(),
        resource: format!("Hl7Message/{}", m.id),
        outcome: "success".into(),
    };
    state.store.audit(&row).await?;
    let page = Hl7MessagePage {
        title: format!("Message {}", m.control_id.as_deref().unwrap_or("")),
        nav: nav(&w),
        at: paris_time(m.received_at_ms),
        sender: m.sender,
        control_id: m.control_id.unwrap_or_default(),
        message_type: m.message_type,
        status: status_fr(&m.status).into(),
        errors: m.errors,
        patient: m.patient_id,
        raw: String::from_utf8_lossy(&m.raw).replace('\r', "\n"),
        ack: m.ack.replace('\r', "\n"),
        id: m.id,
    };
    Ok(render(&page)?.into_response())
}
