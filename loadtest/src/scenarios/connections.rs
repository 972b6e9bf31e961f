//! `connections`: C contractors connect and stay idle (answering the
//! server's pings). The server's resident memory (`/metrics`:
//! `dispatch_process_resident_bytes`) before and after gives the memory per
//! idle connection; `connect` is each connection's time to `hello`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;

use dispatch_protocol::Role;

use super::Ctx;

/// The server's resident memory, bytes.
async fn resident(ctx: &Ctx) -> Result<f64> {
    let metrics = crate::server::scrape(ctx.connector.target().addr).await?;
    metrics.get("dispatch_process_resident_bytes").copied().context("the server does not report dispatch_process_resident_bytes")
}

/// Runs the `connections` scenario.
pub(crate) async fn run(ctx: &Arc<Ctx>) -> Result<()> {
    // The warm-up is a quiet settling time here; then the baseline.
    ctx.recorder.start();
    tokio::time::sleep(Duration::from_secs_f64(ctx.config.warmup_secs).max(Duration::from_millis(500))).await;
    ctx.recorder.mark_warmup_done();
    let before = resident(ctx).await?;
    let connect = ctx.recorder.series("connect");
    let open = ctx.recorder.counter("connections_open");
    let started = Instant::now();
    let sockets = ctx
        .connect_all("connect", ctx.config.connections, |i| {
            let (ctx, connect, open) = (Arc::clone(ctx), Arc::clone(&connect), Arc::clone(&open));
            async move {
                let asked = Instant::now();
                let ws = ctx.connector.connect(Role::Contractor, ctx.id_base + i as u64).await?;
                connect.since(asked);
                open.fetch_add(1, Ordering::Relaxed);
                Ok(ws)
            }
        })
        .await;
    let connected_in = started.elapsed();
    let count = sockets.len();
    // Idle: each socket is only read (tungstenite answers the server's pings).
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            let ctx = Arc::clone(ctx);
            tokio::spawn(async move {
                let stop = ctx.stopped();
                tokio::pin!(stop);
                loop {
                    tokio::select! {
                        () = &mut stop => break,
                        msg = ws.next() => match msg {
                            Some(Ok(_)) => {}
                            _ => { ctx.recorder.error("connections: closed by the server"); return; }
                        },
                    }
                }
                let _ = ws.close(None).await;
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = resident(ctx).await?;
    ctx.note("connections", count as f64);
    ctx.note("connect_all_secs", connected_in.as_secs_f64());
    ctx.note("server_rss_before_bytes", before);
    ctx.note("server_rss_after_bytes", after);
    if count > 0 {
        ctx.note("server_bytes_per_connection", (after - before) / count as f64);
    }
    ctx.begin();
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}
