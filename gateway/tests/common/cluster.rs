//! A cluster of real processes on loopback: one nats-server, `dispatch
//! engine`s and `dispatch gateway`s (this crate's binary), on the CQL
//! cluster of `SCYLLA_URI` in keyspaces of the test's own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use dispatch_gateway::{Auth, Role};
use serde_json::Value;

use super::{Client, http_at};

pub const SECRET: &str = "cluster-test-secret-of-at-least-32-bytes";

/// The card processor's webhook secret every process of the cluster is configured with.
pub const WEBHOOK_SECRET: &str = "whsec_cluster";
/// The secret the engines sign the cities' events with, to [`Cluster::hook`].
pub const HOOK_SECRET: &str = "whsec_cluster_events_0123456789abcdef";

/// A free loopback port (bound, read, released).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process, killed when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap_or(0)
    }

    /// Sends `signal` (`-9`, `-STOP`, `-CONT`, `-TERM`).
    pub fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill").args([signal, &self.pid().to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill {signal} {} failed", self.name);
        Ok(())
    }

    /// Waits for the process to exit (after a signal).
    pub fn wait(&mut self) -> Result<()> {
        self.child.wait()?;
        Ok(())
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The cluster's shared pieces: NATS, the config file, the work directory.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    /// Where the engines post the cities' events (`[webhooks]`, signed with [`HOOK_SECRET`]): a test may listen there.
    pub hook: SocketAddr,
    pub nats_url: String,
    nats: Proc,
    pub config: PathBuf,
    pub scylla: dispatch_gateway::storage::ScyllaConfig,
    pub auth: Auth,
    /// Held while the cluster lives.
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// Why the cluster tests cannot run here, if they cannot.
fn missing() -> Option<String> {
    if std::env::var("SCYLLA_URI").is_err() {
        return Some("SCYLLA_URI is not set (no CQL cluster; see deploy/cassandra/cassandra.sh)".into());
    }
    if Command::new("nats-server").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        return Some("nats-server is not installed (Debian package nats-server; .ci/run installs it)".into());
    }
    None
}

/// One cluster at a time: six processes per cluster on a 2-core machine
/// already contend; two clusters at once would stretch pauses past the
/// lease TTL and test the machine rather than the code.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Cluster {
    /// NATS started, the config written and the lease table created;
    /// `None` (saying why on stderr) where the tests cannot run.
    pub async fn start(test: &str, pins: &[(&str, &str)], ttl_secs: u32) -> Result<Option<Cluster>> {
        use std::io::Write;
        let turn = ONE_AT_A_TIME.lock().await;
        if let Some(why) = missing() {
            let _ = writeln!(std::io::stderr(), "{test}: skipped: {why}");
            return Ok(None);
        }
        let Some(scylla) = super::scylla_config(test)? else { return Ok(None) };
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let log = dir.path().join("nats.log");
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("nats-server")?;
        let nats = Proc { name: "nats".into(), child, addr: SocketAddr::from(([127, 0, 0, 1], port)), log };
        wait_for_port(nats.addr).await.context("nats-server listening")?;
        let nats_url = format!("nats://127.0.0.1:{port}");
        // The lease schema is created once, here, before any engine starts
        // (Cassandra 5.0 lacks transactional metadata: concurrent creators can clash).
        let session = dispatch_gateway::storage::ScyllaStore::connect(&scylla).await?;
        dispatch_gateway::storage::scylladb::Leases::open(session, &scylla).await?;
        let pins: String = pins.iter().map(|(city, node)| format!("\"{city}\" = \"{node}\"\n")).collect();
        let hook = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let toml = format!(
            "jwt_secret = \"{SECRET}\"\nstorage = \"scylla\"\noffer_timeout_secs = 30\n\
             [payments]\nwebhook_secrets = [\"{WEBHOOK_SECRET}\"]\n\
             [webhooks]\nallow_networks = [\"127.0.0.0/8\"]\nbackoff_first_ms = 100\nbackoff_max_ms = 1000\n\
             [[webhooks.endpoints]]\nname = \"cluster-test\"\nurl = \"http://{hook}/hook\"\nsecrets = [\"{HOOK_SECRET}\"]\n\
             [cluster]\nnats_url = \"{nats_url}\"\nlease_ttl_secs = {ttl_secs}\nrequest_timeout_ms = 2000\n\
             [cluster.pins]\n{pins}{}",
            super::scylla_section(&scylla)?
        );
        let config = dir.path().join("cluster.toml");
        std::fs::write(&config, toml)?;
        Ok(Some(Cluster { dir, hook, nats_url, nats, config, scylla, auth: Auth::new(SECRET.as_bytes()), _turn: turn }))
    }

    fn spawn(&self, role: &str, name: &str) -> Result<Proc> {
        let port = free_port()?;
        let log = self.dir.path().join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_dispatch"))
            .arg(role)
            .arg("--config")
            .arg(&self.config)
            .args(["--node", name, "--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "info")
            // Appended to across restarts of the same node.
            .stdout(std::fs::OpenOptions::new().create(true).append(true).open(&log)?)
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("dispatch {role} {name}"))?;
        Ok(Proc { name: name.into(), child, addr: SocketAddr::from(([127, 0, 0, 1], port)), log })
    }

    /// A `dispatch engine` named `name`.
    pub async fn engine(&self, name: &str) -> Result<Proc> {
        let proc = self.spawn("engine", name)?;
        wait_for_port(proc.addr).await.with_context(|| format!("{name} listening:\n{}", proc.log()))?;
        Ok(proc)
    }

    /// A `dispatch gateway` named `name`.
    pub async fn gateway(&self, name: &str) -> Result<Proc> {
        let proc = self.spawn("gateway", name)?;
        wait_for_port(proc.addr).await.with_context(|| format!("{name} listening:\n{}", proc.log()))?;
        Ok(proc)
    }

    /// A WebSocket client of `city` through `gateway`.
    pub async fn client(&self, gateway: &Proc, role: Role, sub: u64, city: &str) -> Result<Client> {
        self.client_at(gateway.addr, role, sub, city).await
    }

    /// A WebSocket client of `city` through the gateway at `addr`.
    pub async fn client_at(&self, addr: SocketAddr, role: Role, sub: u64, city: &str) -> Result<Client> {
        let token = self.auth.issue(role, sub, city, 3_600).map_err(|e| anyhow!("{e}"))?;
        Client::connect(addr, &token).await
    }

    /// A session on the cluster's CQL nodes.
    pub async fn session(&self) -> Result<Arc<dispatch_gateway::storage::scylladb::ScyllaSession>> {
        Ok(dispatch_gateway::storage::ScyllaStore::connect(&self.scylla).await?)
    }

    /// The NATS server's log (for failures).
    pub fn nats_log(&self) -> String {
        self.nats.log()
    }
}

/// Waits until something listens on `addr` (20 s).
pub async fn wait_for_port(addr: SocketAddr) -> Result<()> {
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nothing listening on {addr} after 20 s")
}

/// The cities an engine owns now, by epoch (its `/readyz`).
pub async fn owned(engine: &Proc) -> Result<serde_json::Map<String, Value>> {
    let (status, body) = http_at(engine.addr, "GET", "/readyz", None).await?;
    anyhow::ensure!(status == 200, "{}: /readyz {status}: {body}", engine.name);
    let ready: Value = serde_json::from_str(&body)?;
    Ok(ready["owned"].as_object().cloned().unwrap_or_default())
}

/// The owner a gateway knows for each city (its `/readyz`).
pub async fn owners(gateway: &Proc) -> Result<serde_json::Map<String, Value>> {
    let (status, body) = http_at(gateway.addr, "GET", "/readyz", None).await?;
    anyhow::ensure!(status == 200, "{}: /readyz {status}: {body}", gateway.name);
    let ready: Value = serde_json::from_str(&body)?;
    Ok(ready["cities"].as_object().cloned().unwrap_or_default())
}

/// Waits until `check` holds (polling every 100 ms), for up to `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let start = std::time::Instant::now();
    let mut last = None;
    while start.elapsed() < limit {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what}: not within {limit:?} (last error: {last:?})")
}
