//! The snapshot writer: one task per city through which every contractor
//! snapshot goes to the store, in order.
//!
//! - [`SnapshotWriter::coalesce`] (GPS-only changes) keeps only the newest
//!   blob per contractor and writes them all in one `put_batch` every
//!   [`DispatchConfig::snapshot_interval`]: 100k moving contractors cost one
//!   store transaction a second, not 100k.
//! - [`SnapshotWriter::write_now`] (lifecycle changes) drops any pending blob
//!   for that contractor — the new one is newer and complete — writes at
//!   once (with every other lifecycle write waiting behind it, in one
//!   batch), and answers only when the store has confirmed. Because both go
//!   through the same task, an older GPS blob can never land after a newer
//!   lifecycle write.
//!
//! [`DispatchConfig::snapshot_interval`]: crate::DispatchConfig::snapshot_interval

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dispatch_storage::{Kind, SnapshotStore, StorageError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

enum Write {
    Now(u64, Vec<u8>, oneshot::Sender<Result<(), StorageError>>),
    Close(oneshot::Sender<()>),
}

/// Shards of [`Pending`]: contractors on both cores rarely wait for each other.
const SHARDS: usize = 16;

/// The newest GPS-only blob per contractor, waiting for the next flush. A
/// map the senders write into, not a queue: however fast fixes come, it holds
/// at most one blob per contractor.
#[derive(Default)]
struct Pending {
    shards: [std::sync::Mutex<HashMap<u64, Vec<u8>>>; SHARDS],
}

impl Pending {
    fn shard(&self, id: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<u8>>> {
        self.shards[(id % SHARDS as u64) as usize].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn insert(&self, id: u64, blob: Vec<u8>) {
        self.shard(id).insert(id, blob);
    }

    fn remove(&self, id: u64) {
        self.shard(id).remove(&id);
    }

    /// Everything pending, leaving it empty.
    fn take_all(&self) -> HashMap<u64, Vec<u8>> {
        let mut all = HashMap::new();
        for shard in &self.shards {
            all.extend(std::mem::take(&mut *shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner)));
        }
        all
    }

    /// Puts back blobs that failed to write, unless a newer one came meanwhile.
    fn restore(&self, blobs: HashMap<u64, Vec<u8>>) {
        for (id, blob) in blobs {
            self.shard(id).entry(id).or_insert(blob);
        }
    }
}

/// The sending side of a city's snapshot writer.
#[derive(Clone)]
pub(crate) struct SnapshotWriter {
    tx: mpsc::UnboundedSender<Write>,
    pending: Arc<Pending>,
}

impl SnapshotWriter {
    /// Starts the writer task for `kind` snapshots on `store`.
    pub(crate) fn start(store: Arc<dyn SnapshotStore>, kind: Kind, interval: Duration) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Arc::new(Pending::default());
        let task = tokio::spawn(run(store, kind, interval, Arc::clone(&pending), rx));
        (Self { tx, pending }, task)
    }

    /// Keeps `blob` as the newest snapshot of `id`, written within one interval.
    pub(crate) fn coalesce(&self, id: u64, blob: Vec<u8>) {
        self.pending.insert(id, blob);
    }

    /// Flushes what is pending and stops the writer; later writes fail.
    pub(crate) async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Write::Close(ack)).is_ok() {
            let _ = done.await;
        }
    }

    /// Writes `blob` as the snapshot of `id` now; returns once the store confirmed.
    pub(crate) async fn write_now(&self, id: u64, blob: Vec<u8>) -> Result<(), StorageError> {
        let (ack, done) = oneshot::channel();
        self.tx.send(Write::Now(id, blob, ack)).map_err(|_| StorageError::Backend("snapshot writer stopped".into()))?;
        done.await.map_err(|_| StorageError::Backend("snapshot writer stopped".into()))?
    }
}

async fn run(store: Arc<dyn SnapshotStore>, kind: Kind, interval: Duration, pending: Arc<Pending>, mut rx: mpsc::UnboundedReceiver<Write>) {
    let pending = &*pending;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Write::Now(id, blob, ack)) => {
                    if let Some(close) = write_now_batch(&*store, kind, pending, &mut rx, (id, blob, ack)).await {
                        flush(&*store, kind, pending).await;
                        let _ = close.send(());
                        return;
                    }
                }
                Some(Write::Close(ack)) => {
                    flush(&*store, kind, pending).await;
                    let _ = ack.send(());
                    return;
                }
                None => break,
            },
            _ = tick.tick() => flush(&*store, kind, pending).await,
        }
    }
    flush(&*store, kind, pending).await;
}

/// Lifecycle writes queued behind each other are written together: this one
/// and every `Now` already waiting (up to [`MAX_NOW_BATCH`]) go in one
/// `put_batch`, and each caller is answered once it is stored. One task
/// writing one at a time would cap a city at one lifecycle change per store
/// round trip. GPS blobs coalesced after a contractor's entry was cleared
/// here are newer than the batch's and stay pending (written after). A
/// `Close` met on the way ends the batch and is handed back.
async fn write_now_batch(
    store: &dyn SnapshotStore,
    kind: Kind,
    pending: &Pending,
    rx: &mut mpsc::UnboundedReceiver<Write>,
    first: (u64, Vec<u8>, oneshot::Sender<Result<(), StorageError>>),
) -> Option<oneshot::Sender<()>> {
    let (id, blob, ack) = first;
    pending.remove(id);
    let mut batch = HashMap::from([(id, blob)]);
    let mut acks = vec![ack];
    let mut close = None;
    while acks.len() < MAX_NOW_BATCH {
        match rx.try_recv() {
            Ok(Write::Now(id, blob, ack)) => {
                pending.remove(id);
                batch.insert(id, blob);
                acks.push(ack);
            }
            Ok(Write::Close(ack)) => {
                close = Some(ack);
                break;
            }
            Err(_) => break,
        }
    }
    let result = store.put_batch(batch.into_iter().map(|(id, blob)| (kind, id, blob)).collect()).await;
    for ack in acks {
        let _ = ack.send(result.as_ref().copied().map_err(|e| StorageError::Backend(e.to_string())));
    }
    close
}

/// Most lifecycle writes one batch carries.
const MAX_NOW_BATCH: usize = 1_024;

async fn flush(store: &dyn SnapshotStore, kind: Kind, pending: &Pending) {
    let blobs = pending.take_all();
    if blobs.is_empty() {
        return;
    }
    let batch: Vec<_> = blobs.iter().map(|(&id, blob)| (kind, id, blob.clone())).collect();
    match store.put_coalesced(batch).await {
        Ok(()) => metrics::counter!("dispatch_snapshots_coalesced_total").increment(blobs.len() as u64),
        Err(e) => {
            // Keep them (unless newer ones came) and try again next tick.
            tracing::warn!(%e, pending = blobs.len(), "coalesced snapshots not written; retrying");
            pending.restore(blobs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatch_storage::MemoryStore;

    fn writer() -> (SnapshotWriter, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        let (writer, _) = SnapshotWriter::start(Arc::clone(&store) as Arc<dyn SnapshotStore>, Kind::Contractor, Duration::from_secs(3600));
        (writer, store)
    }

    #[tokio::test]
    async fn lifecycle_writes_queued_together_are_all_stored_and_answered() {
        let (writer, store) = writer();
        // Queued together (tasks on one thread run before the writer next does): one batch.
        let spawn = |i: u64, blob: Vec<u8>| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.write_now(i, blob).await })
        };
        let waits: Vec<_> = (0..100u64).map(|i| spawn(i, vec![i as u8; 3])).collect();
        for wait in waits {
            wait.await.unwrap().unwrap();
        }
        for i in 0..100u64 {
            assert_eq!(store.get(Kind::Contractor, i).await.unwrap(), Some(vec![i as u8; 3]));
        }
        store.set_unavailable(true);
        let waits: Vec<_> = (0..3u64).map(|i| spawn(i, vec![9])).collect();
        for wait in waits {
            assert!(wait.await.unwrap().is_err(), "every caller of a failed batch hears of it");
        }
    }

    #[tokio::test]
    async fn gps_blobs_coalesce_to_one_per_contractor_however_many_come() {
        let (writer, store) = writer();
        for fix in 0..1_000u64 {
            writer.coalesce(fix % 10, fix.to_le_bytes().to_vec());
        }
        writer.close().await;
        for id in 0..10u64 {
            let newest = 990 + id;
            assert_eq!(store.get(Kind::Contractor, id).await.unwrap(), Some(newest.to_le_bytes().to_vec()));
        }
        assert!(writer.pending.take_all().is_empty());
    }

    #[tokio::test]
    async fn a_lifecycle_write_replaces_older_gps_and_newer_gps_lands_after_it() {
        let (writer, store) = writer();
        writer.coalesce(7, b"gps-old".to_vec());
        writer.write_now(7, b"lifecycle".to_vec()).await.unwrap();
        assert_eq!(store.get(Kind::Contractor, 7).await.unwrap().as_deref(), Some(&b"lifecycle"[..]));
        writer.coalesce(7, b"gps-new".to_vec());
        writer.close().await;
        assert_eq!(store.get(Kind::Contractor, 7).await.unwrap().as_deref(), Some(&b"gps-new"[..]));
    }
}
