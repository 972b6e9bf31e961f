//! A `dispatch serve` process under load from WebSocket bots, and the check
//! that what it acknowledged is still there: for the crash and outage suites.
#![allow(clippy::expect_used, reason = "bots outside #[test] functions: a poisoned lock or a bad token is a test failure")]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use dispatch_gateway::{Auth, Role};
use serde_json::json;

use super::*;

pub const SECRET: &str = "crash-recovery-secret-of-at-least-32-bytes";
pub const CONTRACTORS: u64 = 8;
pub const CUSTOMERS: u64 = 12;

/// Starts `dispatch serve` on `addr` over `data` (plus `extra` flags); returns
/// it and how long it took to be ready.
pub async fn start(data: &Path, addr: SocketAddr, extra: &[String]) -> Result<(tokio::process::Child, Duration)> {
    let started = Instant::now();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(["serve", "--listen", &addr.to_string(), "--jwt-secret", SECRET, "--data-dir"])
        .arg(data)
        .args(extra)
        // The log, appended to across restarts, for reading after a failure.
        .stdout(std::fs::OpenOptions::new().create(true).append(true).open(data.join("server.log"))?)
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok((200, _)) = http_at(addr, "GET", "/readyz", None).await {
            return Ok((child, started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("not ready within 60 s")
}

pub fn token(role: Role, sub: u64) -> String {
    Auth::new(SECRET.as_bytes()).issue(role, sub, CITY, 3600).expect("token")
}

/// What the server acknowledged before it died.
#[derive(Default)]
pub struct Acked {
    /// Job → its customer.
    pub jobs: BTreeMap<u64, u64>,
    /// Job → the contractor whose accept was acknowledged.
    pub accepted: BTreeMap<u64, u64>,
    /// (job, seq) → chat text.
    pub chats: BTreeMap<(u64, u64), String>,
}

/// A contractor that streams GPS and accepts every offer, until the socket dies.
pub async fn contractor_bot(addr: SocketAddr, id: u64, acked: Arc<Mutex<Acked>>) -> Result<()> {
    let mut c = Client::connect(addr, &token(Role::Contractor, id)).await?;
    c.call(json!({"type": "register", "name": format!("c{id}"), "trades": [{"trade": "plumbing", "years": 4}], "hourly_rate": 8000, "service_radius_m": 30000.0})).await?;
    let (lat, lng) = east(200.0 * id as f64);
    c.call(json!({"type": "online", "lat": lat, "lng": lng})).await?;
    let mut ts = 1_795_420_800_000u64;
    loop {
        ts += 1_000;
        c.send(json!({"type": "gps", "lat": lat, "lng": lng, "ts": ts})).await?;
        let frame = match tokio::time::timeout(Duration::from_millis(50), c.recv()).await {
            Ok(frame) => frame?,
            Err(_) => continue,
        };
        if frame["type"] == "offer" {
            let job = frame["job"].as_u64().unwrap_or(0);
            if c.call(json!({"type": "accept", "job": job})).await.is_ok() {
                acked.lock().expect("lock").accepted.insert(job, id);
            }
        }
    }
}

/// A customer that posts jobs and chats on them, until the socket dies: as
/// fast as the server acknowledges but under its chat rate limit (5 a
/// second), which a server answering from its journal would otherwise meet.
pub async fn customer_bot(addr: SocketAddr, id: u64, acked: Arc<Mutex<Acked>>) -> Result<()> {
    let mut c = Client::connect(addr, &token(Role::Customer, id)).await?;
    let mut mine = Vec::new();
    let mut pace = tokio::time::interval(Duration::from_millis(220));
    for round in 0u64.. {
        pace.tick().await;
        if round % 4 == 0 {
            let posted = c.call(json!({"type": "post_job", "trade": "plumbing", "lat": DSM.0, "lng": DSM.1, "urgency": "today", "description": format!("job {round} of {id}")})).await?;
            let job = posted["job"].as_u64().unwrap_or(0);
            acked.lock().expect("lock").jobs.insert(job, id);
            mine.push(job);
        }
        let job = mine[round as usize % mine.len()];
        let text = format!("customer {id} message {round}");
        let said = c.call(json!({"type": "chat", "job": job, "text": text})).await?;
        acked.lock().expect("lock").chats.insert((job, said["seq"].as_u64().unwrap_or(0)), text);
    }
    Ok(())
}

/// Starts the bots: contractors first (online before the jobs come), then customers.
pub async fn start_bots(addr: SocketAddr, acked: &Arc<Mutex<Acked>>) -> Vec<tokio::task::JoinHandle<Result<()>>> {
    let mut bots = Vec::new();
    for id in 1..=CONTRACTORS {
        bots.push(tokio::spawn(contractor_bot(addr, id, Arc::clone(acked))));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in 100..100 + CUSTOMERS {
        bots.push(tokio::spawn(customer_bot(addr, id, Arc::clone(acked))));
    }
    bots
}

/// Through the server on `addr`: every acknowledged job exists, every
/// acknowledged accept holds, every acknowledged chat message is in its log,
/// and every contractor is back on the map.
pub async fn check_acknowledged(addr: SocketAddr, acked: &Acked) -> Result<()> {
    // Every acknowledged job exists; every acknowledged accept holds, by the same contractor.
    let customers: BTreeSet<u64> = acked.jobs.values().copied().collect();
    for customer in customers {
        let mut c = Client::connect(addr, &token(Role::Customer, customer)).await?;
        for (&job, _) in acked.jobs.iter().filter(|(_, c)| **c == customer) {
            let state = c.call(json!({"type": "watch", "job": job})).await?;
            if let Some(&contractor) = acked.accepted.get(&job) {
                assert_eq!(state["state"]["accepted"]["contractor"], contractor, "job {job} stays accepted: {state}");
            }
            // Every acknowledged chat message is in the log, at its sequence number.
            let replay_from = c.send(json!({"type": "resume", "job": job, "last_seq": 0})).await?;
            let mut logged = BTreeMap::new();
            loop {
                let frame = c.recv().await?;
                if frame["id"] == replay_from.as_str() {
                    break;
                }
                if frame["type"] == "event"
                    && frame["job"] == job
                    && let Some(text) = frame["event"]["chat"]["text"].as_str()
                {
                    logged.insert(frame["seq"].as_u64().unwrap_or(0), text.to_owned());
                }
            }
            for ((_, seq), text) in acked.chats.range((job, 0)..=(job, u64::MAX)) {
                assert_eq!(logged.get(seq), Some(text), "job {job}: chat {seq} survived");
            }
        }
    }

    // The contractors are back on the map.
    let mut dispatcher = Client::connect(addr, &token(Role::Dispatcher, 1)).await?;
    let near = dispatcher.call(json!({"type": "nearby", "lat": DSM.0, "lng": DSM.1, "k": 100})).await?;
    let back: BTreeSet<u64> = near["contractors"].as_array().into_iter().flatten().filter_map(|c| c["id"].as_u64()).collect();
    assert_eq!(back, (1..=CONTRACTORS).collect(), "every online contractor rehydrated");
    Ok(())
}
