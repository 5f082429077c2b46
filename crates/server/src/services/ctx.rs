//! What a use case may touch: the store, the one clock, the configuration, the
//! live events and rooms, and the outside services it calls (payment, mail,
//! the HL7 intake writer). Narrower than the application state: no limiter,
//! no metrics, no sessions, no connection state.

use std::sync::RwLock;

use domain::Clock;
use store::Store;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::live::{Live, LiveEvent};

/// Known HL7 senders: (MSH-3, MSH-4) → the declared sender and when it was
/// read (Unix ms, the application's clock).
pub type SenderCache = std::collections::HashMap<(String, String), (store::hl7::Hl7Sender, i64)>;

/// The context every service takes (cheap to copy: references only).
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// Persistence.
    pub store: &'a Store,
    /// The one clock.
    pub clock: &'a dyn Clock,
    /// Configuration.
    pub config: &'a Config,
    /// Live events that open pages refresh on, the consultation rooms and
    /// session ends (on every node).
    pub live: &'a Live,
    /// Known HL7 senders.
    pub senders: &'a RwLock<SenderCache>,
    /// The HL7 intake writer (group commit), when the application runs one.
    pub ingest: Option<&'a mpsc::Sender<crate::ingest::Job>>,
    /// The online payment provider, when configured.
    pub payment: Option<&'a crate::payment::Provider>,
    /// The SMTP relay, when configured.
    pub mailer: Option<&'a crate::mail::Mailer>,
    /// The counters exposed on `/metrics`.
    pub metrics: &'a crate::metrics::Metrics,
    /// The MHD client's bearer tokens (per token endpoint and client).
    pub mhd_tokens: &'a tokio::sync::Mutex<crate::state::MhdTokens>,
    /// The FHIR subscriptions that are on, as last read.
    pub subscriptions: &'a crate::services::subscriptions::Cache,
}

impl Ctx<'_> {
    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now().as_millisecond()
    }

    /// Tells open pages that something changed (nobody listening is fine).
    pub fn publish(&self, event: LiveEvent) {
        self.live.publish(event);
    }
}
