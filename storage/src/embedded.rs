//! [`EmbeddedStore`]: the default backend, `redb` (a crash-safe, pure-Rust
//! embedded key-value store) in one file under a data directory.
//!
//! Tables:
//! - `snapshots`: key `(kind, id)` → blob;
//! - `events`: key `(job, seq)` → `(at_ms, payload)`, so one job's log is a
//!   contiguous key range read in sequence order.
//!
//! Each call is one redb transaction, committed durably before it returns,
//! run on tokio's blocking pool so the async caller's thread never waits on
//! the disk. redb serialises write transactions, which is what makes the
//! event log's sequence numbers monotonic without gaps.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::{Result, StorageError};
use crate::store::{Kind, LogEntry, SnapshotStore};

const SNAPSHOTS: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("snapshots");
const EVENTS: TableDefinition<(u64, u64), (i64, &[u8])> = TableDefinition::new("events");

/// The file inside the data directory.
pub const FILE_NAME: &str = "dispatch.redb";

/// A [`SnapshotStore`] in a redb file under a data directory.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").field("path", &self.path).finish()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: impl AsRef<Path>) -> Result<Self> {
        let dir = data_dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Backend(format!("cannot create data directory {}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|e| StorageError::Backend(format!("cannot open {}: {e}", path.display())))?;
        let txn = db.begin_write()?;
        txn.open_table(SNAPSHOTS)?;
        txn.open_table(EVENTS)?;
        txn.commit()?;
        Ok(Self { db: Arc::new(db), path })
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the blocking pool with the database.
    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Database) -> Result<T> + Send + 'static) -> Result<T> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StorageError::Backend(format!("storage task failed: {e}")))?
    }
}

#[async_trait]
impl SnapshotStore for EmbeddedStore {
    async fn put(&self, kind: Kind, id: u64, blob: Vec<u8>) -> Result<()> {
        self.put_batch(vec![(kind, id, blob)]).await
    }

    async fn put_batch(&self, items: Vec<(Kind, u64, Vec<u8>)>) -> Result<()> {
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(SNAPSHOTS)?;
                for (kind, id, blob) in &items {
                    table.insert((kind.tag(), *id), blob.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await
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
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            txn.open_table(SNAPSHOTS)?.remove((kind.tag(), id))?;
            txn.commit()?;
            Ok(())
        })
        .await
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

    async fn append_event(&self, job: u64, at_ms: i64, payload: Vec<u8>) -> Result<u64> {
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            let seq = {
                let mut table = txn.open_table(EVENTS)?;
                let last = match table.range((job, 0)..=(job, u64::MAX))?.next_back() {
                    Some(row) => row?.0.value().1,
                    None => 0,
                };
                let seq = last + 1;
                table.insert((job, seq), (at_ms, payload.as_slice()))?;
                seq
            };
            txn.commit()?;
            Ok(seq)
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

    async fn ping(&self) -> Result<()> {
        self.blocking(|db| {
            db.begin_read()?.open_table(SNAPSHOTS)?;
            Ok(())
        })
        .await
    }
}
