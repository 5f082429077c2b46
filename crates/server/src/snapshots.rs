//! Jobs on a timer, owned by the application: bed availability snapshots every five
//! minutes (the regional charts), every minute the escalation of monitoring
//! alerts left open past their SLA, every quarter of an hour the reminders, and
//! every hour the clean-up of the cluster's counters. Each period of each job
//! runs once across all the nodes on one database: the first node to claim
//! it in `job_runs` runs it (`store::cluster`); every node looks twice a
//! period, so a period is never skipped while one node is up. And every node,
//! every 20 s, says it is alive for the waiting-room presences its
//! connections hold (one statement for all of them). On SQLite, every node
//! also copies the write-ahead log into the database file ten times a
//! second, beside the writer rather than inside its commits.

use std::time::Duration;

use tokio::sync::watch;

use crate::state::AppState;

/// Takes one snapshot of every territory at the clock's current minute.
pub async fn take(state: &AppState) -> Result<usize, store::StoreError> {
    let at = state.now_ms() / 60_000 * 60_000;
    let mut n = 0;
    for t in state.store.territories().await? {
        n += state.store.snapshot_beds(t.id, at).await?;
    }
    Ok(n)
}

/// Escalates the alerts left open past their SLA, telling the doctor on call
/// of each, and records the end of the alert mutings past their end; returns
/// how many alerts escalated.
pub async fn escalate(state: &AppState) -> Result<usize, store::StoreError> {
    let ended = state.store.end_expired_mutes(state.now_ms()).await?;
    if !ended.is_empty() {
        tracing::info!(count = ended.len(), "alert mutings ended");
    }
    let ids = state.store.escalate_overdue(state.now_ms()).await?;
    if !ids.is_empty() {
        tracing::info!(count = ids.len(), "overdue monitoring alerts escalated");
        state
            .metrics
            .count_sla_breaches(u64::try_from(ids.len()).unwrap_or(0));
    }
    for id in &ids {
        let a = state.store.alert(*id).await?;
        if let Err(e) = crate::services::care_team::notify_on_call(state.ctx(), &a).await {
            tracing::warn!(alert = %a.id, error = %e, "the doctor on call could not be told");
        }
        state
            .live
            .publish(crate::state::LiveEvent::Alerts(a.establishment));
    }
    Ok(ids.len())
}

/// Enqueues a reminder for every questionnaire now due (once per due period:
/// the idempotency key carries the due time); returns how many were new. The
/// text names no health fact: it may go by SMS or mail later.
pub async fn remind(state: &AppState) -> Result<usize, store::StoreError> {
    let now = state.now_ms();
    let mut new = 0;
    for (e, last) in state.store.active_enrolments_with_last_response().await? {
        let Some(p) = crate::services::monitoring::programme(&e.programme) else {
            continue;
        };
        let Some(due) =
            domain::monitoring::questionnaire_due(e.started_at_ms, last, p.frequency_days, now)
        else {
            continue;
        };
        let m = store::outbox::NewMessage {
            idempotency_key: format!("rappel:{}:{due}", e.id),
            topic: crate::outbound::NOTIFY_TOPIC.into(),
            destination: format!("portail:{}", e.patient),
            payload: format!(
                "Bonjour, votre questionnaire de suivi est à remplir : {}/suivi/{}",
                state.config.public_url(),
                e.id
            ),
            establishment: Some(e.establishment),
        };
        if state.store.enqueue(&m, now).await? {
            new += 1;
        }
    }
    Ok(new)
}

/// A job on a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Bed availability snapshots.
    BedSnapshots,
    /// Escalation of overdue monitoring alerts.
    Escalation,
    /// Questionnaire and appointment reminders.
    Reminders,
    /// Forgetting finished rate-limit windows, old job runs, expired leases.
    Housekeeping,
    /// Retention: old HL7 messages, delivered outbox messages, expired
    /// sessions and tokens, the audit trail's cut when configured.
    Retention,
}

impl Timer {
    /// Every job.
    pub const ALL: [Timer; 5] = [
        Timer::BedSnapshots,
        Timer::Escalation,
        Timer::Reminders,
        Timer::Housekeeping,
        Timer::Retention,
    ];

    /// Its name in `job_runs` and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Timer::BedSnapshots => "bed-snapshots",
            Timer::Escalation => "alert-escalation",
            Timer::Reminders => "reminders",
            Timer::Housekeeping => "housekeeping",
            Timer::Retention => "retention",
        }
    }

    /// Its period, in milliseconds (retention's is configured).
    pub fn every_ms(self, config: &crate::Config) -> i64 {
        match self {
            Timer::Retention => config.retention.every_ms(),
            Timer::BedSnapshots => 300_000,
            Timer::Escalation => 60_000,
            Timer::Reminders => 900_000,
            Timer::Housekeeping => 3_600_000,
        }
    }

    async fn work(self, state: &AppState) -> Result<usize, store::StoreError> {
        match self {
            Timer::BedSnapshots => take(state).await,
            Timer::Escalation => escalate(state).await,
            Timer::Reminders => Ok(remind(state).await?
                + crate::services::schedule::remind_appointments(state.ctx()).await?),
            Timer::Housekeeping => {
                let n = state
                    .store
                    .prune_cluster_state(state.now_ms(), state.limiter.window_ms())
                    .await?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
            Timer::Retention => match crate::services::retention::prune(state.ctx()).await {
                Ok(r) => Ok(usize::try_from(r.total()).unwrap_or(usize::MAX)),
                Err(e) => {
                    tracing::error!(error = %e, "retention: run failed");
                    Ok(0)
                }
            },
        }
    }
}

/// Runs `job` for the clock's current period unless a node (this one or
/// another) already has: `Some(what it did)`, or `None` when it was not
/// this node's to run.
pub async fn run_due(state: &AppState, job: Timer) -> Result<Option<usize>, store::StoreError> {
    let now = state.now_ms();
    let period = now.div_euclid(job.every_ms(&state.config));
    if !state
        .store
        .claim_job_run(job.name(), period, state.live.node(), now)
        .await?
    {
        return Ok(None);
    }
    job.work(state).await.map(Some)
}

/// Looks twice a period whether `job` is due, until `shutdown` turns true.
async fn periodic(state: AppState, job: Timer, mut shutdown: watch::Receiver<bool>) {
    let half = u64::try_from(job.every_ms(&state.config) / 2).unwrap_or(30_000);
    let mut tick = tokio::time::interval(Duration::from_millis(half));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = run_due(&state, job).await {
            tracing::error!(error = %e, job = job.name(), "timer job failed");
        }
    }
}

/// Says, every [`store::cluster::PRESENCE_BEAT_MS`], that this node's
/// waiting-room connections are alive, until `shutdown` turns true.
async fn presence_beat(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let every = u64::try_from(store::cluster::PRESENCE_BEAT_MS).unwrap_or(20_000);
    let mut tick = tokio::time::interval(Duration::from_millis(every));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = state
            .store
            .presence_beat(state.live.node(), state.now_ms())
            .await
        {
            tracing::warn!(error = %e, "waiting room: presences not renewed");
        }
    }
}

/// How often SQLite's write-ahead log is copied into the database file. At
/// the HL7 feed's peak (some 4,500 messages a second, 56 KiB of log each)
/// the log grows by 25 MiB in that time: the writer's own threshold
/// (`store::WAL_AUTOCHECKPOINT_PAGES`, 64 MiB of 4 KiB pages) then finds
/// most of it copied already.
const WAL_CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Checkpoints SQLite's write-ahead log every [`WAL_CHECKPOINT_EVERY`]
/// (`Store::checkpoint_wal`) until `shutdown` turns true; returns at once
/// on PostgreSQL. A failure is logged when it starts and when it ends, not
/// ten times a second.
async fn wal_checkpoints(state: AppState, mut shutdown: watch::Receiver<bool>) {
    if state.store.engine() != store::Engine::Sqlite {
        return;
    }
    let mut tick = tokio::time::interval(WAL_CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        match state.store.checkpoint_wal().await {
            Ok(Some(c)) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("SQLite: write-ahead log checkpointed again");
                }
                state.metrics.wal_checkpointed(c);
            }
            Ok(None) => return,
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(error = %e, "SQLite: write-ahead log not checkpointed (the writer will, past its threshold)");
                }
            }
        }
    }
}

/// Runs the timer jobs until `shutdown` turns true.
pub async fn run(state: AppState, shutdown: watch::Receiver<bool>) {
    let jobs = Timer::ALL.map(|job| periodic(state.clone(), job, shutdown.clone()));
    tokio::join!(
        futures_util::future::join_all(jobs),
        presence_beat(state.clone(), shutdown.clone()),
        wal_checkpoints(state, shutdown)
    );
}
