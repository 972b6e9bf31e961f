//! Outbound webhooks end to end: a receiver on loopback verifies every
//! request's signature and records what it got.
//!
//! - It goes down mid-run and comes back: after de-duplication by event id
//!   it has every logged event exactly once, in order per job; an endpoint
//!   filtered to chat gets only chat.
//! - The server restarts while events wait undelivered: they arrive after
//!   the restart, from the stored cursor and outbox.
//! - Events that concern a party whose app is away carry a notify block
//!   with their preferences (set over the wire); a connected party gets none.
//! - An event the receiver keeps refusing goes to the dead letters with
//!   every later event of its job, other jobs going on; a replay through the
//!   admin API delivers them in order and empties the list.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use axum::http::{HeaderMap, StatusCode};
use common::*;
use dispatch_engine::notify::Channel;
use dispatch_gateway::config::StorageKind;
use dispatch_gateway::protocol::signature;
use dispatch_gateway::protocol::webhook::{Delivery, EVENT_ID_HEADER, SIGNATURE_HEADER};
use dispatch_gateway::webhooks::{EndpointConfig, WebhooksSection};
use dispatch_gateway::{Auth, Role, ServeConfig};
use serde_json::{Value, json};

const SECRET: &str = "whsec_test_0123456789abcdef0123456789";

/// One request the receiver took: its path, the event id, job and seq.
type Got = (String, String, u64, u64);

/// Locks a mutex even if a panicking handler held it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the receiver got, in arrival order.
#[derive(Clone, Default)]
struct Received {
    got: Arc<Mutex<Vec<Got>>>,
    bad_signatures: Arc<Mutex<u32>>,
    /// Jobs whose events are refused (500).
    refuse: Arc<Mutex<HashSet<u64>>>,
    /// Every delivery taken, whole.
    bodies: Arc<Mutex<Vec<Delivery>>>,
}

impl Received {
    fn on(&self, path: &str) -> Vec<(String, u64, u64)> {
        let got = lock(&self.got);
        got.iter().filter(|g| g.0 == path).map(|g| (g.1.clone(), g.2, g.3)).collect()
    }
}

/// A receiver on `addr` until the handle is aborted.
async fn receiver(addr: SocketAddr, received: Received) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let handle = move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
        let received = received.clone();
        async move {
            let signed = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
            if signature::verify(signed, &body, &[SECRET.as_bytes()], now, signature::TOLERANCE_SECS).is_err() {
                *lock(&received.bad_signatures) += 1;
                return StatusCode::UNAUTHORIZED;
            }
            let Ok(delivery) = serde_json::from_slice::<Delivery>(&body) else { return StatusCode::BAD_REQUEST };
            let id = headers.get(EVENT_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
            if id != delivery.id || delivery.kind != delivery.event.name() {
                return StatusCode::BAD_REQUEST;
            }
            if lock(&received.refuse).contains(&delivery.job) {
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
            lock(&received.got).push((uri.path().to_owned(), delivery.id.clone(), delivery.job, delivery.seq));
            lock(&received.bodies).push(delivery);
            StatusCode::NO_CONTENT
        }
    };
    let app = axum::Router::new().fallback(axum::routing::post(handle));
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    }))
}

fn webhooks(addr: SocketAddr, max_attempts: u32) -> WebhooksSection {
    let endpoint = |name: &str, path: &str, events: &[&str]| EndpointConfig {
        name: name.into(),
        url: format!("http://{addr}{path}"),
        secrets: vec![SECRET.into()],
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        cities: vec![CITY.into()],
    };
    WebhooksSection {
        endpoints: vec![endpoint("everything", "/all", &[]), endpoint("chat-only", "/chat", &["chat"])],
        max_attempts,
        backoff_first_ms: 50,
        backoff_max_ms: 400,
        timeout_ms: 2_000,
        concurrency: 4,
        allow_networks: vec!["127.0.0.0/8".into()],
    }
}

fn config(data: &std::path::Path, hooks: WebhooksSection) -> impl FnOnce(&mut ServeConfig) {
    let data = data.to_owned();
    move |c| {
        c.storage = StorageKind::Embedded;
        c.data_dir = data;
        c.webhooks = hooks;
        c.chat_per_sec = 1_000;
    }
}

fn admin_token() -> Result<String> {
    Ok(Auth::new(b"test-secret-of-at-least-32-bytes").issue(Role::Admin, 1, "", 600)?)
}

/// Every logged event of `jobs`, as (id, job, seq, kind), from the admin API.
async fn logged(server: &Server, jobs: &[u64]) -> Result<Vec<(String, u64, u64, String)>> {
    let token = admin_token()?;
    let mut out = Vec::new();
    for &job in jobs {
        let (status, body) = admin_get(server, &format!("/v1/admin/cities/{CITY}/jobs/{job}"), &token).await?;
        ensure!(status == 200, "job {job}: {status} {body}");
        let view: Value = serde_json::from_str(&body)?;
        for entry in view["timeline"].as_array().context("timeline")? {
            let seq = entry["seq"].as_u64().context("seq")?;
            let kind = entry["event"].as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_default();
            out.push((format!("{CITY}.{job}.{seq}"), job, seq, kind));
        }
    }
    Ok(out)
}

async fn admin_get(server: &Server, path: &str, token: &str) -> Result<(u16, String)> {
    admin_call(server.addr, "GET", path, token).await
}

async fn admin_call(addr: SocketAddr, method: &str, path: &str, token: &str) -> Result<(u16, String)> {
    let response = reqwest::Client::new().request(method.parse()?, format!("http://{addr}{path}")).bearer_auth(token).send().await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// The receiver's first copy of each event, checked to be in order per job; duplicates counted.
fn deduplicated(got: &[(String, u64, u64)]) -> Result<(Vec<String>, usize)> {
    let mut seen = HashSet::new();
    let mut last_seq: HashMap<u64, u64> = HashMap::new();
    let mut firsts = Vec::new();
    for (id, job, seq) in got {
        if !seen.insert(id.clone()) {
            continue;
        }
        let last = last_seq.entry(*job).or_insert(0);
        ensure!(*seq > *last, "job {job}: event {seq} arrived after {last}");
        *last = *seq;
        firsts.push(id.clone());
    }
    Ok((firsts, got.len() - seen.len()))
}

async fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        if tokio::time::Instant::now() > deadline {
            bail!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Customers post jobs and chat on them (new events of older jobs too); the job ids.
async fn activity(server: &Server, customers: &mut [Client], jobs: &mut Vec<u64>, rounds: usize) -> Result<()> {
    for round in 0..rounds {
        for customer in customers.iter_mut() {
            let job = customer.post_job("plumbing").await?;
            jobs.push(job);
            customer.call(json!({"type": "chat", "job": job, "text": format!("round {round}")})).await?;
        }
        // A new event of an older job.
        let older = jobs[round % jobs.len()];
        customers[0].call(json!({"type": "chat", "job": older, "text": "still there?"})).await?;
    }
    let _ = server;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_and_back_gets_every_event_once_in_order_per_job_and_across_a_restart() -> Result<()> {
    let data = tempfile::tempdir()?;
    let hook_addr: SocketAddr = format!("127.0.0.1:{}", common::cluster::free_port()?).parse()?;
    let received = Received::default();
    let mut up = receiver(hook_addr, received.clone()).await?;
    let server = Server::start_with(config(data.path(), webhooks(hook_addr, 100))).await?;
    let _pro = contractor(&server, 7, "plumbing", 400.0).await?;
    let mut customers = vec![server.connect(Role::Customer, 100).await?];
    let mut jobs = Vec::new();

    activity(&server, &mut customers, &mut jobs, 3).await?;
    // Down mid-run: events go on being logged.
    up.abort();
    let _ = up.await;
    activity(&server, &mut customers, &mut jobs, 3).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    up = receiver(hook_addr, received.clone()).await?;
    activity(&server, &mut customers, &mut jobs, 2).await?;

    let expected = logged(&server, &jobs).await?;
    let want: HashSet<String> = expected.iter().map(|e| e.0.clone()).collect();
    until("every event at the receiver", Duration::from_secs(30), || {
        received.on("/all").iter().map(|g| g.0.clone()).collect::<HashSet<_>>() == want
    })
    .await?;
    let (firsts, duplicates) = deduplicated(&received.on("/all"))?;
    ensure!(firsts.len() == want.len(), "{} distinct of {}", firsts.len(), want.len());
    let chats: HashSet<String> = expected.iter().filter(|e| e.3 == "chat").map(|e| e.0.clone()).collect();
    ensure!(chats.len() >= 8, "the run chats");
    until("every chat at the chat-only endpoint", Duration::from_secs(30), || {
        received.on("/chat").iter().map(|g| g.0.clone()).collect::<HashSet<_>>() == chats
    })
    .await?;
    deduplicated(&received.on("/chat"))?;
    ensure!(*lock(&received.bad_signatures) == 0);
    eprintln!("{} events, {duplicates} sent twice", want.len());
    // The receiver's downtime cost attempts (retried, not lost).
    let (_, metrics) = server.http("GET", "/metrics", None).await?;
    let failed = metrics
        .lines()
        .find(|l| {
            l.starts_with("dispatch_webhook_deliveries_total") && l.contains("endpoint=\"everything\"") && l.contains("outcome=\"failed\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    ensure!(failed > 0.0, "the downtime failed no attempt:\n{metrics}");

    // The server restarts while the receiver is down and events wait.
    up.abort();
    let _ = up.await;
    activity(&server, &mut customers, &mut jobs, 2).await?;
    drop(customers);
    server.stop().await?;
    // In one process the stopped server's last actors may still hold the store's file for a moment.
    let mut restarted = None;
    for _ in 0..50 {
        match Server::start_with(config(data.path(), webhooks(hook_addr, 100))).await {
            Ok(server) => {
                restarted = Some(server);
                break;
            }
            Err(e) if format!("{e:#}").contains("already open") => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => return Err(e),
        }
    }
    let server = restarted.context("the store stayed locked after the server stopped")?;
    let _up = receiver(hook_addr, received.clone()).await?;
    let expected = logged(&server, &jobs).await?;
    let want: HashSet<String> = expected.iter().map(|e| e.0.clone()).collect();
    until("the events of before the restart", Duration::from_secs(30), || {
        received.on("/all").iter().map(|g| g.0.clone()).collect::<HashSet<_>>() == want
    })
    .await?;
    let (firsts, _) = deduplicated(&received.on("/all"))?;
    ensure!(firsts.len() == want.len());

    // The API shows the endpoints delivered through the outbox's head.
    let (status, body) = admin_get(&server, &format!("/v1/admin/cities/{CITY}/webhooks"), &admin_token()?).await?;
    ensure!(status == 200, "{status} {body}");
    let list: Value = serde_json::from_str(&body)?;
    let lags: BTreeMap<String, u64> = list["endpoints"]
        .as_array()
        .context("endpoints")?
        .iter()
        .map(|e| (e["name"].as_str().unwrap_or("").to_owned(), e["lag"].as_u64().unwrap_or(99)))
        .collect();
    ensure!(lags.get("everything") == Some(&0), "{lags:?}");
    ensure!(!body.contains(SECRET), "secrets are never shown");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_event_holds_back_its_jobs_later_events_until_replayed() -> Result<()> {
    let data = tempfile::tempdir()?;
    let hook_addr: SocketAddr = format!("127.0.0.1:{}", common::cluster::free_port()?).parse()?;
    let received = Received::default();
    let _up = receiver(hook_addr, received.clone()).await?;
    let mut hooks = webhooks(hook_addr, 2);
    hooks.endpoints.truncate(1);
    let server = Server::start_with(config(data.path(), hooks)).await?;
    let _pro = contractor(&server, 7, "plumbing", 400.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let refused = customer.post_job("plumbing").await?;
    let other = customer.post_job("plumbing").await?;
    until("the first events", Duration::from_secs(10), || received.on("/all").iter().any(|g| g.1 == refused)).await?;

    // The receiver refuses the first job's events from now on.
    lock(&received.refuse).insert(refused);
    customer.call(json!({"type": "chat", "job": refused, "text": "one"})).await?;
    let token = admin_token()?;
    let letters = format!("/v1/admin/cities/{CITY}/webhooks/everything/dead-letters");
    let mut page = Value::Null;
    for _ in 0..200 {
        let (_, body) = admin_get(&server, &letters, &token).await?;
        page = serde_json::from_str(&body)?;
        if page["dead_letters"].as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = &page["dead_letters"][0];
    ensure!(first["job"] == refused && first["attempts"] == 2 && first["behind"] == false, "{page}");
    // The receiver takes the job again; its next events still wait behind the dead letter.
    lock(&received.refuse).clear();
    customer.call(json!({"type": "chat", "job": refused, "text": "two"})).await?;
    customer.call(json!({"type": "chat", "job": other, "text": "meanwhile"})).await?;
    let logged_other = logged(&server, &[other]).await?;
    until("the other job's events", Duration::from_secs(10), || {
        let got: HashSet<String> = received.on("/all").into_iter().map(|g| g.0).collect();
        logged_other.iter().all(|e| got.contains(&e.0))
    })
    .await?;
    let mut page = Value::Null;
    for _ in 0..200 {
        let (_, body) = admin_get(&server, &letters, &token).await?;
        page = serde_json::from_str(&body)?;
        if page["dead_letters"].as_array().is_some_and(|l| l.len() >= 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let held = page["dead_letters"].as_array().context("letters")?;
    ensure!(held.len() == 2 && held[1]["behind"] == true && held[1]["seq"].as_u64() > held[0]["seq"].as_u64(), "{page}");
    let got_refused: Vec<u64> = received.on("/all").into_iter().filter(|g| g.1 == refused).map(|g| g.2).collect();
    let held_seqs: Vec<u64> = held.iter().filter_map(|l| l["seq"].as_u64()).collect();
    ensure!(got_refused.iter().all(|s| !held_seqs.contains(s)), "no held event delivered out of turn: {got_refused:?}");

    // A dispatcher may read the letters but not replay them; an admin replays.
    let dispatcher = server.token(Role::Dispatcher, 3);
    let (status, _) = admin_call(server.addr, "POST", &format!("/v1/admin/cities/{CITY}/webhooks/everything/replay"), &dispatcher).await?;
    ensure!(status == 403);
    let (status, body) = admin_call(server.addr, "POST", &format!("/v1/admin/cities/{CITY}/webhooks/everything/replay"), &token).await?;
    ensure!(status == 202, "{status} {body}");
    let logged_refused = logged(&server, &[refused]).await?;
    until("the job's events after the replay", Duration::from_secs(10), || {
        let got: HashSet<String> = received.on("/all").into_iter().map(|g| g.0).collect();
        logged_refused.iter().all(|e| got.contains(&e.0))
    })
    .await?;
    deduplicated(&received.on("/all"))?;
    // A letter is removed once its delivery is answered: the receiver may have it a moment before.
    let mut body = String::new();
    for _ in 0..200 {
        body = admin_get(&server, &letters, &token).await?.1;
        if serde_json::from_str::<Value>(&body)?["dead_letters"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(serde_json::from_str::<Value>(&body)?["dead_letters"].as_array().is_some_and(Vec::is_empty), "{body}");
    // The replay is in the audit trail.
    let (_, audit) = admin_get(&server, &format!("/v1/admin/cities/{CITY}/audit"), &token).await?;
    ensure!(audit.contains("replay_dead_letters"), "{audit}");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_added_and_removed_through_the_admin_api_and_inward_urls_refused() -> Result<()> {
    let hook_addr: SocketAddr = format!("127.0.0.1:{}", common::cluster::free_port()?).parse()?;
    let received = Received::default();
    let _up = receiver(hook_addr, received.clone()).await?;
    let server = Server::start_with(|c| {
        c.webhooks.allow_networks = vec!["127.0.0.0/8".into()];
        c.webhooks.backoff_first_ms = 50;
    })
    .await?;
    let token = admin_token()?;
    let path = format!("/v1/admin/cities/{CITY}/webhooks");
    let add = |body: Value| {
        let token = token.clone();
        let url = format!("http://{}{path}", server.addr);
        async move { reqwest::Client::new().post(url).bearer_auth(token).json(&body).send().await }
    };
    let response = add(json!({"name": "crm", "url": format!("http://{hook_addr}/crm"), "secrets": [SECRET], "events": ["posted"]})).await?;
    ensure!(response.status() == 201, "{:?}", response.text().await);
    let again = add(json!({"name": "crm", "url": format!("http://{hook_addr}/crm"), "secrets": [SECRET]})).await?;
    ensure!(again.status() == 409);
    let short = add(json!({"name": "short", "url": format!("http://{hook_addr}/x"), "secrets": ["abc"]})).await?;
    ensure!(short.status() == 400);
    let metadata = add(json!({"name": "meta", "url": "http://169.254.169.254/latest", "secrets": [SECRET]})).await?;
    ensure!(metadata.status() == 400 && metadata.text().await?.contains("link-local"));

    let mut customer = server.connect(Role::Customer, 100).await?;
    let job = customer.post_job("plumbing").await?;
    until("the posted event at the added endpoint", Duration::from_secs(10), || received.on("/crm").iter().any(|g| g.1 == job && g.2 == 1))
        .await?;
    ensure!(received.on("/crm").len() == 1, "only posted events: {:?}", received.on("/crm"));

    let (status, _) = admin_call(server.addr, "DELETE", &format!("{path}/crm"), &token).await?;
    ensure!(status == 200);
    let (status, _) = admin_call(server.addr, "DELETE", &format!("{path}/crm"), &token).await?;
    ensure!(status == 404);
    tokio::time::sleep(Duration::from_millis(300)).await;
    customer.post_job("plumbing").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(received.on("/crm").len() == 1, "nothing after removal");
    let (_, audit) = admin_get(&server, &format!("/v1/admin/cities/{CITY}/audit"), &token).await?;
    ensure!(audit.contains("add_webhook") && audit.contains("remove_webhook"), "{audit}");
    server.stop().await
}

/// The first delivery of `job` named `kind` whose `seq` is past `after` (10 s at most).
async fn delivery(received: &Received, job: u64, kind: &str, after: u64) -> Result<Delivery> {
    for _ in 0..200 {
        if let Some(d) = lock(&received.bodies).iter().find(|d| d.job == job && d.kind == kind && d.seq > after) {
            return Ok(d.clone());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("no {kind} of job {job} after {after}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_carry_notify_hints_for_parties_away_with_their_preferences() -> Result<()> {
    let hook_addr: SocketAddr = format!("127.0.0.1:{}", common::cluster::free_port()?).parse()?;
    let received = Received::default();
    let _up = receiver(hook_addr, received.clone()).await?;
    let data = tempfile::tempdir()?;
    let mut hooks = webhooks(hook_addr, 100);
    hooks.endpoints.truncate(1);
    let server = Server::start_with(config(data.path(), hooks)).await?;
    let mut pro = contractor(&server, 7, "plumbing", 400.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let quiet = json!({"start": "00:00", "end": "23:59", "utc_offset_minutes": 0});
    let set = customer.call(json!({"type": "set_notify", "channels": ["sms", "email"], "quiet_hours": quiet})).await?;
    ensure!(set == json!({"channels": ["sms", "email"], "quiet_hours": quiet}), "{set}");
    let bad = customer.refused(json!({"type": "set_notify", "channels": ["sms", "sms"]})).await?;
    ensure!(bad["code"] == "bad_request", "{bad}");

    let job = customer.post_job("plumbing").await?;
    pro.wait("the offer", |v| v["type"] == "offer" && v["job"] == job).await?;
    let offered = delivery(&received, job, "offered", 0).await?;
    ensure!(offered.notify.is_empty(), "the contractor is connected: {offered:?}");

    // The customer's app goes away; the acceptance and the contractor's message are hinted to them.
    drop(customer);
    tokio::time::sleep(Duration::from_millis(500)).await;
    pro.call(json!({"type": "accept", "job": job})).await?;
    let accepted = delivery(&received, job, "accepted", 0).await?;
    let [hint] = accepted.notify.as_slice() else { bail!("one hint: {accepted:?}") };
    ensure!((hint.role.as_str(), hint.user, hint.what.as_str()) == ("customer", 100, "accepted"), "{hint:?}");
    ensure!(hint.channels == [Channel::Sms, Channel::Email] && hint.quiet_now && hint.quiet_hours.is_some(), "{hint:?}");
    let said = pro.call(json!({"type": "chat", "job": job, "text": "on my way"})).await?;
    let chat = delivery(&received, job, "chat", 0).await?;
    ensure!(chat.notify.len() == 1 && chat.notify[0].role == "customer", "not the sender: {chat:?}");

    // Back in the app: no hint.
    let _customer = server.connect(Role::Customer, 100).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    pro.call(json!({"type": "chat", "job": job, "text": "ten minutes"})).await?;
    let after = said["seq"].as_u64().unwrap_or(0);
    let again = delivery(&received, job, "chat", after).await?;
    ensure!(again.notify.is_empty(), "the customer is connected again: {again:?}");

    // An offer to a contractor whose app is away: hinted to them until it expires, push by default.
    let away = contractor(&server, 8, "plumbing", 900.0).await?;
    drop(away);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut other = server.connect(Role::Customer, 101).await?;
    let second = other.post_job("plumbing").await?;
    let offer = delivery(&received, second, "offered", 0).await?;
    let [hint] = offer.notify.as_slice() else { bail!("one hint: {offer:?}") };
    let dispatch_gateway::protocol::Event::Offered { contractor: offered_to, expires_at, .. } = offer.event else { bail!("not an offer") };
    ensure!((hint.role.as_str(), hint.user) == ("contractor", offered_to) && offered_to == 8, "{hint:?}");
    ensure!(hint.until == Some(expires_at) && hint.channels == [Channel::Push] && !hint.quiet_now, "{hint:?}");
    server.stop().await
}
