//! [`JobIndexRecord`]: one row of the city's job index (`Kind::JobIndex`,
//! by job id, so by posting order), kept from the outbox beside the figures
//! (`job_index.rs`): what operators list and filter finished jobs by,
//! without reading job snapshots.

use dispatch_engine::{ContractorId, CustomerId, JobId, JobStateKind, Timestamp, Trade};
use dispatch_storage::codec::Versioned;
use serde::{Deserialize, Serialize};

/// A job as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobIndexRecord {
    /// The job.
    pub job: JobId,
    /// When it was posted.
    pub posted_at: Timestamp,
    /// Its trade.
    pub trade: Trade,
    /// Who posted it.
    pub customer: CustomerId,
    /// Its state when the index last saw it change.
    pub state: JobStateKind,
    /// The contractor offered or assigned, if any.
    pub contractor: Option<ContractorId>,
}

/// Job index rows first appeared in schema version 3's stores.
impl Versioned for JobIndexRecord {
    const LAYOUT_SINCE: u16 = 3;
}

/// A contractor as the city's directory lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractorIndexRecord {
    /// The contractor.
    pub contractor: ContractorId,
    /// Their name.
    pub name: String,
    /// Their trades.
    pub trades: dispatch_engine::TradeSet,
    /// What they were doing when last stored.
    pub status: dispatch_engine::StatusKind,
    /// Their average rating, 0–5.
    pub rating: f32,
    /// How many reviews it rests on.
    pub reviews: u32,
}

/// Directory rows first appeared in schema version 3's stores.
impl Versioned for ContractorIndexRecord {
    const LAYOUT_SINCE: u16 = 3;
}
