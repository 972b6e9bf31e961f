//! The city's figures per hour against a known sequence: three jobs — one
//! completed and charged, one declined, re-offered, accepted and cancelled,
//! one cancelled while offered — read back from the hour's stored record,
//! and the same after a restart (kept, not recounted).

mod common;

use std::time::Duration;

use anyhow::{Result, bail};
use common::*;
use dispatch_actors::engine::kpi::{HourKpis, hour_of};
use dispatch_actors::engine::payment::PaymentTerms;
use dispatch_actors::engine::{ContractorId, JobStateKind, Money, Trade};
use dispatch_actors::storage::SnapshotStore;
use dispatch_actors::{Asker, Dispatch, EventKind, PaymentNotice};

/// The hours stored around now, added together, once they have counted `posted` posts and `cancelled` cancellations.
async fn figures(city: &Dispatch, posted: u64, cancelled: u64) -> Result<HourKpis> {
    let now = hour_of(city.clock().now().0);
    for _ in 0..200 {
        let mut all = HourKpis::default();
        for (_, hour) in city.kpis(now - 1, now + 1).await? {
            all.merge(&hour);
        }
        if all.posted >= posted && all.cancelled >= cancelled {
            return Ok(all);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("the figures did not count {posted} posts and {cancelled} cancellations")
}

#[tokio::test]
async fn a_known_sequence_reads_back_as_its_figures() -> Result<()> {
    let (city, store) = memory_city(fast_config()).await?;
    let mut events = city.subscribe();
    online(&city, 1, Trade::Plumbing, 800.0).await?;
    online(&city, 2, Trade::Plumbing, 2_500.0).await?;
    let (c1, c2) = (ContractorId(1), ContractorId(2));

    // A: offered to 1, accepted, driven, on site, completed and charged.
    let (a, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    wait_for(&mut events, |e| e.job == a && offered_to(e) == Some(c1)).await?;
    city.accept(a, c1).await?;
    city.en_route(a, c1).await?;
    city.on_site(a, c1).await?;
    city.complete(a, c1).await?;
    let captured = wait_for(&mut events, |e| e.job == a && matches!(e.kind, EventKind::Payment(PaymentNotice::Captured { .. }))).await?;
    let EventKind::Payment(PaymentNotice::Captured { amount }) = captured.kind else { bail!("not a capture") };

    // B: offered to 1, declined, offered to 2, accepted, then cancelled.
    let (b, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    wait_for(&mut events, |e| e.job == b && offered_to(e) == Some(c1)).await?;
    city.decline(b, c1).await?;
    wait_for(&mut events, |e| e.job == b && offered_to(e) == Some(c2)).await?;
    city.accept(b, c2).await?;
    city.cancel(b, Asker::Customer(dispatch_actors::engine::CustomerId(1)), "changed my mind").await?;

    // C: offered to 1, cancelled before an answer.
    let (c, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    wait_for(&mut events, |e| e.job == c && offered_to(e) == Some(c1)).await?;
    city.cancel(c, Asker::Customer(dispatch_actors::engine::CustomerId(1)), "found someone").await?;

    let kpis = figures(&city, 3, 2).await?;
    let r = kpis.report();
    assert_eq!((r.posted, r.matched, r.completed, r.cancelled, r.expired), (3, 2, 1, 2, 0), "{r:?}");
    assert_eq!(kpis.offered, 4, "A once, B twice, C once");
    assert_eq!(r.acceptance_rate, Some(0.5));
    assert_eq!(r.match_rate, Some(2.0 / 3.0));
    assert_eq!(kpis.time_to_match.len(), 2);
    assert_eq!(kpis.time_to_arrival.len(), 1);
    assert!(r.time_to_match_p90.is_some_and(|s| s < 60.0), "matched within the test: {r:?}");
    assert_eq!(r.gross_volume, amount.0);
    assert_eq!(r.platform_revenue, PaymentTerms::default().platform_fee(amount).0);
    assert!(amount > Money(0));

    // The job index lists every job by its latest state, a filter at a time.
    let mut history = Vec::new();
    for _ in 0..200 {
        history = city.job_history(None, 10, |_| true).await?.0;
        if history.iter().filter(|r| r.state == JobStateKind::Cancelled).count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let states: Vec<_> = history.iter().map(|r| (r.job, r.state)).collect();
    assert_eq!(states, [(a, JobStateKind::Completed), (b, JobStateKind::Cancelled), (c, JobStateKind::Cancelled)]);
    assert_eq!(history[0].contractor, Some(c1));
    let (cancelled, next) = city.job_history(None, 1, |r| r.state == JobStateKind::Cancelled).await?;
    assert_eq!((cancelled.iter().map(|r| r.job).collect::<Vec<_>>(), next), (vec![b], Some(b.0)), "a page of one, and where to go on");
    let (rest, end) = city.job_history(next, 10, |r| r.state == JobStateKind::Cancelled).await?;
    assert_eq!((rest.iter().map(|r| r.job).collect::<Vec<_>>(), end), (vec![c], None));

    // After a restart the hours are read back as stored, and nothing is counted twice.
    city.shutdown().await;
    let (city, _) = Dispatch::start(fast_config(), store.clone() as std::sync::Arc<dyn SnapshotStore>).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = figures(&city, 3, 2).await?;
    assert_eq!(again, kpis);
    city.shutdown().await;
    Ok(())
}
