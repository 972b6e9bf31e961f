//! [`EventSeqs`]: who numbers each job's event log.
//!
//! The store writes an entry where it is told ([`SnapshotStore::append_event`]),
//! so no backend needs a read-modify-write (ScyllaDB would need a lightweight
//! transaction for each chat message). The numbering happens here, in memory:
//! every append for a job — the job actor's transitions and chat from any
//! session — takes the next number from one slot per job. A slot is created
//! from the store's [`last_event_seq`] on first use (or at 0 for a job being
//! posted), and may be dropped again whenever no append for it is in flight:
//! everything it handed out has then reached the store (or failed), so the
//! store's answer is again the truth. A store read that raced with such a
//! drop is not trusted (an eviction counter tells) and is made again.
//!
//! [`SnapshotStore::append_event`]: dispatch_storage::SnapshotStore::append_event
//! [`last_event_seq`]: dispatch_storage::SnapshotStore::last_event_seq

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use dispatch_storage::{LogEntry, SnapshotPut, SnapshotStore};

use crate::error::Result;
use crate::record::PendingRequest;

/// Slots kept beyond this are dropped (those with nothing in flight).
const MAX_IDLE_SLOTS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The last number handed out.
    last: u64,
    /// Appends handed a number and not yet answered by the store.
    in_flight: u32,
}

#[derive(Debug, Default)]
struct Slots {
    map: HashMap<u64, Slot>,
    /// How many times slots were dropped: a store read that began before
    /// a drop may be older than what the dropped slot handed out.
    evictions: u64,
}

/// The next sequence number of every job with a log being written, and the
/// city's outbox positions (`outbox.rs`), handed out together.
#[derive(Debug, Default)]
pub(crate) struct EventSeqs {
    slots: Mutex<Slots>,
    pub(crate) outbox: crate::outbox::OutboxPositions,
}

/// What [`EventSeqs::claim`] found.
enum Claim {
    /// The entry's number in the job's log, and its position in the outbox.
    Seq(u64, u64),
    /// No slot: read the store and come back with this eviction count.
    Unknown(u64),
}

/// What is stored in the same commit as a log entry.
#[derive(Default)]
pub(crate) struct Alongside<'a> {
    /// Snapshots (the job's, when the entry records a transition).
    pub(crate) snapshots: Vec<SnapshotPut>,
    /// A request with a client's request id: its record names the entry's number.
    pub(crate) request: Option<&'a PendingRequest>,
}

impl EventSeqs {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands out the next number of `job`'s log. Without a slot, creates one
    /// at `read` — the store's last number, read while the eviction count
    /// was the one given — unless slots were dropped since.
    fn claim(&self, job: u64, read: Option<(u64, u64)>) -> Claim {
        let mut slots = self.lock();
        let evictions = slots.evictions;
        let slot = match (slots.map.get_mut(&job), read) {
            (Some(slot), _) => slot,
            (None, Some((last, seen))) if seen == evictions => slots.map.entry(job).or_insert(Slot { last, in_flight: 0 }),
            (None, _) => return Claim::Unknown(evictions),
        };
        slot.last += 1;
        slot.in_flight += 1;
        // Under the same lock: a job's later entries take later positions.
        Claim::Seq(slot.last, self.outbox.claim())
    }

    /// The store answered the append numbered `seq`, at outbox `position`.
    fn release(&self, job: u64, (seq, position): (u64, u64), stored: bool) {
        self.outbox.release(position);
        let mut slots = self.lock();
        let Some(slot) = slots.map.get_mut(&job) else { return };
        slot.in_flight = slot.in_flight.saturating_sub(1);
        if !stored && slot.last == seq {
            // Nothing after it was handed out: give the number back.
            slot.last -= 1;
        }
        if slots.map.len() > MAX_IDLE_SLOTS {
            slots.map.retain(|_, s| s.in_flight > 0);
            slots.evictions += 1;
        }
    }

    /// Appends `payload` to `job`'s log under the next number, and to the
    /// city's outbox; returns the number.
    /// `new_job`: the job is being posted, so its log is known to be empty.
    /// `with`: what else is stored together with the entry (one commit).
    pub(crate) async fn append(
        &self,
        store: &dyn SnapshotStore,
        job: u64,
        new_job: bool,
        (at_ms, payload): (i64, Vec<u8>),
        with: Alongside<'_>,
    ) -> Result<u64> {
        let Alongside { snapshots: mut with, request } = with;
        let mut read = None;
        if new_job {
            read = Some((0, self.lock().evictions));
        }
        let (seq, position) = loop {
            match self.claim(job, read) {
                Claim::Seq(seq, position) => break (seq, position),
                Claim::Unknown(evictions) => read = Some((store.last_event_seq(job).await?, evictions)),
            }
        };
        let result = async {
            with.push(crate::outbox::record(position, job, seq, at_ms, &payload)?);
            if let Some(request) = request {
                with.push(request.record(dispatch_engine::JobId(job), seq)?);
            }
            store.put_and_append(with, job, LogEntry::new(seq, at_ms, payload)).await.map_err(crate::error::ActorError::from)
        }
        .await;
        self.release(job, (seq, position), result.is_ok());
        result?;
        Ok(seq)
    }

    /// Forgets `job`'s slot if nothing is in flight (its actor stopped).
    pub(crate) fn forget(&self, job: u64) {
        let mut slots = self.lock();
        if slots.map.get(&job).is_some_and(|s| s.in_flight == 0) {
            slots.map.remove(&job);
            slots.evictions += 1;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatch_storage::MemoryStore;
    use std::sync::Arc;

    #[tokio::test]
    async fn numbers_continue_from_the_store_and_never_repeat() {
        let store = MemoryStore::new();
        for seq in 1..=3 {
            store.append_event(5, LogEntry::new(seq, 0, vec![])).await.unwrap();
        }
        let seqs = EventSeqs::default();
        assert_eq!(
            seqs.append(&store, 5, false, (0, b"a".to_vec()), Alongside::default()).await.unwrap(),
            4,
            "continues after the stored log"
        );
        assert_eq!(seqs.append(&store, 5, false, (0, b"b".to_vec()), Alongside::default()).await.unwrap(), 5);
        assert_eq!(seqs.append(&store, 9, true, (0, b"posted".to_vec()), Alongside::default()).await.unwrap(), 1, "a new job starts at 1");
        seqs.forget(5);
        assert_eq!(seqs.len(), 1);
        assert_eq!(
            seqs.append(&store, 5, false, (0, b"c".to_vec()), Alongside::default()).await.unwrap(),
            6,
            "a forgotten slot is read back"
        );
        assert_eq!(store.read_events(5, 0).await.unwrap().len(), 6);
    }

    #[tokio::test]
    async fn a_store_read_older_than_an_eviction_is_read_again() {
        let store = MemoryStore::new();
        let seqs = EventSeqs::default();
        let Claim::Unknown(seen) = seqs.claim(4, None) else { panic!("no slot yet") };
        // Meanwhile another append numbers entry 1 and its slot is dropped.
        assert_eq!(seqs.append(&store, 4, true, (0, vec![]), Alongside::default()).await.unwrap(), 1);
        seqs.forget(4);
        // The first reader's answer (0) is stale: it must not be used.
        assert!(matches!(seqs.claim(4, Some((0, seen))), Claim::Unknown(_)));
        assert_eq!(seqs.append(&store, 4, false, (0, vec![]), Alongside::default()).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_failed_append_gives_its_number_back() {
        let store = MemoryStore::new();
        let seqs = EventSeqs::default();
        assert_eq!(seqs.append(&store, 1, true, (0, vec![1]), Alongside::default()).await.unwrap(), 1);
        store.set_unavailable(true);
        assert!(seqs.append(&store, 1, false, (0, vec![2]), Alongside::default()).await.is_err());
        store.set_unavailable(false);
        assert_eq!(seqs.append(&store, 1, false, (0, vec![3]), Alongside::default()).await.unwrap(), 2, "no gap after a failure");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_to_one_job_get_distinct_numbers() {
        let store = Arc::new(MemoryStore::new());
        store.append_event(3, LogEntry::new(1, 0, vec![])).await.unwrap();
        let seqs = Arc::new(EventSeqs::default());
        let tasks: Vec<_> = (0..200u8)
            .map(|i| {
                let (store, seqs) = (Arc::clone(&store), Arc::clone(&seqs));
                tokio::spawn(async move { seqs.append(&*store, 3, false, (0, vec![i]), Alongside::default()).await.unwrap() })
            })
            .collect();
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, (2..=201).collect::<Vec<_>>());
        assert_eq!(store.read_events(3, 0).await.unwrap().len(), 201, "every append kept");
    }
}
