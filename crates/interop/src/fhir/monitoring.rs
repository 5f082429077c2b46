//! Remote monitoring as FHIR R4: an enrolment is a CarePlan, a questionnaire
//! submission a QuestionnaireResponse whose answers are also Observations (measures
//! in LOINC with UCUM units, graded symptoms as coded values), an alert's triage a
//! Task, an open alert a Flag on the patient.

use domain::monitoring::{Alert, AlertLevel, AlertStatus, Enrolment, Message};
use serde_json::{Value, json};

use super::output::instant;
use crate::programme::Programme;

/// The code system of the triage task and of Parcours' own task kinds.
pub const CS_TASK: &str = "urn:parcours:task";
/// How an alert ended (`domain::monitoring::Outcome` codes).
pub const CS_OUTCOME: &str = "urn:parcours:issue-alerte";

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
        "id": e.id.to_string(),
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

/// An alert's triage as a Task: its state, priority by level, due time (the SLA),
/// the establishment whose nurses own it, and the outcome once closed. `label` is
/// the item's short name.
pub fn triage_task(a: &Alert, label: &str) -> Value {
    let mut r = json!({
        "resourceType": "Task",
        "id": a.id.to_string(),
        "status": match a.status {
            AlertStatus::Open => "requested",
            AlertStatus::Taken | AlertStatus::Escalated => "in-progress",
            AlertStatus::Closed => "completed",
            // Recorded while its item was muted: no triage will take place.
            AlertStatus::Muted => "cancelled",
        },
        "businessStatus": {"text": a.status.label_fr()},
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
        let mut output = vec![json!({"type": {"text": "Issue"}, "valueString": outcome})];
        if let Some(kind) = a.outcome_kind {
            output.push(json!({
                "type": {"text": "Niveau de soins"},
                "valueCodeableConcept": {"coding": [{"system": CS_OUTCOME, "code": kind.code(), "display": kind.label_fr()}]}
            }));
        }
        obj.insert("output".into(), Value::Array(output));
    }
    r
}

/// An alert as a Flag on the patient: active until closed.
pub fn flag(a: &Alert, label: &str) -> Value {
    json!({
        "resourceType": "Flag",
        "id": a.id.to_string(),
        "status": if matches!(a.status, AlertStatus::Closed | AlertStatus::Muted) { "inactive" } else { "active" },
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category", "code": "clinical", "display": "Clinical"}]}],
        "code": {"text": format!("Alerte {} — {label} : {}", a.level.label_fr(), a.reason)},
        "subject": patient_ref(a.patient),
        "period": {"start": instant(a.raised_at_ms)},
        "author": organization_ref(a.establishment),
    })
}

/// A message of the patient's thread as a Communication (sender and recipient are
/// the patient and the establishment following them).
pub fn communication(m: &Message, establishment: impl std::fmt::Display) -> Value {
    let (patient, team) = (
        format!("Patient/{}", m.patient),
        format!("Organization/{establishment}"),
    );
    let (sender, recipient) = if m.from_patient {
        (patient, team)
    } else {
        (team, patient)
    };
    // Two states: sent, then read by the other side.
    let (version, changed) = match m.read_at_ms {
        Some(at) => ("2", at),
        None => ("1", m.at_ms),
    };
    let mut r = json!({
        "resourceType": "Communication",
        "id": m.id,
        "meta": {"versionId": version, "lastUpdated": instant(changed)},
        "status": "completed",
        "basedOn": [{"reference": format!("CarePlan/{}", m.enrolment)}],
        "subject": patient_ref(m.patient),
        "sent": instant(m.at_ms),
        "sender": {"reference": sender, "display": m.author},
        "recipient": [{"reference": recipient}],
        "payload": [{"contentString": m.body}],
    });
    if let (Some(at), Some(obj)) = (m.read_at_ms, r.as_object_mut()) {
        obj.insert("received".into(), json!(instant(at)));
    }
    r
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
    /// The device or laboratory that sent it as an Observation (`None`: a
    /// questionnaire answered).
    pub source: Option<&'a str>,
    /// When Parcours stored it (`meta.lastUpdated`; it never changes after).
    pub filed_ms: i64,
}

/// `meta` of a resource that never changes once stored: version 1.
fn filed_meta(filed_ms: i64) -> Value {
    json!({"versionId": "1", "lastUpdated": instant(filed_ms)})
}

/// The QuestionnaireResponse.
pub fn questionnaire_response(r: &ResponseView<'_>, programme: &str) -> Value {
    json!({
        "resourceType": "QuestionnaireResponse",
        "id": r.id,
        "meta": filed_meta(r.filed_ms),
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
                "meta": filed_meta(r.filed_ms),
                "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
                "code": code,
                "subject": patient_ref(&r.patient),
                "effectiveDateTime": instant(r.authored_ms),
            });
            if let Some(obj) = o.as_object_mut() {
                obj.insert(key.into(), value);
                match r.source {
                    None => obj.insert(
                        "derivedFrom".into(),
                        json!([{"reference": format!("QuestionnaireResponse/{}", r.id)}]),
                    ),
                    Some(device) => obj.insert("device".into(), json!({"display": device})),
                };
            }
            if category == "vital-signs" {
                let loinc = item
                    .code
                    .as_ref()
                    .filter(|(system, _, _)| system == "http://loinc.org")
                    .map(|(_, c, _)| c.as_str());
                o = super::with_profile(o, super::vital_sign_profile(loinc));
            }
            Some(o)
        })
        .collect()
}

/// A QuestionnaireResponse posted by a client, read into what the rules need.
#[derive(Debug, Clone, PartialEq)]
pub struct PostedResponse {
    /// The programme (the Questionnaire's id).
    pub programme: String,
    /// The patient's id (from `subject`).
    pub patient: String,
    /// (linkId, answer as text: a grade's code, a number, `oui`/`non`, text).
    pub answers: Vec<(String, String)>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ResponseIn {
    resource_type: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    meta: Option<Value>,
    #[serde(default)]
    text: Option<Value>,
    questionnaire: String,
    status: String,
    subject: ReferenceIn,
    #[serde(default)]
    authored: Option<String>,
    #[serde(default)]
    author: Option<ReferenceIn>,
    #[serde(default)]
    item: Vec<ItemIn>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceIn {
    reference: String,
    #[serde(default)]
    display: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ItemIn {
    link_id: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    answer: Vec<AnswerIn>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AnswerIn {
    #[serde(default)]
    value_coding: Option<CodingIn>,
    #[serde(default)]
    value_decimal: Option<f64>,
    #[serde(default)]
    value_integer: Option<i64>,
    #[serde(default)]
    value_boolean: Option<bool>,
    #[serde(default)]
    value_string: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CodingIn {
    #[serde(default)]
    system: Option<String>,
    code: String,
    #[serde(default)]
    display: Option<String>,
}

/// The one value of an answer as text (a coding's code, a number, oui/non,
/// a string); `None` when it has none or several.
fn answer_value(a: &AnswerIn) -> Option<String> {
    match a {
        AnswerIn {
            value_coding: Some(c),
            value_decimal: None,
            value_integer: None,
            value_boolean: None,
            value_string: None,
        } => {
            let _ = (&c.system, &c.display);
            Some(c.code.clone())
        }
        AnswerIn {
            value_coding: None,
            value_decimal: Some(x),
            value_integer: None,
            value_boolean: None,
            value_string: None,
        } => Some(x.to_string()),
        AnswerIn {
            value_coding: None,
            value_decimal: None,
            value_integer: Some(n),
            value_boolean: None,
            value_string: None,
        } => Some(n.to_string()),
        AnswerIn {
            value_coding: None,
            value_decimal: None,
            value_integer: None,
            value_boolean: Some(b),
            value_string: None,
        } => Some(if *b { "oui" } else { "non" }.to_owned()),
        AnswerIn {
            value_coding: None,
            value_decimal: None,
            value_integer: None,
            value_boolean: None,
            value_string: Some(t),
        } => Some(t.clone()),
        _ => None,
    }
}

/// Reads a posted QuestionnaireResponse: a completed response to a Parcours
/// questionnaire (`urn:parcours:questionnaire:ID` or `Questionnaire/ID`) about
/// `Patient/ID`, one answer per item. Unknown elements are refused by name, so
/// nothing sent is silently dropped. The answers are checked against the
/// questionnaire afterwards, by the same code as the patient's form.
pub fn parse_response(bytes: &[u8]) -> Result<PostedResponse, String> {
    let r: ResponseIn = serde_json::from_slice(bytes)
        .map_err(|e| format!("QuestionnaireResponse illisible : {e}"))?;
    if r.resource_type != "QuestionnaireResponse" {
        return Err(format!(
            "resourceType QuestionnaireResponse attendu, reçu {}",
            r.resource_type
        ));
    }
    let _ = (
        r.id,
        r.meta,
        r.text,
        r.authored,
        r.author.map(|a| a.display),
    );
    if r.status != "completed" {
        return Err(format!(
            "seule une réponse complète (status completed) est acceptée, reçu {}",
            r.status
        ));
    }
    let programme = r
        .questionnaire
        .strip_prefix("urn:parcours:questionnaire:")
        .or_else(|| r.questionnaire.strip_prefix("Questionnaire/"))
        .filter(|id| !id.is_empty())
        .ok_or_else(|| format!("questionnaire inconnu : {}", r.questionnaire))?
        .to_owned();
    let patient = r
        .subject
        .reference
        .strip_prefix("Patient/")
        .filter(|id| !id.is_empty())
        .ok_or("subject doit référencer Patient/id")?
        .to_owned();
    let _ = r.subject.display;
    let mut answers = Vec::with_capacity(r.item.len());
    for it in r.item {
        let _ = it.text;
        let [a] = it.answer.as_slice() else {
            return Err(format!(
                "item {} : une réponse et une seule est attendue",
                it.link_id
            ));
        };
        let value = answer_value(a).ok_or_else(|| {
            format!(
                "item {} : une seule valeur value[x] est attendue",
                it.link_id
            )
        })?;
        if answers
            .iter()
            .any(|(k, _): &(String, String)| *k == it.link_id)
        {
            return Err(format!("item {} répété", it.link_id));
        }
        answers.push((it.link_id, value));
    }
    Ok(PostedResponse {
        programme,
        patient,
        answers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted(items: Value) -> Vec<u8> {
        json!({
            "resourceType": "QuestionnaireResponse",
            "questionnaire": "urn:parcours:questionnaire:infectious-home",
            "status": "completed",
            "subject": {"reference": "Patient/p1"},
            "item": items,
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_muted_alert_is_a_cancelled_task_and_an_inactive_flag() {
        let mut a = Alert {
            id: domain::AlertId::new(),
            enrolment: domain::EnrolmentId::new(),
            patient: domain::PatientId::new(),
            establishment: domain::EstablishmentId::new(),
            level: AlertLevel::Warning,
            item: "neuropathy".into(),
            reason: "grade 2 (seuil 2)".into(),
            status: AlertStatus::Muted,
            raised_at_ms: 0,
            due_at_ms: 1,
            outcome: None,
            outcome_kind: None,
        };
        let t = triage_task(&a, "Neuropathie");
        assert_eq!(t["status"], "cancelled");
        assert_eq!(t["businessStatus"]["text"], "en sourdine");
        assert_eq!(flag(&a, "Neuropathie")["status"], "inactive");
        a.status = AlertStatus::Closed;
        a.outcome = Some("rappel".into());
        a.outcome_kind = Some(domain::monitoring::Outcome::Emergency);
        let closed = triage_task(&a, "Neuropathie");
        assert_eq!(
            closed["output"][1]["valueCodeableConcept"]["coding"][0]["code"],
            "emergency"
        );
        a.status = AlertStatus::Open;
        assert_eq!(triage_task(&a, "Neuropathie")["status"], "requested");
        assert_eq!(flag(&a, "Neuropathie")["status"], "active");
    }

    #[test]
    fn a_posted_response_is_read_item_by_item() {
        let r = parse_response(&posted(json!([
            {"linkId": "temperature", "answer": [{"valueDecimal": 38.2}]},
            {"linkId": "spo2", "answer": [{"valueInteger": 93}]},
            {"linkId": "dyspnoea", "answer": [{"valueCoding": {"system": "urn:parcours:ctcae-grade", "code": "2"}}]},
            {"linkId": "worse", "answer": [{"valueBoolean": true}]},
            {"linkId": "note", "text": "?", "answer": [{"valueString": "mal dormi"}]}
        ])))
        .unwrap();
        assert_eq!(r.programme, "infectious-home");
        assert_eq!(r.patient, "p1");
        assert_eq!(
            r.answers,
            [
                ("temperature", "38.2"),
                ("spo2", "93"),
                ("dyspnoea", "2"),
                ("worse", "oui"),
                ("note", "mal dormi")
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .to_vec()
        );
    }

    #[test]
    fn a_bad_posted_response_says_what_is_wrong() {
        let bad = |bytes: Vec<u8>, needle: &str| {
            let e = parse_response(&bytes).unwrap_err();
            assert!(e.contains(needle), "{e} lacks {needle}");
        };
        bad(b"{".to_vec(), "illisible");
        bad(
            posted(json!([{"linkId": "spo2", "answer": []}])),
            "une réponse et une seule",
        );
        bad(
            posted(
                json!([{"linkId": "spo2", "answer": [{"valueInteger": 9, "valueBoolean": true}]}]),
            ),
            "une seule valeur",
        );
        bad(
            posted(json!([{"linkId": "spo2", "answer": [{"valueQuantity": {"value": 9}}]}])),
            "valueQuantity",
        );
        bad(
            posted(
                json!([{"linkId": "spo2", "answer": [{"valueInteger": 9}]}, {"linkId": "spo2", "answer": [{"valueInteger": 9}]}]),
            ),
            "répété",
        );
        let mut v: Value = serde_json::from_slice(&posted(json!([]))).unwrap();
        v["status"] = "in-progress".into();
        bad(v.to_string().into_bytes(), "status completed");
        v["status"] = "completed".into();
        v["questionnaire"] = "http://example.org/Q".into();
        bad(v.to_string().into_bytes(), "questionnaire inconnu");
        v["questionnaire"] = "Questionnaire/oral-oncology".into();
        v["subject"] = json!({"reference": "Group/g"});
        bad(v.to_string().into_bytes(), "Patient/id");
        v["subject"] = json!({"reference": "Patient/p"});
        v["resourceType"] = "Observation".into();
        bad(v.to_string().into_bytes(), "resourceType");
        v["resourceType"] = "QuestionnaireResponse".into();
        v["encounter"] = json!({"reference": "Encounter/e"});
        bad(v.to_string().into_bytes(), "encounter");
    }
}
