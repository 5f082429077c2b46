//! Use cases shared by the FHIR API and the web pages: each one asks the domain
//! policy, calls the store, and writes the audit trail (reads and denials here;
//! writes inside the store's transaction).

pub mod accounts;
pub mod alerts;
pub mod audit_trail;
pub mod beds;
pub mod billing;
pub mod bundle;
pub mod care_team;
pub mod consultations;
pub mod ctx;
pub mod dead_letters;
pub mod directory;
pub mod dmp;
pub mod documents;
pub mod enrolments;
pub mod follow_up;
pub mod guests;
pub mod health;
pub mod help;
pub mod hl7;
pub mod intake;
pub mod monitoring;
pub mod notices;
pub mod openings;
pub mod organisation;
pub mod orientation;
pub mod oru;
pub mod patients;
pub mod retention;
pub mod room;
pub mod schedule;
pub mod sign_in;
pub mod siu;
pub mod subscriptions;
pub mod tokens;
pub mod uploads;
