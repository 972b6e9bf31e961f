//! What a party does to a job, and what follows — one table.
//!
//! | action (wire) | event (logged, broadcast) | job state after | contractor status after |
//! |---|---|---|---|
//! | `accept` | `accepted` | Accepted | en route (immediate jobs; a scheduled one is booked and leaves them available) |
//! | `decline` | `declined` | Posted (searching again) | available |
//! | `job_status en_route` | `en_route` | EnRoute | en route |
//! | `job_status on_site` | `on_site` | OnSite | on site |
//! | `job_status completed` | `completed` | Completed | available |
//! | withdraw (contractor drops out) | `withdrawn` | Posted (searching again) | available |
//! | `assign` (dispatcher) | `offered` (after `withdrawn` for whoever held it) | Offering | offered |
//!
//! The job actor carries every action through [`JobAction::step`]; the
//! state machine ([`JobMachine`](crate::JobMachine)) decides whether it is
//! allowed.

use serde::{Deserialize, Serialize};

use crate::job::{JobEvent, JobEventKind, JobStateKind};
use crate::types::{ContractorId, ContractorStatus, JobId, StatusKind};

/// Something a contractor (or, for `Assign`, a dispatcher) does to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobAction {
    /// The offered contractor takes the job.
    Accept,
    /// The offered contractor passes.
    Decline,
    /// The assigned contractor sets off.
    EnRoute,
    /// The assigned contractor reaches the site.
    OnSite,
    /// The assigned contractor finishes.
    Complete,
    /// The assigned contractor drops out.
    Withdraw,
    /// A dispatcher offers the job to a contractor of their choice.
    Assign,
}

/// One row of [`LIFECYCLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// What the party does.
    pub action: JobAction,
    /// The event it becomes in the job's log.
    pub event: JobEventKind,
    /// Where the job is after it.
    pub state: JobStateKind,
    /// The contractor's status after it.
    pub contractor: StatusKind,
}

/// Every action, its event, the job's state after it and the contractor's status.
pub const LIFECYCLE: [Step; 7] = [
    Step { action: JobAction::Accept, event: JobEventKind::Accepted, state: JobStateKind::Accepted, contractor: StatusKind::EnRoute },
    Step { action: JobAction::Decline, event: JobEventKind::Declined, state: JobStateKind::Posted, contractor: StatusKind::Available },
    Step { action: JobAction::EnRoute, event: JobEventKind::EnRoute, state: JobStateKind::EnRoute, contractor: StatusKind::EnRoute },
    Step { action: JobAction::OnSite, event: JobEventKind::OnSite, state: JobStateKind::OnSite, contractor: StatusKind::OnSite },
    Step { action: JobAction::Complete, event: JobEventKind::Completed, state: JobStateKind::Completed, contractor: StatusKind::Available },
    Step { action: JobAction::Withdraw, event: JobEventKind::Withdrawn, state: JobStateKind::Posted, contractor: StatusKind::Available },
    Step { action: JobAction::Assign, event: JobEventKind::Offered, state: JobStateKind::Offering, contractor: StatusKind::Offered },
];

impl JobAction {
    /// Every action.
    pub const ALL: [JobAction; 7] = [
        JobAction::Accept,
        JobAction::Decline,
        JobAction::EnRoute,
        JobAction::OnSite,
        JobAction::Complete,
        JobAction::Withdraw,
        JobAction::Assign,
    ];

    /// This action's row of [`LIFECYCLE`].
    #[must_use]
    pub fn step(self) -> Step {
        LIFECYCLE.iter().copied().find(|s| s.action == self).unwrap_or(LIFECYCLE[0])
    }

    /// The state-machine event for `contractor` doing this (an `Assign` is
    /// more than one event and has none of its own).
    #[must_use]
    pub const fn event(self, contractor: ContractorId) -> Option<JobEvent> {
        Some(match self {
            JobAction::Accept => JobEvent::Accepted { contractor },
            JobAction::Decline => JobEvent::Declined { contractor },
            JobAction::EnRoute => JobEvent::EnRoute { contractor },
            JobAction::OnSite => JobEvent::OnSite { contractor },
            JobAction::Complete => JobEvent::Completed { contractor },
            JobAction::Withdraw => JobEvent::Withdrawn { contractor },
            JobAction::Assign => return None,
        })
    }

    /// The contractor's status on `job` after this, from the table.
    #[must_use]
    pub fn contractor_status(self, job: JobId) -> ContractorStatus {
        match self.step().contractor {
            StatusKind::EnRoute => ContractorStatus::EnRoute(job),
            StatusKind::OnSite => ContractorStatus::OnSite(job),
            StatusKind::Offered => ContractorStatus::Offered(job),
            StatusKind::Offline => ContractorStatus::Offline,
            StatusKind::OnBreak => ContractorStatus::OnBreak,
            StatusKind::Available => ContractorStatus::Available,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobMachine;
    use crate::types::Timestamp;

    /// A machine in the state each action starts from.
    fn before(action: JobAction, c: ContractorId) -> JobMachine {
        let mut m = JobMachine::new();
        let offer = JobEvent::Offered { contractor: c, expires_at: Timestamp(10) };
        let path: Vec<JobEvent> = match action {
            JobAction::Accept | JobAction::Decline => vec![offer],
            JobAction::EnRoute | JobAction::Withdraw => vec![offer, JobEvent::Accepted { contractor: c }],
            JobAction::OnSite => vec![offer, JobEvent::Accepted { contractor: c }, JobEvent::EnRoute { contractor: c }],
            JobAction::Complete => {
                vec![offer, JobEvent::Accepted { contractor: c }, JobEvent::EnRoute { contractor: c }, JobEvent::OnSite { contractor: c }]
            }
            JobAction::Assign => vec![],
        };
        for e in path {
            m.apply(e).unwrap();
        }
        m
    }

    #[test]
    fn each_action_leads_to_the_event_and_state_its_row_names() {
        let c = ContractorId(7);
        for action in JobAction::ALL {
            let step = action.step();
            assert_eq!(step.action, action);
            let Some(event) = action.event(c) else {
                assert_eq!(action, JobAction::Assign);
                continue;
            };
            assert_eq!(event.kind(), step.event, "{action:?}");
            let mut m = before(action, c);
            assert_eq!(m.apply(event).unwrap().kind(), step.state, "{action:?}");
            assert_eq!(action.contractor_status(crate::types::JobId(1)).kind(), step.contractor);
        }
        // Every action has exactly one row.
        for action in JobAction::ALL {
            assert_eq!(LIFECYCLE.iter().filter(|s| s.action == action).count(), 1, "{action:?}");
        }
    }
}
