//! Agendas as FHIR R4: a practitioner's agenda is a Schedule, its free slots are
//! Slots, a booking an Appointment (with the patient and the practitioner as
//! participants; a teleconsultation carries the virtual service type).

use domain::schedule::{Appointment, Mode, Slot};
use serde_json::{Value, json};

use super::output::instant;

fn service_type(mode: Mode) -> Value {
    json!([{"coding": [{"system": "urn:parcours:mode-consultation", "code": mode.code(), "display": mode.label_fr()}]}])
}

/// An appointment.
pub fn appointment(a: &Appointment, practitioner_name: &str) -> Value {
    let cancelled = a.status != "booked";
    let mut r = json!({
        "resourceType": "Appointment",
        "id": a.id.to_string(),
        "status": if cancelled { "cancelled" } else { "booked" },
        "serviceType": service_type(a.mode),
        "start": instant(a.start_ms),
        "end": instant(a.end_ms),
        "minutesDuration": (a.end_ms - a.start_ms) / 60_000,
        "participant": [
            {"actor": {"reference": format!("Patient/{}", a.patient)}, "status": "accepted"},
            {"actor": {"reference": format!("Practitioner/{}", a.practitioner), "display": practitioner_name}, "status": "accepted"},
            {"actor": {"reference": format!("Organization/{}", a.establishment)}, "status": "accepted"},
        ],
    });
    if let (Some(reason), Some(obj)) = (&a.cancel_reason, r.as_object_mut()) {
        obj.insert("cancelationReason".into(), json!({"text": reason}));
    }
    super::fr_core(r)
}

/// A practitioner's agenda (its id is the practitioner's).
pub fn schedule(practitioner: &str, name: &str, establishments: &[String]) -> Value {
    let mut actors =
        vec![json!({"reference": format!("Practitioner/{practitioner}"), "display": name})];
    actors.extend(
        establishments
            .iter()
            .map(|e| json!({"reference": format!("Organization/{e}")})),
    );
    super::fr_core(json!({
        "resourceType": "Schedule",
        "id": practitioner,
        "active": true,
        "actor": actors,
        "comment": format!("Agenda de {name}"),
    }))
}

/// A free slot of an agenda (its id: the agenda's and the start, in Unix ms).
pub fn slot(schedule: &str, s: &Slot) -> Value {
    super::fr_core(json!({
        "resourceType": "Slot",
        "id": format!("{schedule}-{}", s.start_ms),
        "schedule": {"reference": format!("Schedule/{schedule}")},
        "status": "free",
        "serviceType": service_type(s.mode),
        "start": instant(s.start_ms),
        "end": instant(s.end_ms),
    }))
}

/// An Appointment a client asks to book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAppointment {
    /// `Patient/{id}`'s id.
    pub patient: String,
    /// `Practitioner/{id}`'s id.
    pub practitioner: String,
    /// `Organization/{id}`'s id, when named (else the client's establishment).
    pub establishment: Option<String>,
    /// The slot's start (Unix ms).
    pub start_ms: i64,
    /// The mode asked (`serviceType`), if any.
    pub mode: Option<Mode>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AppointmentIn {
    resource_type: String,
    #[allow(dead_code)]
    id: Option<String>,
    #[allow(dead_code)]
    meta: Option<Value>,
    #[allow(dead_code)]
    text: Option<Value>,
    status: String,
    #[serde(default)]
    service_type: Vec<Value>,
    start: Option<String>,
    end: Option<String>,
    #[allow(dead_code)]
    minutes_duration: Option<i64>,
    #[serde(default)]
    participant: Vec<ParticipantIn>,
    #[allow(dead_code)]
    description: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ParticipantIn {
    actor: Option<ReferenceIn>,
    #[allow(dead_code)]
    status: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceIn {
    reference: Option<String>,
    #[allow(dead_code)]
    display: Option<String>,
}

/// Reads an Appointment to book: `status` booked (or proposed / pending, a
/// request to book), `start`, the Patient and the Practitioner as participants,
/// optionally the Organization and the mode (`serviceType`); anything else is
/// refused by name. `Err`: the French reason (a 400 or 422 for the caller).
pub fn parse_appointment(body: &[u8]) -> Result<ParsedAppointment, super::FhirInputError> {
    use super::FhirInputError::{NotSupported, Rule, Structure};
    let a: AppointmentIn = serde_json::from_slice(body).map_err(|e| {
        let msg = e.to_string();
        match msg.strip_prefix("unknown field `") {
            Some(rest) => NotSupported(format!(
                "l'élément Appointment.{} n'est pas pris en charge par Parcours: il ne serait pas conservé, retirez-le",
                rest.split('`').next().unwrap_or("")
            )),
            None => Structure(format!("JSON invalide pour une ressource Appointment: {msg}")),
        }
    })?;
    if a.resource_type != "Appointment" {
        return Err(Structure(format!(
            "resourceType {:?} reçu là où Appointment est attendu",
            a.resource_type
        )));
    }
    if !matches!(a.status.as_str(), "booked" | "proposed" | "pending") {
        return Err(Rule(format!(
            "status {:?}: un rendez-vous se crée booked (ou proposed, pending)",
            a.status
        )));
    }
    let start = a.start.as_deref().ok_or_else(|| {
        Rule("start est obligatoire (le début d'un créneau libre, voir Slot)".into())
    })?;
    let start_ms = start
        .parse::<jiff::Timestamp>()
        .map_err(|_| {
            Rule(format!(
                "start {start:?}: un instant avec fuseau est attendu"
            ))
        })?
        .as_millisecond();
    if let Some(end) = a.end.as_deref() {
        end.parse::<jiff::Timestamp>()
            .map_err(|_| Rule(format!("end {end:?}: un instant avec fuseau est attendu")))?;
    }
    let mut mode = None;
    for st in &a.service_type {
        let code = crate::json_at(st, &["coding", "0", "code"])
            .as_str()
            .unwrap_or("");
        mode = Some(Mode::from_code(code).ok_or_else(|| {
            Rule(format!(
                "serviceType {code:?}: presentiel ou teleconsultation"
            ))
        })?);
    }
    let (mut patient, mut practitioner, mut establishment) = (None, None, None);
    for p in &a.participant {
        let r = p
            .actor
            .as_ref()
            .and_then(|r| r.reference.as_deref())
            .unwrap_or("");
        let slot = match r.split_once('/') {
            Some(("Patient", _)) => &mut patient,
            Some(("Practitioner", _)) => &mut practitioner,
            Some(("Organization", _)) => &mut establishment,
            _ => {
                return Err(NotSupported(format!(
                    "participant {r:?}: Patient/…, Practitioner/… ou Organization/… attendu"
                )));
            }
        };
        let id = r.split_once('/').map(|(_, id)| id).unwrap_or("");
        if slot.replace(id.to_owned()).is_some() {
            return Err(Rule(format!("participant {r:?} en double")));
        }
    }
    Ok(ParsedAppointment {
        patient: patient.ok_or_else(|| Rule("un participant Patient/… est obligatoire".into()))?,
        practitioner: practitioner
            .ok_or_else(|| Rule("un participant Practitioner/… est obligatoire".into()))?,
        establishment,
        start_ms,
        mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::FhirInputError;

    fn parse(v: Value) -> Result<ParsedAppointment, FhirInputError> {
        parse_appointment(v.to_string().as_bytes())
    }

    fn base() -> Value {
        json!({
            "resourceType": "Appointment",
            "status": "booked",
            "start": "2026-11-24T09:00:00+01:00",
            "serviceType": [{"coding": [{"code": "teleconsultation"}]}],
            "participant": [
                {"actor": {"reference": "Patient/p1"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/u1"}, "status": "accepted"}
            ]
        })
    }

    #[test]
    fn a_booking_is_read_and_every_refusal_says_why() {
        let a = parse(base()).unwrap();
        assert_eq!(
            a,
            ParsedAppointment {
                patient: "p1".into(),
                practitioner: "u1".into(),
                establishment: None,
                start_ms: "2026-11-24T08:00:00Z"
                    .parse::<jiff::Timestamp>()
                    .unwrap()
                    .as_millisecond(),
                mode: Some(Mode::Tele),
            }
        );
        let cases: Vec<(Value, &str)> = vec![
            (json!({"status": "cancelled"}), "status"),
            (json!({"start": null}), "start est obligatoire"),
            (json!({"start": "demain"}), "instant"),
            (
                json!({"serviceType": [{"coding": [{"code": "domicile"}]}]}),
                "serviceType",
            ),
            (
                json!({"participant": [{"actor": {"reference": "Patient/p1"}}]}),
                "Practitioner",
            ),
            (
                json!({"participant": [{"actor": {"reference": "Device/d1"}}]}),
                "Device/d1",
            ),
            (
                json!({"participant": [{"actor": {"reference": "Patient/a"}}, {"actor": {"reference": "Patient/b"}}]}),
                "en double",
            ),
            (json!({"priority": 1}), "Appointment.priority"),
            (json!({"resourceType": "Slot"}), "Slot"),
        ];
        for (change, needle) in cases {
            let mut v = base();
            for (k, x) in change.as_object().unwrap() {
                v[k] = x.clone();
            }
            let e = parse(v).unwrap_err();
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
    }
}
