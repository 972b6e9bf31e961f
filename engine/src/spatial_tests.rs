use proptest::prelude::*;

use super::*;
use crate::types::Trade;

fn pt(lat: f64, lng: f64) -> GeoPoint {
    GeoPoint::new(lat, lng).unwrap()
}

fn contractor(id: u64, status: StatusKind, trades: TradeSet, rating: f32) -> IndexedContractor {
    IndexedContractor { id: ContractorId(id), status, trades, rating }
}

fn available(id: u64) -> IndexedContractor {
    contractor(id, StatusKind::Available, TradeSet::single(Trade::Plumbing), 4.5)
}

const DSM: (f64, f64) = (41.5868, -93.6250);

#[test]
fn upsert_moves_between_cells_and_reports_it() {
    let mut index = SpatialIndex::new(8).unwrap();
    let a = pt(DSM.0, DSM.1);
    let b = a.destination(90.0, 3_000.0);
    let first = index.upsert(available(1), a);
    assert_eq!(first.from, None);
    assert!(first.changed_cell());
    let same = index.upsert(available(1), a.destination(0.0, 1.0));
    assert_eq!(same.from, Some(first.to));
    assert!(!same.changed_cell());
    let moved = index.upsert(available(1), b);
    assert_eq!(moved.from, Some(first.to));
    assert_ne!(moved.to, first.to);
    assert_eq!(index.len(), 1);
    // The old cell's tree is gone, the new one holds the contractor.
    assert!(index.cell(first.to).is_none());
    assert_eq!(index.cell(moved.to).map(CellTree::len), Some(1));
    assert_eq!(index.remove(ContractorId(1)), Some(moved.to));
    assert_eq!(index.remove(ContractorId(1)), None);
    assert!(index.is_empty());
    assert_eq!(index.cells().count(), 0);
}

#[test]
fn invalid_resolution_is_refused() {
    assert_eq!(SpatialIndex::new(16).unwrap_err(), Error::InvalidResolution(16));
    assert!(SpatialIndex::new(0).is_ok());
}

#[test]
fn filter_applies_every_clause() {
    let mut index = SpatialIndex::new(8).unwrap();
    let q = pt(DSM.0, DSM.1);
    index.upsert(contractor(1, StatusKind::OnSite, TradeSet::single(Trade::Hvac), 5.0), q.destination(0.0, 100.0));
    index.upsert(contractor(2, StatusKind::Available, TradeSet::single(Trade::Plumbing), 5.0), q.destination(0.0, 200.0));
    index.upsert(contractor(3, StatusKind::Available, TradeSet::single(Trade::Hvac), 3.0), q.destination(0.0, 300.0));
    index.upsert(contractor(4, StatusKind::Available, TradeSet::single(Trade::Hvac), 4.8), q.destination(0.0, 4_000.0));
    let ids = |f: &Filter| index.k_nearest(q, 10, f).iter().map(|n| n.contractor.id.0).collect::<Vec<_>>();
    assert_eq!(ids(&Filter::default()), vec![1, 2, 3, 4]);
    let hvac = Filter { trades: TradeSet::single(Trade::Hvac), ..Filter::default() };
    assert_eq!(ids(&hvac), vec![1, 3, 4]);
    let hvac_free = Filter { available_only: true, ..hvac.clone() };
    assert_eq!(ids(&hvac_free), vec![3, 4]);
    let good = Filter { min_rating: Some(4.0), ..hvac_free.clone() };
    assert_eq!(ids(&good), vec![4]);
    let close = Filter { max_distance_m: Some(1_000.0), ..hvac_free.clone() };
    assert_eq!(ids(&close), vec![3]);
    let not_three = Filter { exclude: [ContractorId(3)].into(), ..hvac_free };
    assert_eq!(ids(&not_three), vec![4]);
}

#[test]
fn sparse_index_answers_without_walking_the_globe() {
    let mut index = SpatialIndex::new(8).unwrap();
    index.upsert(available(1), pt(DSM.0, DSM.1));
    index.upsert(available(2), pt(41.2565, -95.9345)); // Omaha, ~196 km away
    let found = index.k_nearest(pt(DSM.0, DSM.1), 5, &Filter::default());
    assert_eq!(found.iter().map(|n| n.contractor.id.0).collect::<Vec<_>>(), vec![1, 2]);
    // Nothing matches at all: an empty answer, not an endless search.
    let none = Filter { trades: TradeSet::single(Trade::Roofing), ..Filter::default() };
    assert!(index.k_nearest(pt(DSM.0, DSM.1), 5, &none).is_empty());
    assert!(SpatialIndex::new(8).unwrap().k_nearest(pt(0.0, 0.0), 3, &Filter::default()).is_empty());
}

#[test]
fn within_radius_refuses_nonsense_radii_quietly() {
    let mut index = SpatialIndex::new(8).unwrap();
    index.upsert(available(1), pt(DSM.0, DSM.1));
    assert!(index.within_radius(pt(DSM.0, DSM.1), f64::NAN, &Filter::default()).is_empty());
    assert!(index.within_radius(pt(DSM.0, DSM.1), -5.0, &Filter::default()).is_empty());
    assert_eq!(index.within_radius(pt(DSM.0, DSM.1), 0.0, &Filter::default()).len(), 1);
}

#[test]
fn works_across_the_antimeridian() {
    let mut index = SpatialIndex::new(8).unwrap();
    index.upsert(available(1), pt(0.0, 179.9995));
    index.upsert(available(2), pt(0.0, -179.9995));
    index.upsert(available(3), pt(0.0, 179.99));
    let q = pt(0.0, 180.0);
    let got = index.k_nearest(q, 2, &Filter::default());
    assert_eq!(got, index.brute_force_k_nearest(q, 2, &Filter::default()));
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|n| n.distance_m < 100.0));
}

#[test]
fn lower_bound_never_exceeds_the_true_distance_to_the_next_ring() {
    let res = Resolution::Eight;
    let q = pt(DSM.0, DSM.1).destination(33.0, 170.0);
    let origin = LatLng::from(q).to_cell(res);
    for k in 0..4 {
        let bound = lower_bound_outside_disk(q, origin, k, CellGeometry::of);
        assert!(!may_reach_beyond_disk(q, origin, k, bound * 0.999, CellGeometry::of));
        assert!(may_reach_beyond_disk(q, origin, k, bound, CellGeometry::of));
        for cell in ring(origin, k + 1) {
            for v in cell.boundary().iter() {
                assert!(bound <= q.distance_m(GeoPoint::from(*v)), "ring {k}");
            }
        }
        // …and it is useful: at least most of a ring's width per ring.
        assert!(bound > k as f64 * 600.0, "ring {k}: {bound}");
    }
}

// ---- property tests: the index against a brute-force scan ----

/// Points laid on a grid of cells around a centre: inside cells, and exactly
/// on (or within a hair of) their edges and vertices, where a cell lookup
/// is most likely to go wrong.
#[derive(Debug, Clone)]
struct Spot {
    cell: usize,
    edge: usize,
    t: f64,
    kind: u8,
    jitter: f64,
}

fn spot() -> impl Strategy<Value = Spot> {
    (0usize..10_000, 0usize..10, 0.0f64..1.0, 0u8..4, -1e-9f64..1e-9).prop_map(|(cell, edge, t, kind, jitter)| Spot {
        cell,
        edge,
        t,
        kind,
        jitter,
    })
}

fn place(cells: &[CellIndex], s: &Spot) -> GeoPoint {
    let cell = cells[s.cell % cells.len()];
    let boundary = cell.boundary();
    let vs: Vec<GeoPoint> = boundary.iter().map(|&v| GeoPoint::from(v)).collect();
    let a = vs[s.edge % vs.len()];
    let b = vs[(s.edge + 1) % vs.len()];
    let p = match s.kind {
        // A vertex: three cells meet here.
        0 => a,
        // On an edge between two cells.
        1 => pt(a.lat() + (b.lat() - a.lat()) * s.t, a.lng() + (b.lng() - a.lng()) * s.t),
        // Anywhere inside the cell's neighbourhood.
        _ => GeoPoint::from(LatLng::from(cell)).destination(s.t * 360.0, s.t * 700.0),
    };
    pt((p.lat() + s.jitter).clamp(-90.0, 90.0), (p.lng() + s.jitter).clamp(-180.0, 180.0))
}

#[derive(Debug, Clone)]
struct Case {
    resolution: u8,
    points: Vec<(Spot, u8, u16, f32)>,
    query: Spot,
    k: usize,
    radius_m: f64,
    trades: u16,
    available_only: bool,
    min_rating: Option<f32>,
    max_distance_m: Option<f64>,
    exclude_every: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(8u8), Just(8), Just(7), Just(9)],
        prop::collection::vec((spot(), 0u8..4, 0u16..1024, 0.0f32..=5.0), 0..400),
        spot(),
        1usize..25,
        0.0f64..4_000.0,
        prop_oneof![Just(0u16), 0u16..1024],
        any::<bool>(),
        prop::option::of(0.0f32..=5.0),
        prop::option::of(50.0f64..5_000.0),
        prop_oneof![Just(0u64), 2u64..7],
    )
        .prop_map(|(resolution, points, query, k, radius_m, trades, available_only, min_rating, max_distance_m, exclude_every)| Case {
            resolution,
            points,
            query,
            k,
            radius_m,
            trades: at_most_two_trades(trades),
            available_only,
            min_rating,
            max_distance_m,
            exclude_every,
        })
}

/// The lowest two set bits of `t`: requiring more trades than that rarely matches anyone.
fn at_most_two_trades(t: u16) -> u16 {
    let first = t & t.wrapping_neg();
    let rest = t & !first;
    first | (rest & rest.wrapping_neg())
}

const STATUSES: [StatusKind; 4] = [StatusKind::Available, StatusKind::Available, StatusKind::OnSite, StatusKind::Offered];

fn build(c: &Case, centre: GeoPoint) -> (SpatialIndex, GeoPoint, Filter) {
    let mut index = SpatialIndex::new(c.resolution).unwrap();
    let origin = index.cell_of(centre);
    let cells: Vec<CellIndex> = origin.grid_disk(5);
    for (i, (s, status, trades, rating)) in c.points.iter().enumerate() {
        let who = contractor(i as u64, STATUSES[*status as usize], TradeSet(trades | 1 << (i % 10)), *rating);
        index.upsert(who, place(&cells, s));
    }
    // Some contractors move again, some leave: the index must follow.
    for (i, (s, ..)) in c.points.iter().enumerate().step_by(7) {
        let (_, _, who) = index.get(ContractorId(i as u64)).unwrap();
        index.upsert(who, place(&cells, &Spot { cell: s.cell + 3, ..s.clone() }));
    }
    for i in (0..c.points.len()).step_by(11) {
        index.remove(ContractorId(i as u64));
    }
    let exclude = if c.exclude_every == 0 {
        BTreeSet::new()
    } else {
        (0..c.points.len() as u64).filter(|i| i % c.exclude_every == 0).map(ContractorId).collect()
    };
    let filter = Filter {
        trades: TradeSet(c.trades),
        available_only: c.available_only,
        min_rating: c.min_rating,
        max_distance_m: c.max_distance_m,
        exclude,
    };
    (index, place(&cells, &c.query), filter)
}

fn ids(ns: &[Neighbor]) -> Vec<u64> {
    ns.iter().map(|n| n.contractor.id.0).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn k_nearest_equals_brute_force(c in case()) {
        let (index, q, filter) = build(&c, pt(DSM.0, DSM.1));
        let got = index.k_nearest(q, c.k, &filter);
        let want = index.brute_force_k_nearest(q, c.k, &filter);
        prop_assert_eq!(ids(&got), ids(&want));
        prop_assert_eq!(got, want);
    }

    #[test]
    fn within_radius_equals_brute_force(c in case()) {
        let (index, q, filter) = build(&c, pt(DSM.0, DSM.1));
        let got = index.within_radius(q, c.radius_m, &filter);
        let want = index.brute_force_within_radius(q, c.radius_m, &filter);
        prop_assert_eq!(ids(&got), ids(&want));
        prop_assert_eq!(got, want);
    }

    #[test]
    fn k_nearest_equals_brute_force_around_a_pentagon(c in case()) {
        let res = Resolution::try_from(c.resolution).unwrap();
        let pentagon = res.pentagons().next().unwrap();
        let (index, q, filter) = build(&c, GeoPoint::from(LatLng::from(pentagon)));
        prop_assert_eq!(index.k_nearest(q, c.k, &filter), index.brute_force_k_nearest(q, c.k, &filter));
        prop_assert_eq!(
            index.within_radius(q, c.radius_m, &filter),
            index.brute_force_within_radius(q, c.radius_m, &filter)
        );
    }
}
