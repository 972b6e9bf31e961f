//! The spatial index: H3 cells (`h3o`), each holding an `rstar` R-tree of the
//! contractors inside it.
//!
//! ## How the trees measure distance
//! Entries are stored as unit vectors in Earth-centred coordinates
//! ([`GeoPoint::unit_vector`]). The straight-line (chord) distance between two
//! unit vectors grows strictly with their great-circle distance, so the R-tree's
//! nearest-neighbour order is great-circle order, with no lat/lng distortion.
//! Reported distances and the final ranking use `geo`'s haversine
//! ([`GeoPoint::distance_m`]), ties broken by contractor id, which is exactly
//! what a brute-force scan does — the property tests hold the two equal.
//!
//! ## Which cells a query visits
//! Ring by ring outward from the query's cell, with a proven stop bound and
//! a shortcut for sparse cities: [`RingWalk`](crate::ring_search::RingWalk),
//! the one walk the live cell actors drive too.

use std::collections::{BTreeSet, HashMap};

use h3o::{CellIndex, LatLng, Resolution};

pub use crate::ring_search::{CellGeometry, lower_bound_outside_disk, may_reach_beyond_disk, ring};
use crate::ring_search::{OccupiedCells, RingWalk};
use rstar::RTree;
use rstar::primitives::GeomWithData;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::geo_point::{GeoPoint, chord2_for_distance};
use crate::types::{ContractorId, StatusKind, TradeSet};

/// The default H3 resolution: 8, cells of about 0.74 km².
pub const DEFAULT_RESOLUTION: u8 = 8;

/// Relative slack on chord comparisons, far above floating-point error and far
/// below any distance that matters; it only ever widens a search.
const CHORD_SLACK: f64 = 1e-9;

/// What the index keeps about a contractor: small, copyable, filterable.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IndexedContractor {
    /// The contractor.
    pub id: ContractorId,
    /// Live status, without its job.
    pub status: StatusKind,
    /// Trades practised.
    pub trades: TradeSet,
    /// Average rating, 0..=5.
    pub rating: f32,
}

/// What a query wants. The default accepts everyone at any distance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Trades the contractor must all practise (empty: any).
    pub trades: TradeSet,
    /// Only contractors whose status is [`StatusKind::Available`].
    pub available_only: bool,
    /// Only contractors rated at least this.
    pub min_rating: Option<f32>,
    /// Only contractors at most this many metres away.
    pub max_distance_m: Option<f64>,
    /// Contractors to leave out (for example those who declined this job).
    pub exclude: BTreeSet<ContractorId>,
}

impl Filter {
    /// Whether `c` passes every test but the distance one.
    #[must_use]
    pub fn accepts(&self, c: &IndexedContractor) -> bool {
        c.trades.contains_all(self.trades)
            && (!self.available_only || c.status == StatusKind::Available)
            && self.min_rating.is_none_or(|min| c.rating >= min)
            && !self.exclude.contains(&c.id)
    }

    /// How far a match may still be: the `k`-th best distance once `best`
    /// (ranked) holds `k`, capped by the maximum distance; `None`: no limit yet.
    #[must_use]
    pub fn reach(&self, best: &[Neighbor], k: usize) -> Option<f64> {
        let kth = (k > 0 && best.len() >= k).then(|| best[k - 1].distance_m);
        match (kth, self.max_distance_m) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether `distance_m` is within the filter's maximum distance.
    #[must_use]
    pub fn within_distance(&self, distance_m: f64) -> bool {
        self.max_distance_m.is_none_or(|max| distance_m <= max)
    }
}

/// One answer to a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// The contractor as indexed.
    pub contractor: IndexedContractor,
    /// Where the contractor is.
    pub point: GeoPoint,
    /// Haversine distance from the query point, in metres.
    pub distance_m: f64,
}

impl Neighbor {
    /// The ranking every query uses: nearer first, then lower id.
    fn rank_cmp(&self, other: &Neighbor) -> std::cmp::Ordering {
        self.distance_m.total_cmp(&other.distance_m).then(self.contractor.id.cmp(&other.contractor.id))
    }
}

/// Where an upsert left a contractor: the cells it left and entered, for
/// enter / exit events in the cell actors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The cell the contractor was in before, if it was indexed.
    pub from: Option<CellIndex>,
    /// The cell the contractor is in now.
    pub to: CellIndex,
}

impl Placement {
    /// Whether the contractor changed cell (or was new).
    #[must_use]
    pub fn changed_cell(&self) -> bool {
        self.from != Some(self.to)
    }
}

type Entry = GeomWithData<[f64; 3], (IndexedContractor, GeoPoint)>;

/// Node sizes for the per-cell trees. A cell holds tens to a few hundred
/// contractors; nodes of up to 16 keep those trees two or three levels deep,
/// which makes the remove + insert of each GPS fix cheaper than rstar's
/// default of 6 (measured in `benches/upsert.rs`).
#[derive(Debug, Clone, Copy)]
struct CellParams;

impl rstar::RTreeParams for CellParams {
    const MIN_SIZE: usize = 6;
    const MAX_SIZE: usize = 16;
    const REINSERTION_COUNT: usize = 5;
    type DefaultInsertionStrategy = rstar::RStarInsertionStrategy;
}

/// The R-tree of the contractors inside one H3 cell. A cell actor owns one.
#[derive(Debug, Clone)]
pub struct CellTree {
    tree: RTree<Entry, CellParams>,
    geometry: CellGeometry,
}

impl CellTree {
    /// An empty tree for `cell`.
    #[must_use]
    pub fn new(cell: CellIndex) -> Self {
        Self { tree: RTree::new_with_params(), geometry: CellGeometry::of(cell) }
    }

    /// The cell's centre and circumradius, computed once when the tree was made.
    #[must_use]
    pub fn geometry(&self) -> CellGeometry {
        self.geometry
    }

    /// How many contractors the cell holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tree.size()
    }

    /// Whether the cell holds nobody.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tree.size() == 0
    }

    /// Adds `c` at `point`. The caller keeps ids unique (see [`SpatialIndex`]).
    pub fn insert(&mut self, c: IndexedContractor, point: GeoPoint) {
        self.tree.insert(GeomWithData::new(point.unit_vector(), (c, point)));
    }

    /// Removes the entry for `c` at `point` exactly as inserted; returns whether it was there.
    pub fn remove(&mut self, c: &IndexedContractor, point: GeoPoint) -> bool {
        self.tree.remove(&GeomWithData::new(point.unit_vector(), (*c, point))).is_some()
    }

    /// Merges this cell's best matches for `query` into `best`, which holds at
    /// most `k` neighbours ranked nearest first (then by id).
    ///
    /// While `best` is short, entries come from the tree's nearest-neighbour
    /// iterator; once it holds `k`, only entries within the current k-th
    /// distance can matter, and the tree's envelope-pruned range query finds
    /// them without keeping a heap.
    pub fn nearest_into(&self, query: GeoPoint, k: usize, filter: &Filter, best: &mut Vec<Neighbor>) {
        if k == 0 {
            return;
        }
        let q = query.unit_vector();
        let max_chord2 = filter.max_distance_m.map_or(f64::INFINITY, |d| widen(chord2_for_distance(d)));
        let kth_chord2 = |best: &[Neighbor]| {
            if best.len() == k { widen(chord2_for_distance(best[k - 1].distance_m)).min(max_chord2) } else { max_chord2 }
        };
        let offer = |best: &mut Vec<Neighbor>, &(c, point): &(IndexedContractor, GeoPoint)| {
            if filter.accepts(&c) {
                let distance_m = query.distance_m(point);
                if filter.within_distance(distance_m) {
                    insert_ranked(best, k, Neighbor { contractor: c, point, distance_m });
                }
            }
        };
        if best.len() == k {
            for entry in self.tree.locate_within_distance(q, kth_chord2(best)) {
                offer(best, &entry.data);
            }
            return;
        }
        let mut reach = kth_chord2(best);
        for (entry, chord2) in self.tree.nearest_neighbor_iter_with_distance_2(&q) {
            if chord2 > reach {
                break;
            }
            let before = best.len();
            offer(best, &entry.data);
            if best.len() == k && (before < k || best[k - 1].contractor.id != entry.data.0.id) {
                reach = kth_chord2(best);
            }
        }
    }

    /// Appends every match within `radius_m` of `query` to `out` (unsorted).
    pub fn within_into(&self, query: GeoPoint, radius_m: f64, filter: &Filter, out: &mut Vec<Neighbor>) {
        for entry in self.tree.locate_within_distance(query.unit_vector(), widen(chord2_for_distance(radius_m))) {
            let (c, point) = entry.data;
            let distance_m = query.distance_m(point);
            if distance_m <= radius_m && filter.accepts(&c) && filter.within_distance(distance_m) {
                out.push(Neighbor { contractor: c, point, distance_m });
            }
        }
    }
}

/// A squared chord widened by [`CHORD_SLACK`] so rounding never drops an entry at the limit.
fn widen(chord2: f64) -> f64 {
    chord2 * (1.0 + CHORD_SLACK) + f64::EPSILON
}

/// Inserts `n` into `best` (ranked nearest first, then by id; at most `k`
/// long), dropping the worst if full.
pub fn insert_ranked(best: &mut Vec<Neighbor>, k: usize, n: Neighbor) {
    let at = best.partition_point(|b| b.rank_cmp(&n).is_lt());
    if at < k {
        best.insert(at, n);
        best.truncate(k);
    }
}

/// The index's trees as the ring walk sees them, geometry cached in each tree.
struct Trees<'a>(&'a HashMap<CellIndex, CellTree>);

impl OccupiedCells for Trees<'_> {
    fn count(&self) -> usize {
        self.0.len()
    }

    fn contains(&self, cell: CellIndex) -> bool {
        self.0.contains_key(&cell)
    }

    fn cells(&self) -> Vec<CellIndex> {
        self.0.keys().copied().collect()
    }

    fn geometry(&self, cell: CellIndex) -> CellGeometry {
        self.0.get(&cell).map_or_else(|| CellGeometry::of(cell), CellTree::geometry)
    }
}

/// Contractors by H3 cell, one [`CellTree`] per occupied cell.
#[derive(Debug, Clone)]
pub struct SpatialIndex {
    resolution: Resolution,
    cells: HashMap<CellIndex, CellTree>,
    placed: HashMap<ContractorId, (CellIndex, GeoPoint, IndexedContractor)>,
}

impl Default for SpatialIndex {
    fn default() -> Self {
        Self { resolution: Resolution::Eight, cells: HashMap::new(), placed: HashMap::new() }
    }
}

impl SpatialIndex {
    /// An empty index at H3 `resolution` (0..=15; [`DEFAULT_RESOLUTION`] is 8).
    pub fn new(resolution: u8) -> Result<Self> {
        let resolution = Resolution::try_from(resolution).map_err(|_| Error::InvalidResolution(resolution))?;
        Ok(Self { resolution, ..Self::default() })
    }

    /// The H3 resolution cells are kept at.
    #[must_use]
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// The cell `point` falls in at this index's resolution.
    #[must_use]
    pub fn cell_of(&self, point: GeoPoint) -> CellIndex {
        LatLng::from(point).to_cell(self.resolution)
    }

    /// How many contractors are indexed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.placed.len()
    }

    /// Whether nobody is indexed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.placed.is_empty()
    }

    /// The occupied cells and how many contractors each holds.
    pub fn cells(&self) -> impl Iterator<Item = (CellIndex, usize)> + '_ {
        self.cells.iter().map(|(&c, t)| (c, t.len()))
    }

    /// The tree of one cell, if anybody is in it.
    #[must_use]
    pub fn cell(&self, cell: CellIndex) -> Option<&CellTree> {
        self.cells.get(&cell)
    }

    /// Where `id` is indexed: its cell, position and attributes.
    #[must_use]
    pub fn get(&self, id: ContractorId) -> Option<(CellIndex, GeoPoint, IndexedContractor)> {
        self.placed.get(&id).copied()
    }

    /// Inserts or moves a contractor; moves it between cells when its cell changes.
    pub fn upsert(&mut self, c: IndexedContractor, point: GeoPoint) -> Placement {
        let to = self.cell_of(point);
        let from = self.take_out(c.id);
        self.cells.entry(to).or_insert_with(|| CellTree::new(to)).insert(c, point);
        self.placed.insert(c.id, (to, point, c));
        Placement { from, to }
    }

    /// Removes a contractor; returns the cell it was in.
    pub fn remove(&mut self, id: ContractorId) -> Option<CellIndex> {
        let cell = self.take_out(id)?;
        self.placed.remove(&id);
        Some(cell)
    }

    /// Takes `id` out of its cell tree (dropping the tree when it empties).
    fn take_out(&mut self, id: ContractorId) -> Option<CellIndex> {
        let &(cell, point, c) = self.placed.get(&id)?;
        if let Some(tree) = self.cells.get_mut(&cell) {
            tree.remove(&c, point);
            if tree.is_empty() {
                self.cells.remove(&cell);
            }
        }
        Some(cell)
    }

    /// The `k` contractors nearest `query` that pass `filter`, nearest first
    /// (ties by id). Searches ring by ring; see the module docs for the stop rule.
    #[must_use]
    pub fn k_nearest(&self, query: GeoPoint, k: usize, filter: &Filter) -> Vec<Neighbor> {
        let mut best = Vec::with_capacity(k + 1);
        if k == 0 {
            return best;
        }
        self.search(query, |tree, best| tree.nearest_into(query, k, filter, best), |best| filter.reach(best, k), &mut best);
        best
    }

    /// Every contractor within `radius_m` of `query` that passes `filter`,
    /// nearest first (ties by id).
    #[must_use]
    pub fn within_radius(&self, query: GeoPoint, radius_m: f64, filter: &Filter) -> Vec<Neighbor> {
        let mut out = Vec::new();
        if radius_m.is_nan() || radius_m < 0.0 {
            return out;
        }
        let reach = Some(filter.max_distance_m.map_or(radius_m, |max| max.min(radius_m)));
        self.search(query, |tree, out| tree.within_into(query, radius_m, filter, out), |_| reach, &mut out);
        out.sort_by(Neighbor::rank_cmp);
        out
    }

    /// The ring walk shared by both queries. `visit` searches one cell;
    /// `reach` says how far a match may still be (`None`: no limit yet).
    fn search(
        &self,
        query: GeoPoint,
        visit: impl Fn(&CellTree, &mut Vec<Neighbor>),
        reach: impl Fn(&[Neighbor]) -> Option<f64>,
        found: &mut Vec<Neighbor>,
    ) {
        let mut walk = RingWalk::new(query, self.cell_of(query));
        while let Some(cell) = walk.next_cell(&Trees(&self.cells), reach(found)) {
            if let Some(tree) = self.cells.get(&cell) {
                visit(tree, found);
            }
        }
    }

    /// The `k` nearest by scanning every contractor: the reference the property
    /// tests and benchmarks compare [`SpatialIndex::k_nearest`] against.
    #[must_use]
    pub fn brute_force_k_nearest(&self, query: GeoPoint, k: usize, filter: &Filter) -> Vec<Neighbor> {
        let mut all = self.brute_force_matches(query, filter);
        all.sort_by(Neighbor::rank_cmp);
        all.truncate(k);
        all
    }

    /// Every match within `radius_m` by scanning every contractor: the
    /// reference for [`SpatialIndex::within_radius`].
    #[must_use]
    pub fn brute_force_within_radius(&self, query: GeoPoint, radius_m: f64, filter: &Filter) -> Vec<Neighbor> {
        let mut all = self.brute_force_matches(query, filter);
        all.retain(|n| n.distance_m <= radius_m);
        all.sort_by(Neighbor::rank_cmp);
        all
    }

    fn brute_force_matches(&self, query: GeoPoint, filter: &Filter) -> Vec<Neighbor> {
        self.placed
            .values()
            .filter(|(_, _, c)| filter.accepts(c))
            .map(|&(_, point, c)| Neighbor { contractor: c, point, distance_m: query.distance_m(point) })
            .filter(|n| filter.within_distance(n.distance_m))
            .collect()
    }
}

#[cfg(test)]
#[path = "spatial_tests.rs"]
mod tests;
