//! A child that panics is restarted from its snapshot by the dispatcher.

mod common;

use anyhow::Result;
use common::*;
use dispatch_actors::engine::{ContractorId, JobState, Trade};
use dispatch_actors::{EventKind, Presence};

#[tokio::test(start_paused = true)]
async fn a_job_actor_that_panics_mid_offer_still_completes_its_job() -> Result<()> {
    let (city, _) = memory_city(fast_config()).await?;
    let mut events = city.subscribe();
    online(&city, 1, Trade::Carpentry, 600.0).await?;
    online(&city, 2, Trade::Carpentry, 900.0).await?;
    let (job, _) = city.post_job(request(downtown(), Trade::Carpentry)).await?;
    let offer = wait_for(&mut events, |e| offered_to(e).is_some()).await?;
    assert_eq!(offered_to(&offer), Some(ContractorId(1)));

    city.panic_job(job)?;
    // The restarted actor holds the same offer, deadline and all…
    eventually(|| async { city.live_counts().jobs == 1 }).await?;
    let restored = city.job(job).await?;
    let EventKind::Offered { expires_at, .. } = offer.kind else { unreachable!() };
    assert_eq!(restored.machine.state(), &JobState::Offering { contractor: ContractorId(1), expires_at });
    // …and its re-armed timer still moves the job on when the offer lapses.
    let lapsed = wait_for(&mut events, |e| matches!(e.kind, EventKind::OfferExpired { .. })).await?;
    assert_eq!(lapsed.kind, EventKind::OfferExpired { contractor: ContractorId(1) });
    let second = wait_for(&mut events, |e| offered_to(e).is_some()).await?;
    assert_eq!(offered_to(&second), Some(ContractorId(2)));

    city.panic_job(job)?;
    eventually(|| async { city.job(job).await.is_ok() && city.live_counts().jobs == 1 }).await?;
    city.accept(job, ContractorId(2)).await?;
    city.en_route(job, ContractorId(2)).await?;
    city.on_site(job, ContractorId(2)).await?;
    assert_eq!(city.complete(job, ContractorId(2)).await?, JobState::Completed { contractor: ContractorId(2) });
    city.set_presence(ContractorId(2), Presence::Offline, None).await?;
    Ok(())
}
