//! Bots for the failover tests: contractors and customers of one city on a
//! cluster's gateways, which retry what comes back `unavailable`, resume
//! the jobs they follow when told the city `moved`, and record every
//! acknowledgement and every other error, so the test can check that
//! nothing acknowledged was lost and nothing else went wrong.
#![allow(clippy::expect_used, reason = "bots outside #[test] functions: a poisoned lock is a test failure")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use dispatch_gateway::Role;
use serde_json::{Value, json};

use super::Client;
use super::cluster::{Cluster, Proc};

/// What the city acknowledged, and what went wrong.
#[derive(Default, Debug)]
pub struct Ledger {
    /// Job → its customer.
    pub jobs: BTreeMap<u64, u64>,
    /// (job, seq) → chat text.
    pub chats: BTreeMap<(u64, u64), String>,
    /// Requests that came back `unavailable` (and were retried).
    pub unavailable: u64,
    /// Every other error, as received.
    pub errors: Vec<String>,
    /// When each acknowledgement arrived (to find the gap a failover leaves).
    pub acked_at: Vec<Instant>,
}

/// How long a bot keeps retrying one request.
const RETRY_FOR: Duration = Duration::from_secs(30);

/// Sends `msg` until it is acknowledged; `unavailable` is retried (counted),
/// any other refusal is recorded and returned as `None`.
async fn call_retrying(c: &mut Client, ledger: &Mutex<Ledger>, msg: Value) -> Result<Option<Value>> {
    let started = Instant::now();
    loop {
        let id = c.send(msg.clone()).await?;
        let reply = c.wait("a reply", |v| v["id"] == id.as_str()).await?;
        if reply["type"] == "ack" {
            ledger.lock().expect("ledger").acked_at.push(Instant::now());
            return Ok(Some(reply["result"].clone()));
        }
        if reply["code"] == "unavailable" && started.elapsed() < RETRY_FOR {
            ledger.lock().expect("ledger").unavailable += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        ledger.lock().expect("ledger").errors.push(reply.to_string());
        return Ok(None);
    }
}

/// Answers what the server pushed meanwhile: offers are accepted, `moved` is answered with `resume`s.
async fn handle_pushed(c: &mut Client, ledger: &Mutex<Ledger>, last_seq: &mut BTreeMap<u64, u64>) -> Result<()> {
    let pushed: Vec<Value> = std::mem::take(&mut c.seen);
    for frame in pushed {
        match frame["type"].as_str() {
            Some("offer") => {
                let job = frame["job"].as_u64().unwrap_or(0);
                // An offer can lapse or move on while the city moves: only `unavailable` is retried.
                let _ = call_retrying(c, ledger, json!({"type": "accept", "job": job})).await?;
            }
            Some("event") => {
                if let (Some(job), Some(seq)) = (frame["job"].as_u64(), frame["seq"].as_u64()) {
                    let last = last_seq.entry(job).or_default();
                    *last = (*last).max(seq);
                }
            }
            Some("moved") => {
                for job in frame["jobs"].as_array().into_iter().flatten().filter_map(Value::as_u64) {
                    let after = last_seq.get(&job).copied().unwrap_or(0);
                    call_retrying(c, ledger, json!({"type": "resume", "job": job, "last_seq": after})).await?;
                }
            }
            Some("error") if frame["code"] == "lagged" => {}
            Some("error") => ledger.lock().expect("ledger").errors.push(frame.to_string()),
            _ => {}
        }
    }
    Ok(())
}

/// Where a bot connects and what it shares with the test.
#[derive(Clone)]
pub struct Bot {
    pub cluster: Arc<Cluster>,
    pub gateway: std::net::SocketAddr,
    pub city: &'static str,
    pub ledger: Arc<Mutex<Ledger>>,
    pub stop: Arc<AtomicBool>,
}

/// A contractor at `at` that accepts every offer, until `stop`.
pub async fn contractor(bot: Bot, id: u64, at: (f64, f64)) -> Result<()> {
    let Bot { cluster, gateway, city, ledger, stop } = bot;
    let mut c = cluster.client_at(gateway, Role::Contractor, id, city).await?;
    let trades = json!([{"trade": "plumbing", "years": 4}]);
    call_retrying(
        &mut c,
        &ledger,
        json!({"type": "register", "name": format!("c{id}"), "trades": trades, "hourly_rate": 7000, "service_radius_m": 30000.0}),
    )
    .await?;
    call_retrying(&mut c, &ledger, json!({"type": "online", "lat": at.0, "lng": at.1})).await?;
    let mut last_seq = BTreeMap::new();
    let mut ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    while !stop.load(Ordering::Relaxed) {
        ts += 1_000;
        c.send(json!({"type": "gps", "lat": at.0, "lng": at.1, "ts": ts})).await?;
        if let Ok(frame) = tokio::time::timeout(Duration::from_millis(100), c.recv()).await {
            c.seen.push(frame?);
        }
        handle_pushed(&mut c, &ledger, &mut last_seq).await?;
    }
    Ok(())
}

/// A customer at `at` posting a job every `every` and chatting on it, until `stop`.
pub async fn customer(bot: Bot, id: u64, at: (f64, f64), every: Duration) -> Result<()> {
    let Bot { cluster, gateway, city, ledger, stop } = bot;
    let mut c = cluster.client_at(gateway, Role::Customer, id, city).await?;
    let mut last_seq = BTreeMap::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let post = json!({"type": "post_job", "trade": "plumbing", "lat": at.0, "lng": at.1, "urgency": "today", "description": format!("job {n} of {id}")});
        if let Some(posted) = call_retrying(&mut c, &ledger, post).await? {
            let job = posted["job"].as_u64().unwrap_or(0);
            ledger.lock().expect("ledger").jobs.insert(job, id);
            let text = format!("note {n} from {id}");
            if let Some(said) = call_retrying(&mut c, &ledger, json!({"type": "chat", "job": job, "text": text})).await? {
                let seq = said["seq"].as_u64().unwrap_or(0);
                ledger.lock().expect("ledger").chats.insert((job, seq), text);
            }
        }
        handle_pushed(&mut c, &ledger, &mut last_seq).await?;
        tokio::time::sleep(every).await;
    }
    Ok(())
}

/// Every acknowledged job still exists for its customer, and every acknowledged
/// chat message is in its job's log at its sequence number with its text.
pub async fn check_nothing_lost(cluster: &Cluster, gateway: &Proc, city: &str, ledger: &Ledger) -> Result<()> {
    let mut by_customer: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (job, customer) in &ledger.jobs {
        by_customer.entry(*customer).or_default().push(*job);
    }
    for (customer, jobs) in by_customer {
        let mut c = cluster.client(gateway, Role::Customer, customer, city).await?;
        for job in jobs {
            let id = c.send(json!({"type": "resume", "job": job, "last_seq": 0})).await?;
            let mut log = BTreeMap::new();
            loop {
                let frame = c.recv().await?;
                if frame["id"] == id.as_str() {
                    if frame["type"] != "ack" {
                        bail!("job {job} of customer {customer}, acknowledged, is gone: {frame}");
                    }
                    break;
                }
                if frame["type"] == "event" && frame["job"] == job {
                    log.insert(frame["seq"].as_u64().unwrap_or(0), frame["event"].clone());
                }
            }
            if !matches!(log.get(&1), Some(e) if e["posted"].is_object()) {
                bail!("job {job}: its log does not open with posted: {log:?}");
            }
            let seqs: Vec<u64> = log.keys().copied().collect();
            if seqs != (1..=seqs.len() as u64).collect::<Vec<_>>() {
                bail!("job {job}: a gap in its log: {seqs:?}");
            }
            for ((_, seq), text) in ledger.chats.range((job, 0)..=(job, u64::MAX)) {
                let found = log.get(seq).and_then(|e| e["chat"]["text"].as_str());
                if found != Some(text.as_str()) {
                    bail!("job {job}: acknowledged chat {seq} {text:?} is {found:?} in the log");
                }
            }
        }
    }
    Ok(())
}
