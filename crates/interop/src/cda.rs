//! CDA R2 level 1 as the CI-SIS asks: a structured header (patient with INS
//! when qualified and IPP, author with RPPS, establishment with FINESS, type and
//! confidentiality codes, the encounter) and a non-structured body carrying the
//! PDF (`nonXMLBody`, IHE XDS-SD). Validated by xmllint against the CDA R2
//! schema in the tests.

use base64::Engine as _;
use domain::documents::Kind;
use domain::identity::{PatientRecord, Sex};

/// The XDS-SD format code of a CDA level 1 with a PDF.
pub const FORMAT_PDF: &str = "urn:ihe:iti:xds-sd:pdf:2008";

/// XML text and attribute escaping.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

/// A person who writes or signs.
#[derive(Debug, Clone)]
pub struct Professional<'a> {
    /// RPPS (11 digits).
    pub rpps: Option<&'a str>,
    /// Given name.
    pub given: &'a str,
    /// Family name.
    pub family: &'a str,
}

/// What a CDA document is built from.
#[derive(Debug, Clone)]
pub struct CdaInput<'a> {
    /// The document's unique id (a UUID, as `root`).
    pub id: &'a str,
    /// The id shared by its versions.
    pub set_id: &'a str,
    /// Version number (1 first).
    pub version: u32,
    /// Type.
    pub kind: Kind,
    /// Title.
    pub title: &'a str,
    /// Creation time, `YYYYMMDDHHMMSS+ZZZZ`.
    pub effective: &'a str,
    /// The patient.
    pub patient: &'a PatientRecord,
    /// The OID of the identity domain that gave the IPP.
    pub ipp_oid: &'a str,
    /// Author.
    pub author: Professional<'a>,
    /// Establishment: FINESS, name.
    pub establishment: (&'a str, &'a str),
    /// Encounter period (`YYYYMMDDHHMMSS+ZZZZ`), if the document belongs to a stay.
    pub encounter: Option<(&'a str, Option<&'a str>)>,
    /// Confidentiality: `N` normal.
    pub confidentiality: &'a str,
    /// The PDF.
    pub pdf: &'a [u8],
    /// The version it replaces: that version's id (root), set id and number.
    pub replaces: Option<(&'a str, &'a str, u32)>,
}

fn name_xml(p: &PatientRecord) -> String {
    let t = &p.traits;
    let mut x = String::from("<name>");
    x.push_str(&format!(
        "<family qualifier=\"BR\">{}</family>",
        esc(&t.birth_name)
    ));
    x.push_str(&format!(
        "<given>{}</given>",
        esc(&t.birth_given_names.join(" "))
    ));
    if let Some(first) = t.birth_given_names.first() {
        x.push_str(&format!("<given qualifier=\"BR\">{}</given>", esc(first)));
    }
    if let Some(u) = &t.used_name {
        x.push_str(&format!("<family qualifier=\"CL\">{}</family>", esc(u)));
    }
    if let Some(u) = &t.used_given_name {
        x.push_str(&format!("<given qualifier=\"CL\">{}</given>", esc(u)));
    }
    x.push_str("</name>");
    x
}

/// The author id: RPPS under the national professional id OID, prefixed `8`.
fn author_id(rpps: Option<&str>) -> String {
    match rpps {
        Some(r) => format!(
            "<id root=\"1.2.250.1.71.4.2.1\" extension=\"8{}\"/>",
            esc(r)
        ),
        None => "<id nullFlavor=\"UNK\"/>".into(),
    }
}

fn organization_id(finess: &str) -> String {
    format!(
        "<id root=\"1.2.250.1.71.4.2.2\" extension=\"1{}\"/>",
        esc(finess)
    )
}

/// The patient's `recordTarget`: the INS when exchangeable, the IPP, the
/// traits.
fn record_target(d: &CdaInput<'_>) -> String {
    let p = d.patient;
    let mut ids = String::new();
    if let Some(ins) = p.ins.as_ref().filter(|_| p.status.ins_exchangeable()) {
        let oid = ins.kind().oid();
        ids.push_str(&format!(
            "<id root=\"{oid}\" extension=\"{}\"/>",
            esc(&ins.value())
        ));
    }
    ids.push_str(&format!(
        "<id root=\"{}\" extension=\"{}\"/>",
        esc(d.ipp_oid),
        esc(&p.ipp)
    ));
    let (gender, gender_name) = match p.traits.sex {
        Sex::Female => ("F", "Féminin"),
        Sex::Male => ("M", "Masculin"),
        Sex::Unknown => ("U", "Inconnu"),
    };
    let birthplace = p
        .traits
        .birthplace_code
        .as_deref()
        .map(|c| {
            format!(
                "<birthplace><place><addr><county>{}</county></addr></place></birthplace>",
                esc(c)
            )
        })
        .unwrap_or_default();
    format!(
        "<recordTarget><patientRole>{ids}<patient classCode=\"PSN\">{name}\
<administrativeGenderCode code=\"{gender}\" displayName=\"{gender_name}\" codeSystem=\"2.16.840.1.113883.5.1\"/>\
<birthTime value=\"{birth}\"/>{birthplace}</patient></patientRole></recordTarget>",
        name = name_xml(p),
        birth = p.traits.birth_date.strftime("%Y%m%d"),
    )
}

/// The `componentOf`: the stay (its period) or the act's time, at the
/// establishment `org`.
fn encompassing(d: &CdaInput<'_>, org: &str) -> String {
    match d.encounter {
        Some((start, end)) => format!(
            "<componentOf><encompassingEncounter><effectiveTime><low value=\"{}\"/>{}</effectiveTime>\
             <location><healthCareFacility><code code=\"SA01\" displayName=\"Etablissement de santé\" codeSystem=\"1.2.250.1.71.4.2.4\"/>\
             <serviceProviderOrganization>{org}</serviceProviderOrganization></healthCareFacility></location></encompassingEncounter></componentOf>",
            esc(start),
            end.map(|e| format!("<high value=\"{}\"/>", esc(e)))
                .unwrap_or_default()
        ),
        None => format!(
            "<componentOf><encompassingEncounter><effectiveTime value=\"{}\"/>\
             <location><healthCareFacility><code code=\"SA01\" displayName=\"Etablissement de santé\" codeSystem=\"1.2.250.1.71.4.2.4\"/>\
             <serviceProviderOrganization>{org}</serviceProviderOrganization></healthCareFacility></location></encompassingEncounter></componentOf>",
            esc(d.effective)
        ),
    }
}

/// The CDA document (UTF-8 XML).
pub fn build(d: &CdaInput<'_>) -> String {
    let (type_code, type_display) = d.kind.loinc();
    let record_target = record_target(d);
    let author_name = format!(
        "<name><given>{}</given><family>{}</family></name>",
        esc(d.author.given),
        esc(d.author.family)
    );
    let (finess, org_name) = d.establishment;
    let org = format!("{}<name>{}</name>", organization_id(finess), esc(org_name));
    let encounter = encompassing(d, &org);
    let pdf = base64::engine::general_purpose::STANDARD.encode(d.pdf);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<ClinicalDocument xmlns=\"urn:hl7-org:v3\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
<realmCode code=\"FR\"/>\
<typeId root=\"2.16.840.1.113883.1.3\" extension=\"POCD_HD000040\"/>\
<templateId root=\"2.16.840.1.113883.2.8.2.1\"/>\
<templateId root=\"1.2.250.1.213.1.1.1.1\"/>\
<templateId root=\"1.3.6.1.4.1.19376.1.2.20\"/>\
<id root=\"{id}\"/>\
<code code=\"{type_code}\" displayName=\"{type_display}\" codeSystem=\"2.16.840.1.113883.6.1\" codeSystemName=\"LOINC\"/>\
<title>{title}</title>\
<effectiveTime value=\"{effective}\"/>\
<confidentialityCode code=\"{conf}\" codeSystem=\"2.16.840.1.113883.5.25\"/>\
<languageCode code=\"fr-FR\"/>\
<setId root=\"{set_id}\"/>\
<versionNumber value=\"{version}\"/>\
{record_target}\
<author><time value=\"{effective}\"/><assignedAuthor>{author_id}\
<assignedPerson>{author_name}</assignedPerson>\
<representedOrganization>{org}</representedOrganization></assignedAuthor></author>\
<custodian><assignedCustodian><representedCustodianOrganization>{org}</representedCustodianOrganization></assignedCustodian></custodian>\
<legalAuthenticator><time value=\"{effective}\"/><signatureCode code=\"S\"/><assignedEntity>{author_id}\
<assignedPerson>{author_name}</assignedPerson></assignedEntity></legalAuthenticator>\
<documentationOf><serviceEvent><code code=\"{type_code}\" displayName=\"{type_display}\" codeSystem=\"2.16.840.1.113883.6.1\"/>\
<effectiveTime><low value=\"{effective}\"/></effectiveTime></serviceEvent></documentationOf>\
{related}{encounter}\
<component><nonXMLBody><text mediaType=\"application/pdf\" representation=\"B64\">{pdf}</text></nonXMLBody></component>\
</ClinicalDocument>\n",
        id = esc(d.id),
        title = esc(d.title),
        effective = esc(d.effective),
        conf = esc(d.confidentiality),
        set_id = esc(d.set_id),
        version = d.version,
        author_id = author_id(d.author.rpps),
        related = d
            .replaces
            .map(|(id, set, v)| format!(
                "<relatedDocument typeCode=\"RPLC\"><parentDocument><id root=\"{}\"/><setId root=\"{}\"/><versionNumber value=\"{v}\"/></parentDocument></relatedDocument>",
                esc(id),
                esc(set)
            ))
            .unwrap_or_default(),
    )
}

/// What the header of a received CDA says: enough to file it on the right
/// patient (INS, else the traits) and list it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CdaHeader {
    /// The document's unique id: `urn:uuid:…` or `urn:oid:…` for a bare root,
    /// `root^extension` (the XDS spelling) otherwise.
    pub unique_id: String,
    /// Type (LOINC code and display name).
    pub type_code: (String, String),
    /// Title.
    pub title: String,
    /// The patient's INS (matricule, OID) when the header carries one.
    pub ins: Option<(String, String)>,
    /// Birth name (`family qualifier="BR"`, else the first family).
    pub birth_name: Option<String>,
    /// First birth given name (`given qualifier="BR"`, else the first word of the first given).
    pub given: Option<String>,
    /// Birth date `YYYYMMDD`.
    pub birth_date: Option<String>,
    /// Administrative sex: `M`, `F` or `U`.
    pub sex: Option<String>,
    /// Who wrote it (display name).
    pub author: String,
    /// The author's RPPS when given (national id `8` + RPPS).
    pub author_rpps: Option<String>,
    /// The author's organisation.
    pub organisation: Option<String>,
    /// The unique id of the document this one replaces (`relatedDocument`
    /// `RPLC`), spelled like `unique_id`.
    pub replaces: Option<String>,
}

/// A CDA id as a unique id: a URI where it can be one (FHIR masterIdentifier,
/// XDS uniqueId), `root^extension` otherwise.
fn uid(root: &str, extension: Option<&str>) -> String {
    let is_uuid = root.len() == 36 && root.chars().filter(|c| *c == '-').count() == 4;
    match extension {
        Some(ext) => format!("{root}^{ext}"),
        None if is_uuid => format!("urn:uuid:{}", root.to_ascii_lowercase()),
        None => format!("urn:oid:{root}"),
    }
}

const V3: &str = "urn:hl7-org:v3";

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name((V3, name)))
}

fn text_of(n: roxmltree::Node<'_, '_>) -> Option<String> {
    n.text()
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| !t.is_empty())
}

/// The patient's birth name, first given name, birth date (`YYYYMMDD`) and
/// sex code, as the header's patientRole carries them.
#[allow(clippy::type_complexity)]
fn patient_traits(
    role: roxmltree::Node<'_, '_>,
) -> (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    let patient = child(role, "patient");
    let name = patient.and_then(|p| child(p, "name"));
    let named = |tag: &str| {
        let all: Vec<_> = name
            .map(|n| n.children().filter(|c| c.has_tag_name((V3, tag))).collect())
            .unwrap_or_default();
        all.iter()
            .find(|c| c.attribute("qualifier") == Some("BR"))
            .or_else(|| all.iter().find(|c| c.attribute("qualifier").is_none()))
            .or(all.first())
            .and_then(|n| text_of(*n))
    };
    let birth_name = named("family");
    let given = named("given").and_then(|g| g.split_whitespace().next().map(str::to_owned));
    let birth_date = patient
        .and_then(|p| child(p, "birthTime"))
        .and_then(|b| b.attribute("value"))
        .and_then(|v| v.get(..8))
        .map(str::to_owned);
    let sex = patient
        .and_then(|p| child(p, "administrativeGenderCode"))
        .and_then(|g| g.attribute("code"))
        .map(str::to_owned);
    (birth_name, given, birth_date, sex)
}

/// The author's name, RPPS (from the ADELI/RPPS id) and organisation.
fn author_of(root: roxmltree::Node<'_, '_>) -> (String, Option<String>, Option<String>) {
    let assigned = child(root, "author").and_then(|a| child(a, "assignedAuthor"));
    let author_rpps = assigned
        .and_then(|a| child(a, "id"))
        .filter(|i| i.attribute("root") == Some("1.2.250.1.71.4.2.1"))
        .and_then(|i| i.attribute("extension"))
        .and_then(|e| e.strip_prefix('8'))
        .map(str::to_owned);
    let author = assigned
        .and_then(|a| child(a, "assignedPerson"))
        .and_then(|p| child(p, "name"))
        .map(|n| {
            n.children()
                .filter(|c| c.has_tag_name((V3, "given")) || c.has_tag_name((V3, "family")))
                .filter_map(text_of)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "auteur inconnu".into());
    let organisation = assigned
        .and_then(|a| child(a, "representedOrganization"))
        .and_then(|o| child(o, "name"))
        .and_then(text_of);
    (author, author_rpps, organisation)
}

/// A structured CDA's body as readable text: each section's title, then its
/// narrative, one paragraph per block (tables and lists flattened); DTDs
/// refused. For showing a document fetched from the DMP that has no PDF.
pub fn readable_text(xml: &[u8]) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(xml).map_err(|_| "le document n'est pas en UTF-8".to_owned())?;
    let doc = roxmltree::Document::parse_with_options(
        text,
        roxmltree::ParsingOptions {
            allow_dtd: false,
            ..Default::default()
        },
    )
    .map_err(|e| format!("XML illisible : {e}"))?;
    let mut out = Vec::new();
    for section in doc
        .descendants()
        .filter(|n| n.has_tag_name((V3, "section")))
    {
        if let Some(t) = child(section, "title").and_then(|t| t.text()) {
            out.push(t.trim().to_uppercase());
        }
        if let Some(body) = child(section, "text") {
            for block in body.children().filter(|n| n.is_element()) {
                let words: Vec<&str> = block
                    .descendants()
                    .filter_map(|n| n.text())
                    .flat_map(str::split_whitespace)
                    .collect();
                if !words.is_empty() {
                    out.push(words.join(" "));
                }
            }
            let direct: Vec<&str> = body
                .children()
                .filter(|n| n.is_text())
                .filter_map(|n| n.text())
                .flat_map(str::split_whitespace)
                .collect();
            if !direct.is_empty() {
                out.push(direct.join(" "));
            }
        }
    }
    if out.is_empty() {
        return Err("aucun texte lisible dans ce document".into());
    }
    Ok(out)
}

/// Reads the header of a CDA R2 document; an error in French when it is not one.
pub fn read_header(xml: &[u8]) -> Result<CdaHeader, String> {
    let text = std::str::from_utf8(xml).map_err(|_| "le document n'est pas en UTF-8".to_owned())?;
    let doc = roxmltree::Document::parse_with_options(
        text,
        roxmltree::ParsingOptions {
            allow_dtd: false,
            ..Default::default()
        },
    )
    .map_err(|e| format!("XML illisible : {e}"))?;
    let root = doc.root_element();
    if !root.has_tag_name((V3, "ClinicalDocument")) {
        return Err("ce n'est pas un document CDA (ClinicalDocument attendu)".into());
    }
    let id = child(root, "id").ok_or("identifiant du document absent (id)")?;
    let id_root = id
        .attribute("root")
        .ok_or("identifiant du document sans root")?;
    let unique_id = uid(id_root, id.attribute("extension"));
    let code = child(root, "code");
    let type_code = (
        code.and_then(|c| c.attribute("code"))
            .unwrap_or("")
            .to_owned(),
        code.and_then(|c| c.attribute("displayName"))
            .unwrap_or("")
            .to_owned(),
    );
    let title = child(root, "title")
        .and_then(text_of)
        .unwrap_or_else(|| type_code.1.clone());
    let role = child(root, "recordTarget")
        .and_then(|r| child(r, "patientRole"))
        .ok_or("patient absent (recordTarget/patientRole)")?;
    let ins = role
        .children()
        .filter(|c| c.has_tag_name((V3, "id")))
        .find_map(|i| {
            let oid = i.attribute("root")?;
            domain::ins::InsKind::from_oid(oid)?;
            Some((i.attribute("extension")?.to_owned(), oid.to_owned()))
        });
    let (birth_name, given, birth_date, sex) = patient_traits(role);
    let (author, author_rpps, organisation) = author_of(root);
    let replaces = root
        .children()
        .filter(|c| c.has_tag_name((V3, "relatedDocument")))
        .find(|r| r.attribute("typeCode") == Some("RPLC"))
        .and_then(|r| child(r, "parentDocument"))
        .and_then(|p| child(p, "id"))
        .and_then(|i| Some(uid(i.attribute("root")?, i.attribute("extension"))));
    Ok(CdaHeader {
        replaces,
        unique_id,
        type_code,
        title,
        ins,
        birth_name,
        given,
        birth_date,
        sex,
        author,
        author_rpps,
        organisation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::identity::{IdentityStatus, Traits};

    fn patient(status: IdentityStatus) -> PatientRecord {
        PatientRecord {
            id: domain::PatientId::new(),
            territory: domain::TerritoryId::new(),
            ipp: "000000001".into(),
            traits: Traits {
                birth_name: "LAMBERT".into(),
                birth_given_names: vec!["Monique".into(), "Jeanne".into()],
                birth_date: jiff::civil::date(1961, 4, 12),
                sex: Sex::Female,
                birthplace_code: Some("45234".into()),
                used_name: Some("DURAND & FILS <test>".into()),
                used_given_name: None,
            },
            ins: Some(domain::Ins::parse(domain::InsKind::Nir, "279035121518989").unwrap()),
            status,
            merged_into: None,
            version: 1,
            updated_at_ms: 0,
        }
    }

    fn input<'a>(p: &'a PatientRecord, pdf: &'a [u8]) -> CdaInput<'a> {
        CdaInput {
            id: "1.2.250.1.999.1.1",
            set_id: "1.2.250.1.999.1",
            version: 1,
            kind: Kind::LettreLiaison,
            title: "Lettre de liaison — sortie",
            effective: "20261123101500+0100",
            patient: p,
            ipp_oid: "1.2.250.1.999.42.1",
            author: Professional {
                rpps: Some("10000012345"),
                given: "Claire",
                family: "Martin",
            },
            establishment: ("450000013", "Clinique Saint-Roch"),
            encounter: Some(("20261120080000+0100", Some("20261123100000+0100"))),
            confidentiality: "N",
            pdf,
            replaces: None,
        }
    }

    fn xmllint(xml: &str) -> (bool, String) {
        let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/cda/schema/CDA_extended.xsd");
        let dir = std::env::temp_dir().join(format!("parcours-cda-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = dir.join(format!("doc-{n}.xml"));
        std::fs::write(&file, xml).unwrap();
        let out = std::process::Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&schema)
            .arg(&file)
            .output()
            .expect("xmllint (Debian libxml2-utils) is installed by scripts/test");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn a_level_one_document_validates_against_the_cda_schema() {
        let p = patient(IdentityStatus::Qualified);
        let xml = build(&input(&p, b"%PDF-1.4 test"));
        let (ok, why) = xmllint(&xml);
        assert!(ok, "{why}\n{xml}");
        assert!(xml.contains("<id root=\"1.2.250.1.213.1.4.8\" extension=\"279035121518989\"/>"));
        assert!(xml.contains("<code code=\"11490-0\""));
        assert!(
            xml.contains("extension=\"810000012345\""),
            "RPPS with its 8 prefix"
        );
        assert!(
            xml.contains("extension=\"1450000013\""),
            "FINESS with its 1 prefix"
        );
        assert!(xml.contains("DURAND &amp; FILS &lt;test&gt;"));
        assert!(xml.contains(&base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 test")));
        // Without a stay, the encounter is the document's time.
        let mut i = input(&p, b"%PDF");
        i.encounter = None;
        let (ok, why) = xmllint(&build(&i));
        assert!(ok, "{why}");
    }

    #[test]
    fn the_ins_is_left_out_unless_the_identity_is_qualified() {
        let p = patient(IdentityStatus::Validated);
        let xml = build(&input(&p, b"%PDF"));
        assert!(!xml.contains("1.2.250.1.213.1.4.8"), "{xml}");
        assert!(
            xml.contains("extension=\"000000001\""),
            "the IPP still identifies"
        );
        let (ok, why) = xmllint(&xml);
        assert!(ok, "{why}");
    }

    #[test]
    fn the_ans_level_one_sample_validates_with_the_same_check() {
        // The check itself: the ANS sample passes, a broken document does not.
        let sample = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/fixtures/cda/examples/DOC_NON_STRUCTURE_CDA-R2-N1.xml"),
        )
        .unwrap();
        assert!(xmllint(&sample).0);
        assert!(
            !xmllint(
                "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>x</title></ClinicalDocument>"
            )
            .0
        );
    }

    #[test]
    fn the_header_of_an_ans_sample_names_its_patient_and_author() {
        let xml =
            std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
                "../../../shared/fixtures/cda/examples/BIO-CR-BIO_2021.01_CDA-R2-Niveau-1.xml",
            ))
            .unwrap();
        let h = read_header(&xml).unwrap();
        assert_eq!(
            h.ins,
            Some((
                "279035121518989".to_owned(),
                "1.2.250.1.213.1.4.10".to_owned()
            ))
        );
        assert_eq!(h.birth_name.as_deref(), Some("PAT-TROIS"));
        assert_eq!(h.given.as_deref(), Some("DOMINIQUE"));
        assert_eq!(h.birth_date.as_deref(), Some("19790328"));
        assert_eq!(h.sex.as_deref(), Some("F"));
        assert_eq!(h.type_code.0, "11502-2");
        assert_eq!(h.author_rpps.as_deref(), Some("01234534765"));
        assert_eq!(h.unique_id, "urn:oid:1.2.250.1.213.1.1.1.55.2021.3.1");
        assert!(!h.title.is_empty());
    }

    #[test]
    fn our_own_document_reads_back() {
        let p = patient(IdentityStatus::Qualified);
        let pdf = crate::pdf::text_document("t", &["x".to_owned()]);
        let xml = build(&input(&p, &pdf));
        let h = read_header(xml.as_bytes()).unwrap();
        assert_eq!(h.unique_id, "urn:oid:1.2.250.1.999.1.1");
        assert_eq!(
            h.ins,
            Some((
                "279035121518989".to_owned(),
                domain::ins::OID_INS_NIR.to_owned()
            ))
        );
        assert_eq!(h.type_code.0, input(&p, &pdf).kind.loinc().0);
        // A UUID root reads as urn:uuid (as Parcours stores its own documents).
        let uuid = "0f3a1c2e-1111-4222-8333-444455556666";
        let mut i = input(&p, &pdf);
        i.id = uuid;
        let h = read_header(build(&i).as_bytes()).unwrap();
        assert_eq!(h.unique_id, format!("urn:uuid:{uuid}"));
        // Without a qualified identity there is no INS to read, the traits remain.
        let p = patient(IdentityStatus::Provisional);
        let h = read_header(build(&input(&p, &pdf)).as_bytes()).unwrap();
        assert_eq!(h.ins, None);
        assert_eq!(h.birth_name.as_deref(), Some(p.traits.birth_name.as_str()));
        assert_eq!(
            h.birth_date.as_deref(),
            Some(p.traits.birth_date.strftime("%Y%m%d").to_string().as_str())
        );
    }

    #[test]
    fn what_is_not_a_cda_header_is_refused_with_why() {
        assert!(read_header(b"\xff\xfe").unwrap_err().contains("UTF-8"));
        assert!(
            read_header(b"<a>")
                .unwrap_err()
                .starts_with("XML illisible")
        );
        assert_eq!(
            read_header(b"<html/>").unwrap_err(),
            "ce n'est pas un document CDA (ClinicalDocument attendu)"
        );
        assert_eq!(
            read_header(
                b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><id root=\"1.2\"/></ClinicalDocument>"
            )
            .unwrap_err(),
            "patient absent (recordTarget/patientRole)"
        );
        // An entity bomb is not expanded: DTDs are refused.
        let bomb = b"<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY a \"aaaa\">]><ClinicalDocument xmlns=\"urn:hl7-org:v3\">&a;</ClinicalDocument>";
        assert!(read_header(bomb).unwrap_err().starts_with("XML illisible"));
    }

    #[test]
    fn a_new_version_names_the_one_it_replaces_and_still_validates() {
        let p = patient(IdentityStatus::Qualified);
        let mut i = input(&p, b"%PDF-1.4 v2");
        i.version = 2;
        i.id = "0f3a1c2e-2222-4222-8333-444455556666";
        i.replaces = Some(("0f3a1c2e-1111-4222-8333-444455556666", "1.2.250.1.999.1", 1));
        let xml = build(&i);
        let (ok, why) = xmllint(&xml);
        assert!(ok, "{why}\n{xml}");
        assert!(xml.contains(
            "<relatedDocument typeCode=\"RPLC\"><parentDocument><id root=\"0f3a1c2e-1111-4222-8333-444455556666\"/><setId root=\"1.2.250.1.999.1\"/><versionNumber value=\"1\"/></parentDocument></relatedDocument>"
        ));
        assert!(xml.contains("<versionNumber value=\"2\"/>"));
        // Read back: what it replaces, spelled as its unique id.
        assert_eq!(
            read_header(xml.as_bytes()).unwrap().replaces.as_deref(),
            Some("urn:uuid:0f3a1c2e-1111-4222-8333-444455556666")
        );
        assert_eq!(
            read_header(build(&input(&p, b"%PDF")).as_bytes())
                .unwrap()
                .replaces,
            None
        );
    }

    #[test]
    fn a_structured_letter_reads_as_text_and_a_pdf_one_has_none() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/cda/examples");
        let ldl = std::fs::read(dir.join("LDL-SES_2022.01.xml")).unwrap();
        let lines = readable_text(&ldl).unwrap();
        assert!(lines.len() > 5, "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l == &l.to_uppercase() && !l.is_empty()),
            "section titles"
        );
        let pdf_only = std::fs::read(dir.join("DOC_NON_STRUCTURE_CDA-R2-N1.xml")).unwrap();
        assert!(
            readable_text(&pdf_only).is_err(),
            "a level-1 PDF document has no sections"
        );
        assert!(readable_text(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>").is_err());
    }
}
