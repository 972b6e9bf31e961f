//! # dispatch-actors — live state as supervised `ractor` actors
//!
//! ```text
//! Dispatch (handle) ──▶ Dispatcher (root, one per city)
//!                        ├── CellActor × active H3 cells: R-tree, speed, demand / supply
//!                        ├── ContractorActor × live contractors: GPS, status, hibernation
//!                        └── JobActor × open jobs: search, offers, timeouts, lifecycle
//! ```
//!
//! | module | what lives there |
//! |---|---|
//! | [`handle`] | [`Dispatch`], the city's handle: start (rehydrating), post, accept, GPS, subscribe, shutdown |
//! | [`dispatcher`] | the root actor: supervision and restarts, spawning jobs, reactivating contractors, surge |
//! | [`audit`] | the city's audit trail (every operator's and dispatcher's action, append-only, written before the action) and the customers blocked from posting |
//! | `batch` | batched matching: a batch of waiting jobs assigned at once with the least total ETA, off the dispatcher's mailbox |
//! | [`cell`] | the cell actor |
//! | [`contractor`] | the contractor actor and [`GpsFix`] |
//! | [`job`] | the job actor, and its money beside it (`job/money.rs`) |
//! | [`map`] | [`CityMap`](map::CityMap): the live map as versioned deltas for dispatchers |
//! | [`parties`] | who may act on a job: every party check ([`Asker`]), beside the job's state |
//! | [`events`] | [`DispatchEvent`], broadcast to subscribers and logged per job |
//! | [`record`] | what is stored, versioned apart from what is broadcast: snapshots, the job log's [`LogRecord`], request records ([`RequestRecord`]), frozen earlier layouts and their upcasters |
//! | `requests` | requests a retry must not repeat (post, accept, chat, rate): their records stored with the change, found again by [`Dispatch::requested`] |
//! | [`cards`] | a customer's card on file ([`CardOnFile`]): saved with a setup step, taken by posts that name no card and by scheduled jobs' off-session holds |
//! | [`payees`] | a contractor's payout account ([`payees::PayoutAccount`]): made at the processor when first needed, payouts wait until its onboarding is finished |
//! | `webhooks` | what the card processor reports on its own: a chargeback, to the job whose hold it names |
//! | [`config`] | [`DispatchConfig`] |
//! | [`clock`] | [`Clock`]: timestamps that follow tokio's (pausable) clock |
//! | `writer` | the city's snapshot writer: contractor snapshots in order, GPS changes coalesced into one batch per interval |
//! | `shared` | directories of live actors and what every actor can reach |
//! | `seqs` | numbers each job's event log (one in-memory slot per job being written) and the city's outbox positions |
//! | [`contractor_index`] | the city's contractor directory: a row per registered contractor written with each snapshot stored for a change; listed and filtered a page at a time within a scan budget |
//! | [`job_index`] | the city's job index: a row per job (trade, state, posting time) kept from the outbox beside the figures; listed and filtered a page at a time within a scan budget |
//! | [`kpis`] | the city's figures per hour, folded from the outbox as events happen (a cursor of their own, each hour counting an event once), read by hour |
//! | [`notify`] | who should hear of an event away from the app: live connections as gateways note them, preferences set over the wire, an event's unconnected parties |
//! | [`outbox`] | the city's outbox: every logged event again in append order, in the log entry's commit, for webhook delivery; the settled mark, cursors, dead letters, endpoints added over the admin API |
//! | [`error`] | [`ActorError`] |
//!
//! Dependencies point one way: engine ← actors ← gateway, storage ← actors.

pub mod audit;
mod batch;
pub mod cards;
pub mod cell;
pub mod clock;
pub mod config;
pub mod contractor;
pub mod contractor_index;
pub mod dispatcher;
pub mod error;
pub mod events;
pub mod handle;
pub mod job;
pub mod job_index;
pub mod kpis;
pub mod map;
pub mod notify;
pub mod outbox;
pub mod parties;
pub mod payees;
pub mod record;
mod requests;
mod seqs;
mod shared;
mod webhooks;
mod writer;

pub use cards::{CardOnFile, DEFAULT_PAYMENT_METHOD};
pub use clock::Clock;
pub use config::{DispatchConfig, PaymentsConfig};
pub use contractor::{GpsFix, Presence};
pub use dispatch_engine as engine;
pub use dispatch_engine::payment::PaymentNotice;
pub use dispatch_payments as payments;
pub use dispatch_storage as storage;
pub use dispatcher::{JobRequest, RehydrateReport};
pub use error::{ActorError, Result};
pub use events::{DispatchEvent, EventKind};
pub use handle::{ContractorLink, Dispatch, LiveCounts, PipelineStats, Rated};
pub use job::{CALL_TIMEOUT, PaymentAct};
pub use notify::{NotifyRecord, NotifyTarget};
pub use outbox::OutboxEvent;
pub use parties::Asker;
pub use record::{
    Actor, AuditAction, AuditHead, AuditRecord, BlockRecord, ContractorSnapshot, CustomerRecord, Insurance, JobSnapshot, LogRecord,
    PayeeRecord, PaymentRecord, RequestOutcome, RequestRecord, RequestRole, RequestTag, SuspensionRecord, VerifiedTrade, VettingRecord,
};
pub use record::{
    ContractorIndexRecord, CursorRecord, DeadLetterRecord, EndpointRecord, JobIndexRecord, KpiRecord, OutboxHead, OutboxRecord,
};
pub use requests::RequestClaim;
