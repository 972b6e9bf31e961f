//! Index upsert of moving points: contractors driving ~45 m between GPS fixes
//! (11 m/s every 4 s), so some fixes cross into a neighbouring cell.
#![allow(missing_docs, clippy::unwrap_used, reason = "benchmark")]

mod common;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn upsert(c: &mut Criterion) {
    let mut group = c.benchmark_group("upsert_moving");
    for n in [100_000usize, 1_000_000] {
        let mut index = common::city(n, 42);
        let mut rng = common::Rng(9);
        // Per contractor: a heading, and 64 fixes along it.
        let tracks: Vec<_> = (0..4096u64)
            .map(|_| {
                let id = rng.below(n as u64);
                let (_, start, who) = index.get(dispatch_engine::ContractorId(id)).unwrap();
                let heading = rng.unit() * 360.0;
                let fixes: Vec<_> = (1..=64).map(|i| start.destination(heading, 45.0 * f64::from(i))).collect();
                (who, fixes)
            })
            .collect();
        let (mut t, mut f) = (0usize, 0usize);
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                t = (t + 1) % tracks.len();
                if t == 0 {
                    f = (f + 1) % 64;
                }
                let (who, fixes) = &tracks[t];
                black_box(index.upsert(*who, fixes[f]))
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = upsert
}
criterion_main!(benches);
