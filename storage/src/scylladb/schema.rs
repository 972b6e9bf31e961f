//! A keyspace as it opens: the migrations not yet applied, run in order
//! and recorded, then every statement prepared once, idempotent, at its
//! consistency level.

use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use super::{Cql, Level, Replication, ScyllaConfig, ScyllaStore, backend};
use crate::error::{Result, StorageError};

/// The prepared statements of one keyspace.
pub(super) struct Prepared {
    pub(super) put: PreparedStatement,
    pub(super) put_position: PreparedStatement,
    pub(super) put_ttl: PreparedStatement,
    pub(super) get: PreparedStatement,
    pub(super) delete: PreparedStatement,
    pub(super) scan_shard: PreparedStatement,
    pub(super) append: PreparedStatement,
    pub(super) index_job: PreparedStatement,
    pub(super) last_seq: PreparedStatement,
    pub(super) read_events: PreparedStatement,
    pub(super) read_events_limit: PreparedStatement,
    pub(super) scan_jobs_shard: PreparedStatement,
    pub(super) ping: PreparedStatement,
}

pub(super) async fn migrate(session: &Session, cql: &Cql, replication: &Replication) -> Result<()> {
    let run = |text: String| async move {
        session.query_unpaged(text.as_str(), ()).await.map_err(|e| StorageError::Backend(format!("migration `{text}`: {e}")))
    };
    run(cql.create_keyspace(replication)).await?;
    run(cql.create_migrations_table()).await?;
    let applied = session.query_unpaged(cql.applied(), ()).await.map_err(|e| backend("migrations")(&e))?;
    let applied: Vec<(i32,)> = ScyllaStore::rows(applied)?;
    let record = session.prepare(cql.record()).await.map_err(|e| backend("prepare")(&e))?;
    for m in cql.migrations() {
        if applied.iter().any(|(v,)| *v == m.version) {
            continue;
        }
        for statement in m.statements {
            match run(statement.clone()).await {
                Ok(_) => {}
                // A column a crashed earlier run already added (CQL has no `ADD IF NOT EXISTS` everywhere).
                Err(e) if is_column_addition(&statement) && is_already_there(&e) => {}
                Err(e) => return Err(e),
            }
        }
        session.execute_unpaged(&record, (m.version, m.description)).await.map_err(|e| backend("migrations")(&e))?;
        tracing::info!(version = m.version, description = m.description, "ScyllaDB migration applied");
    }
    session.await_schema_agreement().await.map_err(|e| backend("schema agreement")(&e))?;
    Ok(())
}

/// Whether `statement` adds a column.
pub(super) fn is_column_addition(statement: &str) -> bool {
    statement.starts_with("ALTER TABLE") && statement.contains(" ADD ")
}

/// Whether a schema change failed because what it adds exists already.
fn is_already_there(e: &StorageError) -> bool {
    let text = e.to_string();
    text.contains("conflicts with an existing column") || text.contains("already exists")
}

pub(super) async fn prepare(session: &Session, cql: &Cql, config: &ScyllaConfig) -> Result<Prepared> {
    let prep = |text: String, level: Level| async move {
        let mut statement = session.prepare(text.as_str()).await.map_err(|e| StorageError::Backend(format!("prepare `{text}`: {e}")))?;
        statement.set_is_idempotent(true);
        statement.set_consistency(level.consistency());
        Ok::<_, StorageError>(statement)
    };
    let (life, pos) = (config.lifecycle_consistency, config.position_consistency);
    Ok(Prepared {
        put: prep(cql.put(), life).await?,
        put_position: prep(cql.put(), pos).await?,
        put_ttl: prep(cql.put_ttl(), life).await?,
        get: prep(cql.get(), life).await?,
        delete: prep(cql.delete(), life).await?,
        scan_shard: prep(cql.scan_shard(), life).await?,
        append: prep(cql.append(), life).await?,
        index_job: prep(cql.index_job(), life).await?,
        last_seq: prep(cql.last_seq(), life).await?,
        read_events: prep(cql.read_events(), life).await?,
        read_events_limit: prep(cql.read_events_limit(), life).await?,
        scan_jobs_shard: prep(cql.scan_jobs_shard(), life).await?,
        ping: prep("SELECT release_version FROM system.local".into(), Level::One).await?,
    })
}
