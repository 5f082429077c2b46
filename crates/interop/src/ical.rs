//! iCalendar (RFC 5545) for appointment confirmations: one VEVENT, times in UTC,
//! text escaped, lines folded at 75 octets, CRLF line ends. A cancellation is the
//! same event with `METHOD:CANCEL` and `STATUS:CANCELLED`.

/// One event.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Stable unique id (the appointment's).
    pub uid: &'a str,
    /// Start (Unix ms).
    pub start_ms: i64,
    /// End (Unix ms).
    pub end_ms: i64,
    /// When this version was written (Unix ms).
    pub stamp_ms: i64,
    /// Title.
    pub summary: &'a str,
    /// Where (an address, or "Téléconsultation").
    pub location: &'a str,
    /// Details.
    pub description: &'a str,
    /// Cancelled.
    pub cancelled: bool,
}

fn utc(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default()
}

fn text(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace("\r\n", "\\n")
        .replace('\n', "\\n")
}

/// Folds a content line at 75 octets (continuations start with a space), never
/// inside a UTF-8 character.
fn fold(line: &str) -> String {
    let mut out = String::new();
    let mut len = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if len + n > 75 {
            out.push_str("\r\n ");
            len = 1;
        }
        out.push(c);
        len += n;
    }
    out
}

/// The calendar text.
pub fn calendar(e: &Event<'_>) -> String {
    let lines = [
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Parcours//Rendez-vous//FR".to_owned(),
        format!("METHOD:{}", if e.cancelled { "CANCEL" } else { "PUBLISH" }),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}", text(e.uid)),
        format!("DTSTAMP:{}", utc(e.stamp_ms)),
        format!("DTSTART:{}", utc(e.start_ms)),
        format!("DTEND:{}", utc(e.end_ms)),
        format!("SUMMARY:{}", text(e.summary)),
        format!("LOCATION:{}", text(e.location)),
        format!("DESCRIPTION:{}", text(e.description)),
        format!(
            "STATUS:{}",
            if e.cancelled {
                "CANCELLED"
            } else {
                "CONFIRMED"
            }
        ),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ];
    let mut out = String::new();
    for l in lines {
        out.push_str(&fold(&l));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_escaped_folded_and_in_utc() {
        let e = Event {
            uid: "a1",
            start_ms: 1_795_420_800_000,
            end_ms: 1_795_422_000_000,
            stamp_ms: 1_795_000_000_000,
            summary: "Rendez-vous avec Dr Martin, oncologie; téléconsultation",
            location: "Téléconsultation",
            description: &"é".repeat(60),
            cancelled: false,
        };
        let c = calendar(&e);
        assert!(c.starts_with("BEGIN:VCALENDAR\r\n") && c.ends_with("END:VCALENDAR\r\n"));
        assert!(c.contains("DTSTART:20261123T080000Z\r\n"), "{c}");
        assert!(c.contains("SUMMARY:Rendez-vous avec Dr Martin\\, oncologie\\; téléconsultation"));
        assert!(c.split("\r\n").all(|l| l.len() <= 75), "folded");
        assert!(
            c.contains("\r\n é"),
            "continuation lines start with a space"
        );
        let cancel = calendar(&Event {
            cancelled: true,
            ..e
        });
        assert!(cancel.contains("METHOD:CANCEL") && cancel.contains("STATUS:CANCELLED"));
    }
}
