//! [`Leases`]: who owns each city, as a lease with a fencing epoch, kept
//! with lightweight transactions (Paxos) in the cluster's keyspace.
//!
//! ```sql
//! CREATE TABLE leases (city text PRIMARY KEY, owner text, epoch bigint)
//! ```
//!
//! How the known traps are avoided:
//! - **The epoch outlives the lease.** Only `owner` is written with a TTL;
//!   `epoch` never is. When the TTL runs out `owner` reads as null and the
//!   epoch stays, so the next taker moves it on and can never reuse it. A take
//!   is one conditional batch on the city's partition: `epoch = e + 1` without
//!   TTL and `owner` with it, `IF owner = null AND epoch = e` (or `IF NOT
//!   EXISTS` for a city never owned).
//! - **`SERIAL`, and conditional writes only.** Every write to `leases`
//!   (take, renew, release) is conditional, at serial consistency `SERIAL`
//!   (not `LOCAL_SERIAL`: the lease is one for the whole cluster). A release
//!   sets `owner = null IF owner = me AND epoch = mine`, never a plain
//!   `DELETE`, which Paxos could order before an earlier conditional write.
//! - **A timed-out conditional write is unknown**: the driver is told never
//!   to retry these statements (not idempotent, no retry policy, no
//!   speculation), and the caller resolves the outcome by a `SERIAL` read,
//!   which also completes any Paxos round left in flight ([`Leases::read`]).
//! - **TTLs are whole seconds** ([`LeaseTtl`]).

use std::sync::Arc;

use scylla::client::session::Session;
use scylla::policies::retry::FallthroughRetryPolicy;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::{CqlValue, Row};

use super::{Cql, ScyllaConfig, backend, storage_error};
use crate::error::{Result, StorageError};

/// A lease's time to live: whole seconds, as CQL TTLs are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTtl(u32);

impl LeaseTtl {
    /// `secs` seconds (at least 1).
    pub fn secs(secs: u32) -> Result<Self> {
        if secs == 0 {
            return Err(StorageError::Backend("a lease TTL is at least 1 second".into()));
        }
        Ok(Self(secs))
    }

    /// As a duration.
    #[must_use]
    pub const fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0 as u64)
    }

    fn cql(self) -> i32 {
        i32::try_from(self.0).unwrap_or(i32::MAX)
    }
}

/// A lease as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseState {
    /// Who holds it (`None`: free, expired or released).
    pub owner: Option<String>,
    /// The epoch of the last take (0: never taken).
    pub epoch: u64,
}

/// What a conditional write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It applied.
    Applied,
    /// It did not; the lease is as read.
    Refused(LeaseState),
}

/// The lease table of a cluster.
pub struct Leases {
    session: Arc<Session>,
    take_first: (PreparedStatement, PreparedStatement),
    take_next: (PreparedStatement, PreparedStatement),
    renew: PreparedStatement,
    release: PreparedStatement,
    read: PreparedStatement,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases").finish_non_exhaustive()
    }
}

impl Leases {
    /// Opens (creating if needed) the lease table in `<prefix>_cluster`.
    pub async fn open(session: Arc<Session>, config: &ScyllaConfig) -> Result<Self> {
        let keyspace = config.keyspace_for("cluster")?;
        let cql = Cql::new(&keyspace);
        for text in [cql.create_keyspace(&config.replication), cql.create_leases()] {
            session.query_unpaged(text.as_str(), ()).await.map_err(|e| StorageError::Backend(format!("lease schema `{text}`: {e}")))?;
        }
        session.await_schema_agreement().await.map_err(|e| backend("schema agreement")(&e))?;
        let prepare = |text: String| {
            let session = Arc::clone(&session);
            async move {
                let mut statement =
                    session.prepare(text.as_str()).await.map_err(|e| StorageError::Backend(format!("prepare `{text}`: {e}")))?;
                // Never retried by the driver, never sent twice: an unknown outcome is the caller's to resolve.
                statement.set_is_idempotent(false);
                statement.set_retry_policy(Some(Arc::new(FallthroughRetryPolicy)));
                statement.set_consistency(Consistency::Quorum);
                statement.set_serial_consistency(Some(SerialConsistency::Serial));
                Ok::<_, StorageError>(statement)
            }
        };
        let ks = &keyspace;
        Ok(Self {
            take_first: (
                prepare(format!("INSERT INTO {ks}.leases (city, epoch) VALUES (?, 1) IF NOT EXISTS")).await?,
                prepare(format!("UPDATE {ks}.leases USING TTL ? SET owner = ? WHERE city = ?")).await?,
            ),
            take_next: (
                prepare(format!("UPDATE {ks}.leases SET epoch = ? WHERE city = ? IF owner = null AND epoch = ?")).await?,
                prepare(format!("UPDATE {ks}.leases USING TTL ? SET owner = ? WHERE city = ?")).await?,
            ),
            renew: prepare(format!("UPDATE {ks}.leases USING TTL ? SET owner = ? WHERE city = ? IF owner = ? AND epoch = ?")).await?,
            release: prepare(format!("UPDATE {ks}.leases SET owner = null WHERE city = ? IF owner = ? AND epoch = ?")).await?,
            read: {
                let mut read = prepare(format!("SELECT owner, epoch FROM {ks}.leases WHERE city = ?")).await?;
                // A read at SERIAL sees (and completes) any Paxos round in flight.
                read.set_consistency(Consistency::Serial);
                read
            },
            session,
        })
    }

    /// The lease of `city` as a `SERIAL` read: the way to learn what a timed-out write did.
    pub async fn read(&self, city: &str) -> Result<LeaseState> {
        let result = self.session.execute_unpaged(&self.read, (city,)).await.map_err(|e| storage_error(&e))?;
        let rows = result.into_rows_result().map_err(|e| backend("lease read")(&e))?;
        let row: Option<(Option<String>, Option<i64>)> = rows.maybe_first_row().map_err(|e| backend("lease read")(&e))?;
        Ok(match row {
            None => LeaseState { owner: None, epoch: 0 },
            Some((owner, epoch)) => LeaseState { owner, epoch: epoch.map_or(0, |e| u64::try_from(e).unwrap_or(0)) },
        })
    }

    /// Takes `city` for `node` if nobody holds it, moving the epoch on from
    /// `seen` (the epoch last read; 0 for a city never owned). Applied: `node`
    /// holds it at `seen + 1` for `ttl`.
    pub async fn take(&self, city: &str, node: &str, seen: u64, ttl: LeaseTtl) -> Result<Outcome> {
        let mut batch = Batch::new(BatchType::Logged);
        let result = if seen == 0 {
            batch.append_statement(self.take_first.0.clone());
            batch.append_statement(self.take_first.1.clone());
            prepare_batch(&mut batch);
            self.session.batch(&batch, ((city,), (ttl.cql(), node, city))).await
        } else {
            let (next, seen) = (epoch_value(seen + 1)?, epoch_value(seen)?);
            batch.append_statement(self.take_next.0.clone());
            batch.append_statement(self.take_next.1.clone());
            prepare_batch(&mut batch);
            self.session.batch(&batch, ((next, city, seen), (ttl.cql(), node, city))).await
        };
        outcome(result.map_err(|e| storage_error(&e))?)
    }

    /// Extends `node`'s lease of `city` at `epoch` by `ttl` from now.
    pub async fn renew(&self, city: &str, node: &str, epoch: u64, ttl: LeaseTtl) -> Result<Outcome> {
        let values = (ttl.cql(), node, city, node, epoch_value(epoch)?);
        outcome(self.session.execute_unpaged(&self.renew, values).await.map_err(|e| storage_error(&e))?)
    }

    /// Gives up `node`'s lease of `city` at `epoch` (the epoch stays).
    pub async fn release(&self, city: &str, node: &str, epoch: u64) -> Result<Outcome> {
        let values = (city, node, epoch_value(epoch)?);
        outcome(self.session.execute_unpaged(&self.release, values).await.map_err(|e| storage_error(&e))?)
    }
}

fn prepare_batch(batch: &mut Batch) {
    batch.set_consistency(Consistency::Quorum);
    batch.set_serial_consistency(Some(SerialConsistency::Serial));
    batch.set_is_idempotent(false);
    batch.set_retry_policy(Some(Arc::new(FallthroughRetryPolicy)));
}

fn epoch_value(epoch: u64) -> Result<i64> {
    i64::try_from(epoch).map_err(|_| StorageError::Encode(format!("epoch {epoch} too large")))
}

/// Reads a conditional write's result: `[applied]`, then (when refused) the row's current columns.
fn outcome(result: scylla::response::query_result::QueryResult) -> Result<Outcome> {
    let rows = result.into_rows_result().map_err(|e| backend("lease write")(&e))?;
    let specs = rows.column_specs();
    let index = |name: &str| specs.get_by_name(name).map(|(i, _)| i);
    let (applied, owner, epoch) = (index("[applied]"), index("owner"), index("epoch"));
    let row: Row = rows.first_row().map_err(|e| backend("lease write")(&e))?;
    let column = |i: Option<usize>| i.and_then(|i| row.columns.get(i).cloned().flatten());
    match column(applied) {
        Some(CqlValue::Boolean(true)) => Ok(Outcome::Applied),
        Some(CqlValue::Boolean(false)) => {
            let owner = match column(owner) {
                Some(CqlValue::Text(owner)) => Some(owner),
                _ => None,
            };
            let epoch = match column(epoch) {
                Some(CqlValue::BigInt(e)) => u64::try_from(e).unwrap_or(0),
                _ => 0,
            };
            Ok(Outcome::Refused(LeaseState { owner, epoch }))
        }
        other => Err(StorageError::Backend(format!("a conditional write answered {other:?} for [applied]"))),
    }
}
