//! HL7 v2 in ER7 ("pipe") encoding, with no dependency on the rest of Parcours.
//!
//! - [`Message::parse`] reads bytes: separators from MSH-1/MSH-2, the character set
//!   from MSH-18 (`UNICODE UTF-8`, `8859/1`, `8859/15`, `ASCII`; undeclared: UTF-8 if
//!   valid, else Latin-1) decoded to UTF-8, segments split on `\r` (or `\n`).
//!   Parsing indexes segments and fields once; components, repetitions and
//!   sub-components are split on access, without copying.
//! - Values are read by path (`PID-3(2).4.2`, `OBX(3)-5`) with [`Message::get`]
//!   (escapes decoded) or [`Message::raw`] (as on the wire).
//! - [`escape`] decodes and encodes `\F\ \S\ \T\ \R\ \E\ \Xhh\ \.br\`.
//! - [`Builder`] writes messages with escaping; [`ack`] builds original-mode ACKs with
//!   ERR segments; [`mllp`] finds and writes MLLP frames.
//!
//! Not here: networking, storage, what a message means (the ADT mapping lives in
//! `interop`).

pub mod ack;
pub mod batch;
mod build;
mod charset;
pub mod escape;
mod message;
pub mod mllp;
mod path;

pub use build::Builder;
pub use charset::Charset;
pub use message::{Field, FieldTree, Message, ParseError, Segment, Separators};
pub use path::{Path, PathError};
