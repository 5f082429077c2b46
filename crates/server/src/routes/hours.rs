//! The hours page (`/agenda/horaires`): a doctor's weekly pattern and
//! absences at an establishment, set by the doctor or the establishment's
//! secretariat. The rules are `services::openings`'.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::schedule::{Absence, Mode, Opening};
use domain::{EstablishmentId, UserId};

use super::kit::{DAYS, Nav, field, hhmm, minutes, nav, posted_form, render, see_other};
use crate::error::{AppError, PageError};
use crate::extract::Query;
use crate::extract::WebUser;
use crate::services::openings;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/agenda/horaires", get(hours_page).post(save_week))
        .route("/agenda/absences", post(add_absence))
        .route("/agenda/absences/{id}/supprimer", post(remove_absence))
        .route("/agenda/ouvertures", post(add_extra))
        .route("/agenda/ouvertures/{id}/supprimer", post(remove_extra))
}

#[derive(serde::Deserialize, Default)]
struct Which {
    #[serde(default)]
    praticien: String,
    #[serde(default)]
    etablissement: String,
}

#[derive(Template)]
#[template(path = "hours.html")]
struct HoursPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    /// (doctor, establishment, doctor's name, establishment's name, selected)
    choices: Vec<(String, String, String, String, bool)>,
    selected: Option<(String, String, String, String)>,
    days: [(&'static str, &'static str); 7],
    /// (weekday, start, end, minutes, mode)
    rows: Vec<(String, String, String, String, String)>,
    /// (id, first, last, reason)
    absences: Vec<(String, String, String, String)>,
    /// (id, date, start, end, mode)
    extras: Vec<(String, String, String, String, String)>,
    error: Option<String>,
    notice: Option<String>,
}

fn fr_date(d: jiff::civil::Date) -> String {
    d.strftime("%d/%m/%Y").to_string()
}

async fn screen(
    state: &AppState,
    w: &WebUser,
    which: &Which,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let choices = openings::editable(state.ctx(), &w.actor).await?;
    if choices.is_empty() {
        return Err(
            AppError::Forbidden("page réservée aux médecins et aux secrétariats".into()).into(),
        );
    }
    let wanted = choices
        .iter()
        .find(|c| c.0.to_string() == which.praticien && c.1.to_string() == which.etablissement)
        .or(if which.praticien.is_empty() {
            choices.first()
        } else {
            None
        })
        .cloned();
    let Some(sel) = wanted else {
        return Err(AppError::NotFound("agenda introuvable".into()).into());
    };
    let hours = openings::hours(state.ctx(), &w.actor, sel.0, sel.1).await?;
    let mut rows: Vec<_> = hours
        .openings
        .iter()
        .map(|o| {
            (
                o.weekday.to_string(),
                hhmm(o.start_min),
                hhmm(o.end_min),
                o.slot_minutes.to_string(),
                o.mode.code().to_owned(),
            )
        })
        .collect();
    for _ in 0..3 {
        rows.push((
            String::new(),
            String::new(),
            String::new(),
            "20".into(),
            "teleconsultation".into(),
        ));
    }
    let page = HoursPage {
        title: "Horaires de consultation".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        choices: choices
            .iter()
            .map(|c| {
                (
                    c.0.to_string(),
                    c.1.to_string(),
                    c.2.clone(),
                    c.3.clone(),
                    c.0 == sel.0 && c.1 == sel.1,
                )
            })
            .collect(),
        selected: Some((sel.0.to_string(), sel.1.to_string(), sel.2, sel.3)),
        days: DAYS,
        rows,
        absences: hours
            .absences
            .into_iter()
            .map(|(id, a)| (id, fr_date(a.first_day), fr_date(a.last_day), a.reason))
            .collect(),
        extras: hours
            .extras
            .into_iter()
            .map(|(id, x)| {
                (
                    id,
                    fr_date(x.day),
                    hhmm(x.opening.start_min),
                    hhmm(x.opening.end_min),
                    x.opening.mode.label_fr().to_owned(),
                )
            })
            .collect(),
        error,
        notice,
    };
    Ok((status, render(&page)?).into_response())
}

async fn hours_page(
    State(state): State<AppState>,
    w: WebUser,
    Query(which): Query<Which>,
) -> Result<Response, PageError> {
    screen(&state, &w, &which, StatusCode::OK, None, None).await
}

fn ids(which: &Which) -> Result<(UserId, EstablishmentId), AppError> {
    let bad = || AppError::NotFound("agenda introuvable".into());
    Ok((
        which.praticien.parse().map_err(|_| bad())?,
        which.etablissement.parse().map_err(|_| bad())?,
    ))
}

/// The weekly rows of the form (a row with no day is ignored).
fn week(f: &[(String, String)]) -> Result<Vec<Opening>, AppError> {
    super::kit::table_rows(
        f,
        ["jour", "debut", "fin", "duree", "mode"],
        |[day, start, end, len, mode], bad| {
            Ok(Opening {
                weekday: day.parse().map_err(|_| bad("jour invalide"))?,
                start_min: minutes(start).ok_or_else(|| bad("heure de début attendue (HH:MM)"))?,
                end_min: minutes(end).ok_or_else(|| bad("heure de fin attendue (HH:MM)"))?,
                slot_minutes: len
                    .trim()
                    .parse()
                    .map_err(|_| bad("durée en minutes attendue"))?,
                mode: Mode::from_code(mode).ok_or_else(|| bad("mode inconnu"))?,
            })
        },
    )
}

async fn refused_or(
    state: &AppState,
    w: &WebUser,
    which: &Which,
    result: Result<String, AppError>,
) -> Result<Response, PageError> {
    match result {
        Ok(notice) => screen(state, w, which, StatusCode::OK, None, Some(notice)).await,
        Err(e @ AppError::BadRequest(..)) => {
            screen(
                state,
                w,
                which,
                StatusCode::BAD_REQUEST,
                Some(e.to_string()),
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn save_week(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Query(which): Query<Which>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let (p, e) = ids(&which)?;
    let result = async {
        let rows = week(&f)?;
        openings::set_weekly(state.ctx(), &w.actor, p, e, &rows).await?;
        Ok(format!(
            "Semaine type enregistrée : {} plage(s).",
            rows.len()
        ))
    }
    .await;
    refused_or(&state, &w, &which, result).await
}

async fn add_absence(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Query(which): Query<Which>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let (p, e) = ids(&which)?;
    let result = async {
        let day = |k: &str| {
            field(&f, k).trim().parse::<jiff::civil::Date>().map_err(|_| {
                AppError::BadRequest("invalid", "date attendue (AAAA-MM-JJ)".into())
            })
        };
        let a = Absence {
            first_day: day("du")?,
            last_day: day("au")?,
            reason: field(&f, "motif").trim().to_owned(),
        };
        let booked = openings::add_absence(state.ctx(), &w.actor, p, e, &a).await?;
        Ok(if booked == 0 {
            "Absence enregistrée : plus aucun créneau n'est proposé ces jours-là.".to_owned()
        } else {
            format!(
                "Absence enregistrée. Attention : {booked} rendez-vous déjà pris tombent pendant cette absence, à déplacer depuis l'agenda."
            )
        })
    }
    .await;
    refused_or(&state, &w, &which, result).await
}

async fn remove_absence(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Query(which): Query<Which>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    let (p, e) = ids(&which)?;
    openings::remove_absence(state.ctx(), &w.actor, p, e, &id).await?;
    Ok(see_other(&format!(
        "/agenda/horaires?praticien={p}&etablissement={e}"
    )))
}

async fn add_extra(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Query(which): Query<Which>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let (p, e) = ids(&which)?;
    let result = async {
        let bad = |what: &str| AppError::BadRequest("invalid", what.to_owned());
        let day = field(&f, "jour")
            .trim()
            .parse::<jiff::civil::Date>()
            .map_err(|_| bad("date attendue (AAAA-MM-JJ)"))?;
        let opening = Opening {
            weekday: 1,
            start_min: minutes(field(&f, "debut"))
                .ok_or_else(|| bad("heure de début attendue (HH:MM)"))?,
            end_min: minutes(field(&f, "fin"))
                .ok_or_else(|| bad("heure de fin attendue (HH:MM)"))?,
            slot_minutes: field(&f, "duree")
                .trim()
                .parse()
                .map_err(|_| bad("durée en minutes attendue"))?,
            mode: Mode::from_code(field(&f, "mode")).ok_or_else(|| bad("mode inconnu"))?,
        };
        openings::add_extra(
            state.ctx(),
            &w.actor,
            p,
            e,
            &domain::schedule::ExtraOpening::on(day, opening),
        )
        .await?;
        Ok(format!(
            "Ouverture exceptionnelle ajoutée le {}.",
            fr_date(day)
        ))
    }
    .await;
    refused_or(&state, &w, &which, result).await
}

async fn remove_extra(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Query(which): Query<Which>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    let (p, e) = ids(&which)?;
    openings::remove_extra(state.ctx(), &w.actor, p, e, &id).await?;
    Ok(see_other(&format!(
        "/agenda/horaires?praticien={p}&etablissement={e}"
    )))
}
