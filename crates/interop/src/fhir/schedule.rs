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
    r
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
    json!({
        "resourceType": "Schedule",
        "id": practitioner,
        "active": true,
        "actor": actors,
        "comment": format!("Agenda de {name}"),
    })
}

/// A free slot of an agenda (its id: the agenda and the start).
pub fn slot(schedule: &str, s: &Slot) -> Value {
    json!({
        "resourceType": "Slot",
        "id": format!("{}-{}", schedule.get(..8).unwrap_or(schedule), s.start_ms),
        "schedule": {"reference": format!("Schedule/{schedule}")},
        "status": "free",
        "serviceType": service_type(s.mode),
        "start": instant(s.start_ms),
        "end": instant(s.end_ms),
    })
}
