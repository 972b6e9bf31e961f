//! [`PaymentEvent`]: what happens to a job's money — what the processor
//! answered, or what the customer, contractor or a dispatcher decided — and
//! [`PaymentEventKind`], its name without its data.

use serde::{Deserialize, Serialize};

use crate::types::{ContractorId, Money};

/// What happened to a job's money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PaymentEvent {
    /// The processor placed the hold ([`PaymentMachine::hold_due`](super::PaymentMachine::hold_due)).
    HoldPlaced {
        /// How much is held.
        amount: Money,
    },
    /// The processor wants the customer to authenticate before it holds.
    ActionRequired,
    /// The card refused the hold.
    Declined {
        /// The processor's reason, for the customer.
        reason: String,
    },
    /// The contractor asks for more than the quote (a new proposal replaces one not yet answered).
    ExtrasProposed {
        /// How much more.
        amount: Money,
        /// What for (materials, extra hours).
        reason: String,
    },
    /// The customer accepts the proposed extras.
    ExtrasApproved,
    /// The customer turns the proposed extras down.
    ExtrasRejected,
    /// A further hold was placed (approved extras beyond the first, or a hold renewed before it expires).
    HoldIncreased {
        /// How much more is held.
        amount: Money,
    },
    /// The further hold was refused: the extras the holds do not cover are dropped.
    HoldIncreaseDeclined,
    /// The holds were about to expire: a fresh one of `amount` replaced them.
    HoldRenewed {
        /// How much the fresh hold holds (at least what a capture would take).
        amount: Money,
    },
    /// The processor charged the card.
    Captured {
        /// How much (at most what is held).
        amount: Money,
    },
    /// The hold was let go.
    Voided,
    /// Money went back to the customer.
    Refunded {
        /// How much.
        amount: Money,
    },
    /// The customer disputes the charge, inside the window.
    DisputeOpened,
    /// A dispatcher settled the dispute: `refund` goes back, the rest is released later.
    DisputeResolved {
        /// Refunded to the customer (may be zero).
        refund: Money,
    },
    /// The dispute window passed: what the job earned goes to its contractor, less the fee.
    PayoutReleased {
        /// Who did the work.
        contractor: ContractorId,
    },
    /// The transfer to the contractor went through.
    PayoutSent,
    /// The transfer failed; it is retried (the payout stays pending).
    PayoutFailed {
        /// The processor's reason.
        reason: String,
    },
    /// The processor kept a fee.
    ProcessorFee {
        /// How much.
        amount: Money,
    },
    /// The card's bank took money back (a chargeback, reported by the processor).
    Chargeback {
        /// How much.
        amount: Money,
    },
    /// The transfer to the contractor came back (reversed at the processor):
    /// they are owed it again, and the payout waits for a dispatcher.
    PayoutReversed {
        /// How much came back (the whole transfer).
        amount: Money,
    },
}

/// A [`PaymentEvent`]'s name, without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum PaymentEventKind {
    HoldPlaced,
    ActionRequired,
    Declined,
    ExtrasProposed,
    ExtrasApproved,
    ExtrasRejected,
    HoldIncreased,
    HoldIncreaseDeclined,
    HoldRenewed,
    Captured,
    Voided,
    Refunded,
    DisputeOpened,
    DisputeResolved,
    PayoutReleased,
    PayoutSent,
    PayoutFailed,
    ProcessorFee,
    Chargeback,
    PayoutReversed,
}

impl PaymentEventKind {
    /// Every event kind.
    pub const ALL: [PaymentEventKind; 20] = [
        PaymentEventKind::HoldPlaced,
        PaymentEventKind::ActionRequired,
        PaymentEventKind::Declined,
        PaymentEventKind::ExtrasProposed,
        PaymentEventKind::ExtrasApproved,
        PaymentEventKind::ExtrasRejected,
        PaymentEventKind::HoldIncreased,
        PaymentEventKind::HoldIncreaseDeclined,
        PaymentEventKind::HoldRenewed,
        PaymentEventKind::Captured,
        PaymentEventKind::Voided,
        PaymentEventKind::Refunded,
        PaymentEventKind::DisputeOpened,
        PaymentEventKind::DisputeResolved,
        PaymentEventKind::PayoutReleased,
        PaymentEventKind::PayoutSent,
        PaymentEventKind::PayoutFailed,
        PaymentEventKind::ProcessorFee,
        PaymentEventKind::Chargeback,
        PaymentEventKind::PayoutReversed,
    ];
}

impl PaymentEvent {
    /// Its kind.
    #[must_use]
    pub const fn kind(&self) -> PaymentEventKind {
        match self {
            PaymentEvent::HoldPlaced { .. } => PaymentEventKind::HoldPlaced,
            PaymentEvent::ActionRequired => PaymentEventKind::ActionRequired,
            PaymentEvent::Declined { .. } => PaymentEventKind::Declined,
            PaymentEvent::ExtrasProposed { .. } => PaymentEventKind::ExtrasProposed,
            PaymentEvent::ExtrasApproved => PaymentEventKind::ExtrasApproved,
            PaymentEvent::ExtrasRejected => PaymentEventKind::ExtrasRejected,
            PaymentEvent::HoldIncreased { .. } => PaymentEventKind::HoldIncreased,
            PaymentEvent::HoldIncreaseDeclined => PaymentEventKind::HoldIncreaseDeclined,
            PaymentEvent::HoldRenewed { .. } => PaymentEventKind::HoldRenewed,
            PaymentEvent::Captured { .. } => PaymentEventKind::Captured,
            PaymentEvent::Voided => PaymentEventKind::Voided,
            PaymentEvent::Refunded { .. } => PaymentEventKind::Refunded,
            PaymentEvent::DisputeOpened => PaymentEventKind::DisputeOpened,
            PaymentEvent::DisputeResolved { .. } => PaymentEventKind::DisputeResolved,
            PaymentEvent::PayoutReleased { .. } => PaymentEventKind::PayoutReleased,
            PaymentEvent::PayoutSent => PaymentEventKind::PayoutSent,
            PaymentEvent::PayoutFailed { .. } => PaymentEventKind::PayoutFailed,
            PaymentEvent::ProcessorFee { .. } => PaymentEventKind::ProcessorFee,
            PaymentEvent::Chargeback { .. } => PaymentEventKind::Chargeback,
            PaymentEvent::PayoutReversed { .. } => PaymentEventKind::PayoutReversed,
        }
    }
}
