//! GPS through contractor actors into cell actors.

mod common;

use anyhow::Result;
use common::*;
use dispatch_actors::engine::{ContractorId, Timestamp, Trade};
use dispatch_actors::{ActorError, GpsFix, Presence};

#[tokio::test]
async fn fixes_move_contractors_between_cells_and_bad_ones_are_not_trusted() -> Result<()> {
    let (city, _) = memory_city(fast_config()).await?;
    let start = online(&city, 1, Trade::Plumbing, 0.0).await?;
    city.gps(ContractorId(1), fix(start, 1_000, Some(10.0)))?;
    eventually(|| async { city.cell_info(start).await.is_some_and(|c| c.contractors == 1 && c.load.supply == 1) }).await?;

    // 3 km east in 5 minutes (10 m/s): a new cell; the old one is left empty.
    let east = start.destination(90.0, 3_000.0);
    city.gps(ContractorId(1), fix(east, 301_000, Some(10.0)))?;
    eventually(|| async { city.cell_info(east).await.is_some_and(|c| c.contractors == 1) }).await?;
    eventually(|| async { city.cell_info(start).await.is_none_or(|c| c.contractors == 0) }).await?;

    // An older fix is ignored.
    city.gps(ContractorId(1), fix(start, 200_000, None))?;
    // A jump of 100 km in one second is flagged and not trusted.
    city.gps(ContractorId(1), fix(east.destination(0.0, 100_000.0), 302_000, None))?;
    // (The contractor's mailbox is ordered: this read sees both fixes handled.)
    let snap = city.contractor(ContractorId(1)).await?;
    assert_eq!(snap.position, Some(east), "neither the stale fix nor the jump was applied");
    assert_eq!(snap.last_fix, Some(Timestamp(301_000)));
    // A plausible fix afterwards is accepted.
    let further = east.destination(90.0, 100.0);
    city.gps(ContractorId(1), fix(further, 311_000, Some(10.0)))?;
    eventually(|| async { city.contractor(ContractorId(1)).await.is_ok_and(|c| c.position == Some(further)) }).await?;
    let snap = city.contractor(ContractorId(1)).await?;
    assert_eq!(snap.last_fix, Some(Timestamp(311_000)));

    // Reported speeds teach the cell its speed.
    for i in 0..20 {
        city.gps(ContractorId(1), fix(further.destination(0.0, i as f64), 320_000 + i * 1_000, Some(5.0)))?;
    }
    eventually(|| async { city.cell_info(further).await.is_some_and(|c| c.speed_mps < 8.0) }).await?;

    // Going offline takes the contractor out of the index.
    city.set_presence(ContractorId(1), Presence::Offline, None).await?;
    eventually(|| async { city.cell_info(further).await.is_none_or(|c| c.contractors == 0) }).await?;
    Ok(())
}

#[test]
fn malformed_fixes_are_refused_at_construction() {
    let at = downtown();
    assert!(matches!(GpsFix::new(at, Some(360.0), None, None, Timestamp(1)), Err(ActorError::Engine(_))));
    assert!(GpsFix::new(at, Some(f64::NAN), None, None, Timestamp(1)).is_err());
    assert!(GpsFix::new(at, None, Some(-1.0), None, Timestamp(1)).is_err());
    assert!(GpsFix::new(at, None, None, Some(f64::INFINITY), Timestamp(1)).is_err());
    assert!(GpsFix::new(at, Some(359.9), Some(0.0), Some(3.0), Timestamp(1)).is_ok());
}

/// The contractor's stored snapshot, straight from the store.
async fn stored(store: &dispatch_actors::storage::MemoryStore, id: u64) -> Result<dispatch_actors::ContractorSnapshot> {
    use dispatch_actors::storage::{Kind, SnapshotStore, codec};
    let blob = store.get(Kind::Contractor, id).await?.ok_or_else(|| anyhow::anyhow!("contractor {id} not stored"))?;
    Ok(codec::decode(&blob)?)
}

#[tokio::test(start_paused = true)]
async fn a_position_is_written_only_after_a_real_move_and_never_over_a_newer_status() -> Result<()> {
    use dispatch_actors::engine::ContractorStatus;
    use std::time::Duration;
    let config = fast_config();
    let (every, min_move) = (config.position_persist_interval, config.position_persist_min_move_m);
    let (city, store) = memory_city(config).await?;
    let start = online(&city, 1, Trade::Hvac, 0.0).await?;
    let settle = || tokio::time::sleep(Duration::from_millis(1_100)); // one writer interval

    // Going online stored the position; a move right after is not due yet.
    let a = start.destination(0.0, min_move * 2.0);
    city.gps(ContractorId(1), fix(a, 10_000, None))?;
    city.contractor(ContractorId(1)).await?; // the fix is handled
    settle().await;
    assert_eq!(stored(&store, 1).await?.position, Some(start), "not due within {every:?} of the last write");

    // Once the interval has passed, a fix that moved far enough is written within one writer interval.
    tokio::time::sleep(every).await;
    let b = a.destination(0.0, min_move * 2.0);
    city.gps(ContractorId(1), fix(b, 20_000, None))?;
    city.contractor(ContractorId(1)).await?;
    settle().await;
    assert_eq!(stored(&store, 1).await?.position, Some(b), "due: written");

    // Standing still (or nearly) writes nothing however long it lasts.
    tokio::time::sleep(every * 2).await;
    let c = b.destination(0.0, min_move / 5.0);
    city.gps(ContractorId(1), fix(c, 90_000, None))?;
    city.contractor(ContractorId(1)).await?;
    settle().await;
    assert_eq!(stored(&store, 1).await?.position, Some(b), "a move under {min_move} m is not written");

    // A fix, then at once a lifecycle change: the lifecycle write carries the
    // newest position, and no older GPS blob lands after it.
    tokio::time::sleep(every).await;
    let d = c.destination(0.0, min_move * 2.0);
    city.gps(ContractorId(1), fix(d, 200_000, None))?;
    city.set_presence(ContractorId(1), Presence::OnBreak, None).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let snap = stored(&store, 1).await?;
    assert_eq!(snap.status, ContractorStatus::OnBreak);
    assert_eq!(snap.position, Some(d));
    city.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn nearest_asks_the_cells_ring_by_ring_and_agrees_with_sorting_by_distance() -> Result<()> {
    use dispatch_actors::engine::{Filter, TradeSet};
    let (city, _) = memory_city(fast_config()).await?;
    // 40 contractors on a spiral out to ~12 km: many cells, several rings.
    let mut placed = Vec::new();
    for id in 1..=40u64 {
        let trade = if id % 3 == 0 { Trade::Hvac } else { Trade::Plumbing };
        let at = downtown().destination((id * 47 % 360) as f64, id as f64 * 300.0);
        city.register_contractor(profile(id, trade)).await?;
        city.set_presence(ContractorId(id), Presence::Available, Some(at)).await?;
        placed.push((id, trade, at));
    }
    let query = downtown().destination(200.0, 1_500.0);
    let filter = Filter { trades: TradeSet::single(Trade::Plumbing), ..Filter::default() };
    let mut want: Vec<(f64, u64)> =
        placed.iter().filter(|(_, t, _)| *t == Trade::Plumbing).map(|(id, _, at)| (query.distance_m(*at), *id)).collect();
    want.sort_by(|a, b| a.0.total_cmp(&b.0));
    // set_presence answered once the contractor actor had it; the cells hear of it just after.
    eventually(|| async { city.nearest(query, 40, &Filter::default()).await.len() == 40 }).await?;
    let got: Vec<u64> = city.nearest(query, 10, &filter).await.iter().map(|n| n.contractor.id.0).collect();
    assert_eq!(got, want.iter().take(10).map(|w| w.1).collect::<Vec<_>>());
    assert!(city.nearest(query, 0, &filter).await.is_empty());
    Ok(())
}

/// The overload policy: a contractor behind on its fixes gets the newest
/// one, every older waiting one is shed, and its mailbox never holds more
/// than one fix per link, so whatever else it is asked waits behind one fix
/// at most.
#[tokio::test]
async fn a_contractor_behind_on_its_fixes_gets_only_the_newest_and_sheds_the_rest() -> Result<()> {
    let (city, _) = memory_city(fast_config()).await?;
    let start = online(&city, 1, Trade::Plumbing, 0.0).await?;
    let link = city.link(ContractorId(1))?;
    let handled = city.pipeline_stats().gps_handled;
    // This test's runtime has one thread: the actor cannot run until we yield.
    let newest = |i: i64| fix(start.destination(0.0, i as f64), 1_000 + i * 1_000, None);
    let shed = (1..=100).filter(|i| link.gps(newest(*i)).unwrap()).count();
    assert_eq!(shed, 99, "the first fix is on its way; each later one replaces the one waiting");
    let snap = city.contractor(ContractorId(1)).await?; // behind the one GPS message in the mailbox
    assert_eq!(snap.last_fix, Some(newest(100).ts), "the newest fix won");
    assert_eq!(city.pipeline_stats().gps_handled, handled + 1, "one fix handled, not a hundred");
    // Caught up: the next fix is on its way at once, nothing shed.
    assert!(!link.gps(newest(101))?);
    eventually(|| async { city.contractor(ContractorId(1)).await.is_ok_and(|c| c.last_fix == Some(newest(101).ts)) }).await?;
    Ok(())
}
