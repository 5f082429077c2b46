//! Group commit for the HL7 intake: connections plan their message's effects in
//! parallel and hand them to this single writer, which applies whatever is
//! waiting (up to 128 messages) in one transaction, each in its own savepoint,
//! and answers each connection once the transaction has committed. One commit
//! (one fsync) then carries many messages, and SQLite's single writer is never
//! contended. A group waits a little for the senders the last one answered
//! (`gather`): each sends its next message on its ACK, and one commit for all
//! of them costs less than a commit each time half of them are back.

use store::StoreError;
use store::hl7::FeedJob;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

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

/// How long after a commit the next group may wait for the senders the
/// last one answered: a sender's next message after its ACK (a loopback or
/// LAN round trip and a parse) comes well within it; past it, the group goes
/// with what it has.
pub const GATHER: std::time::Duration = std::time::Duration::from_millis(2);

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
    // The next group waits for `expected` messages until `until`: the
    // senders the last group answered and the messages queued meanwhile.
    let mut expected = 0;
    let mut until = Instant::now();
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
        let batch = gather(&mut rx, first, expected, until).await;
        let size = batch.len();
        apply(&store, clock.as_ref(), batch).await;
        expected = size + rx.len();
        until = Instant::now() + GATHER;
    }
}

/// A group: `first`, what is queued, and, until it holds `expected` jobs,
/// what comes before `until`; `MAX_BATCH` jobs at most.
async fn gather<J>(
    rx: &mut mpsc::Receiver<J>,
    first: J,
    expected: usize,
    until: Instant,
) -> Vec<J> {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    batch.push(first);
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(j) => batch.push(j),
            Err(_) if batch.len() >= expected => break,
            Err(_) => match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(j)) => batch.push(j),
                // Past `until`, or no sender left.
                Ok(None) | Err(_) => break,
            },
        }
    }
    batch
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn queued(jobs: std::ops::Range<u32>) -> (mpsc::Sender<u32>, mpsc::Receiver<u32>) {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        for j in jobs {
            assert!(tx.try_send(j).is_ok());
        }
        (tx, rx)
    }

    #[tokio::test]
    async fn a_group_takes_what_is_queued_without_waiting_when_nothing_more_is_expected() {
        let (_tx, mut rx) = queued(1..4);
        let far = Instant::now() + Duration::from_secs(60);
        let started = Instant::now();
        assert_eq!(gather(&mut rx, 0, 0, far).await, vec![0, 1, 2, 3]);
        // Expected already there: no wait either.
        let (_tx, mut rx) = queued(1..4);
        assert_eq!(gather(&mut rx, 0, 3, far).await, vec![0, 1, 2, 3]);
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[tokio::test]
    async fn a_group_waits_for_the_senders_it_expects() {
        let (tx, mut rx) = queued(1..2);
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            for j in 2..4 {
                assert!(tx.send(j).await.is_ok());
            }
            tx
        });
        let started = Instant::now();
        let far = started + Duration::from_secs(60);
        assert_eq!(gather(&mut rx, 0, 4, far).await, vec![0, 1, 2, 3]);
        // It went once the fourth came, not at `until`.
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(late.await.is_ok());
    }

    #[tokio::test]
    async fn a_group_goes_with_what_it_has_at_its_deadline_or_when_no_sender_is_left() {
        let (tx, mut rx) = queued(1..2);
        let started = Instant::now();
        let until = started + Duration::from_millis(40);
        assert_eq!(gather(&mut rx, 0, 5, until).await, vec![0, 1]);
        assert!(started.elapsed() >= Duration::from_millis(40));
        // A deadline already past: no wait at all.
        assert!(tx.try_send(7).is_ok());
        assert_eq!(gather(&mut rx, 6, 5, started).await, vec![6, 7]);
        // Every sender gone: what it has, at once.
        drop(tx);
        let far = Instant::now() + Duration::from_secs(60);
        let started = Instant::now();
        assert_eq!(gather(&mut rx, 8, 5, far).await, vec![8]);
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[tokio::test]
    async fn a_group_holds_at_most_max_batch_jobs() {
        let count = u32::try_from(2 * MAX_BATCH).unwrap_or(u32::MAX);
        let (_tx, mut rx) = queued(1..count);
        let far = Instant::now() + Duration::from_secs(60);
        let group = gather(&mut rx, 0, 3 * MAX_BATCH, far).await;
        assert_eq!(group.len(), MAX_BATCH);
        assert_eq!(
            group.last(),
            Some(&(u32::try_from(MAX_BATCH).unwrap_or(0) - 1))
        );
        assert_eq!(rx.len(), 2 * MAX_BATCH - MAX_BATCH);
    }
}
