//! [`ResilientStore`]: keeps the engine serving while its store is down.
//!
//! Every write goes to the wrapped backend under a timeout. When one fails
//! because the backend is unreachable (or hangs past the timeout), the store
//! turns **degraded**: that write and every later one are kept in a bounded
//! buffer instead — newest value per snapshot key, every log entry by
//! `(job, seq)` — and the caller is answered once the write is durable in
//! the local [`Journal`] (without one, at once: tests and the memory store),
//! so the engine goes on serving from memory. Reads see the buffer over the
//! backend. A drain task probes the backend with growing pauses and writes
//! the buffer back **in the order it came in**, in batches; an entry leaves
//! the journal, then the buffer, only once the backend has confirmed it, and
//! only if no newer write replaced it meanwhile. When the buffer is empty
//! the store is healthy again, and writes go straight through once more.
//!
//! A start over a journal an earlier run left (a crash during an outage)
//! begins degraded with those writes buffered, so reads see them at once and
//! they drain before anything newer reaches the backend.
//!
//! The buffer is bounded ([`ResilienceConfig::buffer_limit`] distinct keys
//! and [`ResilienceConfig::buffer_max_bytes`] of data, in memory and on
//! disk alike): past it a write is **refused** with
//! [`StorageError::BufferFull`], never accepted and dropped. GPS snapshots of
//! a whole city fit many times over.
//!
//! Metrics: `dispatch_store_degraded` (0/1), `dispatch_store_buffered`
//! (entries), `dispatch_store_buffered_bytes`,
//! `dispatch_store_buffer_rejected_total`, `dispatch_store_drained_total`,
//! and the journal's `dispatch_journal_commit_seconds`. A log line marks each
//! change of state.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::error::{Result, StorageError};
use crate::group_commit::durable;
use crate::journal::{Journal, JournalRecord, SnapshotWrite, Write, WriteKey};
use crate::store::{Health, Kind, LogEntry, SnapshotPut, SnapshotStore};

/// How patient the wrapper is, and how much it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResilienceConfig {
    /// Writes (distinct keys) held while the backend is down, at most.
    pub buffer_limit: usize,
    /// Bytes of snapshot and log data held while the backend is down, at most.
    pub buffer_max_bytes: usize,
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
        Self {
            buffer_limit: 200_000,
            buffer_max_bytes: 256 * 1024 * 1024,
            timeout_ms: 2_000,
            probe_first_ms: 200,
            probe_max_ms: 5_000,
            drain_batch: 1_000,
        }
    }
}

/// What the wrapper holds while degraded.
#[derive(Debug, Default)]
struct Buffer {
    /// Each entry with the generation it was written in.
    snapshots: BTreeMap<(Kind, u64), (u64, SnapshotWrite)>,
    events: BTreeMap<(u64, u64), (u64, LogEntry)>,
    /// Generation → key: the order writes came in, which is the order they drain in.
    order: BTreeMap<u64, WriteKey>,
    /// Data bytes held.
    bytes: usize,
    next_generation: u64,
    /// Why the store is degraded; `None` while healthy.
    degraded: Option<String>,
}

impl Buffer {
    fn len(&self) -> usize {
        self.order.len()
    }

    /// The buffered write of `key`, with its generation.
    fn get(&self, key: WriteKey) -> Option<(u64, Write)> {
        match key {
            WriteKey::Snapshot(kind, id) => self.snapshots.get(&(kind, id)).map(|(g, w)| (*g, Write::Snapshot(kind, id, w.clone()))),
            WriteKey::Event(job, seq) => self.events.get(&(job, seq)).map(|(g, e)| (*g, Write::Event(job, e.clone()))),
        }
    }

    fn generation_of(&self, key: WriteKey) -> Option<u64> {
        match key {
            WriteKey::Snapshot(kind, id) => self.snapshots.get(&(kind, id)).map(|(g, _)| *g),
            WriteKey::Event(job, seq) => self.events.get(&(job, seq)).map(|(g, _)| *g),
        }
    }

    /// Holds `write` as generation `generation`; returns the generation it replaced.
    fn insert(&mut self, generation: u64, write: Write) -> Option<u64> {
        let key = write.key();
        self.bytes += write.bytes();
        let replaced = match write {
            Write::Snapshot(kind, id, value) => {
                self.snapshots.insert((kind, id), (generation, value)).map(|(g, v)| (g, v.value().map_or(0, Vec::len)))
            }
            Write::Event(job, e) => self.events.insert((job, e.seq), (generation, e)).map(|(g, e)| (g, e.payload.len())),
        };
        self.order.insert(generation, key);
        replaced.map(|(old, bytes)| {
            self.order.remove(&old);
            self.bytes -= bytes;
            old
        })
    }

    fn remove(&mut self, key: WriteKey) {
        let removed = match key {
            WriteKey::Snapshot(kind, id) => self.snapshots.remove(&(kind, id)).map(|(g, v)| (g, v.bytes())),
            WriteKey::Event(job, seq) => self.events.remove(&(job, seq)).map(|(g, e)| (g, e.payload.len())),
        };
        if let Some((generation, bytes)) = removed {
            self.order.remove(&generation);
            self.bytes -= bytes;
        }
    }

    fn publish(&self) {
        metrics::gauge!("dispatch_store_buffered").set(self.len() as f64);
        metrics::gauge!("dispatch_store_buffered_bytes").set(self.bytes as f64);
    }

    /// Keeps `writes`, all or none: refused if they would pass the limits.
    /// With a journal, they are queued to it in the same order; the answer
    /// comes once they are durable.
    fn keep(
        &mut self,
        writes: Vec<Write>,
        config: &ResilienceConfig,
        journal: Option<&Journal>,
    ) -> Result<Option<oneshot::Receiver<Result<()>>>> {
        let (mut new_keys, mut added) = (0usize, 0usize);
        for w in &writes {
            match self.get(w.key()) {
                Some((_, old)) => added += w.bytes().saturating_sub(old.bytes()),
                None => {
                    new_keys += 1;
                    added += w.bytes();
                }
            }
        }
        if self.len() + new_keys > config.buffer_limit || self.bytes + added > config.buffer_max_bytes {
            metrics::counter!("dispatch_store_buffer_rejected_total").increment(writes.len() as u64);
            return Err(StorageError::BufferFull { buffered: self.len() });
        }
        let mut journaled = Vec::with_capacity(writes.len());
        for w in writes {
            self.next_generation += 1;
            let generation = self.next_generation;
            let replaced = self.insert(generation, w.clone());
            journaled.push((generation, w, replaced));
        }
        self.publish();
        journal.map(|j| j.record(journaled.iter().map(|(g, w, r)| (*g, w, *r)))).transpose()
    }

    /// Up to `n` buffered writes, with their generations, in the order they came in.
    fn peek(&self, n: usize) -> Vec<(u64, Write)> {
        self.order.values().take(n).filter_map(|key| self.get(*key)).collect()
    }

    /// The generations of `drained` that no newer write replaced.
    fn still_current(&self, drained: &[(u64, Write)]) -> Vec<u64> {
        drained.iter().filter(|(g, w)| self.generation_of(w.key()) == Some(*g)).map(|(g, _)| *g).collect()
    }

    /// Drops the drained writes that no newer write replaced.
    fn forget(&mut self, drained: &[(u64, Write)]) {
        for (generation, w) in drained {
            if self.generation_of(w.key()) == Some(*generation) {
                self.remove(w.key());
            }
        }
        self.publish();
    }
}

struct Inner {
    backend: Arc<dyn SnapshotStore>,
    config: ResilienceConfig,
    buffer: Mutex<Buffer>,
    journal: Option<Journal>,
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
    /// Wraps `backend`, buffering in memory only: a crash while degraded
    /// loses the buffer. For tests and stores that are not durable anyway.
    #[must_use]
    pub fn new(backend: Arc<dyn SnapshotStore>, config: ResilienceConfig) -> Self {
        Self::assemble(backend, config, Buffer::default(), None)
    }

    /// Wraps `backend` with the journal in `dir`, written as `writer`. Writes
    /// an earlier run left there are buffered again and drained first (the
    /// store starts degraded until they are): call it within a tokio runtime.
    pub fn journaled(backend: Arc<dyn SnapshotStore>, config: ResilienceConfig, dir: &Path, writer: &str) -> Result<Self> {
        let (journal, left) = Journal::open(dir, writer)?;
        let mut buffer = Buffer::default();
        let mut stale = Vec::new();
        let mut writers: BTreeMap<(String, u64), usize> = BTreeMap::new();
        for (generation, JournalRecord { writer, epoch, write }) in left {
            *writers.entry((writer, epoch)).or_default() += 1;
            stale.extend(buffer.insert(generation, write));
            buffer.next_generation = generation;
        }
        if !stale.is_empty() {
            drop(journal.remove(stale)?);
        }
        if buffer.len() > 0 {
            tokio::runtime::Handle::try_current()
                .map_err(|_| StorageError::Backend("a journal with writes to drain needs a tokio runtime to drain them".into()))?;
            for ((writer, epoch), writes) in &writers {
                tracing::warn!(journal = %journal.path().display(), writer, epoch, writes, "acknowledged writes of an earlier run were never confirmed by the store; draining them first");
            }
            buffer.degraded = Some(format!("{} writes journaled by an earlier run wait for the store", buffer.len()));
        }
        let store = Self::assemble(backend, config, buffer, Some(journal));
        if store.buffered() > 0 {
            tokio::spawn(drain(store.clone()));
        }
        Ok(store)
    }

    fn assemble(backend: Arc<dyn SnapshotStore>, config: ResilienceConfig, buffer: Buffer, journal: Option<Journal>) -> Self {
        metrics::gauge!("dispatch_store_degraded").set(if buffer.degraded.is_some() { 1.0 } else { 0.0 });
        buffer.publish();
        Self { inner: Arc::new(Inner { backend, config, buffer: Mutex::new(buffer), journal }) }
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
        // Degraded: kept (and journaled) at once, the backend not tried.
        let healthy = {
            let mut buffer = self.buffer();
            if buffer.degraded.is_none() { Ok(writes) } else { Err(buffer.keep(writes, &self.inner.config, self.inner.journal.as_ref())) }
        };
        let writes = match healthy {
            Ok(writes) => writes,
            Err(kept) => return settle(kept?).await,
        };
        match self.call("write", direct).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_backend_failure() => {
                let journaled = {
                    let mut buffer = self.buffer();
                    let journaled = buffer.keep(writes, &self.inner.config, self.inner.journal.as_ref())?;
                    if buffer.degraded.is_none() {
                        tracing::warn!(error = %e, "store unreachable: serving from memory, journaling writes until it returns");
                        metrics::gauge!("dispatch_store_degraded").set(1.0);
                        buffer.degraded = Some(e.to_string());
                        tokio::spawn(drain(self.clone()));
                    }
                    journaled
                };
                settle(journaled).await
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

    /// Removes drained writes from the journal, durably, unless a newer
    /// write replaced them meanwhile (which removed them already).
    async fn unjournal(&self, drained: &[(u64, Write)]) -> Result<()> {
        let Some(journal) = &self.inner.journal else { return Ok(()) };
        let removal = {
            let buffer = self.buffer();
            journal.remove(buffer.still_current(drained))?
        };
        durable(removal).await
    }

    /// Buffered writes waiting (0 when healthy).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buffer().len()
    }
}

/// Waits until kept writes are durable in the journal, if there is one.
async fn settle(journaled: Option<oneshot::Receiver<Result<()>>>) -> Result<()> {
    match journaled {
        Some(answer) => durable(answer).await,
        None => Ok(()),
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
            let confirmed = match store.call("drain", write_back(&*store.inner.backend, &batch)).await {
                // Out of the journal first: an entry left there after the
                // backend moved on would be replayed over newer data.
                Ok(()) => store.unjournal(&batch).await,
                Err(e) => Err(e),
            };
            match confirmed {
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

/// Sends buffered writes to the backend in the order they came in: a run of
/// snapshot puts as one batch, a run of log entries concurrently across jobs
/// but in sequence order within each, anything else one by one.
async fn write_back(backend: &dyn SnapshotStore, batch: &[(u64, Write)]) -> Result<()> {
    let mut rest = batch;
    while let Some((_, first)) = rest.first() {
        let run = match first {
            Write::Snapshot(_, _, SnapshotWrite::Put(_)) => {
                rest.iter().take_while(|(_, w)| matches!(w, Write::Snapshot(_, _, SnapshotWrite::Put(_)))).count()
            }
            Write::Event(..) => rest.iter().take_while(|(_, w)| matches!(w, Write::Event(..))).count(),
            Write::Snapshot(..) => 1,
        };
        let (now, later) = rest.split_at(run);
        match first {
            Write::Snapshot(_, _, SnapshotWrite::Put(_)) => {
                let puts = now.iter().filter_map(|(_, w)| match w {
                    Write::Snapshot(kind, id, SnapshotWrite::Put(blob)) => Some((*kind, *id, blob.clone())),
                    _ => None,
                });
                backend.put_batch(puts.collect()).await?;
            }
            Write::Event(..) => {
                let mut logs: BTreeMap<u64, Vec<&LogEntry>> = BTreeMap::new();
                for (_, w) in now {
                    if let Write::Event(job, entry) = w {
                        logs.entry(*job).or_default().push(entry);
                    }
                }
                futures_util::future::try_join_all(logs.into_iter().map(|(job, entries)| async move {
                    for entry in entries {
                        backend.append_event(job, entry.clone()).await?;
                    }
                    Ok::<_, StorageError>(())
                }))
                .await?;
            }
            Write::Snapshot(kind, id, SnapshotWrite::Final(blob)) => backend.put_final(*kind, *id, blob.clone()).await?,
            Write::Snapshot(kind, id, SnapshotWrite::Delete) => backend.delete(*kind, *id).await?,
        }
        rest = later;
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

    async fn put_and_append(&self, snapshots: Vec<SnapshotPut>, job: u64, entry: LogEntry) -> Result<()> {
        let mut writes: Vec<Write> = snapshots
            .iter()
            .map(|s| {
                let value = if s.last { SnapshotWrite::Final(s.blob.clone()) } else { SnapshotWrite::Put(s.blob.clone()) };
                Write::Snapshot(s.kind, s.id, value)
            })
            .collect();
        writes.push(Write::Event(job, entry.clone()));
        self.write(writes, self.inner.backend.put_and_append(snapshots, job, entry)).await
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

    fn snap(id: u64, v: &[u8]) -> Write {
        Write::Snapshot(Kind::Job, id, SnapshotWrite::Put(v.to_vec()))
    }

    #[test]
    fn a_full_buffer_refuses_new_keys_but_takes_overwrites() {
        let mut b = Buffer::default();
        let config = ResilienceConfig { buffer_limit: 2, ..ResilienceConfig::default() };
        b.keep(vec![snap(1, b"a"), snap(2, b"b")], &config, None).unwrap();
        assert!(matches!(b.keep(vec![snap(3, b"c")], &config, None), Err(StorageError::BufferFull { buffered: 2 })));
        b.keep(vec![snap(1, b"newer")], &config, None).unwrap();
        assert_eq!(b.len(), 2);
        // A drained write replaced meanwhile stays for the next round.
        let drained = b.peek(10);
        b.keep(vec![snap(2, b"newest")], &config, None).unwrap();
        assert_eq!(b.still_current(&drained), vec![3], "snapshot 1 as drained is current; 2 was replaced");
        b.forget(&drained);
        assert_eq!(b.len(), 1);
        assert!(matches!(b.snapshots.get(&(Kind::Job, 2)), Some((_, SnapshotWrite::Put(v))) if v == b"newest"));
    }

    #[test]
    fn the_byte_bound_refuses_what_would_pass_it_and_counts_overwrites_by_their_growth() {
        let mut b = Buffer::default();
        let config = ResilienceConfig { buffer_max_bytes: 10, ..ResilienceConfig::default() };
        b.keep(vec![snap(1, b"12345678")], &config, None).unwrap();
        assert!(matches!(b.keep(vec![snap(2, b"123")], &config, None), Err(StorageError::BufferFull { .. })));
        b.keep(vec![snap(1, b"1234567890")], &config, None).unwrap();
        assert_eq!(b.bytes, 10);
        b.forget(&b.peek(10));
        assert_eq!((b.len(), b.bytes), (0, 0));
    }

    #[test]
    fn writes_drain_in_the_order_they_came_in_not_in_key_order() {
        let mut b = Buffer::default();
        let config = ResilienceConfig::default();
        let event = Write::Event(1, LogEntry::new(1, 0, b"posted".to_vec()));
        b.keep(vec![snap(9, b"a")], &config, None).unwrap();
        b.keep(vec![event.clone()], &config, None).unwrap();
        b.keep(vec![snap(2, b"b")], &config, None).unwrap();
        // Rewriting 9 moves it behind the others: its newest value is the latest write.
        b.keep(vec![snap(9, b"c")], &config, None).unwrap();
        let order: Vec<Write> = b.peek(10).into_iter().map(|(_, w)| w).collect();
        assert_eq!(order, vec![event, snap(2, b"b"), snap(9, b"c")]);
    }
}
