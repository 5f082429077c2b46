//! Document pages: a patient's documents and a new draft from a template
//! (`/patients/{id}/documents`), the draft to edit and validate in one click
//! with its recipients (`/documents/{id}`), the PDF and the CDA, the
//! establishment's dispatch dashboard (`/documents`), the DMP status on the
//! patient's record, the patient's own documents (`/mes-documents`), and the
//! documents received by secure messaging with the queue of those to attach
//! to a patient by hand (`/documents/recus`).

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::PatientId;
use domain::documents::{ALL_KINDS, ALL_RECIPIENTS, DmpState, Kind, Recipient, Status};
use domain::org::Role;
use domain::policy::Principal;

use super::kit::{Nav, field, nav, posted_form, render, see_other};
use crate::error::{AppError, PageError};
use crate::extract::Query;
use crate::extract::WebUser;
use crate::fmt::paris_time;
use crate::routes::kit::path_id;
use crate::services::documents as svc;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/patients/{id}/documents", get(list).post(create))
        .route("/patients/{id}/dmp", post(set_dmp))
        .route("/documents", get(dashboard))
        .route("/documents/recus", get(received))
        .route("/documents/recus/{id}", get(queued).post(attach))
        .route("/documents/{id}", get(show).post(save))
        .route("/documents/{id}/valider", post(validate))
        .route("/documents/{id}/corriger", post(revise))
        .route("/documents/{id}/pdf", get(pdf))
        .route("/documents/{id}/cda", get(cda))
        .route("/mes-documents", get(mine))
        .route("/mon-compte", get(account).post(save_account))
        .route("/mon-compte/avis", axum::routing::post(save_channel))
        .route("/mes-avis", get(my_notices))
}

fn patient_id(id: &str) -> Result<PatientId, PageError> {
    id.parse()
        .map_err(|_| AppError::NotFound("patient introuvable".into()).into())
}

/// (id, title, type, status, date).
type Row = (String, String, String, String, String);

fn row(d: &store::documents::Document) -> Row {
    (
        d.id.clone().to_string(),
        d.title.clone(),
        d.kind.label_fr().to_owned(),
        match (d.status, d.source.as_str(), d.superseded_by.is_some()) {
            (Status::Draft, _, _) => "brouillon".to_owned(),
            (Status::Validated, _, true) => "remplacé".to_owned(),
            (Status::Validated, "local", false) => "validé".to_owned(),
            (Status::Validated, _, false) => "reçu".to_owned(),
        },
        paris_time(d.validated_at_ms.unwrap_or(d.created_at_ms)),
    )
}

#[derive(Template)]
#[template(path = "documents_patient.html")]
struct ListPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    id: String,
    name: String,
    dmp: String,
    rows: Vec<Row>,
    kinds: Vec<(String, String)>,
    /// The units of the writer's establishment (code, name).
    units: Vec<(String, String)>,
}

/// The units of the establishment where this user works (code, name).
async fn units_of(state: &AppState, w: &WebUser) -> Result<Vec<(String, String)>, PageError> {
    Ok(svc::writer_units(state.ctx(), &w.actor).await?)
}

/// `GET /patients/{id}/documents`.
async fn list(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let pid = patient_id(&id)?;
    let p = crate::services::patients::read(state.ctx(), &w.actor, pid).await?;
    let docs = svc::of_patient(state.ctx(), &w.actor, pid).await?;
    let (dmp, opposition) = svc::dmp_status(state.ctx(), pid).await?;
    let page = ListPage {
        title: "Documents".into(),
        nav: nav(&w),
        csrf: w.session.csrf_token.clone(),
        id,
        name: p.traits.display_name(),
        dmp: format!(
            "{}{}",
            dmp.label_fr(),
            if opposition {
                " — opposition à l'alimentation"
            } else {
                ""
            }
        ),
        rows: docs.iter().map(row).collect(),
        kinds: ALL_KINDS
            .iter()
            .map(|k| (k.code().to_owned(), k.label_fr().to_owned()))
            .collect(),
        units: units_of(&state, &w).await?,
    };
    Ok(render(&page)?.into_response())
}

/// `POST /patients/{id}/documents` (`type`): a new draft from the template.
async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let pid = patient_id(&id)?;
    let kind = Kind::from_code(field(&f, "type"))
        .ok_or_else(|| AppError::BadRequest("invalid", "type de document inconnu".into()))?;
    let doc = svc::draft(
        state.ctx(),
        &w.actor,
        &w.user.id.to_string(),
        pid,
        kind,
        Some(field(&f, "unite")),
    )
    .await?;
    Ok(see_other(&format!("/documents/{doc}")))
}

/// `POST /patients/{id}/dmp` (`etat`, `opposition`): what the hospital knows of
/// the patient's DMP, for those who write in the record.
async fn set_dmp(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let pid = patient_id(&id)?;
    let dmp = DmpState::from_code(field(&f, "etat"))
        .ok_or_else(|| AppError::BadRequest("invalid", "statut DMP inconnu".into()))?;
    let opposition = field(&f, "opposition") == "1";
    svc::set_dmp(state.ctx(), &w.actor, pid, dmp, opposition).await?;
    Ok(see_other(&format!("/patients/{id}/documents")))
}

#[derive(Template)]
#[template(path = "document.html")]
struct DocPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    id: String,
    patient: String,
    patient_name: String,
    doc_title: String,
    kind: String,
    body: String,
    draft: bool,
    can_validate: bool,
    /// (code, label, ticked).
    recipients: Vec<(String, String, bool)>,
    /// (label, address, state, detail).
    sent: Vec<(String, String, String, String)>,
    validated: String,
    error: Option<String>,
    gp: String,
    referrer: String,
    /// Version number; the version it replaces and the one that replaced it (ids).
    version: i64,
    replaces: Option<String>,
    superseded_by: Option<String>,
    /// A doctor may start the corrected version (validated here, not replaced).
    can_revise: bool,
}

fn state_fr(s: &str) -> &'static str {
    match s {
        "delivered" => "remis",
        "pending" => "en cours d'envoi",
        "failed" => "échec",
        "skipped" => "non envoyé",
        "waiting" => "en attente",
        _ => "?",
    }
}

async fn show_render(
    state: &AppState,
    w: &WebUser,
    id: &str,
    status: StatusCode,
    error: Option<String>,
    form: Option<&[(String, String)]>,
) -> Result<Response, PageError> {
    let shown = svc::show(state.ctx(), &w.actor, path_id(id, "document")?).await?;
    let (d, sent, is_doctor) = (shown.document, shown.sent, shown.doctor);
    let ticked = |r: Recipient| match form {
        Some(f) => field(f, &format!("dest_{}", r.code())) == "1",
        None => d.kind.default_recipients().contains(&r),
    };
    let page = DocPage {
        title: d.title.clone(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        id: d.id.clone().to_string(),
        patient: d.patient.to_string(),
        patient_name: shown.patient_name,
        doc_title: form.map_or(d.title.clone(), |f| field(f, "titre").to_owned()),
        kind: d.kind.label_fr().to_owned(),
        body: form.map_or(d.body.clone(), |f| field(f, "texte").to_owned()),
        draft: d.status == Status::Draft,
        can_validate: is_doctor,
        recipients: ALL_RECIPIENTS
            .iter()
            .map(|r| (r.code().to_owned(), r.label_fr().to_owned(), ticked(*r)))
            .collect(),
        sent: sent
            .iter()
            .map(|r| {
                (
                    r.recipient.label_fr().to_owned(),
                    r.address.clone(),
                    state_fr(&r.state).to_owned(),
                    r.detail.clone().unwrap_or_default(),
                )
            })
            .collect(),
        validated: d.validated_at_ms.map(paris_time).unwrap_or_default(),
        error,
        gp: form.map_or(String::new(), |f| field(f, "adresse_gp").to_owned()),
        referrer: form.map_or(String::new(), |f| field(f, "adresse_adresseur").to_owned()),
        version: d.version,
        can_revise: is_doctor
            && d.status == Status::Validated
            && d.source == "local"
            && d.superseded_by.is_none(),
        replaces: d.replaces.map(|r| r.to_string()),
        superseded_by: d.superseded_by.map(|r| r.to_string()),
    };
    Ok((status, render(&page)?).into_response())
}

/// `GET /documents/{id}`.
async fn show(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    show_render(&state, &w, &id, StatusCode::OK, None, None).await
}

/// `POST /documents/{id}` (`titre`, `texte`): saves the draft.
async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    match svc::edit(
        state.ctx(),
        &w.actor,
        path_id(&id, "document")?,
        field(&f, "titre"),
        field(&f, "texte"),
    )
    .await
    {
        Ok(()) => Ok(see_other(&format!("/documents/{id}"))),
        Err(AppError::Unprocessable(_, m)) => {
            show_render(
                &state,
                &w,
                &id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(m),
                Some(&f),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /documents/{id}/valider`: saves what was typed, validates, sends.
async fn validate(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let chosen: Vec<Recipient> = ALL_RECIPIENTS
        .into_iter()
        .filter(|r| field(&f, &format!("dest_{}", r.code())) == "1")
        .collect();
    let addresses = svc::Addresses {
        gp: field(&f, "adresse_gp").to_owned(),
        referrer: field(&f, "adresse_adresseur").to_owned(),
    };
    let saved = svc::edit(
        state.ctx(),
        &w.actor,
        path_id(&id, "document")?,
        field(&f, "titre"),
        field(&f, "texte"),
    )
    .await;
    let outcome = match saved {
        Ok(()) => svc::validate(
            state.ctx(),
            &w.actor,
            &w.user,
            path_id(&id, "document")?,
            &chosen,
            &addresses,
        )
        .await
        .map(|_| ()),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => Ok(see_other(&format!("/documents/{id}"))),
        Err(AppError::Unprocessable(_, m)) => {
            show_render(
                &state,
                &w,
                &id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(m),
                Some(&f),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /documents/{id}/pdf`: the PDF (from the CDA it was sent as).
async fn pdf(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (d, t, c) = svc::content(state.ctx(), &w.actor, path_id(&id, "document")?).await?;
    let pdf = svc::pdf_in(&t, &c).ok_or_else(|| {
        AppError::Unprocessable("business-rule", "ce document n'a pas de version PDF".into())
    })?;
    Ok(super::kit::download(
        "application/pdf",
        &format!("document-{}.pdf", d.id),
        pdf,
    ))
}

/// `POST /documents/{id}/corriger`: starts the corrected next version (a
/// doctor), a draft with the same text; validating it replaces this one.
async fn revise(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    let new = svc::revise(state.ctx(), &w.actor, &w.user, path_id(&id, "document")?).await?;
    Ok(see_other(&format!("/documents/{new}")))
}

/// `GET /documents/{id}/cda`: the CDA as sent (staff only).
async fn cda(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    if matches!(w.actor.principal, Principal::Patient { .. }) {
        return Err(AppError::NotFound("document introuvable".into()).into());
    }
    let (d, t, c) = svc::content(state.ctx(), &w.actor, path_id(&id, "document")?).await?;
    Ok(super::kit::download(
        &t,
        &format!("document-{}.xml", d.id),
        c,
    ))
}

/// A validated document on the dashboard: id, title, when, (recipient, state).
type DocLine = (String, String, String, Vec<(String, String)>);

#[derive(Template)]
#[template(path = "documents_dashboard.html")]
struct DashboardPage {
    title: String,
    nav: Option<Nav>,
    establishment: String,
    /// The reader's establishments (id, name, shown) when more than one.
    choices: Vec<(String, String, bool)>,
    /// The establishment's units (code, name) and the one shown ("" for all).
    units: Vec<(String, String)>,
    unit: String,
    rate: String,
    met: bool,
    pushed: u64,
    eligible: u64,
    /// (id, title, validated, [(recipient, state)]).
    docs: Vec<DocLine>,
    /// (id, title, recipient, state, why).
    stragglers: Vec<(String, String, String, String, String)>,
}

#[derive(serde::Deserialize, Default)]
struct DashboardQuery {
    #[serde(default)]
    unite: String,
    #[serde(default)]
    etablissement: String,
}

/// `GET /documents[?unite=CODE]`: validated documents of the last 30 days (of
/// one unit, or all), where each went, the DMP feed rate against 98 %, and
/// what is not delivered, with why.
async fn dashboard(
    State(state): State<AppState>,
    w: WebUser,
    Query(q): Query<DashboardQuery>,
) -> Result<Response, PageError> {
    let mine =
        w.actor
            .establishments_as(&[Role::Doctor, Role::Nurse, Role::Secretary, Role::Admin]);
    let est =
        svc::dashboard_establishment(&w.actor, super::kit::establishment_param(&q.etablissement)?)?;
    let since = state.now_ms() - 30 * 24 * 3600 * 1000;
    let units = svc::units_of(state.ctx(), est).await?;
    let unit = q.unite.trim().to_owned();
    if !unit.is_empty() && !units.iter().any(|(c, _)| *c == unit) {
        return Err(AppError::NotFound(format!("unité inconnue : {unit}")).into());
    }
    let d = svc::dashboard(
        state.ctx(),
        est,
        Some(unit.as_str()).filter(|u| !u.is_empty()),
        since,
    )
    .await?;
    let rate = domain::documents::feed_rate(d.dmp_pushed, d.dmp_eligible);
    let mut docs = Vec::new();
    let mut stragglers = Vec::new();
    for (doc, recipients) in &d.documents {
        docs.push((
            doc.id.to_string(),
            doc.title.clone(),
            doc.validated_at_ms.map(paris_time).unwrap_or_default(),
            recipients
                .iter()
                .map(|r| {
                    (
                        r.recipient.label_fr().to_owned(),
                        state_fr(&r.state).to_owned(),
                    )
                })
                .collect(),
        ));
        for r in recipients.iter().filter(|r| r.state != "delivered") {
            stragglers.push((
                doc.id.to_string(),
                doc.title.clone(),
                r.recipient.label_fr().to_owned(),
                state_fr(&r.state).to_owned(),
                r.detail.clone().unwrap_or_default(),
            ));
        }
    }
    let page = DashboardPage {
        title: "Diffusion des documents".into(),
        nav: nav(&w),
        establishment: crate::services::directory::establishment_name(state.ctx(), est).await,
        choices: super::kit::establishment_choices(&state, &mine, est).await,
        units,
        unit,
        rate: rate.map_or("—".into(), |(r, _)| {
            format!("{:.1} %", r * 100.0).replace('.', ",")
        }),
        met: rate.is_some_and(|(_, m)| m),
        pushed: d.dmp_pushed,
        eligible: d.dmp_eligible,
        docs,
        stragglers,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "my_documents.html")]
struct MinePage {
    title: String,
    nav: Option<Nav>,
    rows: Vec<Row>,
}

/// `GET /mes-documents`: the patient's documents, downloadable.
async fn mine(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let Principal::Patient { patient, .. } = w.actor.principal else {
        return Err(AppError::NotFound("page réservée aux patients".into()).into());
    };
    let docs = svc::of_patient(state.ctx(), &w.actor, patient).await?;
    let page = MinePage {
        title: "Mes documents".into(),
        nav: nav(&w),
        rows: docs.iter().map(row).collect(),
    };
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    email: String,
    /// What was done, said in a status line.
    done: Option<String>,
    error: Option<String>,
    /// (code, label, chosen) of the notice channels.
    channels: Vec<(&'static str, &'static str, bool)>,
    /// The mobile number SMS go to, if one is known.
    mobile: Option<String>,
}

/// The channel choices of the account page.
fn channels(s: &crate::services::notices::Settings) -> Vec<(&'static str, &'static str, bool)> {
    domain::notice::Channel::ALL
        .iter()
        .map(|c| (c.code(), c.label_fr(), s.chosen == Some(*c)))
        .collect()
}

/// `GET /mon-compte`: the patient's e-mail address for notices.
async fn account(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let email = crate::services::patients::own_email(state.ctx(), &w.actor).await?;
    let notices = crate::services::notices::settings(state.ctx(), &w.actor).await?;
    let page = AccountPage {
        title: "Mes coordonnées".into(),
        nav: nav(&w),
        csrf: w.session.csrf_token.clone(),
        email: email.unwrap_or_default(),
        done: None,
        error: None,
        channels: channels(&notices),
        mobile: notices.mobile,
    };
    Ok(render(&page)?.into_response())
}

/// `POST /mon-compte` (`email`; empty forgets it).
async fn save_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let email = field(&f, "email").trim();
    use crate::services::patients::EmailChange;
    let change = crate::services::patients::set_own_email(state.ctx(), &w.actor, email).await?;
    let notices = crate::services::notices::settings(state.ctx(), &w.actor).await?;
    let mut page = AccountPage {
        title: "Mes coordonnées".into(),
        nav: nav(&w),
        csrf: w.session.csrf_token.clone(),
        email: email.to_owned(),
        done: None,
        error: None,
        channels: channels(&notices),
        mobile: notices.mobile,
    };
    let (status, said) = match change {
        EmailChange::Forgotten => (
            StatusCode::OK,
            Ok("C'est enregistré : plus rien ne vous sera envoyé par e-mail.".to_owned()),
        ),
        EmailChange::Unchanged => (
            StatusCode::OK,
            Ok("Cette adresse est déjà celle de vos avis.".to_owned()),
        ),
        EmailChange::ConfirmationSent => (
            StatusCode::OK,
            Ok(format!(
                "Un message vient d'être envoyé à {email}. Ouvrez le lien qu'il contient pour confirmer l'adresse : vos avis y seront envoyés ensuite."
            )),
        ),
        EmailChange::Invalid => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Err("cette adresse e-mail n'est pas valide (exemple : prenom.nom@exemple.fr)".to_owned()),
        ),
        EmailChange::CannotMail => (
            StatusCode::SERVICE_UNAVAILABLE,
            Err("l'envoi du message de confirmation n'est pas possible pour le moment : l'adresse n'est pas enregistrée. Réessayez plus tard ou demandez à l'accueil.".to_owned()),
        ),
    };
    match said {
        Ok(m) => page.done = Some(m),
        Err(e) => page.error = Some(e),
    }
    Ok((status, render(&page)?).into_response())
}

/// `POST /mon-compte/avis` (`canal`: sms, email, portail).
async fn save_channel(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let chosen =
        crate::services::notices::choose(state.ctx(), &w.actor, field(&f, "canal")).await?;
    let email = crate::services::patients::own_email(state.ctx(), &w.actor).await?;
    let notices = crate::services::notices::settings(state.ctx(), &w.actor).await?;
    let page = AccountPage {
        title: "Mes coordonnées".into(),
        nav: nav(&w),
        csrf: w.session.csrf_token.clone(),
        email: email.unwrap_or_default(),
        done: Some(format!(
            "C'est enregistré : vos avis vous parviendront {}.",
            chosen.label_fr()
        )),
        error: None,
        channels: channels(&notices),
        mobile: notices.mobile,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "my_notices.html")]
struct NoticesPage {
    title: String,
    nav: Option<Nav>,
    /// (date, text, how it left)
    rows: Vec<(String, String, String)>,
}

/// `GET /mes-avis`: the patient's notices and how each reached them.
async fn my_notices(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let rows = crate::services::notices::mine(state.ctx(), &w.actor)
        .await?
        .into_iter()
        .map(|n| {
            let how = match (n.channel.as_deref(), n.state.as_deref()) {
                (Some("sms"), Some("DELIVRD")) => "envoyé par SMS, reçu".to_owned(),
                (Some("sms"), Some("submitted") | None) => "envoyé par SMS".to_owned(),
                (Some("sms"), Some(_)) => "SMS non remis : lisez-le ici".to_owned(),
                (Some("email"), _) => "envoyé par e-mail".to_owned(),
                (Some(_), _) => "ici seulement".to_owned(),
                (None, _) if n.delivered_at_ms.is_some() => "ici seulement".to_owned(),
                (None, _) => "en cours d'envoi".to_owned(),
            };
            (crate::fmt::paris_time(n.created_at_ms), n.text, how)
        })
        .collect();
    let page = NoticesPage {
        title: "Mes avis".into(),
        nav: nav(&w),
        rows,
    };
    Ok(render(&page)?.into_response())
}

/// `?etablissement=ID`: which of the reader's establishments a page shows.
#[derive(serde::Deserialize, Default)]
struct EstablishmentQuery {
    #[serde(default)]
    etablissement: String,
}

impl EstablishmentQuery {
    fn establishment(&self) -> Result<Option<domain::EstablishmentId>, PageError> {
        Ok(super::kit::establishment_param(&self.etablissement)?)
    }
}

/// (date, sender, title, state, why, patient link, DMP state, queue link).
type ReceivedRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
);

#[derive(Template)]
#[template(path = "documents_received.html")]
struct ReceivedPage {
    title: String,
    nav: Option<Nav>,
    establishment: String,
    /// The reader's establishments (id, name, shown) when more than one.
    choices: Vec<(String, String, bool)>,
    waiting: usize,
    rows: Vec<ReceivedRow>,
}

/// `GET /documents/recus`: what arrived by secure messaging, where each was
/// filed (and its DMP copy), what waits for a human, what was refused and why.
async fn received(
    State(state): State<AppState>,
    w: WebUser,
    Query(q): Query<EstablishmentQuery>,
) -> Result<Response, PageError> {
    use store::incoming::IncomingState;
    let est = crate::services::intake::desk(&w.actor, q.establishment()?)?;
    let list = crate::services::intake::list(state.ctx(), &w.actor, est).await?;
    let choices =
        super::kit::establishment_choices(&state, &crate::services::intake::desks(&w.actor), est)
            .await;
    let waiting = list
        .iter()
        .filter(|(i, _)| i.state == IncomingState::Queued)
        .count();
    let rows = list
        .into_iter()
        .map(|(i, dmp)| {
            (
                paris_time(i.received_at_ms),
                i.sender.clone(),
                if i.title.is_empty() {
                    i.subject.clone()
                } else {
                    i.title.clone()
                },
                i.state.label_fr().to_owned(),
                i.detail.clone(),
                i.patient.map(|p| format!("/patients/{p}/documents")),
                dmp.map(|r| {
                    let mut s = state_fr(&r.state).to_owned();
                    if let Some(d) = r.detail.filter(|_| r.state != "delivered") {
                        s.push_str(&format!(" ({d})"));
                    }
                    s
                })
                .unwrap_or_default(),
                (i.state == IncomingState::Queued).then(|| format!("/documents/recus/{}", i.id)),
            )
        })
        .collect();
    let page = ReceivedPage {
        title: "Documents reçus".into(),
        nav: nav(&w),
        establishment: crate::services::directory::establishment_name(state.ctx(), est).await,
        choices,
        waiting,
        rows,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "documents_queued.html")]
struct QueuedPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    id: String,
    document: String,
    sender: String,
    traits: String,
    why: String,
    /// (patient id, name, birth date, IPP, identity status).
    candidates: Vec<(String, String, String, String, String)>,
    error: Option<String>,
}

async fn queued_render(
    state: &AppState,
    w: &WebUser,
    id: &str,
    error: Option<String>,
) -> Result<QueuedPage, PageError> {
    let (i, content) =
        crate::services::intake::queued_with_content(state.ctx(), &w.actor, id).await?;
    let est = crate::services::directory::establishment(state.ctx(), i.establishment).await?;
    let h = content
        .as_deref()
        .and_then(|c| interop::cda::read_header(c).ok());
    // Those born that day, and those with that birth name: the human chooses.
    let mut found = Vec::new();
    if let Some(h) = &h {
        let date = h
            .birth_date
            .as_deref()
            .and_then(|d| jiff::civil::Date::strptime("%Y%m%d", d).ok());
        for (family, birth_date) in [(None, date), (h.birth_name.clone(), None)] {
            if family.is_none() && birth_date.is_none() {
                continue;
            }
            // Through the patient search service: the policy, then the audit.
            let q = store::patients::PatientQuery {
                ins: None,
                ipp: None,
                family,
                given: None,
                birth_date,
                limit: 20,
                offset: 0,
                ..Default::default()
            };
            found.extend(
                crate::services::patients::search(state.ctx(), &w.actor, &q, Some(est.territory))
                    .await?
                    .into_iter()
                    .map(|(p, _)| p),
            );
        }
    }
    let mut candidates: Vec<(String, String, String, String, String)> = Vec::new();
    for p in found.into_iter().filter(|p| p.active()) {
        let pid = p.id.to_string();
        if candidates.iter().any(|c| c.0 == pid) {
            continue;
        }
        candidates.push((
            pid,
            p.traits.display_name(),
            p.traits.birth_date.strftime("%d/%m/%Y").to_string(),
            p.ipp.clone(),
            p.status.label_fr().to_owned(),
        ));
    }
    Ok(QueuedPage {
        title: "Rattacher un document reçu".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        id: id.to_owned(),
        document: i.title.clone(),
        sender: i.sender.clone(),
        traits: i.traits.clone(),
        why: i.detail.clone(),
        candidates,
        error,
    })
}

/// `GET /documents/recus/{id}`: a queued document, how it names its patient,
/// and the records that could be theirs.
async fn queued(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    Ok(render(&queued_render(&state, &w, &id, None).await?)?.into_response())
}

/// `POST /documents/recus/{id}`: files it on the chosen patient (and forwards
/// it to the DMP when fed).
async fn attach(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let form = posted_form(&state, &headers, &w, &body)?;
    let chosen = field(&form, "patient");
    let Ok(patient) = chosen.parse::<PatientId>() else {
        let page = queued_render(&state, &w, &id, Some("choisissez un patient".into())).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let p =
        crate::services::intake::attach(state.ctx(), &w.actor, &w.user.display_name, &id, patient)
            .await?;
    Ok(see_other(&format!("/patients/{p}/documents")))
}
