//! The city's outbox: every logged event again, in the city's append order,
//! written in the same store commit as the job's log entry (`seqs.rs`), so
//! webhook delivery (the gateway's `webhooks/`) reads new events of old jobs
//! too — the job log itself is read in (job, seq) order — and misses none
//! the in-memory broadcast would drop for a laggard.
//!
//! **Positions.** The city's one writer hands out positions 1, 2, 3, … with
//! each log entry's number, under the same lock, so a job's events take
//! increasing positions. Commits finish out of order, so a reader is only
//! shown positions up to the *settled* mark: the highest below which nothing
//! is in flight. A failed write leaves a gap, which is settled too. Record
//! 0, the head, keeps the settled mark; a start steps past every record
//! written after it (and past every endpoint's cursor), so no position is
//! used twice.
//!
//! **Keeping it small.** A keeper task writes the head as the mark moves and
//! deletes the records every endpoint's cursor has passed (with no endpoint,
//! every settled one).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use dispatch_engine::{JobId, Timestamp};
use dispatch_storage::{Kind, SnapshotPut, codec};
use tokio::sync::watch;

use crate::error::{ActorError, Result};
use crate::events::DispatchEvent;
use crate::handle::Dispatch;
use crate::record::{Actor, AuditAction, CursorRecord, DeadLetterRecord, EndpointRecord, LogRecord, OutboxHead, OutboxRecord};
use crate::shared::Shared;

/// How often the keeper writes the head and prunes.
const KEEP_EVERY: Duration = Duration::from_secs(1);
/// Records deleted per store page while pruning.
const PRUNE_PAGE: usize = 500;
/// The most records one read of the outbox returns.
pub const MAX_OUTBOX_PAGE: usize = 1_000;

/// Bits of an endpoint's key: its dead letters are keyed `key << 40 | position`.
pub const ENDPOINT_KEY_BITS: u32 = 22;
const POSITION_BITS: u32 = 40;

/// An endpoint's key in the store: a stable hash of its name, below 2^22.
/// Two names of one city with the same key are refused where endpoints are made.
#[must_use]
pub fn endpoint_key(name: &str) -> u64 {
    rapidhash::v3::rapidhash_v3(name.as_bytes()) & ((1 << ENDPOINT_KEY_BITS) - 1)
}

fn dead_letter_id(key: u64, position: u64) -> u64 {
    (key << POSITION_BITS) | (position & ((1 << POSITION_BITS) - 1))
}

#[derive(Debug)]
struct Positions {
    next: u64,
    in_flight: BTreeSet<u64>,
}

/// Hands out outbox positions and tracks which are settled.
#[derive(Debug)]
pub(crate) struct OutboxPositions {
    state: Mutex<Positions>,
    pub(crate) settled: watch::Sender<u64>,
}

impl Default for OutboxPositions {
    fn default() -> Self {
        Self { state: Mutex::new(Positions { next: 1, in_flight: BTreeSet::new() }), settled: watch::Sender::new(0) }
    }
}

impl OutboxPositions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Positions> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Positions continue at `next` (at start, before any event is logged).
    fn start_at(&self, next: u64) {
        let mut state = self.lock();
        state.next = next.max(state.next);
        let settled = state.in_flight.first().map_or(state.next - 1, |first| first - 1);
        self.settled.send_replace(settled);
    }

    /// The next position, in flight until [`release`](Self::release).
    pub(crate) fn claim(&self) -> u64 {
        let mut state = self.lock();
        let position = state.next;
        state.next += 1;
        state.in_flight.insert(position);
        position
    }

    /// The store answered the write of `position` (stored or not).
    pub(crate) fn release(&self, position: u64) {
        let mut state = self.lock();
        state.in_flight.remove(&position);
        let settled = state.in_flight.first().map_or(state.next - 1, |first| first - 1);
        self.settled.send_if_modified(|mark| {
            let moved = *mark != settled;
            *mark = settled;
            moved
        });
    }

    /// The highest position below which nothing is in flight.
    pub(crate) fn settled(&self) -> u64 {
        *self.settled.borrow()
    }
}

/// The outbox record of a log entry, to be stored in its commit.
pub(crate) fn record(position: u64, job: u64, seq: u64, at_ms: i64, payload: &[u8]) -> Result<SnapshotPut> {
    let record = OutboxRecord { position, job: JobId(job), seq, at: Timestamp(at_ms), record: payload.to_vec() };
    Ok(SnapshotPut { kind: Kind::Outbox, id: position, blob: codec::encode(&record)?, last: false })
}

/// Finds where positions continue, then starts the keeper (the city is starting).
pub(crate) async fn open(shared: &Arc<Shared>) -> Result<()> {
    let head = shared.store.get(Kind::Outbox, 0).await?.map(|b| codec::decode::<OutboxHead>(&b)).transpose()?;
    let mut last = head.map_or(0, |h| h.settled);
    for (_, cursor) in cursors(shared).await? {
        last = last.max(cursor.position);
    }
    let last = crate::shared::last_id_from(shared, Kind::Outbox, last).await?;
    shared.seqs.outbox.start_at(last + 1);
    shared.keep_task(tokio::spawn(keep(Arc::downgrade(shared), shared.stopping.subscribe())));
    Ok(())
}

async fn cursors(shared: &Shared) -> Result<Vec<(u64, CursorRecord)>> {
    crate::shared::decode_all(shared, Kind::WebhookCursor).await
}

/// Writes the head as the settled mark moves, and prunes what every endpoint has.
async fn keep(shared: Weak<Shared>, mut stopping: watch::Receiver<bool>) {
    let (mut head, mut pruned) = (0, 0);
    loop {
        tokio::select! {
            () = tokio::time::sleep(KEEP_EVERY) => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
        let Some(shared) = shared.upgrade() else { return };
        match keep_once(&shared, head, pruned).await {
            Ok(done) => (head, pruned) = done,
            Err(e) => tracing::warn!(%e, "the outbox was not kept this round"),
        }
    }
}

async fn keep_once(shared: &Shared, head: u64, pruned: u64) -> Result<(u64, u64)> {
    let settled = shared.seqs.outbox.settled();
    if settled > head {
        shared.store.put(Kind::Outbox, 0, codec::encode(&OutboxHead { settled })?).await?;
    }
    let floor = cursors(shared).await?.iter().map(|(_, c)| c.position).min().unwrap_or(settled).min(settled);
    let mut from = pruned;
    while from < floor {
        let page = shared.store.scan(Kind::Outbox, Some(from), PRUNE_PAGE).await?;
        let ids: Vec<u64> = page.iter().map(|&(id, _)| id).take_while(|&id| id <= floor).collect();
        for &id in &ids {
            shared.store.delete(Kind::Outbox, id).await?;
        }
        if ids.len() < PRUNE_PAGE {
            break;
        }
        from = ids.last().copied().unwrap_or(floor);
    }
    Ok((settled, floor.max(pruned)))
}

/// What the admin API asks of the city's webhook deliveries (they run
/// beside the city's actors, wherever its owner is: `Dispatch::webhook_control`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookControl {
    /// An endpoint was added or removed through the admin API.
    EndpointsChanged,
    /// Send the endpoint's dead letters again, in order.
    Replay {
        /// The endpoint's name.
        endpoint: String,
    },
}

/// One event of the outbox, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// Its position in the city's append order.
    pub position: u64,
    /// The event.
    pub event: DispatchEvent,
}

impl OutboxEvent {
    /// The event a stored outbox record holds.
    pub fn of(record: &OutboxRecord) -> Result<Self> {
        let logged: LogRecord = codec::decode(&record.record)?;
        Ok(Self {
            position: record.position,
            event: DispatchEvent { job: record.job, seq: record.seq, at: record.at, kind: logged.into() },
        })
    }
}

impl Dispatch {
    /// The settled mark, watched: it moves as events are logged.
    #[must_use]
    pub fn outbox_settled(&self) -> watch::Receiver<u64> {
        self.shared.seqs.outbox.settled.subscribe()
    }

    /// Up to `limit` outbox records after position `after`, settled ones only, in order.
    pub async fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<OutboxRecord>> {
        let settled = self.shared.seqs.outbox.settled();
        if after >= settled {
            return Ok(Vec::new());
        }
        let page = self.shared.store.scan(Kind::Outbox, Some(after), limit.clamp(1, MAX_OUTBOX_PAGE)).await?;
        page.into_iter().take_while(|&(id, _)| id <= settled).map(|(_, blob)| codec::decode(&blob).map_err(ActorError::from)).collect()
    }

    /// Every endpoint's stored cursor, by key.
    pub async fn webhook_cursors(&self) -> Result<Vec<(u64, CursorRecord)>> {
        cursors(&self.shared).await
    }

    /// Stores how far the endpoint `key` has been delivered.
    pub async fn set_webhook_cursor(&self, key: u64, cursor: &CursorRecord) -> Result<()> {
        Ok(self.shared.store.put(Kind::WebhookCursor, key, codec::encode(cursor)?).await?)
    }

    /// Forgets the endpoint `key`'s cursor (it no longer exists: the outbox need not wait for it).
    pub async fn delete_webhook_cursor(&self, key: u64) -> Result<()> {
        Ok(self.shared.store.delete(Kind::WebhookCursor, key).await?)
    }

    /// Sets an event aside for the endpoint `key`.
    pub async fn put_dead_letter(&self, key: u64, letter: &DeadLetterRecord) -> Result<()> {
        let id = dead_letter_id(key, letter.event.position);
        Ok(self.shared.store.put(Kind::DeadLetter, id, codec::encode(letter)?).await?)
    }

    /// Up to `limit` of the endpoint `key`'s dead letters after position `after`, in the order the events happened.
    pub async fn dead_letters(&self, key: u64, after: Option<u64>, limit: usize) -> Result<Vec<DeadLetterRecord>> {
        let from = dead_letter_id(key, after.unwrap_or(0));
        let below = dead_letter_id(key + 1, 0);
        let page = self.shared.store.scan(Kind::DeadLetter, Some(from), limit.clamp(1, MAX_OUTBOX_PAGE)).await?;
        page.into_iter().take_while(|&(id, _)| id < below).map(|(_, blob)| codec::decode(&blob).map_err(ActorError::from)).collect()
    }

    /// Removes the endpoint `key`'s dead letter of the event at `position` (delivered at last).
    pub async fn remove_dead_letter(&self, key: u64, position: u64) -> Result<()> {
        Ok(self.shared.store.delete(Kind::DeadLetter, dead_letter_id(key, position)).await?)
    }

    /// Turns `true` when the city shuts down or halts: what runs beside it stops.
    #[must_use]
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.shared.stopping.subscribe()
    }

    /// What the admin API asks of the city's webhook deliveries, from now on.
    #[must_use]
    pub fn webhook_control(&self) -> tokio::sync::broadcast::Receiver<WebhookControl> {
        self.shared.webhook_control.subscribe()
    }

    /// Asks for the endpoint's dead letters to be sent again (audited first).
    pub async fn replay_dead_letters(&self, actor: Actor, endpoint: &str) -> Result<()> {
        self.audit(actor, AuditAction::ReplayDeadLetters { endpoint: endpoint.to_owned() }, None).await?;
        let _ = self.shared.webhook_control.send(WebhookControl::Replay { endpoint: endpoint.to_owned() });
        Ok(())
    }

    /// The endpoints added through the admin API.
    pub async fn webhook_endpoints(&self) -> Result<Vec<EndpointRecord>> {
        Ok(crate::shared::decode_all(&self.shared, Kind::WebhookEndpoint).await?.into_iter().map(|(_, e)| e).collect())
    }

    /// Stores an endpoint added through the admin API (audited first). A
    /// name taken, or one whose key another name has, is refused.
    pub async fn add_webhook_endpoint(&self, record: &EndpointRecord) -> Result<()> {
        let key = endpoint_key(&record.name);
        if let Some(blob) = self.shared.store.get(Kind::WebhookEndpoint, key).await? {
            let taken: EndpointRecord = codec::decode(&blob)?;
            return Err(ActorError::Conflict(format!("the name {:?} is taken (by {:?}): choose another", record.name, taken.name)));
        }
        self.audit(record.by, AuditAction::AddWebhook { endpoint: record.name.clone(), url: record.url.clone() }, None).await?;
        self.shared.store.put(Kind::WebhookEndpoint, key, codec::encode(record)?).await?;
        let _ = self.shared.webhook_control.send(WebhookControl::EndpointsChanged);
        Ok(())
    }

    /// Removes an endpoint added through the admin API, with its cursor (audited first).
    pub async fn remove_webhook_endpoint(&self, actor: Actor, name: &str) -> Result<()> {
        let key = endpoint_key(name);
        let stored = self.shared.store.get(Kind::WebhookEndpoint, key).await?.map(|b| codec::decode::<EndpointRecord>(&b)).transpose()?;
        if stored.is_none_or(|e| e.name != name) {
            return Err(ActorError::NotFound(format!("no webhook endpoint {name:?} was added through the admin API")));
        }
        self.audit(actor, AuditAction::RemoveWebhook { endpoint: name.to_owned() }, None).await?;
        self.shared.store.delete(Kind::WebhookEndpoint, key).await?;
        self.shared.store.delete(Kind::WebhookCursor, key).await?;
        let _ = self.shared.webhook_control.send(WebhookControl::EndpointsChanged);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settled_mark_waits_for_the_lowest_write_in_flight() {
        let positions = OutboxPositions::default();
        positions.start_at(10);
        assert_eq!(positions.settled(), 9);
        let (a, b, c) = (positions.claim(), positions.claim(), positions.claim());
        assert_eq!((a, b, c), (10, 11, 12));
        assert_eq!(positions.settled(), 9, "all three in flight");
        positions.release(b);
        positions.release(c);
        assert_eq!(positions.settled(), 9, "10 is still in flight: 11 and 12 are not shown yet");
        positions.release(a);
        assert_eq!(positions.settled(), 12);
        let d = positions.claim();
        positions.release(d);
        assert_eq!(positions.settled(), 13, "a failed write's gap settles too");
    }

    #[test]
    fn dead_letters_of_an_endpoint_sort_by_position_below_the_next_key() {
        let key = endpoint_key("crm");
        assert!(key < 1 << ENDPOINT_KEY_BITS);
        assert!(dead_letter_id(key, 5) < dead_letter_id(key, 6));
        assert!(dead_letter_id(key, (1 << POSITION_BITS) - 1) < dead_letter_id(key + 1, 0));
        assert!(dead_letter_id((1 << ENDPOINT_KEY_BITS) - 1, (1 << POSITION_BITS) - 1) <= i64::MAX as u64);
    }
}
