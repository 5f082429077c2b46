//! An Observation posted by a device gateway or a laboratory: one measure
//! (LOINC code, UCUM quantity) about one patient. Read strictly: an element
//! Parcours would not keep is refused by name.

use serde_json::Value;

use super::FhirInputError;

/// LOINC's system URI.
pub const LOINC: &str = "http://loinc.org";
/// UCUM's system URI.
pub const UCUM: &str = "http://unitsofmeasure.org";

/// A posted measure.
#[derive(Debug, Clone, PartialEq)]
pub struct PostedObservation {
    /// `Patient/{id}`'s id.
    pub patient: String,
    /// The LOINC code.
    pub loinc: String,
    /// The value.
    pub value: f64,
    /// Its UCUM code, when given.
    pub unit: Option<String>,
    /// When it was measured (Unix ms), when given.
    pub effective_ms: Option<i64>,
    /// The device or performer named, when given.
    pub source: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ObservationIn {
    resource_type: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    meta: Option<Value>,
    #[serde(default)]
    text: Option<Value>,
    status: String,
    #[serde(default)]
    category: Option<Value>,
    code: CodeIn,
    subject: RefIn,
    #[serde(default)]
    effective_date_time: Option<String>,
    #[serde(default)]
    effective_instant: Option<String>,
    #[serde(default)]
    issued: Option<String>,
    #[serde(default)]
    value_quantity: Option<QuantityIn>,
    #[serde(default)]
    device: Option<RefIn>,
    #[serde(default)]
    performer: Vec<RefIn>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeIn {
    #[serde(default)]
    coding: Vec<CodingIn>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CodingIn {
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    display: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RefIn {
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    display: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct QuantityIn {
    value: f64,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

fn instant_ms(s: &str, what: &str) -> Result<i64, FhirInputError> {
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| {
            FhirInputError::Rule(format!(
                "{what} {s:?} : date et heure avec fuseau attendues"
            ))
        })
}

/// Reads a posted Observation; every refusal says which element and why.
pub fn parse_observation(bytes: &[u8]) -> Result<PostedObservation, FhirInputError> {
    let o: ObservationIn = serde_json::from_slice(bytes)
        .map_err(|e| FhirInputError::Structure(format!("Observation illisible : {e}")))?;
    if o.resource_type != "Observation" {
        return Err(FhirInputError::Structure(format!(
            "resourceType {:?} : Observation attendu",
            o.resource_type
        )));
    }
    // Assigned here (id, meta), derived (category, text, issued).
    let _ = (
        &o.id,
        &o.meta,
        &o.text,
        &o.category,
        &o.issued,
        &o.code.text,
    );
    if !matches!(o.status.as_str(), "final" | "amended" | "corrected") {
        return Err(FhirInputError::Rule(format!(
            "status {:?} : une mesure définitive (final, amended, corrected) est attendue",
            o.status
        )));
    }
    let loinc = o
        .code
        .coding
        .iter()
        .find(|c| c.system.as_deref() == Some(LOINC))
        .and_then(|c| {
            let _ = &c.display;
            c.code.clone()
        })
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            FhirInputError::Rule("code : un codage LOINC (http://loinc.org) est attendu".into())
        })?;
    let patient = o
        .subject
        .reference
        .as_deref()
        .and_then(|r| r.strip_prefix("Patient/"))
        .filter(|id| !id.is_empty())
        .ok_or_else(|| FhirInputError::Rule("subject : Patient/id attendu".into()))?
        .to_owned();
    let q = o.value_quantity.ok_or_else(|| {
        FhirInputError::NotSupported(
            "valueQuantity attendue : seules les mesures chiffrées sont prises".into(),
        )
    })?;
    if !q.value.is_finite() {
        return Err(FhirInputError::Rule(
            "valueQuantity.value : nombre attendu".into(),
        ));
    }
    if q.system.as_deref().is_some_and(|s| s != UCUM) {
        return Err(FhirInputError::Rule(format!(
            "valueQuantity.system {:?} : UCUM ({UCUM}) attendu",
            q.system.unwrap_or_default()
        )));
    }
    let unit = q.code.or(q.unit).filter(|u| !u.is_empty());
    let effective_ms = match (o.effective_date_time, o.effective_instant) {
        (Some(_), Some(_)) => {
            return Err(FhirInputError::Rule(
                "un seul effective[x] est attendu".into(),
            ));
        }
        (Some(t), None) => Some(instant_ms(&t, "effectiveDateTime")?),
        (None, Some(t)) => Some(instant_ms(&t, "effectiveInstant")?),
        (None, None) => None,
    };
    let source = o
        .device
        .iter()
        .chain(o.performer.iter())
        .find_map(|r| r.display.clone().or_else(|| r.reference.clone()))
        .map(|s| s.chars().take(120).collect());
    Ok(PostedObservation {
        patient,
        loinc,
        value: q.value,
        unit,
        effective_ms,
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn weight() -> Value {
        json!({
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2026-12-01T08:00:00+01:00",
            "valueQuantity": {"value": 71.5, "unit": "kg", "system": UCUM, "code": "kg"},
            "device": {"display": "Balance Withings"}
        })
    }

    fn parse(v: Value) -> Result<PostedObservation, FhirInputError> {
        parse_observation(v.to_string().as_bytes())
    }

    #[test]
    fn a_device_measure_is_read() {
        assert_eq!(
            parse(weight()).unwrap(),
            PostedObservation {
                patient: "p1".into(),
                loinc: "29463-7".into(),
                value: 71.5,
                unit: Some("kg".into()),
                effective_ms: Some(1_796_108_400_000),
                source: Some("Balance Withings".into()),
            }
        );
        let mut lab = weight();
        let o = lab.as_object_mut().unwrap();
        o.remove("device");
        o.remove("effectiveDateTime");
        o.insert(
            "performer".into(),
            json!([{"reference": "Organization/lab"}]),
        );
        let p = parse(lab).unwrap();
        assert_eq!(
            (p.effective_ms, p.source.as_deref()),
            (None, Some("Organization/lab"))
        );
    }

    #[test]
    fn every_refusal_names_the_element() {
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|v| v["resourceType"] = json!("Flag")),
                "Observation attendu",
            ),
            (Box::new(|v| v["status"] = json!("preliminary")), "status"),
            (
                Box::new(|v| v["code"]["coding"][0]["system"] = json!("http://snomed.info/sct")),
                "LOINC",
            ),
            (
                Box::new(|v| v["subject"] = json!({"reference": "Group/1"})),
                "subject",
            ),
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("valueQuantity");
                    v["valueString"] = json!("x");
                }),
                "unknown field",
            ),
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("valueQuantity");
                }),
                "valueQuantity attendue",
            ),
            (
                Box::new(|v| v["valueQuantity"]["system"] = json!("urn:other")),
                "UCUM",
            ),
            (
                Box::new(|v| v["effectiveDateTime"] = json!("hier")),
                "effectiveDateTime",
            ),
            (
                Box::new(|v| v["effectiveInstant"] = json!("2026-12-01T08:00:00Z")),
                "un seul effective",
            ),
            (
                Box::new(|v| v["note"] = json!([{"text": "x"}])),
                "unknown field",
            ),
        ];
        for (change, expected) in cases {
            let mut v = weight();
            change(&mut v);
            let e = parse(v).unwrap_err().to_string();
            assert!(e.contains(expected), "{expected:?} not in {e:?}");
        }
    }
}
