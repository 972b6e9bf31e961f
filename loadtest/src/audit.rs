//! After a run: was everything the server acknowledged written to its store?
//!
//! The `match` bots note, for every job, how many log entries the server's
//! acknowledgements imply at least: posting acknowledged → 1 (posted);
//! accept acknowledged → 3 (posted, offered, accepted); then one more per
//! acknowledged status (en route, on site, completed). Once the server has
//! drained any buffered writes (`/readyz` says `ok`) it is killed, and the
//! store is read back with no server in between: every such job must have
//! its snapshot, and a log numbered 1, 2, 3, … without a gap and at least
//! that long. A write acknowledged and then lost shortens a log, opens a
//! gap, or leaves a job without a snapshot.

use std::collections::BTreeMap;

use dispatch_storage::{Kind, SnapshotStore};
use futures_util::StreamExt;
use serde::Serialize;

/// Reads in flight against the store while auditing.
const CONCURRENCY: usize = 32;

/// What the audit found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Audit {
    /// Jobs with an acknowledged write.
    pub jobs: usize,
    /// Log entries the acknowledgements imply, summed.
    pub entries_acknowledged: u64,
    /// Log entries found for those jobs.
    pub entries_found: u64,
    /// How long the server took to drain buffered writes after the run, ms.
    pub drained_in_ms: u64,
    /// What is wrong, one line per job (empty: nothing lost).
    pub problems: Vec<String>,
}

impl Audit {
    /// Problems found (each is an error of the run).
    #[must_use]
    pub fn failures(&self) -> u64 {
        self.problems.len() as u64
    }
}

/// Checks `store` against `acknowledged` (job → log entries acknowledged at least).
pub async fn check(store: &dyn SnapshotStore, acknowledged: &BTreeMap<u64, u64>) -> Audit {
    let results: Vec<(u64, Result<u64, String>)> = futures_util::stream::iter(acknowledged.iter())
        .map(|(&job, &expected)| async move { (expected, check_job(store, job, expected).await) })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut audit = Audit { jobs: acknowledged.len(), ..Audit::default() };
    for (expected, result) in results {
        audit.entries_acknowledged += expected;
        match result {
            Ok(found) => audit.entries_found += found,
            Err(problem) => audit.problems.push(problem),
        }
    }
    audit.problems.sort();
    audit
}

/// The length of `job`'s log, or what is wrong with it.
async fn check_job(store: &dyn SnapshotStore, job: u64, expected: u64) -> Result<u64, String> {
    match store.get(Kind::Job, job).await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(format!("job {job}: no snapshot")),
        Err(e) => return Err(format!("job {job}: snapshot unreadable: {e}")),
    }
    let log = store.read_events(job, 0).await.map_err(|e| format!("job {job}: log unreadable: {e}"))?;
    if let Some((at, entry)) = log.iter().enumerate().find(|(i, e)| e.seq != *i as u64 + 1) {
        return Err(format!("job {job}: log entry {} is numbered {}", at + 1, entry.seq));
    }
    let found = log.len() as u64;
    if found < expected {
        return Err(format!("job {job}: {found} log entries, {expected} acknowledged"));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use dispatch_storage::{LogEntry, MemoryStore};

    use super::*;

    #[tokio::test]
    async fn lost_gapped_and_short_logs_are_each_reported() {
        let store = MemoryStore::new();
        for job in 1..=4u64 {
            store.put(Kind::Job, job, vec![1]).await.unwrap();
        }
        for seq in 1..=3 {
            store.append_event(1, LogEntry::new(seq, 0, vec![])).await.unwrap();
            store.append_event(2, LogEntry::new(seq, 0, vec![])).await.unwrap();
        }
        // Job 3: entry 2 lost. Job 4: only posted. Job 5: no snapshot at all.
        store.append_event(3, LogEntry::new(1, 0, vec![])).await.unwrap();
        store.append_event(3, LogEntry::new(3, 0, vec![])).await.unwrap();
        store.append_event(4, LogEntry::new(1, 0, vec![])).await.unwrap();
        let acknowledged = BTreeMap::from([(1, 3), (2, 1), (3, 3), (4, 3), (5, 1)]);
        let audit = check(&store, &acknowledged).await;
        assert_eq!(audit.jobs, 5);
        assert_eq!(audit.entries_acknowledged, 11);
        assert_eq!(audit.entries_found, 6, "jobs 1 and 2 pass");
        assert_eq!(audit.problems, vec!["job 3: log entry 2 is numbered 3", "job 4: 1 log entries, 3 acknowledged", "job 5: no snapshot"]);
        assert_eq!(audit.failures(), 3);
    }
}
