//! k-nearest (k = 10, one-trade filter) at 10k, 100k and 1M contractors,
//! with the brute-force scan beside it as the reference.
#![allow(missing_docs, clippy::unwrap_used, reason = "benchmark")]

mod common;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dispatch_engine::{Filter, Trade, TradeSet};
use std::hint::black_box;

fn k_nearest(c: &mut Criterion) {
    let mut group = c.benchmark_group("k_nearest_k10_trade_filter");
    for n in [10_000usize, 100_000, 1_000_000] {
        let index = common::city(n, 42);
        let mut rng = common::Rng(7);
        let queries: Vec<_> = (0..1024).map(|_| common::city_point(&mut rng)).collect();
        let filter = Filter { trades: TradeSet::single(Trade::Hvac), ..Filter::default() };
        let mut i = 0;
        group.bench_function(BenchmarkId::new("index", n), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                black_box(index.k_nearest(queries[i], 10, &filter))
            });
        });
        group.bench_function(BenchmarkId::new("brute_force", n), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                black_box(index.brute_force_k_nearest(queries[i], 10, &filter))
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = k_nearest
}
criterion_main!(benches);
