//! IHE MHD as the ANS PDSm guide profiles it: the ITI-65 Provide Document
//! Bundle (a transaction of a SubmissionSet `List`, a `DocumentReference` and
//! its `Binary`) that Parcours sends to a Document Recipient (the DMP, another
//! Parcours), and the reading of one it receives.

use base64::Engine as _;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use super::output::instant;
use crate::json_at as at;

/// TRE_A03 (DMP document classes).
pub const CS_CLASS: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument";
/// IHE format codes.
pub const CS_FORMAT: &str = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode";

/// What one submission carries.
#[derive(Debug, Clone)]
pub struct Submission<'a> {
    /// The document's unique id (masterIdentifier, `urn:uuid:…`).
    pub unique_id: &'a str,
    /// A UUID for the submission set.
    pub submission_id: &'a str,
    /// Patient INS (qualified identities only) and its OID.
    pub ins: (&'a str, &'a str),
    /// Author RPPS and name.
    pub author: (Option<&'a str>, &'a str),
    /// Establishment FINESS and name.
    pub custodian: (&'a str, &'a str),
    /// LOINC type code and display.
    pub type_code: (&'a str, &'a str),
    /// TRE_A03 class code and display.
    pub class_code: (&'a str, &'a str),
    /// Title.
    pub title: &'a str,
    /// Document time (Unix ms).
    pub date_ms: i64,
    /// Start of the care the document is about (Unix ms).
    pub period_start_ms: i64,
    /// The CDA document.
    pub cda: &'a [u8],
    /// The unique id of the version this one replaces, if any.
    pub replaces: Option<&'a str>,
}

/// The ITI-65 transaction Bundle.
pub fn provide_bundle(s: &Submission<'_>) -> Value {
    let mut bundle = provide_bundle_without_relation(s);
    if let (Some(old), Some(doc)) = (
        s.replaces,
        bundle
            .pointer_mut("/entry/1/resource")
            .and_then(Value::as_object_mut),
    ) {
        doc.insert(
            "relatesTo".into(),
            json!([{"code": "replaces", "target": {"identifier": {"system": "urn:ietf:rfc:3986", "value": old}}}]),
        );
    }
    bundle
}

fn provide_bundle_without_relation(s: &Submission<'_>) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let hash = b64.encode(Sha1::digest(s.cda));
    let (ins, ins_oid) = s.ins;
    let subject = json!({"reference": format!("Patient?identifier=urn:oid:{ins_oid}|{ins}")});
    let contained = json!([
        {"resourceType": "Patient", "id": "patient", "identifier": [{"system": format!("urn:oid:{ins_oid}"), "value": ins}]},
        {"resourceType": "Practitioner", "id": "author",
         "identifier": s.author.0.map(|r| vec![json!({"system": "urn:oid:1.2.250.1.71.4.2.1", "value": format!("8{r}")})]).unwrap_or_default(),
         "name": [{"text": s.author.1}]},
    ]);
    let doc_url = format!("urn:uuid:{}", uuid_like(s.unique_id, "d"));
    let bin_url = format!("urn:uuid:{}", uuid_like(s.unique_id, "b"));
    let when = instant(s.date_ms);
    json!({
        "resourceType": "Bundle",
        "meta": {"profile": ["https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-comprehensive-provide-document-bundle"]},
        "type": "transaction",
        "entry": [
            {
                "fullUrl": format!("urn:uuid:{}", s.submission_id),
                "resource": {
                    "resourceType": "List",
                    "meta": {"profile": ["https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-submissionset-comprehensive"]},
                    "contained": contained,
                    "extension": [
                        {"url": "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-designationType",
                         "valueCodeableConcept": {"coding": [{"system": CS_CLASS, "code": s.class_code.0, "display": s.class_code.1}]}},
                        {"url": "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId",
                         "valueIdentifier": {"system": "urn:ietf:rfc:3986", "value": format!("urn:oid:1.2.250.1.71.4.2.2.1{}", s.custodian.0)}},
                    ],
                    "identifier": [{"use": "official", "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", s.submission_id)}],
                    "status": "current",
                    "mode": "working",
                    "code": {"coding": [{"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes", "code": "submissionset"}]},
                    "subject": subject,
                    "date": when,
                    "source": {"reference": "#author"},
                    "entry": [{"item": {"reference": doc_url}}],
                },
                "request": {"method": "POST", "url": "List"},
            },
            {
                "fullUrl": doc_url,
                "resource": {
                    "resourceType": "DocumentReference",
                    "meta": {"profile": ["https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-comprehensive-document-reference"]},
                    "contained": contained,
                    "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": s.unique_id},
                    "status": "current",
                    "type": {"coding": [{"system": "http://loinc.org", "code": s.type_code.0, "display": s.type_code.1}]},
                    "category": [{"coding": [{"system": CS_CLASS, "code": s.class_code.0, "display": s.class_code.1}]}],
                    "subject": subject,
                    "date": when,
                    "author": [{"reference": "#author"}],
                    "authenticator": {"reference": "#author"},
                    "custodian": {"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.2", "value": format!("1{}", s.custodian.0)}, "display": s.custodian.1},
                    "securityLabel": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N", "display": "normal"}]}],
                    "content": [{
                        "attachment": {"contentType": "text/xml", "language": "fr-FR", "url": bin_url, "size": s.cda.len(), "hash": hash, "title": s.title, "creation": when},
                        "format": {"system": CS_FORMAT, "code": crate::cda::FORMAT_PDF},
                    }],
                    "context": {
                        "period": {"start": instant(s.period_start_ms)},
                        "sourcePatientInfo": {"reference": "#patient"},
                        "facilityType": {"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite", "code": "SA01", "display": "Etablissement public de santé"}]},
                        "practiceSetting": {"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_A01-CadreExercice/FHIR/TRE-A01-CadreExercice", "code": "AMBULATOIRE", "display": "Ambulatoire"}]},
                    },
                },
                "request": {"method": "POST", "url": "DocumentReference"},
            },
            {
                "fullUrl": bin_url,
                "resource": {"resourceType": "Binary", "contentType": "text/xml", "data": b64.encode(s.cda)},
                "request": {"method": "POST", "url": "Binary"},
            },
        ],
    })
}

/// A stable UUID-shaped id derived from a unique id (so a resent bundle has
/// the same full URLs).
fn uuid_like(seed: &str, salt: &str) -> String {
    let h = Sha1::digest(format!("{salt}:{seed}").as_bytes());
    let x = hex::encode(h);
    format!(
        "{}-{}-5{}-8{}-{}",
        x.get(0..8).unwrap_or_default(),
        x.get(8..12).unwrap_or_default(),
        x.get(13..16).unwrap_or_default(),
        x.get(17..20).unwrap_or_default(),
        x.get(20..32).unwrap_or_default()
    )
}

/// One document read from a received ITI-65 bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// masterIdentifier.
    pub unique_id: String,
    /// The patient identifier: system (`urn:oid:…`) and value.
    pub patient: (String, String),
    /// LOINC type code.
    pub type_code: String,
    /// Title.
    pub title: String,
    /// Media type of the content.
    pub content_type: String,
    /// The content.
    pub content: Vec<u8>,
    /// The unique id of the document it replaces (`relatesTo` `replaces`).
    pub replaces: Option<String>,
}

/// A document an MHD Document Responder lists (ITI-67), as shown to a
/// professional before it is opened (ITI-68).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The DocumentReference's id at the responder.
    pub id: String,
    /// masterIdentifier.
    pub unique_id: String,
    /// Title (description, else the attachment's).
    pub title: String,
    /// LOINC type: code and display.
    pub type_code: (String, String),
    /// Date, as sent.
    pub date: String,
    /// current or superseded.
    pub status: String,
    /// The content's media type.
    pub content_type: String,
    /// Where the content is (ITI-68).
    pub url: String,
}

/// Reads an ITI-67 answer (a searchset of DocumentReferences); entries of other
/// kinds (an OperationOutcome) are passed over.
pub fn read_search(v: &Value) -> Result<Vec<Found>, String> {
    if at(v, &["resourceType"]) != "Bundle" {
        return Err("une réponse Bundle (searchset) est attendue".into());
    }
    let s = |x: &Value, p: &[&str]| at(x, p).as_str().unwrap_or("").to_owned();
    Ok(at(v, &["entry"])
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| at(e, &["resource"]))
        .filter(|d| at(d, &["resourceType"]) == "DocumentReference")
        .map(|d| {
            let title = match s(d, &["description"]) {
                t if t.is_empty() => s(d, &["content", "0", "attachment", "title"]),
                t => t,
            };
            Found {
                id: s(d, &["id"]),
                unique_id: s(d, &["masterIdentifier", "value"]),
                title,
                type_code: (
                    s(d, &["type", "coding", "0", "code"]),
                    s(d, &["type", "coding", "0", "display"]),
                ),
                date: s(d, &["date"]),
                status: s(d, &["status"]),
                content_type: s(d, &["content", "0", "attachment", "contentType"]),
                url: s(d, &["content", "0", "attachment", "url"]),
            }
        })
        .collect())
}

/// Reads an ITI-65 bundle: every DocumentReference with its Binary (by the
/// attachment URL), the size and SHA-1 hash checked when given. A clear
/// message for whatever is missing or inconsistent.
pub fn read_provide_bundle(v: &Value) -> Result<Vec<Received>, String> {
    if at(v, &["resourceType"]) != "Bundle" || at(v, &["type"]) != "transaction" {
        return Err("un Bundle de type transaction est attendu (ITI-65)".into());
    }
    let entries = at(v, &["entry"]).as_array().ok_or("Bundle sans entrée")?;
    if !entries
        .iter()
        .any(|e| at(e, &["resource", "resourceType"]) == "List")
    {
        return Err("le lot de soumission (List submissionset) manque".into());
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for e in entries
        .iter()
        .filter(|e| at(e, &["resource", "resourceType"]) == "DocumentReference")
    {
        let d = &at(e, &["resource"]);
        let unique_id = at(d, &["masterIdentifier", "value"])
            .as_str()
            .ok_or("DocumentReference sans masterIdentifier")?
            .to_owned();
        let patient =
            patient_identifier(d).ok_or("DocumentReference sans identifiant du patient")?;
        let type_code = at(d, &["type", "coding", "0", "code"])
            .as_str()
            .ok_or("DocumentReference sans type")?
            .to_owned();
        let att = &at(d, &["content", "0", "attachment"]);
        let url = at(att, &["url"]).as_str().ok_or("pièce jointe sans url")?;
        let binary = entries
            .iter()
            .find(|b| {
                at(b, &["fullUrl"]).as_str() == Some(url)
                    && at(b, &["resource", "resourceType"]) == "Binary"
            })
            .ok_or_else(|| format!("le Binary {url} manque"))?;
        let content = b64
            .decode(
                at(binary, &["resource", "data"])
                    .as_str()
                    .ok_or("Binary sans données")?,
            )
            .map_err(|_| "Binary : Base64 illisible".to_owned())?;
        if let Some(size) = at(att, &["size"]).as_u64()
            && size != content.len() as u64
        {
            return Err(format!("taille annoncée {size}, reçue {}", content.len()));
        }
        if let Some(hash) = at(att, &["hash"]).as_str()
            && b64.encode(Sha1::digest(&content)) != hash
        {
            return Err("empreinte SHA-1 différente du contenu".into());
        }
        out.push(Received {
            unique_id,
            patient,
            type_code,
            title: at(att, &["title"])
                .as_str()
                .or(at(d, &["description"]).as_str())
                .unwrap_or("Document")
                .to_owned(),
            content_type: at(binary, &["resource", "contentType"])
                .as_str()
                .or(at(att, &["contentType"]).as_str())
                .unwrap_or("application/octet-stream")
                .to_owned(),
            content,
            replaces: at(d, &["relatesTo"])
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| at(r, &["code"]) == "replaces")
                .and_then(|r| at(r, &["target", "identifier", "value"]).as_str())
                .map(str::to_owned),
        });
    }
    if out.is_empty() {
        return Err("aucun DocumentReference dans le lot".into());
    }
    Ok(out)
}

/// The patient identifier of a DocumentReference: `subject` as a conditional
/// reference (`Patient?identifier=system|value`), or the contained
/// sourcePatientInfo.
fn patient_identifier(d: &Value) -> Option<(String, String)> {
    if let Some(r) = at(d, &["subject", "reference"]).as_str()
        && let Some(q) = r.strip_prefix("Patient?identifier=")
        && let Some((sys, val)) = q.split_once('|')
    {
        return Some((sys.to_owned(), val.to_owned()));
    }
    let id = at(d, &["context", "sourcePatientInfo", "reference"])
        .as_str()?
        .strip_prefix('#')?;
    let p = at(d, &["contained"])
        .as_array()?
        .iter()
        .find(|c| at(c, &["id"]) == id)?;
    Some((
        at(p, &["identifier", "0", "system"]).as_str()?.to_owned(),
        at(p, &["identifier", "0", "value"]).as_str()?.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Submission<'static> {
        Submission {
            unique_id: "urn:uuid:0f3a1c2e-1111-4222-8333-444455556666",
            submission_id: "6b1f2a3c-aaaa-4bbb-8ccc-ddddeeeeffff",
            ins: ("279035121518989", "1.2.250.1.213.1.4.8"),
            author: (Some("10000012345"), "Dr Claire Martin"),
            custodian: ("450000013", "Clinique Saint-Roch"),
            type_code: ("11490-0", "Lettre de liaison"),
            class_code: ("11", "Synthèse"),
            title: "Lettre de liaison",
            date_ms: 1_795_000_000_000,
            period_start_ms: 1_794_700_000_000,
            cda: b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>",
            replaces: None,
        }
    }

    #[test]
    fn a_correction_says_what_it_replaces_and_is_read_back() {
        let mut s = sample();
        s.replaces = Some("urn:uuid:0f3a1c2e-0000-4222-8333-444455556666");
        let r = read_provide_bundle(&provide_bundle(&s)).unwrap();
        assert_eq!(
            r[0].replaces.as_deref(),
            Some("urn:uuid:0f3a1c2e-0000-4222-8333-444455556666")
        );
        assert_eq!(
            read_provide_bundle(&provide_bundle(&sample())).unwrap()[0].replaces,
            None
        );
    }

    #[test]
    fn a_bundle_we_send_is_read_back_and_checked() {
        let b = provide_bundle(&sample());
        let r = read_provide_bundle(&b).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].unique_id,
            "urn:uuid:0f3a1c2e-1111-4222-8333-444455556666"
        );
        assert_eq!(
            r[0].patient,
            (
                "urn:oid:1.2.250.1.213.1.4.8".into(),
                "279035121518989".into()
            )
        );
        assert_eq!(
            (r[0].type_code.as_str(), r[0].content_type.as_str()),
            ("11490-0", "text/xml")
        );
        assert_eq!(r[0].content, sample().cda);
        // The same submission twice gives the same bundle (resends are identical).
        assert_eq!(provide_bundle(&sample()), b);
    }

    #[test]
    fn the_ans_sample_bundle_is_read() {
        let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../../../shared/fixtures/fhir/pdsm/Bundle-example-td2-iti65-lot-soumission.json",
        ))
        .unwrap();
        let r = read_provide_bundle(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(r[0].type_code, "11488-4");
        assert_eq!(r[0].patient.1, "123456789012345");
        assert!(r[0].content.starts_with(b"<?xml"));
    }

    #[test]
    fn tampered_or_incomplete_bundles_are_refused_with_the_reason() {
        let good = provide_bundle(&sample());
        let mut bad = good.clone();
        bad["entry"][2]["resource"]["data"] = json!(b64("<autre/>"));
        assert!(read_provide_bundle(&bad).unwrap_err().contains("taille"));
        let mut bad = good.clone();
        bad["entry"][1]["resource"]["content"][0]["attachment"]["hash"] = json!(b64("x"));
        assert!(read_provide_bundle(&bad).unwrap_err().contains("SHA-1"));
        let mut bad = good.clone();
        bad["entry"].as_array_mut().unwrap().remove(2);
        assert!(read_provide_bundle(&bad).unwrap_err().contains("Binary"));
        let mut bad = good.clone();
        bad["entry"].as_array_mut().unwrap().remove(0);
        assert!(read_provide_bundle(&bad).unwrap_err().contains("List"));
        let mut bad = good.clone();
        bad["type"] = json!("batch");
        assert!(read_provide_bundle(&bad).is_err());
        let mut bad = good;
        bad["entry"][1]["resource"]["masterIdentifier"] = Value::Null;
        assert!(
            read_provide_bundle(&bad)
                .unwrap_err()
                .contains("masterIdentifier")
        );
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }
}

/// What a stored document's DocumentReference is built from.
#[derive(Debug, Clone)]
pub struct StoredView<'a> {
    /// Id.
    pub id: String,
    /// Unique id.
    pub unique_id: &'a str,
    /// Patient id.
    pub patient: String,
    /// Establishment id.
    pub establishment: String,
    /// LOINC type.
    pub type_code: (&'a str, &'a str),
    /// Class.
    pub class_code: (&'a str, &'a str),
    /// Title.
    pub title: &'a str,
    /// Date (Unix ms).
    pub date_ms: i64,
    /// Validated (final) or a draft (preliminary).
    pub final_: bool,
    /// Replaced by a newer version.
    pub superseded: bool,
    /// The stored content, when there is one.
    pub content: Option<Attached<'a>>,
    /// The FHIR base, for the Binary's URL.
    pub base: &'a str,
}

/// What a DocumentReference says of its stored content (not the bytes: a
/// list of references does not read them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attached<'a> {
    /// Media type.
    pub content_type: &'a str,
    /// Bytes.
    pub size: u64,
    /// SHA-1 in standard base64 (`Attachment.hash`).
    pub sha1: &'a str,
}

/// A stored document as a DocumentReference (ITI-67 answers), its content at
/// `Binary/{id}` (ITI-68).
pub fn stored_reference(v: &StoredView<'_>) -> Value {
    let mut attachment =
        json!({"language": "fr-FR", "title": v.title, "creation": instant(v.date_ms)});
    if let (Some(c), Some(o)) = (v.content, attachment.as_object_mut()) {
        o.insert("contentType".into(), json!(c.content_type));
        o.insert("url".into(), json!(format!("{}/Binary/{}", v.base, v.id)));
        o.insert("size".into(), json!(c.size));
        o.insert("hash".into(), json!(c.sha1));
    }
    json!({
        "resourceType": "DocumentReference",
        "id": v.id,
        // A validated document changes once at most: when a correction
        // supersedes it.
        "meta": {"versionId": if v.superseded { "2" } else { "1" }},
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": v.unique_id},
        "status": if v.superseded { "superseded" } else { "current" },
        "docStatus": if v.final_ { "final" } else { "preliminary" },
        "type": {"coding": [{"system": "http://loinc.org", "code": v.type_code.0, "display": v.type_code.1}]},
        "category": [{"coding": [{"system": CS_CLASS, "code": v.class_code.0, "display": v.class_code.1}]}],
        "subject": {"reference": format!("Patient/{}", v.patient)},
        "date": instant(v.date_ms),
        "custodian": {"reference": format!("Organization/{}", v.establishment)},
        "description": v.title,
        "content": [{"attachment": attachment, "format": {"system": CS_FORMAT, "code": crate::cda::FORMAT_PDF}}],
    })
}

/// A submission set (ITI-66 answers): the List that carried one validated
/// document, pointing at its DocumentReference.
pub fn submission_set(v: &StoredView<'_>) -> Value {
    json!({
        "resourceType": "List",
        "id": format!("ss-{}", v.id),
        // A submission set is what was sent, once: it never changes.
        "meta": {"versionId": "1", "lastUpdated": super::output::instant(v.date_ms)},
        "identifier": [{"use": "official", "system": "urn:ietf:rfc:3986", "value": format!("{}-ss", v.unique_id)}],
        "status": "current",
        "mode": "working",
        "code": {"coding": [{"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes", "code": "submissionset"}]},
        "subject": {"reference": format!("Patient/{}", v.patient)},
        "date": instant(v.date_ms),
        "source": {"reference": format!("Organization/{}", v.establishment)},
        "entry": [{"item": {"reference": format!("DocumentReference/{}", v.id)}}],
    })
}
