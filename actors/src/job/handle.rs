//! One message to a job's actor, carried out.

use std::collections::VecDeque;
use std::time::Duration;

use dispatch_engine::{ContractorStatus, JobEvent, JobState};
use ractor::{ActorProcessingErr, ActorRef};

use crate::error::Result;
use crate::record::LogRecord;

use super::*;

/// One message carried out (see [`JobActor::handle`]).
pub(super) async fn handle_message(myself: ActorRef<JobMsg>, msg: JobMsg, state: &mut JobActorState) -> Result<(), ActorProcessingErr> {
    let started = std::time::Instant::now();
    match msg {
        JobMsg::Search => state.search(&myself).await,
        JobMsg::OfferTimeout { contractor, expires_at } => {
            let current =
                matches!(state.state(), JobState::Offering { contractor: c, expires_at: e } if *c == contractor && *e == expires_at);
            if current {
                let now = state.shared.clock.now().max(expires_at);
                match state.transition(JobEvent::OfferExpired { now }, LogRecord::OfferExpired { contractor }).await {
                    Ok(_) => {
                        metrics::counter!("dispatch_offers_total", "outcome" => "expired").increment(1);
                        state.update_contractor(contractor, ContractorStatus::Available).await;
                        state.search(&myself).await;
                    }
                    Err(e) => {
                        tracing::warn!(job = %state.id(), %e, "offer timeout not stored; retrying");
                        state.timer(&myself, Duration::from_secs(1), move || JobMsg::OfferTimeout { contractor, expires_at });
                    }
                }
            }
        }
        JobMsg::Arriving { contractor, distance_m } => {
            let holds =
                matches!(state.state(), JobState::Accepted { contractor: c } | JobState::EnRoute { contractor: c } if *c == contractor);
            if holds && let Err(e) = state.shared.log_event(state.id(), LogRecord::Arriving { contractor, distance_m }).await {
                tracing::warn!(job = %state.id(), %e, "arriving not logged");
            }
        }
        JobMsg::Act { action, contractor, tag, reply } => {
            let result = state.act(&myself, action, contractor, tag).await;
            let done = result.is_ok();
            let _ = reply.send(result);
            if done {
                state.after(&myself, action, contractor).await;
            }
        }
        JobMsg::Cancel { by, reason, reply } => {
            let was = state.state().kind();
            let held = state.state().contractor();
            let log = LogRecord::Cancelled { by, reason: reason.clone() };
            let result = state.transition(JobEvent::Cancelled { by, reason }, log).await;
            if let (Ok(_), Some(contractor)) = (&result, held) {
                state.update_contractor(contractor, ContractorStatus::Available).await;
            }
            let done = result.is_ok();
            let _ = reply.send(result);
            if done {
                state.cancel_money(&myself, was, held).await;
                state.advance(&myself).await;
            }
        }
        JobMsg::Hold(reply) => {
            let _ = reply.send(state.hold_answer());
        }
        JobMsg::Advance => state.advance(&myself).await,
        JobMsg::Reconcile => state.reconcile(&myself).await,
        JobMsg::Pay { asker, act, reply } => {
            let _ = reply.send(state.pay(&myself, asker, act).await);
        }
        JobMsg::Reported { report, reply } => {
            let _ = reply.send(state.reported(&myself, report).await);
        }
        JobMsg::Rate { customer, stars, tag, reply } => {
            let mut snap = state.snap.clone();
            let result = crate::requests::rate_snapshot(&state.shared, &mut snap, customer, stars, tag).await;
            if result.is_ok() {
                state.snap = snap;
            }
            let _ = reply.send(result);
        }
        JobMsg::Candidates(reply) => {
            let mut found = VecDeque::new();
            if *state.state() == JobState::Posted {
                found = state.find_candidates().await;
                while found.is_empty() && state.snap.radius_m < state.shared.config.max_radius_m {
                    state.widen();
                    found = state.find_candidates().await;
                }
                state.ever_found |= !found.is_empty();
            }
            let _ = reply.send(found.into_iter().map(|r| (r.id, r.eta_secs)).collect());
        }
        JobMsg::OfferTo { contractor, eta_secs } => {
            let open = *state.state() == JobState::Posted && !state.snap.machine.excluded().contains(&contractor);
            if open && !state.offer(&myself, Ranked { id: contractor, eta_secs }).await {
                state.search(&myself).await; // back into the next batch
            }
        }
        JobMsg::Get(reply) => {
            let _ = reply.send(state.snap.clone());
        }
        JobMsg::Reannounce => state.announce_demand().await,
        JobMsg::ExpireCheck => {
            if is_open(state.state()) {
                let held = state.state().contractor();
                let minutes = state.shared.config.job_ttl.as_secs() / 60;
                let reason = if state.ever_found {
                    format!("no contractor accepted within {minutes} min")
                } else {
                    format!("no available contractor within {} km", state.shared.config.max_radius_m / 1000.0)
                };
                match state.transition(JobEvent::Expired, LogRecord::Expired { reason }).await {
                    Ok(_) => {
                        if let Some(contractor) = held {
                            state.update_contractor(contractor, ContractorStatus::Available).await;
                        }
                        state.advance(&myself).await;
                    }
                    Err(e) => {
                        tracing::warn!(job = %state.id(), %e, "expiry not stored; retrying");
                        state.timer(&myself, Duration::from_secs(1), || JobMsg::ExpireCheck);
                    }
                }
            }
        }
        #[cfg(feature = "testsuite")]
        JobMsg::Panic => panic!("test hook: job {} panics", state.id()),
    }
    metrics::histogram!("dispatch_message_seconds", "kind" => "job").record(started.elapsed().as_secs_f64());
    Ok(())
}
