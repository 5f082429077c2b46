//! Server integration tests: the real application on 127.0.0.1:0, over HTTP, on a
//! fresh SQLite file and a fresh PostgreSQL database, with a clock the tests move.

mod bad_input;
mod fhir_api;
mod helpers;
mod isolation;
mod oauth;
mod web;
