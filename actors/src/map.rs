//! [`CityMap`]: what a dispatcher's live map shows, kept current by the
//! actors and read as versioned deltas.
//!
//! Every change takes the next city-wide version number. A reader remembers
//! the highest version it has seen and asks for what changed since
//! ([`CityMap::since`]): a slow reader simply gets one larger delta, which is
//! how the feed coalesces. Contractor positions are written at most once a
//! second per contractor (a clock check on the GPS path, no timer); status
//! and job changes are written at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use dispatch_engine::{ContractorId, GeoPoint, JobId, JobStateKind, StatusKind};
use serde::{Deserialize, Serialize};

/// Shards of the contractor table, so GPS writers on different threads rarely meet.
const SHARDS: usize = 64;

/// A contractor on the map.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MapContractor {
    /// Who.
    pub id: ContractorId,
    /// Where (last written).
    pub point: GeoPoint,
    /// What they are doing; `offline` once they leave.
    pub status: StatusKind,
    /// Their trades.
    pub trades: dispatch_engine::TradeSet,
    /// Their average rating, 0–5.
    pub rating: f32,
    /// The version of this change.
    pub version: u64,
}

/// A job on the map.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MapJob {
    /// The job.
    pub id: JobId,
    /// Its site.
    pub point: GeoPoint,
    /// Its state.
    pub state: JobStateKind,
    /// Its trade.
    pub trade: dispatch_engine::Trade,
    /// When it was posted.
    pub posted_at: dispatch_engine::Timestamp,
    /// The contractor offered or assigned, if any.
    pub contractor: Option<ContractorId>,
    /// Where its money is (`None`: a job without payment).
    pub payment: Option<dispatch_engine::payment::PaymentState>,
    /// The version of this change.
    pub version: u64,
}

/// What changed since a version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MapDelta {
    /// The highest version included: ask for changes since this next time.
    pub version: u64,
    /// Contractors that changed.
    pub contractors: Vec<MapContractor>,
    /// Jobs that changed.
    pub jobs: Vec<MapJob>,
}

impl MapDelta {
    /// Whether nothing changed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.contractors.is_empty() && self.jobs.is_empty()
    }
}

/// How matching has gone: for the map's side panel.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MatchStats {
    /// Jobs accepted in the last 60 seconds.
    pub matched_last_minute: u32,
    /// Jobs accepted since the city started.
    pub matched_total: u64,
    /// Median seconds from posting to acceptance over the last 500 matches.
    pub median_match_secs: Option<f64>,
}

/// The city's live map.
pub struct CityMap {
    version: AtomicU64,
    /// Recent matches: (accepted at ms, seconds from posting), newest last.
    matches: Mutex<std::collections::VecDeque<(i64, f64)>>,
    matched_total: AtomicU64,
    contractors: Vec<Mutex<HashMap<ContractorId, MapContractor>>>,
    jobs: Mutex<HashMap<JobId, MapJob>>,
}

impl Default for CityMap {
    fn default() -> Self {
        Self {
            version: AtomicU64::new(0),
            matches: Mutex::default(),
            matched_total: AtomicU64::new(0),
            contractors: (0..SHARDS).map(|_| Mutex::default()).collect(),
            jobs: Mutex::default(),
        }
    }
}

impl CityMap {
    fn next(&self) -> u64 {
        self.version.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Records a match: accepted at `at_ms`, `latency_secs` after posting.
    pub fn record_match(&self, at_ms: i64, latency_secs: f64) {
        self.matched_total.fetch_add(1, Ordering::Relaxed);
        let mut m = self.matches.lock().unwrap_or_else(PoisonError::into_inner);
        m.push_back((at_ms, latency_secs));
        while m.len() > 500 {
            m.pop_front();
        }
    }

    /// Matching figures as of `now_ms`.
    #[must_use]
    pub fn match_stats(&self, now_ms: i64) -> MatchStats {
        let m = self.matches.lock().unwrap_or_else(PoisonError::into_inner);
        let matched_last_minute = u32::try_from(m.iter().filter(|(at, _)| now_ms - at <= 60_000).count()).unwrap_or(u32::MAX);
        let mut latencies: Vec<f64> = m.iter().map(|(_, l)| *l).collect();
        latencies.sort_by(f64::total_cmp);
        let median_match_secs = latencies.get(latencies.len() / 2).copied().filter(|_| !latencies.is_empty());
        MatchStats { matched_last_minute, matched_total: self.matched_total.load(Ordering::Relaxed), median_match_secs }
    }

    /// The latest version handed out.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// Records a contractor's position and status (`contractor.version` is set here).
    pub fn put_contractor(&self, contractor: MapContractor) {
        let contractor = MapContractor { version: self.next(), ..contractor };
        let shard = &self.contractors[(contractor.id.0 as usize) % SHARDS];
        shard.lock().unwrap_or_else(PoisonError::into_inner).insert(contractor.id, contractor);
    }

    /// Up to `limit` contractors on the map (online, and offline ones until
    /// they are pruned) with ids after `after` that `keep` keeps, by id.
    #[must_use]
    pub fn contractors_after(
        &self,
        after: Option<ContractorId>,
        limit: usize,
        keep: impl Fn(&MapContractor) -> bool,
    ) -> Vec<MapContractor> {
        let mut page = Vec::new();
        for shard in &self.contractors {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            page.extend(shard.values().filter(|c| after.is_none_or(|a| c.id > a) && keep(c)).copied());
        }
        page.sort_unstable_by_key(|c| c.id);
        page.truncate(limit);
        page
    }

    /// Records a job's state (`job.version` is set here).
    pub fn put_job(&self, job: MapJob) {
        let job = MapJob { version: self.next(), ..job };
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner).insert(job.id, job);
    }

    /// Up to `limit` jobs on the map (the open ones, and the finished ones
    /// until they are pruned) with ids after `after` that `keep` keeps, by id.
    #[must_use]
    pub fn jobs_after(&self, after: Option<JobId>, limit: usize, keep: impl Fn(&MapJob) -> bool) -> Vec<MapJob> {
        let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let mut page: Vec<MapJob> = jobs.values().filter(|j| after.is_none_or(|a| j.id > a) && keep(j)).copied().collect();
        drop(jobs);
        page.sort_unstable_by_key(|j| j.id);
        page.truncate(limit);
        page
    }

    /// Everything that changed after `version` (0: everything), inside
    /// `viewport` (`[south, west, north, east]`) if one is given.
    #[must_use]
    pub fn since(&self, version: u64, viewport: Option<[f64; 4]>) -> MapDelta {
        let top = self.version.load(Ordering::SeqCst);
        let inside = |p: GeoPoint| viewport.is_none_or(|[s, w, n, e]| (s..=n).contains(&p.lat()) && (w..=e).contains(&p.lng()));
        let mut delta = MapDelta { version: top, ..MapDelta::default() };
        for shard in &self.contractors {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            delta.contractors.extend(shard.values().filter(|c| c.version > version && c.version <= top && inside(c.point)));
        }
        let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        delta.jobs.extend(jobs.values().filter(|j| j.version > version && j.version <= top && inside(j.point)));
        delta.contractors.sort_by_key(|c| c.id);
        delta.jobs.sort_by_key(|j| j.id);
        delta
    }

    /// Drops offline contractors and finished jobs last changed at or before
    /// `version` (readers past it have already been told they left).
    pub fn prune(&self, version: u64) {
        for shard in &self.contractors {
            shard.lock().unwrap_or_else(PoisonError::into_inner).retain(|_, c| c.status != StatusKind::Offline || c.version > version);
        }
        let done = |s: JobStateKind| matches!(s, JobStateKind::Completed | JobStateKind::Cancelled | JobStateKind::Expired);
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner).retain(|_, j| !done(j.state) || j.version > version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_stats_count_the_last_minute_and_take_the_median() {
        let map = CityMap::default();
        assert_eq!(map.match_stats(0), MatchStats::default());
        map.record_match(1_000, 4.0);
        map.record_match(50_000, 1.0);
        map.record_match(100_000, 2.0);
        let s = map.match_stats(100_000);
        assert_eq!((s.matched_last_minute, s.matched_total, s.median_match_secs), (2, 3, Some(2.0)));
    }

    #[test]
    fn deltas_carry_only_what_changed_since_a_version() {
        let map = CityMap::default();
        let p = GeoPoint::new(41.6, -93.6).unwrap();
        let pin = |point, status| MapContractor {
            id: ContractorId(1),
            point,
            status,
            trades: dispatch_engine::TradeSet::single(dispatch_engine::Trade::Plumbing),
            rating: 4.5,
            version: 0,
        };
        map.put_contractor(pin(p, StatusKind::Available));
        let job = |state, contractor, payment| MapJob {
            id: JobId(9),
            point: p,
            state,
            trade: dispatch_engine::Trade::Plumbing,
            posted_at: dispatch_engine::Timestamp(1),
            contractor,
            payment,
            version: 0,
        };
        map.put_job(job(JobStateKind::Posted, None, Some(dispatch_engine::payment::PaymentState::Authorized)));
        let first = map.since(0, None);
        assert_eq!((first.contractors.len(), first.jobs.len(), first.version), (1, 1, 2));
        assert!(map.since(first.version, None).is_empty());
        map.put_contractor(pin(p.destination(0.0, 10.0), StatusKind::OnSite));
        let second = map.since(first.version, None);
        assert_eq!(second.contractors.len(), 1);
        assert_eq!(second.contractors[0].status, StatusKind::OnSite);
        assert!(second.jobs.is_empty());
        // A viewport elsewhere sees nothing.
        assert!(map.since(0, Some([0.0, 0.0, 1.0, 1.0])).is_empty());
        // Finished jobs and offline contractors are pruned once everyone has seen them.
        map.put_job(job(JobStateKind::Completed, Some(ContractorId(1)), None));
        map.put_contractor(pin(p, StatusKind::Offline));
        let v = map.since(0, None).version;
        map.prune(v);
        assert!(map.since(0, None).is_empty());
    }
}
