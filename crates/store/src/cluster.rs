//! What several nodes on one database agree on: a timer job's run per period
//! (claimed by one node), leases on work one node holds at a time, attempts
//! counted for the rate limits, who waits in a virtual waiting room and which
//! consultation rooms are open. On SQLite (one node) the same tables serve, so
//! there is one code path.

use std::collections::HashMap;

use domain::AppointmentId;

use crate::orgs::parse_id;
use crate::tx::WritePool as _;
use crate::tx::{AsTx, q, q_built};
use crate::{Result, Store};

/// A patient's presence in a virtual waiting room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    /// Since when they wait (Unix ms; their first arrival).
    pub since_ms: i64,
    /// Whether a connection holds their presence now (and a node saw it
    /// alive recently).
    pub connected: bool,
    /// Camera found working by the device check.
    pub camera: bool,
    /// Microphone found working by the device check.
    pub microphone: bool,
}

/// How long a presence stays "connected" without its node saying it is
/// alive (nodes say it every [`PRESENCE_BEAT_MS`], [`Store::presence_beat`]).
pub const PRESENCE_STALE_MS: i64 = 60_000;
/// How often the node holding a presence says it is alive.
pub const PRESENCE_BEAT_MS: i64 = 20_000;

impl Store {
    /// Claims the run of timer job `job` for period `slot` on behalf of
    /// `node`: `true` for the first node that asks, `false` for every other.
    pub async fn claim_job_run(
        &self,
        job: &str,
        slot: i64,
        node: &str,
        now_ms: i64,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q("INSERT INTO job_runs (job, slot, node, started_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (job, slot) DO NOTHING")
                .bind(job)
                .bind(slot)
                .bind(node)
                .bind(now_ms)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// The runs of `job` since `since_ms`, oldest first: (period, node).
    pub async fn job_runs(&self, job: &str, since_ms: i64) -> Result<Vec<(i64, String)>> {
        on_pool!(self, read, |pool| {
            let mut c = pool.begin_write().await?;
            let rows = q("SELECT slot, node FROM job_runs WHERE job = $1 AND started_at_ms >= $2 ORDER BY slot")
                .bind(job)
                .bind(since_ms)
                .fetch_all(&mut c.as_tx())
                .await?;
            rows.iter()
                .map(|r| Ok((r.get("slot")?, r.get("node")?)))
                .collect()
        })
    }

    /// Takes lease `name` for `holder` until `now_ms + ttl_ms` when it is free
    /// (never taken, expired) or already `holder`'s (renewed); `false` when
    /// another holder has it.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q("INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms WHERE leases.until_ms <= $4 OR leases.holder = excluded.holder")
                .bind(name)
                .bind(holder)
                .bind(now_ms + ttl_ms)
                .bind(now_ms)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// Gives lease `name` back, if `holder` has it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            q("DELETE FROM leases WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Counts one attempt in `bucket`, in windows of `window_ms` starting at
    /// its first attempt: `Ok(Err(ms))` when it is the attempt past `limit`
    /// in the current window, with the milliseconds until the window ends.
    /// One statement, so attempts on several nodes at once all count.
    pub async fn count_attempt(
        &self,
        bucket: &str,
        now_ms: i64,
        window_ms: i64,
        limit: u32,
    ) -> Result<std::result::Result<(), i64>> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            // Every SET expression reads the row as it was: a window over
            // starts again at this attempt.
            let r = q("INSERT INTO rate_limits (bucket, window_start_ms, attempts) VALUES ($1, $2, 1) \
                       ON CONFLICT (bucket) DO UPDATE SET \
                       window_start_ms = CASE WHEN rate_limits.window_start_ms <= $3 THEN excluded.window_start_ms ELSE rate_limits.window_start_ms END, \
                       attempts = CASE WHEN rate_limits.window_start_ms <= $3 THEN 1 ELSE rate_limits.attempts + 1 END \
                       RETURNING window_start_ms, attempts")
                .bind(bucket)
                .bind(now_ms)
                .bind(now_ms - window_ms)
                .fetch_one(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            let start: i64 = r.get("window_start_ms")?;
            let attempts: i64 = r.get("attempts")?;
            Ok(if attempts > i64::from(limit) {
                Err(start + window_ms - now_ms)
            } else {
                Ok(())
            })
        })
    }

    /// Forgets what no node needs any more at `now_ms`: rate-limit windows
    /// older than `window_ms`, job runs older than a week, expired leases.
    /// Returns how many rows went.
    pub async fn prune_cluster_state(&self, now_ms: i64, window_ms: i64) -> Result<u64> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut n = q("DELETE FROM rate_limits WHERE window_start_ms <= $1")
                .bind(now_ms - window_ms)
                .execute(&mut tx.as_tx())
                .await?;
            n += q("DELETE FROM job_runs WHERE started_at_ms < $1")
                .bind(now_ms - 7 * 86_400_000)
                .execute(&mut tx.as_tx())
                .await?;
            n += q("DELETE FROM leases WHERE until_ms <= $1")
                .bind(now_ms)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(n)
        })
    }

    /// The patient of appointment `id` waits, their page held by
    /// `connection` on `node`: since now on their first arrival, since their
    /// first arrival on a reconnection (on any node).
    pub async fn presence_enter(
        &self,
        id: AppointmentId,
        connection: &str,
        node: &str,
        now_ms: i64,
    ) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            q("INSERT INTO waiting_presence (appointment_id, since_ms, connection, node, seen_at_ms) VALUES ($1, $2, $3, $4, $2) \
               ON CONFLICT (appointment_id) DO UPDATE SET connection = excluded.connection, node = excluded.node, seen_at_ms = excluded.seen_at_ms")
                .bind(id.to_string())
                .bind(now_ms)
                .bind(connection)
                .bind(node)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// What the device check found, told by the page on `connection`.
    pub async fn presence_devices(
        &self,
        id: AppointmentId,
        connection: &str,
        camera: bool,
        microphone: bool,
        now_ms: i64,
    ) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            q("UPDATE waiting_presence SET camera = $3, microphone = $4, seen_at_ms = $5 WHERE appointment_id = $1 AND connection = $2")
                .bind(id.to_string())
                .bind(connection)
                .bind(camera)
                .bind(microphone)
                .bind(now_ms)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// `node` is alive: every presence its connections hold is seen now (one
    /// statement for all of them). Returns how many.
    pub async fn presence_beat(&self, node: &str, now_ms: i64) -> Result<u64> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q("UPDATE waiting_presence SET seen_at_ms = $2 WHERE node = $1 AND connection IS NOT NULL")
                .bind(node)
                .bind(now_ms)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(n)
        })
    }

    /// `connection` closed: the patient shows disconnected, unless a newer
    /// connection (a reconnection, maybe on another node) holds them already.
    pub async fn presence_left(&self, id: AppointmentId, connection: &str) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            q("UPDATE waiting_presence SET connection = NULL WHERE appointment_id = $1 AND connection = $2")
                .bind(id.to_string())
                .bind(connection)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The presence of each of `ids` that has one, at `now_ms`.
    pub async fn presence_of(
        &self,
        ids: &[AppointmentId],
        now_ms: i64,
    ) -> Result<HashMap<AppointmentId, Presence>> {
        let mut out = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let list = ids
            .iter()
            .enumerate()
            .map(|(i, _)| format!("${}", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT appointment_id, since_ms, connection, seen_at_ms, camera, microphone FROM waiting_presence WHERE appointment_id IN ({list})"
        );
        on_pool!(self, read, |pool| {
            let mut c = pool.begin_write().await?;
            let mut query = q_built(sql);
            for id in ids {
                query = query.bind(id.to_string());
            }
            for r in query.fetch_all(&mut c.as_tx()).await? {
                let id: String = r.get("appointment_id")?;
                let seen: i64 = r.get("seen_at_ms")?;
                out.insert(
                    parse_id(&id)?,
                    Presence {
                        since_ms: r.get("since_ms")?,
                        connected: r.get::<Option<String>>("connection")?.is_some()
                            && now_ms - seen < PRESENCE_STALE_MS,
                        camera: r.get("camera")?,
                        microphone: r.get("microphone")?,
                    },
                );
            }
            Ok(out)
        })
    }

    /// The doctor opened the room of appointment `id`.
    pub async fn open_room(&self, id: AppointmentId, now_ms: i64) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            q("INSERT INTO open_rooms (appointment_id, opened_at_ms) VALUES ($1, $2) ON CONFLICT (appointment_id) DO NOTHING")
                .bind(id.to_string())
                .bind(now_ms)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Whether the doctor has opened the room of appointment `id`.
    pub async fn room_is_open(&self, id: AppointmentId) -> Result<bool> {
        on_pool!(self, read, |pool| {
            let mut c = pool.begin_write().await?;
            Ok(q("SELECT 1 FROM open_rooms WHERE appointment_id = $1")
                .bind(id.to_string())
                .fetch_optional(&mut c.as_tx())
                .await?
                .is_some())
        })
    }

    /// The consultation of appointment `id` is over: its room and its
    /// waiting-room presence go.
    pub async fn close_room(&self, id: AppointmentId) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            for sql in [
                "DELETE FROM open_rooms WHERE appointment_id = $1",
                "DELETE FROM waiting_presence WHERE appointment_id = $1",
            ] {
                q(sql).bind(id.to_string()).execute(&mut tx.as_tx()).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
