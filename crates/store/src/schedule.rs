//! Schedules in storage: practitioners' weekly openings and appointments. A
//! double booking is refused by a unique index (one booked appointment per
//! practitioner and start time), so two secretaries cannot book the same slot.
//! Confirmations and cancellation notices are enqueued in the same transaction.

use domain::audit::AuditActor;
pub use domain::schedule::Appointment;
use domain::schedule::{Mode, Opening};
use domain::{AppointmentId, EstablishmentId, PatientId, UserId};

use crate::audit::NewAudit;
use crate::macros::rows_to;
use crate::orgs::parse_id;
use crate::outbox::NewMessage;
use crate::tx::AsTx;
use crate::tx::WritePool as _;
use crate::{Result, Store, StoreError};

db_row! {
    struct AppointmentRow {
        id: String,
        practitioner_id: String,
        establishment_id: String,
        patient_id: String,
        start_ms: i64,
        end_ms: i64,
        mode: String,
        status: String,
        cancel_reason: Option<String>,
    }
}

impl TryFrom<AppointmentRow> for Appointment {
    type Error = StoreError;
    fn try_from(r: AppointmentRow) -> Result<Self> {
        Ok(Appointment {
            id: parse_id(&r.id)?,
            practitioner: parse_id(&r.practitioner_id)?,
            establishment: parse_id(&r.establishment_id)?,
            patient: parse_id(&r.patient_id)?,
            start_ms: r.start_ms,
            end_ms: r.end_ms,
            mode: Mode::from_code(&r.mode).ok_or_else(|| StoreError::Corrupt("mode".into()))?,
            status: r.status,
            cancel_reason: r.cancel_reason,
        })
    }
}

const COLUMNS: &str = "id, practitioner_id, establishment_id, patient_id, start_ms, end_ms, mode, status, cancel_reason";

/// An appointment to book.
#[derive(Debug, Clone)]
pub struct NewAppointment {
    /// The practitioner.
    pub practitioner: UserId,
    /// Where.
    pub establishment: EstablishmentId,
    /// Who.
    pub patient: PatientId,
    /// Start (Unix ms).
    pub start_ms: i64,
    /// End (Unix ms).
    pub end_ms: i64,
    /// Mode.
    pub mode: Mode,
    /// Who booked (user id).
    pub booked_by: String,
}

db_row! { struct OpeningRow { establishment_id: String, weekday: i64, start_min: i64, end_min: i64, slot_minutes: i64, mode: String } }

fn audit(who: &AuditActor, patient: PatientId, id: &str, now_ms: i64) -> NewAudit {
    NewAudit {
        at_ms: now_ms,
        actor: who.clone(),
        patient: Some(patient.to_string()),
        action: "write-clinical".into(),
        resource: format!("Appointment/{id}"),
        outcome: "success".into(),
    }
}

impl Store {
    /// Replaces a practitioner's openings at an establishment.
    pub async fn set_openings(
        &self,
        practitioner: UserId,
        establishment: EstablishmentId,
        openings: &[Opening],
    ) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "DELETE FROM openings WHERE practitioner_id = $1 AND establishment_id = $2",
            )
            .bind(practitioner.to_string())
            .bind(establishment.to_string())
            .execute(&mut *tx)
            .await?;
            for o in openings {
                sqlx::query(
                    "INSERT INTO openings (id, practitioner_id, establishment_id, weekday, start_min, end_min, slot_minutes, mode) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(practitioner.to_string())
                .bind(establishment.to_string())
                .bind(i64::from(o.weekday))
                .bind(i64::from(o.start_min))
                .bind(i64::from(o.end_min))
                .bind(i64::from(o.slot_minutes))
                .bind(o.mode.code())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records an absence of `practitioner` at `establishment`; its id.
    pub async fn add_absence(
        &self,
        practitioner: UserId,
        establishment: EstablishmentId,
        a: &domain::schedule::Absence,
        created_by: &str,
        now_ms: i64,
    ) -> Result<String> {
        let id = uuid::Uuid::now_v7().to_string();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            crate::tx::q("INSERT INTO absences (id, practitioner_id, establishment_id, first_day, last_day, reason, created_by, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&id)
                .bind(practitioner.to_string())
                .bind(establishment.to_string())
                .bind(a.first_day.to_string())
                .bind(a.last_day.to_string())
                .bind(a.reason.trim())
                .bind(created_by)
                .bind(now_ms)
                .execute(&mut crate::tx::AsTx::as_tx(&mut tx))
                .await?;
            tx.commit().await?;
            Ok(id.clone())
        })
    }

    /// A practitioner's absences at an establishment, by first day: (id, absence).
    pub async fn absences(
        &self,
        practitioner: UserId,
        establishment: EstablishmentId,
    ) -> Result<Vec<(String, domain::schedule::Absence)>> {
        on_pool!(self, read, |pool| {
            let mut tx = pool.begin_write().await?;
            let rows = crate::tx::q("SELECT id, first_day, last_day, reason FROM absences WHERE practitioner_id = $1 AND establishment_id = $2 ORDER BY first_day, id")
                .bind(practitioner.to_string())
                .bind(establishment.to_string())
                .fetch_all(&mut crate::tx::AsTx::as_tx(&mut tx))
                .await?;
            let day = |s: String| {
                s.parse::<jiff::civil::Date>()
                    .map_err(|_| StoreError::Corrupt(format!("date d'absence {s:?}")))
            };
            rows.iter()
                .map(|r| {
                    Ok((
                        r.get::<String>("id")?,
                        domain::schedule::Absence {
                            first_day: day(r.get("first_day")?)?,
                            last_day: day(r.get("last_day")?)?,
                            reason: r.get("reason")?,
                        },
                    ))
                })
                .collect()
        })
    }

    /// Removes one of a practitioner's absences at an establishment; whether it was there.
    pub async fn remove_absence(
        &self,
        id: &str,
        practitioner: UserId,
        establishment: EstablishmentId,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = crate::tx::q("DELETE FROM absences WHERE id = $1 AND practitioner_id = $2 AND establishment_id = $3")
                .bind(id)
                .bind(practitioner.to_string())
                .bind(establishment.to_string())
                .execute(&mut crate::tx::AsTx::as_tx(&mut tx))
                .await?;
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// Records a one-off opening of `practitioner` at `establishment`; its id.
    pub async fn add_extra_opening(
        &self,
        practitioner: UserId,
        establishment: EstablishmentId,
        x: &domain::schedule::ExtraOpening,
        created_by: &str,
        now_ms: i64,
    ) -> Result<String> {
        let id = uuid::Uuid::now_v7().to_string();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            crate::tx::q("INSERT INTO extra_openings (id, practitioner_id, establishment_id, day, start_min, end_min, slot_minutes, mode, created_by, created_at_ms) \
                          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                .bind(&id)
                .bind(practitioner.to_string())
                .bind(establishment.to_string())
                .bind(x.day.to_string())
                .bind(i64::from(x.opening.start_min))
                .bind(i64::from(x.opening.end_min))
                .bind(i64::from(x.opening.slot_minutes))
                .bind(x.opening.mode.code())
                .bind(created_by)
                .bind(now_ms)
                .execute(&mut crate::tx::AsTx::as_tx(&mut tx))
                .await?;
            tx.commit().await?;
            Ok(id.clone())
        })
    }

    /// A practitioner's one-off openings at an establishment, by date: (id, opening).
    pub async fn extra_openings(
        &self,
        practitioner: UserId,
        establishment: EstablishmentId,
    ) -> Result<Vec<(String, domain::schedule::ExtraOpening)>> {
        on_pool!(self, read, |pool| {
            let mut tx = pool.begin_write().await?;
            let rows = crate::tx::q("SELECT id, day, start_min, end_min, slot_minutes, mode FROM extra_openings \
                                     WHERE practitioner_id = $1 AND establishment_id = $2 ORDER BY day, start_min, id")
                .bind(practitioner.to_string())
                .bind(establishment.to_string())
                .fetch_all(&mut crate::tx::AsTx::as_tx(&mut tx))
                .await?;
            let bad =
                |what: &str| StoreError::Corrupt(format!("ouverture exceptionnelle : {what}"));
            rows.iter()
                .map(|r| {
                    let day: String = r.get("day")?;
                    let mode: String = r.get("mode")?;
                    let minutes = |k: &str| -> Result<i16> {
                        i16::try_from(r.get::<i64>(k)?).map_err(|_| bad(k))
                    };
                    Ok((
                        r.get::<String>("id")?,
                        domain::schedule::ExtraOpening::on(
                            day.parse().map_err(|_| bad("date"))?,
                            Opening {
                                weekday: 1,
                                start_min: minutes("start_min")?,
                                end_min: minutes("end_min")?,
                                slot_minutes: minutes("slot_minutes")?,
                                mode: Mode::from_code(&mode).ok_or_else(|| bad("mode"))?,
                            },
                        ),
                    ))
                })
                .collect()
        })
    }

    /// Removes one of a practitioner's one-off openings; whether it was there.
    pub async fn remove_extra_opening(
        &self,
        id: &str,
        practitioner: UserId,
        establishment: EstablishmentId,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = crate::tx::q("DELETE FROM extra_openings WHERE id = $1 AND practitioner_id = $2 AND establishment_id = $3")
                .bind(id)
                .bind(practitioner.to_string())
                .bind(establishment.to_string())
                .execute(&mut crate::tx::AsTx::as_tx(&mut tx))
                .await?;
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// A practitioner's openings, per establishment.
    pub async fn openings(&self, practitioner: UserId) -> Result<Vec<(EstablishmentId, Opening)>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT establishment_id, weekday, start_min, end_min, slot_minutes, mode FROM openings \
                 WHERE practitioner_id = $1 ORDER BY weekday, start_min",
            )
            .bind(practitioner.to_string())
            .fetch_all(pool)
            .await?;
            let bad = || StoreError::Corrupt("horaire".into());
            rows_to::<_, OpeningRow>(&rows)?
                .into_iter()
                .map(|r| {
                    Ok((
                        parse_id(&r.establishment_id)?,
                        Opening {
                            weekday: i8::try_from(r.weekday).map_err(|_| bad())?,
                            start_min: i16::try_from(r.start_min).map_err(|_| bad())?,
                            end_min: i16::try_from(r.end_min).map_err(|_| bad())?,
                            slot_minutes: i16::try_from(r.slot_minutes).map_err(|_| bad())?,
                            mode: Mode::from_code(&r.mode).ok_or_else(bad)?,
                        },
                    ))
                })
                .collect()
        })
    }

    /// Practitioners with openings at an establishment.
    pub async fn scheduled_practitioners(
        &self,
        establishment: EstablishmentId,
    ) -> Result<Vec<UserId>> {
        on_pool!(self, read, |pool| {
            let ids: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT practitioner_id FROM openings WHERE establishment_id = $1 ORDER BY practitioner_id",
            )
            .bind(establishment.to_string())
            .fetch_all(pool)
            .await?;
            ids.iter().map(|i| parse_id(i)).collect()
        })
    }

    /// Books an appointment (audited), its messages (the patient's confirmation, the
    /// SIU for the clinic's agenda) enqueued with it. A slot
    /// already booked is a [`StoreError::Conflict`].
    pub async fn book(
        &self,
        n: &NewAppointment,
        messages: &[NewMessage],
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<AppointmentId> {
        let id = AppointmentId::new();
        self.book_as(id, n, messages, who, now_ms).await?;
        Ok(id)
    }

    /// [`Store::book`] under an id chosen by the caller (a confirmation that names
    /// the appointment is written with it).
    pub async fn book_as(
        &self,
        id: AppointmentId,
        n: &NewAppointment,
        messages: &[NewMessage],
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<()> {
        let id = id.to_string();
        let id = id.as_str();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO appointments (id, practitioner_id, establishment_id, patient_id, start_ms, end_ms, mode, status, booked_by, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'booked', $8, $9)",
            )
            .bind(id)
            .bind(n.practitioner.to_string())
            .bind(n.establishment.to_string())
            .bind(n.patient.to_string())
            .bind(n.start_ms)
            .bind(n.end_ms)
            .bind(n.mode.code())
            .bind(&n.booked_by)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            crate::audit::append_audit(&mut tx.as_tx(), &audit(who, n.patient, id, now_ms)).await?;
            for m in messages {
                let _new = crate::outbox::enqueue_in(&mut tx.as_tx(), m, now_ms).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// One appointment.
    pub async fn appointment(&self, id: AppointmentId) -> Result<Appointment> {
        let id = id.to_string();
        let sql = format!("SELECT {COLUMNS} FROM appointments WHERE id = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_all(pool)
                .await?;
            rows_to::<_, AppointmentRow>(&rows)?
                .into_iter()
                .next()
                .map(Appointment::try_from)
                .transpose()?
                .ok_or(StoreError::NotFound)
        })
    }

    /// A patient's appointments, in time order.
    pub async fn appointments_of_patient(&self, patient: PatientId) -> Result<Vec<Appointment>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM appointments WHERE patient_id = $1 ORDER BY start_ms, id"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(patient.to_string())
                .fetch_all(pool)
                .await?;
            rows_to::<_, AppointmentRow>(&rows)?
                .into_iter()
                .map(Appointment::try_from)
                .collect()
        })
    }

    /// A practitioner's booked appointments starting in `[from_ms, to_ms)`.
    pub async fn agenda(
        &self,
        practitioner: UserId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Appointment>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM appointments WHERE practitioner_id = $1 AND status = 'booked' AND start_ms >= $2 AND start_ms < $3 ORDER BY start_ms"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(practitioner.to_string())
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(pool)
                .await?;
            rows_to::<_, AppointmentRow>(&rows)?
                .into_iter()
                .map(Appointment::try_from)
                .collect()
        })
    }

    /// Every booked appointment starting in `[from_ms, to_ms)`.
    pub async fn appointments_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Appointment>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM appointments WHERE status = 'booked' AND start_ms >= $1 AND start_ms < $2 ORDER BY start_ms"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(pool)
                .await?;
            rows_to::<_, AppointmentRow>(&rows)?
                .into_iter()
                .map(Appointment::try_from)
                .collect()
        })
    }

    /// Cancels a booked appointment with a reason (audited), its notice enqueued
    /// with it; `Ok(false)` if it was not booked any more.
    pub async fn cancel_appointment(
        &self,
        a: &Appointment,
        reason: &str,
        messages: &[NewMessage],
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let r = sqlx::query(
                "UPDATE appointments SET status = 'cancelled', cancelled_at_ms = $1, cancel_reason = $2 WHERE id = $3 AND status = 'booked'",
            )
            .bind(now_ms)
            .bind(reason)
            .bind(a.id.to_string())
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &audit(who, a.patient, &a.id.to_string(), now_ms),
            )
            .await?;
            for m in messages {
                let _new = crate::outbox::enqueue_in(&mut tx.as_tx(), m, now_ms).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }
}

impl Store {
    /// Records the id an external agenda gave an appointment.
    pub async fn set_external_id(&self, id: AppointmentId, external: &str) -> Result<()> {
        let id = id.to_string();
        on_pool!(self, write, |pool| {
            sqlx::query("UPDATE appointments SET external_id = $1 WHERE id = $2")
                .bind(external)
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The booked appointment an external agenda knows by `external` (or by our
    /// own id, which we send it as the placer id).
    pub async fn appointment_by_external(
        &self,
        establishment: EstablishmentId,
        external: &str,
    ) -> Result<Option<Appointment>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM appointments WHERE establishment_id = $1 AND status = 'booked' AND (external_id = $2 OR id = $2)"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(establishment.to_string())
                .bind(external)
                .fetch_all(pool)
                .await?;
            rows_to::<_, AppointmentRow>(&rows)?
                .into_iter()
                .next()
                .map(Appointment::try_from)
                .transpose()
        })
    }

    /// The professional with this RPPS, if any.
    pub async fn user_by_rpps(&self, rpps: &str) -> Result<Option<UserId>> {
        on_pool!(self, read, |pool| {
            let id: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE rpps = $1")
                .bind(rpps)
                .fetch_optional(pool)
                .await?;
            id.map(|i| parse_id(&i)).transpose()
        })
    }
}
