//! FHIR R4 (4.0.1) mapping. Output is built as JSON values from domain records;
//! input is read through serde structs that refuse unknown elements, so nothing a
//! client sends is silently dropped: what Parcours does not store is refused with
//! a clear OperationOutcome instead.

pub mod billing;
pub mod consultation;
mod details;
mod input;
pub mod mhd;
pub mod monitoring;
pub mod observation;
mod output;
pub mod schedule;
pub mod subscription;

pub use details::{CS_BCP47, CS_CONTACT_ROLE, CS_V2_0063, CS_V2_0131};
pub use input::{FhirInputError, ParsedPatient, parse_patient};
pub use output::*;

/// FR Core identity reliability extension.
pub const EXT_IDENTITY_RELIABILITY: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability";
/// FR Core identity status code system.
pub const CS_IDENTITY_STATUS: &str =
    "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status";
/// Core birthplace extension.
pub const EXT_BIRTHPLACE: &str = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace";
/// FR Core INSEE code extension on an address.
pub const EXT_INSEE_CODE: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code";
/// INSEE commune code system (TRE_R13).
pub const CS_INSEE_COMMUNE: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM";
/// FR Core identifier types (INS-NIR, INS-NIA).
pub const CS_FR_IDENTIFIER_TYPE: &str = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203";
/// HL7 v2 table 0203 (PI for the IPP).
pub const CS_V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
/// RPPS (IdNatPs) identifier system.
pub const OID_IDNATPS: &str = "1.2.250.1.71.4.2.1";
/// FINESS (IdNatStruct) identifier system.
pub const OID_IDNATSTRUCT: &str = "1.2.250.1.71.4.2.2";
/// FR Core patient profile.
pub const PROFILE_FR_CORE_PATIENT: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient";

/// Where FR Core's profiles live.
const FR_CORE_SD: &str = "https://hl7.fr/ig/fhir/core/StructureDefinition/";

/// The FR Core 2.1.0 profile each type Parcours emits follows (the Patient's
/// is [`PROFILE_FR_CORE_PATIENT`]); the CapabilityStatement lists the same.
pub const FR_CORE_PROFILES: [(&str, &str); 9] = [
    ("Patient", "fr-core-patient"),
    ("Practitioner", "fr-core-practitioner"),
    ("Organization", "fr-core-organization"),
    ("Encounter", "fr-core-encounter"),
    ("Location", "fr-core-location"),
    ("HealthcareService", "fr-core-healthcare-service"),
    ("Appointment", "fr-core-appointment"),
    ("Schedule", "fr-core-schedule"),
    ("Slot", "fr-core-slot"),
];

/// FR Core's vital-sign Observation profiles, by LOINC code; other measures
/// follow the base vital-signs profile.
const FR_CORE_VITAL_SIGNS: [(&str, &str); 6] = [
    ("29463-7", "fr-core-observation-body-weight"),
    ("8310-5", "fr-core-observation-body-temperature"),
    ("8867-4", "fr-core-observation-heart-rate"),
    ("85354-9", "fr-core-observation-bp"),
    ("8302-2", "fr-core-observation-body-height"),
    ("39156-5", "fr-core-observation-bmi"),
];

/// The LOINC codes that have an FR Core vital-sign profile.
pub const FR_CORE_VITAL_SIGNS_CODES: [&str; 6] = [
    FR_CORE_VITAL_SIGNS[0].0,
    FR_CORE_VITAL_SIGNS[1].0,
    FR_CORE_VITAL_SIGNS[2].0,
    FR_CORE_VITAL_SIGNS[3].0,
    FR_CORE_VITAL_SIGNS[4].0,
    FR_CORE_VITAL_SIGNS[5].0,
];

/// The base FHIR vital-signs profile.
pub const PROFILE_VITAL_SIGNS: &str = "http://hl7.org/fhir/StructureDefinition/vitalsigns";

/// The FR Core profile of a resource type, when Parcours follows one.
pub fn fr_core_profile(resource_type: &str) -> Option<String> {
    FR_CORE_PROFILES
        .iter()
        .find(|(t, _)| *t == resource_type)
        .map(|(_, p)| format!("{FR_CORE_SD}{p}"))
}

/// The profile a vital-sign Observation with this LOINC code follows.
pub fn vital_sign_profile(loinc: Option<&str>) -> String {
    FR_CORE_VITAL_SIGNS
        .iter()
        .find(|(c, _)| Some(*c) == loinc)
        .map(|(_, p)| format!("{FR_CORE_SD}{p}"))
        .unwrap_or_else(|| PROFILE_VITAL_SIGNS.to_owned())
}

/// Declares `profile` in the resource's `meta.profile` (its other `meta`
/// elements kept).
pub fn with_profile(mut r: serde_json::Value, profile: String) -> serde_json::Value {
    if let Some(obj) = r.as_object_mut() {
        let meta = obj.entry("meta").or_insert_with(|| serde_json::json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.insert("profile".into(), serde_json::json!([profile]));
        }
    }
    r
}

/// Declares the type's FR Core profile, when it has one.
pub fn fr_core(r: serde_json::Value) -> serde_json::Value {
    let ty = r
        .get("resourceType")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    match fr_core_profile(ty) {
        Some(p) => with_profile(r, p),
        None => r,
    }
}

/// How a usual search parameter is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `system|code`, `code` or `|code` on a code or Codings.
    Token,
    /// `eq`, `gt`, `ge`, `lt`, `le` and a date or an instant.
    Date,
}

/// A usual search parameter: its name, kind and where it is in the resource.
pub type UsualParam = (&'static str, ParamKind, &'static [&'static str]);

/// The usual search parameters of each type, matched on the resources a
/// search finds (beyond `patient` and the parameters its handler reads).
pub fn usual_params(resource: &str) -> &'static [UsualParam] {
    use ParamKind::{Date, Token};
    match resource {
        "Encounter" => &[
            ("status", Token, &["status"]),
            ("class", Token, &["class"]),
            ("date", Date, &["period", "start"]),
        ],
        "Observation" => &[
            ("code", Token, &["code", "coding"]),
            ("category", Token, &["category", "coding"]),
            ("status", Token, &["status"]),
            ("date", Date, &["effectiveDateTime"]),
        ],
        "Appointment" => &[("status", Token, &["status"]), ("date", Date, &["start"])],
        "DocumentReference" => &[
            ("status", Token, &["status"]),
            ("type", Token, &["type", "coding"]),
            ("date", Date, &["date"]),
        ],
        "Flag" => &[
            ("status", Token, &["status"]),
            ("date", Date, &["period", "start"]),
        ],
        "Task" => &[
            ("status", Token, &["status"]),
            ("priority", Token, &["priority"]),
            ("authored-on", Date, &["authoredOn"]),
        ],
        "QuestionnaireResponse" => &[
            ("status", Token, &["status"]),
            ("authored", Date, &["authored"]),
        ],
        "Communication" => &[("status", Token, &["status"]), ("sent", Date, &["sent"])],
        "CarePlan" => &[
            ("status", Token, &["status"]),
            ("date", Date, &["period", "start"]),
        ],
        "MedicationRequest" => &[
            ("status", Token, &["status"]),
            ("authoredon", Date, &["authoredOn"]),
        ],
        _ => &[],
    }
}

/// `urn:oid:` + an OID.
pub fn oid_system(oid: &str) -> String {
    format!("urn:oid:{oid}")
}
