//! The care team's settings for remote monitoring: an item's alerts muted for
//! one patient (added, lifted, ended by itself — each traced in the audit
//! trail), the team's opening hours and public-holiday calendar that SLAs are
//! counted in, and the doctors' on-call rota.

use domain::audit::AuditActor;
use domain::calendar::{OnCall, TeamHours, Window};
use domain::monitoring::{AlertLevel, Mute};
use domain::{EnrolmentId, EstablishmentId, PatientId, UserId};

use crate::audit::NewAudit;
use crate::macros::rows_to;
use crate::orgs::parse_id;
use crate::tx::WritePool as _;
use crate::tx::{AsTx, q};
use crate::{Result, Store, StoreError};

db_row! {
    struct MuteRow {
        id: String,
        enrolment_id: String,
        patient_id: String,
        item: String,
        max_grade: Option<i64>,
        max_level: String,
        reason: String,
        starts_at_ms: i64,
        until_ms: i64,
        created_by: String,
        ended_at_ms: Option<i64>,
        ended_by: Option<String>,
        end_note: Option<String>,
    }
}

const MUTE_COLUMNS: &str = "id, enrolment_id, patient_id, item, max_grade, max_level, reason, starts_at_ms, until_ms, created_by, ended_at_ms, ended_by, end_note";

/// A muting as stored: the rule's view and who did what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMute {
    /// The muting.
    pub mute: Mute,
    /// Enrolment.
    pub enrolment: EnrolmentId,
    /// Patient.
    pub patient: PatientId,
    /// Who muted (display name).
    pub created_by: String,
    /// Who ended it (display name, or `système` when it ended by itself).
    pub ended_by: Option<String>,
    /// Why it was lifted early.
    pub end_note: Option<String>,
}

impl TryFrom<MuteRow> for StoredMute {
    type Error = StoreError;
    fn try_from(r: MuteRow) -> Result<Self> {
        Ok(StoredMute {
            mute: Mute {
                id: r.id,
                item: r.item,
                max_grade: r
                    .max_grade
                    .map(u8::try_from)
                    .transpose()
                    .map_err(|_| StoreError::Corrupt("grade".into()))?,
                max_level: AlertLevel::from_code(&r.max_level)
                    .ok_or_else(|| StoreError::Corrupt("niveau".into()))?,
                reason: r.reason,
                starts_at_ms: r.starts_at_ms,
                until_ms: r.until_ms,
                ended_at_ms: r.ended_at_ms,
            },
            enrolment: parse_id(&r.enrolment_id)?,
            patient: parse_id(&r.patient_id)?,
            created_by: r.created_by,
            ended_by: r.ended_by,
            end_note: r.end_note,
        })
    }
}

/// A muting to record.
#[derive(Debug, Clone)]
pub struct NewMute<'a> {
    /// Enrolment.
    pub enrolment: EnrolmentId,
    /// Patient.
    pub patient: PatientId,
    /// Item.
    pub item: &'a str,
    /// Highest grade muted (graded items).
    pub max_grade: Option<u8>,
    /// Highest level muted.
    pub max_level: AlertLevel,
    /// Why.
    pub reason: &'a str,
    /// End (Unix ms).
    pub until_ms: i64,
    /// Who (display name).
    pub created_by: &'a str,
}

fn audit(who: &AuditActor, patient: PatientId, action: &str, id: &str, now_ms: i64) -> NewAudit {
    NewAudit {
        at_ms: now_ms,
        actor: who.clone(),
        patient: Some(patient.to_string()),
        action: action.into(),
        resource: format!("Flag/sourdine-{id}"),
        outcome: "success".into(),
    }
}

impl Store {
    /// Records a muting, audited; refused (`Refused`) while the same item
    /// of the same enrolment is already muted at `now_ms`. Its id.
    pub async fn add_mute(&self, m: &NewMute<'_>, who: &AuditActor, now_ms: i64) -> Result<String> {
        let id = uuid::Uuid::now_v7().to_string();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let running = q("SELECT id FROM alert_mutes WHERE enrolment_id = $1 AND item = $2 AND ended_at_ms IS NULL AND until_ms > $3")
                .bind(m.enrolment.to_string())
                .bind(m.item)
                .bind(now_ms)
                .fetch_optional(&mut tx.as_tx())
                .await?;
            if running.is_some() {
                return Err(StoreError::Refused(
                    "cet item est déjà en sourdine pour ce patient".into(),
                ));
            }
            q("INSERT INTO alert_mutes (id, enrolment_id, patient_id, item, max_grade, max_level, reason, starts_at_ms, until_ms, created_by) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                .bind(&id)
                .bind(m.enrolment.to_string())
                .bind(m.patient.to_string())
                .bind(m.item)
                .bind(m.max_grade.map(i64::from))
                .bind(m.max_level.code())
                .bind(m.reason)
                .bind(now_ms)
                .bind(m.until_ms)
                .bind(m.created_by)
                .execute(&mut tx.as_tx())
                .await?;
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &audit(who, m.patient, "mute-alerts", &id, now_ms),
            )
            .await?;
            tx.commit().await?;
            Ok(id.clone())
        })
    }

    /// The mutings of an enrolment, newest first (running and past).
    pub async fn mutes_of(&self, enrolment: EnrolmentId) -> Result<Vec<StoredMute>> {
        let sql = format!(
            "SELECT {MUTE_COLUMNS} FROM alert_mutes WHERE enrolment_id = $1 ORDER BY starts_at_ms DESC, id DESC"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(enrolment.to_string())
                .fetch_all(pool)
                .await?;
            rows_to::<_, MuteRow>(&rows)?
                .into_iter()
                .map(StoredMute::try_from)
                .collect::<Result<Vec<_>>>()
        })
    }

    /// One muting.
    pub async fn mute(&self, id: &str) -> Result<StoredMute> {
        let sql = format!("SELECT {MUTE_COLUMNS} FROM alert_mutes WHERE id = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_all(pool)
                .await?;
            rows_to::<_, MuteRow>(&rows)?
                .into_iter()
                .next()
                .map(StoredMute::try_from)
                .transpose()?
                .ok_or(StoreError::NotFound)
        })
    }

    /// Lifts a running muting before its end, with a note, audited; `false`
    /// if it had already ended.
    pub async fn lift_mute(
        &self,
        id: &str,
        by: &str,
        note: &str,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<bool> {
        let m = self.mute(id).await?;
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q("UPDATE alert_mutes SET ended_at_ms = $1, ended_by = $2, end_note = $3 WHERE id = $4 AND ended_at_ms IS NULL AND until_ms > $1")
                .bind(now_ms)
                .bind(by)
                .bind(note)
                .bind(id)
                .execute(&mut tx.as_tx())
                .await?;
            if n == 0 {
                return Ok(false);
            }
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &audit(who, m.patient, "unmute-alerts", id, now_ms),
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Records as ended every muting past its end (the muting already stopped
    /// silencing at its end: this traces it), each with an audit entry by the
    /// system; their ids.
    pub async fn end_expired_mutes(&self, now_ms: i64) -> Result<Vec<String>> {
        let who = AuditActor::system("sourdine");
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let rows = q("UPDATE alert_mutes SET ended_at_ms = until_ms, ended_by = 'système', end_note = 'fin de la période' \
                          WHERE ended_at_ms IS NULL AND until_ms <= $1 RETURNING id, patient_id")
                .bind(now_ms)
                .fetch_all(&mut tx.as_tx())
                .await?;
            let mut ids = Vec::with_capacity(rows.len());
            for r in &rows {
                let id: String = r.get("id")?;
                let patient: PatientId = parse_id(&r.get::<String>("patient_id")?)?;
                crate::audit::append_audit(
                    &mut tx.as_tx(),
                    &audit(&who, patient, "unmute-alerts", &id, now_ms),
                )
                .await?;
                ids.push(id);
            }
            tx.commit().await?;
            Ok(ids)
        })
    }

    /// An establishment's team hours (no window: round the clock).
    pub async fn team_hours(&self, establishment: EstablishmentId) -> Result<TeamHours> {
        let e = establishment.to_string();
        let e = e.as_str();
        on_pool!(self, read, |pool| {
            use sqlx::Row;
            let rows = sqlx::query("SELECT weekday, start_min, end_min FROM team_hours WHERE establishment_id = $1 ORDER BY weekday, start_min")
                .bind(e)
                .fetch_all(pool)
                .await?;
            let corrupt = |_| StoreError::Corrupt("horaires".into());
            let windows = rows
                .iter()
                .map(|r| {
                    Ok(Window {
                        weekday: i8::try_from(r.try_get::<i64, _>("weekday")?).map_err(corrupt)?,
                        start_min: i16::try_from(r.try_get::<i64, _>("start_min")?)
                            .map_err(corrupt)?,
                        end_min: i16::try_from(r.try_get::<i64, _>("end_min")?).map_err(corrupt)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let alsace: Option<bool> = sqlx::query_scalar(
                "SELECT alsace_moselle FROM team_calendars WHERE establishment_id = $1",
            )
            .bind(e)
            .fetch_optional(pool)
            .await?;
            Ok(TeamHours {
                windows,
                alsace_moselle: alsace.unwrap_or(false),
            })
        })
    }

    /// Replaces an establishment's team hours (checked by the caller), audited.
    pub async fn set_team_hours(
        &self,
        establishment: EstablishmentId,
        hours: &TeamHours,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<()> {
        let e = establishment.to_string();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            q("DELETE FROM team_hours WHERE establishment_id = $1")
                .bind(&e)
                .execute(&mut tx.as_tx())
                .await?;
            for w in &hours.windows {
                q("INSERT INTO team_hours (establishment_id, weekday, start_min, end_min) VALUES ($1, $2, $3, $4)")
                    .bind(&e)
                    .bind(i64::from(w.weekday))
                    .bind(i64::from(w.start_min))
                    .bind(i64::from(w.end_min))
                    .execute(&mut tx.as_tx())
                    .await?;
            }
            q("DELETE FROM team_calendars WHERE establishment_id = $1")
                .bind(&e)
                .execute(&mut tx.as_tx())
                .await?;
            q("INSERT INTO team_calendars (establishment_id, alsace_moselle) VALUES ($1, $2)")
                .bind(&e)
                .bind(hours.alsace_moselle)
                .execute(&mut tx.as_tx())
                .await?;
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &NewAudit {
                    at_ms: now_ms,
                    actor: who.clone(),
                    patient: None,
                    action: "team-hours".into(),
                    resource: format!("Organization/{e}"),
                    outcome: "success".into(),
                },
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Adds an on-call period (start, end; checked by the caller), audited;
    /// its id.
    pub async fn add_on_call(
        &self,
        establishment: EstablishmentId,
        doctor: UserId,
        (starts_at_ms, ends_at_ms): (i64, i64),
        who: &AuditActor,
        created_by: &str,
        now_ms: i64,
    ) -> Result<String> {
        let id = uuid::Uuid::now_v7().to_string();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            q("INSERT INTO on_call (id, establishment_id, user_id, starts_at_ms, ends_at_ms, created_by, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(&id)
                .bind(establishment.to_string())
                .bind(doctor.to_string())
                .bind(starts_at_ms)
                .bind(ends_at_ms)
                .bind(created_by)
                .bind(now_ms)
                .execute(&mut tx.as_tx())
                .await?;
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &on_call_audit(who, "on-call-add", &id, now_ms),
            )
            .await?;
            tx.commit().await?;
            Ok(id.clone())
        })
    }

    /// Removes an on-call period of `establishment`, audited; `false` if it
    /// has none of that id.
    pub async fn remove_on_call(
        &self,
        establishment: EstablishmentId,
        id: &str,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q("DELETE FROM on_call WHERE id = $1 AND establishment_id = $2")
                .bind(id)
                .bind(establishment.to_string())
                .execute(&mut tx.as_tx())
                .await?;
            if n == 0 {
                return Ok(false);
            }
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &on_call_audit(who, "on-call-remove", id, now_ms),
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// An establishment's on-call periods not over at `since_ms`, by start.
    pub async fn on_call_rota(
        &self,
        establishment: EstablishmentId,
        since_ms: i64,
    ) -> Result<Vec<OnCall>> {
        let e = establishment.to_string();
        let e = e.as_str();
        on_pool!(self, read, |pool| {
            use sqlx::Row;
            let rows = sqlx::query("SELECT id, user_id, starts_at_ms, ends_at_ms FROM on_call WHERE establishment_id = $1 AND ends_at_ms > $2 ORDER BY starts_at_ms, id")
                .bind(e)
                .bind(since_ms)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(OnCall {
                        id: r.try_get("id")?,
                        doctor: parse_id(&r.try_get::<String, _>("user_id")?)?,
                        starts_at_ms: r.try_get("starts_at_ms")?,
                        ends_at_ms: r.try_get("ends_at_ms")?,
                    })
                })
                .collect()
        })
    }
}

fn on_call_audit(who: &AuditActor, action: &str, id: &str, now_ms: i64) -> NewAudit {
    NewAudit {
        at_ms: now_ms,
        actor: who.clone(),
        patient: None,
        action: action.into(),
        resource: format!("Schedule/astreinte-{id}"),
        outcome: "success".into(),
    }
}
