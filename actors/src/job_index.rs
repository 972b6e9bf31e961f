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

use std::collections::BTreeSet;

use dispatch_engine::JobId;
use dispatch_storage::{Kind, codec};

use crate::error::Result;
use crate::handle::Dispatch;
use crate::record::{JobIndexRecord, OutboxRecord};

/// The most index rows one read examines.
pub const SCAN_BUDGET: usize = 5_000;
/// Rows read from the store at a time.
const PAGE: usize = 500;

/// The index rows of the jobs a page of the outbox touched, from their snapshots now.
pub(crate) async fn rows(city: &Dispatch, page: &[OutboxRecord]) -> Result<Vec<(Kind, u64, Vec<u8>)>> {
    let jobs: BTreeSet<JobId> = page.iter().map(|r| r.job).collect();
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        // A job gone from the store (its retention ran out) keeps the row it had.
        let Ok(snap) = city.job(job).await else { continue };
        let state = snap.machine.state();
        let row = JobIndexRecord {
            job,
            posted_at: snap.job.posted_at,
            trade: snap.job.trade,
            customer: snap.job.customer,
            state: state.kind(),
            contractor: state.contractor(),
        };
        out.push((Kind::JobIndex, job.0, codec::encode(&row)?));
    }
    Ok(out)
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
        let (mut found, mut cursor, mut examined) = (Vec::new(), after, 0);
        loop {
            let page = self.shared.store.scan(Kind::JobIndex, cursor, PAGE).await?;
            let ended = page.len() < PAGE;
            for (id, blob) in page {
                cursor = Some(id);
                examined += 1;
                let row: JobIndexRecord = codec::decode(&blob)?;
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
}
