//! What the actors write to the store: one snapshot type per actor kind,
//! encoded with [`dispatch_storage::codec`].

use dispatch_engine::payment::EarningLine;
use dispatch_engine::pricing::PriceQuote;
use dispatch_engine::{ContractorId, ContractorProfile, ContractorStatus, GeoPoint, Job, JobMachine, RatingTally, Timestamp};
use dispatch_payments::JobPayment;
use dispatch_storage::codec::{Versioned, decode_payload};
use dispatch_storage::{SCHEMA_VERSION, StorageError};
use serde::{Deserialize, Serialize};

use super::{v1, v2};

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
    /// What each job charged earned them, by job (since schema version 3),
    /// for their earnings statement; the last [`EARNINGS_KEPT_DAYS`] days.
    pub earnings: Vec<EarningLine>,
}

/// How many days of earnings a contractor's snapshot keeps.
pub const EARNINGS_KEPT_DAYS: i64 = 92;

impl Versioned for ContractorSnapshot {
    const LAYOUT_SINCE: u16 = 3;

    fn upcast(version: u16, payload: &[u8]) -> Result<Self, StorageError> {
        match version {
            1 => Ok(decode_payload::<v1::ContractorSnapshotV1>(payload)?.into()),
            2 => Ok(decode_payload::<v2::ContractorSnapshotV2>(payload)?.into()),
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
    /// The job's money, from its hold to its payout (since schema version
    /// 3; `None` for jobs posted before, or with payments off).
    pub payment: Option<JobPayment>,
    /// Who the job's charge is paid out to: the contractor who completed
    /// it, or who was on the way when a cancellation fee was charged (since schema version 3).
    pub payee: Option<ContractorId>,
}

impl JobSnapshot {
    /// Why the card refused the job's hold, if it did (the post was refused
    /// and the job cancelled with this reason).
    #[must_use]
    pub fn declined(&self) -> Option<String> {
        let declined = self.payment.as_ref()?.machine().state() == dispatch_engine::payment::PaymentState::Declined;
        declined.then(|| match self.machine.state() {
            dispatch_engine::JobState::Cancelled { reason, .. } => reason.clone(),
            _ => "the card was declined".into(),
        })
    }

    /// Whether nothing more happens to the job: it is finished, and so is its money.
    #[must_use]
    pub fn is_final(&self) -> bool {
        self.machine.state().is_terminal() && self.payment.as_ref().is_none_or(|p| p.machine().state().is_closed())
    }
}

impl Versioned for JobSnapshot {
    const LAYOUT_SINCE: u16 = 3;

    fn upcast(version: u16, payload: &[u8]) -> Result<Self, StorageError> {
        match version {
            1 => Ok(decode_payload::<v1::JobSnapshotV1>(payload)?.into()),
            2 => Ok(decode_payload::<v2::JobSnapshotV2>(payload)?.into()),
            _ => Err(StorageError::UnsupportedVersion { found: version, supported: SCHEMA_VERSION }),
        }
    }
}
