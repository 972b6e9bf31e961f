//! `gps`: contractors streaming fixes.
//!
//! Periodic (`gps_every_secs > 0`): each bot sends a fix at its slot in a
//! fixed schedule (phases spread over the period), then a `ping`; the pong
//! comes back only after the server has handled the fix, so `gps_rtt` is the
//! fix's latency from its due time. As fast as possible (`gps_every_secs = 0`):
//! `batch` fixes then a ping, with at most `window` pings in flight. The
//! server's own count (`dispatch_gps_ingested_total`) gives the ingest rate.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Mutex, Semaphore};

use dispatch_engine::GeoPoint;
use dispatch_protocol::{ClientMsg, ServerMsg};

use super::Ctx;
use crate::net::{error_kind, frame, next_msg};

/// Contractors online and streaming until the run stops.
pub(crate) async fn run(ctx: &Arc<Ctx>) -> Result<()> {
    let bots = super::contractors_online(ctx, "connect", 0..ctx.config.contractors, &super::TRADES).await;
    ctx.begin();
    let tasks: Vec<_> = bots.into_iter().map(|(i, at, ws)| tokio::spawn(stream_gps(Arc::clone(ctx), i, at, ws))).collect();
    for task in tasks {
        if let Ok(Err(e)) = task.await {
            ctx.recorder.error(format!("gps bot: {}", super::first_line(&e)));
        }
    }
    Ok(())
}

/// The position after `n` fixes: creeping east at 5 m/s of phone time.
fn fix(start: GeoPoint, n: u64, step_ms: i64, t0: i64) -> ClientMsg {
    let secs = n as f64 * step_ms as f64 / 1_000.0;
    let at = start.destination(90.0, secs * 5.0);
    ClientMsg::Gps { lat: at.lat(), lng: at.lng(), heading: Some(90.0), speed: Some(5.0), accuracy: Some(5.0), ts: t0 + n as i64 * step_ms }
}

async fn stream_gps(ctx: Arc<Ctx>, i: usize, start: GeoPoint, ws: crate::net::Ws) -> Result<()> {
    let (mut tx, mut rx) = ws.split();
    let sent = ctx.recorder.counter("gps_sent");
    let rtt = ctx.recorder.series("gps_rtt");
    // Due times of the pings in flight, oldest first (pongs come back in order).
    let pending: Arc<Mutex<VecDeque<Instant>>> = Arc::default();
    let window = Arc::new(Semaphore::new(ctx.config.window));
    let reader = {
        let (ctx, pending, window, rtt) = (Arc::clone(&ctx), Arc::clone(&pending), Arc::clone(&window), Arc::clone(&rtt));
        tokio::spawn(async move {
            while let Ok(Some(msg)) = next_msg(&mut rx).await {
                match msg {
                    ServerMsg::Pong {} => {
                        if let Some(due) = pending.lock().await.pop_front() {
                            rtt.since(due);
                        }
                        window.add_permits(1);
                    }
                    ServerMsg::Error { code, message, .. } => ctx.recorder.error(format!("server: {}", error_kind(code, &message))),
                    _ => {}
                }
            }
        })
    };
    let binary = ctx.config.binary;
    let t0 = super::now_ms() - 1_000_000;
    let mut n = 0u64;
    let stop = ctx.stopped();
    tokio::pin!(stop);
    if ctx.config.gps_every_secs > 0.0 {
        let period = Duration::from_secs_f64(ctx.config.gps_every_secs);
        let step_ms = (ctx.config.gps_every_secs * 1_000.0) as i64;
        // Spread the bots' phases over the period so the load is smooth.
        let phase = period.mul_f64((i as f64 * 0.618_034) % 1.0);
        let first = tokio::time::Instant::now() + phase;
        loop {
            let due = first + period * u32::try_from(n).unwrap_or(u32::MAX);
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep_until(due) => {}
            }
            tx.send(frame(binary, None, &fix(start, n, step_ms, t0))?).await?;
            pending.lock().await.push_back(due.into_std());
            tx.send(frame(false, None, &ClientMsg::Ping {})?).await?;
            sent.fetch_add(1, Ordering::Relaxed);
            n += 1;
        }
    } else {
        let batch = ctx.config.batch;
        'run: loop {
            let permit = tokio::select! {
                () = &mut stop => break 'run,
                p = window.acquire() => p?,
            };
            permit.forget();
            for _ in 0..batch {
                tx.feed(frame(binary, None, &fix(start, n, 1, t0))?).await?;
                n += 1;
            }
            pending.lock().await.push_back(Instant::now());
            tx.send(frame(false, None, &ClientMsg::Ping {})?).await?;
            sent.fetch_add(batch as u64, Ordering::Relaxed);
        }
    }
    // Let the last pongs come back, then leave.
    super::drain_and_close(&pending, &mut tx, reader).await;
    Ok(())
}
