//! The city's audit trail and blocked customers: entries in order, written
//! before the action, a page at a time; positions never reused after a
//! restart, even one whose head was not written; blocks kept across a restart.

mod common;

use std::sync::Arc;

use anyhow::Result;
use common::*;
use dispatch_actors::engine::{CustomerId, JobId, Trade};
use dispatch_actors::storage::{Kind, MemoryStore, SnapshotStore, codec};
use dispatch_actors::{Actor, ActorError, AuditAction, AuditHead, Dispatch};

#[tokio::test]
async fn the_trail_is_in_order_paged_and_never_reuses_a_position() -> Result<()> {
    let store = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start(fast_config(), store.clone() as Arc<dyn SnapshotStore>).await?;
    let ops = Actor::Dispatcher(3);
    let first = city.audit(ops, AuditAction::Cancel { job: JobId(9) }, Some("duplicate".into())).await?;
    city.audit_refused(ops, first, "job 9 not found").await;
    let third = city.audit(Actor::Admin(1), AuditAction::BlockCustomer { customer: CustomerId(5) }, None).await?;
    assert_eq!((first, third), (1, 3));
    let all = city.audit_trail(None, 100).await?;
    assert_eq!(all.iter().map(|r| r.position).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(all[1].action, AuditAction::Refused { position: 1, error: "job 9 not found".into() });
    assert_eq!(all[0].reason.as_deref(), Some("duplicate"));
    let page = city.audit_trail(Some(1), 1).await?;
    assert_eq!(page.iter().map(|r| r.position).collect::<Vec<_>>(), [2], "after the cursor, at most the limit");
    city.crash();

    // A crash after an entry but before its head: the restart steps past it.
    let orphan = dispatch_actors::AuditRecord { position: 4, ..all[2].clone() };
    store.put(Kind::Audit, 4, codec::encode(&orphan)?).await?;
    assert_eq!(codec::decode::<AuditHead>(&store.get(Kind::Audit, 0).await?.expect("head"))?.last, 3);
    let (city, _) = Dispatch::start(fast_config(), store.clone() as Arc<dyn SnapshotStore>).await?;
    let next = city.audit(ops, AuditAction::Cancel { job: JobId(10) }, None).await?;
    assert_eq!(next, 5, "position 4 is taken, not written over");
    assert_eq!(city.audit_trail(None, 100).await?.len(), 5);
    city.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_blocked_customer_cannot_post_until_unblocked_and_a_restart_keeps_the_block() -> Result<()> {
    let store = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start(fast_config(), store.clone() as Arc<dyn SnapshotStore>).await?;
    let block = city.block_customer(Actor::Admin(1), CustomerId(1), "chargebacks on three jobs".into()).await?;
    assert_eq!(city.blocked(CustomerId(1)), Some(block));
    let refused = city.post_job(request(downtown(), Trade::Plumbing)).await;
    assert!(
        matches!(&refused, Err(ActorError::CustomerBlocked(c, why)) if *c == CustomerId(1) && why.contains("chargebacks")),
        "{refused:?}"
    );
    city.crash();

    let (city, _) = Dispatch::start(fast_config(), store.clone() as Arc<dyn SnapshotStore>).await?;
    assert!(city.blocked(CustomerId(1)).is_some(), "kept across a restart");
    assert!(city.post_job(request(downtown(), Trade::Plumbing)).await.is_err());
    assert!(city.unblock_customer(Actor::Admin(1), CustomerId(1), "settled".into()).await?);
    assert!(!city.unblock_customer(Actor::Admin(1), CustomerId(1), "again".into()).await?, "not blocked any more");
    city.post_job(request(downtown(), Trade::Plumbing)).await?;
    let actions: Vec<AuditAction> = city.audit_trail(None, 100).await?.into_iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::BlockCustomer { customer: CustomerId(1) },
            AuditAction::UnblockCustomer { customer: CustomerId(1) },
            AuditAction::UnblockCustomer { customer: CustomerId(1) }
        ]
    );
    city.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_suspended_contractor_loses_their_offer_gets_no_more_and_is_offered_again_once_reinstated() -> Result<()> {
    use dispatch_actors::engine::ContractorId;
    let store = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start(fast_config(), store.clone() as Arc<dyn SnapshotStore>).await?;
    let mut events = city.subscribe();
    online(&city, 1, Trade::Plumbing, 100.0).await?;
    online(&city, 2, Trade::Plumbing, 900.0).await?;
    let (job, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    wait_for(&mut events, |e| e.job == job && offered_to(e) == Some(ContractorId(1))).await?;

    // Suspended while holding the offer: it goes to the next contractor.
    city.suspend_contractor(Actor::Admin(1), ContractorId(1), "licence lapsed".into()).await?;
    wait_for(&mut events, |e| e.job == job && offered_to(e) == Some(ContractorId(2))).await?;
    assert!(city.assign(job, ContractorId(1)).await.is_err(), "nor assigned by hand");
    city.decline(job, ContractorId(2)).await?;
    // The nearest is suspended: a second job is never offered to them.
    let (second, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    wait_for(&mut events, |e| e.job == second && offered_to(e) == Some(ContractorId(2))).await?;
    city.crash();

    // Kept across a restart; reinstated, they are offered jobs again.
    let (city, _) = Dispatch::start(fast_config(), store.clone() as Arc<dyn SnapshotStore>).await?;
    assert_eq!(city.suspended(ContractorId(1)).map(|s| s.reason), Some("licence lapsed".into()));
    let mut events = city.subscribe();
    assert!(city.reinstate_contractor(Actor::Admin(1), ContractorId(1), "licence renewed".into()).await?);
    let (third, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    wait_for(&mut events, |e| e.job == third && offered_to(e) == Some(ContractorId(1))).await?;
    let actions: Vec<AuditAction> = city.audit_trail(None, 100).await?.into_iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        [AuditAction::SuspendContractor { contractor: ContractorId(1) }, AuditAction::ReinstateContractor { contractor: ContractorId(1) }]
    );
    city.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_gap_left_by_a_failed_write_does_not_lead_a_restart_to_write_over_later_entries() -> Result<()> {
    let store = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start(fast_config(), store.clone() as Arc<dyn SnapshotStore>).await?;
    let ops = Actor::Dispatcher(3);
    for job in 1..=3 {
        city.audit(ops, AuditAction::Cancel { job: JobId(job) }, None).await?;
    }
    city.crash();
    // Position 2's write failed (gone) and the head points before it; 3 stands.
    store.delete(Kind::Audit, 2).await?;
    store.put(Kind::Audit, 0, codec::encode(&AuditHead { last: 1 })?).await?;
    let (city, _) = Dispatch::start(fast_config(), store.clone() as Arc<dyn SnapshotStore>).await?;
    assert_eq!(city.audit(ops, AuditAction::Cancel { job: JobId(4) }, None).await?, 4, "past the gap and entry 3");
    let positions: Vec<u64> = city.audit_trail(None, 100).await?.iter().map(|r| r.position).collect();
    assert_eq!(positions, [1, 3, 4]);
    city.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_licensed_trade_goes_only_to_a_contractor_with_a_verified_valid_licence() -> Result<()> {
    use dispatch_actors::engine::{ContractorId, Timestamp, TradeSet};
    use dispatch_actors::{DispatchConfig, VerifiedTrade};
    let licensed = DispatchConfig { licensed_trades: TradeSet::single(Trade::Plumbing), ..fast_config() };
    let (city, _) = Dispatch::start(licensed, Arc::new(MemoryStore::new()) as Arc<dyn SnapshotStore>).await?;
    let mut events = city.subscribe();
    online(&city, 1, Trade::Plumbing, 100.0).await?; // nearest, licence lapsed
    online(&city, 2, Trade::Plumbing, 900.0).await?; // licensed
    let now = city.clock().now();
    let lapsed = VerifiedTrade { trade: Trade::Plumbing, licence: "PL-1".into(), expires: Timestamp(now.0 - 1) };
    city.verify_trade(Actor::Admin(1), ContractorId(1), lapsed).await?;
    let valid = VerifiedTrade { trade: Trade::Plumbing, licence: "PL-2".into(), expires: Timestamp(now.0 + 86_400_000) };
    let record = city.verify_trade(Actor::Admin(1), ContractorId(2), valid).await?;
    assert!(record.licensed(Trade::Plumbing, now) && !record.licensed(Trade::Hvac, now));

    let (job, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    wait_for(&mut events, |e| e.job == job && offered_to(e) == Some(ContractorId(2))).await?;
    assert!(city.assign(job, ContractorId(1)).await.is_err(), "nor by hand");
    // A trade that needs no licence goes to whoever declares it.
    online(&city, 3, Trade::Painting, 50.0).await?;
    let (painting, _) = city.post_job(request(downtown(), Trade::Painting)).await?;
    wait_for(&mut events, |e| e.job == painting && offered_to(e) == Some(ContractorId(3))).await?;
    let actions: Vec<AuditAction> = city.audit_trail(None, 10).await?.into_iter().map(|r| r.action).collect();
    assert_eq!(actions[0], AuditAction::VerifyTrade { contractor: ContractorId(1), trade: Trade::Plumbing });
    city.shutdown().await;
    Ok(())
}
