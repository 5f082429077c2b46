//! Secure messaging in (MSSanté style): the documents an incoming mail
//! carries, read from its IHE XDM archive (`IHE_XDM.zip`, the documents beside
//! `METADATA.XML`) or from a CDA attached as it is. Pure: the mail's bytes in,
//! the CDA documents and what could not be used out.

use mail_parser::{MessageParser, MimeHeaders};

/// What an incoming mail brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMail {
    /// Its `Message-ID`, or a digest of its bytes when it has none.
    pub message_id: String,
    /// The sender's address.
    pub from: String,
    /// Subject (`XDM/1.0/DDM` when it follows the MSSanté convention).
    pub subject: String,
    /// The CDA documents found, in order.
    pub documents: Vec<Vec<u8>>,
    /// Attachments that could not be read, with why.
    pub problems: Vec<String>,
}

fn is_cda(bytes: &[u8]) -> bool {
    let head = bytes.get(..bytes.len().min(4096)).unwrap_or(bytes);
    String::from_utf8_lossy(head).contains("ClinicalDocument")
}

/// What stands for the Message-ID of a mail that has none (or cannot be
/// read): a digest of its bytes, the same each time it is read.
pub fn digest_id(raw: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    format!("sha1:{}", hex::encode(Sha1::digest(raw)))
}

/// Reads a mail (RFC 5322 bytes).
pub fn read_mail(raw: &[u8]) -> Result<IncomingMail, String> {
    let message = MessageParser::default()
        .parse(raw)
        .filter(|m| m.root_part().headers().iter().len() > 0)
        .ok_or_else(|| "message illisible (en-têtes absents)".to_owned())?;
    let message_id = message
        .message_id()
        .map(str::to_owned)
        .unwrap_or_else(|| digest_id(raw));
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or("")
        .to_owned();
    let subject = message.subject().unwrap_or("").to_owned();
    let mut documents = Vec::new();
    let mut problems = Vec::new();
    for part in message.attachments() {
        let name = part.attachment_name().unwrap_or("").to_owned();
        let ctype = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
            .unwrap_or_default()
            .to_ascii_lowercase();
        let lower = name.to_ascii_lowercase();
        let bytes = part.contents();
        if lower.ends_with(".zip") || ctype == "application/zip" {
            match crate::xdm::unzip(bytes) {
                Ok(files) => {
                    let found: Vec<_> = files
                        .into_iter()
                        .filter(|(n, d)| {
                            let n = n.to_ascii_uppercase();
                            n.ends_with(".XML") && !n.ends_with("METADATA.XML") && is_cda(d)
                        })
                        .map(|(_, d)| d)
                        .collect();
                    if found.is_empty() {
                        problems.push(format!("{name} : aucun document CDA dans l'archive"));
                    }
                    documents.extend(found);
                }
                Err(e) => problems.push(format!("{name} : {e}")),
            }
        } else if (lower.ends_with(".xml") || ctype.ends_with("xml")) && is_cda(bytes) {
            documents.push(bytes.to_vec());
        }
    }
    if documents.is_empty() && problems.is_empty() {
        problems.push("aucun document CDA joint (ni archive IHE_XDM.zip, ni fichier XML)".into());
    }
    Ok(IncomingMail {
        message_id,
        from,
        subject,
        documents,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A multipart mail with these attachments (name, type, bytes), base64.
    fn mail(message_id: Option<&str>, parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
        use base64::Engine as _;
        let mut m = String::from(
            "From: Dr Paul Bernard <p.bernard@chirurgien.mssante.fr>\r\nTo: secretariat@clinique.mssante.fr\r\nSubject: XDM/1.0/DDM\r\n",
        );
        if let Some(id) = message_id {
            m.push_str(&format!("Message-ID: <{id}>\r\n"));
        }
        m.push_str("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCompte rendu opératoire ci-joint.\r\n");
        for (name, ctype, bytes) in parts {
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            m.push_str(&format!("--b1\r\nContent-Type: {ctype}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"));
        }
        m.push_str("--b1--\r\n");
        m.into_bytes()
    }

    const CDA: &[u8] =
        b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><id root=\"1.2.3\"/></ClinicalDocument>";

    fn xdm() -> Vec<u8> {
        crate::xdm::zip(&crate::xdm::XdmDocument {
            unique_id: "1.2.3",
            submission_id: "urn:uuid:6b1f2a3c-aaaa-4bbb-8ccc-ddddeeeeffff",
            ins: None,
            type_code: ("34874-8", "CR opératoire"),
            class_code: ("11", "Synthèse"),
            title: "CR opératoire",
            created: "20261123101500",
            author: "Dr Paul Bernard",
            finess: "450000013",
            recipient: "secretariat@clinique.mssante.fr",
            cda: CDA,
        })
    }

    #[test]
    fn the_cda_comes_out_of_the_xdm_archive() {
        let m = read_mail(&mail(
            Some("abc@chirurgien.mssante.fr"),
            &[
                ("IHE_XDM.zip", "application/zip", &xdm()),
                ("cr.pdf", "application/pdf", b"%PDF-1.4"),
            ],
        ))
        .unwrap();
        assert_eq!(m.message_id, "abc@chirurgien.mssante.fr");
        assert_eq!(m.from, "p.bernard@chirurgien.mssante.fr");
        assert_eq!(m.subject, "XDM/1.0/DDM");
        assert_eq!(
            m.documents,
            vec![CDA.to_vec()],
            "the metadata is not a document"
        );
        assert!(m.problems.is_empty());
    }

    #[test]
    fn a_cda_attached_as_it_is_is_taken_too() {
        let m = read_mail(&mail(None, &[("cr.xml", "text/xml", CDA)])).unwrap();
        assert_eq!(m.documents, vec![CDA.to_vec()]);
        // No Message-ID: a digest of the bytes stands for it, the same each time.
        assert!(m.message_id.starts_with("sha1:"));
        let again = read_mail(&mail(None, &[("cr.xml", "text/xml", CDA)])).unwrap();
        assert_eq!(m.message_id, again.message_id);
    }

    #[test]
    fn what_cannot_be_used_is_said() {
        let m = read_mail(&mail(
            Some("x@y"),
            &[("note.txt", "text/plain", b"bonjour")],
        ))
        .unwrap();
        assert!(m.documents.is_empty());
        assert_eq!(
            m.problems,
            vec!["aucun document CDA joint (ni archive IHE_XDM.zip, ni fichier XML)".to_owned()]
        );
        let m = read_mail(&mail(
            Some("x@y"),
            &[("IHE_XDM.zip", "application/zip", b"PK pas une archive")],
        ))
        .unwrap();
        assert_eq!(
            m.problems,
            vec!["IHE_XDM.zip : ce n'est pas une archive ZIP".to_owned()]
        );
        // An XML that is not a CDA is no document.
        let m = read_mail(&mail(Some("x@y"), &[("a.xml", "text/xml", b"<facture/>")])).unwrap();
        assert!(m.documents.is_empty());
        assert!(read_mail(b"").is_err());
    }
}
