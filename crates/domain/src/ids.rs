//! Identifier newtypes. Every entity id is a UUIDv7 (time-ordered, so indexes stay
//! compact); a newtype per entity keeps a patient id from being passed as a user id.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// An identifier text that is not a valid UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("identifiant invalide: {0:?}")]
pub struct BadId(pub String);

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (v7) identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// Wraps an existing UUID (read from storage).
            pub fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }
            /// The UUID inside.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = BadId;
            fn from_str(s: &str) -> Result<Self, BadId> {
                Uuid::parse_str(s).map(Self).map_err(|_| BadId(s.chars().take(64).collect()))
            }
        }
    };
}

id_type!(
    /// A territory: an identity domain (a GHT or a region) that shares one IPP space.
    TerritoryId
);
id_type!(
    /// An establishment (clinic, hospital), inside one territory.
    EstablishmentId
);
id_type!(
    /// A care unit inside an establishment.
    UnitId
);
id_type!(
    /// A person who logs in: a professional or a patient's portal account.
    UserId
);
id_type!(
    /// A patient identity record, inside one identity domain.
    PatientId
);
id_type!(
    /// A stay (venue) in an establishment.
    EncounterId
);
id_type!(
    /// A machine client of the API (OAuth2 client credentials).
    ApiClientId
);
id_type!(
    /// An orientation request (SSR, HAD) sent to other establishments.
    OrientationId
);
id_type!(
    /// A remote-monitoring alert.
    AlertId
);
id_type!(
    /// An enrolment of a patient in a remote-monitoring programme.
    EnrolmentId
);
id_type!(
    /// An appointment (and, once held by video, its consultation).
    AppointmentId
);
id_type!(
    /// A clinical document (one version of it).
    DocumentId
);

id_type!(
    /// A FHIR Subscription of an API client.
    SubscriptionId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = PatientId::new();
        let back: PatientId = id.to_string().parse().unwrap();
        assert_eq!(id, back);
    }

    #[test]
    fn bad_id_is_refused() {
        assert_eq!("nope".parse::<UserId>(), Err(BadId("nope".into())));
    }

    #[test]
    fn ids_are_time_ordered() {
        let a = UserId::new();
        let b = UserId::new();
        assert!(a < b);
    }
}
