//! City leases on a live CQL cluster (`SCYLLA_URI`; skipped, saying why,
//! without one): takes move the epoch on and never reuse it, only the holder
//! renews or releases, and an expired lease keeps its epoch.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use dispatch_storage::ScyllaStore;
use dispatch_storage::scylladb::{LeaseState, LeaseTtl, Leases, Outcome, ScyllaConfig};

fn config() -> Result<Option<ScyllaConfig>> {
    let Ok(uri) = std::env::var("SCYLLA_URI") else {
        let _ = writeln!(std::io::stderr(), "leases: skipped: SCYLLA_URI is not set (no CQL cluster; see deploy/cassandra/cassandra.sh)");
        return Ok(None);
    };
    let base = ScyllaConfig::default().with_uri(&uri)?;
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() % 1_000_000);
    Ok(Some(ScyllaConfig { keyspace_prefix: format!("lease_{}_{run}", std::process::id()), ..base }))
}

fn held(owner: &str, epoch: u64) -> LeaseState {
    LeaseState { owner: Some(owner.into()), epoch }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_fences_by_an_epoch_that_outlives_it() -> Result<()> {
    let Some(config) = config()? else { return Ok(()) };
    let session = ScyllaStore::connect(&config).await.context("connect")?;
    let leases = Leases::open(session.clone(), &config).await.context("open")?;
    let ttl = LeaseTtl::secs(2)?;
    let city = "des-moines";

    assert_eq!(leases.read(city).await?, LeaseState { owner: None, epoch: 0 });
    assert_eq!(leases.take(city, "a", 0, ttl).await?, Outcome::Applied);
    assert_eq!(leases.read(city).await?, held("a", 1));
    // Someone else cannot take it while it is held, whatever epoch they saw.
    assert_eq!(leases.take(city, "b", 0, ttl).await?, Outcome::Refused(held("a", 1)));
    assert_eq!(leases.take(city, "b", 1, ttl).await?, Outcome::Refused(held("a", 1)));
    // Only the holder, at its epoch, renews.
    assert_eq!(leases.renew(city, "a", 1, ttl).await?, Outcome::Applied);
    assert!(matches!(leases.renew(city, "b", 1, ttl).await?, Outcome::Refused(_)));
    assert!(matches!(leases.renew(city, "a", 2, ttl).await?, Outcome::Refused(_)));

    // Not renewed, the owner column expires; the epoch does not.
    tokio::time::sleep(ttl.duration() + Duration::from_millis(600)).await;
    assert_eq!(leases.read(city).await?, LeaseState { owner: None, epoch: 1 });
    // A late renewal by the old holder finds the lease gone.
    assert!(matches!(leases.renew(city, "a", 1, ttl).await?, Outcome::Refused(LeaseState { owner: None, epoch: 1 })));
    // The next taker must name the epoch it saw, and gets the one after it.
    assert!(matches!(leases.take(city, "b", 0, ttl).await?, Outcome::Refused(_)));
    assert_eq!(leases.take(city, "b", 1, ttl).await?, Outcome::Applied);
    assert_eq!(leases.read(city).await?, held("b", 2));

    // A release is conditional too: the old holder's does nothing, the holder's frees it and keeps the epoch.
    assert!(matches!(leases.release(city, "a", 1).await?, Outcome::Refused(_)));
    assert_eq!(leases.release(city, "b", 2).await?, Outcome::Applied);
    assert_eq!(leases.read(city).await?, LeaseState { owner: None, epoch: 2 });
    assert_eq!(leases.take(city, "a", 2, ttl).await?, Outcome::Applied);
    assert_eq!(leases.read(city).await?, held("a", 3));

    // Other cities are apart.
    assert_eq!(leases.take("omaha", "b", 0, ttl).await?, Outcome::Applied);
    assert_eq!(leases.read("omaha").await?, held("b", 1));

    let keyspace = config.keyspace_for("cluster")?;
    session.query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ()).await?;
    Ok(())
}
