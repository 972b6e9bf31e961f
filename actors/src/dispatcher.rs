//! The dispatcher: the root actor of a city. It supervises every cell,
//! contractor and job actor, spawns jobs and reactivates hibernated
//! contractors, rehydrates the city from the store on start, and recomputes
//! surge from the cells' loads.
//!
//! ```text
//! Dispatcher (root, one per city)
//! ├── CellActor × active H3 cells        restarted empty; contractors and jobs re-announce
//! ├── ContractorActor × live contractors  restarted from their snapshot
//! └── JobActor × open jobs                restarted from their snapshot; timers re-armed
//! ```
//!
//! The dispatcher never waits on its children (it only casts to them), so a
//! child may call it — as a job does to reactivate a hibernated contractor —
//! without any chance of a deadlock.

use std::sync::Arc;

use dispatch_engine::pricing::{CellLoad, PriceQuote};
use dispatch_engine::{ContractorId, ContractorProfile, ContractorStatus, Job, JobId, JobMachine, Timestamp};
use dispatch_storage::{Kind, SnapshotPut, codec};
use h3o::CellIndex;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::contractor::{ContractorActor, ContractorMsg};
use crate::error::{ActorError, Result};
use crate::job::{JobActor, JobMsg, ask};
use crate::record::LogRecord;
use crate::record::{ContractorSnapshot, JobSnapshot};
use crate::shared::{Child, Shared, read, write};

/// What a customer asks for when posting a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRequest {
    /// Who.
    pub customer: dispatch_engine::CustomerId,
    /// Which trade.
    pub trade: dispatch_engine::Trade,
    /// Where.
    pub location: dispatch_engine::GeoPoint,
    /// How soon.
    pub urgency: dispatch_engine::Urgency,
    /// In the customer's words.
    pub description: String,
    /// The most they want to pay.
    pub budget: Option<dispatch_engine::Money>,
    /// The card to hold and charge (a payment method id at the processor);
    /// `None`: the customer's card on file ([`crate::cards::card_for`]).
    pub payment_method: Option<String>,
}

/// Messages to the dispatcher.
#[derive(Debug)]
pub enum DispatcherMsg {
    /// Load every non-terminal job and every online contractor from the store.
    Rehydrate(RpcReplyPort<Result<RehydrateReport>>),
    /// Store a new contractor (offline; no actor until they come online).
    Register {
        /// The contractor.
        profile: ContractorProfile,
        /// Answer once stored.
        reply: RpcReplyPort<Result<()>>,
    },
    /// The live actor of a contractor, spawned from their snapshot if hibernated.
    Activate {
        /// Who.
        id: ContractorId,
        /// The actor.
        reply: RpcReplyPort<Result<ActorRef<ContractorMsg>>>,
    },
    /// Post a job: quote it, store it, spawn its actor.
    Post {
        /// The job.
        request: JobRequest,
        /// The card to hold, with payments on ([`crate::cards::card_for`]).
        card: Option<dispatch_payments::Card>,
        /// The client's request id, if it gave one: its record is stored with the job.
        tag: Option<crate::record::RequestTag>,
        /// Its id and quote, once stored.
        reply: RpcReplyPort<Result<(JobId, PriceQuote)>>,
    },
    /// A cell's demand or supply changed.
    CellLoad {
        /// The cell.
        cell: CellIndex,
        /// Its load now.
        load: CellLoad,
    },
    /// Timer: recompute surge.
    SurgeTick,
    /// Timer: ask every live contractor to hibernate if idle.
    IdleSweep,
    /// Batched mode: a posted job waits for the next batch.
    BatchJoin(JobId),
    /// Batched mode timer: assign the waiting jobs.
    BatchTick,
    /// Batched mode: a batch finished; these jobs (as of the join generation
    /// the batch saw) are settled: offered or gone.
    BatchDone(Vec<(JobId, u64)>),
}

/// What a rehydration brought back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RehydrateReport {
    /// Open jobs respawned.
    pub jobs: usize,
    /// Online contractors respawned.
    pub contractors: usize,
}

/// The dispatcher actor.
pub(crate) struct Dispatcher;

/// Spawns a job's actor: `fresh` for a job just posted, else restarted from the store.
pub(crate) async fn spawn_job(
    shared: &Arc<Shared>,
    root: &ActorRef<DispatcherMsg>,
    snap: JobSnapshot,
    fresh: bool,
) -> Result<ActorRef<JobMsg>> {
    let id = snap.job.id;
    let (actor, _) = Actor::spawn_linked(None, JobActor, (snap, Arc::clone(shared), fresh), root.get_cell()).await?;
    shared.register_child(actor.get_id(), Child::Job(id));
    write(&shared.jobs).insert(id, actor.clone());
    Ok(actor)
}

/// Stores a new job and its `posted` event (and the request's record, if it
/// has an id), then spawns its actor.
async fn store_and_spawn(
    shared: &Arc<Shared>,
    root: &ActorRef<DispatcherMsg>,
    snap: JobSnapshot,
    tag: Option<crate::record::RequestTag>,
) -> Result<(JobId, PriceQuote)> {
    let (id, quote, customer) = (snap.job.id, snap.quote, snap.job.customer);
    let stored = SnapshotPut { kind: Kind::Job, id: id.0, blob: codec::encode(&snap)?, last: false };
    let request = tag.map(|tag| crate::record::PendingRequest { tag, outcome: crate::record::RequestOutcome::Posted { quote } });
    shared.log_first_event(id, LogRecord::Posted { quote, customer }, stored, request.as_ref()).await?;
    let holds = snap.payment.is_some();
    let actor = spawn_job(shared, root, snap, true).await?;
    metrics::counter!("dispatch_jobs_posted_total").increment(1);
    if holds {
        // The post is answered once the card holds (or refused if it declines): two processor calls, each bounded.
        let limit = shared.config.payments.as_ref().map_or(crate::job::CALL_TIMEOUT, |p| 2 * p.call_timeout + crate::job::CALL_TIMEOUT);
        match actor.call(JobMsg::Hold, Some(limit)).await {
            Ok(ractor::rpc::CallResult::Success(answer)) => answer?,
            // A declined job's actor stops at once; what it stored answers.
            _ => return crate::job::declined_or_posted(shared, id).await.map(|()| (id, quote)),
        }
    }
    Ok((id, quote))
}

async fn spawn_contractor(
    shared: &Arc<Shared>,
    root: &ActorRef<DispatcherMsg>,
    snap: ContractorSnapshot,
) -> Result<ActorRef<ContractorMsg>> {
    let id = snap.profile.id;
    let (actor, _) = Actor::spawn_linked(None, ContractorActor, (snap, Arc::clone(shared)), root.get_cell()).await?;
    shared.register_child(actor.get_id(), Child::Contractor(id));
    write(&shared.contractors).insert(id, actor.clone());
    Ok(actor)
}

/// The live actor of `id`, asking the dispatcher to reactivate it if needed.
pub(crate) async fn activate(shared: &Shared, id: ContractorId) -> Result<ActorRef<ContractorMsg>> {
    if let Some(actor) = shared.contractor(id) {
        return Ok(actor);
    }
    let root = shared.root.get().ok_or_else(|| ActorError::Unavailable("dispatcher not started".into()))?;
    ask(root, |reply| DispatcherMsg::Activate { id, reply }).await?
}

/// The dispatcher's state.
pub(crate) struct DispatcherState {
    shared: Arc<Shared>,
    /// Batched mode: jobs waiting for the next batch, with the generation of
    /// their latest join (a job that rejoins while a batch runs keeps its place).
    batch: std::collections::BTreeMap<JobId, u64>,
    batch_generation: u64,
    /// Surge ticks since the live map was last pruned, and its version then.
    ticks_since_prune: u32,
    prune_below: u64,
    /// Batched mode: whether a batch is being worked out.
    batch_running: bool,
}

impl DispatcherState {
    async fn rehydrate(&self, myself: &ActorRef<DispatcherMsg>) -> Result<RehydrateReport> {
        let mut report = RehydrateReport::default();
        let mut max_job = 0;
        // A store from before the job index and the contractor directory: they are filled from the snapshots read here, once.
        let fill_jobs = self.shared.store.scan(Kind::JobIndex, None, 1).await?.is_empty();
        let fill_contractors = self.shared.store.scan(Kind::ContractorIndex, None, 1).await?.is_empty();
        let mut rows = Vec::new();
        for (id, blob) in crate::shared::scan_all(&self.shared, Kind::Job).await? {
            max_job = max_job.max(id);
            let snap: JobSnapshot = codec::decode(&blob)?;
            if fill_jobs {
                rows.push(crate::job_index::row(&snap)?);
            }
            if let Some(pay) = &snap.payment {
                self.shared.open_books(snap.job.id, pay);
            }
            if !snap.is_final() && self.shared.job(snap.job.id).is_none() {
                spawn_job(&self.shared, myself, snap, false).await?;
                report.jobs += 1;
            }
        }
        self.shared.next_job.fetch_max(max_job + 1, std::sync::atomic::Ordering::SeqCst);
        for (_, blob) in crate::shared::scan_all(&self.shared, Kind::Contractor).await? {
            let snap: ContractorSnapshot = codec::decode(&blob)?;
            if fill_contractors {
                rows.push(crate::contractor_index::row(&snap)?);
            }
            if snap.status != ContractorStatus::Offline && self.shared.contractor(snap.profile.id).is_none() {
                spawn_contractor(&self.shared, myself, snap).await?;
                report.contractors += 1;
            }
        }
        for chunk in rows.chunks(500) {
            self.shared.store.put_batch(chunk.to_vec()).await?;
        }
        Ok(report)
    }

    async fn activate(&self, myself: &ActorRef<DispatcherMsg>, id: ContractorId) -> Result<ActorRef<ContractorMsg>> {
        if let Some(actor) = self.shared.contractor(id) {
            return Ok(actor);
        }
        let blob = self.shared.store.get(Kind::Contractor, id.0).await?.ok_or(ActorError::UnknownContractor(id))?;
        spawn_contractor(&self.shared, myself, codec::decode(&blob)?).await
    }

    /// A new job's first snapshot: its id, quote (at the cell's surge) and posting time.
    fn new_job(&self, request: JobRequest, card: Option<dispatch_payments::Card>) -> Result<JobSnapshot> {
        if let dispatch_engine::Urgency::Scheduled(w) = request.urgency {
            dispatch_engine::TimeWindow::new(w.start, w.end)?;
        }
        let id = JobId(self.shared.next_job.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let cell = self.shared.cell_of(request.location);
        let surge = read(&self.shared.surge).multiplier(cell);
        let quote = self.shared.config.pricing.quote(request.trade, &request.urgency, surge);
        let posted_at: Timestamp = self.shared.clock.now();
        let payment = match &self.shared.config.payments {
            Some(payments) => {
                let card = card.unwrap_or_else(|| crate::cards::card_for(None, request.payment_method));
                Some(dispatch_payments::JobPayment::new(id, quote.total, payments.terms.clone(), card)?)
            }
            None => None,
        };
        let snap = JobSnapshot {
            job: Job {
                id,
                customer: request.customer,
                trade: request.trade,
                location: request.location,
                urgency: request.urgency,
                description: request.description,
                budget: request.budget,
                posted_at,
            },
            machine: JobMachine::new(),
            quote,
            radius_m: self.shared.config.initial_radius_m,
            offers_this_round: 0,
            expired_reason: None,
            accepted_at: None,
            rated_stars: None,
            payment,
            payee: None,
        };
        Ok(snap)
    }

    /// Restarts a failed child from its snapshot (jobs, contractors) or empty (cells).
    async fn restart(&self, myself: &ActorRef<DispatcherMsg>, child: Child) -> Result<()> {
        match child {
            Child::Job(id) => {
                // One actor per job: `Dispatch::job_actor` revives under the same lock.
                let _guard = self.shared.revive_lock.lock().await;
                write(&self.shared.jobs).remove(&id);
                let Some(blob) = self.shared.store.get(Kind::Job, id.0).await? else { return Ok(()) };
                let snap: JobSnapshot = codec::decode(&blob)?;
                if !snap.is_final() {
                    spawn_job(&self.shared, myself, snap, false).await?;
                }
            }
            Child::Contractor(id) => {
                write(&self.shared.contractors).remove(&id);
                let Some(blob) = self.shared.store.get(Kind::Contractor, id.0).await? else { return Ok(()) };
                let snap: ContractorSnapshot = codec::decode(&blob)?;
                if snap.status != ContractorStatus::Offline {
                    spawn_contractor(&self.shared, myself, snap).await?;
                }
            }
            Child::Cell(cell) => {
                write(&self.shared.cells).remove(&cell);
                // The cell's index is rebuilt by the contractors and jobs in it.
                for actor in read(&self.shared.contractors).values() {
                    let _ = actor.cast(ContractorMsg::Reannounce);
                }
                for actor in read(&self.shared.jobs).values() {
                    let _ = actor.cast(JobMsg::Reannounce);
                }
            }
        }
        Ok(())
    }
}

impl Actor for Dispatcher {
    type Msg = DispatcherMsg;
    type State = DispatcherState;
    type Arguments = Arc<Shared>;

    async fn pre_start(&self, myself: ActorRef<DispatcherMsg>, shared: Arc<Shared>) -> Result<DispatcherState, ActorProcessingErr> {
        shared.root.set(myself.clone()).map_err(|_| ActorProcessingErr::from("this city already has a dispatcher"))?;
        myself.send_interval(shared.config.surge_interval, || DispatcherMsg::SurgeTick);
        // Sweep twice per idle period, so nobody idles more than 1.5 times it.
        myself.send_interval(shared.config.idle_hibernate_after / 2, || DispatcherMsg::IdleSweep);
        if let Some(window) = shared.config.batch_window {
            myself.send_interval(window, || DispatcherMsg::BatchTick);
        }
        Ok(DispatcherState {
            shared,
            batch: std::collections::BTreeMap::new(),
            batch_generation: 0,
            batch_running: false,
            ticks_since_prune: 0,
            prune_below: 0,
        })
    }

    async fn post_stop(&self, _: ActorRef<DispatcherMsg>, state: &mut DispatcherState) -> Result<(), ActorProcessingErr> {
        // Stop every child and let each write what it holds.
        let cells: Vec<_> = read(&state.shared.cells).values().map(|a| a.get_cell()).collect();
        let contractors: Vec<_> = read(&state.shared.contractors).values().map(|a| a.get_cell()).collect();
        let jobs: Vec<_> = read(&state.shared.jobs).values().map(|a| a.get_cell()).collect();
        for child in contractors.into_iter().chain(jobs).chain(cells) {
            let _ = child.stop_and_wait(Some("city shutting down".into()), Some(std::time::Duration::from_secs(5))).await;
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<DispatcherMsg>,
        msg: DispatcherMsg,
        state: &mut DispatcherState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DispatcherMsg::Rehydrate(reply) => {
                let _ = reply.send(state.rehydrate(&myself).await);
            }
            DispatcherMsg::Register { profile, reply } => {
                let answer = async {
                    profile.validate()?;
                    let id = profile.id;
                    if state.shared.store.get(Kind::Contractor, id.0).await?.is_some() {
                        return Err(ActorError::DuplicateContractor(id));
                    }
                    let snap = ContractorSnapshot {
                        ratings: dispatch_engine::RatingTally::from_rating(profile.rating),
                        profile,
                        status: ContractorStatus::Offline,
                        position: None,
                        last_fix: None,
                        job_site: None,
                        arriving_sent: false,
                        agenda: Vec::new(),
                        earnings: Vec::new(),
                    };
                    let row = crate::contractor_index::row(&snap)?;
                    state.shared.store.put_batch(vec![(Kind::Contractor, id.0, codec::encode(&snap)?), row]).await?;
                    Ok(())
                }
                .await;
                let _ = reply.send(answer);
            }
            DispatcherMsg::Activate { id, reply } => {
                let _ = reply.send(state.activate(&myself, id).await);
            }
            DispatcherMsg::Post { request, card, tag, reply } => match state.new_job(request, card) {
                // Storing happens outside this actor: posts from every customer of
                // the city would otherwise wait in line for one store round trip each.
                Ok(snap) => {
                    let (shared, root) = (Arc::clone(&state.shared), myself.clone());
                    tokio::spawn(async move {
                        let _ = reply.send(store_and_spawn(&shared, &root, snap, tag).await);
                    });
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            DispatcherMsg::CellLoad { cell, load } => {
                write(&state.shared.surge).set_load(cell, load);
            }
            DispatcherMsg::IdleSweep => {
                for actor in read(&state.shared.contractors).values() {
                    let _ = actor.cast(ContractorMsg::IdleCheck);
                }
            }
            DispatcherMsg::BatchJoin(job) => {
                state.batch_generation += 1;
                state.batch.insert(job, state.batch_generation);
            }
            DispatcherMsg::BatchTick => {
                if !state.batch_running && !state.batch.is_empty() {
                    state.batch_running = true;
                    let jobs = state.batch.iter().map(|(j, g)| (*j, *g)).collect();
                    tokio::spawn(crate::batch::run_batch(Arc::clone(&state.shared), jobs));
                }
            }
            DispatcherMsg::BatchDone(settled) => {
                state.batch_running = false;
                for (job, generation) in settled {
                    if state.batch.get(&job) == Some(&generation) {
                        state.batch.remove(&job);
                    }
                }
            }
            DispatcherMsg::SurgeTick => {
                let now = state.shared.clock.now();
                write(&state.shared.surge).update(now);
                // Once a minute, drop the map's departed entries that every
                // reader (polling each second) has seen by now.
                state.ticks_since_prune += 1;
                if state.ticks_since_prune >= 60 {
                    state.ticks_since_prune = 0;
                    state.shared.map.prune(state.prune_below);
                    state.prune_below = state.shared.map.version();
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<DispatcherMsg>,
        event: SupervisionEvent,
        state: &mut DispatcherState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(child) = state.shared.forget_child(&cell.get_id()) {
                    tracing::error!(?child, %err, "child actor failed; restarting it");
                    metrics::counter!("dispatch_actor_restarts_total").increment(1);
                    if let Err(e) = state.restart(&myself, child).await {
                        tracing::error!(?child, %e, "child could not be restarted");
                    }
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                state.shared.forget_child(&cell.get_id());
            }
            _ => {}
        }
        Ok(())
    }
}
