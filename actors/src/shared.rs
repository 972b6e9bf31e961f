//! [`Shared`]: what every actor of a city can reach without asking the root.
//!
//! The directories map ids to live actors. They are plain `std` `RwLock`s:
//! every access is a short lookup or insert, never held across an `.await`.
//! Any actor may spawn a cell (linked to the dispatcher, which supervises it)
//! under `spawn_lock`, so a contractor entering a new cell never waits on the
//! root actor's mailbox.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use dispatch_engine::{ContractorId, GeoPoint, JobId, SurgeBook};
use dispatch_storage::{SnapshotPut, SnapshotStore, codec};
use h3o::{CellIndex, LatLng, Resolution};
use ractor::{Actor, ActorId, ActorRef};
use tokio::sync::broadcast;

use crate::cell::{CellActor, CellMsg};
use crate::clock::Clock;
use crate::config::DispatchConfig;
use crate::contractor::ContractorMsg;
use crate::dispatcher::DispatcherMsg;
use crate::error::{ActorError, Result};
use crate::events::{DispatchEvent, EventKind};
use crate::job::JobMsg;
use crate::record::LogRecord;
use crate::record::PendingRequest;
use crate::writer::SnapshotWriter;

/// Which child an actor id belongs to, for the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Child {
    Cell(CellIndex),
    Contractor(ContractorId),
    Job(JobId),
}

/// Reads a lock even if a panicking actor held it: every critical section is a
/// single map operation, so the map is never left half-changed.
pub(crate) fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Writes a lock even if a panicking actor held it (see [`read`]).
pub(crate) fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Removes `key` from a directory only if it still maps to the actor `id`:
/// a stopping actor must not remove the newer actor that replaced it.
pub(crate) fn forget_if_same<K: std::hash::Hash + Eq, M>(directory: &RwLock<HashMap<K, ActorRef<M>>>, key: &K, id: ActorId) {
    let mut map = write(directory);
    if map.get(key).is_some_and(|a| a.get_id() == id) {
        map.remove(key);
    }
}

/// Reads every snapshot of `kind`, page by page.
pub(crate) async fn scan_all(shared: &Shared, kind: dispatch_storage::Kind) -> Result<Vec<(u64, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = shared.store.scan(kind, after, 1024).await?;
        let Some(&(last, _)) = page.last() else { return Ok(out) };
        after = Some(last);
        out.extend(page);
    }
}

/// Every record of `kind`, decoded, with its id (the few a city keeps whole: blocks, cursors, endpoints).
pub(crate) async fn decode_all<T: codec::Versioned + serde::de::DeserializeOwned>(
    shared: &Shared,
    kind: dispatch_storage::Kind,
) -> Result<Vec<(u64, T)>> {
    scan_all(shared, kind).await?.into_iter().map(|(id, blob)| Ok((id, codec::decode(&blob)?))).collect()
}

/// The highest id of `kind` at or after `from`: where an append-order trail
/// (the audit trail, the outbox) continues, stepping past every record
/// written after its head, gaps of failed writes included.
pub(crate) async fn last_id_from(shared: &Shared, kind: dispatch_storage::Kind, from: u64) -> Result<u64> {
    let mut last = from;
    loop {
        let page = shared.store.scan(kind, Some(last), 1024).await?;
        let Some(&(id, _)) = page.last() else { return Ok(last) };
        last = id;
    }
}

/// Counters of the GPS pipeline, for throughput figures.
#[derive(Debug, Default)]
pub(crate) struct PipelineCounters {
    pub(crate) gps_handled: AtomicU64,
    pub(crate) cell_upserts: AtomicU64,
}

pub(crate) struct Shared {
    pub(crate) config: DispatchConfig,
    pub(crate) resolution: Resolution,
    pub(crate) store: Arc<dyn SnapshotStore>,
    pub(crate) clock: Clock,
    pub(crate) events: broadcast::Sender<DispatchEvent>,
    pub(crate) cells: RwLock<HashMap<CellIndex, ActorRef<CellMsg>>>,
    pub(crate) contractors: RwLock<HashMap<ContractorId, ActorRef<ContractorMsg>>>,
    pub(crate) jobs: RwLock<HashMap<JobId, ActorRef<JobMsg>>>,
    pub(crate) children: Mutex<HashMap<ActorId, Child>>,
    pub(crate) spawn_lock: tokio::sync::Mutex<()>,
    /// Held while a stored job's actor is started again (`Dispatch::job_actor`): one actor per job.
    pub(crate) revive_lock: tokio::sync::Mutex<()>,
    pub(crate) root: OnceLock<ActorRef<DispatcherMsg>>,
    pub(crate) surge: RwLock<SurgeBook>,
    pub(crate) next_job: AtomicU64,
    pub(crate) contractor_writer: SnapshotWriter,
    pub(crate) counters: PipelineCounters,
    pub(crate) map: crate::map::CityMap,
    /// Numbers each job's event log.
    pub(crate) seqs: crate::seqs::EventSeqs,
    /// The card processor, each call under the configured time limit (`None`: payments off).
    pub(crate) processor: Option<Arc<dyn dispatch_payments::PaymentProvider>>,
    /// The city's books: the stored jobs' balances at start, then every payment step's ledger entries.
    pub(crate) ledger: Mutex<dispatch_engine::payment::Ledger>,
    /// Jobs whose rating is being written (a second one at the same time is refused).
    pub(crate) rating: Mutex<std::collections::HashSet<JobId>>,
    /// Keys of the tagged requests being carried out now (`requests.rs`).
    pub(crate) requests: Mutex<std::collections::HashSet<u64>>,
    /// Customers whose card is being saved or confirmed now (`cards.rs`).
    pub(crate) card_setups: Mutex<std::collections::HashSet<u64>>,
    /// The next position in the city's audit trail (`audit.rs`).
    pub(crate) audit_next: AtomicU64,
    /// Customers blocked from posting, read at start and kept as they change (`audit.rs`).
    pub(crate) blocked: RwLock<HashMap<dispatch_engine::CustomerId, crate::record::BlockRecord>>,
    /// Contractors suspended from offers, read at start and kept as they change (`audit.rs`).
    pub(crate) suspended: RwLock<HashMap<ContractorId, crate::record::SuspensionRecord>>,
    /// What operators verified of contractors, read at start and kept as it changes (`audit.rs`).
    pub(crate) vetting: RwLock<HashMap<ContractorId, crate::record::VettingRecord>>,
    /// Set when the city shuts down or halts: its background tasks stop.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
    /// Live connections of customers and contractors, as gateways note them (`notify.rs`).
    pub(crate) presence: crate::notify::Presence,
    /// Tasks running beside the actors (the outbox's keeper, the figures' folder): awaited at shutdown.
    pub(crate) background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The admin API's requests to the city's webhook deliveries (`outbox.rs`).
    pub(crate) webhook_control: broadcast::Sender<crate::outbox::WebhookControl>,
}

impl Shared {
    pub(crate) fn new(config: DispatchConfig, store: Arc<dyn SnapshotStore>, clock: Clock) -> Result<Self> {
        config.validate()?;
        let resolution =
            Resolution::try_from(config.resolution).map_err(|_| ActorError::Config(format!("resolution {}", config.resolution)))?;
        let surge = SurgeBook::new(config.surge).map_err(|e| ActorError::Config(e.to_string()))?;
        let (events, _) = broadcast::channel(4096);
        let processor = config.payments.as_ref().map(|p| {
            Arc::new(dispatch_payments::Bounded::new(Arc::clone(&p.provider), p.call_timeout))
                as Arc<dyn dispatch_payments::PaymentProvider>
        });
        let (contractor_writer, _task) =
            SnapshotWriter::start(Arc::clone(&store), dispatch_storage::Kind::Contractor, config.snapshot_interval);
        Ok(Self {
            config,
            resolution,
            store,
            clock,
            events,
            cells: RwLock::default(),
            contractors: RwLock::default(),
            jobs: RwLock::default(),
            children: Mutex::default(),
            spawn_lock: tokio::sync::Mutex::new(()),
            revive_lock: tokio::sync::Mutex::new(()),
            root: OnceLock::new(),
            surge: RwLock::new(surge),
            next_job: AtomicU64::new(1),
            contractor_writer,
            counters: PipelineCounters::default(),
            rating: Mutex::default(),
            requests: Mutex::default(),
            card_setups: Mutex::default(),
            audit_next: AtomicU64::new(1),
            blocked: RwLock::default(),
            suspended: RwLock::default(),
            vetting: RwLock::default(),
            stopping: tokio::sync::watch::Sender::new(false),
            webhook_control: broadcast::channel(64).0,
            background: Mutex::default(),
            presence: crate::notify::Presence::default(),
            map: crate::map::CityMap::default(),
            seqs: crate::seqs::EventSeqs::default(),
            processor,
            ledger: Mutex::default(),
        })
    }

    /// Moves the payment's new ledger entries into the city's books (the
    /// job's log keeps what they came from), and the books onto /metrics.
    pub(crate) fn keep_books(&self, job: JobId, pay: &mut dispatch_payments::JobPayment) {
        let entries = pay.take_entries();
        if !entries.is_empty() {
            self.record_books(job, &entries);
        }
    }

    /// Opens a stored job's balances in the city's books (at start, before
    /// its actor runs): the books then cover every job the store still holds,
    /// not only what moved since this process started.
    pub(crate) fn open_books(&self, job: JobId, pay: &dispatch_payments::JobPayment) {
        match pay.machine().opening_entries() {
            Ok(opening) => self.record_books(job, &[opening]),
            Err(e) => tracing::error!(%job, %e, "a stored payment's balances cannot be opened"),
        }
    }

    fn record_books(&self, job: JobId, entries: &[dispatch_engine::payment::Entries]) {
        let mut ledger = self.ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for e in entries {
            if let Err(e) = ledger.record(e) {
                tracing::error!(%job, %e, "a payment step's postings do not balance");
            }
        }
        let books = ledger.by_kind();
        for (account, cents) in [
            ("customer_funding", books.customer_funding),
            ("escrow", books.escrow),
            ("contractor_payable", books.contractor_payable),
            ("payouts", books.payouts),
            ("platform_revenue", books.platform_revenue),
            ("processor_fees", books.processor_fees),
            ("refunds", books.refunds),
            ("held", books.held),
        ] {
            metrics::gauge!("dispatch_ledger_cents", "account" => account).set(cents as f64);
        }
    }

    pub(crate) fn cell_of(&self, point: GeoPoint) -> CellIndex {
        LatLng::from(point).to_cell(self.resolution)
    }

    pub(crate) fn register_child(&self, id: ActorId, child: Child) {
        self.children.lock().unwrap_or_else(PoisonError::into_inner).insert(id, child);
    }

    pub(crate) fn forget_child(&self, id: &ActorId) -> Option<Child> {
        self.children.lock().unwrap_or_else(PoisonError::into_inner).remove(id)
    }

    pub(crate) fn contractor(&self, id: ContractorId) -> Option<ActorRef<ContractorMsg>> {
        read(&self.contractors).get(&id).cloned()
    }

    pub(crate) fn job(&self, id: JobId) -> Option<ActorRef<JobMsg>> {
        read(&self.jobs).get(&id).cloned()
    }

    pub(crate) fn cell(&self, cell: CellIndex) -> Option<ActorRef<CellMsg>> {
        read(&self.cells).get(&cell).cloned()
    }

    /// The cell's actor, spawned (linked to the dispatcher) if it has none.
    pub(crate) async fn ensure_cell(self: &Arc<Self>, cell: CellIndex) -> Result<ActorRef<CellMsg>> {
        if let Some(existing) = self.cell(cell) {
            return Ok(existing);
        }
        let _guard = self.spawn_lock.lock().await;
        if let Some(existing) = self.cell(cell) {
            return Ok(existing);
        }
        let root = self.root.get().cloned().ok_or_else(|| ActorError::Unavailable("dispatcher not started".into()))?;
        let (actor, _) = Actor::spawn_linked(None, CellActor, (cell, Arc::clone(self)), root.get_cell()).await?;
        self.register_child(actor.get_id(), Child::Cell(cell));
        write(&self.cells).insert(cell, actor.clone());
        Ok(actor)
    }

    /// Casts `msg` to the cell's actor, spawning it if needed, and once more to
    /// a fresh actor if the one found had just stopped.
    pub(crate) async fn cast_to_cell(self: &Arc<Self>, cell: CellIndex, msg: impl Fn() -> CellMsg) -> Result<()> {
        let actor = self.ensure_cell(cell).await?;
        if actor.cast(msg()).is_ok() {
            return Ok(());
        }
        // It stopped between the lookup and the send: drop it and try a new one.
        forget_if_same(&self.cells, &cell, actor.get_id());
        self.ensure_cell(cell).await?.cast(msg()).map_err(ActorError::from)
    }

    /// Appends a lifecycle event to the job's log (confirmed by the store), then broadcasts it.
    pub(crate) async fn log_event(&self, job: JobId, record: LogRecord) -> Result<DispatchEvent> {
        self.log(job, false, record, vec![], None).await
    }

    /// Stores `with` (the job's snapshot, and what `request` did, if it has
    /// an id) and logs `record`, all in one store commit: a transition and
    /// its record. On an error nothing is logged.
    pub(crate) async fn log_event_with(
        &self,
        job: JobId,
        record: LogRecord,
        with: Vec<SnapshotPut>,
        request: Option<&PendingRequest>,
    ) -> Result<DispatchEvent> {
        self.log(job, false, record, with, request).await
    }

    /// Stores a job being posted with its first event (its log is known to be empty), in one commit.
    pub(crate) async fn log_first_event(
        &self,
        job: JobId,
        record: LogRecord,
        snapshot: SnapshotPut,
        request: Option<&PendingRequest>,
    ) -> Result<DispatchEvent> {
        self.log(job, true, record, vec![snapshot], request).await
    }

    async fn log(
        &self,
        job: JobId,
        new_job: bool,
        record: LogRecord,
        with: Vec<SnapshotPut>,
        request: Option<&PendingRequest>,
    ) -> Result<DispatchEvent> {
        let at = self.clock.now();
        let alongside = crate::seqs::Alongside { snapshots: with, request };
        let seq = self.seqs.append(&*self.store, job.0, new_job, (at.0, codec::encode(&record)?), alongside).await?;
        let event = DispatchEvent { job, seq, at, kind: record.into() };
        // Nobody listening is not an error.
        let _ = self.events.send(event.clone());
        Ok(event)
    }

    /// Keeps a task running beside the actors, to be awaited at shutdown.
    pub(crate) fn keep_task(&self, task: tokio::task::JoinHandle<()>) {
        self.background.lock().unwrap_or_else(PoisonError::into_inner).push(task);
    }

    /// Broadcasts an event that is not logged (positions).
    pub(crate) fn broadcast(&self, job: JobId, kind: EventKind) {
        let _ = self.events.send(DispatchEvent { job, seq: 0, at: self.clock.now(), kind });
    }
}
