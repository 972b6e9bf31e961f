//! [`FencedStore`]: a city owner's store, which writes only while the
//! owner's lease is trusted.
//!
//! A cluster's engine holds each city by a lease that must be renewed
//! before it runs out. The engine's [`Fence`] holds the instant until which
//! the lease is trusted (the renewal's send time plus the TTL less a safety
//! margin, so always before the lease can run out in the store) and is
//! revoked when the lease is lost or given up. Every write checks the fence
//! *before* it is handed to the backend, and again when the backend has
//! answered: a write begun in time but answered after the fence closed is
//! reported as failed, so nothing is acknowledged that the next owner might
//! not see. Reads pass: an owner past its lease answers nothing anyway.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::time::Instant;

use crate::error::{Result, StorageError};
use crate::store::{Health, Kind, LogEntry, SnapshotPut, SnapshotStore};

/// Until when a city's owner may write.
#[derive(Debug)]
pub struct Fence {
    /// The instant writes stop, as nanoseconds after `origin`.
    until_nanos: AtomicU64,
    origin: Instant,
    revoked: AtomicBool,
    city: String,
}

impl Fence {
    /// A fence open until `until`.
    #[must_use]
    pub fn new(city: &str, until: Instant) -> Arc<Self> {
        let origin = Instant::now();
        let fence = Self { until_nanos: AtomicU64::new(0), origin, revoked: AtomicBool::new(false), city: city.to_owned() };
        fence.extend(until);
        Arc::new(fence)
    }

    /// Moves the close to `until` (a renewal was confirmed).
    pub fn extend(&self, until: Instant) {
        let nanos = u64::try_from(until.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX);
        self.until_nanos.store(nanos, Ordering::Release);
    }

    /// Closes the fence for good (the lease is lost or released).
    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::Release);
    }

    /// Whether writes may go out now.
    #[must_use]
    pub fn is_open(&self) -> bool {
        let now = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        !self.revoked.load(Ordering::Acquire) && now < self.until_nanos.load(Ordering::Acquire)
    }

    /// `Unavailable` (counted) once the fence has closed.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_open() {
            Ok(())
        } else {
            metrics::counter!("dispatch_store_fenced_writes_total").increment(1);
            Err(StorageError::Unavailable(format!(
                "fenced: this node's lease of {} is lost or expiring; it writes nothing more",
                self.city
            )))
        }
    }
}

/// A store whose writes pass only through an open [`Fence`].
pub struct FencedStore {
    inner: Arc<dyn SnapshotStore>,
    fence: Arc<Fence>,
}

impl FencedStore {
    /// `inner`, written only while `fence` is open.
    #[must_use]
    pub fn new(inner: Arc<dyn SnapshotStore>, fence: Arc<Fence>) -> Self {
        Self { inner, fence }
    }

    /// Checks the fence, writes, and checks again: an answer after the fence closed is no acknowledgement.
    async fn write(&self, write: impl Future<Output = Result<()>>) -> Result<()> {
        self.fence.check()?;
        let written = write.await;
        self.fence.check()?;
        written
    }
}

#[async_trait]
impl SnapshotStore for FencedStore {
    async fn put(&self, kind: Kind, id: u64, blob: Vec<u8>) -> Result<()> {
        self.write(self.inner.put(kind, id, blob)).await
    }

    async fn put_batch(&self, items: Vec<(Kind, u64, Vec<u8>)>) -> Result<()> {
        self.write(self.inner.put_batch(items)).await
    }

    async fn put_final(&self, kind: Kind, id: u64, blob: Vec<u8>) -> Result<()> {
        self.write(self.inner.put_final(kind, id, blob)).await
    }

    async fn put_coalesced(&self, items: Vec<(Kind, u64, Vec<u8>)>) -> Result<()> {
        self.write(self.inner.put_coalesced(items)).await
    }

    async fn get(&self, kind: Kind, id: u64) -> Result<Option<Vec<u8>>> {
        self.inner.get(kind, id).await
    }

    async fn delete(&self, kind: Kind, id: u64) -> Result<()> {
        self.write(self.inner.delete(kind, id)).await
    }

    async fn scan(&self, kind: Kind, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        self.inner.scan(kind, after, limit).await
    }

    async fn append_event(&self, job: u64, entry: LogEntry) -> Result<()> {
        self.write(self.inner.append_event(job, entry)).await
    }

    async fn put_and_append(&self, snapshots: Vec<SnapshotPut>, job: u64, entry: LogEntry) -> Result<()> {
        self.write(self.inner.put_and_append(snapshots, job, entry)).await
    }

    async fn last_event_seq(&self, job: u64) -> Result<u64> {
        self.inner.last_event_seq(job).await
    }

    async fn read_events(&self, job: u64, from_seq: u64) -> Result<Vec<LogEntry>> {
        self.inner.read_events(job, from_seq).await
    }

    async fn scan_events(&self, after: Option<(u64, u64)>, limit: usize) -> Result<Vec<(u64, LogEntry)>> {
        self.inner.scan_events(after, limit).await
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    fn health(&self) -> Health {
        self.inner.health()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::MemoryStore;

    #[tokio::test(start_paused = true)]
    async fn writes_pass_only_while_the_fence_is_open_and_reads_always() {
        let memory = Arc::new(MemoryStore::new());
        let fence = Fence::new("des-moines", Instant::now() + Duration::from_secs(2));
        let store = FencedStore::new(memory.clone(), Arc::clone(&fence));
        store.put(Kind::Job, 1, b"a".to_vec()).await.unwrap();
        store.append_event(1, LogEntry::new(1, 1, b"posted".to_vec())).await.unwrap();

        // Past the trusted instant without a renewal: refused before reaching the store.
        tokio::time::advance(Duration::from_secs(2)).await;
        let refused = store.put(Kind::Job, 1, b"b".to_vec()).await.unwrap_err();
        assert!(refused.to_string().contains("fenced"), "{refused}");
        assert!(store.append_event(1, LogEntry::new(2, 2, b"late".to_vec())).await.is_err());
        assert_eq!(memory.get(Kind::Job, 1).await.unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(memory.last_event_seq(1).await.unwrap(), 1);
        assert_eq!(store.get(Kind::Job, 1).await.unwrap().as_deref(), Some(&b"a"[..]), "reads pass");

        // A renewal reopens it; a revocation closes it for good.
        fence.extend(Instant::now() + Duration::from_secs(2));
        store.put(Kind::Job, 1, b"c".to_vec()).await.unwrap();
        fence.revoke();
        fence.extend(Instant::now() + Duration::from_secs(60));
        assert!(store.put(Kind::Job, 1, b"d".to_vec()).await.is_err());
        assert_eq!(memory.get(Kind::Job, 1).await.unwrap().as_deref(), Some(&b"c"[..]));
    }

    /// A store that takes its time to answer.
    struct Slow(Arc<MemoryStore>);

    #[async_trait]
    impl SnapshotStore for Slow {
        async fn put(&self, kind: Kind, id: u64, blob: Vec<u8>) -> Result<()> {
            self.0.put(kind, id, blob).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        }
        async fn put_batch(&self, items: Vec<(Kind, u64, Vec<u8>)>) -> Result<()> {
            self.0.put_batch(items).await
        }
        async fn get(&self, kind: Kind, id: u64) -> Result<Option<Vec<u8>>> {
            self.0.get(kind, id).await
        }
        async fn delete(&self, kind: Kind, id: u64) -> Result<()> {
            self.0.delete(kind, id).await
        }
        async fn scan(&self, kind: Kind, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
            self.0.scan(kind, after, limit).await
        }
        async fn append_event(&self, job: u64, entry: LogEntry) -> Result<()> {
            self.0.append_event(job, entry).await
        }
        async fn last_event_seq(&self, job: u64) -> Result<u64> {
            self.0.last_event_seq(job).await
        }
        async fn read_events(&self, job: u64, from_seq: u64) -> Result<Vec<LogEntry>> {
            self.0.read_events(job, from_seq).await
        }
        async fn scan_events(&self, after: Option<(u64, u64)>, limit: usize) -> Result<Vec<(u64, LogEntry)>> {
            self.0.scan_events(after, limit).await
        }
        async fn ping(&self) -> Result<()> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_after_the_fence_closed_is_no_acknowledgement() {
        let fence = Fence::new("omaha", Instant::now() + Duration::from_millis(500));
        let store = FencedStore::new(Arc::new(Slow(Arc::new(MemoryStore::new()))), fence);
        let late = store.put(Kind::Contractor, 7, b"x".to_vec()).await.unwrap_err();
        assert!(late.to_string().contains("fenced"), "{late}");
    }
}
