//! Durable processor calls: each call's **intent** is written before it is
//! made and its **outcome** after, so a process that dies in between leaves
//! an intent without an outcome, and the restart finishes it.
//!
//! - [`make`] writes the intent, makes the call, writes the outcome. A call
//!   that did not get an answer (the processor unavailable, or a hang cut
//!   short by the caller) leaves its intent in place.
//! - [`in_flight`] reads, from a job's entries in order, the calls intended
//!   and never recorded; [`recorded`], the outcomes with their calls.
//! - [`recover`] finishes each: [`reconcile`] finds what the processor did
//!   (or makes the call again under the same key), and the outcome is
//!   recorded. One charge, one record, however the first attempt ended.
//! - [`payment_event`] is what a recorded outcome means to the job's
//!   [`PaymentMachine`](dispatch_engine::payment::PaymentMachine).
//!
//! Where the entries live is the caller's ([`PaymentJournal`]): a job's
//! event log in the engine, memory in tests.

pub use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use dispatch_engine::payment::PaymentEvent;

use crate::provider::{Call, Outcome, PaymentProvider, ProviderError, Step, execute, reconcile};

/// One written entry of a job's payment calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalEntry {
    /// About to make `call`.
    Intent {
        /// The call.
        call: Call,
    },
    /// What the call with this idempotency key did.
    Outcome {
        /// The call's [`Call::idempotency_key`].
        call: String,
        /// What it did.
        outcome: Outcome,
    },
}

/// Where a job's payment entries are written; each write durable when it returns.
#[async_trait]
pub trait PaymentJournal: Send + Sync {
    /// Writes `entry`.
    async fn write(&self, entry: JournalEntry) -> Result<(), JournalError>;
}

/// A write that did not become durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payment journal: {0}")]
pub struct JournalError(pub String);

/// Why a call has no recorded outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The processor gave none: the intent stays, and the call is finished later.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// An entry could not be written: before the call, nothing was made; after it, the intent stays.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Makes `call` durably: its intent written first, its outcome after.
pub async fn make(provider: &dyn PaymentProvider, journal: &dyn PaymentJournal, call: Call) -> Result<Outcome, CallError> {
    journal.write(JournalEntry::Intent { call: call.clone() }).await?;
    let outcome = execute(provider, &call).await?;
    journal.write(JournalEntry::Outcome { call: call.idempotency_key(), outcome: outcome.clone() }).await?;
    Ok(outcome)
}

/// The calls of `entries` intended and never recorded, in the order they were intended.
#[must_use]
pub fn in_flight(entries: &[JournalEntry]) -> Vec<Call> {
    let mut open: Vec<Call> = Vec::new();
    for entry in entries {
        match entry {
            JournalEntry::Intent { call } => {
                if !open.iter().any(|c| c.idempotency_key() == call.idempotency_key()) {
                    open.push(call.clone());
                }
            }
            JournalEntry::Outcome { call, .. } => open.retain(|c| c.idempotency_key() != *call),
        }
    }
    open
}

/// The outcomes `entries` recorded, in order, each with the call it was intended as.
#[must_use]
pub fn recorded(entries: &[JournalEntry]) -> Vec<(&Call, &Outcome)> {
    entries
        .iter()
        .filter_map(|entry| {
            let JournalEntry::Outcome { call: key, outcome } = entry else { return None };
            let call = entries.iter().find_map(|e| match e {
                JournalEntry::Intent { call } if call.idempotency_key() == *key => Some(call),
                _ => None,
            })?;
            Some((call, outcome))
        })
        .collect()
}

/// Finishes every call `entries` left in flight: its outcome found (or the
/// call made again under its key) and recorded. The outcomes, in order.
pub async fn recover(
    provider: &dyn PaymentProvider,
    journal: &dyn PaymentJournal,
    entries: &[JournalEntry],
) -> Result<Vec<(Call, Outcome)>, CallError> {
    let mut finished = Vec::new();
    for call in in_flight(entries) {
        let outcome = reconcile(provider, &call).await?;
        journal.write(JournalEntry::Outcome { call: call.idempotency_key(), outcome: outcome.clone() }).await?;
        finished.push((call, outcome));
    }
    Ok(finished)
}

/// What `call`'s `outcome` means to the job's payment machine; `None` for a
/// prepared hold (nothing is held yet) and for letting go a hold a fresh one
/// replaced (the fresh one's `HoldRenewed` already counted it gone).
#[must_use]
pub fn payment_event(call: &Call, outcome: &Outcome) -> Option<PaymentEvent> {
    let key = call.key();
    let further = matches!(key.step, Step::ExtraHold(_));
    // A fresh hold that replaces the first: a further hold, or a later attempt of the first (its renewal).
    let replacing = further || (key.step == Step::Authorize && key.attempt > 1);
    Some(match outcome {
        Outcome::Prepared { .. } => return None,
        Outcome::Voided { .. } if matches!(key.step, Step::Replaced(_)) => return None,
        Outcome::Held { amount, .. } if replacing => PaymentEvent::HoldRenewed { amount: *amount },
        Outcome::Held { amount, .. } => PaymentEvent::HoldPlaced { amount: *amount },
        Outcome::ActionRequired { .. } => PaymentEvent::ActionRequired,
        Outcome::Declined { .. } if further => PaymentEvent::HoldIncreaseDeclined,
        Outcome::Declined { message, .. } => PaymentEvent::Declined { reason: message.clone() },
        Outcome::Captured { amount, .. } => PaymentEvent::Captured { amount: *amount },
        Outcome::Voided { .. } => PaymentEvent::Voided,
        Outcome::Refunded { amount, .. } => PaymentEvent::Refunded { amount: *amount },
        Outcome::PaidOut { .. } => PaymentEvent::PayoutSent,
    })
}

#[cfg(test)]
#[path = "journal_tests.rs"]
pub(crate) mod tests;
