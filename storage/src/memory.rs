//! [`MemoryStore`]: everything in a map behind a mutex. For tests, and for
//! runs that need no durability.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::error::{Result, StorageError};
use crate::store::{Kind, LogEntry, SnapshotStore};

#[derive(Default)]
struct Inner {
    snapshots: BTreeMap<(Kind, u64), Vec<u8>>,
    events: BTreeMap<(u64, u64), (i64, Vec<u8>)>,
}

/// An in-memory [`SnapshotStore`]. It can be told to fail, so tests can check
/// that nothing is acknowledged unless the store confirmed it.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    unavailable: AtomicBool,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later call fail (`true`) or succeed again (`false`).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// The lock, usable even if a panicking thread held it (the maps are
    /// never left half-updated: each operation is one insert or remove).
    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StorageError::Backend("memory store set unavailable".into()));
        }
        Ok(self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[async_trait]
impl SnapshotStore for MemoryStore {
    async fn put(&self, kind: Kind, id: u64, blob: Vec<u8>) -> Result<()> {
        self.lock()?.snapshots.insert((kind, id), blob);
        Ok(())
    }

    async fn put_batch(&self, items: Vec<(Kind, u64, Vec<u8>)>) -> Result<()> {
        let mut inner = self.lock()?;
        for (kind, id, blob) in items {
            inner.snapshots.insert((kind, id), blob);
        }
        Ok(())
    }

    async fn get(&self, kind: Kind, id: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.lock()?.snapshots.get(&(kind, id)).cloned())
    }

    async fn delete(&self, kind: Kind, id: u64) -> Result<()> {
        self.lock()?.snapshots.remove(&(kind, id));
        Ok(())
    }

    async fn scan(&self, kind: Kind, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        let inner = self.lock()?;
        let start = match after {
            None => std::ops::Bound::Included((kind, 0)),
            Some(id) => std::ops::Bound::Excluded((kind, id)),
        };
        Ok(inner
            .snapshots
            .range((start, std::ops::Bound::Included((kind, u64::MAX))))
            .take(limit)
            .map(|(&(_, id), blob)| (id, blob.clone()))
            .collect())
    }

    async fn append_event(&self, job: u64, entry: LogEntry) -> Result<()> {
        self.lock()?.events.insert((job, entry.seq), (entry.at_ms, entry.payload));
        Ok(())
    }

    async fn last_event_seq(&self, job: u64) -> Result<u64> {
        Ok(self.lock()?.events.range((job, 0)..=(job, u64::MAX)).next_back().map_or(0, |(&(_, seq), _)| seq))
    }

    async fn read_events(&self, job: u64, from_seq: u64) -> Result<Vec<LogEntry>> {
        let inner = self.lock()?;
        Ok(inner
            .events
            .range((job, from_seq)..=(job, u64::MAX))
            .map(|(&(_, seq), (at_ms, payload))| LogEntry { seq, at_ms: *at_ms, payload: payload.clone() })
            .collect())
    }

    async fn scan_events(&self, after: Option<(u64, u64)>, limit: usize) -> Result<Vec<(u64, LogEntry)>> {
        let inner = self.lock()?;
        let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        Ok(inner
            .events
            .range((start, std::ops::Bound::Unbounded))
            .take(limit)
            .map(|(&(job, seq), (at_ms, payload))| (job, LogEntry { seq, at_ms: *at_ms, payload: payload.clone() }))
            .collect())
    }

    async fn ping(&self) -> Result<()> {
        self.lock().map(|_| ())
    }
}
