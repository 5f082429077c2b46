//! What every handler shares: the store, the one clock, the configuration, the
//! login rate limiter and the metrics counters.

use std::sync::Arc;

use domain::Clock;
use store::Store;

use crate::config::Config;
use crate::limiter::RateLimiter;
pub use crate::live::{Live, LiveEvent, RoomMessage, Rooms, SessionEnd};
pub use crate::metrics::Metrics;
pub use crate::services::hl7::SenderCache;

/// Shared application state (cheap to clone).
#[derive(Clone)]
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
    /// Live events, rooms and session ends: this node's connections listen,
    /// and with NATS every node's do.
    pub live: Arc<Live>,
    /// The HL7 intake writer (group commit), when the application runs one.
    pub ingest: Option<tokio::sync::mpsc::Sender<crate::ingest::Job>>,
    /// The OpenID Connect providers one may sign in with.
    pub oidc: Arc<crate::oidc::Providers>,
    /// The online payment provider, when configured.
    pub payment: Option<crate::payment::Provider>,
    /// The SMTP relay for patients' notices, when configured.
    pub mailer: Option<crate::mail::Mailer>,
    /// The SMS centre's session, when configured.
    pub sms: Option<crate::smpp::SmsClient>,
    /// The MHD recipients' bearer tokens and until when to use them, per
    /// (token endpoint, client id): each establishment may have its own.
    pub mhd_token: Arc<tokio::sync::Mutex<MhdTokens>>,
    /// The TLS client for `mllps://` destinations (ORU, SIU).
    pub mllp_client_tls: Option<Arc<rustls::ClientConfig>>,
    /// The FHIR subscriptions that are on, as last read (notifications match
    /// changes against them).
    pub subscriptions: Arc<crate::services::subscriptions::Cache>,
    /// How the outbox worker reads the resource a rest-hook notification
    /// carries (the FHIR API's reads, set by the application).
    pub notified_resource: Option<NotifiedResource>,
    /// Turns true when the node starts shutting down: every WebSocket tells
    /// its client to reconnect (close code 1012) and ends.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

/// Reads a resource as an API client would (policy, audit): the owner's actor,
/// its type and id.
pub type NotifiedResource = for<'a> fn(
    &'a AppState,
    &'a domain::policy::Actor,
    domain::subscription::Topic,
    &'a str,
) -> std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<serde_json::Value, crate::error::AppError>>
            + Send
            + 'a,
    >,
>;

/// This node's name: the configured one, else a random one (job runs and
/// NATS consumers name it).
pub fn node_name(config: &Config) -> String {
    config.node_id.clone().unwrap_or_else(|| {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("node-{}", id.get(..8).unwrap_or(&id))
    })
}

/// Bearer tokens by (token endpoint, client id), with their end of use.
pub type MhdTokens = std::collections::HashMap<(String, String), (String, std::time::Instant)>;

impl AppState {
    /// State for tools that run the services without serving (replay, tests).
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: Config) -> AppState {
        let limiter = Arc::new(RateLimiter::new(
            store.clone(),
            config.login_attempts_per_minute,
            60_000,
        ));
        let node = node_name(&config);
        AppState {
            store,
            clock,
            config: Arc::new(config),
            limiter,
            metrics: Arc::new(Metrics::default()),
            senders: Arc::default(),
            live: Arc::new(Live::local(node)),
            ingest: None,
            payment: None,
            oidc: Arc::default(),
            mhd_token: Arc::default(),
            mailer: None,
            sms: None,
            mllp_client_tls: None,
            subscriptions: Arc::default(),
            notified_resource: None,
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// Resolves when the node starts shutting down.
    pub fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// What the services may touch.
    pub fn ctx(&self) -> crate::services::ctx::Ctx<'_> {
        crate::services::ctx::Ctx {
            store: &self.store,
            clock: self.clock.as_ref(),
            config: &self.config,
            live: &self.live,
            senders: &self.senders,
            ingest: self.ingest.as_ref(),
            payment: self.payment.as_ref(),
            mailer: self.mailer.as_ref(),
            metrics: &self.metrics,
            mhd_tokens: &self.mhd_token,
            subscriptions: &self.subscriptions,
        }
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now().as_millisecond()
    }
}
