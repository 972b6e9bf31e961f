//! `dispatch serve` flags over the config file, each with its environment variable.

use std::path::PathBuf;

use crate::config::{LogFormat, Matching, ServeConfig, StorageKind};

/// `dispatch serve` flags; each overrides the config file and has an environment variable.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "DISPATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:8080.
    #[arg(long, env = "DISPATCH_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// This server's name, tagging its degraded-mode journal entries (default: the host name).
    #[arg(long, env = "DISPATCH_NODE")]
    pub node: Option<String>,
    /// Data directory: the embedded store, and every backend's degraded-mode journal.
    #[arg(long, env = "DISPATCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Storage backend.
    #[arg(long, env = "DISPATCH_STORAGE", value_enum)]
    pub storage: Option<StorageKind>,
    /// ScyllaDB contact points for `--storage scylla`, e.g. scylla://a:9042,b:9042
    /// (a login may come first: scylla://user:password@a:9042).
    #[arg(long, env = "DISPATCH_SCYLLA_URI", hide_env_values = true)]
    pub scylla_uri: Option<String>,
    /// The ScyllaDB login's user (a cluster engine's must create and drop roles).
    #[arg(long, env = "DISPATCH_SCYLLA_USER")]
    pub scylla_user: Option<String>,
    /// The ScyllaDB login's password.
    #[arg(long, env = "DISPATCH_SCYLLA_PASSWORD", hide_env_values = true)]
    pub scylla_password: Option<String>,
    /// Keyspace replication for new keyspaces: simple:N, or DC:N[,DC:N…].
    #[arg(long, env = "DISPATCH_SCYLLA_REPLICATION")]
    pub scylla_replication: Option<String>,
    /// The local ScyllaDB datacenter (preferred by the load balancer).
    #[arg(long, env = "DISPATCH_SCYLLA_LOCAL_DC")]
    pub scylla_local_dc: Option<String>,
    /// H3 resolution of the city cells (0-15).
    #[arg(long, env = "DISPATCH_H3_RESOLUTION")]
    pub h3_resolution: Option<u8>,
    /// HS256 secret for tokens.
    #[arg(long, env = "DISPATCH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Seconds a contractor has to answer an offer.
    #[arg(long, env = "DISPATCH_OFFER_TIMEOUT_SECS")]
    pub offer_timeout_secs: Option<u64>,
    /// Greedy (offer each job at once) or batched (gather open jobs and assign them together).
    #[arg(long, env = "DISPATCH_MATCHING", value_enum)]
    pub matching: Option<Matching>,
    /// Batched matching: how long open jobs are gathered, ms.
    #[arg(long, env = "DISPATCH_BATCH_WINDOW_MS")]
    pub batch_window_ms: Option<u64>,
    /// Matching weights: proximity,rating,availability,experience,price.
    #[arg(long, env = "DISPATCH_WEIGHTS", value_delimiter = ',', allow_negative_numbers = true)]
    pub weights: Option<Vec<f64>>,
    /// Serve POST /v1/tokens (development only).
    #[arg(long, env = "DISPATCH_DEV_AUTH")]
    pub dev_auth: bool,
    /// Log format.
    #[arg(long, env = "DISPATCH_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Map tile URL template with {z}, {x} and {y} (default: no tiles).
    #[arg(long, env = "DISPATCH_TILE_URL")]
    pub tile_url: Option<String>,
    /// On shutdown, close connections spread over this many seconds (0: all at once).
    #[arg(long, env = "DISPATCH_DRAIN_SECS")]
    pub drain_secs: Option<u64>,
    /// Cluster: NATS servers, e.g. nats://127.0.0.1:4222 (engine and gateway).
    #[arg(long, env = "DISPATCH_NATS_URL")]
    pub nats_url: Option<String>,
    /// Cluster: seconds a city's lease lasts without renewal (engine).
    #[arg(long, env = "DISPATCH_LEASE_TTL_SECS")]
    pub lease_ttl_secs: Option<u32>,
    /// Cluster: ms a gateway waits for a city's owner before `unavailable`.
    #[arg(long, env = "DISPATCH_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// Cluster: place CITY on NODE while NODE is live (repeatable: --pin des-moines=engine-a).
    #[arg(long = "pin", env = "DISPATCH_PINS", value_delimiter = ',')]
    pub pins: Vec<String>,
}

impl ServeArgs {
    /// The configuration: the file (or defaults), then these flags and variables.
    pub fn resolve(&self) -> anyhow::Result<ServeConfig> {
        let c = self.resolve_unchecked()?;
        c.validate()?;
        Ok(c)
    }

    /// [`Self::resolve`] without the final validation (for commands that need
    /// fewer settings than serving does).
    pub(super) fn resolve_unchecked(&self) -> anyhow::Result<ServeConfig> {
        let mut c = match &self.config {
            Some(path) => ServeConfig::from_toml_file(path)?,
            None => ServeConfig::default(),
        };
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if let Some(v) = &self.node {
            c.node.clone_from(v);
        }
        if let Some(v) = &self.data_dir {
            c.data_dir.clone_from(v);
        }
        if let Some(v) = self.storage {
            c.storage = v;
        }
        if let Some(uri) = &self.scylla_uri {
            c.scylla = std::mem::take(&mut c.scylla).with_uri(uri)?;
        }
        if let Some(user) = &self.scylla_user {
            c.scylla.user = Some(user.clone());
        }
        if let Some(password) = &self.scylla_password {
            c.scylla.password = Some(password.clone());
        }
        if let Some(r) = &self.scylla_replication {
            c.scylla.replication = r.parse()?;
        }
        if let Some(dc) = &self.scylla_local_dc {
            c.scylla.local_dc = Some(dc.clone());
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
        if let Some(v) = self.matching {
            c.matching = v;
        }
        if let Some(v) = self.batch_window_ms {
            c.batch_window_ms = v;
        }
        if let Some(w) = &self.weights {
            anyhow::ensure!(w.len() == 5, "--weights takes five numbers");
            c.weights = crate::config::WeightsConfig { proximity: w[0], rating: w[1], availability: w[2], experience: w[3], price: w[4] };
        }
        c.dev_auth |= self.dev_auth;
        if let Some(v) = self.log_format {
            c.log_format = v;
        }
        if let Some(v) = &self.tile_url {
            c.tile_url = Some(v.clone());
        }
        if let Some(v) = self.drain_secs {
            c.drain_secs = v;
        }
        if let Some(v) = &self.nats_url {
            c.cluster.nats_url.clone_from(v);
        }
        if let Some(v) = self.lease_ttl_secs {
            c.cluster.lease_ttl_secs = v;
        }
        if let Some(v) = self.request_timeout_ms {
            c.cluster.request_timeout_ms = v;
        }
        for pin in &self.pins {
            let (city, node) = pin.split_once('=').ok_or_else(|| anyhow::anyhow!("--pin takes CITY=NODE, not {pin:?}"))?;
            c.cluster.pins.insert(city.trim().to_owned(), node.trim().to_owned());
        }
        Ok(c)
    }
}
