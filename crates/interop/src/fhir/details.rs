//! A Patient's demographics beyond the traits, both ways: `address`,
//! `telecom`, `contact` (FR Core roles: TRE_R260 `NOK` the *personne de
//! confiance*, `ECON` the person to call; v2-0131 `N` a close one; the
//! relationship in HL7 table 0063), `generalPractitioner` (by RPPS, as an
//! IdNatPs identifier), `communication` (BCP 47), `deceasedDateTime` and the
//! birth place's commune and country.
//!
//! A PUT replaces the whole Patient: an element absent from the body is an
//! element the record no longer holds.

use domain::demographics::{
    Address, AddressUse, BirthPlace, Contact, ContactRole, Demographics, Gp, Relationship, Telecom,
    TelecomKind, normalize_language, normalize_phone,
};
use domain::org::Rpps;
use jiff::civil::Date;
use serde::Deserialize;
use serde_json::{Value, json};

use super::input::FhirInputError;
use super::{OID_IDNATPS, oid_system};

/// ANS TRE_R260 (HL7 v3 RoleClass as France uses it): the contact's role.
pub const CS_CONTACT_ROLE: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_R260-HL7RoleClass/FHIR/TRE-R260-HL7RoleClass";
/// HL7 v2 table 0131 (contact role).
pub const CS_V2_0131: &str = "http://terminology.hl7.org/CodeSystem/v2-0131";
/// HL7 v2 table 0063 (relationship).
pub const CS_V2_0063: &str = "http://terminology.hl7.org/CodeSystem/v2-0063";
/// BCP 47 language tags.
pub const CS_BCP47: &str = "urn:ietf:bcp:47";

fn role_coding(r: ContactRole) -> Value {
    match r {
        ContactRole::Trusted => {
            json!({"system": CS_CONTACT_ROLE, "code": "NOK", "display": "Personne de confiance"})
        }
        ContactRole::Emergency => {
            json!({"system": CS_CONTACT_ROLE, "code": "ECON", "display": "Personne à prévenir en cas d'urgence"})
        }
        ContactRole::NextOfKin => {
            json!({"system": CS_V2_0131, "code": "N", "display": "Next-of-Kin"})
        }
    }
}

fn role_of(system: &str, code: &str) -> Option<ContactRole> {
    match (system, code) {
        (CS_CONTACT_ROLE, "NOK" | "QUAL") => Some(ContactRole::Trusted),
        (CS_CONTACT_ROLE, "ECON") | (CS_V2_0131, "C") => Some(ContactRole::Emergency),
        (CS_CONTACT_ROLE, "CAREGIVER") | (CS_V2_0131, "N" | "O" | "U") => {
            Some(ContactRole::NextOfKin)
        }
        _ => None,
    }
}

/// The address as FHIR writes it.
fn address(a: &Address) -> Value {
    let mut v = json!({"use": a.use_.code(), "line": a.lines});
    if let Some(o) = v.as_object_mut() {
        for (k, x) in [
            ("city", &a.city),
            ("postalCode", &a.postal_code),
            ("country", &a.country),
        ] {
            if let Some(x) = x {
                o.insert(k.into(), json!(x));
            }
        }
    }
    v
}

fn telecom(t: &Telecom) -> Value {
    let (system, usage) = match t.kind {
        TelecomKind::HomePhone => ("phone", "home"),
        TelecomKind::Mobile => ("phone", "mobile"),
        TelecomKind::WorkPhone => ("phone", "work"),
        TelecomKind::Email => ("email", "home"),
    };
    json!({"system": system, "value": t.value, "use": usage})
}

/// Adds the demographics of `d` to a Patient's JSON object, and the birth place's
/// commune and country to its birthPlace address (`birth_address`).
pub(crate) fn write(
    obj: &mut serde_json::Map<String, Value>,
    birth_address: &mut serde_json::Map<String, Value>,
    d: &Demographics,
) {
    if let Some(b) = &d.birth_place {
        if let Some(c) = &b.city {
            birth_address.insert("city".into(), json!(c));
        }
        if let Some(c) = &b.country {
            birth_address.insert("country".into(), json!(c));
        }
    }
    if !d.telecoms.is_empty() {
        obj.insert(
            "telecom".into(),
            Value::Array(d.telecoms.iter().map(telecom).collect()),
        );
    }
    if let Some(day) = d.deceased {
        obj.insert("deceasedDateTime".into(), json!(day.to_string()));
    }
    if !d.addresses.is_empty() {
        obj.insert(
            "address".into(),
            Value::Array(d.addresses.iter().map(address).collect()),
        );
    }
    if !d.contacts.is_empty() {
        let contacts = d
            .contacts
            .iter()
            .map(|c| {
                let mut rel = vec![json!({"coding": [role_coding(c.role)]})];
                if let Some(r) = c.relationship {
                    rel.push(json!({"coding": [{"system": CS_V2_0063, "code": r.code(), "display": r.label_fr()}]}));
                }
                let mut name = json!({"family": c.family});
                if let (Some(g), Some(o)) = (&c.given, name.as_object_mut()) {
                    o.insert("given".into(), json!([g]));
                }
                let mut v = json!({"relationship": rel, "name": name});
                if let (Some(p), Some(o)) = (&c.phone, v.as_object_mut()) {
                    o.insert("telecom".into(), json!([{"system": "phone", "value": p}]));
                }
                v
            })
            .collect();
        obj.insert("contact".into(), Value::Array(contacts));
    }
    if let Some(l) = &d.language {
        obj.insert(
            "communication".into(),
            json!([{"language": {"coding": [{"system": CS_BCP47, "code": l}]}, "preferred": true}]),
        );
    }
    if let Some(g) = &d.gp {
        obj.insert(
            "generalPractitioner".into(),
            json!([{
                "identifier": {"system": oid_system(OID_IDNATPS), "value": format!("8{}", g.rpps.as_str())},
                "display": g.display(),
            }]),
        );
    }
}

// ------------------------------------------------------------------ reading

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddressIn {
    #[serde(default)]
    extension: Vec<super::input::ExtensionIn>,
    #[serde(rename = "use")]
    usage: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    #[serde(default)]
    line: Vec<String>,
    city: Option<String>,
    #[serde(rename = "postalCode")]
    postal_code: Option<String>,
    country: Option<String>,
}

impl AddressIn {
    /// The extensions (the birth place's INSEE code is read from them).
    pub(crate) fn extensions(&self) -> &[super::input::ExtensionIn] {
        &self.extension
    }
    /// Whether it names a commune or a country.
    pub(crate) fn has_place(&self) -> bool {
        trimmed(&self.city).is_some() || trimmed(&self.country).is_some()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactPointIn {
    system: Option<String>,
    value: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    #[allow(dead_code)]
    rank: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CodingIn {
    system: Option<String>,
    code: Option<String>,
    #[allow(dead_code)]
    display: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConceptIn {
    #[serde(default)]
    coding: Vec<CodingIn>,
    #[allow(dead_code)]
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HumanNameIn {
    family: Option<String>,
    #[serde(default)]
    given: Vec<String>,
    #[allow(dead_code)]
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactIn {
    #[serde(default)]
    relationship: Vec<ConceptIn>,
    name: Option<HumanNameIn>,
    #[serde(default)]
    telecom: Vec<ContactPointIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdentifierRefIn {
    system: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReferenceIn {
    #[allow(dead_code)]
    reference: Option<String>,
    identifier: Option<IdentifierRefIn>,
    display: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommunicationIn {
    language: ConceptIn,
    #[allow(dead_code)]
    preferred: Option<bool>,
}

/// What a Patient's body says beyond the traits.
pub(crate) struct DetailsIn<'a> {
    pub(crate) address: &'a [AddressIn],
    pub(crate) birth_address: Option<&'a AddressIn>,
    pub(crate) telecom: &'a [ContactPointIn],
    pub(crate) contact: &'a [ContactIn],
    pub(crate) general_practitioner: &'a [ReferenceIn],
    pub(crate) communication: &'a [CommunicationIn],
    pub(crate) deceased_date_time: Option<&'a str>,
    pub(crate) deceased_boolean: Option<bool>,
}

fn rule(msg: impl Into<String>) -> FhirInputError {
    FhirInputError::Rule(msg.into())
}

fn unsupported(msg: impl Into<String>) -> FhirInputError {
    FhirInputError::NotSupported(msg.into())
}

fn trimmed(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `FRA`, `FR` or `France` → `FRA`; other ISO 3166 alpha-3 codes as they are.
fn country(c: &Option<String>) -> Result<Option<String>, FhirInputError> {
    let Some(c) = trimmed(c) else {
        return Ok(None);
    };
    let up = c.to_uppercase();
    match up.as_str() {
        "FR" | "FRANCE" | "FRA" => Ok(Some("FRA".into())),
        _ if up.len() == 3 && up.bytes().all(|b| b.is_ascii_uppercase()) => Ok(Some(up)),
        _ => Err(rule(format!(
            "address.country {c:?}: code pays ISO 3166 à trois lettres attendu (FRA, BEL…)"
        ))),
    }
}

fn read_address(a: &AddressIn) -> Result<Address, FhirInputError> {
    if a.text.is_some() && a.line.is_empty() && a.city.is_none() {
        return Err(unsupported(
            "address.text seul n'est pas pris en charge: envoyez line, postalCode et city",
        ));
    }
    if a.kind
        .as_deref()
        .is_some_and(|k| k != "physical" && k != "both")
    {
        return Err(unsupported("address.type postal n'est pas pris en charge"));
    }
    let use_ = match a.usage.as_deref() {
        None | Some("home") => AddressUse::Home,
        Some("temp") => AddressUse::Temporary,
        Some("work") => AddressUse::Work,
        Some(other) => {
            return Err(unsupported(format!(
                "address.use {other:?} non pris en charge (home, temp, work)"
            )));
        }
    };
    if !a.extension.is_empty() {
        return Err(unsupported(
            "extension d'adresse non prise en charge (hors lieu de naissance)",
        ));
    }
    Ok(Address {
        use_,
        // A line broken by a newline is two lines: as stored and read back.
        lines: a
            .line
            .iter()
            .flat_map(|l| l.split(['\n', '\r']))
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect(),
        postal_code: trimmed(&a.postal_code),
        city: trimmed(&a.city),
        country: country(&a.country)?,
    })
}

fn read_telecom(t: &ContactPointIn) -> Result<Telecom, FhirInputError> {
    let value = t.value.as_deref().unwrap_or("");
    let kind = match (t.system.as_deref(), t.usage.as_deref()) {
        (Some("email"), _) => TelecomKind::Email,
        (Some("phone"), Some("mobile")) => TelecomKind::Mobile,
        (Some("phone"), Some("work")) => TelecomKind::WorkPhone,
        (Some("phone"), None | Some("home")) => TelecomKind::HomePhone,
        (Some("phone"), Some(other)) => {
            return Err(unsupported(format!(
                "telecom.use {other:?} non pris en charge (home, mobile, work)"
            )));
        }
        (other, _) => {
            return Err(unsupported(format!(
                "telecom.system {:?} non pris en charge (phone, email)",
                other.unwrap_or("")
            )));
        }
    };
    Telecom::parse(kind, value).map_err(|e| rule(e.to_string()))
}

fn read_contact(c: &ContactIn) -> Result<Contact, FhirInputError> {
    let (mut role, mut relationship) = (None, None);
    for concept in &c.relationship {
        for coding in &concept.coding {
            let (system, code) = (
                coding.system.as_deref().unwrap_or(""),
                coding.code.as_deref().unwrap_or(""),
            );
            if system == CS_V2_0063 {
                relationship = Some(Relationship::from_code(code).ok_or_else(|| {
                    rule(format!(
                        "contact.relationship: code {code:?} inconnu de la table 0063"
                    ))
                })?);
            } else if let Some(r) = role_of(system, code) {
                role = Some(r);
            } else {
                return Err(unsupported(format!(
                    "contact.relationship {system}|{code} non pris en charge (TRE_R260 NOK ou ECON, v2-0131, v2-0063)"
                )));
            }
        }
    }
    let name = c
        .name
        .as_ref()
        .ok_or_else(|| rule("contact.name est obligatoire"))?;
    let family =
        trimmed(&name.family).ok_or_else(|| rule("contact.name.family est obligatoire"))?;
    let mut phone = None;
    for t in &c.telecom {
        if t.system.as_deref() != Some("phone") || phone.is_some() {
            return Err(unsupported(
                "contact.telecom: un seul numéro de téléphone par proche",
            ));
        }
        let v = t.value.as_deref().unwrap_or("");
        phone = Some(
            normalize_phone(v)
                .ok_or_else(|| rule(format!("contact.telecom: numéro {v:?} invalide")))?,
        );
    }
    Ok(Contact {
        role: role.unwrap_or(ContactRole::NextOfKin),
        relationship,
        family,
        given: name
            .given
            .first()
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty()),
        phone,
    })
}

fn read_gp(r: &ReferenceIn) -> Result<Gp, FhirInputError> {
    let id = r.identifier.as_ref().ok_or_else(|| {
        unsupported(
            "generalPractitioner: référence par identifiant RPPS attendue (identifier.system urn:oid:1.2.250.1.71.4.2.1)",
        )
    })?;
    if id.system.as_deref() != Some(oid_system(OID_IDNATPS).as_str()) {
        return Err(unsupported(format!(
            "generalPractitioner.identifier.system {:?}: urn:oid:{OID_IDNATPS} (RPPS) attendu",
            id.system.as_deref().unwrap_or("")
        )));
    }
    let value = id.value.as_deref().unwrap_or("");
    let rpps = match value.strip_prefix('8') {
        Some(rest) if value.len() == 12 => rest,
        _ => value,
    };
    let rpps = Rpps::parse(rpps).map_err(|e| rule(format!("generalPractitioner: {e}")))?;
    // The display "Dr Given FAMILY (RPPS …)" Parcours writes reads back as the name.
    let name = r
        .display
        .as_deref()
        .map(|d| d.split(" (RPPS").next().unwrap_or(d))
        .map(|d| d.trim_start_matches("Dr ").trim().to_owned())
        .filter(|d| !d.is_empty() && !d.starts_with("RPPS"));
    let (given, family) = match name.as_deref().and_then(|n| n.rsplit_once(' ')) {
        Some((g, f)) => (Some(g.to_owned()), Some(f.to_owned())),
        None => (None, name),
    };
    Ok(Gp {
        rpps,
        family,
        given,
    })
}

/// Reads the demographics of a Patient's body (checked by the caller with
/// `Demographics::check`).
pub(crate) fn read(d: DetailsIn<'_>) -> Result<Demographics, FhirInputError> {
    let mut out = Demographics::default();
    for a in d.address {
        out.addresses.push(read_address(a)?);
    }
    if let Some(b) = d.birth_address {
        let place = BirthPlace {
            city: trimmed(&b.city),
            country: country(&b.country)?,
        };
        if place.city.is_some() || place.country.is_some() {
            out.birth_place = Some(place);
        }
    }
    for t in d.telecom {
        out.telecoms.push(read_telecom(t)?);
    }
    for c in d.contact {
        out.contacts.push(read_contact(c)?);
    }
    match d.general_practitioner {
        [] => {}
        [one] => out.gp = Some(read_gp(one)?),
        _ => {
            return Err(unsupported(
                "un seul médecin traitant (generalPractitioner) par patient",
            ));
        }
    }
    match d.communication {
        [] => {}
        [one] => {
            let code = one
                .language
                .coding
                .iter()
                .find_map(|c| c.code.as_deref())
                .unwrap_or("");
            out.language = Some(normalize_language(code).ok_or_else(|| {
                rule(format!(
                    "communication.language {code:?}: code BCP 47 attendu (fr, en…)"
                ))
            })?);
        }
        _ => {
            return Err(unsupported("une seule langue (communication) par patient"));
        }
    }
    out.deceased = match (d.deceased_date_time, d.deceased_boolean) {
        (Some(_), Some(_)) => {
            return Err(rule("deceasedDateTime et deceasedBoolean sont exclusifs"));
        }
        (Some(dt), None) => Some(
            dt.get(..10)
                .and_then(|x| x.parse::<Date>().ok())
                .ok_or_else(|| rule("deceasedDateTime: date AAAA-MM-JJ attendue"))?,
        ),
        (None, Some(true)) => {
            return Err(unsupported(
                "deceasedBoolean=true sans date n'est pas pris en charge: envoyez deceasedDateTime",
            ));
        }
        (None, Some(false) | None) => None,
    };
    Ok(out)
}
