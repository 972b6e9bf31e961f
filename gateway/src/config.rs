//! `dispatch serve` configuration: a TOML file, then environment variables,
//! then command-line flags, each overriding the one before.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cities::CityConfig;

/// Where snapshots go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StorageKind {
    /// redb files under the data directory (the default; no setup).
    Embedded,
    /// Memory only: everything is lost on exit.
    Memory,
    /// A ScyllaDB (or Cassandra) cluster: see the `[scylla]` section.
    Scylla,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// How jobs are matched to contractors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Matching {
    /// Each job is offered as soon as it is posted, to the best contractor for it.
    Greedy,
    /// Open jobs are gathered for `batch_window_ms` and assigned together with
    /// the least total drive time (Kuhn–Munkres): slower to the first offer,
    /// better for the city when jobs arrive in bursts.
    Batched,
}

/// Matching weights as configured (normalised by the engine).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsConfig {
    /// Proximity weight.
    pub proximity: f64,
    /// Rating weight.
    pub rating: f64,
    /// Availability weight.
    pub availability: f64,
    /// Experience weight.
    pub experience: f64,
    /// Price weight.
    pub price: f64,
}

impl Default for WeightsConfig {
    fn default() -> Self {
        let w = dispatch_engine::Weights::default();
        Self { proximity: w.proximity, rating: w.rating, availability: w.availability, experience: w.experience, price: w.price }
    }
}

/// Everything `dispatch serve` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on (HTTP and WebSocket on the same port).
    pub listen: SocketAddr,
    /// This server's name: it tags what it writes to a city's degraded-mode
    /// journal (default: the host name).
    pub node: String,
    /// Where the embedded store keeps its files, and every backend its
    /// degraded-mode journal (a directory per city).
    pub data_dir: PathBuf,
    /// Which store.
    pub storage: StorageKind,
    /// The embedded store's page cache per city, MiB.
    pub embedded_cache_mib: usize,
    /// The ScyllaDB cluster, when `storage = "scylla"`.
    pub scylla: dispatch_storage::ScyllaConfig,
    /// How long store calls may take, and how many writes are held while the
    /// store is unreachable (embedded and ScyllaDB).
    pub store_buffer: dispatch_storage::ResilienceConfig,
    /// H3 resolution of the cells.
    pub h3_resolution: u8,
    /// HS256 secret for tokens (at least 32 bytes), unless `[auth]` names an identity provider's keys.
    pub jwt_secret: String,
    /// Tokens from an identity provider: keys, issuer, audience, claims.
    pub auth: crate::auth_config::AuthSection,
    /// Trades matched only to contractors with a verified, valid licence for them
    /// (recorded through the admin API), e.g. `["electrical", "plumbing", "hvac", "roofing"]`.
    pub licensed_trades: Vec<dispatch_engine::Trade>,
    /// Serve `POST /v1/tokens` (development only).
    pub dev_auth: bool,
    /// Seconds a contractor has to answer an offer.
    pub offer_timeout_secs: u64,
    /// Largest accepted WebSocket frame, bytes.
    pub max_frame_bytes: usize,
    /// GPS fixes per second accepted per connection (the rest are dropped and counted).
    pub gps_per_sec: u32,
    /// While the gateway is overloaded, each connection's GPS is taken at most
    /// once per this many seconds (the rest shed right after parsing); 0 turns
    /// the thinning off. See `overload.rs`.
    pub overload_gps_every_secs: u64,
    /// Chat messages per second accepted per connection.
    pub chat_per_sec: u32,
    /// Frames queued for a slow reader before the connection is closed with 1008.
    pub outbound_queue: usize,
    /// Seconds without any frame from the client before the connection is closed.
    pub idle_timeout_secs: u64,
    /// On shutdown, connections are closed (1001) spread over this many
    /// seconds, so their clients reconnect elsewhere a few at a time, not all
    /// at once; 0 closes them together. At most 300.
    pub drain_secs: u64,
    /// Log line format.
    pub log_format: LogFormat,
    /// Matching weights.
    pub weights: WeightsConfig,
    /// Greedy (offer at once) or batched matching.
    pub matching: Matching,
    /// Batched matching: how long open jobs are gathered, ms.
    pub batch_window_ms: u64,
    /// The cities served.
    pub cities: Vec<CityConfig>,
    /// A map tile URL template such as `https://tile.openstreetmap.org/{z}/{x}/{y}.png`;
    /// without one the map draws on a plain canvas.
    pub tile_url: Option<String>,
    /// More than one process: NATS, leases, placement (`dispatch engine` / `dispatch gateway`).
    pub cluster: crate::cluster::ClusterConfig,
    /// Card payments: the processor and the money rules.
    pub payments: crate::payments_config::PaymentsSection,
    /// Outbound webhooks: endpoints and their retries.
    pub webhooks: crate::webhooks::WebhooksSection,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            node: host_name(),
            data_dir: PathBuf::from("data"),
            storage: StorageKind::Embedded,
            embedded_cache_mib: dispatch_storage::embedded::DEFAULT_CACHE_BYTES / (1024 * 1024),
            scylla: dispatch_storage::ScyllaConfig::default(),
            store_buffer: dispatch_storage::ResilienceConfig::default(),
            h3_resolution: dispatch_engine::spatial::DEFAULT_RESOLUTION,
            jwt_secret: String::new(),
            auth: crate::auth_config::AuthSection::default(),
            licensed_trades: Vec::new(),
            dev_auth: false,
            offer_timeout_secs: 20,
            max_frame_bytes: 64 * 1024,
            gps_per_sec: 10,
            overload_gps_every_secs: crate::overload::THIN_TO.as_secs(),
            chat_per_sec: 5,
            outbound_queue: 1024,
            idle_timeout_secs: 60,
            drain_secs: 0,
            log_format: LogFormat::Text,
            weights: WeightsConfig::default(),
            matching: Matching::Greedy,
            batch_window_ms: 2_000,
            cities: CityConfig::defaults(),
            tile_url: None,
            cluster: crate::cluster::ClusterConfig::default(),
            payments: crate::payments_config::PaymentsSection::default(),
            webhooks: crate::webhooks::WebhooksSection::default(),
        }
    }
}

impl ServeConfig {
    /// Reads a TOML file; unknown keys are errors, missing keys take defaults.
    pub fn from_toml_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
    }

    /// Checks what the types cannot: a secret, sane limits, valid cities.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.node.is_empty() && self.node.len() <= 255 && !self.node.chars().any(char::is_control),
            "node must be 1 to 255 printable characters, not {:?}",
            self.node
        );
        self.auth.validate(&self.jwt_secret, self.dev_auth)?;
        anyhow::ensure!(self.h3_resolution <= 15, "h3_resolution {} must be 0..=15", self.h3_resolution);
        anyhow::ensure!(self.offer_timeout_secs > 0, "offer_timeout_secs must be positive");
        anyhow::ensure!(self.max_frame_bytes >= 1024, "max_frame_bytes must be at least 1024");
        anyhow::ensure!(self.outbound_queue > 0, "outbound_queue must be positive");
        anyhow::ensure!(
            self.overload_gps_every_secs <= 3_600,
            "overload_gps_every_secs must be 0 (off) to 3600, not {}",
            self.overload_gps_every_secs
        );
        anyhow::ensure!((1..=60_000).contains(&self.batch_window_ms), "batch_window_ms must be 1 to 60000, not {}", self.batch_window_ms);
        anyhow::ensure!(!self.cities.is_empty(), "at least one city must be configured");
        anyhow::ensure!(
            self.store_buffer.timeout_ms > 0 && self.store_buffer.drain_batch > 0,
            "store_buffer: timeout_ms and drain_batch must be positive"
        );
        // A store call that outlasts the actors' call timeout fails the request
        // ("no answer in time") instead of turning the store degraded and
        // buffering the write: found losing a node of a three-node cluster.
        let call_ms = dispatch_actors::CALL_TIMEOUT.as_millis() as u64;
        anyhow::ensure!(
            self.store_buffer.timeout_ms < call_ms,
            "store_buffer.timeout_ms ({}) must be below the actors' call timeout ({call_ms} ms)",
            self.store_buffer.timeout_ms
        );
        anyhow::ensure!(
            self.store_buffer.probe_first_ms <= self.store_buffer.probe_max_ms,
            "store_buffer: probe_first_ms must not exceed probe_max_ms"
        );
        if self.storage == StorageKind::Scylla {
            self.scylla.validate()?;
            for city in &self.cities {
                self.scylla.keyspace_for(&city.name)?;
            }
        }
        dispatch_engine::Weights::new(
            self.weights.proximity,
            self.weights.rating,
            self.weights.availability,
            self.weights.experience,
            self.weights.price,
        )?;
        if let Some(url) = &self.tile_url {
            anyhow::ensure!(["{z}", "{x}", "{y}"].iter().all(|p| url.contains(p)), "tile_url must contain {{z}}, {{x}} and {{y}}: {url}");
        }
        let mut names = std::collections::HashSet::new();
        for city in &self.cities {
            city.area().map_err(anyhow::Error::msg)?;
            anyhow::ensure!(names.insert(city.name.clone()), "city {} is configured twice", city.name);
            anyhow::ensure!(
                crate::cluster::wire::is_subject_token(&city.name),
                "city name {:?} must have no '.', '*', '>' or whitespace (it is part of NATS subjects)",
                city.name
            );
        }
        anyhow::ensure!(self.drain_secs <= 300, "drain_secs must be at most 300, not {}", self.drain_secs);
        self.cluster.validate()?;
        self.payments.validate()?;
        let cities: Vec<String> = self.cities.iter().map(|c| c.name.clone()).collect();
        self.webhooks.validate(&cities)?;
        Ok(())
    }

    /// What city `city`'s actors run with.
    pub fn dispatch_config(&self, city: &str) -> anyhow::Result<dispatch_actors::DispatchConfig> {
        let weights = self.weights;
        let scoring = dispatch_engine::ScoringConfig {
            weights: dispatch_engine::Weights::new(
                weights.proximity,
                weights.rating,
                weights.availability,
                weights.experience,
                weights.price,
            )?,
            ..dispatch_engine::ScoringConfig::default()
        };
        Ok(dispatch_actors::DispatchConfig {
            resolution: self.h3_resolution,
            offer_timeout: std::time::Duration::from_secs(self.offer_timeout_secs),
            batch_window: match self.matching {
                Matching::Greedy => None,
                Matching::Batched => Some(std::time::Duration::from_millis(self.batch_window_ms)),
            },
            scoring,
            payments: self.payments.for_city(city)?,
            licensed_trades: self.licensed_trades.iter().fold(dispatch_engine::TradeSet::default(), |set, t| set.with(*t)),
            ..dispatch_actors::DispatchConfig::default()
        })
    }
}

/// The machine's host name, or `dispatch` where it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "dispatch".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_file_overrides_defaults_and_typos_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dispatch.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\njwt_secret = \"s-secret-of-at-least-thirty-two-b\"\noffer_timeout_secs = 5\n")
            .unwrap();
        let c = ServeConfig::from_toml_file(&path).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.offer_timeout_secs, 5);
        assert_eq!(c.cities.len(), 3);
        c.validate().unwrap();
        std::fs::write(
            &path,
            "jwt_secret = \"s-secret-of-at-least-thirty-two-b\"\nstorage = \"scylla\"\n[scylla]\nnodes = [\"scylla-1:9042\", \"scylla-2:9042\"]\nreplication = \"dc1:3\"\nlocal_dc = \"dc1\"\n[store_buffer]\nbuffer_limit = 5000\n",
        )
        .unwrap();
        let c = ServeConfig::from_toml_file(&path).unwrap();
        assert_eq!(c.storage, StorageKind::Scylla);
        assert_eq!(c.scylla.nodes.len(), 2);
        assert_eq!(c.scylla.local_dc.as_deref(), Some("dc1"));
        assert_eq!(c.store_buffer.buffer_limit, 5000);
        c.validate().unwrap();
        std::fs::write(&path, "jwt_secret = \"s-secret-of-at-least-thirty-two-b\"\nmatching = \"batched\"\nbatch_window_ms = 500\noverload_gps_every_secs = 0\n").unwrap();
        let c = ServeConfig::from_toml_file(&path).unwrap();
        assert_eq!((c.matching, c.batch_window_ms, c.overload_gps_every_secs), (Matching::Batched, 500, 0));
        std::fs::write(&path, "matching = \"hungarian\"\n").unwrap();
        assert!(ServeConfig::from_toml_file(&path).unwrap_err().to_string().contains("hungarian"));
        std::fs::write(&path, "offer_timeot_secs = 5\n").unwrap();
        assert!(ServeConfig::from_toml_file(&path).unwrap_err().to_string().contains("offer_timeot_secs"));
        assert!(ServeConfig::from_toml_file(&dir.path().join("missing.toml")).is_err());
    }

    #[test]
    fn validation_names_the_problem() {
        let no_secret = ServeConfig::default();
        assert!(no_secret.validate().unwrap_err().to_string().contains("JWT secret"));
        let bad = ServeConfig { jwt_secret: "s-secret-of-at-least-thirty-two-b".into(), h3_resolution: 16, ..ServeConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("h3_resolution"));
        let bad_tiles = ServeConfig {
            jwt_secret: "s-secret-of-at-least-thirty-two-b".into(),
            tile_url: Some("https://example.invalid/tile.png".into()),
            ..ServeConfig::default()
        };
        assert!(bad_tiles.validate().unwrap_err().to_string().contains("{z}"));
        let scylla =
            ServeConfig { jwt_secret: "s-secret-of-at-least-thirty-two-b".into(), storage: StorageKind::Scylla, ..ServeConfig::default() };
        scylla.validate().unwrap();
        let no_nodes = ServeConfig { scylla: dispatch_storage::ScyllaConfig { nodes: vec![], ..scylla.scylla.clone() }, ..scylla.clone() };
        assert!(no_nodes.validate().unwrap_err().to_string().contains("node"));
        let slow_store = ServeConfig {
            jwt_secret: "s-secret-of-at-least-thirty-two-b".into(),
            store_buffer: dispatch_storage::ResilienceConfig { timeout_ms: 5_000, ..Default::default() },
            ..ServeConfig::default()
        };
        assert!(slow_store.validate().unwrap_err().to_string().contains("call timeout"));
        let thin = ServeConfig {
            jwt_secret: "s-secret-of-at-least-thirty-two-b".into(),
            overload_gps_every_secs: 7_200,
            ..ServeConfig::default()
        };
        assert!(thin.validate().unwrap_err().to_string().contains("overload_gps_every_secs"));
        ServeConfig { jwt_secret: "s-secret-of-at-least-thirty-two-b".into(), overload_gps_every_secs: 0, ..ServeConfig::default() }
            .validate()
            .unwrap();
        let zero_window =
            ServeConfig { jwt_secret: "s-secret-of-at-least-thirty-two-b".into(), batch_window_ms: 0, ..ServeConfig::default() };
        assert!(zero_window.validate().unwrap_err().to_string().contains("batch_window_ms"));
        let twice = ServeConfig {
            jwt_secret: "s-secret-of-at-least-thirty-two-b".into(),
            cities: vec![CityConfig::defaults()[0].clone(); 2],
            ..ServeConfig::default()
        };
        assert!(twice.validate().unwrap_err().to_string().contains("twice"));
        for node in ["", "a\nb"] {
            let bad_node =
                ServeConfig { jwt_secret: "s-secret-of-at-least-thirty-two-b".into(), node: node.into(), ..ServeConfig::default() };
            assert!(bad_node.validate().unwrap_err().to_string().contains("node must be"), "{node:?}");
        }
        assert!(!ServeConfig::default().node.is_empty(), "the host name by default");
        let ok = ServeConfig { jwt_secret: "s-secret-of-at-least-thirty-two-b".into(), ..ServeConfig::default() };
        let short_lease = ServeConfig { cluster: crate::cluster::ClusterConfig { lease_ttl_secs: 1, ..ok.cluster.clone() }, ..ok.clone() };
        assert!(short_lease.validate().unwrap_err().to_string().contains("lease_ttl_secs"));
        let hasty = ServeConfig { cluster: crate::cluster::ClusterConfig { request_timeout_ms: 50, ..ok.cluster.clone() }, ..ok.clone() };
        assert!(hasty.validate().unwrap_err().to_string().contains("request_timeout_ms"));
        let no_nats = ServeConfig { cluster: crate::cluster::ClusterConfig { nats_url: " ".into(), ..ok.cluster.clone() }, ..ok.clone() };
        assert!(no_nats.validate().unwrap_err().to_string().contains("nats_url"));
        let mut dotted = ok.clone();
        dotted.cities[0].name = "des.moines".into();
        assert!(dotted.validate().unwrap_err().to_string().contains("NATS subjects"));
        let long_drain = ServeConfig { drain_secs: 301, ..ok };
        assert!(long_drain.validate().unwrap_err().to_string().contains("drain_secs"));
    }
}
