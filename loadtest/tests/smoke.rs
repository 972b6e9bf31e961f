//! A few seconds of every scenario against a real server on port 0: each run
//! completes with zero errors and non-empty histograms. The Redis peer runs
//! too when `redis-server` is installed (`.ci/run` installs it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use dispatch_gateway::config::{ServeConfig, StorageKind};
use dispatch_gateway::storage::{Kind, MemoryStore, SnapshotStore};
use dispatch_gateway::{Auth, Gateway};
use dispatch_loadtest::{LoadConfig, Peer, Report, Scenario, Target};

const SECRET: &str = "smoke-secret-of-at-least-thirty-two-bytes";

/// A gateway in this process, with the harness's raised limits.
async fn server() -> Result<(Target, tokio::sync::oneshot::Sender<()>)> {
    server_on(HashMap::new()).await
}

/// [`server`] with the given cities' stores (the others in memory).
async fn server_on(mut stores: HashMap<String, Arc<dyn SnapshotStore>>) -> Result<(Target, tokio::sync::oneshot::Sender<()>)> {
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse()?,
        storage: StorageKind::Memory,
        jwt_secret: SECRET.into(),
        gps_per_sec: 100_000,
        chat_per_sec: 10_000,
        ..ServeConfig::default()
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    for city in &config.cities {
        stores.entry(city.name.clone()).or_insert_with(|| Arc::new(MemoryStore::new()));
    }
    let gateway: Arc<Gateway> = Gateway::start_on(config, stores).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(dispatch_gateway::run(listener, gateway, async move {
        let _ = stopped.await;
    }));
    // In this process: its CPU time would include the bots', so it is not measured.
    Ok((Target { addr, auth: Auth::new(SECRET.as_bytes()), city: "des-moines".into(), pid: None }, stop))
}

fn quick(scenario: Scenario, dir: &tempfile::TempDir) -> Result<LoadConfig> {
    let mut c = LoadConfig::preset(scenario)?;
    c.duration_secs = 2.0;
    c.warmup_secs = 0.5;
    c.contractors = 40;
    c.customers = 4;
    c.dispatchers = 3;
    c.chat_pairs = 4;
    c.connections = 300;
    c.spread_km = 5.0;
    c.report = Some(dir.path().join(format!("{}.json", scenario.name())));
    Ok(c)
}

async fn smoke(config: LoadConfig, series: &[&str]) -> Result<Report> {
    let (target, stop) = server().await?;
    let report = dispatch_loadtest::run(config.clone(), target).await?;
    let _ = stop.send(());
    print!("{}", report.table());
    assert_eq!(report.error_count(), 0, "errors: {:?}", report.ours.errors);
    for name in series {
        let latency = report.ours.latencies.get(*name).unwrap_or_else(|| panic!("no {name} series"));
        assert!(latency.count > 0, "{name} is empty");
        assert!(latency.p50_ms > 0.0 && latency.p50_ms <= latency.max_ms);
    }
    // The JSON report was written and reads back.
    let path = config.report.clone().unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    assert_eq!(json["scenario"], config.scenario.name());
    Ok(report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gps_streams_fixes_the_server_ingests() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let report = smoke(quick(Scenario::Gps, &dir)?, &["gps_rtt"]).await?;
    assert!(report.server["gps_ingested_per_sec"] > 0.0);
    assert!(report.ours.counters["gps_sent"].measured > 0);
    // A contractor behind on a batch gets its newest fix; the older ones are
    // shed and counted, and what was applied is what was taken less those.
    let shed = report.server.get("gps_dropped_per_sec").copied().unwrap_or(0.0);
    let applied = report.server["gps_applied_per_sec"];
    assert!(applied > 0.0 && (applied + shed - report.server["gps_ingested_per_sec"]).abs() < 1e-6, "{:?}", report.server);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_gps_in_json_frames_is_timed_from_each_fix_due_time() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = quick(Scenario::Gps, &dir)?;
    config.gps_every_secs = 0.5;
    config.binary = false;
    let report = smoke(config, &["gps_rtt"]).await?;
    // 40 contractors, a fix every 0.5 s, over 2 s: about 160 fixes.
    let sent = report.ours.counters["gps_sent"].measured;
    assert!((100..=240).contains(&sent), "{sent}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_measures_offers_and_acceptance_notices() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = quick(Scenario::Match, &dir)?;
    config.jobs_per_sec = 20.0;
    config.gps_every_secs = 1.0;
    config.background_contractors = 60;
    let report = smoke(config, &["offer", "accept_notified"]).await?;
    assert!(report.ours.counters["jobs_completed"].total > 0);
    // Online without sockets, of other trades: in the index, never offered a job.
    assert_eq!(report.extra["background_contractors"], 60.0);
    Ok(())
}

/// The audit's bookkeeping against a real server: every job the bots saw
/// acknowledged is in the store with at least the log entries the
/// acknowledgements imply; and the audit notices a job that went missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_acknowledgements_are_all_in_the_store_and_the_audit_sees_a_loss() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = quick(Scenario::Match, &dir)?;
    config.jobs_per_sec = 20.0;
    let store = Arc::new(MemoryStore::new());
    let (target, stop) = server_on(HashMap::from([("des-moines".to_owned(), store.clone() as Arc<dyn SnapshotStore>)])).await?;
    let report = dispatch_loadtest::run(config, target).await?;
    let _ = stop.send(());
    let completed = report.acknowledged.values().filter(|&&entries| entries == 6).count();
    assert!(report.acknowledged.len() > 10 && completed > 0, "posts and completions acknowledged: {:?}", report.acknowledged);
    let audit = dispatch_loadtest::audit::check(&*store, &report.acknowledged).await;
    assert_eq!(audit.problems, Vec::<String>::new());
    assert!(audit.entries_found >= audit.entries_acknowledged && audit.jobs == report.acknowledged.len());
    let (&lost, _) = report.acknowledged.iter().next().unwrap_or((&0, &0));
    store.delete(Kind::Job, lost).await?;
    let audit = dispatch_loadtest::audit::check(&*store, &report.acknowledged).await;
    assert_eq!(audit.problems, vec![format!("job {lost}: no snapshot")]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_delivers_every_message_across_reconnects() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = quick(Scenario::Chat, &dir)?;
    config.chats_per_sec = 40.0;
    config.reconnect_every_secs = 0.4;
    config.duration_secs = 3.0;
    let report = smoke(config, &["chat_delivery", "resume"]).await?;
    assert!(report.ours.counters["resumes"].total >= 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_times_the_probe_in_every_dispatchers_deltas() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = quick(Scenario::Map, &dir)?;
    config.jobs_per_sec = 5.0;
    config.duration_secs = 3.0;
    let report = smoke(config, &["map_lag"]).await?;
    // Deltas come at most once a second: the lag is under about a second and a half.
    assert!(report.ours.latencies["map_lag"].max_ms < 1_500.0, "{}", report.ours.latencies["map_lag"].max_ms);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_report_the_servers_memory_per_connection() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let report = smoke(quick(Scenario::Connections, &dir)?, &["connect"]).await?;
    assert_eq!(report.extra["connections"], 300.0);
    assert!(report.extra.contains_key("server_bytes_per_connection"));
    assert!(report.extra["server_rss_after_bytes"] > 0.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nearest_answers_ten_neighbours_and_can_write_a_plot() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = quick(Scenario::Nearest, &dir)?;
    let plot = dir.path().join("nearest.png");
    if font_installed() {
        config.plot = Some(plot.clone());
    }
    let report = smoke(config, &["nearest"]).await?;
    let answered = report.ours.counters["queries_answered"].total;
    assert_eq!(report.ours.counters["neighbours_returned"].total, answered * 10);
    if font_installed() {
        let png = std::fs::read(&plot)?;
        assert_eq!(&png[1..4], b"PNG");
    } else {
        println!("plot skipped: no TrueType font installed");
    }
    Ok(())
}

fn font_installed() -> bool {
    ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"]
        .iter()
        .any(|p| std::path::Path::new(p).exists())
}

fn redis_server() -> Option<PathBuf> {
    ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].iter().map(PathBuf::from).find(|p| p.exists())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_peer_runs_the_same_workloads_and_gives_ratios() -> Result<()> {
    let Some(redis) = redis_server() else {
        println!("skipped: redis-server is not installed (apt-get install redis-server; .ci/run does)");
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    for (scenario, series, ratio) in [(Scenario::Gps, "gps_rtt", "gps_ingest_rate"), (Scenario::Nearest, "nearest", "nearest_rate")] {
        let mut config = quick(scenario, &dir)?;
        config.peer = Some(Peer::Redis);
        config.redis_server = Some(redis.clone());
        let report = smoke(config, &[series]).await?;
        let peer = report.peer.as_ref().expect("a peer run");
        assert!(peer.summary.errors.is_empty(), "{:?}", peer.summary.errors);
        assert!(peer.summary.latencies[series].count > 0);
        assert!(report.ratios[ratio] > 0.0 && report.ratios[ratio].is_finite());
    }
    Ok(())
}
