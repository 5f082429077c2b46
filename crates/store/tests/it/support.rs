//! A small world to test against: two territories, three establishments.

use domain::audit::AuditActor;
use domain::identity::{IdentityStatus, Sex, Traits};
use domain::{EstablishmentId, TerritoryId};
use store::Store;
use store::orgs::{Establishment, Territory};
use store::patients::NewPatient;

pub const NOW: i64 = 1_790_000_000_000;

pub struct World {
    pub t1: Territory,
    pub t2: Territory,
    pub e1: EstablishmentId,
    pub e2: EstablishmentId,
    pub e3: EstablishmentId,
}

pub async fn backends() -> Vec<(&'static str, Store)> {
    store::testing::both_backends(NOW)
        .await
        .expect("both backends (is PostgreSQL running on 127.0.0.1:5432?)")
}

pub async fn world(s: &Store) -> World {
    let t1 = Territory {
        id: TerritoryId::new(),
        name: "GHT Test".into(),
        oid: format!("1.2.250.1.999.{}", rand_suffix()),
    };
    let t2 = Territory {
        id: TerritoryId::new(),
        name: "Autre GHT".into(),
        oid: format!("1.2.250.1.998.{}", rand_suffix()),
    };
    s.create_territory(&t1, NOW).await.unwrap();
    s.create_territory(&t2, NOW).await.unwrap();
    let mk = |t: TerritoryId, finess: &str| Establishment {
        id: EstablishmentId::new(),
        territory: t,
        name: format!("Etab {finess}"),
        finess: finess.to_owned(),
        kind: "public".into(),
        activity: domain::org::Activity::Mco,
    };
    let (a, b, c) = (
        mk(t1.id, "750000001"),
        mk(t1.id, "750000002"),
        mk(t2.id, "130000003"),
    );
    for e in [&a, &b, &c] {
        s.create_establishment(e, NOW).await.unwrap();
    }
    World {
        t1,
        t2,
        e1: a.id,
        e2: b.id,
        e3: c.id,
    }
}

pub fn rand_suffix() -> u32 {
    (uuid::Uuid::new_v4().as_u128() % 1_000_000) as u32
}

pub fn traits(birth_name: &str, given: &str) -> Traits {
    Traits {
        birth_name: birth_name.into(),
        birth_given_names: given.split(' ').map(str::to_owned).collect(),
        birth_date: jiff::civil::date(1958, 4, 12),
        sex: Sex::Female,
        birthplace_code: Some("75056".into()),
        used_name: None,
        used_given_name: None,
    }
}

pub fn new_patient(territory: TerritoryId, birth_name: &str, given: &str) -> NewPatient {
    NewPatient {
        territory,
        ipp: None,
        traits: traits(birth_name, given),
        ins: None,
        status: IdentityStatus::Provisional,
        establishment: None,
        demographics: Default::default(),
    }
}

pub fn who() -> AuditActor {
    AuditActor {
        kind: "user",
        id: "tester".into(),
        role: Some("doctor"),
        establishment: Some("e".into()),
    }
}

/// An area's own refusal, out of the store's `StoreError::Rule`.
pub trait FromRule: Sized {
    fn from_rule(e: domain::DomainError) -> Option<Self>;
}

impl FromRule for domain::beds::BedError {
    fn from_rule(e: domain::DomainError) -> Option<Self> {
        match e {
            domain::DomainError::Beds(b) => Some(b),
            _ => None,
        }
    }
}

impl FromRule for domain::monitoring::TriageError {
    fn from_rule(e: domain::DomainError) -> Option<Self> {
        match e {
            domain::DomainError::Triage(t) => Some(t),
            _ => None,
        }
    }
}

impl FromRule for domain::orientation::OrientationError {
    fn from_rule(e: domain::DomainError) -> Option<Self> {
        match e {
            domain::DomainError::Orientation(o) => Some(o),
            _ => None,
        }
    }
}

/// A store result seen as the rules' answer: the value, or the area's
/// refusal; any other store error fails the test.
pub trait Refusal<T> {
    fn refusal<E: FromRule + std::fmt::Debug>(self) -> Result<T, E>;
}

impl<T> Refusal<T> for store::Result<T> {
    fn refusal<E: FromRule + std::fmt::Debug>(self) -> Result<T, E> {
        match self {
            Ok(v) => Ok(v),
            Err(store::StoreError::Rule(e)) => {
                let shown = e.to_string();
                Err(E::from_rule(e).unwrap_or_else(|| panic!("another area's refusal: {shown}")))
            }
            Err(e) => panic!("store error: {e}"),
        }
    }
}

/// A doctor of establishment `e1` and the video appointment (NOW, 15 min)
/// they have with a new patient `birth_name` `given`: the booking as made.
pub async fn video_appointment(
    s: &Store,
    w: &World,
    birth_name: &str,
    given: &str,
) -> store::schedule::NewAppointment {
    let p = s
        .create_patient(&new_patient(w.t1.id, birth_name, given), &who(), NOW)
        .await
        .unwrap();
    let doctor = s
        .create_user(
            &store::users::NewUser {
                username: format!("dr-{}", rand_suffix()),
                display_name: "Dr Test".into(),
                kind: store::users::UserKind::Professional,
                password_hash: "$argon2id$fake".into(),
                totp_secret: None,
                rpps: Some("10000012345".into()),
                profession: Some("Médecin".into()),
                patient: None,
                roles: vec![(w.e1, domain::org::Role::Doctor)],
            },
            NOW,
        )
        .await
        .unwrap();
    store::schedule::NewAppointment {
        practitioner: doctor,
        establishment: w.e1,
        patient: p.id,
        start_ms: NOW,
        end_ms: NOW + 900_000,
        mode: domain::schedule::Mode::Tele,
        booked_by: "test".into(),
    }
}
