//! Group commit for the HL7 intake: connections plan their message's effects in
//! parallel and hand them to this single writer, which applies whatever is
//! waiting (up to 128 messages) in one transaction, each in its own savepoint,
//! and answers each connection once the transaction has committed. One commit
//! (one fsync) then carries many messages, and SQLite's single writer is never
//! contended.

use store::StoreError;
use store::hl7::FeedJob;
use tokio::sync::{mpsc, oneshot, watch};

use domain::PatientId;

use std::sync::Arc;

use domain::Clock;
use store::Store;

/// The answer to one job: `None` when the transaction failed (nothing committed).
pub type Reply = Option<Result<PatientId, StoreError>>;

/// A job and where to answer.
pub type Job = (FeedJob, oneshot::Sender<Reply>);

/// Most messages per transaction.
pub const MAX_BATCH: usize = 128;

/// Creates the queue (sender side goes into `AppState`).
pub fn queue() -> (mpsc::Sender<Job>, mpsc::Receiver<Job>) {
    mpsc::channel(4 * MAX_BATCH)
}

/// Applies queued jobs until `stop` turns true, then what is left, then returns.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn run(
    store: Store,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::Receiver<Job>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            j = rx.recv() => match j { Some(j) => Some(j), None => return },
            _ = stop.changed() => None,
        };
        let Some(first) = first else {
            // Stop: apply what is already queued, then return.
            let mut rest = Vec::new();
            while let Ok(j) = rx.try_recv() {
                rest.push(j);
            }
            if !rest.is_empty() {
                apply(&store, clock.as_ref(), rest).await;
            }
            return;
        };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        apply(&store, clock.as_ref(), batch).await;
    }
}

async fn apply(store: &Store, clock: &dyn Clock, batch: Vec<Job>) {
    let (jobs, replies): (Vec<FeedJob>, Vec<oneshot::Sender<Reply>>) = batch.into_iter().unzip();
    match store.apply_feeds(&jobs, clock.now().as_millisecond()).await {
        Ok(results) => {
            for (r, reply) in results.into_iter().zip(replies) {
                let _ = reply.send(Some(r));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, messages = jobs.len(), "hl7 intake transaction failed: no ACK sent");
            for reply in replies {
                let _ = reply.send(None);
            }
        }
    }
}

/// Applies one job through the writer when the application runs one, else directly.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn submit(
    queue: Option<&mpsc::Sender<Job>>,
    store: &Store,
    now_ms: i64,
    job: FeedJob,
) -> Reply {
    if let Some(q) = queue {
        let (tx, rx) = oneshot::channel();
        if q.send((job, tx)).await.is_err() {
            return None;
        }
        return rx.await.ok().flatten();
    }
    match store.apply_feeds(std::slice::from_ref(&job), now_ms).await {
        Ok(mut v) => v.pop(),
        Err(e) => {
            tracing::error!(error = %e, "hl7 intake transaction failed: no ACK sent");
            None
        }
    }
}
