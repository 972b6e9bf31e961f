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
    /// Job → the log positions its followers received (live or replayed).
    pub seen: BTreeMap<u64, std::collections::BTreeSet<u64>>,
    /// How often bots had to connect to another gateway.
    pub reconnects: u64,
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

/// A bot's connection: which gateway, what it follows, what it has seen.
struct Link {
    c: Client,
    /// Index into the bot's gateways.
    at: usize,
    /// Job → the highest `seq` seen.
    last_seq: BTreeMap<u64, u64>,
}

impl Link {
    async fn open(bot: &Bot, role: Role, id: u64) -> Result<Self> {
        let c = bot.cluster.client_at(bot.gateways[0], role, id, bot.city).await?;
        Ok(Self { c, at: 0, last_seq: BTreeMap::new() })
    }

    fn saw(&mut self, ledger: &Mutex<Ledger>, frame: &Value) {
        if let (Some(job), Some(seq)) = (frame["job"].as_u64(), frame["seq"].as_u64())
            && seq > 0
        {
            let last = self.last_seq.entry(job).or_default();
            *last = (*last).max(seq);
            ledger.lock().expect("ledger").seen.entry(job).or_default().insert(seq);
        }
    }

    /// The socket failed (its gateway died): connect to the next gateway
    /// after a jittered pause, and resume every job followed.
    async fn reconnect(&mut self, bot: &Bot, role: Role, id: u64) -> Result<()> {
        let started = Instant::now();
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            self.at = (self.at + 1) % bot.gateways.len();
            let random = (id ^ attempt.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            tokio::time::sleep(dispatch_gateway::protocol::client::reconnect_delay(attempt as u32, random)).await;
            match bot.cluster.client_at(bot.gateways[self.at], role, id, bot.city).await {
                Ok(c) => {
                    self.c = c;
                    break;
                }
                Err(e) if started.elapsed() > RETRY_FOR => bail!("bot {id} could not reconnect: {e}"),
                Err(_) => {}
            }
        }
        bot.ledger.lock().expect("ledger").reconnects += 1;
        let followed: Vec<(u64, u64)> = self.last_seq.iter().map(|(j, s)| (*j, *s)).collect();
        for (job, after) in followed {
            self.call(&bot.ledger, json!({"type": "resume", "job": job, "last_seq": after})).await?;
        }
        Ok(())
    }

    /// [`call_retrying`], noting the events read on the way.
    async fn call(&mut self, ledger: &Mutex<Ledger>, msg: Value) -> Result<Option<Value>> {
        let reply = call_retrying(&mut self.c, ledger, msg).await;
        let seen: Vec<Value> = self.c.seen.iter().filter(|f| f["type"] == "event").cloned().collect();
        for frame in &seen {
            self.saw(ledger, frame);
        }
        reply
    }

    /// Answers what the server pushed meanwhile: offers are accepted, `moved` is answered with `resume`s.
    async fn handle_pushed(&mut self, ledger: &Mutex<Ledger>) -> Result<()> {
        let pushed: Vec<Value> = std::mem::take(&mut self.c.seen);
        for frame in pushed {
            match frame["type"].as_str() {
                Some("offer") => {
                    let job = frame["job"].as_u64().unwrap_or(0);
                    // An offer can lapse or move on while the city moves: only `unavailable` is retried.
                    let accept = json!({"type": "accept", "job": job, "request_id": format!("accept-{job}")});
                    if self.call(ledger, accept).await?.is_some() {
                        self.last_seq.entry(job).or_default();
                    }
                }
                Some("event") => self.saw(ledger, &frame),
                Some("moved") => {
                    for job in frame["jobs"].as_array().into_iter().flatten().filter_map(Value::as_u64) {
                        let after = self.last_seq.get(&job).copied().unwrap_or(0);
                        self.call(ledger, json!({"type": "resume", "job": job, "last_seq": after})).await?;
                    }
                }
                Some("error") if frame["code"] == "lagged" => {}
                Some("error") => ledger.lock().expect("ledger").errors.push(frame.to_string()),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Where a bot connects and what it shares with the test.
#[derive(Clone)]
pub struct Bot {
    pub cluster: Arc<Cluster>,
    /// The gateway it prefers first, then the others to fall back on.
    pub gateways: Vec<std::net::SocketAddr>,
    pub city: &'static str,
    pub ledger: Arc<Mutex<Ledger>>,
    pub stop: Arc<AtomicBool>,
}

/// A contractor at `at` that accepts every offer, until `stop`; it moves to
/// another gateway when its own dies.
pub async fn contractor(bot: Bot, id: u64, at: (f64, f64)) -> Result<()> {
    let mut link = Link::open(&bot, Role::Contractor, id).await?;
    let trades = json!([{"trade": "plumbing", "years": 4}]);
    let register =
        json!({"type": "register", "name": format!("c{id}"), "trades": trades, "hourly_rate": 7000, "service_radius_m": 30000.0});
    link.call(&bot.ledger, register).await?;
    link.call(&bot.ledger, json!({"type": "online", "lat": at.0, "lng": at.1})).await?;
    let mut ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    while !bot.stop.load(Ordering::Relaxed) {
        ts += 1_000;
        let step = async {
            link.c.send(json!({"type": "gps", "lat": at.0, "lng": at.1, "ts": ts})).await?;
            if let Ok(frame) = tokio::time::timeout(Duration::from_millis(100), link.c.recv()).await {
                link.c.seen.push(frame?);
            }
            link.handle_pushed(&bot.ledger).await
        };
        if step.await.is_err() && !bot.stop.load(Ordering::Relaxed) {
            link.reconnect(&bot, Role::Contractor, id).await?;
        }
    }
    Ok(())
}

/// A customer at `at` posting a job every `every` and chatting on it, until
/// `stop`; it moves to another gateway when its own dies.
pub async fn customer(bot: Bot, id: u64, at: (f64, f64), every: Duration) -> Result<()> {
    let mut link = Link::open(&bot, Role::Customer, id).await?;
    let ledger = Arc::clone(&bot.ledger);
    let mut n = 0;
    // How many times in a row the step broke off with its connection: it is
    // sent again, under the same request ids, on the next gateway, even once
    // stopping (its post may have been carried out, and only its answer lost).
    let mut broke_off = 0;
    while broke_off > 0 || !bot.stop.load(Ordering::Relaxed) {
        if broke_off == 0 {
            n += 1;
        }
        let retried = broke_off > 0;
        let step = async {
            // Request ids: a post or a chat retried after `unavailable` is done once, even if its first attempt reached the old owner.
            let post = json!({"type": "post_job", "trade": "plumbing", "lat": at.0, "lng": at.1, "urgency": "today",
                "description": format!("job {n} of {id}"), "request_id": format!("post-{n}")});
            if let Some(posted) = link.call(&ledger, post).await? {
                let job = posted["job"].as_u64().unwrap_or(0);
                ledger.lock().expect("ledger").jobs.insert(job, id);
                link.last_seq.entry(job).or_default();
                if retried {
                    // A post whose first answer may have been lost: its events so far may have gone to the broken connection.
                    link.call(&ledger, json!({"type": "resume", "job": job, "last_seq": 0})).await?;
                }
                let text = format!("note {n} from {id}");
                let chat = json!({"type": "chat", "job": job, "text": text, "request_id": format!("chat-{n}")});
                if let Some(said) = link.call(&ledger, chat).await? {
                    let seq = said["seq"].as_u64().unwrap_or(0);
                    ledger.lock().expect("ledger").chats.insert((job, seq), text);
                }
            }
            link.handle_pushed(&ledger).await
        };
        match step.await {
            Ok(()) => broke_off = 0,
            Err(e) if broke_off >= 3 => bail!("customer {id}: step {n} broke off {broke_off} times: {e}"),
            Err(_) => {
                broke_off += 1;
                link.reconnect(&bot, Role::Customer, id).await?;
            }
        }
        tokio::time::sleep(every).await;
    }
    // What is still on the way is read before the bot stops.
    while let Ok(Ok(frame)) = tokio::time::timeout(Duration::from_millis(300), link.c.recv()).await {
        link.c.seen.push(frame);
    }
    let _ = link.handle_pushed(&ledger).await;
    Ok(())
}

/// Every acknowledged job still exists for its customer, and every acknowledged
/// chat message is in its job's log at its sequence number with its text;
/// and no post was carried out twice: the city's store holds exactly the jobs
/// acknowledged (every post was retried under its request id until acknowledged).
pub async fn check_nothing_lost(cluster: &Cluster, gateway: &Proc, city: &str, ledger: &Ledger) -> Result<()> {
    let session = cluster.session().await?;
    let ks = cluster.scylla.keyspace_for(city)?;
    let rows = session.query_unpaged(format!("SELECT kind FROM {ks}.snapshots"), ()).await?.into_rows_result()?;
    let mut stored_jobs = 0;
    for row in rows.rows::<(i8,)>()? {
        if row?.0 == dispatch_gateway::storage::Kind::Job.tag() as i8 {
            stored_jobs += 1;
        }
    }
    if stored_jobs != ledger.jobs.len() {
        bail!("{stored_jobs} jobs stored but {} posts acknowledged: a retried post was carried out twice", ledger.jobs.len());
    }
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
