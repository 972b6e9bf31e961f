//! The `dispatch` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{LogFormat, ServeConfig, StorageKind};

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
    /// Serve the WebSocket and HTTP API.
    Serve(ServeArgs),
}

/// `dispatch serve` flags; each overrides the config file and has an environment variable.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "DISPATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:8080.
    #[arg(long, env = "DISPATCH_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Data directory for the embedded store.
    #[arg(long, env = "DISPATCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Storage backend.
    #[arg(long, env = "DISPATCH_STORAGE", value_enum)]
    pub storage: Option<StorageKind>,
    /// H3 resolution of the city cells (0-15).
    #[arg(long, env = "DISPATCH_H3_RESOLUTION")]
    pub h3_resolution: Option<u8>,
    /// HS256 secret for tokens.
    #[arg(long, env = "DISPATCH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Seconds a contractor has to answer an offer.
    #[arg(long, env = "DISPATCH_OFFER_TIMEOUT_SECS")]
    pub offer_timeout_secs: Option<u64>,
    /// Matching weights: proximity,rating,availability,experience,price.
    #[arg(long, env = "DISPATCH_WEIGHTS", value_delimiter = ',', num_args = 5)]
    pub weights: Option<Vec<f64>>,
    /// Serve POST /v1/tokens (development only).
    #[arg(long, env = "DISPATCH_DEV_AUTH")]
    pub dev_auth: bool,
    /// Log format.
    #[arg(long, env = "DISPATCH_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

impl ServeArgs {
    /// The configuration: the file (or defaults), then these flags and variables.
    pub fn resolve(&self) -> anyhow::Result<ServeConfig> {
        let mut c = match &self.config {
            Some(path) => ServeConfig::from_toml_file(path)?,
            None => ServeConfig::default(),
        };
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if let Some(v) = &self.data_dir {
            c.data_dir.clone_from(v);
        }
        if let Some(v) = self.storage {
            c.storage = v;
        }
        if let Some(v) = self.h3_resolution {
            c.h3_resolution = v;
        }
        if let Some(v) = &self.jwt_secret {
            c.jwt_secret.clone_from(v);
        }
        if let Some(v) = self.offer_timeout_secs {
            c.offer_timeout_secs = v;
        }
        if let Some(w) = &self.weights {
            anyhow::ensure!(w.len() == 5, "--weights takes five numbers");
            c.weights = crate::config::WeightsConfig { proximity: w[0], rating: w[1], availability: w[2], experience: w[3], price: w[4] };
        }
        c.dev_auth |= self.dev_auth;
        if let Some(v) = self.log_format {
            c.log_format = v;
        }
        c.validate()?;
        Ok(c)
    }
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

/// Runs the command line.
pub fn main(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            init_logging(config.log_format);
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(config.listen)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
                tracing::info!(addr = %listener.local_addr()?, dev_auth = config.dev_auth, "dispatch serving");
                let gateway = crate::server::Gateway::start(config).await?;
                crate::server::run(listener, gateway, shutdown_signal()).await
            })
        }
    }
}
