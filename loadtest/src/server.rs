//! The server under test: one the harness starts (`dispatch serve` in a child
//! process, so its memory is its own), or one already running; and reading
//! its `/metrics`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use dispatch_storage::{EmbeddedStore, ScyllaConfig, ScyllaStore, SnapshotStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{LoadConfig, ServerStorage};

/// A `dispatch serve` the harness started; killed when dropped.
pub struct SpawnedServer {
    child: tokio::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its JWT secret.
    pub secret: String,
    store: StoreAt,
    _dir: TempDir,
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `dispatch` binary: `explicit`, else the one beside this executable
/// (cargo builds both into the same directory).
pub fn find_dispatch(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        anyhow::ensure!(path.is_file(), "no server binary at {}", path.display());
        return Ok(path.to_owned());
    }
    let me = std::env::current_exe()?;
    let beside = me.parent().map(|d| d.join("dispatch")).context("no directory")?;
    anyhow::ensure!(
        beside.is_file(),
        "no `dispatch` binary beside {} (build it: cargo build --release -p dispatch-gateway), or pass --server-bin PATH or --target HOST:PORT",
        me.display()
    );
    Ok(beside)
}

/// A command running `bin`, on `cpus` if given (`taskset -c`, which execs
/// `bin` in its place, so the child's pid is the program's).
pub(crate) fn pinned(bin: &Path, cpus: Option<&str>) -> tokio::process::Command {
    match cpus {
        Some(cpus) => {
            let mut command = tokio::process::Command::new("taskset");
            command.args(["-c", cpus]).arg(bin);
            command
        }
        None => tokio::process::Command::new(bin),
    }
}

/// How long the audit waits for the server to drain what it buffered.
const AUDIT_DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// Where a started server keeps its state, for reading it back.
struct StoreAt {
    kind: ServerStorage,
    data: PathBuf,
    keyspace_prefix: String,
    scylla_uri: Option<String>,
}

impl StoreAt {
    /// `city`'s store, opened directly (the server must be gone).
    async fn open(&self, city: &str) -> Result<Arc<dyn SnapshotStore>> {
        Ok(match self.kind {
            ServerStorage::Embedded => Arc::new(EmbeddedStore::open(self.data.join(city))?),
            ServerStorage::Scylla => {
                let uri = self.scylla_uri.as_deref().context("no cluster")?;
                let config = ScyllaConfig { keyspace_prefix: self.keyspace_prefix.clone(), ..ScyllaConfig::default().with_uri(uri)? };
                Arc::new(ScyllaStore::open(ScyllaStore::connect(&config).await?, &config, city).await?)
            }
            ServerStorage::Memory => anyhow::bail!("a memory store keeps nothing to read back"),
        })
    }
}

impl SpawnedServer {
    /// Starts `bin serve` on a free loopback port with limits raised for load
    /// (GPS and chat rates per connection), and waits until `/readyz` is 200.
    pub async fn start(bin: &Path, load: &LoadConfig) -> Result<Self> {
        let (storage, scylla_uri) = (load.server_storage, load.scylla_uri.as_deref());
        let dir = std::env::temp_dir().join(format!("dispatch-loadtest-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let dir = TempDir(dir);
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.port()
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let secret = format!("loadtest-secret-{}-{port}-of-32-bytes-or-more", std::process::id());
        // The cluster goes to the server as its own `--scylla-uri` flag, which
        // parses and checks it; fresh keyspaces per run, as the embedded store
        // gets a fresh directory.
        let keyspace_prefix = format!("loadtest{}_{port}", std::process::id());
        let kind = storage;
        let (storage, scylla, uri_flag) = match storage {
            ServerStorage::Embedded => ("embedded", String::new(), None),
            ServerStorage::Memory => ("memory", String::new(), None),
            ServerStorage::Scylla => {
                let uri = scylla_uri.context("--server-storage scylla needs --scylla-uri")?;
                ("scylla", format!("[scylla]\nkeyspace_prefix = \"{keyspace_prefix}\"\n"), Some(uri))
            }
        };
        let config = dir.0.join("dispatch.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"{addr}\"\ndata_dir = \"{}\"\nstorage = \"{storage}\"\njwt_secret = \"{secret}\"\n\
                 gps_per_sec = 100000\nchat_per_sec = 10000\nidle_timeout_secs = 120\n{scylla}[payments]\nprovider = \"{payments}\"\n",
                dir.0.join("data").display(),
                payments = match load.server_payments {
                    crate::config::ServerPayments::Sandbox => "sandbox",
                    crate::config::ServerPayments::Off => "off",
                }
            ),
        )?;
        let child = pinned(bin, load.server_cpus.as_deref())
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args(uri_flag.map(|uri| ["--scylla-uri", uri]).into_iter().flatten())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let store = StoreAt { kind, data: dir.0.join("data"), keyspace_prefix, scylla_uri: scylla_uri.map(str::to_owned) };
        let mut server = Self { child, addr, secret, store, _dir: dir };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = http_get(addr, "/readyz").await {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                anyhow::bail!("the server exited during start-up: {status}");
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the server was not ready within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's process id.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits until the server has no buffered writes (`/readyz` says `ok`),
    /// kills it, and checks its store against `acknowledged` with nothing in
    /// between (see [`crate::audit`]).
    pub async fn audit(&mut self, config: &LoadConfig, acknowledged: &BTreeMap<u64, u64>) -> Result<crate::audit::Audit> {
        let started = tokio::time::Instant::now();
        loop {
            let (status, body) = http_get(self.addr, "/readyz").await?;
            if status == 200 && serde_json::from_str::<serde_json::Value>(&body)?["status"] == "ok" {
                break;
            }
            anyhow::ensure!(started.elapsed() < AUDIT_DRAIN_LIMIT, "still not drained {AUDIT_DRAIN_LIMIT:?} after the run: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let drained = started.elapsed();
        self.child.kill().await?;
        let store = self.store.open(&config.city).await?;
        let mut audit = crate::audit::check(&*store, acknowledged).await;
        audit.drained_in_ms = u64::try_from(drained.as_millis()).unwrap_or(u64::MAX);
        Ok(audit)
    }
}

/// CPU time a process has used so far (all its threads), from
/// `/proc/PID/task/*/schedstat`; `None` where that is not readable. Threads
/// that ended are not counted, so compare readings of long-lived processes.
#[must_use]
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut ns: u64 = 0;
    let mut read_any = false;
    for task in tasks.flatten() {
        // A thread may end between the listing and the read: skip it.
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        if let Some(Ok(task_ns)) = stat.split_whitespace().next().map(str::parse::<u64>) {
            ns += task_ns;
            read_any = true;
        }
    }
    read_any.then(|| Duration::from_nanos(ns))
}

/// A plain HTTP/1.1 GET: status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await.context("connect timed out")??;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await.context("read timed out")??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP header end")?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no HTTP status")?;
    let chunked = head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding: chunked"));
    Ok((status, if chunked { dechunk(body) } else { body.to_owned() }))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The server's metric samples, summed over labels: `name → value`.
pub async fn scrape(addr: SocketAddr) -> Result<BTreeMap<String, f64>> {
    let (status, body) = http_get(addr, "/metrics").await?;
    anyhow::ensure!(status == 200, "/metrics answered {status}");
    Ok(parse_metrics(&body))
}

/// Sums Prometheus text samples by metric name (labels dropped), except a
/// summary's quantiles, kept apart as `name:quantile` (a sum of quantiles
/// means nothing).
#[must_use]
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let quantile = labels.split(',').find_map(|l| l.trim().strip_prefix("quantile=\"")?.split('"').next());
        let key = match quantile {
            Some(q) => format!("{name}:{q}"),
            None => name.to_owned(),
        };
        *out.entry(key).or_insert(0.0) += value;
        if quantile.is_none() && !labels.is_empty() {
            // Each labelled series also stays apart, as written.
            *out.entry(series.to_owned()).or_insert(0.0) += value;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_summed_over_labels() {
        let text = "# TYPE a counter\na{role=\"x\"} 2\na{role=\"y\"} 3\nb 1.5\nbroken line\n";
        let m = parse_metrics(text);
        assert_eq!(m["a"], 5.0);
        assert_eq!((m["a{role=\"x\"}"], m["a{role=\"y\"}"]), (2.0, 3.0));
        assert_eq!(m["b"], 1.5);
        assert_eq!(m.len(), 4);
        let summary = "s{store=\"scylla\",quantile=\"0.99\"} 0.02\ns{quantile=\"0.5\",store=\"scylla\"} 0.003\ns_sum{store=\"scylla\"} 4\ns_count 800\n";
        let m = parse_metrics(summary);
        assert_eq!((m["s:0.99"], m["s:0.5"], m["s_sum"], m["s_count"]), (0.02, 0.003, 4.0, 800.0));
        assert!(!m.contains_key("s"), "quantiles are never summed");
        assert_eq!(m["s_sum{store=\"scylla\"}"], 4.0);
    }

    #[test]
    fn a_busy_process_is_seen_using_cpu() {
        // `yes` is one busy thread: its CPU time only grows.
        let mut busy = std::process::Command::new("yes").stdout(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let before = cpu_time(busy.id()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let after = cpu_time(busy.id()).unwrap();
        busy.kill().unwrap();
        busy.wait().unwrap();
        assert!(after > before, "{before:?} then {after:?}");
        assert!(cpu_time(u32::MAX).is_none());
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), "hello world");
    }

    #[test]
    fn a_missing_server_binary_is_named() {
        let err = find_dispatch(Some(Path::new("/nonexistent/dispatch"))).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/dispatch"), "{err}");
    }
}
