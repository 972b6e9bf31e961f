//! `Dispatch::nearest` on a running city equals brute force.
//!
//! The live path asks cell actors in the engine's ring-walk order; this
//! checks it end to end: contractors registered, brought online at random
//! points (many on cell vertices and edges, where a wrong stop bound or a
//! missed cell shows), some moved by GPS, a flush barrier, then queries with
//! trade, availability, rating and distance filters, compared with a scan of
//! every contractor's stored position. Dense cities (a few cells, many
//! contractors) and sparse ones (a handful over 25 km, where the walk takes
//! its shortcut) both run. Ties are broken by distance, then id.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::sync::Arc;

use dispatch_actors::engine::spatial::IndexedContractor;
use dispatch_actors::engine::{
    ContractorId, ContractorProfile, ContractorStatus, Filter, GeoPoint, Money, Neighbor, Rating, Timestamp, Trade, TradeExperience,
    TradeSet,
};
use dispatch_actors::storage::{MemoryStore, SnapshotStore};
use dispatch_actors::{Dispatch, DispatchConfig, GpsFix, Presence};
use h3o::{CellIndex, LatLng, Resolution};
use proptest::prelude::*;

/// Where a point goes: a cell of the city's neighbourhood, and on it a
/// vertex, a point on an edge, or anywhere near its centre.
#[derive(Debug, Clone)]
struct Spot {
    cell: usize,
    edge: usize,
    t: f64,
    kind: u8,
}

fn spot() -> impl Strategy<Value = Spot> {
    (0usize..10_000, 0usize..6, 0.0f64..1.0, 0u8..4).prop_map(|(cell, edge, t, kind)| Spot { cell, edge, t, kind })
}

fn place(cells: &[CellIndex], s: &Spot) -> GeoPoint {
    let cell = cells[s.cell % cells.len()];
    let vs: Vec<GeoPoint> = cell.boundary().iter().map(|&v| GeoPoint::from(v)).collect();
    let (a, b) = (vs[s.edge % vs.len()], vs[(s.edge + 1) % vs.len()]);
    match s.kind {
        // A vertex: three cells meet here.
        0 => a,
        // On an edge between two cells.
        1 => GeoPoint::new(a.lat() + (b.lat() - a.lat()) * s.t, a.lng() + (b.lng() - a.lng()) * s.t).unwrap(),
        // Anywhere around the cell's centre.
        _ => GeoPoint::from(LatLng::from(cell)).destination(s.t * 360.0, s.t * 500.0),
    }
}

#[derive(Debug, Clone)]
struct Member {
    at: Spot,
    /// Moved here by a GPS fix after coming online.
    moved: Option<Spot>,
    trades: u16,
    available: bool,
    rating: f32,
}

#[derive(Debug, Clone)]
struct Query {
    at: Spot,
    k: usize,
    trade: Option<usize>,
    available_only: bool,
    min_rating: Option<f32>,
    max_distance_m: Option<f64>,
}

#[derive(Debug, Clone)]
struct Case {
    /// Rings of cells around downtown the points fall in: 2 (dense) or 30 (sparse, ~25 km across).
    rings: u32,
    members: Vec<Member>,
    queries: Vec<Query>,
}

fn member() -> impl Strategy<Value = Member> {
    (spot(), prop::option::weighted(0.3, spot()), 1u16..1024, prop::bool::weighted(0.8), 0.0f32..=5.0)
        .prop_map(|(at, moved, trades, available, rating)| Member { at, moved, trades, available, rating })
}

fn query() -> impl Strategy<Value = Query> {
    (
        spot(),
        1usize..13,
        prop::option::of(0usize..10),
        any::<bool>(),
        prop::option::weighted(0.2, 0.0f32..=5.0),
        prop::option::weighted(0.4, 100.0f64..6_000.0),
    )
        .prop_map(|(at, k, trade, available_only, min_rating, max_distance_m)| Query {
            at,
            k,
            trade,
            available_only,
            min_rating,
            max_distance_m,
        })
}

fn case() -> impl Strategy<Value = Case> {
    prop_oneof![
        (prop::collection::vec(member(), 20..120), prop::collection::vec(query(), 4)).prop_map(|(members, queries)| Case {
            rings: 2,
            members,
            queries
        }),
        (prop::collection::vec(member(), 0..10), prop::collection::vec(query(), 4)).prop_map(|(members, queries)| Case {
            rings: 30,
            members,
            queries
        }),
    ]
}

fn trades_of(bits: u16) -> Vec<TradeExperience> {
    Trade::ALL.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, &trade)| TradeExperience { trade, years: 3 }).collect()
}

fn profile(id: u64, m: &Member) -> ContractorProfile {
    ContractorProfile {
        id: ContractorId(id),
        name: format!("c{id}"),
        trades: trades_of(m.trades),
        rating: Rating::new(f64::from(m.rating), 10).unwrap(),
        hourly_rate: Money(8_000),
        service_radius_m: 30_000.0,
        shifts: vec![],
        utc_offset_minutes: 0,
    }
}

/// The `k` nearest by scanning every contractor's stored snapshot.
async fn brute_force(city: &Dispatch, n: u64, query: GeoPoint, k: usize, filter: &Filter) -> Vec<Neighbor> {
    let mut all = Vec::new();
    for id in 0..n {
        let snap = city.contractor(ContractorId(id)).await.unwrap();
        let (Some(point), false) = (snap.position, snap.status == ContractorStatus::Offline) else { continue };
        let c = IndexedContractor {
            id: snap.profile.id,
            status: snap.status.kind(),
            trades: snap.profile.trade_set(),
            rating: snap.profile.rating.average(),
        };
        let distance_m = query.distance_m(point);
        if filter.accepts(&c) && filter.within_distance(distance_m) {
            all.push(Neighbor { contractor: c, point, distance_m });
        }
    }
    all.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m).then(a.contractor.id.cmp(&b.contractor.id)));
    all.truncate(k);
    all
}

async fn run(case: Case) {
    let config = DispatchConfig::default();
    let downtown = GeoPoint::new(41.5868, -93.6250).unwrap();
    let origin = LatLng::from(downtown).to_cell(Resolution::try_from(config.resolution).unwrap());
    let cells: Vec<CellIndex> = origin.grid_disk::<Vec<_>>(case.rings);
    let store: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start(config, store).await.unwrap();
    let n = case.members.len() as u64;
    for (id, m) in (0..).zip(&case.members) {
        city.register_contractor(profile(id, m)).await.unwrap();
        let presence = if m.available { Presence::Available } else { Presence::OnBreak };
        city.set_presence(ContractorId(id), presence, Some(place(&cells, &m.at))).await.unwrap();
        if let Some(to) = &m.moved {
            // Hours later, so no move is implausibly fast.
            let fix = GpsFix::new(place(&cells, to), None, None, Some(5.0), Timestamp(10_000_000)).unwrap();
            city.link(ContractorId(id)).unwrap().gps(fix).unwrap();
        }
    }
    for q in &case.queries {
        // The barrier: every contractor has handled its fixes, so every cell
        // update it sent is queued ahead of the query's asks.
        for id in 0..n {
            city.link(ContractorId(id)).unwrap().flush().await.unwrap();
        }
        let at = place(&cells, &q.at);
        let filter = Filter {
            trades: q.trade.map(|t| TradeSet::single(Trade::ALL[t])).unwrap_or_default(),
            available_only: q.available_only,
            min_rating: q.min_rating,
            max_distance_m: q.max_distance_m,
            exclude: Default::default(),
        };
        let live = city.nearest(at, q.k, &filter).await;
        let expected = brute_force(&city, n, at, q.k, &filter).await;
        let pairs = |ns: &[Neighbor]| ns.iter().map(|n| (n.contractor.id.0, n.distance_m)).collect::<Vec<_>>();
        assert_eq!(pairs(&live), pairs(&expected), "query {q:?} at {at:?}");
    }
    city.shutdown().await;
}

proptest! {
    // Capped: each case starts a city and brings up to 120 contractors online.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn live_k_nearest_equals_brute_force(case in case()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run(case));
    }
}
