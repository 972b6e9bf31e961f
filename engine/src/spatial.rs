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
//! ## How the ring search knows when to stop
//! k-nearest searches the query's cell, then ring 1, ring 2, … ([`ring`]). After
//! ring *r* every unsearched contractor lies outside the *r*-disk, and any path
//! from the query to it crosses a cell of ring *r + 1*. So
//! `min over ring r+1 cells c of (d(q, centre(c)) − circumradius(c))` is a lower
//! bound on its distance ([`lower_bound_outside_disk`], with each cell's centre
//! and circumradius cached in its tree as a [`CellGeometry`]); once that bound exceeds
//! the k-th best distance found (or the filter's maximum distance), no further
//! ring can hold a closer match and the search stops. When a ring would hold
//! more cells than there are occupied cells, the search instead visits the
//! remaining occupied cells directly, so sparse indexes stay cheap and every
//! query ends.

use std::collections::{BTreeSet, HashMap, HashSet};

use h3o::{CellIndex, LatLng, Resolution};
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

/// Inserts `n` into `best` (ranked, at most `k` long), dropping the worst if full.
fn insert_ranked(best: &mut Vec<Neighbor>, k: usize, n: Neighbor) {
    let at = best.partition_point(|b| b.rank_cmp(&n).is_lt());
    if at < k {
        best.insert(at, n);
        best.truncate(k);
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

    /// The geometry of `cell`: cached in its tree when occupied, computed otherwise.
    fn geometry(&self, cell: CellIndex) -> CellGeometry {
        self.cells.get(&cell).map_or_else(|| CellGeometry::of(cell), CellTree::geometry)
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
        self.search(
            query,
            filter,
            |tree, best| tree.nearest_into(query, k, filter, best),
            |best| (best.len() == k).then(|| best[k - 1].distance_m),
            &mut best,
        );
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
        self.search(query, filter, |tree, out| tree.within_into(query, radius_m, filter, out), |_| Some(radius_m), &mut out);
        out.sort_by(Neighbor::rank_cmp);
        out
    }

    /// The ring-by-ring walk shared by both queries. `visit` searches one cell;
    /// `reach` says how far a match may still be (`None`: no limit yet).
    fn search(
        &self,
        query: GeoPoint,
        filter: &Filter,
        visit: impl Fn(&CellTree, &mut Vec<Neighbor>),
        reach: impl Fn(&[Neighbor]) -> Option<f64>,
        found: &mut Vec<Neighbor>,
    ) {
        let origin = self.cell_of(query);
        let mut visited: HashSet<CellIndex> = HashSet::new();
        let limit = |found: &[Neighbor]| match (reach(found), filter.max_distance_m) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut k = 0u32;
        loop {
            if visited.len() == self.cells.len() {
                return; // every occupied cell has been searched
            }
            let cells = ring(origin, k);
            if cells.len() > self.cells.len() - visited.len() {
                break; // cheaper to visit what is left directly
            }
            for cell in cells {
                if let Some(tree) = self.cells.get(&cell)
                    && visited.insert(cell)
                {
                    visit(tree, found);
                }
            }
            if let Some(reach) = limit(found)
                && !may_reach_beyond_disk(query, origin, k, reach, |c| self.geometry(c))
            {
                return;
            }
            k += 1;
        }
        // Few occupied cells left compared with the ring: visit them nearest
        // cell first so the per-cell pruning bites early.
        let mut rest: Vec<(f64, CellIndex, &CellTree)> = self
            .cells
            .iter()
            .filter(|(c, _)| !visited.contains(c))
            .map(|(&c, tree)| (tree.geometry().min_distance_m(query), c, tree))
            .collect();
        rest.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (_, _, tree) in rest {
            visit(tree, found);
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
