//! [`PaymentNotice`]: what a job's parties are told of its money, in its
//! event log's `payment` events; the wire carries it as it is.

use serde::{Deserialize, Serialize};

use crate::types::{Money, Timestamp};

/// What moved in a job's money: each processor call as it is made and what
/// it did, and the steps without one (`{"captured": {"amount": 12000}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentNotice {
    /// A call to the card processor is being made for this step (`hold`,
    /// `extra_hold`, `capture`, `void`, `release_old_hold`, `refund`, `payout`).
    Processing {
        /// The step.
        step: String,
    },
    /// The hold is on the card.
    Authorized {
        /// How much it holds.
        amount: Money,
    },
    /// The customer must authenticate the hold in the app (3-D Secure); the
    /// job waits until they do and send `confirm_payment`.
    ActionRequired {
        /// What the app completes it with (Stripe.js `handleNextAction`).
        client_secret: String,
    },
    /// The card refused.
    Declined {
        /// The processor's reason, for the customer.
        reason: String,
    },
    /// Charged.
    Captured {
        /// How much.
        amount: Money,
    },
    /// The hold was let go.
    Voided,
    /// Given back to the customer.
    Refunded {
        /// How much.
        amount: Money,
    },
    /// Sent to the contractor.
    PaidOut {
        /// How much.
        amount: Money,
    },
    /// The contractor asks for more.
    ExtrasProposed {
        /// How much more.
        amount: Money,
        /// What for.
        reason: String,
    },
    /// The customer approved the extras.
    ExtrasApproved {
        /// What the job now owes in all.
        total: Money,
    },
    /// The customer turned the extras down.
    ExtrasRejected,
    /// The customer disputes the charge; the payout waits for a dispatcher.
    DisputeOpened {
        /// Why.
        reason: String,
    },
    /// A dispatcher settled the dispute.
    DisputeResolved {
        /// Given back to the customer.
        refund: Money,
    },
    /// The payout is due when the dispute window closes.
    PayoutScheduled {
        /// When.
        at: Timestamp,
    },
    /// The bank took money back from the charge (a chargeback the processor reported).
    Chargeback {
        /// How much.
        amount: Money,
    },
    /// The transfer to the contractor came back (reversed at the processor):
    /// owed to them again, held until a dispatcher resolves it (`resolve_dispute` with no refund sends it again).
    PayoutReversed {
        /// How much.
        amount: Money,
    },
}
