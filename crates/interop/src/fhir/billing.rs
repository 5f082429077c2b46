//! Remote-monitoring fees as FHIR `ChargeItem`s (one per patient, month and
//! fee: `billable` when the month gives right to it, `not-billable` with the
//! reasons as notes), gathered in a `collection` Bundle for the billing
//! office.

use domain::billing::Fee;
use domain::{EnrolmentId, EstablishmentId, PatientId};
use serde_json::{Value, json};

use super::output::instant;

/// The code system of Parcours' remote-monitoring fees (the codes are the
/// programme file's).
pub const CS_FEE: &str = "urn:parcours:forfait-telesurveillance";

/// One fee of one patient's month.
#[derive(Debug, Clone)]
pub struct Charge<'a> {
    /// The follow-up.
    pub enrolment: EnrolmentId,
    /// The patient.
    pub patient: PatientId,
    /// The establishment billing it (the operator).
    pub establishment: EstablishmentId,
    /// The month (`2026-11`) and its bounds (Unix ms, end excluded).
    pub month: (&'a str, i64, i64),
    /// The fee.
    pub fee: &'a Fee,
    /// Why it is not due (empty: due).
    pub why_not: &'a [String],
}

/// The fee as a ChargeItem.
pub fn charge_item(c: &Charge<'_>) -> Value {
    let (code, from, to) = c.month;
    let mut r = json!({
        "resourceType": "ChargeItem",
        "id": format!("{}-{code}-{}", c.enrolment, c.fee.code),
        "status": if c.why_not.is_empty() { "billable" } else { "not-billable" },
        "code": {"coding": [{"system": CS_FEE, "code": c.fee.code, "display": c.fee.label}]},
        "subject": {"reference": format!("Patient/{}", c.patient)},
        "occurrencePeriod": {"start": instant(from), "end": instant(to - 1)},
        "performingOrganization": {"reference": format!("Organization/{}", c.establishment)},
        "quantity": {"value": 1},
        "priceOverride": {"value": c.fee.amount_cents as f64 / 100.0, "currency": "EUR"},
        "supportingInformation": [{"reference": format!("CarePlan/{}", c.enrolment)}],
    });
    if !c.why_not.is_empty()
        && let Some(obj) = r.as_object_mut()
    {
        obj.insert(
            "note".into(),
            c.why_not.iter().map(|w| json!({"text": w})).collect(),
        );
    }
    r
}

/// The charges as a `collection` Bundle made at `now_ms`.
pub fn bundle(charges: &[Charge<'_>], now_ms: i64) -> Value {
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": instant(now_ms),
        "total": charges.len(),
        "entry": charges.iter().map(|c| json!({"resource": charge_item(c)})).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::billing::Condition;

    #[test]
    fn a_fee_is_billable_or_says_why_not() {
        let fee = Fee {
            code: "TLS-TEC".into(),
            label: "Forfait technique".into(),
            amount_cents: 7333,
            conditions: vec![Condition::Transmitted { min_days: 2 }],
        };
        let why = vec!["données transmises 1 jour dans le mois, 2 jours requis".to_owned()];
        let mut c = Charge {
            enrolment: EnrolmentId::new(),
            patient: PatientId::new(),
            establishment: EstablishmentId::new(),
            month: ("2026-11", 1_793_487_600_000, 1_796_079_600_000),
            fee: &fee,
            why_not: &[],
        };
        let due = charge_item(&c);
        assert_eq!(due["status"], "billable");
        assert_eq!(due["priceOverride"]["value"], 73.33);
        assert!(due.get("note").is_none());
        assert!(due["id"].as_str().unwrap().ends_with("-2026-11-TLS-TEC"));
        c.why_not = &why;
        let not = charge_item(&c);
        assert_eq!(not["status"], "not-billable");
        assert_eq!(not["note"][0]["text"], why[0]);
        let b = bundle(&[c.clone(), c], 0);
        assert_eq!(
            (b["type"].as_str(), b["total"].as_u64()),
            (Some("collection"), Some(2))
        );
    }
}
