//! The public ANS samples (IHE PAM France ADT, ORU and MDM carrying CDA) parse,
//! and expose the values their specifications name.

use hl7v2::Message;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../../shared/fixtures/hl7v2/ansforge/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_sample_parses() {
    let dir = format!(
        "{}/../../../shared/fixtures/hl7v2/ansforge",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let m = Message::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(m.control_id().is_some(), "{}", path.display());
        n += 1;
    }
    assert!(n >= 10, "{n} samples");
}

#[test]
fn admission_a01_values() {
    let m = Message::parse(&fixture("A01_admission.er7")).unwrap();
    assert_eq!(
        m.message_type(),
        (Some("ADT"), Some("A01"), Some("ADT_A01"))
    );
    assert_eq!(m.get("MSH-18").unwrap().as_deref(), Some("UNICODE UTF-8"));
    assert_eq!(
        m.get("MSH-21.2").unwrap().as_deref(),
        Some("IHE_FRANCE-2.11-PAM")
    );
    assert_eq!(m.get("PID-3(1).1").unwrap().as_deref(), Some("000003"));
    assert_eq!(m.get("PID-3(1).5").unwrap().as_deref(), Some("PI"));
    assert_eq!(
        m.get("PID-3(2).1").unwrap().as_deref(),
        Some("279035121518989")
    );
    assert_eq!(
        m.get("PID-3(2).4.2").unwrap().as_deref(),
        Some("1.2.250.1.213.1.4.10")
    );
    assert_eq!(m.get("PID-5.1").unwrap().as_deref(), Some("PAT-TROIS"));
    assert_eq!(m.get("PID-5.7").unwrap().as_deref(), Some("L"));
    assert_eq!(m.get("PID-7").unwrap().as_deref(), Some("19790328"));
    assert_eq!(m.get("PID-32").unwrap().as_deref(), Some("VALI"));
    assert_eq!(m.get("ZBE-4").unwrap().as_deref(), Some("INSERT"));
    assert_eq!(m.get("ZBE-7.10").unwrap().as_deref(), Some("6268"));
    assert_eq!(m.get("ZFA-1").unwrap().as_deref(), Some("ACTIF"));
    // Birthplace: the second repetition of PID-11, type BDL, COG in component 9.
    assert_eq!(m.get("PID-11(2).7").unwrap().as_deref(), Some("BDL"));
    assert_eq!(m.get("PID-11(2).9").unwrap().as_deref(), Some("63220"));
}

#[test]
fn oru_carrying_a_cda_in_base64() {
    let m = Message::parse(&fixture("ORU_cda_initial.hl7")).unwrap();
    assert_eq!(m.message_type().0, Some("ORU"));
    let ed = (1..=20)
        .filter_map(|i| m.segment("OBX", i))
        .find(|s| s.field(2).map(|f| f.raw()) == Some("ED"))
        .expect("an OBX of type ED");
    let value = ed.field(5).unwrap();
    assert_eq!(value.component(4).unwrap().raw(), "Base64");
    assert!(
        value.component(5).unwrap().raw().len() > 1000,
        "the CDA document travels whole"
    );
}
