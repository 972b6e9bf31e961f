//! `nearest`: `contractors` go online at random points (in waves: each
//! registers, goes online and disconnects, staying on the map), then
//! `dispatchers` ask `nearby` for the `k` nearest to random points, open loop
//! at `queries_per_sec` or each with `window` queries in flight.
//! `nearest` latency runs from a query's due time to its answer.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Mutex;

use dispatch_protocol::Role;
use dispatch_protocol::{AckResult, ClientMsg, ServerMsg};

use super::{Ctx, Rng};
use crate::net::{error_kind, next_msg, text};

/// The points queried, the same for every run (and for the peer).
pub(crate) fn query_point(ctx: &Ctx, rng: &mut Rng) -> dispatch_engine::GeoPoint {
    ctx.random_point(rng)
}

/// Runs the `nearest` scenario.
pub(crate) async fn run(ctx: &Arc<Ctx>) -> Result<()> {
    let loaded = super::online_then_disconnect(ctx, "dataset", 0..ctx.config.contractors, &super::TRADES).await;
    ctx.note("dataset", loaded as f64);
    let dispatchers = ctx
        .connect_all("connect dispatcher", ctx.config.dispatchers, |i| {
            let ctx = Arc::clone(ctx);
            async move { ctx.connector.connect(Role::Dispatcher, ctx.id_base + i as u64).await }
        })
        .await;
    ctx.begin();
    let per = ctx.config.queries_per_sec / dispatchers.len().max(1) as f64;
    let tasks: Vec<_> = dispatchers.into_iter().enumerate().map(|(d, ws)| tokio::spawn(ask(Arc::clone(ctx), d, per, ws))).collect();
    for task in tasks {
        if let Ok(Err(e)) = task.await {
            ctx.recorder.error(format!("nearest: {}", super::first_line(&e)));
        }
    }
    Ok(())
}

async fn ask(ctx: Arc<Ctx>, d: usize, per_sec: f64, ws: crate::net::Ws) -> Result<()> {
    let (mut tx, mut rx) = ws.split();
    let latency = ctx.recorder.series("nearest");
    let answered = ctx.recorder.counter("queries_answered");
    let found = ctx.recorder.counter("neighbours_returned");
    let pending: Arc<Mutex<VecDeque<Instant>>> = Arc::default();
    let window = Arc::new(tokio::sync::Semaphore::new(ctx.config.window));
    let reader = {
        let (ctx, pending, window) = (Arc::clone(&ctx), Arc::clone(&pending), Arc::clone(&window));
        tokio::spawn(async move {
            while let Ok(Some(v)) = next_msg(&mut rx).await {
                match v {
                    ServerMsg::Ack { result, .. } => {
                        if let Some(due) = pending.lock().await.pop_front() {
                            latency.since(due);
                        }
                        answered.fetch_add(1, Ordering::Relaxed);
                        let n = if let AckResult::Nearby(nearby) = result { nearby.contractors.len() } else { 0 };
                        found.fetch_add(n as u64, Ordering::Relaxed);
                        window.add_permits(1);
                    }
                    ServerMsg::Error { code, message, .. } => {
                        pending.lock().await.pop_front();
                        window.add_permits(1);
                        ctx.recorder.error(format!("nearest: {}", error_kind(code, &message)));
                    }
                    _ => {}
                }
            }
        })
    };
    let mut rng = Rng::new(1_000 + d as u64);
    let k = ctx.config.k;
    let mut pacer = ctx.pacer(per_sec);
    for n in 0u64.. {
        let due = if per_sec > 0.0 {
            let Some(at) = pacer.due(n).await else { break };
            at
        } else {
            let Some(permit) = pacer.until_stopped(window.acquire()).await else { break };
            permit?.forget();
            Instant::now()
        };
        let at = query_point(&ctx, &mut rng);
        let query = ClientMsg::Nearby { lat: at.lat(), lng: at.lng(), k, trade: None, available_only: false, radius_m: None };
        pending.lock().await.push_back(due);
        tx.send(text(Some("q"), &query)?).await?;
    }
    super::drain_and_close(&pending, &mut tx, reader).await;
    Ok(())
}
