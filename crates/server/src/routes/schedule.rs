//! Appointment pages: the patient books from the portal, the desk (or a carer)
//! books for a patient found by search, both see the slots left, cancel with a
//! reason; the desk sees the agendas of its establishment. Every rule is in
//! `services::schedule` and the policy.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use domain::{EstablishmentId, PatientId, UserId};
use serde::Deserialize;

use super::kit::{Nav, field, nav, posted_form, render, see_other};
use crate::error::{AppError, PageError};
use crate::extract::Query;
use crate::extract::WebUser;
use crate::fmt::paris_time;
use crate::routes::kit::path_id;
use crate::services::{patients, schedule};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rdv", get(list))
        .route("/rdv/prendre", get(book_page).post(book))
        .route("/rdv/{id}", get(show))
        .route("/rdv/{id}/annuler", post(cancel))
}

fn desk_establishments(w: &WebUser) -> Vec<EstablishmentId> {
    schedule::desk_establishments(&w.actor)
}

fn own_patient(w: &WebUser) -> Option<PatientId> {
    schedule::own_patient(&w.actor)
}

/// "mardi 24 novembre" (French time).
fn day_fr(ms: i64) -> String {
    const DAYS: [&str; 7] = [
        "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
    ];
    const MONTHS: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    let Ok(z) = jiff::Timestamp::from_millisecond(ms).and_then(|t| t.in_tz("Europe/Paris")) else {
        return paris_time(ms);
    };
    let day = usize::try_from(z.weekday().to_monday_zero_offset()).unwrap_or(0);
    let month = usize::try_from(z.month() - 1).unwrap_or(0);
    format!(
        "{} {} {}",
        DAYS.get(day).copied().unwrap_or(""),
        z.day(),
        MONTHS.get(month).copied().unwrap_or("")
    )
}

/// A day of free slots: the day, then (start ms, time, mode) of each slot.
type Day = (String, Vec<(i64, String, String)>);

/// (id, when, with whom, how, where, status, patient).
type Row = (String, String, String, String, String, String, String);

#[derive(Template)]
#[template(path = "rdv_list.html")]
struct ListPage {
    title: String,
    nav: Option<Nav>,
    patient_side: bool,
    rows: Vec<Row>,
}

async fn row(
    state: &AppState,
    w: &WebUser,
    a: &store::schedule::Appointment,
    with_patient: bool,
) -> Result<Row, AppError> {
    let patient = if with_patient {
        patients::read(state.ctx(), &w.actor, a.patient)
            .await?
            .traits
            .display_name()
    } else {
        String::new()
    };
    Ok((
        a.id.clone().to_string(),
        paris_time(a.start_ms),
        crate::services::directory::user_name(state.ctx(), a.practitioner).await?,
        a.mode.label_fr().to_owned(),
        crate::services::directory::establishment(state.ctx(), a.establishment)
            .await?
            .name,
        if a.status == "booked" {
            "confirmé".to_owned()
        } else {
            "annulé".to_owned()
        },
        patient,
    ))
}

/// `GET /rdv`: the patient's appointments, or the desk's agendas for the next
/// seven days.
async fn list(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let (patient_side, list) = schedule::listing(state.ctx(), &w.actor).await?;
    let mut rows = Vec::new();
    for a in &list {
        rows.push(row(&state, &w, a, !patient_side).await?);
    }
    Ok(render(&ListPage {
        title: "Rendez-vous".into(),
        nav: nav(&w),
        patient_side,
        rows,
    })?
    .into_response())
}

#[derive(Deserialize)]
struct BookQuery {
    patient: Option<String>,
    praticien: Option<String>,
    etablissement: Option<String>,
    /// The appointment being moved to another time, if any.
    deplacer: Option<String>,
}

#[derive(Template)]
#[template(path = "rdv_book.html")]
struct BookPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    patient: String,
    patient_name: String,
    /// (practitioner id, establishment id, "Dr X — Clinique").
    practitioners: Vec<(String, String, String)>,
    chosen: Option<(String, String, String)>,
    /// (day, [(start ms, time, mode)]).
    days: Vec<Day>,
    error: Option<String>,
    moving: String,
}

async fn book_render(
    state: &AppState,
    w: &WebUser,
    q: &BookQuery,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let form = schedule::booking_form(state.ctx(), &w.actor, q.patient.as_deref()).await?;
    let (patient, patient_name) = (form.patient, form.patient_name);
    let practitioners: Vec<(String, String, String)> = form
        .practitioners
        .into_iter()
        .map(|(u, e, label)| (u.to_string(), e.to_string(), label))
        .collect();
    let chosen = practitioners
        .iter()
        .find(|(u, e, _)| Some(u) == q.praticien.as_ref() && Some(e) == q.etablissement.as_ref())
        .cloned();
    let mut days: Vec<Day> = Vec::new();
    if let Some((u, e, _)) = &chosen {
        let (u, e): (UserId, EstablishmentId) = (
            u.parse()
                .map_err(|_| AppError::NotFound("praticien introuvable".into()))?,
            e.parse()
                .map_err(|_| AppError::NotFound("établissement introuvable".into()))?,
        );
        for s in schedule::free_slots(state.ctx(), u, e, 14).await? {
            let when = paris_time(s.start_ms);
            let time = when.split_once(' ').map_or("", |(_, t)| t);
            let day = day_fr(s.start_ms);
            let entry = (s.start_ms, time.to_owned(), s.mode.label_fr().to_owned());
            match days.last_mut() {
                Some((d, list)) if *d == day => list.push(entry),
                _ => days.push((day, vec![entry])),
            }
        }
    }
    let page = BookPage {
        title: if q.deplacer.is_some() {
            "Changer l'horaire".into()
        } else {
            "Prendre rendez-vous".into()
        },
        moving: q.deplacer.clone().unwrap_or_default(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        patient: if own_patient(w).is_some() {
            String::new()
        } else {
            patient.to_string()
        },
        patient_name,
        practitioners,
        chosen,
        days,
        error,
    };
    Ok((status, render(&page)?).into_response())
}

async fn book_page(
    State(state): State<AppState>,
    w: WebUser,
    Query(q): Query<BookQuery>,
) -> Result<Response, PageError> {
    book_render(&state, &w, &q, StatusCode::OK, None).await
}

/// `POST /rdv/prendre`: books the chosen slot.
async fn book(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let get = |k: &str| field(&f, k).trim().to_owned();
    let q = BookQuery {
        patient: Some(get("patient")).filter(|p| !p.is_empty()),
        praticien: Some(get("praticien")),
        etablissement: Some(get("etablissement")),
        deplacer: Some(get("deplacer")).filter(|d| !d.is_empty()),
    };
    let bad = || AppError::BadRequest("invalid", "créneau illisible".into());
    let chosen = schedule::Chosen {
        patient: q.patient.as_deref(),
        practitioner: get("praticien").parse().map_err(|_| bad())?,
        establishment: get("etablissement").parse().map_err(|_| bad())?,
        start_ms: get("debut").parse().map_err(|_| bad())?,
        moving: match q.deplacer.as_deref() {
            Some(m) => Some(path_id(m, "rendez-vous")?),
            None => None,
        },
    };
    let booked =
        schedule::book_chosen(state.ctx(), &w.actor, &w.user.id.to_string(), &chosen).await;
    match booked {
        Ok(id) => Ok(see_other(&format!("/rdv/{id}"))),
        Err(AppError::Conflict(m)) => {
            book_render(&state, &w, &q, StatusCode::CONFLICT, Some(m)).await
        }
        Err(AppError::Unprocessable(_, m)) => {
            book_render(&state, &w, &q, StatusCode::UNPROCESSABLE_ENTITY, Some(m)).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "rdv_show.html")]
struct ShowPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    row: Row,
    booked: bool,
    video: bool,
    patient_side: bool,
    practitioner_side: bool,
    reason: Option<String>,
    error: Option<String>,
    consult: Option<super::consultation::Block>,
    payment_notice: Option<&'static str>,
    move_link: String,
    /// The consultation's guests, for its doctor: (id, name, kind, state, may revoke).
    guests: Vec<(String, String, &'static str, &'static str, bool)>,
    /// (code, label) of the guests' kinds.
    kinds: [(&'static str, &'static str); 3],
}

/// An appointment the user may see: the patient's own, or one of the desk's
/// establishments (an audited read of the patient's identity).
async fn visible(
    state: &AppState,
    w: &WebUser,
    id: &str,
) -> Result<(store::schedule::Appointment, Row), PageError> {
    let (a, mine) = schedule::visible(state.ctx(), &w.actor, path_id(id, "rendez-vous")?).await?;
    let r = row(state, w, &a, !mine).await?;
    Ok((a, r))
}

async fn show_render(
    state: &AppState,
    w: &WebUser,
    id: &str,
    status: StatusCode,
    error: Option<String>,
    notice: Option<&str>,
) -> Result<Response, PageError> {
    let (a, row) = visible(state, w, id).await?;
    let desk = desk_establishments(w).contains(&a.establishment);
    let consult = super::consultation::block(state, w, id, desk).await?;
    let payment_notice = match (notice, consult.as_ref().map(|c| c.settled.is_some())) {
        (Some("retour"), Some(true)) => Some("Merci : votre paiement est enregistré."),
        (Some("retour"), Some(false)) => Some(
            "Merci : votre paiement est en cours de confirmation. Actualisez la page dans un instant.",
        ),
        (Some("abandon"), Some(false)) => {
            Some("Le paiement n'a pas été fait. Vous pouvez réessayer.")
        }
        _ => None,
    };
    let move_link = format!(
        "/rdv/prendre?praticien={}&etablissement={}&deplacer={}{}",
        a.practitioner,
        a.establishment,
        a.id,
        if own_patient(w).is_some() {
            String::new()
        } else {
            format!("&patient={}", a.patient)
        }
    );
    let guests = if w.user.id == a.practitioner && a.mode == domain::schedule::Mode::Tele {
        crate::services::guests::list(state.ctx(), &w.actor, w.user.id, a.id)
            .await?
            .into_iter()
            .map(|g| {
                let stage = match (
                    g.revoked_at_ms,
                    g.admitted_at_ms,
                    g.ready_at_ms,
                    &g.browser_hash,
                ) {
                    (Some(_), _, _, _) => "invitation retirée",
                    (None, Some(_), _, _) => "entré(e) dans la salle",
                    (None, None, Some(_), _) => "en attente d'entrer",
                    (None, None, None, Some(_)) => "lien ouvert",
                    (None, None, None, None) => "invité(e)",
                };
                (
                    g.id.clone(),
                    g.name.clone(),
                    crate::services::guests::kind_label(&g.kind),
                    stage,
                    g.revoked_at_ms.is_none(),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let page = ShowPage {
        guests,
        kinds: crate::services::guests::KINDS,
        move_link,
        consult,
        payment_notice,
        title: "Rendez-vous".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        booked: a.status == "booked",
        video: a.mode == domain::schedule::Mode::Tele,
        patient_side: own_patient(w).is_some(),
        practitioner_side: w.user.id == a.practitioner,
        reason: a.cancel_reason.clone(),
        row,
        error,
    };
    Ok((status, render(&page)?).into_response())
}

#[derive(Deserialize)]
struct ShowQuery {
    paiement: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, PageError> {
    show_render(&state, &w, &id, StatusCode::OK, None, q.paiement.as_deref()).await
}

async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    visible(&state, &w, &id).await?;
    let reason = field(&f, "motif").trim();
    if reason.is_empty() {
        return show_render(
            &state,
            &w,
            &id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("indiquez le motif de l'annulation".into()),
            None,
        )
        .await;
    }
    match schedule::cancel(state.ctx(), &w.actor, path_id(&id, "rendez-vous")?, reason).await {
        Ok(_) => Ok(see_other(&format!("/rdv/{id}"))),
        Err(AppError::Conflict(m)) => {
            show_render(&state, &w, &id, StatusCode::CONFLICT, Some(m), None).await
        }
        Err(e) => Err(e.into()),
    }
}
