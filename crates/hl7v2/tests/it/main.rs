//! hl7v2 integration tests: round-trip properties and the public ANS samples.

// A failing test is the point: tests may unwrap, panic and index.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod fixtures;
mod mllp_inputs;
mod roundtrip;
