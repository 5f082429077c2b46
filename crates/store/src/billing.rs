//! What a monitoring month is billed on, per follow-up: when it ran, when
//! data came in, and the alerts raised with whether the team handled them.

use domain::{EnrolmentId, EstablishmentId, PatientId};

use crate::orgs::parse_id;
use crate::{Result, Store};

/// One follow-up's facts over a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpFacts {
    /// The follow-up.
    pub enrolment: EnrolmentId,
    /// The patient.
    pub patient: PatientId,
    /// Start (Unix ms).
    pub started_at_ms: i64,
    /// End, if ended (Unix ms).
    pub ended_at_ms: Option<i64>,
    /// When data came in (questionnaires and measures) in the period.
    pub transmissions: Vec<i64>,
    /// Alerts raised in the period (muted ones aside).
    pub alerts: u32,
    /// Of those, not acted on by a person.
    pub unhandled: u32,
}

impl Store {
    /// The follow-ups of `programme` at `establishment` that ran during
    /// [`from_ms`, `to_ms`), with their facts over that period, by start.
    pub async fn billing_facts(
        &self,
        establishment: EstablishmentId,
        programme: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<FollowUpFacts>> {
        let e = establishment.to_string();
        let e = e.as_str();
        on_pool!(self, read, |pool| {
            use sqlx::Row;
            let rows = sqlx::query(
                "SELECT id, patient_id, started_at_ms, ended_at_ms FROM enrolments \
                 WHERE establishment_id = $1 AND programme_id = $2 AND started_at_ms < $4 \
                 AND (ended_at_ms IS NULL OR ended_at_ms >= $3) ORDER BY started_at_ms, id",
            )
            .bind(e)
            .bind(programme)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let id: String = r.try_get("id")?;
                let transmissions: Vec<i64> = sqlx::query_scalar(
                    "SELECT submitted_at_ms FROM questionnaire_responses \
                     WHERE enrolment_id = $1 AND submitted_at_ms >= $2 AND submitted_at_ms < $3 ORDER BY submitted_at_ms",
                )
                .bind(&id)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(pool)
                .await?;
                let counts = sqlx::query(
                    "SELECT COUNT(*) AS alerts, \
                     COALESCE(SUM(CASE WHEN NOT EXISTS (SELECT 1 FROM alert_events v WHERE v.alert_id = a.id \
                       AND v.action <> 'raised' AND v.actor <> 'system') THEN 1 ELSE 0 END), 0) AS unhandled \
                     FROM alerts a WHERE a.enrolment_id = $1 AND a.status <> 'muted' \
                     AND a.raised_at_ms >= $2 AND a.raised_at_ms < $3",
                )
                .bind(&id)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_one(pool)
                .await?;
                let count = |c: &str| -> Result<u32> {
                    let n: i64 = counts.try_get(c)?;
                    Ok(u32::try_from(n).unwrap_or(u32::MAX))
                };
                out.push(FollowUpFacts {
                    enrolment: parse_id(&id)?,
                    patient: parse_id(&r.try_get::<String, _>("patient_id")?)?,
                    started_at_ms: r.try_get("started_at_ms")?,
                    ended_at_ms: r.try_get("ended_at_ms")?,
                    transmissions,
                    alerts: count("alerts")?,
                    unhandled: count("unhandled")?,
                });
            }
            Ok(out)
        })
    }
}
