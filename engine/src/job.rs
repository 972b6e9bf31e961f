//! The job state machine.
//!
//! ```text
//! Posted ──Offered──▶ Offering(c, expires_at) ──Accepted──▶ Accepted ──EnRoute──▶ EnRoute ──OnSite──▶ OnSite ──Completed──▶ Completed
//!   ▲                   │ Declined / OfferExpired              │ Withdrawn          │ Withdrawn
//!   └───────────────────┴──────────────────────────────────────┴────────────────────┘   (c is excluded from later offers)
//! Cancelled(by, reason) and Expired lead from every non-terminal state to Cancelled / Expired.
//! ```
//!
//! One vocabulary: a [`JobEvent`] is named for what happened, the same name
//! the job's log, the broadcast and the wire give it (`offer_expired`,
//! `en_route`, …); a [`JobState`] is named for where the job is after it.
//! Which party action causes which event, state and contractor status is one
//! table, [`crate::lifecycle::LIFECYCLE`].
//!
//! `Withdrawn` (the assigned contractor drops out, or a dispatcher takes the
//! job back to reassign it) is the one addition to the plan's diagram: without
//! it a job whose contractor's van breaks down could only be cancelled.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::{ContractorId, Party, Timestamp};

/// Where a job is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for an offer to go out.
    Posted,
    /// Offered to `contractor` until `expires_at`.
    Offering {
        /// Who holds the offer.
        contractor: ContractorId,
        /// When the offer lapses.
        expires_at: Timestamp,
    },
    /// `contractor` accepted and has not set off yet.
    Accepted {
        /// The assigned contractor.
        contractor: ContractorId,
    },
    /// `contractor` is driving to the site.
    EnRoute {
        /// The assigned contractor.
        contractor: ContractorId,
    },
    /// `contractor` is working at the site.
    OnSite {
        /// The assigned contractor.
        contractor: ContractorId,
    },
    /// Done (terminal).
    Completed {
        /// Who did the work.
        contractor: ContractorId,
    },
    /// Called off (terminal).
    Cancelled {
        /// Who called it off.
        by: Party,
        /// Why, in their words.
        reason: String,
    },
    /// Nobody took it in time, or its window passed (terminal).
    Expired,
}

/// Something that happens to a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobEvent {
    /// Offer the job to `contractor` until `expires_at`.
    Offered {
        /// The contractor offered the job.
        contractor: ContractorId,
        /// When the offer lapses.
        expires_at: Timestamp,
    },
    /// The offered contractor accepts.
    Accepted {
        /// Who accepts (must be the offered contractor).
        contractor: ContractorId,
    },
    /// The offered contractor declines.
    Declined {
        /// Who declines (must be the offered contractor).
        contractor: ContractorId,
    },
    /// The offer's deadline passed with no answer.
    OfferExpired {
        /// The time now (must be at or after the offer's deadline).
        now: Timestamp,
    },
    /// The assigned contractor sets off.
    EnRoute {
        /// Who sets off (must be the assigned contractor).
        contractor: ContractorId,
    },
    /// The assigned contractor reaches the site.
    OnSite {
        /// Who arrived (must be the assigned contractor).
        contractor: ContractorId,
    },
    /// The assigned contractor finishes.
    Completed {
        /// Who finished (must be the assigned contractor).
        contractor: ContractorId,
    },
    /// The assigned contractor drops out or is taken off by a dispatcher; the job goes back to Posted.
    Withdrawn {
        /// The contractor leaving the job (must be the assigned contractor).
        contractor: ContractorId,
    },
    /// Someone calls the job off.
    Cancelled {
        /// Who.
        by: Party,
        /// Why.
        reason: String,
    },
    /// The job ran out of time.
    Expired,
}

/// [`JobState`] without its data: for errors, metrics and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs, reason = "each variant mirrors the JobState variant of the same name")]
pub enum JobStateKind {
    Posted,
    Offering,
    Accepted,
    EnRoute,
    OnSite,
    Completed,
    Cancelled,
    Expired,
}

impl JobStateKind {
    /// Every state kind, in lifecycle order.
    pub const ALL: [JobStateKind; 8] = [
        JobStateKind::Posted,
        JobStateKind::Offering,
        JobStateKind::Accepted,
        JobStateKind::EnRoute,
        JobStateKind::OnSite,
        JobStateKind::Completed,
        JobStateKind::Cancelled,
        JobStateKind::Expired,
    ];
}

/// [`JobEvent`] without its data: for errors and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs, reason = "each variant mirrors the JobEvent variant of the same name")]
pub enum JobEventKind {
    Offered,
    Accepted,
    Declined,
    OfferExpired,
    EnRoute,
    OnSite,
    Completed,
    Withdrawn,
    Cancelled,
    Expired,
}

impl JobEventKind {
    /// Every event kind.
    pub const ALL: [JobEventKind; 10] = [
        JobEventKind::Offered,
        JobEventKind::Accepted,
        JobEventKind::Declined,
        JobEventKind::OfferExpired,
        JobEventKind::EnRoute,
        JobEventKind::OnSite,
        JobEventKind::Completed,
        JobEventKind::Withdrawn,
        JobEventKind::Cancelled,
        JobEventKind::Expired,
    ];
}

impl JobState {
    /// The state without its data.
    #[must_use]
    pub const fn kind(&self) -> JobStateKind {
        match self {
            JobState::Posted => JobStateKind::Posted,
            JobState::Offering { .. } => JobStateKind::Offering,
            JobState::Accepted { .. } => JobStateKind::Accepted,
            JobState::EnRoute { .. } => JobStateKind::EnRoute,
            JobState::OnSite { .. } => JobStateKind::OnSite,
            JobState::Completed { .. } => JobStateKind::Completed,
            JobState::Cancelled { .. } => JobStateKind::Cancelled,
            JobState::Expired => JobStateKind::Expired,
        }
    }

    /// Whether no event can move the job any more.
    #[must_use]
    pub const fn is_terminal(&self) -> bool {
        matches!(self, JobState::Completed { .. } | JobState::Cancelled { .. } | JobState::Expired)
    }

    /// The contractor holding the offer or the assignment, if any.
    #[must_use]
    pub const fn contractor(&self) -> Option<ContractorId> {
        match self {
            JobState::Offering { contractor, .. }
            | JobState::Accepted { contractor }
            | JobState::EnRoute { contractor }
            | JobState::OnSite { contractor }
            | JobState::Completed { contractor } => Some(*contractor),
            JobState::Posted | JobState::Cancelled { .. } | JobState::Expired => None,
        }
    }
}

impl JobEvent {
    /// The event without its data.
    #[must_use]
    pub const fn kind(&self) -> JobEventKind {
        match self {
            JobEvent::Offered { .. } => JobEventKind::Offered,
            JobEvent::Accepted { .. } => JobEventKind::Accepted,
            JobEvent::Declined { .. } => JobEventKind::Declined,
            JobEvent::OfferExpired { .. } => JobEventKind::OfferExpired,
            JobEvent::EnRoute { .. } => JobEventKind::EnRoute,
            JobEvent::OnSite { .. } => JobEventKind::OnSite,
            JobEvent::Completed { .. } => JobEventKind::Completed,
            JobEvent::Withdrawn { .. } => JobEventKind::Withdrawn,
            JobEvent::Cancelled { .. } => JobEventKind::Cancelled,
            JobEvent::Expired => JobEventKind::Expired,
        }
    }
}

/// A job's state plus what the machine remembers across offers: the
/// contractors who declined, let an offer lapse or withdrew, none of whom is
/// offered this job again.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JobMachine {
    state: JobStateOrDefault,
    excluded: BTreeSet<ContractorId>,
}

/// `JobState` with `Posted` as its default, so `JobMachine` can derive `Default`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
struct JobStateOrDefault(JobState);

impl Default for JobStateOrDefault {
    fn default() -> Self {
        Self(JobState::Posted)
    }
}

impl JobMachine {
    /// A freshly posted job.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> &JobState {
        &self.state.0
    }

    /// Contractors this job will not be offered to again.
    #[must_use]
    pub fn excluded(&self) -> &BTreeSet<ContractorId> {
        &self.excluded
    }

    /// Applies `event`. On error the machine is unchanged.
    pub fn apply(&mut self, event: JobEvent) -> Result<&JobState> {
        let illegal = || Error::IllegalTransition { state: self.state.0.kind(), event: event.kind() };
        // Who asks is checked before what is asked: a contractor who is not
        // the job's learns nothing about its state from the refusal.
        let asker = match &event {
            JobEvent::Accepted { contractor }
            | JobEvent::Declined { contractor }
            | JobEvent::EnRoute { contractor }
            | JobEvent::OnSite { contractor }
            | JobEvent::Completed { contractor }
            | JobEvent::Withdrawn { contractor } => Some(*contractor),
            _ => None,
        };
        if let (Some(who), Some(holder)) = (asker, self.state.0.contractor()) {
            same(holder, who)?;
        }
        let next = match (&self.state.0, &event) {
            (JobState::Posted, JobEvent::Offered { contractor, expires_at }) => {
                if self.excluded.contains(contractor) {
                    return Err(Error::ContractorExcluded(*contractor));
                }
                JobState::Offering { contractor: *contractor, expires_at: *expires_at }
            }
            (JobState::Offering { contractor, .. }, JobEvent::Accepted { contractor: who }) => {
                same(*contractor, *who)?;
                JobState::Accepted { contractor: *contractor }
            }
            (JobState::Offering { contractor, .. }, JobEvent::Declined { contractor: who }) => {
                same(*contractor, *who)?;
                self.excluded.insert(*contractor);
                JobState::Posted
            }
            (JobState::Offering { contractor, expires_at }, JobEvent::OfferExpired { now }) => {
                if now < expires_at {
                    return Err(Error::OfferNotExpired { expires_at_ms: expires_at.0, now_ms: now.0 });
                }
                self.excluded.insert(*contractor);
                JobState::Posted
            }
            (JobState::Accepted { contractor }, JobEvent::EnRoute { contractor: who }) => {
                same(*contractor, *who)?;
                JobState::EnRoute { contractor: *contractor }
            }
            (JobState::EnRoute { contractor }, JobEvent::OnSite { contractor: who }) => {
                same(*contractor, *who)?;
                JobState::OnSite { contractor: *contractor }
            }
            (JobState::OnSite { contractor }, JobEvent::Completed { contractor: who }) => {
                same(*contractor, *who)?;
                JobState::Completed { contractor: *contractor }
            }
            (JobState::Accepted { contractor } | JobState::EnRoute { contractor }, JobEvent::Withdrawn { contractor: who }) => {
                same(*contractor, *who)?;
                self.excluded.insert(*contractor);
                JobState::Posted
            }
            (state, JobEvent::Cancelled { by, reason }) if !state.is_terminal() => JobState::Cancelled { by: *by, reason: reason.clone() },
            (state, JobEvent::Expired) if !state.is_terminal() => JobState::Expired,
            _ => return Err(illegal()),
        };
        self.state.0 = next;
        Ok(&self.state.0)
    }
}

fn same(expected: ContractorId, got: ContractorId) -> Result<()> {
    if expected == got { Ok(()) } else { Err(Error::WrongContractor { expected, got }) }
}

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;
