//! Parcours domain: the rules of the platform as plain data and pure functions.
//!
//! This crate does no I/O: no SQL, no HTTP, no clock reading outside the [`clock`]
//! abstraction, no tokio. Adapters (store, interop, server) load data, call these
//! rules and persist or send what they decide. Types here are deliberately not
//! `Serialize`: each adapter owns its wire format.

pub mod audit;
pub mod beds;
pub mod billing;
pub mod calendar;
pub mod clock;
pub mod consultation;
pub mod demographics;
pub mod documents;
pub mod encounter;
pub mod identity;
pub mod ids;
pub mod ins;
pub mod monitoring;
pub mod notice;
pub mod org;
pub mod orientation;
pub mod policy;
pub mod schedule;
pub mod smart;
pub mod subscription;

pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{
    AlertId, ApiClientId, AppointmentId, DocumentId, EncounterId, EnrolmentId, EstablishmentId,
    OrientationId, PatientId, SubscriptionId, TerritoryId, UnitId, UserId,
};
pub use ins::{Ins, InsError, InsKind};

/// A change the rules refuse, whichever area's rules: what the store returns
/// (`StoreError::Rule`) when a rule checked in a transaction says no, so that
/// callers match one error type instead of a result inside a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A triage step of a monitoring alert.
    #[error(transparent)]
    Triage(#[from] monitoring::TriageError),
    /// A change of a unit's beds.
    #[error(transparent)]
    Beds(#[from] beds::BedError),
    /// A step of an orientation request.
    #[error(transparent)]
    Orientation(#[from] orientation::OrientationError),
}
