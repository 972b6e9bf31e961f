//! A job's money on the wire: the receipt a money request is acked with
//! ([`PaymentReply`]), a contractor's earnings statement
//! ([`EarningsReply`]), a customer's card on file ([`CardReply`]) and a
//! contractor's payout account ([`PayoutAccountReply`]). `payment` events carry the engine's
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

/// The ack of `save_card`, `confirm_card` and `card`: the customer's card on file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardReply {
    /// Whose.
    pub customer: u64,
    /// Where the card stands.
    pub card_status: CardStatus,
    /// The card saved, or waiting for authentication (`null`: none).
    pub payment_method: Option<String>,
    /// With `action_required`: what the app completes the authentication with (Stripe.js `handleNextAction`).
    pub client_secret: Option<String>,
}

/// Where a customer's card on file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardStatus {
    /// No card is saved.
    None,
    /// Saved: posts that name no card, and scheduled jobs' holds, use it.
    Saved,
    /// The customer must authenticate the card in the app, then send `confirm_card`.
    ActionRequired,
}

/// The ack of `payout_account`: where a contractor's payouts go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutAccountReply {
    /// Whose.
    pub contractor: u64,
    /// The processor's account id.
    pub account: String,
    /// Whether payouts to it go through (until then they wait).
    pub ready: bool,
    /// While not ready: where the contractor finishes onboarding (a short-lived link; ask again for a fresh one).
    pub onboarding_url: Option<String>,
}
