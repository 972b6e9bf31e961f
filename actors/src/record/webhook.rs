//! What the city's outbox and its webhook deliveries store (`outbox.rs`
//! writes and reads them).
//!
//! - [`OutboxRecord`]: a `Kind::Outbox` snapshot keyed by its position in the
//!   city's append order, written in the same commit as the job's log entry
//!   it repeats; record 0 is the [`OutboxHead`].
//! - [`CursorRecord`]: how far an endpoint has been delivered
//!   (`Kind::WebhookCursor`, by the endpoint's key).
//! - [`DeadLetterRecord`]: an event an endpoint did not take
//!   (`Kind::DeadLetter`, by the endpoint's key and the event's position, so
//!   an endpoint's dead letters scan in the order the events happened).
//! - [`EndpointRecord`]: an endpoint added through the admin API
//!   (`Kind::WebhookEndpoint`, by its key).
//! - [`KpiRecord`]: the city's figures for an hour (`Kind::Kpi`, by the hour), folded from the outbox (`kpis.rs`).

use dispatch_engine::{JobId, Timestamp};
use dispatch_storage::codec::Versioned;
use serde::{Deserialize, Serialize};

use super::audit::Actor;

/// One logged event, by its position in the city's append order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// Its position: 1, 2, 3, … in the order the city handed them out (a
    /// failed write leaves a gap).
    pub position: u64,
    /// The job.
    pub job: JobId,
    /// The entry's number in the job's log.
    pub seq: u64,
    /// When it was logged.
    pub at: Timestamp,
    /// The log record, as stored in the job's log (a `LogRecord` in its own
    /// versioned envelope: a later layout of it is read by its own upcaster).
    pub record: Vec<u8>,
}

/// The outbox's head (record 0): every position up to `settled` was written or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxHead {
    /// The highest position below which nothing is in flight.
    pub settled: u64,
}

/// How far an endpoint has been delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorRecord {
    /// The endpoint's name.
    pub endpoint: String,
    /// Every event up to this position was delivered, dead-lettered or filtered out.
    pub position: u64,
}

/// An event an endpoint did not take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterRecord {
    /// The endpoint's name.
    pub endpoint: String,
    /// The event.
    pub event: OutboxRecord,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure, or why it was set aside.
    pub error: String,
    /// When it was set aside.
    pub at: Timestamp,
    /// Set aside unattempted, behind an earlier dead letter of the same job
    /// (a job's events reach an endpoint in order, or not at all).
    pub behind: bool,
}

/// A webhook endpoint added through the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// Its name (unique in the city, configured ones included).
    pub name: String,
    /// Where events are posted.
    pub url: String,
    /// The secrets it is signed with (two while one is rotated).
    pub secrets: Vec<String>,
    /// The events it takes, by name (empty: all).
    pub events: Vec<String>,
    /// Who added it.
    pub by: Actor,
    /// When.
    pub at: Timestamp,
}

/// A city's figures for one hour, and the outbox position they count through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiRecord {
    /// The hour, since the Unix epoch.
    pub hour: i64,
    /// The last outbox position counted (a page read again skips up to it).
    pub through: u64,
    /// The figures.
    pub kpis: dispatch_engine::kpi::HourKpis,
}

/// Figures first appeared in schema version 3's stores.
impl Versioned for KpiRecord {
    const LAYOUT_SINCE: u16 = 3;
}

/// Outbox records first appeared in schema version 3's stores.
impl Versioned for OutboxRecord {
    const LAYOUT_SINCE: u16 = 3;
}

/// Outbox heads first appeared in schema version 3's stores.
impl Versioned for OutboxHead {
    const LAYOUT_SINCE: u16 = 3;
}

/// Cursor records first appeared in schema version 3's stores.
impl Versioned for CursorRecord {
    const LAYOUT_SINCE: u16 = 3;
}

/// Dead letters first appeared in schema version 3's stores.
impl Versioned for DeadLetterRecord {
    const LAYOUT_SINCE: u16 = 3;
}

/// Endpoint records first appeared in schema version 3's stores.
impl Versioned for EndpointRecord {
    const LAYOUT_SINCE: u16 = 3;
}
