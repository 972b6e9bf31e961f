//! Offer timeouts, job expiry and idle hibernation, with tokio's clock paused
//! so 20 s offers and 10 min idles take no real time.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use dispatch_actors::engine::{ContractorId, ContractorStatus, CustomerId, JobState, Trade};
use dispatch_actors::{DispatchConfig, EventKind};

#[tokio::test(start_paused = true)]
async fn an_unanswered_offer_lapses_and_goes_to_the_next_contractor() -> Result<()> {
    let (city, _) = memory_city(fast_config()).await?;
    let mut events = city.subscribe();
    online(&city, 1, Trade::Electrical, 500.0).await?;
    online(&city, 2, Trade::Electrical, 1_500.0).await?;
    let (job, _) = city.post_job(request(downtown(), Trade::Electrical)).await?;
    let first = wait_for(&mut events, |e| offered_to(e).is_some()).await?;
    assert_eq!(offered_to(&first), Some(ContractorId(1)));
    let offered_at = tokio::time::Instant::now();

    let lapsed = wait_for(&mut events, |e| matches!(e.kind, EventKind::OfferExpired { .. })).await?;
    assert_eq!(lapsed.kind, EventKind::OfferExpired { contractor: ContractorId(1) });
    let waited = offered_at.elapsed();
    assert!(waited >= Duration::from_secs(20) && waited < Duration::from_secs(21), "{waited:?}");
    let EventKind::Offered { expires_at, .. } = first.kind else { unreachable!() };
    assert!(lapsed.at >= expires_at);

    let second = wait_for(&mut events, |e| offered_to(e).is_some()).await?;
    assert_eq!(offered_to(&second), Some(ContractorId(2)));
    assert_eq!(city.contractor(ContractorId(1)).await?.status, ContractorStatus::Available);
    assert!(city.job(job).await?.machine.excluded().contains(&ContractorId(1)));
    // A late accept from the first contractor is refused.
    assert!(city.accept(job, ContractorId(1)).await.is_err());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_job_nobody_takes_expires_with_a_reason() -> Result<()> {
    let config = DispatchConfig { job_ttl: Duration::from_secs(120), ..fast_config() };
    let (city, _) = memory_city(config).await?;
    let mut events = city.subscribe();
    // The only roofer declines; nobody else exists.
    online(&city, 1, Trade::Roofing, 300.0).await?;
    let (job, _) = city.post_job(request(downtown(), Trade::Roofing)).await?;
    wait_for(&mut events, |e| offered_to(e).is_some()).await?;
    city.decline(job, ContractorId(1)).await?;
    let ten_minutes = Duration::from_secs(600);
    let expired = wait_for_within(&mut events, ten_minutes, |e| matches!(e.kind, EventKind::Expired { .. })).await?;
    let EventKind::Expired { reason } = expired.kind else { unreachable!() };
    assert!(reason.contains("no contractor accepted within 2 min"), "{reason}");
    assert_eq!(city.job(job).await?.machine.state(), &JobState::Expired);
    assert_eq!(city.job(job).await?.expired_reason.as_deref(), Some(reason.as_str()));

    // With nobody at all in range, the reason says so.
    let (lonely, _) = city.post_job(request(downtown(), Trade::Locksmith)).await?;
    let expired = wait_for_within(&mut events, ten_minutes, |e| e.job == lonely && matches!(e.kind, EventKind::Expired { .. })).await?;
    assert!(matches!(expired.kind, EventKind::Expired { ref reason } if reason.contains("no available contractor")));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_idle_contractor_hibernates_and_comes_back_from_the_snapshot() -> Result<()> {
    let config = DispatchConfig { idle_hibernate_after: Duration::from_secs(600), ..fast_config() };
    let (city, _) = memory_city(config).await?;
    let at = online(&city, 1, Trade::Painting, 300.0).await?;
    let job = complete_a_job(&city, 1, Trade::Painting, downtown()).await?;
    city.rate(job, CustomerId(1), 1.0).await?;
    assert_eq!(city.live_counts().contractors, 1);
    tokio::time::sleep(Duration::from_secs(1_300)).await;
    eventually(|| async { city.live_counts().contractors == 0 }).await?;
    let stored = city.contractor(ContractorId(1)).await?;
    assert_eq!(stored.status, ContractorStatus::Offline);
    assert_eq!(stored.position, Some(at));
    // Back online: the actor is rebuilt from the snapshot, review included.
    city.set_presence(ContractorId(1), dispatch_actors::Presence::Available, None).await?;
    assert_eq!(city.live_counts().contractors, 1);
    let live = city.contractor(ContractorId(1)).await?;
    assert_eq!(live.status, ContractorStatus::Available);
    assert_eq!(live.profile.rating.reviews(), 21);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_cell_left_empty_stops_after_its_idle_time() -> Result<()> {
    let config = DispatchConfig { cell_idle_after: Duration::from_secs(60), ..fast_config() };
    let (city, _) = memory_city(config).await?;
    let at = online(&city, 1, Trade::Cleaning, 0.0).await?;
    eventually(|| async { city.cell_info(at).await.is_some_and(|c| c.contractors == 1) }).await?;
    assert_eq!(city.live_counts().cells, 1);
    // Occupied cells stay however long they idle.
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(city.live_counts().cells, 1);
    city.set_presence(ContractorId(1), dispatch_actors::Presence::Offline, None).await?;
    tokio::time::sleep(Duration::from_secs(150)).await;
    eventually(|| async { city.live_counts().cells == 0 }).await?;
    // Coming back spawns the cell again.
    city.set_presence(ContractorId(1), dispatch_actors::Presence::Available, None).await?;
    eventually(|| async { city.cell_info(at).await.is_some_and(|c| c.contractors == 1) }).await?;
    Ok(())
}
