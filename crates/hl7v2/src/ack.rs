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

/// Builds the ACK for `original` (or for an unreadable message, with `None`).
/// `control_id` is the ACK's own MSH-10; `timestamp` its MSH-7 (`YYYYMMDDHHMMSS`).
pub fn build(
    original: Option<&Message>,
    code: AckCode,
    errors: &[AckError],
    control_id: &str,
    timestamp: &str,
) -> String {
    let seps = Separators::default();
    let raw = |p: &str| original.and_then(|m| m.raw(p).ok().flatten()).unwrap_or("");
    let esc = |t: &str| escape::encode(t, &seps).into_owned();
    let event = raw("MSH-9.2");
    let version = original
        .and_then(|m| m.segment("MSH", 1))
        .and_then(|s| s.field(12))
        .map(|f| f.raw())
        .unwrap_or("");
    let version = if version.is_empty() { "2.5" } else { version };
    let processing = raw("MSH-11");
    let processing = if processing.is_empty() {
        "P"
    } else {
        processing
    };
    let mut out = format!(
        "MSH|^~\\&|{}|{}|{}|{}|{}||ACK^{}^ACK|{}|{}|{}|||||UNICODE UTF-8\r",
        raw("MSH-5"),
        raw("MSH-6"),
        raw("MSH-3"),
        raw("MSH-4"),
        esc(timestamp),
        esc(event),
        esc(control_id),
        processing,
        version
    );
    out.push_str(&format!("MSA|{}|{}", code.as_str(), raw("MSH-10")));
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
        let ack = build(Some(&m), AckCode::Accept, &[], "ACK1", "20240306111200");
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
        let ack = build(Some(&m), AckCode::Error, &[err], "ACK2", "20240306111200");
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
        let ack = build(
            None,
            AckCode::Reject,
            &[AckError {
                location: None,
                code: 207,
                message: "illisible".into(),
                severity: Severity::Error,
            }],
            "A3",
            "20240101000000",
        );
        let back = Message::parse(ack.as_bytes()).unwrap();
        assert_eq!(back.get("MSA-1").unwrap().as_deref(), Some("AR"));
        assert_eq!(back.get("MSA-2").unwrap(), None);
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
