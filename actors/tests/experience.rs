//! Self-declared years of experience are not taken on trust: matching
//! counts at most `UNVERIFIED_YEARS` of them until an operator verifies the
//! contractor's licence for the trade, then all of them.

mod common;

use anyhow::Result;
use common::*;
use dispatch_actors::engine::{ContractorId, Timestamp, Trade, TradeExperience};
use dispatch_actors::job::{UNVERIFIED_YEARS, scored_years};
use dispatch_actors::{Actor, Asker, Presence, VerifiedTrade};

#[test]
fn declared_years_count_up_to_the_cap_until_verified() {
    assert_eq!(scored_years(30, false), UNVERIFIED_YEARS);
    assert_eq!(scored_years(1, false), 1);
    assert_eq!(scored_years(30, true), 30);
}

#[tokio::test]
async fn thirty_declared_years_outrank_two_only_once_verified() -> Result<()> {
    let (city, _) = memory_city(fast_config()).await?;
    let mut events = city.subscribe();
    let at = downtown().destination(90.0, 500.0);
    for (id, years) in [(1, 2), (2, 30)] {
        let mut p = profile(id, Trade::Plumbing);
        p.trades = vec![TradeExperience { trade: Trade::Plumbing, years }];
        city.register_contractor(p).await?;
        city.set_presence(ContractorId(id), Presence::Available, Some(at)).await?;
    }
    // Unverified, 30 declared years count as 2: a tie, and the lower id goes first.
    let (first, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    let offer = wait_for(&mut events, |e| e.job == first && offered_to(e).is_some()).await?;
    assert_eq!(offered_to(&offer), Some(ContractorId(1)));
    city.cancel(first, Asker::Dispatcher, "test").await?;

    let verified = VerifiedTrade { trade: Trade::Plumbing, licence: "IA-PL-1".into(), expires: Timestamp(i64::MAX / 2) };
    city.verify_trade(Actor::Admin(1), ContractorId(2), verified).await?;
    let (second, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    let offer = wait_for(&mut events, |e| e.job == second && offered_to(e).is_some()).await?;
    assert_eq!(offered_to(&offer), Some(ContractorId(2)), "verified, all 30 years count");
    city.shutdown().await;
    Ok(())
}
