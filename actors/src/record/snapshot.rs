//! What the actors write to the store: one snapshot type per actor kind,
//! encoded with [`dispatch_storage::codec`].

use dispatch_engine::pricing::PriceQuote;
use dispatch_engine::{ContractorProfile, ContractorStatus, GeoPoint, Job, JobMachine, RatingTally, Timestamp};
use dispatch_storage::codec::{Versioned, decode_payload};
use dispatch_storage::{SCHEMA_VERSION, StorageError};
use serde::{Deserialize, Serialize};

use super::v1;

/// A contractor: profile and live state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractorSnapshot {
    /// Who they are.
    pub profile: ContractorProfile,
    /// What they are doing.
    pub status: ContractorStatus,
    /// Last trusted position.
    pub position: Option<GeoPoint>,
    /// Time of the last trusted fix.
    pub last_fix: Option<Timestamp>,
    /// The site of the job they hold, if any.
    pub job_site: Option<GeoPoint>,
    /// Whether "arriving" was already reported for the current job.
    pub arriving_sent: bool,
    /// Scheduled jobs accepted for later, with their windows.
    pub agenda: Vec<dispatch_engine::routing::Stop>,
    /// Every review counted, by job (since schema version 2); the profile's
    /// rating is its average.
    pub ratings: RatingTally,
}

impl Versioned for ContractorSnapshot {
    const LAYOUT_SINCE: u16 = 2;

    fn upcast(version: u16, payload: &[u8]) -> Result<Self, StorageError> {
        match version {
            1 => Ok(decode_payload::<v1::ContractorSnapshotV1>(payload)?.into()),
            _ => Err(StorageError::UnsupportedVersion { found: version, supported: SCHEMA_VERSION }),
        }
    }
}

/// A job: its details, state machine and search progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSnapshot {
    /// The job as posted.
    pub job: Job,
    /// Its state and exclusions.
    pub machine: JobMachine,
    /// The price quoted at posting.
    pub quote: PriceQuote,
    /// Current search radius, metres.
    pub radius_m: f64,
    /// Offers made in the current round.
    pub offers_this_round: u32,
    /// Why the job expired, once it has.
    pub expired_reason: Option<String>,
    /// When it was accepted, for the match-latency metric.
    pub accepted_at: Option<Timestamp>,
    /// The customer's review of the completed job, stars (since schema
    /// version 2); a job is rated once.
    pub rated_stars: Option<f64>,
}

impl Versioned for JobSnapshot {
    const LAYOUT_SINCE: u16 = 2;

    fn upcast(version: u16, payload: &[u8]) -> Result<Self, StorageError> {
        match version {
            1 => Ok(decode_payload::<v1::JobSnapshotV1>(payload)?.into()),
            _ => Err(StorageError::UnsupportedVersion { found: version, supported: SCHEMA_VERSION }),
        }
    }
}
