//! The `dispatch` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::LogFormat;

mod demo_args;
mod serve_args;

pub use demo_args::DemoArgs;
pub use serve_args::ServeArgs;

/// Real-time dispatch for a trades marketplace.
#[derive(Debug, Parser)]
#[command(name = "dispatch", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the WebSocket and HTTP API: every role in one process.
    Serve(ServeArgs),
    /// Cluster: own cities (their actors and store writes) and serve them over NATS.
    Engine(ServeArgs),
    /// Cluster: serve the WebSocket and HTTP API, reaching each city's owner over NATS.
    Gateway(ServeArgs),
    /// Run a simulated city against a fresh server and show it on the live map.
    Demo(DemoArgs),
    /// Export or import every city's snapshots and event logs (server stopped).
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

/// `dispatch snapshot …`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Write a portable, versioned dump of every city's store.
    Export {
        /// The dump file to write.
        #[arg(long)]
        out: PathBuf,
        /// Where the stores are: the same settings as `dispatch serve`.
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Load a dump into empty stores of the configured backend.
    Import {
        /// The dump file to read.
        #[arg(long = "in")]
        input: PathBuf,
        /// Where the stores go: the same settings as `dispatch serve`.
        #[command(flatten)]
        serve: ServeArgs,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Waits for Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// How often (in task polls) a worker takes a task from the runtime's shared
/// queue before its own. A worker's own queue holds 256 tasks; past that,
/// woken tasks overflow to the shared one, which tokio's self-tuned interval
/// (about 200 µs of polls) serves one task at a time while the worker stays
/// busy. With thousands of connections ready at once the overflowed ones
/// waited: a saturated GPS run answered 1 % of its pings after ~390 ms while
/// the median took 1.4 ms. Every 16th poll: ~250 ms (every 4th: ~70 ms, but
/// ~8 % less GPS ingest per CPU-second).
const GLOBAL_QUEUE_INTERVAL: u32 = 16;

/// Runs the command line.
pub fn main(cli: Cli) -> anyhow::Result<()> {
    // One descriptor per connection: lift the soft limit to the hard one.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("warning: could not raise the open-file limit: {e}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().global_queue_interval(GLOBAL_QUEUE_INTERVAL).build()?;
    let role = match &cli.command {
        Command::Engine(_) => "engine",
        Command::Gateway(_) => "gateway",
        _ => "serve",
    };
    match cli.command {
        Command::Demo(args) => {
            let (serve, sim) = args.resolve()?;
            init_logging(serve.log_format);
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(serve.listen)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e} (try --listen 127.0.0.1:0)", serve.listen))?;
                let addr = listener.local_addr()?;
                let data_dir = serve.data_dir.clone();
                let gateway = crate::server::Gateway::start(serve).await?;
                let (stop, stopped) = tokio::sync::watch::channel(false);
                let stats = std::sync::Arc::new(crate::demo::SimStats::default());
                let auth = gateway.auth().clone();
                let contractors = sim.contractors;
                let simulation = tokio::spawn(crate::demo::simulate(addr, auth, sim, std::sync::Arc::clone(&stats), stopped));
                println!("dispatch demo: {contractors} contractors on the road, data in {}", data_dir.display());
                println!("map: http://{addr}/   (Ctrl-C to stop)");
                let server = crate::server::run(listener, gateway, async move {
                    shutdown_signal().await;
                    let _ = stop.send(true);
                });
                let result = server.await;
                let _ = simulation.await;
                let s = |v: &std::sync::atomic::AtomicU64| v.load(std::sync::atomic::Ordering::Relaxed);
                let charged = s(&stats.charged_cents);
                println!(
                    "posted {} ({} refused: card declined), accepted {}, completed {}, rated {}, charged ${}.{:02}",
                    s(&stats.posted),
                    s(&stats.declined),
                    s(&stats.accepted),
                    s(&stats.completed),
                    s(&stats.rated),
                    charged / 100,
                    charged % 100
                );
                result
            })
        }
        Command::Snapshot(command) => {
            let (export, path, serve) = match &command {
                SnapshotCommand::Export { out, serve } => (true, out, serve),
                SnapshotCommand::Import { input, serve } => (false, input, serve),
            };
            // The secret is not needed to move files: do not make it a requirement here.
            let mut config = serve.resolve_unchecked()?;
            config.dev_auth = true;
            config.validate()?;
            let done = runtime.block_on(async {
                if export { crate::snapshot::export(&config, path).await } else { crate::snapshot::import(&config, path).await }
            })?;
            let verb = if export { "exported" } else { "imported" };
            for (city, counts) in &done {
                println!("{city}: {verb} {} snapshots and {} event log entries", counts.snapshots, counts.events);
            }
            if done.is_empty() {
                println!("no city store found under {}", config.data_dir.display());
            }
            Ok(())
        }
        Command::Serve(args) | Command::Engine(args) | Command::Gateway(args) => {
            let config = args.resolve()?;
            init_logging(config.log_format);
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(config.listen)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
                tracing::info!(addr = %listener.local_addr()?, role, node = %config.node, dev_auth = config.dev_auth, "dispatch serving");
                let gateway = match role {
                    "serve" => crate::server::Gateway::start(config).await?,
                    role => {
                        let nats = crate::cluster::connect(&config.cluster.nats_url, &format!("{role}-{}", config.node)).await?;
                        if role == "engine" {
                            crate::server::Gateway::start_engine(config, nats).await?
                        } else {
                            crate::server::Gateway::start_remote(config, nats).await?
                        }
                    }
                };
                crate::server::run(listener, gateway, shutdown_signal()).await
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};
    use crate::config::StorageKind;

    #[test]
    fn snapshot_export_and_import_run_from_the_command_line() {
        use dispatch_storage::{EmbeddedStore, Kind, LogEntry, SnapshotStore};
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let store = EmbeddedStore::open(from.path().join("des-moines")).unwrap();
            store.put(Kind::Job, 5, b"a job".to_vec()).await.unwrap();
            store.append_event(5, LogEntry::new(1, 1, b"posted".to_vec())).await.unwrap();
        });
        let file = from.path().join("all.dump");
        let run = |args: &[&str]| super::main(Cli::try_parse_from(["dispatch", "snapshot"].iter().chain(args)).unwrap());
        let (file_s, from_s, to_s) = (file.to_str().unwrap(), from.path().to_str().unwrap(), to.path().to_str().unwrap());
        run(&["export", "--out", file_s, "--data-dir", from_s]).unwrap();
        run(&["import", "--in", file_s, "--data-dir", to_s]).unwrap();
        rt.block_on(async {
            let store = EmbeddedStore::open(to.path().join("des-moines")).unwrap();
            assert_eq!(store.get(Kind::Job, 5).await.unwrap().as_deref(), Some(&b"a job"[..]));
            assert_eq!(store.read_events(5, 1).await.unwrap().len(), 1);
        });
        let missing = from.path().join("missing.dump");
        let err = run(&["import", "--in", missing.to_str().unwrap(), "--data-dir", to_s]).unwrap_err();
        assert!(format!("{err:#}").contains("cannot open"), "{err:#}");
    }

    fn demo(args: &[&str]) -> anyhow::Result<(crate::config::ServeConfig, crate::demo::SimConfig)> {
        let cli = Cli::try_parse_from(["dispatch", "demo"].iter().chain(args))?;
        let Command::Demo(d) = cli.command else { anyhow::bail!("not demo") };
        d.resolve()
    }

    #[test]
    fn demo_cities_come_from_presets_a_centre_or_a_box() {
        let (serve, sim) = demo(&[]).unwrap();
        assert_eq!(sim.city.name, "des-moines");
        assert_eq!(sim.contractors, 500);
        assert!(serve.dev_auth);
        assert_eq!(demo(&["--city", "omaha"]).unwrap().1.city.name, "omaha");
        let (_, sim) = demo(&["--centre", "47.6,-122.3", "--half-km", "5"]).unwrap();
        assert!((sim.city.centre[0] - 47.6).abs() < 1e-9);
        let (_, sim) = demo(&["--bbox", "47.5,-122.5,47.7,-122.2"]).unwrap();
        assert_eq!(sim.city.polygon.len(), 4);
        // Clear refusals.
        assert!(demo(&["--city", "atlantis"]).unwrap_err().to_string().contains("unknown city preset"));
        assert!(demo(&["--bbox", "47.7,-122.5,47.5,-122.2"]).unwrap_err().to_string().contains("south < north"));
        assert!(demo(&["--centre", "95,0"]).unwrap_err().to_string().contains("latitude"));
        assert!(demo(&["--job-every-secs", "0"]).is_err());
        assert!(demo(&["--centre", "47.6"]).unwrap_err().to_string().contains("two numbers"));
        assert!(demo(&["--bbox", "1,2,3"]).unwrap_err().to_string().contains("four numbers"));
        // On a CQL cluster: fresh keyspaces on the nodes given.
        let (serve, _) = demo(&["--storage", "scylla", "--scylla-uri", "scylla://10.0.0.1:9042,10.0.0.2:9042"]).unwrap();
        assert_eq!(serve.storage, StorageKind::Scylla);
        assert_eq!(serve.scylla.nodes, ["10.0.0.1:9042", "10.0.0.2:9042"]);
        assert!(serve.scylla.keyspace_prefix.starts_with("demo"));
        assert!(demo(&["--storage", "scylla"]).unwrap_err().to_string().contains("--scylla-uri"));
    }

    #[test]
    fn serve_flags_override_the_defaults() {
        let cli = Cli::try_parse_from(["dispatch", "serve", "--dev-auth", "--weights", "1,1,1,1,1", "--offer-timeout-secs", "7"]).unwrap();
        let Command::Serve(s) = cli.command else { panic!("not serve") };
        let c = s.resolve().unwrap();
        assert_eq!(c.weights.price, 1.0);
        assert_eq!(c.offer_timeout_secs, 7);
        assert_eq!(c.matching, crate::config::Matching::Greedy);
        let cli = Cli::try_parse_from(["dispatch", "serve", "--dev-auth", "--matching", "batched", "--batch-window-ms", "750"]).unwrap();
        let Command::Serve(s) = cli.command else { panic!("not serve") };
        let c = s.resolve().unwrap();
        assert_eq!((c.matching, c.batch_window_ms), (crate::config::Matching::Batched, 750));
        assert!(Cli::try_parse_from(["dispatch", "serve", "--matching", "fastest"]).is_err());
        let cli = Cli::try_parse_from(["dispatch", "engine", "--dev-auth", "--pin", "omaha=engine-b", "--lease-ttl-secs", "5"]).unwrap();
        let Command::Engine(s) = cli.command else { panic!("not engine") };
        let c = s.resolve().unwrap();
        assert_eq!((c.cluster.pins["omaha"].as_str(), c.cluster.lease_ttl_secs), ("engine-b", 5));
        // The store's login: from the URI, and the user and password flags over it.
        let uri = ["dispatch", "engine", "--dev-auth", "--storage", "scylla", "--scylla-uri", "scylla://app:pw@a,b:9043"];
        let Command::Engine(s) = Cli::try_parse_from(uri).unwrap().command else { panic!("not engine") };
        let c = s.resolve().unwrap();
        assert_eq!((c.scylla.nodes.len(), c.scylla.user.as_deref(), c.scylla.password.as_deref()), (2, Some("app"), Some("pw")));
        let flags = [&uri[..], &["--scylla-user", "ops", "--scylla-password", "secret"]].concat();
        let Command::Engine(s) = Cli::try_parse_from(flags).unwrap().command else { panic!("not engine") };
        let c = s.resolve().unwrap();
        assert_eq!((c.scylla.user.as_deref(), c.scylla.password.as_deref()), (Some("ops"), Some("secret")));
        let Command::Engine(s) =
            Cli::try_parse_from(["dispatch", "engine", "--dev-auth", "--storage", "scylla", "--scylla-user", "ops"]).unwrap().command
        else {
            panic!("not engine")
        };
        assert!(s.resolve().unwrap_err().to_string().contains("user and password go together"));
        let cli = Cli::try_parse_from(["dispatch", "gateway", "--dev-auth", "--pin", "omaha"]).unwrap();
        let Command::Gateway(s) = cli.command else { panic!("not gateway") };
        assert!(s.resolve().unwrap_err().to_string().contains("CITY=NODE"));
        let cli = Cli::try_parse_from(["dispatch", "serve", "--dev-auth", "--weights", "1,1"]).unwrap();
        let Command::Serve(s) = cli.command else { panic!("not serve") };
        assert!(s.resolve().unwrap_err().to_string().contains("five numbers"));
    }
}
