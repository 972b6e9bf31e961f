//! A job's money, run by its actor beside the job's lifecycle.
//!
//! One function, [`JobActorState::advance`], decides the next money step
//! from where the job and its payment stand, and takes it:
//!
//! | job | payment | step |
//! |---|---|---|
//! | posted | quoted, hold due | place the hold (emergency and today jobs at once; scheduled ones a day before the window) |
//! | posted | authorized | search (a job is offered only once its hold is on) |
//! | completed | authorized, no extras waiting | charge the approved total, schedule the payout |
//! | cancelled or expired | authorized or waiting for the customer | let the hold go |
//! | open | authorized | renew the hold a day before the processor lets it lapse (7 days at Stripe) |
//! | any | charged | pay out once the dispute window has passed |
//! | finished | closed | stop the actor |
//!
//! A job's actor lives until both the job and its money are finished.
//!
//! Every processor call is a durable call (`dispatch_payments::journal`):
//! its intent and its outcome are entries of the job's event log
//! ([`LogRecord::PaymentCall`]), written through [`LogJournal`], and each
//! goes to the job's parties as a payment notice. A call that gets no answer
//! leaves its intent; the job then takes no new money step until
//! [`JobActorState::reconcile`] has finished it under the same key — at
//! once after a restart, and every [`PaymentsConfig::retry_after`] while
//! the processor is away.
//!
//! [`PaymentsConfig::retry_after`]: crate::config::PaymentsConfig::retry_after

use async_trait::async_trait;
use dispatch_engine::payment::{PaymentState, Receipt, timing};
use dispatch_engine::{ContractorId, JobId, JobState, JobStateKind, Money, Timestamp};
use dispatch_payments::journal::{JournalEntry, JournalError, PaymentJournal};
use dispatch_payments::{Hold, JobPayment, PaymentError, Via};
use dispatch_storage::{Kind, codec};
use ractor::ActorRef;
use std::sync::Arc;

use super::{JobActorState, JobMsg};
use crate::error::{ActorError, Result};
use crate::parties::Asker;
use crate::record::{JobSnapshot, LogRecord, PaymentRecord};
use crate::shared::Shared;

/// A job's payment journal: its event log.
pub(crate) struct LogJournal<'a> {
    shared: &'a Shared,
    job: JobId,
}

#[async_trait]
impl PaymentJournal for LogJournal<'_> {
    async fn write(&self, entry: JournalEntry) -> std::result::Result<(), JournalError> {
        self.shared.log_event(self.job, LogRecord::PaymentCall(entry)).await.map(drop).map_err(|e| JournalError(e.to_string()))
    }
}

/// What a party asks of a job's money.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentAct {
    /// The customer completed the hold's authentication in the app.
    ConfirmHold,
    /// The contractor asks for `amount` more (materials, extra hours), for `reason`.
    ProposeExtras {
        /// How much more.
        amount: Money,
        /// What for.
        reason: String,
    },
    /// The customer approves the extras proposed.
    ApproveExtras,
    /// The customer turns them down.
    RejectExtras,
    /// The customer disputes the charge, inside the dispute window.
    OpenDispute {
        /// Why.
        reason: String,
    },
    /// A dispatcher gives `amount` back to the customer.
    Refund {
        /// How much.
        amount: Money,
    },
    /// A dispatcher settles a dispute: `refund` back, the rest paid out.
    ResolveDispute {
        /// How much goes back.
        refund: Money,
    },
}

impl PaymentAct {
    /// Who may ask it: the job's customer, its contractor, or a dispatcher.
    fn check(&self, snap: &JobSnapshot, asker: Asker) -> Result<()> {
        let job = snap.job.id;
        let ok = match (self, asker) {
            (PaymentAct::ProposeExtras { .. }, Asker::Contractor(c)) => crate::parties::assigned_to(snap.machine.state()) == Some(c),
            (
                PaymentAct::ConfirmHold | PaymentAct::ApproveExtras | PaymentAct::RejectExtras | PaymentAct::OpenDispute { .. },
                Asker::Customer(c),
            ) => snap.job.customer == c,
            (PaymentAct::Refund { .. } | PaymentAct::ResolveDispute { .. }, Asker::Dispatcher) => true,
            _ => false,
        };
        if ok { Ok(()) } else { Err(ActorError::NotParty(job, format!("you may not {} on job {}", self.name(), job.0))) }
    }

    /// Its name on the wire.
    const fn name(&self) -> &'static str {
        match self {
            PaymentAct::ConfirmHold => "confirm_payment",
            PaymentAct::ProposeExtras { .. } => "propose_extras",
            PaymentAct::ApproveExtras => "approve_extras",
            PaymentAct::RejectExtras => "reject_extras",
            PaymentAct::OpenDispute { .. } => "open_dispute",
            PaymentAct::Refund { .. } => "refund",
            PaymentAct::ResolveDispute { .. } => "resolve_dispute",
        }
    }
}

/// A payment's receipt.
pub(crate) fn receipt(pay: &JobPayment) -> Receipt {
    pay.machine().receipt(pay.captured_at())
}

/// A posted job whose actor did not answer on its hold: refused if its
/// stored payment was declined, else `Unavailable` (it stays posted, and its
/// hold goes on).
pub(crate) async fn declined_or_posted(shared: &Shared, id: JobId) -> Result<()> {
    let stored = shared.store.get(Kind::Job, id.0).await?.map(|blob| codec::decode::<JobSnapshot>(&blob)).transpose()?;
    match stored.as_ref().and_then(JobSnapshot::declined) {
        Some(reason) => Err(ActorError::PaymentDeclined(id, reason)),
        None => Err(ActorError::Unavailable(format!("job {id}: no answer on its payment in time; it stays posted"))),
    }
}

/// Whether the payment's state lets the job be offered.
pub(super) fn may_search(pay: Option<&JobPayment>) -> bool {
    pay.is_none_or(|p| p.machine().state() != PaymentState::Quoted && p.machine().state() != PaymentState::AwaitingAction)
}

impl JobActorState {
    /// Runs `step` on the job's payment through the processor and the job's
    /// journal, then stores the snapshot. A call without an answer marks the
    /// payment for reconciliation and retries it later.
    async fn money<T>(
        &mut self,
        myself: &ActorRef<JobMsg>,
        step: impl AsyncFnOnce(&mut JobPayment, Via<'_>, Timestamp) -> std::result::Result<T, PaymentError>,
    ) -> Result<T> {
        // The processor first: a job whose payment cannot be worked on keeps it.
        let Some(processor) = self.shared.processor.clone() else { return Err(ActorError::NoPayment(self.id())) };
        let Some(mut pay) = self.snap.payment.take() else { return Err(ActorError::NoPayment(self.id())) };
        let now = self.shared.clock.now();
        let journal = LogJournal { shared: &self.shared, job: self.id() };
        let result = step(&mut pay, Via { provider: &*processor, journal: &journal }, now).await;
        self.shared.keep_books(self.id(), &mut pay);
        self.snap.payment = Some(pay);
        if let Err(PaymentError::Call(e)) = &result {
            tracing::warn!(job = %self.id(), %e, "payment call unfinished; reconciling later");
            self.reconcile_due = true;
            let retry = self.retry_after();
            self.timer(myself, retry, || JobMsg::Reconcile);
        }
        self.store_money().await;
        result.map_err(|e| ActorError::Payment(self.id(), e))
    }

    fn retry_after(&self) -> std::time::Duration {
        self.shared.config.payments.as_ref().map_or(std::time::Duration::from_secs(30), |p| p.retry_after)
    }

    /// Stores the snapshot after a money step (the step's entries are in the
    /// log already), and shows the payment on the city's map.
    async fn store_money(&mut self) {
        self.map();
        let Ok(stored) = self.stored() else { return };
        let result = if stored.last {
            self.shared.store.put_final(stored.kind, stored.id, stored.blob).await
        } else {
            self.shared.store.put(stored.kind, stored.id, stored.blob).await
        };
        if let Err(e) = result {
            // The log holds every outcome: a restart settles them on the snapshot last stored.
            tracing::warn!(job = %self.id(), %e, "payment snapshot not stored; the log has its steps");
        }
    }

    /// Logs a payment step without a processor call, with the snapshot, in one commit.
    async fn log_money(&mut self, record: PaymentRecord) -> Result<()> {
        let stored = self.stored()?;
        self.shared.log_event_with(self.id(), LogRecord::Payment(record), vec![stored], None).await.map(drop)
    }

    /// Takes the job's next money step, if one is due (the table in the
    /// module's docs); stops the actor once the job and its money are finished.
    pub(super) async fn advance(&mut self, myself: &ActorRef<JobMsg>) {
        if !self.reconcile_due {
            self.money_step(myself).await;
        }
        if self.snap.is_final() {
            myself.stop(Some("finished".into()));
        }
    }

    async fn money_step(&mut self, myself: &ActorRef<JobMsg>) {
        let Some(pay) = &self.snap.payment else { return };
        let (state, job) = (pay.machine().state(), self.state().clone());
        let now = self.shared.clock.now();
        let waiting = pay.machine().proposal().is_some();
        match (&job, state) {
            (JobState::Posted, PaymentState::Quoted) => {
                let due = timing::hold_at(&self.snap.job.urgency, self.snap.job.posted_at);
                if now < due {
                    self.timer(myself, self.shared.clock.until(due), || JobMsg::Advance);
                    return;
                }
                let off_session = due > self.snap.job.posted_at;
                match self.money(myself, async |pay, via, now| pay.hold(via, now, off_session).await).await {
                    Ok(Hold::Placed) => {
                        self.renew_hold(myself).await;
                        self.search(myself).await;
                    }
                    Ok(Hold::ActionRequired { .. }) | Err(_) => {}
                    Ok(Hold::Declined { reason }) => self.refuse_for_payment(myself, reason).await,
                }
            }
            (JobState::Completed { contractor }, PaymentState::Authorized) if !waiting => {
                let contractor = *contractor;
                self.snap.payee = Some(contractor);
                if self.money(myself, async |pay, via, now| pay.complete(via, now).await).await.is_ok() {
                    self.schedule_payout(myself).await;
                }
            }
            (JobState::Cancelled { .. } | JobState::Expired, PaymentState::Authorized | PaymentState::AwaitingAction) => {
                // The fee of a late cancellation was charged by the cancel itself; what is left is let go.
                let _ = self.money(myself, async |pay, via, now| pay.cancel(via, JobStateKind::Posted, now).await).await;
            }
            (_, PaymentState::Captured | PaymentState::PayoutPending) => self.pay_out(myself).await,
            (
                JobState::Posted
                | JobState::Offering { .. }
                | JobState::Accepted { .. }
                | JobState::EnRoute { .. }
                | JobState::OnSite { .. },
                PaymentState::Authorized,
            ) => {
                self.renew_hold(myself).await;
            }
            _ => {}
        }
    }

    /// A hold about to expire at the processor (a job that waits for its
    /// window, or runs long) is placed afresh; the timer comes back for the next.
    async fn renew_hold(&mut self, myself: &ActorRef<JobMsg>) {
        let Some(held_at) = self.snap.payment.as_ref().and_then(JobPayment::held_at) else { return };
        if self.shared.clock.now() >= timing::renew_at(held_at) {
            match self.money(myself, async |pay, via, now| pay.renew_if_due(via, now).await).await {
                Ok(true) => tracing::info!(job = %self.id(), "hold renewed"),
                Ok(false) => {}
                Err(e) => tracing::warn!(job = %self.id(), %e, "hold not renewed"),
            }
        }
        if let Some(held_at) = self.snap.payment.as_ref().and_then(JobPayment::held_at) {
            self.timer(myself, self.shared.clock.until(timing::renew_at(held_at)), || JobMsg::Advance);
        }
    }

    /// Logs when the charge will be paid out, and sets the timer for it.
    async fn schedule_payout(&mut self, myself: &ActorRef<JobMsg>) {
        let Some(at) = self.snap.payment.as_ref().and_then(|p| p.captured_at().map(|c| timing::release_at(c, p.machine().terms()))) else {
            return;
        };
        if let Err(e) = self.log_money(PaymentRecord::PayoutScheduled { at }).await {
            tracing::warn!(job = %self.id(), %e, "payout schedule not logged");
        }
        self.timer(myself, self.shared.clock.until(at), || JobMsg::Advance);
        if let Some(payee) = self.snap.payee {
            self.tell_earnings(payee).await;
        }
    }

    /// Pays the charge out to the payee once the dispute window has passed.
    async fn pay_out(&mut self, myself: &ActorRef<JobMsg>) {
        let Some(payee) = self.snap.payee else {
            tracing::warn!(job = %self.id(), "charged with nobody to pay out to");
            return;
        };
        let destination = match crate::payees::payout_account(&self.shared, payee).await {
            Ok(account) if account.ready => account.account,
            Ok(_) => {
                tracing::info!(job = %self.id(), contractor = %payee, "payout waits for the contractor to finish their payout account");
                self.timer(myself, PAYEE_RECHECK, || JobMsg::Advance);
                return;
            }
            Err(e) => {
                tracing::warn!(job = %self.id(), contractor = %payee, %e, "payout account not read; retrying");
                let retry = self.retry_after();
                self.timer(myself, retry, || JobMsg::Advance);
                return;
            }
        };
        match self.money(myself, async |pay, via, now| pay.pay_out(via, payee, &destination, now).await).await {
            Err(ActorError::Payment(_, PaymentError::NotDue(at))) => self.timer(myself, self.shared.clock.until(at), || JobMsg::Advance),
            Err(ActorError::Payment(_, PaymentError::Refused(_))) => {} // disputed: the dispatcher's resolution moves it on
            Err(e) => tracing::debug!(job = %self.id(), %e, "payout not sent"),
            Ok(()) => self.tell_earnings(payee).await,
        }
    }

    /// The card refused the hold: the job is called off with the reason the customer sees.
    async fn refuse_for_payment(&mut self, myself: &ActorRef<JobMsg>, reason: String) {
        let why = format!("payment declined: {reason}");
        let event = dispatch_engine::JobEvent::Cancelled { by: dispatch_engine::Party::System, reason: why.clone() };
        if let Err(e) = self.transition(event, LogRecord::Cancelled { by: dispatch_engine::Party::System, reason: why }).await {
            tracing::warn!(job = %self.id(), %e, "declined job's cancellation not stored; retrying");
            self.timer(myself, std::time::Duration::from_secs(1), || JobMsg::Advance);
        }
    }

    /// Finishes every call the journal left in flight, settles what the log
    /// holds beyond the stored snapshot, then moves the money on.
    pub(super) async fn reconcile(&mut self, myself: &ActorRef<JobMsg>) {
        if self.snap.payment.is_none() {
            self.reconcile_due = false;
            return;
        }
        let entries = match self.journal_entries().await {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(job = %self.id(), %e, "payment journal not read; retrying");
                let retry = self.retry_after();
                self.timer(myself, retry, || JobMsg::Reconcile);
                return;
            }
        };
        self.reconcile_due = false;
        let charged_before = self.charged();
        match self.money(myself, async |pay, via, now| pay.recover(via, &entries, now).await).await {
            Ok(settled) if settled > 0 => tracing::info!(job = %self.id(), settled, "payment calls reconciled"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(job = %self.id(), %e, "payment calls not reconciled");
                return;
            }
        }
        if !charged_before && self.charged() {
            // The charge the restart finished still needs its payout scheduled.
            self.schedule_payout(myself).await;
        }
        self.advance(myself).await;
    }

    fn charged(&self) -> bool {
        self.snap.payment.as_ref().is_some_and(|p| p.captured_at().is_some())
    }

    async fn journal_entries(&self) -> Result<Vec<JournalEntry>> {
        let mut entries = Vec::new();
        for e in self.shared.store.read_events(self.id().0, 1).await? {
            if let LogRecord::PaymentCall(entry) = codec::decode::<LogRecord>(&e.payload)? {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// What the post's customer is told of the first hold: declined is a refusal.
    pub(super) fn hold_answer(&self) -> Result<()> {
        self.snap.declined().map_or(Ok(()), |reason| Err(ActorError::PaymentDeclined(self.id(), reason)))
    }

    /// A cancellation's money, from the state the job was in: the hold let
    /// go, or the cancellation fee charged for `contractor`, who was on the way.
    pub(super) async fn cancel_money(&mut self, myself: &ActorRef<JobMsg>, was: JobStateKind, contractor: Option<ContractorId>) {
        let open = self
            .snap
            .payment
            .as_ref()
            .is_some_and(|p| matches!(p.machine().state(), PaymentState::Authorized | PaymentState::AwaitingAction));
        if !open || self.reconcile_due {
            return;
        }
        self.snap.payee = contractor;
        let _ = self.money(myself, async |pay, via, now| pay.cancel(via, was, now).await).await;
        if self.snap.payment.as_ref().is_some_and(|p| p.machine().state() == PaymentState::Captured) {
            self.schedule_payout(myself).await;
        }
    }

    /// A party's request on the job's money; the payment as it then stands.
    pub(super) async fn pay(&mut self, myself: &ActorRef<JobMsg>, asker: Asker, act: PaymentAct) -> Result<Receipt> {
        act.check(&self.snap, asker)?;
        if self.snap.payment.is_none() {
            return Err(ActorError::NoPayment(self.id()));
        }
        if self.reconcile_due {
            return Err(ActorError::Unavailable(format!("job {}: a payment call is being finished; retry", self.id().0)));
        }
        match act {
            PaymentAct::ConfirmHold => {
                let hold = self.money(myself, async |pay, via, now| pay.refresh_hold(via, now).await).await?;
                match hold {
                    Hold::Placed => self.search(myself).await,
                    Hold::Declined { reason } => self.refuse_for_payment(myself, reason).await,
                    Hold::ActionRequired { .. } => {}
                }
            }
            PaymentAct::ProposeExtras { amount, reason } => {
                if !matches!(self.state(), JobState::Accepted { .. } | JobState::EnRoute { .. } | JobState::OnSite { .. }) {
                    return Err(ActorError::Payment(
                        self.id(),
                        PaymentError::Refused(dispatch_engine::Error::InvalidAmount(
                            "extras are proposed before the job is completed".into(),
                        )),
                    ));
                }
                self.offline_step(|pay| pay.propose_extras(amount, reason.clone()))?;
                self.log_money(PaymentRecord::ExtrasProposed { amount, reason }).await?;
            }
            PaymentAct::ApproveExtras => {
                self.money(myself, async |pay, via, now| pay.approve_extras(via, now).await).await?;
                let total = self.snap.payment.as_ref().map_or(Money(0), |p| p.machine().capture_due());
                self.log_money(PaymentRecord::ExtrasApproved { total }).await?;
            }
            PaymentAct::RejectExtras => {
                self.offline_step(JobPayment::reject_extras)?;
                self.log_money(PaymentRecord::ExtrasRejected).await?;
            }
            PaymentAct::OpenDispute { reason } => {
                let now = self.shared.clock.now();
                self.offline_step(|pay| pay.open_dispute(now))?;
                self.log_money(PaymentRecord::DisputeOpened { reason }).await?;
            }
            PaymentAct::Refund { amount } => {
                self.money(myself, async |pay, via, now| pay.refund(via, amount, now).await).await?;
                if let Some(payee) = self.snap.payee {
                    self.tell_earnings(payee).await;
                }
            }
            PaymentAct::ResolveDispute { refund } => {
                self.money(myself, async |pay, via, now| pay.resolve_dispute(via, refund, now).await).await?;
                self.log_money(PaymentRecord::DisputeResolved { refund }).await?;
            }
        }
        self.advance(myself).await;
        self.view()
    }

    /// A chargeback or a reversed transfer the processor reported (a
    /// webhook): applied once however often it is delivered; whether it changed anything.
    pub(super) async fn reported(&mut self, myself: &ActorRef<JobMsg>, report: dispatch_payments::Report) -> Result<bool> {
        let mut applied = false;
        self.offline_step(|pay| {
            applied = pay.report(&report)?;
            Ok(())
        })?;
        if applied {
            self.log_money(report.into()).await?;
            if let Some(payee) = self.snap.payee {
                self.tell_earnings(payee).await;
            }
        }
        self.advance(myself).await;
        Ok(applied)
    }

    /// A step the processor has no part in, on a copy: the payment changes only if it is legal.
    fn offline_step(&mut self, step: impl FnOnce(&mut JobPayment) -> std::result::Result<(), PaymentError>) -> Result<()> {
        let job = self.id();
        let mut next = self.snap.payment.clone().ok_or(ActorError::NoPayment(job))?;
        step(&mut next).map_err(|e| ActorError::Payment(job, e))?;
        self.shared.keep_books(job, &mut next);
        self.snap.payment = Some(next);
        Ok(())
    }

    /// The payment as it stands.
    pub(super) fn view(&self) -> Result<Receipt> {
        self.snap.payment.as_ref().map(receipt).ok_or(ActorError::NoPayment(self.id()))
    }

    /// Tells the payee's actor what this job earned them, for their statement.
    async fn tell_earnings(&self, payee: ContractorId) {
        tell_earnings(&self.shared, self.id(), self.snap.payment.as_ref(), payee).await;
    }
}

/// Tells `payee`'s actor `job`'s earning line as its payment now stands, for their statement.
pub(crate) async fn tell_earnings(shared: &Arc<Shared>, job: JobId, pay: Option<&JobPayment>, payee: ContractorId) {
    let Some(line) = pay.and_then(|p| p.captured_at().and_then(|at| p.machine().earning(job, at))) else { return };
    match crate::dispatcher::activate(shared, payee).await {
        Ok(actor) => {
            let _ = actor.cast(crate::contractor::ContractorMsg::Earned(line));
        }
        Err(e) => tracing::warn!(%job, contractor = %payee, %e, "earnings not recorded"),
    }
}

/// How often a payout waiting for its contractor's payout account asks again.
const PAYEE_RECHECK: std::time::Duration = std::time::Duration::from_secs(3_600);
