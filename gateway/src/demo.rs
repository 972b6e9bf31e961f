//! `dispatch demo`: a server with the embedded store in a fresh data
//! directory and dev auth on, plus a simulated city that talks to it over
//! real WebSockets — the reference client, not a shortcut into the engine.
//!
//! Contractors of mixed trades drive toward waypoints at city speeds and send
//! GPS every few seconds; customers post jobs of mixed trades and urgencies;
//! contractors accept or decline with set probabilities, drive to the job,
//! work for a while and complete; customers rate them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use dispatch_engine::{GeoPoint, Trade};

use crate::auth::{Auth, Role};
use crate::cities::CityConfig;

/// How the simulated city behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The city (name, centre, area).
    pub city: CityConfig,
    /// Contractors on the road.
    pub contractors: usize,
    /// One job is posted this often.
    pub job_every: Duration,
    /// Contractors send GPS this often.
    pub gps_every: Duration,
    /// Driving speed, m/s.
    pub speed_mps: f64,
    /// Chance a contractor accepts an offer.
    pub accept_probability: f64,
    /// Time on site, seconds (uniform in this range).
    pub work_secs: (u64, u64),
    /// Seed for the simulation's random choices.
    pub seed: u64,
}

impl SimConfig {
    /// The defaults for `city`: 500 contractors, a job every 2 s, GPS every 4 s.
    #[must_use]
    pub fn for_city(city: CityConfig) -> Self {
        Self {
            city,
            contractors: 500,
            job_every: Duration::from_secs(2),
            gps_every: Duration::from_secs(4),
            speed_mps: 12.0,
            accept_probability: 0.8,
            work_secs: (20, 60),
            seed: 7,
        }
    }
}

/// What the simulation has done so far.
#[derive(Debug, Default)]
pub struct SimStats {
    /// Contractors connected and online.
    pub online: AtomicU64,
    /// Jobs posted.
    pub posted: AtomicU64,
    /// Offers accepted.
    pub accepted: AtomicU64,
    /// Jobs completed.
    pub completed: AtomicU64,
    /// Ratings given.
    pub rated: AtomicU64,
}

/// SplitMix64: small, seedable, good enough for a simulation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A random point in the city's bounding box (inside its polygon for the default boxes).
fn random_point(city: &CityConfig, rng: &mut Rng) -> GeoPoint {
    let (mut s, mut w, mut n, mut e) = (90.0f64, 180.0f64, -90.0f64, -180.0f64);
    for &[lat, lng] in &city.polygon {
        s = s.min(lat);
        n = n.max(lat);
        w = w.min(lng);
        e = e.max(lng);
    }
    // Stay off the edges so fixes never wander out of the area.
    let (dl, dg) = ((n - s) * 0.05, (e - w) * 0.05);
    let lat = s + dl + rng.unit() * (n - s - 2.0 * dl);
    let lng = w + dg + rng.unit() * (e - w - 2.0 * dg);
    GeoPoint::new(lat, lng)
        .or_else(|_| GeoPoint::new(city.centre[0], city.centre[1]))
        .unwrap_or_else(|_| unreachable!("city polygons and centres are validated at start"))
}

fn bearing(from: GeoPoint, to: GeoPoint) -> f64 {
    let (la1, la2) = (from.lat().to_radians(), to.lat().to_radians());
    let dl = (to.lng() - from.lng()).to_radians();
    let y = dl.sin() * la2.cos();
    let x = la1.cos() * la2.sin() - la1.sin() * la2.cos() * dl.cos();
    (y.atan2(x).to_degrees() + 360.0) % 360.0
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: SocketAddr, auth: &Auth, role: Role, sub: u64, city: &str) -> anyhow::Result<Ws> {
    let token = auth.issue(role, sub, city, 24 * 3600)?;
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws?token={token}")).await?;
    Ok(ws)
}

fn frame(v: &Value) -> Message {
    Message::text(v.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// What a contractor bot is doing.
enum Phase {
    Wander,
    Driving { job: u64, site: GeoPoint },
    Working { job: u64, until: tokio::time::Instant },
}

async fn contractor_bot(
    addr: SocketAddr,
    auth: Arc<Auth>,
    config: Arc<SimConfig>,
    id: u64,
    stats: Arc<SimStats>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut rng = Rng(config.seed ^ id.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let ws = connect(addr, &auth, Role::Contractor, id, &config.city.name).await?;
    let (mut tx, mut rx) = ws.split();
    let trades: Vec<Value> =
        (0..1 + rng.below(2)).map(|_| json!({"trade": Trade::ALL[rng.below(10) as usize], "years": rng.below(25)})).collect();
    tx.send(frame(&json!({"type": "register", "name": format!("Contractor {id}"), "trades": trades,
        "hourly_rate": 6_000 + rng.below(6_000), "service_radius_m": 25_000.0})))
        .await?;
    let mut at = random_point(&config.city, &mut rng);
    tx.send(frame(&json!({"type": "online", "lat": at.lat(), "lng": at.lng()}))).await?;
    stats.online.fetch_add(1, Ordering::Relaxed);
    let mut target = random_point(&config.city, &mut rng);
    let mut phase = Phase::Wander;
    // Sites of offers accepted but not yet confirmed, by job.
    let mut offered: std::collections::HashMap<u64, GeoPoint> = std::collections::HashMap::new();
    // Spread the fixes over the interval so the bots do not all send at once.
    let offset = Duration::from_millis(rng.below(config.gps_every.as_millis() as u64));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, config.gps_every);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                let step = config.speed_mps * config.gps_every.as_secs_f64();
                let moving = !matches!(phase, Phase::Working { .. });
                if moving {
                    let left = at.distance_m(target);
                    at = if left <= step { target } else { at.destination(bearing(at, target), step) };
                }
                let speed = if moving { config.speed_mps } else { 0.0 };
                tx.send(frame(&json!({"type": "gps", "lat": at.lat(), "lng": at.lng(), "speed": speed, "ts": now_ms()}))).await?;
                match phase {
                    Phase::Wander if at.distance_m(target) < 1.0 => target = random_point(&config.city, &mut rng),
                    Phase::Driving { job, site } if at.distance_m(site) < 60.0 => {
                        tx.send(frame(&json!({"type": "job_status", "job": job, "status": "on_site"}))).await?;
                        let (lo, hi) = config.work_secs;
                        let work = Duration::from_secs(lo + rng.below(hi.saturating_sub(lo) + 1));
                        phase = Phase::Working { job, until: tokio::time::Instant::now() + work };
                    }
                    Phase::Working { job, until } if tokio::time::Instant::now() >= until => {
                        tx.send(frame(&json!({"type": "job_status", "job": job, "status": "completed"}))).await?;
                        stats.completed.fetch_add(1, Ordering::Relaxed);
                        phase = Phase::Wander;
                        target = random_point(&config.city, &mut rng);
                    }
                    _ => {}
                }
            }
            incoming = rx.next() => {
                let Some(Ok(Message::Text(text))) = incoming else {
                    if incoming.is_none() { break } else { continue }
                };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                let job = v["job"].as_u64().unwrap_or(0);
                if v["type"] == "offer" {
                    let free = matches!(phase, Phase::Wander);
                    let site = GeoPoint::new(v["site"]["lat"].as_f64().unwrap_or(f64::NAN), v["site"]["lng"].as_f64().unwrap_or(f64::NAN));
                    if let (true, Ok(site)) = (free && rng.unit() < config.accept_probability, site) {
                        offered.insert(job, site);
                        tx.send(frame(&json!({"type": "accept", "id": format!("a{job}"), "job": job}))).await?;
                    } else {
                        tx.send(frame(&json!({"type": "decline", "job": job}))).await?;
                    }
                } else if v["type"] == "ack" && v["id"].as_str().is_some_and(|id| id.starts_with('a')) {
                    let job = v["result"]["job"].as_u64().unwrap_or(0);
                    if let Some(site) = offered.remove(&job) {
                        stats.accepted.fetch_add(1, Ordering::Relaxed);
                        tx.send(frame(&json!({"type": "job_status", "job": job, "status": "en_route"}))).await?;
                        phase = Phase::Driving { job, site };
                        target = site;
                    }
                } else if v["type"] == "error" && v["id"].as_str().is_some_and(|id| id.starts_with('a')) {
                    // The offer lapsed or went elsewhere before the accept landed.
                    offered.clear();
                }
            }
        }
    }
    Ok(())
}

async fn customers(
    addr: SocketAddr,
    auth: Arc<Auth>,
    config: Arc<SimConfig>,
    stats: Arc<SimStats>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut rng = Rng(config.seed ^ 0xC057);
    let ws = connect(addr, &auth, Role::Customer, 1, &config.city.name).await?;
    let (mut tx, mut rx) = ws.split();
    let mut post = tokio::time::interval(config.job_every);
    let descriptions = [
        "leaking pipe",
        "no heat",
        "outlet sparks",
        "door sticks",
        "roof leak",
        "repaint kitchen",
        "deep clean",
        "dryer broken",
        "locked out",
        "odd jobs",
    ];
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = post.tick() => {
                let trade = rng.below(10) as usize;
                let at = random_point(&config.city, &mut rng);
                let urgency = match rng.below(10) {
                    0..=1 => json!("emergency"),
                    2 => {
                        let start = now_ms() + 3 * 3_600_000;
                        json!({"scheduled": {"start": start, "end": start + 2 * 3_600_000}})
                    }
                    _ => json!("today"),
                };
                tx.send(frame(&json!({"type": "post_job", "trade": Trade::ALL[trade], "lat": at.lat(), "lng": at.lng(),
                    "urgency": urgency, "description": descriptions[trade]}))).await?;
                stats.posted.fetch_add(1, Ordering::Relaxed);
            }
            incoming = rx.next() => {
                let Some(Ok(Message::Text(text))) = incoming else {
                    if incoming.is_none() { break } else { continue }
                };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                if v["type"] == "event" && v["event"]["completed"].is_object() {
                    let stars = 3 + rng.below(3);
                    tx.send(frame(&json!({"type": "rate", "job": v["job"], "stars": stars}))).await?;
                    stats.rated.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    Ok(())
}

/// Runs the simulated city against the server at `addr` until `stop` turns true.
pub async fn simulate(addr: SocketAddr, auth: Auth, config: SimConfig, stats: Arc<SimStats>, stop: watch::Receiver<bool>) {
    let (auth, config) = (Arc::new(auth), Arc::new(config));
    let mut tasks = tokio::task::JoinSet::new();
    for id in 1..=config.contractors as u64 {
        let (auth, config, stats, stop) = (Arc::clone(&auth), Arc::clone(&config), Arc::clone(&stats), stop.clone());
        tasks.spawn(async move {
            if let Err(e) = contractor_bot(addr, auth, config, id, stats, stop).await {
                tracing::debug!(contractor = id, %e, "simulated contractor stopped");
            }
        });
        if id % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let (auth2, config2, stats2, stop2) = (Arc::clone(&auth), Arc::clone(&config), Arc::clone(&stats), stop.clone());
    tasks.spawn(async move {
        if let Err(e) = customers(addr, auth2, config2, stats2, stop2).await {
            tracing::warn!(%e, "simulated customers stopped");
        }
    });
    while tasks.join_next().await.is_some() {}
}
