//! Finished jobs, remembered for a while by the router and by each session
//! (late chat, ratings), then forgotten so that neither grows with every job
//! it ever saw (found by the soak).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use dispatch_engine::JobId;

/// How long the parties of a finished job are remembered; after it, a party
/// reaches the job's events again by `watch` or `resume`. Every finished job
/// is held this long, so it bounds memory: at 500 jobs/s, two minutes are
/// 60,000 jobs.
pub(crate) const FINISHED_JOB_MEMORY: Duration = Duration::from_secs(2 * 60);

/// Jobs that finished, oldest first, with when.
#[derive(Debug, Default)]
pub(crate) struct FinishedJobs(VecDeque<(Instant, JobId)>);

impl FinishedJobs {
    /// `job` finished now.
    pub(crate) fn push(&mut self, job: JobId) {
        self.0.push_back((Instant::now(), job));
    }

    /// Hands each job that finished longer than [`FINISHED_JOB_MEMORY`] ago
    /// to `forget`, and drops it.
    pub(crate) fn forget_expired(&mut self, mut forget: impl FnMut(JobId)) {
        while let Some(&(at, job)) = self.0.front() {
            if at.elapsed() < FINISHED_JOB_MEMORY {
                break;
            }
            self.0.pop_front();
            forget(job);
        }
    }
}
