//! Parcours standards adapters: converting domain data to and from the formats
//! that leave the platform. Today FHIR R4 (FR Core flavoured); CDA, MHD and the
//! HL7 v2 mappings join here later. `oru` builds ORU^R01 results for the hospital. Pure functions: no I/O, no store, no HTTP.

pub mod cda;
pub mod fhir;
pub mod ical;
pub mod ordonnance;
pub mod oru;
pub mod pdf;
pub mod programme;
pub mod siu;
