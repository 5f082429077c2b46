//! FHIR JSON from API clients: a Patient, a QuestionnaireResponse, an
//! Observation, a Subscription, an MHD provide bundle. Whatever the bytes, each reader answers (a value or a
//! refusal), never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let today = jiff::civil::date(2026, 12, 1);
    let _ = interop::fhir::parse_patient(data, "1.2.250.1.999.42.1", today);
    let _ = interop::fhir::monitoring::parse_response(data);
    let _ = interop::fhir::observation::parse_observation(data);
    let _ = interop::fhir::subscription::parse_subscription(data);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = interop::fhir::mhd::read_provide_bundle(&v);
    }
});
