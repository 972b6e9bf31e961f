//! Cancellation in every non-terminal state, and a store that fails.

mod common;

use anyhow::Result;
use common::*;
use dispatch_actors::engine::payment::{PaymentState, PaymentTerms};
use dispatch_actors::engine::{ContractorId, ContractorStatus, CustomerId, JobId, JobState, Money, Party, Trade};
use dispatch_actors::{ActorError, Asker, Dispatch, EventKind};

/// Posts a job and drives it to `target` with contractor 1.
async fn job_in(city: &Dispatch, target: &str) -> Result<JobId> {
    let mut events = city.subscribe();
    let (job, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    if target == "posted" {
        return Ok(job);
    }
    wait_for(&mut events, |e| e.job == job && offered_to(e).is_some()).await?;
    if target == "offering" {
        return Ok(job);
    }
    city.accept(job, ContractorId(1)).await?;
    if target == "accepted" {
        return Ok(job);
    }
    city.en_route(job, ContractorId(1)).await?;
    if target == "en_route" {
        return Ok(job);
    }
    city.on_site(job, ContractorId(1)).await?;
    Ok(job)
}

#[tokio::test]
async fn a_customer_can_cancel_in_every_non_terminal_state() -> Result<()> {
    for target in ["posted", "offering", "accepted", "en_route", "on_site"] {
        let (city, _) = memory_city(fast_config()).await?;
        if target != "posted" {
            online(&city, 1, Trade::Plumbing, 400.0).await?;
        }
        let job = job_in(&city, target).await?;
        let mut events = city.subscribe();
        let state = city.cancel(job, Asker::Customer(CustomerId(1)), "found someone else").await?;
        assert_eq!(state, JobState::Cancelled { by: Party::Customer, reason: "found someone else".into() }, "{target}");
        let e = wait_for(&mut events, |e| e.job == job && matches!(e.kind, EventKind::Cancelled { .. })).await?;
        assert!(e.seq > 1, "{target}: logged after the earlier events");
        if target != "posted" {
            assert_eq!(city.contractor(ContractorId(1)).await?.status, ContractorStatus::Available, "{target}: released");
        }
        // Its money: the hold let go until the contractor set off; after, the cancellation fee charged for them.
        let paid = city.payment(job, Asker::Customer(CustomerId(1))).await?;
        let fee = PaymentTerms::default().cancellation_fee;
        if matches!(target, "en_route" | "on_site") {
            assert_eq!((paid.state, paid.charged), (PaymentState::Captured, fee), "{target}");
            assert!(paid.payout_at.is_some(), "{target}: the fee is paid out after the dispute window");
            // The actor stays for the payout; the job itself takes no more steps.
            assert!(matches!(city.cancel(job, Asker::Customer(CustomerId(1)), "again").await, Err(ActorError::Engine(_))), "{target}");
        } else {
            assert_eq!((paid.state, paid.charged), (PaymentState::Voided, Money(0)), "{target}");
            // A cancelled job cannot be cancelled again, nor accepted.
            eventually(|| async { city.live_counts().jobs == 0 }).await?;
            assert!(
                matches!(city.cancel(job, Asker::Customer(CustomerId(1)), "again").await, Err(ActorError::JobClosed(_, ref s)) if s == "cancelled")
            );
        }
        city.shutdown().await;
    }
    Ok(())
}

#[tokio::test]
async fn nothing_is_acknowledged_that_the_store_did_not_confirm() -> Result<()> {
    let (city, store) = memory_city(fast_config()).await?;
    let mut events = city.subscribe();
    online(&city, 1, Trade::Hvac, 400.0).await?;
    let (job, _) = city.post_job(request(downtown(), Trade::Hvac)).await?;
    wait_for(&mut events, |e| e.job == job && offered_to(e).is_some()).await?;

    store.set_unavailable(true);
    let refused = city.accept(job, ContractorId(1)).await;
    assert!(matches!(refused, Err(ActorError::Store(_))), "{refused:?}");
    store.set_unavailable(false);
    // The job is still offering, so the same accept now goes through.
    assert!(matches!(city.job(job).await?.machine.state(), JobState::Offering { .. }));
    assert_eq!(city.accept(job, ContractorId(1)).await?, JobState::Accepted { contractor: ContractorId(1) });

    // Posting while the store is down fails cleanly too.
    store.set_unavailable(true);
    assert!(matches!(city.post_job(request(downtown(), Trade::Hvac)).await, Err(ActorError::Store(_))));
    store.set_unavailable(false);
    Ok(())
}

#[tokio::test]
async fn bad_requests_get_clear_errors() -> Result<()> {
    let (city, _) = memory_city(fast_config()).await?;
    assert!(matches!(city.accept(JobId(999), ContractorId(1)).await, Err(ActorError::UnknownJob(JobId(999)))));
    assert!(matches!(
        city.set_presence(ContractorId(5), dispatch_actors::Presence::Available, None).await,
        Err(ActorError::UnknownContractor(ContractorId(5)))
    ));
    city.register_contractor(profile(5, Trade::Cleaning)).await?;
    assert!(matches!(city.register_contractor(profile(5, Trade::Cleaning)).await, Err(ActorError::DuplicateContractor(_))));
    let mut bad = profile(6, Trade::Cleaning);
    bad.service_radius_m = -1.0;
    assert!(matches!(city.register_contractor(bad).await, Err(ActorError::Engine(_))));
    assert!(city.gps(ContractorId(5), fix(downtown(), 1, None)).is_err(), "offline contractors send no GPS");
    assert!(matches!(city.rate(JobId(999), CustomerId(1), 4.0).await, Err(ActorError::UnknownJob(JobId(999)))));
    Ok(())
}
