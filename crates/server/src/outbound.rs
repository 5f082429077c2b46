//! What leaves Parcours through the outbox: the topics, and why a delivery
//! did not happen. Shared by the services that enqueue and the senders
//! (`delivery`, `mail`) that deliver.

/// The outbox topic of ORU^R01 messages.
pub const ORU_TOPIC: &str = "hl7.oru";
/// The outbox topic of SIU messages (the clinic's agenda), sent like ORU.
pub const SIU_TOPIC: &str = "hl7.siu";
/// The outbox topic of notifications to patients (reminders). The default sender
/// only logs that a notification left (its id, never its text or recipient);
/// an SMS or mail sender plugs in here.
pub const NOTIFY_TOPIC: &str = "notify";
/// The outbox topic of MHD submissions (ITI-65).
pub const MHD_TOPIC: &str = "mhd";
/// The outbox topic of documents sent by secure messaging (XDM by mail).
pub const MSS_TOPIC: &str = "mss";

/// Why a delivery did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum DeliveryError {
    /// Worth retrying later.
    Transient(String),
    /// The receiver answered AE or AR: do not retry.
    Refused(String),
}
