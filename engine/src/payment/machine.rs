//! The payment state machine: one per job, beside the job's own.
//!
//! ```text
//! Quoted ──HoldPlaced──▶ Authorized ──Captured──▶ Captured ──PayoutReleased──▶ PayoutPending ──PayoutSent──▶ PaidOut
//!  │  ▲                    │  ▲                    │  ▲  │ Refunded (all: ──▶ Refunded)
//!  │  └─HoldPlaced─┐       │  └ ExtrasProposed / Approved / Rejected, HoldIncreased / HoldIncreaseDeclined, HoldRenewed
//!  ▼               │       ▼                       ▼  │
//! AwaitingAction ──┘     Voided              Disputed ┘ DisputeResolved (refund all: ──▶ Refunded)
//! Quoted / AwaitingAction ──Declined──▶ Declined;   AwaitingAction ──Voided──▶ Voided
//! PaidOut ──PayoutReversed──▶ PayoutHeld ──DisputeResolved (refund 0)──▶ PayoutPending
//! ```
//!
//! The machine keeps the job's amounts — held, approved extras, captured,
//! refunded, released — and each [`PaymentMachine::apply`] returns the
//! [`Entries`] the step writes into the ledger, or a typed error and no
//! change. It never calls a processor: the events are what the processor
//! answered (a hold placed, a capture made), so the same machine replays a
//! job's log after a restart.
//!
//! Rules worth stating:
//! - The hold is [`PaymentTerms::hold_for`] the quote; extras the customer
//!   approves beyond it need [`PaymentEvent::HoldIncreased`] before they can
//!   be captured. If that second authorization is declined, the extras the
//!   holds do not cover are dropped ([`PaymentEvent::HoldIncreaseDeclined`]).
//! - A capture is at most what is held; capturing lets the rest of the hold go.
//! - Refunds (a dispatcher's, a dispute's, a chargeback before release) come
//!   out of escrow and never exceed what it holds; a refund of everything
//!   closes the payment as [`PaymentState::Refunded`].
//! - The release after the dispute window pays the contractor what the job
//!   finally earned — captured less refunded — less the platform fee on
//!   that, so payouts never exceed captured − fee − refunds.
//! - A chargeback after the release is borne by the platform's revenue.
//! - A transfer reversed at the processor (the whole of it) is owed to the
//!   contractor again, and held until a dispatcher resolves it with no
//!   refund, which sends it again: the platform's staff reverse a transfer
//!   for a reason, so it is not simply sent again.

use serde::{Deserialize, Serialize};

use super::event::PaymentEvent;
use super::ledger::{Account, Entries, Line, Memo, Posting, signed};
use super::terms::{MAX_AMOUNT, PaymentTerms};
use crate::error::{Error, Result};
use crate::types::{ContractorId, JobId, Money};

/// Where a job's payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// Priced; nothing held yet.
    Quoted,
    /// The hold waits for the customer to complete an authentication (3-D Secure).
    AwaitingAction,
    /// Held on the customer's card.
    Authorized,
    /// Charged; the money is in the job's escrow until its release.
    Captured,
    /// Charged, and the customer disputes it: the release waits for a dispatcher.
    Disputed,
    /// Released to the contractor; the transfer is on its way.
    PayoutPending,
    /// Paid out (closed).
    PaidOut,
    /// The hold was let go, nothing charged (closed).
    Voided,
    /// The card refused the hold (closed).
    Declined,
    /// Everything charged went back (closed).
    Refunded,
    /// The transfer came back (reversed at the processor): owed to the
    /// contractor again, held until a dispatcher resolves it.
    PayoutHeld,
}

impl PaymentState {
    /// Every state.
    pub const ALL: [PaymentState; 11] = [
        PaymentState::Quoted,
        PaymentState::AwaitingAction,
        PaymentState::Authorized,
        PaymentState::Captured,
        PaymentState::Disputed,
        PaymentState::PayoutPending,
        PaymentState::PaidOut,
        PaymentState::Voided,
        PaymentState::Declined,
        PaymentState::Refunded,
        PaymentState::PayoutHeld,
    ];

    /// Whether nothing more moves but processor fees and chargebacks: the job's escrow is empty.
    #[must_use]
    pub const fn is_closed(self) -> bool {
        matches!(self, PaymentState::PaidOut | PaymentState::Voided | PaymentState::Declined | PaymentState::Refunded)
    }
}

/// Extras proposed and not yet answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// How much more.
    pub amount: Money,
    /// What for.
    pub reason: String,
}

/// A release: who was paid, what the platform kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The contractor.
    pub contractor: ContractorId,
    /// The platform's fee.
    pub fee: Money,
    /// What the contractor gets.
    pub payout: Money,
}

/// One job's payment: its state and amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMachine {
    job: JobId,
    quote: Money,
    terms: PaymentTerms,
    state: PaymentState,
    held: Money,
    proposal: Option<Proposal>,
    approved_extras: Money,
    captured: Money,
    refunded: Money,
    release: Option<Release>,
    /// Chargebacks after the release, borne by the platform.
    lost: Money,
}

impl PaymentMachine {
    /// A job priced at `quote`, under `terms`.
    pub fn new(job: JobId, quote: Money, terms: PaymentTerms) -> Result<Self> {
        terms.validate()?;
        if quote > MAX_AMOUNT {
            return Err(Error::InvalidAmount(format!("a quote of {} is over the largest amount", quote.0)));
        }
        Ok(Self {
            job,
            quote,
            terms,
            state: PaymentState::Quoted,
            held: Money(0),
            proposal: None,
            approved_extras: Money(0),
            captured: Money(0),
            refunded: Money(0),
            release: None,
            lost: Money(0),
        })
    }

    /// Where it is.
    #[must_use]
    pub fn state(&self) -> PaymentState {
        self.state
    }

    /// The quote.
    #[must_use]
    pub fn quote(&self) -> Money {
        self.quote
    }

    /// The first hold to ask the processor for: the quote and its margin.
    #[must_use]
    pub fn hold_due(&self) -> Money {
        self.terms.hold_for(self.quote)
    }

    /// What a capture at completion takes: the quote and the approved extras.
    #[must_use]
    pub fn capture_due(&self) -> Money {
        Money(self.quote.0 + self.approved_extras.0)
    }

    /// How much more must be held before [`Self::capture_due`] can be captured.
    #[must_use]
    pub fn hold_short(&self) -> Money {
        Money(self.capture_due().0.saturating_sub(self.held.0))
    }

    /// Held on the card now.
    #[must_use]
    pub fn held(&self) -> Money {
        self.held
    }

    /// Extras waiting for the customer's answer.
    #[must_use]
    pub fn proposal(&self) -> Option<&Proposal> {
        self.proposal.as_ref()
    }

    /// Charged so far.
    #[must_use]
    pub fn captured(&self) -> Money {
        self.captured
    }

    /// Given back so far (refunds, resolved disputes, chargebacks before the release).
    #[must_use]
    pub fn refunded(&self) -> Money {
        self.refunded
    }

    /// In escrow: charged, not refunded, not released.
    #[must_use]
    pub fn escrow(&self) -> Money {
        if self.release.is_some() { Money(0) } else { Money(self.captured.0 - self.refunded.0) }
    }

    /// The release, once made.
    #[must_use]
    pub fn release(&self) -> Option<Release> {
        self.release
    }

    /// The terms it runs under.
    #[must_use]
    pub fn terms(&self) -> &PaymentTerms {
        &self.terms
    }

    /// The entries that bring an empty ledger to this job's balances — what
    /// its steps' entries add up to, from its amounts alone (processor fees
    /// aside: the processor reports them apart) — as one balanced posting and
    /// the hold still open: how a city's books are rebuilt from its stored jobs.
    pub fn opening_entries(&self) -> Result<Entries> {
        let mut lines = vec![
            Line { account: Account::CustomerFunding, amount: -signed(self.captured)? },
            Line { account: Account::Escrow(self.job), amount: signed(self.escrow())? },
            Line { account: Account::Refunds, amount: signed(self.refunded)? + signed(self.lost)? },
        ];
        if let Some(r) = self.release {
            lines.push(Line { account: Account::PlatformRevenue, amount: signed(r.fee)? - signed(self.lost)? });
            let sent =
                if self.state == PaymentState::PaidOut { Account::Payouts(r.contractor) } else { Account::ContractorPayable(r.contractor) };
            lines.push(Line { account: sent, amount: signed(r.payout)? });
        }
        lines.retain(|l| l.amount != 0);
        let mut entries = Entries::default();
        if !lines.is_empty() {
            entries.postings.push(Posting::new(lines)?);
        }
        if self.held.0 > 0 {
            entries.memos.push(Memo::HoldPlaced { job: self.job, amount: self.held });
        }
        Ok(entries)
    }

    /// Applies `event`: the ledger entries it makes, or an error and no change.
    pub fn apply(&mut self, event: PaymentEvent) -> Result<Entries> {
        use PaymentEvent as E;
        use PaymentState as S;
        let illegal = Err(Error::IllegalPayment { state: self.state, event: event.kind() });
        let escrow = Account::Escrow(self.job);
        let mut entries = Entries::default();
        match (self.state, event) {
            (S::Quoted | S::AwaitingAction, E::HoldPlaced { amount }) => {
                if amount < self.quote || amount > self.hold_due() {
                    return Err(Error::InvalidAmount(format!(
                        "a hold of {} does not cover the quote {} (due {})",
                        amount.0,
                        self.quote.0,
                        self.hold_due().0
                    )));
                }
                self.held = amount;
                entries.memo(Memo::HoldPlaced { job: self.job, amount });
                self.state = S::Authorized;
            }
            (S::Quoted, E::ActionRequired) => self.state = S::AwaitingAction,
            (S::Quoted | S::AwaitingAction, E::Declined { .. }) => self.state = S::Declined,
            (S::Authorized, E::ExtrasProposed { amount, reason }) => {
                positive(amount, "extras")?;
                if self.capture_due().0 + amount.0 > MAX_AMOUNT.0 {
                    return Err(Error::InvalidAmount(format!("extras of {} bring the job over the largest amount", amount.0)));
                }
                self.proposal = Some(Proposal { amount, reason });
            }
            (S::Authorized, E::ExtrasApproved | E::ExtrasRejected) if self.proposal.is_none() => {
                return Err(Error::InvalidAmount("no extras are waiting for an answer".into()));
            }
            (S::Authorized, E::ExtrasApproved) => {
                if let Some(p) = self.proposal.take() {
                    self.approved_extras = Money(self.approved_extras.0 + p.amount.0);
                }
            }
            (S::Authorized, E::ExtrasRejected) => self.proposal = None,
            (S::Authorized, E::HoldIncreased { amount }) => {
                positive(amount, "a further hold")?;
                self.held = Money(self.held.0.saturating_add(amount.0));
                entries.memo(Memo::HoldPlaced { job: self.job, amount });
            }
            (S::Authorized, E::HoldIncreaseDeclined) => {
                // The holds cover the quote; extras beyond them are dropped.
                self.approved_extras = Money(self.approved_extras.0.min(self.held.0.saturating_sub(self.quote.0)));
            }
            (S::Authorized, E::HoldRenewed { amount }) => {
                positive(amount, "a renewed hold")?;
                if amount < self.capture_due() {
                    return Err(Error::InvalidAmount(format!(
                        "a renewed hold of {} does not cover the {} a capture would take",
                        amount.0,
                        self.capture_due().0
                    )));
                }
                entries.memo(Memo::HoldReleased { job: self.job, amount: self.held });
                entries.memo(Memo::HoldPlaced { job: self.job, amount });
                self.held = amount;
            }
            (S::Authorized, E::Captured { amount }) => {
                positive(amount, "a capture")?;
                if amount > self.held {
                    return Err(Error::InvalidAmount(format!("a capture of {} is over the {} held", amount.0, self.held.0)));
                }
                entries.post(Posting::transfer(Account::CustomerFunding, escrow, amount)?);
                entries.memo(Memo::HoldReleased { job: self.job, amount: self.held });
                self.captured = amount;
                self.held = Money(0);
                self.proposal = None;
                self.state = S::Captured;
            }
            (S::AwaitingAction | S::Authorized, E::Voided) => {
                entries.memo(Memo::HoldReleased { job: self.job, amount: self.held });
                self.held = Money(0);
                self.state = S::Voided;
            }
            (S::Captured, E::Refunded { amount }) => {
                positive(amount, "a refund")?;
                self.refund(amount, &mut entries)?;
            }
            (S::Disputed, E::DisputeResolved { refund }) => self.refund(refund, &mut entries)?,
            (S::Captured, E::DisputeOpened) => self.state = S::Disputed,
            (S::Captured, E::PayoutReleased { contractor }) => {
                let earned = self.escrow();
                let fee = self.terms.platform_fee(earned);
                let payout = Money(earned.0 - fee.0);
                entries.post(Posting::transfer(escrow, Account::PlatformRevenue, fee)?);
                entries.post(Posting::transfer(escrow, Account::ContractorPayable(contractor), payout)?);
                self.release = Some(Release { contractor, fee, payout });
                self.state = S::PayoutPending;
            }
            (S::PayoutPending, E::PayoutSent) => {
                if let Some(r) = self.release {
                    entries.post(Posting::transfer(Account::ContractorPayable(r.contractor), Account::Payouts(r.contractor), r.payout)?);
                }
                self.state = S::PaidOut;
            }
            (S::PayoutPending, E::PayoutFailed { .. }) => {}
            (S::PaidOut, E::PayoutReversed { amount }) => {
                let Some(r) = self.release else { return illegal };
                if amount != r.payout {
                    return Err(Error::InvalidAmount(format!(
                        "a reversal of {} is not the {} transfer: only a whole transfer is taken back",
                        amount.0, r.payout.0
                    )));
                }
                entries.post(Posting::transfer(Account::Payouts(r.contractor), Account::ContractorPayable(r.contractor), amount)?);
                self.state = S::PayoutHeld;
            }
            (S::PayoutHeld, E::DisputeResolved { refund }) => {
                if refund.0 != 0 {
                    return Err(Error::InvalidAmount(format!(
                        "the charge was released, so {} cannot be refunded out of escrow: resolve with 0 to pay the contractor again",
                        refund.0
                    )));
                }
                self.state = S::PayoutPending;
            }
            (S::Captured | S::Disputed | S::PayoutPending | S::PayoutHeld | S::PaidOut | S::Refunded, E::ProcessorFee { amount }) => {
                positive(amount, "a processor fee")?;
                entries.post(Posting::transfer(Account::PlatformRevenue, Account::ProcessorFees, amount)?);
            }
            (S::Captured | S::Disputed, E::Chargeback { amount }) => {
                positive(amount, "a chargeback")?;
                // The bank decided: a dispute open here is over.
                self.refund(amount, &mut entries)?;
            }
            (S::PayoutPending | S::PayoutHeld | S::PaidOut, E::Chargeback { amount }) => {
                positive(amount, "a chargeback")?;
                let left = self.captured.0 - self.refunded.0 - self.lost.0;
                if amount.0 > left {
                    return Err(Error::InvalidAmount(format!("a chargeback of {} is over the {left} charged and kept", amount.0)));
                }
                entries.post(Posting::transfer(Account::PlatformRevenue, Account::Refunds, amount)?);
                self.lost = Money(self.lost.0 + amount.0);
            }
            _ => return illegal,
        }
        Ok(entries)
    }

    /// `amount` back out of escrow (checked before anything changes); the
    /// payment is `Captured` after it — a dispute it settles is over — or
    /// `Refunded` once everything charged is back.
    fn refund(&mut self, amount: Money, entries: &mut Entries) -> Result<()> {
        let escrow = self.escrow();
        if amount > escrow {
            return Err(Error::InvalidAmount(format!("a refund of {} is over the {} in escrow", amount.0, escrow.0)));
        }
        entries.post(Posting::transfer(Account::Escrow(self.job), Account::Refunds, amount)?);
        self.refunded = Money(self.refunded.0 + amount.0);
        self.state = if self.refunded == self.captured { PaymentState::Refunded } else { PaymentState::Captured };
        Ok(())
    }
}

/// `Ok` when `amount` is above zero and at most [`MAX_AMOUNT`].
fn positive(amount: Money, what: &str) -> Result<()> {
    if amount.0 == 0 || amount > MAX_AMOUNT {
        return Err(Error::InvalidAmount(format!("{what} of {}: more than zero and at most {}", amount.0, MAX_AMOUNT.0)));
    }
    Ok(())
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
