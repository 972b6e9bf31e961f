use std::time::Duration;

use dispatch_engine::payment::Currency;

use super::*;
use crate::provider::{Card, Step, execute, reconcile};

const JOB: JobId = JobId(42);

fn card(payment_method: &str) -> Card {
    Card { customer: "cus_1".into(), payment_method: payment_method.into() }
}

/// A hold of 12 000 on a card of `payment_method`, prepared: its id.
async fn prepared(sandbox: &SandboxProvider, payment_method: &str) -> String {
    let key = CallKey::new(JOB, Step::Authorize);
    let prepare = Call::Prepare { key, card: card(payment_method), amount: Money(12_000), currency: Currency::USD };
    let Outcome::Prepared { intent } = execute(sandbox, &prepare).await.unwrap() else { panic!("not prepared") };
    intent
}

/// A hold of 12 000 on a card of `payment_method`: prepared, then authorized.
async fn hold(sandbox: &SandboxProvider, payment_method: &str) -> Outcome {
    let intent = prepared(sandbox, payment_method).await;
    execute(sandbox, &authorize(&intent)).await.unwrap()
}

fn authorize(intent: &str) -> Call {
    Call::Authorize { key: CallKey::new(JOB, Step::Authorize), intent: intent.into(), off_session: false }
}

fn intent_of(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Held { intent, .. } | Outcome::ActionRequired { intent, .. } => intent.clone(),
        other => panic!("not a hold: {other:?}"),
    }
}

#[tokio::test]
async fn a_hold_capture_two_refunds_and_a_payout_are_each_made_once() {
    let sandbox = SandboxProvider::new();
    let held = hold(&sandbox, "pm_card_visa").await;
    let intent = intent_of(&held);
    let capture = Call::Capture { key: CallKey::new(JOB, Step::Capture), intent: intent.clone(), amount: Money(11_000) };
    assert_eq!(execute(&sandbox, &capture).await.unwrap(), Outcome::Captured { intent: intent.clone(), amount: Money(11_000) });
    // The same call again (a retry) is answered, not made again.
    assert_eq!(execute(&sandbox, &capture).await.unwrap(), Outcome::Captured { intent: intent.clone(), amount: Money(11_000) });
    for n in 1..=2 {
        let refund = Call::Refund { key: CallKey::new(JOB, Step::Refund(n)), intent: intent.clone(), amount: Money(1_000) };
        assert!(matches!(execute(&sandbox, &refund).await.unwrap(), Outcome::Refunded { amount: Money(1_000), .. }));
    }
    let over = Call::Refund { key: CallKey::new(JOB, Step::Refund(3)), intent: intent.clone(), amount: Money(9_001) };
    assert!(matches!(execute(&sandbox, &over).await, Err(ProviderError::Rejected(_))), "no more back than was charged");
    let payout =
        Call::Payout { key: CallKey::new(JOB, Step::Payout), destination: "acct_1".into(), amount: Money(8_767), currency: Currency::USD };
    execute(&sandbox, &payout).await.unwrap();
    assert_eq!(
        sandbox.statement(JOB),
        Statement { holds: 1, open_holds: 0, charges: 1, charged: Money(11_000), refunded: Money(2_000), paid_out: Money(8_767) }
    );
    // A key reused for a different request is refused, as Stripe does.
    let changed = Call::Capture { key: CallKey::new(JOB, Step::Capture), intent, amount: Money(5) };
    assert!(matches!(execute(&sandbox, &changed).await, Err(ProviderError::Rejected(_))));
}

#[tokio::test]
async fn test_cards_and_behaviours_decline_ask_for_action_fail_and_hang() {
    let sandbox = SandboxProvider::new();
    assert!(matches!(hold(&sandbox, "pm_card_chargeDeclined").await, Outcome::Declined { .. }));
    assert_eq!(sandbox.statement(JOB).holds, 0, "a declined hold holds nothing");
    let sandbox = SandboxProvider::new();
    let action = hold(&sandbox, "pm_card_authenticationRequired").await;
    assert!(matches!(&action, Outcome::ActionRequired { client_secret, .. } if !client_secret.is_empty()));
    let void = Call::Void { key: CallKey::new(JOB, Step::Void), intent: intent_of(&action) };
    assert!(matches!(execute(&sandbox, &void).await.unwrap(), Outcome::Voided { .. }), "a hold waiting for the customer can be let go");

    let sandbox = SandboxProvider::new();
    let intent = prepared(&sandbox, "pm_card_visa").await;
    sandbox.then(Behaviour::Fail);
    let failed = execute(&sandbox, &authorize(&intent)).await.unwrap_err();
    assert!(failed.is_retryable(), "{failed}");
    assert_eq!(sandbox.statement(JOB).holds, 0, "a failed call makes nothing");
    assert!(matches!(execute(&sandbox, &authorize(&intent)).await.unwrap(), Outcome::Held { .. }), "the retry goes through");
    assert!(matches!(execute(&sandbox, &authorize(&intent)).await.unwrap(), Outcome::Held { .. }), "and is answered again, not made");
    assert_eq!(sandbox.statement(JOB).holds, 1);

    let sandbox = SandboxProvider::new();
    let intent = prepared(&sandbox, "pm_card_visa").await;
    sandbox.then(Behaviour::Decline);
    assert!(matches!(execute(&sandbox, &authorize(&intent)).await.unwrap(), Outcome::Declined { .. }));
}

#[tokio::test]
async fn a_call_that_hung_is_reconciled_to_one_charge_even_once_keys_are_forgotten() {
    let sandbox = SandboxProvider::new();
    // The hold's answer is lost: the reconciler reads the hold, and does not place another.
    let intent = prepared(&sandbox, "pm_card_visa").await;
    sandbox.then(Behaviour::Hang);
    assert!(tokio::time::timeout(Duration::from_millis(50), execute(&sandbox, &authorize(&intent))).await.is_err(), "no answer");
    sandbox.forget_keys();
    assert!(matches!(reconcile(&sandbox, &authorize(&intent)).await.unwrap(), Outcome::Held { .. }));
    assert_eq!(sandbox.statement(JOB).holds, 1);

    // The capture is made, and its answer never comes back (the process dies waiting).
    let capture = Call::Capture { key: CallKey::new(JOB, Step::Capture), intent: intent.clone(), amount: Money(12_000) };
    sandbox.then(Behaviour::Hang);
    assert!(tokio::time::timeout(Duration::from_millis(50), execute(&sandbox, &capture)).await.is_err(), "no answer");
    // A day later the processor has forgotten the key; the reconciler finds the charge by the hold's status.
    sandbox.forget_keys();
    let calls = sandbox.calls();
    assert!(matches!(reconcile(&sandbox, &capture).await.unwrap(), Outcome::Captured { amount: Money(12_000), .. }));
    assert_eq!(sandbox.calls(), calls, "found, not made again");
    assert_eq!(sandbox.statement(JOB).charges, 1);
    // A call that never reached the processor is made by the reconciler, once.
    let refund = Call::Refund { key: CallKey::new(JOB, Step::Refund(1)), intent, amount: Money(500) };
    assert_eq!(sandbox.confirm(&refund).await.unwrap(), None);
    assert!(matches!(reconcile(&sandbox, &refund).await.unwrap(), Outcome::Refunded { .. }));
    sandbox.forget_keys();
    assert!(matches!(reconcile(&sandbox, &refund).await.unwrap(), Outcome::Refunded { .. }), "found by its metadata");
    assert_eq!(sandbox.statement(JOB).refunded, Money(500));
}

#[tokio::test]
async fn cards_are_saved_once_per_key_or_declined_or_sent_to_authenticate() {
    use crate::provider::{CardSaved, CardSetup};
    let sandbox = SandboxProvider::new();
    let setup =
        |pm: &str, n: u32| CardSetup { customer: "cus_1".into(), payment_method: pm.into(), key: format!("dispatch-customer-1-card-{n}") };
    let saved = sandbox.save_card(&setup("pm_card_visa", 1)).await.unwrap();
    assert_eq!(saved, CardSaved::Saved { card: card("pm_card_visa") });
    assert_eq!(sandbox.save_card(&setup("pm_card_visa", 1)).await.unwrap(), saved, "a retry is answered the same");
    assert!(matches!(sandbox.save_card(&setup("pm_card_mastercard", 1)).await, Err(ProviderError::Rejected(_))), "a key reused");
    assert!(matches!(sandbox.save_card(&setup("pm_card_chargeDeclined", 2)).await.unwrap(), CardSaved::Declined { .. }));
    let waiting = sandbox.save_card(&setup("pm_card_authenticationRequired", 3)).await.unwrap();
    let CardSaved::ActionRequired { setup: seti, .. } = waiting.clone() else { panic!("{waiting:?}") };
    // Confirmed before the customer authenticates: still waiting; after: saved.
    assert_eq!(sandbox.confirm_card(&seti).await.unwrap(), waiting);
    assert!(sandbox.complete_setup("seti_nothing").is_err());
    sandbox.complete_setup(&seti).unwrap();
    assert_eq!(sandbox.confirm_card(&seti).await.unwrap(), CardSaved::Saved { card: card("pm_card_authenticationRequired") });
    assert!(matches!(sandbox.confirm_card("seti_nothing").await, Err(ProviderError::Rejected(_))));
    // The customer is the same however often it is made.
    let cus = sandbox.make_customer(dispatch_engine::CustomerId(4)).await.unwrap();
    assert_eq!(cus, sandbox.make_customer(dispatch_engine::CustomerId(4)).await.unwrap());
    assert_ne!(cus, sandbox.make_customer(dispatch_engine::CustomerId(5)).await.unwrap());
}
