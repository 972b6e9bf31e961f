//! The whole journey in process: post → offer → decline → offer to the
//! second contractor → accept → en route → arriving → on site → completed.

mod common;

use anyhow::Result;
use common::*;
use dispatch_actors::engine::{ContractorId, ContractorStatus, CustomerId, JobState, Trade};
use dispatch_actors::storage::codec;
use dispatch_actors::{ActorError, EventKind, LogRecord, PaymentNotice, Presence};

#[tokio::test]
async fn post_decline_reoffer_accept_drive_arrive_complete() -> Result<()> {
    let (city, store) = memory_city(fast_config()).await?;
    let mut events = city.subscribe();
    online(&city, 1, Trade::Plumbing, 800.0).await?; // nearer: offered first
    online(&city, 2, Trade::Plumbing, 2_500.0).await?;
    online(&city, 3, Trade::Hvac, 100.0).await?; // nearest, wrong trade
    let site = downtown();

    let (job, quote) = city.post_job(request(site, Trade::Plumbing)).await?;
    assert!(quote.total.0 > 0);
    let first = wait_for(&mut events, |e| e.job == job && offered_to(e).is_some()).await?;
    assert_eq!(offered_to(&first), Some(ContractorId(1)));
    assert_eq!(city.contractor(ContractorId(1)).await?.status, ContractorStatus::Offered(job));

    city.decline(job, ContractorId(1)).await?;
    let second = wait_for(&mut events, |e| e.job == job && offered_to(e).is_some()).await?;
    assert_eq!(offered_to(&second), Some(ContractorId(2)), "the decliner is excluded");
    assert_eq!(city.contractor(ContractorId(1)).await?.status, ContractorStatus::Available);

    // Only the offered contractor may accept.
    assert!(city.accept(job, ContractorId(1)).await.is_err());
    assert_eq!(city.accept(job, ContractorId(2)).await?, JobState::Accepted { contractor: ContractorId(2) });
    assert_eq!(city.en_route(job, ContractorId(2)).await?, JobState::EnRoute { contractor: ContractorId(2) });

    // Drive toward the site: 2.5 km east, in 500 m steps a minute apart.
    let mut ts = 1_000_000;
    for metres in [2_000.0, 1_500.0, 1_000.0, 500.0, 150.0] {
        ts += 60_000;
        city.gps(ContractorId(2), fix(site.destination(90.0, metres), ts, Some(9.0)))?;
    }
    let arriving = wait_for(&mut events, |e| e.job == job && matches!(e.kind, EventKind::Arriving { .. })).await?;
    assert!(matches!(arriving.kind, EventKind::Arriving { contractor: ContractorId(2), distance_m } if distance_m <= 200.0));

    assert_eq!(city.on_site(job, ContractorId(2)).await?, JobState::OnSite { contractor: ContractorId(2) });
    assert_eq!(city.complete(job, ContractorId(2)).await?, JobState::Completed { contractor: ContractorId(2) });
    assert_eq!(city.contractor(ContractorId(2)).await?.status, ContractorStatus::Available);
    // Rated once, by the customer who posted it, with sane stars.
    assert!(matches!(city.rate(job, CustomerId(1), 7.0).await, Err(ActorError::Engine(_))));
    assert!(matches!(city.rate(job, CustomerId(9), 5.0).await, Err(ActorError::NotParty(..))));
    let rated = city.rate(job, CustomerId(1), 5.0).await?;
    assert_eq!((rated.contractor, rated.stars, rated.rating.reviews()), (ContractorId(2), 5.0, 21));
    assert_eq!(city.contractor(ContractorId(2)).await?.profile.rating.reviews(), 21);
    assert!(matches!(city.rate(job, CustomerId(1), 1.0).await, Err(ActorError::AlreadyRated(_))));
    let contractor = city.contractor(ContractorId(2)).await?;
    assert_eq!((contractor.profile.rating.reviews(), contractor.ratings.count()), (21, 21), "the second rating moved nothing");
    assert!((contractor.ratings.stars_sum() - (4.5 * 20.0 + 5.0)).abs() < 1e-9);
    assert_eq!(city.job(job).await?.rated_stars, Some(5.0));

    // The job's log holds every lifecycle step, in order, with gapless sequence numbers,
    // and its money beside them: the hold (made, then confirmed) before the first offer,
    // the charge after completion, and when it is paid out.
    let log = store_events(&store, job.0).await?;
    let names: Vec<&str> = log.iter().map(|k| kind_name(k)).collect();
    let hold = ["pay:processing", "pay:processing", "pay:processing", "pay:authorized"];
    let charge = ["pay:processing", "pay:captured", "pay:payout_scheduled"];
    let steps = ["offered", "declined", "offered", "accepted", "en_route", "arriving", "on_site", "completed"];
    assert_eq!(names, [&["posted"][..], &hold, &steps, &charge, &["rated"]].concat());
    let held = quote.total.0 + quote.total.0.div_ceil(5); // the quote and the 20 % margin, rounded up
    assert!(matches!(log[4], EventKind::Payment(PaymentNotice::Authorized { amount }) if amount.0 == held), "{:?}", log[4]);
    assert!(matches!(log[14], EventKind::Payment(PaymentNotice::Captured { amount }) if amount == quote.total), "{:?}", log[14]);
    // Chat joins the same log, and a reconnecting client replays what it missed.
    let said = city.chat(job, dispatch_actors::engine::Party::Customer, 1, "thanks!".into()).await?;
    assert_eq!(said.seq, 18);
    let missed = city.events_since(job, 16).await?;
    assert_eq!(missed.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![17, 18]);
    assert!(matches!(missed[1].kind, EventKind::Chat { ref text, .. } if text == "thanks!"));
    assert!(city.chat(dispatch_actors::engine::JobId(999), dispatch_actors::engine::Party::Customer, 1, "?".into()).await.is_err());
    // The completed job's actor stays for its payout; the contractor's statement shows the charge pending.
    assert_eq!(city.live_counts().jobs, 1);
    assert!(matches!(city.job(job).await?.machine.state(), JobState::Completed { .. }));
    let statement = city.earnings(ContractorId(2)).await?;
    assert_eq!(statement.len(), 1);
    let fee = dispatch_actors::engine::payment::PaymentTerms::default().platform_fee(quote.total);
    assert_eq!((statement[0].jobs, statement[0].gross, statement[0].fee), (1, quote.total, fee));
    assert_eq!((statement[0].pending.0, statement[0].paid.0), (quote.total.0 - fee.0, 0));
    city.set_presence(ContractorId(3), Presence::Offline, None).await?;
    city.shutdown().await;
    Ok(())
}

async fn store_events(store: &dispatch_actors::storage::MemoryStore, job: u64) -> Result<Vec<EventKind>> {
    use dispatch_actors::storage::SnapshotStore;
    let entries = store.read_events(job, 0).await?;
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
    }
    Ok(entries.iter().map(|e| codec::decode::<LogRecord>(&e.payload).map(EventKind::from)).collect::<Result<_, _>>()?)
}

fn kind_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Posted { .. } => "posted",
        EventKind::Offered { .. } => "offered",
        EventKind::Declined { .. } => "declined",
        EventKind::OfferExpired { .. } => "offer_expired",
        EventKind::Accepted { .. } => "accepted",
        EventKind::EnRoute { .. } => "en_route",
        EventKind::Arriving { .. } => "arriving",
        EventKind::OnSite { .. } => "on_site",
        EventKind::Completed { .. } => "completed",
        EventKind::Withdrawn { .. } => "withdrawn",
        EventKind::Cancelled { .. } => "cancelled",
        EventKind::Expired { .. } => "expired",
        EventKind::Chat { .. } => "chat",
        EventKind::Rated { .. } => "rated",
        EventKind::ContractorPosition { .. } => "position",
        EventKind::Payment(notice) => match notice {
            PaymentNotice::Processing { .. } => "pay:processing",
            PaymentNotice::Authorized { .. } => "pay:authorized",
            PaymentNotice::ActionRequired { .. } => "pay:action_required",
            PaymentNotice::Declined { .. } => "pay:declined",
            PaymentNotice::Captured { .. } => "pay:captured",
            PaymentNotice::Voided => "pay:voided",
            PaymentNotice::Refunded { .. } => "pay:refunded",
            PaymentNotice::PaidOut { .. } => "pay:paid_out",
            PaymentNotice::ExtrasProposed { .. } => "pay:extras_proposed",
            PaymentNotice::ExtrasApproved { .. } => "pay:extras_approved",
            PaymentNotice::ExtrasRejected => "pay:extras_rejected",
            PaymentNotice::DisputeOpened { .. } => "pay:dispute_opened",
            PaymentNotice::DisputeResolved { .. } => "pay:dispute_resolved",
            PaymentNotice::PayoutScheduled { .. } => "pay:payout_scheduled",
            PaymentNotice::Chargeback { .. } => "pay:chargeback",
            PaymentNotice::PayoutReversed { .. } => "pay:payout_reversed",
        },
    }
}

#[tokio::test]
async fn a_dispatcher_can_assign_and_reassign_by_hand() -> Result<()> {
    let (city, _) = memory_city(fast_config()).await?;
    let mut events = city.subscribe();
    online(&city, 1, Trade::Hvac, 300.0).await?;
    online(&city, 2, Trade::Hvac, 5_000.0).await?;
    online(&city, 3, Trade::Hvac, 7_000.0).await?;
    let (job, _) = city.post_job(request(downtown(), Trade::Hvac)).await?;
    wait_for(&mut events, |e| offered_to(e) == Some(ContractorId(1))).await?;
    // Reassign a pending offer: 1 is released, 2 is offered.
    assert!(matches!(city.assign(job, ContractorId(2)).await?, JobState::Offering { contractor: ContractorId(2), .. }));
    assert_eq!(city.contractor(ContractorId(1)).await?.status, ContractorStatus::Available);
    city.accept(job, ContractorId(2)).await?;
    // Reassign an accepted job: 2 withdraws, 3 is offered.
    assert!(matches!(city.assign(job, ContractorId(3)).await?, JobState::Offering { contractor: ContractorId(3), .. }));
    assert_eq!(city.contractor(ContractorId(2)).await?.status, ContractorStatus::Available);
    // Someone unknown, excluded or busy cannot be assigned, and a refused
    // assignment leaves the current offer alone.
    assert!(city.assign(job, ContractorId(99)).await.is_err());
    assert!(city.assign(job, ContractorId(2)).await.is_err(), "2 withdrew and is excluded");
    assert!(matches!(city.job(job).await?.machine.state(), JobState::Offering { contractor: ContractorId(3), .. }));
    // The live map shows the job and the contractors.
    let map = city.map_since(0, None);
    assert!(map.jobs.iter().any(|j| j.id == job));
    assert_eq!(map.contractors.len(), 3);
    assert!(map.version > 0 && city.map_since(map.version, None).is_empty());
    Ok(())
}
