//! The city's key figures per hour (engine `kpi.rs`), kept up as events
//! happen: a task reads the city's outbox (`outbox.rs`) from a cursor of its
//! own and folds each event into the record of the hour it happened in.
//! Operators read stored hours; nothing is scanned on request.
//!
//! Each hour's record keeps the outbox position it has counted through, and
//! is stored before the cursor: after a crash the page is read again and the
//! events an hour has already counted are skipped, so each counts once.
//! The cursor is a webhook cursor under a key no endpoint has, so the outbox
//! keeps what the figures have not read yet. The same fold keeps the city's
//! job index (`job_index.rs`), stored in the same batch.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use dispatch_engine::kpi::{HourKpis, Observation, hour_of};
use dispatch_engine::payment::PaymentNotice;
use dispatch_engine::{JobId, Timestamp};
use dispatch_storage::{Kind, codec};
use ractor::ActorRef;
use tokio::sync::watch;

use crate::dispatcher::DispatcherMsg;

use crate::error::Result;
use crate::events::{DispatchEvent, EventKind};
use crate::handle::Dispatch;
use crate::outbox::{ENDPOINT_KEY_BITS, OutboxEvent};
use crate::record::{CursorRecord, JobSnapshot, KpiRecord, OutboxRecord};
use crate::shared::Shared;

/// The figures' cursor in the outbox: above every endpoint's key.
pub const KPI_CURSOR_KEY: u64 = 1 << ENDPOINT_KEY_BITS;
/// Outbox records folded at a time.
const PAGE: usize = 500;
/// The most hours one read returns (31 days).
pub const MAX_HOURS: i64 = 31 * 24;

/// Starts the task keeping the figures (the city is starting).
pub(crate) async fn start(city: &Dispatch) -> Result<()> {
    let shared = &city.shared;
    let cursor = match shared.store.get(Kind::WebhookCursor, KPI_CURSOR_KEY).await? {
        Some(blob) => codec::decode::<CursorRecord>(&blob)?.position,
        None => {
            // The figures start now: what happened before is not in the outbox any more.
            let position = shared.seqs.outbox.settled();
            let record = CursorRecord { endpoint: "kpis".into(), position };
            shared.store.put(Kind::WebhookCursor, KPI_CURSOR_KEY, codec::encode(&record)?).await?;
            position
        }
    };
    // Weak: the task does not keep a city alive that everyone else dropped.
    shared.keep_task(tokio::spawn(fold(Arc::downgrade(shared), city.root.clone(), cursor, shared.stopping.subscribe())));
    Ok(())
}

async fn fold(city: Weak<Shared>, root: ActorRef<DispatcherMsg>, mut cursor: u64, mut stopping: watch::Receiver<bool>) {
    let Some(mut settled) = city.upgrade().map(|s| s.seqs.outbox.settled.subscribe()) else { return };
    loop {
        if *stopping.borrow() {
            return;
        }
        let Some(shared) = city.upgrade() else { return };
        let dispatch = Dispatch { root: root.clone(), shared };
        match fold_page(&dispatch, cursor).await {
            Ok(Some(last)) => {
                cursor = last;
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%e, "the city's figures were not kept this round; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        drop(dispatch);
        tokio::select! {
            _ = settled.changed() => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
    }
}

/// Folds the page after `cursor`; the new cursor, or `None` when there was nothing.
async fn fold_page(city: &Dispatch, cursor: u64) -> Result<Option<u64>> {
    let page = city.outbox_after(cursor, PAGE).await?;
    let Some(last) = page.last().map(|r| r.position) else { return Ok(None) };
    let snaps = snapshots(city, &page).await;
    let mut hours: BTreeMap<i64, KpiRecord> = BTreeMap::new();
    for record in &page {
        let read = match OutboxEvent::of(record) {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(position = record.position, %e, "an outbox record is unreadable: not counted");
                continue;
            }
        };
        let hour = hour_of(read.event.at.0);
        if let std::collections::btree_map::Entry::Vacant(slot) = hours.entry(hour) {
            let stored = city.shared.store.get(Kind::Kpi, hour_key(hour)).await?.map(|b| codec::decode::<KpiRecord>(&b)).transpose()?;
            slot.insert(stored.unwrap_or(KpiRecord { hour, through: 0, kpis: HourKpis::default() }));
        }
        let Some(observed) = observation(city, &read.event, snaps.get(&read.event.job)) else { continue };
        if let Some(bucket) = hours.get_mut(&hour)
            && record.position > bucket.through
        {
            bucket.kpis.observe(observed);
            bucket.through = record.position;
        }
    }
    let mut items = hours.values().map(|r| Ok((Kind::Kpi, hour_key(r.hour), codec::encode(r)?))).collect::<Result<Vec<_>>>()?;
    // The job index is kept by the same fold (`job_index.rs`), from the same snapshots.
    for snap in snaps.values() {
        items.push(crate::job_index::row(snap)?);
    }
    city.shared.store.put_batch(items).await?;
    city.set_webhook_cursor(KPI_CURSOR_KEY, &CursorRecord { endpoint: "kpis".into(), position: last }).await?;
    Ok(Some(last))
}

/// Hours since the epoch as store ids (hours before 1970 are not kept).
fn hour_key(hour: i64) -> u64 {
    u64::try_from(hour).unwrap_or(0)
}

fn secs_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.0 - from.0) as f64 / 1_000.0
}

/// What the figures count of `event`; `snap`, its job's snapshot, gives the durations.
fn observation(city: &Dispatch, event: &DispatchEvent, snap: Option<&JobSnapshot>) -> Option<Observation> {
    Some(match &event.kind {
        EventKind::Posted { quote, .. } => Observation::Posted { surge: quote.surge },
        EventKind::Offered { .. } => Observation::Offered,
        EventKind::Accepted { .. } => Observation::Accepted { after_secs: secs_between(snap?.job.posted_at, event.at) },
        EventKind::OnSite { .. } => Observation::Arrived { after_secs: secs_between(snap?.accepted_at?, event.at) },
        EventKind::Completed { .. } => Observation::Completed,
        EventKind::Cancelled { .. } => Observation::Cancelled,
        EventKind::Expired { .. } => Observation::Expired,
        EventKind::Payment(PaymentNotice::Captured { amount }) => {
            let fee = city.shared.config.payments.as_ref().map_or(dispatch_engine::Money(0), |p| p.terms.platform_fee(*amount));
            Observation::Captured { amount: *amount, fee }
        }
        _ => return None,
    })
}

/// The snapshots of the jobs a page touched, each read once (a job gone
/// from the store is not counted for durations and keeps its index row).
async fn snapshots(city: &Dispatch, page: &[OutboxRecord]) -> BTreeMap<JobId, JobSnapshot> {
    let mut out = BTreeMap::new();
    for record in page {
        if out.contains_key(&record.job) {
            continue;
        }
        match city.job(record.job).await {
            Ok(snap) => {
                out.insert(record.job, snap);
            }
            Err(e) => tracing::debug!(job = %record.job, %e, "a job's snapshot is not readable: no durations or index row from it"),
        }
    }
    out
}

impl Dispatch {
    /// The city's figures for each stored hour in `[from, until)` (hours since
    /// the epoch, at most [`MAX_HOURS`] of them), in order.
    pub async fn kpis(&self, from: i64, until: i64) -> Result<Vec<(i64, HourKpis)>> {
        let (from, until) = (from.max(0), until.min(from.max(0) + MAX_HOURS));
        if until <= from {
            return Ok(Vec::new());
        }
        let after = (from > 0).then(|| hour_key(from - 1));
        let page = self.shared.store.scan(Kind::Kpi, after, usize::try_from(until - from).unwrap_or(0)).await?;
        let mut out = Vec::new();
        for (_, blob) in page {
            let record: KpiRecord = codec::decode(&blob)?;
            if record.hour >= until {
                break;
            }
            out.push((record.hour, record.kpis));
        }
        Ok(out)
    }
}
