//! Original-mode acknowledgements: `MSH` (sender and receiver swapped), `MSA`, and
//! one `ERR` per problem with its location (ERL), HL7 error code (table 0357) and
//! severity. AA: accepted; AE: content error; AR: rejected (unsupported type,
//! event, version, processing id, or unreadable).

use crate::escape;
use crate::message::{Message, Separators};

/// MSA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Application accept.
    Accept,
    /// Application error.
    Error,
    /// Application reject.
    Reject,
}

impl AckCode {
    /// `AA`, `AE` or `AR`.
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::Accept => "AA",
            AckCode::Error => "AE",
            AckCode::Reject => "AR",
        }
    }
}

/// ERR-4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// E.
    Error,
    /// W.
    Warning,
    /// I.
    Information,
}

/// ERR-2 (ERL): where the problem is. Numbers are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// Segment id (`PID`).
    pub segment: String,
    /// Which occurrence of the segment.
    pub sequence: usize,
    /// Field position.
    pub field: Option<usize>,
    /// Field repetition.
    pub repetition: Option<usize>,
    /// Component.
    pub component: Option<usize>,
    /// Sub-component.
    pub subcomponent: Option<usize>,
}

/// One problem to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckError {
    /// Where, if known.
    pub location: Option<Location>,
    /// HL7 table 0357 code (101 required field missing, 102 data type error, 200
    /// unsupported message type...).
    pub code: u16,
    /// Human-readable detail (ERR-8).
    pub message: String,
    /// Severity.
    pub severity: Severity,
}

/// The label of an HL7 table 0357 code.
pub fn code_text(code: u16) -> &'static str {
    match code {
        0 => "Message accepted",
        100 => "Segment sequence error",
        101 => "Required field missing",
        102 => "Data type error",
        103 => "Table value not found",
        200 => "Unsupported message type",
        201 => "Unsupported event code",
        202 => "Unsupported processing id",
        203 => "Unsupported version id",
        204 => "Unknown key identifier",
        205 => "Duplicate key identifier",
        206 => "Application record locked",
        _ => "Application internal error",
    }
}

fn opt(n: Option<usize>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

/// MSA-2 when the original control id cannot be read (MSA-2 is required).
pub const UNKNOWN_CONTROL_ID: &str = "INCONNU";

/// What the ACK header copies from the original (raw, already escaped).
#[derive(Debug, Default)]
struct Header<'a> {
    sending_app: &'a str,
    sending_facility: &'a str,
    receiving_app: &'a str,
    receiving_facility: &'a str,
    event: &'a str,
    control_id: &'a str,
    processing_id: &'a str,
    version: &'a str,
}

/// Builds the ACK for `original`. `control_id` is the ACK's own MSH-10;
/// `timestamp` its MSH-7 (`YYYYMMDDHHMMSS[+ZZZZ]`).
pub fn build(
    original: &Message,
    code: AckCode,
    errors: &[AckError],
    control_id: &str,
    timestamp: &str,
) -> String {
    let raw = |p: &str| original.raw(p).ok().flatten().unwrap_or("");
    let version = original
        .segment("MSH", 1)
        .and_then(|s| s.field(12))
        .map(|f| f.raw())
        // Echo a 2.x version (with its French extension); answer others in 2.5.
        .filter(|v| v.starts_with("2."))
        .unwrap_or("");
    let header = Header {
        sending_app: raw("MSH-3"),
        sending_facility: raw("MSH-4"),
        receiving_app: raw("MSH-5"),
        receiving_facility: raw("MSH-6"),
        event: raw("MSH-9.2"),
        control_id: raw("MSH-10"),
        processing_id: raw("MSH-11"),
        version,
    };
    build_with(&header, code, errors, control_id, timestamp)
}

/// Builds the ACK for bytes that do not parse: the header fields are read naively
/// from a first line that starts with `MSH` (MSA-2 needs the control id), else left
/// empty, with [`UNKNOWN_CONTROL_ID`] in MSA-2.
pub fn build_unreadable(
    raw: &[u8],
    code: AckCode,
    errors: &[AckError],
    control_id: &str,
    timestamp: &str,
) -> String {
    let line_end = raw
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(raw.len());
    let line = String::from_utf8_lossy(raw.get(..line_end).unwrap_or(&[])).into_owned();
    let seps = Separators::default();
    let fields: Vec<String> = match (line.get(..3), line.chars().nth(3)) {
        (Some("MSH"), Some(sep)) if !sep.is_alphanumeric() => line
            .split(sep)
            // The first component of each field, split before escaping.
            .map(|f| escape::encode(f.split('^').next().unwrap_or(""), &seps).into_owned())
            .collect(),
        _ => Vec::new(),
    };
    // Split index n is MSH-(n+1).
    let f = |msh: usize| fields.get(msh - 1).map(String::as_str).unwrap_or("");
    let header = Header {
        sending_app: f(3),
        sending_facility: f(4),
        receiving_app: f(5),
        receiving_facility: f(6),
        control_id: f(10),
        ..Header::default()
    };
    build_with(&header, code, errors, control_id, timestamp)
}

fn build_with(
    h: &Header<'_>,
    code: AckCode,
    errors: &[AckError],
    control_id: &str,
    timestamp: &str,
) -> String {
    let seps = Separators::default();
    let esc = |t: &str| escape::encode(t, &seps).into_owned();
    let or = |v: &'static str, x: &str| {
        if x.is_empty() {
            v.to_owned()
        } else {
            x.to_owned()
        }
    };
    let mut out = format!(
        "MSH|^~\\&|{}|{}|{}|{}|{}||ACK^{}^ACK|{}|{}|{}|||||UNICODE UTF-8\r",
        h.receiving_app,
        h.receiving_facility,
        h.sending_app,
        h.sending_facility,
        esc(timestamp),
        h.event,
        esc(control_id),
        or("P", h.processing_id),
        or("2.5", h.version),
    );
    out.push_str(&format!(
        "MSA|{}|{}",
        code.as_str(),
        or(UNKNOWN_CONTROL_ID, h.control_id)
    ));
    if let Some(first) = errors.first() {
        out.push_str(&format!("|{}", esc(&first.message)));
    }
    out.push('\r');
    for e in errors {
        let erl = e
            .location
            .as_ref()
            .map(|l| {
                format!(
                    "{}^{}^{}^{}^{}^{}",
                    esc(&l.segment),
                    l.sequence,
                    opt(l.field),
                    opt(l.repetition),
                    opt(l.component),
                    opt(l.subcomponent)
                )
                .trim_end_matches('^')
                .to_owned()
            })
            .unwrap_or_default();
        let severity = match e.severity {
            Severity::Error => "E",
            Severity::Warning => "W",
            Severity::Information => "I",
        };
        out.push_str(&format!(
            "ERR||{erl}|{}^{}^HL70357|{severity}||||{}\r",
            e.code,
            code_text(e.code),
            esc(&e.message)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADT: &[u8] = b"MSH|^~\\&|GAM|CHU-X|PARCOURS|GHT|20240306111154||ADT^A01^ADT_A01|3975|P|2.5^FRA^2.11|||||FRA|8859/15\rPID|1";

    #[test]
    fn accept() {
        let m = Message::parse(ADT).unwrap();
        let ack = build(&m, AckCode::Accept, &[], "ACK1", "20240306111200");
        assert_eq!(
            ack,
            "MSH|^~\\&|PARCOURS|GHT|GAM|CHU-X|20240306111200||ACK^A01^ACK|ACK1|P|2.5^FRA^2.11|||||UNICODE UTF-8\rMSA|AA|3975\r"
        );
        let back = Message::parse(ack.as_bytes()).unwrap();
        assert_eq!(back.get("MSA-2").unwrap().as_deref(), Some("3975"));
    }

    #[test]
    fn error_with_location_and_escaped_text() {
        let m = Message::parse(ADT).unwrap();
        let err = AckError {
            location: Some(Location {
                segment: "PID".into(),
                sequence: 1,
                field: Some(3),
                repetition: Some(2),
                component: Some(1),
                subcomponent: None,
            }),
            code: 102,
            message: "INS à clé fausse | refusée".into(),
            severity: Severity::Error,
        };
        let ack = build(&m, AckCode::Error, &[err], "ACK2", "20240306111200");
        let back = Message::parse(ack.as_bytes()).unwrap();
        assert_eq!(back.get("MSA-1").unwrap().as_deref(), Some("AE"));
        assert_eq!(back.get("ERR-2.1").unwrap().as_deref(), Some("PID"));
        assert_eq!(back.raw("ERR-2").unwrap(), Some("PID^1^3^2^1"));
        assert_eq!(back.get("ERR-2.3").unwrap().as_deref(), Some("3"));
        assert_eq!(back.get("ERR-2.4").unwrap().as_deref(), Some("2"));
        assert_eq!(back.get("ERR-3.1").unwrap().as_deref(), Some("102"));
        assert_eq!(back.get("ERR-3.3").unwrap().as_deref(), Some("HL70357"));
        assert_eq!(back.get("ERR-4").unwrap().as_deref(), Some("E"));
        assert_eq!(
            back.get("ERR-8").unwrap().as_deref(),
            Some("INS à clé fausse | refusée")
        );
        assert!(ack.contains("PID^1^3^2^1|"), "{ack}");
    }

    #[test]
    fn reject_without_a_readable_original() {
        let errors = [AckError {
            location: None,
            code: 207,
            message: "illisible".into(),
            severity: Severity::Error,
        }];
        let ack = build_unreadable(b"garbage", AckCode::Reject, &errors, "A3", "20240101000000");
        assert!(ack.contains("MSA|AR|INCONNU|illisible\r"), "{ack}");
        let ack = build_unreadable(
            b"MSH|^~|GAM|CHU^X|P|G|x||ADT^A01|ctl-9|P\rPID",
            AckCode::Reject,
            &errors,
            "A3",
            "20240101000000",
        );
        assert!(
            ack.starts_with("MSH|^~\\&|P|G|GAM|CHU|20240101000000||ACK^^ACK|A3|P|2.5|"),
            "{ack}"
        );
        assert!(ack.contains("MSA|AR|ctl-9|"), "{ack}");
        let back = Message::parse(ack.as_bytes()).unwrap();
        assert_eq!(back.get("MSA-1").unwrap().as_deref(), Some("AR"));
        assert_eq!(back.get("MSA-2").unwrap().as_deref(), Some("ctl-9"));
        assert_eq!(back.get("MSH-12").unwrap().as_deref(), Some("2.5"));
        assert_eq!(
            back.get("ERR-3.2").unwrap().as_deref(),
            Some("Application internal error")
        );
        for (code, text) in [
            (0, "Message accepted"),
            (101, "Required field missing"),
            (203, "Unsupported version id"),
        ] {
            assert_eq!(code_text(code), text);
        }
    }
}
