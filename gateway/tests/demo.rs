//! The simulated city drives a real server over real WebSockets: jobs get
//! posted, offered, accepted, driven to, worked, completed and rated.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use common::*;
use dispatch_gateway::cities::CityConfig;
use dispatch_gateway::demo::{SimConfig, SimStats, simulate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_simulated_city_completes_and_rates_jobs() -> Result<()> {
    simulated_city(None).await
}

/// The same city with its store on the CQL cluster of `SCYLLA_URI`
/// (`dispatch demo --storage scylla`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_simulated_city_runs_on_scylla() -> Result<()> {
    let Some(scylla) = scylla_config("demo")? else { return Ok(()) };
    simulated_city(Some(scylla)).await
}

async fn simulated_city(scylla: Option<dispatch_gateway::storage::ScyllaConfig>) -> Result<()> {
    // A city of about 1 km² so drives are short.
    let city = CityConfig::boxed("tiny", [DSM.0, DSM.1], [DSM.0 - 0.004, DSM.1 - 0.006, DSM.0 + 0.004, DSM.1 + 0.006]);
    let server = Server::start_with(|c| {
        c.cities = vec![city.clone()];
        c.gps_per_sec = 50;
        if let Some(scylla) = scylla {
            c.storage = dispatch_gateway::config::StorageKind::Scylla;
            c.scylla = scylla;
        }
    })
    .await?;
    let config = SimConfig {
        contractors: 20,
        job_every: Duration::from_millis(300),
        gps_every: Duration::from_millis(250),
        speed_mps: 50.0,
        accept_probability: 0.8,
        work_secs: (1, 2),
        ..SimConfig::for_city(city)
    };
    let stats = Arc::new(SimStats::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sim = tokio::spawn(simulate(server.addr, server.gateway.auth().clone(), config, Arc::clone(&stats), stopped));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while stats.rated.load(Ordering::Relaxed) < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(true);
    sim.await?;
    let (posted, accepted, completed, rated) = (
        stats.posted.load(Ordering::Relaxed),
        stats.accepted.load(Ordering::Relaxed),
        stats.completed.load(Ordering::Relaxed),
        stats.rated.load(Ordering::Relaxed),
    );
    assert_eq!(stats.online.load(Ordering::Relaxed), 20);
    assert!(posted > 0 && accepted > 0, "posted {posted}, accepted {accepted}");
    assert!(completed >= 3 && rated >= 3, "completed {completed}, rated {rated}");
    // Completed jobs are charged; the customers heard each charge.
    assert!(stats.charged_cents.load(Ordering::Relaxed) > 0, "nothing charged for {completed} completed jobs");
    server.stop().await
}
