//! FHIR R4 (4.0.1) mapping. Output is built as JSON values from domain records;
//! input is read through serde structs that refuse unknown elements, so nothing a
//! client sends is silently dropped: what Parcours does not store is refused with
//! a clear OperationOutcome instead.

pub mod consultation;
mod details;
mod input;
pub mod mhd;
pub mod monitoring;
mod output;
pub mod schedule;

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

/// `urn:oid:` + an OID.
pub fn oid_system(oid: &str) -> String {
    format!("urn:oid:{oid}")
}
