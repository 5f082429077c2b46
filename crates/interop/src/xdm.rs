//! IHE XDM (cross-enterprise document media interchange) as MSSanté mails
//! carry it: a ZIP with `IHE_XDM/SUBSET01/` holding the document and its XDS
//! metadata (`METADATA.XML`), plus `INDEX.HTM` and `README.TXT`. Written
//! uncompressed (ZIP "stored"): a CDA with its PDF is already base-64 text.

use sha1::{Digest, Sha1};

use crate::cda::esc;

/// What the metadata says of the document.
#[derive(Debug, Clone)]
pub struct XdmDocument<'a> {
    /// The document's unique id (`urn:uuid:…` or an OID).
    pub unique_id: &'a str,
    /// Submission set unique id.
    pub submission_id: &'a str,
    /// Patient INS and its OID (qualified identities only).
    pub ins: Option<(&'a str, &'a str)>,
    /// LOINC type code and display.
    pub type_code: (&'a str, &'a str),
    /// TRE_A03 class code and display.
    pub class_code: (&'a str, &'a str),
    /// Title.
    pub title: &'a str,
    /// Creation time `YYYYMMDDHHMMSS`.
    pub created: &'a str,
    /// The author's name.
    pub author: &'a str,
    /// The sending establishment's FINESS.
    pub finess: &'a str,
    /// The recipient's address.
    pub recipient: &'a str,
    /// The CDA document.
    pub cda: &'a [u8],
}

fn slot(name: &str, value: &str) -> String {
    format!(
        "<rim:Slot name=\"{}\"><rim:ValueList><rim:Value>{}</rim:Value></rim:ValueList></rim:Slot>",
        esc(name),
        esc(value)
    )
}

fn classification(scheme: &str, object: &str, code: &str, display: &str, system: &str) -> String {
    format!(
        "<rim:Classification classificationScheme=\"{scheme}\" classifiedObject=\"{object}\" nodeRepresentation=\"{}\" id=\"{object}-{scheme}\">{}<rim:Name><rim:LocalizedString value=\"{}\"/></rim:Name></rim:Classification>",
        esc(code),
        slot("codingScheme", system),
        esc(display)
    )
}

/// The XDS metadata of one document in one submission set (ebRIM 3.0).
pub fn metadata(d: &XdmDocument<'_>) -> String {
    let hash = hex::encode(Sha1::digest(d.cda));
    let patient = d
        .ins
        .map(|(v, oid)| format!("{v}^^^&{oid}&ISO^NH"))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
    <lcm:SubmitObjectsRequest xmlns:lcm=\"urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0\" xmlns:rim=\"urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0\">\
    <rim:RegistryObjectList>\
    <rim:ExtrinsicObject id=\"Document01\" mimeType=\"text/xml\" objectType=\"urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1\">\
    {size}{hash}{uri}{created}{lang}\
    <rim:Name><rim:LocalizedString value=\"{title}\"/></rim:Name>\
    {class}{type}{format}\
    <rim:ExternalIdentifier identificationScheme=\"urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427\" value=\"{patient}\" id=\"Document01-pid\" registryObject=\"Document01\"><rim:Name><rim:LocalizedString value=\"XDSDocumentEntry.patientId\"/></rim:Name></rim:ExternalIdentifier>\
    <rim:ExternalIdentifier identificationScheme=\"urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab\" value=\"{unique}\" id=\"Document01-uid\" registryObject=\"Document01\"><rim:Name><rim:LocalizedString value=\"XDSDocumentEntry.uniqueId\"/></rim:Name></rim:ExternalIdentifier>\
    </rim:ExtrinsicObject>\
    <rim:RegistryPackage id=\"SubmissionSet01\">\
    {submitted}{recipient}\
    <rim:Classification classificationScheme=\"urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d\" classifiedObject=\"SubmissionSet01\" nodeRepresentation=\"\" id=\"SubmissionSet01-author\">{author}{institution}</rim:Classification>\
    <rim:ExternalIdentifier identificationScheme=\"urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8\" value=\"{submission}\" id=\"SubmissionSet01-uid\" registryObject=\"SubmissionSet01\"><rim:Name><rim:LocalizedString value=\"XDSSubmissionSet.uniqueId\"/></rim:Name></rim:ExternalIdentifier>\
    <rim:ExternalIdentifier identificationScheme=\"urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832\" value=\"1.2.250.1.71.4.2.2.1{finess}\" id=\"SubmissionSet01-src\" registryObject=\"SubmissionSet01\"><rim:Name><rim:LocalizedString value=\"XDSSubmissionSet.sourceId\"/></rim:Name></rim:ExternalIdentifier>\
    </rim:RegistryPackage>\
    <rim:Association associationType=\"urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember\" sourceObject=\"SubmissionSet01\" targetObject=\"Document01\" id=\"Association01\">{status}</rim:Association>\
    </rim:RegistryObjectList></lcm:SubmitObjectsRequest>\n",
        size = slot("size", &d.cda.len().to_string()),
        hash = slot("hash", &hash),
        uri = slot("URI", "DOCUMENT_01.XML"),
        created = slot("creationTime", d.created),
        lang = slot("languageCode", "fr-FR"),
        title = esc(d.title),
        class = classification(
            "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a",
            "Document01",
            d.class_code.0,
            d.class_code.1,
            "1.2.250.1.213.1.1.4.1"
        ),
        type = classification(
            "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983",
            "Document01",
            d.type_code.0,
            d.type_code.1,
            "2.16.840.1.113883.6.1"
        ),
        format = classification(
            "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d",
            "Document01",
            crate::cda::FORMAT_PDF,
            "Document à corps non structuré en PDF",
            "1.3.6.1.4.1.19376.1.2.3"
        ),
        patient = esc(&patient),
        unique = esc(d.unique_id),
        submitted = slot("submissionTime", d.created),
        recipient = slot("intendedRecipient", &format!("|^^^^^^^^^{}", d.recipient)),
        author = slot("authorPerson", d.author),
        institution = slot("authorInstitution", &format!("^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1{}", d.finess)),
        submission = esc(d.submission_id),
        finess = esc(d.finess),
        status = slot("SubmissionSetStatus", "Original"),
    )
}

/// The XDM ZIP.
pub fn zip(d: &XdmDocument<'_>) -> Vec<u8> {
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "README.TXT",
            format!(
                "Parcours — envoi IHE XDM\r\nDocument : {}\r\nDestinataire : {}\r\n",
                d.title, d.recipient
            )
            .into_bytes(),
        ),
        (
            "INDEX.HTM",
            format!(
                "<html><body><p><a href=\"IHE_XDM/SUBSET01/DOCUMENT_01.XML\">{}</a></p></body></html>",
                esc(d.title)
            )
            .into_bytes(),
        ),
        ("IHE_XDM/SUBSET01/METADATA.XML", metadata(d).into_bytes()),
        ("IHE_XDM/SUBSET01/DOCUMENT_01.XML", d.cda.to_vec()),
    ];
    stored_zip(&files)
}

/// A ZIP of `files`, stored (no compression), names in UTF-8.
fn stored_zip(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let le16 = |v: usize| u16::try_from(v).unwrap_or(u16::MAX).to_le_bytes();
    let le32 = |v: usize| u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes();
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = out.len();
        let sum = crc.checksum(data).to_le_bytes();
        // Local header: version 2.0, UTF-8 names, stored, a fixed date (1 Jan 2026).
        let common = |buf: &mut Vec<u8>| {
            buf.extend_from_slice(&[20, 0]);
            buf.extend_from_slice(&0x0800u16.to_le_bytes());
            buf.extend_from_slice(&[0, 0]);
            buf.extend_from_slice(&[0, 0]);
            buf.extend_from_slice(&(((2026 - 1980) << 9 | 1 << 5 | 1) as u16).to_le_bytes());
            buf.extend_from_slice(&sum);
            buf.extend_from_slice(&le32(data.len()));
            buf.extend_from_slice(&le32(data.len()));
            buf.extend_from_slice(&le16(name.len()));
            buf.extend_from_slice(&[0, 0]);
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 3]);
        common(&mut central);
        // Comment length, disk, internal and external attributes.
        central.extend_from_slice(&[0; 10]);
        central.extend_from_slice(&le32(offset));
        central.extend_from_slice(name.as_bytes());
    }
    let start = out.len();
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&le16(files.len()));
    out.extend_from_slice(&le16(files.len()));
    out.extend_from_slice(&le32(central.len()));
    out.extend_from_slice(&le32(start));
    out.extend_from_slice(&[0, 0]);
    out
}

/// The most an archive may hold once inflated (a guard against ZIP bombs).
pub const MAX_UNZIPPED: usize = 50 * 1024 * 1024;

/// Reads a ZIP archive (stored or deflated entries, as XDM senders write
/// them): each file's name and bytes, CRC checked; directories left out.
pub fn unzip(archive: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let u16_at = |at: usize| -> Result<usize, String> {
        archive
            .get(at..at + 2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(|b| usize::from(u16::from_le_bytes(b)))
            .ok_or_else(|| "archive ZIP tronquée".to_owned())
    };
    let u32_at = |at: usize| -> Result<usize, String> {
        archive
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u32::from_le_bytes(b) as usize)
            .ok_or_else(|| "archive ZIP tronquée".to_owned())
    };
    // The end of central directory record: 22 bytes plus a comment of up to 64 KiB.
    let floor = archive.len().saturating_sub(22 + 65_535);
    let end = (floor..=archive.len().saturating_sub(22))
        .rev()
        .find(|&i| archive.get(i..i + 4) == Some(&[0x50, 0x4b, 0x05, 0x06]))
        .ok_or_else(|| "ce n'est pas une archive ZIP".to_owned())?;
    let count = u16_at(end + 10)?;
    let mut at = u32_at(end + 16)?;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let mut files = Vec::new();
    let mut total = 0usize;
    for _ in 0..count {
        if u32_at(at)? != 0x0201_4b50 {
            return Err("répertoire central ZIP illisible".into());
        }
        let (method, sum) = (u16_at(at + 10)?, u32_at(at + 16)?);
        let (packed, size) = (u32_at(at + 20)?, u32_at(at + 24)?);
        let (name_len, extra, comment) = (u16_at(at + 28)?, u16_at(at + 30)?, u16_at(at + 32)?);
        let local = u32_at(at + 42)?;
        let name = archive
            .get(at + 46..at + 46 + name_len)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .ok_or_else(|| "nom de fichier ZIP tronqué".to_owned())?;
        at += 46 + name_len + extra + comment;
        if u32_at(local)? != 0x0403_4b50 {
            return Err(format!("{name} : en-tête local ZIP illisible"));
        }
        let start = local + 30 + u16_at(local + 26)? + u16_at(local + 28)?;
        let data = archive
            .get(start..start + packed)
            .ok_or_else(|| format!("{name} : données ZIP tronquées"))?;
        total = total.saturating_add(size);
        if total > MAX_UNZIPPED {
            return Err(format!(
                "archive trop volumineuse (plus de {MAX_UNZIPPED} octets)"
            ));
        }
        let bytes = match method {
            0 => data.to_vec(),
            8 => miniz_oxide::inflate::decompress_to_vec_with_limit(data, size)
                .map_err(|e| format!("{name} : données compressées illisibles ({e})"))?,
            m => {
                return Err(format!(
                    "{name} : méthode de compression {m} non prise en charge"
                ));
            }
        };
        if bytes.len() != size || crc.checksum(&bytes) as usize != sum {
            return Err(format!("{name} : somme de contrôle fausse"));
        }
        if !name.ends_with('/') {
            files.push((name, bytes));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> XdmDocument<'static> {
        XdmDocument {
            unique_id: "urn:uuid:0f3a1c2e-1111-4222-8333-444455556666",
            submission_id: "urn:uuid:6b1f2a3c-aaaa-4bbb-8ccc-ddddeeeeffff",
            ins: Some(("261044523410185", "1.2.250.1.213.1.4.8")),
            type_code: ("11490-0", "Lettre de liaison"),
            class_code: ("11", "Synthèse"),
            title: "Lettre de liaison & suites",
            created: "20261123101500",
            author: "Dr Claire Martin",
            finess: "450000013",
            recipient: "dr.generaliste@medecin.mssante.fr",
            cda: b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>",
        }
    }

    #[test]
    fn python_zipfile_reads_the_archive_and_its_checksums() {
        let z = zip(&doc());
        let dir = std::env::temp_dir().join(format!("parcours-xdm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("IHE_XDM.zip");
        std::fs::write(&f, &z).unwrap();
        // An independent reader: Python's zipfile, with its CRC check (testzip).
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg("import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print('\\n'.join(z.namelist())); print(z.read('IHE_XDM/SUBSET01/DOCUMENT_01.XML').decode())")
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            text.lines().take(4).collect::<Vec<_>>(),
            vec![
                "README.TXT",
                "INDEX.HTM",
                "IHE_XDM/SUBSET01/METADATA.XML",
                "IHE_XDM/SUBSET01/DOCUMENT_01.XML"
            ]
        );
        assert!(text.contains("<ClinicalDocument"));
    }

    #[test]
    fn the_metadata_is_well_formed_and_names_the_patient_and_document() {
        let m = metadata(&doc());
        assert!(m.contains("261044523410185^^^&amp;1.2.250.1.213.1.4.8&amp;ISO^NH"));
        assert!(m.contains("urn:uuid:0f3a1c2e-1111-4222-8333-444455556666"));
        assert!(m.contains("Lettre de liaison &amp; suites"));
        assert!(m.contains(&hex::encode(Sha1::digest(doc().cda))));
        // Well-formed XML (xmllint without a schema).
        let dir = std::env::temp_dir().join(format!("parcours-xdm-m-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("METADATA.XML");
        std::fs::write(&f, &m).unwrap();
        let out = std::process::Command::new("xmllint")
            .arg("--noout")
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A deflated archive written by Python's zipfile (with a directory entry
    /// and a data descriptor, as streaming writers do).
    fn python_deflated_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("parcours-unzip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut args = Vec::new();
        for (i, (name, data)) in files.iter().enumerate() {
            let f = dir.join(format!("f{i}"));
            std::fs::write(&f, data).unwrap();
            args.push(name.to_string());
            args.push(f.display().to_string());
        }
        let out_file = dir.join("out.zip");
        let status = std::process::Command::new("python3")
            .arg("-c")
            .arg("import sys, zipfile\nwith open(sys.argv[1], 'wb') as raw:\n  z = zipfile.ZipFile(raw, 'w', zipfile.ZIP_DEFLATED)\n  z.mkdir('IHE_XDM') if hasattr(z, 'mkdir') else None\n  a = sys.argv[2:]\n  for n, f in zip(a[::2], a[1::2]):\n    with z.open(n, 'w') as w: w.write(open(f, 'rb').read())\n  z.close()")
            .arg(&out_file)
            .args(&args)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(out_file).unwrap()
    }

    #[test]
    fn unzip_reads_back_our_archive() {
        let files = unzip(&zip(&doc())).unwrap();
        let names: Vec<_> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "README.TXT",
                "INDEX.HTM",
                "IHE_XDM/SUBSET01/METADATA.XML",
                "IHE_XDM/SUBSET01/DOCUMENT_01.XML"
            ]
        );
        assert_eq!(files[3].1, doc().cda);
    }

    #[test]
    fn unzip_inflates_what_python_deflated() {
        let cda = "<ClinicalDocument xmlns=\"urn:hl7-org:v3\">".to_owned()
            + &"répété ".repeat(2000)
            + "</ClinicalDocument>";
        let z = python_deflated_zip(&[
            ("IHE_XDM/SUBSET01/DOCUMENT_01.XML", cda.as_bytes()),
            ("README.TXT", b"lisez-moi"),
        ]);
        assert!(z.len() < cda.len() / 10, "the entry really is deflated");
        let files = unzip(&z).unwrap();
        let doc = files
            .iter()
            .find(|(n, _)| n == "IHE_XDM/SUBSET01/DOCUMENT_01.XML")
            .unwrap();
        assert_eq!(doc.1, cda.as_bytes());
        assert!(
            files.iter().all(|(n, _)| !n.ends_with('/')),
            "no directory entries"
        );
        assert!(
            files
                .iter()
                .any(|(n, d)| n == "README.TXT" && d == b"lisez-moi")
        );
    }

    #[test]
    fn unzip_refuses_what_is_not_a_sound_archive() {
        assert_eq!(
            unzip(b"%PDF-1.4 pas une archive").unwrap_err(),
            "ce n'est pas une archive ZIP"
        );
        let good = zip(&doc());
        // A flipped byte inside the document's data: the CRC says so.
        let mut bad = good.clone();
        let at = bad
            .windows(17)
            .position(|w| w == b"<ClinicalDocument")
            .unwrap();
        bad[at + 1] = b'X';
        assert_eq!(
            unzip(&bad).unwrap_err(),
            "IHE_XDM/SUBSET01/DOCUMENT_01.XML : somme de contrôle fausse"
        );
        // Cut in the middle of the central directory.
        let end = good.len() - 22;
        let mut cut = good[..end - 30].to_vec();
        cut.extend_from_slice(&good[end..]);
        assert!(unzip(&cut).is_err());
        // An unknown compression method (bzip2, 12).
        let mut bz = good.clone();
        let central = bz
            .windows(4)
            .position(|w| w == [0x50, 0x4b, 0x01, 0x02])
            .unwrap();
        bz[central + 10] = 12;
        assert_eq!(
            unzip(&bz).unwrap_err(),
            "README.TXT : méthode de compression 12 non prise en charge"
        );
    }
}
