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
    Coalesce(u64, Vec<u8>),
    Now(u64, Vec<u8>, oneshot::Sender<Result<(), StorageError>>),
    Close(oneshot::Sender<()>),
}

/// The sending side of a city's snapshot writer.
#[derive(Clone)]
pub(crate) struct SnapshotWriter {
    tx: mpsc::UnboundedSender<Write>,
}

impl SnapshotWriter {
    /// Starts the writer task for `kind` snapshots on `store`.
    pub(crate) fn start(store: Arc<dyn SnapshotStore>, kind: Kind, interval: Duration) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(store, kind, interval, rx));
        (Self { tx }, task)
    }

    /// Queues `blob` as the newest snapshot of `id`, written within one interval.
    pub(crate) fn coalesce(&self, id: u64, blob: Vec<u8>) {
        let _ = self.tx.send(Write::Coalesce(id, blob));
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
        self.tx
            .send(Write::Now(id, blob, ack))
            .map_err(|_| StorageError::Backend("snapshot writer stopped".into()))?;
        done.await.map_err(|_| StorageError::Backend("snapshot writer stopped".into()))?
    }
}

async fn run(store: Arc<dyn SnapshotStore>, kind: Kind, interval: Duration, mut rx: mpsc::UnboundedReceiver<Write>) {
    let mut pending: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Write::Coalesce(id, blob)) => {
                    pending.insert(id, blob);
                }
                Some(Write::Now(id, blob, ack)) => {
                    if let Some(close) = write_now_batch(&*store, kind, &mut pending, &mut rx, (id, blob, ack)).await {
                        flush(&*store, kind, &mut pending).await;
                        let _ = close.send(());
                        return;
                    }
                }
                Some(Write::Close(ack)) => {
                    flush(&*store, kind, &mut pending).await;
                    let _ = ack.send(());
                    return;
                }
                None => break,
            },
            _ = tick.tick() => flush(&*store, kind, &mut pending).await,
        }
    }
    flush(&*store, kind, &mut pending).await;
}

/// Lifecycle writes queued behind each other are written together: this one
/// and every `Now` already waiting (up to [`MAX_NOW_BATCH`]) go in one
/// `put_batch`, and each caller is answered once it is stored. One task
/// writing one at a time would cap a city at one lifecycle change per store
/// round trip. `Coalesce`s met on the way are newer than the batch's blobs
/// for the same contractor and stay pending (written after). A `Close` met on
/// the way ends the batch and is handed back.
async fn write_now_batch(
    store: &dyn SnapshotStore,
    kind: Kind,
    pending: &mut HashMap<u64, Vec<u8>>,
    rx: &mut mpsc::UnboundedReceiver<Write>,
    first: (u64, Vec<u8>, oneshot::Sender<Result<(), StorageError>>),
) -> Option<oneshot::Sender<()>> {
    let (id, blob, ack) = first;
    pending.remove(&id);
    let mut batch = HashMap::from([(id, blob)]);
    let mut acks = vec![ack];
    let mut close = None;
    while acks.len() < MAX_NOW_BATCH {
        match rx.try_recv() {
            Ok(Write::Now(id, blob, ack)) => {
                pending.remove(&id);
                batch.insert(id, blob);
                acks.push(ack);
            }
            Ok(Write::Coalesce(id, blob)) => {
                pending.insert(id, blob);
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

async fn flush(store: &dyn SnapshotStore, kind: Kind, pending: &mut HashMap<u64, Vec<u8>>) {
    if pending.is_empty() {
        return;
    }
    let batch: Vec<_> = pending.iter().map(|(&id, blob)| (kind, id, blob.clone())).collect();
    match store.put_batch(batch).await {
        Ok(()) => {
            metrics::counter!("dispatch_snapshots_coalesced_total").increment(pending.len() as u64);
            pending.clear();
        }
        // Keep them and try again next tick.
        Err(e) => tracing::warn!(%e, pending = pending.len(), "coalesced snapshots not written; retrying"),
    }
}
