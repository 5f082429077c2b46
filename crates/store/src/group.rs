//! The group commit both the audit trail (`audit.rs`) and the writes of
//! `bundle.rs` use: concurrent callers queue their job with where to answer;
//! whoever holds the writer's lock takes the waiting jobs (up to what `take`
//! allows) and writes them together in a task of its own, so that a caller
//! dropped meanwhile (its client gone) does not drop the others' jobs with
//! it; the others find their answer when they get the lock. A group may wait
//! a little for the callers the last one answered (`GATHER`, for writes):
//! each of them is a client that sends its next request on its answer, and
//! one commit for all of them costs less than one each time half of them are
//! back. (Not for reads' audit entries: a search's work is the CPU's, and its
//! caller does not come back sooner for a group waiting for it.)

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot::error::TryRecvError;
use tokio::sync::{Notify, OwnedMutexGuard, oneshot};
use tokio::time::Instant;

/// How long after a group's commit the next group may wait for the callers
/// that group answered (a client's next request on its answer comes well
/// within it; past it, the group goes with what it has).
pub(crate) const GATHER: Duration = Duration::from_millis(2);

/// How a group waits for the callers the last one answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gather {
    /// Until how long after the last commit (zero: it never waits).
    pub(crate) wait: Duration,
    /// The most jobs a group takes (what `take` allows): with as many
    /// waiting, a group never waits for more.
    pub(crate) most: usize,
}

impl Gather {
    /// Never waits (the reads' audit entries).
    pub(crate) const NEVER: Gather = Gather {
        wait: Duration::ZERO,
        most: 0,
    };
}

/// Jobs waiting for the next group, shared by every clone of the store.
#[derive(Debug)]
pub(crate) struct GroupQueue<J> {
    waiting: Arc<Mutex<Vec<J>>>,
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Told of each job queued.
    queued: Notify,
    /// What the next group waits for: how many jobs, until when.
    expected: Arc<Mutex<(usize, Instant)>>,
}

impl<J> Default for GroupQueue<J> {
    fn default() -> Self {
        GroupQueue {
            waiting: Arc::default(),
            writer: Arc::default(),
            queued: Notify::new(),
            expected: Arc::new(Mutex::new((0, Instant::now()))),
        }
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<J: Send + 'static> GroupQueue<J> {
    fn waiting(&self) -> MutexGuard<'_, Vec<J>> {
        locked(&self.waiting)
    }

    /// Waits (the writer's lock held) until as many jobs as the last group
    /// expects are queued, or its time is up.
    async fn gather(&self) {
        let (expected, until) = *locked(&self.expected);
        loop {
            let queued = self.queued.notified();
            tokio::pin!(queued);
            queued.as_mut().enable();
            if self.waiting().len() >= expected
                || tokio::time::timeout_at(until, queued).await.is_err()
            {
                return;
            }
        }
    }

    /// Queues `job` (which answers on `answer`'s sender once written) and
    /// takes turns writing groups — the jobs `take` picks from those waiting,
    /// handed to `write` — until its answer is there; a group waits up to
    /// `gather.wait` after the last one's commit for as many callers as it
    /// answered and had waiting (`gather.most` at most). `None` when the
    /// answer never will be there (the writing task failed).
    pub(crate) async fn submit<R, F>(
        &self,
        job: J,
        mut answer: oneshot::Receiver<R>,
        gather: Gather,
        take: impl Fn(&mut Vec<J>) -> Vec<J>,
        write: impl Fn(Vec<J>) -> F,
    ) -> Option<R>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let queued = {
            let mut waiting = self.waiting();
            waiting.push(job);
            waiting.len()
        };
        // The group being gathered waits for a count of jobs: it is woken
        // once that count is there, not at each job (on a VM each wake of a
        // task parked on another core is a sleeping vCPU's wake-up).
        if queued >= locked(&self.expected).0 {
            self.queued.notify_waiters();
        }
        loop {
            // The answer, once written, is taken at once: a caller waiting
            // for the writer's lock alone would only see it when the lock
            // came to it, after every caller queued before it had taken and
            // let go of the lock in turn.
            let writer = tokio::select! {
                biased;
                done = &mut answer => return done.ok(),
                writer = Arc::clone(&self.writer).lock_owned() => writer,
            };
            match answer.try_recv() {
                Ok(done) => return Some(done),
                Err(TryRecvError::Closed) => return None,
                Err(TryRecvError::Empty) => {}
            }
            if !gather.wait.is_zero() {
                self.gather().await;
            }
            let group = take(&mut self.waiting());
            let size = group.len();
            let written = write(group);
            let (waiting, expected) = (Arc::clone(&self.waiting), Arc::clone(&self.expected));
            let task = tokio::spawn(async move {
                written.await;
                // The callers answered come back, and those queued meanwhile.
                let next = (size + locked(&waiting).len()).min(gather.most);
                *locked(&expected) = (next, Instant::now() + gather.wait);
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

#[cfg(test)]
mod tests {
    use super::*;

    type Job = (u32, oneshot::Sender<()>);
    type Groups = Arc<Mutex<Vec<Vec<u32>>>>;

    /// Submits job `n` to `queue`; the groups written are recorded in `groups`.
    fn submit(
        queue: &Arc<GroupQueue<Job>>,
        groups: &Groups,
        n: u32,
        gather: Gather,
    ) -> tokio::task::JoinHandle<Option<()>> {
        submit_holding(queue, groups, n, gather, None)
    }

    /// As [`submit`]; with `finish`, a group it writes, once its jobs are
    /// answered, holds on (its commit's aftermath) until given a permit.
    fn submit_holding(
        queue: &Arc<GroupQueue<Job>>,
        groups: &Groups,
        n: u32,
        gather: Gather,
        finish: Option<Arc<tokio::sync::Semaphore>>,
    ) -> tokio::task::JoinHandle<Option<()>> {
        let (queue, groups) = (Arc::clone(queue), Arc::clone(groups));
        tokio::spawn(async move {
            let (reply, answer) = oneshot::channel();
            queue
                .submit(
                    (n, reply),
                    answer,
                    gather,
                    move |w| first(w, if gather.most == 0 { 64 } else { gather.most }),
                    |group: Vec<Job>| {
                        let (groups, finish) = (Arc::clone(&groups), finish.clone());
                        async move {
                            locked(&groups).push(group.iter().map(|j| j.0).collect());
                            for (_, reply) in group {
                                let _ = reply.send(());
                            }
                            if let Some(finish) = finish {
                                let _ = finish.acquire().await;
                            }
                        }
                    },
                )
                .await
        })
    }

    /// Jobs `ns` submitted while the writer's lock is held, which is let go
    /// once they all wait.
    async fn behind_the_writer(
        queue: &Arc<GroupQueue<Job>>,
        groups: &Groups,
        ns: std::ops::Range<u32>,
        gather: Gather,
    ) -> Vec<tokio::task::JoinHandle<Option<()>>> {
        let held = queue.hold().await;
        let jobs: Vec<_> = ns.map(|n| submit(queue, groups, n, gather)).collect();
        while queue.waiting_len() < jobs.len() {
            tokio::task::yield_now().await;
        }
        drop(held);
        jobs
    }

    /// A queue whose first group, jobs 1, 2 and 3 queued behind the writer,
    /// has been written as one.
    async fn after_a_group_of_three(gather: Gather) -> (Arc<GroupQueue<Job>>, Groups) {
        let (queue, groups): (Arc<GroupQueue<Job>>, Groups) = Default::default();
        for j in behind_the_writer(&queue, &groups, 1..4, gather).await {
            assert_eq!(j.await.ok().flatten(), Some(()));
        }
        assert_eq!(*locked(&groups), vec![vec![1, 2, 3]]);
        (queue, groups)
    }

    fn gathering(wait: Duration, most: usize) -> Gather {
        Gather { wait, most }
    }

    #[tokio::test]
    async fn a_write_group_waits_for_as_many_callers_as_the_last_one_answered() {
        let long = gathering(Duration::from_secs(60), 64);
        let (queue, groups) = after_a_group_of_three(long).await;
        // One caller back: its group waits for the two others.
        let started = Instant::now();
        let back = submit(&queue, &groups, 4, long);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(
            locked(&groups).len() == 1,
            "no group written before the others came"
        );
        let others = [
            submit(&queue, &groups, 5, long),
            submit(&queue, &groups, 6, long),
        ];
        assert_eq!(back.await.ok().flatten(), Some(()));
        for o in others {
            assert_eq!(o.await.ok().flatten(), Some(()));
        }
        let written = locked(&groups).clone();
        assert_eq!(written.len(), 2);
        let mut second = written.get(1).cloned().unwrap_or_default();
        second.sort_unstable();
        assert_eq!(second, vec![4, 5, 6]);
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[tokio::test]
    async fn a_write_group_goes_alone_when_its_time_is_up_and_reads_never_wait() {
        let short = gathering(Duration::from_millis(40), 64);
        let (queue, groups) = after_a_group_of_three(short).await;
        let (expected, until) = *locked(&queue.expected);
        assert_eq!(expected, 3);
        assert_eq!(
            submit(&queue, &groups, 4, short).await.ok().flatten(),
            Some(())
        );
        assert_eq!(locked(&groups).last(), Some(&vec![4]));
        // It waited for the others until 40 ms after the last commit.
        assert!(Instant::now() >= until);

        // Without a gathering time (the reads' audit entries) nothing waits,
        // whatever the last group was.
        let (queue, groups) = after_a_group_of_three(Gather::NEVER).await;
        *locked(&queue.expected) = (3, Instant::now() + Duration::from_secs(60));
        let started = Instant::now();
        assert_eq!(
            submit(&queue, &groups, 4, Gather::NEVER)
                .await
                .ok()
                .flatten(),
            Some(())
        );
        assert_eq!(locked(&groups).last(), Some(&vec![4]));
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[tokio::test]
    async fn a_write_group_does_not_wait_for_more_than_it_may_take() {
        let three = gathering(Duration::from_secs(60), 3);
        let (queue, groups) = after_a_group_of_three(three).await;
        // Seven queued behind the writer: a group of three, and the next
        // three at once (three waiting are as many as it may take), though
        // the last group answered three and four more were waiting.
        let started = Instant::now();
        let jobs = behind_the_writer(&queue, &groups, 4..11, three).await;
        for j in jobs.into_iter().take(6) {
            assert_eq!(j.await.ok().flatten(), Some(()));
        }
        assert!(started.elapsed() < Duration::from_secs(30));
        let written = locked(&groups).clone();
        assert_eq!(written.get(1..3), Some(&[vec![4, 5, 6], vec![7, 8, 9]][..]));
        assert_eq!(
            locked(&queue.expected).0,
            3,
            "never more than a group takes"
        );
    }

    #[tokio::test]
    async fn callers_answered_return_while_the_group_still_holds_the_writer() {
        let long = gathering(Duration::from_secs(60), 64);
        let (queue, groups): (Arc<GroupQueue<Job>>, Groups) = Default::default();
        // The group answers its jobs, then holds on until told to finish.
        let finish = Arc::new(tokio::sync::Semaphore::new(0));
        let held = queue.hold().await;
        let jobs: Vec<_> = (1..4)
            .map(|n| submit_holding(&queue, &groups, n, long, Some(Arc::clone(&finish))))
            .collect();
        while queue.waiting_len() < 3 {
            tokio::task::yield_now().await;
        }
        drop(held);
        // Two of the three are answered while the group is not finished: only
        // the caller that writes it waits for its end.
        let mut pending = jobs;
        let mut returned = 0;
        let started = Instant::now();
        while returned < 2 && started.elapsed() < Duration::from_secs(10) {
            let mut still = Vec::new();
            for j in pending {
                if j.is_finished() {
                    assert_eq!(j.await.ok().flatten(), Some(()));
                    returned += 1;
                } else {
                    still.push(j);
                }
            }
            pending = still;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(returned, 2, "answered callers waited for the writer's lock");
        assert_eq!(pending.len(), 1);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !pending[0].is_finished(),
            "the writing caller waits for its group"
        );
        finish.add_permits(1);
        for j in pending {
            assert_eq!(j.await.ok().flatten(), Some(()));
        }
    }
}
