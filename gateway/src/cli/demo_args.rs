//! `dispatch demo` flags: a city preset or any place, and the simulated load.

use std::path::PathBuf;

use crate::config::{ServeConfig, StorageKind};

/// `dispatch demo` flags.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// City preset: des-moines, kansas-city or omaha.
    #[arg(long, default_value = "des-moines")]
    pub city: String,
    /// A custom centre `LAT,LNG` (with --half-km) instead of a preset.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub centre: Option<Vec<f64>>,
    /// Half the side of the custom city's box, km.
    #[arg(long, default_value_t = 12.0)]
    pub half_km: f64,
    /// A custom city box `SOUTH,WEST,NORTH,EAST` instead of a preset.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true, conflicts_with = "centre")]
    pub bbox: Option<Vec<f64>>,
    /// Simulated contractors.
    #[arg(long, default_value_t = 500)]
    pub contractors: usize,
    /// Seconds between posted jobs.
    #[arg(long, default_value_t = 2.0)]
    pub job_every_secs: f64,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Data directory (default: a fresh one under the system's temp directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Map tile URL template with {z}, {x} and {y} (default: no tiles).
    #[arg(long, env = "DISPATCH_TILE_URL")]
    pub tile_url: Option<String>,
    /// Where the demo keeps its state: a fresh embedded store (default), memory,
    /// or fresh keyspaces on the ScyllaDB / Cassandra cluster of --scylla-uri.
    #[arg(long, value_enum, default_value = "embedded")]
    pub storage: StorageKind,
    /// The cluster's contact points, `scylla://host:9042[,host:port…]` (with --storage scylla).
    #[arg(long, env = "DISPATCH_SCYLLA_URI")]
    pub scylla_uri: Option<String>,
}

impl DemoArgs {
    /// The server and simulation settings these flags describe.
    pub fn resolve(&self) -> anyhow::Result<(ServeConfig, crate::demo::SimConfig)> {
        let city = match (&self.centre, &self.bbox) {
            (_, Some(b)) => {
                let &[south, west, north, east] = b.as_slice() else {
                    anyhow::bail!("--bbox takes four numbers: SOUTH,WEST,NORTH,EAST");
                };
                dispatch_engine::GeoPoint::new(south, west)?;
                dispatch_engine::GeoPoint::new(north, east)?;
                anyhow::ensure!(south < north && west < east, "--bbox is SOUTH,WEST,NORTH,EAST with south < north and west < east");
                crate::cities::CityConfig::boxed("custom", [(south + north) / 2.0, (west + east) / 2.0], [south, west, north, east])
            }
            (Some(c), None) => {
                let &[lat, lng] = c.as_slice() else {
                    anyhow::bail!("--centre takes two numbers: LAT,LNG");
                };
                anyhow::ensure!(self.half_km > 0.0 && self.half_km <= 200.0, "--half-km must be in (0, 200]");
                let centre = dispatch_engine::GeoPoint::new(lat, lng)?;
                let n = centre.destination(0.0, self.half_km * 1000.0).lat();
                let s = centre.destination(180.0, self.half_km * 1000.0).lat();
                let e = centre.destination(90.0, self.half_km * 1000.0).lng();
                let w = centre.destination(270.0, self.half_km * 1000.0).lng();
                crate::cities::CityConfig::boxed("custom", [lat, lng], [s, w, n, e])
            }
            (None, None) => crate::cities::CityConfig::defaults()
                .into_iter()
                .find(|c| c.name == self.city)
                .ok_or_else(|| anyhow::anyhow!("unknown city preset {}; use des-moines, kansas-city or omaha, or --centre", self.city))?,
        };
        anyhow::ensure!(self.job_every_secs > 0.0 && self.job_every_secs.is_finite(), "--job-every-secs must be positive");
        let data_dir = match &self.data_dir {
            Some(d) => d.clone(),
            None => std::env::temp_dir().join(format!(
                "dispatch-demo-{}-{}",
                std::process::id(),
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
            )),
        };
        let mut scylla = dispatch_storage::ScyllaConfig::default();
        if self.storage == StorageKind::Scylla {
            let uri = self
                .scylla_uri
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("--storage scylla needs --scylla-uri (or DISPATCH_SCYLLA_URI)"))?;
            scylla = scylla.with_uri(uri)?;
            // Fresh keyspaces per run, as the embedded demo gets a fresh directory.
            let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            scylla.keyspace_prefix = format!("demo{stamp}");
        }
        let serve = ServeConfig {
            listen: self.listen,
            data_dir,
            storage: self.storage,
            scylla,
            dev_auth: true,
            jwt_secret: "demo-only-secret: the demo issues its own tokens".into(),
            gps_per_sec: 50,
            tile_url: self.tile_url.clone(),
            cities: vec![city.clone()],
            ..ServeConfig::default()
        };
        serve.validate()?;
        let sim = crate::demo::SimConfig {
            contractors: self.contractors,
            job_every: std::time::Duration::from_secs_f64(self.job_every_secs),
            ..crate::demo::SimConfig::for_city(city)
        };
        Ok((serve, sim))
    }
}
