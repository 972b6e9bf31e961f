//! Bad input of every class gets a clear error; the connection stays open
//! except where the protocol says otherwise (oversized frames: 1009).

mod common;

use anyhow::Result;
use common::*;
use dispatch_gateway::Role;
use serde_json::json;

async fn bad(client: &mut Client, raw: &str, mentions: &str) -> Result<()> {
    client.send_raw(raw).await?;
    let err = client.wait("an error", |v| v["type"] == "error").await?;
    assert_eq!(err["code"], "bad_request", "{raw} -> {err}");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(message.contains(mentions), "{raw}: {message:?} should mention {mentions:?}");
    Ok(())
}

#[tokio::test]
async fn malformed_frames_name_their_problem_and_keep_the_connection() -> Result<()> {
    let server = Server::start().await?;
    let mut c = server.connect(Role::Contractor, 1).await?;
    bad(&mut c, "{oops", "malformed JSON").await?;
    bad(&mut c, "42", "JSON object").await?;
    bad(&mut c, r#"{"lat": 1}"#, "missing field `type`").await?;
    bad(&mut c, r#"{"type": "teleport"}"#, "unknown message type `teleport`").await?;
    bad(&mut c, r#"{"type": "online", "lat": 41.5}"#, "missing field `lng`").await?;
    bad(&mut c, r#"{"type": "accept", "job": "seven"}"#, "accept").await?;
    bad(&mut c, r#"{"type": "online", "lat": 95.0, "lng": 0.0}"#, "latitude").await?;
    bad(&mut c, r#"{"type": "online", "lat": 41.5, "lng": -200.0}"#, "longitude").await?;
    c.send(json!({"type": "ping"})).await?;
    c.wait("pong", |v| v["type"] == "pong").await?;
    server.stop().await
}

#[tokio::test]
async fn positions_outside_the_city_are_out_of_area() -> Result<()> {
    let server = Server::start().await?;
    let mut pro = server.connect(Role::Contractor, 1).await?;
    pro.call(json!({"type": "register", "name": "a", "trades": [{"trade": "roofing", "years": 1}], "hourly_rate": 1, "service_radius_m": 1000.0})).await?;
    // Omaha is a configured city, but not this connection's.
    let err = pro.refused(json!({"type": "online", "lat": 41.2565, "lng": -95.9345})).await?;
    assert_eq!(err["code"], "out_of_area");
    let mut customer = server.connect(Role::Customer, 2).await?;
    let err = customer
        .refused(json!({"type": "post_job", "trade": "roofing", "lat": 0.0, "lng": 0.0, "urgency": "today", "description": "x"}))
        .await?;
    assert_eq!(err["code"], "out_of_area");
    server.stop().await
}

#[tokio::test]
async fn impossible_values_are_refused() -> Result<()> {
    let server = Server::start().await?;
    let mut customer = server.connect(Role::Customer, 2).await?;
    let backwards = json!({"type": "post_job", "trade": "painting", "lat": DSM.0, "lng": DSM.1,
        "urgency": {"scheduled": {"start": 2000, "end": 1000}}, "description": "x"});
    assert_eq!(customer.refused(backwards).await?["code"], "bad_request");
    let mut pro = contractor(&server, 3, "painting", 100.0).await?;
    let err = pro.refused(json!({"type": "gps", "lat": DSM.0, "lng": DSM.1, "heading": 400.0, "ts": 1})).await?;
    assert_eq!(err["code"], "bad_request");
    let err = pro.refused(json!({"type": "chat", "job": 1, "text": ""})).await?;
    assert!(err["code"] == "not_found" || err["code"] == "bad_request", "{err}");
    let err = pro.refused(json!({"type": "register", "name": "x", "trades": [], "hourly_rate": 1, "service_radius_m": 1.0})).await?;
    assert_eq!(err["code"], "bad_request");
    server.stop().await
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009() -> Result<()> {
    let server = Server::start_with(|c| c.max_frame_bytes = 4 * 1024).await?;
    let mut c = server.connect(Role::Customer, 1).await?;
    let huge = format!(r#"{{"type": "chat", "job": 1, "text": "{}"}}"#, "x".repeat(8 * 1024));
    c.send_raw(&huge).await?;
    assert_eq!(c.closed_with().await?, 1009);
    server.stop().await
}

#[tokio::test]
async fn a_missing_forged_or_expired_token_is_refused_at_the_upgrade_with_401() -> Result<()> {
    let server = Server::start().await?;
    for token in ["", "not-a-jwt", &dispatch_gateway::Auth::new(b"wrong").issue(Role::Customer, 1, CITY, 60)?] {
        let err = Client::connect(server.addr, token).await.err().expect("refused");
        assert!(err.to_string().contains("401"), "{err}");
    }
    let Err(err) = tokio_tungstenite::connect_async(format!("ws://{}/v1/ws", server.addr)).await else {
        anyhow::bail!("connected without a token");
    };
    assert!(err.to_string().contains("401"), "{err}");
    server.stop().await
}

#[tokio::test]
async fn excess_gps_is_dropped_and_counted_and_excess_chat_refused() -> Result<()> {
    let server = Server::start_with(|c| {
        c.gps_per_sec = 1;
        c.chat_per_sec = 1;
    })
    .await?;
    let metric = |text: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with("dispatch_gps_dropped_total"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let before = metric(&server.http("GET", "/metrics", None).await?.1);
    let mut pro = contractor(&server, 5, "cleaning", 100.0).await?;
    for i in 0..20 {
        let (lat, lng) = east(100.0 + i as f64);
        pro.send(json!({"type": "gps", "lat": lat, "lng": lng, "ts": 1_000 + i})).await?;
    }
    // Frames are handled in order: after the pong, all 20 fixes were seen.
    pro.send(json!({"type": "ping"})).await?;
    pro.wait("pong", |v| v["type"] == "pong").await?;
    let dropped = metric(&server.http("GET", "/metrics", None).await?.1) - before;
    assert!(dropped >= 15.0, "dropped {dropped}");

    let mut customer = server.connect(Role::Customer, 1).await?;
    let job = customer.post_job("cleaning").await?;
    let mut dispatcher = server.connect(Role::Dispatcher, 1).await?;
    let mut limited = 0;
    for i in 0..6 {
        let id = dispatcher.send(json!({"type": "chat", "job": job, "text": format!("note {i}")})).await?;
        let reply = dispatcher.wait("a reply", |v| v["id"] == id.as_str()).await?;
        if reply["code"] == "rate_limited" {
            limited += 1;
        }
    }
    assert!(limited >= 3, "{limited} of 6 refused");
    server.stop().await
}

#[tokio::test]
async fn binary_frames_carry_the_same_messages_and_garbage_is_a_bad_request() -> Result<()> {
    use dispatch_gateway::protocol::{ClientMsg, encode_client_binary};
    let server = Server::start().await?;
    let mut pro = server.connect(Role::Contractor, 4).await?;
    let register = ClientMsg::Register {
        name: "bin".into(),
        trades: vec![dispatch_gateway::protocol::TradeYears { trade: dispatch_engine::Trade::Hvac, years: 2 }],
        hourly_rate: 5000,
        service_radius_m: 9000.0,
    };
    use dispatch_gateway::ServerMsg;
    pro.send_binary(encode_client_binary(Some("b1".into()), register).map_err(anyhow::Error::msg)?).await?;
    // A binary client gets binary replies, the ack's result typed.
    let ServerMsg::Ack { id, result } = pro.recv_binary().await? else { anyhow::bail!("expected an ack") };
    assert_eq!(id.as_deref(), Some("b1"));
    assert_eq!(result, dispatch_gateway::protocol::Registered { registered: true }.into());
    let (lat, lng) = east(100.0);
    let online = ClientMsg::Online { lat, lng };
    pro.send_binary(encode_client_binary(Some("b2".into()), online).map_err(anyhow::Error::msg)?).await?;
    let ServerMsg::Ack { result, .. } = pro.recv_binary().await? else { anyhow::bail!("expected an ack") };
    assert_eq!(result, dispatch_gateway::protocol::StatusReply { status: dispatch_engine::ContractorStatus::Available }.into());
    pro.send_binary(vec![0xde, 0xad, 0xbe, 0xef]).await?;
    let ServerMsg::Error { code, message, .. } = pro.recv_binary().await? else { anyhow::bail!("expected an error") };
    assert_eq!(code, dispatch_gateway::protocol::ErrorCode::BadRequest);
    assert!(message.contains("binary"), "{message}");
    server.stop().await
}

/// A job posted by customer 1 with `n` chat messages of `len` characters in its log.
async fn chatty_job(customer: &mut Client, n: usize, len: usize) -> Result<u64> {
    let job = customer.post_job("cleaning").await?;
    let text = "y".repeat(len);
    for _ in 0..n {
        customer.call(json!({"type": "chat", "job": job, "text": text})).await?;
    }
    Ok(job)
}

#[tokio::test]
async fn a_replay_longer_than_the_queue_reaches_a_reader_that_keeps_up() -> Result<()> {
    let server = Server::start_with(|c| {
        c.outbound_queue = 8;
        c.chat_per_sec = 100_000;
    })
    .await?;
    let mut customer = server.connect(Role::Customer, 1).await?;
    let job = chatty_job(&mut customer, 100, 10).await?;
    let mut again = server.connect(Role::Customer, 1).await?;
    let replay = again.call(json!({"type": "resume", "job": job, "last_seq": 0})).await?;
    // Posted, the hold's four payment entries (made, confirmed, each call's intent and outcome), 100 chats.
    assert_eq!(replay["replayed"], 105, "posted + hold + 100 chats");
    assert_eq!(again.seen.iter().filter(|v| v["type"] == "event").count(), 105);
    server.stop().await
}

#[tokio::test]
async fn non_numbers_and_out_of_range_numbers_are_malformed() -> Result<()> {
    let server = Server::start().await?;
    let mut c = server.connect(Role::Contractor, 1).await?;
    bad(&mut c, r#"{"type": "online", "lat": NaN, "lng": 0}"#, "malformed JSON").await?;
    bad(&mut c, r#"{"type": "online", "lat": 1e999, "lng": 0}"#, "malformed JSON").await?;
    bad(&mut c, r#"{"type": "online", "lat": null, "lng": 0}"#, "online").await?;
    bad(&mut c, r#"{"type": "accept", "job": -1}"#, "accept").await?;
    bad(&mut c, r#"{"type": "accept", "job": 18446744073709551616}"#, "accept").await?;
    server.stop().await
}

#[tokio::test]
async fn a_fix_from_the_future_is_refused_and_a_replayed_one_ignored() -> Result<()> {
    let server = Server::start().await?;
    let mut pro = contractor(&server, 5, "hvac", 0.0).await?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let err = pro.refused(json!({"type": "gps", "lat": DSM.0, "lng": DSM.1, "ts": now + 3_600_000, "id": "f"})).await?;
    assert_eq!(err["code"], "bad_request");
    assert!(err["message"].as_str().unwrap_or("").contains("ahead of the server's clock"), "{err}");
    // A fix, then the same timestamp again from elsewhere (a replay): the first stands.
    let (lat, lng) = east(500.0);
    pro.send(json!({"type": "gps", "lat": lat, "lng": lng, "ts": now})).await?;
    let (lat, lng) = east(2_000.0);
    pro.send(json!({"type": "gps", "lat": lat, "lng": lng, "ts": now})).await?;
    pro.send(json!({"type": "ping"})).await?;
    pro.wait("pong: both fixes handled", |v| v["type"] == "pong").await?;
    let mut dispatcher = server.connect(Role::Dispatcher, 1).await?;
    let near = dispatcher.call(json!({"type": "nearby", "lat": DSM.0, "lng": DSM.1, "k": 1})).await?;
    let distance = near["contractors"][0]["distance_m"].as_f64().unwrap_or(f64::NAN);
    assert!((distance - 500.0).abs() < 50.0, "the replayed fix was ignored: {near}");
    server.stop().await
}

#[tokio::test]
async fn actions_in_the_wrong_job_state_are_conflicts() -> Result<()> {
    let server = Server::start().await?;
    let mut pro = contractor(&server, 7, "roofing", 300.0).await?;
    let mut rival = contractor(&server, 8, "roofing", 5_000.0).await?;
    let mut customer = server.connect(Role::Customer, 70).await?;
    let job = customer.post_job("roofing").await?;
    pro.wait("the offer", |v| v["type"] == "offer").await?;
    // Before acceptance: no status change, no rating.
    let err = pro.refused(json!({"type": "job_status", "job": job, "status": "completed"})).await?;
    assert!(err["code"] == "conflict" || err["code"] == "forbidden", "{err}");
    assert_eq!(customer.refused(json!({"type": "rate", "job": job, "stars": 5})).await?["code"], "conflict");
    pro.call(json!({"type": "accept", "job": job})).await?;
    // Accepted: a second accept, by anyone, and skipping ahead are refused.
    assert!(pro.refused(json!({"type": "accept", "job": job})).await?["code"] == "conflict");
    let err = rival.refused(json!({"type": "accept", "job": job})).await?;
    assert!(err["code"] == "conflict" || err["code"] == "forbidden", "{err}");
    assert_eq!(pro.refused(json!({"type": "job_status", "job": job, "status": "completed"})).await?["code"], "conflict");
    // Cancelled: nothing moves it again.
    customer.call(json!({"type": "cancel", "job": job, "reason": "changed my mind"})).await?;
    assert_eq!(pro.refused(json!({"type": "job_status", "job": job, "status": "en_route"})).await?["code"], "conflict");
    assert_eq!(customer.refused(json!({"type": "cancel", "job": job, "reason": "again"})).await?["code"], "conflict");
    // A resume past the end of the log replays nothing, and is not an error.
    let replay = customer.call(json!({"type": "resume", "job": job, "last_seq": 1_000})).await?;
    assert_eq!(replay["replayed"], 0);
    server.stop().await
}
