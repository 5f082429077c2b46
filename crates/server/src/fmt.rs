//! How times are shown: in French time (Europe/Paris), for pages, messages
//! and documents alike. Used by the services and the routes, so it depends on
//! neither.

/// "23/11/2026 14:30" (French time).
pub(crate) fn paris_time(ms: i64) -> String {
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
