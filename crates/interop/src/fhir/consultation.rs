//! A closed teleconsultation as FHIR R4: an Encounter of class VR (virtual), a
//! MedicationRequest per prescribed medication (sharing the prescription's
//! number as group identifier) and a DocumentReference to the prescription PDF.

use domain::consultation::Line;
use serde_json::{Value, json};

use super::output::instant;

/// The prescription numbers' identifier system.
pub const SYSTEM_ORDONNANCE: &str = "urn:parcours:ordonnance";

/// What the three resources are built from.
#[derive(Debug, Clone)]
pub struct ConsultationView<'a> {
    /// Appointment id (the Encounter's id and the Appointment it fulfils).
    pub id: String,
    /// Patient id.
    pub patient: String,
    /// Practitioner id.
    pub practitioner: String,
    /// Practitioner's name.
    pub practitioner_name: &'a str,
    /// Establishment id.
    pub establishment: String,
    /// Appointment start (Unix ms).
    pub start_ms: i64,
    /// Closed at (Unix ms).
    pub closed_at_ms: i64,
    /// Prescription number.
    pub number: &'a str,
    /// Medications.
    pub lines: &'a [Line],
    /// Approved by the doctor.
    pub approved: bool,
}

/// The Encounter (finished, virtual).
pub fn encounter(c: &ConsultationView<'_>) -> Value {
    super::fr_core(json!({
        "resourceType": "Encounter",
        "id": c.id,
        "meta": {"lastUpdated": instant(c.closed_at_ms)},
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR", "display": "virtual"},
        "serviceType": {"coding": [{"system": "urn:parcours:mode-consultation", "code": "teleconsultation", "display": "en téléconsultation"}]},
        "subject": {"reference": format!("Patient/{}", c.patient)},
        "participant": [{"individual": {"reference": format!("Practitioner/{}", c.practitioner), "display": c.practitioner_name}}],
        "appointment": [{"reference": format!("Appointment/{}", c.id)}],
        "period": {"start": instant(c.start_ms), "end": instant(c.closed_at_ms)},
        "serviceProvider": {"reference": format!("Organization/{}", c.establishment)},
    }))
}

/// One MedicationRequest per line (`{id}-{n}`), active once approved, a draft before.
pub fn medication_requests(c: &ConsultationView<'_>) -> Vec<Value> {
    c.lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({
                "resourceType": "MedicationRequest",
                "id": format!("{}-{}", c.id, i + 1),
                "status": if c.approved { "active" } else { "draft" },
                "intent": "order",
                "groupIdentifier": {"system": SYSTEM_ORDONNANCE, "value": c.number},
                "medicationCodeableConcept": {"text": l.medication},
                "subject": {"reference": format!("Patient/{}", c.patient)},
                "encounter": {"reference": format!("Encounter/{}", c.id)},
                "authoredOn": instant(c.closed_at_ms),
                "requester": {"reference": format!("Practitioner/{}", c.practitioner), "display": c.practitioner_name},
                "dosageInstruction": [{
                    "sequence": i + 1,
                    "text": format!("{} — {} — pendant {}", l.dose, l.frequency, l.duration),
                }],
            })
        })
        .collect()
}

/// The DocumentReference to the prescription PDF at `url`, the PDF inline.
pub fn document_reference(c: &ConsultationView<'_>, url: &str, pdf: &[u8]) -> Value {
    use base64::Engine as _;
    json!({
        "resourceType": "DocumentReference",
        "id": c.id,
        "masterIdentifier": {"system": SYSTEM_ORDONNANCE, "value": c.number},
        "status": "current",
        "docStatus": if c.approved { "final" } else { "preliminary" },
        "type": {"coding": [{"system": "http://loinc.org", "code": "57833-6", "display": "Prescription for medication"}]},
        "subject": {"reference": format!("Patient/{}", c.patient)},
        "date": instant(c.closed_at_ms),
        "author": [{"reference": format!("Practitioner/{}", c.practitioner), "display": c.practitioner_name}],
        "custodian": {"reference": format!("Organization/{}", c.establishment)},
        "description": format!("Ordonnance {}", c.number),
        "content": [{"attachment": {
            "contentType": "application/pdf",
            "language": "fr-FR",
            "data": base64::engine::general_purpose::STANDARD.encode(pdf),
            "url": url,
            "size": pdf.len(),
            "title": format!("Ordonnance {}", c.number),
        }}],
        "context": {"encounter": [{"reference": format!("Encounter/{}", c.id)}]},
    })
}
