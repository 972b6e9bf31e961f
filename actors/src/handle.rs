//! [`Dispatch`]: the handle the gateway (and tests) use to drive a city.

use std::sync::Arc;

use dispatch_engine::pricing::PriceQuote;
use dispatch_engine::{ContractorId, ContractorProfile, ContractorStatus, CustomerId, GeoPoint, JobAction, JobId, JobState, Party, Rating};
use dispatch_storage::{Kind, SnapshotStore, codec};
use ractor::{Actor, ActorRef, RpcReplyPort};
use tokio::sync::broadcast;

use crate::cell::{CellInfo, CellMsg};
use crate::clock::Clock;
use crate::config::DispatchConfig;
use crate::contractor::{ContractorMsg, GpsFix, Presence};
use crate::dispatcher::{Dispatcher, DispatcherMsg, JobRequest, RehydrateReport, activate};
use crate::error::{ActorError, Result};
use crate::events::DispatchEvent;
use crate::job::{JobMsg, ask};
use crate::parties::{self, Asker};
use crate::record::{ContractorSnapshot, JobSnapshot, LogRecord};
use crate::shared::{Shared, read};

/// A job's rating, as [`Dispatch::rate`] recorded it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rated {
    /// The job.
    pub job: JobId,
    /// Its contractor.
    pub contractor: ContractorId,
    /// The stars given.
    pub stars: f64,
    /// The contractor's rating with this review counted.
    pub rating: Rating,
}

/// A running city: its dispatcher and everything under it.
#[derive(Clone)]
pub struct Dispatch {
    pub(crate) root: ActorRef<DispatcherMsg>,
    pub(crate) shared: Arc<Shared>,
}

/// A live contractor's mailbox, resolved once: what a phone's connection
/// holds to stream GPS without a directory lookup per fix. If the contractor
/// hibernates the link goes stale and [`ContractorLink::gps`] fails; resolve
/// it again with [`Dispatch::link`].
///
/// Overload policy: a link keeps **one** fix waiting for the contractor,
/// the newest. A fix that arrives while an older one still waits replaces
/// it (the older is shed, counted as `dispatch_gps_dropped_total{reason="superseded"}`),
/// so a contractor's mailbox holds at most one GPS message per link however
/// fast the phone sends or however far behind the server is: the server's
/// memory cannot grow with the backlog, and an offer to the contractor
/// waits behind one fix at most, never behind a queue of them.
#[derive(Clone)]
pub struct ContractorLink {
    id: ContractorId,
    actor: ActorRef<ContractorMsg>,
    latest: Arc<LatestFix>,
}

/// Fixes shed for a newer one from the same link: a handle registered once,
/// since every fix of a contractor behind on its GPS counts here.
static GPS_SUPERSEDED: std::sync::LazyLock<metrics::Counter> =
    std::sync::LazyLock::new(|| metrics::counter!("dispatch_gps_dropped_total", "reason" => "superseded"));

/// The newest fix a link has for its contractor and not yet handed over.
#[derive(Debug, Default)]
pub struct LatestFix(std::sync::Mutex<Option<GpsFix>>);

impl LatestFix {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<GpsFix>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The fix waiting, leaving none.
    pub(crate) fn take(&self) -> Option<GpsFix> {
        self.slot().take()
    }
}

impl ContractorLink {
    /// The contractor.
    #[must_use]
    pub fn id(&self) -> ContractorId {
        self.id
    }

    /// Resolves once the contractor has handled every fix sent before (a
    /// barrier: its mailbox is first in, first out).
    pub async fn flush(&self) -> Result<()> {
        ask(&self.actor, ContractorMsg::Flush).await
    }

    /// Hands one GPS fix to the contractor (fire and forget). `Ok(true)`: an
    /// older fix from this link was still waiting and is shed in its favour.
    pub fn gps(&self, fix: GpsFix) -> Result<bool> {
        if self.latest.slot().replace(fix).is_some() {
            GPS_SUPERSEDED.increment(1);
            return Ok(true);
        }
        // The slot was empty: nothing is on its way for it, so tell the actor.
        if let Err(e) = self.actor.cast(ContractorMsg::Gps(Arc::clone(&self.latest))) {
            self.latest.take();
            return Err(ActorError::from(e));
        }
        Ok(false)
    }
}

/// Running totals of the GPS pipeline since the city started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineStats {
    /// GPS fixes handled by contractor actors (trusted or not).
    pub gps_handled: u64,
    /// Contractor positions written into cell indexes.
    pub cell_upserts: u64,
}

/// How many actors of each kind are alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveCounts {
    /// Cell actors.
    pub cells: usize,
    /// Contractor actors.
    pub contractors: usize,
    /// Job actors.
    pub jobs: usize,
}

impl Dispatch {
    /// Starts a city on `store`, rehydrating what the store holds.
    pub async fn start(config: DispatchConfig, store: Arc<dyn SnapshotStore>) -> Result<(Self, RehydrateReport)> {
        Self::start_with_clock(config, store, Clock::system()).await
    }

    /// Like [`Dispatch::start`] with a given clock (tests pause tokio's time).
    pub async fn start_with_clock(config: DispatchConfig, store: Arc<dyn SnapshotStore>, clock: Clock) -> Result<(Self, RehydrateReport)> {
        let shared = Arc::new(Shared::new(config, store, clock)?);
        let (root, _) = Actor::spawn(None, Dispatcher, Arc::clone(&shared)).await?;
        let city = Self { root, shared };
        crate::audit::open(&city.shared).await?;
        crate::outbox::open(&city.shared).await?;
        let report = ask(&city.root, DispatcherMsg::Rehydrate).await??;
        crate::kpis::start(&city).await?;
        Ok((city, report))
    }

    /// Every lifecycle event from now on (and positions of en-route contractors).
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<DispatchEvent> {
        self.shared.events.subscribe()
    }

    /// Stores a new contractor, offline.
    pub async fn register_contractor(&self, profile: ContractorProfile) -> Result<()> {
        ask(&self.root, |reply| DispatcherMsg::Register { profile, reply }).await?
    }

    /// Sets a contractor's presence (reactivating them from their snapshot if
    /// hibernated); `at` is where they are when going online.
    pub async fn set_presence(&self, id: ContractorId, presence: Presence, at: Option<GeoPoint>) -> Result<ContractorStatus> {
        let actor = activate(&self.shared, id).await?;
        ask(&actor, |reply| ContractorMsg::SetPresence { presence, at, reply }).await?
    }

    /// A link to a live contractor's actor; an error if they are not online.
    pub fn link(&self, id: ContractorId) -> Result<ContractorLink> {
        let actor = self.shared.contractor(id).ok_or_else(|| ActorError::ContractorState(id, "not online".into()))?;
        Ok(ContractorLink { id, actor, latest: Arc::default() })
    }

    /// Feeds one GPS fix to a live contractor. Fire and forget: phones send
    /// these at a high rate. A contractor who is not online is an error.
    pub fn gps(&self, id: ContractorId, fix: GpsFix) -> Result<()> {
        self.link(id)?.gps(fix).map(drop)
    }

    /// Posts a job: its id and price quote once it is stored.
    pub async fn post_job(&self, request: JobRequest) -> Result<(JobId, PriceQuote)> {
        self.post_job_tagged(request, None).await
    }

    /// The job's live actor; a finished job (stored, no actor) is
    /// `JobClosed`. A stored job whose money reopened after it finished (a
    /// transfer reversed at the processor) gets its actor back.
    async fn job_actor(&self, job: JobId) -> Result<ActorRef<JobMsg>> {
        if let Some(actor) = self.shared.job(job) {
            return Ok(actor);
        }
        let _guard = self.shared.revive_lock.lock().await;
        if let Some(actor) = self.shared.job(job) {
            return Ok(actor);
        }
        let snap = self.job(job).await?;
        if snap.is_final() {
            return Err(ActorError::JobClosed(job, format!("{:?}", snap.machine.state().kind()).to_lowercase()));
        }
        let reopened = snap.payment.as_ref().is_some_and(|p| p.machine().state() == dispatch_engine::payment::PaymentState::PayoutHeld);
        if !reopened {
            return Err(ActorError::Unavailable(format!("job {job} is {:?} but its actor is not running", snap.machine.state().kind())));
        }
        crate::dispatcher::spawn_job(&self.shared, &self.root, snap, false).await
    }

    pub(crate) async fn job_call(&self, job: JobId, msg: impl FnOnce(RpcReplyPort<Result<JobState>>) -> JobMsg) -> Result<JobState> {
        let actor = self.job_actor(job).await?;
        ask(&actor, msg).await?
    }

    /// The offered contractor accepts.
    pub async fn accept(&self, job: JobId, contractor: ContractorId) -> Result<JobState> {
        self.act(job, JobAction::Accept, contractor).await
    }

    /// The offered contractor declines.
    pub async fn decline(&self, job: JobId, contractor: ContractorId) -> Result<JobState> {
        self.act(job, JobAction::Decline, contractor).await
    }

    /// The assigned contractor sets off.
    pub async fn en_route(&self, job: JobId, contractor: ContractorId) -> Result<JobState> {
        self.act(job, JobAction::EnRoute, contractor).await
    }

    /// The assigned contractor is on site.
    pub async fn on_site(&self, job: JobId, contractor: ContractorId) -> Result<JobState> {
        self.act(job, JobAction::OnSite, contractor).await
    }

    /// The assigned contractor finished.
    pub async fn complete(&self, job: JobId, contractor: ContractorId) -> Result<JobState> {
        self.act(job, JobAction::Complete, contractor).await
    }

    /// The assigned contractor hands the job back; it is offered again.
    pub async fn withdraw(&self, job: JobId, contractor: ContractorId) -> Result<JobState> {
        self.act(job, JobAction::Withdraw, contractor).await
    }

    /// A dispatcher offers the job to `contractor`, taking it back from whoever holds it.
    pub async fn assign(&self, job: JobId, contractor: ContractorId) -> Result<JobState> {
        if let Some(s) = self.suspended(contractor) {
            return Err(ActorError::ContractorState(contractor, format!("is suspended: {}", s.reason)));
        }
        // The job's trade is read only where some trades need a licence.
        let licensed = self.shared.config.licensed_trades;
        if !licensed.is_empty() {
            let trade = self.job(job).await?.job.trade;
            if licensed.contains(trade) && !self.vetting(contractor).is_some_and(|v| v.licensed(trade, self.shared.clock.now())) {
                return Err(ActorError::ContractorState(contractor, format!("has no verified, valid {} licence", trade.as_str())));
            }
        }
        self.act(job, JobAction::Assign, contractor).await
    }

    /// A party's action on the job; what follows (event, state, contractor
    /// status) is the engine's [`LIFECYCLE`](dispatch_engine::LIFECYCLE).
    /// The methods above are this, one action each.
    pub async fn act(&self, job: JobId, action: JobAction, contractor: ContractorId) -> Result<JobState> {
        self.job_call(job, |reply| JobMsg::Act { action, contractor, tag: None, reply }).await
    }

    /// Calls a job off: its customer or a dispatcher ([`parties::may_cancel`]).
    pub async fn cancel(&self, job: JobId, asker: Asker, reason: impl Into<String>) -> Result<JobState> {
        let by = parties::may_cancel(&self.job(job).await?, asker)?;
        let reason = reason.into();
        self.job_call(job, |reply| JobMsg::Cancel { by, reason, reply }).await
    }

    /// The job and the asker's part in it ([`parties::party_in`]): for chat,
    /// `resume` and following a job.
    pub async fn party_of(&self, job: JobId, asker: Asker) -> Result<(Party, JobSnapshot)> {
        let snap = self.job(job).await?;
        Ok((parties::party_in(&snap, asker)?, snap))
    }

    /// The customer who posted `job` rates its contractor, once the job is
    /// completed, 0..=5 stars. A job is rated once: a second rating is
    /// [`ActorError::AlreadyRated`].
    ///
    /// The contractor counts the review first (idempotently, by job), then
    /// the job's snapshot records it and its log gets `Rated`, in one commit.
    /// A failure half-way leaves the job unrated, so the customer's retry
    /// goes through and the contractor does not count it twice.
    pub async fn rate(&self, job: JobId, customer: CustomerId, stars: f64) -> Result<Rated> {
        self.rate_tagged(job, customer, stars, None).await
    }

    /// A party's request on a job's money (`Asker` decides who may ask
    /// what); the payment as it then stands.
    pub async fn pay(&self, job: JobId, asker: Asker, act: crate::job::PaymentAct) -> Result<dispatch_engine::payment::Receipt> {
        let actor = self.job_actor(job).await?;
        ask(&actor, |reply| JobMsg::Pay { asker, act, reply }).await?
    }

    /// A job's payment as it stands — its receipt once charged — for any of its parties.
    pub async fn payment(&self, job: JobId, asker: Asker) -> Result<dispatch_engine::payment::Receipt> {
        // The snapshot is the actor's own while it lives, else the stored one.
        let snap = self.job(job).await?;
        crate::parties::party_in(&snap, asker)?;
        snap.payment.as_ref().map(crate::job::receipt).ok_or(ActorError::NoPayment(job))
    }

    /// The city's books by kind of account (`docs/payments.md`): the stored
    /// jobs' balances when the city started, then every payment step's
    /// postings, summing to zero.
    #[must_use]
    pub fn books(&self) -> dispatch_engine::payment::Books {
        self.shared.ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner).by_kind()
    }

    /// A contractor's earnings statement: a row per day (UTC) of the jobs
    /// charged in the last [`EARNINGS_KEPT_DAYS`](crate::record::EARNINGS_KEPT_DAYS) days, oldest first.
    pub async fn earnings(&self, contractor: ContractorId) -> Result<Vec<dispatch_engine::payment::DayEarnings>> {
        let snap = self.contractor(contractor).await?;
        Ok(dispatch_engine::payment::statement(&snap.earnings))
    }

    /// Writes a chat message to the job's event log (answering once the store
    /// confirmed, with its sequence number) and broadcasts it.
    pub async fn chat(&self, job: JobId, party: Party, sender: u64, text: String) -> Result<DispatchEvent> {
        self.chat_tagged(job, party, sender, text, None).await
    }

    /// The job's logged events with sequence numbers above `after_seq`, in
    /// order: what a reconnecting client missed.
    pub async fn events_since(&self, job: JobId, after_seq: u64) -> Result<Vec<DispatchEvent>> {
        let entries = self.shared.store.read_events(job.0, after_seq.saturating_add(1)).await?;
        entries
            .into_iter()
            .map(|e| {
                Ok(DispatchEvent {
                    job,
                    seq: e.seq,
                    at: dispatch_engine::Timestamp(e.at_ms),
                    kind: codec::decode::<LogRecord>(&e.payload)?.into(),
                })
            })
            .collect()
    }

    /// A job as it stands: from its actor if open, else from the store.
    pub async fn job(&self, job: JobId) -> Result<JobSnapshot> {
        if let Some(actor) = self.shared.job(job)
            && let Ok(snap) = ask(&actor, JobMsg::Get).await
        {
            return Ok(snap);
        }
        let blob = self.shared.store.get(Kind::Job, job.0).await?.ok_or(ActorError::UnknownJob(job))?;
        Ok(codec::decode(&blob)?)
    }

    /// A contractor as they stand: from their actor if live, else from the store.
    pub async fn contractor(&self, id: ContractorId) -> Result<ContractorSnapshot> {
        if let Some(actor) = self.shared.contractor(id)
            && let Ok(snap) = ask(&actor, ContractorMsg::Get).await
        {
            return Ok(snap);
        }
        let blob = self.shared.store.get(Kind::Contractor, id.0).await?.ok_or(ActorError::UnknownContractor(id))?;
        Ok(codec::decode(&blob)?)
    }

    /// The counters of the cell holding `point`, if that cell has an actor.
    pub async fn cell_info(&self, point: GeoPoint) -> Option<CellInfo> {
        let actor = self.shared.cell(self.shared.cell_of(point))?;
        ask(&actor, CellMsg::Info).await.ok()
    }

    /// The `k` live contractors nearest `point` that pass `filter`, nearest
    /// first (ties by id), asked of the cell actors in the engine's ring-walk
    /// order (as a job's search does).
    pub async fn nearest(&self, point: GeoPoint, k: usize, filter: &dispatch_engine::Filter) -> Vec<dispatch_engine::Neighbor> {
        crate::job::nearest_live(&self.shared, point, k, filter).await.0
    }

    /// How many actors of each kind are alive.
    #[must_use]
    pub fn live_counts(&self) -> LiveCounts {
        LiveCounts {
            cells: read(&self.shared.cells).len(),
            contractors: read(&self.shared.contractors).len(),
            jobs: read(&self.shared.jobs).len(),
        }
    }

    /// What changed on the live map since `version` (0: everything), inside
    /// `viewport` (`[south, west, north, east]`) if given.
    #[must_use]
    pub fn map_since(&self, version: u64, viewport: Option<[f64; 4]>) -> crate::map::MapDelta {
        self.shared.map.since(version, viewport)
    }

    /// Up to `limit` of the city's live contractors after `after` that `keep` keeps, by id (`CityMap::contractors_after`).
    #[must_use]
    pub fn contractors_after(
        &self,
        after: Option<ContractorId>,
        limit: usize,
        keep: impl Fn(&crate::map::MapContractor) -> bool,
    ) -> Vec<crate::map::MapContractor> {
        self.shared.map.contractors_after(after, limit, keep)
    }

    /// Up to `limit` of the city's live jobs after `after` that `keep` keeps, by id (`CityMap::jobs_after`).
    #[must_use]
    pub fn jobs_after(&self, after: Option<JobId>, limit: usize, keep: impl Fn(&crate::map::MapJob) -> bool) -> Vec<crate::map::MapJob> {
        self.shared.map.jobs_after(after, limit, keep)
    }

    /// How matching has gone: last minute, total, median latency.
    #[must_use]
    pub fn match_stats(&self) -> crate::map::MatchStats {
        self.shared.map.match_stats(self.shared.clock.now().0)
    }

    /// Every cell with contractors, open jobs or a surge: its own demand and
    /// supply and its multiplier, as of the last surge tick.
    #[must_use]
    pub fn cells(&self) -> Vec<(h3o::CellIndex, dispatch_engine::pricing::CellLoad, f64)> {
        let surge = read(&self.shared.surge);
        let mut cells: std::collections::BTreeMap<h3o::CellIndex, (dispatch_engine::pricing::CellLoad, f64)> =
            surge.loads().map(|(c, load)| (c, (load, surge.multiplier(c)))).collect();
        for (c, s) in surge.surges() {
            cells.entry(c).or_insert((dispatch_engine::pricing::CellLoad::default(), s.multiplier));
        }
        cells.into_iter().map(|(c, (load, m))| (c, load, m)).collect()
    }

    /// Running totals of the GPS pipeline.
    #[must_use]
    pub fn pipeline_stats(&self) -> PipelineStats {
        use std::sync::atomic::Ordering::Relaxed;
        PipelineStats {
            gps_handled: self.shared.counters.gps_handled.load(Relaxed),
            cell_upserts: self.shared.counters.cell_upserts.load(Relaxed),
        }
    }

    /// The city's clock: what its timestamps (posting times, offer deadlines) are read from.
    #[must_use]
    pub fn clock(&self) -> Clock {
        self.shared.clock
    }

    /// Whether the city's root actor is running (for readiness probes).
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.root.get_status() == ractor::ActorStatus::Running
    }

    /// The store the city writes to.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn SnapshotStore> {
        &self.shared.store
    }

    /// Stops every actor, each writing what it holds, then flushes the
    /// snapshot writer's last batch.
    pub async fn shutdown(self) {
        self.shared.stopping.send_replace(true);
        let _ = self.root.stop_and_wait(Some("shutdown".into()), Some(std::time::Duration::from_secs(30))).await;
        self.shared.contractor_writer.close().await;
        let background = std::mem::take(&mut *self.shared.background.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for task in background {
            let _ = task.await;
        }
    }

    /// Test hook: makes a job's actor panic.
    #[cfg(feature = "testsuite")]
    pub fn panic_job(&self, job: JobId) -> Result<()> {
        self.shared.job(job).ok_or(ActorError::UnknownJob(job))?.cast(JobMsg::Panic).map_err(ActorError::from)
    }

    /// Test hook: drops every actor at once, as a crash would (nothing is flushed).
    #[cfg(feature = "testsuite")]
    pub fn crash(self) {
        self.halt();
    }

    /// Stops every actor at once, writing nothing more: for an owner that
    /// lost its lease, whose writes and answers would no longer count.
    pub fn halt(self) {
        self.shared.stopping.send_replace(true);
        self.root.kill();
        for actor in read(&self.shared.contractors).values() {
            actor.kill();
        }
        for actor in read(&self.shared.jobs).values() {
            actor.kill();
        }
        for actor in read(&self.shared.cells).values() {
            actor.kill();
        }
    }
}
