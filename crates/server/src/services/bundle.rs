//! A FHIR `transaction`: identities created or replaced and measures filed,
//! all or nothing. Each entry is checked and allowed exactly as the single
//! request would be (the same services prepare it), then every write is
//! stored in one database transaction; the first refusal or failure stops
//! it, nothing is kept, and the answer names the entry.

use domain::PatientId;
use domain::identity::PatientRecord;
use domain::policy::Actor;
use interop::fhir::ParsedPatient;
use interop::fhir::observation::PostedObservation;
use store::bundle::{Write, Written};
use store::patients::NewPatient;

use super::ctx::Ctx;
use super::monitoring::{self, PreparedMeasure};
use super::patients;
use crate::error::AppError;

/// What one entry asks.
#[derive(Debug, Clone)]
pub enum Step {
    /// Create an identity.
    CreatePatient(Box<ParsedPatient>),
    /// A conditional create whose identity exists already: nothing to write.
    Existing(Box<PatientRecord>),
    /// Replace an identity (If-Match: the version replaced).
    UpdatePatient {
        /// Which.
        id: PatientId,
        /// `ifMatch`.
        if_match: Option<i64>,
        /// The new content.
        input: Box<ParsedPatient>,
    },
    /// File a device's or a laboratory's measure.
    Measure {
        /// Whose.
        patient: PatientId,
        /// The measure.
        posted: PostedObservation,
        /// Its source (the device, else the client).
        source: String,
    },
}

/// What one entry did.
#[derive(Debug, Clone)]
pub enum Done {
    /// Created.
    Created(PatientRecord),
    /// Found by its condition (not created).
    Existing(PatientRecord),
    /// Replaced.
    Updated(PatientRecord),
    /// Filed, for this patient.
    Measured(store::monitoring::StoredResponse, PatientId),
}

/// The entry (its index) that stopped the transaction, and why.
#[derive(Debug)]
pub struct EntryError {
    /// Index of the entry (`None`: the commit).
    pub entry: Option<usize>,
    /// Why.
    pub error: AppError,
}

/// What an entry will write, prepared.
enum Prepared {
    Create(PatientId, NewPatient, domain::audit::AuditActor),
    Existing(PatientRecord),
    Update(
        PatientRecord,
        domain::demographics::DemographicsPatch,
        domain::audit::AuditActor,
    ),
    Measure(PreparedMeasure),
}

/// Runs the steps all or nothing.
pub async fn transaction(
    ctx: Ctx<'_>,
    actor: &Actor,
    steps: Vec<Step>,
) -> Result<Vec<Done>, EntryError> {
    let at = |i: usize| {
        move |error: AppError| EntryError {
            entry: Some(i),
            error,
        }
    };
    let mut prepared = Vec::with_capacity(steps.len());
    for (i, step) in steps.into_iter().enumerate() {
        prepared.push(match step {
            Step::CreatePatient(input) => {
                let (new, who) = patients::prepare_create(ctx, actor, *input)
                    .await
                    .map_err(at(i))?;
                Prepared::Create(PatientId::new(), new, who)
            }
            Step::Existing(p) => Prepared::Existing(*p),
            Step::UpdatePatient {
                id,
                if_match,
                input,
            } => {
                let (next, patch, who) = patients::prepare_update(ctx, actor, id, if_match, *input)
                    .await
                    .map_err(at(i))?;
                Prepared::Update(next, patch, who)
            }
            Step::Measure {
                patient,
                posted,
                source,
            } => {
                let m = monitoring::Measure {
                    patient,
                    loinc: &posted.loinc,
                    value: posted.value,
                    unit: posted.unit.as_deref(),
                    at_ms: posted.effective_ms,
                    source: &source,
                };
                Prepared::Measure(
                    monitoring::prepare_measure(ctx, actor, &m)
                        .await
                        .map_err(at(i))?,
                )
            }
        });
    }
    // The writes, in order; which entry each is.
    let mut writes = Vec::new();
    let mut of_entry = Vec::new();
    for (i, p) in prepared.iter().enumerate() {
        let w = match p {
            Prepared::Create(id, new, who) => Write::CreatePatient { id: *id, new, who },
            Prepared::Existing(_) => continue,
            Prepared::Update(record, demographics, who) => Write::UpdatePatient {
                record,
                demographics,
                who,
            },
            Prepared::Measure(m) => Write::Response(m.write()),
        };
        writes.push(w);
        of_entry.push(i);
    }
    let written = ctx
        .store
        .apply_writes(&writes, ctx.now_ms())
        .await
        .map_err(|e| EntryError {
            entry: e.entry.and_then(|w| of_entry.get(w).copied()),
            error: e.error.into(),
        })?;
    drop(writes);
    let mut written = written.into_iter();
    let committed = |error: AppError| EntryError { entry: None, error };
    let mut done = Vec::with_capacity(prepared.len());
    for p in prepared {
        done.push(match p {
            Prepared::Existing(r) => Done::Existing(r),
            Prepared::Create(..) => {
                let Some(Written::Created(record)) = written.next() else {
                    return Err(committed(AppError::Internal(anyhow::anyhow!(
                        "transaction : identité créée non rendue"
                    ))));
                };
                Done::Created(*record)
            }
            Prepared::Update(record, ..) => {
                written.next();
                Done::Updated(
                    ctx.store
                        .patient(record.id)
                        .await
                        .map_err(|e| committed(e.into()))?,
                )
            }
            Prepared::Measure(m) => {
                let Some(Written::Response(id, _)) = written.next() else {
                    return Err(committed(AppError::Internal(anyhow::anyhow!(
                        "transaction : mesure non écrite"
                    ))));
                };
                monitoring::measure_filed(ctx, &m).await;
                Done::Measured(
                    ctx.store
                        .response(&id)
                        .await
                        .map_err(|e| committed(e.into()))?,
                    m.enrolment.patient,
                )
            }
        });
    }
    Ok(done)
}
