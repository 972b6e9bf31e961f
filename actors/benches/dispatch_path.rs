//! The live dispatch path under GPS load: a small city in which every job
//! is posted while contractors stream GPS, timed from `post_job` to the
//! job's `offered` event. Its cost is read two ways:
//!
//! - wall time per job (median and p99), printed by `cargo bench -p
//!   dispatch-actors --bench dispatch_path`;
//! - the instructions the whole scenario executes, counted by
//!   `actors/benches/instructions.sh` under `valgrind --tool=callgrind` and
//!   compared with the baseline committed beside it: a count does not move
//!   with the shared machine's noise, so a regression shows as a number.
//!
//! The scenario: contractors of ten trades online in a 20 km box; jobs
//! posted one after another, each after a burst of GPS fixes from moving
//! contractors (the stream a city sends between two posts); nobody accepts,
//! so each job ends at its offer. A current-thread runtime keeps one order
//! of events from run to run. `--small` runs the smaller city used under
//! callgrind.

#![allow(clippy::expect_used, reason = "a benchmark: a failed step is a failed run")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dispatch_actors::engine::{ContractorId, CustomerId, Timestamp, Trade, Urgency};
use dispatch_actors::storage::{MemoryStore, SnapshotStore};
use dispatch_actors::{Dispatch, DispatchConfig, EventKind, GpsFix, JobRequest, Presence};

use common::{profile, start_point};

/// The scenario's size.
struct Size {
    contractors: u64,
    jobs: u64,
    fixes_per_job: u64,
}

/// Microseconds from each post to its offer, in posting order.
async fn scenario(size: &Size) -> Vec<f64> {
    let config = DispatchConfig { idle_hibernate_after: Duration::from_secs(3_600), ..DispatchConfig::default() };
    let store: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start(config, store).await.expect("city");
    for i in 0..size.contractors {
        city.register_contractor(profile(i)).await.expect("register");
        city.set_presence(ContractorId(i), Presence::Available, Some(start_point(i, SIDE_M))).await.expect("online");
    }
    let links: Vec<_> = (0..size.contractors).map(|i| city.link(ContractorId(i)).expect("link")).collect();
    let mut events = city.subscribe();
    let mut took = Vec::with_capacity(size.jobs as usize);
    let mut tick = 0u64;
    for job in 0..size.jobs {
        for _ in 0..size.fixes_per_job {
            tick += 1;
            let i = (tick * 7) % size.contractors;
            let at = start_point(i, SIDE_M).destination((tick % 360) as f64, 30.0 * (tick / size.contractors + 1) as f64);
            let fix = GpsFix::new(at, None, Some(9.0), Some(5.0), Timestamp(1_000 * tick as i64)).expect("fix");
            links[i as usize].gps(fix).expect("gps");
        }
        let request = JobRequest {
            customer: CustomerId(1 + job % 50),
            trade: Trade::ALL[(job % 10) as usize],
            location: start_point(job * 31 + 5, SIDE_M),
            urgency: Urgency::Emergency,
            description: format!("job {job}"),
            budget: None,
            payment_method: None,
        };
        let posted = Instant::now();
        let (id, _) = city.post_job(request).await.expect("post");
        loop {
            let event = events.recv().await.expect("event stream");
            if event.job == id && matches!(event.kind, EventKind::Offered { .. }) {
                break;
            }
        }
        took.push(posted.elapsed().as_secs_f64() * 1e6);
    }
    city.shutdown().await;
    took
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let small = std::env::args().any(|a| a == "--small");
    let size = if small {
        Size { contractors: 500, jobs: 40, fixes_per_job: 50 }
    } else {
        Size { contractors: 5_000, jobs: 400, fixes_per_job: 250 }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut took = runtime.block_on(scenario(&size));
    took.sort_by(f64::total_cmp);
    println!(
        "dispatch path: {} contractors, {} jobs, {} fixes before each: posted → offered p50 {:.1} µs, p99 {:.1} µs",
        size.contractors,
        size.jobs,
        size.fixes_per_job,
        quantile(&took, 0.5),
        quantile(&took, 0.99)
    );
}

/// Side of the square the contractors start in, metres.
const SIDE_M: u64 = 20_000;
