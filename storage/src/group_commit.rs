//! Group commit on a redb database, shared by the embedded store and the
//! degraded-mode journal.
//!
//! One thread owns the writing: it waits for a write, takes every other one
//! queued behind it (up to [`MAX_GROUP`]), applies them in queue order in one
//! redb transaction, commits durably (one fsync for the group) and only then
//! answers each caller. Under load a commit carries many writes, so
//! throughput follows the disk's fsync rate times the group size instead of
//! one write per fsync. On an error the transaction is not committed and
//! every write of the group gets the error: none of them happened.

use std::sync::{Arc, mpsc};

use redb::{Database, WriteTransaction};
use tokio::sync::oneshot;

use crate::error::{Result, StorageError};

/// Most writes one commit carries.
pub(crate) const MAX_GROUP: usize = 4_096;

/// Applies a group of writes inside the open transaction, in queue order.
pub(crate) type Apply<Op> = fn(&WriteTransaction, &[Op]) -> Result<()>;

/// The histograms a committer records each commit into.
#[derive(Clone, Copy)]
pub(crate) struct CommitMetrics {
    /// Seconds per commit (apply and fsync).
    pub seconds: &'static str,
    /// Writes per commit.
    pub writes: &'static str,
    /// The `store` label of both.
    pub store: &'static str,
}

/// The committer thread's queue. Dropping it stops the thread and waits for
/// it, so the file is closed when its store is (a reopen right after finds
/// it unlocked).
pub(crate) struct GroupCommitter<Op> {
    queue: Option<mpsc::Sender<(Op, oneshot::Sender<Result<()>>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<Op: Send + 'static> GroupCommitter<Op> {
    /// Starts the thread `name` committing to `db` through `apply`.
    pub(crate) fn start(name: &str, db: Arc<Database>, apply: Apply<Op>, metrics: CommitMetrics) -> Result<Self> {
        let (writes, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || commit_loop(&db, &queue, apply, metrics))
            .map_err(|e| StorageError::Backend(format!("cannot start the committer thread {name}: {e}")))?;
        Ok(Self { queue: Some(writes), thread: Some(thread) })
    }

    /// Queues `op` without waiting; the receiver answers once it is durable
    /// (or failed). Ops queued from one thread commit in the order queued.
    pub(crate) fn enqueue(&self, op: Op) -> Result<oneshot::Receiver<Result<()>>> {
        let (reply, answer) = oneshot::channel();
        self.queue.as_ref().ok_or_else(stopped)?.send((op, reply)).map_err(|_| stopped())?;
        Ok(answer)
    }

    /// Queues `op` and waits until it is durable.
    pub(crate) async fn commit(&self, op: Op) -> Result<()> {
        durable(self.enqueue(op)?).await
    }
}

/// Waits for a queued write's answer.
pub(crate) async fn durable(answer: oneshot::Receiver<Result<()>>) -> Result<()> {
    answer.await.map_err(|_| StorageError::Backend("the committer dropped a write".into()))?
}

fn stopped() -> StorageError {
    StorageError::Backend("the committer has stopped".into())
}

impl<Op> Drop for GroupCommitter<Op> {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Ends when every sender is gone.
fn commit_loop<Op>(db: &Database, queue: &mpsc::Receiver<(Op, oneshot::Sender<Result<()>>)>, apply: Apply<Op>, metrics: CommitMetrics) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        let (ops, replies): (Vec<Op>, Vec<_>) = group.into_iter().unzip();
        let started = std::time::Instant::now();
        let committed = commit(db, &ops, apply);
        metrics::histogram!(metrics.seconds, "store" => metrics.store).record(started.elapsed().as_secs_f64());
        metrics::histogram!(metrics.writes, "store" => metrics.store).record(ops.len() as f64);
        for reply in replies {
            let outcome = committed.as_ref().copied().map_err(|e| StorageError::Backend(e.to_string()));
            drop(reply.send(outcome));
        }
    }
}

fn commit<Op>(db: &Database, ops: &[Op], apply: Apply<Op>) -> Result<()> {
    let txn = db.begin_write()?;
    apply(&txn, ops)?;
    txn.commit()?;
    Ok(())
}
