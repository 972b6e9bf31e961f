use dispatch_engine::payment::{Account, Ledger};

use super::*;
use crate::journal::in_flight;
use crate::journal::tests::Memory;
use crate::sandbox::{SandboxProvider, Statement};

const JOB: JobId = JobId(42);
const PRO: ContractorId = ContractorId(7);
const HOUR_MS: i64 = 3_600_000;

fn payment(payment_method: &str) -> JobPayment {
    let card = Card { customer: "cus_1".into(), payment_method: payment_method.into() };
    JobPayment::new(JOB, Money(10_000), PaymentTerms::default(), card).unwrap()
}

fn at(hours: i64) -> Timestamp {
    Timestamp(1_800_000_000_000 + hours * HOUR_MS)
}

/// The city's ledger after every entry `payment` made.
fn ledger_of(payment: &mut JobPayment, ledger: &mut Ledger) {
    for entries in payment.take_entries() {
        ledger.record(&entries).unwrap();
    }
}

#[tokio::test]
async fn a_job_from_hold_through_extras_a_refund_and_a_dispute_to_its_payout() {
    let (sandbox, journal, mut ledger) = (SandboxProvider::new(), Memory::default(), Ledger::new());
    let mut pay = payment("pm_card_visa");
    assert_eq!(pay.hold(Via { provider: &sandbox, journal: &journal }, at(0), false).await.unwrap(), Hold::Placed);
    assert_eq!(pay.machine().held(), Money(12_000));

    // Extras beyond the hold: a fresh hold for the whole 13 000, the first let go.
    pay.propose_extras(Money(3_000), "a new valve".into()).unwrap();
    assert_eq!(pay.approve_extras(Via { provider: &sandbox, journal: &journal }, at(1)).await.unwrap(), Hold::Placed);
    assert_eq!((pay.machine().held(), pay.machine().capture_due()), (Money(13_000), Money(13_000)));

    pay.complete(Via { provider: &sandbox, journal: &journal }, at(2)).await.unwrap();
    pay.refund(Via { provider: &sandbox, journal: &journal }, Money(2_000), at(3)).await.unwrap();
    pay.open_dispute(at(4)).unwrap();
    assert!(
        pay.pay_out(Via { provider: &sandbox, journal: &journal }, PRO, "acct_7", at(100)).await.is_err(),
        "nothing is paid while disputed"
    );
    pay.resolve_dispute(Via { provider: &sandbox, journal: &journal }, Money(1_000), at(5)).await.unwrap();
    // The window is 72 h from the charge at hour 2.
    assert_eq!(pay.pay_out(Via { provider: &sandbox, journal: &journal }, PRO, "acct_7", at(73)).await, Err(PaymentError::NotDue(at(74))));
    pay.pay_out(Via { provider: &sandbox, journal: &journal }, PRO, "acct_7", at(74)).await.unwrap();
    assert_eq!(pay.machine().state(), PaymentState::PaidOut);

    // Earned 13 000 − 3 000 = 10 000; fee 290; paid 9 710 — at the processor and in the ledger alike.
    assert_eq!(
        sandbox.statement(JOB),
        Statement { holds: 2, open_holds: 0, charges: 1, charged: Money(13_000), refunded: Money(3_000), paid_out: Money(9_710) }
    );
    ledger_of(&mut pay, &mut ledger);
    assert_eq!(ledger.balance(Account::CustomerFunding), -13_000);
    assert_eq!(ledger.balance(Account::Refunds), 3_000);
    assert_eq!(ledger.balance(Account::PlatformRevenue), 290);
    assert_eq!(ledger.balance(Account::Payouts(PRO)), 9_710);
    assert_eq!((ledger.balance(Account::Escrow(JOB)), ledger.held(JOB), ledger.total()), (0, Money(0), 0));
    assert!(in_flight(&journal.entries()).is_empty(), "every call recorded");

    // A dispute after the window is refused.
    let sandbox = SandboxProvider::new();
    let mut late = payment("pm_card_visa");
    late.hold(Via { provider: &sandbox, journal: &Memory::default() }, at(0), false).await.unwrap();
    late.complete(Via { provider: &sandbox, journal: &Memory::default() }, at(1)).await.unwrap();
    assert!(matches!(late.open_dispute(at(73)), Err(PaymentError::WindowClosed(_))));
}

#[tokio::test]
async fn a_declined_card_an_authentication_and_a_refused_further_hold() {
    let (sandbox, journal) = (SandboxProvider::new(), Memory::default());
    let mut declined = payment("pm_card_chargeDeclined");
    assert!(matches!(declined.hold(Via { provider: &sandbox, journal: &journal }, at(0), false).await.unwrap(), Hold::Declined { .. }));
    assert_eq!(declined.machine().state(), PaymentState::Declined);

    let sandbox = SandboxProvider::new();
    let mut secure = payment("pm_card_authenticationRequired");
    let Hold::ActionRequired { client_secret } = secure.hold(Via { provider: &sandbox, journal: &journal }, at(0), false).await.unwrap()
    else {
        panic!("3-D Secure")
    };
    assert_eq!(secure.machine().state(), PaymentState::AwaitingAction);
    assert!(
        matches!(secure.refresh_hold(Via { provider: &sandbox, journal: &journal }, at(0)).await.unwrap(), Hold::ActionRequired { .. }),
        "not yet"
    );
    sandbox.complete_action(client_secret.trim_end_matches("_secret")).unwrap();
    assert_eq!(secure.refresh_hold(Via { provider: &sandbox, journal: &journal }, at(1)).await.unwrap(), Hold::Placed);
    assert_eq!(secure.machine().state(), PaymentState::Authorized);

    // A further hold the card refuses: the extras it would have covered are dropped, the first hold stays.
    let sandbox = SandboxProvider::new();
    let mut extras = payment("pm_card_visa");
    extras.hold(Via { provider: &sandbox, journal: &journal }, at(0), false).await.unwrap();
    extras.propose_extras(Money(5_000), "materials".into()).unwrap();
    sandbox.then(crate::sandbox::Behaviour::Fail);
    assert!(
        matches!(extras.approve_extras(Via { provider: &sandbox, journal: &journal }, at(1)).await, Err(PaymentError::Call(_))),
        "the processor was down"
    );
    let mut extras = payment("pm_card_visa");
    let sandbox = SandboxProvider::new();
    extras.hold(Via { provider: &sandbox, journal: &journal }, at(0), false).await.unwrap();
    extras.propose_extras(Money(5_000), "materials".into()).unwrap();
    sandbox.then(crate::sandbox::Behaviour::Decline);
    sandbox.then(crate::sandbox::Behaviour::Decline);
    assert!(matches!(extras.approve_extras(Via { provider: &sandbox, journal: &journal }, at(1)).await.unwrap(), Hold::Declined { .. }));
    assert_eq!((extras.machine().held(), extras.machine().capture_due()), (Money(12_000), Money(12_000)));
    extras.complete(Via { provider: &sandbox, journal: &journal }, at(2)).await.unwrap();
    assert_eq!(sandbox.statement(JOB).charged, Money(12_000));
}

#[tokio::test]
async fn cancellations_void_or_charge_the_fee_and_old_holds_are_renewed() {
    let (sandbox, journal) = (SandboxProvider::new(), Memory::default());
    let mut early = payment("pm_card_visa");
    early.hold(Via { provider: &sandbox, journal: &journal }, at(0), false).await.unwrap();
    early.cancel(Via { provider: &sandbox, journal: &journal }, JobStateKind::Accepted, at(1)).await.unwrap();
    assert_eq!(early.machine().state(), PaymentState::Voided);
    assert_eq!(sandbox.statement(JOB).charges, 0);

    let sandbox = SandboxProvider::new();
    let mut late = payment("pm_card_visa");
    late.hold(Via { provider: &sandbox, journal: &journal }, at(0), false).await.unwrap();
    late.cancel(Via { provider: &sandbox, journal: &journal }, JobStateKind::EnRoute, at(1)).await.unwrap();
    assert_eq!((late.machine().state(), late.machine().captured()), (PaymentState::Captured, Money(2_500)));
    assert_eq!(sandbox.statement(JOB).charged, Money(2_500));

    // A hold six days old is renewed off-session: a fresh one, the old let go, the amount unchanged.
    let sandbox = SandboxProvider::new();
    let mut long = payment("pm_card_visa");
    long.hold(Via { provider: &sandbox, journal: &journal }, at(0), false).await.unwrap();
    assert!(!long.renew_if_due(Via { provider: &sandbox, journal: &journal }, at(6 * 24 - 1)).await.unwrap());
    assert!(long.renew_if_due(Via { provider: &sandbox, journal: &journal }, at(6 * 24)).await.unwrap());
    assert_eq!(long.machine().held(), Money(12_000));
    assert!(
        !long.renew_if_due(Via { provider: &sandbox, journal: &journal }, at(6 * 24 + 1)).await.unwrap(),
        "not again until the fresh one ages"
    );
    long.complete(Via { provider: &sandbox, journal: &journal }, at(6 * 24 + 2)).await.unwrap();
    assert_eq!(
        sandbox.statement(JOB),
        Statement { holds: 2, open_holds: 0, charges: 1, charged: Money(10_000), refunded: Money(0), paid_out: Money(0) }
    );

    // What a snapshot stores (bincode, as the store's codec) comes back the same, as does its JSON.
    let config = bincode::config::standard();
    let blob = bincode::serde::encode_to_vec(&long, config).unwrap();
    assert_eq!(bincode::serde::decode_from_slice::<JobPayment, _>(&blob, config).unwrap().0, long);
    let json = serde_json::to_string(&long).unwrap();
    assert_eq!(serde_json::from_str::<JobPayment>(&json).unwrap(), long);
}

#[tokio::test]
async fn killed_between_the_charge_and_its_record_the_restart_settles_one_charge() {
    let (sandbox, setup) = (SandboxProvider::new(), Memory::default());
    let mut pay = payment("pm_card_visa");
    pay.hold(Via { provider: &sandbox, journal: &setup }, at(0), false).await.unwrap();
    // What the snapshot holds: the payment as of its last completed step.
    let stored = pay.clone();
    // The capture's intent is written and the call made; the process dies before its outcome is.
    let journal = setup.dying_after(1);
    assert!(matches!(pay.complete(Via { provider: &sandbox, journal: &journal }, at(1)).await, Err(PaymentError::Call(_))));
    assert_eq!(sandbox.statement(JOB).charges, 1, "the charge was made");

    // The restart: the stored payment, the job's entries, a journal that writes again.
    let restarted = journal.restarted();
    let mut pay = stored;
    sandbox.forget_keys();
    let entries = restarted.entries();
    assert_eq!(pay.recover(Via { provider: &sandbox, journal: &restarted }, &entries, at(2)).await.unwrap(), 1);
    assert_eq!((pay.machine().state(), pay.machine().captured()), (PaymentState::Captured, Money(10_000)));
    assert_eq!(sandbox.statement(JOB).charges, 1, "one charge");
    let outcomes =
        restarted.entries().iter().filter(|e| matches!(e, JournalEntry::Outcome { outcome: Outcome::Captured { .. }, .. })).count();
    assert_eq!(outcomes, 1, "one record");
    // Nothing left for a second restart.
    let entries = restarted.entries();
    assert_eq!(pay.recover(Via { provider: &sandbox, journal: &restarted }, &entries, at(3)).await.unwrap(), 0);
}

#[tokio::test]
async fn an_outcome_recorded_after_the_last_store_is_settled_on_restart_without_a_call() {
    let (sandbox, journal) = (SandboxProvider::new(), Memory::default());
    let via = Via { provider: &sandbox, journal: &journal };
    let mut pay = payment("pm_card_visa");
    pay.hold(via, at(0), false).await.unwrap();
    let stored = pay.clone();
    // The capture is made and recorded; the process dies before the job's snapshot is stored.
    pay.complete(via, at(1)).await.unwrap();
    let mut restarted = stored;
    let calls = sandbox.calls();
    assert_eq!(restarted.recover(via, &journal.entries(), at(2)).await.unwrap(), 1);
    assert_eq!(sandbox.calls(), calls, "read from the record, not asked again");
    assert_eq!(restarted.machine(), pay.machine(), "the same payment as if nothing had happened");
    // Settling is idempotent: a second recovery, or the same outcome again, changes nothing.
    assert_eq!(restarted.recover(via, &journal.entries(), at(3)).await.unwrap(), 0);
    let before = restarted.clone();
    let JournalEntry::Intent { call } = journal.entries().into_iter().rev().find(|e| matches!(e, JournalEntry::Intent { .. })).unwrap()
    else {
        unreachable!()
    };
    restarted.settle(&call, &Outcome::Captured { intent: "x".into(), amount: Money(10_000) }, at(4)).unwrap();
    assert_eq!(restarted, before);
}

#[tokio::test]
async fn a_chargeback_comes_out_of_escrow_once_per_webhook_event() {
    let (sandbox, journal) = (SandboxProvider::new(), Memory::default());
    let mut pay = payment("pm_card_visa");
    pay.hold(Via { provider: &sandbox, journal: &journal }, at(0), false).await.unwrap();
    pay.complete(Via { provider: &sandbox, journal: &journal }, at(1)).await.unwrap();
    let chargeback = |event: &str, amount| Report::Chargeback { event: event.into(), amount: Money(amount) };
    assert_eq!(pay.report(&chargeback("evt_1", 4_000)), Ok(true));
    assert_eq!(pay.report(&chargeback("evt_1", 4_000)), Ok(false), "a webhook delivered twice counts once");
    assert_eq!(pay.machine().refunded(), Money(4_000));
    assert!(pay.report(&chargeback("evt_2", 1_000_000)).is_err(), "never more than was charged");
    // The sandbox says whose hold it is, for the webhook's route.
    let intent = pay.hold.clone().unwrap();
    assert_eq!(sandbox.job_of(&intent).await.unwrap(), Some(JOB));
    assert_eq!(sandbox.job_of("pi_unknown").await.unwrap(), None);
}

#[tokio::test]
async fn a_reversed_transfer_is_held_then_paid_again_under_a_new_key() {
    let (sandbox, journal) = (SandboxProvider::new(), Memory::default());
    let via = Via { provider: &sandbox, journal: &journal };
    let mut pay = payment("pm_card_visa");
    pay.hold(via, at(0), false).await.unwrap();
    pay.complete(via, at(1)).await.unwrap();
    let due = at(1 + 73 * 3_600);
    pay.pay_out(via, dispatch_engine::ContractorId(7), "acct_7", due).await.unwrap();
    let sent = pay.machine().release().unwrap().payout;
    assert_eq!(sandbox.statement(JOB).paid_out, sent);
    let reversed = Report::PayoutReversed { event: "evt_9".into(), amount: sent };
    assert_eq!(pay.report(&reversed), Ok(true));
    assert_eq!(pay.report(&reversed), Ok(false), "delivered twice, applied once");
    assert_eq!(pay.machine().state(), PaymentState::PayoutHeld);
    // Held: not sent again until a dispatcher resolves it with nothing refunded.
    assert!(pay.pay_out(via, dispatch_engine::ContractorId(7), "acct_7", due).await.is_err());
    pay.resolve_dispute(via, Money(0), due).await.unwrap();
    pay.pay_out(via, dispatch_engine::ContractorId(7), "acct_7", due).await.unwrap();
    assert_eq!(pay.machine().state(), PaymentState::PaidOut);
    // A second transfer, under attempt 2's key (the first key is spent at the processor).
    assert_eq!(sandbox.statement(JOB).paid_out, Money(2 * sent.0));
    let keys: Vec<String> = journal
        .entries()
        .iter()
        .filter_map(|e| match e {
            JournalEntry::Intent { call: call @ Call::Payout { .. } } => Some(call.idempotency_key()),
            _ => None,
        })
        .collect();
    assert_eq!(keys, ["dispatch-job-42-payout-a1", "dispatch-job-42-payout-a2"]);
}
