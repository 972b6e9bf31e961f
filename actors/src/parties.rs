//! Who may act on a job: every party check of the system, in this layer.
//!
//! The gateway decides only which *role* may send which message; whether
//! this customer, contractor or dispatcher is a party of *this* job is
//! decided here, beside the job's state, so every front door (a gateway on
//! another machine, an operator API) gets the same answer:
//!
//! - a customer acts on, follows, chats on and rates only the jobs they posted;
//! - a contractor chats on and replays only the jobs assigned to them, and
//!   answers or progresses only the job offered or assigned to them (that
//!   last check is the engine's [`JobMachine`](dispatch_engine::JobMachine),
//!   which the job actor applies: it checks who asks before what is asked);
//! - a contractor cannot cancel a job (they decline or hand it back);
//! - a dispatcher is a party of every job of their city.

use dispatch_engine::{ContractorId, CustomerId, JobState, Party};

use crate::error::{ActorError, Result};
use crate::record::JobSnapshot;

/// Who asks, as their token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker {
    /// A customer.
    Customer(CustomerId),
    /// A contractor.
    Contractor(ContractorId),
    /// A dispatcher of the city.
    Dispatcher,
}

/// The contractor assigned to a job in this state (not merely offered it).
#[must_use]
pub fn assigned_to(state: &JobState) -> Option<ContractorId> {
    match state {
        JobState::Accepted { contractor }
        | JobState::EnRoute { contractor }
        | JobState::OnSite { contractor }
        | JobState::Completed { contractor } => Some(*contractor),
        _ => None,
    }
}

/// The asker's part in the job: the customer who posted it, the contractor
/// assigned to it, or a dispatcher; anyone else is [`ActorError::NotParty`].
pub fn party_in(snap: &JobSnapshot, asker: Asker) -> Result<Party> {
    match asker {
        Asker::Dispatcher => Ok(Party::Dispatcher),
        Asker::Customer(c) if snap.job.customer == c => Ok(Party::Customer),
        Asker::Contractor(c) if assigned_to(snap.machine.state()) == Some(c) => Ok(Party::Contractor),
        _ => Err(ActorError::NotParty(snap.job.id, format!("you are not a participant of job {}", snap.job.id.0))),
    }
}

/// Who may call the job off: its customer or a dispatcher, as that party.
pub fn may_cancel(snap: &JobSnapshot, asker: Asker) -> Result<Party> {
    match asker {
        Asker::Contractor(_) => Err(ActorError::NotParty(snap.job.id, "contractors cannot cancel jobs; decline or hand them back".into())),
        Asker::Customer(c) if snap.job.customer != c => {
            Err(ActorError::NotParty(snap.job.id, format!("job {} is not yours", snap.job.id.0)))
        }
        asker => party_in(snap, asker),
    }
}

/// Only the customer who posted the job may rate it.
pub fn may_rate(snap: &JobSnapshot, customer: CustomerId) -> Result<()> {
    if snap.job.customer == customer {
        Ok(())
    } else {
        Err(ActorError::NotParty(snap.job.id, format!("only the customer who posted job {} may rate it", snap.job.id.0)))
    }
}

#[cfg(test)]
mod tests {
    use dispatch_engine::pricing::PriceQuote;
    use dispatch_engine::{GeoPoint, Job, JobEvent, JobId, JobMachine, Money, Timestamp, Trade, Urgency};

    use super::*;

    fn job(events: &[JobEvent]) -> JobSnapshot {
        let mut machine = JobMachine::new();
        for e in events {
            machine.apply(e.clone()).unwrap();
        }
        JobSnapshot {
            job: Job {
                id: JobId(3),
                customer: CustomerId(1),
                trade: Trade::Plumbing,
                location: GeoPoint::new(41.6, -93.6).unwrap(),
                urgency: Urgency::Today,
                description: "x".into(),
                budget: None,
                posted_at: Timestamp(0),
            },
            machine,
            quote: PriceQuote { base: Money(1), surge: 1.0, urgency: 1.0, total: Money(1) },
            radius_m: 1.0,
            offers_this_round: 0,
            expired_reason: None,
            accepted_at: None,
            rated_stars: None,
            payment: None,
            payee: None,
        }
    }

    #[test]
    fn each_asker_is_a_party_only_of_their_own_jobs() {
        let c = ContractorId(7);
        let offered = job(&[JobEvent::Offered { contractor: c, expires_at: Timestamp(9) }]);
        let accepted = job(&[JobEvent::Offered { contractor: c, expires_at: Timestamp(9) }, JobEvent::Accepted { contractor: c }]);
        assert_eq!(party_in(&offered, Asker::Customer(CustomerId(1))).unwrap(), Party::Customer);
        assert_eq!(party_in(&offered, Asker::Dispatcher).unwrap(), Party::Dispatcher);
        assert!(matches!(party_in(&offered, Asker::Customer(CustomerId(2))), Err(ActorError::NotParty(..))));
        assert!(matches!(party_in(&offered, Asker::Contractor(c)), Err(ActorError::NotParty(..))), "offered is not assigned");
        assert_eq!(party_in(&accepted, Asker::Contractor(c)).unwrap(), Party::Contractor);
        assert!(matches!(party_in(&accepted, Asker::Contractor(ContractorId(8))), Err(ActorError::NotParty(..))));
        assert!(matches!(may_cancel(&accepted, Asker::Contractor(c)), Err(ActorError::NotParty(..))));
        assert!(may_cancel(&accepted, Asker::Customer(CustomerId(2))).unwrap_err().to_string().contains("not yours"));
        assert_eq!(may_cancel(&accepted, Asker::Customer(CustomerId(1))).unwrap(), Party::Customer);
        assert!(may_rate(&accepted, CustomerId(1)).is_ok());
        assert!(may_rate(&accepted, CustomerId(2)).is_err());
    }
}
