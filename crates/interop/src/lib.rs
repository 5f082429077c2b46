//! Parcours standards adapters: converting domain data to and from the formats
//! that leave the platform. Today FHIR R4 (FR Core flavoured); CDA, MHD and the
//! HL7 v2 mappings join here later. `oru` builds ORU^R01 results for the hospital. Pure functions: no I/O, no store, no HTTP.

pub mod cda;
pub mod fhir;
pub mod ical;
pub mod mss;
pub mod ordonnance;
pub mod oru;
pub mod pam;
pub mod pdf;
pub mod programme;
pub mod siu;
pub mod xdm;

/// The value at `path` (object keys, or array indexes as digits); `Null` when
/// anything on the way is missing.
pub fn json_at<'a>(v: &'a serde_json::Value, path: &[&str]) -> &'a serde_json::Value {
    use serde_json::Value;
    static NULL: Value = Value::Null;
    let mut cur = v;
    for k in path {
        let next = match (cur, k.parse::<usize>()) {
            (Value::Array(a), Ok(i)) => a.get(i),
            (Value::Object(o), _) => o.get(*k),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return &NULL,
        }
    }
    cur
}
