//! [`LogRecord`]: one entry of a job's event log, as stored.
//!
//! The log is the system's record of a job. Its record type is its own, not
//! the broadcast [`EventKind`] nor the wire's event: renaming or reordering
//! those changes nothing stored. New variants go at the end (bincode stores
//! a variant's index, so the earlier ones keep theirs and older blobs read
//! as they are); a changed variant needs a schema version bump and an
//! upcaster ([`Versioned`]).
//!
//! A job's payment writes two kinds of record (since schema version 3):
//! [`LogRecord::PaymentCall`], the journal of its processor calls — each
//! call's intent before it is made, its outcome after (`dispatch_payments::journal`) —
//! and [`LogRecord::Payment`], its steps the processor has no part in.

use dispatch_engine::pricing::PriceQuote;
use dispatch_engine::{ContractorId, CustomerId, JobEvent, Money, Party, Timestamp};
use dispatch_payments::journal::JournalEntry;
use dispatch_storage::StorageError;
use dispatch_storage::codec::{Versioned, decode_payload};
use serde::{Deserialize, Serialize};

use super::v1;
use crate::events::EventKind;

/// One logged thing that happened to a job. See [`EventKind`] for what each means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "each variant and field mirrors the EventKind variant of the same name")]
pub enum LogRecord {
    Posted {
        quote: PriceQuote,
        customer: CustomerId,
    },
    Offered {
        contractor: ContractorId,
        expires_at: Timestamp,
        eta_secs: f64,
    },
    Declined {
        contractor: ContractorId,
    },
    OfferExpired {
        contractor: ContractorId,
    },
    Accepted {
        contractor: ContractorId,
    },
    EnRoute {
        contractor: ContractorId,
    },
    Arriving {
        contractor: ContractorId,
        distance_m: f64,
    },
    OnSite {
        contractor: ContractorId,
    },
    Completed {
        contractor: ContractorId,
    },
    Withdrawn {
        contractor: ContractorId,
    },
    Cancelled {
        by: Party,
        reason: String,
    },
    Expired {
        reason: String,
    },
    Chat {
        party: Party,
        sender: u64,
        text: String,
    },
    /// Since schema version 2.
    Rated {
        contractor: ContractorId,
        stars: f64,
    },
    /// A processor call's intent or outcome (since schema version 3).
    PaymentCall(JournalEntry),
    /// A payment step without a processor call (since schema version 3).
    Payment(PaymentRecord),
}

/// A payment step the processor has no part in, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "each field mirrors the PaymentNotice variant of the same name")]
pub enum PaymentRecord {
    /// The contractor asked for `amount` more, for `reason`.
    ExtrasProposed { amount: Money, reason: String },
    /// The customer approved the extras; the job now owes `total`.
    ExtrasApproved { total: Money },
    /// The customer turned the extras down.
    ExtrasRejected,
    /// The customer disputes the charge.
    DisputeOpened { reason: String },
    /// A dispatcher settled the dispute, giving `refund` back.
    DisputeResolved { refund: Money },
    /// The charge goes to the contractor at `at`, when the dispute window closes.
    PayoutScheduled { at: Timestamp },
    /// The processor reported a chargeback of `amount` (its webhook `event`).
    Chargeback { amount: Money, event: String },
    /// The processor reported the contractor's transfer of `amount` reversed (its webhook `event`).
    PayoutReversed { amount: Money, event: String },
}

impl From<dispatch_payments::Report> for PaymentRecord {
    fn from(report: dispatch_payments::Report) -> Self {
        match report {
            dispatch_payments::Report::Chargeback { event, amount } => PaymentRecord::Chargeback { amount, event },
            dispatch_payments::Report::PayoutReversed { event, amount } => PaymentRecord::PayoutReversed { amount, event },
        }
    }
}

impl Versioned for LogRecord {
    const LAYOUT_SINCE: u16 = 2;

    fn upcast(version: u16, payload: &[u8]) -> Result<Self, StorageError> {
        match version {
            1 => decode_payload::<v1::EventKindV1>(payload)?.try_into(),
            _ => Err(StorageError::UnsupportedVersion { found: version, supported: dispatch_storage::SCHEMA_VERSION }),
        }
    }
}

impl LogRecord {
    /// The record of a contractor's step on a job — an event that names only
    /// who took it (accepted, declined, en route, on site, completed,
    /// withdrawn) — under the same name; `None` for events that carry more.
    #[must_use]
    pub fn of_step(event: &JobEvent) -> Option<Self> {
        Some(match *event {
            JobEvent::Accepted { contractor } => LogRecord::Accepted { contractor },
            JobEvent::Declined { contractor } => LogRecord::Declined { contractor },
            JobEvent::EnRoute { contractor } => LogRecord::EnRoute { contractor },
            JobEvent::OnSite { contractor } => LogRecord::OnSite { contractor },
            JobEvent::Completed { contractor } => LogRecord::Completed { contractor },
            JobEvent::Withdrawn { contractor } => LogRecord::Withdrawn { contractor },
            JobEvent::Offered { .. } | JobEvent::OfferExpired { .. } | JobEvent::Cancelled { .. } | JobEvent::Expired => return None,
        })
    }
}

impl From<LogRecord> for EventKind {
    fn from(record: LogRecord) -> Self {
        use LogRecord as R;
        match record {
            R::Posted { quote, customer } => EventKind::Posted { quote, customer },
            R::Offered { contractor, expires_at, eta_secs } => EventKind::Offered { contractor, expires_at, eta_secs },
            R::Declined { contractor } => EventKind::Declined { contractor },
            R::OfferExpired { contractor } => EventKind::OfferExpired { contractor },
            R::Accepted { contractor } => EventKind::Accepted { contractor },
            R::EnRoute { contractor } => EventKind::EnRoute { contractor },
            R::Arriving { contractor, distance_m } => EventKind::Arriving { contractor, distance_m },
            R::OnSite { contractor } => EventKind::OnSite { contractor },
            R::Completed { contractor } => EventKind::Completed { contractor },
            R::Withdrawn { contractor } => EventKind::Withdrawn { contractor },
            R::Cancelled { by, reason } => EventKind::Cancelled { by, reason },
            R::Expired { reason } => EventKind::Expired { reason },
            R::Chat { party, sender, text } => EventKind::Chat { party, sender, text },
            R::Rated { contractor, stars } => EventKind::Rated { contractor, stars },
            R::PaymentCall(entry) => EventKind::Payment(crate::events::notice_of_call(&entry)),
            R::Payment(record) => EventKind::Payment(record.into()),
        }
    }
}
