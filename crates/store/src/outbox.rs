//! The outbox: every outbound message is written here in the same transaction as
//! the change that caused it; a worker claims due messages, delivers them, and
//! records success, a retry with backoff, or after too many attempts a dead letter
//! (visible, replayable). The idempotency key makes a second enqueue of the same
//! message a no-op.

use crate::macros::rows_to;
use crate::tx::WritePool as _;
use crate::tx::{AsTx, Tx, q};
use crate::{Engine, Result, Store, StoreError};

/// A message to enqueue.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Unique key: the same key twice is one message.
    pub idempotency_key: String,
    /// Kind of message (`hl7.oru`, `mail`, `mhd`...).
    pub topic: String,
    /// Where to (`mllp://host:port`, an address...).
    pub destination: String,
    /// The message.
    pub payload: String,
    /// Whose message it is: its establishment's settings deliver it (`None`:
    /// the instance's configuration).
    pub establishment: Option<domain::EstablishmentId>,
}

db_row! {
    /// A message as stored.
    pub struct OutboxMessage {
        id: String,
        idempotency_key: String,
        topic: String,
        destination: String,
        payload: String,
        establishment_id: Option<String>,
        attempts: i64,
        next_attempt_at_ms: i64,
        last_error: Option<String>,
        delivered_at_ms: Option<i64>,
        dead_at_ms: Option<i64>,
    }
}

/// Retry policy: exponential backoff from `base_ms`, capped, and a dead letter after
/// `max_attempts`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First delay.
    pub base_ms: i64,
    /// Largest delay.
    pub max_delay_ms: i64,
    /// Attempts before the message is dead.
    pub max_attempts: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_ms: 1_000,
            max_delay_ms: 15 * 60 * 1_000,
            max_attempts: 12,
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt number `attempts + 1`, after `attempts` failures.
    pub fn delay_ms(&self, attempts: i64) -> i64 {
        let exp = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
        self.base_ms
            .saturating_mul(1i64 << exp)
            .min(self.max_delay_ms)
    }
}

impl OutboxMessage {
    /// Whose message it is, when an establishment's.
    pub fn establishment(&self) -> Option<domain::EstablishmentId> {
        self.establishment_id
            .as_deref()
            .and_then(|e| e.parse().ok())
    }
}

db_row! {
    /// The queue of one topic.
    pub struct Backlog {
        topic: String,
        waiting: i64,
        oldest_ms: Option<i64>,
        dead: i64,
    }
}

const COLUMNS: &str = "id, idempotency_key, topic, destination, payload, establishment_id, attempts, next_attempt_at_ms, last_error, delivered_at_ms, dead_at_ms";

/// Enqueues inside an open transaction: use it in the transaction of the change
/// that causes the message. Returns whether the message is new.
pub(crate) async fn enqueue_in(tx: &mut Tx<'_>, m: &NewMessage, now_ms: i64) -> Result<bool> {
    let r = q(
        "INSERT INTO outbox (id, idempotency_key, topic, destination, payload, next_attempt_at_ms, created_at_ms, establishment_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(&m.idempotency_key)
    .bind(&m.topic)
    .bind(&m.destination)
    .bind(&m.payload)
    .bind(now_ms)
    .bind(m.establishment.map(|e| e.to_string()))
    .execute(tx)
    .await?;
    Ok(r == 1)
}

impl Store {
    /// Enqueues a message on its own (for changes that have no other write).
    pub async fn enqueue(&self, m: &NewMessage, now_ms: i64) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let new = crate::outbox::enqueue_in(&mut tx.as_tx(), m, now_ms).await?;
            tx.commit().await?;
            Ok(new)
        })
    }

    /// Claims up to `limit` due messages of `topic` for `lease_ms`: no other worker
    /// gets them until the lease ends (a crashed worker's messages come back).
    /// PostgreSQL uses `FOR UPDATE SKIP LOCKED`; SQLite's single writer serialises.
    pub async fn claim_outbox(
        &self,
        topic: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>> {
        let lock = if self.engine() == Engine::Postgres {
            "FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE outbox SET claimed_until_ms = $1 WHERE id IN (\
               SELECT id FROM outbox WHERE topic = $2 AND delivered_at_ms IS NULL AND dead_at_ms IS NULL \
               AND next_attempt_at_ms <= $3 AND (claimed_until_ms IS NULL OR claimed_until_ms <= $3) \
               ORDER BY next_attempt_at_ms LIMIT +$4 {lock}) RETURNING {COLUMNS}"
        );
        on_pool!(self, write, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(now_ms + lease_ms)
                .bind(topic)
                .bind(now_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut v: Vec<OutboxMessage> = rows_to(&rows)?;
            v.sort_by_key(|m| m.next_attempt_at_ms);
            Ok(v)
        })
    }

    /// Records a delivery.
    pub async fn outbox_delivered(&self, id: &str, now_ms: i64) -> Result<()> {
        on_pool!(self, write, |pool| {
            let r = sqlx::query("UPDATE outbox SET delivered_at_ms = $1, claimed_until_ms = NULL, attempts = attempts + 1 WHERE id = $2")
                .bind(now_ms)
                .bind(id)
                .execute(pool)
                .await?;
            if r.rows_affected() == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
    }

    /// Records a failed attempt: schedules a retry, or marks the message dead after
    /// the policy's last attempt. Returns whether it is now dead. A message
    /// already dead or delivered is left as it is (a late attempt's failure
    /// does not overwrite why it died).
    pub async fn outbox_failed(
        &self,
        id: &str,
        error: &str,
        now_ms: i64,
        policy: &RetryPolicy,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            use sqlx::Row;
            let mut tx = pool.begin_write().await?;
            let Some(r) = sqlx::query("UPDATE outbox SET attempts = attempts + 1, claimed_until_ms = NULL, last_error = $1 \
                 WHERE id = $2 AND dead_at_ms IS NULL AND delivered_at_ms IS NULL RETURNING attempts")
                .bind(error)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                let settled = sqlx::query("SELECT dead_at_ms FROM outbox WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let dead: Option<i64> = settled.try_get("dead_at_ms")?;
                return Ok(dead.is_some());
            };
            let attempts: i64 = r.try_get("attempts")?;
            let dead = attempts >= policy.max_attempts;
            if dead {
                sqlx::query("UPDATE outbox SET dead_at_ms = $1 WHERE id = $2")
                    .bind(now_ms)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            } else {
                sqlx::query("UPDATE outbox SET next_attempt_at_ms = $1 WHERE id = $2")
                    .bind(now_ms + policy.delay_ms(attempts))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(dead)
        })
    }

    /// The message enqueued under an idempotency key, whatever its state.
    pub async fn outbox_message(&self, idempotency_key: &str) -> Result<Option<OutboxMessage>> {
        let sql = format!("SELECT {COLUMNS} FROM outbox WHERE idempotency_key = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(idempotency_key)
                .fetch_all(pool)
                .await?;
            Ok(rows_to(&rows)?.into_iter().next())
        })
    }

    /// Messages of `topic` waiting for delivery (not delivered, not dead), oldest
    /// first, without claiming them.
    pub async fn outbox_pending(&self, topic: &str, limit: i64) -> Result<Vec<OutboxMessage>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE topic = $1 AND delivered_at_ms IS NULL AND dead_at_ms IS NULL ORDER BY created_at_ms LIMIT +$2"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(topic)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            Ok(rows_to(&rows)?)
        })
    }

    /// The dead letters, newest first.
    pub async fn outbox_dead(&self, limit: i64) -> Result<Vec<OutboxMessage>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE dead_at_ms IS NOT NULL ORDER BY dead_at_ms DESC LIMIT +$1"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            Ok(rows_to(&rows)?)
        })
    }

    /// The dead letters of `establishment` (`None`: the instance's own,
    /// with no establishment), newest first.
    pub async fn outbox_dead_of(
        &self,
        establishment: Option<domain::EstablishmentId>,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE dead_at_ms IS NOT NULL \
             AND (establishment_id = $1 OR ($1 IS NULL AND establishment_id IS NULL)) ORDER BY dead_at_ms DESC LIMIT +$2"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(establishment.map(|e| e.to_string()))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            Ok(rows_to(&rows)?)
        })
    }

    /// One message by id.
    pub async fn outbox_by_id(&self, id: &str) -> Result<OutboxMessage> {
        let sql = format!("SELECT {COLUMNS} FROM outbox WHERE id = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_all(pool)
                .await?;
            rows_to::<_, OutboxMessage>(&rows)?
                .into_iter()
                .next()
                .ok_or(StoreError::NotFound)
        })
    }

    /// Discards a dead letter for good: a document recipient it carried keeps
    /// `failed` and the reason, then the message leaves. Only a dead letter.
    pub async fn outbox_discard(&self, id: &str) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            q("UPDATE document_recipients SET state = 'failed', \
               detail = (SELECT o.last_error FROM outbox o WHERE o.idempotency_key = document_recipients.outbox_key), \
               updated_at_ms = (SELECT o.dead_at_ms FROM outbox o WHERE o.idempotency_key = document_recipients.outbox_key), \
               outbox_key = NULL \
               WHERE outbox_key = (SELECT idempotency_key FROM outbox WHERE id = $1 AND dead_at_ms IS NOT NULL)")
                .bind(id)
                .execute(&mut tx.as_tx())
                .await?;
            let n = q("DELETE FROM outbox WHERE id = $1 AND dead_at_ms IS NOT NULL")
                .bind(id)
                .execute(&mut tx.as_tx())
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The queue by topic: messages waiting (not delivered, not dead), the
    /// oldest one's creation time, and dead letters.
    pub async fn outbox_backlog(&self) -> Result<Vec<Backlog>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT topic, \
                 SUM(CASE WHEN delivered_at_ms IS NULL AND dead_at_ms IS NULL THEN 1 ELSE 0 END) AS waiting, \
                 MIN(CASE WHEN delivered_at_ms IS NULL AND dead_at_ms IS NULL THEN created_at_ms END) AS oldest_ms, \
                 SUM(CASE WHEN dead_at_ms IS NOT NULL THEN 1 ELSE 0 END) AS dead \
                 FROM outbox WHERE delivered_at_ms IS NULL GROUP BY topic ORDER BY topic",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows_to(&rows)?)
        })
    }

    /// Puts a dead letter back in the queue, due now, with its attempts reset.
    pub async fn outbox_revive(&self, id: &str, now_ms: i64) -> Result<()> {
        on_pool!(self, write, |pool| {
            let r = sqlx::query(
                "UPDATE outbox SET dead_at_ms = NULL, attempts = 0, next_attempt_at_ms = $1 WHERE id = $2 AND dead_at_ms IS NOT NULL",
            )
            .bind(now_ms)
            .bind(id)
            .execute(pool)
            .await?;
            if r.rows_affected() == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::RetryPolicy;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            base_ms: 1_000,
            max_delay_ms: 10_000,
            max_attempts: 5,
        };
        let d: Vec<i64> = (1..=6).map(|a| p.delay_ms(a)).collect();
        assert_eq!(d, vec![1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        assert_eq!(p.delay_ms(1_000), 10_000);
    }
}
