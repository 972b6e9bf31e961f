//! One endpoint's deliveries for one city: the outbox read from the
//! endpoint's stored cursor, a page at a time.
//!
//! A page's events are grouped by job; up to `concurrency` jobs are sent at
//! once, each job's events one after another, in order. A failed attempt is
//! retried after a backoff; after `max_attempts` the event goes to the
//! endpoint's dead letters, and so does every later event of that job, unattempted
//! (`behind`), until the dead letters are replayed: a job's events reach the
//! endpoint in order or not at all. Other jobs go on. The cursor moves past a
//! page once every event in it was delivered, dead-lettered or filtered out,
//! and is stored, so a restart sends at most that page again (a receiver
//! de-duplicates by the event id).

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dispatch_actors::{CursorRecord, DeadLetterRecord, Dispatch, OutboxEvent, OutboxRecord};
use dispatch_engine::Timestamp;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use super::backoff::Backoff;
use crate::protocol::signature;
use crate::protocol::webhook::{Delivery, EVENT_ID_HEADER, Notify, SIGNATURE_HEADER};

/// Outbox records read at a time.
const PAGE: usize = 200;

/// An endpoint as its deliveries use it.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) name: String,
    pub(crate) key: u64,
    pub(crate) url: String,
    pub(crate) secrets: Vec<String>,
    pub(crate) events: Vec<String>,
}

impl Endpoint {
    fn takes(&self, kind: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == kind)
    }
}

/// How deliveries are made: the client, the schedule, the limits.
#[derive(Clone)]
pub(crate) struct Sender {
    pub(crate) client: reqwest::Client,
    pub(crate) backoff: Backoff,
    pub(crate) max_attempts: u32,
    pub(crate) concurrency: usize,
}

/// Why delivery stopped part-way.
struct Stopped;

/// What one attempt came to.
enum Attempt {
    Delivered,
    Failed(String),
}

/// One endpoint's delivery for one city.
pub(crate) struct EndpointDelivery {
    pub(crate) city: String,
    pub(crate) dispatch: Dispatch,
    pub(crate) endpoint: Endpoint,
    pub(crate) sender: Sender,
    /// Jobs with a dead letter: their later events wait behind it.
    parked: Mutex<HashSet<u64>>,
}

impl EndpointDelivery {
    pub(crate) fn new(city: String, dispatch: Dispatch, endpoint: Endpoint, sender: Sender) -> Self {
        Self { city, dispatch, endpoint, sender, parked: Mutex::default() }
    }

    fn parked(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Delivers until `stop`; `replays`: the admin API's requests to send the dead letters again.
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>, mut replays: mpsc::Receiver<()>) {
        let mut settled = self.dispatch.outbox_settled();
        let mut cursor = loop {
            match self.open().await {
                Ok(cursor) => break cursor,
                Err(e) => {
                    tracing::warn!(city = %self.city, endpoint = %self.endpoint.name, %e, "webhook cursor not read; trying again");
                    if pause(&mut stop, Duration::from_secs(1)).await.is_err() {
                        return;
                    }
                }
            }
        };
        loop {
            let head = *settled.borrow_and_update();
            let labels = [("city", self.city.clone()), ("endpoint", self.endpoint.name.clone())];
            metrics::gauge!("dispatch_webhook_lag_events", &labels).set(head.saturating_sub(cursor) as f64);
            if replays.try_recv().is_ok() && self.replay(&mut stop).await.is_err() {
                return;
            }
            let page = match self.dispatch.outbox_after(cursor, PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(city = %self.city, endpoint = %self.endpoint.name, %e, "outbox not read; trying again");
                    if pause(&mut stop, Duration::from_secs(1)).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let Some(last) = page.last().map(|r| r.position) else {
                let replay = tokio::select! {
                    _ = settled.changed() => false,
                    Some(()) = replays.recv() => true,
                    _ = stop.wait_for(|s| *s) => return,
                };
                if replay && self.replay(&mut stop).await.is_err() {
                    return;
                }
                continue;
            };
            tracing::debug!(city = %self.city, endpoint = %self.endpoint.name, from = cursor, to = last, "webhook page");
            if self.deliver_page(page, &stop).await.is_err() {
                return;
            }
            cursor = last;
            let record = CursorRecord { endpoint: self.endpoint.name.clone(), position: cursor };
            if let Err(e) = self.dispatch.set_webhook_cursor(self.endpoint.key, &record).await {
                // The page is sent again after a restart: receivers de-duplicate.
                tracing::warn!(city = %self.city, endpoint = %self.endpoint.name, %e, "webhook cursor not stored");
            }
        }
    }

    /// The stored cursor, or a new one at the settled mark (stored first); the parked jobs.
    async fn open(&self) -> dispatch_actors::Result<u64> {
        let cursors = self.dispatch.webhook_cursors().await?;
        let cursor = match cursors.into_iter().find(|(key, _)| *key == self.endpoint.key) {
            Some((_, c)) => c.position,
            None => {
                let position = *self.dispatch.outbox_settled().borrow();
                self.dispatch
                    .set_webhook_cursor(self.endpoint.key, &CursorRecord { endpoint: self.endpoint.name.clone(), position })
                    .await?;
                position
            }
        };
        let letters = self.all_dead_letters().await?;
        *self.parked() = letters.iter().map(|l| l.event.job.0).collect();
        Ok(cursor)
    }

    async fn all_dead_letters(&self) -> dispatch_actors::Result<Vec<DeadLetterRecord>> {
        let mut out: Vec<DeadLetterRecord> = Vec::new();
        loop {
            let after = out.last().map(|l| l.event.position);
            let page = self.dispatch.dead_letters(self.endpoint.key, after, 1_000).await?;
            if page.is_empty() {
                return Ok(out);
            }
            out.extend(page);
        }
    }

    /// Sends a page: jobs side by side, each job's events in order.
    async fn deliver_page(&self, page: Vec<OutboxRecord>, stop: &watch::Receiver<bool>) -> Result<(), Stopped> {
        let mut jobs: Vec<(u64, Vec<OutboxRecord>)> = Vec::new();
        for record in page {
            match jobs.iter_mut().find(|(job, _)| *job == record.job.0) {
                Some((_, events)) => events.push(record),
                None => jobs.push((record.job.0, vec![record])),
            }
        }
        let results: Vec<Result<(), Stopped>> = futures_util::stream::iter(jobs)
            .map(|(_, events)| self.deliver_job(events, stop.clone()))
            .buffer_unordered(self.sender.concurrency)
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn deliver_job(&self, events: Vec<OutboxRecord>, mut stop: watch::Receiver<bool>) -> Result<(), Stopped> {
        for record in events {
            let delivery = match self.delivery_of(&record).await {
                Ok(delivery) => delivery,
                Err(e) => {
                    self.set_aside(record, 0, format!("unreadable: {e}"), false, &stop).await?;
                    continue;
                }
            };
            if !self.endpoint.takes(&delivery.kind) {
                continue;
            }
            if self.parked().contains(&record.job.0) {
                self.set_aside(record, 0, "behind an earlier dead letter of the same job".into(), true, &stop).await?;
                continue;
            }
            let mut failures = 0;
            loop {
                match self.attempt(&delivery).await {
                    Attempt::Delivered => {
                        self.count("delivered");
                        break;
                    }
                    Attempt::Failed(why) => {
                        failures += 1;
                        self.count("failed");
                        if failures >= self.sender.max_attempts {
                            self.parked().insert(record.job.0);
                            self.set_aside(record, failures, why, false, &stop).await?;
                            break;
                        }
                        let seed = record.position ^ (self.endpoint.key << 40) ^ u64::from(failures);
                        pause(&mut stop, self.sender.backoff.pause(failures, seed)).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The request body of an outbox record: the event, with a notify block
    /// for each party it concerns who is not connected now.
    async fn delivery_of(&self, record: &OutboxRecord) -> dispatch_actors::Result<Delivery> {
        let read = OutboxEvent::of(record)?;
        let event = &read.event;
        let mut delivery = Delivery::new(&self.city, event.job.0, event.seq, event.at.0, crate::wire::event(&event.kind));
        let targets = match self.dispatch.notify_targets(event).await {
            Ok(targets) => targets,
            Err(e) => {
                // The event still goes; only the hint is missing.
                tracing::warn!(city = %self.city, job = event.job.0, seq = event.seq, %e, "whom to notify was not found");
                Vec::new()
            }
        };
        delivery.notify = targets
            .into_iter()
            .map(|t| Notify {
                role: if t.party == dispatch_engine::Party::Contractor { "contractor" } else { "customer" }.to_owned(),
                user: t.id,
                what: delivery.kind.clone(),
                until: t.until.map(|u| u.0),
                quiet_now: t.preferences.quiet_hours.as_ref().is_some_and(|q| q.contains(event.at)),
                channels: t.preferences.channels,
                quiet_hours: t.preferences.quiet_hours,
            })
            .collect();
        Ok(delivery)
    }

    /// One request: signed now, 2xx or a failure with the reason.
    async fn attempt(&self, delivery: &Delivery) -> Attempt {
        let body = match serde_json::to_vec(delivery) {
            Ok(body) => body,
            Err(e) => return Attempt::Failed(format!("not encoded: {e}")),
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let secrets: Vec<&[u8]> = self.endpoint.secrets.iter().map(String::as_bytes).collect();
        let signed = signature::sign(&secrets, now, &body);
        let request = self
            .sender
            .client
            .post(&self.endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_ID_HEADER, &delivery.id)
            .header(SIGNATURE_HEADER, signed)
            .body(body);
        match request.send().await {
            Ok(response) if response.status().is_success() => Attempt::Delivered,
            Ok(response) => Attempt::Failed(format!("HTTP {}", response.status().as_u16())),
            Err(e) => Attempt::Failed(error_chain(&e)),
        }
    }

    /// Stores a dead letter: retried until stored, or until told to stop
    /// (the cursor then does not move past it, so it is read again).
    async fn set_aside(
        &self,
        event: OutboxRecord,
        attempts: u32,
        error: String,
        behind: bool,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), Stopped> {
        let at = Timestamp(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64));
        tracing::warn!(city = %self.city, endpoint = %self.endpoint.name, job = event.job.0, seq = event.seq, position = event.position, %error, "webhook event dead-lettered");
        let letter = DeadLetterRecord { endpoint: self.endpoint.name.clone(), event, attempts, error, at, behind };
        while let Err(e) = self.dispatch.put_dead_letter(self.endpoint.key, &letter).await {
            tracing::warn!(city = %self.city, endpoint = %self.endpoint.name, %e, "dead letter not stored; trying again");
            pause(&mut stop.clone(), Duration::from_secs(1)).await?;
        }
        self.count("dead_lettered");
        Ok(())
    }

    /// Sends the dead letters again, oldest first, one attempt each; a job
    /// whose letter fails keeps that one and its later ones. Delivered ones
    /// are removed; a job with none left is no longer parked.
    async fn replay(&self, stop: &mut watch::Receiver<bool>) -> Result<(), Stopped> {
        let letters = match self.all_dead_letters().await {
            Ok(letters) => letters,
            Err(e) => {
                tracing::warn!(city = %self.city, endpoint = %self.endpoint.name, %e, "dead letters not read: no replay");
                return Ok(());
            }
        };
        let mut still = HashSet::new();
        tracing::debug!(city = %self.city, endpoint = %self.endpoint.name, letters = letters.len(), "replaying dead letters");
        for letter in letters {
            if *stop.borrow() {
                return Err(Stopped);
            }
            let job = letter.event.job.0;
            if still.contains(&job) {
                continue;
            }
            let sent = match self.delivery_of(&letter.event).await {
                Ok(delivery) => matches!(self.attempt(&delivery).await, Attempt::Delivered),
                Err(_) => false,
            };
            if sent && self.dispatch.remove_dead_letter(self.endpoint.key, letter.event.position).await.is_ok() {
                self.count("replayed");
            } else {
                still.insert(job);
            }
        }
        *self.parked() = still;
        Ok(())
    }

    fn count(&self, outcome: &'static str) {
        metrics::counter!("dispatch_webhook_deliveries_total", "endpoint" => self.endpoint.name.clone(), "outcome" => outcome).increment(1);
    }
}

/// Sleeps `how_long` unless told to stop first.
async fn pause(stop: &mut watch::Receiver<bool>, how_long: Duration) -> Result<(), Stopped> {
    tokio::select! {
        () = tokio::time::sleep(how_long) => Ok(()),
        _ = stop.wait_for(|s| *s) => Err(Stopped),
    }
}

/// An HTTP error with its causes (reqwest's own message names only the outermost).
fn error_chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
