//! Actor benchmarks, written to BENCHMARKS.md:
//! - GPS messages per second through contractor actors into cell indexes,
//!   with 100k live contractors;
//! - the cost of spawning (activating) a contractor actor;
//! - resident memory per live contractor actor at 100k;
//! - k = 10 nearest with a trade filter through the live cell actors
//!   (`Dispatch::nearest`), beside the engine's `SpatialIndex::k_nearest` over
//!   the same contractors: the same ring walk, without the actor hops.
//!
//! Each beside a peer measured in the same run: a bare ractor actor with a
//! one-word state, or the in-memory index.
//!
//! `cargo bench -p dispatch-actors --bench actors` (set `ACTORS=N` to change 100k).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, reason = "benchmark program")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dispatch_actors::engine::spatial::IndexedContractor;
use dispatch_actors::engine::{ContractorId, Filter, GeoPoint, SpatialIndex, StatusKind, Timestamp, Trade, TradeSet};
use dispatch_actors::storage::{MemoryStore, SnapshotStore};
use dispatch_actors::{Dispatch, DispatchConfig, GpsFix, Presence};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use common::{profile, start_point};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The peer: a bare actor holding one word.
struct Bare;

impl Actor for Bare {
    type Msg = u64;
    type State = u64;
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<u64>, (): ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }
    async fn handle(&self, _: ActorRef<u64>, msg: u64, state: &mut u64) -> Result<(), ActorProcessingErr> {
        *state += msg;
        Ok(())
    }
}

async fn bare_actors(n: u64) -> (f64, f64) {
    let before = rss_bytes();
    let started = Instant::now();
    let mut actors = Vec::with_capacity(n as usize);
    for _ in 0..n {
        actors.push(Actor::spawn(None, Bare, ()).await.unwrap().0);
    }
    let spawn_us = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    let per_actor = (rss_bytes() - before) as f64 / n as f64;
    drop(actors);
    (spawn_us, per_actor)
}

async fn city(n: u64) -> (Dispatch, f64, f64) {
    let config = DispatchConfig { idle_hibernate_after: Duration::from_secs(3_600), ..DispatchConfig::default() };
    let store: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start(config, store).await.unwrap();
    for i in 0..n {
        city.register_contractor(profile(i)).await.unwrap();
    }
    let before = rss_bytes();
    let started = Instant::now();
    for i in 0..n {
        city.set_presence(ContractorId(i), Presence::Available, Some(start_point(i, SIDE_M))).await.unwrap();
    }
    let spawn_us = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    // Let the cell updates of the activations land before measuring memory.
    while city.pipeline_stats().cell_upserts < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let per_actor = (rss_bytes().saturating_sub(before)) as f64 / n as f64;
    (city, spawn_us, per_actor)
}

/// Sends `per` fixes to each of `n` contractors (20 m apart, 1 s apart) and
/// returns the fixes applied per second until each contractor's newest fix
/// reached its cell (a fix that a newer one replaced while it waited is
/// shed, as the overload policy says, and not counted). Like a gateway
/// connection, the sender runs on the runtime and holds a
/// [`ContractorLink`](dispatch_actors::ContractorLink) per contractor.
async fn gps_round(city: &Dispatch, n: u64, per: u64, round: u64) -> f64 {
    let links: Vec<_> = (0..n).map(|i| city.link(ContractorId(i)).unwrap()).collect();
    let fixes: Vec<Vec<GpsFix>> = (0..per)
        .map(|step| {
            let t = round * per + step + 1;
            (0..n)
                .map(|i| {
                    let at = start_point(i, SIDE_M).destination((i % 360) as f64, 20.0 * t as f64);
                    GpsFix::new(at, None, Some(9.0), Some(5.0), Timestamp(t as i64 * 1_000)).unwrap()
                })
                .collect()
        })
        .collect();
    let stats = city.pipeline_stats();
    let started = Instant::now();
    let links = tokio::spawn(async move {
        for step in fixes {
            for (link, fix) in links.iter().zip(step) {
                link.gps(fix).unwrap();
            }
        }
        links
    })
    .await
    .unwrap();
    // Each contractor's mailbox is first in, first out: past the flush, its newest fix is applied.
    for link in &links {
        link.flush().await.unwrap();
    }
    let applied = city.pipeline_stats().gps_handled - stats.gps_handled;
    loop {
        if city.pipeline_stats().cell_upserts - stats.cell_upserts >= applied {
            break;
        }
        tokio::task::yield_now().await;
    }
    applied as f64 / started.elapsed().as_secs_f64()
}

/// Median µs of k = 10 nearest with a one-trade filter at 2,000 query
/// points spread over the city: through the live cell actors, and through an
/// in-memory index holding the same contractors where the actors last put them.
async fn k_nearest(city: &Dispatch, n: u64) -> (f64, f64) {
    let mut index = SpatialIndex::new(dispatch_actors::engine::spatial::DEFAULT_RESOLUTION).unwrap();
    for i in 0..n {
        let snap = city.contractor(ContractorId(i)).await.unwrap();
        let c = IndexedContractor {
            id: snap.profile.id,
            status: snap.status.kind(),
            trades: snap.profile.trade_set(),
            rating: snap.profile.rating.average(),
        };
        index.upsert(c, snap.position.unwrap());
    }
    assert_eq!(index.len() as u64, n);
    let queries: Vec<(GeoPoint, Filter)> = (0..2_000u64)
        .map(|q| {
            let filter = Filter { trades: TradeSet::single(Trade::ALL[(q % 10) as usize]), ..Filter::default() };
            (start_point(q * 48_271 + 17, SIDE_M), filter)
        })
        .collect();
    let (mut live, mut engine) = (Vec::with_capacity(queries.len()), Vec::with_capacity(queries.len()));
    for (point, filter) in &queries {
        let started = Instant::now();
        let found = city.nearest(*point, 10, filter).await;
        live.push(started.elapsed().as_secs_f64() * 1e6);
        let started = Instant::now();
        let reference = index.k_nearest(*point, 10, filter);
        engine.push(started.elapsed().as_secs_f64() * 1e6);
        let ids = |ns: &[dispatch_actors::engine::Neighbor]| ns.iter().map(|n| n.contractor.id).collect::<Vec<_>>();
        assert_eq!(ids(&found), ids(&reference), "the live walk and the index disagree at {point:?}");
        assert!(found.iter().all(|n| n.contractor.status == StatusKind::Available));
    }
    (median(live), median(engine))
}

fn main() {
    let n: u64 = std::env::var("ACTORS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if std::env::var_os("BARE_PEER").is_some() {
        // Child process: measure the bare actors alone, so neither measurement
        // reuses memory the other freed.
        let (spawn_us, bytes) = rt.block_on(async { tokio::spawn(bare_actors(n)).await.unwrap() });
        println!("{spawn_us} {bytes}");
        return;
    }
    let peer =
        std::process::Command::new(std::env::current_exe().unwrap()).env("BARE_PEER", "1").env("ACTORS", n.to_string()).output().unwrap();
    let peer = String::from_utf8_lossy(&peer.stdout);
    let mut peer = peer.split_whitespace().map(|v| v.parse::<f64>().unwrap());
    let (bare_spawn_us, bare_bytes) = (peer.next().unwrap(), peer.next().unwrap());
    rt.block_on(async {
        // Everything below runs as a task on the runtime, like the gateway.
        tokio::spawn(run(n, bare_spawn_us, bare_bytes)).await.unwrap();
    });
}

async fn run(n: u64, bare_spawn_us: f64, bare_bytes: f64) {
    {
        let (city, spawn_us, bytes) = city(n).await;
        let mut rates = Vec::with_capacity(5);
        for r in 0..5 {
            rates.push(gps_round(&city, n, 10, r).await);
        }
        let gps = median(rates.clone());
        println!("actors: {n} live contractors, 2 worker threads, {} cores", std::thread::available_parallelism().map_or(0, |p| p.get()));
        println!("| measure | dispatch | bare ractor actor | ratio |");
        println!("|---|---:|---:|---:|");
        println!("| spawn (activate) one actor, µs | {spawn_us:.1} | {bare_spawn_us:.1} | {:.1}× |", spawn_us / bare_spawn_us);
        println!(
            "| resident memory per live actor, KiB | {:.2} | {:.2} | {:.2}× |",
            bytes / 1024.0,
            bare_bytes / 1024.0,
            bytes / bare_bytes
        );
        println!("| GPS messages per second (median of 5 rounds of {} fixes) | {gps:.0} | | |", n * 10);
        println!("rounds: {:?}", rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>());
        let (live_us, engine_us) = k_nearest(&city, n).await;
        println!(
            "| k = 10 nearest with a trade filter, median µs (2,000 queries) | {live_us:.1} (live cell actors) | {engine_us:.1} (in-memory index, same walk) | {:.1}× |",
            live_us / engine_us
        );
        city.shutdown().await;
    }
}

/// Side of the square the contractors start in, metres.
const SIDE_M: u64 = 60_000;
