//! A job's money on the wire: the receipt a money request is acked with
//! ([`PaymentReply`]) and a contractor's earnings statement
//! ([`EarningsReply`]). `payment` events carry the engine's
//! `PaymentNotice`, the receipt is its `Receipt`, as they are.
//!
//! Amounts are integer minor units of the city's currency (cents); times
//! are milliseconds since the Unix epoch.

use dispatch_engine::payment::{DayEarnings, Receipt};
use serde::{Deserialize, Serialize};

/// The ack of every money request: the job's receipt as it then stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentReply {
    /// The job.
    pub job: u64,
    /// Its payment.
    pub payment: Receipt,
}

/// A contractor's earnings statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarningsReply {
    /// Whose.
    pub contractor: u64,
    /// A row per UTC day with a charge, oldest first (`day`: days since 1970-01-01).
    pub days: Vec<DayEarnings>,
}
