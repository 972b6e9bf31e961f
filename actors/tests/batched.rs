//! Batched mode: jobs gathered over a window are assigned together with the
//! least total ETA, where offering each job at once would do worse.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use dispatch_actors::DispatchConfig;
use dispatch_actors::engine::{ContractorId, JobId, Trade};

/// Jobs at downtown (J1) and 3.5 km east (J2); contractors 1 km east (C1)
/// and 3 km west (C2). Each job for itself: J1 takes C1 (1 km) and J2 is left
/// with C2 (6.5 km, beyond the first 5 km radius). Together: J1–C2 (3 km) and
/// J2–C1 (2.5 km).
async fn two_jobs(config: DispatchConfig) -> Result<Vec<(JobId, ContractorId)>> {
    let (city, _) = memory_city(config).await?;
    let mut events = city.subscribe();
    online(&city, 1, Trade::Plumbing, 1_000.0).await?;
    online(&city, 2, Trade::Plumbing, -3_000.0).await?;
    let (j1, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    let (j2, _) = city.post_job(request(downtown().destination(90.0, 3_500.0), Trade::Plumbing)).await?;
    let mut offers = Vec::new();
    for _ in 0..2 {
        let e = wait_for(&mut events, |e| offered_to(e).is_some()).await?;
        let to = offered_to(&e).ok_or_else(|| anyhow::anyhow!("not an offer: {e:?}"))?;
        offers.push((e.job, to));
    }
    offers.sort();
    assert_eq!(offers.iter().map(|(j, _)| *j).collect::<Vec<_>>(), vec![j1, j2]);
    Ok(offers)
}

#[tokio::test(start_paused = true)]
async fn a_batch_assigns_jobs_together_with_the_least_total_eta() -> Result<()> {
    let batched = DispatchConfig { batch_window: Some(Duration::from_secs(2)), ..fast_config() };
    let offers = two_jobs(batched).await?;
    assert_eq!(offers.iter().map(|(_, c)| c.0).collect::<Vec<_>>(), vec![2, 1], "J1–C2, J2–C1");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn without_a_batch_the_first_job_takes_the_nearest_contractor() -> Result<()> {
    let offers = two_jobs(fast_config()).await?;
    assert_eq!(offers[0].1, ContractorId(1), "J1 grabs C1 at once");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_declined_batched_job_goes_back_into_the_next_batch() -> Result<()> {
    let batched = DispatchConfig { batch_window: Some(Duration::from_secs(2)), ..fast_config() };
    let (city, _) = memory_city(batched).await?;
    let mut events = city.subscribe();
    online(&city, 1, Trade::Hvac, 500.0).await?;
    online(&city, 2, Trade::Hvac, 1_500.0).await?;
    let (job, _) = city.post_job(request(downtown(), Trade::Hvac)).await?;
    let first = wait_for(&mut events, |e| offered_to(e).is_some()).await?;
    assert_eq!(offered_to(&first), Some(ContractorId(1)));
    city.decline(job, ContractorId(1)).await?;
    let second = wait_for(&mut events, |e| offered_to(e).is_some()).await?;
    assert_eq!(offered_to(&second), Some(ContractorId(2)));
    Ok(())
}
