//! A job's money through its actor: the hold before the first offer, a
//! declined card, a hold waiting for authentication, extras, the charge on
//! completion, a partial refund, a dispute, the payout after the dispute
//! window (on paused time), and a crash between a processor call and its record.

mod common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use common::*;
use dispatch_actors::engine::payment::{PaymentState, PaymentTerms};
use dispatch_actors::engine::{ContractorId, CustomerId, JobId, JobState, Money, Timestamp, Trade};
use dispatch_actors::payments::{Call, CardSaved, CardSetup, Outcome, PaymentProvider, ProviderError, SandboxProvider};
use dispatch_actors::storage::{MemoryStore, SnapshotStore, codec};
use dispatch_actors::{
    ActorError, Asker, Clock, Dispatch, DispatchConfig, EventKind, JobRequest, LogRecord, PaymentAct, PaymentNotice, PaymentsConfig,
};

const CUSTOMER: Asker = Asker::Customer(CustomerId(1));
const PRO: ContractorId = ContractorId(1);

/// A city whose processor is `provider`, with hours of paused time in mind.
fn config(provider: Arc<dyn PaymentProvider>) -> DispatchConfig {
    DispatchConfig {
        idle_hibernate_after: Duration::from_secs(30 * 24 * 3_600),
        surge_interval: Duration::from_secs(60),
        snapshot_interval: Duration::from_secs(60),
        job_ttl: Duration::from_secs(30 * 24 * 3_600),
        payments: Some(PaymentsConfig::with_provider(PaymentTerms::default(), provider)),
        ..fast_config()
    }
}

fn paying(method: &str) -> JobRequest {
    JobRequest { payment_method: Some(method.into()), ..request(downtown(), Trade::Plumbing) }
}

/// A job posted, taken by contractor 1 and completed (its charge captured).
async fn completed_job(city: &Dispatch) -> Result<JobId> {
    let mut events = city.subscribe();
    online(city, 1, Trade::Plumbing, 500.0).await?;
    let (job, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    wait_for(&mut events, |e| e.job == job && offered_to(e) == Some(PRO)).await?;
    city.accept(job, PRO).await?;
    city.en_route(job, PRO).await?;
    city.on_site(job, PRO).await?;
    city.complete(job, PRO).await?;
    Ok(job)
}

/// The job's payment notices in its log, in order.
async fn notices(store: &MemoryStore, job: JobId) -> Result<Vec<PaymentNotice>> {
    let mut out = Vec::new();
    for e in store.read_events(job.0, 1).await? {
        if let EventKind::Payment(n) = EventKind::from(codec::decode::<LogRecord>(&e.payload)?) {
            out.push(n);
        }
    }
    Ok(out)
}

#[tokio::test(start_paused = true)]
async fn journey_from_the_hold_through_extras_a_refund_and_a_dispute_to_the_payout_after_the_window() -> Result<()> {
    let sandbox = Arc::new(SandboxProvider::new());
    let store = Arc::new(MemoryStore::new());
    let start = Timestamp(1_795_420_800_000);
    let (city, _) = Dispatch::start_with_clock(config(sandbox.clone()), store.clone(), Clock::starting_at(start)).await?;
    let mut events = city.subscribe();
    online(&city, 1, Trade::Plumbing, 500.0).await?;

    // Posting holds the quote and the margin before anyone is offered the job.
    let (job, quote) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    let held = PaymentTerms::default().hold_for(quote.total);
    let paid = city.payment(job, CUSTOMER).await?;
    assert_eq!((paid.state, paid.held, paid.quote), (PaymentState::Authorized, held, quote.total));
    assert_eq!(sandbox.statement(job).open_holds, 1);
    wait_for(&mut events, |e| e.job == job && offered_to(e) == Some(PRO)).await?;
    city.accept(job, PRO).await?;
    city.en_route(job, PRO).await?;
    city.on_site(job, PRO).await?;

    // Extras: only the contractor proposes, only the customer answers; within the margin, no further hold.
    let extras = Money(held.0 - quote.total.0 - 100);
    let propose = PaymentAct::ProposeExtras { amount: extras, reason: "a new trap".into() };
    assert!(matches!(city.pay(job, CUSTOMER, propose.clone()).await, Err(ActorError::NotParty(..))));
    let proposed = city.pay(job, Asker::Contractor(PRO), propose).await?;
    assert_eq!(proposed.extras_proposed.map(|p| p.amount), Some(extras));
    assert!(matches!(city.pay(job, Asker::Contractor(PRO), PaymentAct::ApproveExtras).await, Err(ActorError::NotParty(..))));
    // The charge waits for the customer's answer.
    city.complete(job, PRO).await?;
    assert_eq!(city.payment(job, CUSTOMER).await?.state, PaymentState::Authorized);
    let approved = city.pay(job, CUSTOMER, PaymentAct::ApproveExtras).await?;
    let total = Money(quote.total.0 + extras.0);
    assert_eq!((approved.state, approved.charged, approved.extras_approved), (PaymentState::Captured, total, extras));
    let payout_at = approved.payout_at.expect("the payout is scheduled");
    assert_eq!(payout_at, Timestamp(city.clock().now().0 + 72 * 3_600_000));
    assert_eq!(sandbox.statement(job).holds, 1, "the extras fitted in the first hold");

    // A dispatcher's partial refund; the customer's dispute, inside the window; a dispatcher's resolution.
    assert!(matches!(city.pay(job, CUSTOMER, PaymentAct::Refund { amount: Money(1_000) }).await, Err(ActorError::NotParty(..))));
    let refunded = city.pay(job, Asker::Dispatcher, PaymentAct::Refund { amount: Money(1_000) }).await?;
    assert_eq!(refunded.refunded, Money(1_000));
    let too_much = city.pay(job, Asker::Dispatcher, PaymentAct::Refund { amount: total }).await;
    assert!(matches!(too_much, Err(ActorError::Payment(..))), "{too_much:?}");
    tokio::time::sleep(Duration::from_secs(24 * 3_600)).await;
    let disputed = city.pay(job, CUSTOMER, PaymentAct::OpenDispute { reason: "it leaks again".into() }).await?;
    assert_eq!(disputed.state, PaymentState::Disputed);
    // Past the window, the disputed charge is not paid out.
    tokio::time::sleep(Duration::from_secs(49 * 3_600)).await;
    assert_eq!(city.payment(job, CUSTOMER).await?.state, PaymentState::Disputed);
    assert_eq!(sandbox.statement(job).paid_out, Money(0));
    let resolved = city.pay(job, Asker::Dispatcher, PaymentAct::ResolveDispute { refund: Money(2_000) }).await?;
    assert_eq!(resolved.refunded, Money(3_000));

    // Resolved after the window: paid out at once, the fee kept; the job's actor then stops.
    eventually(|| async { sandbox.statement(job).paid_out.0 > 0 }).await?;
    let earned = Money(total.0 - 3_000);
    let fee = PaymentTerms::default().platform_fee(earned);
    let statement = sandbox.statement(job);
    assert_eq!(
        (statement.charges, statement.charged, statement.refunded, statement.paid_out),
        (1, total, Money(3_000), Money(earned.0 - fee.0))
    );
    eventually(|| async { city.live_counts().jobs == 0 }).await?;
    let receipt = city.payment(job, CUSTOMER).await?;
    assert_eq!((receipt.state, receipt.platform_fee, receipt.payout), (PaymentState::PaidOut, Some(fee), Some(Money(earned.0 - fee.0))));
    // The city's books reconcile with the processor's records, line for line, and balance.
    let books = city.books();
    assert_eq!(books.customer_funding, -(total.0 as i64), "charged");
    assert_eq!((books.refunds, books.payouts, books.platform_revenue), (3_000, (earned.0 - fee.0) as i64, fee.0 as i64));
    assert_eq!((books.escrow, books.contractor_payable, books.held, books.total()), (0, 0, 0, 0), "{books:?}");
    let days = city.earnings(PRO).await?;
    assert_eq!(
        (days.len(), days[0].gross, days[0].fee, days[0].paid, days[0].pending),
        (1, earned, fee, Money(earned.0 - fee.0), Money(0))
    );

    // The log tells the story, and the snapshot is final now.
    let said: Vec<&str> = notices(&store, job)
        .await?
        .iter()
        .map(|n| match n {
            PaymentNotice::Authorized { .. } => "authorized",
            PaymentNotice::ExtrasProposed { .. } => "extras_proposed",
            PaymentNotice::ExtrasApproved { .. } => "extras_approved",
            PaymentNotice::Captured { .. } => "captured",
            PaymentNotice::PayoutScheduled { .. } => "payout_scheduled",
            PaymentNotice::Refunded { .. } => "refunded",
            PaymentNotice::DisputeOpened { .. } => "dispute_opened",
            PaymentNotice::DisputeResolved { .. } => "dispute_resolved",
            PaymentNotice::PaidOut { .. } => "paid_out",
            _ => "",
        })
        .filter(|n| !n.is_empty())
        .collect();
    assert_eq!(
        said,
        [
            "authorized",
            "extras_proposed",
            "extras_approved",
            "captured",
            "payout_scheduled",
            "refunded",
            "dispute_opened",
            "refunded",
            "dispute_resolved",
            "paid_out"
        ]
    );
    assert!(matches!(city.pay(job, CUSTOMER, PaymentAct::RejectExtras).await, Err(ActorError::JobClosed(..))));
    city.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_declined_card_refuses_the_post_and_the_job_is_never_offered() -> Result<()> {
    let sandbox = Arc::new(SandboxProvider::new());
    let (city, store) = {
        let store = Arc::new(MemoryStore::new());
        (Dispatch::start(config(sandbox.clone()), store.clone() as Arc<dyn SnapshotStore>).await?.0, store)
    };
    online(&city, 1, Trade::Plumbing, 500.0).await?;
    let refused = city.post_job(paying("pm_card_chargeDeclined")).await;
    let Err(ActorError::PaymentDeclined(job, reason)) = refused else { anyhow::bail!("{refused:?}") };
    assert!(reason.contains("declined"), "{reason}");
    // Kept, cancelled with the reason, nothing held, nobody offered it.
    let snap = city.job(job).await?;
    assert!(matches!(snap.machine.state(), JobState::Cancelled { reason: r, .. } if *r == reason));
    assert_eq!(snap.payment.as_ref().map(|p| p.machine().state()), Some(PaymentState::Declined));
    assert_eq!(sandbox.statement(job).open_holds, 0);
    assert!(matches!(city.hold_refused(job).await, Err(ActorError::PaymentDeclined(..))), "a retry is refused alike");
    assert_eq!(city.contractor(PRO).await?.status, dispatch_actors::engine::ContractorStatus::Available);
    assert!(notices(&store, job).await?.iter().any(|n| matches!(n, PaymentNotice::Declined { .. })));
    eventually(|| async { city.live_counts().jobs == 0 }).await?;
    city.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_hold_waiting_for_authentication_is_offered_once_the_customer_confirms() -> Result<()> {
    let sandbox = Arc::new(SandboxProvider::new());
    let (city, store) = memory_city(config(sandbox.clone())).await?;
    let mut events = city.subscribe();
    online(&city, 1, Trade::Plumbing, 500.0).await?;
    let (job, _) = city.post_job(paying("pm_card_authenticationRequired")).await?;
    assert_eq!(city.payment(job, CUSTOMER).await?.state, PaymentState::AwaitingAction);
    let secret = notices(&store, job).await?.into_iter().find_map(|n| match n {
        PaymentNotice::ActionRequired { client_secret } => Some(client_secret),
        _ => None,
    });
    let intent = secret.as_deref().and_then(|s| s.strip_suffix("_secret")).expect("the app's client secret").to_owned();
    // Not offered meanwhile; confirming before the app authenticated changes nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(city.job(job).await?.machine.state(), JobState::Posted));
    assert_eq!(city.pay(job, CUSTOMER, PaymentAct::ConfirmHold).await?.state, PaymentState::AwaitingAction);
    // The app authenticates; the customer's confirm places the hold and the job is offered.
    sandbox.complete_action(&intent)?;
    assert!(matches!(city.pay(job, Asker::Contractor(PRO), PaymentAct::ConfirmHold).await, Err(ActorError::NotParty(..))));
    assert_eq!(city.pay(job, CUSTOMER, PaymentAct::ConfirmHold).await?.state, PaymentState::Authorized);
    wait_for(&mut events, |e| e.job == job && offered_to(e) == Some(PRO)).await?;
    city.shutdown().await;
    Ok(())
}

/// The sandbox, except that a capture is made and its answer never comes
/// back: the process is killed between the call and its record.
struct DiesAfterCapture {
    sandbox: Arc<SandboxProvider>,
    captured: tokio::sync::Notify,
}

#[dispatch_actors::payments::journal::async_trait]
impl PaymentProvider for DiesAfterCapture {
    fn name(&self) -> &'static str {
        "dies-after-capture"
    }
    async fn prepare(&self, call: &Call) -> Result<Outcome, ProviderError> {
        self.sandbox.prepare(call).await
    }
    async fn authorize(&self, call: &Call) -> Result<Outcome, ProviderError> {
        self.sandbox.authorize(call).await
    }
    async fn capture(&self, call: &Call) -> Result<Outcome, ProviderError> {
        self.sandbox.capture(call).await?;
        self.captured.notify_one();
        std::future::pending().await
    }
    async fn void(&self, call: &Call) -> Result<Outcome, ProviderError> {
        self.sandbox.void(call).await
    }
    async fn refund(&self, call: &Call) -> Result<Outcome, ProviderError> {
        self.sandbox.refund(call).await
    }
    async fn payout(&self, call: &Call) -> Result<Outcome, ProviderError> {
        self.sandbox.payout(call).await
    }
    async fn make_customer(&self, customer: CustomerId) -> Result<String, ProviderError> {
        self.sandbox.make_customer(customer).await
    }
    async fn save_card(&self, setup: &CardSetup) -> Result<CardSaved, ProviderError> {
        self.sandbox.save_card(setup).await
    }
    async fn confirm_card(&self, setup: &str) -> Result<CardSaved, ProviderError> {
        self.sandbox.confirm_card(setup).await
    }
    async fn make_payee(&self, contractor: ContractorId) -> Result<String, ProviderError> {
        self.sandbox.make_payee(contractor).await
    }
    async fn payee_status(&self, account: &str) -> Result<dispatch_actors::payments::PayeeStatus, ProviderError> {
        self.sandbox.payee_status(account).await
    }
    async fn confirm(&self, call: &Call) -> Result<Option<Outcome>, ProviderError> {
        self.sandbox.confirm(call).await
    }
}

#[tokio::test]
async fn killed_between_the_charge_and_its_record_the_restart_finishes_it_with_one_charge_and_one_record() -> Result<()> {
    let sandbox = Arc::new(SandboxProvider::new());
    let dying = Arc::new(DiesAfterCapture { sandbox: sandbox.clone(), captured: tokio::sync::Notify::new() });
    let store = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start(config(dying.clone()), store.clone() as Arc<dyn SnapshotStore>).await?;
    let mut events = city.subscribe();
    online(&city, 1, Trade::Plumbing, 500.0).await?;
    let (job, quote) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    wait_for(&mut events, |e| e.job == job && offered_to(e) == Some(PRO)).await?;
    for step in [dispatch_actors::engine::JobAction::Accept, dispatch_actors::engine::JobAction::EnRoute] {
        city.act(job, step, PRO).await?;
    }
    city.on_site(job, PRO).await?;
    city.complete(job, PRO).await?;
    dying.captured.notified().await;
    city.crash();
    assert_eq!(sandbox.statement(job).charges, 1);

    // The restart finds the capture's intent without an outcome, asks the processor, and records what it did.
    let (city, report) = Dispatch::start(config(sandbox.clone()), store.clone() as Arc<dyn SnapshotStore>).await?;
    assert_eq!(report.jobs, 1, "the charged job's money is not finished: its actor comes back");
    eventually(|| async { city.payment(job, CUSTOMER).await.is_ok_and(|p| p.state == PaymentState::Captured) }).await?;
    let statement = sandbox.statement(job);
    assert_eq!((statement.charges, statement.charged), (1, quote.total), "one charge");
    let captured = notices(&store, job).await?.iter().filter(|n| matches!(n, PaymentNotice::Captured { .. })).count();
    assert_eq!(captured, 1, "one record");
    assert!(city.payment(job, CUSTOMER).await?.payout_at.is_some(), "its payout is scheduled");
    city.shutdown().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_scheduled_job_is_held_a_day_before_its_window_and_a_long_hold_is_renewed() -> Result<()> {
    let sandbox = Arc::new(SandboxProvider::new());
    let start = Timestamp(1_795_420_800_000);
    let store: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start_with_clock(config(sandbox.clone()), store, Clock::starting_at(start)).await?;
    online(&city, 1, Trade::Plumbing, 500.0).await?;
    // Three days ahead: nothing is held at posting.
    let window = dispatch_actors::engine::TimeWindow::new(start.plus_secs(3 * 86_400), start.plus_secs(3 * 86_400 + 7_200))?;
    let scheduled = JobRequest { urgency: dispatch_actors::engine::Urgency::Scheduled(window), ..request(downtown(), Trade::Plumbing) };
    let (job, _) = city.post_job(scheduled).await?;
    assert_eq!(city.payment(job, CUSTOMER).await?.state, PaymentState::Quoted);
    tokio::time::sleep(Duration::from_secs(2 * 86_400 - 60)).await;
    assert_eq!(sandbox.statement(job).holds, 0, "not before a day ahead of the window");
    tokio::time::sleep(Duration::from_secs(120)).await;
    eventually(|| async { sandbox.statement(job).holds == 1 }).await?;
    assert_eq!(city.payment(job, CUSTOMER).await?.state, PaymentState::Authorized);

    // A today job accepted and left open for a week: its hold is placed afresh before Stripe's seven days run out.
    let (long, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    eventually(|| async { city.job(long).await.is_ok_and(|s| matches!(s.machine.state(), JobState::Offering { .. })) }).await?;
    city.accept(long, PRO).await?;
    tokio::time::sleep(Duration::from_secs(6 * 86_400 + 60)).await;
    eventually(|| async { sandbox.statement(long).holds == 2 }).await?;
    let statement = sandbox.statement(long);
    assert_eq!(statement.open_holds, 1, "the old hold is let go once the fresh one holds");
    assert_eq!(city.payment(long, CUSTOMER).await?.state, PaymentState::Authorized);
    city.shutdown().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_saved_card_holds_a_scheduled_job_off_session_and_posts_that_name_no_card() -> Result<()> {
    use dispatch_actors::CardOnFile;
    let sandbox = Arc::new(SandboxProvider::new());
    let store = Arc::new(MemoryStore::new());
    let start = Timestamp(1_795_420_800_000);
    let (city, _) = Dispatch::start_with_clock(config(sandbox.clone()), store.clone(), Clock::starting_at(start)).await?;
    let me = CustomerId(1);
    assert_eq!(city.card_on_file(me).await?, CardOnFile::None);
    assert!(matches!(city.confirm_card(me).await, Err(ActorError::Card(..))), "nothing waits to be confirmed");

    // A refused card is not kept.
    assert!(matches!(city.save_card(me, "pm_card_chargeDeclined".into()).await, Err(ActorError::CardDeclined(..))));
    assert_eq!(city.card_on_file(me).await?, CardOnFile::None);

    // A card that needs 3-D Secure waits until the customer has authenticated it.
    let secure = "pm_card_authenticationRequired".to_owned();
    let waiting = city.save_card(me, secure.clone()).await?;
    assert!(
        matches!(&waiting, CardOnFile::ActionRequired { payment_method, client_secret } if *payment_method == secure && !client_secret.is_empty())
    );
    assert_eq!(city.save_card(me, secure.clone()).await?, waiting, "asked again: the same setup, not a second one");
    assert_eq!(city.confirm_card(me).await?, waiting, "not authenticated yet");
    let setup = city.customer_record(me).await?.and_then(|r| r.pending).and_then(|p| p.setup).expect("the setup waiting");
    sandbox.complete_setup(&setup)?;
    assert_eq!(city.confirm_card(me).await?, CardOnFile::Saved { payment_method: secure });

    // Another card replaces it; the record counts its setups (each its own idempotency key).
    let mastercard = "pm_card_mastercard".to_owned();
    assert_eq!(city.save_card(me, mastercard.clone()).await?, CardOnFile::Saved { payment_method: mastercard.clone() });
    let record = city.customer_record(me).await?.expect("on file");
    assert_eq!((record.setups, record.pending, record.card.as_deref()), (3, None, Some("pm_card_mastercard")));
    let on_file = dispatch_actors::payments::Card { customer: record.processor_customer.clone(), payment_method: mastercard };
    assert!(on_file.customer.starts_with("cus_"), "{on_file:?}");

    // A scheduled job, posted with no card, is held a day ahead on the saved card, off-session.
    let window = dispatch_actors::engine::TimeWindow::new(start.plus_secs(2 * 86_400), start.plus_secs(2 * 86_400 + 7_200))?;
    let scheduled = JobRequest { urgency: dispatch_actors::engine::Urgency::Scheduled(window), ..request(downtown(), Trade::Plumbing) };
    let (job, _) = city.post_job(scheduled).await?;
    tokio::time::sleep(Duration::from_secs(86_400 + 60)).await;
    eventually(|| async { sandbox.statement(job).holds == 1 }).await?;
    assert_eq!(sandbox.cards(job), vec![on_file.clone()]);
    assert_eq!(sandbox.off_session(job), vec![true]);
    // A post naming another card is held on that one, on no customer's file.
    let (other, _) = city.post_job(paying("pm_card_visa")).await?;
    assert_eq!(sandbox.cards(other)[0].customer, "");
    assert_eq!(sandbox.cards(other)[0].payment_method, "pm_card_visa");
    assert_eq!(sandbox.off_session(other), vec![false], "posted for today: the customer is there");

    // The card on file is stored: a restart still has it; the open holds are in the books again.
    let books = city.books();
    assert!(books.held > 0, "{books:?}");
    city.crash();
    let (city, _) = Dispatch::start_with_clock(config(sandbox.clone()), store.clone(), Clock::starting_at(start)).await?;
    assert_eq!(city.books(), books);
    assert_eq!(city.card_on_file(me).await?, CardOnFile::Saved { payment_method: on_file.payment_method.clone() });
    let (later, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    assert_eq!(sandbox.cards(later), vec![on_file]);
    city.shutdown().await;

    // Without a processor there is nothing to save a card with.
    let off = DispatchConfig { payments: None, ..config(Arc::new(SandboxProvider::new())) };
    let (city, _) = Dispatch::start(off, Arc::new(MemoryStore::new()) as Arc<dyn SnapshotStore>).await?;
    assert!(matches!(city.save_card(me, "pm_card_visa".into()).await, Err(ActorError::Card(..))));
    city.shutdown().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_transfer_reversed_after_the_job_finished_reopens_its_money_for_a_dispatcher() -> Result<()> {
    use dispatch_actors::payments::webhook::Notice;
    let sandbox = Arc::new(SandboxProvider::new());
    let store = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start(config(sandbox.clone()), store.clone() as Arc<dyn SnapshotStore>).await?;
    let job = completed_job(&city).await?;
    tokio::time::sleep(Duration::from_secs(73 * 3_600)).await;
    eventually(|| async { city.live_counts().jobs == 0 }).await?;
    let sent = sandbox.statement(job).paid_out;
    assert!(sent.0 > 0);

    // The processor reports the transfer reversed; the sandbox names transfers after the payout call.
    let transfer = format!("tr_job-{}-payout-a1", job.0);
    let notice = Notice::PayoutReversed { event: "evt_r1".into(), transfer: transfer.clone(), amount: sent };
    assert_eq!(city.processor_notice(&notice).await?, Some(job));
    assert_eq!(city.processor_notice(&notice).await?, Some(job), "delivered twice");
    let elsewhere = Notice::PayoutReversed { event: "evt_r2".into(), transfer: "tr_elsewhere".into(), amount: sent };
    assert_eq!(city.processor_notice(&elsewhere).await?, None, "not this city's transfer");
    assert_eq!(city.payment(job, CUSTOMER).await?.state, PaymentState::PayoutHeld);
    let books = city.books();
    assert_eq!((books.payouts, books.contractor_payable, books.total()), (0, sent.0 as i64, 0), "owed again, once: {books:?}");
    assert_eq!(city.earnings(PRO).await?[0].paid, Money(0));
    // Nothing is sent again by itself.
    tokio::time::sleep(Duration::from_secs(3_600)).await;
    assert_eq!(sandbox.statement(job).paid_out, sent);

    // A dispatcher resolves it: the finished job's actor comes back and sends the payout again.
    let refund = city.pay(job, Asker::Dispatcher, PaymentAct::ResolveDispute { refund: Money(1) }).await;
    assert!(matches!(refund, Err(ActorError::Payment(..))), "nothing to refund out of a released charge: {refund:?}");
    city.pay(job, Asker::Dispatcher, PaymentAct::ResolveDispute { refund: Money(0) }).await?;
    eventually(|| async { sandbox.statement(job).paid_out == Money(2 * sent.0) }).await?;
    eventually(|| async { city.live_counts().jobs == 0 }).await?;
    assert_eq!(city.payment(job, CUSTOMER).await?.state, PaymentState::PaidOut);
    let books = city.books();
    assert_eq!((books.payouts, books.contractor_payable, books.total()), (sent.0 as i64, 0, 0), "{books:?}");
    assert_eq!(city.earnings(PRO).await?[0].paid, sent);
    let said = notices(&store, job).await?;
    assert_eq!(said.iter().filter(|n| matches!(n, PaymentNotice::PayoutReversed { .. })).count(), 1);
    assert_eq!(said.iter().filter(|n| matches!(n, PaymentNotice::PaidOut { .. })).count(), 2);
    city.shutdown().await;
    // A restart opens the stored jobs' balances: the same books, not empty ones.
    let (city, _) = Dispatch::start(config(sandbox.clone()), store.clone() as Arc<dyn SnapshotStore>).await?;
    assert_eq!(city.books(), books);
    city.shutdown().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_payout_waits_until_the_contractor_has_finished_their_payout_account() -> Result<()> {
    let sandbox = Arc::new(SandboxProvider::new());
    sandbox.payees_onboard(true);
    let store = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start(config(sandbox.clone()), store.clone() as Arc<dyn SnapshotStore>).await?;
    let job = completed_job(&city).await?;

    // The window passes: the payout is due, the account is made, and the payout waits for its onboarding.
    tokio::time::sleep(Duration::from_secs(73 * 3_600)).await;
    let account = city.payout_account(PRO).await?;
    assert!(!account.ready && account.onboarding_url.as_deref().is_some_and(|u| u.contains(&account.account)), "{account:?}");
    assert_eq!(city.payout_account(PRO).await?.account, account.account, "made once");
    assert_eq!(sandbox.statement(job).paid_out, Money(0));
    assert_eq!(city.payment(job, CUSTOMER).await?.state, PaymentState::Captured);

    // Finished at the link: the next look sends it, to that account.
    sandbox.finish_onboarding(&account.account);
    tokio::time::sleep(Duration::from_secs(3_600)).await;
    eventually(|| async { sandbox.statement(job).paid_out.0 > 0 }).await?;
    assert_eq!(city.payment(job, CUSTOMER).await?.state, PaymentState::PaidOut);
    let ready = city.payout_account(PRO).await?;
    assert_eq!((ready.account, ready.ready, ready.onboarding_url), (account.account, true, None));
    let stored = store.get(dispatch_actors::storage::Kind::Payee, PRO.0).await?.expect("stored");
    assert!(codec::decode::<dispatch_actors::PayeeRecord>(&stored)?.ready);
    city.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_job_restarted_with_payments_off_keeps_its_payment() -> Result<()> {
    let sandbox = Arc::new(SandboxProvider::new());
    let store = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start(config(sandbox), store.clone() as Arc<dyn SnapshotStore>).await?;
    let (job, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    assert_eq!(city.payment(job, CUSTOMER).await?.state, PaymentState::Authorized);
    city.crash();
    // Restarted without a processor: the job goes on, its money is kept for when one is back.
    let off = DispatchConfig { payments: None, ..config(Arc::new(SandboxProvider::new())) };
    let (city, report) = Dispatch::start(off, store as Arc<dyn SnapshotStore>).await?;
    assert_eq!(report.jobs, 1);
    let mut events = city.subscribe();
    online(&city, 1, Trade::Plumbing, 500.0).await?;
    wait_for(&mut events, |e| e.job == job && offered_to(e) == Some(PRO)).await?;
    city.accept(job, PRO).await?;
    assert_eq!(city.payment(job, CUSTOMER).await?.state, PaymentState::Authorized, "stored with the accept");
    city.shutdown().await;
    Ok(())
}
