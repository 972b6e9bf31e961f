//! Day routing: the order in which a contractor visits the day's accepted jobs.
//!
//! Each stop has a service duration and may have an arrival window. Arriving
//! before the window opens means waiting; arriving after it closes costs
//! lateness. A route's cost is
//!
//! ```text
//! cost = total travel seconds + lateness_weight × total lateness seconds
//! ```
//!
//! Up to [`RoutingConfig::exact_limit`] stops (default 8) the order is exact:
//! a depth-first branch and bound over visiting orders, pruning any partial
//! route that already costs as much as the best complete one (cost only grows
//! along a route). Above that, cheapest insertion in deadline order builds a
//! route which 2-opt (segment reversal) and or-opt (moving one stop) then
//! improve until no move helps.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::geo_point::GeoPoint;
use crate::types::{JobId, TimeWindow, Timestamp};

/// One job on the day's list.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stop {
    /// The job.
    pub job: JobId,
    /// Where it is.
    pub location: GeoPoint,
    /// When the contractor should arrive; `None`: any time.
    pub window: Option<TimeWindow>,
    /// How long the work takes, seconds.
    pub service_secs: u32,
}

/// Routing settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RoutingConfig {
    /// Cost of one second of lateness, in seconds of travel (default 1).
    pub lateness_weight: f64,
    /// Most stops solved exactly (default 8).
    pub exact_limit: usize,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self { lateness_weight: 1.0, exact_limit: 8 }
    }
}

/// A planned day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutePlan {
    /// Stop indices (into the input) in visiting order.
    pub order: Vec<usize>,
    /// When the contractor arrives at each stop, in visiting order.
    pub arrivals: Vec<Timestamp>,
    /// Seconds driving.
    pub travel_secs: f64,
    /// Seconds late, summed over stops.
    pub lateness_secs: f64,
    /// travel + lateness_weight × lateness.
    pub cost: f64,
    /// Whether the order is proven optimal (branch and bound) or heuristic.
    pub exact: bool,
}

/// Travel times between the start (index 0) and the stops (index i + 1).
struct Problem<'a> {
    stops: &'a [Stop],
    start_time: Timestamp,
    travel: Vec<f64>,
    n: usize,
    lateness_weight: f64,
}

impl Problem<'_> {
    fn travel(&self, from: usize, to: usize) -> f64 {
        self.travel[from * (self.n + 1) + to]
    }

    /// Visits stop `s` after `prev` (0 = start, i + 1 = stop i) leaving at
    /// `clock` ms: returns (travel, lateness, arrival ms, departure ms).
    fn visit(&self, prev: usize, s: usize, clock: f64) -> (f64, f64, f64, f64) {
        let t = self.travel(prev, s + 1);
        let arrival = clock + t * 1000.0;
        let stop = &self.stops[s];
        let (start, late) = match stop.window {
            Some(w) => (arrival.max(w.start.0 as f64), ((arrival - w.end.0 as f64) / 1000.0).max(0.0)),
            None => (arrival, 0.0),
        };
        (t, late, arrival, start + f64::from(stop.service_secs) * 1000.0)
    }

    /// Cost of visiting `order` in full.
    fn cost(&self, order: &[usize]) -> f64 {
        let (mut prev, mut clock, mut cost) = (0, self.start_time.0 as f64, 0.0);
        for &s in order {
            let (t, late, _, depart) = self.visit(prev, s, clock);
            cost += t + self.lateness_weight * late;
            clock = depart;
            prev = s + 1;
        }
        cost
    }

    fn plan(&self, order: Vec<usize>, exact: bool) -> RoutePlan {
        let (mut prev, mut clock) = (0, self.start_time.0 as f64);
        let (mut travel_secs, mut lateness_secs, mut arrivals) = (0.0, 0.0, Vec::with_capacity(order.len()));
        for &s in &order {
            let (t, late, arrival, depart) = self.visit(prev, s, clock);
            travel_secs += t;
            lateness_secs += late;
            arrivals.push(Timestamp(arrival.round() as i64));
            clock = depart;
            prev = s + 1;
        }
        let cost = travel_secs + self.lateness_weight * lateness_secs;
        RoutePlan { order, arrivals, travel_secs, lateness_secs, cost, exact }
    }
}

/// Plans the order of `stops` for a contractor leaving `start` at
/// `start_time`. `travel_secs(a, b)` gives the driving time between two
/// points (for example [`crate::eta::SpeedModel::eta_secs`]). Refuses a
/// negative or non-finite lateness weight or travel time.
pub fn plan_day(
    start: GeoPoint,
    start_time: Timestamp,
    stops: &[Stop],
    config: &RoutingConfig,
    travel_secs: impl Fn(GeoPoint, GeoPoint) -> f64,
) -> Result<RoutePlan> {
    if !(config.lateness_weight.is_finite() && config.lateness_weight >= 0.0) {
        return Err(Error::InvalidConfig(format!("lateness weight {} must be >= 0", config.lateness_weight)));
    }
    let n = stops.len();
    let points: Vec<GeoPoint> = std::iter::once(start).chain(stops.iter().map(|s| s.location)).collect();
    let mut travel = Vec::with_capacity((n + 1) * (n + 1));
    for &a in &points {
        for &b in &points {
            let t = travel_secs(a, b);
            if !(t.is_finite() && t >= 0.0) {
                return Err(Error::InvalidConfig(format!("travel time {t} s between stops must be >= 0")));
            }
            travel.push(t);
        }
    }
    let problem = Problem { stops, start_time, travel, n, lateness_weight: config.lateness_weight };
    Ok(if n <= config.exact_limit {
        problem.plan(branch_and_bound(&problem), true)
    } else {
        problem.plan(insertion_then_local_search(&problem), false)
    })
}

/// The optimal order by depth-first branch and bound.
fn branch_and_bound(p: &Problem<'_>) -> Vec<usize> {
    struct Search<'p, 'a> {
        p: &'p Problem<'a>,
        best_cost: f64,
        best: Vec<usize>,
        path: Vec<usize>,
        used: Vec<bool>,
    }
    impl Search<'_, '_> {
        fn go(&mut self, prev: usize, clock: f64, cost: f64) {
            if cost >= self.best_cost {
                return;
            }
            if self.path.len() == self.p.n {
                self.best_cost = cost;
                self.best.clone_from(&self.path);
                return;
            }
            // Nearest unvisited stop first, so a good bound is found early.
            let mut next: Vec<usize> = (0..self.p.n).filter(|&s| !self.used[s]).collect();
            next.sort_by(|&a, &b| self.p.travel(prev, a + 1).total_cmp(&self.p.travel(prev, b + 1)).then(a.cmp(&b)));
            for s in next {
                let (t, late, _, depart) = self.p.visit(prev, s, clock);
                self.used[s] = true;
                self.path.push(s);
                self.go(s + 1, depart, cost + t + self.p.lateness_weight * late);
                self.path.pop();
                self.used[s] = false;
            }
        }
    }
    // Seed the bound with the heuristic's route so pruning starts at once.
    let seed = insertion_then_local_search(p);
    let mut search = Search { p, best_cost: p.cost(&seed) + 1e-9, best: seed, path: Vec::with_capacity(p.n), used: vec![false; p.n] };
    search.go(0, p.start_time.0 as f64, 0.0);
    search.best
}

/// Cheapest insertion in deadline order, then 2-opt and or-opt until no move helps.
fn insertion_then_local_search(p: &Problem<'_>) -> Vec<usize> {
    let deadline = |s: usize| p.stops[s].window.map_or(i64::MAX, |w| w.end.0);
    let mut pending: Vec<usize> = (0..p.n).collect();
    pending.sort_by_key(|&s| (deadline(s), s));
    let mut route: Vec<usize> = Vec::with_capacity(p.n);
    for s in pending {
        let mut best = (f64::INFINITY, 0);
        for at in 0..=route.len() {
            route.insert(at, s);
            let c = p.cost(&route);
            route.remove(at);
            if c < best.0 {
                best = (c, at);
            }
        }
        route.insert(best.1, s);
    }
    let mut cost = p.cost(&route);
    loop {
        let before = cost;
        // 2-opt: reverse route[i..=j].
        for i in 0..route.len() {
            for j in i + 1..route.len() {
                route[i..=j].reverse();
                let c = p.cost(&route);
                if c + 1e-9 < cost {
                    cost = c;
                } else {
                    route[i..=j].reverse();
                }
            }
        }
        // or-opt: move one stop elsewhere.
        for i in 0..route.len() {
            for j in 0..route.len() {
                if i == j {
                    continue;
                }
                let s = route.remove(i);
                route.insert(j, s);
                let c = p.cost(&route);
                if c + 1e-9 < cost {
                    cost = c;
                } else {
                    let s = route.remove(j);
                    route.insert(i, s);
                }
            }
        }
        if cost + 1e-9 >= before {
            return route;
        }
    }
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
