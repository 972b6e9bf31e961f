//! Within-radius (1 km and 3 km, available plumbers) at 100k contractors,
//! with the brute-force scan beside it.
#![allow(missing_docs, clippy::unwrap_used, reason = "benchmark")]

mod common;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dispatch_engine::{Filter, Trade, TradeSet};
use std::hint::black_box;

fn within_radius(c: &mut Criterion) {
    let mut group = c.benchmark_group("within_radius_100k");
    let index = common::city(100_000, 42);
    let mut rng = common::Rng(7);
    let queries: Vec<_> = (0..1024).map(|_| common::city_point(&mut rng)).collect();
    let filter = Filter { trades: TradeSet::single(Trade::Plumbing), available_only: true, ..Filter::default() };
    let mut i = 0;
    for radius in [1_000.0f64, 3_000.0] {
        group.bench_function(BenchmarkId::new("index", radius), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                black_box(index.within_radius(queries[i], radius, &filter))
            });
        });
        group.bench_function(BenchmarkId::new("brute_force", radius), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                black_box(index.brute_force_within_radius(queries[i], radius, &filter))
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = within_radius
}
criterion_main!(benches);
