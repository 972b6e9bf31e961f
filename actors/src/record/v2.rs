//! Schema version 2's layouts that version 3 changed, frozen: read only to
//! upcast blobs written by builds of that version. Never change a field here.

use dispatch_engine::pricing::PriceQuote;
use dispatch_engine::{ContractorProfile, ContractorStatus, GeoPoint, Job, JobMachine, RatingTally, Timestamp};
use serde::{Deserialize, Serialize};

use super::{ContractorSnapshot, JobSnapshot};

/// A job snapshot of version 2: no payment.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct JobSnapshotV2 {
    job: Job,
    machine: JobMachine,
    quote: PriceQuote,
    radius_m: f64,
    offers_this_round: u32,
    expired_reason: Option<String>,
    accepted_at: Option<Timestamp>,
    rated_stars: Option<f64>,
}

impl From<JobSnapshotV2> for JobSnapshot {
    fn from(v2: JobSnapshotV2) -> Self {
        JobSnapshot {
            job: v2.job,
            machine: v2.machine,
            quote: v2.quote,
            radius_m: v2.radius_m,
            offers_this_round: v2.offers_this_round,
            expired_reason: v2.expired_reason,
            accepted_at: v2.accepted_at,
            rated_stars: v2.rated_stars,
            payment: None,
            payee: None,
        }
    }
}

/// A contractor snapshot of version 2: no earnings.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ContractorSnapshotV2 {
    profile: ContractorProfile,
    status: ContractorStatus,
    position: Option<GeoPoint>,
    last_fix: Option<Timestamp>,
    job_site: Option<GeoPoint>,
    arriving_sent: bool,
    agenda: Vec<dispatch_engine::routing::Stop>,
    ratings: RatingTally,
}

impl From<ContractorSnapshotV2> for ContractorSnapshot {
    fn from(v2: ContractorSnapshotV2) -> Self {
        ContractorSnapshot {
            profile: v2.profile,
            status: v2.status,
            position: v2.position,
            last_fix: v2.last_fix,
            job_site: v2.job_site,
            arriving_sent: v2.arriving_sent,
            agenda: v2.agenda,
            ratings: v2.ratings,
            earnings: Vec::new(),
        }
    }
}
