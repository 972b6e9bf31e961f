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
use tokio::sync::watch;

use dispatch_engine::payment::PaymentNotice;
use dispatch_engine::{GeoPoint, Trade};
use dispatch_protocol::client::{self, Ws};
use dispatch_protocol::{AckResult, Auth, ClientMsg, ErrorCode, Event, JobProgress, Role, ServerMsg, TradeYears, UrgencyWire};

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
    /// Posts refused because the card declined (one in twenty posts pays with Stripe's declining test card).
    pub declined: AtomicU64,
    /// Charged to customers' cards, cents.
    pub charged_cents: AtomicU64,
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

async fn connect(addr: SocketAddr, auth: &Auth, role: Role, sub: u64, city: &str) -> anyhow::Result<Ws> {
    let token = auth.issue(role, sub, city, 24 * 3600)?;
    Ok(client::connect(addr, &token, None).await?.0)
}

/// A JSON text frame for `msg`, with `id` if given.
fn frame(id: Option<&str>, msg: &ClientMsg) -> anyhow::Result<tokio_tungstenite::tungstenite::Message> {
    client::frame(false, id, msg)
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
    let trades: Vec<TradeYears> =
        (0..1 + rng.below(2)).map(|_| TradeYears { trade: Trade::ALL[rng.below(10) as usize], years: rng.below(25) as u8 }).collect();
    let register =
        ClientMsg::Register { name: format!("Contractor {id}"), trades, hourly_rate: 6_000 + rng.below(6_000), service_radius_m: 25_000.0 };
    tx.send(frame(None, &register)?).await?;
    let mut at = random_point(&config.city, &mut rng);
    tx.send(frame(None, &ClientMsg::Online { lat: at.lat(), lng: at.lng() })?).await?;
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
                let gps = ClientMsg::Gps { lat: at.lat(), lng: at.lng(), heading: None, speed: Some(speed), accuracy: None, ts: now_ms() };
                tx.send(frame(None, &gps)?).await?;
                match phase {
                    Phase::Wander if at.distance_m(target) < 1.0 => target = random_point(&config.city, &mut rng),
                    Phase::Driving { job, site } if at.distance_m(site) < 60.0 => {
                        tx.send(frame(None, &ClientMsg::JobStatus { job, status: JobProgress::OnSite })?).await?;
                        let (lo, hi) = config.work_secs;
                        let work = Duration::from_secs(lo + rng.below(hi.saturating_sub(lo) + 1));
                        phase = Phase::Working { job, until: tokio::time::Instant::now() + work };
                    }
                    Phase::Working { job, until } if tokio::time::Instant::now() >= until => {
                        tx.send(frame(None, &ClientMsg::JobStatus { job, status: JobProgress::Completed })?).await?;
                        stats.completed.fetch_add(1, Ordering::Relaxed);
                        phase = Phase::Wander;
                        target = random_point(&config.city, &mut rng);
                    }
                    _ => {}
                }
            }
            incoming = client::next_msg(&mut rx) => match incoming? {
                None => break,
                Some(ServerMsg::Offer { job, site, .. }) => {
                    let free = matches!(phase, Phase::Wander);
                    if free && rng.unit() < config.accept_probability {
                        offered.insert(job, site);
                        tx.send(frame(Some(&format!("a{job}")), &ClientMsg::Accept { job, request_id: Some(format!("accept-{job}")) })?).await?;
                    } else {
                        tx.send(frame(None, &ClientMsg::Decline { job })?).await?;
                    }
                }
                Some(ServerMsg::Ack { id: Some(id), result: AckResult::JobState(reply) }) if id.starts_with('a') => {
                    if let Some(site) = offered.remove(&reply.job) {
                        stats.accepted.fetch_add(1, Ordering::Relaxed);
                        tx.send(frame(None, &ClientMsg::JobStatus { job: reply.job, status: JobProgress::EnRoute })?).await?;
                        phase = Phase::Driving { job: reply.job, site };
                        target = site;
                    }
                }
                Some(ServerMsg::Error { id: Some(id), .. }) if id.starts_with('a') => {
                    // The offer lapsed or went elsewhere before the accept landed.
                    offered.clear();
                }
                Some(_) => {}
            },
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
                    0..=1 => UrgencyWire::Emergency,
                    2 => {
                        let start = now_ms() + 3 * 3_600_000;
                        UrgencyWire::Scheduled { start, end: start + 2 * 3_600_000 }
                    }
                    _ => UrgencyWire::Today,
                };
                let card = if rng.below(20) == 0 { "pm_card_chargeDeclined" } else { "pm_card_visa" };
                let post = ClientMsg::PostJob {
                    trade: Trade::ALL[trade],
                    lat: at.lat(),
                    lng: at.lng(),
                    urgency,
                    description: descriptions[trade].into(),
                    budget: None,
                    request_id: None,
                    payment_method: Some(card.into()),
                };
                tx.send(frame(None, &post)?).await?;
                stats.posted.fetch_add(1, Ordering::Relaxed);
            }
            incoming = client::next_msg(&mut rx) => match incoming? {
                None => break,
                Some(ServerMsg::Event { job, event: Event::Completed { .. }, .. }) => {
                    let stars = 3 + rng.below(3);
                    tx.send(frame(None, &ClientMsg::Rate { job, stars: stars as f64, request_id: None })?).await?;
                    stats.rated.fetch_add(1, Ordering::Relaxed);
                }
                Some(ServerMsg::Event { event: Event::Payment(PaymentNotice::Captured { amount }), .. }) => {
                    stats.charged_cents.fetch_add(amount.0, Ordering::Relaxed);
                }
                Some(ServerMsg::Error { code: ErrorCode::PaymentDeclined, .. }) => {
                    stats.declined.fetch_add(1, Ordering::Relaxed);
                }
                Some(_) => {}
            },
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
