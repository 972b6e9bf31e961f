//! HTTP and WebSocket on one port (hyper 1, HTTP/1.1 with upgrades).
//!
//! | route | what |
//! |---|---|
//! | `GET /healthz` | 200 while the process serves |
//! | `GET /readyz` | 200 when every city's actors run (`"status": "degraded"` while a store is unreachable and writes are buffered), else 503 |
//! | `GET /metrics` | Prometheus text |
//! | `POST /v1/tokens` | a token for `{role, sub, city}` — only with `--dev-auth` |
//! | `GET /v1/ws` | WebSocket upgrade; token in `Authorization: Bearer` or `?token=` |
//! | `GET /` | the live map page |
//! | `GET /v1/map-config` | what the map page needs: the tile URL, if any |
//! | `POST /v1/webhooks/stripe` | the card processor's webhooks, signed (`processor_webhooks.rs`) |

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role as WsRole, WebSocketConfig};

use dispatch_actors::Dispatch;
use dispatch_actors::storage::{Health, SnapshotStore};

use crate::auth::{Auth, Claims, Role};
use crate::cities::{Area, City};
use crate::config::ServeConfig;
use crate::port::Port;

/// The running gateway: its cities, auth and settings.
pub struct Gateway {
    pub(crate) cities: HashMap<String, Arc<City>>,
    pub(crate) auth: Auth,
    pub(crate) config: ServeConfig,
    pub(crate) metrics: PrometheusHandle,
    pub(crate) shutdown: watch::Receiver<bool>,
    shutdown_tx: watch::Sender<bool>,
    /// Whether the runtime is behind (connections then thin their GPS).
    pub(crate) overload: Arc<crate::overload::Overload>,
    /// In a cluster: the NATS connection (gateway and engine roles).
    nats: Option<async_nats::Client>,
    /// `dispatch engine`: the node whose leases `/readyz` reports.
    engine: Option<Arc<crate::cluster::EngineNode>>,
    /// The cities' webhook deliveries: they end with the cities, and are awaited before `run` returns.
    webhook_tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// How often histogram samples are folded into their summaries.
const METRICS_UPKEEP: Duration = Duration::from_secs(2);

/// The process-wide Prometheus recorder (the `metrics` facade has one global
/// recorder; every gateway in the process, tests included, shares it).
fn prometheus() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics shows only this exporter's view");
            }
            // Histogram samples wait in the recorder until upkeep folds them
            // into their summaries; without it they pile up between scrapes
            // (a soak found the server growing by megabytes a second).
            let upkeep = handle.clone();
            let started = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
                loop {
                    std::thread::sleep(METRICS_UPKEEP);
                    upkeep.run_upkeep();
                }
            });
            if let Err(e) = started {
                tracing::warn!(%e, "no metrics upkeep thread: histograms are folded only when /metrics is scraped");
            }
            handle
        })
        .clone()
}

impl Gateway {
    /// Opens each city's store and starts its actors (rehydrating what it held).
    pub async fn start(config: ServeConfig) -> anyhow::Result<Arc<Gateway>> {
        config.validate()?;
        // The recorder first: opening a store already sets gauges.
        prometheus();
        let mut stores = HashMap::new();
        let opener = crate::stores::StoreOpener::new(&config).await?;
        for city in &config.cities {
            stores.insert(city.name.clone(), opener.open_for_serving(&city.name).await?);
        }
        drop(opener);
        Self::start_on(config, stores).await
    }

    /// Starts each city's actors on the store given for it (for tests that
    /// bring their own, such as a failing one).
    pub async fn start_on(config: ServeConfig, mut stores: HashMap<String, Arc<dyn SnapshotStore>>) -> anyhow::Result<Arc<Gateway>> {
        config.validate()?;
        prometheus();
        let mut cities = HashMap::new();
        let mut webhook_tasks = Vec::new();
        let webhooks = crate::webhooks::client(&config.webhooks)?;
        for city in &config.cities {
            let store = stores.remove(&city.name).ok_or_else(|| anyhow::anyhow!("no store for city {}", city.name))?;
            let (dispatch, report) = Dispatch::start(config.dispatch_config(&city.name)?, store).await?;
            tracing::info!(city = %city.name, jobs = report.jobs, contractors = report.contractors, "city started");
            webhook_tasks.push(crate::webhooks::start_city(&city.name, dispatch.clone(), &config.webhooks, webhooks.clone()));
            let area = Arc::new(Area::new(city, config.h3_resolution).map_err(anyhow::Error::msg)?);
            tracing::info!(city = %city.name, cells = area.cells.len(), "city area covered");
            let router = crate::router::Router::start_local(dispatch.clone());
            cities.insert(city.name.clone(), Arc::new(City { area, port: Port::Local(dispatch), router }));
        }
        let gateway = Self::assemble(config, cities, None, None)?;
        gateway.webhook_tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(webhook_tasks);
        Ok(gateway)
    }

    fn assemble(
        config: ServeConfig,
        cities: HashMap<String, Arc<City>>,
        nats: Option<async_nats::Client>,
        engine: Option<Arc<crate::cluster::EngineNode>>,
    ) -> anyhow::Result<Arc<Gateway>> {
        // --dev-auth without a secret: tokens only this process issues (POST /v1/tokens) and reads.
        let secret = if config.jwt_secret.is_empty() { DEV_ONLY_SECRET.to_owned() } else { config.jwt_secret.clone() };
        let auth = config.auth.auth(&secret)?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let overload = crate::overload::Overload::start();
        let metrics = prometheus();
        let every = Duration::from_secs(config.auth.reload_secs);
        tokio::spawn(crate::auth_config::watch_keys(auth.clone(), every, shutdown.clone()));
        Ok(Arc::new(Gateway {
            cities,
            auth,
            config,
            metrics,
            shutdown,
            shutdown_tx,
            overload,
            nats,
            engine,
            webhook_tasks: std::sync::Mutex::default(),
        }))
    }

    /// `dispatch gateway`: every configured city reached through its owner over `nats`.
    pub async fn start_remote(config: ServeConfig, nats: async_nats::Client) -> anyhow::Result<Arc<Gateway>> {
        config.validate()?;
        prometheus();
        let timeout = Duration::from_millis(config.cluster.request_timeout_ms);
        let mut cities = HashMap::new();
        for city in &config.cities {
            let area = Arc::new(Area::new(city, config.h3_resolution).map_err(anyhow::Error::msg)?);
            let router = crate::router::Router::new();
            let remote = crate::cluster::RemoteCity::start(nats.clone(), &city.name, Arc::clone(&router), timeout).await?;
            cities.insert(city.name.clone(), Arc::new(City { area, port: Port::Remote(remote), router }));
        }
        Self::assemble(config, cities, Some(nats), None)
    }

    /// `dispatch engine`: no WebSockets, only health, readiness (the cities it
    /// owns) and metrics, beside an engine node that owns cities.
    pub async fn start_engine(config: ServeConfig, nats: async_nats::Client) -> anyhow::Result<Arc<Gateway>> {
        prometheus();
        let engine = crate::cluster::EngineNode::start(&config, nats.clone()).await?;
        Self::assemble(config, HashMap::new(), Some(nats), Some(engine))
    }

    /// The engine node, in `dispatch engine`.
    #[must_use]
    pub fn engine(&self) -> Option<&Arc<crate::cluster::EngineNode>> {
        self.engine.as_ref()
    }

    /// The token service, for tests and the demo.
    #[must_use]
    pub fn auth(&self) -> &Auth {
        &self.auth
    }
}

/// The secret of `--dev-auth` tokens when none is configured.
const DEV_ONLY_SECRET: &str = "dev-only-secret: tokens from POST /v1/tokens, never for production";

type Body = Full<Bytes>;

/// Bytes read from a WebSocket at a time (see the upgrade for why it is small).
pub const WS_READ_BUFFER: usize = 2 * 1024;

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    respond(status, "application/json", value.to_string())
}

/// Serves `listener` until `shutdown` resolves; then closes every WebSocket
/// with 1001, waits for the sessions, and stops the cities (flushing snapshots).
pub async fn run(listener: TcpListener, gateway: Arc<Gateway>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    // Every session holds a clone: the count tells when they have all gone.
    let sessions = Arc::new(());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(%e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small frames (GPS, acks) must not wait for Nagle's algorithm.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, %e, "could not set TCP_NODELAY");
                }
                let gw = Arc::clone(&gateway);
                let sessions = sessions.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(req, Arc::clone(&gw), sessions.clone()));
                    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades();
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down: closing sockets");
    let _ = gateway.shutdown_tx.send(true);
    // Sessions hold a clone of the tracker; wait until they have all gone
    // (they leave over the drain period).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10 + gateway.config.drain_secs);
    while Arc::strong_count(&sessions) > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for city in gateway.cities.values() {
        if let Some(dispatch) = city.local() {
            dispatch.clone().shutdown().await;
        }
        city.router.stop();
    }
    let deliveries = std::mem::take(&mut *gateway.webhook_tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    for task in deliveries {
        let _ = task.await;
    }
    if let Some(engine) = &gateway.engine {
        engine.shutdown().await;
    }
    if let Some(nats) = &gateway.nats {
        let _ = nats.flush().await;
    }
    Ok(())
}

async fn handle(mut req: Request<Incoming>, gw: Arc<Gateway>, sessions: Arc<()>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    if path.starts_with("/v1/admin/") || path == "/v1/openapi.json" {
        return Ok(crate::admin::serve(req, gw).await);
    }
    let response = match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => respond(StatusCode::OK, "text/plain", "ok\n"),
        (&Method::GET, "/readyz") => readyz(&gw).await,
        (&Method::GET, "/metrics") => {
            if let Some(bytes) = resident_bytes() {
                metrics::gauge!("dispatch_process_resident_bytes").set(bytes as f64);
            }
            respond(StatusCode::OK, "text/plain; version=0.0.4", gw.metrics.render())
        }
        (&Method::POST, "/v1/tokens") => tokens(req, &gw).await,
        (&Method::POST, "/v1/webhooks/stripe") => {
            let signature = req.headers().get("stripe-signature").and_then(|v| v.to_str().ok()).map(str::to_owned);
            match Limited::new(req.into_body(), 256 * 1024).collect().await {
                Ok(body) => {
                    let (status, answer) = crate::processor_webhooks::receive(&gw, signature.as_deref(), &body.to_bytes()).await;
                    json(status, &answer)
                }
                Err(e) => json(StatusCode::BAD_REQUEST, &serde_json::json!({"error": format!("cannot read body: {e}")})),
            }
        }
        (&Method::GET, "/v1/ws") => upgrade(&mut req, gw, sessions),
        (&Method::GET, "/") => respond(StatusCode::OK, "text/html; charset=utf-8", crate::MAP_PAGE),
        (&Method::GET, "/v1/map-config") => json(StatusCode::OK, &serde_json::json!({"tile_url": gw.config.tile_url})),
        (_, "/healthz" | "/readyz" | "/metrics" | "/v1/tokens" | "/v1/ws" | "/") => {
            json(StatusCode::METHOD_NOT_ALLOWED, &serde_json::json!({"error": "method not allowed"}))
        }
        _ => json(StatusCode::NOT_FOUND, &serde_json::json!({"error": format!("no route {path}")})),
    };
    Ok(response)
}

/// This process's resident memory (`VmRSS`), where `/proc` tells it.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// How long `/readyz` waits for a healthy store's ping.
const READYZ_PING: Duration = Duration::from_millis(800);

async fn readyz(gw: &Gateway) -> Response<Body> {
    if let Some(nats) = &gw.nats
        && nats.connection_state() != async_nats::connection::State::Connected
    {
        return json(StatusCode::SERVICE_UNAVAILABLE, &serde_json::json!({"ready": false, "error": "not connected to NATS"}));
    }
    if let Some(engine) = &gw.engine {
        let owned = engine.owned().borrow().clone();
        return json(StatusCode::OK, &serde_json::json!({"ready": true, "role": "engine", "node": engine.name(), "owned": owned}));
    }
    let mut cities = serde_json::Map::new();
    let mut degraded = false;
    for (name, city) in &gw.cities {
        let Some(dispatch) = city.local() else {
            let owner = city.port.owner();
            cities.insert(
                name.clone(),
                serde_json::json!({"owner": owner.map(|(node, epoch)| serde_json::json!({"node": node, "epoch": epoch}))}),
            );
            continue;
        };
        if !dispatch.is_running() {
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"ready": false, "city": name, "error": "actors not running"}),
            );
        }
        // An unreachable store does not take the city out of service: it
        // serves from memory and buffers writes, and says so here.
        // A store already known degraded is not pinged again; a healthy one
        // must answer within READYZ_PING, so a hanging store cannot stall
        // the probe past its own timeout.
        let store = dispatch.store();
        let health = match store.health() {
            Health::Degraded { buffered, reason } => serde_json::json!({"status": "degraded", "buffered": buffered, "error": reason}),
            Health::Healthy => match tokio::time::timeout(READYZ_PING, store.ping()).await {
                Ok(Ok(())) => serde_json::json!({"status": "ok"}),
                Ok(Err(e)) => serde_json::json!({"status": "degraded", "buffered": 0, "error": e.to_string()}),
                Err(_) => {
                    serde_json::json!({"status": "degraded", "buffered": 0, "error": format!("store did not answer a ping within {READYZ_PING:?}")})
                }
            },
        };
        degraded |= health["status"] == "degraded";
        cities.insert(name.clone(), serde_json::json!({"cells": city.area.cells.len(), "store": health}));
    }
    let status = if degraded { "degraded" } else { "ok" };
    json(StatusCode::OK, &serde_json::json!({"ready": true, "status": status, "cities": cities}))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    role: Role,
    sub: u64,
    city: String,
    #[serde(default)]
    ttl_secs: Option<u64>,
}

async fn tokens(req: Request<Incoming>, gw: &Gateway) -> Response<Body> {
    if !gw.config.dev_auth {
        return json(StatusCode::NOT_FOUND, &serde_json::json!({"error": "token issuing is only served with --dev-auth"}));
    }
    let body = match Limited::new(req.into_body(), 16 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return json(StatusCode::BAD_REQUEST, &serde_json::json!({"error": format!("cannot read body: {e}")})),
    };
    let asked: TokenRequest = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return json(StatusCode::BAD_REQUEST, &serde_json::json!({"error": format!("bad token request: {e}")})),
    };
    if !gw.cities.contains_key(&asked.city) {
        return json(StatusCode::BAD_REQUEST, &serde_json::json!({"error": format!("unknown city {}", asked.city)}));
    }
    match gw.auth.issue(asked.role, asked.sub, &asked.city, asked.ttl_secs.unwrap_or(24 * 3600)) {
        Ok(token) => json(StatusCode::OK, &serde_json::json!({"token": token})),
        Err(e) => json(StatusCode::INTERNAL_SERVER_ERROR, &serde_json::json!({"error": e.to_string()})),
    }
}

/// The token of a request: `Authorization: Bearer …` or `?token=…`.
fn token_of(req: &Request<Incoming>) -> Option<String> {
    if let Some(bearer) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")) {
        return Some(bearer.trim().to_owned());
    }
    req.uri().query()?.split('&').find_map(|pair| pair.strip_prefix("token=")).map(str::to_owned)
}

fn unauthorized(why: &str) -> Response<Body> {
    let mut r = json(StatusCode::UNAUTHORIZED, &serde_json::json!({"error": why}));
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

fn upgrade(req: &mut Request<Incoming>, gw: Arc<Gateway>, sessions: Arc<()>) -> Response<Body> {
    let is_ws = req.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).filter(|_| is_ws).cloned() else {
        return json(StatusCode::BAD_REQUEST, &serde_json::json!({"error": "expected a WebSocket upgrade"}));
    };
    let Some(token) = token_of(req) else { return unauthorized("missing token") };
    let claims: Claims = match gw.auth.verify(&token) {
        Ok(c) => c,
        Err(e) => return unauthorized(&e.to_string()),
    };
    if claims.role == Role::Admin {
        return json(
            StatusCode::FORBIDDEN,
            &serde_json::json!({"error": "an admin's token is for the admin API (/v1/admin/…), not the WebSocket"}),
        );
    }
    if !gw.cities.contains_key(&claims.city) {
        return unauthorized(&format!("unknown city {}", claims.city));
    }
    let on_upgrade = hyper::upgrade::on(req);
    let max = gw.config.max_frame_bytes;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                // tungstenite zero-fills its whole read buffer on the first read: at the
                // default 128 KiB that is 128 KiB resident per connection. Frames here are
                // small; WS_READ_BUFFER holds dozens of binary GPS fixes, and larger frames
                // still arrive whole (the buffer grows for them).
                let config =
                    WebSocketConfig::default().max_message_size(Some(max)).max_frame_size(Some(max)).read_buffer_size(WS_READ_BUFFER);
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), WsRole::Server, Some(config)).await;
                crate::session::run(ws, claims, gw).await;
                drop(sessions);
            }
            Err(e) => tracing::debug!(%e, "upgrade failed"),
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    r
}
