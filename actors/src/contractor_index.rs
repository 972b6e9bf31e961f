//! The city's contractor directory: a row per registered contractor
//! (`Kind::ContractorIndex`: name, trades, status, rating), written with
//! each snapshot the contractor's actor stores for a change (registration,
//! status, rating; not positions), so operators list every contractor —
//! offline ones the live map has let go included — a page at a time,
//! without reading snapshots. Suspension and verification are filtered from
//! the city's in-memory records (`audit.rs`). Like the job index, each read
//! examines at most [`crate::job_index::SCAN_BUDGET`] rows.

use dispatch_storage::{Kind, codec};

use crate::error::Result;
use crate::handle::Dispatch;
use crate::record::{ContractorIndexRecord, ContractorSnapshot};

/// The directory row of a contractor's snapshot.
pub(crate) fn row(snap: &ContractorSnapshot) -> Result<(Kind, u64, Vec<u8>)> {
    let p = &snap.profile;
    let record = ContractorIndexRecord {
        contractor: p.id,
        name: p.name.clone(),
        trades: p.trade_set(),
        status: snap.status.kind(),
        rating: p.rating.average(),
        reviews: p.rating.reviews(),
    };
    Ok((Kind::ContractorIndex, p.id.0, codec::encode(&record)?))
}

impl Dispatch {
    /// Up to `limit` contractors of the directory after `after` (by id) that
    /// `keep` takes, examining at most [`SCAN_BUDGET`](crate::job_index::SCAN_BUDGET) rows; with the cursor
    /// to go on from, `None` once the directory is read to its end.
    pub async fn contractor_directory(
        &self,
        after: Option<u64>,
        limit: usize,
        keep: impl Fn(&ContractorIndexRecord) -> bool,
    ) -> Result<(Vec<ContractorIndexRecord>, Option<u64>)> {
        crate::job_index::scan_filtered(&*self.shared.store, Kind::ContractorIndex, after, limit, keep).await
    }
}
