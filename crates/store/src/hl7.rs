//! HL7 v2 intake: known senders (MSH-3/MSH-4 → establishment), the message log
//! (every raw message with its status, errors and the ACK sent), and the identity
//! feed applied in the same transaction as the log entry, so that a message is
//! acknowledged only once its effects are committed and a repeated control id from
//! the same sender finds the first ACK and has no second effect.

use domain::audit::AuditActor;
use domain::identity::{IdentityStatus, PatientRecord, Traits};
use domain::ins::Ins;
use domain::{EstablishmentId, PatientId, TerritoryId};

use crate::audit::NewAudit;
use crate::macros::rows_to;
use crate::orgs::parse_id;
use crate::patients::{IdentityChange, NewPatient};
use crate::tx::WritePool as _;
use crate::tx::{AsTx, Tx, q};
use crate::{Conflict, Result, Store, StoreError};

/// A message to log.
#[derive(Debug, Clone)]
pub struct NewHl7Message {
    /// When it arrived (Unix ms).
    pub received_at_ms: i64,
    /// `MSH-3|MSH-4` as received (empty when unreadable).
    pub sender: String,
    /// MSH-10, when readable.
    pub control_id: Option<String>,
    /// `ADT^A01`.
    pub message_type: String,
    /// `accepted`, `error` (AE) or `rejected` (AR).
    pub status: String,
    /// Errors, one per line.
    pub errors: String,
    /// The ACK sent back.
    pub ack: String,
    /// The message as received.
    pub raw: Vec<u8>,
    /// The original log entry, when this is a replay.
    pub replay_of: Option<String>,
    /// The establishment the sender feeds, when known.
    pub establishment: Option<EstablishmentId>,
}

db_row! {
    /// A logged message.
    pub struct Hl7LogEntry {
        id: String,
        received_at_ms: i64,
        sender: String,
        control_id: Option<String>,
        message_type: String,
        status: String,
        errors: String,
        ack: String,
        raw: Vec<u8>,
        patient_id: Option<String>,
        establishment_id: Option<String>,
        replay_of: Option<String>,
    }
}

/// One message's planned effects (see [`Store::apply_feeds`]).
#[derive(Debug, Clone)]
pub struct FeedJob {
    /// The identity change.
    pub feed: IdentityFeed,
    /// The stay's movement, if any.
    pub movement: Option<crate::encounters::MovementFeed>,
    /// Who, for the audit trail.
    pub who: AuditActor,
    /// The log row (with the ACK to send).
    pub log: NewHl7Message,
}

/// An identity change carried by an ADT message.
#[derive(Debug, Clone)]
pub enum IdentityFeed {
    /// Create or update the record with this IPP (A28, A31, A01, A04, A05, A08...).
    Upsert {
        /// Identity domain.
        territory: TerritoryId,
        /// Establishment the sender feeds (the patient gets linked to it).
        establishment: EstablishmentId,
        /// The IPP (PID-3 of type PI).
        ipp: String,
        /// Traits.
        traits: Traits,
        /// INS, only when valid and qualified.
        ins: Option<Ins>,
        /// Status.
        status: IdentityStatus,
        /// What the message says of the patient's DMP (PAM France ZFA), if anything.
        dmp: Option<DmpFeed>,
        /// What it says of the addresses, phones, close ones, GP, language, death.
        demographics: Box<domain::demographics::DemographicsPatch>,
    },
    /// A47 with the old IPP in MRG-1: the record's IPP changes.
    ChangeIpp {
        /// Identity domain.
        territory: TerritoryId,
        /// MRG-1 IPP.
        old_ipp: String,
        /// PID-3 IPP.
        new_ipp: String,
    },
    /// A40: merge the record with IPP `merged_ipp` into the one with `survivor_ipp`.
    Merge {
        /// Identity domain.
        territory: TerritoryId,
        /// PID-3 IPP.
        survivor_ipp: String,
        /// MRG-1 IPP.
        merged_ipp: String,
    },
}

/// The DMP part of an identity feed (ZFA-1 status, ZFA-9 opposition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmpFeed {
    /// The record's status.
    pub state: domain::documents::DmpState,
    /// Opposition to feeding it; `None` when not collected (kept as it was).
    pub opposition: Option<bool>,
    /// Consent to professionals consulting it (ZFA-11); `None` when not
    /// collected (kept as it was).
    pub consultation: Option<bool>,
}

const LOG_COLUMNS: &str = "id, received_at_ms, sender, control_id, message_type, status, errors, ack, raw, patient_id, establishment_id, replay_of";

/// The message log's insert up to `VALUES ` (twelve values per row), its
/// column list written once.
macro_rules! insert_logs {
    () => {
        "INSERT INTO hl7_messages (id, received_at_ms, sender, control_id, message_type, status, errors, ack, raw, patient_id, replay_of, establishment_id) VALUES "
    };
}

/// Inserts a log row inside `tx`; a repeated (sender, control id) is a conflict on
/// `hl7_messages_dedup`.
pub(crate) async fn insert_log(
    tx: &mut Tx<'_>,
    id: &str,
    m: &NewHl7Message,
    patient: Option<PatientId>,
) -> Result<()> {
    bind_log(
        q(concat!(
            insert_logs!(),
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )),
        id,
        m,
        patient,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// The log rows of several messages (a group commit's), added to `writes`:
/// one insert per `MAX_ROWS_PER_INSERT`.
fn logs_in(writes: &mut crate::tx::Writes, entries: &[(&NewHl7Message, PatientId)]) {
    writes.insert_many(insert_logs!(), "", 12, entries, |query, (m, patient)| {
        bind_log(query, &uuid::Uuid::now_v7().to_string(), m, Some(*patient))
    });
}

/// Binds a log entry's twelve values.
fn bind_log(
    query: crate::tx::Q,
    id: &str,
    m: &NewHl7Message,
    patient: Option<PatientId>,
) -> crate::tx::Q {
    query
        .bind(id)
        .bind(m.received_at_ms)
        .bind(&m.sender)
        .bind(&m.control_id)
        .bind(&m.message_type)
        .bind(&m.status)
        .bind(&m.errors)
        .bind(&m.ack)
        .bind(&m.raw)
        .bind(patient.map(|p| p.to_string()))
        .bind(&m.replay_of)
        .bind(m.establishment.map(|e| e.to_string()))
}

fn audit(who: &AuditActor, patient: PatientId, action: &str, now_ms: i64) -> NewAudit {
    NewAudit {
        at_ms: now_ms,
        actor: who.clone(),
        patient: Some(patient.to_string()),
        action: action.to_owned(),
        resource: format!("Patient/{patient}"),
        outcome: "success".to_owned(),
    }
}

/// A sender to declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHl7Sender {
    /// MSH-3.
    pub application: String,
    /// MSH-4.
    pub facility: String,
    /// The establishment it feeds.
    pub establishment: EstablishmentId,
    /// The IPP assigning authority it may use besides the territory's OID
    /// (PID-3.4, its namespace or universal id).
    pub ipp_authority: Option<String>,
    /// Source addresses or CIDR blocks allowed over plain MLLP.
    pub allowed_addresses: Vec<String>,
    /// The subject (CN) of its TLS client certificate.
    pub tls_subject: Option<String>,
}

/// A declared sender as the intake needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hl7Sender {
    /// The establishment it feeds.
    pub establishment: EstablishmentId,
    /// Its territory (identity domain).
    pub territory: TerritoryId,
    /// The territory's OID (the IPP authority of the domain).
    pub territory_oid: String,
    /// Another IPP authority declared for it.
    pub ipp_authority: Option<String>,
    /// Source addresses or CIDR blocks allowed over plain MLLP.
    pub allowed_addresses: Vec<String>,
    /// The subject (CN) of its TLS client certificate.
    pub tls_subject: Option<String>,
}

/// Whether a conflict is the message log's deduplication (a repeated control id).
pub fn is_duplicate_message(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict(Conflict::DuplicateMessage))
}

/// One message's effects inside its savepoint (the identity, the movement
/// and the enrolment it may propose) and its log entry; the audit entries to
/// append once the group is done.
async fn apply_feed(
    tx: &mut Tx<'_>,
    job: &FeedJob,
    now_ms: i64,
) -> Result<(PatientId, Vec<NewAudit>)> {
    let (patient, audits) = apply_effects(tx, job, now_ms).await?;
    let log_id = uuid::Uuid::now_v7().to_string();
    insert_log(tx, &log_id, &job.log, Some(patient)).await?;
    Ok((patient, audits))
}

/// Applies a whole group with no savepoint, in as few statements as it can:
/// the records it creates inserted together (an upsert whose IPP no record
/// carries and no other message of the group names), the others one message
/// after the other, then its log and audit rows with one statement each. The
/// patients, or `Err` at the first message that fails (the caller rolls back
/// and takes them one savepoint each). A control id repeated within the group
/// is such a failure.
async fn apply_together(tx: &mut Tx<'_>, jobs: &[FeedJob], now_ms: i64) -> Result<Vec<PatientId>> {
    let mut seen = std::collections::HashSet::with_capacity(jobs.len());
    for job in jobs {
        if let Some(control) = &job.log.control_id
            && !seen.insert((job.log.sender.as_str(), control.as_str()))
        {
            return Err(StoreError::Conflict(Conflict::DuplicateMessage));
        }
    }
    let mut writes = crate::tx::Writes::default();
    let together = upsert_together(tx, &mut writes, jobs, now_ms).await?;
    let stays = stays_together(tx, &mut writes, jobs, &together, now_ms).await?;
    // The records' rows written together go with the log's, unless a
    // statement of the group reads or refers to them before.
    let read_after = jobs
        .iter()
        .zip(&together)
        .zip(&stays)
        .any(|((job, new), stay)| {
            new.is_none()
                || (job.movement.is_some() && stay.is_none())
                || matches!(&job.feed, IdentityFeed::Upsert { dmp: Some(_), .. })
        });
    if read_after {
        std::mem::take(&mut writes).execute(tx).await?;
    }
    let mut patients = Vec::with_capacity(jobs.len());
    let mut audits: Vec<NewAudit> = Vec::with_capacity(jobs.len() * 2);
    for ((job, new), stay) in jobs.iter().zip(together).zip(stays) {
        let patient = match new {
            Some(done) => {
                let id = match done {
                    Together::Created(id) => {
                        audits.push(audit(&job.who, id, "create", now_ms));
                        id
                    }
                    Together::Updated(id, demographics) => {
                        audits.push(audit(&job.who, id, "update", now_ms));
                        audits.extend(demographics);
                        id
                    }
                };
                if let IdentityFeed::Upsert { dmp: Some(d), .. } = &job.feed {
                    set_dmp(tx, id, d, now_ms).await?;
                }
                match stay {
                    Some(encounter) => audits.push(stay_audit(job, id, encounter, now_ms)),
                    None => audits.extend(apply_stay(tx, id, job, now_ms).await?),
                }
                id
            }
            None => {
                let (patient, a) = apply_effects(tx, job, now_ms).await?;
                audits.extend(a);
                patient
            }
        };
        patients.push(patient);
    }
    let logs: Vec<(&NewHl7Message, PatientId)> = jobs
        .iter()
        .map(|j| &j.log)
        .zip(patients.iter().copied())
        .collect();
    logs_in(&mut writes, &logs);
    crate::audit::audits_into(tx, &mut writes, &audits).await?;
    writes.execute(tx).await?;
    Ok(patients)
}

impl IdentityFeed {
    /// The record an upsert creates when its IPP is new (`None` for the
    /// other changes).
    fn new_patient(&self) -> Option<NewPatient> {
        let IdentityFeed::Upsert {
            territory,
            establishment,
            ipp,
            traits,
            ins,
            status,
            ..
        } = self
        else {
            return None;
        };
        Some(NewPatient {
            territory: *territory,
            ipp: Some(ipp.clone()),
            traits: traits.clone(),
            ins: ins.clone(),
            status: *status,
            establishment: Some(*establishment),
            demographics: Default::default(),
        })
    }
}

/// The IPPs a feed names, with their domain.
fn ipps_named(feed: &IdentityFeed) -> Vec<(TerritoryId, &str)> {
    match feed {
        IdentityFeed::Upsert { territory, ipp, .. } => vec![(*territory, ipp.as_str())],
        IdentityFeed::ChangeIpp {
            territory,
            old_ipp,
            new_ipp,
        } => vec![
            (*territory, old_ipp.as_str()),
            (*territory, new_ipp.as_str()),
        ],
        IdentityFeed::Merge {
            territory,
            survivor_ipp,
            merged_ipp,
        } => vec![
            (*territory, survivor_ipp.as_str()),
            (*territory, merged_ipp.as_str()),
        ],
    }
}

/// What [`upsert_together`] did of a message.
#[derive(Debug, Clone)]
enum Together {
    /// Created this record.
    Created(PatientId),
    /// Updated this record, with the audit entry of its demographics' change
    /// if they changed.
    Updated(PatientId, Option<NewAudit>),
}

impl Together {
    /// The record written.
    fn patient(&self) -> PatientId {
        match self {
            Together::Created(id) | Together::Updated(id, _) => *id,
        }
    }
}

/// The group's upserts whose IPP no other message of the group names (so
/// that no other message depends on the order), applied together: the
/// records of the new IPPs created, those of the known ones updated as
/// [`upsert`] updates them (not those whose identity the message repeats:
/// they keep their version), their words and demographics replaced, their
/// links to the sender's establishment added. One lookup finds the known
/// records (and locks them on PostgreSQL; SQLite's writer is alone), so the
/// version read is the one updated; one read their demographics; one
/// statement (run here) clears the words and demographics replaced and, on
/// PostgreSQL, updates the records (SQLite: one update each in the same
/// script); the inserts go into `writes`, which the caller runs before any
/// statement that reads those records. For each job, what it did (`None`:
/// the caller applies it alone: a merged record's IPP, an IPP the group
/// names twice, another change than an upsert).
async fn upsert_together(
    tx: &mut Tx<'_>,
    writes: &mut crate::tx::Writes,
    jobs: &[FeedJob],
    now_ms: i64,
) -> Result<Vec<Option<Together>>> {
    let mut named: std::collections::HashMap<(TerritoryId, &str), usize> =
        std::collections::HashMap::with_capacity(jobs.len());
    for job in jobs {
        for key in ipps_named(&job.feed) {
            *named.entry(key).or_default() += 1;
        }
    }
    let alone: Vec<(TerritoryId, &str)> = jobs
        .iter()
        .filter_map(|j| match &j.feed {
            IdentityFeed::Upsert { territory, ipp, .. }
                if named.get(&(*territory, ipp.as_str())) == Some(&1) =>
            {
                Some((*territory, ipp.as_str()))
            }
            _ => None,
        })
        .collect();
    let mut done = vec![None; jobs.len()];
    if alone.is_empty() {
        return Ok(done);
    }
    let found = records_of(tx, &alone).await?;
    let mut news: Vec<(usize, PatientId, NewPatient)> = Vec::with_capacity(alone.len());
    let mut known: Vec<(
        usize,
        PatientRecord,
        &domain::demographics::DemographicsPatch,
        &[Option<String>; 12],
    )> = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let (Some(p), IdentityFeed::Upsert { demographics, .. }) =
            (job.feed.new_patient(), &job.feed)
        else {
            continue;
        };
        let Some(ipp) = p.ipp.clone() else { continue };
        if named.get(&(p.territory, ipp.as_str())) != Some(&1) {
            continue;
        }
        match found.get(&(p.territory.to_string(), ipp.clone())) {
            None => news.push((i, PatientId::new(), p)),
            // A merged record's message goes alone (and is refused there).
            Some(f) if f.merged => {}
            Some(f) => known.push((
                i,
                PatientRecord {
                    id: f.id,
                    territory: p.territory,
                    ipp,
                    traits: p.traits,
                    ins: p.ins,
                    status: p.status,
                    merged_into: None,
                    version: f.version,
                    updated_at_ms: now_ms,
                },
                demographics.as_ref(),
                &f.identity,
            )),
        }
    }
    if !news.is_empty() {
        let rows: Vec<(PatientId, &NewPatient)> = news.iter().map(|(_, id, p)| (*id, p)).collect();
        crate::patients::patients_in(writes, &rows, now_ms);
        let demographics: Vec<(PatientId, &domain::demographics::DemographicsPatch)> = news
            .iter()
            .filter_map(|(i, id, _)| match &jobs.get(*i)?.feed {
                IdentityFeed::Upsert { demographics, .. } => Some((*id, demographics.as_ref())),
                _ => None,
            })
            .collect();
        crate::demographics::new_many_in(writes, &demographics, now_ms);
        for (i, id, _) in &news {
            if let Some(slot) = done.get_mut(*i) {
                *slot = Some(Together::Created(*id));
            }
        }
    }
    if !known.is_empty() {
        let patches: Vec<(PatientId, &domain::demographics::DemographicsPatch)> = known
            .iter()
            .map(|(_, r, patch, _)| (r.id, *patch))
            .collect();
        let mut cleared = crate::tx::Writes::default();
        let changed =
            crate::demographics::patched_in(tx, &mut cleared, writes, &patches, now_ms).await?;
        // A record whose identity the message repeats keeps its row: a new
        // version only if its demographics change (its resource is the
        // record and its demographics); one renamed gets its words again.
        let mut updated: Vec<(&PatientRecord, bool)> = Vec::new();
        let mut touched: Vec<PatientId> = Vec::new();
        for (_, r, _, stored) in &known {
            match crate::patients::identity_change(r, stored) {
                IdentityChange::Changed { renamed } => updated.push((r, renamed)),
                IdentityChange::Same if changed.contains_key(&r.id) => touched.push(r.id),
                IdentityChange::Same => {}
            }
        }
        let pg = matches!(tx, Tx::Pg(_));
        crate::patients::updates_in(&mut cleared, writes, &updated, now_ms, pg);
        crate::patients::touches_in(&mut cleared, &touched, now_ms, pg);
        cleared.execute(tx).await?;
        let establishments: Vec<(PatientId, EstablishmentId)> = known
            .iter()
            .filter_map(|(i, r, _, _)| match &jobs.get(*i)?.feed {
                IdentityFeed::Upsert { establishment, .. } => Some((r.id, *establishment)),
                _ => None,
            })
            .collect();
        writes.insert_many(
            "INSERT INTO patient_establishments (patient_id, establishment_id, since_ms) VALUES ",
            " ON CONFLICT DO NOTHING",
            3,
            &establishments,
            |q, (p, e)| q.bind(p.to_string()).bind(e.to_string()).bind(now_ms),
        );
        for (i, r, _, _) in &known {
            let Some(job) = jobs.get(*i) else { continue };
            let parts = changed.get(&r.id);
            let demographics =
                parts.map(|parts| crate::demographics::audit(&job.who, r.id, parts, now_ms));
            if let Some(slot) = done.get_mut(*i) {
                *slot = Some(Together::Updated(r.id, demographics));
            }
        }
    }
    Ok(done)
}

/// A record found by its IPP (see [`records_of`]).
struct Found {
    id: PatientId,
    version: i64,
    merged: bool,
    /// Its identity as stored (`crate::patients::identity_of`).
    identity: [Option<String>; 12],
}

/// A record's identity as `row` holds it (`crate::patients::IDENTITY_COLUMNS`).
fn stored_identity(row: &crate::tx::Row) -> Result<[Option<String>; 12]> {
    let mut identity: [Option<String>; 12] = Default::default();
    for (value, column) in identity.iter_mut().zip(crate::patients::IDENTITY_COLUMNS) {
        *value = row.get(column)?;
    }
    Ok(identity)
}

/// The records that carry these (domain, IPP) already (merged or not), by
/// (domain, IPP), locked until the transaction ends on PostgreSQL (see
/// `crate::tx::fetch_pairs`).
async fn records_of(
    tx: &mut Tx<'_>,
    keys: &[(TerritoryId, &str)],
) -> Result<std::collections::HashMap<(String, String), Found>> {
    let keys: Vec<(String, &str)> = keys.iter().map(|(t, ipp)| (t.to_string(), *ipp)).collect();
    let rows = crate::tx::fetch_pairs(
        tx,
        &format!(
            "SELECT id, territory_id, ipp, version, merged_into, {} FROM patients",
            crate::patients::IDENTITY_COLUMNS.join(", ")
        ),
        ("territory_id", "ipp"),
        "FOR UPDATE",
        &keys,
    )
    .await?;
    let mut found = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        found.insert(
            (
                row.get::<String>("territory_id")?,
                row.get::<String>("ipp")?,
            ),
            Found {
                id: parse_id(&row.get::<String>("id")?)?,
                version: row.get("version")?,
                merged: row.get::<Option<String>>("merged_into")?.is_some(),
                identity: stored_identity(&row)?,
            },
        );
    }
    Ok(found)
}

/// The stay a message moves (its movement applied, an enrolment proposed),
/// and the audit entry of that write.
async fn apply_stay(
    tx: &mut Tx<'_>,
    patient: PatientId,
    job: &FeedJob,
    now_ms: i64,
) -> Result<Option<NewAudit>> {
    let Some(mv) = &job.movement else {
        return Ok(None);
    };
    let encounter = crate::encounters::apply_movement(tx, patient, mv, now_ms).await?;
    propose_enrolment(tx, patient, mv, now_ms).await?;
    Ok(Some(stay_audit(job, patient, encounter, now_ms)))
}

/// The audit entry of a message's movement of `encounter`.
fn stay_audit(
    job: &FeedJob,
    patient: PatientId,
    encounter: domain::EncounterId,
    now_ms: i64,
) -> NewAudit {
    NewAudit {
        at_ms: now_ms,
        actor: job.who.clone(),
        patient: Some(patient.to_string()),
        action: "write-clinical".to_owned(),
        resource: format!("Encounter/{encounter}"),
        outcome: "success".to_owned(),
    }
}

/// The movements of the messages whose records [`upsert_together`] wrote,
/// applied together with `crate::encounters::movements_together` (their
/// rows into `writes`), and the enrolments they propose. For each job, its
/// stay (`None`: no movement, or one the caller applies alone).
async fn stays_together(
    tx: &mut Tx<'_>,
    writes: &mut crate::tx::Writes,
    jobs: &[FeedJob],
    together: &[Option<Together>],
    now_ms: i64,
) -> Result<Vec<Option<domain::EncounterId>>> {
    let mut moving = Vec::new();
    let mut moves = Vec::new();
    for (i, (job, new)) in jobs.iter().zip(together).enumerate() {
        if let Some(mv) = &job.movement {
            moving.push(i);
            moves.push((new.as_ref().map(Together::patient), mv));
        }
    }
    let mut stays = vec![None; jobs.len()];
    if moves.is_empty() {
        return Ok(stays);
    }
    let done = crate::encounters::movements_together(tx, writes, &moves, now_ms).await?;
    let mut moved = Vec::with_capacity(done.len());
    for ((i, (patient, mv)), stay) in moving.into_iter().zip(moves).zip(done) {
        if let (Some(stay), Some(patient)) = (stay, patient) {
            moved.push((patient, mv));
            if let Some(slot) = stays.get_mut(i) {
                *slot = Some(stay);
            }
        }
    }
    proposals_in(tx, writes, &moved, now_ms).await?;
    Ok(stays)
}

/// One message's effects: the record's identity, its stay, the audit entries.
async fn apply_effects(
    tx: &mut Tx<'_>,
    job: &FeedJob,
    now_ms: i64,
) -> Result<(PatientId, Vec<NewAudit>)> {
    let mut audits: Vec<NewAudit> = Vec::with_capacity(2);
    let patient = match &job.feed {
        IdentityFeed::Upsert {
            dmp, demographics, ..
        } => {
            let p = job.feed.new_patient().ok_or(StoreError::NotFound)?;
            let id = match upsert(tx, &p, now_ms).await? {
                Upserted::Created(id) => {
                    // A creation's entry covers the demographics it starts with.
                    audits.push(audit(&job.who, id, "create", now_ms));
                    crate::demographics::apply_new(tx, id, demographics, now_ms).await?;
                    id
                }
                Upserted::Updated { id, kept } => {
                    audits.push(audit(&job.who, id, "update", now_ms));
                    if let Some(a) =
                        crate::demographics::apply(tx, id, demographics, &job.who, now_ms).await?
                    {
                        audits.push(a);
                        // Its resource changed: a new version.
                        if kept {
                            crate::patients::touch(tx, id, now_ms).await?;
                        }
                    }
                    id
                }
            };
            if let Some(d) = dmp {
                set_dmp(tx, id, d, now_ms).await?;
            }
            id
        }
        IdentityFeed::ChangeIpp {
            territory,
            old_ipp,
            new_ipp,
        } => {
            let id = by_ipp(tx, *territory, old_ipp).await?;
            q("UPDATE patients SET ipp = $1, version = version + 1, updated_at_ms = $2 WHERE id = $3")
                .bind(new_ipp)
                .bind(now_ms)
                .bind(id.to_string())
                .execute(tx)
                .await?;
            audits.push(audit(&job.who, id, "update", now_ms));
            id
        }
        IdentityFeed::Merge {
            territory,
            survivor_ipp,
            merged_ipp,
        } => {
            let survivor = by_ipp(tx, *territory, survivor_ipp).await?;
            let merged = by_ipp(tx, *territory, merged_ipp).await?;
            merge_feed(tx, job.log.establishment, survivor, merged, now_ms).await?;
            audits.push(audit(&job.who, merged, "merge", now_ms));
            audits.push(audit(&job.who, survivor, "merge", now_ms));
            survivor
        }
    };
    audits.extend(apply_stay(tx, patient, job, now_ms).await?);
    Ok((patient, audits))
}

const BY_IPP: &str =
    "SELECT id, version, merged_into FROM patients WHERE territory_id = $1 AND ipp = $2";

/// The record with this IPP in the domain (merged or not).
async fn by_ipp(tx: &mut Tx<'_>, territory: TerritoryId, ipp: &str) -> Result<PatientId> {
    let row = q(BY_IPP)
        .planned_each_time()
        .bind(territory.to_string())
        .bind(ipp)
        .fetch_optional(tx)
        .await?
        .ok_or_else(|| StoreError::Conflict(Conflict::UnknownIpp(ipp.to_owned())))?;
    parse_id(&row.get::<String>("id")?)
}

/// What [`upsert`] did.
enum Upserted {
    /// Created this record.
    Created(PatientId),
    /// Updated this record; `kept`: the message repeated its identity, the
    /// row was left as it was.
    Updated { id: PatientId, kept: bool },
}

/// Creates the record of `p.ipp` (looked up by [`records_of`]), or updates
/// it (not when merged; its row and version kept when the message repeats
/// its identity); links it to the sender's establishment.
async fn upsert(tx: &mut Tx<'_>, p: &NewPatient, now_ms: i64) -> Result<Upserted> {
    let ipp = p.ipp.clone().unwrap_or_default();
    let mut found = records_of(tx, &[(p.territory, ipp.as_str())]).await?;
    let Some(f) = found.remove(&(p.territory.to_string(), ipp.clone())) else {
        let id = PatientId::new();
        crate::patients::insert_patient(tx, id, p, now_ms).await?;
        return Ok(Upserted::Created(id));
    };
    if f.merged {
        return Err(StoreError::Conflict(Conflict::MergedIpp(ipp)));
    }
    let id = f.id;
    let record = PatientRecord {
        id,
        territory: p.territory,
        ipp,
        traits: p.traits.clone(),
        ins: p.ins.clone(),
        status: p.status,
        merged_into: None,
        version: f.version,
        updated_at_ms: now_ms,
    };
    // A record whose identity the message repeats keeps its row (the caller
    // makes a new version if its demographics change).
    let change = crate::patients::identity_change(&record, &f.identity);
    if let IdentityChange::Changed { renamed } = change
        && crate::patients::update_patient(tx, &record, renamed, now_ms).await? == 0
    {
        return Err(StoreError::Stale {
            current: record.version,
        });
    }
    let kept = matches!(change, IdentityChange::Same);
    if let Some(e) = p.establishment {
        q("INSERT INTO patient_establishments (patient_id, establishment_id, since_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(id.to_string())
            .bind(e.to_string())
            .bind(now_ms)
            .execute(tx)
            .await?;
    }
    Ok(Upserted::Updated { id, kept })
}

/// What the feed says of the patient's DMP (an opposition or a consent not told
/// is kept).
async fn set_dmp(tx: &mut Tx<'_>, patient: PatientId, d: &DmpFeed, now_ms: i64) -> Result<()> {
    q("INSERT INTO patient_dmp (patient_id, state, opposition, updated_at_ms, consultation_consent) VALUES ($1, $2, COALESCE($3, 0), $4, $5) \
       ON CONFLICT (patient_id) DO UPDATE SET state = excluded.state, opposition = COALESCE($3, patient_dmp.opposition), updated_at_ms = excluded.updated_at_ms, \
       consultation_consent = COALESCE($5, patient_dmp.consultation_consent)")
    .bind(patient.to_string())
    .bind(d.state.code())
    .bind(d.opposition.map(i64::from))
    .bind(now_ms)
    .bind(d.consultation.map(i64::from))
    .execute(tx)
    .await?;
    Ok(())
}

/// Merges two records of the feed: not a record with itself, and only when
/// the sender's establishment cares for both (`domain::policy::feed_may_merge`).
async fn merge_feed(
    tx: &mut Tx<'_>,
    sender: Option<EstablishmentId>,
    survivor: PatientId,
    merged: PatientId,
    now_ms: i64,
) -> Result<()> {
    if survivor == merged {
        return Err(StoreError::Conflict(Conflict::SelfMerge));
    }
    if let Some(sender) = sender {
        let links = "SELECT establishment_id FROM patient_establishments WHERE patient_id = $1";
        let mut of = Vec::with_capacity(2);
        for id in [survivor, merged] {
            let ids: Vec<String> = q(links).bind(id.to_string()).fetch_column(tx).await?;
            of.push(
                ids.iter()
                    .map(|s| parse_id(s))
                    .collect::<Result<Vec<EstablishmentId>>>()?,
            );
        }
        let (s_links, m_links) = (
            of.first().cloned().unwrap_or_default(),
            of.get(1).cloned().unwrap_or_default(),
        );
        if let Err(why) = domain::policy::feed_may_merge(sender, &s_links, &m_links) {
            return Err(StoreError::Refused(why.to_owned()));
        }
    }
    crate::patients::merge(tx, survivor, merged, now_ms).await
}

/// The enrolment a movement into a unit may propose (the rule is
/// `domain::monitoring::enrolment_proposal`): one open proposal at most, none
/// while an enrolment is active.
async fn propose_enrolment(
    tx: &mut Tx<'_>,
    patient: PatientId,
    mv: &crate::encounters::MovementFeed,
    now_ms: i64,
) -> Result<()> {
    let mut writes = crate::tx::Writes::default();
    proposals_in(tx, &mut writes, &[(patient, mv)], now_ms).await?;
    writes.execute(tx).await?;
    Ok(())
}

/// The enrolments these movements propose (see [`propose_enrolment`]), into
/// `writes`: one read of the units of their establishments that propose one,
/// then one insert per proposal.
async fn proposals_in(
    tx: &mut Tx<'_>,
    writes: &mut crate::tx::Writes,
    moves: &[(PatientId, &crate::encounters::MovementFeed)],
    now_ms: i64,
) -> Result<()> {
    let mut establishments: Vec<String> = Vec::new();
    for (_, mv) in moves {
        let e = mv.establishment.to_string();
        if mv.location.unit.is_some() && !establishments.contains(&e) {
            establishments.push(e);
        }
    }
    if establishments.is_empty() {
        return Ok(());
    }
    let rows = establishments
        .iter()
        .fold(
            crate::tx::q_built(format!(
                "SELECT establishment_id, code, monitoring_programme, monitoring_trigger FROM units \
                 WHERE establishment_id IN ({}) AND monitoring_programme IS NOT NULL",
                crate::tx::in_list(establishments.len())
            )),
            |q, e| q.bind(e),
        )
        .fetch_all(tx)
        .await?;
    let mut configured = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        configured.insert(
            (
                row.get::<String>("establishment_id")?,
                row.get::<String>("code")?,
            ),
            (
                row.get::<String>("monitoring_programme")?,
                row.get::<Option<String>>("monitoring_trigger")?,
            ),
        );
    }
    for (patient, mv) in moves {
        let Some(unit) = &mv.location.unit else {
            continue;
        };
        let Some((programme, trigger)) =
            configured.get(&(mv.establishment.to_string(), unit.clone()))
        else {
            continue;
        };
        let Some(reason) = domain::monitoring::enrolment_proposal(
            &mv.trigger,
            trigger.as_deref(),
            mv.cancel,
            unit,
        ) else {
            continue;
        };
        writes.push(
            q("INSERT INTO enrolment_proposals (id, patient_id, establishment_id, programme_id, reason, status, created_at_ms) \
               SELECT $1, $2, $3, $4, $5, 'proposed', $6 WHERE NOT EXISTS \
               (SELECT 1 FROM enrolments WHERE patient_id = $2 AND establishment_id = $3 AND programme_id = $4 AND status = 'active') \
               ON CONFLICT (patient_id, establishment_id, programme_id) WHERE status = 'proposed' DO NOTHING")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(patient.to_string())
            .bind(mv.establishment.to_string())
            .bind(programme)
            .bind(reason)
            .bind(now_ms),
        );
    }
    Ok(())
}

impl Store {
    /// Registers a sender: messages whose MSH-3 and MSH-4 match feed `establishment`.
    pub async fn create_hl7_sender(
        &self,
        application: &str,
        facility: &str,
        establishment: EstablishmentId,
        now_ms: i64,
    ) -> Result<()> {
        self.declare_hl7_sender(
            &NewHl7Sender {
                application: application.to_owned(),
                facility: facility.to_owned(),
                establishment,
                ipp_authority: None,
                allowed_addresses: Vec::new(),
                tls_subject: None,
            },
            now_ms,
        )
        .await
    }

    /// Registers a sender with what binds it: its IPP authority, the source
    /// addresses allowed over plain MLLP, its TLS certificate's subject.
    pub async fn declare_hl7_sender(&self, s: &NewHl7Sender, now_ms: i64) -> Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO hl7_senders (id, sending_application, sending_facility, establishment_id, created_at_ms, ipp_authority, allowed_addresses, tls_subject) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&s.application)
            .bind(&s.facility)
            .bind(s.establishment.to_string())
            .bind(now_ms)
            .bind(&s.ipp_authority)
            .bind(s.allowed_addresses.join(","))
            .bind(&s.tls_subject)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The senders feeding one establishment, by MSH-3 then MSH-4.
    pub async fn hl7_senders_of(
        &self,
        establishment: EstablishmentId,
    ) -> Result<Vec<NewHl7Sender>> {
        on_pool!(self, read, |pool| {
            let mut tx = pool.begin_write().await?;
            let rows = q("SELECT sending_application, sending_facility, ipp_authority, allowed_addresses, tls_subject FROM hl7_senders \
                          WHERE establishment_id = $1 ORDER BY sending_application, sending_facility")
                .bind(establishment.to_string())
                .fetch_all(&mut tx.as_tx())
                .await?;
            rows.iter()
                .map(|r| {
                    let allowed: String = r.get("allowed_addresses")?;
                    Ok(NewHl7Sender {
                        application: r.get("sending_application")?,
                        facility: r.get("sending_facility")?,
                        establishment,
                        ipp_authority: r.get("ipp_authority")?,
                        allowed_addresses: allowed
                            .split(',')
                            .filter(|a| !a.is_empty())
                            .map(str::to_owned)
                            .collect(),
                        tls_subject: r.get("tls_subject")?,
                    })
                })
                .collect()
        })
    }

    /// A declared sender (with its establishment's territory and that
    /// territory's OID).
    pub async fn hl7_sender(&self, application: &str, facility: &str) -> Result<Option<Hl7Sender>> {
        on_pool!(self, read, |pool| {
            use sqlx::Row;
            let rows = sqlx::query(
                "SELECT s.establishment_id, e.territory_id, t.oid, s.ipp_authority, s.allowed_addresses, s.tls_subject \
                 FROM hl7_senders s JOIN establishments e ON e.id = s.establishment_id JOIN territories t ON t.id = e.territory_id \
                 WHERE s.sending_application = $1 AND s.sending_facility = $2",
            )
            .bind(application)
            .bind(facility)
            .fetch_all(pool)
            .await?;
            match rows.first() {
                Some(r) => Ok(Some(Hl7Sender {
                    establishment: parse_id(&r.try_get::<String, _>("establishment_id")?)?,
                    territory: parse_id(&r.try_get::<String, _>("territory_id")?)?,
                    territory_oid: r.try_get("oid")?,
                    ipp_authority: r.try_get("ipp_authority")?,
                    allowed_addresses: r
                        .try_get::<String, _>("allowed_addresses")?
                        .split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    tls_subject: r.try_get("tls_subject")?,
                })),
                None => Ok(None),
            }
        })
    }

    /// The first log entry for (sender, control id), if any (original, not a replay).
    pub async fn hl7_message_for(
        &self,
        sender: &str,
        control_id: &str,
    ) -> Result<Option<Hl7LogEntry>> {
        let sql = format!(
            "SELECT {LOG_COLUMNS} FROM hl7_messages WHERE sender = $1 AND control_id = $2 AND replay_of IS NULL"
        );
        // A duplicate racing with its first copy is caught by the unique index at
        // commit; the caller then reads again. So the reader pool is enough here.
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(sender)
                .bind(control_id)
                .fetch_all(pool)
                .await?;
            Ok(rows_to::<_, Hl7LogEntry>(&rows)?.into_iter().next())
        })
    }

    /// Logs a message that has no effect (rejected, or in error before any change).
    pub async fn log_hl7_message(&self, m: &NewHl7Message) -> Result<String> {
        let id = uuid::Uuid::now_v7().to_string();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            crate::hl7::insert_log(&mut tx.as_tx(), &id, m, None).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Applies an identity change and logs the message, in one transaction. The
    /// change is audited as done by `who` (the sender, as a system actor).
    pub async fn apply_identity_feed(
        &self,
        feed: &IdentityFeed,
        movement: Option<&crate::encounters::MovementFeed>,
        who: &AuditActor,
        log: &NewHl7Message,
        now_ms: i64,
    ) -> Result<PatientId> {
        let job = FeedJob {
            feed: feed.clone(),
            movement: movement.cloned(),
            who: who.clone(),
            log: log.clone(),
        };
        let mut results = self.apply_feeds(std::slice::from_ref(&job), now_ms).await?;
        results.pop().unwrap_or(Err(StoreError::NotFound))
    }

    /// Applies several messages' effects in one transaction (group commit): each in
    /// its own savepoint, so one message's conflict (a duplicate control id, an
    /// unknown IPP) rolls back only that message. The audit entries of the messages
    /// that succeeded are chained last, with one read and one write of the head.
    /// `Err` only when the transaction itself fails (nothing is committed then).
    pub async fn apply_feeds(
        &self,
        jobs: &[FeedJob],
        now_ms: i64,
    ) -> Result<Vec<Result<PatientId>>> {
        on_pool!(self, write, |pool| {
            // Most groups apply whole: no savepoint, one insert for their log
            // and one for their audit entries. A group where one message
            // fails is rolled back and taken again, one savepoint each.
            if !jobs.is_empty() {
                let mut tx = pool.begin_write().await?;
                match apply_together(&mut tx.as_tx(), jobs, now_ms).await {
                    Ok(patients) => {
                        tx.commit().await?;
                        return Ok(patients.into_iter().map(Ok).collect());
                    }
                    Err(_) => tx.rollback().await?,
                }
            }
            if !jobs.is_empty() {
                self.intake_taken_again
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let mut tx = pool.begin_write().await?;
            let mut results = Vec::with_capacity(jobs.len());
            let mut audits: Vec<NewAudit> = Vec::with_capacity(jobs.len() * 2);
            for job in jobs {
                let mut sp = sqlx::Acquire::begin(&mut *tx).await?;
                match apply_feed(&mut sp.as_tx(), job, now_ms).await {
                    Ok((patient, a)) => {
                        sp.commit().await?;
                        audits.extend(a);
                        results.push(Ok(patient));
                    }
                    Err(e) => {
                        sp.rollback().await?;
                        results.push(Err(e));
                    }
                }
            }
            crate::audit::append_audits(&mut tx.as_tx(), &audits).await?;
            tx.commit().await?;
            Ok(results)
        })
    }

    /// How many intake groups this process has taken again one message at a
    /// time (one of their messages failed, or their statements together
    /// did): a count that rises with duplicates, merged IPPs or conflicts.
    pub fn intake_groups_taken_again(&self) -> u64 {
        self.intake_taken_again
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The message log, newest first (`before`: paging by received time).
    pub async fn hl7_messages(
        &self,
        before_ms: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Hl7LogEntry>> {
        self.hl7_messages_of(None, before_ms, limit).await
    }

    /// The message log of the senders feeding `establishment` (all when `None`).
    pub async fn hl7_messages_of(
        &self,
        establishment: Option<EstablishmentId>,
        before_ms: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Hl7LogEntry>> {
        let sql = format!(
            "SELECT {LOG_COLUMNS} FROM hl7_messages WHERE ($1 IS NULL OR establishment_id = $1) AND ($2 IS NULL OR received_at_ms < $2) \
             ORDER BY received_at_ms DESC, id DESC LIMIT +$3"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(establishment.map(|e| e.to_string()))
                .bind(before_ms)
                .bind(limit.clamp(1, 500))
                .fetch_all(pool)
                .await?;
            Ok(rows_to(&rows)?)
        })
    }

    /// Removes a message in error or refused (after review), unless a
    /// replay names it; an accepted message leaves only with its retention.
    pub async fn purge_hl7_message(&self, id: &str) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let row = q("SELECT status, (SELECT COUNT(*) FROM hl7_messages r WHERE r.replay_of = $1) AS replays FROM hl7_messages WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut tx.as_tx())
                .await?
                .ok_or(crate::StoreError::NotFound)?;
            let status: String = row.get("status")?;
            let replays: i64 = row.get("replays")?;
            if status == "accepted" {
                return Err(crate::StoreError::Refused(
                    "un message accepté n'est retiré qu'à la fin de sa durée de conservation"
                        .into(),
                ));
            }
            if replays > 0 {
                return Err(crate::StoreError::Refused(
                    "ce message a été rejoué : il reste au journal avec son rejeu".into(),
                ));
            }
            q("DELETE FROM hl7_messages WHERE id = $1")
                .bind(id)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// One log entry.
    pub async fn hl7_message(&self, id: &str) -> Result<Hl7LogEntry> {
        let sql = format!("SELECT {LOG_COLUMNS} FROM hl7_messages WHERE id = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_all(pool)
                .await?;
            rows_to::<_, Hl7LogEntry>(&rows)?
                .into_iter()
                .next()
                .ok_or(StoreError::NotFound)
        })
    }
}
