//! [`Journal`]: the durable half of degraded mode. While the store of record
//! is unreachable, [`ResilientStore`](crate::ResilientStore) acknowledges
//! writes only once they are in this local redb file (group commit, one fsync
//! per group), so a crash during an outage loses nothing that was
//! acknowledged: the next start replays the journal into the buffer and
//! drains it.
//!
//! Table `entries`: key = the write's generation (the buffer's order of
//! arrival, increasing across restarts), value = a [`JournalRecord`] in the
//! codec's versioned envelope. A write that replaces a buffered write of the
//! same key removes the older entry in the same transaction, so the journal
//! holds what the buffer holds: one entry per snapshot key and per log entry,
//! bounded by the buffer's limits. A drained entry is removed once the store
//! of record has confirmed it.
//!
//! Every entry names its writer (the server's node name) and an epoch:
//! one more than the last epoch this journal recorded, taken at every open.
//! A node that lost a city to another can then be told apart from the owner
//! of the moment, and its journal refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::codec::{self, Versioned};
use crate::error::{Result, StorageError};
use crate::group_commit::{CommitMetrics, GroupCommitter};
use crate::store::{Kind, LogEntry};

const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const EPOCH: &str = "epoch";

/// redb's page cache for the journal: it is written and read back in order,
/// rarely twice.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// A snapshot write as buffered and journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotWrite {
    /// [`SnapshotStore::put`](crate::SnapshotStore::put) and the batch forms.
    Put(Vec<u8>),
    /// [`SnapshotStore::put_final`](crate::SnapshotStore::put_final).
    Final(Vec<u8>),
    /// [`SnapshotStore::delete`](crate::SnapshotStore::delete).
    Delete,
}

impl SnapshotWrite {
    /// The blob written; `None` for a delete.
    #[must_use]
    pub fn value(&self) -> Option<&Vec<u8>> {
        match self {
            SnapshotWrite::Put(b) | SnapshotWrite::Final(b) => Some(b),
            SnapshotWrite::Delete => None,
        }
    }

    /// Bytes of data it carries.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.value().map_or(0, Vec::len)
    }
}

/// One write waiting for the store of record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Write {
    /// To the snapshot of (kind, id).
    Snapshot(Kind, u64, SnapshotWrite),
    /// An entry of a job's event log.
    Event(u64, LogEntry),
}

/// What a buffered write replaces: one snapshot, or one log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WriteKey {
    /// The snapshot of (kind, id).
    Snapshot(Kind, u64),
    /// Entry `seq` of a job's log: (job, seq).
    Event(u64, u64),
}

impl Write {
    /// The key this write replaces.
    #[must_use]
    pub fn key(&self) -> WriteKey {
        match self {
            Write::Snapshot(kind, id, _) => WriteKey::Snapshot(*kind, *id),
            Write::Event(job, e) => WriteKey::Event(*job, e.seq),
        }
    }

    /// Bytes of data it carries (what the buffer's byte bound counts).
    #[must_use]
    pub fn bytes(&self) -> usize {
        match self {
            Write::Snapshot(_, _, w) => w.bytes(),
            Write::Event(_, e) => e.payload.len(),
        }
    }
}

/// One journal entry: a write and who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRecord {
    /// The node that acknowledged the write.
    pub writer: String,
    /// Its epoch when it did.
    pub epoch: u64,
    /// The write.
    pub write: Write,
}

impl Versioned for JournalRecord {
    /// The journal was introduced with schema 2: there are no older entries.
    const LAYOUT_SINCE: u16 = 2;
}

/// A change to the journal, committed in order with the others of its group.
enum JournalOp {
    /// Entries to add: (generation, encoded record, the generation it replaces).
    Record(Vec<(u64, Vec<u8>, Option<u64>)>),
    /// Entries the store of record has confirmed.
    Remove(Vec<u64>),
}

/// The degraded-mode journal of one city's store.
pub struct Journal {
    committer: GroupCommitter<JournalOp>,
    path: PathBuf,
    writer: String,
    epoch: u64,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).field("writer", &self.writer).field("epoch", &self.epoch).finish()
    }
}

impl Journal {
    /// The file inside the city's data directory.
    pub const FILE_NAME: &str = "journal.redb";

    /// Opens (creating) the journal in `dir` for `writer`, starting a new
    /// epoch. Returns it with the entries an earlier run left, in generation
    /// order. An entry that does not decode fails the open: those are
    /// acknowledged writes, and starting without them would lose them.
    pub fn open(dir: impl AsRef<Path>, writer: &str) -> Result<(Self, Vec<(u64, JournalRecord)>)> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Backend(format!("cannot create journal directory {}: {e}", dir.display())))?;
        let path = dir.join(Self::FILE_NAME);
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| StorageError::Backend(format!("cannot open the journal {}: {e}", path.display())))?;
        let txn = db.begin_write()?;
        let (epoch, left) = {
            let mut meta = txn.open_table(META)?;
            let epoch = meta.get(EPOCH)?.map_or(0, |v| v.value()) + 1;
            meta.insert(EPOCH, epoch)?;
            let entries = txn.open_table(ENTRIES)?;
            let mut left = Vec::new();
            for row in entries.iter()? {
                let (generation, blob) = row?;
                let generation = generation.value();
                let record = codec::decode::<JournalRecord>(blob.value())
                    .map_err(|e| StorageError::Backend(format!("journal {} entry {generation} is unreadable: {e}", path.display())))?;
                left.push((generation, record));
            }
            (epoch, left)
        };
        txn.commit()?;
        let metrics =
            CommitMetrics { seconds: "dispatch_journal_commit_seconds", writes: "dispatch_journal_commit_writes", store: "journal" };
        let committer = GroupCommitter::start("journal-committer", Arc::new(db), apply, metrics)?;
        Ok((Self { committer, path, writer: writer.to_owned(), epoch }, left))
    }

    /// Entries the journal in `dir` holds (0 when there is none), without
    /// opening it for writing or starting an epoch: for tools that must not
    /// run past writes a crashed server acknowledged but never drained.
    pub fn pending(dir: impl AsRef<Path>) -> Result<usize> {
        let path = dir.as_ref().join(Self::FILE_NAME);
        if !path.is_file() {
            return Ok(0);
        }
        let db = Database::open(&path).map_err(|e| StorageError::Backend(format!("cannot open the journal {}: {e}", path.display())))?;
        let txn = db.begin_read()?;
        match txn.open_table(ENTRIES) {
            Ok(entries) => Ok(usize::try_from(entries.len()?).unwrap_or(usize::MAX)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// The node this journal tags its entries with.
    #[must_use]
    pub fn writer(&self) -> &str {
        &self.writer
    }

    /// This run's epoch.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The journal file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `writes` (each with its generation and the generation it
    /// replaces) as one transaction; the receiver answers once they are durable.
    pub(crate) fn record<'a>(
        &self,
        writes: impl IntoIterator<Item = (u64, &'a Write, Option<u64>)>,
    ) -> Result<oneshot::Receiver<Result<()>>> {
        let mut entries = Vec::new();
        for (generation, write, replaces) in writes {
            let record = JournalRecord { writer: self.writer.clone(), epoch: self.epoch, write: write.clone() };
            entries.push((generation, codec::encode(&record)?, replaces));
        }
        self.committer.enqueue(JournalOp::Record(entries))
    }

    /// Queues the removal of drained entries.
    pub(crate) fn remove(&self, generations: Vec<u64>) -> Result<oneshot::Receiver<Result<()>>> {
        self.committer.enqueue(JournalOp::Remove(generations))
    }
}

fn apply(txn: &WriteTransaction, ops: &[JournalOp]) -> Result<()> {
    let mut entries = txn.open_table(ENTRIES)?;
    for op in ops {
        match op {
            JournalOp::Record(records) => {
                for (generation, blob, replaces) in records {
                    if let Some(old) = replaces {
                        entries.remove(*old)?;
                    }
                    entries.insert(*generation, blob.as_slice())?;
                }
            }
            JournalOp::Remove(generations) => {
                for generation in generations {
                    entries.remove(*generation)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group_commit::durable;

    fn put(id: u64, v: &[u8]) -> Write {
        Write::Snapshot(Kind::Job, id, SnapshotWrite::Put(v.to_vec()))
    }

    #[tokio::test]
    async fn entries_survive_a_reopen_in_order_with_replaced_and_removed_ones_gone() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        assert_eq!(Journal::pending(dir.path())?, 0, "no journal yet");
        let (journal, left) = Journal::open(dir.path(), "node-a")?;
        assert!(left.is_empty());
        assert_eq!(journal.epoch(), 1);
        let event = Write::Event(7, LogEntry::new(1, 1_000, b"posted".to_vec()));
        durable(journal.record([(1, &put(1, b"old"), None), (2, &event, None)])?).await?;
        durable(journal.record([(3, &put(2, b"two"), None), (4, &put(1, b"new"), Some(1))])?).await?;
        durable(journal.remove(vec![3])?).await?;
        drop(journal);

        assert_eq!(Journal::pending(dir.path())?, 2);
        let (journal, left) = Journal::open(dir.path(), "node-b")?;
        assert_eq!(journal.epoch(), 2, "every open starts an epoch; counting the pending ones did not");
        let tag = |writer: &str, write: Write| JournalRecord { writer: writer.into(), epoch: 1, write };
        assert_eq!(left, vec![(2, tag("node-a", event)), (4, tag("node-a", put(1, b"new")))]);
        Ok(())
    }

    #[test]
    fn an_unreadable_entry_refuses_the_open_instead_of_dropping_it() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        drop(Journal::open(dir.path(), "node-a")?);
        let db = Database::create(dir.path().join(Journal::FILE_NAME))?;
        let txn = db.begin_write()?;
        txn.open_table(ENTRIES)?.insert(1, b"garbage".as_slice())?;
        txn.commit()?;
        drop(db);
        let err = Journal::open(dir.path(), "node-a").expect_err("refused");
        assert!(err.to_string().contains("entry 1 is unreadable"), "{err}");
        Ok(())
    }
}
