//! Batched matching of 50 jobs to 50 contractors (Kuhn–Munkres), with the
//! greedy nearest-first reference beside it.
#![allow(missing_docs, clippy::unwrap_used, reason = "benchmark")]

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use dispatch_engine::matching::{assign_greedy, assign_min_total_eta};
use std::hint::black_box;

fn hungarian(c: &mut Criterion) {
    let mut rng = common::Rng(5);
    let jobs: Vec<_> = (0..50).map(|_| common::city_point(&mut rng)).collect();
    let contractors: Vec<_> = (0..50).map(|_| common::city_point(&mut rng)).collect();
    // ETA at 11.2 m/s with a 1.3 detour; pairs over 15 km are infeasible.
    let eta = |j: usize, k: usize| {
        let d = jobs[j].distance_m(contractors[k]);
        (d <= 15_000.0).then(|| d * 1.3 / 11.2)
    };
    let mut group = c.benchmark_group("assign_50x50");
    group.bench_function("kuhn_munkres", |b| b.iter(|| black_box(assign_min_total_eta(50, 50, eta))));
    group.bench_function("greedy", |b| b.iter(|| black_box(assign_greedy(50, 50, eta))));
    group.finish();
}

criterion_group!(benches, hungarian);
criterion_main!(benches);
