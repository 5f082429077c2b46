//! Bed availability history: every five minutes, a snapshot per territory and
//! category, from which the regional view draws its charts.

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

/// Runs until `shutdown` turns true.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = take(&state).await {
            tracing::error!(error = %e, "bed snapshot failed");
        }
    }
}
