//! The `dispatch-loadtest` command line: a scenario's preset, then a TOML
//! file (`--config`), then flags. Without `--target` the harness starts
//! `dispatch serve` itself (the binary beside it, or `--server-bin`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::Report;
use crate::config::{LoadConfig, Peer, Scenario, ServerPayments, ServerStorage};

/// Load-test the dispatch engine with real WebSocket bots.
#[derive(Debug, Parser)]
#[command(name = "dispatch-loadtest", version, about)]
pub struct Cli {
    /// The workload.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// A TOML file overriding the scenario's preset.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A running server, HOST:PORT (else the harness starts one).
    #[arg(long, env = "DISPATCH_TARGET")]
    pub target: Option<SocketAddr>,
    /// The running server's JWT secret (to sign the bots' tokens).
    #[arg(long, env = "DISPATCH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// The `dispatch` binary to start (default: the one beside this one).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Where the started server keeps snapshots.
    #[arg(long, value_enum)]
    pub server_storage: Option<ServerStorage>,
    /// The started server's card processor: the sandbox (its default) or none.
    #[arg(long, value_enum)]
    pub server_payments: Option<ServerPayments>,
    /// The cluster for `--server-storage scylla`: `scylla://host:9042[,host:port…]`.
    #[arg(long, env = "SCYLLA_URI")]
    pub scylla_uri: Option<String>,
    /// Pin the started server to these CPUs (`taskset -c` list, e.g. 0).
    #[arg(long)]
    pub server_cpus: Option<String>,
    /// Pin the harness to these CPUs (e.g. 1).
    #[arg(long)]
    pub harness_cpus: Option<String>,
    /// After the run, read the started server's store back: every acknowledged write must be there (`match`).
    #[arg(long)]
    pub audit: bool,
    /// Seconds measured.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Sample the server's resident memory every this many seconds (0: off).
    #[arg(long)]
    pub rss_sample_secs: Option<f64>,
    /// Seconds of warm-up before measuring.
    #[arg(long)]
    pub warmup: Option<f64>,
    /// The city in the tokens.
    #[arg(long)]
    pub city: Option<String>,
    /// Centre of the bots' area, LAT,LNG.
    #[arg(long, value_delimiter = ',', num_args = 1, allow_negative_numbers = true)]
    pub centre: Option<Vec<f64>>,
    /// Radius of the bots' area, km.
    #[arg(long)]
    pub spread_km: Option<f64>,
    /// Contractor connections (the dataset, for `nearest`).
    #[arg(long)]
    pub contractors: Option<usize>,
    /// Seconds between GPS fixes per contractor (0: as fast as possible).
    #[arg(long)]
    pub gps_every: Option<f64>,
    /// GPS as JSON text frames instead of binary.
    #[arg(long)]
    pub json: bool,
    /// Fast GPS: fixes per ping.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Requests in flight per connection when as fast as possible.
    #[arg(long)]
    pub window: Option<usize>,
    /// Contractors online without a socket, of trades no job asks for (match, map).
    #[arg(long)]
    pub background_contractors: Option<usize>,
    /// Customer connections.
    #[arg(long)]
    pub customers: Option<usize>,
    /// Jobs posted per second.
    #[arg(long)]
    pub jobs_per_sec: Option<f64>,
    /// Chat pairs.
    #[arg(long)]
    pub chat_pairs: Option<usize>,
    /// Chat messages per second.
    #[arg(long)]
    pub chats_per_sec: Option<f64>,
    /// Seconds between contractor reconnect-and-resume cycles (0: never).
    #[arg(long)]
    pub reconnect_every: Option<f64>,
    /// Dispatcher connections.
    #[arg(long)]
    pub dispatchers: Option<usize>,
    /// Nearest queries per second (0: as fast as answered).
    #[arg(long)]
    pub queries_per_sec: Option<f64>,
    /// Neighbours per nearest query.
    #[arg(long)]
    pub k: Option<usize>,
    /// Idle connections.
    #[arg(long)]
    pub connections: Option<usize>,
    /// New connections per second.
    #[arg(long)]
    pub connect_per_sec: Option<f64>,
    /// Source addresses 127.0.0.1 … 127.0.0.N.
    #[arg(long)]
    pub source_addrs: Option<u8>,
    /// JSON report path (default: `loadtest-<scenario>.json`).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// PNG plot of latency over time.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Run the same workload against a peer in the same run.
    #[arg(long, value_enum)]
    pub peer: Option<Peer>,
    /// `redis-server` binary to start for the peer.
    #[arg(long)]
    pub redis_server: Option<PathBuf>,
    /// A running Redis for the peer.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// The peer's GEOSEARCH radius, km (default: the whole dataset).
    #[arg(long)]
    pub peer_radius_km: Option<f64>,
}

impl Cli {
    /// The run's configuration: preset, then `--config`, then flags.
    pub fn resolve(&self) -> anyhow::Result<LoadConfig> {
        let mut c = LoadConfig::preset(self.scenario)?;
        if let Some(path) = &self.config {
            c = LoadConfig::overlay_file(&c, path)?;
            anyhow::ensure!(
                c.scenario == self.scenario,
                "{} is for scenario {}, not {}",
                path.display(),
                c.scenario.name(),
                self.scenario.name()
            );
        }
        macro_rules! set {
            ($($flag:ident => $field:ident),* $(,)?) => { $( if let Some(v) = self.$flag.clone() { c.$field = v; } )* };
        }
        set!(duration => duration_secs, warmup => warmup_secs, city => city, spread_km => spread_km, contractors => contractors,
             gps_every => gps_every_secs, batch => batch, window => window, customers => customers,
             background_contractors => background_contractors, jobs_per_sec => jobs_per_sec,
             chat_pairs => chat_pairs, chats_per_sec => chats_per_sec, reconnect_every => reconnect_every_secs,
             dispatchers => dispatchers, queries_per_sec => queries_per_sec, k => k, connections => connections,
             connect_per_sec => connect_per_sec, source_addrs => source_addrs, server_storage => server_storage,
             server_payments => server_payments,
             rss_sample_secs => rss_sample_secs);
        if let Some(uri) = &self.scylla_uri {
            c.scylla_uri = Some(uri.clone());
        }
        if let Some(centre) = &self.centre {
            let [lat, lng] = centre[..] else { anyhow::bail!("--centre takes LAT,LNG, got {} numbers", centre.len()) };
            c.centre = [lat, lng];
        }
        if self.json {
            c.binary = false;
        }
        c.audit |= self.audit;
        if let Some(cpus) = &self.server_cpus {
            c.server_cpus = Some(cpus.clone());
        }
        if let Some(cpus) = &self.harness_cpus {
            c.harness_cpus = Some(cpus.clone());
        }
        if self.report.is_some() {
            c.report.clone_from(&self.report);
        }
        if c.report.is_none() {
            c.report = Some(PathBuf::from(format!("loadtest-{}.json", self.scenario.name())));
        }
        if self.plot.is_some() {
            c.plot.clone_from(&self.plot);
        }
        if self.peer.is_some() {
            c.peer = self.peer;
        }
        if self.redis_server.is_some() {
            c.redis_server.clone_from(&self.redis_server);
        }
        if self.redis_url.is_some() {
            c.redis_url.clone_from(&self.redis_url);
        }
        if self.peer_radius_km.is_some() {
            c.peer_radius_km = self.peer_radius_km;
        }
        c.validate()?;
        Ok(c)
    }
}

/// Runs the command line: exit 0 when the run had no errors, 1 when it had some.
pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.resolve()?;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if (limit as usize) < needed_files(&config) => eprintln!(
            "warning: the open-file limit is {limit}, below the ~{} this run needs; raise the hard limit (ulimit -Hn)",
            needed_files(&config)
        ),
        Ok(_) => {}
        Err(e) => eprintln!("warning: could not raise the open-file limit: {e}"),
    }
    if let Some(cpus) = &config.harness_cpus {
        // Before the runtime exists: its threads inherit the main thread's CPUs.
        let pinned = std::process::Command::new("taskset").args(["-p", "-c", cpus, &std::process::id().to_string()]).output();
        match pinned {
            Ok(out) if out.status.success() => {}
            Ok(out) => anyhow::bail!("taskset could not pin the harness to CPUs {cpus}: {}", String::from_utf8_lossy(&out.stderr).trim()),
            Err(e) => anyhow::bail!("--harness-cpus needs taskset (util-linux): {e}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let (target, spawned) = match cli.target {
            Some(addr) => {
                let secret =
                    cli.jwt_secret.clone().ok_or_else(|| anyhow::anyhow!("--target needs --jwt-secret (or DISPATCH_JWT_SECRET)"))?;
                (crate::Target { addr, auth: dispatch_protocol::Auth::new(secret.as_bytes()), city: config.city.clone(), pid: None }, None)
            }
            None => {
                let bin = crate::server::find_dispatch(cli.server_bin.as_deref())?;
                let server = crate::server::SpawnedServer::start(&bin, &config).await?;
                eprintln!("started {} serve on {}", bin.display(), server.addr);
                let target = crate::Target {
                    addr: server.addr,
                    auth: dispatch_protocol::Auth::new(server.secret.as_bytes()),
                    city: config.city.clone(),
                    pid: server.pid(),
                };
                (target, Some(server))
            }
        };
        let report = crate::run(config.clone(), target).await;
        let Some(mut server) = spawned else {
            anyhow::ensure!(!config.audit, "--audit reads the store of a server the harness started, not of --target");
            return report;
        };
        let report = match report {
            Ok(report) if config.audit => {
                let audit = server.audit(&config, &report.acknowledged).await;
                Report { audit: Some(audit?), ..report }
            }
            other => other?,
        };
        if let (Some(path), Some(_)) = (&config.report, &report.audit) {
            report.write_json(path)?;
        }
        server.stop().await;
        Ok(report)
    })?;
    println!("{}", report.table());
    if let Some(path) = &config.report {
        println!("  report: {}", path.display());
    }
    if let Some(path) = &config.plot {
        println!("  plot:   {}", path.display());
    }
    Ok(if report.error_count() == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Open files the harness needs: one per connection, and some to spare.
fn needed_files(c: &LoadConfig) -> usize {
    let bots = match c.scenario {
        Scenario::Connections => c.connections,
        Scenario::Chat => c.chat_pairs * 2,
        Scenario::Nearest => c.dispatchers + 256,
        _ => c.contractors + c.customers + c.dispatchers,
    };
    let peer = if c.peer.is_some() { c.contractors.max(c.dispatchers) } else { 0 };
    bots + peer + 256
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<LoadConfig> {
        Cli::try_parse_from(std::iter::once("dispatch-loadtest").chain(args.iter().copied()))?.resolve()
    }

    #[test]
    fn flags_override_the_preset() {
        let c = parse(&["match", "--contractors", "50", "--jobs-per-sec", "5", "--duration", "3", "--centre", "41.2,-95.9"]).unwrap();
        assert_eq!(c.scenario, Scenario::Match);
        assert_eq!(c.contractors, 50);
        assert_eq!(c.jobs_per_sec, 5.0);
        assert_eq!(c.duration_secs, 3.0);
        assert_eq!(c.centre, [41.2, -95.9]);
        assert_eq!(c.report.as_deref(), Some(std::path::Path::new("loadtest-match.json")));
        assert!(parse(&["gps", "--json"]).is_ok_and(|c| !c.binary));
    }

    #[test]
    fn bad_flags_are_errors_that_name_the_problem() {
        assert!(parse(&["teleport"]).is_err());
        assert!(parse(&["gps", "--duration", "0"]).unwrap_err().to_string().contains("duration_secs"));
        assert!(parse(&["gps", "--centre", "1"]).unwrap_err().to_string().contains("LAT,LNG"));
        assert!(parse(&["chat", "--peer", "redis", "--redis-url", "redis://x"]).unwrap_err().to_string().contains("peer"));
        assert!(parse(&["gps", "--peer", "redis"]).unwrap_err().to_string().contains("--redis-server"));
    }
}
