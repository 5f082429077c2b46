//! Jobs on a timer, owned by the application: bed availability snapshots every five
//! minutes (the regional charts) and, every minute, the escalation of monitoring
//! alerts left open past their SLA.

use std::future::Future;
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

/// Escalates the alerts left open past their SLA; returns how many.
pub async fn escalate(state: &AppState) -> Result<usize, store::StoreError> {
    let ids = state.store.escalate_overdue(state.now_ms()).await?;
    if !ids.is_empty() {
        tracing::info!(count = ids.len(), "overdue monitoring alerts escalated");
    }
    for id in &ids {
        let a = state.store.alert(*id).await?;
        let _ = state
            .events
            .send(crate::state::LiveEvent::Alerts(a.establishment));
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

/// Runs `job` at start and then every `every` until `shutdown` turns true.
async fn periodic<F, Fut>(
    state: AppState,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
    what: &str,
    job: F,
) where
    F: Fn(AppState) -> Fut,
    Fut: Future<Output = Result<usize, store::StoreError>>,
{
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = job(state.clone()).await {
            tracing::error!(error = %e, job = what, "timer job failed");
        }
    }
}

/// Runs the timer jobs until `shutdown` turns true.
pub async fn run(state: AppState, shutdown: watch::Receiver<bool>) {
    let snapshots = periodic(
        state.clone(),
        Duration::from_secs(300),
        shutdown.clone(),
        "bed snapshots",
        |s| async move { take(&s).await },
    );
    let escalation = periodic(
        state.clone(),
        Duration::from_secs(60),
        shutdown.clone(),
        "alert escalation",
        |s| async move { escalate(&s).await },
    );
    let reminders = periodic(
        state,
        Duration::from_secs(900),
        shutdown,
        "questionnaire reminders",
        |s| async move {
            Ok(remind(&s).await? + crate::services::schedule::remind_appointments(s.ctx()).await?)
        },
    );
    tokio::join!(snapshots, escalation, reminders);
}
