//! [`CustomerRecord`]: a customer's card on file at the city's processor —
//! the processor's customer, the saved card a post without a payment method
//! (and a scheduled job's off-session hold) uses, and a setup still under way.
//!
//! Stored as a `Kind::Customer` snapshot keyed by the customer's id. The
//! record is written before each processor call it leads to, naming the
//! setup's number, so a retry after a crash sends the same idempotency key
//! (`dispatch-customer-<id>-card-<n>`) and saves the card once.

use dispatch_engine::CustomerId;
use dispatch_storage::codec::Versioned;
use serde::{Deserialize, Serialize};

/// A card setup asked of the processor and not settled yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCard {
    /// Its number among the customer's setups: the idempotency key's `n`.
    pub n: u32,
    /// The card the app collected.
    pub payment_method: String,
    /// The processor's setup waiting for the customer to authenticate, once it said so.
    pub setup: Option<String>,
    /// What the app completes the authentication with.
    pub client_secret: Option<String>,
}

/// A customer's file at the processor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRecord {
    /// Whose.
    pub customer: CustomerId,
    /// The processor's customer (`cus_…`), made before the first setup.
    pub processor_customer: String,
    /// The card saved for off-session holds, if any.
    pub card: Option<String>,
    /// Setups begun so far: the next one is `setups + 1`.
    pub setups: u32,
    /// A setup under way.
    pub pending: Option<PendingCard>,
}

impl CustomerRecord {
    /// A customer with nothing on file.
    #[must_use]
    pub fn new(customer: CustomerId) -> Self {
        Self { customer, processor_customer: String::new(), card: None, setups: 0, pending: None }
    }
}

/// Customer records first appeared in schema version 3's stores.
impl Versioned for CustomerRecord {
    const LAYOUT_SINCE: u16 = 3;
}
