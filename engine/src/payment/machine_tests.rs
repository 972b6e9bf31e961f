use proptest::prelude::*;

use super::*;
use crate::job::JobStateKind;
use crate::payment::{Cancellation, Ledger, PaymentEventKind};
use PaymentEventKind as K;
use PaymentState as S;

const JOB: JobId = JobId(42);
const C: ContractorId = ContractorId(7);
const QUOTE: Money = Money(10_000);

fn machine() -> PaymentMachine {
    PaymentMachine::new(JOB, QUOTE, PaymentTerms::default()).unwrap()
}

/// A machine in `state`, reached through legal events only (`Authorized` with extras waiting).
fn machine_in(state: S) -> PaymentMachine {
    let hold = PaymentEvent::HoldPlaced { amount: machine().hold_due() };
    let captured = [hold.clone(), PaymentEvent::Captured { amount: QUOTE }];
    let path: Vec<PaymentEvent> = match state {
        S::Quoted => vec![],
        S::AwaitingAction => vec![PaymentEvent::ActionRequired],
        S::Authorized => vec![hold, PaymentEvent::ExtrasProposed { amount: Money(500), reason: "a new valve".into() }],
        S::Captured => captured.to_vec(),
        S::Disputed => [&captured[..], &[PaymentEvent::DisputeOpened]].concat(),
        S::PayoutPending => [&captured[..], &[PaymentEvent::PayoutReleased { contractor: C }]].concat(),
        S::PaidOut => [&captured[..], &[PaymentEvent::PayoutReleased { contractor: C }, PaymentEvent::PayoutSent]].concat(),
        S::Voided => vec![hold, PaymentEvent::Voided],
        S::Declined => vec![PaymentEvent::Declined { reason: "insufficient funds".into() }],
        S::Refunded => [&captured[..], &[PaymentEvent::Refunded { amount: QUOTE }]].concat(),
        S::PayoutHeld => {
            let paid = [PaymentEvent::PayoutReleased { contractor: C }, PaymentEvent::PayoutSent];
            let payout = Money(QUOTE.0 - PaymentTerms::default().platform_fee(QUOTE).0);
            [&captured[..], &paid, &[PaymentEvent::PayoutReversed { amount: payout }]].concat()
        }
    };
    let mut m = machine();
    for e in path {
        m.apply(e).unwrap();
    }
    assert_eq!(m.state(), state);
    m
}

/// An event of `kind` with amounts that fit the machines of `machine_in`.
fn sample(kind: K, m: &PaymentMachine) -> PaymentEvent {
    match kind {
        K::HoldPlaced => PaymentEvent::HoldPlaced { amount: m.hold_due() },
        K::ActionRequired => PaymentEvent::ActionRequired,
        K::Declined => PaymentEvent::Declined { reason: "insufficient funds".into() },
        K::ExtrasProposed => PaymentEvent::ExtrasProposed { amount: Money(500), reason: "two more hours".into() },
        K::ExtrasApproved => PaymentEvent::ExtrasApproved,
        K::ExtrasRejected => PaymentEvent::ExtrasRejected,
        K::HoldIncreased => PaymentEvent::HoldIncreased { amount: Money(500) },
        K::HoldIncreaseDeclined => PaymentEvent::HoldIncreaseDeclined,
        K::HoldRenewed => PaymentEvent::HoldRenewed { amount: m.hold_due() },
        K::Captured => PaymentEvent::Captured { amount: QUOTE },
        K::Voided => PaymentEvent::Voided,
        K::Refunded => PaymentEvent::Refunded { amount: Money(100) },
        K::DisputeOpened => PaymentEvent::DisputeOpened,
        // A reversed payout is resolved with nothing refunded (the charge was released).
        K::DisputeResolved => PaymentEvent::DisputeResolved { refund: Money(if m.state() == S::PayoutHeld { 0 } else { 100 }) },
        K::PayoutReleased => PaymentEvent::PayoutReleased { contractor: C },
        K::PayoutSent => PaymentEvent::PayoutSent,
        K::PayoutFailed => PaymentEvent::PayoutFailed { reason: "account closed".into() },
        K::ProcessorFee => PaymentEvent::ProcessorFee { amount: Money(59) },
        K::Chargeback => PaymentEvent::Chargeback { amount: Money(100) },
        K::PayoutReversed => PaymentEvent::PayoutReversed { amount: m.release().map_or(Money(100), |r| r.payout) },
    }
}

/// Every legal (state, event) and the state after it; every other pair is refused.
const LEGAL: &[(S, K, S)] = &[
    (S::Quoted, K::HoldPlaced, S::Authorized),
    (S::Quoted, K::ActionRequired, S::AwaitingAction),
    (S::Quoted, K::Declined, S::Declined),
    (S::AwaitingAction, K::HoldPlaced, S::Authorized),
    (S::AwaitingAction, K::Declined, S::Declined),
    (S::AwaitingAction, K::Voided, S::Voided),
    (S::Authorized, K::ExtrasProposed, S::Authorized),
    (S::Authorized, K::ExtrasApproved, S::Authorized),
    (S::Authorized, K::ExtrasRejected, S::Authorized),
    (S::Authorized, K::HoldIncreased, S::Authorized),
    (S::Authorized, K::HoldIncreaseDeclined, S::Authorized),
    (S::Authorized, K::HoldRenewed, S::Authorized),
    (S::Authorized, K::Captured, S::Captured),
    (S::Authorized, K::Voided, S::Voided),
    (S::Captured, K::Refunded, S::Captured),
    (S::Captured, K::DisputeOpened, S::Disputed),
    (S::Captured, K::PayoutReleased, S::PayoutPending),
    (S::Captured, K::ProcessorFee, S::Captured),
    (S::Captured, K::Chargeback, S::Captured),
    (S::Disputed, K::DisputeResolved, S::Captured),
    (S::Disputed, K::ProcessorFee, S::Disputed),
    (S::Disputed, K::Chargeback, S::Captured),
    (S::PayoutPending, K::PayoutSent, S::PaidOut),
    (S::PayoutPending, K::PayoutFailed, S::PayoutPending),
    (S::PayoutPending, K::ProcessorFee, S::PayoutPending),
    (S::PayoutPending, K::Chargeback, S::PayoutPending),
    (S::PaidOut, K::ProcessorFee, S::PaidOut),
    (S::PaidOut, K::Chargeback, S::PaidOut),
    (S::PaidOut, K::PayoutReversed, S::PayoutHeld),
    (S::PayoutHeld, K::DisputeResolved, S::PayoutPending),
    (S::PayoutHeld, K::ProcessorFee, S::PayoutHeld),
    (S::PayoutHeld, K::Chargeback, S::PayoutHeld),
    (S::Refunded, K::ProcessorFee, S::Refunded),
];

#[test]
fn every_state_and_event_is_a_legal_step_or_a_typed_refusal() {
    let mut legal = 0;
    for state in S::ALL {
        for kind in K::ALL {
            let mut m = machine_in(state);
            let before = m.clone();
            let event = sample(kind, &m);
            assert_eq!(event.kind(), kind);
            let result = m.apply(event);
            match LEGAL.iter().find(|(s, k, _)| *s == state && *k == kind) {
                Some((_, _, next)) => {
                    legal += 1;
                    assert!(result.is_ok(), "{state:?} × {kind:?}: {result:?}");
                    assert_eq!(m.state(), *next, "{state:?} × {kind:?}");
                }
                None => {
                    assert_eq!(result, Err(Error::IllegalPayment { state, event: kind }), "{state:?} × {kind:?}");
                    assert_eq!(m, before, "a refused step changes nothing");
                }
            }
        }
    }
    assert_eq!(legal, LEGAL.len(), "every row of the table was walked");
}

/// Applies `events` to `m`, recording each step's entries in `ledger`.
fn run(m: &mut PaymentMachine, ledger: &mut Ledger, events: impl IntoIterator<Item = PaymentEvent>) {
    for e in events {
        let entries = m.apply(e.clone()).unwrap_or_else(|err| panic!("{e:?}: {err}"));
        ledger.record(&entries).unwrap();
    }
}

#[test]
fn a_job_with_extras_a_partial_refund_and_a_dispute_settles_exactly() {
    let (mut m, mut ledger) = (machine(), Ledger::new());
    assert_eq!(m.hold_due(), Money(12_000), "the quote and 20 %");
    run(
        &mut m,
        &mut ledger,
        [
            PaymentEvent::HoldPlaced { amount: Money(12_000) },
            PaymentEvent::ExtrasProposed { amount: Money(3_000), reason: "a new valve".into() },
            PaymentEvent::ExtrasApproved,
        ],
    );
    assert_eq!((m.capture_due(), m.hold_short()), (Money(13_000), Money(1_000)));
    let err = m.apply(PaymentEvent::Captured { amount: Money(13_000) }).unwrap_err();
    assert!(matches!(err, Error::InvalidAmount(_)), "{err}");
    run(&mut m, &mut ledger, [PaymentEvent::HoldIncreased { amount: Money(1_000) }]);
    assert_eq!(ledger.held(JOB), Money(13_000), "two holds, as memos");
    let due = m.capture_due();
    run(&mut m, &mut ledger, [PaymentEvent::Captured { amount: due }]);
    assert_eq!(ledger.held(JOB), Money(0), "a capture lets the holds go");
    assert_eq!(ledger.balance(Account::Escrow(JOB)), 13_000);
    run(&mut m, &mut ledger, [PaymentEvent::Refunded { amount: Money(2_000) }, PaymentEvent::DisputeOpened]);
    assert!(matches!(m.apply(PaymentEvent::PayoutReleased { contractor: C }), Err(Error::IllegalPayment { .. })), "held while disputed");
    run(
        &mut m,
        &mut ledger,
        [PaymentEvent::DisputeResolved { refund: Money(1_000) }, PaymentEvent::PayoutReleased { contractor: C }, PaymentEvent::PayoutSent],
    );
    // Earned 13 000 − 3 000 = 10 000; the fee is 290; the contractor gets 9 710.
    assert_eq!(m.release(), Some(Release { contractor: C, fee: Money(290), payout: Money(9_710) }));
    assert_eq!(m.state(), S::PaidOut);
    for (account, balance) in [
        (Account::CustomerFunding, -13_000),
        (Account::Refunds, 3_000),
        (Account::PlatformRevenue, 290),
        (Account::ContractorPayable(C), 0),
        (Account::Payouts(C), 9_710),
        (Account::Escrow(JOB), 0),
    ] {
        assert_eq!(ledger.balance(account), balance, "{account:?}");
    }
    assert_eq!(ledger.total(), 0);
}

/// A machine holding 12 000 for the quote of 10 000, with `extras` approved: and its ledger.
fn with_extras(extras: u64) -> (PaymentMachine, Ledger) {
    let (mut m, mut ledger) = (machine(), Ledger::new());
    run(
        &mut m,
        &mut ledger,
        [
            PaymentEvent::HoldPlaced { amount: Money(12_000) },
            PaymentEvent::ExtrasProposed { amount: Money(extras), reason: "materials".into() },
            PaymentEvent::ExtrasApproved,
        ],
    );
    (m, ledger)
}

#[test]
fn a_refused_further_hold_drops_the_extras_it_would_have_covered() {
    let (mut m, mut ledger) = with_extras(5_000);
    run(&mut m, &mut ledger, [PaymentEvent::HoldIncreaseDeclined]);
    assert_eq!((m.capture_due(), m.hold_short()), (Money(12_000), Money(0)), "the extras the hold covers stay");
    // A proposal turned down changes nothing owed; an answer with nothing proposed is an error.
    run(&mut m, &mut ledger, [PaymentEvent::ExtrasProposed { amount: Money(100), reason: "x".into() }, PaymentEvent::ExtrasRejected]);
    assert_eq!(m.capture_due(), Money(12_000));
    assert!(matches!(m.apply(PaymentEvent::ExtrasApproved), Err(Error::InvalidAmount(_))));
}

#[test]
fn a_renewed_hold_replaces_the_old_ones_and_must_cover_what_is_owed() {
    let (mut m, mut ledger) = with_extras(1_000);
    assert!(
        matches!(m.apply(PaymentEvent::HoldRenewed { amount: Money(10_999) }), Err(Error::InvalidAmount(_))),
        "short of the 11 000 owed"
    );
    run(&mut m, &mut ledger, [PaymentEvent::HoldRenewed { amount: Money(12_000) }]);
    assert_eq!((m.held(), ledger.held(JOB)), (Money(12_000), Money(12_000)), "the old hold let go, the fresh one counted once");
    assert_eq!(ledger.postings(), 0, "no money moved");
}

#[test]
fn a_cancellation_after_the_contractor_set_off_pays_them_the_fee() {
    let mut m = machine();
    let mut ledger = Ledger::new();
    let hold = m.hold_due();
    run(&mut m, &mut ledger, [PaymentEvent::HoldPlaced { amount: hold }]);
    let Cancellation::ChargeFee(fee) = m.terms().cancellation(JobStateKind::EnRoute, m.held()) else { panic!("a fee is due") };
    run(
        &mut m,
        &mut ledger,
        [PaymentEvent::Captured { amount: fee }, PaymentEvent::PayoutReleased { contractor: C }, PaymentEvent::PayoutSent],
    );
    // 2 500 captured; 290 bp of it is 72.5 → 73 (half up); 2 427 to the contractor.
    assert_eq!(m.release(), Some(Release { contractor: C, fee: Money(73), payout: Money(2_427) }));
    assert_eq!(ledger.balance(Account::Payouts(C)), 2_427);
    // Before they set off, the hold is simply let go.
    let mut early = machine();
    early.apply(PaymentEvent::HoldPlaced { amount: early.hold_due() }).unwrap();
    assert_eq!(early.terms().cancellation(JobStateKind::Accepted, early.held()), Cancellation::Void);
    let entries = early.apply(PaymentEvent::Voided).unwrap();
    assert!(entries.postings.is_empty(), "no money moved");
    assert_eq!(entries.memos, [Memo::HoldReleased { job: JOB, amount: Money(12_000) }]);
}

#[test]
fn amounts_out_of_bounds_are_refused_without_a_change() {
    let mut m = machine_in(S::Captured);
    let before = m.clone();
    for bad in [
        PaymentEvent::Refunded { amount: Money(0) },
        PaymentEvent::Refunded { amount: Money(QUOTE.0 + 1) },
        PaymentEvent::Chargeback { amount: Money(QUOTE.0 + 1) },
        PaymentEvent::ProcessorFee { amount: Money(0) },
    ] {
        assert!(matches!(m.apply(bad.clone()), Err(Error::InvalidAmount(_))), "{bad:?}");
        assert_eq!(m, before);
    }
    let mut quoted = machine();
    for bad in [PaymentEvent::HoldPlaced { amount: Money(QUOTE.0 - 1) }, PaymentEvent::HoldPlaced { amount: Money(12_001) }] {
        assert!(matches!(quoted.apply(bad.clone()), Err(Error::InvalidAmount(_))), "{bad:?}");
    }
    assert!(PaymentMachine::new(JOB, Money(MAX_AMOUNT.0 + 1), PaymentTerms::default()).is_err());
    // A chargeback after the release comes out of the platform's revenue.
    let mut paid = machine_in(S::PaidOut);
    let entries = paid.apply(PaymentEvent::Chargeback { amount: Money(4_000) }).unwrap();
    let mut ledger = Ledger::new();
    ledger.record(&entries).unwrap();
    assert_eq!((ledger.balance(Account::PlatformRevenue), ledger.balance(Account::Refunds)), (-4_000, 4_000));
    assert!(matches!(paid.apply(PaymentEvent::Chargeback { amount: Money(6_001) }), Err(Error::InvalidAmount(_))), "no more than was kept");
}

#[test]
fn a_reversed_transfer_is_owed_again_held_for_a_dispatcher_then_sent_again() {
    let (mut m, mut ledger) = (machine(), Ledger::new());
    let hold = m.hold_due();
    run(
        &mut m,
        &mut ledger,
        [
            PaymentEvent::HoldPlaced { amount: hold },
            PaymentEvent::Captured { amount: QUOTE },
            PaymentEvent::PayoutReleased { contractor: C },
            PaymentEvent::PayoutSent,
        ],
    );
    let payout = m.release().unwrap().payout;
    assert_eq!(ledger.balance(Account::Payouts(C)), payout.0 as i64);
    let before = m.clone();
    let part = PaymentEvent::PayoutReversed { amount: Money(payout.0 - 1) };
    assert!(matches!(m.apply(part), Err(Error::InvalidAmount(_))), "only a whole transfer");
    assert_eq!(m, before);
    run(&mut m, &mut ledger, [PaymentEvent::PayoutReversed { amount: payout }]);
    assert_eq!(m.state(), S::PayoutHeld);
    assert_eq!((ledger.balance(Account::Payouts(C)), ledger.balance(Account::ContractorPayable(C))), (0, payout.0 as i64));
    assert!(!m.state().is_closed());
    let refund = PaymentEvent::DisputeResolved { refund: Money(1) };
    assert!(matches!(m.apply(refund), Err(Error::InvalidAmount(_))), "escrow was released: nothing to refund from");
    run(&mut m, &mut ledger, [PaymentEvent::DisputeResolved { refund: Money(0) }, PaymentEvent::PayoutSent]);
    assert_eq!(m.state(), S::PaidOut);
    assert_eq!((ledger.balance(Account::Payouts(C)), ledger.balance(Account::ContractorPayable(C))), (payout.0 as i64, 0));
    assert_eq!(ledger.total(), 0);
}

/// A step of a random job: what the job did, or what the processor or a person did to its money.
#[derive(Debug, Clone)]
enum Step {
    /// The job completed: the approved total is captured (after a further hold if one is short).
    Complete,
    /// The job was cancelled in this state: the policy voids or charges the fee.
    Cancel(JobStateKind),
    /// A payment event of this kind, its amount `per_mille` of what the machine
    /// could take at that point (up to 10 % over, to be refused), for one of three contractors.
    Payment(PaymentEventKind, u64, u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => Just(Step::Complete),
        1 => proptest::sample::select(JobStateKind::ALL.to_vec()).prop_map(Step::Cancel),
        8 => (proptest::sample::select(PaymentEventKind::ALL.to_vec()), 0u64..=1_100, 1u64..4)
            .prop_map(|(kind, per_mille, c)| Step::Payment(kind, per_mille, c)),
    ]
}

/// The payment events a job step asks for.
fn events_of(step: Step, m: &PaymentMachine) -> Vec<PaymentEvent> {
    match step {
        Step::Complete => {
            let short = m.hold_short();
            let mut events = Vec::new();
            if short.0 > 0 {
                events.push(PaymentEvent::HoldIncreased { amount: short });
            }
            events.push(PaymentEvent::Captured { amount: m.capture_due() });
            events
        }
        Step::Cancel(state) => match m.terms().cancellation(state, m.held()) {
            Cancellation::Void => vec![PaymentEvent::Voided],
            Cancellation::ChargeFee(fee) => vec![PaymentEvent::Captured { amount: fee }],
        },
        Step::Payment(kind, per_mille, c) => {
            let part = |of: Money| Money(of.0 * per_mille / 1_000);
            let kept = Money(m.captured().0 - m.refunded().0);
            let mut event = sample(kind, m);
            match &mut event {
                PaymentEvent::HoldPlaced { amount } => *amount = Money(m.quote().0 + part(Money(m.hold_due().0 - m.quote().0)).0),
                PaymentEvent::ExtrasProposed { amount, .. } => *amount = part(Money(5_000)),
                PaymentEvent::HoldIncreased { amount } => *amount = part(m.hold_short().max(Money(1_000))),
                PaymentEvent::HoldRenewed { amount } => *amount = part(m.held().max(m.capture_due())),
                PaymentEvent::Captured { amount } => *amount = part(m.held()),
                PaymentEvent::Refunded { amount }
                | PaymentEvent::DisputeResolved { refund: amount }
                | PaymentEvent::Chargeback { amount } => *amount = part(kept),
                PaymentEvent::ProcessorFee { amount } => *amount = part(Money(500)),
                PaymentEvent::PayoutReleased { contractor } => *contractor = ContractorId(c),
                // The whole transfer (per mille 1 000), or a part of it, to be refused.
                PaymentEvent::PayoutReversed { amount } => *amount = part(m.release().map_or(Money(0), |r| r.payout)),
                _ => {}
            }
            vec![event]
        }
    }
}

proptest! {
    #[test]
    fn the_ledger_balances_and_escrow_holds_whatever_happens(
        quote in prop_oneof![Just(QUOTE.0), 1u64..50_000],
        fee_bps in 0u32..3_000,
        steps in proptest::collection::vec(step(), 0..40),
    ) {
        let terms = PaymentTerms { platform_fee_bps: fee_bps, ..PaymentTerms::default() };
        let mut m = PaymentMachine::new(JOB, Money(quote), terms).unwrap();
        let mut ledger = Ledger::new();
        let mut fees_reported = false;
        for step in steps {
            for event in events_of(step, &m) {
                let before = m.clone();
                let fee = matches!(event, PaymentEvent::ProcessorFee { .. });
                match m.apply(event) {
                    Ok(entries) => {
                        ledger.record(&entries).unwrap();
                        fees_reported |= fee;
                    }
                    Err(_) => prop_assert_eq!(&m, &before, "a refused step changes nothing"),
                }
                // The books rebuilt from the job's amounts alone are the ones its steps made.
                if !fees_reported {
                    let mut rebuilt = Ledger::new();
                    rebuilt.record(&m.opening_entries().unwrap()).unwrap();
                    prop_assert_eq!(rebuilt.by_kind(), ledger.by_kind());
                    for c in 1..4 {
                        for account in [Account::ContractorPayable(ContractorId(c)), Account::Payouts(ContractorId(c))] {
                            prop_assert_eq!(rebuilt.balance(account), ledger.balance(account), "{:?}", account);
                        }
                    }
                    prop_assert_eq!(rebuilt.balance(Account::Escrow(JOB)), ledger.balance(Account::Escrow(JOB)));
                }
                // Postings sum to zero.
                prop_assert_eq!(ledger.total(), 0);
                // Escrow never goes negative, and the ledger's is the machine's.
                let escrow = ledger.balance(Account::Escrow(JOB));
                prop_assert!(escrow >= 0);
                prop_assert_eq!(escrow, m.escrow().0 as i64);
                // A closed job's escrow is zero.
                if m.state().is_closed() {
                    prop_assert_eq!(escrow, 0);
                }
                // Payouts never exceed captured − fee − refunds.
                if let Some(r) = m.release() {
                    let paid = ledger.balance(Account::Payouts(r.contractor)) + ledger.balance(Account::ContractorPayable(r.contractor));
                    prop_assert!(paid <= (m.captured().0 - r.fee.0 - m.refunded().0) as i64);
                    prop_assert_eq!(r.fee, m.terms().platform_fee(Money(m.captured().0 - m.refunded().0)));
                }
                // Holds are memos: outside the balances, equal to the machine's.
                prop_assert_eq!(ledger.held(JOB), m.held());
                // The books kept as postings arrive are the balances summed by kind.
                let books = ledger.by_kind();
                prop_assert_eq!((books.total(), books.escrow, books.held), (0, escrow, m.held().0 as i64));
                prop_assert_eq!(books.platform_revenue, ledger.balance(Account::PlatformRevenue));
                prop_assert_eq!(books.refunds, ledger.balance(Account::Refunds));
            }
        }
    }
}
