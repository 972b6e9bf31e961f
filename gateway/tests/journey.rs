//! The whole journey over real WebSockets: contractor online and streaming
//! GPS; customer posts; the offer arrives; accept; en route; the customer
//! sees positions and ETA; chat both ways, including offline delivery with
//! `resume`; completion; rating.

#![allow(clippy::expect_used, reason = "test code: the journey reads ids out of replies")]

mod common;

use anyhow::Result;
use common::*;
use dispatch_gateway::Role;
use serde_json::json;

#[tokio::test]
async fn a_job_from_post_to_rating_over_the_wire() -> Result<()> {
    let server = Server::start().await?;
    journey(&server).await?;
    server.stop().await
}

/// The same journey with every city's store on the CQL cluster of `SCYLLA_URI`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_from_post_to_rating_over_the_wire_on_scylla() -> Result<()> {
    let Some(server) = Server::start_on_scylla("journey").await? else { return Ok(()) };
    journey(&server).await?;
    // The cluster's side shows on /metrics: how long its writes took, and
    // the driver's own counters (copied every second).
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (_, metrics) = server.http("GET", "/metrics", None).await?;
    let sample = |name: &str| metrics.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok());
    assert!(sample("dispatch_store_commit_seconds_count{store=\"scylla\"}").is_some_and(|n| n > 0.0), "write latency recorded");
    assert!(sample("dispatch_scylla_connections").is_some_and(|n| n > 0.0), "driver connections exported");
    assert!(sample("dispatch_scylla_retries_total").is_some(), "driver retries exported");
    server.stop().await
}

async fn journey(server: &Server) -> Result<()> {
    let mut pro = contractor(server, 7, "plumbing", 2_000.0).await?;
    let mut ts = 1_000_000i64;
    for metres in [1_950.0, 1_900.0] {
        ts += 4_000;
        let (lat, lng) = east(metres);
        pro.send(json!({"type": "gps", "lat": lat, "lng": lng, "speed": 12.0, "ts": ts})).await?;
    }

    let mut customer = server.connect(Role::Customer, 100).await?;
    let posted = customer
        .call(json!({"type": "post_job", "trade": "plumbing", "lat": DSM.0, "lng": DSM.1, "urgency": "emergency", "description": "burst pipe"}))
        .await?;
    let job = posted["job"].as_u64().expect("job id");
    assert!(posted["quote"]["total"].as_u64().expect("quote") > 0);

    let offer = pro.wait("the offer", |v| v["type"] == "offer").await?;
    assert_eq!(offer["job"], job);
    assert_eq!(offer["trade"], "plumbing");
    assert_eq!(offer["description"], "burst pipe");
    pro.call(json!({"type": "accept", "job": job})).await?;
    customer.wait("accepted", |v| v["type"] == "event" && v["event"]["accepted"]["contractor"] == 7).await?;

    customer.call(json!({"type": "watch", "job": job})).await?;
    pro.call(json!({"type": "job_status", "job": job, "status": "en_route"})).await?;
    for metres in [1_500.0, 900.0, 150.0] {
        ts += 60_000;
        let (lat, lng) = east(metres);
        pro.send(json!({"type": "gps", "lat": lat, "lng": lng, "speed": 10.0, "ts": ts})).await?;
    }
    let position = customer.wait("a position", |v| v["type"] == "event" && v["event"]["contractor_position"].is_object()).await?;
    assert!(position["event"]["contractor_position"]["eta_secs"].as_f64().expect("eta") > 0.0);
    customer.wait("arriving", |v| v["type"] == "event" && v["event"]["arriving"].is_object()).await?;

    // Chat both ways; each message is logged with a sequence number before its ack.
    let said = customer.call(json!({"type": "chat", "job": job, "text": "gate code 4321"})).await?;
    let seq = said["seq"].as_u64().expect("seq");
    let heard = pro.wait("the customer's chat", |v| v["type"] == "event" && v["event"]["chat"]["text"] == "gate code 4321").await?;
    assert_eq!(heard["seq"], seq);
    pro.call(json!({"type": "chat", "job": job, "text": "two minutes away"})).await?;
    customer.wait("the contractor's chat", |v| v["event"]["chat"]["text"] == "two minutes away").await?;

    // The customer's phone drops; chat sent meanwhile arrives through resume.
    drop(customer);
    pro.call(json!({"type": "chat", "job": job, "text": "I'm outside"})).await?;
    pro.call(json!({"type": "job_status", "job": job, "status": "on_site"})).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let replay = customer.call(json!({"type": "resume", "job": job, "last_seq": seq})).await?;
    assert!(replay["replayed"].as_u64().expect("count") >= 3);
    customer.wait("the missed chat", |v| v["event"]["chat"]["text"] == "I'm outside").await?;
    customer.wait("the missed on_site", |v| v["event"]["on_site"].is_object()).await?;

    pro.call(json!({"type": "job_status", "job": job, "status": "completed"})).await?;
    customer.wait("completed", |v| v["event"]["completed"]["contractor"] == 7).await?;
    let rated = customer.call(json!({"type": "rate", "job": job, "stars": 5})).await?;
    assert_eq!(rated["reviews"], 1);
    assert_eq!(rated["rating"], 5.0);
    customer.wait("the rating in the job's log", |v| v["event"]["rated"]["stars"] == 5.0).await?;
    // A job is rated once: a second rating is refused and moves nothing.
    let again = customer.refused(json!({"type": "rate", "job": job, "stars": 1})).await?;
    assert_eq!(again["code"], "conflict");
    assert!(again["message"].as_str().is_some_and(|m| m.contains("already rated")), "{again}");
    Ok(())
}
