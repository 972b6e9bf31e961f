//! [`ScyllaStore`]: the production backend, ScyllaDB (or Cassandra) through
//! the `scylla` driver.
//!
//! One keyspace per city, created with the tables by idempotent, versioned
//! [migrations](Cql::migrations) when the store connects:
//!
//! | table | key | holds |
//! |---|---|---|
//! | `snapshots` | partition `(kind, shard)`, clustered by `id` | every actor's snapshot blob |
//! | `events` | partition `job`, clustered by `seq` | each job's event log |
//! | `event_jobs` | partition `shard`, clustered by `job` | which jobs have a log (for `scan_events`) |
//! | `schema_migrations` | `version` | the migrations applied |
//!
//! Ids are unsigned but CQL `bigint` is signed, so keys store `id ^ 2^63`
//! ([`key`]): the same order, every id representable. `shard = id % 64`
//! spreads a kind over 64 partitions; a paged [`scan`](SnapshotStore::scan)
//! asks each shard for a slice and merges them in id order
//! ([`merge_shard_pages`]).
//!
//! Every statement is prepared once and marked idempotent (appends write a
//! caller-given sequence number), runs under an in-flight limit (a
//! semaphore), with a token-aware load-balancing policy (preferring the
//! local datacenter when one is configured), a client-side timeout, and
//! [`RetryPolicy`](crate::RetryPolicy) backoff on transient errors. Lifecycle writes use
//! [`ScyllaConfig::lifecycle_consistency`] (`LOCAL_QUORUM`), coalesced GPS
//! snapshots [`ScyllaConfig::position_consistency`] (`LOCAL_ONE`); final
//! snapshots of finished jobs are written with a TTL. Many snapshots are
//! written as unlogged batches, one per partition.
//!
//! ## ScyllaDB and Cassandra
//! Tested in every CI run against Apache Cassandra 5.0 (`deploy/cassandra/`;
//! ScyllaDB cannot be installed on the build machines). What the backend
//! relies on is common CQL: prepared statements, `IF NOT EXISTS` DDL,
//! unlogged batches, `USING TTL`, paging, tunable consistency. It uses no
//! lightweight transactions for data (appends are idempotent at a caller-given
//! sequence number; only the city leases of a cluster use them, `lease.rs`) and no counters. Where the two servers differ:
//! - **Shard-aware routing**: on ScyllaDB the driver also routes each
//!   statement to the owning CPU shard (port 19042); Cassandra has no shards,
//!   and the driver falls back to token-aware routing alone.
//! - **Tablets**: new ScyllaDB keyspaces may use tablets instead of vnodes;
//!   the schema needs neither, and token-aware routing follows both.
//! - **Schema changes**: Cassandra 5.0 has no transactional metadata, so
//!   concurrent `CREATE TABLE IF NOT EXISTS` from several processes can
//!   create conflicting table ids; the migrations run from one process per
//!   keyspace, and tests use a keyspace each.
//!
//! | module | what lives there |
//! |---|---|
//! | `config` | [`ScyllaConfig`], [`Replication`], [`Level`] |
//! | `cql` | [`Cql`]: the schema's [`Migration`]s and every statement's text |
//! | `driver_metrics` | the driver's own counters (retries, timeouts, speculative attempts) exported to Prometheus |
//! | `rows` | ids to CQL keys and shards, rows to snapshots and log entries, shard pages merged in id order; which driver errors are transient |
//! | `schema` | the migrations run and the statements prepared when a keyspace opens |
//! | `lease` | [`Leases`]: each city's owner as a lease with a fencing epoch, by lightweight transactions |
//! | `writers` | [`WriterRoles`]: each owner epoch writes as its own CQL role, dropped by the next owner, so the store refuses a stale owner's late writes |
//! | this file | [`ScyllaStore`]: the session, prepared statements, the trait's methods |

mod config;
mod cql;
mod driver_metrics;
mod lease;
mod rows;
mod schema;
mod writers;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::retry::DefaultRetryPolicy;
use scylla::policies::speculative_execution::SimpleSpeculativeExecutionPolicy;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use tokio::sync::Semaphore;

use crate::error::{Result, StorageError};
use crate::store::{Kind, LogEntry, SnapshotPut, SnapshotStore};

pub use config::{Level, Replication, ScyllaConfig};
pub use cql::{Cql, Migration};
pub use lease::{LeaseState, LeaseTtl, Leases, Outcome};
use rows::{backend, per_shard, start_key};
pub use rows::{event_row, id_of, is_transient, key, merge_shard_pages, shard, snapshot_row, storage_error};
use schema::{Prepared, migrate, prepare};
pub use writers::{MARGIN as SETTLE_MARGIN, Writer, WriterRoles, epoch_of, role_name, setting_ms};

/// The driver's session: one per process, shared by every city's store.
pub use scylla::client::session::Session as ScyllaSession;

/// Partitions per snapshot kind (and of the job index).
pub const SHARDS: u64 = 64;

/// Rows one unlogged batch carries at most.
const MAX_BATCH_ROWS: usize = 50;

/// A row of `snapshots` as bound: (kind, shard, id key, blob, epoch).
type SnapshotRow = (i8, i16, i64, Vec<u8>, i64);

/// A [`SnapshotStore`] on a ScyllaDB keyspace.
pub struct ScyllaStore {
    session: Arc<Session>,
    keyspace: String,
    /// The owner epoch written with every row (0 outside a cluster).
    epoch: i64,
    /// A cluster owner's lease fence, checked again as each statement goes to
    /// the driver (after any wait for an in-flight slot, and before every retry).
    fence: Option<Arc<crate::Fence>>,
    statements: Prepared,
    in_flight: Semaphore,
    config: ScyllaConfig,
}

impl std::fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaStore").field("keyspace", &self.keyspace).field("nodes", &self.config.nodes).finish()
    }
}

impl ScyllaStore {
    /// Connects to the cluster (one session for every city).
    pub async fn connect(config: &ScyllaConfig) -> Result<Arc<Session>> {
        Self::connect_for(config, None).await
    }

    /// [`Self::connect`], the driver's counters labelled `pool` when given
    /// (a city writer's own session beside the shared one).
    pub async fn connect_for(config: &ScyllaConfig, pool: Option<&str>) -> Result<Arc<Session>> {
        config.validate()?;
        let mut policy = DefaultPolicy::builder().token_aware(true);
        if let Some(dc) = &config.local_dc {
            policy = policy.prefer_datacenter(dc.clone()).permit_dc_failover(false);
        }
        let speculation = config
            .speculation()
            .map(|after| Arc::new(SimpleSpeculativeExecutionPolicy { max_retry_count: 1, retry_interval: after }) as Arc<_>);
        let profile = ExecutionProfile::builder()
            .load_balancing_policy(policy.build())
            .consistency(config.lifecycle_consistency.consistency())
            .request_timeout(Some(Duration::from_millis(config.request_timeout_ms)))
            .retry_policy(Arc::new(DefaultRetryPolicy::new()))
            .speculative_execution_policy(speculation)
            .build()
            .into_handle();
        let mut builder = SessionBuilder::new()
            .known_nodes(&config.nodes)
            // Timestamps from this process, taken as each request starts: a
            // city's next owner writes later than its last owner issued
            // anything, so the next owner's write to a row wins whichever
            // lands first (`docs/cluster.md`, fencing).
            .timestamp_generator(Arc::new(scylla::policies::timestamp_generator::MonotonicTimestampGenerator::new()))
            .default_execution_profile_handle(profile)
            .connection_timeout(Duration::from_millis(config.request_timeout_ms.max(1_000)));
        if let (Some(user), Some(password)) = (&config.user, &config.password) {
            builder = builder.user(user, password);
        }
        let session = builder
            .build()
            .await
            .map_err(|e| StorageError::Unavailable(format!("cannot connect to ScyllaDB at {}: {e}", config.nodes.join(","))))?;
        let session = Arc::new(session);
        driver_metrics::export(&session, pool.map(str::to_owned));
        Ok(session)
    }

    /// Opens `city`'s keyspace on `session`, running the migrations it lacks.
    pub async fn open(session: Arc<Session>, config: &ScyllaConfig, city: &str) -> Result<Self> {
        Self::open_at_epoch(session, config, city, 0).await
    }

    /// [`Self::open`] for the owner of `city` at `epoch` (a cluster's lease):
    /// every row it writes records the epoch.
    pub async fn open_at_epoch(session: Arc<Session>, config: &ScyllaConfig, city: &str, epoch: u64) -> Result<Self> {
        Self::migrate(&session, config, city).await?;
        Self::open_migrated(session, config, city, epoch).await
    }

    /// Creates `city`'s keyspace and runs the migrations it lacks (a login
    /// allowed to change the schema, which a city's writer role is not).
    pub async fn migrate(session: &Session, config: &ScyllaConfig, city: &str) -> Result<()> {
        let keyspace = config.keyspace_for(city)?;
        migrate(session, &Cql::new(&keyspace), &config.replication).await
    }

    /// [`Self::open_at_epoch`] on a keyspace already [migrated](Self::migrate):
    /// `session` needs only to read and write it.
    pub async fn open_migrated(session: Arc<Session>, config: &ScyllaConfig, city: &str, epoch: u64) -> Result<Self> {
        let epoch = i64::try_from(epoch).map_err(|_| StorageError::Encode(format!("epoch {epoch} too large")))?;
        let keyspace = config.keyspace_for(city)?;
        let cql = Cql::new(&keyspace);
        let statements = prepare(&session, &cql, config).await?;
        tracing::info!(%keyspace, nodes = %config.nodes.join(","), "ScyllaDB store open");
        Ok(Self {
            session,
            keyspace,
            epoch,
            fence: None,
            statements,
            in_flight: Semaphore::new(config.max_in_flight),
            config: config.clone(),
        })
    }

    /// This store, sending nothing once `fence` has closed: the last check
    /// before a statement reaches the driver, after whatever waiting came before.
    #[must_use]
    pub fn fenced_by(mut self, fence: Arc<crate::Fence>) -> Self {
        self.fence = Some(fence);
        self
    }

    /// An in-flight slot, once the fence (if any) still lets statements out.
    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        let permit = self.in_flight.acquire().await.map_err(|_| StorageError::Backend("store closed".into()))?;
        if let Some(fence) = &self.fence {
            fence.check()?;
        }
        Ok(permit)
    }

    /// The keyspace.
    #[must_use]
    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// Runs a write of `writes` rows and records how long the cluster took
    /// to acknowledge it (`dispatch_store_commit_seconds`, the embedded
    /// store's figure too, so the two compare).
    async fn commit(&self, writes: usize, write: impl Future<Output = Result<()>>) -> Result<()> {
        let started = std::time::Instant::now();
        write.await?;
        metrics::histogram!("dispatch_store_commit_seconds", "store" => "scylla").record(started.elapsed().as_secs_f64());
        metrics::histogram!("dispatch_store_commit_writes", "store" => "scylla").record(writes as f64);
        Ok(())
    }

    /// Writes one snapshot; the last one a job will have with the retention TTL.
    async fn put_one(&self, snapshot: SnapshotPut) -> Result<()> {
        let SnapshotPut { kind, id, blob, last } = snapshot;
        if last {
            let ttl = i32::try_from(self.config.terminal_ttl_secs).unwrap_or(i32::MAX);
            self.execute(&self.statements.put_ttl, (kind.tag() as i8, shard(id), key(id), blob, self.epoch, ttl)).await.map(drop)
        } else {
            self.execute(&self.statements.put, (kind.tag() as i8, shard(id), key(id), blob, self.epoch)).await.map(drop)
        }
    }

    /// `snapshots` and `job`'s log `entry` (with the job's index row for its first) in one logged batch.
    async fn logged_batch(&self, snapshots: Vec<SnapshotPut>, job: u64, entry: LogEntry) -> Result<()> {
        use scylla::value::CqlValue as V;
        let seq = i64::try_from(entry.seq).map_err(|_| StorageError::Encode(format!("sequence number {} too large", entry.seq)))?;
        let mut batch = Batch::new(BatchType::Logged);
        let mut rows: Vec<Vec<V>> = Vec::new();
        let ttl = i32::try_from(self.config.terminal_ttl_secs).unwrap_or(i32::MAX);
        for SnapshotPut { kind, id, blob, last } in snapshots {
            let mut row =
                vec![V::TinyInt(kind.tag() as i8), V::SmallInt(shard(id)), V::BigInt(key(id)), V::Blob(blob), V::BigInt(self.epoch)];
            if last {
                row.push(V::Int(ttl));
                batch.append_statement(self.statements.put_ttl.clone());
            } else {
                batch.append_statement(self.statements.put.clone());
            }
            rows.push(row);
        }
        if entry.seq == 1 {
            batch.append_statement(self.statements.index_job.clone());
            rows.push(vec![V::SmallInt(shard(job)), V::BigInt(key(job))]);
        }
        batch.append_statement(self.statements.append.clone());
        rows.push(vec![V::BigInt(key(job)), V::BigInt(seq), V::BigInt(entry.at_ms), V::Blob(entry.payload), V::BigInt(self.epoch)]);
        self.run_batch(batch, &rows, self.config.lifecycle_consistency).await
    }

    /// Runs `batch` over `rows` (idempotent: retried on transient errors), under the in-flight limit.
    async fn run_batch<V: SerializeRow>(&self, mut batch: Batch, rows: &[V], consistency: Level) -> Result<()> {
        batch.set_consistency(consistency.consistency());
        batch.set_is_idempotent(true);
        self.config
            .retry
            .run(|| async {
                let _permit = self.slot().await?;
                self.session.batch(&batch, rows).await.map(drop).map_err(|e| storage_error(&e))
            })
            .await
    }

    /// Writes `entry` into `job`'s log (indexing the job with its first entry).
    async fn append(&self, job: u64, entry: LogEntry) -> Result<()> {
        let seq = i64::try_from(entry.seq).map_err(|_| StorageError::Encode(format!("sequence number {} too large", entry.seq)))?;
        if entry.seq == 1 {
            // Indexed before its first entry exists, so a scan never misses a log.
            self.execute(&self.statements.index_job, (shard(job), key(job))).await?;
        }
        self.execute(&self.statements.append, (key(job), seq, entry.at_ms, entry.payload, self.epoch)).await.map(drop)
    }

    /// Runs `statement` with `values`, under the in-flight limit, with retries.
    async fn execute(&self, statement: &PreparedStatement, values: impl SerializeRow + Clone) -> Result<QueryResult> {
        self.config
            .retry
            .run(|| {
                let values = values.clone();
                async move {
                    let _permit = self.slot().await?;
                    self.session.execute_unpaged(statement, values).await.map_err(|e| storage_error(&e))
                }
            })
            .await
    }

    /// Runs an unlogged batch of `statement` over `rows`, which share one partition.
    async fn batch<V: SerializeRow + Clone>(&self, statement: &PreparedStatement, rows: Vec<V>, consistency: Level) -> Result<()> {
        let mut batch = Batch::new(BatchType::Unlogged);
        for _ in &rows {
            batch.append_statement(statement.clone());
        }
        self.run_batch(batch, &rows, consistency).await
    }

    /// Writes snapshots grouped by partition, each group in unlogged batches.
    async fn write_snapshots(&self, items: Vec<(Kind, u64, Vec<u8>)>, statement: &PreparedStatement, consistency: Level) -> Result<()> {
        let mut partitions: BTreeMap<(i8, i16), Vec<SnapshotRow>> = BTreeMap::new();
        for (kind, id, blob) in items {
            let row = (kind.tag() as i8, shard(id), key(id), blob, self.epoch);
            partitions.entry((row.0, row.1)).or_default().push(row);
        }
        let mut writes = Vec::new();
        for rows in partitions.into_values() {
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let chunk: Vec<_> = rows.by_ref().take(MAX_BATCH_ROWS).collect();
                writes.push(async move {
                    match chunk.as_slice() {
                        [row] => self.execute(statement, row.clone()).await.map(drop),
                        _ => self.batch(statement, chunk, consistency).await,
                    }
                });
            }
        }
        futures_util::future::try_join_all(writes).await.map(drop)
    }

    /// Reads rows of `T` from a query result.
    pub(super) fn rows<T>(result: QueryResult) -> Result<Vec<T>>
    where
        T: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm>,
    {
        let rows = result.into_rows_result().map_err(|e| backend("result")(&e))?;
        rows.rows::<T>().map_err(|e| backend("rows")(&e))?.map(|r| r.map_err(|e| backend("row")(&e))).collect()
    }

    /// The next ids after `after` from every shard, merged: `statement` takes
    /// (shard, start key, limit) — plus `kind` first when given.
    async fn scan_shards(
        &self,
        statement: &PreparedStatement,
        kind: Option<i8>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        let Some(start) = start_key(after) else { return Ok(Vec::new()) };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let asked = per_shard(limit);
        let asked_i32 = i32::try_from(asked).unwrap_or(i32::MAX);
        let slices = (0..SHARDS as i16).map(|s| async move {
            let result = match kind {
                Some(kind) => self.execute(statement, (kind, s, start, asked_i32)).await?,
                None => self.execute(statement, (s, start, asked_i32)).await?,
            };
            if kind.is_some() {
                Ok::<_, StorageError>(Self::rows::<(i64, Vec<u8>)>(result)?.into_iter().map(snapshot_row).collect::<Vec<_>>())
            } else {
                Ok(Self::rows::<(i64,)>(result)?.into_iter().map(|(job,)| (id_of(job), Vec::new())).collect())
            }
        });
        let pages = futures_util::future::try_join_all(slices).await?;
        Ok(merge_shard_pages(pages, asked, limit))
    }

    /// Up to `limit` entries of `job`'s log from `from_seq`.
    async fn read_some(&self, job: u64, from_seq: u64, limit: usize) -> Result<Vec<LogEntry>> {
        let from = i64::try_from(from_seq).unwrap_or(i64::MAX);
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let result = self.execute(&self.statements.read_events_limit, (key(job), from, limit)).await?;
        Self::rows::<(i64, i64, Vec<u8>)>(result)?.into_iter().map(event_row).collect()
    }
}

#[async_trait]
impl SnapshotStore for ScyllaStore {
    async fn put(&self, kind: Kind, id: u64, blob: Vec<u8>) -> Result<()> {
        self.commit(1, self.put_one(SnapshotPut { kind, id, blob, last: false })).await
    }

    async fn put_batch(&self, items: Vec<(Kind, u64, Vec<u8>)>) -> Result<()> {
        self.commit(items.len(), self.write_snapshots(items, &self.statements.put, self.config.lifecycle_consistency)).await
    }

    async fn put_final(&self, kind: Kind, id: u64, blob: Vec<u8>) -> Result<()> {
        self.commit(1, self.put_one(SnapshotPut { kind, id, blob, last: true })).await
    }

    async fn put_coalesced(&self, items: Vec<(Kind, u64, Vec<u8>)>) -> Result<()> {
        self.commit(items.len(), self.write_snapshots(items, &self.statements.put_position, self.config.position_consistency)).await
    }

    async fn get(&self, kind: Kind, id: u64) -> Result<Option<Vec<u8>>> {
        let result = self.execute(&self.statements.get, (kind.tag() as i8, shard(id), key(id))).await?;
        Ok(Self::rows::<(Vec<u8>,)>(result)?.into_iter().next().map(|(blob,)| blob))
    }

    async fn delete(&self, kind: Kind, id: u64) -> Result<()> {
        self.commit(1, async { self.execute(&self.statements.delete, (kind.tag() as i8, shard(id), key(id))).await.map(drop) }).await
    }

    async fn scan(&self, kind: Kind, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        self.scan_shards(&self.statements.scan_shard, Some(kind.tag() as i8), after, limit).await
    }

    async fn append_event(&self, job: u64, entry: LogEntry) -> Result<()> {
        self.commit(1, self.append(job, entry)).await
    }

    async fn put_and_append(&self, snapshots: Vec<SnapshotPut>, job: u64, entry: LogEntry) -> Result<()> {
        // Partitions of different tables, in one logged batch: the batch log
        // makes them all land or none, so a request's record never exists
        // without the change it records, nor a state without its log entry.
        let writes = snapshots.len() + 1;
        self.commit(writes, self.logged_batch(snapshots, job, entry)).await
    }

    async fn last_event_seq(&self, job: u64) -> Result<u64> {
        let result = self.execute(&self.statements.last_seq, (key(job),)).await?;
        let last = Self::rows::<(i64,)>(result)?.into_iter().next().map_or(0, |(seq,)| seq);
        u64::try_from(last).map_err(|_| StorageError::Decode(format!("negative event sequence number {last}")))
    }

    async fn read_events(&self, job: u64, from_seq: u64) -> Result<Vec<LogEntry>> {
        let from = i64::try_from(from_seq).unwrap_or(i64::MAX);
        let _permit = self.in_flight.acquire().await.map_err(|_| StorageError::Backend("store closed".into()))?;
        let pager = self
            .session
            .execute_iter(self.statements.read_events.clone(), (key(job), from))
            .await
            .map_err(|e| StorageError::Unavailable(format!("scylla: {e}")))?;
        let mut rows = pager.rows_stream::<(i64, i64, Vec<u8>)>().map_err(|e| backend("rows")(&e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(|e| StorageError::Unavailable(format!("scylla: {e}")))? {
            out.push(event_row(row)?);
        }
        Ok(out)
    }

    async fn scan_events(&self, after: Option<(u64, u64)>, limit: usize) -> Result<Vec<(u64, LogEntry)>> {
        let mut out = Vec::new();
        let mut last_job = None;
        if let Some((job, seq)) = after {
            last_job = Some(job);
            if let Some(next) = seq.checked_add(1) {
                out.extend(self.read_some(job, next, limit).await?.into_iter().map(|e| (job, e)));
            }
        }
        while out.len() < limit {
            let jobs = self.scan_shards(&self.statements.scan_jobs_shard, None, last_job, limit - out.len()).await?;
            if jobs.is_empty() {
                break;
            }
            for (job, _) in jobs {
                last_job = Some(job);
                out.extend(self.read_some(job, 0, limit - out.len()).await?.into_iter().map(|e| (job, e)));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn ping(&self) -> Result<()> {
        self.execute(&self.statements.ping, ()).await.map(drop)
    }
}
