//! The group commit both the audit trail (`audit.rs`) and the writes of
//! `bundle.rs` use: concurrent callers queue their job with where to answer;
//! whoever holds the writer's lock takes the waiting jobs (up to what `take`
//! allows) and writes them together in a task of its own, so that a caller
//! dropped meanwhile (its client gone) does not drop the others' jobs with
//! it; the others find their answer when they get the lock.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot::error::TryRecvError;
use tokio::sync::{OwnedMutexGuard, oneshot};

/// Jobs waiting for the next group, shared by every clone of the store.
#[derive(Debug)]
pub(crate) struct GroupQueue<J> {
    waiting: Mutex<Vec<J>>,
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl<J> Default for GroupQueue<J> {
    fn default() -> Self {
        GroupQueue {
            waiting: Mutex::new(Vec::new()),
            writer: Arc::default(),
        }
    }
}

impl<J: Send + 'static> GroupQueue<J> {
    fn waiting(&self) -> MutexGuard<'_, Vec<J>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job` (which answers on `answer`'s sender once written) and
    /// takes turns writing groups — the jobs `take` picks from those waiting,
    /// handed to `write` — until its answer is there. `None` when it never
    /// will be (the writing task failed).
    pub(crate) async fn submit<R, F>(
        &self,
        job: J,
        mut answer: oneshot::Receiver<R>,
        take: impl Fn(&mut Vec<J>) -> Vec<J>,
        write: impl Fn(Vec<J>) -> F,
    ) -> Option<R>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.waiting().push(job);
        loop {
            let writer = Arc::clone(&self.writer).lock_owned().await;
            match answer.try_recv() {
                Ok(done) => return Some(done),
                Err(TryRecvError::Closed) => return None,
                Err(TryRecvError::Empty) => {}
            }
            let written = write(take(&mut self.waiting()));
            let task = tokio::spawn(async move {
                written.await;
                drop(writer);
            });
            if task.await.is_err() {
                return None;
            }
            match answer.try_recv() {
                Ok(done) => return Some(done),
                Err(TryRecvError::Closed) => return None,
                // Not in that group (more were waiting): the next one.
                Err(TryRecvError::Empty) => {}
            }
        }
    }

    /// How many jobs wait.
    pub(crate) fn waiting_len(&self) -> usize {
        self.waiting().len()
    }

    /// Holds the writer's lock (as a group being written would).
    pub(crate) async fn hold(&self) -> OwnedMutexGuard<()> {
        Arc::clone(&self.writer).lock_owned().await
    }
}

/// The first `max` waiting jobs (`take` for a queue whose jobs weigh the same).
pub(crate) fn first<J>(waiting: &mut Vec<J>, max: usize) -> Vec<J> {
    let n = waiting.len().min(max);
    waiting.drain(..n).collect()
}
