//! What a run does: a scenario and its knobs, from a TOML preset, then a
//! file of the user's, then flags (see `cli`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Contractors streaming GPS, every `gps_every_secs` or as fast as the server takes it.
    Gps,
    /// Contractors online, customers posting jobs at `jobs_per_sec`, bots accepting.
    Match,
    /// Chat between the customer and contractor of matched jobs; `resume` after reconnects.
    Chat,
    /// Dispatchers subscribed to a busy city's map: the lag of each delta.
    Map,
    /// Idle connections: the server's resident memory per connection.
    Connections,
    /// Dispatchers asking for the 10 contractors nearest a point.
    Nearest,
}

impl Scenario {
    /// Every scenario, in the order the README lists them.
    pub const ALL: [Scenario; 6] =
        [Scenario::Gps, Scenario::Match, Scenario::Chat, Scenario::Map, Scenario::Connections, Scenario::Nearest];

    /// The name on the command line and in reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Scenario::Gps => "gps",
            Scenario::Match => "match",
            Scenario::Chat => "chat",
            Scenario::Map => "map",
            Scenario::Connections => "connections",
            Scenario::Nearest => "nearest",
        }
    }

    /// The built-in preset.
    #[must_use]
    pub const fn preset(self) -> &'static str {
        match self {
            Scenario::Gps => include_str!("../presets/gps.toml"),
            Scenario::Match => include_str!("../presets/match.toml"),
            Scenario::Chat => include_str!("../presets/chat.toml"),
            Scenario::Map => include_str!("../presets/map.toml"),
            Scenario::Connections => include_str!("../presets/connections.toml"),
            Scenario::Nearest => include_str!("../presets/nearest.toml"),
        }
    }
}

/// The peer measured in the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Peer {
    /// Redis GEOADD (for `gps`) and GEOSEARCH (for `nearest`).
    Redis,
}

/// Where the server's snapshots go when the harness starts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ServerStorage {
    /// The embedded redb store in a temporary directory (what `dispatch serve` uses by default).
    Embedded,
    /// Memory only.
    Memory,
    /// Fresh keyspaces on the ScyllaDB / Cassandra cluster of `scylla_uri`.
    Scylla,
}

/// The card processor of the server the harness starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ServerPayments {
    /// The in-memory sandbox, as `dispatch serve` runs by default: every job held and charged.
    Sandbox,
    /// No payments: the dispatch path alone, the peer the sandbox's cost is read against.
    Off,
}

/// Every knob of a run. Presets set the ones their scenario reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadConfig {
    /// The workload.
    pub scenario: Scenario,
    /// Seconds measured, after the warm-up.
    pub duration_secs: f64,
    /// Seconds of load before measuring starts.
    pub warmup_secs: f64,
    /// The city the bots work in (its token claim).
    pub city: String,
    /// Where the bots are placed: a centre `[lat, lng]`…
    pub centre: [f64; 2],
    /// …and a radius around it, km.
    pub spread_km: f64,
    /// Contractor connections (gps, match, map, nearest).
    pub contractors: usize,
    /// Seconds between a contractor's GPS fixes; 0 sends as fast as the server takes them.
    pub gps_every_secs: f64,
    /// GPS as bincode binary frames (the phones' high-rate format) instead of JSON.
    pub binary: bool,
    /// Fast GPS: fixes sent between two pings on a connection…
    pub batch: usize,
    /// …and pings in flight before the connection waits (flow control).
    pub window: usize,
    /// Match, map: contractors put online (then disconnected) with trades no
    /// job asks for, so the index holds a city's worth without a socket each.
    pub background_contractors: usize,
    /// Customer connections posting jobs (match, map, chat).
    pub customers: usize,
    /// Jobs posted per second, open loop (match, map).
    pub jobs_per_sec: f64,
    /// Chat: matched jobs whose customer and contractor talk.
    pub chat_pairs: usize,
    /// Chat messages per second across all pairs, open loop.
    pub chats_per_sec: f64,
    /// Chat: seconds between one contractor's reconnect-and-resume cycles (0: never).
    pub reconnect_every_secs: f64,
    /// Dispatcher connections (map, nearest).
    pub dispatchers: usize,
    /// Nearest: queries per second across all dispatchers, open loop (0: as fast as answered).
    pub queries_per_sec: f64,
    /// Nearest: how many neighbours.
    pub k: usize,
    /// Idle connections (connections).
    pub connections: usize,
    /// New connections per second while connecting.
    pub connect_per_sec: f64,
    /// Connections are spread over source addresses 127.0.0.1 … 127.0.0.N
    /// (each has its own ~28k ephemeral ports).
    pub source_addrs: u8,
    /// The JSON report's path.
    pub report: Option<PathBuf>,
    /// A PNG plot of latency over time, if wanted.
    pub plot: Option<PathBuf>,
    /// The peer measured in the same run.
    pub peer: Option<Peer>,
    /// A `redis-server` binary the harness starts on a loopback port…
    pub redis_server: Option<PathBuf>,
    /// …or the address of a running Redis (`redis://127.0.0.1:6379`).
    pub redis_url: Option<String>,
    /// The peer's GEOSEARCH radius, km. Unset: one covering the whole dataset,
    /// so Redis returns the true k nearest as ours does; a small one is Redis's
    /// best case (fewer points scanned, but possibly fewer than k found).
    pub peer_radius_km: Option<f64>,
    /// Storage of the server the harness starts.
    pub server_storage: ServerStorage,
    /// Payments of the server the harness starts.
    pub server_payments: ServerPayments,
    /// The cluster the started server uses with `server_storage = "scylla"`:
    /// `scylla://host:9042[,host:port…]`.
    pub scylla_uri: Option<String>,
    /// Seconds between samples of the server's resident memory while
    /// measuring (0: not sampled). The report gives their spread around the
    /// median: a soak passes when it stays within ±5 %.
    pub rss_sample_secs: f64,
    /// CPUs the started server is pinned to (`taskset -c` syntax, e.g. `0`),
    /// so the figures are the server's and not shared with the harness.
    pub server_cpus: Option<String>,
    /// CPUs the harness pins itself to (e.g. `1`).
    pub harness_cpus: Option<String>,
    /// After the run, read the started server's store back and check that
    /// every write it acknowledged is there (`match`; see `audit`).
    pub audit: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            scenario: Scenario::Gps,
            duration_secs: 10.0,
            warmup_secs: 2.0,
            city: "des-moines".into(),
            centre: [41.5868, -93.6250],
            spread_km: 10.0,
            contractors: 100,
            gps_every_secs: 1.0,
            binary: true,
            batch: 16,
            window: 4,
            background_contractors: 0,
            customers: 10,
            jobs_per_sec: 10.0,
            chat_pairs: 10,
            chats_per_sec: 50.0,
            reconnect_every_secs: 2.0,
            dispatchers: 4,
            queries_per_sec: 0.0,
            k: 10,
            connections: 1_000,
            connect_per_sec: 2_000.0,
            source_addrs: 4,
            report: None,
            plot: None,
            peer: None,
            redis_server: None,
            redis_url: None,
            peer_radius_km: None,
            server_storage: ServerStorage::Embedded,
            server_payments: ServerPayments::Sandbox,
            scylla_uri: None,
            rss_sample_secs: 0.0,
            server_cpus: None,
            harness_cpus: None,
            audit: false,
        }
    }
}

impl LoadConfig {
    /// The built-in preset of `scenario`.
    pub fn preset(scenario: Scenario) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(scenario.preset()).map_err(|e| anyhow::anyhow!("preset {}: {e}", scenario.name()))?;
        anyhow::ensure!(config.scenario == scenario, "preset {} names scenario {}", scenario.name(), config.scenario.name());
        Ok(config)
    }

    /// Reads a TOML file: unknown keys are errors, missing keys keep `base`'s values.
    pub fn overlay_file(base: &Self, path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let overlay: toml::Table = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let mut merged = toml::Table::try_from(base).map_err(|e| anyhow::anyhow!("{e}"))?;
        merged.extend(overlay);
        merged.try_into().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Checks what the types cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        let positive = |name: &str, v: f64| -> anyhow::Result<()> {
            anyhow::ensure!(v.is_finite() && v > 0.0, "{name} must be a positive number, not {v}");
            Ok(())
        };
        let not_negative = |name: &str, v: f64| -> anyhow::Result<()> {
            anyhow::ensure!(v.is_finite() && v >= 0.0, "{name} must be 0 or more, not {v}");
            Ok(())
        };
        positive("duration_secs", self.duration_secs)?;
        anyhow::ensure!(
            self.server_storage != ServerStorage::Scylla || self.scylla_uri.is_some(),
            "server_storage scylla needs scylla_uri (--scylla-uri scylla://host:9042)"
        );
        anyhow::ensure!(
            !self.audit || (self.scenario == Scenario::Match && self.server_storage != ServerStorage::Memory),
            "audit reads back what `match` wrote to a durable store: it needs scenario match and server_storage embedded or scylla"
        );
        for cpus in [&self.server_cpus, &self.harness_cpus].into_iter().flatten() {
            anyhow::ensure!(
                !cpus.is_empty() && cpus.split(',').all(|c| c.parse::<u16>().is_ok()),
                "CPU lists are numbers separated by commas (e.g. 0 or 0,1), not {cpus:?}"
            );
        }
        not_negative("warmup_secs", self.warmup_secs)?;
        not_negative("gps_every_secs", self.gps_every_secs)?;
        not_negative("queries_per_sec", self.queries_per_sec)?;
        not_negative("reconnect_every_secs", self.reconnect_every_secs)?;
        not_negative("rss_sample_secs", self.rss_sample_secs)?;
        positive("spread_km", self.spread_km)?;
        positive("connect_per_sec", self.connect_per_sec)?;
        dispatch_engine::GeoPoint::new(self.centre[0], self.centre[1]).map_err(|e| anyhow::anyhow!("centre: {e}"))?;
        if let Some(r) = self.peer_radius_km {
            positive("peer_radius_km", r)?;
        }
        anyhow::ensure!(self.source_addrs >= 1, "source_addrs must be 1 to 255");
        anyhow::ensure!(self.batch >= 1 && self.window >= 1, "batch and window must be at least 1");
        anyhow::ensure!((1..=100).contains(&self.k), "k must be 1 to 100, not {}", self.k);
        match self.scenario {
            Scenario::Gps => anyhow::ensure!(self.contractors > 0, "gps needs contractors > 0"),
            Scenario::Match | Scenario::Map => {
                anyhow::ensure!(self.contractors > 0 && self.customers > 0, "{} needs contractors and customers", self.scenario.name());
                positive("jobs_per_sec", self.jobs_per_sec)?;
                if self.scenario == Scenario::Map {
                    anyhow::ensure!(self.dispatchers > 0, "map needs dispatchers > 0");
                }
            }
            Scenario::Chat => {
                anyhow::ensure!(self.chat_pairs > 0, "chat needs chat_pairs > 0");
                positive("chats_per_sec", self.chats_per_sec)?;
            }
            Scenario::Connections => anyhow::ensure!(self.connections > 0, "connections needs connections > 0"),
            Scenario::Nearest => anyhow::ensure!(self.contractors > 0 && self.dispatchers > 0, "nearest needs contractors and dispatchers"),
        }
        if self.peer.is_some() {
            anyhow::ensure!(
                matches!(self.scenario, Scenario::Gps | Scenario::Nearest),
                "--peer redis compares the gps and nearest scenarios, not {}",
                self.scenario.name()
            );
            anyhow::ensure!(
                self.redis_server.is_some() || self.redis_url.is_some(),
                "--peer redis needs --redis-server BIN or --redis-url URL"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_names_its_scenario_and_validates() {
        for scenario in Scenario::ALL {
            let config = LoadConfig::preset(scenario).unwrap();
            assert_eq!(config.scenario, scenario);
            config.validate().unwrap();
        }
    }

    #[test]
    fn a_file_overrides_a_preset_and_typos_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(&path, "contractors = 7\nduration_secs = 3.5\n").unwrap();
        let base = LoadConfig::preset(Scenario::Match).unwrap();
        let merged = LoadConfig::overlay_file(&base, &path).unwrap();
        assert_eq!(merged.contractors, 7);
        assert_eq!(merged.duration_secs, 3.5);
        assert_eq!(merged.jobs_per_sec, base.jobs_per_sec);
        std::fs::write(&path, "contractorz = 7\n").unwrap();
        assert!(LoadConfig::overlay_file(&base, &path).unwrap_err().to_string().contains("contractorz"));
    }

    #[test]
    fn validation_names_the_problem() {
        let bad = LoadConfig { duration_secs: 0.0, ..LoadConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("duration_secs"));
        let no_cluster = LoadConfig { server_storage: ServerStorage::Scylla, scylla_uri: None, ..LoadConfig::default() };
        assert!(no_cluster.validate().unwrap_err().to_string().contains("scylla_uri"));
        let cluster = LoadConfig { scylla_uri: Some("scylla://127.0.0.1:9042".into()), ..no_cluster };
        cluster.validate().unwrap();
        let bad = LoadConfig { k: 0, ..LoadConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("k must"));
        let bad =
            LoadConfig { scenario: Scenario::Chat, peer: Some(Peer::Redis), redis_url: Some("redis://x".into()), ..LoadConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("peer"));
        let bad = LoadConfig { peer: Some(Peer::Redis), ..LoadConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("--redis-server"));
        let bad = LoadConfig { centre: [91.0, 0.0], ..LoadConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("centre"));
        for cpus in ["", "zero", "0;1"] {
            let bad = LoadConfig { server_cpus: Some(cpus.into()), ..LoadConfig::default() };
            assert!(bad.validate().unwrap_err().to_string().contains("CPU lists"), "{cpus:?}");
        }
        LoadConfig { server_cpus: Some("0".into()), harness_cpus: Some("1,2".into()), ..LoadConfig::default() }.validate().unwrap();
        let gps_audit = LoadConfig { audit: true, ..LoadConfig::default() };
        assert!(gps_audit.validate().unwrap_err().to_string().contains("audit"));
        let match_preset = LoadConfig::preset(Scenario::Match).unwrap();
        let memory_audit = LoadConfig { audit: true, server_storage: ServerStorage::Memory, ..match_preset.clone() };
        assert!(memory_audit.validate().unwrap_err().to_string().contains("audit"));
        LoadConfig { audit: true, ..match_preset }.validate().unwrap();
    }
}
