//! SIU (HL7 v2.5 scheduling) for the clinic's own agenda: S12 when an
//! appointment is booked, S15 when it is cancelled. SCH carries our appointment
//! id (placer), the start and length; AIP the practitioner by RPPS; PID the
//! patient as PAM France sends it.

use domain::identity::PatientRecord;
use domain::schedule::{Appointment, Mode};
use hl7v2::Builder;

/// What the message says.
#[derive(Debug, Clone)]
pub struct SiuEvent<'a> {
    /// MSH-10.
    pub control_id: &'a str,
    /// MSH-7 (`YYYYMMDDHHMMSS+ZZZZ`).
    pub timestamp: &'a str,
    /// MSH-5 / MSH-6.
    pub receiver: (&'a str, &'a str),
    /// The appointment.
    pub appointment: &'a Appointment,
    /// SCH-11 start, in the same format as MSH-7.
    pub start: &'a str,
    /// The patient.
    pub patient: &'a PatientRecord,
    /// The patient's addresses and phones (PID-11, 13, 14…; SIU has no NK1).
    pub demographics: &'a domain::demographics::Demographics,
    /// OID of the identity domain.
    pub domain_oid: &'a str,
    /// The practitioner: RPPS (11 digits) if known, and name.
    pub practitioner: (Option<&'a str>, &'a str),
}

/// Encodes S12 (booked) or S15 (cancelled) as ER7.
pub fn build(e: &SiuEvent<'_>) -> Result<String, hl7v2::PathError> {
    let a = e.appointment;
    let cancelled = a.status != "booked";
    let event = if cancelled { "S15" } else { "S12" };
    let minutes = ((a.end_ms - a.start_ms) / 60_000).to_string();
    let mut b = Builder::new();
    b.set("MSH-3", "PARCOURS")?
        .set("MSH-4", "PARCOURS")?
        .set("MSH-5", e.receiver.0)?
        .set("MSH-6", e.receiver.1)?
        .set("MSH-7", e.timestamp)?
        .set("MSH-9.1", "SIU")?
        .set("MSH-9.2", event)?
        .set("MSH-9.3", "SIU_S12")?
        .set("MSH-10", e.control_id)?
        .set("MSH-11", "P")?
        .set("MSH-12", "2.5")?
        .set("MSH-18", "UNICODE UTF-8")?;
    // SCH-1: our id (placer). SCH-6: the event's reason, SCH-7: the appointment's.
    b.set("SCH-1.1", &a.id.to_string())?
        .set("SCH-1.2", "PARCOURS")?
        .set("SCH-6.1", if cancelled { "CANCEL" } else { "BOOK" })?
        .set(
            "SCH-6.2",
            if cancelled {
                "Annulation"
            } else {
                "Prise de rendez-vous"
            },
        )?
        .set("SCH-7.1", a.mode.code())?
        .set(
            "SCH-7.2",
            match a.mode {
                Mode::Tele => "Téléconsultation",
                Mode::InPerson => "Consultation",
            },
        )?
        .set("SCH-9", &minutes)?
        .set("SCH-10.1", "min")?
        .set("SCH-11.3", &minutes)?
        .set("SCH-11.4", e.start)?
        // SCH-16 filler contact: the practitioner; SCH-20 entered by: the platform.
        .set("SCH-16.2.1", e.practitioner.1)?
        .set("SCH-20.2.1", "Parcours")?
        .set("SCH-25.1", if cancelled { "Cancelled" } else { "Booked" })?;
    crate::oru::set_pid(&mut b, e.patient, e.demographics, e.domain_oid)?;
    b.set("RGS-1", "1")?;
    b.set("AIP-1", "1")?;
    if let Some(rpps) = e.practitioner.0 {
        b.set("AIP-3.1", rpps)?
            .set("AIP-3.9.2", "1.2.250.1.71.4.2.1")?
            .set("AIP-3.9.3", "ISO")?;
    }
    b.set("AIP-3.2.1", e.practitioner.1)?
        .set("AIP-6", e.start)?
        .set("AIP-9", &minutes)?
        .set("AIP-10.1", "min")?;
    Ok(b.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s12_and_s15_carry_the_appointment() {
        let patient =
            crate::oru::tests::report(domain::identity::IdentityStatus::Qualified).patient;
        let demographics = crate::oru::tests::demographics();
        let mut a = Appointment {
            id: "0195f3c2-0000-7000-8000-000000000001".parse().unwrap(),
            practitioner: domain::UserId::new(),
            establishment: domain::EstablishmentId::new(),
            patient: patient.id,
            start_ms: 0,
            end_ms: 20 * 60_000,
            mode: Mode::Tele,
            status: "booked".into(),
            cancel_reason: None,
        };
        let event = |a: &Appointment| {
            build(&SiuEvent {
                control_id: "SIU1",
                timestamp: "20261123101500+0100",
                receiver: ("AGENDA", "CLINIQUE"),
                appointment: a,
                start: "20261130090000+0100",
                patient: &patient,
                demographics: &demographics,
                domain_oid: "1.2.250.1.999.42.1",
                practitioner: (Some("10000010011"), "Martin"),
            })
            .unwrap()
        };
        let text = event(&a);
        let m = hl7v2::Message::parse(text.as_bytes()).unwrap();
        let get = |p: &str| {
            m.get(p)
                .unwrap()
                .map(|v| v.into_owned())
                .unwrap_or_default()
        };
        assert_eq!(get("MSH-9.2"), "S12");
        assert_eq!(
            get("PID-11(1).1"),
            "3 rue des Lilas",
            "the address in the PID"
        );
        assert_eq!(get("PID-13(1).3"), "CP");
        assert!(
            m.segment("NK1", 1).is_none(),
            "SIU^S12 has no NK1: the close ones stay out"
        );
        assert_eq!(get("SCH-1.1"), "0195f3c2-0000-7000-8000-000000000001");
        assert_eq!(get("SCH-11.4"), "20261130090000+0100");
        assert_eq!(get("SCH-9"), "20");
        assert_eq!(get("AIP-3.1"), "10000010011");
        assert_eq!(get("PID-3(1).5"), "PI");
        a.status = "cancelled".into();
        let m2 = event(&a);
        assert!(
            m2.contains("SIU^S15^SIU_S12") && m2.contains("|Cancelled"),
            "{m2}"
        );
    }
}
