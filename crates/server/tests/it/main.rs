//! Server integration tests: the real application on 127.0.0.1:0, over HTTP, on a
//! fresh SQLite file and a fresh PostgreSQL database, with a clock the tests move.

// A failing test is the point: tests may unwrap, panic and index.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod accounts;
mod attacks;
mod bad_input;
mod beds;
mod care_team;
mod cluster;
mod consultation;
mod documents;
mod fhir_api;
mod guests;
mod helpers;
mod hours;
mod intake;
mod isolation;
mod mail;
mod mllp;
mod monitoring;
mod oauth;
mod operations;
mod orientation;
mod outbox;
mod schedule;
mod smart;
mod sms;
mod sso;
mod subscriptions;
mod web;
