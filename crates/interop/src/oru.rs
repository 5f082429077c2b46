//! ORU^R01 (HL7 v2.5) for results and reports going back to the hospital: one
//! OBR and its OBX, of type NM (number with unit), ST (text), CWE (coded) or ED (a
//! PDF in base64). Identity as IHE PAM France sends it: the IPP (PI) and, for a
//! qualified identity only, the INS with PID-32 `VALI`.

use base64::Engine as _;
use domain::identity::{PatientRecord, Sex, exchangeable_ins};
use hl7v2::Builder;

/// An observation value.
#[derive(Debug, Clone, PartialEq)]
pub enum ObsValue {
    /// NM: the number as text (keeps its precision) and its UCUM unit.
    Numeric {
        /// The number (`38.5`).
        value: String,
        /// UCUM unit (`Cel`, `kg`, `%`).
        unit: String,
    },
    /// ST: text.
    Text(String),
    /// CWE: a code.
    Coded {
        /// Code.
        code: String,
        /// Label.
        display: String,
        /// Coding system (`LN`, `SCT`, local).
        system: String,
    },
    /// ED: a PDF document.
    Pdf(Vec<u8>),
}

/// One OBX.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// OBX-3: code.
    pub code: String,
    /// OBX-3: label.
    pub display: String,
    /// OBX-3: coding system (`LN` for LOINC, `L` for local).
    pub system: String,
    /// OBX-5 and OBX-2.
    pub value: ObsValue,
    /// OBX-8 abnormal flag (`H`, `L`, `HH`, `A`), if any.
    pub abnormal: Option<String>,
}

/// The report: who, what, when, where to.
#[derive(Debug, Clone)]
pub struct OruReport {
    /// MSH-10.
    pub control_id: String,
    /// MSH-7 and OBR-7 (`YYYYMMDDHHMMSS+ZZZZ`).
    pub timestamp: String,
    /// MSH-5 / MSH-6 (receiving application, facility).
    pub receiver: (String, String),
    /// The patient.
    pub patient: PatientRecord,
    /// The patient's addresses, phones, close ones (PID-11/13/14…, NK1).
    pub demographics: domain::demographics::Demographics,
    /// OID of the identity domain (assigning authority of the IPP).
    pub domain_oid: String,
    /// OBR-2 placer order number (our id).
    pub order_id: String,
    /// OBR-4 universal service: code, label, system.
    pub service: (String, String, String),
    /// The observations.
    pub observations: Vec<Observation>,
}

/// Encodes the report as ER7 (each segment ended by `\r`).
pub fn build(r: &OruReport) -> Result<String, hl7v2::PathError> {
    let mut b = Builder::new();
    b.set("MSH-3", "PARCOURS")?
        .set("MSH-4", "PARCOURS")?
        .set("MSH-5", &r.receiver.0)?
        .set("MSH-6", &r.receiver.1)?
        .set("MSH-7", &r.timestamp)?
        .set("MSH-9.1", "ORU")?
        .set("MSH-9.2", "R01")?
        .set("MSH-9.3", "ORU_R01")?
        .set("MSH-10", &r.control_id)?
        .set("MSH-11", "P")?
        .set("MSH-12", "2.5")?
        .set("MSH-18", "UNICODE UTF-8")?;
    set_pid(&mut b, &r.patient, &r.demographics, &r.domain_oid)?;
    crate::pam::details::write_nk1(&mut b, &r.demographics)?;
    b.set("OBR-1", "1")?
        .set("OBR-2", &r.order_id)?
        .set("OBR-4.1", &r.service.0)?
        .set("OBR-4.2", &r.service.1)?
        .set("OBR-4.3", &r.service.2)?
        .set("OBR-7", &r.timestamp)?
        .set("OBR-25", "F")?;
    for (i, o) in r.observations.iter().enumerate() {
        let seg = format!("OBX({})", i + 1);
        let set = |b: &mut Builder, f: &str, v: &str| b.set(&format!("{seg}-{f}"), v).map(|_| ());
        set(&mut b, "1", &(i + 1).to_string())?;
        set(&mut b, "3.1", &o.code)?;
        set(&mut b, "3.2", &o.display)?;
        set(&mut b, "3.3", &o.system)?;
        match &o.value {
            ObsValue::Numeric { value, unit } => {
                set(&mut b, "2", "NM")?;
                set(&mut b, "5", value)?;
                set(&mut b, "6.1", unit)?;
                set(&mut b, "6.3", "UCUM")?;
            }
            ObsValue::Text(text) => {
                set(&mut b, "2", "ST")?;
                set(&mut b, "5", text)?;
            }
            ObsValue::Coded {
                code,
                display,
                system,
            } => {
                set(&mut b, "2", "CWE")?;
                set(&mut b, "5.1", code)?;
                set(&mut b, "5.2", display)?;
                set(&mut b, "5.3", system)?;
            }
            ObsValue::Pdf(bytes) => {
                set(&mut b, "2", "ED")?;
                set(&mut b, "5.2", "AP")?;
                set(&mut b, "5.3", "PDF")?;
                set(&mut b, "5.4", "Base64")?;
                set(
                    &mut b,
                    "5.5",
                    &base64::engine::general_purpose::STANDARD.encode(bytes),
                )?;
            }
        }
        if let Some(flag) = &o.abnormal {
            set(&mut b, "8", flag)?;
        }
        set(&mut b, "11", "F")?;
        set(&mut b, "14", &r.timestamp)?;
    }
    Ok(b.encode())
}

/// PID as IHE PAM France sends it: the IPP (PI) under the domain's OID and, for a
/// qualified identity only, the INS with PID-32 `VALI`.
pub(crate) fn set_pid(
    b: &mut Builder,
    p: &PatientRecord,
    d: &domain::demographics::Demographics,
    domain_oid: &str,
) -> Result<(), hl7v2::PathError> {
    b.set("PID-1", "1")?;
    b.set("PID-3(1).1", &p.ipp)?
        .set("PID-3(1).4.2", domain_oid)?
        .set("PID-3(1).4.3", "ISO")?
        .set("PID-3(1).5", "PI")?;
    if let Some(ins) = exchangeable_ins(p.ins.as_ref(), p.status) {
        let authority = match ins.kind() {
            domain::InsKind::Nir => "ASIP-SANTE-INS-NIR",
            domain::InsKind::Nia => "ASIP-SANTE-INS-NIA",
        };
        b.set("PID-3(2).1", &ins.value())?
            .set("PID-3(2).4.1", authority)?
            .set("PID-3(2).4.2", ins.kind().oid())?
            .set("PID-3(2).4.3", "ISO")?
            .set("PID-3(2).5", "INS")?;
    }
    let t = &p.traits;
    b.set("PID-5(1).1", &t.birth_name)?
        .set("PID-5(1).2", t.first_given_name())?
        .set("PID-5(1).3", &t.birth_given_names.join(" "))?
        .set("PID-5(1).7", "L")?;
    if let Some(used) = &t.used_name {
        b.set("PID-5(2).1", used)?.set("PID-5(2).7", "D")?;
    }
    b.set("PID-7", &t.birth_date.strftime("%Y%m%d").to_string())?;
    b.set(
        "PID-8",
        match t.sex {
            Sex::Male => "M",
            Sex::Female => "F",
            Sex::Unknown => "U",
        },
    )?;
    b.set(
        "PID-32",
        if p.status.ins_exchangeable() {
            "VALI"
        } else {
            "PROV"
        },
    )?;
    crate::pam::details::write_pid(b, t, d)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use domain::identity::{IdentityStatus, Traits};

    /// An address, a mobile and a personne de confiance.
    pub(crate) fn demographics() -> domain::demographics::Demographics {
        use domain::demographics::*;
        Demographics {
            addresses: vec![Address {
                use_: AddressUse::Home,
                lines: vec!["3 rue des Lilas".into()],
                postal_code: Some("45000".into()),
                city: Some("Orléans".into()),
                country: Some("FRA".into()),
            }],
            telecoms: vec![Telecom::parse(TelecomKind::Mobile, "0612345678").unwrap()],
            contacts: vec![Contact {
                role: ContactRole::Trusted,
                relationship: Some(Relationship::Spouse),
                family: "Lefèvre".into(),
                given: Some("Paul".into()),
                phone: None,
            }],
            ..Default::default()
        }
    }

    pub(crate) fn report(status: IdentityStatus) -> OruReport {
        let ins = domain::Ins::parse(domain::InsKind::Nir, "279035121518989").ok();
        OruReport {
            control_id: "ORU1".into(),
            timestamp: "20261123101500+0100".into(),
            receiver: ("DPI".into(), "CHVL".into()),
            patient: PatientRecord {
                id: domain::PatientId::new(),
                territory: domain::TerritoryId::new(),
                ipp: "000000001".into(),
                traits: Traits {
                    birth_name: "Lefèvre".into(),
                    birth_given_names: vec!["Hélène".into(), "Marie".into()],
                    birth_date: jiff::civil::date(1979, 3, 15),
                    sex: Sex::Female,
                    birthplace_code: None,
                    used_name: Some("Dupont^Durand".into()),
                    used_given_name: None,
                },
                ins,
                status,
                merged_into: None,
                version: 1,
                updated_at_ms: 0,
            },
            demographics: demographics(),
            domain_oid: "1.2.250.1.999.42.1".into(),
            order_id: "Q1".into(),
            service: ("TLSV".into(), "Télésurveillance".into(), "L".into()),
            observations: vec![
                Observation {
                    code: "8310-5".into(),
                    display: "Température".into(),
                    system: "LN".into(),
                    value: ObsValue::Numeric {
                        value: "38.50".into(),
                        unit: "Cel".into(),
                    },
                    abnormal: Some("H".into()),
                },
                Observation {
                    code: "NOTE".into(),
                    display: "Commentaire".into(),
                    system: "L".into(),
                    value: ObsValue::Text("diarrhée grade 3 | appel du 15\nconseillé".into()),
                    abnormal: None,
                },
                Observation {
                    code: "GRADE".into(),
                    display: "Grade CTCAE".into(),
                    system: "L".into(),
                    value: ObsValue::Coded {
                        code: "3".into(),
                        display: "Grade 3".into(),
                        system: "CTCAE".into(),
                    },
                    abnormal: Some("A".into()),
                },
                Observation {
                    code: "11502-2".into(),
                    display: "Compte rendu".into(),
                    system: "LN".into(),
                    value: ObsValue::Pdf(b"%PDF-1.4 test".to_vec()),
                    abnormal: None,
                },
            ],
        }
    }

    #[test]
    fn builds_what_it_reads_back() {
        let text = build(&report(IdentityStatus::Qualified)).unwrap();
        let m = hl7v2::Message::parse(text.as_bytes()).unwrap();
        assert_eq!(
            m.message_type(),
            (Some("ORU"), Some("R01"), Some("ORU_R01"))
        );
        assert_eq!(
            m.get("PID-3(2).1").unwrap().as_deref(),
            Some("279035121518989")
        );
        assert_eq!(m.get("PID-32").unwrap().as_deref(), Some("VALI"));
        // The record's demographics: the address and phone in the PID, the
        // personne de confiance in an NK1 right after it.
        assert_eq!(m.get("PID-11(1).3").unwrap().as_deref(), Some("Orléans"));
        assert_eq!(
            m.get("PID-13(1).12").unwrap().as_deref(),
            Some("0612345678")
        );
        assert_eq!(m.get("NK1-7.1").unwrap().as_deref(), Some("K"));
        let names: Vec<&str> = m.segments().map(|s| s.name()).collect();
        assert_eq!(
            names.get(..4),
            Some(&["MSH", "PID", "NK1", "OBR"][..]),
            "{names:?}"
        );
        assert_eq!(
            m.get("PID-5(2).1").unwrap().as_deref(),
            Some("Dupont^Durand"),
            "escaped and read back"
        );
        assert_eq!(
            m.get("OBX(1)-5").unwrap().as_deref(),
            Some("38.50"),
            "the number keeps its text"
        );
        assert_eq!(m.get("OBX(1)-6.1").unwrap().as_deref(), Some("Cel"));
        assert_eq!(
            m.get("OBX(2)-5").unwrap().as_deref(),
            Some("diarrhée grade 3 | appel du 15\nconseillé")
        );
        assert_eq!(m.get("OBX(3)-2").unwrap().as_deref(), Some("CWE"));
        let pdf = m.get("OBX(4)-5.5").unwrap().unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(pdf.as_bytes())
                .unwrap(),
            b"%PDF-1.4 test"
        );
    }

    #[test]
    fn the_ins_leaves_only_for_a_qualified_identity() {
        let text = build(&report(IdentityStatus::Recovered)).unwrap();
        let m = hl7v2::Message::parse(text.as_bytes()).unwrap();
        assert_eq!(m.get("PID-3(2).1").unwrap(), None);
        assert_eq!(m.get("PID-32").unwrap().as_deref(), Some("PROV"));
    }
}
