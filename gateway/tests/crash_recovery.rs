//! `kill -9` under load, then a restart on the same data: every job and chat
//! message that was acknowledged is there, in the state it was acknowledged
//! in, and the contractors are back. Once on the embedded store (the same data
//! directory) and once on the CQL cluster of `SCYLLA_URI` (the same
//! keyspaces). The time from the restart to `/readyz` answering 200 is
//! printed (docs/reliability.md records it).
#![allow(clippy::expect_used, reason = "bots outside #[test] functions: a poisoned lock or a bad token is a test failure")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use common::*;
use dispatch_gateway::{Auth, Role};
use serde_json::json;

const SECRET: &str = "crash-recovery-secret";
const CONTRACTORS: u64 = 8;
const CUSTOMERS: u64 = 12;

/// Starts `dispatch serve` on `addr` over `data` (plus `extra` flags); returns
/// it and how long it took to be ready.
async fn start(data: &Path, addr: SocketAddr, extra: &[String]) -> Result<(tokio::process::Child, Duration)> {
    let started = Instant::now();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(["serve", "--listen", &addr.to_string(), "--jwt-secret", SECRET, "--data-dir"])
        .arg(data)
        .args(extra)
        .stdout(std::process::Stdio::null())
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

fn token(role: Role, sub: u64) -> String {
    Auth::new(SECRET.as_bytes()).issue(role, sub, CITY, 3600).expect("token")
}

/// What the server acknowledged before it died.
#[derive(Default)]
struct Acked {
    /// Job → its customer.
    jobs: BTreeMap<u64, u64>,
    /// Job → the contractor whose accept was acknowledged.
    accepted: BTreeMap<u64, u64>,
    /// (job, seq) → chat text.
    chats: BTreeMap<(u64, u64), String>,
}

/// A contractor that streams GPS and accepts every offer, until the socket dies.
async fn contractor_bot(addr: SocketAddr, id: u64, acked: Arc<Mutex<Acked>>) -> Result<()> {
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

/// A customer that posts jobs and chats on them, until the socket dies.
async fn customer_bot(addr: SocketAddr, id: u64, acked: Arc<Mutex<Acked>>) -> Result<()> {
    let mut c = Client::connect(addr, &token(Role::Customer, id)).await?;
    let mut mine = Vec::new();
    for round in 0u64.. {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_work_survives_kill_9() -> Result<()> {
    let data = tempfile::tempdir()?;
    kill_9_under_load(data.path(), &[], "embedded").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_work_survives_kill_9_on_scylla() -> Result<()> {
    let Some(scylla) = scylla_config("crash")? else { return Ok(()) };
    let data = tempfile::tempdir()?;
    let config = data.path().join("dispatch.toml");
    let nodes: Vec<String> = scylla.nodes.iter().map(|n| format!("{n:?}")).collect();
    std::fs::write(
        &config,
        format!("storage = \"scylla\"\n[scylla]\nnodes = [{}]\nkeyspace_prefix = {:?}\n", nodes.join(", "), scylla.keyspace_prefix),
    )?;
    kill_9_under_load(data.path(), &["--config".into(), config.display().to_string()], "scylla").await
}

async fn kill_9_under_load(data: &Path, extra: &[String], store: &str) -> Result<()> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let (mut server, first_start) = start(data, addr, extra).await?;

    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut bots = Vec::new();
    for id in 1..=CONTRACTORS {
        bots.push(tokio::spawn(contractor_bot(addr, id, Arc::clone(&acked))));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in 100..100 + CUSTOMERS {
        bots.push(tokio::spawn(customer_bot(addr, id, Arc::clone(&acked))));
    }
    // Under load: jobs posted, offered, accepted and chatted on when the process dies.
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.start_kill()?;
    server.wait().await?;
    for bot in bots {
        assert!(bot.await?.is_err(), "every bot ends when its socket dies");
    }
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));
    assert!(acked.jobs.len() >= CUSTOMERS as usize && acked.chats.len() > 20 && !acked.accepted.is_empty(), "real load before the kill");

    let (server, ready_after) = start(data, addr, extra).await?;
    println!(
        "{store}: restart to /readyz after kill -9: {} ms (first start {} ms) with {} jobs, {} chat messages, {} contractors",
        ready_after.as_millis(),
        first_start.as_millis(),
        acked.jobs.len(),
        acked.chats.len(),
        CONTRACTORS
    );

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
    drop(server);
    Ok(())
}
