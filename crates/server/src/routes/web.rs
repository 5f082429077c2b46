//! Server-rendered pages in French: login with TOTP, a home page per role, patient
//! search and identity page for professionals, the patient's own page, the audit
//! trail for admins. Forms carry a CSRF token (double-submit cookie before login,
//! the session's synchroniser token after), and cross-origin posts are refused.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use domain::PatientId;
use domain::identity::{IdentityStatus, PatientRecord, Sex};
use domain::org::Role;
use domain::policy::Principal;
use serde::Deserialize;
use store::patients::PatientQuery;
use store::users::Session;

use crate::auth::random_token;
use crate::error::{AppError, PageError};
use crate::extract::{ClientAddr, LOGIN_CSRF_COOKIE, SESSION_COOKIE, WebUser, any_session};
use crate::extract::{Form, Query};
use crate::fmt::paris_time;
use crate::limiter::Endpoint;
use crate::services::hl7::log as hl7_log;
use crate::services::sign_in::{self, Refusal, SignIn};
use crate::services::{audit_trail, directory, patients};
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
    cookie_with(state, name, value, path, max_age, "Strict")
}

/// A cookie for this site: HttpOnly, `Secure` behind https, the `same_site`
/// policy given (`Strict`, or `Lax` for one that must come back from another
/// site's redirect).
pub(crate) fn cookie_with(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<i64>,
    same_site: &str,
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
        "{name}={value}; Path={path}; HttpOnly; SameSite={same_site}{secure}{age}"
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
    /// Sign-in providers: (id, label, for patients).
    providers: Vec<(String, String, bool)>,
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
        providers: state.oidc.buttons(),
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

pub(crate) fn session_cookie(state: &AppState, token: &str) -> HeaderValue {
    cookie_header(state, SESSION_COOKIE, token, "/", None)
}

/// The status of a refused sign-in.
fn refusal_status(r: Refusal) -> StatusCode {
    match r {
        Refusal::BadCredentials => StatusCode::UNAUTHORIZED,
        Refusal::Locked | Refusal::NoSecondFactor => StatusCode::FORBIDDEN,
    }
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
        .await
    {
        return Err(AppError::TooMany(retry).into());
    }
    let (token, second_factor) =
        match sign_in::with_password(state.ctx(), username, form.password).await? {
            SignIn::Session {
                token,
                second_factor,
            } => (token, second_factor),
            SignIn::Refused(why, msg) => {
                return Ok(login_page(
                    &state,
                    refusal_status(why),
                    username,
                    Some(msg),
                )?);
            }
        };
    let mut resp = see_other(if second_factor { "/login/totp" } else { "/" });
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
        .await
    {
        return Err(AppError::TooMany(retry).into());
    }
    match sign_in::with_code(state.ctx(), &half, &form.code).await? {
        SignIn::Session { token, .. } => {
            let mut resp = see_other("/");
            resp.headers_mut()
                .append(header::SET_COOKIE, session_cookie(&state, &token));
            Ok(resp)
        }
        SignIn::Refused(why, msg) => {
            let page = TotpPage {
                title: "Code de vérification".into(),
                nav: None,
                csrf: half.csrf_token.clone(),
                error: Some(msg),
            };
            Ok((refusal_status(why), render(&page)?).into_response())
        }
    }
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
    sign_in::sign_out(state.ctx(), &w.user, &w.session).await?;
    // Opened through a provider: signed out there too (its end-session
    // endpoint, back to our login page).
    let back = format!("{}/login", state.config.public_url().trim_end_matches('/'));
    let mut to = "/login".to_owned();
    if let Some((id, id_token)) = state
        .store
        .take_oidc_session(&w.session.token_hash)
        .await
        .map_err(AppError::from)?
        && let Some(p) = state.oidc.get(&id)
        && let Some(url) = p.logout_url(&id_token, &back).await
    {
        to = url;
    }
    let mut resp = see_other(&to);
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

async fn home(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let mut roles = Vec::new();
    for g in &w.actor.grants {
        roles.push((
            g.role.label_fr().to_owned(),
            directory::establishment_name(state.ctx(), g.establishment).await,
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
    if has(&[Role::Doctor, Role::Secretary, Role::Admin]) {
        actions.push((
            "/agenda/horaires".to_owned(),
            "Horaires de consultation et absences".to_owned(),
        ));
    }
    if has(&[Role::Doctor, Role::Nurse, Role::Secretary]) {
        actions.push((
            "/documents/recus".to_owned(),
            "Documents reçus par messagerie".to_owned(),
        ));
    }
    let administers = has(&[Role::Admin])
        || !crate::services::accounts::administered(state.ctx(), &w.actor)
            .await?
            .is_empty();
    if administers {
        actions.push((
            "/admin".to_owned(),
            "Administration : personnes, clients API, établissements".to_owned(),
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
            actions.push(("/mes-avis".to_owned(), "Mes avis".to_owned()));
            actions.push((
                "/mon-compte".to_owned(),
                "Mes coordonnées (e-mail, SMS)".to_owned(),
            ));
            actions.push((
                "/mes-donnees".to_owned(),
                "Télécharger mes données".to_owned(),
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
    details: DetailsView,
    editable: bool,
}

/// The record's demographics as the page shows them.
struct DetailsView {
    addresses: Vec<(String, String)>,
    telecoms: Vec<(String, String, String)>,
    contacts: Vec<(String, String, String, String)>,
    gp: Option<String>,
    language: Option<String>,
    birth_city: Option<String>,
    deceased: Option<String>,
}

impl From<&domain::demographics::Demographics> for DetailsView {
    fn from(d: &domain::demographics::Demographics) -> Self {
        use domain::demographics::TelecomKind;
        DetailsView {
            addresses: d
                .addresses
                .iter()
                .map(|a| {
                    let place = [a.postal_code.as_deref(), a.city.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ");
                    let mut parts: Vec<String> = a.lines.clone();
                    parts.push(place);
                    if let Some(c) = a.country.as_deref().filter(|c| *c != "FRA") {
                        parts.push(c.to_owned());
                    }
                    (a.use_.label_fr().to_owned(), parts.join(", "))
                })
                .collect(),
            telecoms: d
                .telecoms
                .iter()
                .map(|t| {
                    let href = match t.kind {
                        TelecomKind::Email => format!("mailto:{}", t.value),
                        _ => format!("tel:{}", t.value),
                    };
                    (t.kind.label_fr().to_owned(), t.display(), href)
                })
                .collect(),
            contacts: d
                .contacts
                .iter()
                .map(|c| {
                    let mut who = format!(
                        "{} {}",
                        c.given.as_deref().unwrap_or(""),
                        c.family.to_uppercase()
                    )
                    .trim()
                    .to_owned();
                    if let Some(r) = c.relationship {
                        who.push_str(&format!(" ({})", r.label_fr().to_lowercase()));
                    }
                    let phone = c
                        .phone
                        .as_ref()
                        .map(|p| {
                            domain::demographics::Telecom {
                                kind: TelecomKind::HomePhone,
                                value: p.clone(),
                            }
                            .display()
                        })
                        .unwrap_or_default();
                    let href = c
                        .phone
                        .as_ref()
                        .map(|p| format!("tel:{p}"))
                        .unwrap_or_default();
                    (c.role.label_fr().to_owned(), who, phone, href)
                })
                .collect(),
            gp: d.gp.as_ref().map(|g| g.display()),
            language: d.language.clone(),
            birth_city: d.birth_place.as_ref().and_then(|b| b.city.clone()),
            deceased: d.deceased.map(|x| x.strftime("%d/%m/%Y").to_string()),
        }
    }
}

async fn patient_page(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let pid: PatientId = id
        .parse()
        .map_err(|_| AppError::NotFound("patient introuvable".into()))?;
    let o = patients::overview(state.ctx(), &w.actor, pid).await?;
    let p = o.record;
    let enrolments = o
        .enrolments
        .into_iter()
        .map(|e| {
            let title = crate::services::monitoring::programme(&e.programme)
                .map(|x| x.title.clone())
                .unwrap_or(e.programme.clone());
            let state_fr = match &e.end_reason {
                Some(r) => format!("terminé : {r}"),
                None => format!("en cours depuis le {}", paris_time(e.started_at_ms)),
            };
            (e.id.to_string(), title, state_fr, e.status == "active")
        })
        .collect();
    let programmes = crate::services::monitoring::programmes()
        .iter()
        .map(|x| (x.id.clone(), x.title.clone()))
        .collect();
    let (dmp, opposition) = o.dmp;
    let page = PatientPage {
        id: p.id.to_string(),
        can_orient: o.carer,
        can_book: can_book(&w),
        dmp: format!(
            "{}{}",
            dmp.label_fr(),
            if opposition {
                " (opposition à l'alimentation)"
            } else {
                ""
            }
        ),
        can_documents: o.documents,
        csrf: w.session.csrf_token.clone(),
        enrolments,
        programmes,
        title: p.traits.display_name(),
        nav: nav(&w),
        p: PatientView::from(&p),
        establishments: o.establishments,
        merged_into: p.merged_into.map(|m| m.to_string()),
        details: DetailsView::from(&o.demographics),
        editable: o.editable,
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
    let patient = Some(q.patient.trim().to_owned()).filter(|p| !p.is_empty());
    let trail = audit_trail::read(state.ctx(), &w.actor, patient, q.verifier.is_some()).await?;
    let chain = match trail.chain {
        Some(r) => match r.error {
            None => format!("intacte ({} entrées vérifiées)", r.checked),
            Some(e) => format!("ROMPUE: {e}"),
        },
        None => "non vérifiée sur cette page (ajoutez ?verifier=1 ou lancez parcours audit verify)"
            .into(),
    };
    let names = trail.establishments;
    let entries = trail.entries;
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
    let (names, entries) = hl7_log::latest(state.ctx(), &w.actor).await?;
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
    /// In error or refused: the administrator may replay or purge it.
    reviewable: bool,
    csrf: String,
}

async fn hl7_message_page(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let m = hl7_log::message(state.ctx(), &w.actor, &id).await?;
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
        reviewable: m.status != "accepted",
        csrf: w.session.csrf_token.clone(),
        id: m.id,
    };
    Ok(render(&page)?.into_response())
}
