//! Writes of several records in one transaction, all or nothing: what a FHIR
//! `transaction` Bundle asks (identities created or replaced, measures filed).
//! The first write that fails rolls every one back and is named.

use domain::audit::AuditActor;
use domain::demographics::DemographicsPatch;
use domain::identity::PatientRecord;
use domain::{AlertId, PatientId};

use crate::monitoring::ResponseWrite;
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
    /// The identity created or replaced.
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
            crate::patients::insert_patient(tx, id, new, now_ms).await?;
            let patch = DemographicsPatch::all(new.demographics.clone());
            crate::demographics::apply(tx, id, &patch, who, now_ms).await?;
            // Last: the chain's head stays locked from here to the commit.
            crate::audit::append_audit(tx, &audit_for(who, id, "create", now_ms)).await?;
            Ok(Written::Patient(id))
        }
        Write::UpdatePatient {
            record,
            demographics,
            who,
        } => {
            if crate::patients::update_patient(tx, record, now_ms).await? == 0 {
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

impl Store {
    /// Applies every write in one transaction, in order: all of them, or none
    /// (the first failure rolls back what came before it and is named).
    pub async fn apply_writes(
        &self,
        writes: &[Write<'_>],
        now_ms: i64,
    ) -> std::result::Result<Vec<Written>, BundleError> {
        let at_commit = |error: StoreError| BundleError { entry: None, error };
        // On PostgreSQL the IPPs of the new records are taken first, each in
        // a statement of its own (`take_ipp`): inside the transaction, the
        // territory's counter would stay locked to the commit and every
        // creation of the domain would wait for the one before. SQLite has one
        // writer: there the counter is taken inside, with no extra commit.
        let mut numbered: Vec<Option<NewPatient>> = vec![None; writes.len()];
        if self.engine() == crate::Engine::Postgres {
            for (i, w) in writes.iter().enumerate() {
                if let Write::CreatePatient { new, .. } = w
                    && new.ipp.is_none()
                {
                    let ipp = crate::patients::take_ipp(self, new.territory)
                        .await
                        .map_err(|error| BundleError {
                            entry: Some(i),
                            error,
                        })?;
                    if let Some(slot) = numbered.get_mut(i) {
                        *slot = Some(NewPatient {
                            ipp: Some(ipp),
                            ..(*new).clone()
                        });
                    }
                }
            }
        }
        let writes: Vec<Write<'_>> = writes
            .iter()
            .zip(&numbered)
            .map(|(w, n)| match (*w, n) {
                (Write::CreatePatient { id, who, .. }, Some(new)) => {
                    Write::CreatePatient { id, new, who }
                }
                (w, _) => w,
            })
            .collect();
        on_pool!(self, write, |pool| {
            let mut tx = pool
                .begin_write()
                .await
                .map_err(|e| at_commit(StoreError::from(e)))?;
            let mut done = Vec::with_capacity(writes.len());
            for (i, w) in writes.iter().enumerate() {
                match one(&mut tx.as_tx(), w, now_ms).await {
                    Ok(x) => done.push(x),
                    Err(error) => {
                        // Dropped: rolled back.
                        return Err(BundleError {
                            entry: Some(i),
                            error,
                        });
                    }
                }
            }
            tx.commit()
                .await
                .map_err(|e| at_commit(StoreError::from(e)))?;
            Ok(done)
        })
    }
}
