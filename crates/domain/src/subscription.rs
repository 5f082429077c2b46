//! FHIR Subscriptions: what an API client may watch and how it is told. The
//! criteria name one watched type of the client's establishment, optionally
//! one patient's (`Encounter?patient=Patient/…`); nothing else is matched, so
//! a criteria Parcours cannot honour is refused instead of silently widened.

use std::fmt;

use crate::ids::{EstablishmentId, PatientId};

/// The resource types a subscription may watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Stays and movements (ADT), closed teleconsultations.
    Encounter,
    /// Documents filed in the record.
    DocumentReference,
    /// Monitoring alerts.
    Flag,
    /// The triage of monitoring alerts.
    Task,
}

impl Topic {
    /// Every watched type.
    pub const ALL: [Topic; 4] = [
        Topic::Encounter,
        Topic::DocumentReference,
        Topic::Flag,
        Topic::Task,
    ];

    /// The FHIR resource type.
    pub fn code(self) -> &'static str {
        match self {
            Topic::Encounter => "Encounter",
            Topic::DocumentReference => "DocumentReference",
            Topic::Flag => "Flag",
            Topic::Task => "Task",
        }
    }

    /// From the FHIR resource type.
    pub fn parse(s: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.code() == s)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// How notifications go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// An HTTP call to the client's endpoint, signed, through the outbox.
    RestHook,
    /// A `ping` on the client's open WebSocket bound to the subscription.
    WebSocket,
}

impl Channel {
    /// FHIR `Subscription.channel.type` code.
    pub fn code(self) -> &'static str {
        match self {
            Channel::RestHook => "rest-hook",
            Channel::WebSocket => "websocket",
        }
    }

    /// From the FHIR code.
    pub fn parse(s: &str) -> Option<Channel> {
        [Channel::RestHook, Channel::WebSocket]
            .into_iter()
            .find(|c| c.code() == s)
    }
}

/// A subscription's state (FHIR `Subscription.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Notifications go out.
    Active,
    /// Stopped by the client (or its end passed).
    Off,
    /// Deliveries fail (the last error is kept); still retried.
    Error,
}

impl Status {
    /// FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Off => "off",
            Status::Error => "error",
        }
    }

    /// From the FHIR code (`requested` is what a client asks: it starts active).
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "active" | "requested" => Some(Status::Active),
            "off" => Some(Status::Off),
            "error" => Some(Status::Error),
            _ => None,
        }
    }
}

/// What the criteria select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Criteria {
    /// The watched type.
    pub topic: Topic,
    /// Only this patient's, when set.
    pub patient: Option<PatientId>,
}

/// Why a criteria string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CriteriaError {
    /// Not one of the watched types.
    #[error(
        "type {0:?} non pris en charge pour un abonnement (Encounter, DocumentReference, Flag, Task)"
    )]
    Type(String),
    /// A parameter other than `patient`/`subject`.
    #[error("paramètre {0:?} non pris en charge dans les critères (seul patient=Patient/id l'est)")]
    Parameter(String),
    /// A patient reference that is not one.
    #[error("patient {0:?} : Patient/id attendu")]
    Patient(String),
}

impl Criteria {
    /// Reads `Type` or `Type?patient=Patient/id` (`subject=` too).
    pub fn parse(s: &str) -> Result<Criteria, CriteriaError> {
        let (ty, query) = s.trim().split_once('?').unwrap_or((s.trim(), ""));
        let topic = Topic::parse(ty).ok_or_else(|| CriteriaError::Type(clip(ty)))?;
        let mut patient = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if k != "patient" && k != "subject" {
                return Err(CriteriaError::Parameter(clip(k)));
            }
            let id = v.strip_prefix("Patient/").unwrap_or(v);
            patient = Some(
                id.parse::<PatientId>()
                    .map_err(|_| CriteriaError::Patient(clip(v)))?,
            );
        }
        Ok(Criteria { topic, patient })
    }

    /// Whether a change of `topic` on `patient` falls under these criteria.
    pub fn matches(&self, topic: Topic, patient: PatientId) -> bool {
        self.topic == topic && self.patient.is_none_or(|p| p == patient)
    }
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Something that changed and may be notified: a resource of a watched type,
/// whose patient and establishment it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its type.
    pub topic: Topic,
    /// Its FHIR id.
    pub id: String,
    /// Whose record.
    pub patient: PatientId,
    /// Where (a subscription sees its own establishment's changes only).
    pub establishment: EstablishmentId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_name_a_watched_type_and_at_most_one_patient() {
        let p = PatientId::new();
        assert_eq!(
            Criteria::parse("Encounter"),
            Ok(Criteria {
                topic: Topic::Encounter,
                patient: None
            })
        );
        for s in [
            format!("Flag?patient=Patient/{p}"),
            format!("Flag?subject={p}"),
        ] {
            assert_eq!(
                Criteria::parse(&s),
                Ok(Criteria {
                    topic: Topic::Flag,
                    patient: Some(p)
                })
            );
        }
        assert_eq!(
            Criteria::parse("Observation"),
            Err(CriteriaError::Type("Observation".into()))
        );
        assert_eq!(
            Criteria::parse("Task?status=requested"),
            Err(CriteriaError::Parameter("status".into()))
        );
        assert_eq!(
            Criteria::parse("Task?patient=Patient/nope"),
            Err(CriteriaError::Patient("Patient/nope".into()))
        );
        assert_eq!(Criteria::parse(""), Err(CriteriaError::Type("".into())));
    }

    #[test]
    fn a_change_matches_its_type_and_patient() {
        let (p, q) = (PatientId::new(), PatientId::new());
        let all = Criteria::parse("DocumentReference").unwrap();
        assert!(all.matches(Topic::DocumentReference, p));
        assert!(!all.matches(Topic::Encounter, p));
        let one = Criteria::parse(&format!("DocumentReference?patient={p}")).unwrap();
        assert!(one.matches(Topic::DocumentReference, p));
        assert!(!one.matches(Topic::DocumentReference, q));
    }

    #[test]
    fn codes_round_trip() {
        for t in Topic::ALL {
            assert_eq!(Topic::parse(t.code()), Some(t));
        }
        for c in [Channel::RestHook, Channel::WebSocket] {
            assert_eq!(Channel::parse(c.code()), Some(c));
        }
        assert_eq!(Channel::parse("email"), None);
        assert_eq!(Status::parse("requested"), Some(Status::Active));
        for s in [Status::Active, Status::Off, Status::Error] {
            assert_eq!(Status::parse(s.code()), Some(s));
        }
        assert_eq!(Status::parse("entered-in-error"), None);
    }
}
