//! HL7 v2 intake: from raw bytes to an ACK. Reads the header, binds the sender
//! to its peer, answers a repeated control id with the first ACK, rejects what
//! is not supported (AR), has `interop::pam` read the IHE PAM France ADT
//! (receiver policy there), turns it into the store's feeds for the sender's
//! establishment, applies them and logs the message in one transaction, and only
//! then returns the ACK (AA, or AE when part of the content was refused, such as
//! an INS with a wrong key).

use domain::audit::AuditActor;
use hl7v2::Message;
use hl7v2::ack::{self, AckCode, AckError, Severity};
use interop::pam::{MERGE_EVENTS, UPSERT_EVENTS};
use store::encounters::MovementFeed;
use store::hl7::{FeedJob, IdentityFeed, NewHl7Message, is_duplicate_message};

use crate::services::ctx::Ctx;

pub mod log;
pub mod reply;
pub mod senders;

pub use interop::pam::parse_dtm;
pub use reply::Outcome;
use reply::{ack_control_id, err, finish_without_effect};
pub use senders::{Peer, SenderCache, UNKNOWN_SENDER_PREFIX, peer_allowed};
use senders::{ipp_authority_ok, sender_of};

/// The store's feeds for what an ADT message says, for `sender`'s
/// establishment in its identity domain.
fn feeds(
    e: interop::pam::AdtEvent,
    sender: &store::hl7::Hl7Sender,
) -> (IdentityFeed, Option<MovementFeed>, Vec<AckError>) {
    use interop::pam::IdentityChange;
    let territory = sender.territory;
    let feed = match e.identity {
        IdentityChange::Upsert {
            ipp,
            traits,
            ins,
            status,
            dmp,
            demographics,
        } => IdentityFeed::Upsert {
            territory,
            establishment: sender.establishment,
            ipp,
            traits,
            ins,
            status,
            dmp: dmp.map(|d| store::hl7::DmpFeed {
                state: d.state,
                opposition: d.opposition,
                consultation: d.consultation,
            }),
            demographics,
        },
        IdentityChange::ChangeIpp { old_ipp, new_ipp } => IdentityFeed::ChangeIpp {
            territory,
            old_ipp,
            new_ipp,
        },
        IdentityChange::Merge {
            survivor_ipp,
            merged_ipp,
        } => IdentityFeed::Merge {
            territory,
            survivor_ipp,
            merged_ipp,
        },
    };
    let movement = e.movement.map(|m| MovementFeed {
        establishment: sender.establishment,
        visit_number: m.visit_number,
        kind: m.kind,
        cancel: m.cancel,
        movement_id: m.movement_id,
        trigger: m.trigger,
        start_ms: m.start_ms,
        location: m.location,
        class: m.class,
    });
    (feed, movement, e.warnings)
}

/// Handles one message; `replay_of` names the log entry being replayed (no
/// deduplication then). Counted for `/metrics` by type and ACK code, with
/// the time to the ACK.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn ingest(ctx: Ctx<'_>, raw: &[u8], replay_of: Option<String>, peer: &Peer) -> Outcome {
    let started = std::time::Instant::now();
    let outcome = handle(ctx, raw, replay_of, peer).await;
    let code = match &outcome {
        Outcome::Ack(a) => ack_code(a),
        Outcome::NoAck => "none",
    };
    ctx.metrics
        .count_hl7(&message_kind(raw), code, started.elapsed().as_secs_f64());
    outcome
}

/// `ADT^A01` from MSH-9 read without parsing the message (a metrics label:
/// anything else than three letters or digits, a caret and three more is
/// `other`, so that a sender cannot grow the label set).
pub fn message_kind(raw: &[u8]) -> String {
    let Some(rest) = raw.strip_prefix(b"MSH") else {
        return String::new();
    };
    let Some(&sep) = rest.first() else {
        return String::new();
    };
    let segment = rest
        .split(|b| *b == b'\r' || *b == b'\n')
        .next()
        .unwrap_or(&[]);
    // MSH-1 is the separator itself: MSH-9 is the eighth field after it.
    let Some(field) = segment.split(|b| *b == sep).nth(8) else {
        return String::new();
    };
    let mut parts = field.split(|b| *b == b'^');
    let code = |p: Option<&[u8]>| {
        p.filter(|c| c.len() == 3 && c.iter().all(u8::is_ascii_alphanumeric))
            .map(|c| String::from_utf8_lossy(c).into_owned())
    };
    match (code(parts.next()), code(parts.next())) {
        (Some(a), Some(b)) => format!("{a}^{b}"),
        _ => "other".into(),
    }
}

/// The ACK code (MSA-1) of an acknowledgement.
fn ack_code(ack: &str) -> &'static str {
    let msa = ack.split('\r').find_map(|s| s.strip_prefix("MSA|"));
    match msa.and_then(|m| m.get(..2)) {
        Some("AA") => "AA",
        Some("AE") => "AE",
        Some("AR") => "AR",
        Some("CA") => "CA",
        Some("CE") => "CE",
        Some("CR") => "CR",
        _ => "other",
    }
}

async fn handle(ctx: Ctx<'_>, raw: &[u8], replay_of: Option<String>, peer: &Peer) -> Outcome {
    let ts = crate::fmt::hl7_now(ctx.clock.now());
    let log = NewHl7Message {
        received_at_ms: ctx.now_ms(),
        sender: String::new(),
        control_id: None,
        message_type: String::new(),
        status: "rejected".into(),
        errors: String::new(),
        ack: String::new(),
        raw: raw.to_vec(),
        replay_of,
        establishment: None,
    };
    let (m, control, log) = match header(ctx, raw, log, &ts).await {
        Ok(read) => read,
        Err(outcome) => return outcome,
    };
    let (code, event, _) = m.message_type();
    if let Some(errors) = unsupported(&m, code, event) {
        return finish_without_effect(ctx, Some(&m), AckCode::Reject, &errors, log, &ts).await;
    }
    let (sender, mut log) = match bound_sender(ctx, &m, peer, log, &ts).await {
        Ok(bound) => bound,
        Err(outcome) => return outcome,
    };
    let (establishment, territory) = (sender.establishment, sender.territory);
    log.establishment = Some(establishment);
    let event = event.unwrap_or("");
    if code == Some("SIU") {
        let from = crate::services::siu::Context {
            establishment,
            territory,
            sender: log.sender.clone(),
            declared: sender.clone(),
        };
        return crate::services::siu::intake(ctx, &m, event, &from, log, &control, &ts).await;
    }
    adt(ctx, &m, event, &sender, log, &control, &ts).await
}

/// Reads the header: the message, its control id (MSH-10) and the log entry
/// named after its sender and type; or the AR already logged.
async fn header(
    ctx: Ctx<'_>,
    raw: &[u8],
    mut log: NewHl7Message,
    ts: &str,
) -> Result<(Message, String, NewHl7Message), Outcome> {
    let m = match Message::parse(raw) {
        Ok(m) => m,
        Err(e) => {
            let code = match e {
                hl7v2::ParseError::BadSeparators
                | hl7v2::ParseError::BadEncoding { .. }
                | hl7v2::ParseError::UnknownCharset(_) => 102,
                _ => 100,
            };
            let errors = [AckError {
                location: None,
                code,
                message: format!("message illisible: {e}"),
                severity: Severity::Error,
            }];
            log.raw.truncate(UNKNOWN_SENDER_PREFIX);
            return Err(finish_without_effect(ctx, None, AckCode::Reject, &errors, log, ts).await);
        }
    };
    let app = m.raw("MSH-3.1").ok().flatten().unwrap_or("");
    let facility = m.raw("MSH-4.1").ok().flatten().unwrap_or("");
    log.sender = format!("{app}|{facility}");
    let (code, event, _) = m.message_type();
    log.message_type = format!("{}^{}", code.unwrap_or(""), event.unwrap_or(""));
    // A repeated control id is found by the log's unique index when the message is
    // logged (in the same transaction as its effects), which then returns the
    // first ACK: no lookup before, one query less per message.
    match m.control_id().map(str::to_owned) {
        Some(control) => {
            log.control_id = Some(control.clone());
            Ok((m, control, log))
        }
        None => {
            let e = [err(
                "MSH",
                Some(10),
                None,
                None,
                101,
                "identifiant de message absent (MSH-10)".into(),
            )];
            Err(finish_without_effect(ctx, Some(&m), AckCode::Reject, &e, log, ts).await)
        }
    }
}

/// The declared sender of `m` (MSH-3, MSH-4), if `peer` may speak for it; or
/// the AR already logged (only a short prefix of an unknown sender's bytes).
async fn bound_sender(
    ctx: Ctx<'_>,
    m: &Message,
    peer: &Peer,
    mut log: NewHl7Message,
    ts: &str,
) -> Result<(store::hl7::Hl7Sender, NewHl7Message), Outcome> {
    let app = m.raw("MSH-3.1").ok().flatten().unwrap_or("");
    let facility = m.raw("MSH-4.1").ok().flatten().unwrap_or("");
    let refused = |field: usize, why: String| vec![err("MSH", Some(field), None, None, 207, why)];
    let errors = match sender_of(ctx, app, facility).await {
        Ok(Some(sender)) => match peer_allowed(peer, &sender) {
            Ok(()) => return Ok((sender, log)),
            Err(why) => {
                tracing::warn!(sender = %log.sender, "mllp: message refused, sender not bound to this peer");
                refused(3, why)
            }
        },
        Ok(None) => refused(
            4,
            format!("émetteur inconnu {app}/{facility}: déclarez-le (parcours hl7 sender-add)"),
        ),
        Err(e) => {
            tracing::error!(error = %e, "hl7: sender lookup failed");
            return Err(Outcome::NoAck);
        }
    };
    log.raw.truncate(UNKNOWN_SENDER_PREFIX);
    Err(finish_without_effect(ctx, Some(m), AckCode::Reject, &errors, log, ts).await)
}

/// An ADT message from `sender`: read by `interop::pam`, applied with its log
/// entry in one transaction (through the intake writer), then acknowledged.
async fn adt(
    ctx: Ctx<'_>,
    m: &Message,
    event: &str,
    sender: &store::hl7::Hl7Sender,
    mut log: NewHl7Message,
    control: &str,
    ts: &str,
) -> Outcome {
    let today = ctx.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let authority_ok =
        |namespace: &str, universal: &str| ipp_authority_ok(sender, namespace, universal);
    let (feed, movement, warnings) = match interop::pam::read(m, event, &authority_ok, today) {
        Ok(e) => feeds(e, sender),
        Err(interop::pam::AdtError(error)) => {
            return finish_without_effect(ctx, Some(m), AckCode::Error, &[*error], log, ts).await;
        }
    };
    let code = if warnings.is_empty() {
        AckCode::Accept
    } else {
        AckCode::Error
    };
    let ack_text = ack::build(m, code, &warnings, &ack_control_id(), ts);
    log.status = if warnings.is_empty() {
        "accepted"
    } else {
        "error"
    }
    .into();
    log.errors = warnings
        .iter()
        .map(|e| e.message.clone())
        .collect::<Vec<_>>()
        .join("\n");
    log.ack = ack_text.clone();
    let who = AuditActor {
        kind: "system",
        id: format!("mllp:{}", log.sender),
        role: Some(domain::org::Role::Integration.code()),
        establishment: Some(sender.establishment.to_string()),
    };
    let job = FeedJob {
        feed,
        movement,
        who,
        log: log.clone(),
    };
    let stay = job
        .movement
        .as_ref()
        .map(|m| (m.establishment, m.visit_number.clone()));
    let Some(result) = crate::ingest::submit(ctx.ingest, ctx.store, ctx.now_ms(), job).await else {
        return Outcome::NoAck;
    };
    if let (Some((establishment, visit)), Ok(patient)) = (&stay, &result) {
        // A stay moved: the territory's bed views refresh, on every node,
        // and the subscribers watching stays are told.
        ctx.publish(crate::live::LiveEvent::Beds(sender.territory));
        crate::services::subscriptions::stay_changed(ctx, *patient, *establishment, visit).await;
    }
    answer(ctx, m, result, ack_text, log, control, ts).await
}

/// What the intake does not take (AR): a version other than 2.x, a processing
/// id other than P, D, T, a message other than ADT or SIU, an ADT event not
/// handled; the ERR on MSH.
fn unsupported(m: &Message, code: Option<&str>, event: Option<&str>) -> Option<Vec<AckError>> {
    let reject = |field: usize, code: u16, message: String| {
        vec![err("MSH", Some(field), None, None, code, message)]
    };
    let version = m.version().unwrap_or("");
    if !version.starts_with("2.") {
        Some(reject(
            12,
            203,
            format!("version {version:?} non prise en charge (2.x attendue)"),
        ))
    } else if !matches!(m.processing_id(), Some("P" | "D" | "T")) {
        Some(reject(
            11,
            202,
            format!(
                "processing id {:?} non pris en charge (P, D, T)",
                m.processing_id().unwrap_or("")
            ),
        ))
    } else if code == Some("SIU") {
        None
    } else if code != Some("ADT") {
        Some(reject(
            9,
            200,
            format!(
                "type de message {:?} non pris en charge (ADT, SIU)",
                code.unwrap_or("")
            ),
        ))
    } else if !event.is_some_and(|e| UPSERT_EVENTS.contains(&e) || MERGE_EVENTS.contains(&e)) {
        Some(reject(
            9,
            201,
            format!(
                "événement {:?} non encore pris en charge",
                event.unwrap_or("")
            ),
        ))
    } else {
        None
    }
}

/// The ACK once the store has answered: the planned one when applied; the
/// first ACK for a repeated control id; AE when the store refused (a merge
/// outside the sender's care: on MRG; an unknown or duplicate key: on PID-3);
/// no ACK when the store failed (the sender resends).
async fn answer(
    ctx: Ctx<'_>,
    m: &Message,
    result: Result<domain::PatientId, store::StoreError>,
    ack_text: String,
    log: NewHl7Message,
    control: &str,
    ts: &str,
) -> Outcome {
    match result {
        Ok(_) => Outcome::Ack(ack_text),
        Err(e) if is_duplicate_message(&e) => {
            match ctx.store.hl7_message_for(&log.sender, control).await {
                Ok(Some(first)) => Outcome::Ack(first.ack),
                _ => Outcome::NoAck,
            }
        }
        Err(store::StoreError::Refused(why)) => {
            let errors = [err("MRG", Some(1), None, None, 207, why)];
            finish_without_effect(ctx, Some(m), AckCode::Error, &errors, log, ts).await
        }
        Err(store::StoreError::Conflict(why)) => {
            let code = if why.is_unknown_key() { 204 } else { 205 };
            let errors = [err(
                "PID",
                Some(3),
                None,
                None,
                code,
                format!(
                    "refusé: {}",
                    crate::error::AppError::from(store::StoreError::Conflict(why))
                ),
            )];
            finish_without_effect(ctx, Some(m), AckCode::Error, &errors, log, ts).await
        }
        Err(e) => {
            tracing::error!(error = %e, "hl7: applying a message failed");
            Outcome::NoAck
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ack_code, message_kind};

    #[test]
    fn message_kinds_for_metrics() {
        assert_eq!(
            message_kind(b"MSH|^~\\&|A|B|C|D|2026||ADT^A01^ADT_A01|1|P|2.5\rPID|"),
            "ADT^A01"
        );
        assert_eq!(
            message_kind(b"MSH#^~\\&#A#B#C#D#2026##SIU^S12#1#P#2.5"),
            "SIU^S12"
        );
        assert_eq!(
            message_kind(b"MSH|^~\\&|A|B|C|D|2026||<script>^x|1"),
            "other"
        );
        assert_eq!(message_kind(b"MSH|^~\\&|A"), "");
        assert_eq!(message_kind(b"garbage"), "");
        assert_eq!(message_kind(b""), "");
    }

    #[test]
    fn ack_codes_for_metrics() {
        assert_eq!(ack_code("MSH|^~\\&|P\rMSA|AE|1\rERR|"), "AE");
        assert_eq!(ack_code("MSH|^~\\&|P\rMSA|AA|1"), "AA");
        assert_eq!(ack_code("MSH|^~\\&|P\rMSA|AR|1"), "AR");
        assert_eq!(ack_code("nonsense"), "other");
    }
}
