//! The peer in the same run: Redis GEO. The same workloads as `gps` and
//! `nearest`, on the same dataset shape and connection count, right after
//! ours, so the ratio compares two measurements from one machine and one
//! moment.
//!
//! - GPS ingest → `GEOADD fleet lng lat member`: periodic at the same period,
//!   or as fast as possible with the same `batch` (one pipeline) and `window`
//!   (pipelines in flight per connection).
//! - Nearest-10 → `GEOSEARCH fleet FROMLONLAT lng lat BYRADIUS r m ASC COUNT k`
//!   with `r` covering the whole dataset, so the answer is the true k nearest,
//!   as ours is (Redis has no k-nearest without a radius); `peer_radius_km`
//!   sets a smaller one, Redis's best case.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use redis::aio::MultiplexedConnection;

use crate::config::{LoadConfig, Scenario};
use crate::scenarios::Rng;
use crate::stats::{Recorder, Summary};

const KEY: &str = "dispatch:loadtest:fleet";

/// A `redis-server` the harness started; killed when dropped.
pub struct RedisServer {
    child: tokio::process::Child,
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
}

impl RedisServer {
    /// Starts `bin` on a free loopback port, without persistence, and waits for PONG.
    /// `cpus`: pinned there (`taskset -c`), as the server under test is, so both are measured on the same core.
    pub async fn start(bin: &Path, cpus: Option<&str>) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = crate::server::pinned(bin, cpus)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--maxclients", "100000", "--protected-mode", "no", "--daemonize", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = Self { child, url: format!("redis://127.0.0.1:{port}") };
        let client = redis::Client::open(server.url.as_str())?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut con) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut con).await.is_ok()
            {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                anyhow::bail!("redis-server exited during start-up: {status}");
            }
            anyhow::ensure!(Instant::now() < deadline, "redis-server did not answer within 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl RedisServer {
    /// The server's process id.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// The peer's run: its own figures over the same warm-up and duration.
pub struct PeerRun {
    /// What Redis did.
    pub summary: Summary,
    /// Redis's CPU time while measuring, when it is a process the harness started.
    pub cpu: Option<Duration>,
    /// Which Redis commands.
    pub workload: &'static str,
}

/// Runs the peer workload matching `config.scenario` against Redis at `url`.
pub async fn run(config: &LoadConfig, url: &str, pid: Option<u32>) -> Result<PeerRun> {
    let client = redis::Client::open(url).with_context(|| format!("redis url {url}"))?;
    let mut admin = client.get_multiplexed_async_connection().await.context("connecting to redis")?;
    redis::cmd("DEL").arg(KEY).query_async::<i64>(&mut admin).await?;
    let connections = match config.scenario {
        Scenario::Gps => config.contractors,
        Scenario::Nearest => config.dispatchers,
        other => anyhow::bail!("no Redis peer for {}", other.name()),
    };
    let mut cons = Vec::with_capacity(connections);
    for _ in 0..connections {
        cons.push(client.get_multiplexed_async_connection().await.context("opening a redis connection")?);
    }
    // The same dataset shape: `contractors` members at random points in the same spread.
    let mut rng = Rng::new(1);
    let centre = dispatch_engine::GeoPoint::new(config.centre[0], config.centre[1])?;
    let point = |rng: &mut Rng| centre.destination(rng.unit() * 360.0, config.spread_km * 1_000.0 * rng.unit().sqrt());
    for chunk in (0..config.contractors).collect::<Vec<_>>().chunks(1_000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            let at = point(&mut rng);
            pipe.cmd("GEOADD").arg(KEY).arg(at.lng()).arg(at.lat()).arg(i).ignore();
        }
        pipe.query_async::<()>(&mut admin).await?;
    }
    let recorder = Recorder::new(Duration::from_secs_f64(config.warmup_secs));
    recorder.start();
    let stop_at = Instant::now() + Duration::from_secs_f64(config.warmup_secs + config.duration_secs);
    let workload = match config.scenario {
        Scenario::Gps => "GEOADD",
        _ => "GEOSEARCH … ASC COUNT k",
    };
    let mut tasks = Vec::new();
    for (c, con) in cons.into_iter().enumerate() {
        let lanes = if config.scenario == Scenario::Gps && config.gps_every_secs > 0.0 { 1 } else { config.window };
        for lane in 0..lanes {
            let (config, recorder, con) = (config.clone(), Arc::clone(&recorder), con.clone());
            let seed = (c * 64 + lane) as u64 + 1_000;
            tasks.push(tokio::spawn(async move {
                let result = match config.scenario {
                    Scenario::Gps => geoadd(&config, &recorder, con, c, stop_at).await,
                    _ => geosearch(&config, &recorder, con, seed, stop_at).await,
                };
                if let Err(e) = result {
                    recorder.error(format!("redis: {e}"));
                }
            }));
        }
    }
    let warmup_done = Instant::now() + Duration::from_secs_f64(config.warmup_secs);
    tokio::time::sleep_until(warmup_done.into()).await;
    recorder.mark_warmup_done();
    let cpu_from = pid.and_then(crate::server::cpu_time);
    for task in tasks {
        let _ = task.await;
    }
    let cpu = cpu_from.and_then(|from| Some(pid.and_then(crate::server::cpu_time)?.saturating_sub(from)));
    let measured = Instant::now().saturating_duration_since(warmup_done);
    Ok(PeerRun { summary: recorder.summary(measured), workload, cpu })
}

async fn geoadd(config: &LoadConfig, recorder: &Recorder, mut con: MultiplexedConnection, member: usize, stop_at: Instant) -> Result<()> {
    let sent = recorder.counter("gps_sent");
    let rtt = recorder.series("gps_rtt");
    let centre = dispatch_engine::GeoPoint::new(config.centre[0], config.centre[1])?;
    let start = centre.destination((member as f64 * 37.0) % 360.0, 1_000.0);
    let mut n = 0u64;
    if config.gps_every_secs > 0.0 {
        let period = Duration::from_secs_f64(config.gps_every_secs);
        let first = Instant::now() + period.mul_f64((member as f64 * 0.618_034) % 1.0);
        loop {
            let due = first + period.mul_f64(n as f64);
            if due >= stop_at {
                return Ok(());
            }
            tokio::time::sleep_until(due.into()).await;
            let at = start.destination(90.0, n as f64 * 5.0);
            redis::cmd("GEOADD").arg(KEY).arg(at.lng()).arg(at.lat()).arg(member).query_async::<i64>(&mut con).await?;
            rtt.since(due);
            sent.fetch_add(1, Ordering::Relaxed);
            n += 1;
        }
    }
    while Instant::now() < stop_at {
        let mut pipe = redis::pipe();
        for _ in 0..config.batch {
            let at = start.destination(90.0, n as f64 * 0.005);
            pipe.cmd("GEOADD").arg(KEY).arg(at.lng()).arg(at.lat()).arg(member).ignore();
            n += 1;
        }
        let asked = Instant::now();
        pipe.query_async::<()>(&mut con).await?;
        rtt.since(asked);
        sent.fetch_add(config.batch as u64, Ordering::Relaxed);
    }
    Ok(())
}

async fn geosearch(config: &LoadConfig, recorder: &Recorder, mut con: MultiplexedConnection, seed: u64, stop_at: Instant) -> Result<()> {
    let latency = recorder.series("nearest");
    let answered = recorder.counter("queries_answered");
    let found = recorder.counter("neighbours_returned");
    let mut rng = Rng::new(seed);
    let centre = dispatch_engine::GeoPoint::new(config.centre[0], config.centre[1])?;
    // Every point of the dataset is within twice the spread of any query point.
    let radius_m = config.peer_radius_km.map_or(config.spread_km * 2_000.0 + 1_000.0, |r| r * 1_000.0);
    while Instant::now() < stop_at {
        let at = centre.destination(rng.unit() * 360.0, config.spread_km * 1_000.0 * rng.unit().sqrt());
        let asked = Instant::now();
        let hits: Vec<String> = redis::cmd("GEOSEARCH")
            .arg(KEY)
            .arg("FROMLONLAT")
            .arg(at.lng())
            .arg(at.lat())
            .arg("BYRADIUS")
            .arg(radius_m)
            .arg("m")
            .arg("ASC")
            .arg("COUNT")
            .arg(config.k)
            .query_async(&mut con)
            .await?;
        latency.since(asked);
        answered.fetch_add(1, Ordering::Relaxed);
        found.fetch_add(hits.len() as u64, Ordering::Relaxed);
    }
    Ok(())
}
