//! The HTTP side: health, readiness, metrics, dev tokens, graceful shutdown.

mod common;

use anyhow::Result;
use common::*;
use dispatch_gateway::Role;
use serde_json::{Value, json};

#[tokio::test]
async fn health_readiness_and_unknown_routes() -> Result<()> {
    let server = Server::start().await?;
    assert_eq!(server.http("GET", "/healthz", None).await?, (200, "ok\n".into()));
    let (status, body) = server.http("GET", "/readyz", None).await?;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body)?["ready"], true);
    assert_eq!(server.http("GET", "/nope", None).await?.0, 404);
    assert_eq!(server.http("DELETE", "/healthz", None).await?.0, 405);
    assert_eq!(server.http("GET", "/v1/ws", None).await?.0, 400, "not an upgrade");
    let (status, page) = server.http("GET", "/", None).await?;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"matched-minute\""), "the map page is served");
    let (_, config) = server.http("GET", "/v1/map-config", None).await?;
    assert_eq!(serde_json::from_str::<Value>(&config)?["tile_url"], Value::Null, "no tiles unless configured");
    server.stop().await
}

#[tokio::test]
async fn dev_tokens_are_issued_only_in_dev_mode_and_work() -> Result<()> {
    let server = Server::start().await?;
    let (status, body) = server.http("POST", "/v1/tokens", Some(r#"{"role": "customer", "sub": 9, "city": "des-moines"}"#)).await?;
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<Value>(&body)?["token"].as_str().expect("token").to_owned();
    let mut c = Client::connect(server.addr, &token).await?;
    c.send(json!({"type": "ping"})).await?;
    c.wait("pong", |v| v["type"] == "pong").await?;
    assert_eq!(server.http("POST", "/v1/tokens", Some(r#"{"role": "wizard", "sub": 9, "city": "des-moines"}"#)).await?.0, 400);
    assert_eq!(server.http("POST", "/v1/tokens", Some(r#"{"role": "customer", "sub": 9, "city": "gotham"}"#)).await?.0, 400);
    server.stop().await?;

    let prod = Server::start_with(|c| c.dev_auth = false).await?;
    assert_eq!(prod.http("POST", "/v1/tokens", Some(r#"{"role": "customer", "sub": 9, "city": "des-moines"}"#)).await?.0, 404);
    prod.stop().await
}

#[tokio::test]
async fn metrics_name_connections_messages_errors_gps_and_offers() -> Result<()> {
    let server = Server::start().await?;
    let mut pro = contractor(&server, 7, "locksmith", 300.0).await?;
    let (lat, lng) = east(250.0);
    pro.send(json!({"type": "gps", "lat": lat, "lng": lng, "ts": 5})).await?;
    pro.send_raw("{broken").await?;
    pro.wait("error", |v| v["type"] == "error").await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    customer
        .call(json!({"type": "post_job", "trade": "locksmith", "lat": DSM.0, "lng": DSM.1, "urgency": "emergency", "description": "locked out"}))
        .await?;
    pro.wait("offer", |v| v["type"] == "offer").await?;
    let (status, text) = server.http("GET", "/metrics", None).await?;
    assert_eq!(status, 200);
    for name in [
        "dispatch_ws_connections",
        "dispatch_ws_messages_in_total",
        "dispatch_ws_messages_out_total",
        "dispatch_ws_errors_total",
        "dispatch_gps_ingested_total",
        "dispatch_offer_latency_seconds",
        "dispatch_ws_outbound_queue_depth",
        "dispatch_offers_total",
        "dispatch_actors_alive",
        "dispatch_process_resident_bytes",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}");
    }
    assert!(text.contains(r#"role="contractor""#));
    server.stop().await
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() -> Result<()> {
    let server = Server::start().await?;
    let mut c = server.connect(Role::Customer, 1).await?;
    let stopping = tokio::spawn(server.stop());
    assert_eq!(c.closed_with().await?, 1001);
    stopping.await??;
    Ok(())
}

/// With a drain period, shutdown closes connections spread over it, not all
/// at once: their clients reconnect to another gateway a few at a time.
#[tokio::test]
async fn a_drain_closes_connections_spread_over_its_period() -> Result<()> {
    let server = Server::start_with(|c| c.drain_secs = 2).await?;
    let mut clients = Vec::new();
    for sub in 0..12 {
        clients.push(server.connect(Role::Customer, sub).await?);
    }
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(server.stop());
    let closes = futures_util::future::join_all(clients.iter_mut().map(|c| async {
        let code = c.closed_with_within(std::time::Duration::from_secs(5)).await;
        (code, started.elapsed())
    }))
    .await;
    stopping.await??;
    let mut at: Vec<_> = closes.into_iter().map(|(code, at)| (code.map_err(|e| e.to_string()), at)).collect();
    at.sort_by_key(|(_, t)| *t);
    assert!(at.iter().all(|(code, _)| code.as_ref().is_ok_and(|c| *c == 1001)), "{at:?}");
    let (first, last) = (at[0].1, at[at.len() - 1].1);
    assert!(last - first > std::time::Duration::from_millis(500), "spread over the drain, not at once: {at:?}");
    assert!(last < std::time::Duration::from_millis(2_500), "within the drain period: {at:?}");
    Ok(())
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() -> Result<()> {
    let server = Server::start_with(|c| c.idle_timeout_secs = 1).await?;
    let mut silent = server.connect(Role::Customer, 1).await?;
    // Not reading means not answering the server's pings either.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    match silent.closed_with().await {
        Ok(code) => assert_eq!(code, 1000),
        // Reading first answers the queued pings, which can hit the socket the
        // server already closed: that, too, shows the server hung up.
        Err(e) => assert!(e.to_string().contains("Broken pipe") || e.to_string().contains("reset"), "{e}"),
    }
    // A client that keeps talking stays.
    let mut chatty = server.connect(Role::Customer, 2).await?;
    for _ in 0..5 {
        chatty.send(json!({"type": "ping"})).await?;
        chatty.wait("pong", |v| v["type"] == "pong").await?;
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    server.stop().await
}
