//! [`PayeeRecord`]: a contractor's payout account at the city's processor
//! (a connected account at Stripe), which their payouts are transferred to.
//!
//! Stored as a `Kind::Payee` snapshot keyed by the contractor's id, made the
//! first time it is needed (the contractor asks for it, or a payout is due)
//! and marked ready once the processor says transfers to it go through.

use dispatch_engine::ContractorId;
use dispatch_storage::codec::Versioned;
use serde::{Deserialize, Serialize};

/// A contractor's payout account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayeeRecord {
    /// Whose.
    pub contractor: ContractorId,
    /// The processor's account id (`acct_…`).
    pub account: String,
    /// Whether the processor said transfers to it go through (onboarding finished).
    pub ready: bool,
}

/// Payee records first appeared in schema version 3's stores.
impl Versioned for PayeeRecord {
    const LAYOUT_SINCE: u16 = 3;
}
