//! The city's job index: a small row per job (`record/index.rs`) kept from
//! the outbox by the same fold as the figures (`kpis.rs`), so operators list
//! and filter every job the store holds — finished ones included — a page at
//! a time, without reading job snapshots or logs.
//!
//! A row is written from the job's snapshot each time one of its events is
//! folded, so it holds the job's latest state; rows follow job ids, which are
//! handed out in posting order, so a page in id order is a page in time.
//! Each read examines at most [`SCAN_BUDGET`] rows: a selective filter
//! returns a short page with a cursor to go on from, never a long scan.

use dispatch_storage::codec::Versioned;
use dispatch_storage::{Kind, SnapshotStore, codec};
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::handle::Dispatch;
use crate::record::{JobIndexRecord, JobSnapshot};

/// The most index rows one read examines.
pub const SCAN_BUDGET: usize = 5_000;
/// Rows read from the store at a time.
const PAGE: usize = 500;

/// The index row of a job's snapshot.
pub(crate) fn row(snap: &JobSnapshot) -> Result<(Kind, u64, Vec<u8>)> {
    let state = snap.machine.state();
    let record = JobIndexRecord {
        job: snap.job.id,
        posted_at: snap.job.posted_at,
        trade: snap.job.trade,
        customer: snap.job.customer,
        state: state.kind(),
        contractor: state.contractor(),
    };
    Ok((Kind::JobIndex, snap.job.id.0, codec::encode(&record)?))
}

/// Up to `limit` rows of `kind` after `after` that `keep` takes, examining at
/// most [`SCAN_BUDGET`]; with the cursor to go on from, `None` at the end.
pub(crate) async fn scan_filtered<T: Versioned + DeserializeOwned>(
    store: &dyn SnapshotStore,
    kind: Kind,
    after: Option<u64>,
    limit: usize,
    keep: impl Fn(&T) -> bool,
) -> Result<(Vec<T>, Option<u64>)> {
    let (mut found, mut cursor, mut examined) = (Vec::new(), after, 0);
    loop {
        let page = store.scan(kind, cursor, PAGE).await?;
        let ended = page.len() < PAGE;
        for (id, blob) in page {
            cursor = Some(id);
            examined += 1;
            let row: T = codec::decode(&blob)?;
            if keep(&row) {
                found.push(row);
            }
            if found.len() >= limit || examined >= SCAN_BUDGET {
                return Ok((found, cursor));
            }
        }
        if ended {
            return Ok((found, None));
        }
    }
}

impl Dispatch {
    /// Up to `limit` indexed jobs after `after` (by id) that `keep` takes,
    /// examining at most [`SCAN_BUDGET`] rows; with the cursor to go on from,
    /// `None` once the index is read to its end.
    pub async fn job_history(
        &self,
        after: Option<u64>,
        limit: usize,
        keep: impl Fn(&JobIndexRecord) -> bool,
    ) -> Result<(Vec<JobIndexRecord>, Option<u64>)> {
        scan_filtered(&*self.shared.store, Kind::JobIndex, after, limit, keep).await
    }
}
