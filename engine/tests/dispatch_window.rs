//! The engine's pieces working together on one dispatch window: find
//! candidates in the index, estimate ETAs from learned speeds, score them,
//! assign the batch, and quote each job with its cell's surge.

use std::collections::HashSet;

use anyhow::Result;
use dispatch_engine::matching::{assign_greedy, assign_min_total_eta, total_eta_secs};
use dispatch_engine::pricing::CellLoad;
use dispatch_engine::scoring::{Candidate, JobContext, rank};
use dispatch_engine::spatial::IndexedContractor;
use dispatch_engine::{
    ContractorId, Filter, GeoPoint, Money, PricingConfig, Rating, ScoringConfig, SpatialIndex, SpeedConfig, SpeedModel, StatusKind,
    SurgeBook, SurgeConfig, Timestamp, Trade, TradeSet, Urgency,
};

#[test]
fn a_window_of_jobs_is_matched_scored_assigned_and_priced() -> Result<()> {
    let centre = GeoPoint::new(41.5868, -93.6250)?;
    let mut index = SpatialIndex::new(8)?;
    let mut speeds = SpeedModel::new(SpeedConfig::default())?;
    // 300 contractors on a spiral, every third one busy, trades rotating.
    for i in 0..300u64 {
        let point = centre.destination(i as f64 * 47.0, 100.0 + i as f64 * 40.0);
        let status = if i % 3 == 0 { StatusKind::OnSite } else { StatusKind::Available };
        let trades = TradeSet::single(Trade::ALL[(i % 4) as usize]);
        index.upsert(IndexedContractor { id: ContractorId(i), status, trades, rating: 3.5 + (i % 3) as f32 * 0.5 }, point);
        speeds.observe(index.cell_of(point), 8.0 + (i % 5) as f64);
    }
    let jobs: Vec<(GeoPoint, Trade)> = (0..6).map(|j| (centre.destination(j as f64 * 60.0, 2_000.0), Trade::ALL[j % 2])).collect();

    // Candidates per job: the 8 nearest available contractors of the trade.
    let mut candidates: Vec<Vec<(ContractorId, f64)>> = Vec::new();
    for &(at, trade) in &jobs {
        let filter = Filter { trades: TradeSet::single(trade), available_only: true, max_distance_m: Some(15_000.0), ..Filter::default() };
        let near = index.k_nearest(at, 8, &filter);
        assert_eq!(near.len(), 8);
        let ranked = rank(
            &ScoringConfig::default(),
            &JobContext { needed_secs: 3_600, reference_hourly_rate: Money(8_000) },
            &near
                .iter()
                .map(|n| Candidate {
                    id: n.contractor.id,
                    distance_m: n.distance_m,
                    status: n.contractor.status,
                    rating: Rating::new(f64::from(n.contractor.rating), 10).expect("indexed ratings are valid"),
                    years_experience: 3,
                    hourly_rate: Money(8_000),
                    shift_remaining_secs: Some(8 * 3600),
                })
                .collect::<Vec<_>>(),
        );
        // With everything else equal, the best score is the nearest of the best-rated.
        assert!(ranked.windows(2).all(|w| w[0].score >= w[1].score));
        candidates.push(
            near.iter()
                .map(|n| {
                    let eta = speeds.eta_secs(n.point, index.cell_of(n.point), at, index.cell_of(at));
                    (n.contractor.id, eta)
                })
                .collect(),
        );
    }

    // One pool of contractors across the window; a pair is feasible when the
    // contractor was a candidate for that job.
    let pool: Vec<ContractorId> = {
        let mut ids: Vec<ContractorId> = candidates.iter().flatten().map(|&(id, _)| id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let eta = |j: usize, c: usize| candidates[j].iter().find(|(id, _)| *id == pool[c]).map(|&(_, e)| e);
    let batch = assign_min_total_eta(jobs.len(), pool.len(), eta);
    let greedy = assign_greedy(jobs.len(), pool.len(), eta);
    assert_eq!(batch.len(), jobs.len(), "every job gets a contractor");
    assert!(total_eta_secs(&batch) <= total_eta_secs(&greedy) + 1e-6);
    let distinct: HashSet<_> = batch.iter().map(|a| a.contractor).collect();
    assert_eq!(distinct.len(), batch.len(), "nobody gets two jobs");
    for a in &batch {
        let (_, _, who) = index.get(pool[a.contractor]).expect("assigned contractors are indexed");
        assert_eq!(who.status, StatusKind::Available);
        assert!(who.trades.contains(jobs[a.job].1));
    }

    // Demand piles up in the first job's cell: its quote carries the surge.
    let mut surge = SurgeBook::new(SurgeConfig { smoothing_secs: 0.0, ..SurgeConfig::default() })?;
    let hot = index.cell_of(jobs[0].0);
    surge.set_load(hot, CellLoad { demand: 9, supply: 1 });
    surge.update(Timestamp(0));
    let pricing = PricingConfig::default();
    let calm = pricing.quote(Trade::Plumbing, &Urgency::Today, 1.0);
    let busy = pricing.quote(Trade::Plumbing, &Urgency::Today, surge.multiplier(hot));
    assert_eq!(busy.surge, 3.0);
    assert_eq!(busy.total.0, calm.total.0 * 3);
    Ok(())
}
