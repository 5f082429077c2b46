//! Closed teleconsultations in storage: note, prescription lines, the doctor's
//! approval and the fee's settlement. Each change is audited in its own
//! transaction; a settlement is written once (`settled_method IS NULL` in the
//! UPDATE), so a replayed webhook or two secretaries at once cannot settle twice.

use domain::audit::AuditActor;
use domain::consultation::{Closing, Line, Method};
use domain::schedule::Appointment;
use domain::{AppointmentId, EstablishmentId, PatientId, UserId};

use crate::audit::NewAudit;
use crate::macros::rows_to;
use crate::orgs::parse_id;
use crate::outbox::NewMessage;
use crate::tx::AsTx;
use crate::tx::WritePool as _;
use crate::{Result, Store, StoreError};

/// A closed consultation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consultation {
    /// The appointment it closes (also its id).
    pub appointment_id: domain::AppointmentId,
    /// Where.
    pub establishment: EstablishmentId,
    /// Who was seen.
    pub patient: PatientId,
    /// Who saw them.
    pub practitioner: UserId,
    /// The note and the prescription.
    pub closing: Closing,
    /// The prescription's unique number.
    pub number: String,
    /// Closed at (Unix ms).
    pub closed_at_ms: i64,
    /// The doctor's final approval (Unix ms).
    pub approved_at_ms: Option<i64>,
    /// The fee, in euro cents.
    pub fee_cents: i64,
    /// How it was settled, once it is.
    pub settled: Option<Method>,
    /// When.
    pub settled_at_ms: Option<i64>,
    /// The payment provider's checkout session, once one was opened.
    pub checkout_id: Option<String>,
}

db_row! {
    struct ConsultationRow {
        appointment_id: String,
        establishment_id: String,
        patient_id: String,
        practitioner_id: String,
        note: String,
        free_text: String,
        number: String,
        closed_at_ms: i64,
        approved_at_ms: Option<i64>,
        fee_cents: i64,
        settled_method: Option<String>,
        settled_at_ms: Option<i64>,
        checkout_id: Option<String>,
    }
}

db_row! {
    struct LineRow { appointment_id: String, medication: String, dose: String, frequency: String, duration: String }
}

const COLUMNS: &str = "appointment_id, establishment_id, patient_id, practitioner_id, note, free_text, number, closed_at_ms, approved_at_ms, fee_cents, settled_method, settled_at_ms, checkout_id";

fn to_consultation(r: ConsultationRow, lines: &[LineRow]) -> Result<Consultation> {
    let settled = match r.settled_method.as_deref() {
        None => None,
        Some(c) => {
            Some(Method::from_code(c).ok_or_else(|| StoreError::Corrupt("settled_method".into()))?)
        }
    };
    Ok(Consultation {
        establishment: parse_id(&r.establishment_id)?,
        patient: parse_id(&r.patient_id)?,
        practitioner: parse_id(&r.practitioner_id)?,
        closing: Closing {
            note: r.note,
            free_text: r.free_text,
            lines: lines
                .iter()
                .filter(|l| l.appointment_id == r.appointment_id)
                .map(|l| Line {
                    medication: l.medication.clone(),
                    dose: l.dose.clone(),
                    frequency: l.frequency.clone(),
                    duration: l.duration.clone(),
                })
                .collect(),
        },
        appointment_id: parse_id(&r.appointment_id)?,
        number: r.number,
        closed_at_ms: r.closed_at_ms,
        approved_at_ms: r.approved_at_ms,
        fee_cents: r.fee_cents,
        settled,
        settled_at_ms: r.settled_at_ms,
        checkout_id: r.checkout_id,
    })
}

fn audit(who: &AuditActor, patient: PatientId, id: &str, now_ms: i64) -> NewAudit {
    NewAudit {
        at_ms: now_ms,
        actor: who.clone(),
        patient: Some(patient.to_string()),
        action: "write-clinical".into(),
        resource: format!("Consultation/{id}"),
        outcome: "success".into(),
    }
}

impl Store {
    /// Closes the consultation of appointment `a` with its note and prescription
    /// (audited), `messages` enqueued with it. Closing twice is a
    /// [`StoreError::Conflict`].
    #[allow(clippy::too_many_arguments)]
    pub async fn close_consultation(
        &self,
        a: &Appointment,
        closing: &Closing,
        number: &str,
        fee_cents: i64,
        messages: &[NewMessage],
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO consultations (appointment_id, establishment_id, patient_id, practitioner_id, note, free_text, number, closed_at_ms, fee_cents) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(a.id.to_string())
            .bind(a.establishment.to_string())
            .bind(a.patient.to_string())
            .bind(a.practitioner.to_string())
            .bind(&closing.note)
            .bind(&closing.free_text)
            .bind(number)
            .bind(now_ms)
            .bind(fee_cents)
            .execute(&mut *tx)
            .await?;
            for (i, l) in closing.lines.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO prescription_lines (appointment_id, position, medication, dose, frequency, duration) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(a.id.to_string())
                .bind(i64::try_from(i).unwrap_or(i64::MAX))
                .bind(&l.medication)
                .bind(&l.dose)
                .bind(&l.frequency)
                .bind(&l.duration)
                .execute(&mut *tx)
                .await?;
            }
            for m in messages {
                let _new = crate::outbox::enqueue_in(&mut tx.as_tx(), m, now_ms).await?;
            }
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &audit(who, a.patient, &a.id.to_string(), now_ms),
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn consultations_where(&self, clause: &str, value: &str) -> Result<Vec<Consultation>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM consultations WHERE {clause} = $1 ORDER BY closed_at_ms, appointment_id"
        );
        let lines_sql = format!(
            "SELECT appointment_id, medication, dose, frequency, duration FROM prescription_lines \
             WHERE appointment_id IN (SELECT appointment_id FROM consultations WHERE {clause} = $1) ORDER BY appointment_id, position"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(value)
                .fetch_all(pool)
                .await?;
            let line_rows = sqlx::query(sqlx::AssertSqlSafe(lines_sql.as_str()))
                .bind(value)
                .fetch_all(pool)
                .await?;
            let lines = rows_to::<_, LineRow>(&line_rows)?;
            rows_to::<_, ConsultationRow>(&rows)?
                .into_iter()
                .map(|r| to_consultation(r, &lines))
                .collect()
        })
    }

    async fn one_consultation(&self, clause: &str, value: &str) -> Result<Consultation> {
        self.consultations_where(clause, value)
            .await?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound)
    }

    /// The consultation closing appointment `id`.
    pub async fn consultation(&self, appointment_id: AppointmentId) -> Result<Consultation> {
        self.one_consultation("appointment_id", &appointment_id.to_string())
            .await
    }

    /// The consultation whose prescription bears `number`.
    pub async fn consultation_by_number(&self, number: &str) -> Result<Consultation> {
        self.one_consultation("number", number).await
    }

    /// The consultation a checkout session was opened for.
    pub async fn consultation_by_checkout(&self, checkout_id: &str) -> Result<Consultation> {
        self.one_consultation("checkout_id", checkout_id).await
    }

    /// A patient's closed consultations, oldest first.
    pub async fn consultations_of_patient(&self, patient: PatientId) -> Result<Vec<Consultation>> {
        self.consultations_where("patient_id", &patient.to_string())
            .await
    }

    /// The doctor's final approval (audited); `Ok(false)` if it was already given.
    pub async fn approve_consultation(
        &self,
        c: &Consultation,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let r = sqlx::query(
                "UPDATE consultations SET approved_at_ms = $1 WHERE appointment_id = $2 AND approved_at_ms IS NULL",
            )
            .bind(now_ms)
            .bind(c.appointment_id.to_string())
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &audit(who, c.patient, &c.appointment_id.to_string(), now_ms),
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Records the checkout session opened for an unsettled consultation (a new
    /// one replaces an abandoned one); `Ok(false)` if it is settled already.
    pub async fn set_checkout(
        &self,
        appointment_id: AppointmentId,
        checkout_id: &str,
    ) -> Result<bool> {
        let appointment_id = appointment_id.to_string();
        on_pool!(self, write, |pool| {
            let r = sqlx::query(
                "UPDATE consultations SET checkout_id = $1 WHERE appointment_id = $2 AND settled_method IS NULL",
            )
            .bind(checkout_id)
            .bind(&appointment_id)
            .execute(pool)
            .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// Records the settlement (audited), once: `Ok(false)` if it was already
    /// settled. A card payment names the checkout session paid, recorded in
    /// place of the last one opened (the patient may have paid in an older tab).
    pub async fn settle_consultation(
        &self,
        c: &Consultation,
        method: Method,
        checkout_id: Option<&str>,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let r = sqlx::query(
                "UPDATE consultations SET settled_method = $1, settled_at_ms = $2, settled_by = $3, checkout_id = COALESCE($4, checkout_id) \
                 WHERE appointment_id = $5 AND settled_method IS NULL",
            )
            .bind(method.code())
            .bind(now_ms)
            .bind(format!("{}:{}", who.kind, who.id))
            .bind(checkout_id)
            .bind(c.appointment_id.to_string())
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &audit(who, c.patient, &c.appointment_id.to_string(), now_ms),
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}
