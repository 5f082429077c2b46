//! "Mes données": the patient's own export of everything the platform holds on
//! them (GDPR right of access): a readable PDF and the FHIR JSON (a
//! `collection` Bundle another health software can read). Built from
//! `Patient/$everything` as the patient may read it (their own record).

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::fhir::everything::everything;
use super::kit::{Nav, download, nav, render};
use crate::error::PageError;
use crate::extract::WebUser;
use crate::fmt::fhir_day as day;
use crate::services::patients;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/mes-donnees", get(page))
        .route("/mes-donnees.json", get(as_json))
        .route("/mes-donnees.pdf", get(as_pdf))
}

#[derive(Template)]
#[template(path = "my_data.html")]
struct MyDataPage {
    title: String,
    nav: Option<Nav>,
    count: usize,
}

/// Everything the patient may read of their record; a part that could not be
/// read (none is expected: it is their own record) is named in an
/// OperationOutcome rather than silently missing.
async fn mine(state: &AppState, w: &WebUser) -> Result<Vec<Value>, PageError> {
    let pid = patients::own(&w.actor)?;
    let (mut all, left_out) = everything(state, &w.actor, pid).await?;
    if !left_out.is_empty() {
        all.push(interop::fhir::operation_outcome(
            "warning",
            "suppressed",
            &format!("non inclus : {}", left_out.join(", ")),
        ));
    }
    Ok(all)
}

async fn page(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let all = mine(&state, &w).await?;
    let page = MyDataPage {
        title: "Mes données".into(),
        nav: nav(&w),
        count: all.len(),
    };
    Ok(render(&page)?.into_response())
}

async fn as_json(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let all = mine(&state, &w).await?;
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": state.clock.now().to_string(),
        "entry": all.iter().map(|r| json!({"resource": r})).collect::<Vec<_>>(),
    });
    let body = serde_json::to_vec_pretty(&bundle).unwrap_or_default();
    Ok(download("application/fhir+json", "mes-donnees.json", body))
}

async fn as_pdf(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let all = mine(&state, &w).await?;
    let lines = readable(&all);
    let pdf = interop::pdf::text_document("Mes données de santé", &lines);
    Ok(download("application/pdf", "mes-donnees.pdf", pdf))
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    interop::json_at(v, path).as_str().unwrap_or("")
}

/// The strings of the array at `path`.
fn strings<'a>(v: &'a Value, path: &[&str]) -> Vec<&'a str> {
    interop::json_at(v, path)
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The export as lines of French text, one section per kind of resource.
fn readable(all: &[Value]) -> Vec<String> {
    let mut lines = Vec::new();
    let section = |lines: &mut Vec<String>, title: &str| {
        lines.push(String::new());
        lines.push(title.to_uppercase());
    };
    for p in all.iter().filter(|r| s(r, &["resourceType"]) == "Patient") {
        section(&mut lines, "Identité");
        let given = strings(p, &["name", "0", "given"]);
        lines.push(format!(
            "{} {} — né(e) le {}",
            s(p, &["name", "0", "family"]).to_uppercase(),
            given.join(" "),
            day(s(p, &["birthDate"]))
        ));
        for id in interop::json_at(p, &["identifier"])
            .as_array()
            .into_iter()
            .flatten()
        {
            let label = match s(id, &["type", "coding", "0", "code"]) {
                "PI" => "Identifiant dans l'établissement (IPP)",
                "INS-NIR" | "INS-NIA" => "Identifiant national de santé (INS)",
                _ => "Identifiant",
            };
            lines.push(format!("{label} : {}", s(id, &["value"])));
        }
        section(&mut lines, "Coordonnées");
        for a in interop::json_at(p, &["address"])
            .as_array()
            .into_iter()
            .flatten()
        {
            let street = strings(a, &["line"]);
            lines.push(format!(
                "Adresse : {} {} {}",
                street.join(", "),
                s(a, &["postalCode"]),
                s(a, &["city"])
            ));
        }
        for t in interop::json_at(p, &["telecom"])
            .as_array()
            .into_iter()
            .flatten()
        {
            lines.push(format!("Téléphone ou e-mail : {}", s(t, &["value"])));
        }
        for c in interop::json_at(p, &["contact"])
            .as_array()
            .into_iter()
            .flatten()
        {
            let role = match s(c, &["relationship", "0", "coding", "0", "code"]) {
                "NOK" => "Personne de confiance",
                "ECON" | "C" => "Personne à prévenir",
                _ => "Proche",
            };
            lines.push(format!(
                "{role} : {} {} {}",
                s(c, &["name", "given", "0"]),
                s(c, &["name", "family"]),
                s(c, &["telecom", "0", "value"])
            ));
        }
        if let Some(gp) = interop::json_at(p, &["generalPractitioner", "0", "display"]).as_str() {
            lines.push(format!("Médecin traitant : {gp}"));
        }
    }
    let kinds: [(&str, &str); 10] = [
        ("Encounter", "Séjours et téléconsultations"),
        ("Appointment", "Rendez-vous"),
        ("DocumentReference", "Documents"),
        ("MedicationRequest", "Ordonnances"),
        ("CarePlan", "Suivi à distance"),
        ("QuestionnaireResponse", "Questionnaires remplis"),
        ("Observation", "Mesures et réponses"),
        ("Flag", "Alertes"),
        ("Task", "Prise en charge des alertes"),
        ("Communication", "Messages"),
    ];
    for (kind, title) in kinds {
        let items: Vec<&Value> = all
            .iter()
            .filter(|r| s(r, &["resourceType"]) == kind)
            .collect();
        if items.is_empty() {
            continue;
        }
        section(&mut lines, &format!("{title} ({})", items.len()));
        for r in items {
            lines.push(summary(kind, r));
        }
    }
    lines
}

/// One line for one resource.
fn summary(kind: &str, r: &Value) -> String {
    match kind {
        "Encounter" => format!(
            "{} — {}{}",
            day(s(r, &["period", "start"])),
            s(r, &["class", "display"]).trim(),
            match s(r, &["period", "end"]) {
                "" => " (en cours)".to_owned(),
                end => format!(" jusqu'au {}", day(end)),
            }
        ),
        "Appointment" => format!("{} — {}", day(s(r, &["start"])), s(r, &["description"])),
        "DocumentReference" => format!("{} — {}", day(s(r, &["date"])), s(r, &["description"])),
        "MedicationRequest" => format!(
            "{} — {}",
            day(s(r, &["authoredOn"])),
            s(r, &["medicationCodeableConcept", "text"])
        ),
        "CarePlan" => format!("{} — {}", s(r, &["title"]), s(r, &["status"])),
        "QuestionnaireResponse" => day(s(r, &["authored"])),
        "Observation" => {
            let value = match interop::json_at(r, &["valueQuantity", "value"]) {
                Value::Null => s(r, &["valueString"]).to_owned(),
                v => format!("{v} {}", s(r, &["valueQuantity", "unit"])),
            };
            format!(
                "{} — {} : {}",
                day(s(r, &["effectiveDateTime"])),
                s(r, &["code", "text"]),
                value
            )
        }
        "Flag" => format!(
            "{} — {}",
            day(s(r, &["period", "start"])),
            s(r, &["code", "text"])
        ),
        "Task" => format!("{} — {}", day(s(r, &["authoredOn"])), s(r, &["status"])),
        _ => format!(
            "{} — {}",
            day(s(r, &["sent"])),
            s(r, &["payload", "0", "contentString"])
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_reads_as_french_sections() {
        let all = vec![
            json!({"resourceType": "Patient", "name": [{"family": "Lambert", "given": ["Monique"]}], "birthDate": "1961-04-12",
                   "identifier": [{"type": {"coding": [{"code": "PI"}]}, "value": "000000001"}],
                   "address": [{"line": ["1 rue A"], "postalCode": "69002", "city": "Lyon"}],
                   "contact": [{"relationship": [{"coding": [{"code": "NOK"}]}], "name": {"family": "Dupont", "given": ["Claire"]}}]}),
            json!({"resourceType": "Encounter", "period": {"start": "2026-11-02T08:00:00Z"}, "class": {"display": "hospitalisation"}}),
            json!({"resourceType": "Observation", "effectiveDateTime": "2026-11-03T08:00:00Z", "code": {"text": "Poids"}, "valueQuantity": {"value": 61.5, "unit": "kg"}}),
        ];
        let text = readable(&all).join("\n");
        for want in [
            "IDENTITÉ",
            "LAMBERT Monique — né(e) le 12/04/1961",
            "Identifiant dans l'établissement (IPP) : 000000001",
            "Adresse : 1 rue A 69002 Lyon",
            "Personne de confiance : Claire Dupont",
            "SÉJOURS ET TÉLÉCONSULTATIONS (1)",
            "02/11/2026 — hospitalisation (en cours)",
            "03/11/2026 — Poids : 61.5 kg",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        assert!(
            !text.contains("RENDEZ-VOUS"),
            "an empty section is left out"
        );
    }
}
