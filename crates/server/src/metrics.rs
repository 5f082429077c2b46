//! The counters exposed on `/metrics` (Prometheus text format).

use std::sync::atomic::{AtomicU64, Ordering};

/// Prometheus counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Responses by class.
    pub responses_2xx: AtomicU64,
    /// Client errors.
    pub responses_4xx: AtomicU64,
    /// Server errors.
    pub responses_5xx: AtomicU64,
    /// Successful logins.
    pub logins_ok: AtomicU64,
    /// Failed logins.
    pub logins_failed: AtomicU64,
}

impl Metrics {
    /// Counts a response status.
    pub fn count_status(&self, status: u16) {
        let c = match status {
            500.. => &self.responses_5xx,
            400..=499 => &self.responses_4xx,
            _ => &self.responses_2xx,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "# TYPE parcours_http_responses_total counter\n\
             parcours_http_responses_total{{class=\"2xx\"}} {}\n\
             parcours_http_responses_total{{class=\"4xx\"}} {}\n\
             parcours_http_responses_total{{class=\"5xx\"}} {}\n\
             # TYPE parcours_logins_total counter\n\
             parcours_logins_total{{outcome=\"success\"}} {}\n\
             parcours_logins_total{{outcome=\"failure\"}} {}\n",
            g(&self.responses_2xx),
            g(&self.responses_4xx),
            g(&self.responses_5xx),
            g(&self.logins_ok),
            g(&self.logins_failed),
        )
    }
}
