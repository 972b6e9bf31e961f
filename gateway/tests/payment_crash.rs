//! `kill -9` between a processor call and its record: `dispatch serve`
//! charges a completed job through the Stripe adapter, against localstripe
//! behind a proxy of this test's. The proxy passes the capture on, and once
//! localstripe has charged the card it kills the server instead of handing
//! the answer back: the charge is made, its outcome never written. The
//! restarted server finds the capture's intent in the job's log without an
//! outcome, asks the processor what it did, and records it: one capture
//! request ever reached the processor, the card is charged once, and the
//! job's log holds one `captured`.
#![allow(clippy::expect_used, reason = "test code: a poisoned lock is a test failure")]

mod common;
#[path = "../../payments/tests/simulators/mod.rs"]
mod simulators;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use common::under_load::{start, token};
use common::*;
use dispatch_gateway::Role;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy saw, and whether it kills on the next capture's answer.
#[derive(Default)]
struct Watch {
    /// Capture requests passed to the processor.
    captures: AtomicUsize,
    /// The hold of the last one.
    intent: Mutex<Option<String>>,
    /// Kill on the next capture's answer.
    armed: AtomicBool,
    /// A capture's answer was kept back.
    tripped: tokio::sync::Notify,
}

/// A TCP proxy to `upstream` that watches the HTTP requests going through.
async fn proxy(upstream: SocketAddr, watch: Arc<Watch>) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(relay(client, upstream, Arc::clone(&watch)));
        }
    });
    Ok(addr)
}

/// One connection: requests pass on as they are; the answer to a capture is
/// kept back while the watch is armed.
async fn relay(client: TcpStream, upstream: SocketAddr, watch: Arc<Watch>) -> Result<()> {
    let server = TcpStream::connect(upstream).await?;
    let ((mut from_client, mut to_client), (mut from_server, mut to_server)) = (client.into_split(), server.into_split());
    let capturing = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&capturing);
    let requests = {
        let watch = Arc::clone(&watch);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = from_client.read(&mut buf).await?;
                if n == 0 {
                    return anyhow::Ok(());
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                if let Some(line) = text.lines().next().filter(|l| l.starts_with("POST") && l.contains("/capture ")) {
                    watch.captures.fetch_add(1, Ordering::SeqCst);
                    let intent = line.split('/').nth(3).map(str::to_owned);
                    *watch.intent.lock().expect("lock") = intent;
                    seen.store(true, Ordering::SeqCst);
                }
                to_server.write_all(&buf[..n]).await?;
            }
        })
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from_server.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if capturing.swap(false, Ordering::SeqCst) && watch.armed.load(Ordering::SeqCst) {
            // Charged at the processor; the server never hears of it.
            watch.tripped.notify_one();
            std::future::pending::<()>().await;
        }
        to_client.write_all(&buf[..n]).await?;
    }
    requests.abort();
    Ok(())
}

/// Calls until the server answers (it may still be starting its cities).
async fn payment_of(addr: SocketAddr, job: u64) -> Result<Value> {
    let started = Instant::now();
    loop {
        let mut customer = Client::connect(addr, &token(Role::Customer, 100)).await?;
        if let Ok(reply) = customer.call(json!({"type": "payment", "job": job})).await
            && reply["payment"]["state"] == "captured"
        {
            return Ok(reply);
        }
        ensure!(started.elapsed() < Duration::from_secs(30), "the charge was not reconciled within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_the_charge_and_its_record_the_restarted_server_charges_once_and_records_once() -> Result<()> {
    let Some(stripe) = simulators::localstripe().await? else { return Ok(()) };
    let card = simulators::new_card(&stripe, "4242424242424242").await?;
    let watch = Arc::new(Watch::default());
    let processor = proxy(stripe.addr, Arc::clone(&watch)).await?;

    let data = tempfile::tempdir()?;
    let config = data.path().join("dispatch.toml");
    std::fs::write(
        &config,
        format!(
            "[payments]\nprovider = \"stripe\"\n[payments.stripe]\napi_base = \"http://{processor}\"\nsecret_key = \"sk_test_dispatch\"\nonboarding_url = \"https://app.example/payouts\"\n"
        ),
    )?;
    let extra = ["--config".to_owned(), config.display().to_string()];
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let (mut server, _) = start(data.path(), addr, &extra).await?;

    let mut pro = Client::connect(addr, &token(Role::Contractor, 7)).await?;
    pro.call(json!({"type": "register", "name": "Ada", "trades": [{"trade": "plumbing", "years": 4}], "hourly_rate": 8000, "service_radius_m": 30000.0})).await?;
    let (lat, lng) = east(300.0);
    pro.call(json!({"type": "online", "lat": lat, "lng": lng})).await?;
    let mut customer = Client::connect(addr, &token(Role::Customer, 100)).await?;
    let posted = customer
        .call(json!({"type": "post_job", "trade": "plumbing", "lat": DSM.0, "lng": DSM.1, "urgency": "today", "description": "leak", "payment_method": card}))
        .await?;
    let (job, total) = (posted["job"].as_u64().expect("job"), posted["quote"]["total"].as_u64().expect("quote"));
    pro.wait("the offer", |v| v["type"] == "offer" && v["job"] == job).await?;
    pro.call(json!({"type": "accept", "job": job})).await?;
    for status in ["en_route", "on_site"] {
        pro.call(json!({"type": "job_status", "job": job, "status": status})).await?;
    }
    watch.armed.store(true, Ordering::SeqCst);
    pro.call(json!({"type": "job_status", "job": job, "status": "completed"})).await?;
    if tokio::time::timeout(Duration::from_secs(20), watch.tripped.notified()).await.is_err() {
        bail!("no capture reached the processor within 20 s of completion");
    }
    server.start_kill()?;
    server.wait().await?;
    watch.armed.store(false, Ordering::SeqCst);
    ensure!(watch.captures.load(Ordering::SeqCst) == 1);

    // The restart reconciles: it reads the hold at the processor, and does not capture again.
    let (server, _) = start(data.path(), addr, &extra).await?;
    let receipt = payment_of(addr, job).await?;
    ensure!(receipt["payment"]["charged"] == total, "charged the quote: {receipt}");
    ensure!(watch.captures.load(Ordering::SeqCst) == 1, "one capture request ever");
    let intent = watch.intent.lock().expect("lock").clone().expect("the capture's hold");
    let url = format!("http://{}/v1/payment_intents/{intent}", stripe.addr);
    let pi: Value = reqwest::Client::new().get(url).bearer_auth("sk_test_dispatch").send().await?.json().await?;
    ensure!(pi["status"] == "succeeded", "{pi}");
    // One record: the job's log, replayed, holds one `captured`.
    let mut customer = Client::connect(addr, &token(Role::Customer, 100)).await?;
    customer.call(json!({"type": "resume", "job": job, "last_seq": 0})).await?;
    let captured = customer.seen.iter().filter(|v| v["type"] == "event" && v["event"]["payment"]["captured"].is_object()).count();
    ensure!(captured == 1, "one captured record, not {captured}");
    println!("charged {total} on {intent} once ({}), recorded once, after a kill -9 between the charge and its record", pi["status"]);
    drop(server);
    Ok(())
}
