//! # dispatch-loadtest — the bundled load-test harness
//!
//! Real WebSocket bots against a running gateway (or one the harness starts),
//! open-loop arrivals, `hdrhistogram` latencies, and a peer measured in the
//! same run (Redis GEO).
//!
//! | module | what lives there |
//! |---|---|
//! | [`config`] | [`LoadConfig`] and [`Scenario`]: TOML presets (`presets/*.toml`), a user file, flags |
//! | `scenarios` | the workloads: `gps`, `match`, `chat`, `map`, `connections`, `nearest` |
//! | [`net`] | bot connections: tokens, loopback source addresses, frames in both formats |
//! | [`stats`] | [`Recorder`]: counters, latency histograms with a per-second timeline, errors by kind |
//! | [`report`] | [`Report`]: the summary table, the JSON file, the PNG plot |
//! | [`server`] | the server under test: `dispatch serve` in a child process, `/metrics` scraping |
//! | [`peer`] | Redis: started from its binary, GEOADD and GEOSEARCH workloads |
//! | [`audit`] | after a run: every write the server acknowledged is in its store (`--audit`) |
//! | [`cli`] | the `dispatch-loadtest` command line (`src/bin/dispatch-loadtest.rs` calls [`cli::main`]) |

pub mod audit;
pub mod cli;
pub mod config;
pub mod net;
pub mod peer;
pub mod report;
mod scenarios;
pub mod server;
pub mod stats;

use std::collections::BTreeMap;
use std::sync::PoisonError;

pub use config::{LoadConfig, Peer, Scenario};
pub use net::{Connector, Target};
pub use report::Report;
pub use stats::Recorder;

/// Runs `config`'s scenario against `target`, then its peer if asked, and
/// returns the report (also written to `config.report` / `config.plot`).
pub async fn run(config: LoadConfig, target: Target) -> anyhow::Result<Report> {
    config.validate()?;
    let connector = Connector::new(target, config.source_addrs);
    let ctx = scenarios::Ctx::new(config.clone(), connector);
    match config.scenario {
        Scenario::Gps => scenarios::gps::run(&ctx).await?,
        Scenario::Match => scenarios::matching::run(&ctx).await?,
        Scenario::Chat => scenarios::chat::run(&ctx).await?,
        Scenario::Map => scenarios::map::run(&ctx).await?,
        Scenario::Connections => scenarios::connections::run(&ctx).await?,
        Scenario::Nearest => scenarios::nearest::run(&ctx).await?,
    }
    let window = ctx.window.lock().unwrap_or_else(PoisonError::into_inner).map(|(from, to)| to - from);
    let measured = window.unwrap_or_else(|| std::time::Duration::from_secs_f64(config.duration_secs));
    let ours = ctx.recorder.summary(measured);
    let mut server = server_rates(&ctx, measured.as_secs_f64());
    if let Some(cpu) = *ctx.server_cpu.lock().unwrap_or_else(PoisonError::into_inner) {
        let secs = measured.as_secs_f64().max(1e-9);
        server.insert("cpu_cores_busy".to_owned(), cpu.as_secs_f64() / secs);
        // The server's CPU time over the window, divided by each kind of work
        // (each figure carries all of it: an upper bound per unit).
        let cpu_ms = cpu.as_secs_f64() * 1e3;
        if let Some(fixes) = server.get("gps_ingested_per_sec").map(|r| r * secs).filter(|n| *n > 0.0) {
            server.insert("cpu_ms_per_1000_fixes".to_owned(), cpu_ms / (fixes / 1e3));
        }
        if let Some(jobs) = server.get("jobs_posted_per_sec").map(|r| r * secs).filter(|n| *n > 0.0) {
            server.insert("cpu_ms_per_job".to_owned(), cpu_ms / jobs);
        }
    }
    let extra = ctx.extra.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let acknowledged = std::mem::take(&mut *ctx.acknowledged.lock().unwrap_or_else(PoisonError::into_inner));
    drop(ctx);

    let mut peer = None;
    if config.peer == Some(Peer::Redis) {
        let started = match &config.redis_server {
            Some(bin) if config.redis_url.is_none() => Some(peer::RedisServer::start(bin, config.server_cpus.as_deref()).await?),
            _ => None,
        };
        let url = started.as_ref().map(|s| s.url.clone()).or_else(|| config.redis_url.clone()).unwrap_or_default();
        let run = peer::run(&config, &url, started.as_ref().and_then(peer::RedisServer::pid)).await?;
        let cpu_cores_busy = run.cpu.map(|cpu| cpu.as_secs_f64() / run.summary.measured_secs.max(1e-9));
        peer = Some(report::PeerReport { name: format!("redis {}", run.workload), summary: run.summary, cpu_cores_busy });
    }
    let ratios = peer.as_ref().map(|p| ratios(config.scenario, &ours, &server, p)).unwrap_or_default();
    let report = Report {
        scenario: config.scenario.name().to_owned(),
        config: config.clone(),
        ours,
        server,
        extra,
        peer,
        ratios,
        acknowledged,
        audit: None,
    };
    if let Some(path) = &config.report {
        report.write_json(path)?;
    }
    if let Some(path) = &config.plot {
        report.write_plot(path)?;
    }
    Ok(report)
}

/// The server's counters over the measured window, per second.
fn server_rates(ctx: &scenarios::Ctx, secs: f64) -> BTreeMap<String, f64> {
    let before = ctx.server_at_warmup.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let after = ctx.server_at_stop.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let (Some(before), Some(after)) = (before, after) else { return BTreeMap::new() };
    let mut out = BTreeMap::new();
    for (name, label) in [
        ("dispatch_gps_ingested_total", "gps_ingested_per_sec"),
        ("dispatch_gps_dropped_total", "gps_dropped_per_sec"),
        ("dispatch_gps_dropped_total{reason=\"superseded\"}", "gps_superseded_per_sec"),
        // Shed by the session while the server's runtime lagged.
        ("dispatch_gps_dropped_total{reason=\"overload\"}", "gps_shed_overload_per_sec"),
        ("dispatch_overload_episodes_total", "overload_episodes_per_sec"),
        ("dispatch_ws_messages_in_total", "messages_in_per_sec"),
        ("dispatch_ws_messages_out_total", "messages_out_per_sec"),
        ("dispatch_jobs_posted_total", "jobs_posted_per_sec"),
        // Store statements retried after a transient error (a node down, a timeout).
        ("dispatch_store_retries_total", "store_retries_per_sec"),
        // Attempts the CQL driver made again inside one statement (another node, a broken connection).
        ("dispatch_scylla_retries_total", "driver_retries_per_sec"),
    ] {
        if let Some(a) = after.get(name) {
            out.insert(label.to_owned(), (a - before.get(name).copied().unwrap_or(0.0)) / secs.max(1e-9));
        }
    }
    // How long the store took to make a write durable: the window's mean, and
    // the exporter's recent quantiles at the stop.
    let delta = |name: &str| Some(after.get(name)? - before.get(name).copied().unwrap_or(0.0));
    if let (Some(sum), Some(count)) = (delta("dispatch_store_commit_seconds_sum"), delta("dispatch_store_commit_seconds_count"))
        && count > 0.0
    {
        out.insert("store_commit_mean_ms".to_owned(), sum / count * 1e3);
        out.insert("store_commits_per_sec".to_owned(), count / secs.max(1e-9));
        if let Some(writes) = delta("dispatch_store_commit_writes_sum") {
            out.insert("store_writes_per_commit".to_owned(), writes / count);
        }
    }
    // The exporter's recent quantiles at the stop: the store's commits, and
    // the server's own view of an offer (from the job's posting to the frame
    // handed to the contractor's socket), which leaves out the customer's
    // frame waiting to be read and everything on the harness's side.
    for (series, q, label) in [
        ("dispatch_store_commit_seconds", "0.5", "store_commit_p50_ms"),
        ("dispatch_store_commit_seconds", "0.99", "store_commit_p99_ms"),
        ("dispatch_offer_latency_seconds", "0.5", "offer_at_socket_p50_ms"),
        ("dispatch_offer_latency_seconds", "0.99", "offer_at_socket_p99_ms"),
    ] {
        if let Some(v) = after.get(&format!("{series}:{q}")) {
            out.insert(label.to_owned(), v * 1e3);
        }
    }
    // Fixes a contractor actor applied: taken, less those shed because a
    // newer fix of the same contractor came while they waited.
    if let Some(ingested) = out.get("gps_ingested_per_sec").copied() {
        let shed = out.get("gps_superseded_per_sec").copied().unwrap_or(0.0);
        out.insert("gps_applied_per_sec".to_owned(), (ingested - shed).max(0.0));
    }
    if let Some(rss) = after.get("dispatch_process_resident_bytes") {
        out.insert("resident_mib_at_end".to_owned(), rss / (1024.0 * 1024.0));
    }
    out
}

/// ours / peer for the figures both measured.
fn ratios(
    scenario: Scenario,
    ours: &stats::Summary,
    server: &BTreeMap<String, f64>,
    peer_run: &report::PeerReport,
) -> BTreeMap<String, f64> {
    let peer = &peer_run.summary;
    let mut out = BTreeMap::new();
    // Work per CPU-second: what each server did with the CPU it used (both share the machine with the harness).
    let per_cpu = |rate: Option<f64>, busy: Option<f64>| Some(rate? / busy.filter(|b| *b > 0.0)?);
    let rate = |s: &stats::Summary, name: &str| s.counters.get(name).map(|c| c.per_sec);
    match scenario {
        Scenario::Gps => {
            // Ours is what the server took in (parsed, authorized, validated and
            // handed to the contractor, where a newer fix of the same phone may
            // supersede it); theirs is what Redis acknowledged. What the
            // contractors applied is compared too: with bursts of fixes per phone
            // most are superseded, by design, so that figure is far lower.
            let peer_per_cpu = per_cpu(rate(peer, "gps_sent"), peer_run.cpu_cores_busy);
            let taken = server.get("gps_ingested_per_sec").copied().or_else(|| rate(ours, "gps_sent"));
            if let (Some(a), Some(b)) = (taken, rate(peer, "gps_sent")) {
                out.insert("gps_ingest_rate".to_owned(), a / b.max(1e-9));
            }
            let busy = server.get("cpu_cores_busy").copied();
            if let (Some(a), Some(b)) = (per_cpu(taken, busy), peer_per_cpu) {
                out.insert("gps_per_cpu_second".to_owned(), a / b.max(1e-9));
            }
            if let (Some(a), Some(b)) = (per_cpu(server.get("gps_applied_per_sec").copied(), busy), peer_per_cpu) {
                out.insert("gps_applied_per_cpu_second".to_owned(), a / b.max(1e-9));
            }
            if let (Some(a), Some(b)) = (ours.latencies.get("gps_rtt"), peer.latencies.get("gps_rtt")) {
                out.insert("gps_rtt_p50 (lower is better)".to_owned(), a.p50_ms / b.p50_ms.max(1e-9));
            }
        }
        Scenario::Nearest => {
            if let (Some(a), Some(b)) = (rate(ours, "queries_answered"), rate(peer, "queries_answered")) {
                out.insert("nearest_rate".to_owned(), a / b.max(1e-9));
            }
            let ours_per_cpu = per_cpu(rate(ours, "queries_answered"), server.get("cpu_cores_busy").copied());
            if let (Some(a), Some(b)) = (ours_per_cpu, per_cpu(rate(peer, "queries_answered"), peer_run.cpu_cores_busy)) {
                out.insert("nearest_per_cpu_second".to_owned(), a / b.max(1e-9));
            }
            if let (Some(a), Some(b)) = (ours.latencies.get("nearest"), peer.latencies.get("nearest")) {
                out.insert("nearest_p50 (lower is better)".to_owned(), a.p50_ms / b.p50_ms.max(1e-9));
            }
        }
        _ => {}
    }
    out
}
