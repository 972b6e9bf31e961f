use super::*;
use JobEventKind as E;
use JobStateKind as S;

const C: ContractorId = ContractorId(7);
const OTHER: ContractorId = ContractorId(8);
const DEADLINE: Timestamp = Timestamp(60_000);

/// A machine in the given state, reached through legal events only.
fn machine_in(state: S) -> JobMachine {
    let mut m = JobMachine::new();
    let path: &[JobEvent] = match state {
        S::Posted => &[],
        S::Offering => &[offer()],
        S::Accepted => &[offer(), JobEvent::Accepted { contractor: C }],
        S::EnRoute => &[offer(), JobEvent::Accepted { contractor: C }, JobEvent::EnRoute { contractor: C }],
        S::OnSite => {
            &[offer(), JobEvent::Accepted { contractor: C }, JobEvent::EnRoute { contractor: C }, JobEvent::OnSite { contractor: C }]
        }
        S::Completed => &[
            offer(),
            JobEvent::Accepted { contractor: C },
            JobEvent::EnRoute { contractor: C },
            JobEvent::OnSite { contractor: C },
            JobEvent::Completed { contractor: C },
        ],
        S::Cancelled => &[JobEvent::Cancelled { by: Party::Customer, reason: "changed my mind".into() }],
        S::Expired => &[JobEvent::Expired],
    };
    for e in path {
        m.apply(e.clone()).unwrap();
    }
    assert_eq!(m.state().kind(), state);
    m
}

fn offer() -> JobEvent {
    JobEvent::Offered { contractor: C, expires_at: DEADLINE }
}

/// An event of the given kind, naming the contractor the job holds and a late enough time.
fn event(kind: E) -> JobEvent {
    match kind {
        E::Offered => JobEvent::Offered { contractor: OTHER, expires_at: DEADLINE },
        E::Accepted => JobEvent::Accepted { contractor: C },
        E::Declined => JobEvent::Declined { contractor: C },
        E::OfferExpired => JobEvent::OfferExpired { now: DEADLINE },
        E::EnRoute => JobEvent::EnRoute { contractor: C },
        E::OnSite => JobEvent::OnSite { contractor: C },
        E::Completed => JobEvent::Completed { contractor: C },
        E::Withdrawn => JobEvent::Withdrawn { contractor: C },
        E::Cancelled => JobEvent::Cancelled { by: Party::Dispatcher, reason: "duplicate".into() },
        E::Expired => JobEvent::Expired,
    }
}

/// The whole table, written out: `Some(next)` where the pair is legal.
fn expected(state: S, event: E) -> Option<S> {
    match (state, event) {
        (S::Posted, E::Offered) => Some(S::Offering),
        (S::Offering, E::Accepted) => Some(S::Accepted),
        (S::Offering, E::Declined | E::OfferExpired) => Some(S::Posted),
        (S::Accepted, E::EnRoute) => Some(S::EnRoute),
        (S::EnRoute, E::OnSite) => Some(S::OnSite),
        (S::OnSite, E::Completed) => Some(S::Completed),
        (S::Accepted | S::EnRoute, E::Withdrawn) => Some(S::Posted),
        (S::Posted | S::Offering | S::Accepted | S::EnRoute | S::OnSite, E::Cancelled) => Some(S::Cancelled),
        (S::Posted | S::Offering | S::Accepted | S::EnRoute | S::OnSite, E::Expired) => Some(S::Expired),
        _ => None,
    }
}

#[test]
fn every_state_times_every_event() {
    let mut legal = 0;
    for state in S::ALL {
        for kind in E::ALL {
            let mut m = machine_in(state);
            let before = m.clone();
            let got = m.apply(event(kind)).map(JobState::kind);
            match expected(state, kind) {
                Some(next) => {
                    assert_eq!(got, Ok(next), "{state:?} × {kind:?}");
                    legal += 1;
                }
                None => {
                    assert_eq!(got, Err(Error::IllegalTransition { state, event: kind }), "{state:?} × {kind:?} must be refused");
                    assert_eq!(m, before, "a refused event leaves the machine as it was");
                }
            }
        }
    }
    assert_eq!(legal, 19, "80 pairs, 19 of them legal");
}

#[test]
fn decline_and_timeout_exclude_the_contractor_from_later_offers() {
    let mut m = machine_in(S::Offering);
    m.apply(JobEvent::Declined { contractor: C }).unwrap();
    assert!(m.excluded().contains(&C));
    assert_eq!(m.apply(offer()), Err(Error::ContractorExcluded(C)));
    m.apply(JobEvent::Offered { contractor: OTHER, expires_at: DEADLINE }).unwrap();
    m.apply(JobEvent::OfferExpired { now: Timestamp(DEADLINE.0 + 1) }).unwrap();
    assert_eq!(m.state(), &JobState::Posted);
    assert_eq!(m.excluded().iter().copied().collect::<Vec<_>>(), vec![C, OTHER]);
}

#[test]
fn a_timeout_before_the_deadline_is_refused() {
    let mut m = machine_in(S::Offering);
    assert_eq!(
        m.apply(JobEvent::OfferExpired { now: Timestamp(DEADLINE.0 - 1) }),
        Err(Error::OfferNotExpired { expires_at_ms: DEADLINE.0, now_ms: DEADLINE.0 - 1 })
    );
    assert_eq!(m.state().kind(), S::Offering);
}

#[test]
fn only_the_contractor_holding_the_job_can_move_it() {
    // Legal moves for the holder, and (the last four) illegal ones: another
    // contractor is told only that the job is not theirs, never its state.
    for (state, kind) in [
        (S::Offering, E::Accepted),
        (S::Offering, E::Declined),
        (S::Accepted, E::EnRoute),
        (S::EnRoute, E::OnSite),
        (S::OnSite, E::Completed),
        (S::Accepted, E::Withdrawn),
        (S::Accepted, E::OnSite),
        (S::Accepted, E::Accepted),
        (S::Completed, E::Completed),
        (S::EnRoute, E::Declined),
    ] {
        let mut m = machine_in(state);
        let mut e = event(kind);
        match &mut e {
            JobEvent::Accepted { contractor }
            | JobEvent::Declined { contractor }
            | JobEvent::EnRoute { contractor }
            | JobEvent::OnSite { contractor }
            | JobEvent::Completed { contractor }
            | JobEvent::Withdrawn { contractor } => *contractor = OTHER,
            _ => unreachable!(),
        }
        assert_eq!(m.apply(e), Err(Error::WrongContractor { expected: C, got: OTHER }), "{state:?} × {kind:?}");
        assert_eq!(m.state().kind(), state);
    }
}

#[test]
fn withdraw_returns_the_job_for_reassignment() {
    let mut m = machine_in(S::EnRoute);
    m.apply(JobEvent::Withdrawn { contractor: C }).unwrap();
    assert_eq!(m.state(), &JobState::Posted);
    assert_eq!(m.state().contractor(), None);
    m.apply(JobEvent::Offered { contractor: OTHER, expires_at: DEADLINE }).unwrap();
    assert_eq!(m.state().contractor(), Some(OTHER));
}
