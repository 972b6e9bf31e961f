//! `match`: a city at work. Contractors online send GPS every
//! `gps_every_secs`, accept every offer and complete the job at once (so they
//! are free again); customers post jobs at `jobs_per_sec` on a fixed schedule.
//! `background_contractors` more are put online (then disconnected) with
//! trades no job asks for: they fill the index the searches walk, as a city
//! of that size would, without needing a socket each.
//!
//! - `offer` latency: from the customer handing the job's `post_job` frame to
//!   its socket to the offer reaching a contractor (matched by the job's
//!   description).
//! - `offer_from_due`: the same from the job's due time (its slot in the
//!   schedule), so a harness or server that falls behind the schedule still
//!   shows (open loop); `post_sent` is the difference, the harness's own delay
//!   (its timers fire on whole milliseconds, about 1 ms late on average).
//! - `accept_notified` latency: from a contractor sending `accept` to the
//!   customer receiving the `accepted` event.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use dispatch_protocol::Role;
use dispatch_protocol::{AckResult, ClientMsg, Event, JobProgress, ServerMsg, UrgencyWire};

use super::{Ctx, Rng, TRADES};
use crate::net::{Ws, error_kind, frame, next_msg, text};

/// What the bots share: when each job was due and posted, when each accept was sent.
#[derive(Default)]
pub(crate) struct Ledger {
    due: StdMutex<HashMap<u64, Instant>>,
    posted: StdMutex<HashMap<u64, Instant>>,
    accepted: StdMutex<HashMap<u64, Instant>>,
}

fn locked<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The busy city's bots, connected and online, not yet at work.
pub(crate) struct CityBots {
    contractors: Vec<(usize, dispatch_engine::GeoPoint, Ws)>,
    customers: Vec<Ws>,
}

/// Connects the busy city: contractors online, customers ready to post.
pub(crate) async fn prepare_city(ctx: &Arc<Ctx>) -> CityBots {
    // Background contractors first: the index holds them too, but their trades match no job.
    let background = ctx.config.background_contractors;
    if background > 0 {
        let start = ctx.config.contractors;
        let loaded = super::online_then_disconnect(ctx, "background", start..start + background, &super::BACKGROUND_TRADES).await;
        ctx.note("background_contractors", loaded as f64);
    }
    let contractors = super::contractors_online(ctx, "connect contractor", 0..ctx.config.contractors, &super::TRADES).await;
    let customers = ctx
        .connect_all("connect customer", ctx.config.customers, |i| {
            let ctx = Arc::clone(ctx);
            async move { ctx.connector.connect(Role::Customer, ctx.id_base + i as u64).await }
        })
        .await;
    CityBots { contractors, customers }
}

/// Sets the city to work until the run stops.
pub(crate) fn spawn_city(ctx: &Arc<Ctx>, bots: CityBots) -> Vec<tokio::task::JoinHandle<()>> {
    let ledger = Arc::new(Ledger::default());
    let CityBots { contractors, customers } = bots;
    let mut tasks = Vec::new();
    for (i, at, ws) in contractors {
        tasks.push(tokio::spawn(contractor(Arc::clone(ctx), Arc::clone(&ledger), i, at, ws)));
    }
    let mut inboxes = Vec::new();
    for ws in customers {
        let (tx, rx) = mpsc::unbounded_channel();
        inboxes.push(tx);
        tasks.push(tokio::spawn(customer(Arc::clone(ctx), Arc::clone(&ledger), rx, ws)));
    }
    tasks.push(tokio::spawn(schedule(Arc::clone(ctx), ledger, inboxes)));
    tasks
}

/// Runs the `match` scenario.
pub(crate) async fn run(ctx: &Arc<Ctx>) -> Result<()> {
    let bots = prepare_city(ctx).await;
    ctx.begin();
    for task in spawn_city(ctx, bots) {
        let _ = task.await;
    }
    Ok(())
}

/// Posts job `seq` at its due time, round-robin over the customers, open loop:
/// a customer behind on its work gets the job anyway and its wait is counted.
async fn schedule(ctx: Arc<Ctx>, ledger: Arc<Ledger>, customers: Vec<mpsc::UnboundedSender<u64>>) {
    if customers.is_empty() {
        return;
    }
    let mut pacer = ctx.pacer(ctx.config.jobs_per_sec);
    for seq in 0u64.. {
        let Some(due) = pacer.due(seq).await else { break };
        locked(&ledger.due).insert(seq, due);
        let _ = customers[(seq % customers.len() as u64) as usize].send(seq);
    }
}

async fn customer(ctx: Arc<Ctx>, ledger: Arc<Ledger>, mut jobs: mpsc::UnboundedReceiver<u64>, ws: Ws) {
    let (mut tx, mut rx) = ws.split();
    let posted = ctx.recorder.counter("jobs_posted");
    let notified = ctx.recorder.series("accept_notified");
    let post_sent = ctx.recorder.series("post_sent");
    let reader = {
        let (ctx, ledger) = (Arc::clone(&ctx), Arc::clone(&ledger));
        tokio::spawn(async move {
            while let Ok(Some(msg)) = next_msg(&mut rx).await {
                match msg {
                    ServerMsg::Event { job, event: Event::Accepted { .. }, .. } => {
                        if let Some(sent) = locked(&ledger.accepted).remove(&job) {
                            notified.since(sent);
                        }
                    }
                    ServerMsg::Ack { result, .. } => {
                        posted.fetch_add(1, Ordering::Relaxed);
                        if let AckResult::Posted(p) = result {
                            ctx.acknowledge(p.job, 1);
                        }
                    }
                    ServerMsg::Error { code, message, .. } => ctx.recorder.error(format!("customer: {}", error_kind(code, &message))),
                    _ => {}
                }
            }
        })
    };
    let mut rng = Rng::new(ctx.id_base ^ 0xC0FFEE);
    let stop = ctx.stopped();
    tokio::pin!(stop);
    loop {
        let seq = tokio::select! {
            () = &mut stop => break,
            seq = jobs.recv() => match seq { Some(s) => s, None => break },
        };
        let at = ctx.random_point(&mut rng);
        let msg = ClientMsg::PostJob {
            trade: TRADES[rng.below(TRADES.len())],
            lat: at.lat(),
            lng: at.lng(),
            urgency: UrgencyWire::Emergency,
            description: format!("lt-{seq}"),
            budget: None,
            request_id: None,
            payment_method: None,
        };
        let Ok(frame) = text(Some(&format!("p{seq}")), &msg) else { continue };
        // Stamped before the write, so an offer can never come back before its stamp.
        let posted_at = Instant::now();
        locked(&ledger.posted).insert(seq, posted_at);
        if let Some(due) = locked(&ledger.due).get(&seq).copied() {
            post_sent.record(posted_at.saturating_duration_since(due));
        }
        if tx.send(frame).await.is_err() {
            ctx.recorder.error("customer: socket closed");
            break;
        }
    }
    // Let the last acceptances arrive.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = tx.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
}

/// An offer's job and the schedule slot in its description (`lt-<seq>`).
fn offered_seq(msg: &ServerMsg) -> Option<(u64, u64)> {
    let ServerMsg::Offer { job, description, .. } = msg else { return None };
    Some((*job, description.strip_prefix("lt-")?.parse().ok()?))
}

/// The job an ack of an `accept` (id `a<job>`) is for.
fn accepted_job(id: &str) -> Option<u64> {
    id.strip_prefix('a')?.parse().ok()
}

/// The step (0 en route, 1 on site, 2 completed) and job an ack of a status (id `s<step>-<job>`) is for.
fn status_step(id: &str) -> Option<(u64, u64)> {
    let (step, job) = id.strip_prefix('s')?.split_once('-')?;
    Some((step.parse().ok()?, job.parse().ok()?))
}

async fn contractor(ctx: Arc<Ctx>, ledger: Arc<Ledger>, i: usize, start: dispatch_engine::GeoPoint, ws: Ws) {
    let (mut tx, mut rx) = ws.split();
    let offers = ctx.recorder.series("offer");
    let offers_from_due = ctx.recorder.series("offer_from_due");
    let offered = ctx.recorder.counter("offers_received");
    let completed = ctx.recorder.counter("jobs_completed");
    let gps_sent = ctx.recorder.counter("gps_sent");
    let period = Duration::from_secs_f64(ctx.config.gps_every_secs.max(0.001));
    let phase = period.mul_f64((i as f64 * 0.618_034) % 1.0);
    let mut gps = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
    let t0 = super::now_ms() - 1_000_000;
    let mut n = 0i64;
    let stop = ctx.stopped();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = gps.tick(), if ctx.config.gps_every_secs > 0.0 => {
                let msg = ClientMsg::Gps { lat: start.lat(), lng: start.lng(), heading: None, speed: Some(0.0), accuracy: Some(5.0), ts: t0 + n * 1_000 };
                n += 1;
                let Ok(f) = frame(ctx.config.binary, None, &msg) else { continue };
                if tx.send(f).await.is_err() { break; }
                gps_sent.fetch_add(1, Ordering::Relaxed);
            }
            msg = next_msg(&mut rx) => {
                let Ok(Some(msg)) = msg else { break };
                if let Some((job, seq)) = offered_seq(&msg) {
                    offered.fetch_add(1, Ordering::Relaxed);
                    if let Some(posted_at) = locked(&ledger.posted).remove(&seq) {
                        offers.since(posted_at);
                    }
                    if let Some(due) = locked(&ledger.due).remove(&seq) {
                        offers_from_due.since(due);
                    }
                    locked(&ledger.accepted).insert(job, Instant::now());
                    let Ok(f) = text(Some(&format!("a{job}")), &ClientMsg::Accept { job, request_id: None }) else { continue };
                    if tx.send(f).await.is_err() { break; }
                    continue;
                }
                match msg {
                    ServerMsg::Ack { id: Some(id), .. } => {
                        if let Some(job) = accepted_job(&id) {
                            // Posted, offered, accepted.
                            ctx.acknowledge(job, 3);
                            // Done at once: on the way, there, finished — free for the next offer.
                            for (k, status) in [JobProgress::EnRoute, JobProgress::OnSite, JobProgress::Completed].into_iter().enumerate() {
                                let Ok(f) = text(Some(&format!("s{k}-{job}")), &ClientMsg::JobStatus { job, status }) else { continue };
                                if tx.feed(f).await.is_err() { break; }
                            }
                            let _ = tx.flush().await;
                        } else if let Some((step, job)) = status_step(&id) {
                            // En route, on site, completed: one entry each after the accept.
                            ctx.acknowledge(job, 4 + step);
                            if step == 2 {
                                completed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    ServerMsg::Error { code, message, .. } => ctx.recorder.error(format!("contractor: {}", error_kind(code, &message))),
                    _ => {}
                }
            }
        }
    }
    let _ = tx.close().await;
}
