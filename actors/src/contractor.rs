//! The contractor actor: one per *live* contractor.
//!
//! - GPS: fixes older than the last trusted one are ignored; a fix implying a
//!   move faster than [`DispatchConfig::max_plausible_speed_mps`] is flagged
//!   and not trusted. A trusted fix updates the contractor's cell actor
//!   (exit the old cell and enter the new one when the cell changes, like
//!   tile38's fences), feeds the reported speed to the cell, and, when en
//!   route, reports the position and "arriving" to the job.
//! - Lifecycle changes (online, break, offer held, assigned, released) are
//!   written to the store before they are acknowledged. A position alone is
//!   handed to the city's writer (coalesced, written every
//!   [`DispatchConfig::snapshot_interval`]) at most every
//!   [`DispatchConfig::position_persist_interval`] and only after a real move:
//!   a city streaming GPS must not keep the store rewriting positions.
//! - A fix at the same point as the last one changes nothing the index
//!   holds, so it costs no message to the cell.
//! - Hibernation: going offline, or no GPS for
//!   [`DispatchConfig::idle_hibernate_after`], writes the snapshot and stops the
//!   actor; the dispatcher reactivates it from the snapshot on demand.
//!
//! [`DispatchConfig::max_plausible_speed_mps`]: crate::DispatchConfig::max_plausible_speed_mps
//! [`DispatchConfig::snapshot_interval`]: crate::DispatchConfig::snapshot_interval
//! [`DispatchConfig::position_persist_interval`]: crate::DispatchConfig::position_persist_interval
//! [`DispatchConfig::idle_hibernate_after`]: crate::DispatchConfig::idle_hibernate_after

use std::sync::Arc;

use dispatch_engine::routing::{RoutingConfig, Stop, plan_day};
use dispatch_engine::spatial::IndexedContractor;
use dispatch_engine::{ContractorId, ContractorStatus, GeoPoint, JobId, Money, Rating, StatusKind, TimeWindow, Timestamp, Trade};
use dispatch_storage::codec;
use h3o::CellIndex;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};

use crate::cell::CellMsg;
use crate::error::{ActorError, Result};
use crate::events::EventKind;
use crate::job::JobMsg;
use crate::record::ContractorSnapshot;
use crate::shared::{Shared, forget_if_same};

/// One GPS reading from a contractor's phone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GpsFix {
    /// Where.
    pub point: GeoPoint,
    /// Degrees clockwise from north, 0..360.
    pub heading: Option<f64>,
    /// Reported ground speed, m/s.
    pub speed_mps: Option<f64>,
    /// Reported accuracy radius, metres.
    pub accuracy_m: Option<f64>,
    /// When the phone took the reading.
    pub ts: Timestamp,
}

impl GpsFix {
    /// A fix; refuses a heading outside 0..360 and a negative or non-finite speed or accuracy.
    pub fn new(point: GeoPoint, heading: Option<f64>, speed_mps: Option<f64>, accuracy_m: Option<f64>, ts: Timestamp) -> Result<Self> {
        let bad = |what: String| Err(ActorError::Engine(dispatch_engine::Error::InvalidConfig(what)));
        if heading.is_some_and(|h| !(h.is_finite() && (0.0..360.0).contains(&h))) {
            return bad(format!("heading {heading:?} must be in 0..360"));
        }
        if speed_mps.is_some_and(|s| !(s.is_finite() && s >= 0.0)) {
            return bad(format!("speed {speed_mps:?} must be a finite number >= 0"));
        }
        if accuracy_m.is_some_and(|a| !(a.is_finite() && a >= 0.0)) {
            return bad(format!("accuracy {accuracy_m:?} must be a finite number >= 0"));
        }
        Ok(Self { point, heading, speed_mps, accuracy_m, ts })
    }
}

/// What a contractor can set about themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Ready for offers.
    Available,
    /// Online, not taking offers.
    OnBreak,
    /// Gone: the actor hibernates.
    Offline,
}

/// The facts scoring needs about a contractor for one job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CandidateFacts {
    /// Status now.
    pub status: StatusKind,
    /// Reviews.
    pub rating: Rating,
    /// Years in the job's trade (0 if none).
    pub years_experience: u8,
    /// Hourly rate.
    pub hourly_rate: Money,
    /// Seconds left in the current shift.
    pub shift_remaining_secs: Option<u32>,
    /// Metres the contractor will travel.
    pub service_radius_m: f64,
    /// Whether a shift covers the job's window (always true for unscheduled jobs).
    pub covers_window: bool,
}

/// Messages to a contractor actor.
#[derive(Debug)]
pub enum ContractorMsg {
    /// A link has a fix waiting (no reply: phones send these at a high
    /// rate); the actor takes the newest one when it gets to it.
    Gps(std::sync::Arc<crate::handle::LatestFix>),
    /// The contractor sets their presence; replied once stored.
    SetPresence {
        /// The new presence.
        presence: Presence,
        /// Where they are, if known (going online).
        at: Option<GeoPoint>,
        /// Answer.
        reply: RpcReplyPort<Result<ContractorStatus>>,
    },
    /// A job asks to hold the contractor for an offer; `true` if they were
    /// available and the hold is stored. For a scheduled job (`window`), the
    /// contractor must also have a shift covering the window and a day route
    /// that takes the job without making any booked job late.
    HoldForOffer {
        /// The job.
        job: JobId,
        /// Its site.
        site: GeoPoint,
        /// Its window, for a scheduled job.
        window: Option<TimeWindow>,
        /// Answer.
        reply: RpcReplyPort<bool>,
    },
    /// An accepted scheduled job goes on the contractor's agenda, and the
    /// contractor is free for other work until they set off.
    Book {
        /// The job, as a stop of the day's route.
        stop: Stop,
        /// Answer once stored.
        reply: RpcReplyPort<Result<()>>,
    },
    /// The job moves the contractor on (en route, on site) or releases them
    /// (available); ignored if the contractor neither holds nor has booked that job.
    JobUpdate {
        /// The job.
        job: JobId,
        /// The contractor's new status.
        status: ContractorStatus,
        /// The job's site.
        site: GeoPoint,
        /// Answer once stored.
        reply: RpcReplyPort<Result<()>>,
    },
    /// Scoring facts for a job of `trade` (and `window`, if scheduled).
    Describe {
        /// The job's trade.
        trade: Trade,
        /// The job's window, if scheduled.
        window: Option<TimeWindow>,
        /// Answer.
        reply: RpcReplyPort<CandidateFacts>,
    },
    /// A customer's review of `job`, 0..=5 stars; replied once stored.
    /// Counted once per job: a repeat (a retry) changes nothing and answers
    /// the rating as it stands.
    Rate {
        /// The job reviewed.
        job: JobId,
        /// Stars.
        stars: f64,
        /// Answer.
        reply: RpcReplyPort<Result<Rating>>,
    },
    /// What a job charged earned them (sent again as it is refunded or paid
    /// out): their statement keeps the newest line per job.
    Earned(dispatch_engine::payment::EarningLine),
    /// Answers once every message sent before it has been handled (a barrier:
    /// the mailbox is first in, first out).
    Flush(RpcReplyPort<()>),
    /// The contractor's snapshot as it stands.
    Get(RpcReplyPort<ContractorSnapshot>),
    /// Re-enter the current cell (after the cell actor restarted).
    Reannounce,
    /// The dispatcher's idle sweep: hibernate if idle.
    IdleCheck,
    /// Test hook: panic inside the handler.
    #[cfg(feature = "testsuite")]
    Panic,
}

/// The contractor actor.
pub(crate) struct ContractorActor;

/// The contractor actor's state.
pub(crate) struct ContractorState {
    snap: ContractorSnapshot,
    shared: Arc<Shared>,
    cell: Option<CellIndex>,
    /// The actor of `cell`, kept so a fix inside the same cell needs no directory lookup.
    cell_actor: Option<ActorRef<CellMsg>>,
    /// When the live map last got this contractor's position.
    mapped_at: Option<tokio::time::Instant>,
    last_activity: tokio::time::Instant,
    /// The position last handed to the store, and when.
    stored_position: Option<(GeoPoint, tokio::time::Instant)>,
}

impl ContractorState {
    fn id(&self) -> ContractorId {
        self.snap.profile.id
    }

    fn indexed(&self) -> IndexedContractor {
        IndexedContractor {
            id: self.id(),
            status: self.snap.status.kind(),
            trades: self.snap.profile.trade_set(),
            rating: self.snap.profile.rating.average(),
        }
    }

    fn holds_job(&self) -> Option<JobId> {
        match self.snap.status {
            ContractorStatus::Offered(j) | ContractorStatus::EnRoute(j) | ContractorStatus::OnSite(j) => Some(j),
            _ => None,
        }
    }

    /// Whether the day's route can take `stop` without adding lateness: the
    /// engine plans the agenda with and without it, from where the contractor is now.
    fn route_takes(&self, stop: Stop) -> bool {
        let speed = self.shared.config.speed;
        let travel =
            |a: GeoPoint, b: GeoPoint| dispatch_engine::eta::eta_secs(a.distance_m(b), speed.detour_factor, speed.default_speed_mps);
        let (start, now, config) = (self.snap.position.unwrap_or(stop.location), self.shared.clock.now(), RoutingConfig::default());
        let lateness = |stops: &[Stop]| plan_day(start, now, stops, &config, travel).map_or(f64::INFINITY, |p| p.lateness_secs);
        let mut with = self.snap.agenda.clone();
        with.push(stop);
        lateness(&with) <= lateness(&self.snap.agenda) + 1.0
    }

    /// Writes the snapshot now, through the city's writer; returns once stored.
    async fn persist(&mut self) -> Result<()> {
        self.shared.contractor_writer.write_now(self.id().0, codec::encode(&self.snap)?).await?;
        // The directory's row follows the snapshot (a row left behind by a failure here is rewritten with the next change).
        let (kind, id, row) = crate::contractor_index::row(&self.snap)?;
        self.shared.store.put(kind, id, row).await?;
        self.stored_position = self.snap.position.map(|p| (p, tokio::time::Instant::now()));
        Ok(())
    }

    /// Hands the snapshot to the writer for its new position, if that is due:
    /// [`DispatchConfig::position_persist_interval`] since the position last
    /// stored, and moved [`DispatchConfig::position_persist_min_move_m`] from it.
    ///
    /// [`DispatchConfig::position_persist_interval`]: crate::DispatchConfig::position_persist_interval
    /// [`DispatchConfig::position_persist_min_move_m`]: crate::DispatchConfig::position_persist_min_move_m
    fn persist_position_if_due(&mut self, point: GeoPoint) {
        let now = tokio::time::Instant::now();
        let config = &self.shared.config;
        let due = self.stored_position.is_none_or(|(stored, at)| {
            now.duration_since(at) >= config.position_persist_interval && stored.distance_m(point) >= config.position_persist_min_move_m
        });
        if due {
            self.stored_position = Some((point, now));
            self.persist_soon();
        }
    }

    /// Hands the snapshot to the writer to be written with the next batch.
    fn persist_soon(&mut self) {
        match codec::encode(&self.snap) {
            Ok(blob) => self.shared.contractor_writer.coalesce(self.id().0, blob),
            Err(e) => tracing::warn!(contractor = %self.id(), %e, "snapshot not encoded"),
        }
    }

    /// Puts the contractor in the right cell with their current attributes
    /// (or takes them out when offline), and on the live map.
    async fn reindex(&mut self) {
        self.map(true);
        self.reindex_observing(None).await;
    }

    /// Writes the contractor to the city's live map: always when `changed`
    /// (status), otherwise at most once a second.
    fn map(&mut self, changed: bool) {
        let Some(point) = self.snap.position else { return };
        let now = tokio::time::Instant::now();
        if changed || self.mapped_at.is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(1)) {
            self.mapped_at = Some(now);
            let profile = &self.snap.profile;
            self.shared.map.put_contractor(crate::map::MapContractor {
                id: self.id(),
                point,
                status: self.snap.status.kind(),
                trades: profile.trade_set(),
                rating: profile.rating.average(),
                version: 0,
            });
        }
    }

    /// [`Self::reindex`], passing on the speed the phone reported with a fix.
    async fn reindex_observing(&mut self, speed_mps: Option<f64>) {
        let point = match (self.snap.status, self.snap.position) {
            (ContractorStatus::Offline, _) | (_, None) => None,
            (_, Some(p)) => Some(p),
        };
        let new_cell = point.map(|p| self.shared.cell_of(p));
        let id = self.id();
        if let Some(old) = self.cell.filter(|c| Some(*c) != new_cell)
            && let Some(actor) = self.shared.cell(old)
        {
            let _ = actor.cast(CellMsg::Exit(id));
        }
        if self.cell != new_cell {
            self.cell_actor = None;
        }
        self.cell = new_cell;
        if let (Some(cell), Some(point)) = (new_cell, point) {
            let contractor = self.indexed();
            // Fast path: the cell's actor we already hold.
            if let Some(actor) = &self.cell_actor
                && actor.cast(CellMsg::Upsert { contractor, point, speed_mps }).is_ok()
            {
                return;
            }
            match self.shared.cast_to_cell(cell, || CellMsg::Upsert { contractor, point, speed_mps }).await {
                Ok(()) => self.cell_actor = self.shared.cell(cell),
                Err(e) => tracing::warn!(contractor = %id, %e, "could not update the cell index"),
            }
        }
    }

    /// Applies a status change and stores it; on a store failure the old status stays.
    async fn set_status(&mut self, status: ContractorStatus, site: Option<Option<GeoPoint>>) -> Result<()> {
        let (old_status, old_site, old_arriving) = (self.snap.status, self.snap.job_site, self.snap.arriving_sent);
        if self.snap.status != status {
            self.snap.arriving_sent = false;
        }
        self.snap.status = status;
        if let Some(site) = site {
            self.snap.job_site = site;
        }
        if let Err(e) = self.persist().await {
            self.snap.status = old_status;
            self.snap.job_site = old_site;
            self.snap.arriving_sent = old_arriving;
            return Err(e);
        }
        self.reindex().await;
        Ok(())
    }

    async fn on_gps(&mut self, fix: GpsFix) {
        if self.snap.last_fix.is_some_and(|last| fix.ts <= last) {
            metrics::counter!("dispatch_gps_ignored_total", "reason" => "out_of_order").increment(1);
            return;
        }
        if let (Some(prev), Some(last)) = (self.snap.position, self.snap.last_fix) {
            let secs = fix.ts.secs_since(last);
            if prev.distance_m(fix.point) / secs > self.shared.config.max_plausible_speed_mps {
                metrics::counter!("dispatch_gps_ignored_total", "reason" => "implausible_jump").increment(1);
                tracing::debug!(contractor = %self.id(), "GPS jump flagged and not trusted");
                return;
            }
        }
        let moved = self.snap.position != Some(fix.point);
        self.snap.position = Some(fix.point);
        self.snap.last_fix = Some(fix.ts);
        self.persist_position_if_due(fix.point);
        self.last_activity = tokio::time::Instant::now();
        self.map(false);
        if moved {
            self.reindex_observing(fix.speed_mps).await;
        }
        if let (ContractorStatus::EnRoute(job), Some(site)) = (self.snap.status, self.snap.job_site) {
            let distance_m = fix.point.distance_m(site);
            let speed = self.shared.config.speed;
            let eta_secs = dispatch_engine::eta::eta_secs(distance_m, speed.detour_factor, speed.default_speed_mps);
            self.shared.broadcast(job, EventKind::ContractorPosition { contractor: self.id(), point: fix.point, eta_secs });
            if distance_m <= self.shared.config.arriving_m && !self.snap.arriving_sent {
                self.snap.arriving_sent = true;
                if let Some(actor) = self.shared.job(job) {
                    let _ = actor.cast(JobMsg::Arriving { contractor: self.id(), distance_m });
                }
            }
        }
    }

    /// Writes the snapshot as offline, leaves the cell and stops the actor.
    async fn hibernate(&mut self, myself: &ActorRef<ContractorMsg>) -> Result<()> {
        self.set_status(ContractorStatus::Offline, None).await?;
        forget_if_same(&self.shared.contractors, &self.id(), myself.get_id());
        myself.stop(Some("hibernated".into()));
        Ok(())
    }
}

impl Actor for ContractorActor {
    type Msg = ContractorMsg;
    type State = ContractorState;
    type Arguments = (ContractorSnapshot, Arc<Shared>);

    async fn pre_start(
        &self,
        myself: ActorRef<ContractorMsg>,
        (snap, shared): Self::Arguments,
    ) -> Result<ContractorState, ActorProcessingErr> {
        let _ = myself;
        metrics::gauge!("dispatch_actors_alive", "kind" => "contractor").increment(1.0);
        let now = tokio::time::Instant::now();
        // Restored from the store: its position is stored as it stands.
        let stored_position = snap.position.map(|p| (p, now));
        Ok(ContractorState { snap, shared, cell: None, cell_actor: None, mapped_at: None, last_activity: now, stored_position })
    }

    async fn post_start(&self, _: ActorRef<ContractorMsg>, state: &mut ContractorState) -> Result<(), ActorProcessingErr> {
        state.reindex().await;
        Ok(())
    }

    async fn post_stop(&self, myself: ActorRef<ContractorMsg>, state: &mut ContractorState) -> Result<(), ActorProcessingErr> {
        // GPS-only changes already sit with the city's writer, which flushes them on shutdown.
        forget_if_same(&state.shared.contractors, &state.id(), myself.get_id());
        metrics::gauge!("dispatch_actors_alive", "kind" => "contractor").decrement(1.0);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ContractorMsg>,
        msg: ContractorMsg,
        state: &mut ContractorState,
    ) -> Result<(), ActorProcessingErr> {
        // Boxed: ractor keeps this future inside the actor's task for the
        // actor's whole life, so inlined, the largest message's state machine
        // (store writes, cell calls) would cost every idle contractor ~3 KiB.
        Box::pin(handle_message(myself, msg, state)).await
    }
}

/// One message carried out (see [`ContractorActor::handle`]).
async fn handle_message(
    myself: ActorRef<ContractorMsg>,
    msg: ContractorMsg,
    state: &mut ContractorState,
) -> Result<(), ActorProcessingErr> {
    // GPS fixes are the hot path: only the other messages are timed.
    let started = (!matches!(msg, ContractorMsg::Gps(..))).then(std::time::Instant::now);
    match msg {
        ContractorMsg::Gps(latest) => {
            // The newest fix the link has by now (newer ones replaced older ones while this waited).
            if let Some(fix) = latest.take() {
                state.on_gps(fix).await;
                state.shared.counters.gps_handled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        ContractorMsg::SetPresence { presence, at, reply } => {
            state.last_activity = tokio::time::Instant::now();
            let answer = if let Some(job) = state.holds_job() {
                Err(ActorError::ContractorState(state.id(), format!("holds job {job}; finish or hand it back first")))
            } else {
                if let Some(point) = at {
                    state.snap.position = Some(point);
                }
                match presence {
                    Presence::Offline => state.hibernate(&myself).await.map(|()| ContractorStatus::Offline),
                    Presence::OnBreak => state.set_status(ContractorStatus::OnBreak, Some(None)).await.map(|()| ContractorStatus::OnBreak),
                    Presence::Available => {
                        state.set_status(ContractorStatus::Available, Some(None)).await.map(|()| ContractorStatus::Available)
                    }
                }
            };
            let _ = reply.send(answer);
        }
        ContractorMsg::HoldForOffer { job, site, window, reply } => {
            let service_secs = state.shared.config.expected_job_secs;
            let fits = window.is_none_or(|w| {
                state.snap.profile.covers(&w) && state.route_takes(Stop { job, location: site, window: Some(w), service_secs })
            });
            let held = fits
                && state.snap.status == ContractorStatus::Available
                && state.set_status(ContractorStatus::Offered(job), Some(Some(site))).await.is_ok();
            let _ = reply.send(held);
        }
        ContractorMsg::Book { stop, reply } => {
            let answer = if state.snap.status == ContractorStatus::Offered(stop.job) {
                state.snap.agenda.push(stop);
                let booked = state.set_status(ContractorStatus::Available, Some(None)).await;
                if booked.is_err() {
                    state.snap.agenda.pop();
                }
                booked
            } else {
                Err(ActorError::ContractorState(state.id(), format!("does not hold an offer of job {}", stop.job)))
            };
            let _ = reply.send(answer);
        }
        ContractorMsg::JobUpdate { job, status, site, reply } => {
            let booked = state.snap.agenda.iter().position(|s| s.job == job);
            let answer = match (state.holds_job() == Some(job), booked, status) {
                // Released from a booked job it was not working on yet: just unbook.
                (false, Some(at), ContractorStatus::Available) => {
                    let stop = state.snap.agenda.remove(at);
                    let stored = state.persist().await;
                    if stored.is_err() {
                        state.snap.agenda.insert(at, stop);
                    }
                    stored
                }
                (true, _, _) | (false, Some(_), _) => {
                    // Finished, cancelled, or setting off: either way no longer booked.
                    let old_agenda = state.snap.agenda.clone();
                    state.snap.agenda.retain(|s| s.job != job);
                    let site = if status == ContractorStatus::Available { None } else { Some(site) };
                    let moved = state.set_status(status, Some(site)).await;
                    if moved.is_err() {
                        state.snap.agenda = old_agenda;
                    }
                    moved
                }
                _ => Ok(()), // a stale update from a job this contractor no longer holds
            };
            let _ = reply.send(answer);
        }
        ContractorMsg::Describe { trade, window, reply } => {
            let p = &state.snap.profile;
            let _ = reply.send(CandidateFacts {
                status: state.snap.status.kind(),
                rating: p.rating,
                years_experience: p.years_in(trade).unwrap_or(0),
                hourly_rate: p.hourly_rate,
                shift_remaining_secs: p.shift_remaining_secs(state.shared.clock.now()),
                service_radius_m: p.service_radius_m,
                covers_window: window.is_none_or(|w| p.covers(&w)),
            });
        }
        ContractorMsg::Rate { job, stars, reply } => {
            let before = state.snap.ratings.clone();
            let answer = match state.snap.ratings.add(job, stars) {
                Err(e) => Err(ActorError::Engine(e)),
                Ok(false) => Ok(state.snap.profile.rating),
                Ok(true) => {
                    let old = std::mem::replace(&mut state.snap.profile.rating, state.snap.ratings.rating());
                    match state.persist().await {
                        Ok(()) => {
                            state.reindex().await;
                            Ok(state.snap.profile.rating)
                        }
                        Err(e) => {
                            state.snap.profile.rating = old;
                            state.snap.ratings = before;
                            Err(e)
                        }
                    }
                }
            };
            let _ = reply.send(answer);
        }
        ContractorMsg::Earned(line) => {
            let earnings = &mut state.snap.earnings;
            earnings.retain(|l| l.job != line.job && l.day > line.day - crate::record::EARNINGS_KEPT_DAYS);
            earnings.push(line);
            if let Err(e) = state.persist().await {
                // The job's snapshot and log keep the money; only the statement misses it until the next line.
                tracing::warn!(contractor = %state.snap.profile.id, job = %line.job, %e, "earnings not stored");
            }
        }
        ContractorMsg::Get(reply) => {
            let _ = reply.send(state.snap.clone());
        }
        ContractorMsg::Flush(reply) => {
            let _ = reply.send(());
        }
        ContractorMsg::Reannounce => {
            state.cell_actor = None;
            state.reindex().await;
        }
        ContractorMsg::IdleCheck => {
            let idle = state.last_activity.elapsed() >= state.shared.config.idle_hibernate_after;
            if idle
                && state.holds_job().is_none()
                && let Err(e) = state.hibernate(&myself).await
            {
                tracing::warn!(contractor = %state.id(), %e, "could not hibernate; staying live");
            }
        }
        #[cfg(feature = "testsuite")]
        ContractorMsg::Panic => panic!("test hook: contractor {} panics", state.id()),
    }
    if let Some(started) = started {
        metrics::histogram!("dispatch_message_seconds", "kind" => "contractor").record(started.elapsed().as_secs_f64());
    }
    Ok(())
}
