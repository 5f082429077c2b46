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

use crate::state::AppState;

/// What the intake answers.
#[derive(Debug)]
pub enum Outcome {
    /// Send this ACK.
    Ack(String),
    /// Do not acknowledge (the store is unavailable): the sender will resend.
    NoAck,
}

/// Where a message came from, for binding it to its declared sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// From inside (a replay by an administrator, a test): trusted.
    Internal,
    /// Plain MLLP from this address.
    Tcp(std::net::IpAddr),
    /// MLLP over TLS, with the subject (CN) of the client certificate.
    Tls {
        /// The address.
        addr: std::net::IpAddr,
        /// The certificate's common name.
        subject: String,
    },
}

/// How much of a message from an unknown or refused sender is logged.
pub const UNKNOWN_SENDER_PREFIX: usize = 256;

/// Whether `peer` may speak as `sender`: over TLS, only with the certificate
/// declared for it; over plain MLLP, only from this machine or a declared
/// address. The reason (French) when not.
pub fn peer_allowed(peer: &Peer, sender: &store::hl7::Hl7Sender) -> Result<(), String> {
    match peer {
        Peer::Internal => Ok(()),
        Peer::Tls { subject, .. } => match &sender.tls_subject {
            Some(s) if s == subject => Ok(()),
            _ => Err(format!(
                "le certificat présenté ({subject}) n'est pas celui déclaré pour cet émetteur"
            )),
        },
        Peer::Tcp(ip) => {
            let ip = crate::addr::canonical(*ip);
            if ip.is_loopback()
                || sender
                    .allowed_addresses
                    .iter()
                    .any(|a| crate::addr::matches(ip, a))
            {
                Ok(())
            } else {
                Err(format!(
                    "adresse {ip} non déclarée pour cet émetteur (MLLP/TLS avec certificat, ou adresse autorisée)"
                ))
            }
        }
    }
}

/// Whether an IPP assigned by (`namespace`, `universal_id`) (PID-3.4) is an
/// IPP of this domain: HD semantics, the universal id names the authority
/// when given, the namespace otherwise; it must be the territory's OID or the
/// authority declared for the sender.
pub(crate) fn ipp_authority_ok(
    sender: &store::hl7::Hl7Sender,
    namespace: &str,
    universal_id: &str,
) -> bool {
    let named = if universal_id.is_empty() {
        namespace
    } else {
        universal_id
    };
    !named.is_empty()
        && (named == sender.territory_oid || sender.ipp_authority.as_deref() == Some(named))
}

pub(crate) use interop::pam::error_at as err;

pub(crate) fn ack_control_id() -> String {
    let u = uuid::Uuid::now_v7().simple().to_string();
    u.get(u.len() - 20..).unwrap_or(&u).to_owned()
}

/// A time as an HL7 DTM (v2, and CDA's TS) in French time (`YYYYMMDDHHMMSS+ZZZZ`).
pub(crate) fn paris_dtm(ms: i64) -> String {
    crate::fmt::paris_format(ms, "%Y%m%d%H%M%S%z")
}

/// Now as an HL7 DTM in French time (`YYYYMMDDHHMMSS+ZZZZ`).
pub(crate) fn timestamp(state: &AppState) -> String {
    let now = state.clock.now();
    now.in_tz("Europe/Paris")
        .map(|z| z.strftime("%Y%m%d%H%M%S%z").to_string())
        .unwrap_or_else(|_| now.strftime("%Y%m%d%H%M%S+0000").to_string())
}

pub use interop::pam::parse_dtm;

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
            }),
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

/// A declared sender; known senders are cached (they are only ever added),
/// unknown ones looked up every time.
async fn sender_of(
    state: &AppState,
    app: &str,
    facility: &str,
) -> Result<Option<store::hl7::Hl7Sender>, store::StoreError> {
    let key = (app.to_owned(), facility.to_owned());
    if let Some(hit) = state.senders.read().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(Some(hit));
    }
    let found = state.store.hl7_sender(app, facility).await?;
    if let (Some(f), Ok(mut cache)) = (&found, state.senders.write()) {
        cache.insert(key, f.clone());
    }
    Ok(found)
}

/// Handles one message; `replay_of` names the log entry being replayed (no
/// deduplication then).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn ingest(
    state: &AppState,
    raw: &[u8],
    replay_of: Option<String>,
    peer: &Peer,
) -> Outcome {
    let now = state.now_ms();
    let ts = timestamp(state);
    let mut log = NewHl7Message {
        received_at_ms: now,
        sender: String::new(),
        control_id: None,
        message_type: String::new(),
        status: "rejected".into(),
        errors: String::new(),
        ack: String::new(),
        raw: raw.to_vec(),
        replay_of: replay_of.clone(),
        establishment: None,
    };
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
            return finish_without_effect(state, None, AckCode::Reject, &errors, log, &ts).await;
        }
    };
    let app = m.raw("MSH-3.1").ok().flatten().unwrap_or("").to_owned();
    let facility = m.raw("MSH-4.1").ok().flatten().unwrap_or("").to_owned();
    log.sender = format!("{app}|{facility}");
    let (code, event, _) = m.message_type();
    log.message_type = format!("{}^{}", code.unwrap_or(""), event.unwrap_or(""));
    let Some(control) = m.control_id().map(str::to_owned) else {
        let e = [err(
            "MSH",
            Some(10),
            None,
            None,
            101,
            "identifiant de message absent (MSH-10)".into(),
        )];
        return finish_without_effect(state, Some(&m), AckCode::Reject, &e, log, &ts).await;
    };
    log.control_id = Some(control.clone());
    // A repeated control id is found by the log's unique index when the message is
    // logged (in the same transaction as its effects), which then returns the
    // first ACK: no lookup before, one query less per message.
    let reject = |field: usize, code: u16, message: String| {
        vec![err("MSH", Some(field), None, None, code, message)]
    };
    let rejection = unsupported(&m, code, event);
    if let Some(errors) = rejection {
        return finish_without_effect(state, Some(&m), AckCode::Reject, &errors, log, &ts).await;
    }
    let sender = match sender_of(state, &app, &facility).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            let e = reject(
                4,
                207,
                format!("émetteur inconnu {app}/{facility}: déclarez-le (parcours hl7 sender-add)"),
            );
            // An unknown sender's bytes are not kept beyond a short prefix.
            log.raw.truncate(UNKNOWN_SENDER_PREFIX);
            return finish_without_effect(state, Some(&m), AckCode::Reject, &e, log, &ts).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "hl7: sender lookup failed");
            return Outcome::NoAck;
        }
    };
    if let Err(why) = peer_allowed(peer, &sender) {
        tracing::warn!(sender = %log.sender, "mllp: message refused, sender not bound to this peer");
        let e = reject(3, 207, why);
        log.raw.truncate(UNKNOWN_SENDER_PREFIX);
        return finish_without_effect(state, Some(&m), AckCode::Reject, &e, log, &ts).await;
    }
    let (establishment, territory) = (sender.establishment, sender.territory);
    log.establishment = Some(establishment);
    if code == Some("SIU") {
        let ctx = crate::services::siu::Context {
            establishment,
            territory,
            sender: log.sender.clone(),
            declared: sender.clone(),
        };
        return crate::services::siu::intake(
            state,
            &m,
            event.unwrap_or(""),
            &ctx,
            log,
            &control,
            &ts,
        )
        .await;
    }
    let today = state.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let authority_ok =
        |namespace: &str, universal: &str| ipp_authority_ok(&sender, namespace, universal);
    let read = interop::pam::read(&m, event.unwrap_or(""), &authority_ok, today);
    let (feed, movement, warnings) = match read {
        Ok(e) => feeds(e, &sender),
        Err(interop::pam::AdtError(error)) => {
            return finish_without_effect(state, Some(&m), AckCode::Error, &[*error], log, &ts)
                .await;
        }
    };
    let code = if warnings.is_empty() {
        AckCode::Accept
    } else {
        AckCode::Error
    };
    let ack_text = ack::build(&m, code, &warnings, &ack_control_id(), &ts);
    log.status = if warnings.is_empty() {
        "accepted".into()
    } else {
        "error".into()
    };
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
        establishment: Some(establishment.to_string()),
    };
    let job = FeedJob {
        feed,
        movement,
        who,
        log: log.clone(),
    };
    let Some(result) = crate::ingest::submit(state, job).await else {
        return Outcome::NoAck;
    };
    answer(state, &m, result, ack_text, log, &control, &ts).await
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
    state: &AppState,
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
            match state.store.hl7_message_for(&log.sender, control).await {
                Ok(Some(first)) => Outcome::Ack(first.ack),
                _ => Outcome::NoAck,
            }
        }
        Err(store::StoreError::Refused(why)) => {
            let errors = [err("MRG", Some(1), None, None, 207, why)];
            finish_without_effect(state, Some(m), AckCode::Error, &errors, log, ts).await
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
            finish_without_effect(state, Some(m), AckCode::Error, &errors, log, ts).await
        }
        Err(e) => {
            tracing::error!(error = %e, "hl7: applying a message failed");
            Outcome::NoAck
        }
    }
}

/// Logs a message that changes nothing and returns its ACK (AE or AR).
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn finish_without_effect(
    state: &AppState,
    m: Option<&Message>,
    code: AckCode,
    errors: &[AckError],
    mut log: NewHl7Message,
    ts: &str,
) -> Outcome {
    let ack_text = match m {
        Some(m) => ack::build(m, code, errors, &ack_control_id(), ts),
        None => ack::build_unreadable(&log.raw, code, errors, &ack_control_id(), ts),
    };
    log.status = match code {
        AckCode::Reject => "rejected".into(),
        AckCode::Accept => "accepted".into(),
        _ => "error".into(),
    };
    log.errors = errors
        .iter()
        .map(|e| e.message.clone())
        .collect::<Vec<_>>()
        .join("\n");
    log.ack = ack_text.clone();
    match state.store.log_hl7_message(&log).await {
        Ok(_) => Outcome::Ack(ack_text),
        Err(e) if is_duplicate_message(&e) => match (
            &log.control_id,
            state
                .store
                .hl7_message_for(&log.sender, log.control_id.as_deref().unwrap_or(""))
                .await,
        ) {
            (Some(_), Ok(Some(first))) => Outcome::Ack(first.ack),
            _ => Outcome::NoAck,
        },
        Err(e) => {
            tracing::error!(error = %e, "hl7: logging a message failed");
            Outcome::NoAck
        }
    }
}
