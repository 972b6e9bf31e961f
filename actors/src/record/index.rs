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
