//! Restart recovery: run a city on the embedded store, drop every actor at
//! once, rebuild from the store: the same open jobs and contractor states are
//! back, and a pending offer's timer fires.

mod common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use common::*;
use dispatch_actors::engine::{ContractorId, ContractorStatus, JobState, Trade};
use dispatch_actors::storage::{EmbeddedStore, SnapshotStore};
use dispatch_actors::{Dispatch, DispatchConfig, EventKind};

#[tokio::test]
async fn a_crashed_city_comes_back_from_the_embedded_store() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = DispatchConfig { offer_timeout: Duration::from_secs(2), ..fast_config() };

    let (offering, accepted, posted_later) = {
        let store: Arc<dyn SnapshotStore> = Arc::new(EmbeddedStore::open(dir.path())?);
        let (city, _) = Dispatch::start(config.clone(), Arc::clone(&store)).await?;
        let mut events = city.subscribe();
        online(&city, 1, Trade::Plumbing, 500.0).await?;
        online(&city, 2, Trade::Electrical, 700.0).await?;
        let (accepted, _) = city.post_job(request(downtown(), Trade::Electrical)).await?;
        wait_for(&mut events, |e| e.job == accepted && offered_to(e).is_some()).await?;
        city.accept(accepted, ContractorId(2)).await?;
        city.en_route(accepted, ContractorId(2)).await?;
        let (offering, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
        wait_for(&mut events, |e| e.job == offering && offered_to(e).is_some()).await?;
        // Nobody paints here: this one stays posted.
        let (posted_later, _) = city.post_job(request(downtown(), Trade::Painting)).await?;
        city.crash();
        (offering, accepted, posted_later)
    };
    // Reopen the database once the killed actors have let go of it.
    let mut reopened = None;
    for _ in 0..200 {
        match EmbeddedStore::open(dir.path()) {
            Ok(store) => {
                reopened = Some(store);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let store: Arc<dyn SnapshotStore> = Arc::new(reopened.expect("the crashed city releases the database"));
    let (city, report) = Dispatch::start(config, store).await?;
    let mut events = city.subscribe();
    assert_eq!(report.jobs, 3);
    assert_eq!(report.contractors, 2);

    assert_eq!(city.job(accepted).await?.machine.state(), &JobState::EnRoute { contractor: ContractorId(2) });
    assert_eq!(city.contractor(ContractorId(2)).await?.status, ContractorStatus::EnRoute(accepted));
    assert!(matches!(city.job(offering).await?.machine.state(), JobState::Offering { contractor: ContractorId(1), .. }));
    assert_eq!(city.contractor(ContractorId(1)).await?.status, ContractorStatus::Offered(offering));
    assert_eq!(city.job(posted_later).await?.machine.state(), &JobState::Posted);

    // The pending offer's timer was re-armed and fires.
    let lapsed = wait_for(&mut events, |e| e.job == offering && matches!(e.kind, EventKind::OfferExpired { .. })).await?;
    assert_eq!(lapsed.kind, EventKind::OfferExpired { contractor: ContractorId(1) });
    // The en-route job carries on to completion.
    city.on_site(accepted, ContractorId(2)).await?;
    assert_eq!(city.complete(accepted, ContractorId(2)).await?, JobState::Completed { contractor: ContractorId(2) });
    // New jobs get fresh ids.
    let (next, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    assert!(next.0 > posted_later.0);
    city.shutdown().await;
    Ok(())
}
