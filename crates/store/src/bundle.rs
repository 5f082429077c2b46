//! Writes of several records in one transaction, all or nothing: what a FHIR
//! `transaction` Bundle asks (identities created or replaced, measures filed,
//! a questionnaire's answers). The first write that fails rolls every one back
//! and is named.
//!
//! Concurrent callers' transactions share a database transaction (a group
//! commit, each caller's writes in a savepoint of their own), on both
//! engines. SQLite has one writer connection: the callers queued for it
//! anyway, each for a commit of its own. On PostgreSQL the audit chain's head
//! is locked from a caller's entry to its commit: with a transaction each,
//! the callers took it in turn, each until its commit reached the disk (FHIR
//! creates, 16 connections: 780/s alone, 1,085/s grouped; 1,475/s with the
//! IPP taken inside the group rather than committed on its own first; about
//! 2,000/s with a group of creations written at once, `create_together`).

use domain::audit::AuditActor;
use domain::demographics::DemographicsPatch;
use domain::identity::PatientRecord;
use domain::{AlertId, PatientId};

use crate::monitoring::{Measured, NewAlert, ResponseWrite};
use crate::outbox::NewMessage;
use crate::patients::{NewPatient, audit_for};
use crate::tx::WritePool as _;
use crate::tx::{AsTx, Tx, q};
use crate::{Conflict, Result, Store, StoreError};

/// One write of the transaction.
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    /// A new identity (its id chosen by the caller).
    CreatePatient {
        /// Its id.
        id: PatientId,
        /// What it is.
        new: &'a NewPatient,
        /// Who.
        who: &'a AuditActor,
    },
    /// An identity replaced, if still at `record.version`.
    UpdatePatient {
        /// The record as it should become (with the version it replaces).
        record: &'a PatientRecord,
        /// Its demographics.
        demographics: &'a DemographicsPatch,
        /// Who.
        who: &'a AuditActor,
    },
    /// A response or a device's measure filed on a follow-up.
    Response(ResponseWrite<'a>),
}

/// What a write made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The identity created, as stored.
    Created(Box<PatientRecord>),
    /// The identity replaced.
    Patient(PatientId),
    /// The response (its id) and the alerts it raised.
    Response(String, Vec<AlertId>),
}

/// Why the transaction was rolled back: the write that failed (`None`: the
/// commit itself) and its error.
#[derive(Debug, thiserror::Error)]
#[error("écriture {}: {error}", entry.map_or("finale".to_owned(), |i| (i + 1).to_string()))]
pub struct BundleError {
    /// Index of the failed write.
    pub entry: Option<usize>,
    /// Why.
    pub error: StoreError,
}

async fn one(tx: &mut Tx<'_>, w: &Write<'_>, now_ms: i64) -> Result<Written> {
    match *w {
        Write::CreatePatient { id, new, who } => {
            let record = crate::patients::create_in(tx, &[(id, new, who, now_ms)])
                .await?
                .pop()
                .ok_or_else(|| StoreError::Corrupt("création sans identité rendue".into()))?;
            Ok(Written::Created(Box::new(record)))
        }
        Write::UpdatePatient {
            record,
            demographics,
            who,
        } => {
            if crate::patients::update_patient(tx, record, true, now_ms).await? == 0 {
                let row = q("SELECT version, merged_into FROM patients WHERE id = $1")
                    .bind(record.id.to_string())
                    .fetch_optional(tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                if row.get::<Option<String>>("merged_into")?.is_some() {
                    return Err(StoreError::Conflict(Conflict::Merged));
                }
                return Err(StoreError::Stale {
                    current: row.get("version")?,
                });
            }
            crate::audit::append_audit(tx, &audit_for(who, record.id, "update", now_ms)).await?;
            if let Some(a) =
                crate::demographics::apply(tx, record.id, demographics, who, now_ms).await?
            {
                crate::audit::append_audit(tx, &a).await?;
            }
            Ok(Written::Patient(record.id))
        }
        Write::Response(r) => {
            let (id, alerts) = crate::monitoring::insert_response(tx, &r, now_ms).await?;
            Ok(Written::Response(id, alerts))
        }
    }
}

/// A write with what it names owned, so that it can wait for a group.
#[derive(Debug, Clone)]
enum OwnedWrite {
    CreatePatient {
        id: PatientId,
        new: NewPatient,
        who: AuditActor,
    },
    UpdatePatient {
        record: PatientRecord,
        demographics: DemographicsPatch,
        who: AuditActor,
    },
    Response(OwnedResponse),
}

/// A [`ResponseWrite`] owned.
#[derive(Debug, Clone)]
struct OwnedResponse {
    enrolment: domain::monitoring::Enrolment,
    answers_json: String,
    measures: Vec<(String, f64)>,
    alerts: Vec<NewAlert>,
    due_at_ms: i64,
    report: Option<NewMessage>,
    measured: Option<(String, i64)>,
    who: AuditActor,
}

impl OwnedWrite {
    fn of(w: &Write<'_>) -> Self {
        match *w {
            Write::CreatePatient { id, new, who } => OwnedWrite::CreatePatient {
                id,
                new: new.clone(),
                who: who.clone(),
            },
            Write::UpdatePatient {
                record,
                demographics,
                who,
            } => OwnedWrite::UpdatePatient {
                record: record.clone(),
                demographics: demographics.clone(),
                who: who.clone(),
            },
            Write::Response(r) => OwnedWrite::Response(OwnedResponse {
                enrolment: r.enrolment.clone(),
                answers_json: r.answers_json.to_owned(),
                measures: r.measures.to_vec(),
                alerts: r.alerts.to_vec(),
                due_at_ms: r.due_at_ms,
                report: r.report.cloned(),
                measured: r.measured.map(|m| (m.source.to_owned(), m.at_ms)),
                who: r.who.clone(),
            }),
        }
    }

    fn write(&self) -> Write<'_> {
        match self {
            OwnedWrite::CreatePatient { id, new, who } => {
                Write::CreatePatient { id: *id, new, who }
            }
            OwnedWrite::UpdatePatient {
                record,
                demographics,
                who,
            } => Write::UpdatePatient {
                record,
                demographics,
                who,
            },
            OwnedWrite::Response(r) => Write::Response(ResponseWrite {
                enrolment: &r.enrolment,
                answers_json: &r.answers_json,
                measures: &r.measures,
                alerts: &r.alerts,
                due_at_ms: r.due_at_ms,
                report: r.report.as_ref(),
                measured: r.measured.as_ref().map(|(source, at_ms)| Measured {
                    source,
                    at_ms: *at_ms,
                }),
                who: &r.who,
            }),
        }
    }
}

type Outcome = std::result::Result<Vec<Written>, BundleError>;

/// One caller's transaction waiting for a group, and where to answer.
#[derive(Debug)]
pub(crate) struct Pending {
    writes: Vec<OwnedWrite>,
    now_ms: i64,
    reply: tokio::sync::oneshot::Sender<Outcome>,
}

impl Pending {
    /// Its writes, as `apply_each` takes them.
    fn views(&self) -> Vec<Write<'_>> {
        self.writes.iter().map(OwnedWrite::write).collect()
    }
}

/// Callers' transactions on their way to one transaction (a group commit
/// shared by every clone of the store, `crate::group`).
pub(crate) type WriteQueue = crate::group::GroupQueue<Pending>;

/// Most callers' transactions in one group.
const MAX_GROUP: usize = 64;

fn at_commit(error: StoreError) -> BundleError {
    BundleError { entry: None, error }
}

impl Store {
    /// Applies every write in one transaction, in order: all of them, or none
    /// (the first failure rolls back what came before it and is named).
    /// Committed before this returns; concurrent calls share a commit (see
    /// [`WriteQueue`]), each all or nothing on its own.
    pub async fn apply_writes(
        &self,
        writes: &[Write<'_>],
        now_ms: i64,
    ) -> std::result::Result<Vec<Written>, BundleError> {
        // One writer on both engines: concurrent callers share a transaction
        // and its commit. The chain's head is locked from a caller's audit
        // entry to the commit: with a transaction each, the callers would
        // take turns, each waiting for the one before to reach the disk
        // (PostgreSQL: 780 creates/s against 1,085 with the group). The new
        // records' IPPs are taken inside it too, from the domain's counter
        // (locked to the commit: the group's writer is the one that waits).
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Pending {
            writes: writes.iter().map(OwnedWrite::of).collect(),
            now_ms,
            reply,
        };
        self.write_queue
            .submit(
                job,
                answer,
                crate::group::Gather {
                    wait: crate::group::GATHER,
                    most: MAX_GROUP,
                },
                |waiting| crate::group::first(waiting, MAX_GROUP),
                |group| {
                    let store = self.clone();
                    async move { store.write_bundles(group).await }
                },
            )
            .await
            .unwrap_or_else(|| Err(at_commit(StoreError::Db(sqlx::Error::WorkerCrashed))))
    }

    /// Applies a group and answers each caller: one transaction, each
    /// caller's writes in a savepoint (a failure rolls back that caller's
    /// only). If the commit fails, each is tried again in a transaction of
    /// its own, so that one caller's failure is not the others'.
    async fn write_bundles(&self, group: Vec<Pending>) {
        if group.len() > 1
            && let Some(outcomes) = self.create_together(&group).await
        {
            for (p, outcome) in group.into_iter().zip(outcomes) {
                let _ = p.reply.send(outcome);
            }
            return;
        }
        if group.len() > 1
            && let Ok(outcomes) = self.apply_together(&group).await
        {
            for (p, outcome) in group.into_iter().zip(outcomes) {
                let _ = p.reply.send(outcome);
            }
            return;
        }
        for p in group {
            let outcome = self.apply_alone(&p.views(), p.now_ms).await;
            let _ = p.reply.send(outcome);
        }
    }

    /// A group made of creations only, in one transaction without a
    /// savepoint each: a statement or two per table and one update of the
    /// chain's head for the whole group (an entry per record), not six round
    /// trips per caller. `None`
    /// when it holds another write or its transaction fails (a duplicate IPP,
    /// say): then each caller gets its own outcome from the savepoints'
    /// path.
    async fn create_together(&self, group: &[Pending]) -> Option<Vec<Outcome>> {
        let mut creations = Vec::new();
        for p in group {
            for w in &p.writes {
                let OwnedWrite::CreatePatient { id, new, who } = w else {
                    return None;
                };
                creations.push((*id, new, who, p.now_ms));
            }
        }
        let mut records = self.create_all(&creations).await.ok()?.into_iter();
        Some(
            group
                .iter()
                .map(|p| {
                    Ok(records
                        .by_ref()
                        .take(p.writes.len())
                        .map(|r| Written::Created(Box::new(r)))
                        .collect())
                })
                .collect(),
        )
    }

    /// Creations in a transaction of their own: the records, once committed.
    async fn create_all(
        &self,
        creations: &[crate::patients::Creation<'_>],
    ) -> Result<Vec<PatientRecord>> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let records = crate::patients::create_in(&mut tx.as_tx(), creations).await?;
            tx.commit().await?;
            Ok(records)
        })
    }

    /// A group's transaction: each caller's outcome, once committed.
    async fn apply_together(&self, group: &[Pending]) -> Result<Vec<Outcome>> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut outcomes = Vec::with_capacity(group.len());
            for p in group {
                let mut sp = sqlx::Acquire::begin(&mut *tx).await?;
                match apply_each(&mut sp.as_tx(), &p.views(), p.now_ms).await {
                    Ok(done) => {
                        sp.commit().await?;
                        outcomes.push(Ok(done));
                    }
                    Err(e) => {
                        sp.rollback().await?;
                        outcomes.push(Err(e));
                    }
                }
            }
            tx.commit().await?;
            Ok(outcomes)
        })
    }

    /// One caller's writes in a transaction of their own.
    async fn apply_alone(&self, writes: &[Write<'_>], now_ms: i64) -> Outcome {
        on_pool!(self, write, |pool| {
            let mut tx = pool
                .begin_write()
                .await
                .map_err(|e| at_commit(StoreError::from(e)))?;
            // Dropped on a failure: rolled back.
            let done = apply_each(&mut tx.as_tx(), writes, now_ms).await?;
            tx.commit()
                .await
                .map_err(|e| at_commit(StoreError::from(e)))?;
            Ok(done)
        })
    }
}

/// A caller's writes in order inside `tx`; the first failure named.
async fn apply_each(tx: &mut Tx<'_>, writes: &[Write<'_>], now_ms: i64) -> Outcome {
    let mut done = Vec::with_capacity(writes.len());
    for (i, w) in writes.iter().enumerate() {
        match one(tx, w, now_ms).await {
            Ok(x) => done.push(x),
            Err(error) => {
                return Err(BundleError {
                    entry: Some(i),
                    error,
                });
            }
        }
    }
    Ok(done)
}
