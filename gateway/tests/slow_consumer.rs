//! A dispatcher that stops reading while the city is busy: the map feed
//! coalesces (no frame piles up per tick), the server's memory stays flat,
//! and once the bounded outbound queue is full the connection is closed
//! with 1008. The figures are printed (docs/reliability.md records them).

mod common;

use std::time::{Duration, Instant};

use anyhow::Result;
use common::*;
use dispatch_gateway::Role;
use serde_json::json;

/// A metric's value (summed over its label sets) from `/metrics`.
async fn metric(server: &Server, name: &str) -> Result<f64> {
    let (_, text) = server.http("GET", "/metrics", None).await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_that_stops_reading_is_bounded_coalesced_and_closed_with_1008() -> Result<()> {
    let server = Server::start_with(|c| {
        c.outbound_queue = 4_096;
        c.chat_per_sec = 100_000;
    })
    .await?;
    let token = server.token(Role::Dispatcher, 1);
    let mut stalled = Client::connect_small_window(server.addr, &token, 4 * 1024).await?;
    stalled.call(json!({"type": "subscribe"})).await?;

    // A busy city: contractors moving (map deltas), customers chatting on
    // their jobs (events every dispatcher gets).
    let mut movers = Vec::new();
    for id in 1..=10u64 {
        movers.push(contractor(&server, id, "painting", 100.0 * id as f64).await?);
    }
    let mut customers = Vec::new();
    for id in 100..110u64 {
        let mut c = server.connect(Role::Customer, id).await?;
        let job = c.post_job("roofing").await?;
        customers.push((c, job));
    }
    let rss_start = metric(&server, "dispatch_process_resident_bytes").await?;
    let started = Instant::now();
    let mut rss_max = rss_start;
    let mut sent = 0u64;
    let mut ts = 1_795_420_800_000i64;
    while metric(&server, "dispatch_ws_closed_slow_reader_total").await? < 1.0 {
        assert!(started.elapsed() < Duration::from_secs(60), "not closed after 60 s and {sent} chat messages");
        ts += 1_000;
        for (i, pro) in movers.iter_mut().enumerate() {
            let (lat, lng) = east(100.0 * i as f64 + (ts / 1_000 % 500) as f64);
            pro.send(json!({"type": "gps", "lat": lat, "lng": lng, "ts": ts})).await?;
        }
        for (c, job) in &mut customers {
            c.call(json!({"type": "chat", "job": *job, "text": "x".repeat(500)})).await?;
            sent += 1;
        }
        rss_max = rss_max.max(metric(&server, "dispatch_process_resident_bytes").await?);
    }
    let coalesced = metric(&server, "dispatch_map_deltas_coalesced_total").await?;
    println!(
        "stalled dispatcher closed after {:.1} s and {sent} chat messages ({} KB of events); map ticks coalesced: {coalesced}; \
         server RSS {:.1} MB at the start, at most {:.1} MB",
        started.elapsed().as_secs_f64(),
        sent * 600 / 1024,
        rss_start / 1e6,
        rss_max / 1e6
    );
    assert!(coalesced >= 1.0, "map deltas were coalesced while the queue was backed up");
    assert!(rss_max - rss_start < 64e6, "memory stayed bounded: {rss_start} -> {rss_max}");
    // Reading again: what was queued, then the 1008 close.
    assert_eq!(stalled.closed_with().await?, 1008);
    // Everyone else was unaffected.
    let mut dispatcher = server.connect(Role::Dispatcher, 2).await?;
    dispatcher.call(json!({"type": "nearby", "lat": DSM.0, "lng": DSM.1, "k": 1})).await?;
    let (customer, job) = &mut customers[0];
    customer.call(json!({"type": "chat", "job": *job, "text": "still here"})).await?;
    server.stop().await
}
