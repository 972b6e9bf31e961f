//! A reference receiver of the engine's webhooks: it checks each request's
//! `Dispatch-Signature`, drops events it has seen (by `Dispatch-Event-Id`),
//! and prints what a notification sender would do with the rest.
//!
//! ```text
//! DISPATCH_WEBHOOK_SECRETS=whsec_…[,whsec_…] cargo run --example webhook_receiver -- 127.0.0.1:9000
//! ```
//!
//! Then configure an endpoint `url = "http://127.0.0.1:9000/"` with the same
//! secret (and `allow_networks = ["127.0.0.0/8"]`: it is on loopback).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use dispatch_gateway::protocol::Event;
use dispatch_gateway::protocol::signature::{self, TOLERANCE_SECS};
use dispatch_gateway::protocol::webhook::{Delivery, EVENT_ID_HEADER, SIGNATURE_HEADER};

/// Event ids remembered for de-duplication (the oldest forgotten first).
const REMEMBERED: usize = 100_000;

#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    /// Whether `id` is new (and remembers it).
    fn first_time(&mut self, id: &str) -> bool {
        if !self.ids.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        if self.order.len() > REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

/// What a notification sender would do with the event.
fn what_to_send(d: &Delivery) -> Option<String> {
    match &d.event {
        Event::Offered { contractor, expires_at, .. } => {
            Some(format!("push to contractor {contractor}: job {} offered until {expires_at}", d.job))
        }
        Event::Accepted { contractor } => Some(format!("push to job {}'s customer: contractor {contractor} is coming", d.job)),
        Event::Arriving { distance_m, .. } => Some(format!("sms to job {}'s customer: arriving, {distance_m:.0} m away", d.job)),
        Event::Chat { sender, text, .. } => Some(format!("push to job {}'s other party: {sender} wrote {text:?}", d.job)),
        _ => None,
    }
}

async fn receive(secrets: Arc<Vec<String>>, seen: Arc<Mutex<Seen>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let keys: Vec<&[u8]> = secrets.iter().map(String::as_bytes).collect();
    if let Err(e) = signature::verify(&header(SIGNATURE_HEADER), &body, &keys, now, TOLERANCE_SECS) {
        println!("refused: {e}");
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(delivery) = serde_json::from_slice::<Delivery>(&body) else { return StatusCode::BAD_REQUEST };
    if delivery.id != header(EVENT_ID_HEADER) {
        return StatusCode::BAD_REQUEST;
    }
    if !seen.lock().unwrap_or_else(PoisonError::into_inner).first_time(&delivery.id) {
        println!("{}: seen already, ignored", delivery.id);
        return StatusCode::OK;
    }
    match what_to_send(&delivery) {
        Some(message) => println!("{}: would send {message}", delivery.id),
        None => println!("{}: {} (nothing to send)", delivery.id, delivery.kind),
    }
    StatusCode::OK
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9000".into());
    let secrets: Vec<String> = std::env::var("DISPATCH_WEBHOOK_SECRETS")
        .map_err(|_| anyhow::anyhow!("set DISPATCH_WEBHOOK_SECRETS to the endpoint's secret (two, comma-separated, while rotating)"))?
        .split(',')
        .map(str::to_owned)
        .collect();
    let (secrets, seen) = (Arc::new(secrets), Arc::new(Mutex::new(Seen::default())));
    let app = axum::Router::new().fallback(axum::routing::post(move |headers: HeaderMap, body: Bytes| {
        receive(Arc::clone(&secrets), Arc::clone(&seen), headers, body)
    }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("receiving webhooks on http://{addr}/");
    axum::serve(listener, app).await?;
    Ok(())
}
