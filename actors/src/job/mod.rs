//! The job actor: one per open job, running its lifecycle with the engine's
//! state machine.
//!
//! On post (and after every decline or lapsed offer) it searches for
//! candidates through the cell actors in the order of the engine's ring walk
//! ([`dispatch_engine::RingWalk`], the one the in-memory index runs), scores them,
//! and offers the job to the best one still free, with a timeout. After
//! [`DispatchConfig::offers_per_round`] failed offers, or when no candidate is
//! left, the radius doubles up to [`DispatchConfig::max_radius_m`]; at the
//! maximum with nobody to offer it waits [`DispatchConfig::retry_after`] and
//! searches again, until [`DispatchConfig::job_ttl`] runs out and the job
//! expires with a reason.
//!
//! Every transition is written to the store (snapshot, then the event log)
//! before it is acknowledged; if the store refuses, the job stays as it was
//! and the caller gets the error.
//!
//! With payments on, the job's money runs beside it (`money.rs`): a job is
//! offered once its hold is on, charged when completed, and its actor
//! lives until the charge is paid out.
//!
//! [`DispatchConfig::offers_per_round`]: crate::DispatchConfig::offers_per_round
//! [`DispatchConfig::max_radius_m`]: crate::DispatchConfig::max_radius_m
//! [`DispatchConfig::retry_after`]: crate::DispatchConfig::retry_after
//! [`DispatchConfig::job_ttl`]: crate::DispatchConfig::job_ttl

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use dispatch_engine::JobAction;
use dispatch_engine::routing::Stop;
use dispatch_engine::{ContractorId, ContractorStatus, JobEvent, JobId, JobState, Party, TimeWindow, Timestamp, Urgency};
use dispatch_storage::{Kind, SnapshotPut, codec};
use h3o::CellIndex;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::cell::CellMsg;
use crate::contractor::ContractorMsg;
use crate::error::{ActorError, Result};
use crate::record::JobSnapshot;
use crate::record::LogRecord;
use crate::shared::{Shared, forget_if_same};

mod handle;
mod money;
mod search;

pub use money::PaymentAct;
pub(crate) use money::{declined_or_posted, receipt, tell_earnings};
pub(crate) use search::nearest_live;
pub use search::{UNVERIFIED_YEARS, scored_years};

/// How long an actor is given to answer a call (a request from a job, or
/// from the city's handle). A store call must give up before it, so a slow
/// store turns degraded and buffers the write instead of failing the
/// request; the gateway's configuration check holds its store timeout below.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages to a job actor. Requests from people carry the contractor they
/// come from; the state machine refuses anyone but the one holding the job.
#[derive(Debug)]
pub enum JobMsg {
    /// Look for a contractor and make an offer (no-op unless Posted).
    Search,
    /// A party's action on the job (`Assign` from a dispatcher, the others
    /// from the offered or assigned contractor); what follows is the
    /// engine's [`LIFECYCLE`](dispatch_engine::LIFECYCLE) table.
    Act {
        /// What they do.
        action: JobAction,
        /// The contractor acting, or (for `Assign`) the one chosen.
        contractor: ContractorId,
        /// An accept's request id, if the client gave one: its record is stored with the accept.
        tag: Option<crate::record::RequestTag>,
        /// The new state, once stored.
        reply: RpcReplyPort<Result<JobState>>,
    },
    /// Timer: the offer to `contractor` made with deadline `expires_at` lapses.
    OfferTimeout {
        /// Who held it.
        contractor: ContractorId,
        /// Its deadline (a newer offer has another).
        expires_at: dispatch_engine::Timestamp,
    },
    /// The contractor's actor saw them come within the arriving distance.
    Arriving {
        /// Who.
        contractor: ContractorId,
        /// Metres from the site.
        distance_m: f64,
    },
    /// Someone calls the job off.
    Cancel {
        /// Who.
        by: Party,
        /// Why.
        reason: String,
        /// The new state, once stored.
        reply: RpcReplyPort<Result<JobState>>,
    },
    /// Batched mode: the job's scored candidates with their ETAs, best
    /// first, widening the radius if nobody is in range.
    Candidates(RpcReplyPort<Vec<(ContractorId, f64)>>),
    /// Batched mode: offer the job to this contractor, chosen by the batch.
    OfferTo {
        /// Who.
        contractor: ContractorId,
        /// Their ETA, seconds.
        eta_secs: f64,
    },
    /// The job's snapshot as it stands.
    Get(RpcReplyPort<JobSnapshot>),
    /// The post waits for the first hold: declined is a refusal (a job without payment, or not due one yet, answers at once).
    Hold(RpcReplyPort<Result<()>>),
    /// Take the next money step, if one is due (timers, and after a restart).
    Advance,
    /// Finish the payment calls left without an answer, then move on.
    Reconcile,
    /// A party's request on the job's money.
    Pay {
        /// Who asks.
        asker: crate::parties::Asker,
        /// What.
        act: PaymentAct,
        /// The payment as it then stands.
        reply: RpcReplyPort<Result<dispatch_engine::payment::Receipt>>,
    },
    /// The processor reported a chargeback or a reversed transfer (a webhook).
    Reported {
        /// What it reported (once per webhook event).
        report: dispatch_payments::Report,
        /// Whether it changed anything (a repeated event does not).
        reply: RpcReplyPort<Result<bool>>,
    },
    /// The customer rates the completed job (while its actor lives, for its money).
    Rate {
        /// Who rates.
        customer: dispatch_engine::CustomerId,
        /// Stars.
        stars: f64,
        /// The request's id, if it has one.
        tag: Option<crate::record::RequestTag>,
        /// The rating, once stored.
        reply: RpcReplyPort<Result<crate::handle::Rated>>,
    },
    /// Tell the job's cell again that the job is open (after the cell restarted).
    Reannounce,
    /// Timer: expire the job if nobody has accepted it by its deadline.
    ExpireCheck,
    /// Test hook: panic inside the handler.
    #[cfg(feature = "testsuite")]
    Panic,
}

/// The job actor.
pub(crate) struct JobActor;

/// A scored candidate waiting for its offer.
#[derive(Debug, Clone, Copy)]
struct Ranked {
    id: ContractorId,
    eta_secs: f64,
}

/// The job actor's state.
pub(crate) struct JobActorState {
    snap: JobSnapshot,
    shared: Arc<Shared>,
    cell: CellIndex,
    ranked: VecDeque<Ranked>,
    /// Whether a search found anybody at all, for the expiry reason.
    ever_found: bool,
    /// Timers not yet fired. Each holds a reference to the actor (and so its
    /// mailbox) until it fires — the expiry one for hours — so they are
    /// aborted when the actor stops: a soak found finished jobs kept alive
    /// by their expiry timers, ~7 KB each, at 500 jobs a second.
    timers: Vec<ractor::concurrency::JoinHandle<Result<(), ractor::MessagingErr<JobMsg>>>>,
    /// A payment call may be in flight (no answer, or a restart): no new
    /// money step until [`Self::reconcile`] has finished it.
    reconcile_due: bool,
}

/// Sends `msg` built with a reply port to `actor` and waits for the answer.
pub(crate) async fn ask<M: ractor::Message, T: Send + 'static>(actor: &ActorRef<M>, msg: impl FnOnce(RpcReplyPort<T>) -> M) -> Result<T> {
    match actor.call(msg, Some(CALL_TIMEOUT)).await? {
        CallResult::Success(v) => Ok(v),
        CallResult::Timeout => Err(ActorError::Unavailable("no answer in time".into())),
        CallResult::SenderError => Err(ActorError::Unavailable("actor stopped before answering".into())),
    }
}

fn is_open(state: &JobState) -> bool {
    matches!(state, JobState::Posted | JobState::Offering { .. })
}

impl JobActorState {
    fn id(&self) -> JobId {
        self.snap.job.id
    }

    fn state(&self) -> &JobState {
        self.snap.machine.state()
    }

    /// The job's window, if it is scheduled.
    fn window(&self) -> Option<TimeWindow> {
        match self.snap.job.urgency {
            Urgency::Scheduled(w) => Some(w),
            Urgency::Emergency | Urgency::Today => None,
        }
    }

    /// When offers may start: the window's start less the lead time, or now.
    fn offers_open_at(&self) -> Option<Timestamp> {
        self.window().map(|w| w.start.minus(self.shared.config.scheduled_lead_time))
    }

    /// When an unaccepted job expires: its window's end if scheduled, else posting + TTL.
    fn expires_at(&self) -> Timestamp {
        self.window().map_or_else(|| self.snap.job.posted_at.plus(self.shared.config.job_ttl), |w| w.end)
    }

    /// The snapshot as stored: a finished one (job and money) as final (the store may expire it).
    fn stored(&self) -> Result<SnapshotPut> {
        Ok(SnapshotPut { kind: Kind::Job, id: self.id().0, blob: codec::encode(&self.snap)?, last: self.snap.is_final() })
    }

    /// Writes the job to the city's live map.
    fn map(&self) {
        let state = self.state();
        let payment = self.snap.payment.as_ref().map(|p| p.machine().state());
        self.shared.map.put_job(crate::map::MapJob {
            id: self.id(),
            point: self.snap.job.location,
            state: state.kind(),
            trade: self.snap.job.trade,
            posted_at: self.snap.job.posted_at,
            contractor: state.contractor(),
            payment,
            version: 0,
        });
    }

    /// Tells the job's cell whether the job counts as open demand.
    async fn announce_demand(&self) {
        let (job, open) = (self.id(), is_open(self.state()));
        if let Err(e) = self.shared.cast_to_cell(self.cell, || CellMsg::Demand { job, open }).await {
            tracing::warn!(%job, %e, "could not update the cell's demand");
        }
    }

    /// Applies `event`, then stores the snapshot and logs `log` in one store
    /// commit; on a store failure the job is left exactly as it was.
    async fn transition(&mut self, event: JobEvent, log: LogRecord) -> Result<JobState> {
        self.transition_tagged(event, log, None).await
    }

    /// [`Self::transition`], storing in the same commit the record of the
    /// request `tag` names (an accept with a client's request id).
    async fn transition_tagged(&mut self, event: JobEvent, log: LogRecord, tag: Option<crate::record::RequestTag>) -> Result<JobState> {
        let before = self.snap.clone();
        let was_open = is_open(self.state());
        self.snap.machine.apply(event)?;
        if let LogRecord::Expired { reason } = &log {
            self.snap.expired_reason = Some(reason.clone());
        }
        let request = tag.map(|tag| crate::record::PendingRequest {
            tag,
            outcome: crate::record::RequestOutcome::Accepted { state: self.state().clone() },
        });
        let logged = match self.stored() {
            Ok(stored) => self.shared.log_event_with(self.id(), log, vec![stored], request.as_ref()).await.map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = logged {
            self.snap = before;
            return Err(e);
        }
        if was_open != is_open(self.state()) {
            self.announce_demand().await;
        }
        self.map();
        Ok(self.state().clone())
    }

    /// Carries out a party's action as the engine's `LIFECYCLE` table says:
    /// the transition (stored, then logged) and, for the actions whose
    /// answer waits on it, the contractor's new status.
    async fn act(
        &mut self,
        myself: &ActorRef<JobMsg>,
        action: JobAction,
        contractor: ContractorId,
        tag: Option<crate::record::RequestTag>,
    ) -> Result<JobState> {
        let step = action.event(contractor).and_then(|event| LogRecord::of_step(&event).map(|log| (event, log)));
        let Some((event, log)) = step else {
            // An assignment is a release and a new offer, not one step.
            return self.assign(myself, contractor).await;
        };
        // The accept's time goes into the same stored snapshot as the accept.
        let now = self.shared.clock.now();
        let accepted_before = self.snap.accepted_at;
        if action == JobAction::Accept {
            self.snap.accepted_at = Some(now);
        }
        let state = match self.transition_tagged(event, log, tag).await {
            Ok(state) => state,
            Err(e) => {
                self.snap.accepted_at = accepted_before;
                return Err(e);
            }
        };
        let status = action.contractor_status(self.id());
        match action {
            JobAction::Accept => {
                metrics::counter!("dispatch_offers_total", "outcome" => "accepted").increment(1);
                let latency = now.secs_since(self.snap.job.posted_at).max(0.0);
                metrics::histogram!("dispatch_match_latency_seconds").record(latency);
                self.shared.map.record_match(now.0, latency);
                match self.window() {
                    // A scheduled job is booked into the contractor's day; they stay available until then.
                    Some(window) => self.book(contractor, window).await,
                    None => self.update_contractor(contractor, status).await,
                }
            }
            JobAction::EnRoute | JobAction::OnSite | JobAction::Complete => self.update_contractor(contractor, status).await,
            JobAction::Decline | JobAction::Withdraw | JobAction::Assign => {}
        }
        Ok(state)
    }

    /// What follows an action once its answer is sent: a declined or
    /// withdrawn job frees the contractor and searches again; a completed
    /// job's actor stops.
    async fn after(&mut self, myself: &ActorRef<JobMsg>, action: JobAction, contractor: ContractorId) {
        match action {
            JobAction::Decline | JobAction::Withdraw => {
                if action == JobAction::Decline {
                    metrics::counter!("dispatch_offers_total", "outcome" => "declined").increment(1);
                } else {
                    self.ranked.clear();
                }
                self.update_contractor(contractor, action.contractor_status(self.id())).await;
                self.search(myself).await;
            }
            JobAction::Complete => self.advance(myself).await,
            JobAction::Accept | JobAction::EnRoute | JobAction::OnSite | JobAction::Assign => {}
        }
    }

    /// Moves the contractor along with the job (or releases them).
    async fn update_contractor(&self, contractor: ContractorId, status: ContractorStatus) {
        let job = self.id();
        let actor = match self.shared.contractor(contractor) {
            Some(a) => Some(a),
            None => crate::dispatcher::activate(&self.shared, contractor).await.ok(),
        };
        let Some(actor) = actor else {
            tracing::warn!(%job, %contractor, "contractor unreachable; status not updated");
            return;
        };
        let site = self.snap.job.location;
        match ask(&actor, |reply| ContractorMsg::JobUpdate { job, status, site, reply }).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => tracing::warn!(%job, %contractor, %e, "contractor status not updated"),
        }
    }

    /// Puts an accepted scheduled job on the contractor's agenda.
    async fn book(&self, contractor: ContractorId, window: TimeWindow) {
        let stop = Stop {
            job: self.id(),
            location: self.snap.job.location,
            window: Some(window),
            service_secs: self.shared.config.expected_job_secs,
        };
        let Some(actor) = self.shared.contractor(contractor) else { return };
        match ask(&actor, |reply| ContractorMsg::Book { stop, reply }).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => tracing::warn!(job = %self.id(), %contractor, %e, "booking not stored on the contractor"),
        }
    }

    /// Sends `msg` to this actor after `after`, remembering the timer.
    fn timer(&mut self, myself: &ActorRef<JobMsg>, after: Duration, msg: impl FnOnce() -> JobMsg + Send + 'static) {
        self.timers.retain(|t| !t.is_finished());
        self.timers.push(myself.send_after(after, msg));
    }

    /// Re-arms timers after a (re)start from a snapshot; a restarted job
    /// with money under way reconciles its payment calls first.
    fn resume(&mut self, myself: &ActorRef<JobMsg>, fresh: bool) {
        if self.snap.payment.as_ref().is_some_and(|p| !p.machine().state().is_closed()) {
            if fresh {
                let _ = myself.cast(JobMsg::Advance);
            } else {
                self.reconcile_due = true;
                let _ = myself.cast(JobMsg::Reconcile);
            }
        }
        match self.state() {
            JobState::Posted => {
                let _ = myself.cast(JobMsg::Search);
            }
            JobState::Offering { contractor, expires_at } => {
                let (contractor, expires_at) = (*contractor, *expires_at);
                self.timer(myself, self.shared.clock.until(expires_at), move || JobMsg::OfferTimeout { contractor, expires_at });
            }
            _ => {}
        }
        if is_open(self.state()) {
            self.timer(myself, self.shared.clock.until(self.expires_at()), || JobMsg::ExpireCheck);
        }
    }
}

impl Actor for JobActor {
    type Msg = JobMsg;
    type State = JobActorState;
    /// The snapshot, the city, and whether the job was just posted (else it is restarted from the store).
    type Arguments = (JobSnapshot, Arc<Shared>, bool);

    async fn pre_start(
        &self,
        myself: ActorRef<JobMsg>,
        (snap, shared, fresh): Self::Arguments,
    ) -> Result<JobActorState, ActorProcessingErr> {
        metrics::gauge!("dispatch_actors_alive", "kind" => "job").increment(1.0);
        let cell = shared.cell_of(snap.job.location);
        let mut state =
            JobActorState { snap, shared, cell, ranked: VecDeque::new(), ever_found: false, timers: Vec::new(), reconcile_due: false };
        // Before any message: a post's `Hold` must find the hold's step under way or done.
        state.resume(&myself, fresh);
        Ok(state)
    }

    async fn post_start(&self, _: ActorRef<JobMsg>, state: &mut JobActorState) -> Result<(), ActorProcessingErr> {
        if !state.state().is_terminal() {
            state.announce_demand().await;
            state.map();
        }
        Ok(())
    }

    async fn post_stop(&self, myself: ActorRef<JobMsg>, state: &mut JobActorState) -> Result<(), ActorProcessingErr> {
        forget_if_same(&state.shared.jobs, &state.id(), myself.get_id());
        state.shared.seqs.forget(state.id().0);
        for timer in state.timers.drain(..) {
            timer.abort();
        }
        metrics::gauge!("dispatch_actors_alive", "kind" => "job").decrement(1.0);
        Ok(())
    }

    async fn handle(&self, myself: ActorRef<JobMsg>, msg: JobMsg, state: &mut JobActorState) -> Result<(), ActorProcessingErr> {
        // Boxed, as the contractor's: the actor's task would otherwise carry
        // the search's state machine for the job's whole life.
        Box::pin(handle::handle_message(myself, msg, state)).await
    }
}
