//! A short client on `dispatch-protocol` alone: gets a dev token, connects as
//! a customer, posts a job (a typed `ClientMsg`) and prints what the server
//! sends for ten seconds, as typed `ServerMsg`s.
//!
//! ```sh
//! cargo run -p dispatch-gateway -- serve --dev-auth &   # in another terminal
//! cargo run -p dispatch-gateway --example client -- 127.0.0.1:8080
//! ```
#![allow(missing_docs, reason = "example")]

use std::time::Duration;

use anyhow::{Context, Result};
use dispatch_engine::Trade;
use dispatch_protocol::client;
use dispatch_protocol::{ClientMsg, UrgencyWire};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// POST /v1/tokens (served only with --dev-auth).
async fn dev_token(addr: &str, role: &str, sub: u64) -> Result<String> {
    let body = json!({"role": role, "sub": sub, "city": "des-moines"}).to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("is dispatch serve running on {addr}?"))?;
    let request = format!(
        "POST /v1/tokens HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (_, body) = response.split_once("\r\n\r\n").context("no HTTP body")?;
    let token: Value = serde_json::from_str(body).with_context(|| format!("unexpected reply: {body}"))?;
    token["token"].as_str().map(str::to_owned).with_context(|| format!("no token in {token} (was the server started with --dev-auth?)"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let token = dev_token(&addr, "customer", 1).await?;
    let server = tokio::net::lookup_host(&addr).await?.next().context("no address")?;
    let (mut ws, hello) = client::connect(server, &token, None).await?;
    println!("{hello:?}");
    let post = ClientMsg::PostJob {
        trade: Trade::Plumbing,
        lat: 41.5868,
        lng: -93.6250,
        urgency: UrgencyWire::Today,
        description: "dripping tap".into(),
        budget: None,
        // Sent again after an `unavailable`, the same id posts the job once.
        request_id: Some("dripping-tap-1".into()),
        // The customer's saved card; none: the sandbox's test Visa.
        payment_method: None,
    };
    ws.send(client::frame(false, Some("p1"), &post)?).await?;
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    // Until ten seconds have passed or the server closes.
    while let Ok(next) = tokio::time::timeout_at(until, client::next_msg(&mut ws)).await {
        let Some(msg) = next? else { break };
        println!("{msg:?}");
    }
    Ok(())
}
