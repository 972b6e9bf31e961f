//! Day routing with time windows: 8 jobs (exact) and 30 jobs (heuristic).
#![allow(missing_docs, clippy::unwrap_used, reason = "benchmark")]

mod common;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dispatch_engine::routing::{RoutingConfig, Stop, plan_day};
use dispatch_engine::{JobId, TimeWindow, Timestamp};
use std::hint::black_box;

fn routing(c: &mut Criterion) {
    let start_time = Timestamp(1_795_420_800_000);
    let mut group = c.benchmark_group("plan_day");
    for n in [8usize, 30] {
        let mut rng = common::Rng(11 + n as u64);
        let start = common::city_point(&mut rng);
        let stops: Vec<Stop> = (0..n)
            .map(|i| {
                // Half the jobs carry a 2-hour window somewhere in a 10-hour day.
                let window = (i % 2 == 0).then(|| {
                    let open = start_time.plus_secs(rng.below(8 * 3600) as i64);
                    TimeWindow::new(open, open.plus_secs(2 * 3600)).unwrap()
                });
                Stop { job: JobId(i as u64), location: common::city_point(&mut rng), window, service_secs: 1_200 }
            })
            .collect();
        let config = RoutingConfig::default();
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| black_box(plan_day(start, start_time, &stops, &config, |a, b| a.distance_m(b) * 1.3 / 11.2).unwrap()))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = routing
}
criterion_main!(benches);
