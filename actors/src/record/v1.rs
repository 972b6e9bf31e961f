//! Schema version 1's layouts, frozen: read only to upcast blobs written by
//! builds of that version. Never change a field or a variant's place here.

use dispatch_engine::pricing::PriceQuote;
use dispatch_engine::routing::Stop;
use dispatch_engine::{
    ContractorId, ContractorProfile, ContractorStatus, CustomerId, GeoPoint, Job, JobMachine, Party, RatingTally, Timestamp,
};
use dispatch_storage::StorageError;
use serde::{Deserialize, Serialize};

use super::{ContractorSnapshot, JobSnapshot, LogRecord};

/// A contractor snapshot of version 1: the rating only in the profile.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ContractorSnapshotV1 {
    profile: ContractorProfile,
    status: ContractorStatus,
    position: Option<GeoPoint>,
    last_fix: Option<Timestamp>,
    job_site: Option<GeoPoint>,
    arriving_sent: bool,
    agenda: Vec<Stop>,
}

impl From<ContractorSnapshotV1> for ContractorSnapshot {
    fn from(v1: ContractorSnapshotV1) -> Self {
        ContractorSnapshot {
            ratings: RatingTally::from_rating(v1.profile.rating),
            profile: v1.profile,
            status: v1.status,
            position: v1.position,
            last_fix: v1.last_fix,
            job_site: v1.job_site,
            arriving_sent: v1.arriving_sent,
            agenda: v1.agenda,
            earnings: Vec::new(),
        }
    }
}

/// A job snapshot of version 1: no rating.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct JobSnapshotV1 {
    job: Job,
    machine: JobMachine,
    quote: PriceQuote,
    radius_m: f64,
    offers_this_round: u32,
    expired_reason: Option<String>,
    accepted_at: Option<Timestamp>,
}

impl From<JobSnapshotV1> for JobSnapshot {
    fn from(v1: JobSnapshotV1) -> Self {
        JobSnapshot {
            job: v1.job,
            machine: v1.machine,
            quote: v1.quote,
            radius_m: v1.radius_m,
            offers_this_round: v1.offers_this_round,
            expired_reason: v1.expired_reason,
            accepted_at: v1.accepted_at,
            rated_stars: None,
            payment: None,
            payee: None,
        }
    }
}

/// Version 1 logged the broadcast enum itself, positions included (never
/// logged, but their variant index was taken).
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum EventKindV1 {
    Posted { quote: PriceQuote, customer: CustomerId },
    Offered { contractor: ContractorId, expires_at: Timestamp, eta_secs: f64 },
    Declined { contractor: ContractorId },
    OfferExpired { contractor: ContractorId },
    Accepted { contractor: ContractorId },
    EnRoute { contractor: ContractorId },
    Arriving { contractor: ContractorId, distance_m: f64 },
    OnSite { contractor: ContractorId },
    Completed { contractor: ContractorId },
    Withdrawn { contractor: ContractorId },
    Cancelled { by: Party, reason: String },
    Expired { reason: String },
    Chat { party: Party, sender: u64, text: String },
    ContractorPosition { contractor: ContractorId, point: GeoPoint, eta_secs: f64 },
}

impl TryFrom<EventKindV1> for LogRecord {
    type Error = StorageError;

    fn try_from(v1: EventKindV1) -> Result<Self, StorageError> {
        use EventKindV1 as E;
        Ok(match v1 {
            E::Posted { quote, customer } => LogRecord::Posted { quote, customer },
            E::Offered { contractor, expires_at, eta_secs } => LogRecord::Offered { contractor, expires_at, eta_secs },
            E::Declined { contractor } => LogRecord::Declined { contractor },
            E::OfferExpired { contractor } => LogRecord::OfferExpired { contractor },
            E::Accepted { contractor } => LogRecord::Accepted { contractor },
            E::EnRoute { contractor } => LogRecord::EnRoute { contractor },
            E::Arriving { contractor, distance_m } => LogRecord::Arriving { contractor, distance_m },
            E::OnSite { contractor } => LogRecord::OnSite { contractor },
            E::Completed { contractor } => LogRecord::Completed { contractor },
            E::Withdrawn { contractor } => LogRecord::Withdrawn { contractor },
            E::Cancelled { by, reason } => LogRecord::Cancelled { by, reason },
            E::Expired { reason } => LogRecord::Expired { reason },
            E::Chat { party, sender, text } => LogRecord::Chat { party, sender, text },
            E::ContractorPosition { .. } => return Err(StorageError::Decode("a contractor position in the event log".into())),
        })
    }
}
