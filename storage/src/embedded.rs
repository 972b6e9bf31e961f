//! [`EmbeddedStore`]: the default backend, `redb` (a crash-safe, pure-Rust
//! embedded key-value store) in one file under a data directory.
//!
//! Tables:
//! - `snapshots`: key `(kind, id)` → blob;
//! - `events`: key `(job, seq)` → `(at_ms, payload)`, so one job's log is a
//!   contiguous key range read in sequence order.
//!
//! Writes go through one committer thread with **group commit**: it takes
//! every write waiting in its queue, applies them in one redb transaction,
//! commits durably (one fsync for the group) and only then answers each
//! caller. Under load a commit carries many writes, so throughput follows
//! the disk's fsync rate times the group size instead of one write per
//! fsync. Reads
//! run on tokio's blocking pool against redb's snapshots, beside the writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, TableDefinition};

use crate::error::{Result, StorageError};
use crate::store::{Kind, LogEntry, SnapshotStore};

const SNAPSHOTS: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("snapshots");
const EVENTS: TableDefinition<(u64, u64), (i64, &[u8])> = TableDefinition::new("events");

/// The file inside the data directory.
pub const FILE_NAME: &str = "dispatch.redb";

/// redb's page cache per store unless told otherwise, bytes. (redb's own
/// default is 1 GiB per database: with a store per city, a soak grew the
/// server by gigabytes before the caches were full.)
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Most writes one commit carries.
const MAX_GROUP: usize = 4_096;

/// A write for the committer thread, with where its answer goes.
enum WriteOp {
    Put(Vec<(Kind, u64, Vec<u8>)>, tokio::sync::oneshot::Sender<Result<()>>),
    Delete(Kind, u64, tokio::sync::oneshot::Sender<Result<()>>),
    Append(u64, LogEntry, tokio::sync::oneshot::Sender<Result<()>>),
}

/// A [`SnapshotStore`] in a redb file under a data directory.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
    committer: Arc<Committer>,
}

/// The committer thread's queue; dropping the last handle stops the thread
/// and waits for it, so the file is closed when the store is (a reopen right
/// after finds it unlocked).
struct Committer {
    queue: Option<mpsc::Sender<WriteOp>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
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
        let (writes, queue) = mpsc::channel();
        let for_thread = Arc::clone(&db);
        let thread = std::thread::Builder::new()
            .name("redb-committer".into())
            .spawn(move || commit_loop(&for_thread, &queue))
            .map_err(|e| StorageError::Backend(format!("cannot start the committer thread: {e}")))?;
        Ok(Self { db, path, committer: Arc::new(Committer { queue: Some(writes), thread: Some(thread) }) })
    }

    /// Queues a write for the committer and waits for its durable answer.
    async fn write<T>(&self, op: impl FnOnce(tokio::sync::oneshot::Sender<Result<T>>) -> WriteOp) -> Result<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || StorageError::Backend("the store's committer has stopped".into());
        self.committer.queue.as_ref().ok_or_else(stopped)?.send(op(reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| StorageError::Backend("the store's committer dropped a write".into()))?
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
        self.write(|reply| WriteOp::Put(items, reply)).await
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
        self.write(|reply| WriteOp::Delete(kind, id, reply)).await
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
        self.write(|reply| WriteOp::Append(job, entry, reply)).await
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

/// The committer: waits for a write, takes every other one queued behind it
/// (up to [`MAX_GROUP`]), commits them together, then answers each. Ends when
/// every handle to the store is gone.
fn commit_loop(db: &Database, queue: &mpsc::Receiver<WriteOp>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let applied = apply(db, &group);
        metrics::histogram!("dispatch_store_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("dispatch_store_commit_writes").record(group.len() as f64);
        // On an error the transaction was not committed: none of the group's writes happened.
        for op in group {
            let outcome = applied.as_ref().copied().map_err(|e| StorageError::Backend(e.to_string()));
            match op {
                WriteOp::Put(_, reply) | WriteOp::Delete(_, _, reply) | WriteOp::Append(_, _, reply) => {
                    drop(reply.send(outcome));
                }
            }
        }
    }
}

/// Applies a group in one transaction, in queue order.
fn apply(db: &Database, group: &[WriteOp]) -> Result<()> {
    let txn = db.begin_write()?;
    {
        let mut snapshots = txn.open_table(SNAPSHOTS)?;
        let mut events = txn.open_table(EVENTS)?;
        for op in group {
            match op {
                WriteOp::Put(items, _) => {
                    for (kind, id, blob) in items {
                        snapshots.insert((kind.tag(), *id), blob.as_slice())?;
                    }
                }
                WriteOp::Delete(kind, id, _) => {
                    snapshots.remove((kind.tag(), *id))?;
                }
                WriteOp::Append(job, entry, _) => {
                    events.insert((*job, entry.seq), (entry.at_ms, entry.payload.as_slice()))?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}
