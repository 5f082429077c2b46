//! Parcours domain: the rules of the platform as plain data and pure functions.
//!
//! This crate does no I/O: no SQL, no HTTP, no clock reading outside the [`clock`]
//! abstraction, no tokio. Adapters (store, interop, server) load data, call these
//! rules and persist or send what they decide. Types here are deliberately not
//! `Serialize`: each adapter owns its wire format.

pub mod audit;
pub mod beds;
pub mod clock;
pub mod consultation;
pub mod documents;
pub mod encounter;
pub mod identity;
pub mod ids;
pub mod ins;
pub mod monitoring;
pub mod org;
pub mod orientation;
pub mod policy;
pub mod schedule;

pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{ApiClientId, EncounterId, EstablishmentId, PatientId, TerritoryId, UnitId, UserId};
pub use ins::{Ins, InsError, InsKind};
