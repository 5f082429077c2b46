//! Notices to patients: the channel each chose, how each notice left (and an
//! SMS's delivery receipt), and a patient's notices for their portal page.

use domain::PatientId;

use crate::{Result, Store};

/// A notice as the patient's page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The outbox message's id.
    pub id: String,
    /// The text.
    pub text: String,
    /// When it was written (Unix ms).
    pub created_at_ms: i64,
    /// When it left, if it has.
    pub delivered_at_ms: Option<i64>,
    /// How it left (`sms`, `email`, `portail`), if it has.
    pub channel: Option<String>,
    /// An SMS's state (`submitted`, then the receipt's: `DELIVRD`, `UNDELIV`…).
    pub state: Option<String>,
}

impl Store {
    /// The channel `patient` chose, if any.
    pub async fn notice_channel(&self, patient: PatientId) -> Result<Option<String>> {
        let p = patient.to_string();
        let p = p.as_str();
        on_pool!(self, read, |pool| {
            Ok(
                sqlx::query_scalar("SELECT channel FROM notice_preferences WHERE patient_id = $1")
                    .bind(p)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }

    /// Records the channel `patient` chose.
    pub async fn set_notice_channel(
        &self,
        patient: PatientId,
        channel: &str,
        now_ms: i64,
    ) -> Result<()> {
        let p = patient.to_string();
        let p = p.as_str();
        on_pool!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO notice_preferences (patient_id, channel, at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (patient_id) DO UPDATE SET channel = excluded.channel, at_ms = excluded.at_ms",
            )
            .bind(p)
            .bind(channel)
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Records how notice `outbox_id` left (`message_id`: the SMS centre's).
    pub async fn record_notice_sent(
        &self,
        outbox_id: &str,
        channel: &str,
        message_id: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO notices_sent (outbox_id, channel, message_id, state, sent_at_ms, state_at_ms) \
                 VALUES ($1, $2, $3, CASE WHEN $3 IS NULL THEN NULL ELSE 'submitted' END, $4, $4) \
                 ON CONFLICT (outbox_id) DO NOTHING",
            )
            .bind(outbox_id)
            .bind(channel)
            .bind(message_id)
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Records an SMS's delivery receipt; `false` when no notice has that
    /// message id (another instance's, or already pruned).
    pub async fn record_sms_receipt(
        &self,
        message_id: &str,
        state: &str,
        now_ms: i64,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let r = sqlx::query(
                "UPDATE notices_sent SET state = $1, state_at_ms = $2 WHERE message_id = $3",
            )
            .bind(state)
            .bind(now_ms)
            .bind(message_id)
            .execute(pool)
            .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    /// `patient`'s latest notices, newest first.
    pub async fn notices_of(&self, patient: PatientId, limit: i64) -> Result<Vec<Notice>> {
        let dest = format!("portail:{patient}");
        let dest = dest.as_str();
        on_pool!(self, read, |pool| {
            use sqlx::Row;
            let rows = sqlx::query(
                "SELECT o.id, o.payload, o.created_at_ms, o.delivered_at_ms, n.channel, n.state \
                 FROM outbox o LEFT JOIN notices_sent n ON n.outbox_id = o.id \
                 WHERE o.topic = 'notify' AND o.destination = $1 \
                 ORDER BY o.created_at_ms DESC, o.id DESC LIMIT +$2",
            )
            .bind(dest)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Notice {
                        id: r.try_get("id")?,
                        text: r.try_get("payload")?,
                        created_at_ms: r.try_get("created_at_ms")?,
                        delivered_at_ms: r.try_get("delivered_at_ms")?,
                        channel: r.try_get("channel")?,
                        state: r.try_get("state")?,
                    })
                })
                .collect()
        })
    }
}
