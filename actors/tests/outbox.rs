//! The city's outbox: every logged event again, with the log entry, at
//! increasing positions per job; pruned once every cursor has passed it;
//! positions never reused after a restart, even when everything was pruned.

mod common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use common::*;
use dispatch_actors::engine::Trade;
use dispatch_actors::storage::{Kind, MemoryStore, SnapshotStore};
use dispatch_actors::{CursorRecord, Dispatch, OutboxEvent};

#[tokio::test]
async fn every_logged_event_is_in_the_outbox_in_order_and_pruned_behind_the_cursors() -> Result<()> {
    let store = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start(fast_config(), store.clone() as Arc<dyn SnapshotStore>).await?;
    let mut jobs = Vec::new();
    for _ in 0..3 {
        jobs.push(city.post_job(request(downtown(), Trade::Plumbing)).await?.0);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = *city.outbox_settled().borrow();
    let records = city.outbox_after(0, 1_000).await?;
    assert_eq!(records.last().map(|r| r.position), Some(settled), "everything logged is settled once answered");
    // The outbox holds each job's log, entry for entry, in order.
    for &job in &jobs {
        let outboxed: Vec<_> = records.iter().filter(|r| r.job == job).map(OutboxEvent::of).collect::<Result<_, _>>()?;
        // Read after the outbox: the log may have moved on since, never fallen behind.
        let logged = city.events_since(job, 0).await?;
        assert!(!outboxed.is_empty() && outboxed.len() <= logged.len(), "job {job}");
        assert_eq!(outboxed.iter().map(|o| o.event.clone()).collect::<Vec<_>>(), logged[..outboxed.len()], "job {job}");
        assert!(outboxed.windows(2).all(|w| w[0].position < w[1].position), "a job's later events take later positions");
    }

    // An endpoint's cursor halfway: the keeper prunes up to it and no further.
    let half = records[records.len() / 2].position;
    city.set_webhook_cursor(1, &CursorRecord { endpoint: "crm".into(), position: half }).await?;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let kept = city.outbox_after(0, 1_000).await?;
    assert_eq!(kept.first().map(|r| r.position), records.iter().map(|r| r.position).find(|&p| p > half), "pruned through the cursor");
    assert_eq!(kept.last().map(|r| r.position), Some(settled));

    // With no endpoint left, everything settled goes; a restart still continues after it.
    city.delete_webhook_cursor(1).await?;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(store.scan(Kind::Outbox, Some(0), 10).await?.is_empty(), "nothing kept for no one");
    let last = *city.outbox_settled().borrow();
    city.shutdown().await;
    let (city, _) = Dispatch::start(fast_config(), store.clone() as Arc<dyn SnapshotStore>).await?;
    city.post_job(request(downtown(), Trade::Plumbing)).await?;
    let fresh = city.outbox_after(last, 10).await?;
    assert!(!fresh.is_empty() && fresh[0].position == last + 1, "positions continue: {:?}", fresh.first().map(|r| r.position));
    city.shutdown().await;
    Ok(())
}
