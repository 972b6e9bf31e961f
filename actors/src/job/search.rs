//! A job's search: candidates asked of the live cell actors in the engine's
//! ring-walk order, scored and ranked, offered one at a time with a
//! timeout, the radius widened when a round is spent; a dispatcher's
//! assignment.

use std::collections::{HashMap, VecDeque};

use dispatch_engine::scoring::{Candidate, JobContext, rank};
use dispatch_engine::spatial::insert_ranked;
use dispatch_engine::{ContractorId, ContractorStatus, Filter, JobEvent, JobState, Neighbor, TradeSet};
use dispatch_engine::{OccupiedCells, RingWalk};
use h3o::CellIndex;
use ractor::ActorRef;

use crate::cell::{CellAnswer, CellMsg};
use crate::contractor::ContractorMsg;
use crate::error::{ActorError, Result};
use crate::record::LogRecord;
use crate::shared::{Shared, read};

use super::*;

/// The city's live cell actors as the ring walk sees them.
struct LiveCells<'a>(&'a Shared);

impl OccupiedCells for LiveCells<'_> {
    fn count(&self) -> usize {
        read(&self.0.cells).len()
    }

    fn contains(&self, cell: CellIndex) -> bool {
        read(&self.0.cells).contains_key(&cell)
    }

    fn cells(&self) -> Vec<CellIndex> {
        read(&self.0.cells).keys().copied().collect()
    }
}

/// The `k` contractors nearest `query` that pass `filter` (its maximum
/// distance included), asked of the live cell actors in the order of the
/// engine's [`RingWalk`] — the walk the in-memory index runs — until no
/// unsearched cell can hold a nearer one; with each visited cell's answer
/// (its learned speed is the ETA's input).
pub(crate) async fn nearest_live(
    shared: &Shared,
    query: dispatch_engine::GeoPoint,
    k: usize,
    filter: &Filter,
) -> (Vec<Neighbor>, Vec<(CellIndex, CellAnswer)>) {
    let mut best: Vec<Neighbor> = Vec::with_capacity(k + 1);
    let mut answers: Vec<(CellIndex, CellAnswer)> = Vec::new();
    if k == 0 {
        return (best, answers);
    }
    let mut walk = RingWalk::new(query, shared.cell_of(query));
    while let Some(cell) = walk.next_cell(&LiveCells(shared), filter.reach(&best, k)) {
        let Some(actor) = shared.cell(cell) else { continue };
        if let Some(answer) = nearest_in(&actor, query, k, filter).await {
            for n in &answer.neighbors {
                insert_ranked(&mut best, k, *n);
            }
            answers.push((cell, answer));
        }
    }
    (best, answers)
}

/// A cell's best `k` matches for `query`, or `None` if the cell did not answer.
async fn nearest_in(actor: &ActorRef<CellMsg>, query: dispatch_engine::GeoPoint, k: usize, filter: &Filter) -> Option<CellAnswer> {
    let filter = filter.clone();
    ask(actor, |reply| CellMsg::Nearest { query, k, filter, reply }).await.ok()
}

/// Years of experience a contractor declared count in matching up to this
/// until an operator verifies their licence for the trade: a self-declared
/// value is taken as such, not on trust.
pub const UNVERIFIED_YEARS: u8 = 2;

/// The years matching scores: as declared once the trade is verified, else at most [`UNVERIFIED_YEARS`].
#[must_use]
pub const fn scored_years(declared: u8, verified: bool) -> u8 {
    if verified || declared <= UNVERIFIED_YEARS { declared } else { UNVERIFIED_YEARS }
}

impl JobActorState {
    /// Whether `contractor` holds a licence for this job's trade that holds now.
    fn verified(&self, contractor: ContractorId) -> bool {
        let now = self.shared.clock.now();
        read(&self.shared.vetting).get(&contractor).is_some_and(|v| v.licensed(self.snap.job.trade, now))
    }

    /// The best candidates within the current radius, scored and ranked.
    pub(super) async fn find_candidates(&mut self) -> VecDeque<Ranked> {
        let config = &self.shared.config;
        let query = self.snap.job.location;
        let radius = self.snap.radius_m;
        let k = config.candidates_per_round;
        let filter = Filter {
            trades: TradeSet::single(self.snap.job.trade),
            available_only: true,
            max_distance_m: Some(radius),
            exclude: self.snap.machine.excluded().clone(),
            min_rating: None,
        };
        let (best, answers) = nearest_live(&self.shared, query, k, &filter).await;
        let site_speed = answers.iter().find(|(c, _)| *c == self.cell).map_or(config.speed.default_speed_mps, |(_, a)| a.speed_mps);
        let speed_at: HashMap<ContractorId, f64> =
            answers.iter().flat_map(|(_, a)| a.neighbors.iter().map(|n| (n.contractor.id, a.speed_mps))).collect();
        let mut candidates = Vec::with_capacity(best.len());
        let mut etas = HashMap::new();
        for n in &best {
            if crate::shared::read(&self.shared.suspended).contains_key(&n.contractor.id) {
                continue; // suspended: no offers
            }
            if self.shared.config.licensed_trades.contains(self.snap.job.trade) {
                let now = self.shared.clock.now();
                let licensed =
                    crate::shared::read(&self.shared.vetting).get(&n.contractor.id).is_some_and(|v| v.licensed(self.snap.job.trade, now));
                if !licensed {
                    continue; // a licensed trade: only to a contractor with a verified, valid licence
                }
            }
            let Some(actor) = self.shared.contractor(n.contractor.id) else { continue };
            let (trade, window) = (self.snap.job.trade, self.window());
            let Ok(facts) = ask(&actor, |reply| ContractorMsg::Describe { trade, window, reply }).await else { continue };
            if n.distance_m > facts.service_radius_m || !facts.covers_window {
                continue; // farther than this contractor travels, or off shift for the window
            }
            let speed = (speed_at.get(&n.contractor.id).copied().unwrap_or(site_speed) + site_speed) / 2.0;
            let eta_secs = dispatch_engine::eta::eta_secs(n.distance_m, config.speed.detour_factor, speed);
            etas.insert(n.contractor.id, eta_secs);
            candidates.push(Candidate {
                id: n.contractor.id,
                distance_m: n.distance_m,
                status: facts.status,
                rating: facts.rating,
                years_experience: scored_years(facts.years_experience, self.verified(n.contractor.id)),
                hourly_rate: facts.hourly_rate,
                shift_remaining_secs: facts.shift_remaining_secs,
            });
        }
        let context = JobContext {
            needed_secs: config.expected_job_secs.saturating_add(etas.values().fold(0.0, |a: f64, b| a.max(*b)) as u32),
            reference_hourly_rate: config.pricing.base_prices.get(&self.snap.job.trade).copied().unwrap_or_default(),
        };
        rank(&config.scoring, &context, &candidates)
            .into_iter()
            .map(|s| Ranked { id: s.id, eta_secs: etas.get(&s.id).copied().unwrap_or(0.0) })
            .collect()
    }

    /// Offers the job to the best free candidate, widening the radius as
    /// needed; schedules a later search if nobody can be offered it now.
    pub(super) async fn search(&mut self, myself: &ActorRef<JobMsg>) {
        let started = std::time::Instant::now();
        if let Some(at) = self.offers_open_at()
            && self.shared.clock.now() < at
        {
            // Too early for a scheduled job: come back when offers open.
            self.timer(myself, self.shared.clock.until(at), || JobMsg::Search);
            return;
        }
        if !money::may_search(self.snap.payment.as_ref()) {
            return; // offered once the hold is on
        }
        if self.shared.config.batch_window.is_some() {
            // Batched mode: the dispatcher's next batch decides whom to offer.
            if *self.state() == JobState::Posted
                && let Some(root) = self.shared.root.get()
            {
                let _ = root.cast(crate::dispatcher::DispatcherMsg::BatchJoin(self.id()));
            }
            return;
        }
        loop {
            if *self.state() != JobState::Posted {
                return;
            }
            let round_spent = self.snap.offers_this_round >= self.shared.config.offers_per_round;
            if self.ranked.is_empty() || round_spent {
                if round_spent {
                    self.widen();
                }
                self.ranked = self.find_candidates().await;
                self.snap.offers_this_round = 0;
                self.ever_found |= !self.ranked.is_empty();
            }
            while let Some(next) = self.ranked.pop_front() {
                if self.snap.machine.excluded().contains(&next.id) {
                    continue;
                }
                if self.offer(myself, next).await {
                    metrics::histogram!("dispatch_search_seconds").record(started.elapsed().as_secs_f64());
                    return;
                }
            }
            // Nobody left to offer in this radius.
            if self.snap.radius_m >= self.shared.config.max_radius_m {
                self.timer(myself, self.shared.config.retry_after, || JobMsg::Search);
                return;
            }
            self.widen();
        }
    }

    pub(super) fn widen(&mut self) {
        self.snap.radius_m = (self.snap.radius_m * 2.0).min(self.shared.config.max_radius_m);
        self.snap.offers_this_round = 0;
        self.ranked.clear();
    }

    /// Holds the contractor and records the offer; `false` if either refused.
    pub(super) async fn offer(&mut self, myself: &ActorRef<JobMsg>, to: Ranked) -> bool {
        let Some(actor) = self.shared.contractor(to.id) else { return false };
        let (job, site, window) = (self.id(), self.snap.job.location, self.window());
        if !ask(&actor, |reply| ContractorMsg::HoldForOffer { job, site, window, reply }).await.unwrap_or(false) {
            return false;
        }
        let timeout = self.shared.config.offer_timeout;
        let expires_at = self.shared.clock.now().plus(timeout);
        let event = JobEvent::Offered { contractor: to.id, expires_at };
        let log = LogRecord::Offered { contractor: to.id, expires_at, eta_secs: to.eta_secs };
        match self.transition(event, log).await {
            Ok(_) => {
                self.snap.offers_this_round += 1;
                metrics::counter!("dispatch_offers_total", "outcome" => "sent").increment(1);
                let contractor = to.id;
                self.timer(myself, timeout, move || JobMsg::OfferTimeout { contractor, expires_at });
                true
            }
            Err(e) => {
                tracing::warn!(%job, contractor = %to.id, %e, "offer not recorded; releasing the contractor");
                self.update_contractor(to.id, ContractorStatus::Available).await;
                false
            }
        }
    }

    /// A dispatcher's choice: release the current holder, then offer to `to`.
    pub(super) async fn assign(&mut self, myself: &ActorRef<JobMsg>, to: ContractorId) -> Result<JobState> {
        // Check the choice before anything changes.
        if self.snap.machine.excluded().contains(&to) {
            return Err(ActorError::Engine(dispatch_engine::Error::ContractorExcluded(to)));
        }
        let actor = crate::dispatcher::activate(&self.shared, to).await?;
        let (trade, window) = (self.snap.job.trade, self.window());
        let facts = ask(&actor, |reply| ContractorMsg::Describe { trade, window, reply }).await?;
        if facts.status != dispatch_engine::StatusKind::Available {
            return Err(ActorError::ContractorState(to, format!("is {:?}, not available for an offer", facts.status)));
        }
        match self.state().clone() {
            JobState::Offering { contractor, .. } if contractor != to => {
                self.transition(JobEvent::Declined { contractor }, LogRecord::Declined { contractor }).await?;
                self.update_contractor(contractor, ContractorStatus::Available).await;
            }
            JobState::Accepted { contractor } | JobState::EnRoute { contractor } if contractor != to => {
                self.transition(JobEvent::Withdrawn { contractor }, LogRecord::Withdrawn { contractor }).await?;
                self.update_contractor(contractor, ContractorStatus::Available).await;
            }
            JobState::Posted => {}
            other => {
                return Err(ActorError::Engine(dispatch_engine::Error::IllegalTransition {
                    state: other.kind(),
                    event: dispatch_engine::JobEventKind::Offered,
                }));
            }
        }
        if self.offer(myself, Ranked { id: to, eta_secs: 0.0 }).await {
            Ok(self.state().clone())
        } else {
            self.search(myself).await;
            Err(ActorError::ContractorState(to, "not available for an offer".into()))
        }
    }
}
