//! The ring search: which H3 cells a k-nearest or radius query visits, in
//! what order, and when it may stop. One walk serves both the in-memory
//! [`SpatialIndex`](crate::SpatialIndex) and the live cell actors, which
//! drive it the same way: ask [`RingWalk::next_cell`] for a cell, search it,
//! tell the walk how far a match may still be, repeat until it says `None`.
//!
//! ## Ring order
//! The query's cell first, then ring 1, ring 2, … ([`ring`]), visiting only
//! occupied cells.
//!
//! ## The stop bound
//! After ring *r* every unsearched contractor lies outside the *r*-disk, and
//! any path from the query to it crosses a cell of ring *r + 1*. So
//! `min over ring r+1 cells c of (d(q, centre(c)) − circumradius(c))` is a
//! lower bound on its distance ([`lower_bound_outside_disk`], each cell's
//! centre and circumradius a [`CellGeometry`]); once that bound exceeds how far
//! a match may still be (the k-th best distance found, or the filter's maximum
//! distance), no farther ring can hold a closer match and the walk stops.
//!
//! ## The sparse-city shortcut
//! When the next ring would hold more cells than there are occupied cells
//! left, the walk instead visits the remaining occupied cells directly,
//! nearest lower bound first, and stops at the first whose lower bound is
//! beyond reach; so a sparse city stays cheap and every walk ends.

use std::collections::{HashSet, VecDeque};

use h3o::{CellIndex, LatLng};

use crate::geo_point::GeoPoint;

/// A cell's centre and circumradius: what the ring search's stop rule needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellGeometry {
    /// The cell's centre.
    pub centre: GeoPoint,
    /// The largest distance from the centre to any of the cell's boundary
    /// vertices, in metres, widened by 1 % and a metre to cover the gap between
    /// H3's projected cell shapes and the spherical polygon through its vertices.
    pub circumradius_m: f64,
}

impl CellGeometry {
    /// Computes the geometry of `cell` from h3o's centre and boundary.
    #[must_use]
    pub fn of(cell: CellIndex) -> Self {
        let centre = GeoPoint::from(LatLng::from(cell));
        let radius = cell.boundary().iter().map(|&v| centre.distance_m(GeoPoint::from(v))).fold(0.0_f64, f64::max);
        Self { centre, circumradius_m: radius * 1.01 + 1.0 }
    }

    /// A lower bound on the distance from `query` to any point of the cell.
    #[must_use]
    pub fn min_distance_m(&self, query: GeoPoint) -> f64 {
        (query.distance_m(self.centre) - self.circumradius_m).max(0.0)
    }
}

/// The cells at exactly grid distance `k` from `origin` (the origin itself for 0).
/// Uses h3o's fast ring walk and falls back to its safe traversal near pentagons.
#[must_use]
pub fn ring(origin: CellIndex, k: u32) -> Vec<CellIndex> {
    origin
        .grid_ring_fast(k)
        .collect::<Option<Vec<_>>>()
        .unwrap_or_else(|| origin.grid_disk_distances_safe(k).filter(|&(_, d)| d == k).map(|(c, _)| c).collect())
}

/// A lower bound, in metres, on the distance from `query` (inside `origin`) to
/// any point outside the grid disk of radius `k` around `origin`: the smallest
/// [`CellGeometry::min_distance_m`] over the cells of ring `k + 1`, through
/// which any path out of the disk passes. Never more than the true distance.
#[must_use]
pub fn lower_bound_outside_disk(query: GeoPoint, origin: CellIndex, k: u32, geometry: impl Fn(CellIndex) -> CellGeometry) -> f64 {
    ring(origin, k + 1).into_iter().map(|c| geometry(c).min_distance_m(query)).fold(f64::INFINITY, f64::min)
}

/// Whether anything outside the grid disk of radius `k` around `origin` could
/// be within `reach_m` of `query`: the stop rule of the ring search. The same
/// test as comparing [`lower_bound_outside_disk`] with `reach_m`, but it stops
/// at the first ring cell that is close enough.
#[must_use]
pub fn may_reach_beyond_disk(
    query: GeoPoint,
    origin: CellIndex,
    k: u32,
    reach_m: f64,
    geometry: impl Fn(CellIndex) -> CellGeometry,
) -> bool {
    ring(origin, k + 1).into_iter().any(|c| geometry(c).min_distance_m(query) <= reach_m)
}

/// The occupied cells a walk visits: the index's trees, or the city's live cell actors.
pub trait OccupiedCells {
    /// How many cells are occupied.
    fn count(&self) -> usize;
    /// Whether `cell` is occupied.
    fn contains(&self, cell: CellIndex) -> bool;
    /// Every occupied cell (for the sparse shortcut).
    fn cells(&self) -> Vec<CellIndex>;
    /// The geometry of any cell, occupied or not (cached where the caller can).
    fn geometry(&self, cell: CellIndex) -> CellGeometry {
        CellGeometry::of(cell)
    }
}

/// Where a walk is.
#[derive(Debug)]
enum Phase {
    /// Visiting the occupied cells of ring `ring`; `queue` holds those not yet handed out.
    Rings { ring: u32, queue: VecDeque<CellIndex> },
    /// The sparse shortcut: the remaining occupied cells, nearest lower bound first.
    Rest(VecDeque<(f64, CellIndex)>),
    /// Nothing left that could hold a match.
    Done,
}

/// One query's walk over the cells; see the module docs. Drive it with
/// [`RingWalk::next_cell`] until it answers `None`.
#[derive(Debug)]
pub struct RingWalk {
    query: GeoPoint,
    origin: CellIndex,
    visited: HashSet<CellIndex>,
    phase: Phase,
    started: bool,
}

impl RingWalk {
    /// A walk for `query`, whose cell is `origin`.
    #[must_use]
    pub fn new(query: GeoPoint, origin: CellIndex) -> Self {
        Self { query, origin, visited: HashSet::new(), phase: Phase::Rings { ring: 0, queue: VecDeque::new() }, started: false }
    }

    /// The next cell to search, or `None` when no unsearched cell can hold a
    /// match. `reach_m` is how far a match may still be given what was found
    /// so far (the k-th best distance, capped by the filter's maximum), or
    /// `None` while there is no limit yet.
    pub fn next_cell(&mut self, cells: &impl OccupiedCells, reach_m: Option<f64>) -> Option<CellIndex> {
        loop {
            match &mut self.phase {
                Phase::Done => return None,
                Phase::Rest(rest) => {
                    let (bound, cell) = rest.pop_front()?;
                    if reach_m.is_some_and(|reach| bound > reach) {
                        self.phase = Phase::Done; // sorted: every cell after it is farther still
                        return None;
                    }
                    if cells.contains(cell) {
                        return Some(cell);
                    }
                }
                Phase::Rings { ring: r, queue } => {
                    if let Some(cell) = queue.pop_front() {
                        return Some(cell);
                    }
                    // Ring `r` is searched (or not started): decide what comes next.
                    let next = if self.started {
                        if let Some(reach) = reach_m
                            && !may_reach_beyond_disk(self.query, self.origin, *r, reach, |c| cells.geometry(c))
                        {
                            self.phase = Phase::Done;
                            return None;
                        }
                        *r + 1
                    } else {
                        0
                    };
                    self.started = true;
                    let occupied = cells.count();
                    if self.visited.len() >= occupied {
                        self.phase = Phase::Done; // every occupied cell has been searched
                        return None;
                    }
                    let ring_cells = ring(self.origin, next);
                    if ring_cells.len() > occupied - self.visited.len() {
                        self.phase = Phase::Rest(self.rest(cells));
                        continue;
                    }
                    let queue: VecDeque<CellIndex> =
                        ring_cells.into_iter().filter(|&c| cells.contains(c) && self.visited.insert(c)).collect();
                    self.phase = Phase::Rings { ring: next, queue };
                }
            }
        }
    }

    /// The occupied cells not yet visited, nearest lower bound first (ties by index).
    fn rest(&self, cells: &impl OccupiedCells) -> VecDeque<(f64, CellIndex)> {
        let mut rest: Vec<(f64, CellIndex)> = cells
            .cells()
            .into_iter()
            .filter(|c| !self.visited.contains(c))
            .map(|c| (cells.geometry(c).min_distance_m(self.query), c))
            .collect();
        rest.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        rest.into()
    }
}
