//! A short client: gets a dev token, connects as a customer, posts a job and
//! prints what the server sends for ten seconds.
//!
//! ```sh
//! cargo run -p dispatch-gateway -- serve --dev-auth &   # in another terminal
//! cargo run -p dispatch-gateway --example client -- 127.0.0.1:8080
//! ```
#![allow(missing_docs, reason = "example")]

use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

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
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws?token={token}")).await?;
    let post = json!({"type": "post_job", "id": "p1", "trade": "plumbing", "lat": 41.5868, "lng": -93.6250,
        "urgency": "today", "description": "dripping tap"});
    ws.send(Message::text(post.to_string())).await?;
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Some(frame)) = tokio::time::timeout_at(until, ws.next()).await {
        if let Message::Text(text) = frame? {
            println!("{text}");
        }
    }
    Ok(())
}
