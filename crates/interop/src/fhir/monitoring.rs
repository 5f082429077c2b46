//! Remote monitoring as FHIR R4: an enrolment is a CarePlan, a questionnaire
//! submission a QuestionnaireResponse whose answers are also Observations (measures
//! in LOINC with UCUM units, graded symptoms as coded values), an alert's triage a
//! Task, an open alert a Flag on the patient.

use domain::monitoring::{Alert, AlertLevel, AlertStatus, Enrolment};
use serde_json::{Value, json};

use super::output::instant;
use crate::programme::Programme;

/// The code system of the triage task and of Parcours' own task kinds.
pub const CS_TASK: &str = "urn:parcours:task";

fn patient_ref(id: impl std::fmt::Display) -> Value {
    json!({"reference": format!("Patient/{id}")})
}

fn organization_ref(id: impl std::fmt::Display) -> Value {
    json!({"reference": format!("Organization/{id}")})
}

/// An enrolment as a CarePlan (`active`, or `completed` with the end reason).
pub fn care_plan(e: &Enrolment, p: Option<&Programme>) -> Value {
    let mut r = json!({
        "resourceType": "CarePlan",
        "id": e.id,
        "status": if e.status == "active" { "active" } else { "completed" },
        "intent": "plan",
        "category": [{"text": "Télésurveillance"}],
        "title": p.map_or(e.programme.as_str(), |p| p.title.as_str()),
        "instantiatesCanonical": [format!("urn:parcours:questionnaire:{}", e.programme)],
        "subject": patient_ref(e.patient),
        "period": {"start": instant(e.started_at_ms)},
        "author": organization_ref(e.establishment),
    });
    if let (Some(reason), Some(obj)) = (&e.end_reason, r.as_object_mut()) {
        obj.insert(
            "note".into(),
            json!([{"text": format!("Fin du suivi : {reason}")}]),
        );
    }
    r
}

fn status_fr(s: AlertStatus) -> &'static str {
    match s {
        AlertStatus::Open => "à prendre",
        AlertStatus::Taken => "prise en charge",
        AlertStatus::Escalated => "transmise au médecin",
        AlertStatus::Closed => "close",
    }
}

/// An alert's triage as a Task: its state, priority by level, due time (the SLA),
/// the establishment whose nurses own it, and the outcome once closed. `label` is
/// the item's short name.
pub fn triage_task(a: &Alert, label: &str) -> Value {
    let mut r = json!({
        "resourceType": "Task",
        "id": a.id,
        "status": match a.status {
            AlertStatus::Open => "requested",
            AlertStatus::Taken | AlertStatus::Escalated => "in-progress",
            AlertStatus::Closed => "completed",
        },
        "businessStatus": {"text": status_fr(a.status)},
        "intent": "order",
        "priority": match a.level {
            AlertLevel::Info => "routine",
            AlertLevel::Warning => "urgent",
            AlertLevel::Urgent => "stat",
        },
        "code": {"coding": [{"system": CS_TASK, "code": "triage", "display": "Triage d'une alerte de télésurveillance"}]},
        "description": format!("{label} : {}", a.reason),
        "focus": {"reference": format!("Flag/{}", a.id)},
        "for": patient_ref(a.patient),
        "basedOn": [{"reference": format!("CarePlan/{}", a.enrolment)}],
        "authoredOn": instant(a.raised_at_ms),
        "restriction": {"period": {"end": instant(a.due_at_ms)}},
        "owner": organization_ref(a.establishment),
    });
    if let (Some(outcome), Some(obj)) = (&a.outcome, r.as_object_mut()) {
        obj.insert(
            "output".into(),
            json!([{"type": {"text": "Issue"}, "valueString": outcome}]),
        );
    }
    r
}

/// An alert as a Flag on the patient: active until closed.
pub fn flag(a: &Alert, label: &str) -> Value {
    json!({
        "resourceType": "Flag",
        "id": a.id,
        "status": if a.status == AlertStatus::Closed { "inactive" } else { "active" },
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category", "code": "clinical", "display": "Clinical"}]}],
        "code": {"text": format!("Alerte {} — {label} : {}", a.level.label_fr(), a.reason)},
        "subject": patient_ref(a.patient),
        "period": {"start": instant(a.raised_at_ms)},
        "author": organization_ref(a.establishment),
    })
}

/// A stored questionnaire submission, as the mapping needs it.
#[derive(Debug, Clone)]
pub struct ResponseView<'a> {
    /// Id.
    pub id: &'a str,
    /// Patient id.
    pub patient: String,
    /// Submitted (Unix ms).
    pub authored_ms: i64,
    /// The answers as QuestionnaireResponse items.
    pub items: &'a Value,
}

/// The QuestionnaireResponse.
pub fn questionnaire_response(r: &ResponseView<'_>, programme: &str) -> Value {
    json!({
        "resourceType": "QuestionnaireResponse",
        "id": r.id,
        "questionnaire": format!("urn:parcours:questionnaire:{programme}"),
        "status": "completed",
        "subject": patient_ref(&r.patient),
        "authored": instant(r.authored_ms),
        "item": r.items,
    })
}

/// One Observation per answer, derived from the response: measures are vital
/// signs with a UCUM quantity, grades and yes/no are survey answers.
pub fn observations(r: &ResponseView<'_>, p: &Programme) -> Vec<Value> {
    let Some(items) = r.items.as_array() else {
        return vec![];
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(n, answered)| {
            let link = answered.get("linkId").and_then(Value::as_str)?;
            let item = p.items.iter().find(|i| i.link_id == link)?;
            let answer = answered.get("answer").and_then(|a| a.get(0))?;
            let (category, key, value) = if let Some(x) = answer.get("valueDecimal") {
                let unit = item.unit.clone().unwrap_or_default();
                (
                    "vital-signs",
                    "valueQuantity",
                    json!({"value": x, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}),
                )
            } else if let Some(c) = answer.get("valueCoding") {
                ("survey", "valueCodeableConcept", json!({"coding": [c]}))
            } else if let Some(b) = answer.get("valueBoolean") {
                ("survey", "valueBoolean", b.clone())
            } else {
                ("survey", "valueString", answer.get("valueString")?.clone())
            };
            let mut code = json!({"text": item.label});
            if let (Some((system, c, display)), Some(obj)) = (&item.code, code.as_object_mut()) {
                obj.insert(
                    "coding".into(),
                    json!([{"system": system, "code": c, "display": display}]),
                );
            }
            let mut o = json!({
                "resourceType": "Observation",
                "id": format!("{}-{n}", r.id),
                "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
                "code": code,
                "subject": patient_ref(&r.patient),
                "effectiveDateTime": instant(r.authored_ms),
                "derivedFrom": [{"reference": format!("QuestionnaireResponse/{}", r.id)}],
            });
            if let Some(obj) = o.as_object_mut() {
                obj.insert(key.into(), value);
            }
            Some(o)
        })
        .collect()
}
