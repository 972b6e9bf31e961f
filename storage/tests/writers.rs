//! Writer roles on a live CQL cluster (`SCYLLA_URI` with a login; skipped,
//! saying why, without one): once a city's next owner has retired the last
//! owner's role and waited out the permission caches, the store refuses that
//! owner's writes however late they arrive — the write a paused process had
//! already handed to the driver.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use dispatch_storage::scylladb::{ScyllaConfig, WriterRoles};
use dispatch_storage::{Fence, Kind, ScyllaStore, SnapshotStore};
use tokio::time::Instant;

const CITY: &str = "roles";

fn config() -> Result<Option<ScyllaConfig>> {
    let skip = |why: &str| {
        let _ = writeln!(std::io::stderr(), "writer roles: skipped: {why} (see deploy/cassandra/cassandra.sh)");
        Ok(None)
    };
    let Ok(uri) = std::env::var("SCYLLA_URI") else { return skip("SCYLLA_URI is not set") };
    let base = ScyllaConfig::default().with_uri(&uri)?;
    if base.user.is_none() {
        return skip("SCYLLA_URI has no user:password@ (roles need a store that checks logins)");
    }
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() % 1_000_000);
    Ok(Some(ScyllaConfig { keyspace_prefix: format!("writers_{}_{run}", std::process::id()), ..base }))
}

fn open_fence() -> Arc<Fence> {
    Fence::new(CITY, Instant::now() + Duration::from_secs(600))
}

/// `city`'s store as `epoch`'s writer.
async fn writer_store(roles: &WriterRoles, config: &ScyllaConfig, epoch: u64) -> Result<(ScyllaStore, dispatch_storage::scylladb::Writer)> {
    let writer = roles.admit(CITY, epoch, &open_fence()).await.context("admit")?;
    let session = roles.connect(&writer).await.context("log in as the writer")?;
    Ok((ScyllaStore::open_migrated(session, config, CITY, epoch).await.context("open as the writer")?, writer))
}

fn refused(result: Result<(), dispatch_storage::StorageError>, what: &str) -> Result<()> {
    let Err(err) = result else { anyhow::bail!("{what}: the store took it") };
    let text = err.to_string();
    anyhow::ensure!(text.contains("Unauthorized") || text.contains("permission"), "{what}: {text}");
    anyhow::ensure!(!err.is_transient(), "{what}: a refusal is not retried: {text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_writer_is_refused_by_the_store() -> Result<()> {
    let Some(config) = config()? else { return Ok(()) };
    let admin = ScyllaStore::connect(&config).await.context("connect")?;
    let roles = WriterRoles::open(Arc::clone(&admin), &config).await.context("the store checks logins and permissions")?;
    assert!(roles.settle_time() >= Duration::from_millis(500), "the server's cache validity and the margin: {:?}", roles.settle_time());
    ScyllaStore::migrate(&admin, &config, CITY).await?;
    let keyspace = config.keyspace_for(CITY)?;

    // Epoch 1 writes its city, and nothing else: no schema, no other keyspace.
    let (first, first_writer) = writer_store(&roles, &config, 1).await?;
    first.put(Kind::Job, 1, b"first".to_vec()).await?;
    let outsider = roles.connect(&first_writer).await?;
    assert!(outsider.query_unpaged(format!("CREATE TABLE {keyspace}.other (k int PRIMARY KEY)"), ()).await.is_err(), "no schema changes");
    assert!(outsider.query_unpaged(format!("DROP KEYSPACE {keyspace}"), ()).await.is_err(), "no dropping the city");

    // A retire sends nothing once its own owner's fence has closed.
    let closed = open_fence();
    closed.revoke();
    let err = roles.retire(CITY, 2, &closed).await.expect_err("fenced");
    assert!(err.to_string().contains("fenced"), "{err}");
    first.put(Kind::Job, 1, b"first, again".to_vec()).await.context("epoch 1 still writes")?;

    // Epoch 2 takes the city over: epoch 1's role is dropped, the caches waited out.
    let retired = roles.retire(CITY, 2, &open_fence()).await?;
    assert_eq!(retired, std::slice::from_ref(&first_writer.role));
    let settled = Instant::now() + roles.settle_time();
    let (second, second_writer) = writer_store(&roles, &config, 2).await?;
    tokio::time::sleep_until(settled).await;

    // Whatever epoch 1 still sends is refused: a new row, an overwrite, a delete, a log entry.
    refused(first.put(Kind::Job, 2, b"late".to_vec()).await, "a late new row")?;
    refused(first.put(Kind::Job, 1, b"late overwrite".to_vec()).await, "a late overwrite")?;
    refused(first.delete(Kind::Job, 1).await, "a late delete")?;
    refused(first.append_event(1, dispatch_storage::LogEntry::new(1, 1, b"late".to_vec())).await, "a late log entry")?;
    assert_eq!(second.get(Kind::Job, 1).await?.as_deref(), Some(&b"first, again"[..]), "what epoch 1 had acknowledged stays");
    assert_eq!(second.get(Kind::Job, 2).await?, None);
    assert!(second.read_events(1, 0).await?.is_empty());

    // Retiring is by epoch: epoch 2's own role is not touched by a retire of what came before it.
    assert!(roles.retire(CITY, 2, &open_fence()).await?.is_empty());
    second.put(Kind::Job, 2, b"second".to_vec()).await?;

    // A writer dismissed at a graceful hand-off writes nothing more either.
    roles.dismiss(&second_writer).await?;
    tokio::time::sleep(roles.settle_time()).await;
    refused(second.put(Kind::Job, 3, b"after the hand-off".to_vec()).await, "a write after the hand-off")?;

    admin.query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ()).await?;
    Ok(())
}

#[tokio::test]
async fn writer_roles_need_a_login() -> Result<()> {
    let Some(config) = config()? else { return Ok(()) };
    let admin = ScyllaStore::connect(&config).await?;
    let anonymous = ScyllaConfig { user: None, password: None, ..config };
    let err = WriterRoles::open(admin, &anonymous).await.expect_err("no login");
    assert!(err.to_string().contains("PasswordAuthenticator"), "{err}");
    Ok(())
}
