//! Scheduled jobs: offered ahead of the window, only to contractors whose
//! shift covers it and whose day route takes it without making a booked job late.

mod common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use common::*;
use dispatch_actors::engine::{ContractorId, ContractorStatus, ShiftWindow, TimeWindow, Timestamp, Trade, Urgency};
use dispatch_actors::storage::{MemoryStore, SnapshotStore};
use dispatch_actors::{Clock, Dispatch, EventKind, JobRequest, Presence};

/// Monday 2026-11-23 08:00 UTC.
const MONDAY_0800: Timestamp = Timestamp(1_795_392_000_000 + 8 * 3_600_000);

/// Hours of paused time pass in these tests: no idle hibernation, and slow
/// periodic ticks so the paused clock has few steps to take.
fn config() -> dispatch_actors::DispatchConfig {
    dispatch_actors::DispatchConfig {
        idle_hibernate_after: Duration::from_secs(24 * 3_600),
        surge_interval: Duration::from_secs(60),
        snapshot_interval: Duration::from_secs(60),
        ..fast_config()
    }
}

fn scheduled(at: dispatch_actors::engine::GeoPoint, window: TimeWindow) -> JobRequest {
    JobRequest { urgency: Urgency::Scheduled(window), ..request(at, Trade::Hvac) }
}

#[tokio::test(start_paused = true)]
async fn scheduled_jobs_wait_for_the_lead_time_and_respect_shifts_and_routes() -> Result<()> {
    let store: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start_with_clock(config(), store, Clock::starting_at(MONDAY_0800)).await?;
    let mut events = city.subscribe();
    // Window: Monday 13:00–14:00; offers open two hours before, at 11:00.
    let window = TimeWindow::new(MONDAY_0800.plus_secs(5 * 3_600), MONDAY_0800.plus_secs(6 * 3_600))?;

    // Contractor 3, the nearest, first books a job 20 km away in the same window.
    online(&city, 3, Trade::Hvac, 300.0).await?;
    let far = downtown().destination(0.0, 20_000.0);
    let (booked, _) = city.post_job(scheduled(far, window)).await?;
    let posted = tokio::time::Instant::now();
    let offer = wait_for_within(&mut events, Duration::from_secs(4 * 3_600), |e| offered_to(e).is_some()).await?;
    assert_eq!(offered_to(&offer), Some(ContractorId(3)));
    let waited = posted.elapsed();
    assert!(waited >= Duration::from_secs(3 * 3_600), "offered {waited:?} after posting, before the lead time");
    city.accept(booked, ContractorId(3)).await?;
    // Booked for later: free for other work now, with the job on the agenda.
    let c3 = city.contractor(ContractorId(3)).await?;
    assert_eq!(c3.status, ContractorStatus::Available);
    assert_eq!(c3.agenda.iter().map(|s| s.job).collect::<Vec<_>>(), vec![booked]);

    // Contractor 2 is near but off shift at 13:00; contractor 1 is farther and free.
    city.register_contractor(dispatch_actors::engine::ContractorProfile {
        shifts: vec![ShiftWindow::new(0, 8 * 60, 12 * 60)?],
        ..profile(2, Trade::Hvac)
    })
    .await?;
    city.set_presence(ContractorId(2), Presence::Available, Some(downtown().destination(90.0, 500.0))).await?;
    online(&city, 1, Trade::Hvac, 4_000.0).await?;

    let (job, _) = city.post_job(scheduled(downtown(), window)).await?;
    let offer = wait_for(&mut events, |e| e.job == job && offered_to(e).is_some()).await?;
    assert_eq!(offered_to(&offer), Some(ContractorId(1)), "3 cannot be at both sites within the hour; 2 is off shift");
    city.accept(job, ContractorId(1)).await?;
    assert_eq!(city.contractor(ContractorId(1)).await?.status, ContractorStatus::Available);
    // Setting off turns the booking into the live job.
    city.en_route(job, ContractorId(1)).await?;
    let c1 = city.contractor(ContractorId(1)).await?;
    assert_eq!(c1.status, ContractorStatus::EnRoute(job));
    assert!(c1.agenda.is_empty());
    // Cancelling a booked job takes it off the agenda and leaves the contractor free.
    city.cancel(booked, dispatch_actors::Asker::Customer(dispatch_actors::engine::CustomerId(1)), "not needed").await?;
    let c3 = city.contractor(ContractorId(3)).await?;
    assert!(c3.agenda.is_empty());
    assert_eq!(c3.status, ContractorStatus::Available);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_unaccepted_scheduled_job_expires_when_its_window_ends() -> Result<()> {
    let store: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start_with_clock(config(), store, Clock::starting_at(MONDAY_0800)).await?;
    let mut events = city.subscribe();
    let window = TimeWindow::new(MONDAY_0800.plus_secs(3_600), MONDAY_0800.plus_secs(2 * 3_600))?;
    let (job, _) = city.post_job(scheduled(downtown(), window)).await?;
    let expired =
        wait_for_within(&mut events, Duration::from_secs(3 * 3_600), |e| e.job == job && matches!(e.kind, EventKind::Expired { .. }))
            .await?;
    assert!(expired.at >= window.end);
    Ok(())
}
