//! [`PaymentProvider`]: what the engine asks of a card processor, and the
//! [`Call`]s and [`Outcome`]s between them.
//!
//! Every call carries a [`CallKey`] — (job, step, attempt) — which becomes
//! the processor's **idempotency key**, so a call sent again after a crash
//! or a timeout is done once. Processors forget idempotency keys after about
//! a day, so every object a call makes also carries the key in its
//! **metadata**, and [`PaymentProvider::confirm`] finds a call's object by it:
//! that is how a reconciler learns what a call it never heard back from did.
//! `attempt` is not a retry counter: a retry sends the same key. It moves on
//! only when the engine decides to ask again for a new reason (a hold
//! renewed before it expires, a payout after a failed one).

use async_trait::async_trait;
use dispatch_engine::payment::Currency;
use dispatch_engine::{ContractorId, CustomerId, JobId, Money};
use serde::{Deserialize, Serialize};

/// Which money step of a job a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The first hold.
    Authorize,
    /// A further hold, the n-th: a fresh hold for the whole of what is now
    /// owed (approved extras beyond the first hold), which replaces it — a
    /// capture takes one hold, so the total must be on one.
    ExtraHold(u16),
    /// Letting go the n-th hold that a fresh one replaced (a further hold, a renewal).
    Replaced(u16),
    /// The charge at completion, or of a cancellation fee.
    Capture,
    /// Letting the hold go.
    Void,
    /// The n-th refund: two partial refunds are two steps.
    Refund(u16),
    /// The transfer to the contractor.
    Payout,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Authorize => f.write_str("authorize"),
            Step::ExtraHold(n) => write!(f, "extra-hold-{n}"),
            Step::Replaced(n) => write!(f, "replaced-{n}"),
            Step::Capture => f.write_str("capture"),
            Step::Void => f.write_str("void"),
            Step::Refund(n) => write!(f, "refund-{n}"),
            Step::Payout => f.write_str("payout"),
        }
    }
}

/// Names one call: the same key for every retry of it. A hold is two
/// calls under its key ([`Call::Prepare`], then [`Call::Authorize`]); the
/// processor sees them under two idempotency keys ([`Self::prepare_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallKey {
    /// The job.
    pub job: JobId,
    /// The step.
    pub step: Step,
    /// Asked anew for a new reason (1 first).
    pub attempt: u32,
}

impl CallKey {
    /// A first attempt.
    #[must_use]
    pub const fn new(job: JobId, step: Step) -> Self {
        Self { job, step, attempt: 1 }
    }

    /// The processor's idempotency key, and the `dispatch_call` metadata: `dispatch-job-42-refund-2-a1`.
    #[must_use]
    pub fn idempotency_key(&self) -> String {
        format!("dispatch-job-{}-{}-a{}", self.job.0, self.step, self.attempt)
    }

    /// The idempotency key of the request that prepares a hold.
    #[must_use]
    pub fn prepare_key(&self) -> String {
        format!("{}-prepare", self.idempotency_key())
    }

    /// The metadata every processor object of this call carries.
    #[must_use]
    pub fn metadata(&self) -> [(&'static str, String); 3] {
        [("dispatch_job", self.job.0.to_string()), ("dispatch_step", self.step.to_string()), ("dispatch_call", self.idempotency_key())]
    }
}

/// A card at the processor: one of a customer's payment methods, or one the
/// app just collected (no customer yet).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Card {
    /// The processor's customer id; empty for a card on no customer's file.
    pub customer: String,
    /// The processor's payment method id.
    pub payment_method: String,
}

/// Saving a customer's card for later, off-session holds (a scheduled job's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSetup {
    /// The processor's customer.
    pub customer: String,
    /// The card the app collected (a payment method id).
    pub payment_method: String,
    /// The idempotency key of this setup ([`CardSetup::key_for`]); its two requests derive theirs from it.
    pub key: String,
}

impl CardSetup {
    /// The idempotency key of `customer`'s `n`-th card setup: `dispatch-customer-7-card-2`.
    #[must_use]
    pub fn key_for(customer: CustomerId, n: u32) -> String {
        format!("{}-card-{n}", customer_key(customer))
    }
}

/// The idempotency key of the payout account made for `contractor`: `dispatch-contractor-7`.
#[must_use]
pub fn payee_key(contractor: ContractorId) -> String {
    format!("dispatch-contractor-{}", contractor.0)
}

/// Where a contractor's payout account stands at the processor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayeeStatus {
    /// Transfers to it go through.
    Ready,
    /// The contractor must finish onboarding (identity, bank account) at `url` first.
    Onboarding {
        /// Where (a Stripe-hosted onboarding link, short-lived: ask again for a fresh one).
        url: String,
    },
}

/// The idempotency key (and `dispatch_customer` metadata) of the processor's customer for `customer`: `dispatch-customer-7`.
#[must_use]
pub fn customer_key(customer: CustomerId) -> String {
    format!("dispatch-customer-{}", customer.0)
}

/// What saving a card did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardSaved {
    /// On file, usable off-session.
    Saved {
        /// The card.
        card: Card,
    },
    /// The customer must authenticate the card first (3-D Secure).
    ActionRequired {
        /// The setup waiting (a SetupIntent at Stripe).
        setup: String,
        /// What the app completes it with.
        client_secret: String,
    },
    /// The card was refused.
    Declined {
        /// The processor's code.
        code: String,
        /// Its message, for the customer.
        message: String,
    },
}

/// One thing asked of the processor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// Make the hold object for `amount` on `card`, unconfirmed: nothing is
    /// held yet, so a repeat is harmless. Its id is recorded before
    /// [`Call::Authorize`] asks the card, so a reconciler never has to search
    /// for a hold that may have been placed.
    Prepare {
        /// The call (the hold's step).
        key: CallKey,
        /// The card.
        card: Card,
        /// How much.
        amount: Money,
        /// In what.
        currency: Currency,
    },
    /// Hold on the card what `intent` was prepared with.
    Authorize {
        /// The call.
        key: CallKey,
        /// The prepared hold.
        intent: String,
        /// The customer is not there to authenticate (a scheduled job's hold).
        off_session: bool,
    },
    /// Charge `amount` of the hold `intent`.
    Capture {
        /// The call.
        key: CallKey,
        /// The hold.
        intent: String,
        /// How much (at most what it holds).
        amount: Money,
    },
    /// Let the hold `intent` go.
    Void {
        /// The call.
        key: CallKey,
        /// The hold.
        intent: String,
    },
    /// Give `amount` of the charge `intent` back.
    Refund {
        /// The call.
        key: CallKey,
        /// The charged hold.
        intent: String,
        /// How much.
        amount: Money,
    },
    /// Send `amount` to the contractor's account `destination`.
    Payout {
        /// The call.
        key: CallKey,
        /// The contractor's connected account.
        destination: String,
        /// How much.
        amount: Money,
        /// In what.
        currency: Currency,
    },
}

impl Call {
    /// The processor's idempotency key of its request.
    #[must_use]
    pub fn idempotency_key(&self) -> String {
        match self {
            Call::Prepare { key, .. } => key.prepare_key(),
            other => other.key().idempotency_key(),
        }
    }

    /// Its key.
    #[must_use]
    pub fn key(&self) -> CallKey {
        match self {
            Call::Prepare { key, .. }
            | Call::Authorize { key, .. }
            | Call::Capture { key, .. }
            | Call::Void { key, .. }
            | Call::Refund { key, .. }
            | Call::Payout { key, .. } => *key,
        }
    }
}

/// What the processor did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The hold object exists, unconfirmed.
    Prepared {
        /// Its id (a PaymentIntent at Stripe).
        intent: String,
    },
    /// The hold is placed.
    Held {
        /// The hold (a PaymentIntent at Stripe).
        intent: String,
        /// How much.
        amount: Money,
    },
    /// The customer must authenticate (3-D Secure) before the hold is placed.
    ActionRequired {
        /// The hold waiting.
        intent: String,
        /// What the app completes it with (Stripe.js `handleNextAction`).
        client_secret: String,
    },
    /// The card refused.
    Declined {
        /// The processor's decline code (`card_declined`, `insufficient_funds`, …).
        code: String,
        /// Its message, for the customer.
        message: String,
    },
    /// Charged.
    Captured {
        /// The hold charged.
        intent: String,
        /// How much.
        amount: Money,
    },
    /// The hold is let go.
    Voided {
        /// The hold.
        intent: String,
    },
    /// Given back.
    Refunded {
        /// The refund.
        refund: String,
        /// How much.
        amount: Money,
    },
    /// Sent to the contractor.
    PaidOut {
        /// The transfer.
        transfer: String,
        /// How much.
        amount: Money,
    },
}

impl Outcome {
    /// Its name, as in its JSON `outcome` tag.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Outcome::Prepared { .. } => "prepared",
            Outcome::Held { .. } => "held",
            Outcome::ActionRequired { .. } => "action_required",
            Outcome::Declined { .. } => "declined",
            Outcome::Captured { .. } => "captured",
            Outcome::Voided { .. } => "voided",
            Outcome::Refunded { .. } => "refunded",
            Outcome::PaidOut { .. } => "paid_out",
        }
    }
}

/// A call that did not get an outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Unreachable, slow, overloaded or busy with the same key: send the same call again later.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// Refused as asked (a bad id, an amount over the hold): sending it again will not help.
    #[error("payment provider refused the call: {0}")]
    Rejected(String),
}

impl ProviderError {
    /// Whether the same call may succeed later.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, ProviderError::Unavailable(_))
    }
}

/// What the engine asks of a card processor. Each method makes one call of
/// its kind, idempotent under its key; [`Self::confirm`] only looks.
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// Its name in config and logs (`sandbox`, `stripe`).
    fn name(&self) -> &'static str;

    /// Makes a hold object, nothing held yet ([`Call::Prepare`]).
    async fn prepare(&self, call: &Call) -> Result<Outcome, ProviderError>;

    /// Places a prepared hold on the card ([`Call::Authorize`]).
    async fn authorize(&self, call: &Call) -> Result<Outcome, ProviderError>;

    /// Charges a hold ([`Call::Capture`]).
    async fn capture(&self, call: &Call) -> Result<Outcome, ProviderError>;

    /// Lets a hold go ([`Call::Void`]).
    async fn void(&self, call: &Call) -> Result<Outcome, ProviderError>;

    /// Gives money back ([`Call::Refund`]).
    async fn refund(&self, call: &Call) -> Result<Outcome, ProviderError>;

    /// Pays a contractor ([`Call::Payout`]).
    async fn payout(&self, call: &Call) -> Result<Outcome, ProviderError>;

    /// The processor's customer for `customer` (made once: the same id
    /// however often it is asked, under `dispatch-customer-<id>`), whose file
    /// a card is saved on.
    async fn make_customer(&self, customer: CustomerId) -> Result<String, ProviderError>;

    /// The payout account of `contractor` (a connected account at Stripe),
    /// made once under [`payee_key`]: the account id payouts go to.
    async fn make_payee(&self, contractor: ContractorId) -> Result<String, ProviderError>;

    /// Whether payouts to `account` go through yet, or where its contractor finishes onboarding.
    async fn payee_status(&self, account: &str) -> Result<PayeeStatus, ProviderError>;

    /// Saves a customer's card for off-session holds ([`CardSetup`]).
    async fn save_card(&self, setup: &CardSetup) -> Result<CardSaved, ProviderError>;

    /// Where the card setup `setup` stands now that the customer may have
    /// authenticated it ([`CardSaved::ActionRequired`] before): only looks.
    async fn confirm_card(&self, setup: &str) -> Result<CardSaved, ProviderError>;

    /// What `call` did, if the processor shows it (a hold's status, a refund
    /// or transfer found by its metadata — not by the idempotency key, which
    /// processors forget); `None`: it never happened. A [`Call::Prepare`] is
    /// always `None`: it moves nothing, and is simply made again.
    async fn confirm(&self, call: &Call) -> Result<Option<Outcome>, ProviderError>;

    /// The job the processor's object `id` — a hold (`pi_…`) or a transfer
    /// (`tr_…`) — was made for, if this processor (and, on a shared account,
    /// this city) made it: where a webhook that names only the object (a
    /// chargeback, a reversed transfer) goes. The default knows none.
    async fn job_of(&self, id: &str) -> Result<Option<JobId>, ProviderError> {
        let _ = id;
        Ok(None)
    }
}

/// Makes `call` through the method of its kind.
pub async fn execute(provider: &dyn PaymentProvider, call: &Call) -> Result<Outcome, ProviderError> {
    match call {
        Call::Prepare { .. } => provider.prepare(call).await,
        Call::Authorize { .. } => provider.authorize(call).await,
        Call::Capture { .. } => provider.capture(call).await,
        Call::Void { .. } => provider.void(call).await,
        Call::Refund { .. } => provider.refund(call).await,
        Call::Payout { .. } => provider.payout(call).await,
    }
}

/// Finishes a call whose outcome was never recorded (a crash between the
/// call and its record): the outcome the processor has of it, or the call
/// made again under the same key. Either way at most one charge.
pub async fn reconcile(provider: &dyn PaymentProvider, call: &Call) -> Result<Outcome, ProviderError> {
    match provider.confirm(call).await? {
        Some(outcome) => Ok(outcome),
        None => execute(provider, call).await,
    }
}

/// `Rejected` for a call given to the wrong method.
pub(crate) fn wrong_call(method: &str, call: &Call) -> ProviderError {
    ProviderError::Rejected(format!("{method} cannot make {:?}", call.key().step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_job_step_and_attempt() {
        let key = CallKey { job: JobId(42), step: Step::Refund(2), attempt: 1 };
        assert_eq!(key.idempotency_key(), "dispatch-job-42-refund-2-a1");
        assert_ne!(key.idempotency_key(), CallKey { step: Step::Refund(1), ..key }.idempotency_key(), "two refunds, two keys");
        assert_ne!(key.idempotency_key(), CallKey { attempt: 2, ..key }.idempotency_key());
        let meta = key.metadata();
        assert_eq!(meta[0], ("dispatch_job", "42".to_owned()));
        assert_eq!(meta[2].1, key.idempotency_key());
        assert_eq!(CallKey::new(JobId(7), Step::Authorize).idempotency_key(), "dispatch-job-7-authorize-a1");
    }
}
