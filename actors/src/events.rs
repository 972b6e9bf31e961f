//! [`DispatchEvent`]: what the actors tell the outside world (the gateway).
//!
//! Lifecycle events are also appended to the job's event log in the store,
//! with a sequence number, before they are broadcast; a reconnecting client
//! reads what it missed from the log.

use dispatch_engine::payment::PaymentNotice;
use dispatch_engine::pricing::PriceQuote;
use dispatch_engine::{ContractorId, CustomerId, GeoPoint, JobId, Party, Timestamp};
use dispatch_payments::journal::JournalEntry;
use dispatch_payments::{Outcome, Step};

use crate::record::PaymentRecord;
use serde::{Deserialize, Serialize};

/// One thing that happened to a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchEvent {
    /// The job.
    pub job: JobId,
    /// Position in the job's event log (0 for events not logged, like positions).
    pub seq: u64,
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The job was posted with this quote.
    Posted {
        /// The price quoted.
        quote: PriceQuote,
        /// Who posted it (so events can be routed to them from the first one).
        customer: CustomerId,
    },
    /// Offered to a contractor until `expires_at`.
    Offered {
        /// Who.
        contractor: ContractorId,
        /// Until when.
        expires_at: Timestamp,
        /// Estimated drive time, seconds.
        eta_secs: f64,
    },
    /// The contractor declined.
    Declined {
        /// Who.
        contractor: ContractorId,
    },
    /// The offer lapsed unanswered.
    OfferExpired {
        /// Who.
        contractor: ContractorId,
    },
    /// The contractor accepted.
    Accepted {
        /// Who.
        contractor: ContractorId,
    },
    /// The contractor set off.
    EnRoute {
        /// Who.
        contractor: ContractorId,
    },
    /// The contractor came within the arriving distance of the site.
    Arriving {
        /// Who.
        contractor: ContractorId,
        /// Metres to the site.
        distance_m: f64,
    },
    /// The contractor reached the site.
    OnSite {
        /// Who.
        contractor: ContractorId,
    },
    /// The work is done.
    Completed {
        /// Who did it.
        contractor: ContractorId,
    },
    /// The contractor dropped out or was taken off; the job is being offered again.
    Withdrawn {
        /// Who.
        contractor: ContractorId,
    },
    /// Called off.
    Cancelled {
        /// By whom.
        by: Party,
        /// Why.
        reason: String,
    },
    /// Nobody took it.
    Expired {
        /// Why.
        reason: String,
    },
    /// The customer rated the completed job.
    Rated {
        /// Who was rated.
        contractor: ContractorId,
        /// Stars, 0–5.
        stars: f64,
    },
    /// A chat message in the job's conversation.
    Chat {
        /// The sender's side.
        party: Party,
        /// The sender's id (customer, contractor or dispatcher).
        sender: u64,
        /// What they wrote.
        text: String,
    },
    /// The job's money moved (or is moving).
    Payment(PaymentNotice),
    /// The assigned contractor's position (not logged: sent while the job is active).
    ContractorPosition {
        /// Who.
        contractor: ContractorId,
        /// Where.
        point: GeoPoint,
        /// Seconds to the site.
        eta_secs: f64,
    },
}

impl EventKind {
    /// The contractor the event is about, if any.
    #[must_use]
    pub const fn contractor(&self) -> Option<ContractorId> {
        match self {
            EventKind::Offered { contractor, .. }
            | EventKind::Declined { contractor }
            | EventKind::OfferExpired { contractor }
            | EventKind::Accepted { contractor }
            | EventKind::EnRoute { contractor }
            | EventKind::Arriving { contractor, .. }
            | EventKind::OnSite { contractor }
            | EventKind::Completed { contractor }
            | EventKind::Withdrawn { contractor }
            | EventKind::Rated { contractor, .. }
            | EventKind::ContractorPosition { contractor, .. } => Some(*contractor),
            EventKind::Posted { .. }
            | EventKind::Cancelled { .. }
            | EventKind::Expired { .. }
            | EventKind::Chat { .. }
            | EventKind::Payment(_) => None,
        }
    }

    /// Whether the job is finished with this event (completed, cancelled or expired).
    #[must_use]
    pub const fn finishes_job(&self) -> bool {
        matches!(self, EventKind::Completed { .. } | EventKind::Cancelled { .. } | EventKind::Expired { .. })
    }
}

/// What a journal entry tells the parties: an intent is the step being
/// processed; an outcome, what it did (a hold object made is still processing).
#[must_use]
pub fn notice_of_call(entry: &JournalEntry) -> PaymentNotice {
    match entry {
        JournalEntry::Intent { call } => PaymentNotice::Processing { step: step_name(call.key().step).into() },
        JournalEntry::Outcome { call: key, outcome } => match outcome {
            Outcome::Prepared { .. } => PaymentNotice::Processing { step: step_of_key(key).into() },
            Outcome::Held { amount, .. } => PaymentNotice::Authorized { amount: *amount },
            Outcome::ActionRequired { client_secret, .. } => PaymentNotice::ActionRequired { client_secret: client_secret.clone() },
            Outcome::Declined { message, .. } => PaymentNotice::Declined { reason: message.clone() },
            Outcome::Captured { amount, .. } => PaymentNotice::Captured { amount: *amount },
            Outcome::Voided { .. } => PaymentNotice::Voided,
            Outcome::Refunded { amount, .. } => PaymentNotice::Refunded { amount: *amount },
            Outcome::PaidOut { amount, .. } => PaymentNotice::PaidOut { amount: *amount },
        },
    }
}

impl From<PaymentRecord> for PaymentNotice {
    fn from(record: PaymentRecord) -> Self {
        match record {
            PaymentRecord::ExtrasProposed { amount, reason } => PaymentNotice::ExtrasProposed { amount, reason },
            PaymentRecord::ExtrasApproved { total } => PaymentNotice::ExtrasApproved { total },
            PaymentRecord::ExtrasRejected => PaymentNotice::ExtrasRejected,
            PaymentRecord::DisputeOpened { reason } => PaymentNotice::DisputeOpened { reason },
            PaymentRecord::DisputeResolved { refund } => PaymentNotice::DisputeResolved { refund },
            PaymentRecord::PayoutScheduled { at } => PaymentNotice::PayoutScheduled { at },
            PaymentRecord::Chargeback { amount, .. } => PaymentNotice::Chargeback { amount },
            PaymentRecord::PayoutReversed { amount, .. } => PaymentNotice::PayoutReversed { amount },
        }
    }
}

/// A processor step's name for the parties.
const fn step_name(step: Step) -> &'static str {
    match step {
        Step::Authorize => "hold",
        Step::ExtraHold(_) => "extra_hold",
        Step::Replaced(_) => "release_old_hold",
        Step::Capture => "capture",
        Step::Void => "void",
        Step::Refund(_) => "refund",
        Step::Payout => "payout",
    }
}

/// The step named in an idempotency key (`dispatch-job-42-authorize-a1-prepare`).
fn step_of_key(key: &str) -> &'static str {
    if key.contains("-extra-hold-") { step_name(Step::ExtraHold(0)) } else { step_name(Step::Authorize) }
}
