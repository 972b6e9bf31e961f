use std::sync::Mutex;
use std::time::Duration;

use dispatch_engine::payment::{Currency, Ledger, PaymentMachine, PaymentState, PaymentTerms};
use dispatch_engine::{JobId, Money};

use super::*;
use crate::provider::{CallKey, Card};
use crate::sandbox::{Behaviour, SandboxProvider};

const JOB: JobId = JobId(42);

/// Entries in memory; after `dies_after` writes every write fails, as a dead process's would.
#[derive(Default)]
pub(crate) struct Memory {
    entries: Mutex<Vec<JournalEntry>>,
    dies_after: Option<usize>,
}

impl Memory {
    /// This journal, as a process that dies after `more` writes.
    pub(crate) fn dying_after(&self, more: usize) -> Self {
        let entries = self.entries();
        let dies_after = Some(entries.len() + more);
        Self { entries: Mutex::new(entries), dies_after }
    }

    /// A restarted process's journal: what the dead one wrote.
    pub(crate) fn restarted(&self) -> Self {
        Self { entries: Mutex::new(self.entries()), dies_after: None }
    }

    pub(crate) fn entries(&self) -> Vec<JournalEntry> {
        self.entries.lock().unwrap().clone()
    }

    fn outcomes_of(&self, call: &Call) -> usize {
        self.entries().iter().filter(|e| matches!(e, JournalEntry::Outcome { call: c, .. } if *c == call.idempotency_key())).count()
    }
}

#[async_trait]
impl PaymentJournal for Memory {
    async fn write(&self, entry: JournalEntry) -> Result<(), JournalError> {
        let mut entries = self.entries.lock().unwrap();
        if self.dies_after.is_some_and(|n| entries.len() >= n) {
            return Err(JournalError("the process is gone".into()));
        }
        entries.push(entry);
        Ok(())
    }
}

fn hold_calls(intent: &str) -> Call {
    Call::Authorize { key: CallKey::new(JOB, Step::Authorize), intent: intent.into(), off_session: false }
}

/// Prepares and authorizes a hold of 12 000 through `journal`: the hold's id.
async fn held(sandbox: &SandboxProvider, journal: &Memory) -> String {
    let prepare = Call::Prepare {
        key: CallKey::new(JOB, Step::Authorize),
        card: Card { customer: "cus_1".into(), payment_method: "pm_card_visa".into() },
        amount: Money(12_000),
        currency: Currency::USD,
    };
    let Outcome::Prepared { intent } = make(sandbox, journal, prepare).await.unwrap() else { panic!("not prepared") };
    assert!(matches!(make(sandbox, journal, hold_calls(&intent)).await.unwrap(), Outcome::Held { .. }));
    intent
}

#[tokio::test]
async fn a_crash_between_the_charge_and_its_record_ends_with_one_charge_and_one_record() {
    let sandbox = SandboxProvider::new();
    let setup = Memory::default();
    let intent = held(&sandbox, &setup).await;
    // The process dies right after the capture is made: its outcome is never written.
    let journal = setup.dying_after(1);
    let capture = Call::Capture { key: CallKey::new(JOB, Step::Capture), intent, amount: Money(12_000) };
    let died = make(&sandbox, &journal, capture.clone()).await.unwrap_err();
    assert!(matches!(died, CallError::Journal(_)), "{died}");
    assert_eq!(sandbox.statement(JOB).charges, 1, "the charge was made");
    assert_eq!(in_flight(&journal.entries()), std::slice::from_ref(&capture));

    // The restart, a day later (the processor forgot the key): the charge is found, not made again, and recorded once.
    sandbox.forget_keys();
    let restarted = journal.restarted();
    let calls = sandbox.calls();
    let finished = recover(&sandbox, &restarted, &restarted.entries()).await.unwrap();
    assert_eq!(finished, [(capture.clone(), Outcome::Captured { intent: capture_intent(&capture), amount: Money(12_000) })]);
    assert_eq!(sandbox.calls(), calls, "nothing made again");
    assert_eq!(sandbox.statement(JOB).charges, 1);
    assert_eq!(restarted.outcomes_of(&capture), 1);
    assert!(in_flight(&restarted.entries()).is_empty());
    // A second restart finds nothing left to do.
    assert!(recover(&sandbox, &restarted, &restarted.entries()).await.unwrap().is_empty());
}

fn capture_intent(call: &Call) -> String {
    match call {
        Call::Capture { intent, .. } => intent.clone(),
        _ => unreachable!("a capture"),
    }
}

#[tokio::test]
async fn a_call_that_hung_or_never_arrived_is_finished_once_on_restart() {
    let sandbox = SandboxProvider::new();
    let journal = Memory::default();
    let intent = held(&sandbox, &journal).await;
    make(&sandbox, &journal, Call::Capture { key: CallKey::new(JOB, Step::Capture), intent: intent.clone(), amount: Money(12_000) })
        .await
        .unwrap();
    // A refund made, its answer never coming: the process is killed while it waits.
    let refund = Call::Refund { key: CallKey::new(JOB, Step::Refund(1)), intent: intent.clone(), amount: Money(2_000) };
    sandbox.then(Behaviour::Hang);
    assert!(tokio::time::timeout(Duration::from_millis(50), make(&sandbox, &journal, refund.clone())).await.is_err());
    // A second refund whose call never reached the processor.
    let second = Call::Refund { key: CallKey::new(JOB, Step::Refund(2)), intent, amount: Money(1_000) };
    sandbox.then(Behaviour::Fail);
    assert!(matches!(make(&sandbox, &journal, second.clone()).await, Err(CallError::Provider(_))));
    assert_eq!(in_flight(&journal.entries()), [refund.clone(), second.clone()]);

    let restarted = journal.restarted();
    let finished = recover(&sandbox, &restarted, &restarted.entries()).await.unwrap();
    assert_eq!(finished.len(), 2);
    assert_eq!(sandbox.statement(JOB).refunded, Money(3_000), "each refund once");
    assert_eq!((restarted.outcomes_of(&refund), restarted.outcomes_of(&second)), (1, 1));
}

#[tokio::test]
async fn recorded_outcomes_drive_the_jobs_payment_machine() {
    let sandbox = SandboxProvider::new();
    let journal = Memory::default();
    let intent = held(&sandbox, &journal).await;
    make(&sandbox, &journal, Call::Capture { key: CallKey::new(JOB, Step::Capture), intent: intent.clone(), amount: Money(11_000) })
        .await
        .unwrap();
    make(&sandbox, &journal, Call::Refund { key: CallKey::new(JOB, Step::Refund(1)), intent, amount: Money(1_000) }).await.unwrap();
    // Replayed from the entries alone, as a restart would.
    let mut machine = PaymentMachine::new(JOB, Money(10_000), PaymentTerms::default()).unwrap();
    let mut ledger = Ledger::new();
    let entries = journal.entries();
    assert_eq!(recorded(&entries).len(), 4, "prepare, authorize, capture, refund");
    for (call, outcome) in recorded(&entries) {
        if let Some(event) = payment_event(call, outcome) {
            ledger.record(&machine.apply(event).unwrap()).unwrap();
        }
    }
    assert_eq!(machine.state(), PaymentState::Captured);
    assert_eq!((machine.captured(), machine.refunded(), machine.escrow()), (Money(11_000), Money(1_000), Money(10_000)));
    assert_eq!(ledger.total(), 0);
}

#[test]
fn a_further_holds_outcomes_are_the_further_holds_events() {
    let key = CallKey::new(JOB, Step::ExtraHold(1));
    let call = Call::Authorize { key, intent: "pi_2".into(), off_session: false };
    assert_eq!(
        payment_event(&call, &Outcome::Held { intent: "pi_2".into(), amount: Money(13_000) }),
        Some(PaymentEvent::HoldRenewed { amount: Money(13_000) }),
        "a further hold replaces the first"
    );
    let replaced = Call::Void { key: CallKey::new(JOB, Step::Replaced(1)), intent: "pi_1".into() };
    assert_eq!(payment_event(&replaced, &Outcome::Voided { intent: "pi_1".into() }), None, "not the payment voided");
    let declined = Outcome::Declined { code: "card_declined".into(), message: "no".into() };
    assert_eq!(payment_event(&call, &declined), Some(PaymentEvent::HoldIncreaseDeclined));
    assert_eq!(payment_event(&hold_calls("pi_1"), &declined), Some(PaymentEvent::Declined { reason: "no".into() }));
    assert_eq!(payment_event(&call, &Outcome::Prepared { intent: "pi_2".into() }), None);
    let renewal =
        Call::Authorize { key: CallKey { attempt: 2, ..CallKey::new(JOB, Step::Authorize) }, intent: "pi_3".into(), off_session: true };
    let held = Outcome::Held { intent: "pi_3".into(), amount: Money(12_000) };
    assert_eq!(payment_event(&renewal, &held), Some(PaymentEvent::HoldRenewed { amount: Money(12_000) }));
}
