//! What every handler shares: the store, the one clock, the configuration, the
//! login rate limiter and the metrics counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use domain::Clock;
use store::Store;

use crate::config::Config;
use crate::limiter::RateLimiter;

/// Known HL7 senders: (MSH-3, MSH-4) → the declared sender.
pub type SenderCache = std::collections::HashMap<(String, String), store::hl7::Hl7Sender>;

/// Something changed that open pages should show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// The alert queue of this establishment changed.
    Alerts(domain::EstablishmentId),
    /// A questionnaire response (its id) raised alerts for this establishment.
    NewAlerts(domain::EstablishmentId, String),
    /// The virtual waiting room of this practitioner changed.
    WaitingRoom(domain::UserId),
}

/// A message of a consultation room, relayed to the other participant.
#[derive(Debug, Clone)]
pub struct RoomMessage {
    /// Appointment id.
    pub room: String,
    /// `doctor` or `patient`.
    pub from: &'static str,
    /// The message (JSON text).
    pub text: String,
}

/// A session that ended before its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// Logged out: the session with this token hash.
    Session(String),
    /// Every session of this account (disabled).
    User(domain::UserId),
}

/// A patient in a virtual waiting room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    /// Since when they wait (Unix ms).
    pub since_ms: i64,
    /// Whether their page is connected now.
    pub connected: bool,
    /// Camera and microphone found working by the device check.
    pub camera: bool,
    /// Microphone.
    pub microphone: bool,
}

/// Shared application state (cheap to clone).
#[derive(Clone, Debug)]
pub struct AppState {
    /// Persistence.
    pub store: Store,
    /// The one clock.
    pub clock: Arc<dyn Clock>,
    /// Configuration.
    pub config: Arc<Config>,
    /// Login and token attempt limiter.
    pub limiter: Arc<RateLimiter>,
    /// Counters exposed on `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Known HL7 senders: (MSH-3, MSH-4) → the declared sender.
    pub senders: Arc<std::sync::RwLock<SenderCache>>,
    /// Live events (an establishment's alert queue changed): WebSocket clients
    /// listen and refresh. One node today; NATS would fan this out between nodes.
    pub events: tokio::sync::broadcast::Sender<LiveEvent>,
    /// The HL7 intake writer (group commit), when the application runs one.
    pub ingest: Option<tokio::sync::mpsc::Sender<crate::ingest::Job>>,
    /// Who waits in the virtual waiting rooms, by appointment id (one node; a
    /// shared store or NATS would carry it between nodes).
    pub presence: Arc<std::sync::Mutex<std::collections::HashMap<String, Presence>>>,
    /// Whether the doctor has opened each appointment's room, as a watch each
    /// waiting patient's connection listens to (only its own: ten thousand
    /// idle patients are not woken by each other's events).
    pub rooms:
        Arc<std::sync::Mutex<std::collections::HashMap<String, tokio::sync::watch::Sender<bool>>>>,
    /// Messages relayed between the two participants of each room: one
    /// channel per room, so one room's flood never makes another drop.
    pub room_channels: Arc<
        std::sync::Mutex<
            std::collections::HashMap<String, tokio::sync::broadcast::Sender<RoomMessage>>,
        >,
    >,
    /// Sessions that ended (logout, account disabled): open WebSockets of
    /// that session close at once.
    pub session_ends: tokio::sync::broadcast::Sender<SessionEnd>,
    /// The online payment provider, when configured.
    pub payment: Option<crate::payment::Provider>,
    /// The SMTP relay for patients' notices, when configured.
    pub mailer: Option<crate::mail::Mailer>,
    /// The MHD recipient's bearer token and until when to use it.
    pub mhd_token: Arc<tokio::sync::Mutex<Option<(String, std::time::Instant)>>>,
    /// The TLS client for `mllps://` destinations (ORU, SIU).
    pub mllp_client_tls: Option<Arc<rustls::ClientConfig>>,
}

impl AppState {
    /// State for tools that run the services without serving (replay, tests).
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: Config) -> AppState {
        let limiter = Arc::new(RateLimiter::new(config.login_attempts_per_minute, 60_000));
        AppState {
            store,
            clock,
            config: Arc::new(config),
            limiter,
            metrics: Arc::new(Metrics::default()),
            senders: Arc::default(),
            events: tokio::sync::broadcast::channel(256).0,
            ingest: None,
            presence: Arc::default(),
            rooms: Arc::default(),
            room_channels: Arc::default(),
            session_ends: tokio::sync::broadcast::channel(256).0,
            payment: None,
            mhd_token: Arc::default(),
            mailer: None,
            mllp_client_tls: None,
        }
    }

    /// Listens to whether the room of appointment `id` is open.
    pub fn room_signal(&self, id: &str) -> tokio::sync::watch::Receiver<bool> {
        let mut rooms = self
            .rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rooms
            .entry(id.to_owned())
            .or_insert_with(|| tokio::sync::watch::channel(false).0)
            .subscribe()
    }

    /// The message channel of the room of appointment `id` (made on first use).
    pub fn room_channel(&self, id: &str) -> tokio::sync::broadcast::Sender<RoomMessage> {
        let mut rooms = self
            .room_channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rooms
            .entry(id.to_owned())
            .or_insert_with(|| tokio::sync::broadcast::channel(64).0)
            .clone()
    }

    /// Sends `text` from `from` to the other participant of room `id`, if
    /// anyone listens.
    pub fn room_send(&self, id: &str, from: &'static str, text: String) {
        let sender = self
            .room_channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned();
        if let Some(s) = sender {
            let _ = s.send(RoomMessage {
                room: id.to_owned(),
                from,
                text,
            });
        }
    }

    /// Forgets room `id`'s channel once nobody listens any more.
    pub fn room_left(&self, id: &str) {
        let mut rooms = self
            .room_channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if rooms.get(id).is_some_and(|s| s.receiver_count() == 0) {
            rooms.remove(id);
        }
    }

    /// Whether the doctor has let the patient into room `id`.
    pub fn room_is_open(&self, id: &str) -> bool {
        self.rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .is_some_and(|s| *s.borrow())
    }

    /// Opens the room of appointment `id`: its waiting patient goes in.
    pub fn open_room(&self, id: &str) {
        let mut rooms = self
            .rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rooms
            .entry(id.to_owned())
            .or_insert_with(|| tokio::sync::watch::channel(false).0)
            .send_replace(true);
    }

    /// Forgets the room of appointment `id` (consultation closed).
    pub fn close_room(&self, id: &str) {
        let mut rooms = self
            .rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rooms.remove(id);
    }

    /// Forgets a room nobody waits in any more and that was never opened.
    pub fn forget_idle_room(&self, id: &str) {
        let mut rooms = self
            .rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if rooms
            .get(id)
            .is_some_and(|tx| tx.receiver_count() == 0 && !*tx.borrow())
        {
            rooms.remove(id);
        }
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now().as_millisecond()
    }
}

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
