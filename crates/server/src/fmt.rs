//! How times are shown: in French time (Europe/Paris), for pages, messages
//! and documents alike. Used by the services and the routes, so it depends on
//! neither.

/// "23/11/2026 14:30" (French time).
pub fn paris_time(ms: i64) -> String {
    paris_format(ms, "%d/%m/%Y %H:%M")
}

/// "23/11/2026" (French time).
pub(crate) fn paris_date(ms: i64) -> String {
    paris_format(ms, "%d/%m/%Y")
}

/// `ms` in French time with a strftime `pattern` (UTC when the zone is unknown).
pub(crate) fn paris_format(ms: i64, pattern: &str) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.in_tz("Europe/Paris")
                .map(|z| z.strftime(pattern).to_string())
                .unwrap_or_else(|_| t.to_string())
        })
        .unwrap_or_default()
}

/// A time as an HL7 DTM (v2, and CDA's TS) in French time (`YYYYMMDDHHMMSS+ZZZZ`).
pub fn hl7_dtm(ms: i64) -> String {
    paris_format(ms, "%Y%m%d%H%M%S%z")
}

/// Now as an HL7 DTM in French time (`YYYYMMDDHHMMSS+ZZZZ`).
pub fn hl7_now(now: jiff::Timestamp) -> String {
    now.in_tz("Europe/Paris")
        .map(|z| z.strftime("%Y%m%d%H%M%S%z").to_string())
        .unwrap_or_else(|_| now.strftime("%Y%m%d%H%M%S+0000").to_string())
}

/// Today's date in French time (UTC when the zone is unknown).
pub(crate) fn paris_today(now: jiff::Timestamp) -> jiff::civil::Date {
    now.in_tz("Europe/Paris")
        .map(|z| z.date())
        .unwrap_or_else(|_| now.to_zoned(jiff::tz::TimeZone::UTC).date())
}

/// A FHIR date or dateTime as French shows it: "2026-11-30T10:00:00+01:00" →
/// "30/11/2026" (the text as it is when it is not one).
pub(crate) fn fhir_day(text: &str) -> String {
    match (text.get(0..4), text.get(5..7), text.get(8..10)) {
        (Some(y), Some(m), Some(d)) => format!("{d}/{m}/{y}"),
        _ => text.to_owned(),
    }
}

/// A French local date and time as a form sends it (`2026-12-04T18:30`, an
/// `<input type="datetime-local">`), in Unix ms; `None` when unreadable.
pub(crate) fn parse_paris_local(s: &str) -> Option<i64> {
    let dt: jiff::civil::DateTime = s.trim().parse().ok()?;
    Some(dt.in_tz("Europe/Paris").ok()?.timestamp().as_millisecond())
}

/// `ms` as an `<input type="datetime-local">` value in French time.
pub(crate) fn paris_local(ms: i64) -> String {
    paris_format(ms, "%Y-%m-%dT%H:%M")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_french_local_time_reads_back_in_both_seasons() {
        // 4 December 2026 18:30 in Paris is 17:30 UTC; 1 July 18:30 is 16:30 UTC.
        let winter = parse_paris_local("2026-12-04T18:30").unwrap();
        assert_eq!(winter, 1_796_405_400_000);
        assert_eq!(paris_local(winter), "2026-12-04T18:30");
        let summer = parse_paris_local("2026-07-01T18:30").unwrap();
        assert_eq!(paris_local(summer), "2026-07-01T18:30");
        assert_eq!(winter - summer, 156 * 24 * 3600 * 1000 + 3600 * 1000);
        assert_eq!(parse_paris_local("demain"), None);
        assert_eq!(parse_paris_local(""), None);
    }
}
