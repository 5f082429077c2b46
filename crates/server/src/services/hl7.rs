//! HL7 v2 intake: from raw bytes to an ACK. Reads the header, answers a repeated
//! control id with the first ACK, rejects what is not supported (AR), maps IHE PAM
//! France ADT identity messages to an identity feed, applies it and logs the message
//! in one transaction, and only then returns the ACK (AA, or AE when part of the
//! content was refused, such as an INS with a wrong key).
//!
//! Receiver policy (documented in ARCHITECTURE.md): A08, not used in France, is
//! accepted as an A31; the GAM is the source of truth for identity, so its status
//! is mirrored as sent (PID-32 `VALI` = qualified in PAM France) without the RNIV
//! step-by-step check that edits made in Parcours go through.

use domain::audit::AuditActor;
use domain::encounter::{Location as BedLocation, MovementKind};
use domain::identity::{IdentityStatus, Sex, Traits};
use domain::ins::{Ins, InsKind};
use hl7v2::Message;
use hl7v2::ack::{self, AckCode, AckError, Location, Severity};
use store::encounters::MovementFeed;
use store::hl7::{FeedJob, IdentityFeed, NewHl7Message, is_duplicate_message};

use crate::state::AppState;

/// Events applied to identities (those with a movement also update the stay).
const UPSERT_EVENTS: [&str; 18] = [
    "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A11", "A12", "A13", "A21", "A22",
    "A28", "A31", "A38", "A52", "A53",
];
/// Events applied as merges (A40) or identifier changes (A47).
const MERGE_EVENTS: [&str; 2] = ["A40", "A47"];

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

/// XPN-7, the name type (L birth, D used).
fn name_type<'a>(r: &hl7v2::Field<'a>) -> &'a str {
    r.component(7).map(|c| c.raw()).unwrap_or("")
}

pub(crate) fn err(
    segment: &str,
    field: Option<usize>,
    repetition: Option<usize>,
    component: Option<usize>,
    code: u16,
    message: String,
) -> AckError {
    AckError {
        location: Some(Location {
            segment: segment.into(),
            sequence: 1,
            field,
            repetition,
            component,
            subcomponent: None,
        }),
        code,
        message,
        severity: Severity::Error,
    }
}

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

struct Plan {
    feed: IdentityFeed,
    movement: Option<MovementFeed>,
    warnings: Vec<AckError>,
}

/// An HL7 DTM (`YYYYMMDD[HHMM[SS[.S…]]][+/-ZZZZ]`) as Unix ms; local French time
/// when no offset is given.
pub fn parse_dtm(text: &str) -> Option<i64> {
    let (main, offset) = match text.find(['+', '-']) {
        Some(i) => (text.get(..i)?, Some(text.get(i..)?)),
        None => (text, None),
    };
    let digits = main.split('.').next()?;
    if !(digits.len() == 8 || digits.len() == 12 || digits.len() == 14)
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let n = |a: usize, b: usize| -> Option<i8> { digits.get(a..b).and_then(|d| d.parse().ok()) };
    let year: i16 = digits.get(0..4)?.parse().ok()?;
    let dt = jiff::civil::DateTime::new(
        year,
        n(4, 6)?,
        n(6, 8)?,
        n(8, 10).unwrap_or(0),
        n(10, 12).unwrap_or(0),
        n(12, 14).unwrap_or(0),
        0,
    )
    .ok()?;
    let ts = match offset {
        Some(o) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let hh: i32 = o.get(1..3)?.parse().ok()?;
            let mm: i32 = o.get(3..5)?.parse().ok()?;
            let off = jiff::tz::Offset::from_seconds(sign * (hh * 3600 + mm * 60)).ok()?;
            off.to_timestamp(dt).ok()?
        }
        None => dt.in_tz("Europe/Paris").ok()?.timestamp(),
    };
    Some(ts.as_millisecond())
}

/// The movement carried by a movement event (PV1, ZBE, EVN); `None` for identity
/// events.
fn movement(
    m: &Message,
    event: &str,
    establishment: domain::EstablishmentId,
) -> Result<Option<MovementFeed>, Vec<AckError>> {
    let Some((kind, cancel)) = MovementKind::from_event(event) else {
        return Ok(None);
    };
    let get = |p: &str| {
        m.get(p)
            .ok()
            .flatten()
            .map(|v| v.into_owned())
            .filter(|v| !v.is_empty() && v != "\"\"")
    };
    let Some(visit_number) = get("PV1-19.1") else {
        return Err(vec![err(
            "PV1",
            Some(19),
            None,
            Some(1),
            101,
            "numéro de venue absent (PV1-19)".into(),
        )]);
    };
    let when = ["ZBE-2", "EVN-6", "EVN-2", "MSH-7"]
        .iter()
        .find_map(|p| get(p));
    let Some(start_ms) = when.as_deref().and_then(parse_dtm) else {
        return Err(vec![err(
            "ZBE",
            Some(2),
            None,
            None,
            102,
            "date du mouvement absente ou illisible (ZBE-2)".into(),
        )]);
    };
    if get("ZBE-4").as_deref() == Some("UPDATE") {
        return Err(vec![err(
            "ZBE",
            Some(4),
            None,
            None,
            207,
            "ZBE-4 UPDATE (Z99) non encore pris en charge".into(),
        )]);
    }
    Ok(Some(MovementFeed {
        establishment,
        visit_number,
        kind,
        cancel,
        movement_id: get("ZBE-1.1"),
        trigger: event.to_owned(),
        start_ms,
        location: BedLocation {
            unit: get("PV1-3.1"),
            room: get("PV1-3.2"),
            bed: get("PV1-3.3"),
        },
        class: get("PV1-2"),
    }))
}

/// Reads the identity part of an ADT message. `Err` = the message cannot be applied.
fn plan(
    m: &Message,
    event: &str,
    sender: &store::hl7::Hl7Sender,
    today: jiff::civil::Date,
) -> Result<Plan, Vec<AckError>> {
    let (territory, establishment) = (sender.territory, sender.establishment);
    let Some(pid) = m.segment("PID", 1) else {
        return Err(vec![err(
            "PID",
            None,
            None,
            None,
            100,
            "segment PID absent".into(),
        )]);
    };
    let mut ipp = None;
    let mut ins = None;
    let mut warnings = Vec::new();
    let pid3 = pid.field(3);
    for (i, rep) in pid3.iter().flat_map(|f| f.repetitions()).enumerate() {
        let id_type = rep.component(5).map(|c| c.raw()).unwrap_or("");
        let value = rep
            .component(1)
            .map(|c| c.decoded().into_owned())
            .unwrap_or_default();
        let oid = rep
            .component(4)
            .and_then(|c| c.subcomponent(2))
            .map(|s| s.raw())
            .unwrap_or("");
        match (id_type, InsKind::from_oid(oid)) {
            ("PI", _) if !value.is_empty() => {
                // The IPP of this domain only: PID-3.4 must name the territory's
                // authority (its OID) or the one declared for the sender.
                let namespace = rep
                    .component(4)
                    .and_then(|c| c.subcomponent(1))
                    .map(|s| s.raw())
                    .unwrap_or("");
                if !ipp_authority_ok(sender, namespace, oid) {
                    return Err(vec![err(
                        "PID",
                        Some(3),
                        Some(i + 1),
                        Some(4),
                        102,
                        format!(
                            "IPP d'une autre autorité d'affectation ({namespace}&{oid}): attendu {} ou l'autorité déclarée pour l'émetteur",
                            sender.territory_oid
                        ),
                    )]);
                }
                ipp = Some(value)
            }
            (_, Some(kind)) | ("INS", Some(kind)) if !value.is_empty() && value != "\"\"" => {
                match Ins::parse(kind, &value) {
                    Ok(v) => ins = Some(v),
                    Err(e) => warnings.push(err(
                        "PID",
                        Some(3),
                        Some(i + 1),
                        Some(1),
                        102,
                        format!("INS refusée ({e}); l'identité reste provisoire"),
                    )),
                }
            }
            _ => {}
        }
    }
    let Some(ipp) = ipp else {
        return Err(vec![err(
            "PID",
            Some(3),
            None,
            None,
            101,
            "IPP absent (PID-3 de type PI)".into(),
        )]);
    };
    if MERGE_EVENTS.contains(&event) {
        let mrg: Vec<hl7v2::Field<'_>> = m
            .segment("MRG", 1)
            .and_then(|s| s.field(1))
            .into_iter()
            .flat_map(|f| f.repetitions())
            .collect();
        let id_type = |r: &hl7v2::Field<'_>| {
            r.component(5)
                .map(|c| c.raw().to_owned())
                .unwrap_or_default()
        };
        let old_ipp = mrg
            .iter()
            .find(|r| matches!(id_type(r).as_str(), "PI" | ""))
            .and_then(|r| r.component(1))
            .map(|c| c.decoded().into_owned())
            .filter(|v| !v.is_empty());
        let ins_change =
            event == "A47" && old_ipp.is_none() && mrg.iter().any(|r| id_type(r) == "INS");
        // An A47 on the INS (new, removed or downgraded) carries the whole PID: it
        // is applied below as an identity update.
        if !ins_change {
            let Some(old_ipp) = old_ipp else {
                return Err(vec![err(
                    "MRG",
                    Some(1),
                    None,
                    None,
                    101,
                    "ancien identifiant absent (MRG-1)".into(),
                )]);
            };
            let feed = if event == "A40" {
                IdentityFeed::Merge {
                    territory,
                    survivor_ipp: ipp,
                    merged_ipp: old_ipp,
                }
            } else {
                IdentityFeed::ChangeIpp {
                    territory,
                    old_ipp,
                    new_ipp: ipp,
                }
            };
            return Ok(Plan {
                feed,
                movement: None,
                warnings,
            });
        }
    }
    // Names: the birth name (type L, or the first repetition), the used name (type D).
    let names: Vec<_> = pid.field(5).iter().flat_map(|f| f.repetitions()).collect();
    let birth = names
        .iter()
        .find(|r| name_type(r) == "L")
        .or_else(|| names.first());
    let used = names.iter().find(|r| name_type(r) == "D");
    let comp = |r: Option<&hl7v2::Field<'_>>, n: usize| -> Option<String> {
        r.and_then(|r| r.component(n))
            .map(|c| c.decoded().into_owned())
            .filter(|v| !v.is_empty() && v != "\"\"")
    };
    let Some(birth_name) = comp(birth, 1) else {
        return Err(vec![err(
            "PID",
            Some(5),
            None,
            Some(1),
            101,
            "nom de naissance absent (PID-5 de type L)".into(),
        )]);
    };
    let first = comp(birth, 2);
    let all_given =
        comp(birth, 3).map(|g| g.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
    let given = match (all_given, first) {
        (Some(list), _) if !list.is_empty() => list,
        (_, Some(f)) => vec![f],
        _ => {
            return Err(vec![err(
                "PID",
                Some(5),
                None,
                Some(2),
                101,
                "prénom de naissance absent (PID-5.2)".into(),
            )]);
        }
    };
    let birth_date = pid
        .field(7)
        .map(|f| f.raw().get(..8).unwrap_or("").to_owned())
        .and_then(|d| {
            let (y, mo, da) = (
                d.get(..4)?.parse().ok()?,
                d.get(4..6)?.parse().ok()?,
                d.get(6..8)?.parse().ok()?,
            );
            jiff::civil::Date::new(y, mo, da).ok()
        });
    let Some(birth_date) = birth_date else {
        return Err(vec![err(
            "PID",
            Some(7),
            None,
            None,
            102,
            "date de naissance absente ou illisible (PID-7, AAAAMMJJ)".into(),
        )]);
    };
    let sex = match pid.field(8).map(|f| f.raw()).unwrap_or("") {
        "M" => Sex::Male,
        "F" => Sex::Female,
        _ => Sex::Unknown,
    };
    let birthplace = pid
        .field(11)
        .into_iter()
        .flat_map(|f| f.repetitions())
        .find(|r| r.component(7).map(|c| c.raw()) == Some("BDL"))
        .and_then(|r| r.component(9))
        .map(|c| c.raw().to_owned())
        .filter(|c| !c.is_empty());
    let traits = Traits {
        birth_name,
        birth_given_names: given,
        birth_date,
        sex,
        birthplace_code: birthplace,
        used_name: comp(used, 1),
        used_given_name: comp(used, 2),
    };
    if let Err(e) = traits.check(today) {
        return Err(vec![err(
            "PID",
            Some(5),
            None,
            None,
            102,
            format!("traits d'identité refusés: {e}"),
        )]);
    }
    // PAM France: PID-32 VALI means qualified; the INS is kept only then.
    let reliability: Vec<&str> = pid
        .field(32)
        .iter()
        .flat_map(|f| f.repetitions())
        .map(|r| r.raw())
        .collect();
    let qualified = reliability.contains(&"VALI");
    let (ins, status) = match (ins, qualified) {
        (Some(ins), true) => (Some(ins), IdentityStatus::Qualified),
        _ => (None, IdentityStatus::Provisional),
    };
    let movement = movement(m, event, establishment)?;
    // ZFA (DMP): ZFA-1 status, ZFA-9 opposition to feeding (IO opposed, INO not,
    // NA not collected).
    let dmp = m.segment("ZFA", 1).map(|z| {
        let get = |n: usize| z.field(n).map(|f| f.raw().to_owned()).unwrap_or_default();
        store::hl7::DmpFeed {
            state: domain::documents::DmpState::from_zfa(&get(1)),
            opposition: match get(9).as_str() {
                "IO" => Some(true),
                "INO" => Some(false),
                _ => None,
            },
        }
    });
    Ok(Plan {
        feed: IdentityFeed::Upsert {
            territory,
            establishment,
            ipp,
            traits,
            ins,
            status,
            dmp,
        },
        movement,
        warnings,
    })
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
    let version = m.version().unwrap_or("");
    let rejection = if !version.starts_with("2.") {
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
    };
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
    let plan = match plan(&m, event.unwrap_or(""), &sender, today) {
        Ok(p) => p,
        Err(errors) => {
            return finish_without_effect(state, Some(&m), AckCode::Error, &errors, log, &ts).await;
        }
    };
    let code = if plan.warnings.is_empty() {
        AckCode::Accept
    } else {
        AckCode::Error
    };
    let ack_text = ack::build(&m, code, &plan.warnings, &ack_control_id(), &ts);
    log.status = if plan.warnings.is_empty() {
        "accepted".into()
    } else {
        "error".into()
    };
    log.errors = plan
        .warnings
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
        feed: plan.feed,
        movement: plan.movement,
        who,
        log: log.clone(),
    };
    let Some(result) = crate::ingest::submit(state, job).await else {
        return Outcome::NoAck;
    };
    match result {
        Ok(_) => Outcome::Ack(ack_text),
        Err(e) if is_duplicate_message(&e) => {
            match state.store.hl7_message_for(&log.sender, &control).await {
                Ok(Some(first)) => Outcome::Ack(first.ack),
                _ => Outcome::NoAck,
            }
        }
        Err(store::StoreError::Refused(why)) => {
            let errors = [err("MRG", Some(1), None, None, 207, why)];
            finish_without_effect(state, Some(&m), AckCode::Error, &errors, log, &ts).await
        }
        Err(store::StoreError::Conflict(why)) => {
            let code = if why.contains("inconnu") || why.contains("introuvable") {
                204
            } else {
                205
            };
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
            finish_without_effect(state, Some(&m), AckCode::Error, &errors, log, &ts).await
        }
        Err(e) => {
            tracing::error!(error = %e, "hl7: applying a message failed");
            Outcome::NoAck
        }
    }
}

/// Logs a message that changes nothing and returns its ACK (AE or AR).
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
