//! Parcours network adapters: the axum application with its web pages (French,
//! server-rendered), the FHIR R4 API, OAuth2 client credentials, health and
//! metrics. Handlers only extract input, resolve the actor and call the services
//! in [`services`], which apply the domain policy, call the store and audit.
//!
//! Not here: rules (domain), SQL (store), FHIR JSON shapes (interop).

pub mod addr;
pub mod app;
pub mod auth;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod error;
pub mod extract;
pub mod fmt;
pub mod ingest;
pub mod layout;
pub mod limiter;
pub mod live;
pub mod mail;
pub mod mailbox;
pub mod metrics;
pub mod mllp;
pub mod oidc;
pub mod orgfile;
pub mod outbound;
pub mod payment;
pub mod pem;
pub mod routes;
pub mod secrets;
pub mod services;
pub mod smpp;
pub mod snapshots;
pub mod state;
pub mod tls;

pub use app::Application;
pub use config::Config;
pub use state::AppState;
