//! More than one process, for real: a nats-server, three `dispatch engine`s
//! and two `dispatch gateway`s on loopback, the cities' stores and leases on
//! the CQL cluster of `SCYLLA_URI`. Skipped, saying why, where nats-server or
//! the CQL cluster is missing (`.ci/run` provides both).

#![allow(clippy::expect_used, reason = "test code: ids are read out of replies")]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use common::cluster::{Cluster, HOOK_SECRET, Proc, WEBHOOK_SECRET, eventually, owned, owners};
use common::failover::{Bot, Ledger, check_nothing_lost};
use common::{Client, deliver_webhook};
use dispatch_gateway::Role;
use dispatch_gateway::cities::CityConfig;
use serde_json::json;

/// Listens at the cluster's webhook address: every event id whose signature verifies, in arrival order.
async fn event_receiver(cluster: &Cluster) -> Result<Arc<Mutex<Vec<String>>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind(cluster.hook).await?;
    let seen = Arc::clone(&got);
    let app = axum::Router::new().fallback(axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let seen = Arc::clone(&seen);
        async move {
            let signed = headers.get("dispatch-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
            let sig = dispatch_gateway::protocol::signature::verify(signed, &body, &[HOOK_SECRET.as_bytes()], now, 300);
            let delivery = serde_json::from_slice::<dispatch_gateway::protocol::webhook::Delivery>(&body);
            match (sig, delivery) {
                (Ok(_), Ok(d)) => {
                    seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(d.id);
                    axum::http::StatusCode::NO_CONTENT
                }
                _ => axum::http::StatusCode::UNAUTHORIZED,
            }
        }
    }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(got)
}

/// Each city on the engine the test pins it to.
const PINS: [(&str, &str); 3] = [("des-moines", "engine-a"), ("kansas-city", "engine-b"), ("omaha", "engine-c")];

/// Starts three engines and two gateways; returns once every city is owned
/// by its pinned engine and both gateways know it.
async fn three_by_two(cluster: &Cluster) -> Result<(Vec<Proc>, Vec<Proc>)> {
    let mut engines = Vec::new();
    for (_, node) in PINS {
        engines.push(cluster.engine(node).await?);
    }
    let gateways = vec![cluster.gateway("gateway-1").await?, cluster.gateway("gateway-2").await?];
    for (engine, (city, _)) in engines.iter().zip(PINS) {
        eventually(&format!("{} owns {city}", engine.name), Duration::from_secs(30), || async {
            Ok(owned(engine).await?.contains_key(city))
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", engine.log()))?;
    }
    for gateway in &gateways {
        eventually(&format!("{} knows every owner", gateway.name), Duration::from_secs(10), || async {
            let known = owners(gateway).await?;
            Ok(PINS.iter().all(|(city, node)| known.get(*city).is_some_and(|o| o["owner"]["node"] == *node)))
        })
        .await?;
    }
    Ok((engines, gateways))
}

/// One job through its whole life in `city`, each party on its own gateway:
/// the contractor on `a`, the customer on `b`, a dispatcher on `a`.
async fn journey(cluster: &Cluster, city: &str, a: &Proc, b: &Proc, ids: u64) -> Result<u64> {
    let centre = CityConfig::defaults().into_iter().find(|c| c.name == city).expect("a default city").centre;
    let (lat, lng) = (centre[0], centre[1]);
    let mut pro = cluster.client(a, Role::Contractor, ids + 7, city).await?;
    let trades = json!([{"trade": "plumbing", "years": 5}]);
    pro.call(json!({"type": "register", "name": "Pat", "trades": trades, "hourly_rate": 6000, "service_radius_m": 20000.0})).await?;
    pro.call(json!({"type": "online", "lat": lat + 0.01, "lng": lng})).await?;
    let mut dispatcher = cluster.client(a, Role::Dispatcher, 1, city).await?;
    dispatcher.call(json!({"type": "subscribe"})).await?;
    let snapshot = dispatcher.wait("the map snapshot", |v| v["type"] == "map_snapshot").await?;
    ensure!(snapshot["contractors"].as_array().is_some_and(|c| c.iter().any(|c| c["id"] == ids + 7)), "{snapshot}");

    let mut customer = cluster.client(b, Role::Customer, ids + 100, city).await?;
    let posted = customer
        .call(json!({"type": "post_job", "trade": "plumbing", "lat": lat, "lng": lng, "urgency": "today", "description": format!("leak in {city}")}))
        .await?;
    let job = posted["job"].as_u64().expect("job id");
    let offer = pro.wait("the offer", |v| v["type"] == "offer").await?;
    ensure!(offer["job"] == job && offer["description"] == format!("leak in {city}"), "{offer}");
    pro.call(json!({"type": "accept", "job": job})).await?;
    customer.wait("accepted", |v| v["type"] == "event" && v["event"]["accepted"]["contractor"] == ids + 7).await?;
    dispatcher.wait("the dispatcher sees it", |v| v["type"] == "event" && v["job"] == job && v["event"]["accepted"].is_object()).await?;

    let said = customer.call(json!({"type": "chat", "job": job, "text": "the gate is open"})).await?;
    let heard = pro.wait("chat", |v| v["type"] == "event" && v["event"]["chat"]["text"] == "the gate is open").await?;
    ensure!(heard["seq"] == said["seq"], "{heard} vs {said}");
    pro.call(json!({"type": "chat", "job": job, "text": "on my way"})).await?;
    customer.wait("the reply", |v| v["event"]["chat"]["text"] == "on my way").await?;
    for status in ["en_route", "on_site", "completed"] {
        pro.call(json!({"type": "job_status", "job": job, "status": status})).await?;
    }
    customer.wait("completed", |v| v["type"] == "event" && v["event"]["completed"].is_object()).await?;
    let rated = customer.call(json!({"type": "rate", "job": job, "stars": 5})).await?;
    ensure!(rated["contractor"] == ids + 7, "{rated}");

    // The whole log, replayed through the other gateway.
    let mut again = cluster.client(a, Role::Customer, ids + 100, city).await?;
    let resumed = again.call(json!({"type": "resume", "job": job, "last_seq": 0})).await?;
    ensure!(resumed["replayed"].as_u64().is_some_and(|n| n >= 8), "{resumed}");
    let nearby = dispatcher.call(json!({"type": "nearby", "lat": lat, "lng": lng, "k": 5})).await?;
    ensure!(nearby["contractors"].as_array().is_some_and(|c| c.iter().any(|c| c["id"] == ids + 7)), "{nearby}");
    Ok(job)
}

/// Test 1 of the cluster issue: three cities on three engines, every role
/// through either gateway, and refusals carried back as they are in one process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_cities_on_three_engines_through_either_gateway() -> Result<()> {
    let Some(cluster) = Cluster::start("cluster_three", &PINS, 3).await? else { return Ok(()) };
    let events = event_receiver(&cluster).await?;
    let (engines, gateways) = three_by_two(&cluster).await?;
    let mut jobs = Vec::new();
    for (i, (city, _)) in PINS.iter().enumerate() {
        let (a, b) = if i % 2 == 0 { (&gateways[0], &gateways[1]) } else { (&gateways[1], &gateways[0]) };
        jobs.push(journey(&cluster, city, a, b, 1_000 * (i as u64 + 1)).await.map_err(|e| {
            let logs: Vec<String> = engines.iter().chain(&gateways).map(|p| format!("--- {}\n{}", p.name, p.log())).collect();
            anyhow::anyhow!("{city}: {e}\n{}", logs.join("\n"))
        })?);
    }
    // The card processor's webhook, verified by a gateway, reaches the owner over NATS: a
    // chargeback on a journey's charge (the sandbox names holds after the job's first hold call).
    let dispute = json!({"id": "evt_cluster_1", "type": "charge.dispute.created", "data": {"object": {
        "id": "dp_1", "amount": 300, "payment_intent": format!("pi_job-{}-authorize-a1_1", jobs[2])}}})
    .to_string();
    let (status, answer) = deliver_webhook(gateways[1].addr, WEBHOOK_SECRET, &dispute).await?;
    ensure!(status == 200 && answer["handled"] == true, "{status} {answer}");
    let (city, job) = (answer["city"].as_str().unwrap_or_default(), answer["job"].clone());
    let mut dispatcher = cluster.client(&gateways[0], Role::Dispatcher, 1, city).await?;
    let receipt = dispatcher.call(json!({"type": "payment", "job": job})).await?;
    ensure!(receipt["payment"]["refunded"] == 300, "{city}: {receipt}");
    ensure!(deliver_webhook(gateways[0].addr, WEBHOOK_SECRET, &dispute).await?.0 == 200, "delivered again, through the other gateway");
    let receipt = dispatcher.call(json!({"type": "payment", "job": job})).await?;
    ensure!(receipt["payment"]["refunded"] == 300, "applied once: {receipt}");
    // An operator's read through a gateway is answered by the owner over NATS.
    let admin = cluster.auth.issue(Role::Admin, 1, "", 600).map_err(|e| anyhow::anyhow!("{e}"))?;
    let url = format!("http://{}/v1/admin/cities/{city}/jobs/{job}", gateways[0].addr);
    let read: serde_json::Value = reqwest::Client::new().get(url).bearer_auth(admin).send().await?.json().await?;
    ensure!(read["timeline"].as_array().is_some_and(|t| t.len() >= 8) && read["payment"]["refunded"] == 300, "{read}");
    // A refusal from the owner reaches the client as it would from one process.
    let mut stranger: Client = cluster.client(&gateways[1], Role::Customer, 9_999, "omaha").await?;
    let refused = stranger.refused(json!({"type": "chat", "job": 1, "text": "hi"})).await?;
    ensure!(refused["code"] == "forbidden" || refused["code"] == "not_found", "{refused}");
    let outside = stranger
        .refused(json!({"type": "post_job", "trade": "hvac", "lat": 41.5868, "lng": -93.625, "urgency": "today", "description": "x"}))
        .await?;
    ensure!(outside["code"] == "out_of_area", "{outside}");
    // Each owner posts its city's events from the city's outbox, signed: every journey's first events arrive.
    let wanted: Vec<String> =
        PINS.iter().zip(&jobs).flat_map(|((city, _), job)| (1..=3).map(move |seq| format!("{city}.{job}.{seq}"))).collect();
    eventually("every city's events at the webhook receiver", Duration::from_secs(30), || {
        let got = events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let wanted = wanted.clone();
        async move { Ok(wanted.iter().all(|id| got.contains(id))) }
    })
    .await?;
    // Each engine owns exactly its pinned city.
    for (engine, (city, _)) in engines.iter().zip(PINS) {
        let owned = owned(engine).await?;
        ensure!(owned.len() == 1 && owned.contains_key(city), "{}: {owned:?}", engine.name);
    }
    Ok(())
}

/// Bots on Des Moines through both gateways: contractors accepting, customers
/// posting and chatting. Returns their tasks.
fn des_moines_load(
    cluster: &Arc<Cluster>,
    gateways: &[Proc],
    ledger: &Arc<Mutex<Ledger>>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Result<()>>> {
    let centre = CityConfig::defaults()[0].centre;
    let bot = |i: u64| Bot {
        cluster: Arc::clone(cluster),
        gateways: vec![gateways[(i % 2) as usize].addr, gateways[((i + 1) % 2) as usize].addr],
        city: "des-moines",
        ledger: Arc::clone(ledger),
        stop: Arc::clone(stop),
    };
    let mut bots = Vec::new();
    for i in 0..4u64 {
        bots.push(tokio::spawn(common::failover::contractor(bot(i), 500 + i, (centre[0] + 0.002 * i as f64, centre[1]))));
    }
    for i in 0..3u64 {
        let at = (centre[0], centre[1] + 0.003 * i as f64);
        bots.push(tokio::spawn(common::failover::customer(bot(i + 1), 700 + i, at, Duration::from_millis(300))));
    }
    bots
}

/// Waits until an engine other than `engines[gone]` owns `city` (30 s).
async fn served_elsewhere(engines: &[Proc], gone: usize, city: &str) -> Result<()> {
    eventually(&format!("{city} served by another engine"), Duration::from_secs(30), || async {
        for (i, engine) in engines.iter().enumerate() {
            if i != gone && owned(engine).await?.contains_key(city) {
                return Ok(true);
            }
        }
        Ok(false)
    })
    .await
}

/// Stops the bots, waits for each (a bot's error fails the test) and returns what they recorded.
async fn stop_load(bots: Vec<tokio::task::JoinHandle<Result<()>>>, ledger: Arc<Mutex<Ledger>>, stop: &AtomicBool) -> Result<Ledger> {
    stop.store(true, Ordering::Relaxed);
    for bot in bots {
        bot.await??;
    }
    Ok(Arc::try_unwrap(ledger).map_err(|_| anyhow::anyhow!("bots still hold the ledger"))?.into_inner().expect("ledger"))
}

/// Test 2 of the cluster issue: `kill -9` the owner of Des Moines under load.
/// Another engine serves it once the lease runs out; every acknowledged job
/// and chat message is there; the clients saw no error but retried `unavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_owner_moves_its_city_and_loses_nothing_acknowledged() -> Result<()> {
    let Some(cluster) = Cluster::start("cluster_kill", &PINS, 3).await? else { return Ok(()) };
    let cluster = Arc::new(cluster);
    let (mut engines, gateways) = three_by_two(&cluster).await?;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let bots = des_moines_load(&cluster, &gateways, &ledger, &stop);
    // A dispatcher watching the map through a gateway.
    let mut dispatcher = cluster.client(&gateways[1], Role::Dispatcher, 1, "des-moines").await?;
    dispatcher.call(json!({"type": "subscribe"})).await?;
    dispatcher.wait("the first map snapshot", |v| v["type"] == "map_snapshot").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = ledger.lock().expect("ledger").jobs.len();

    let killed = Instant::now();
    engines[0].signal("-9")?;
    engines[0].wait()?;
    served_elsewhere(&engines, 0, "des-moines").await?;
    let moved_after = killed.elapsed();
    // The dispatcher's feed goes on from a fresh snapshot of the new owner's map, then deltas.
    let fresh = dispatcher.wait("a fresh map snapshot after the move", |v| v["type"] == "map_snapshot").await?;
    ensure!(fresh["contractors"].as_array().is_some_and(|c| !c.is_empty()), "the new owner's map has the contractors: {fresh}");
    dispatcher.wait("a delta after the move", |v| v["type"] == "map_delta").await?;
    // Load goes on through the new owner.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ledger = stop_load(bots, ledger, &stop).await?;
    let gap = ledger.acked_at.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
    eprintln!(
        "kill -9: des-moines owned again {moved_after:?} after the kill; longest gap between acknowledgements {gap:?}; \
         {} jobs acknowledged ({before} before the kill), {} retried unavailable",
        ledger.jobs.len(),
        ledger.unavailable
    );
    ensure!(ledger.errors.is_empty(), "errors other than unavailable: {:?}", ledger.errors);
    ensure!(ledger.jobs.len() > before, "no job was acknowledged after the move");
    ensure!(ledger.unavailable > 0, "the kill went unnoticed: was the owner killed?");
    check_nothing_lost(&cluster, &gateways[1], "des-moines", &ledger).await
}

/// The writer epoch and write time (µs) of every snapshot and log row of `city`.
async fn rows_by_epoch(cluster: &Cluster, city: &str) -> Result<Vec<(&'static str, i64, i64)>> {
    let session = cluster.session().await?;
    let ks = cluster.scylla.keyspace_for(city)?;
    let mut rows = Vec::new();
    for (table, column) in [("snapshots", "blob"), ("events", "payload")] {
        let result = session.query_unpaged(format!("SELECT epoch, writetime({column}) FROM {ks}.{table}"), ()).await?;
        let result = result.into_rows_result()?;
        for row in result.rows::<(Option<i64>, Option<i64>)>()? {
            let (epoch, at) = row?;
            rows.push((table, epoch.unwrap_or(0), at.unwrap_or(0)));
        }
    }
    Ok(rows)
}

/// The epochs of `city`'s writer roles that exist, and those logged in to the node now.
async fn writer_roles(cluster: &Cluster, city: &str) -> Result<(Vec<u64>, Vec<u64>)> {
    use dispatch_gateway::storage::scylladb::epoch_of;
    let session = cluster.session().await?;
    let ks = cluster.scylla.keyspace_for(city)?;
    let roles = session.query_unpaged("SELECT role FROM system_auth.roles", ()).await?.into_rows_result()?;
    let mut existing: Vec<u64> = roles.rows::<(String,)>()?.filter_map(|row| epoch_of(&ks, &row.ok()?.0)).collect();
    let clients = session.query_unpaged("SELECT username FROM system_views.clients", ()).await?.into_rows_result()?;
    let mut connected: Vec<u64> = clients.rows::<(Option<String>,)>()?.filter_map(|row| epoch_of(&ks, row.ok()?.0.as_deref()?)).collect();
    existing.sort_unstable();
    connected.sort_unstable();
    connected.dedup();
    Ok((existing, connected))
}

/// When the lease of `city` was last taken (the write time of its epoch), µs.
async fn taken_at(cluster: &Cluster, city: &str) -> Result<(u64, i64)> {
    let session = cluster.session().await?;
    let ks = cluster.scylla.keyspace_for("cluster")?;
    let result = session.query_unpaged(format!("SELECT epoch, writetime(epoch) FROM {ks}.leases WHERE city = ?"), (city,)).await?;
    let (epoch, at): (i64, i64) = result.into_rows_result()?.single_row()?;
    Ok((u64::try_from(epoch)?, at))
}

/// Test 3 of the cluster issue: the owner of Des Moines is paused (SIGSTOP)
/// past its lease's TTL while its city is under load. Another engine takes
/// the city meanwhile; when the old owner wakes (SIGCONT) it acknowledges
/// nothing more — every acknowledgement the clients got is in the new
/// owner's logs — and the store holds no write of the old epoch made after
/// the takeover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_wakes_fenced_and_its_epoch_writes_nothing_more() -> Result<()> {
    let Some(cluster) = Cluster::start("cluster_pause", &PINS, 3).await? else { return Ok(()) };
    let cluster = Arc::new(cluster);
    let (engines, gateways) = three_by_two(&cluster).await?;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let bots = des_moines_load(&cluster, &gateways, &ledger, &stop);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let (old, _) = taken_at(&cluster, "des-moines").await?;
    engines[0].signal("-STOP")?;
    served_elsewhere(&engines, 0, "des-moines").await?;
    let (epoch, took) = taken_at(&cluster, "des-moines").await?;
    let logs = || engines.iter().map(|p| format!("--- {}\n{}", p.name, p.log())).collect::<Vec<_>>().join("\n");
    ensure!(epoch == old + 1, "the takeover is epoch {}, not {epoch}\n{}", old + 1, logs());
    tokio::time::sleep(Duration::from_secs(2)).await;
    engines[0].signal("-CONT")?;
    // The woken owner fences itself (it may take the city back later, at a new epoch).
    eventually("the woken owner fenced", Duration::from_secs(10), || async {
        let (_, metrics) = common::http_at(engines[0].addr, "GET", "/metrics", None).await?;
        Ok(metrics.lines().any(|l| l.starts_with("dispatch_cluster_fenced_total") && !l.ends_with(" 0")))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ledger = stop_load(bots, ledger, &stop).await?;
    eprintln!(
        "SIGSTOP: epoch {epoch} took over from {old}; {} jobs acknowledged, {} retried unavailable",
        ledger.jobs.len(),
        ledger.unavailable
    );
    ensure!(ledger.errors.is_empty(), "errors other than unavailable: {:?}", ledger.errors);
    check_nothing_lost(&cluster, &gateways[0], "des-moines", &ledger).await?;
    let rows = rows_by_epoch(&cluster, "des-moines").await?;
    let (old, epoch) = (i64::try_from(old)?, i64::try_from(epoch)?);
    ensure!(rows.iter().any(|(_, e, _)| *e == old) && rows.iter().any(|(_, e, _)| *e == epoch), "both epochs wrote rows");
    let stale: Vec<_> = rows.iter().filter(|(_, e, at)| *e == old && *at > took).collect();
    ensure!(stale.is_empty(), "epoch {old} wrote after epoch {epoch} took over at {took}: {stale:?}");
    // What the store itself enforces: the paused owner's writer role is gone,
    // so anything it still had on its way was refused; the owner now writes as its own.
    let (now, _) = taken_at(&cluster, "des-moines").await?;
    let (roles, connected) = writer_roles(&cluster, "des-moines").await?;
    ensure!(roles == [now], "des-moines at epoch {now} has writer roles of epochs {roles:?}");
    ensure!(connected.contains(&now), "the owner at epoch {now} logs in as its role (connected: {connected:?})");
    Ok(())
}

/// Test 5 of the cluster issue: every engine restarted in turn (SIGTERM,
/// then started again) under load. Each hands its city off on the way out and
/// gets it back when it returns; clients see no error but retried
/// `unavailable`, and nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_engine_loses_nothing() -> Result<()> {
    let Some(cluster) = Cluster::start("cluster_roll", &PINS, 3).await? else { return Ok(()) };
    let cluster = Arc::new(cluster);
    let (mut engines, gateways) = three_by_two(&cluster).await?;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let bots = des_moines_load(&cluster, &gateways, &ledger, &stop);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (first, _) = taken_at(&cluster, "des-moines").await?;
    for (i, (city, node)) in PINS.iter().enumerate() {
        engines[i].signal("-TERM")?;
        engines[i].wait()?;
        // Handed off: another engine serves the city while this one is down.
        served_elsewhere(&engines, i, city).await?;
        engines[i] = cluster.engine(node).await?;
        let engine = &engines[i];
        eventually(&format!("{node} owns {city} again"), Duration::from_secs(30), || async {
            Ok(owned(engine).await?.contains_key(*city))
        })
        .await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ledger = stop_load(bots, ledger, &stop).await?;
    eprintln!("rolling restart: {} jobs acknowledged, {} retried unavailable", ledger.jobs.len(), ledger.unavailable);
    ensure!(ledger.errors.is_empty(), "errors other than unavailable: {:?}", ledger.errors);
    check_nothing_lost(&cluster, &gateways[1], "des-moines", &ledger).await?;
    // Handed off and back: Des Moines went to another engine and returned, each time at a new epoch.
    let (epoch, _) = taken_at(&cluster, "des-moines").await?;
    ensure!(epoch >= first + 2, "des-moines went from epoch {first} to {epoch}");
    Ok(())
}

/// Test 4 of the cluster issue: a gateway dies under load. Its clients
/// reconnect to the other one (after jittered pauses) and resume the jobs
/// they follow: nothing acknowledged is lost, and every follower ends up with
/// every position of its jobs' logs up to the last it saw, without a hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_gateway_moves_its_clients_and_they_resume_with_nothing_lost() -> Result<()> {
    let Some(cluster) = Cluster::start("cluster_gateway", &PINS, 3).await? else { return Ok(()) };
    let cluster = Arc::new(cluster);
    let (_engines, mut gateways) = three_by_two(&cluster).await?;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let bots = des_moines_load(&cluster, &gateways, &ledger, &stop);
    tokio::time::sleep(Duration::from_secs(3)).await;
    gateways[0].signal("-9")?;
    gateways[0].wait()?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let ledger = stop_load(bots, ledger, &stop).await?;
    eprintln!(
        "gateway kill: {} reconnects, {} jobs acknowledged, {} retried unavailable",
        ledger.reconnects,
        ledger.jobs.len(),
        ledger.unavailable
    );
    ensure!(ledger.errors.is_empty(), "errors other than unavailable: {:?}", ledger.errors);
    ensure!(ledger.reconnects >= 3, "the killed gateway's bots reconnected: {}", ledger.reconnects);
    check_nothing_lost(&cluster, &gateways[1], "des-moines", &ledger).await?;
    for (job, seqs) in &ledger.seen {
        let highest = seqs.last().copied().unwrap_or(0);
        ensure!(seqs.len() as u64 == highest, "job {job}: its followers missed positions of its log: {seqs:?}");
    }
    Ok(())
}
