//! `map`: dispatchers subscribed to a busy city (the `match` city at work).
//! A probe contractor moves every 250 ms; `map_lag` runs from the GPS fix
//! that moved it to the delta that shows the new position, at every
//! dispatcher. Deltas go out at most once a second, so the lag includes up
//! to a second of batching by design; past that it is fan-out delay.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::SinkExt;

use dispatch_protocol::Role;
use dispatch_protocol::{ClientMsg, ServerMsg};

use super::{Ctx, register_online};
use crate::net::{call, error_kind, next_msg, text};

/// Positions the probe was sent to, by longitude bits, with when.
type Sent = Arc<Mutex<HashMap<u64, Instant>>>;

/// Runs the `map` scenario.
pub(crate) async fn run(ctx: &Arc<Ctx>) -> Result<()> {
    let city = super::matching::prepare_city(ctx).await;
    let probe_id = ctx.id_base + 9_999_999;
    let centre = dispatch_engine::GeoPoint::new(ctx.config.centre[0], ctx.config.centre[1])?;
    let mut probe = ctx.connector.connect(Role::Contractor, probe_id).await?;
    register_online(&mut probe, centre, &super::TRADES).await?;
    // The probe takes no offers: on a break it stays on the map, out of matching.
    call(&mut probe, "b", &ClientMsg::Break {}).await?;
    let dispatchers = ctx
        .connect_all("connect dispatcher", ctx.config.dispatchers, |i| {
            let ctx = Arc::clone(ctx);
            async move {
                let mut ws = ctx.connector.connect(Role::Dispatcher, ctx.id_base + i as u64).await?;
                call(&mut ws, "s", &ClientMsg::Subscribe { viewport: None }).await?;
                Ok(ws)
            }
        })
        .await;
    ctx.begin();
    let mut tasks = super::matching::spawn_city(ctx, city);
    let sent: Sent = Arc::default();
    for ws in dispatchers {
        tasks.push(tokio::spawn(watch(Arc::clone(ctx), Arc::clone(&sent), probe_id, ws)));
    }
    // The probe creeps east 5 m every 250 ms.
    let lag_probe = {
        let (ctx, sent) = (Arc::clone(ctx), Arc::clone(&sent));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let stop = ctx.stopped();
            tokio::pin!(stop);
            let t0 = super::now_ms() - 1_000_000;
            for n in 1u32.. {
                tokio::select! {
                    () = &mut stop => break,
                    _ = tick.tick() => {}
                }
                let at = centre.destination(90.0, f64::from(n) * 5.0);
                sent.lock().unwrap_or_else(PoisonError::into_inner).insert(at.lng().to_bits(), Instant::now());
                let fix = ClientMsg::Gps {
                    lat: at.lat(),
                    lng: at.lng(),
                    heading: None,
                    speed: Some(20.0),
                    accuracy: None,
                    ts: t0 + i64::from(n) * 250,
                };
                let Ok(frame) = text(None, &fix) else { break };
                if probe.send(frame).await.is_err() {
                    ctx.recorder.error("map: probe socket closed");
                    break;
                }
            }
            let _ = probe.close(None).await;
        })
    };
    tasks.push(lag_probe);
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

/// One dispatcher: reads deltas and times the probe's moves in them.
async fn watch(ctx: Arc<Ctx>, sent: Sent, probe: u64, mut ws: crate::net::Ws) {
    let lag = ctx.recorder.series("map_lag");
    let deltas = ctx.recorder.counter("map_deltas");
    let events = ctx.recorder.counter("map_events");
    let stop = ctx.stopped();
    tokio::pin!(stop);
    loop {
        let msg = tokio::select! {
            () = &mut stop => break,
            msg = next_msg(&mut ws) => msg,
        };
        let msg = match msg {
            Ok(Some(v)) => v,
            Ok(None) => {
                ctx.recorder.error("map: socket closed");
                return;
            }
            Err(e) => {
                ctx.recorder.error(format!("map: {}", super::first_line(&e)));
                return;
            }
        };
        match msg {
            ServerMsg::MapDelta { contractors, .. } => {
                deltas.fetch_add(1, Ordering::Relaxed);
                if let Some(moved) = contractors.iter().find(|c| c.id == probe)
                    && let Some(at) = sent.lock().unwrap_or_else(PoisonError::into_inner).get(&moved.point.lng().to_bits())
                {
                    lag.since(*at);
                }
            }
            ServerMsg::Event { .. } => {
                events.fetch_add(1, Ordering::Relaxed);
            }
            ServerMsg::Error { code, message, .. } => ctx.recorder.error(format!("map: {}", error_kind(code, &message))),
            _ => {}
        }
    }
    let _ = ws.close(None).await;
}
