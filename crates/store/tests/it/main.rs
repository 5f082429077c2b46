//! Store story tests: every test runs on SQLite and on PostgreSQL (atuin's pattern).

// A failing test is the point: tests may unwrap, panic and index.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod audit;
mod beds;
mod bundle;
mod care_team;
mod cluster;
mod consultations;
mod documents;
mod incoming;
mod intake;
mod monitoring;
mod orgs_users;
mod orientation;
mod outbox;
mod patients;
mod retention;
mod subscriptions;
mod support;
