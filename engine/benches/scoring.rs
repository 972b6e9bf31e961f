//! Scoring and ranking 50 candidates for one job.
#![allow(missing_docs, clippy::unwrap_used, reason = "benchmark")]

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use dispatch_engine::scoring::{Candidate, JobContext, ScoringConfig, rank};
use dispatch_engine::{ContractorId, Money, Rating, StatusKind};
use std::hint::black_box;

fn scoring(c: &mut Criterion) {
    let mut rng = common::Rng(3);
    let candidates: Vec<Candidate> = (0..50)
        .map(|id| Candidate {
            id: ContractorId(id),
            distance_m: rng.unit() * 15_000.0,
            status: StatusKind::Available,
            rating: Rating::new(3.0 + rng.unit() * 2.0, rng.below(200) as u32).unwrap(),
            years_experience: rng.below(30) as u8,
            hourly_rate: Money(5_000 + rng.below(10_000)),
            shift_remaining_secs: Some(rng.below(8 * 3600) as u32),
        })
        .collect();
    let config = ScoringConfig::default();
    let job = JobContext { needed_secs: 2 * 3600, reference_hourly_rate: Money(8_500) };
    c.bench_function("score_and_rank_50", |b| b.iter(|| black_box(rank(&config, &job, black_box(&candidates)))));
}

criterion_group!(benches, scoring);
criterion_main!(benches);
