//! The contractor directory lists every registered contractor — one who
//! never came online included, whom the live map never had — filtered and
//! a page at a time, and is filled once from the snapshots of a store that
//! predates it.

mod common;

use std::sync::Arc;

use anyhow::Result;
use common::*;
use dispatch_actors::engine::{ContractorId, StatusKind, Trade};
use dispatch_actors::storage::{Kind, MemoryStore, SnapshotStore};
use dispatch_actors::{Dispatch, Presence};

#[tokio::test]
async fn every_registered_contractor_is_listed_with_their_latest_status() -> Result<()> {
    let store = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start(fast_config(), store.clone() as Arc<dyn SnapshotStore>).await?;
    online(&city, 1, Trade::Plumbing, 300.0).await?;
    city.register_contractor(profile(2, Trade::Hvac)).await?;
    online(&city, 3, Trade::Plumbing, 900.0).await?;
    city.set_presence(ContractorId(3), Presence::OnBreak, None).await?;

    let (all, end) = city.contractor_directory(None, 10, |_| true).await?;
    let listed: Vec<_> = all.iter().map(|r| (r.contractor.0, r.status)).collect();
    assert_eq!(listed, [(1, StatusKind::Available), (2, StatusKind::Offline), (3, StatusKind::OnBreak)]);
    assert_eq!(end, None);
    let (plumbers, next) = city.contractor_directory(None, 1, |r| r.trades.contains(Trade::Plumbing)).await?;
    assert_eq!((plumbers.iter().map(|r| r.contractor.0).collect::<Vec<_>>(), next), (vec![1], Some(1)));
    let (rest, end) = city.contractor_directory(next, 10, |r| r.trades.contains(Trade::Plumbing)).await?;
    assert_eq!((rest.iter().map(|r| r.contractor.0).collect::<Vec<_>>(), end), (vec![3], None));
    city.shutdown().await;

    // A store from before the directory: filled from the snapshots at start.
    let rows: Vec<u64> = store.scan(Kind::ContractorIndex, None, 10).await?.into_iter().map(|(id, _)| id).collect();
    for id in rows {
        store.delete(Kind::ContractorIndex, id).await?;
    }
    let (city, _) = Dispatch::start(fast_config(), store.clone() as Arc<dyn SnapshotStore>).await?;
    let (again, _) = city.contractor_directory(None, 10, |_| true).await?;
    assert_eq!(again.iter().map(|r| r.contractor.0).collect::<Vec<_>>(), [1, 2, 3]);
    city.shutdown().await;
    Ok(())
}
