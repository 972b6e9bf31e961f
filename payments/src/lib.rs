//! # dispatch-payments — the card processor boundary
//!
//! What the engine asks of a card processor, and two processors that answer:
//!
//! | module | what lives there |
//! |---|---|
//! | [`bounded`] | [`Bounded`]: every call of a processor under a time limit, a hang cut short as unavailable |
//! | [`provider`] | [`PaymentProvider`] (authorize, capture, void, refund, payout, and `confirm` for the reconciler), [`Call`], [`Outcome`], [`CallKey`]: the idempotency key and metadata of (job, step, attempt); [`reconcile`] |
//! | [`job_payment`] | [`JobPayment`]: one job's money from hold to payout — the engine's machine, the processor's ids, every step a durable call settled by one mapping |
//! | [`journal`] | durable calls: the intent written before a call, the outcome after; [`journal::in_flight`], [`journal::recover`] after a crash; [`journal::payment_event`] for the job's payment machine |
//! | [`sandbox`] | [`SandboxProvider`]: the default, in memory, deterministic, told to decline, fail or hang for tests |
//! | [`webhook`] | inbound processor webhooks: [`webhook::verify`] (HMAC-SHA256 over `t.body`, constant time, two secrets, a tolerance), [`webhook::notice`] (chargebacks, reversed transfers) |
//! | [`stripe`] | [`StripeProvider`]: PaymentIntents with manual capture, Refunds, Transfers to connected accounts, over Stripe's HTTP API |
//!
//! The money rules and the ledger are the engine's (`dispatch_engine::payment`):
//! this crate only moves what they decide.

pub mod bounded;
pub mod job_payment;
pub mod journal;
pub mod provider;
pub mod sandbox;
pub mod stripe;
pub mod webhook;

pub use bounded::Bounded;
pub use job_payment::{Hold, JobPayment, PaymentError, Report, Via};
pub use provider::{
    Call, CallKey, Card, CardSaved, CardSetup, Outcome, PayeeStatus, PaymentProvider, ProviderError, Step, execute, reconcile,
};
pub use sandbox::{Behaviour, SandboxProvider, Statement};
pub use stripe::{StripeConfig, StripeProvider};
