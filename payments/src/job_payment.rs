//! [`JobPayment`]: one job's money from its hold to its payout — the
//! engine's [`PaymentMachine`] and what the processor knows of it (the
//! current hold's id, the card, how many refunds and further holds), moved on
//! by durable calls ([`journal::make`](crate::journal::make)).
//!
//! Every step that asks the processor writes its intent and outcome through
//! the [`PaymentJournal`] and applies the outcome to the machine through one
//! function ([`JobPayment::settle`]), which a restart also uses for the calls
//! [`recover`](crate::journal::recover) finished. Steps the processor has no
//! part in (extras proposed, approved or rejected, a dispute opened) only
//! move the machine.
//!
//! A further hold, or a renewal before a hold expires, is a fresh hold for
//! the whole amount; once it holds, the hold it replaces is let go
//! ([`Step::Replaced`]).

use serde::{Deserialize, Serialize};

use dispatch_engine::payment::{Cancellation, Currency, Entries, PaymentEvent, PaymentMachine, PaymentState, PaymentTerms, timing};
use dispatch_engine::{ContractorId, Error as EngineError, JobId, JobStateKind, Money, Timestamp};

use crate::journal::{CallError, JournalEntry, PaymentJournal, make, payment_event};
use crate::provider::{Call, CallKey, Card, Outcome, PaymentProvider, Step};

/// Where a job's payment steps go: the processor, and the journal their intents and outcomes are written to.
#[derive(Clone, Copy)]
pub struct Via<'a> {
    /// The processor.
    pub provider: &'a dyn PaymentProvider,
    /// The job's journal.
    pub journal: &'a dyn PaymentJournal,
}

/// Why a step did not move the payment.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PaymentError {
    /// The processor or the journal failed; the step is finished later (its intent is written).
    #[error(transparent)]
    Call(#[from] CallError),
    /// Not a step this payment can take now.
    #[error(transparent)]
    Refused(#[from] EngineError),
    /// A dispute after the window closed.
    #[error("the dispute window closed at {0:?}")]
    WindowClosed(Timestamp),
    /// The release before the window closed.
    #[error("the payout is not due before {0:?}")]
    NotDue(Timestamp),
}

/// Where a hold got to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// On the card.
    Placed,
    /// The customer must authenticate; the app completes it with this secret.
    ActionRequired {
        /// The processor's client secret.
        client_secret: String,
    },
    /// Refused by the card, with the processor's reason for the customer.
    Declined {
        /// Why.
        reason: String,
    },
}

/// One job's payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPayment {
    job: JobId,
    machine: PaymentMachine,
    card: Card,
    currency: Currency,
    /// The hold a capture takes.
    hold: Option<String>,
    held_at: Option<Timestamp>,
    captured_at: Option<Timestamp>,
    /// Attempts of the first hold (its renewals are later ones).
    hold_attempts: u32,
    further_holds: u16,
    replaced: u16,
    refunds: u16,
    /// The outcomes settled, as `<idempotency key>:<outcome>`: settling is
    /// idempotent, and a restart settles what was recorded after the last store.
    settled: std::collections::BTreeSet<String>,
    /// Ledger entries made since the last [`Self::take_entries`].
    entries: Vec<Entries>,
}

impl JobPayment {
    /// A job priced at `quote`, to be paid with `card`.
    pub fn new(job: JobId, quote: Money, terms: PaymentTerms, card: Card) -> Result<Self, EngineError> {
        let currency = terms.currency;
        Ok(Self {
            job,
            machine: PaymentMachine::new(job, quote, terms)?,
            card,
            currency,
            hold: None,
            held_at: None,
            captured_at: None,
            hold_attempts: 0,
            further_holds: 0,
            replaced: 0,
            refunds: 0,
            settled: std::collections::BTreeSet::new(),
            entries: Vec::new(),
        })
    }

    /// The machine: state and amounts.
    #[must_use]
    pub fn machine(&self) -> &PaymentMachine {
        &self.machine
    }

    /// When the current hold was placed, if one is.
    #[must_use]
    pub fn held_at(&self) -> Option<Timestamp> {
        self.held_at
    }

    /// When it was charged, if it was.
    #[must_use]
    pub fn captured_at(&self) -> Option<Timestamp> {
        self.captured_at
    }

    /// The ledger entries made since the last call, for the city's ledger.
    pub fn take_entries(&mut self) -> Vec<Entries> {
        std::mem::take(&mut self.entries)
    }

    /// Asks the processor whether a hold waiting for the customer's
    /// authentication now holds (the app completed it); its outcome recorded
    /// and settled if it changed.
    pub async fn refresh_hold(&mut self, via: Via<'_>, now: Timestamp) -> Result<Hold, PaymentError> {
        let (Some(intent), PaymentState::AwaitingAction) = (self.hold.clone(), self.machine.state()) else {
            return Err(self.illegal(PaymentEvent::HoldPlaced { amount: self.machine.hold_due() }));
        };
        let call = Call::Authorize { key: self.hold_key(), intent, off_session: false };
        match via.provider.confirm(&call).await.map_err(CallError::from)? {
            Some(outcome @ (Outcome::Held { .. } | Outcome::Declined { .. } | Outcome::Voided { .. })) => {
                via.journal
                    .write(JournalEntry::Outcome { call: call.idempotency_key(), outcome: outcome.clone() })
                    .await
                    .map_err(CallError::from)?;
                self.settle(&call, &outcome, now)?;
                Ok(match outcome {
                    Outcome::Declined { message, .. } => Hold::Declined { reason: message },
                    _ => Hold::Placed,
                })
            }
            _ => Ok(Hold::ActionRequired { client_secret: String::new() }),
        }
    }

    /// Places the first hold ([`PaymentMachine::hold_due`]): `off_session` for a scheduled job's, placed without the customer.
    pub async fn hold(&mut self, via: Via<'_>, now: Timestamp, off_session: bool) -> Result<Hold, PaymentError> {
        self.hold_attempts += 1;
        self.place(via, self.hold_key(), self.machine.hold_due(), now, off_session).await
    }

    /// The contractor asks for `amount` more, for `reason`.
    pub fn propose_extras(&mut self, amount: Money, reason: String) -> Result<(), PaymentError> {
        self.apply(PaymentEvent::ExtrasProposed { amount, reason })
    }

    /// The customer turns the extras down.
    pub fn reject_extras(&mut self) -> Result<(), PaymentError> {
        self.apply(PaymentEvent::ExtrasRejected)
    }

    /// The customer accepts the extras; if the hold no longer covers what is
    /// owed, a further hold for the whole of it is placed (which the card may refuse).
    pub async fn approve_extras(&mut self, via: Via<'_>, now: Timestamp) -> Result<Hold, PaymentError> {
        self.apply(PaymentEvent::ExtrasApproved)?;
        if self.machine.hold_short().0 == 0 {
            return Ok(Hold::Placed);
        }
        self.further_holds += 1;
        let key = CallKey::new(self.job, Step::ExtraHold(self.further_holds));
        self.place(via, key, self.machine.capture_due(), now, false).await
    }

    /// Renews the hold if it would expire soon (a day ahead of Stripe's seven); whether it did.
    pub async fn renew_if_due(&mut self, via: Via<'_>, now: Timestamp) -> Result<bool, PaymentError> {
        let due = self.held_at.map(timing::renew_at);
        if self.machine.state() != PaymentState::Authorized || due.is_none_or(|at| now < at) {
            return Ok(false);
        }
        self.hold_attempts += 1;
        let amount = self.machine.held();
        self.place(via, self.hold_key(), amount, now, true).await.map(|h| h == Hold::Placed)
    }

    /// The work is done: the approved total is charged.
    pub async fn complete(&mut self, via: Via<'_>, now: Timestamp) -> Result<(), PaymentError> {
        self.capture(via, self.machine.capture_due(), now).await
    }

    /// The job was cancelled in `state`: the hold is let go, or the cancellation fee charged.
    pub async fn cancel(&mut self, via: Via<'_>, state: JobStateKind, now: Timestamp) -> Result<(), PaymentError> {
        if !matches!(self.machine.state(), PaymentState::Authorized | PaymentState::AwaitingAction) {
            return Ok(());
        }
        match self.machine.terms().cancellation(state, self.machine.held()) {
            Cancellation::ChargeFee(fee) if self.machine.state() == PaymentState::Authorized => self.capture(via, fee, now).await,
            _ => {
                let intent = self.hold.clone().unwrap_or_default();
                self.step(via, Call::Void { key: CallKey::new(self.job, Step::Void), intent }, now).await.map(drop)
            }
        }
    }

    /// A dispatcher gives `amount` back.
    pub async fn refund(&mut self, via: Via<'_>, amount: Money, now: Timestamp) -> Result<(), PaymentError> {
        // Checked before the processor is asked.
        self.machine.clone().apply(PaymentEvent::Refunded { amount })?;
        self.give_back(via, amount, now).await
    }

    /// The customer disputes the charge, inside the window.
    pub fn open_dispute(&mut self, now: Timestamp) -> Result<(), PaymentError> {
        if let Some(at) = self.captured_at
            && !timing::dispute_open(at, now, self.machine.terms())
        {
            return Err(PaymentError::WindowClosed(timing::release_at(at, self.machine.terms())));
        }
        self.apply(PaymentEvent::DisputeOpened)
    }

    /// A dispatcher settles the dispute: `refund` back to the customer, the rest released later.
    pub async fn resolve_dispute(&mut self, via: Via<'_>, refund: Money, now: Timestamp) -> Result<(), PaymentError> {
        self.machine.clone().apply(PaymentEvent::DisputeResolved { refund })?;
        if refund.0 == 0 {
            return self.apply(PaymentEvent::DisputeResolved { refund });
        }
        self.give_back(via, refund, now).await
    }

    /// Once the dispute window has passed: releases what the job earned to
    /// `contractor` and sends it to their account `destination`.
    pub async fn pay_out(&mut self, via: Via<'_>, contractor: ContractorId, destination: &str, now: Timestamp) -> Result<(), PaymentError> {
        if self.machine.state() == PaymentState::Captured {
            let due = self.captured_at.map_or(now, |at| timing::release_at(at, self.machine.terms()));
            if now < due {
                return Err(PaymentError::NotDue(due));
            }
            self.apply(PaymentEvent::PayoutReleased { contractor })?;
        }
        let Some(release) = self.machine.release() else { return Err(self.illegal(PaymentEvent::PayoutSent)) };
        if self.machine.state() != PaymentState::PayoutPending {
            return Err(self.illegal(PaymentEvent::PayoutSent));
        }
        let call = Call::Payout {
            key: CallKey { attempt: 1 + self.reversals(), ..CallKey::new(self.job, Step::Payout) },
            destination: destination.into(),
            amount: release.payout,
            currency: self.currency,
        };
        self.step(via, call, now).await.map(drop)
    }

    /// What the processor reported on its own (a webhook): applied once per
    /// event however often it is delivered. Whether it changed anything.
    pub fn report(&mut self, report: &Report) -> Result<bool, PaymentError> {
        let key = report.settled_key();
        if self.settled.contains(&key) {
            return Ok(false);
        }
        self.apply(report.event())?;
        self.settled.insert(key);
        Ok(true)
    }

    /// Transfers that came back: each payout after one is a new attempt (a new idempotency key).
    fn reversals(&self) -> u32 {
        self.settled.iter().filter(|k| k.starts_with(REVERSED)).count() as u32
    }

    /// After a restart, from this payment as last stored and the job's
    /// `entries` in order: settles the outcomes recorded after it was stored,
    /// then finishes the calls left in flight and settles theirs. How many
    /// outcomes it settled.
    pub async fn recover(&mut self, via: Via<'_>, entries: &[JournalEntry], now: Timestamp) -> Result<usize, PaymentError> {
        let mut settled = 0;
        for (call, outcome) in crate::journal::recorded(entries) {
            if !self.settled.contains(&settled_key(call, outcome)) {
                self.settle(call, outcome, now)?;
                settled += 1;
            }
        }
        for (call, outcome) in crate::journal::recover(via.provider, via.journal, entries).await? {
            self.settle(&call, &outcome, now)?;
            settled += 1;
        }
        Ok(settled)
    }

    /// Applies a recorded outcome of `call` to the machine (and the
    /// processor-side ids): the one mapping, for calls made now and for calls
    /// a restart finished. Settling the same call again does nothing.
    pub fn settle(&mut self, call: &Call, outcome: &Outcome, now: Timestamp) -> Result<(), PaymentError> {
        if !self.settled.insert(settled_key(call, outcome)) {
            return Ok(());
        }
        // In a dispute, money given back is the dispute's resolution.
        let event = match (self.machine.state(), outcome) {
            (PaymentState::Disputed, Outcome::Refunded { amount, .. }) => Some(PaymentEvent::DisputeResolved { refund: *amount }),
            _ => payment_event(call, outcome),
        };
        if let Some(event) = event {
            self.apply(event)?;
        }
        match outcome {
            Outcome::Held { intent, .. } => {
                self.hold = Some(intent.clone());
                self.held_at = Some(now);
            }
            Outcome::ActionRequired { intent, .. } => self.hold = Some(intent.clone()),
            Outcome::Captured { .. } => self.captured_at = Some(now),
            _ => {}
        }
        Ok(())
    }

    /// Prepares and authorizes a hold of `amount` under `key`; a fresh hold
    /// that replaces one lets the old one go once it holds.
    async fn place(&mut self, via: Via<'_>, key: CallKey, amount: Money, now: Timestamp, off_session: bool) -> Result<Hold, PaymentError> {
        let replaced = self.hold.clone().filter(|_| self.machine.state() == PaymentState::Authorized);
        let prepare = Call::Prepare { key, card: self.card.clone(), amount, currency: self.currency };
        let Outcome::Prepared { intent } = self.step(via, prepare, now).await? else {
            return Err(self.illegal(PaymentEvent::HoldPlaced { amount }));
        };
        let outcome = self.step(via, Call::Authorize { key, intent, off_session }, now).await?;
        Ok(match outcome {
            Outcome::Held { .. } => {
                if let Some(old) = replaced {
                    self.replaced += 1;
                    let release = Call::Void { key: CallKey::new(self.job, Step::Replaced(self.replaced)), intent: old };
                    self.step(via, release, now).await?;
                }
                Hold::Placed
            }
            Outcome::ActionRequired { client_secret, .. } => Hold::ActionRequired { client_secret },
            Outcome::Declined { message, .. } => Hold::Declined { reason: message },
            _ => Hold::Placed,
        })
    }

    async fn capture(&mut self, via: Via<'_>, amount: Money, now: Timestamp) -> Result<(), PaymentError> {
        self.machine.clone().apply(PaymentEvent::Captured { amount })?;
        let intent = self.hold.clone().unwrap_or_default();
        self.step(via, Call::Capture { key: CallKey::new(self.job, Step::Capture), intent, amount }, now).await.map(drop)
    }

    async fn give_back(&mut self, via: Via<'_>, amount: Money, now: Timestamp) -> Result<(), PaymentError> {
        self.refunds += 1;
        let intent = self.hold.clone().unwrap_or_default();
        let call = Call::Refund { key: CallKey::new(self.job, Step::Refund(self.refunds)), intent, amount };
        self.step(via, call, now).await.map(drop)
    }

    /// The key of the first hold's latest attempt (later ones are its renewals).
    fn hold_key(&self) -> CallKey {
        CallKey { attempt: self.hold_attempts, ..CallKey::new(self.job, Step::Authorize) }
    }

    /// One durable call, settled.
    async fn step(&mut self, via: Via<'_>, call: Call, now: Timestamp) -> Result<Outcome, PaymentError> {
        let outcome = make(via.provider, via.journal, call.clone()).await?;
        self.settle(&call, &outcome, now)?;
        Ok(outcome)
    }

    fn apply(&mut self, event: PaymentEvent) -> Result<(), PaymentError> {
        let entries = self.machine.apply(event).map_err(PaymentError::Refused)?;
        self.entries.push(entries);
        Ok(())
    }

    fn illegal(&self, event: PaymentEvent) -> PaymentError {
        PaymentError::Refused(EngineError::IllegalPayment { state: self.machine.state(), event: event.kind() })
    }
}

/// What the processor reports about a job's money on its own, in its webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Report {
    /// The card's bank took `amount` back from the charge (a chargeback): out
    /// of escrow before the release, borne by the platform after it.
    Chargeback {
        /// The webhook event, for de-duplication.
        event: String,
        /// How much.
        amount: Money,
    },
    /// The transfer to the contractor came back (reversed at the processor):
    /// owed to them again, held for a dispatcher.
    PayoutReversed {
        /// The webhook event, for de-duplication.
        event: String,
        /// How much.
        amount: Money,
    },
}

/// The settled-key prefix of a reversed transfer.
const REVERSED: &str = "reversed:";

impl Report {
    /// The machine's event.
    #[must_use]
    pub fn event(&self) -> PaymentEvent {
        match self {
            Report::Chargeback { amount, .. } => PaymentEvent::Chargeback { amount: *amount },
            Report::PayoutReversed { amount, .. } => PaymentEvent::PayoutReversed { amount: *amount },
        }
    }

    /// How it is remembered once applied.
    fn settled_key(&self) -> String {
        match self {
            Report::Chargeback { event, .. } => format!("webhook:{event}"),
            Report::PayoutReversed { event, .. } => format!("{REVERSED}{event}"),
        }
    }
}

/// How a settled outcome is remembered: one call may have two outcomes in
/// turn (a hold that waited for 3-D Secure, then held).
fn settled_key(call: &Call, outcome: &Outcome) -> String {
    format!("{}:{}", call.idempotency_key(), outcome.kind())
}

#[cfg(test)]
#[path = "job_payment_tests.rs"]
mod tests;
