//! Outbound webhooks: every logged event of a city posted, signed, to the
//! endpoints that take it, from the city's durable outbox
//! (`dispatch_actors::outbox`), never from the in-memory broadcast.
//!
//! | module | what lives there |
//! |---|---|
//! | `config` | `[webhooks]`: endpoints (URL, secrets, event and city filters) and the retry schedule |
//! | `ssrf` | what an endpoint may reach: inward addresses refused, at the URL and where a name resolves |
//! | `backoff` | the pause between attempts: exponential, capped, jittered |
//! | `deliver` | one endpoint's deliveries for one city: cursor, pages, jobs in order, retries, dead letters, replay |
//!
//! Deliveries run beside a city's actors, wherever its owner is (`dispatch
//! serve`, or the `dispatch engine` holding the city's lease), started by
//! [`start_city`] and stopped with the city. The admin API adds and removes
//! endpoints and asks for replays through the city (`Dispatch::webhook_control`).
//! `docs/operator.md` describes the payload, signature, retries and dead letters.

pub mod backoff;
pub mod config;
pub(crate) mod deliver;
pub mod ssrf;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dispatch_actors::Dispatch;
use dispatch_actors::outbox::{WebhookControl, endpoint_key};
use tokio::sync::{mpsc, watch};

pub use config::{EndpointConfig, WebhooksSection};
use deliver::{Endpoint, EndpointDelivery, Sender};

/// The HTTP client of every delivery of the process: the SSRF guard as its
/// resolver, no redirects, the configured time limit.
pub fn client(section: &WebhooksSection) -> anyhow::Result<reqwest::Client> {
    let guard = Arc::new(section.guard().map_err(anyhow::Error::msg)?);
    Ok(reqwest::Client::builder()
        .dns_resolver(Arc::new(ssrf::GuardedResolver::new(guard)))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(section.timeout_ms))
        .user_agent(concat!("dispatch-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// Starts the city's deliveries: one task per endpoint, until the city stops
/// (the handle finishes once every delivery has).
pub fn start_city(city: &str, dispatch: Dispatch, section: &WebhooksSection, client: reqwest::Client) -> tokio::task::JoinHandle<()> {
    let sender = Sender {
        client,
        backoff: backoff::Backoff {
            first: Duration::from_millis(section.backoff_first_ms),
            max: Duration::from_millis(section.backoff_max_ms),
        },
        max_attempts: section.max_attempts,
        concurrency: section.concurrency,
    };
    let configured: Vec<Endpoint> = section
        .endpoints
        .iter()
        .filter(|e| e.serves(city))
        .map(|e| Endpoint {
            name: e.name.clone(),
            key: endpoint_key(&e.name),
            url: e.url.clone(),
            secrets: e.secrets.clone(),
            events: e.events.clone(),
        })
        .collect();
    let guard = section.guard().unwrap_or_default();
    tokio::spawn(supervise(city.to_owned(), dispatch, configured, guard, sender))
}

/// A running endpoint: how to stop it and how to ask it to replay.
struct Running {
    stop: watch::Sender<bool>,
    replay: mpsc::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn supervise(city: String, dispatch: Dispatch, configured: Vec<Endpoint>, guard: ssrf::Guard, sender: Sender) {
    let mut control = dispatch.webhook_control();
    let mut stopped = dispatch.stopped();
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut first = true;
    loop {
        if *stopped.borrow() {
            break;
        }
        let mut retry = false;
        match endpoints(&dispatch, &configured, &guard).await {
            Ok(wanted) => {
                if first {
                    forget_removed(&city, &dispatch, &wanted).await;
                    first = false;
                }
                running.retain(|name, r| {
                    let keep = wanted.iter().any(|e| &e.name == name);
                    if !keep {
                        r.stop.send_replace(true);
                    }
                    keep
                });
                for endpoint in wanted {
                    if running.contains_key(&endpoint.name) {
                        continue;
                    }
                    let (stop, stop_rx) = watch::channel(false);
                    let (replay, replay_rx) = mpsc::channel(4);
                    let name = endpoint.name.clone();
                    let delivery = EndpointDelivery::new(city.clone(), dispatch.clone(), endpoint, sender.clone());
                    let task = tokio::spawn(delivery.run(stop_rx, replay_rx));
                    running.insert(name, Running { stop, replay, task });
                }
            }
            Err(e) => {
                tracing::warn!(%city, %e, "webhook endpoints not read; trying again");
                retry = true;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(5)), if retry => {}
            message = control.recv() => match message {
                Ok(WebhookControl::Replay { endpoint }) => {
                    if let Some(r) = running.get(&endpoint) {
                        let _ = r.replay.try_send(());
                    }
                }
                Ok(WebhookControl::EndpointsChanged) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            _ = stopped.wait_for(|s| *s) => break,
        }
    }
    for r in running.values() {
        r.stop.send_replace(true);
    }
    for (_, r) in running {
        let _ = r.task.await;
    }
}

/// The configured endpoints serving the city, and those added through the
/// admin API (each checked again: `allow_networks` may have changed).
async fn endpoints(dispatch: &Dispatch, configured: &[Endpoint], guard: &ssrf::Guard) -> dispatch_actors::Result<Vec<Endpoint>> {
    let mut out = configured.to_vec();
    for e in dispatch.webhook_endpoints().await? {
        if out.iter().any(|c| c.name == e.name) {
            tracing::error!(endpoint = %e.name, "an endpoint added through the admin API has a configured endpoint's name: the configured one is used");
            continue;
        }
        if let Err(why) = guard.check_url(&e.url) {
            tracing::error!(endpoint = %e.name, %why, "an endpoint added through the admin API is refused now");
            continue;
        }
        out.push(Endpoint { key: endpoint_key(&e.name), name: e.name, url: e.url, secrets: e.secrets, events: e.events });
    }
    Ok(out)
}

/// Drops the cursors of endpoints that are gone, so the outbox need not wait for them.
async fn forget_removed(city: &str, dispatch: &Dispatch, wanted: &[Endpoint]) {
    let Ok(cursors) = dispatch.webhook_cursors().await else { return };
    for (key, cursor) in cursors {
        // Keys from 2^22 up are the city's own readers (its figures), not endpoints.
        if key < 1 << dispatch_actors::outbox::ENDPOINT_KEY_BITS && !wanted.iter().any(|e| e.key == key) {
            tracing::info!(%city, endpoint = %cursor.endpoint, "a webhook endpoint is no longer configured: its cursor is dropped");
            let _ = dispatch.delete_webhook_cursor(key).await;
        }
    }
}
