//! The [`SnapshotStore`] trait every backend implements.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// What a snapshot is of. With the id it forms the partition key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Kind {
    /// A contractor's profile and live state.
    Contractor = 1,
    /// A job and its state machine.
    Job = 2,
    /// What a request (named by a client's request id) did, kept so a retry
    /// gets the same answer.
    Request = 3,
    /// A customer's card on file at the processor.
    Customer = 4,
    /// A contractor's payout account at the processor.
    Payee = 5,
    /// An operator's or dispatcher's action, by its position in the city's audit trail (append-only).
    Audit = 6,
    /// A customer blocked from posting (and why, by whom).
    Block = 7,
    /// A contractor suspended from offers (and why, by whom).
    Suspension = 8,
    /// A contractor's verified trades (licences) and insurance.
    Vetting = 9,
    /// The city's outbox: every logged event, by its position in the city's
    /// append order (0: the head), kept until every webhook endpoint has it.
    Outbox = 10,
    /// How far a webhook endpoint has been delivered, by the endpoint's key.
    WebhookCursor = 11,
    /// An event a webhook endpoint did not take, by the endpoint's key and the event's position.
    DeadLetter = 12,
    /// A webhook endpoint added through the admin API, by its key.
    WebhookEndpoint = 13,
    /// A city's figures for one hour, by the hour (since the Unix epoch).
    Kpi = 14,
    /// How a customer or contractor wants to be reached away from the app.
    Notify = 15,
    /// A job's row in the city's job index (trade, state, posting time), by job id.
    JobIndex = 16,
    /// A contractor's row in the city's directory (name, trades, status, rating), by contractor id.
    ContractorIndex = 17,
}

impl Kind {
    /// The kind's byte in keys.
    #[must_use]
    pub const fn tag(self) -> u8 {
        self as u8
    }

    /// Every kind.
    pub const ALL: [Kind; 17] = [
        Kind::Contractor,
        Kind::Job,
        Kind::Request,
        Kind::Customer,
        Kind::Payee,
        Kind::Audit,
        Kind::Block,
        Kind::Suspension,
        Kind::Vetting,
        Kind::Outbox,
        Kind::WebhookCursor,
        Kind::DeadLetter,
        Kind::WebhookEndpoint,
        Kind::Kpi,
        Kind::Notify,
        Kind::JobIndex,
        Kind::ContractorIndex,
    ];
}

/// One entry of a job's event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Position in the job's log: 1, 2, 3, … with no gaps.
    pub seq: u64,
    /// When it was appended, ms since the Unix epoch.
    pub at_ms: i64,
    /// The event, encoded by the caller.
    pub payload: Vec<u8>,
}

impl LogEntry {
    /// The entry `seq` of a log, appended at `at_ms`.
    #[must_use]
    pub fn new(seq: u64, at_ms: i64, payload: Vec<u8>) -> Self {
        Self { seq, at_ms, payload }
    }
}

/// A snapshot stored together with a log entry ([`SnapshotStore::put_and_append`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPut {
    /// What it is of.
    pub kind: Kind,
    /// Whose.
    pub id: u64,
    /// The blob.
    pub blob: Vec<u8>,
    /// The last snapshot `id` will have (stored as by [`SnapshotStore::put_final`]).
    pub last: bool,
}

/// Durable storage for actor snapshots and job event logs.
///
/// Every method returns only after the backend has confirmed the write (or
/// the read), so a caller may acknowledge a transition once `put` returns.
#[async_trait]
pub trait SnapshotStore: Send + Sync + 'static {
    /// Stores `blob` as the snapshot of (`kind`, `id`), replacing any earlier one.
    async fn put(&self, kind: Kind, id: u64, blob: Vec<u8>) -> Result<()>;

    /// Stores many snapshots at once, atomically where the backend allows.
    async fn put_batch(&self, items: Vec<(Kind, u64, Vec<u8>)>) -> Result<()>;

    /// Stores the last snapshot (`kind`, `id`) will have — a job that reached
    /// a terminal state. A backend may let it expire after a retention
    /// period (ScyllaDB: a TTL); by default it is kept like any other.
    async fn put_final(&self, kind: Kind, id: u64, blob: Vec<u8>) -> Result<()> {
        self.put(kind, id, blob).await
    }

    /// Stores coalesced position-only snapshots: each is rewritten within
    /// seconds and only the newest matters, so a backend may write them with
    /// weaker consistency (ScyllaDB: `LOCAL_ONE`). By default, [`put_batch`].
    ///
    /// [`put_batch`]: SnapshotStore::put_batch
    async fn put_coalesced(&self, items: Vec<(Kind, u64, Vec<u8>)>) -> Result<()> {
        self.put_batch(items).await
    }

    /// The snapshot of (`kind`, `id`), if any.
    async fn get(&self, kind: Kind, id: u64) -> Result<Option<Vec<u8>>>;

    /// Removes the snapshot of (`kind`, `id`); removing a missing one is not an error.
    async fn delete(&self, kind: Kind, id: u64) -> Result<()>;

    /// Up to `limit` snapshots of `kind` with ids greater than `after`
    /// (`None`: from the start), in id order. Page by passing the last id back.
    async fn scan(&self, kind: Kind, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Vec<u8>)>>;

    /// Writes `entry` into `job`'s event log at `entry.seq`. The caller
    /// numbers a job's entries 1, 2, 3, … (see [`last_event_seq`]); writing a
    /// sequence number again replaces that entry, so a retried append is
    /// harmless and no backend needs a read-modify-write to append.
    ///
    /// [`last_event_seq`]: SnapshotStore::last_event_seq
    async fn append_event(&self, job: u64, entry: LogEntry) -> Result<()>;

    /// Stores `snapshots` and writes `entry` into `job`'s log: one state
    /// change and its record (and, for a request with an id, what it did).
    /// Backends commit them together: the embedded store in one
    /// transaction, ScyllaDB in one logged batch (all or none, eventually).
    /// By default, the snapshots, then the entry; on an error the entry is
    /// not stored, the snapshots may be.
    async fn put_and_append(&self, snapshots: Vec<SnapshotPut>, job: u64, entry: LogEntry) -> Result<()> {
        for SnapshotPut { kind, id, blob, last } in snapshots {
            if last {
                self.put_final(kind, id, blob).await?;
            } else {
                self.put(kind, id, blob).await?;
            }
        }
        self.append_event(job, entry).await
    }

    /// The highest sequence number in `job`'s log; 0 when it is empty.
    async fn last_event_seq(&self, job: u64) -> Result<u64>;

    /// `job`'s log entries with sequence numbers of at least `from_seq`, in order.
    async fn read_events(&self, job: u64, from_seq: u64) -> Result<Vec<LogEntry>>;

    /// Up to `limit` log entries of every job, in (job, seq) order, after the
    /// entry `after` (`None`: from the start). Page by passing the last key back.
    async fn scan_events(&self, after: Option<(u64, u64)>, limit: usize) -> Result<Vec<(u64, LogEntry)>>;

    /// Whether the backend answers: for readiness probes.
    async fn ping(&self) -> Result<()>;

    /// Whether writes are reaching the backend or waiting in a buffer
    /// (see [`ResilientStore`](crate::ResilientStore)). Plain backends are
    /// always [`Health::Healthy`].
    fn health(&self) -> Health {
        Health::Healthy
    }
}

/// What [`SnapshotStore::health`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Writes are confirmed by the backend.
    Healthy,
    /// The backend is unreachable: writes are held (in the journal, when the
    /// store has one) until it returns.
    Degraded {
        /// Writes waiting in the buffer.
        buffered: usize,
        /// The last error the backend gave.
        reason: String,
    },
}
