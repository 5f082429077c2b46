//! The care team's pages: a patient's monitoring history with its alert
//! mutings (`/suivi/{id}/historique`), muting an item and lifting a muting,
//! and the team's opening hours and doctors' on-call rota
//! (`/telesurveillance/equipe`). The rules are `services::care_team`'s.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::calendar::{TeamHours, Window};
use domain::monitoring::{AlertLevel, AlertStatus};
use domain::org::Role;
use domain::policy::choose_establishment;
use domain::{EnrolmentId, EstablishmentId};

use super::kit::{
    DAYS, Nav, establishment_choices, establishment_param, field, hhmm, minutes, nav, path_id,
    posted_form, render, see_other,
};
use crate::error::{AppError, PageError};
use crate::extract::Query;
use crate::extract::WebUser;
use crate::fmt::{paris_date, paris_local, paris_time};
use crate::services::care_team::{self, MuteRequest};
use crate::services::monitoring::item_label;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/suivi/{id}/historique", get(history_page))
        .route("/suivi/{id}/sourdines", post(add_mute))
        .route("/sourdines/{id}/lever", post(lift_mute))
        .route("/telesurveillance/equipe", get(team_page).post(save_hours))
        .route("/telesurveillance/astreintes", post(add_on_call))
        .route(
            "/telesurveillance/astreintes/{id}/supprimer",
            post(remove_on_call),
        )
}

/// The choices of the muting form's duration, in days.
const DURATIONS: [(i64, &str); 5] = [
    (7, "1 semaine"),
    (14, "2 semaines"),
    (30, "1 mois"),
    (61, "2 mois"),
    (92, "3 mois"),
];

struct MuteRow {
    id: String,
    item: String,
    ceiling: String,
    reason: String,
    since: String,
    until: String,
    by: String,
    running: bool,
    ended: String,
}

struct AlertLine {
    id: String,
    at: String,
    item: String,
    level: String,
    reason: String,
    status: String,
    muted: bool,
}

#[derive(Template)]
#[template(path = "monitoring_history.html")]
struct HistoryPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    id: String,
    patient: String,
    programme: String,
    since: String,
    active: bool,
    error: Option<String>,
    mutes: Vec<MuteRow>,
    /// (linkId, label, highest grade if graded)
    items: Vec<(String, String, Option<u8>)>,
    durations: [(i64, &'static str); 5],
    alerts: Vec<AlertLine>,
    /// (date, source, answers)
    responses: Vec<(String, String, String)>,
}

/// "Diarrhée : grade 2 ; Température : 38.2" from stored QuestionnaireResponse items.
fn answers_line(json: &str) -> String {
    let items: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
    items
        .iter()
        .filter_map(|i| {
            let link = i.get("linkId")?.as_str()?;
            let a = i.get("answer")?.get(0)?;
            let value = if let Some(c) = a.get("valueCoding") {
                format!("grade {}", c.get("code")?.as_str()?)
            } else if let Some(b) = a.get("valueBoolean").and_then(serde_json::Value::as_bool) {
                if b { "oui" } else { "non" }.to_owned()
            } else if let Some(x) = a.get("valueDecimal") {
                x.to_string()
            } else {
                a.get("valueString")?.as_str()?.to_owned()
            };
            Some(format!("{} : {value}", item_label(link)))
        })
        .collect::<Vec<_>>()
        .join(" ; ")
}

async fn history(
    state: &AppState,
    w: &WebUser,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let eid: EnrolmentId = path_id(id, "suivi")?;
    let h = care_team::history(state.ctx(), &w.actor, eid).await?;
    let now = state.now_ms();
    let mutes = h
        .mutes
        .iter()
        .map(|m| MuteRow {
            id: m.mute.id.clone(),
            item: item_label(&m.mute.item),
            ceiling: match m.mute.max_grade {
                Some(g) => format!("jusqu'au grade {g}"),
                None => format!("jusqu'au niveau « {} »", m.mute.max_level.label_fr()),
            },
            reason: m.mute.reason.clone(),
            since: paris_date(m.mute.starts_at_ms),
            until: paris_date(m.mute.until_ms),
            by: m.created_by.clone(),
            running: m.mute.active(now),
            ended: match (&m.ended_by, m.mute.ended_at_ms) {
                (Some(by), Some(at)) => format!(
                    "terminée le {} par {by}{}",
                    paris_date(at),
                    m.end_note
                        .as_deref()
                        .filter(|n| !n.is_empty())
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                ),
                _ if !m.mute.active(now) => "terminée".into(),
                _ => String::new(),
            },
        })
        .collect();
    let alerts = h
        .alerts
        .iter()
        .map(|a| AlertLine {
            id: a.id.to_string(),
            at: paris_time(a.raised_at_ms),
            item: item_label(&a.item),
            level: a.level.label_fr().into(),
            reason: a.reason.clone(),
            status: a.status.label_fr().into(),
            muted: a.status == AlertStatus::Muted,
        })
        .collect();
    let responses = h
        .responses
        .iter()
        .map(|r| {
            (
                paris_time(r.submitted_at_ms),
                r.source.clone().unwrap_or_else(|| "questionnaire".into()),
                answers_line(&r.answers),
            )
        })
        .collect();
    let page = HistoryPage {
        title: format!("Suivi — {}", h.patient),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        id: eid.to_string(),
        patient: h.patient,
        programme: h.programme.title.clone(),
        since: paris_date(h.enrolment.started_at_ms),
        active: h.enrolment.status == "active",
        error,
        mutes,
        items: h
            .items
            .into_iter()
            .map(|i| (i.link_id, i.label, i.grades))
            .collect(),
        durations: DURATIONS,
        alerts,
        responses,
    };
    Ok((status, render(&page)?).into_response())
}

async fn history_page(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    history(&state, &w, &id, StatusCode::OK, None).await
}

/// A refusal by the rules is shown on the page it came from; anything else
/// is the error page.
async fn or_refused(
    state: &AppState,
    w: &WebUser,
    id: &str,
    result: Result<(), AppError>,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(see_other(&format!("/suivi/{id}/historique"))),
        Err(AppError::Unprocessable(_, why) | AppError::Conflict(why)) => {
            history(state, w, id, StatusCode::UNPROCESSABLE_ENTITY, Some(why)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn add_mute(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let eid: EnrolmentId = path_id(&id, "suivi")?;
    let bad = |what: &str| AppError::BadRequest("invalid", what.into());
    let days: i64 = field(&f, "duree")
        .trim()
        .parse()
        .map_err(|_| bad("durée en jours attendue"))?;
    let max_grade = match field(&f, "grade").trim() {
        "" => None,
        g => Some(g.parse::<u8>().map_err(|_| bad("grade invalide"))?),
    };
    let max_level = match field(&f, "niveau").trim() {
        "" => AlertLevel::Warning,
        l => AlertLevel::from_code(l).ok_or_else(|| bad("niveau inconnu"))?,
    };
    let r = MuteRequest {
        item: field(&f, "item").trim(),
        max_grade,
        max_level,
        days,
        reason: field(&f, "motif"),
    };
    let done = care_team::mute(state.ctx(), &w.actor, &w.user.display_name, eid, &r)
        .await
        .map(drop);
    or_refused(&state, &w, &id, done).await
}

async fn lift_mute(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let enrolment = care_team::lift(
        state.ctx(),
        &w.actor,
        &w.user.display_name,
        &id,
        field(&f, "note"),
    )
    .await?;
    Ok(see_other(&format!("/suivi/{enrolment}/historique")))
}

// ------------------------------------------------------------- team page

#[derive(serde::Deserialize, Default)]
struct Which {
    #[serde(default)]
    etablissement: String,
}

#[derive(Template)]
#[template(path = "care_team.html")]
struct TeamPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    /// (id, name, selected)
    choices: Vec<(String, String, bool)>,
    establishment: String,
    days: [(&'static str, &'static str); 7],
    /// (weekday, start, end)
    rows: Vec<(String, String, String)>,
    alsace_moselle: bool,
    /// (id, doctor, from, to, now)
    rota: Vec<(String, String, String, String, bool)>,
    /// (id, name)
    doctors: Vec<(String, String)>,
    default_start: String,
    default_end: String,
    error: Option<String>,
    notice: Option<String>,
}

const TEAM_ROLES: [Role; 3] = [Role::Admin, Role::Doctor, Role::Nurse];

fn chosen(w: &WebUser, which: &Which) -> Result<EstablishmentId, AppError> {
    let wanted = establishment_param(&which.etablissement)?;
    choose_establishment(&w.actor.establishments_as(&TEAM_ROLES), wanted).map_err(|_| {
        AppError::Forbidden(
            "page réservée aux médecins, infirmiers et administrateurs de l'établissement".into(),
        )
    })
}

async fn team_screen(
    state: &AppState,
    w: &WebUser,
    which: &Which,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let e = chosen(w, which)?;
    let t = care_team::team(state.ctx(), &w.actor, e).await?;
    let choices = establishment_choices(state, &w.actor.establishments_as(&TEAM_ROLES), e).await;
    let mut rows: Vec<(String, String, String)> = t
        .hours
        .windows
        .iter()
        .map(|w| (w.weekday.to_string(), hhmm(w.start_min), hhmm(w.end_min)))
        .collect();
    rows.extend(std::iter::repeat_n(
        (String::new(), String::new(), String::new()),
        3,
    ));
    let now = state.now_ms();
    let tomorrow_8 = paris_local(now + 24 * 3600 * 1000)
        .split_once('T')
        .map(|(d, _)| d.to_owned())
        .unwrap_or_default();
    let page = TeamPage {
        title: "Équipe de télésurveillance".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        choices,
        establishment: e.to_string(),
        days: DAYS,
        rows,
        alsace_moselle: t.hours.alsace_moselle,
        rota: t
            .rota
            .iter()
            .map(|(p, name)| {
                (
                    p.id.clone(),
                    name.clone(),
                    paris_time(p.starts_at_ms),
                    paris_time(p.ends_at_ms),
                    p.starts_at_ms <= now && now < p.ends_at_ms,
                )
            })
            .collect(),
        doctors: t
            .doctors
            .iter()
            .map(|(id, n)| (id.to_string(), n.clone()))
            .collect(),
        default_start: format!("{tomorrow_8}T08:00"),
        default_end: format!("{tomorrow_8}T20:00"),
        error,
        notice,
    };
    Ok((status, render(&page)?).into_response())
}

async fn team_page(
    State(state): State<AppState>,
    w: WebUser,
    Query(which): Query<Which>,
) -> Result<Response, PageError> {
    team_screen(&state, &w, &which, StatusCode::OK, None, None).await
}

async fn refused_or(
    state: &AppState,
    w: &WebUser,
    which: &Which,
    result: Result<String, AppError>,
) -> Result<Response, PageError> {
    match result {
        Ok(notice) => team_screen(state, w, which, StatusCode::OK, None, Some(notice)).await,
        Err(AppError::BadRequest(_, why) | AppError::Unprocessable(_, why)) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            team_screen(state, w, which, status, Some(why), None).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The weekly rows of the form (a row with no day is ignored).
fn windows(f: &[(String, String)]) -> Result<Vec<Window>, AppError> {
    super::kit::table_rows(f, ["jour", "debut", "fin"], |[day, start, end], bad| {
        Ok(Window {
            weekday: day.trim().parse().map_err(|_| bad("jour invalide"))?,
            start_min: minutes(start).ok_or_else(|| bad("heure d'ouverture attendue (HH:MM)"))?,
            end_min: match end.trim() {
                // 24:00 is midnight at the end of the day.
                "00:00" | "24:00" => 24 * 60,
                t => minutes(t).ok_or_else(|| bad("heure de fermeture attendue (HH:MM)"))?,
            },
        })
    })
}

async fn save_hours(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Query(which): Query<Which>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let e = chosen(&w, &which)?;
    let result = match windows(&f) {
        Ok(windows) => {
            let hours = TeamHours {
                windows,
                alsace_moselle: field(&f, "alsace") == "1",
            };
            care_team::set_hours(state.ctx(), &w.actor, e, &hours)
                .await
                .map(|()| "Horaires de l'équipe enregistrés.".to_owned())
        }
        Err(e) => Err(e),
    };
    refused_or(&state, &w, &which, result).await
}

async fn add_on_call(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Query(which): Query<Which>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let e = chosen(&w, &which)?;
    let bad = |what: &str| AppError::BadRequest("invalid", what.into());
    let result = async {
        let doctor = field(&f, "medecin")
            .parse()
            .map_err(|_| bad("choisissez le médecin d'astreinte"))?;
        let from = crate::fmt::parse_paris_local(field(&f, "debut"))
            .ok_or_else(|| bad("début attendu (date et heure)"))?;
        let to = crate::fmt::parse_paris_local(field(&f, "fin"))
            .ok_or_else(|| bad("fin attendue (date et heure)"))?;
        care_team::add_on_call(
            state.ctx(),
            &w.actor,
            &w.user.display_name,
            e,
            doctor,
            from,
            to,
        )
        .await
        .map(|_| "Astreinte enregistrée.".to_owned())
    }
    .await;
    refused_or(&state, &w, &which, result).await
}

async fn remove_on_call(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    Query(which): Query<Which>,
    body: String,
) -> Result<Response, PageError> {
    let _f = posted_form(&state, &headers, &w, &body)?;
    let e = chosen(&w, &which)?;
    let result = care_team::remove_on_call(state.ctx(), &w.actor, e, &id)
        .await
        .map(|()| "Astreinte supprimée.".to_owned());
    refused_or(&state, &w, &which, result).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_answers_read_as_one_line() {
        let json = r#"[{"linkId":"diarrhoea","answer":[{"valueCoding":{"code":"2"}}]},
            {"linkId":"temperature","answer":[{"valueDecimal":38.2}]},
            {"linkId":"bleeding","answer":[{"valueBoolean":false}]},
            {"linkId":"note","answer":[{"valueString":"fatigué"}]},
            {"linkId":"broken"}]"#;
        let line = answers_line(json);
        assert!(line.contains(": grade 2 ;"), "{line}");
        assert!(line.contains(": 38.2 ;"), "{line}");
        assert!(line.contains(": non ;"), "{line}");
        assert!(line.ends_with(": fatigué"), "{line}");
        assert_eq!(answers_line("not json"), "");
    }

    #[test]
    fn team_rows_read_with_midnight_as_the_end_of_the_day() {
        let f: Vec<(String, String)> = [
            ("jour", "1"),
            ("debut", "08:30"),
            ("fin", "18:00"),
            ("jour", ""),
            ("debut", ""),
            ("fin", ""),
            ("jour", "6"),
            ("debut", "20:00"),
            ("fin", "00:00"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        let w = windows(&f).unwrap();
        assert_eq!(
            w.iter()
                .map(|w| (w.weekday, w.start_min, w.end_min))
                .collect::<Vec<_>>(),
            vec![(1, 510, 1080), (6, 1200, 1440)]
        );
        let mut bad = f.clone();
        bad[1].1 = "8h30".into();
        assert!(
            matches!(windows(&bad), Err(AppError::BadRequest(_, m)) if m.starts_with("ligne 1"))
        );
    }
}
