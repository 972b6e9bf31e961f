//! The workloads. Each connects its bots first (not measured), then calls
//! [`Ctx::begin`], drives load until [`Ctx::stopped`], and tears down.

pub(crate) mod chat;
pub(crate) mod connections;
pub(crate) mod gps;
pub(crate) mod map;
pub(crate) mod matching;
pub(crate) mod nearest;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use tokio::sync::watch;

use dispatch_engine::{GeoPoint, Trade};
use dispatch_protocol::{ClientMsg, TradeYears};

use crate::config::LoadConfig;
use crate::net::{Connector, Ws, call};
use crate::stats::Recorder;

/// Open-loop arrivals: the `n`th is due at `start + n / per_sec`, whether or
/// not earlier ones were answered (latency is measured from the due time, so
/// a slow server cannot hide behind a slowed schedule).
pub(crate) struct Pacer {
    start: tokio::time::Instant,
    per_sec: f64,
    stop: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Pacer {
    /// Waits until arrival `n` is due and returns when that was, or `None`
    /// once the run has stopped.
    pub(crate) async fn due(&mut self, n: u64) -> Option<Instant> {
        let at = self.start + Duration::from_secs_f64(n as f64 / self.per_sec);
        self.until_stopped(tokio::time::sleep_until(at)).await.map(|()| at.into_std())
    }

    /// `work`'s output, or `None` if the run stops first.
    pub(crate) async fn until_stopped<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            () = &mut self.stop => None,
            out = work => Some(out),
        }
    }
}

/// Trades every bot contractor practises and jobs are drawn from.
pub(crate) const TRADES: [Trade; 4] = [Trade::Plumbing, Trade::Electrical, Trade::Hvac, Trade::Locksmith];

/// Trades of background contractors: in the index, never matching a bot's job.
pub(crate) const BACKGROUND_TRADES: [Trade; 3] = [Trade::Roofing, Trade::Painting, Trade::Cleaning];

/// What a scenario runs with.
pub(crate) struct Ctx {
    pub config: LoadConfig,
    pub connector: Arc<Connector>,
    pub recorder: Arc<Recorder>,
    stop_tx: watch::Sender<bool>,
    stop: watch::Receiver<bool>,
    /// Server metrics when measuring started and when it stopped.
    pub server_at_warmup: Mutex<Option<BTreeMap<String, f64>>>,
    pub server_at_stop: Mutex<Option<BTreeMap<String, f64>>>,
    /// When measuring started and stopped.
    pub window: Mutex<Option<(Instant, Instant)>>,
    /// The server's CPU time used while measuring, if it could be read.
    pub server_cpu: Mutex<Option<Duration>>,
    /// Figures a scenario adds to the report (memory per connection…).
    pub extra: Mutex<BTreeMap<String, f64>>,
    /// First id of this run's bots (a server kept between runs sees new ones).
    pub id_base: u64,
    /// The server's resident memory, sampled while measuring (bytes).
    pub rss_samples: Mutex<Vec<f64>>,
    /// Job → log entries the server's acknowledgements imply at least (for the audit).
    pub acknowledged: Mutex<BTreeMap<u64, u64>>,
}

/// Samples the server's resident memory every `rss_sample_secs` until aborted.
async fn sample_rss(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(ctx.config.rss_sample_secs));
    loop {
        tick.tick().await;
        if let Ok(metrics) = crate::server::scrape(ctx.connector.target().addr).await
            && let Some(&rss) = metrics.get("dispatch_process_resident_bytes")
        {
            ctx.rss_samples.lock().unwrap_or_else(PoisonError::into_inner).push(rss);
        }
    }
}

impl Ctx {
    pub(crate) fn new(config: LoadConfig, connector: Connector) -> Arc<Self> {
        let (stop_tx, stop) = watch::channel(false);
        let warmup = Duration::from_secs_f64(config.warmup_secs);
        let id_base = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() % 100_000) * 10_000_000;
        Arc::new(Self {
            config,
            connector: Arc::new(connector),
            recorder: Recorder::new(warmup),
            stop_tx,
            stop,
            server_at_warmup: Mutex::default(),
            server_at_stop: Mutex::default(),
            window: Mutex::default(),
            server_cpu: Mutex::default(),
            extra: Mutex::default(),
            id_base,
            rss_samples: Mutex::default(),
            acknowledged: Mutex::default(),
        })
    }

    /// Notes that the server acknowledged what puts at least `entries` in `job`'s log.
    pub(crate) fn acknowledge(&self, job: u64, entries: u64) {
        let mut acknowledged = self.acknowledged.lock().unwrap_or_else(PoisonError::into_inner);
        let at_least = acknowledged.entry(job).or_default();
        *at_least = (*at_least).max(entries);
    }

    /// Notes a figure for the report.
    pub(crate) fn note(&self, name: &str, value: f64) {
        self.extra.lock().unwrap_or_else(PoisonError::into_inner).insert(name.to_owned(), value);
    }

    /// Setup is done: start the clock (warm-up, then the measured duration),
    /// print progress, and raise [`Ctx::stopped`] at the end.
    pub(crate) fn begin(self: &Arc<Self>) {
        self.recorder.start();
        let ctx = Arc::clone(self);
        tokio::spawn(async move {
            let warmup = Duration::from_secs_f64(ctx.config.warmup_secs);
            let duration = Duration::from_secs_f64(ctx.config.duration_secs);
            let started = tokio::time::Instant::now();
            let progress = Progress::new(&ctx);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            progress.until(&ctx, &mut tick, started, started + warmup).await;
            ctx.recorder.mark_warmup_done();
            let pid = ctx.connector.target().pid;
            let cpu_from = pid.and_then(crate::server::cpu_time);
            let own_cpu_from = crate::server::cpu_time(std::process::id());
            *ctx.server_at_warmup.lock().unwrap_or_else(PoisonError::into_inner) =
                crate::server::scrape(ctx.connector.target().addr).await.ok();
            let measuring_from = Instant::now();
            let sampler = (ctx.config.rss_sample_secs > 0.0).then(|| tokio::spawn(sample_rss(Arc::clone(&ctx))));
            progress.until(&ctx, &mut tick, started, started + warmup + duration).await;
            let measuring_to = Instant::now();
            if let Some(sampler) = sampler {
                sampler.abort();
                ctx.note_rss_spread();
            }
            if let (Some(from), Some(to)) = (cpu_from, pid.and_then(crate::server::cpu_time)) {
                *ctx.server_cpu.lock().unwrap_or_else(PoisonError::into_inner) = Some(to.saturating_sub(from));
            }
            // The harness's own load: past 0.9 of its cores it could not send what it claims.
            if let (Some(from), Some(to)) = (own_cpu_from, crate::server::cpu_time(std::process::id())) {
                let secs = measuring_to.duration_since(measuring_from).as_secs_f64().max(1e-9);
                ctx.note("harness_cpu_cores_busy", to.saturating_sub(from).as_secs_f64() / secs);
            }
            *ctx.server_at_stop.lock().unwrap_or_else(PoisonError::into_inner) =
                crate::server::scrape(ctx.connector.target().addr).await.ok();
            *ctx.window.lock().unwrap_or_else(PoisonError::into_inner) = Some((measuring_from, measuring_to));
            progress.finish(&ctx, started.elapsed());
            let _ = ctx.stop_tx.send(true);
        });
    }

    /// Notes the resident-memory samples' spread: min, max, median and the
    /// largest distance from the median in per cent.
    fn note_rss_spread(&self) {
        let mut samples = self.rss_samples.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if samples.is_empty() {
            return;
        }
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        let (min, max) = (samples[0], samples[samples.len() - 1]);
        let spread = ((max - median).max(median - min)) / median.max(1.0) * 100.0;
        self.note("rss_samples", samples.len() as f64);
        self.note("rss_min_mib", min / 1_048_576.0);
        self.note("rss_median_mib", median / 1_048_576.0);
        self.note("rss_max_mib", max / 1_048_576.0);
        self.note("rss_spread_pct", spread);
        self.note("rss_within_5pct", if spread <= 5.0 { 1.0 } else { 0.0 });
    }

    /// Open-loop pacing at `per_sec` arrivals a second, from now until the run stops.
    pub(crate) fn pacer(&self, per_sec: f64) -> Pacer {
        Pacer { start: tokio::time::Instant::now(), per_sec, stop: Box::pin(self.stopped()) }
    }

    /// Resolves once the run's time is up.
    pub(crate) fn stopped(&self) -> impl Future<Output = ()> + use<> {
        let mut stop = self.stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    }

    /// Whether the run's time is up.
    pub(crate) fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// A random point within the spread around the centre.
    pub(crate) fn random_point(&self, rng: &mut Rng) -> GeoPoint {
        let centre = GeoPoint::new(self.config.centre[0], self.config.centre[1]).unwrap_or_else(|_| unreachable!("validated"));
        let distance = self.config.spread_km * 1_000.0 * rng.unit().sqrt();
        centre.destination(rng.unit() * 360.0, distance)
    }

    /// Runs `make(i)` for `0..count` with bounded concurrency, at most
    /// `connect_per_sec` started per second; failures are counted as errors
    /// of kind `what` and left out.
    pub(crate) async fn connect_all<T, F, Fut>(&self, what: &'static str, count: usize, make: F) -> Vec<T>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let every = Duration::from_secs_f64(1.0 / self.config.connect_per_sec);
        let start = tokio::time::Instant::now();
        let made: Vec<Result<T>> = futures_util::stream::iter(0..count)
            .map(|i| {
                let fut = make(i);
                async move {
                    tokio::time::sleep_until(start + every * u32::try_from(i).unwrap_or(u32::MAX)).await;
                    fut.await
                }
            })
            .buffer_unordered(256)
            .collect()
            .await;
        let mut ok = Vec::with_capacity(count);
        for r in made {
            match r {
                Ok(t) => ok.push(t),
                Err(e) => {
                    self.recorder.error(format!("{what}: {}", first_line(&e)));
                }
            }
        }
        ok
    }
}

/// Contractor bots numbered `bots`, each registered and online at its own
/// random point, sockets open; failures are errors of kind `what`.
pub(crate) async fn contractors_online(
    ctx: &Arc<Ctx>,
    what: &'static str,
    bots: std::ops::Range<usize>,
    trades: &'static [Trade],
) -> Vec<(usize, GeoPoint, Ws)> {
    ctx.connect_all(what, bots.len(), |n| {
        let ctx = Arc::clone(ctx);
        let i = bots.start + n;
        async move {
            let mut rng = Rng::new(i as u64 + 1);
            let at = ctx.random_point(&mut rng);
            let mut ws = ctx.connector.connect(dispatch_protocol::Role::Contractor, ctx.id_base + i as u64).await?;
            register_online(&mut ws, at, trades).await?;
            Ok((i, at, ws))
        }
    })
    .await
}

/// Puts contractors numbered `bots` online, practising `trades`, in waves of a
/// few thousand whose sockets are closed once online (they stay on the map
/// and in the index), so their number is not capped by open files. Returns
/// how many made it.
pub(crate) async fn online_then_disconnect(
    ctx: &Arc<Ctx>,
    what: &'static str,
    bots: std::ops::Range<usize>,
    trades: &'static [Trade],
) -> usize {
    let mut loaded = 0;
    let mut from = bots.start;
    while from < bots.end {
        let to = (from + 4_000).min(bots.end);
        for (_, _, mut ws) in contractors_online(ctx, what, from..to, trades).await {
            let _ = futures_util::SinkExt::close(&mut ws).await;
            loaded += 1;
        }
        from = to;
    }
    loaded
}

/// Ends a windowed bot: waits (up to 5 s) for the answers still in flight,
/// closes the socket and lets its reader finish.
pub(crate) async fn drain_and_close(
    pending: &tokio::sync::Mutex<std::collections::VecDeque<Instant>>,
    tx: &mut crate::net::WsTx,
    reader: tokio::task::JoinHandle<()>,
) {
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while !pending.lock().await.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let _ = futures_util::SinkExt::close(tx).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
}

/// The first line of an error chain, for error kinds.
pub(crate) fn first_line(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    text.lines().next().unwrap_or("").chars().take(120).collect()
}

/// Registers a contractor bot practising `trades` and puts it online at `at`.
pub(crate) async fn register_online(ws: &mut Ws, at: GeoPoint, trades: &[Trade]) -> Result<()> {
    let trades = trades.iter().map(|&trade| TradeYears { trade, years: 5 }).collect();
    let register = ClientMsg::Register { name: "loadtest bot".into(), trades, hourly_rate: 8_000, service_radius_m: 50_000.0 };
    call(ws, "r", &register).await?;
    call(ws, "o", &ClientMsg::Online { lat: at.lat(), lng: at.lng() }).await?;
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// SplitMix64: small, seedable, good enough for load.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// The live progress line: a rewritten line on a terminal, a line every 5 s otherwise.
struct Progress {
    tty: bool,
    total: Duration,
}

impl Progress {
    fn new(ctx: &Ctx) -> Self {
        Self { tty: std::io::stderr().is_terminal(), total: Duration::from_secs_f64(ctx.config.warmup_secs + ctx.config.duration_secs) }
    }

    fn line(ctx: &Ctx, elapsed: Duration, total: Duration) -> String {
        let phase = if ctx.recorder.measuring() { "running" } else { "warm-up" };
        let counters = ctx.recorder.counters_now();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut parts: Vec<String> =
            counters.iter().filter(|(_, v)| **v > 0).map(|(k, v)| format!("{k} {v} ({:.0}/s)", *v as f64 / secs)).collect();
        parts.truncate(4);
        format!(
            "{phase} [{:>4.0}s / {:.0}s] {} · errors {}",
            elapsed.as_secs_f64(),
            total.as_secs_f64(),
            parts.join(" · "),
            ctx.recorder.error_count()
        )
    }

    fn print(&self, ctx: &Ctx, elapsed: Duration) {
        if self.tty {
            eprint!("\r\x1b[2K{}", Self::line(ctx, elapsed, self.total));
        } else if elapsed.as_secs().is_multiple_of(5) {
            eprintln!("{}", Self::line(ctx, elapsed, self.total));
        }
    }

    /// Prints progress on every tick until `deadline`.
    async fn until(&self, ctx: &Ctx, tick: &mut tokio::time::Interval, started: tokio::time::Instant, deadline: tokio::time::Instant) {
        tokio::select! {
            () = async { loop { tick.tick().await; self.print(ctx, started.elapsed()); } } => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    }

    fn finish(&self, ctx: &Ctx, elapsed: Duration) {
        if self.tty {
            eprintln!("\r\x1b[2K{}", Self::line(ctx, elapsed, self.total));
        }
    }
}
