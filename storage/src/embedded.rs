//! [`EmbeddedStore`]: the default backend, `redb` (a crash-safe, pure-Rust
//! embedded key-value store) in one file under a data directory.
//!
//! Tables:
//! - `snapshots`: key `(kind, id)` → blob;
//! - `events`: key `(job, seq)` → `(at_ms, payload)`, so one job's log is a
//!   contiguous key range read in sequence order.
//!
//! Writes go through one committer thread with **group commit**
//! ([`group_commit`](crate::group_commit)): one fsync per group of waiting
//! writes, each caller answered once its write is durable. Reads run on
//! tokio's blocking pool against redb's snapshots, beside the writer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, TableDefinition, WriteTransaction};

use crate::error::{Result, StorageError};
use crate::group_commit::{CommitMetrics, GroupCommitter};
use crate::store::{Kind, LogEntry, SnapshotPut, SnapshotStore};

const SNAPSHOTS: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("snapshots");
const EVENTS: TableDefinition<(u64, u64), (i64, &[u8])> = TableDefinition::new("events");

/// The file inside the data directory.
pub const FILE_NAME: &str = "dispatch.redb";

/// redb's page cache per store unless told otherwise, bytes. (redb's own
/// default is 1 GiB per database: with a store per city, a soak grew the
/// server by gigabytes before the caches were full.)
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// A write for the committer thread.
enum WriteOp {
    Put(Vec<(Kind, u64, Vec<u8>)>),
    Delete(Kind, u64),
    Append(u64, LogEntry),
    /// Snapshots and a log entry in the same transaction.
    PutAndAppend(Vec<(Kind, u64, Vec<u8>)>, u64, LogEntry),
}

/// A [`SnapshotStore`] in a redb file under a data directory.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
    committer: Arc<GroupCommitter<WriteOp>>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").field("path", &self.path).finish()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `data_dir`, with a page cache
    /// of [`DEFAULT_CACHE_BYTES`].
    pub fn open(data_dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_cache(data_dir, DEFAULT_CACHE_BYTES)
    }

    /// Opens (creating if needed) the store in `data_dir`, with a page cache
    /// of at most `cache_bytes`.
    pub fn open_with_cache(data_dir: impl AsRef<Path>, cache_bytes: usize) -> Result<Self> {
        let dir = data_dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| StorageError::Backend(format!("cannot create data directory {}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(&path)
            .map_err(|e| StorageError::Backend(format!("cannot open {}: {e}", path.display())))?;
        let txn = db.begin_write()?;
        txn.open_table(SNAPSHOTS)?;
        txn.open_table(EVENTS)?;
        txn.commit()?;
        let db = Arc::new(db);
        let metrics = CommitMetrics { seconds: "dispatch_store_commit_seconds", writes: "dispatch_store_commit_writes", store: "embedded" };
        let committer = GroupCommitter::start("redb-committer", Arc::clone(&db), apply, metrics)?;
        Ok(Self { db, path, committer: Arc::new(committer) })
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the blocking pool with the database.
    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Database) -> Result<T> + Send + 'static) -> Result<T> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db)).await.map_err(|e| StorageError::Backend(format!("storage task failed: {e}")))?
    }
}

#[async_trait]
impl SnapshotStore for EmbeddedStore {
    async fn put(&self, kind: Kind, id: u64, blob: Vec<u8>) -> Result<()> {
        self.put_batch(vec![(kind, id, blob)]).await
    }

    async fn put_batch(&self, items: Vec<(Kind, u64, Vec<u8>)>) -> Result<()> {
        self.committer.commit(WriteOp::Put(items)).await
    }

    async fn get(&self, kind: Kind, id: u64) -> Result<Option<Vec<u8>>> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(SNAPSHOTS)?;
            Ok(table.get((kind.tag(), id))?.map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn delete(&self, kind: Kind, id: u64) -> Result<()> {
        self.committer.commit(WriteOp::Delete(kind, id)).await
    }

    async fn scan(&self, kind: Kind, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(SNAPSHOTS)?;
            let start = match after {
                None => Some(0),
                Some(id) => id.checked_add(1),
            };
            let Some(start) = start else { return Ok(Vec::new()) };
            let mut out = Vec::new();
            for row in table.range((kind.tag(), start)..=(kind.tag(), u64::MAX))?.take(limit) {
                let (key, value) = row?;
                out.push((key.value().1, value.value().to_vec()));
            }
            Ok(out)
        })
        .await
    }

    async fn append_event(&self, job: u64, entry: LogEntry) -> Result<()> {
        self.committer.commit(WriteOp::Append(job, entry)).await
    }

    async fn put_and_append(&self, snapshots: Vec<SnapshotPut>, job: u64, entry: LogEntry) -> Result<()> {
        // A final snapshot is kept like any other here (no expiry).
        let rows = snapshots.into_iter().map(|s| (s.kind, s.id, s.blob)).collect();
        self.committer.commit(WriteOp::PutAndAppend(rows, job, entry)).await
    }

    async fn last_event_seq(&self, job: u64) -> Result<u64> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(EVENTS)?;
            match table.range((job, 0)..=(job, u64::MAX))?.next_back() {
                Some(row) => Ok(row?.0.value().1),
                None => Ok(0),
            }
        })
        .await
    }

    async fn read_events(&self, job: u64, from_seq: u64) -> Result<Vec<LogEntry>> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(EVENTS)?;
            let mut out = Vec::new();
            for row in table.range((job, from_seq)..=(job, u64::MAX))? {
                let (key, value) = row?;
                let (at_ms, payload) = value.value();
                out.push(LogEntry { seq: key.value().1, at_ms, payload: payload.to_vec() });
            }
            Ok(out)
        })
        .await
    }

    async fn scan_events(&self, after: Option<(u64, u64)>, limit: usize) -> Result<Vec<(u64, LogEntry)>> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(EVENTS)?;
            let start = match after {
                None => Some((0, 0)),
                Some((job, seq)) => match seq.checked_add(1) {
                    Some(next) => Some((job, next)),
                    None => job.checked_add(1).map(|j| (j, 0)),
                },
            };
            let Some(start) = start else { return Ok(Vec::new()) };
            let mut out = Vec::new();
            for row in table.range(start..)?.take(limit) {
                let (key, value) = row?;
                let (job, seq) = key.value();
                let (at_ms, payload) = value.value();
                out.push((job, LogEntry { seq, at_ms, payload: payload.to_vec() }));
            }
            Ok(out)
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        self.blocking(|db| {
            db.begin_read()?.open_table(SNAPSHOTS)?;
            Ok(())
        })
        .await
    }
}

/// Applies a group in the committer's transaction, in queue order.
fn apply(txn: &WriteTransaction, group: &[WriteOp]) -> Result<()> {
    let mut snapshots = txn.open_table(SNAPSHOTS)?;
    let mut events = txn.open_table(EVENTS)?;
    for op in group {
        match op {
            WriteOp::Put(items) => {
                for (kind, id, blob) in items {
                    snapshots.insert((kind.tag(), *id), blob.as_slice())?;
                }
            }
            WriteOp::Delete(kind, id) => {
                snapshots.remove((kind.tag(), *id))?;
            }
            WriteOp::Append(job, entry) => {
                events.insert((*job, entry.seq), (entry.at_ms, entry.payload.as_slice()))?;
            }
            WriteOp::PutAndAppend(rows, job, entry) => {
                for (kind, id, blob) in rows {
                    snapshots.insert((kind.tag(), *id), blob.as_slice())?;
                }
                events.insert((*job, entry.seq), (entry.at_ms, entry.payload.as_slice()))?;
            }
        }
    }
    Ok(())
}
