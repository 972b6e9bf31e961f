//! [`ResilientStore`]: keeps the engine serving while its store is down.
//!
//! Every write goes to the wrapped backend under a timeout. When one fails
//! because the backend is unreachable (or hangs past the timeout), the store
//! turns **degraded**: that write and every later one are kept in a bounded
//! in-memory buffer instead — newest value per snapshot key, every log entry
//! by `(job, seq)` — and the caller is answered at once, so the engine goes on
//! serving from memory. Reads see the buffer over the backend. A drain task
//! probes the backend with growing pauses and writes the buffer back in
//! batches; an entry is dropped from the buffer only once the backend has
//! confirmed it, and only if no newer write replaced it meanwhile. When the
//! buffer is empty the store is healthy again, and writes go straight
//! through once more.
//!
//! The buffer is bounded ([`ResilienceConfig::buffer_limit`] entries): past
//! it a write is **refused** with [`StorageError::BufferFull`], never
//! accepted and dropped. Overwrites of a buffered key cost nothing, so the
//! bound is met only by that many distinct keys — GPS snapshots of a whole
//! city fit many times over.
//!
//! Metrics: `dispatch_store_degraded` (0/1), `dispatch_store_buffered`
//! (entries), `dispatch_store_buffer_rejected_total`,
//! `dispatch_store_drained_total`. A log line marks each change of state.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};
use crate::store::{Health, Kind, LogEntry, SnapshotStore};

/// How patient the wrapper is, and how much it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResilienceConfig {
    /// Writes (distinct keys) held while the backend is down, at most.
    pub buffer_limit: usize,
    /// A backend call that has not answered after this long counts as failed, ms.
    pub timeout_ms: u64,
    /// First pause of the drain task between probes, ms (doubling after each failure).
    pub probe_first_ms: u64,
    /// Longest pause between probes, ms.
    pub probe_max_ms: u64,
    /// Buffered writes sent back per batch when draining.
    pub drain_batch: usize,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        Self { buffer_limit: 200_000, timeout_ms: 2_000, probe_first_ms: 200, probe_max_ms: 5_000, drain_batch: 1_000 }
    }
}

/// A buffered snapshot write.
#[derive(Debug, Clone)]
enum SnapshotWrite {
    Put(Vec<u8>),
    Final(Vec<u8>),
    Delete,
}

impl SnapshotWrite {
    fn value(&self) -> Option<&Vec<u8>> {
        match self {
            SnapshotWrite::Put(b) | SnapshotWrite::Final(b) => Some(b),
            SnapshotWrite::Delete => None,
        }
    }
}

/// One write, as buffered or drained.
#[derive(Debug, Clone)]
enum Write {
    Snapshot(Kind, u64, SnapshotWrite),
    Event(u64, LogEntry),
}

/// What the wrapper holds while degraded.
#[derive(Debug, Default)]
struct Buffer {
    /// Each entry with the generation it was written in.
    snapshots: BTreeMap<(Kind, u64), (u64, SnapshotWrite)>,
    events: BTreeMap<(u64, u64), (u64, LogEntry)>,
    next_generation: u64,
    /// Why the store is degraded; `None` while healthy.
    degraded: Option<String>,
}

impl Buffer {
    fn len(&self) -> usize {
        self.snapshots.len() + self.events.len()
    }

    /// Keeps `writes`, all or none: refused if they would pass `limit`.
    fn keep(&mut self, writes: Vec<Write>, limit: usize) -> Result<()> {
        let new_keys = writes
            .iter()
            .filter(|w| match w {
                Write::Snapshot(kind, id, _) => !self.snapshots.contains_key(&(*kind, *id)),
                Write::Event(job, e) => !self.events.contains_key(&(*job, e.seq)),
            })
            .count();
        if self.len() + new_keys > limit {
            metrics::counter!("dispatch_store_buffer_rejected_total").increment(writes.len() as u64);
            return Err(StorageError::BufferFull { buffered: self.len() });
        }
        for w in writes {
            self.next_generation += 1;
            let generation = self.next_generation;
            match w {
                Write::Snapshot(kind, id, value) => drop(self.snapshots.insert((kind, id), (generation, value))),
                Write::Event(job, e) => drop(self.events.insert((job, e.seq), (generation, e))),
            }
        }
        metrics::gauge!("dispatch_store_buffered").set(self.len() as f64);
        Ok(())
    }

    /// Up to `n` buffered writes, with their generations, oldest keys first.
    fn peek(&self, n: usize) -> Vec<(u64, Write)> {
        let snapshots = self.snapshots.iter().map(|(&(kind, id), (g, v))| (*g, Write::Snapshot(kind, id, v.clone())));
        let events = self.events.iter().map(|(&(job, _), (g, e))| (*g, Write::Event(job, e.clone())));
        snapshots.chain(events).take(n).collect()
    }

    /// Drops the drained writes that no newer write replaced.
    fn forget(&mut self, drained: &[(u64, Write)]) {
        for (generation, w) in drained {
            match w {
                Write::Snapshot(kind, id, _) => {
                    if self.snapshots.get(&(*kind, *id)).is_some_and(|(g, _)| g == generation) {
                        self.snapshots.remove(&(*kind, *id));
                    }
                }
                Write::Event(job, e) => {
                    if self.events.get(&(*job, e.seq)).is_some_and(|(g, _)| g == generation) {
                        self.events.remove(&(*job, e.seq));
                    }
                }
            }
        }
        metrics::gauge!("dispatch_store_buffered").set(self.len() as f64);
    }
}

struct Inner {
    backend: Arc<dyn SnapshotStore>,
    config: ResilienceConfig,
    buffer: Mutex<Buffer>,
}

/// A [`SnapshotStore`] wrapper that buffers writes while its backend is
/// unreachable and drains them when it returns.
#[derive(Clone)]
pub struct ResilientStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ResilientStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilientStore").field("health", &self.health()).finish_non_exhaustive()
    }
}

impl ResilientStore {
    /// Wraps `backend`.
    #[must_use]
    pub fn new(backend: Arc<dyn SnapshotStore>, config: ResilienceConfig) -> Self {
        metrics::gauge!("dispatch_store_degraded").set(0.0);
        metrics::gauge!("dispatch_store_buffered").set(0.0);
        Self { inner: Arc::new(Inner { backend, config, buffer: Mutex::new(Buffer::default()) }) }
    }

    fn buffer(&self) -> MutexGuard<'_, Buffer> {
        self.inner.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.inner.config.timeout_ms)
    }

    /// Runs a backend call under the timeout.
    async fn call<T>(&self, what: &str, call: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout(), call).await {
            Ok(result) => result,
            Err(_) => Err(StorageError::Unavailable(format!("{what}: no answer within {} ms", self.inner.config.timeout_ms))),
        }
    }

    /// Sends `writes` to the backend (through `direct`) unless degraded; on
    /// a backend failure, buffers them and turns degraded.
    async fn write(&self, writes: Vec<Write>, direct: impl Future<Output = Result<()>>) -> Result<()> {
        {
            let mut buffer = self.buffer();
            if buffer.degraded.is_some() {
                return buffer.keep(writes, self.inner.config.buffer_limit);
            }
        }
        match self.call("write", direct).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_backend_failure() => {
                let mut buffer = self.buffer();
                buffer.keep(writes, self.inner.config.buffer_limit)?;
                if buffer.degraded.is_none() {
                    tracing::warn!(error = %e, "store unreachable: serving from memory, buffering writes until it returns");
                    metrics::gauge!("dispatch_store_degraded").set(1.0);
                    buffer.degraded = Some(e.to_string());
                    drop(buffer);
                    tokio::spawn(drain(self.clone()));
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Buffered snapshots of `kind` with ids in `(after, ..]`.
    fn buffered_snapshots(&self, kind: Kind, after: Option<u64>) -> Vec<(u64, Option<Vec<u8>>)> {
        let buffer = self.buffer();
        let start = after.map_or(std::ops::Bound::Included((kind, 0)), |id| std::ops::Bound::Excluded((kind, id)));
        buffer
            .snapshots
            .range((start, std::ops::Bound::Included((kind, u64::MAX))))
            .map(|(&(_, id), (_, w))| (id, w.value().cloned()))
            .collect()
    }

    /// Buffered log entries with `(job, seq)` keys in `keys`, in key order.
    fn buffered_events(&self, keys: impl std::ops::RangeBounds<(u64, u64)>) -> Vec<((u64, u64), Option<LogEntry>)> {
        self.buffer().events.range(keys).map(|(&k, (_, e))| (k, Some(e.clone()))).collect()
    }

    /// Buffered writes waiting (0 when healthy).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buffer().len()
    }
}

/// Lays buffered writes (`None`: deleted) over a page read from the backend.
/// `full`: the backend filled the page, so keys past its last one are not
/// known yet and buffered ones there wait for the next page.
fn overlay<K: Ord + Copy, V>(page: Vec<(K, V)>, full: bool, buffered: Vec<(K, Option<V>)>, limit: usize) -> Vec<(K, V)> {
    let bound = if full { page.last().map(|(k, _)| *k) } else { None };
    let mut merged: BTreeMap<K, V> = page.into_iter().collect();
    for (k, v) in buffered {
        if bound.is_some_and(|b| k > b) {
            break;
        }
        match v {
            Some(v) => drop(merged.insert(k, v)),
            None => drop(merged.remove(&k)),
        }
    }
    merged.into_iter().take(limit).collect()
}

/// Writes the buffer back once the backend answers; ends when it is empty.
async fn drain(store: ResilientStore) {
    let config = store.inner.config;
    let mut pause = Duration::from_millis(config.probe_first_ms);
    let mut drained = 0u64;
    loop {
        tokio::time::sleep(pause).await;
        loop {
            let batch = store.buffer().peek(config.drain_batch.max(1));
            if batch.is_empty() {
                let mut buffer = store.buffer();
                // Nothing came in since the peek (the lock is held): healthy again.
                if buffer.len() == 0 {
                    buffer.degraded = None;
                    metrics::gauge!("dispatch_store_degraded").set(0.0);
                    tracing::info!(drained, "store reachable again: buffered writes drained, writing straight through");
                    return;
                }
                continue;
            }
            match store.call("drain", write_back(&*store.inner.backend, &batch)).await {
                Ok(()) => {
                    drained += batch.len() as u64;
                    metrics::counter!("dispatch_store_drained_total").increment(batch.len() as u64);
                    store.buffer().forget(&batch);
                    pause = Duration::from_millis(config.probe_first_ms);
                }
                Err(e) => {
                    let mut buffer = store.buffer();
                    tracing::warn!(error = %e, buffered = buffer.len(), "store still unreachable; writes stay buffered");
                    buffer.degraded = Some(e.to_string());
                    pause = (pause * 2).min(Duration::from_millis(config.probe_max_ms));
                    break;
                }
            }
        }
    }
}

/// Sends buffered writes to the backend: snapshots in one batch, the rest one by one.
async fn write_back(backend: &dyn SnapshotStore, batch: &[(u64, Write)]) -> Result<()> {
    let mut puts = Vec::new();
    for (_, w) in batch {
        match w {
            Write::Snapshot(kind, id, SnapshotWrite::Put(blob)) => puts.push((*kind, *id, blob.clone())),
            Write::Snapshot(kind, id, SnapshotWrite::Final(blob)) => backend.put_final(*kind, *id, blob.clone()).await?,
            Write::Snapshot(kind, id, SnapshotWrite::Delete) => backend.delete(*kind, *id).await?,
            Write::Event(job, entry) => backend.append_event(*job, entry.clone()).await?,
        }
    }
    if !puts.is_empty() {
        backend.put_batch(puts).await?;
    }
    Ok(())
}

#[async_trait]
impl SnapshotStore for ResilientStore {
    async fn put(&self, kind: Kind, id: u64, blob: Vec<u8>) -> Result<()> {
        let writes = vec![Write::Snapshot(kind, id, SnapshotWrite::Put(blob.clone()))];
        self.write(writes, self.inner.backend.put(kind, id, blob)).await
    }

    async fn put_batch(&self, items: Vec<(Kind, u64, Vec<u8>)>) -> Result<()> {
        let writes = items.iter().map(|(k, id, b)| Write::Snapshot(*k, *id, SnapshotWrite::Put(b.clone()))).collect();
        self.write(writes, self.inner.backend.put_batch(items)).await
    }

    async fn put_final(&self, kind: Kind, id: u64, blob: Vec<u8>) -> Result<()> {
        let writes = vec![Write::Snapshot(kind, id, SnapshotWrite::Final(blob.clone()))];
        self.write(writes, self.inner.backend.put_final(kind, id, blob)).await
    }

    async fn put_coalesced(&self, items: Vec<(Kind, u64, Vec<u8>)>) -> Result<()> {
        let writes = items.iter().map(|(k, id, b)| Write::Snapshot(*k, *id, SnapshotWrite::Put(b.clone()))).collect();
        self.write(writes, self.inner.backend.put_coalesced(items)).await
    }

    async fn get(&self, kind: Kind, id: u64) -> Result<Option<Vec<u8>>> {
        if let Some((_, w)) = self.buffer().snapshots.get(&(kind, id)) {
            return Ok(w.value().cloned());
        }
        self.call("get", self.inner.backend.get(kind, id)).await
    }

    async fn delete(&self, kind: Kind, id: u64) -> Result<()> {
        self.write(vec![Write::Snapshot(kind, id, SnapshotWrite::Delete)], self.inner.backend.delete(kind, id)).await
    }

    async fn scan(&self, kind: Kind, mut after: Option<u64>, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        loop {
            let page = self.call("scan", self.inner.backend.scan(kind, after, limit)).await?;
            let full = page.len() >= limit && limit > 0;
            let last = page.last().map(|(id, _)| *id);
            let merged = overlay(page, full, self.buffered_snapshots(kind, after), limit);
            // Every row of a full page deleted in the buffer: look further.
            if merged.is_empty() && full {
                after = last;
                continue;
            }
            return Ok(merged);
        }
    }

    async fn append_event(&self, job: u64, entry: LogEntry) -> Result<()> {
        self.write(vec![Write::Event(job, entry.clone())], self.inner.backend.append_event(job, entry)).await
    }

    async fn last_event_seq(&self, job: u64) -> Result<u64> {
        // Buffered entries are the newest of their log.
        if let Some(((_, seq), _)) = self.buffer().events.range((job, 0)..=(job, u64::MAX)).next_back() {
            return Ok(*seq);
        }
        self.call("last_event_seq", self.inner.backend.last_event_seq(job)).await
    }

    async fn read_events(&self, job: u64, from_seq: u64) -> Result<Vec<LogEntry>> {
        let stored = self.call("read_events", self.inner.backend.read_events(job, from_seq)).await?;
        let page = stored.into_iter().map(|e| ((job, e.seq), e)).collect();
        let buffered = self.buffered_events((job, from_seq)..=(job, u64::MAX));
        Ok(overlay(page, false, buffered, usize::MAX).into_iter().map(|(_, e)| e).collect())
    }

    async fn scan_events(&self, after: Option<(u64, u64)>, limit: usize) -> Result<Vec<(u64, LogEntry)>> {
        let stored = self.call("scan_events", self.inner.backend.scan_events(after, limit)).await?;
        let full = stored.len() >= limit && limit > 0;
        let page = stored.into_iter().map(|(job, e)| ((job, e.seq), e)).collect();
        let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let buffered = self.buffered_events((start, std::ops::Bound::Unbounded));
        Ok(overlay(page, full, buffered, limit).into_iter().map(|((job, _), e)| (job, e)).collect())
    }

    async fn ping(&self) -> Result<()> {
        self.call("ping", self.inner.backend.ping()).await
    }

    fn health(&self) -> Health {
        let buffer = self.buffer();
        match &buffer.degraded {
            None => Health::Healthy,
            Some(reason) => Health::Degraded { buffered: buffer.len(), reason: reason.clone() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_lays_the_buffer_over_a_page_within_what_the_page_covers() {
        let page = vec![(1, "a"), (3, "b"), (5, "c")];
        // The page is full: 7 lies beyond what it covers and waits.
        let merged = overlay(page.clone(), true, vec![(2, Some("new")), (3, None), (7, Some("later"))], 3);
        assert_eq!(merged, vec![(1, "a"), (2, "new"), (5, "c")]);
        // Not full: the backend has nothing more, so 7 comes now.
        let merged = overlay(page, false, vec![(7, Some("later"))], 10);
        assert_eq!(merged, vec![(1, "a"), (3, "b"), (5, "c"), (7, "later")]);
    }

    #[test]
    fn a_full_buffer_refuses_new_keys_but_takes_overwrites() {
        let mut b = Buffer::default();
        let snap = |id, v: &[u8]| Write::Snapshot(Kind::Job, id, SnapshotWrite::Put(v.to_vec()));
        b.keep(vec![snap(1, b"a"), snap(2, b"b")], 2).unwrap();
        assert!(matches!(b.keep(vec![snap(3, b"c")], 2), Err(StorageError::BufferFull { buffered: 2 })));
        b.keep(vec![snap(1, b"newer")], 2).unwrap();
        assert_eq!(b.len(), 2);
        // A drained write replaced meanwhile stays for the next round.
        let drained = b.peek(10);
        b.keep(vec![snap(2, b"newest")], 2).unwrap();
        b.forget(&drained);
        assert_eq!(b.len(), 1);
        assert!(matches!(b.snapshots.get(&(Kind::Job, 2)), Some((_, SnapshotWrite::Put(v))) if v == b"newest"));
    }
}
