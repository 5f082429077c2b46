//! FHIR JSON to domain values, for the elements Parcours stores. Anything else is
//! refused by name: a client never believes Parcours kept what it dropped.

use domain::demographics::Demographics;
use domain::identity::{IdentityStatus, Sex, Traits};
use domain::ins::{Ins, InsKind};
use jiff::civil::Date;
use serde::Deserialize;
use serde_json::Value;

use super::details;
use super::*;

/// Why a resource cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FhirInputError {
    /// Not JSON, or not the JSON shape of the resource (HTTP 400, code `structure`).
    #[error("{0}")]
    Structure(String),
    /// A valid element that Parcours does not store (HTTP 422, code `not-supported`).
    #[error("{0}")]
    NotSupported(String),
    /// A value that breaks a rule: wrong INS key, bad trait (HTTP 422, code `business-rule`).
    #[error("{0}")]
    Rule(String),
}

/// A Patient as read from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPatient {
    /// The id in the body (must match the URL on update).
    pub id: Option<String>,
    /// Traits.
    pub traits: Traits,
    /// INS, checked.
    pub ins: Option<Ins>,
    /// Identity status, if the reliability extension was sent.
    pub status: Option<IdentityStatus>,
    /// IPP in the client's identity domain, if sent.
    pub ipp: Option<String>,
    /// Addresses, telecoms, contacts, GP, language, death (all of them: a PUT
    /// replaces the record's).
    pub demographics: Demographics,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatientIn {
    resource_type: String,
    id: Option<String>,
    #[allow(dead_code)]
    meta: Option<Value>,
    #[allow(dead_code)]
    text: Option<Value>,
    #[serde(default)]
    extension: Vec<ExtensionIn>,
    #[serde(default)]
    identifier: Vec<IdentifierIn>,
    active: Option<bool>,
    #[serde(default)]
    name: Vec<NameIn>,
    gender: Option<String>,
    birth_date: Option<String>,
    #[serde(default)]
    address: Vec<details::AddressIn>,
    #[serde(default)]
    telecom: Vec<details::ContactPointIn>,
    #[serde(default)]
    contact: Vec<details::ContactIn>,
    #[serde(default)]
    general_practitioner: Vec<details::ReferenceIn>,
    #[serde(default)]
    communication: Vec<details::CommunicationIn>,
    deceased_date_time: Option<String>,
    deceased_boolean: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExtensionIn {
    url: String,
    #[serde(default)]
    extension: Vec<ExtensionIn>,
    value_coding: Option<CodingIn>,
    value_address: Option<details::AddressIn>,
}

#[derive(Deserialize)]
struct CodingIn {
    #[allow(dead_code)]
    system: Option<String>,
    code: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentifierIn {
    #[allow(dead_code)]
    #[serde(rename = "use")]
    usage: Option<String>,
    #[allow(dead_code)]
    #[serde(rename = "type")]
    kind: Option<Value>,
    system: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameIn {
    #[serde(rename = "use")]
    usage: Option<String>,
    family: Option<String>,
    #[serde(default)]
    given: Vec<String>,
    #[allow(dead_code)]
    text: Option<String>,
}

fn structure(e: serde_json::Error) -> FhirInputError {
    let msg = e.to_string();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or("");
        return FhirInputError::NotSupported(format!(
            "l'élément Patient.{field} n'est pas pris en charge par Parcours: il ne serait pas conservé, retirez-le"
        ));
    }
    FhirInputError::Structure(format!("JSON invalide pour une ressource Patient: {msg}"))
}

fn rule(msg: impl Into<String>) -> FhirInputError {
    FhirInputError::Rule(msg.into())
}

/// The INS (one at most) and the IPP (an identifier in the client's domain);
/// any other system is refused.
fn identifiers(
    p: &PatientIn,
    domain_oid: &str,
) -> Result<(Option<Ins>, Option<String>), FhirInputError> {
    let (mut ins, mut ipp) = (None, None);
    for id in &p.identifier {
        let system = id.system.as_deref().unwrap_or("");
        let value = id.value.as_deref().unwrap_or("");
        let oid = system.strip_prefix("urn:oid:").unwrap_or("");
        if let Some(kind) = InsKind::from_oid(oid) {
            if ins.is_some() {
                return Err(rule("une seule INS par patient"));
            }
            ins = Some(Ins::parse(kind, value).map_err(|e| rule(format!("INS refusée: {e}")))?);
        } else if oid == domain_oid && !oid.is_empty() {
            if value.trim().is_empty() || value.len() > 64 {
                return Err(rule("IPP vide ou trop long (64 caractères au plus)"));
            }
            ipp = Some(value.trim().to_owned());
        } else {
            return Err(FhirInputError::NotSupported(format!(
                "système d'identifiant non pris en charge: {system:?} (INS urn:oid:1.2.250.1.213.1.4.8 ou .9, ou IPP urn:oid:{domain_oid})"
            )));
        }
    }
    Ok((ins, ipp))
}

/// The identity status (fr-core-identity-reliability) and the birthplace's
/// INSEE code; any other extension is refused.
fn extensions(p: &PatientIn) -> Result<(Option<IdentityStatus>, Option<String>), FhirInputError> {
    let mut status = None;
    let mut birthplace = None;
    for ext in &p.extension {
        match ext.url.as_str() {
            EXT_IDENTITY_RELIABILITY => {
                for sub in &ext.extension {
                    if sub.url == "identityStatus" {
                        let code = sub
                            .value_coding
                            .as_ref()
                            .and_then(|c| c.code.as_deref())
                            .unwrap_or("");
                        status = Some(IdentityStatus::from_code(code).ok_or_else(|| {
                            rule(format!(
                                "statut d'identité inconnu {code:?} (PROV, RECUP, VALI, QUAL)"
                            ))
                        })?);
                    }
                }
            }
            EXT_BIRTHPLACE => {
                birthplace = ext
                    .value_address
                    .as_ref()
                    .and_then(|a| a.extensions().iter().find(|e| e.url == EXT_INSEE_CODE))
                    .and_then(|e| e.value_coding.as_ref())
                    .and_then(|c| c.code.clone());
                if birthplace.is_none()
                    && !ext.value_address.as_ref().is_some_and(|a| a.has_place())
                {
                    return Err(rule(
                        "lieu de naissance: code INSEE (extension fr-core-address-insee-code), commune ou pays attendu",
                    ));
                }
            }
            other => {
                return Err(FhirInputError::NotSupported(format!(
                    "extension non prise en charge: {other}"
                )));
            }
        }
    }
    Ok((status, birthplace))
}

/// Reads a Patient. `domain_oid` is the client's identity domain: an identifier in
/// that system is the IPP. `today` bounds the birth date.
pub fn parse_patient(
    body: &[u8],
    domain_oid: &str,
    today: Date,
) -> Result<ParsedPatient, FhirInputError> {
    let p: PatientIn = serde_json::from_slice(body).map_err(structure)?;
    if p.resource_type != "Patient" {
        return Err(FhirInputError::Structure(format!(
            "resourceType {:?} reçu là où Patient est attendu",
            p.resource_type
        )));
    }
    if p.active == Some(false) {
        return Err(FhirInputError::NotSupported(
            "active=false n'est pas pris en charge: un dossier ne se désactive que par fusion"
                .into(),
        ));
    }
    let (ins, ipp) = identifiers(&p, domain_oid)?;
    let (status, birthplace) = extensions(&p)?;
    let official = p
        .name
        .iter()
        .find(|n| matches!(n.usage.as_deref(), None | Some("official")))
        .ok_or_else(|| rule("un nom de naissance (name.use = official) est obligatoire"))?;
    let usual = p.name.iter().find(|n| n.usage.as_deref() == Some("usual"));
    if let Some(n) = p
        .name
        .iter()
        .find(|n| !matches!(n.usage.as_deref(), None | Some("official") | Some("usual")))
    {
        return Err(FhirInputError::NotSupported(format!(
            "name.use {:?} non pris en charge",
            n.usage.as_deref().unwrap_or("")
        )));
    }
    let sex = match p.gender.as_deref() {
        Some("male") => Sex::Male,
        Some("female") => Sex::Female,
        Some("unknown") => Sex::Unknown,
        Some(other) => {
            return Err(rule(format!(
                "sexe {other:?}: les traits INS n'admettent que male, female (ou unknown si provisoire)"
            )));
        }
        None => return Err(rule("le sexe (gender) est obligatoire")),
    };
    let birth_date: Date = p
        .birth_date
        .as_deref()
        .ok_or_else(|| rule("la date de naissance (birthDate) est obligatoire"))?
        .parse()
        .map_err(|_| rule("birthDate: date complète AAAA-MM-JJ attendue"))?;
    let given: Vec<String> = official
        .given
        .iter()
        .flat_map(|g| g.split_whitespace())
        .map(str::to_owned)
        .collect();
    let traits = Traits {
        birth_name: official
            .family
            .clone()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        birth_given_names: given,
        birth_date,
        sex,
        birthplace_code: birthplace,
        used_name: usual
            .and_then(|n| n.family.clone())
            .filter(|f| !f.trim().is_empty()),
        used_given_name: usual.and_then(|n| n.given.first().cloned()),
    };
    traits.check(today).map_err(|e| rule(e.to_string()))?;
    let birth_address = p
        .extension
        .iter()
        .find(|e| e.url == EXT_BIRTHPLACE)
        .and_then(|e| e.value_address.as_ref());
    let demographics = details::read(details::DetailsIn {
        address: &p.address,
        birth_address,
        telecom: &p.telecom,
        contact: &p.contact,
        general_practitioner: &p.general_practitioner,
        communication: &p.communication,
        deceased_date_time: p.deceased_date_time.as_deref(),
        deceased_boolean: p.deceased_boolean,
    })?;
    demographics
        .check(birth_date, today)
        .map_err(|e| rule(e.to_string()))?;
    Ok(ParsedPatient {
        id: p.id,
        traits,
        ins,
        status,
        ipp,
        demographics,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fhir;

    const DOMAIN: &str = "1.2.250.1.999.1";

    fn today() -> Date {
        jiff::civil::date(2026, 11, 23)
    }

    fn base() -> Value {
        json!({
            "resourceType": "Patient",
            "identifier": [
                {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "279035121518989"},
                {"system": format!("urn:oid:{DOMAIN}"), "value": "IPP42"}
            ],
            "extension": [
                {"url": EXT_IDENTITY_RELIABILITY, "extension": [{"url": "identityStatus", "valueCoding": {"code": "QUAL"}}]},
                {"url": EXT_BIRTHPLACE, "valueAddress": {"extension": [{"url": EXT_INSEE_CODE, "valueCoding": {"code": "51215"}}]}}
            ],
            "name": [{"use": "official", "family": "Martin", "given": ["Marie Louise"]}, {"use": "usual", "family": "Durand"}],
            "gender": "female",
            "birthDate": "1979-03-15"
        })
    }

    fn parse(v: &Value) -> Result<ParsedPatient, FhirInputError> {
        parse_patient(v.to_string().as_bytes(), DOMAIN, today())
    }

    #[test]
    fn a_full_patient_is_read() {
        let p = parse(&base()).unwrap();
        assert_eq!(p.ins.unwrap().value(), "279035121518989");
        assert_eq!(p.ipp.as_deref(), Some("IPP42"));
        assert_eq!(p.status, Some(IdentityStatus::Qualified));
        assert_eq!(p.traits.birth_given_names, vec!["Marie", "Louise"]);
        assert_eq!(p.traits.used_name.as_deref(), Some("Durand"));
        assert_eq!(p.traits.birthplace_code.as_deref(), Some("51215"));
        assert_eq!(p.traits.sex, Sex::Female);
    }

    fn expect_err(v: Value, kind: fn(&FhirInputError) -> bool, needle: &str) {
        let e = parse(&v).unwrap_err();
        assert!(kind(&e), "wrong kind: {e:?}");
        assert!(
            e.to_string().contains(needle),
            "{e} does not mention {needle}"
        );
    }

    fn is_rule(e: &FhirInputError) -> bool {
        matches!(e, FhirInputError::Rule(_))
    }
    fn is_unsupported(e: &FhirInputError) -> bool {
        matches!(e, FhirInputError::NotSupported(_))
    }
    fn is_structure(e: &FhirInputError) -> bool {
        matches!(e, FhirInputError::Structure(_))
    }

    #[test]
    fn demographics_are_read_and_written_back_the_same() {
        let mut v = base();
        v["extension"][1]["valueAddress"]["city"] = json!("Ajaccio");
        v["extension"][1]["valueAddress"]["country"] = json!("FR");
        v["address"] = json!([
            {"use": "home", "line": ["12 rue de l'Église\r\n", "  ", "Bâtiment B\nEscalier 2"], "postalCode": "69002", "city": "Lyon", "country": "FRA"},
            {"use": "temp", "city": "Bruxelles", "postalCode": "1000", "country": "BEL"}
        ]);
        v["telecom"] = json!([
            {"system": "phone", "use": "mobile", "value": "06 12 34 56 78"},
            {"system": "phone", "value": "+33 4 78 00 00 00"},
            {"system": "email", "value": "marie@example.fr"}
        ]);
        v["contact"] = json!([{
            "relationship": [
                {"coding": [{"system": CS_CONTACT_ROLE, "code": "NOK"}]},
                {"coding": [{"system": CS_V2_0063, "code": "CHD"}]}
            ],
            "name": {"family": "Durand", "given": ["Paul"]},
            "telecom": [{"system": "phone", "value": "07 12 34 56 78"}]
        }, {
            "relationship": [{"coding": [{"system": CS_V2_0131, "code": "C"}]}],
            "name": {"family": "Voisin"}
        }]);
        v["generalPractitioner"] = json!([{"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810000023084"}, "display": "Dr Isabelle AGNES"}]);
        v["communication"] = json!([{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr"}]}, "preferred": true}]);
        v["deceasedDateTime"] = json!("2026-11-20T10:00:00+01:00");
        let p = parse(&v).unwrap();
        let d = &p.demographics;
        assert_eq!(d.addresses.len(), 2);
        // Blank lines dropped, a line broken by a newline split: the lines
        // as they are stored (one column, a newline between two).
        assert_eq!(
            d.addresses[0].lines,
            ["12 rue de l'Église", "Bâtiment B", "Escalier 2"]
        );
        assert_eq!(
            d.addresses[1].use_,
            domain::demographics::AddressUse::Temporary
        );
        assert_eq!(
            d.birth_place,
            Some(domain::demographics::BirthPlace {
                city: Some("Ajaccio".into()),
                country: Some("FRA".into())
            })
        );
        let values: Vec<&str> = d.telecoms.iter().map(|t| t.value.as_str()).collect();
        assert_eq!(values, ["0612345678", "+33478000000", "marie@example.fr"]);
        assert_eq!(
            d.contacts[0].role,
            domain::demographics::ContactRole::Trusted
        );
        assert_eq!(d.contacts[0].phone.as_deref(), Some("0712345678"));
        assert_eq!(
            d.contacts[1].role,
            domain::demographics::ContactRole::Emergency
        );
        let gp = d.gp.as_ref().unwrap();
        assert_eq!(
            (gp.rpps.as_str(), gp.family.as_deref(), gp.given.as_deref()),
            ("10000023084", Some("AGNES"), Some("Isabelle"))
        );
        assert_eq!(d.language.as_deref(), Some("fr"));
        assert_eq!(d.deceased, Some(Date::new(2026, 11, 20).unwrap()));

        // Written out and read again: the same record.
        let record = domain::identity::PatientRecord {
            id: domain::PatientId::new(),
            territory: domain::TerritoryId::new(),
            ipp: "IPP42".into(),
            traits: p.traits.clone(),
            ins: p.ins.clone(),
            status: IdentityStatus::Qualified,
            merged_into: None,
            version: 3,
            updated_at_ms: 0,
        };
        let out = fhir::patient(&record, d, DOMAIN);
        assert_eq!(
            out["generalPractitioner"][0]["identifier"]["value"],
            "810000023084"
        );
        assert_eq!(
            out["contact"][0]["relationship"][0]["coding"][0]["code"],
            "NOK"
        );
        let again = parse(&out).unwrap();
        assert_eq!(&again.demographics, d);
        assert_eq!(again.traits, p.traits);
    }

    #[test]
    fn every_refusal_says_why() {
        let mut v = base();
        v["identifier"][0]["value"] = json!("276037510669380");
        expect_err(v, is_rule, "clé de contrôle");
        let mut v = base();
        v["photo"] = json!([{"contentType": "image/png"}]);
        expect_err(v, is_unsupported, "Patient.photo");
        // Demographics: each refusal names what is wrong.
        type Case = (Value, fn(&FhirInputError) -> bool, &'static str);
        let cases: Vec<Case> = vec![
            (
                json!({"telecom": [{"system": "phone", "value": "06 12"}]}),
                is_rule,
                "téléphone",
            ),
            (
                json!({"telecom": [{"system": "fax", "value": "0612345678"}]}),
                is_unsupported,
                "fax",
            ),
            (
                json!({"telecom": [{"system": "phone", "use": "temp", "value": "0612345678"}]}),
                is_unsupported,
                "temp",
            ),
            (
                json!({"telecom": [{"system": "email", "value": "a@b"}]}),
                is_rule,
                "e-mail",
            ),
            (
                json!({"address": [{"postalCode": "7500", "city": "Paris"}]}),
                is_rule,
                "code postal",
            ),
            (
                json!({"address": [{"use": "billing", "city": "Paris"}]}),
                is_unsupported,
                "billing",
            ),
            (
                json!({"address": [{"city": "Paris", "country": "Francia"}]}),
                is_rule,
                "ISO 3166",
            ),
            (
                json!({"address": [{"city": "Paris", "district": "75"}]}),
                is_unsupported,
                "district",
            ),
            (
                json!({"address": [{"text": "1 rue X, Paris"}]}),
                is_unsupported,
                "address.text",
            ),
            (
                json!({"contact": [{"name": {"given": ["Paul"]}}]}),
                is_rule,
                "contact.name.family",
            ),
            (
                json!({"contact": [{"relationship": [{"coding": [{"system": "http://x", "code": "Z"}]}], "name": {"family": "X"}}]}),
                is_unsupported,
                "http://x|Z",
            ),
            (
                json!({"contact": [
                    {"relationship": [{"coding": [{"system": CS_CONTACT_ROLE, "code": "NOK"}]}], "name": {"family": "A"}},
                    {"relationship": [{"coding": [{"system": CS_CONTACT_ROLE, "code": "NOK"}]}], "name": {"family": "B"}}
                ]}),
                is_rule,
                "une seule personne de confiance",
            ),
            (
                json!({"generalPractitioner": [{"reference": "Practitioner/1"}]}),
                is_unsupported,
                "RPPS",
            ),
            (
                json!({"generalPractitioner": [{"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810000023085"}}]}),
                is_rule,
                "RPPS",
            ),
            (
                json!({"communication": [{"language": {"coding": [{"code": "klingon"}]}}]}),
                is_rule,
                "BCP 47",
            ),
            (
                json!({"deceasedBoolean": true}),
                is_unsupported,
                "deceasedDateTime",
            ),
            (json!({"deceasedDateTime": "1950-01-01"}), is_rule, "décès"),
            (json!({"deceasedDateTime": "hier"}), is_rule, "AAAA-MM-JJ"),
        ];
        for (extra, kind, needle) in cases {
            let mut v = base();
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            expect_err(v, kind, needle);
        }
        let mut v = base();
        v["resourceType"] = json!("Observation");
        expect_err(v, is_structure, "Observation");
        let mut v = base();
        v["identifier"][1]["system"] = json!("urn:oid:1.2.3");
        expect_err(v, is_unsupported, "système d'identifiant");
        let mut v = base();
        v["extension"][0]["extension"][0]["valueCoding"]["code"] = json!("FICT");
        expect_err(v, is_rule, "FICT");
        let mut v = base();
        v["extension"][1]["valueAddress"] = json!({"extension": []});
        expect_err(v, is_rule, "INSEE");
        let mut v = base();
        v["extension"][1]["valueAddress"] = json!({"extension": [], "state": "X"});
        expect_err(v, is_unsupported, "state");
        let mut v = base();
        v["extension"]
            .as_array_mut()
            .unwrap()
            .push(json!({"url": "http://example.org/x", "valueCoding": {"code": "x"}}));
        expect_err(v, is_unsupported, "http://example.org/x");
        let mut v = base();
        v["name"] = json!([{"use": "usual", "family": "X", "given": ["Y"]}]);
        expect_err(v, is_rule, "nom de naissance");
        let mut v = base();
        v["name"]
            .as_array_mut()
            .unwrap()
            .push(json!({"use": "nickname", "family": "Mimi"}));
        expect_err(v, is_unsupported, "nickname");
        let mut v = base();
        v["gender"] = json!("other");
        expect_err(v, is_rule, "other");
        let mut v = base();
        v.as_object_mut().unwrap().remove("gender");
        expect_err(v, is_rule, "gender");
        let mut v = base();
        v["birthDate"] = json!("1979");
        expect_err(v, is_rule, "AAAA-MM-JJ");
        let mut v = base();
        v.as_object_mut().unwrap().remove("birthDate");
        expect_err(v, is_rule, "birthDate");
        let mut v = base();
        v["birthDate"] = json!("2030-01-01");
        expect_err(v, is_rule, "futur");
        let mut v = base();
        v["active"] = json!(false);
        expect_err(v, is_unsupported, "active");
        let mut v = base();
        v["identifier"]
            .as_array_mut()
            .unwrap()
            .push(json!({"system": "urn:oid:1.2.250.1.213.1.4.9", "value": "279035121518989"}));
        expect_err(v, is_rule, "une seule INS");
        let mut v = base();
        v["identifier"][1]["value"] = json!(" ");
        expect_err(v, is_rule, "IPP");
        let e = parse_patient(b"{not json", DOMAIN, today()).unwrap_err();
        assert!(is_structure(&e));
        let e = parse_patient(b"[]", DOMAIN, today()).unwrap_err();
        assert!(is_structure(&e));
    }

    #[test]
    fn output_reads_back_the_same() {
        let p = parse(&base()).unwrap();
        let record = domain::identity::PatientRecord {
            id: domain::PatientId::new(),
            territory: domain::TerritoryId::new(),
            ipp: "IPP42".into(),
            traits: p.traits.clone(),
            ins: p.ins.clone(),
            status: IdentityStatus::Qualified,
            merged_into: None,
            version: 3,
            updated_at_ms: 1_790_000_000_000,
        };
        let out = fhir::patient(&record, &Default::default(), DOMAIN);
        assert_eq!(out["meta"]["versionId"], "3");
        let back = parse(&out).unwrap();
        assert_eq!(back.traits, p.traits);
        assert_eq!(back.ins, p.ins);
        assert_eq!(back.ipp.as_deref(), Some("IPP42"));
        assert_eq!(back.status, Some(IdentityStatus::Qualified));
    }

    #[test]
    fn the_ins_leaves_only_with_a_qualified_identity() {
        let p = parse(&base()).unwrap();
        let mut record = domain::identity::PatientRecord {
            id: domain::PatientId::new(),
            territory: domain::TerritoryId::new(),
            ipp: "1".into(),
            traits: p.traits,
            ins: p.ins,
            status: IdentityStatus::Recovered,
            merged_into: Some(domain::PatientId::new()),
            version: 1,
            updated_at_ms: 0,
        };
        let out = fhir::patient(&record, &Default::default(), DOMAIN);
        let systems: Vec<&str> = out["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["system"].as_str().unwrap())
            .collect();
        assert_eq!(systems, vec![format!("urn:oid:{DOMAIN}")]);
        assert_eq!(out["active"], false);
        assert_eq!(out["link"][0]["type"], "replaced-by");
        record.status = IdentityStatus::Qualified;
        let out = fhir::patient(&record, &Default::default(), DOMAIN);
        assert_eq!(
            out["identifier"][0]["system"],
            "urn:oid:1.2.250.1.213.1.4.8"
        );
    }
}
