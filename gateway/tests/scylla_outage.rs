//! One real outage of the store of record. A Cassandra node of this test's
//! own (so stopping it disturbs no other suite) is stopped while the server
//! is posting, accepting and chatting: the server keeps serving degraded,
//! `/readyz` says so, and what it acknowledges goes to its local journal.
//! Then the server is killed with `kill -9`, Cassandra is started again on
//! its data, and the server restarted: the journal drains, every
//! acknowledged job, accept and chat message is in Cassandra itself, and
//! every job's log is numbered without gaps.
//!
//! It runs where `SCYLLA_URI` is set (the machine has the Cassandra test
//! server, see deploy/cassandra/); its node listens on 127.0.0.5.
#![allow(clippy::expect_used, reason = "test code: a poisoned lock is a test failure")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::under_load::*;
use common::*;
use dispatch_actors::LogRecord;
use dispatch_gateway::storage::{Kind, ScyllaConfig, ScyllaStore, SnapshotStore};
use serde_json::Value;

const ADDRESS: &str = "127.0.0.5";
/// The node's default superuser (`cassandra`, password `cassandra`).
const LOGIN: &str = "cassandra";
const KEYSPACE_PREFIX: &str = "outage";

/// A single Cassandra node of this test's own, stopped when dropped.
struct Node {
    run: tempfile::TempDir,
}

impl Node {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/cassandra/cassandra.sh")
    }

    fn control(&self, command: &str) -> Result<()> {
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(Self::script())
            .arg(command)
            .env("DISPATCH_CASSANDRA_ADDRESS", ADDRESS)
            .env("DISPATCH_CASSANDRA_JMX", "7205")
            .env("DISPATCH_CASSANDRA_RUN", self.run.path())
            .output()?;
        ensure!(
            out.status.success(),
            "cassandra.sh {command}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("outage: cassandra {command} took {} ms", started.elapsed().as_millis());
        Ok(())
    }

    fn start() -> Result<Self> {
        let node = Self { run: tempfile::tempdir()? };
        node.control("start")?;
        Ok(node)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.control("stop");
    }
}

async fn readyz(addr: std::net::SocketAddr) -> Result<Value> {
    let (status, body) = http_at(addr, "GET", "/readyz", None).await?;
    ensure!(status == 200, "a degraded city is still in service: {status} {body}");
    Ok(serde_json::from_str(&body)?)
}

/// Polls `/readyz` until `want` holds of the city's store status, for at most `limit`.
async fn until_store(addr: std::net::SocketAddr, want: &str, limit: Duration) -> Result<Value> {
    let started = Instant::now();
    loop {
        let ready = readyz(addr).await?;
        if ready["cities"][CITY]["store"]["status"] == want {
            return Ok(ready);
        }
        if started.elapsed() > limit {
            bail!("store not {want} after {limit:?}: {ready}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn counts(acked: &Mutex<Acked>) -> (usize, usize, usize) {
    let acked = acked.lock().expect("lock");
    (acked.jobs.len(), acked.accepted.len(), acked.chats.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_store_outage_and_an_engine_crash() -> Result<()> {
    let Ok(_) = std::env::var("SCYLLA_URI") else {
        eprintln!("outage: skipped: SCYLLA_URI is not set (no Cassandra test server; see deploy/cassandra/cassandra.sh)");
        return Ok(());
    };
    let node = tokio::task::spawn_blocking(Node::start).await??;
    let data = tempfile::tempdir()?;
    let config = data.path().join("dispatch.toml");
    std::fs::write(
        &config,
        format!(
            "storage = \"scylla\"\nnode = \"outage-node\"\n[scylla]\nnodes = [\"{ADDRESS}:9042\"]\nkeyspace_prefix = \"{KEYSPACE_PREFIX}\"\n\
             user = \"{LOGIN}\"\npassword = \"{LOGIN}\"\n\
             [store_buffer]\ntimeout_ms = 1000\nprobe_first_ms = 100\nprobe_max_ms = 1000\n"
        ),
    )?;
    let flags = ["--config".to_owned(), config.display().to_string()];
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let (mut server, _) = start(data.path(), addr, &flags).await?;
    assert_eq!(readyz(addr).await?["status"], "ok");

    let acked = Arc::new(Mutex::new(Acked::default()));
    let bots = start_bots(addr, &acked).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The store of record goes away under load.
    let node = tokio::task::spawn_blocking(move || node.control("stop").map(|()| node)).await??;
    let degraded = until_store(addr, "degraded", Duration::from_secs(30)).await?;
    let at_outage = counts(&acked);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ready = readyz(addr).await?;
    let buffered = ready["cities"][CITY]["store"]["buffered"].as_u64().unwrap_or(0);
    let at_kill = counts(&acked);
    println!(
        "outage: degraded ({degraded}); acknowledged jobs/accepts/chats at the outage {at_outage:?}, at the kill {at_kill:?}; {buffered} writes journaled"
    );
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert!(buffered > 0, "writes wait in the journal: {ready}");
    let (finished, bots): (Vec<_>, Vec<_>) = bots.into_iter().partition(tokio::task::JoinHandle::is_finished);
    if let Some(bot) = finished.into_iter().next() {
        bail!("a bot saw an error during the outage: {:?}", bot.await?);
    }
    assert!(at_kill.2 > at_outage.2 + 10 && at_kill.0 > at_outage.0, "the server kept acknowledging while the store was down");
    let (_, metrics) = http_at(addr, "GET", "/metrics", None).await?;
    let journal_commits = metrics.lines().find(|l| l.starts_with("dispatch_journal_commit_seconds_count")).unwrap_or_default();
    assert!(!journal_commits.is_empty() && !journal_commits.ends_with(" 0"), "writes went through the journal: {journal_commits:?}");

    server.start_kill()?;
    server.wait().await?;
    for bot in bots {
        assert!(bot.await?.is_err(), "every bot ends when its socket dies");
    }
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));

    // Cassandra back on its data, then the server on its journal.
    let node = tokio::task::spawn_blocking(move || node.control("resume").map(|()| node)).await??;
    let restarted = Instant::now();
    let (server, ready_after) = start(data.path(), addr, &flags).await?;
    until_store(addr, "ok", Duration::from_secs(60)).await?;
    println!(
        "outage: restart to /readyz {} ms, journal drained {} ms after the restart",
        ready_after.as_millis(),
        restarted.elapsed().as_millis()
    );
    check_acknowledged(addr, &acked).await?;
    drop(server);

    // In Cassandra itself, with no server and no journal in between.
    let scylla = ScyllaConfig {
        nodes: vec![format!("{ADDRESS}:9042")],
        keyspace_prefix: KEYSPACE_PREFIX.into(),
        user: Some(LOGIN.into()),
        password: Some(LOGIN.into()),
        ..ScyllaConfig::default()
    };
    let store = ScyllaStore::open(ScyllaStore::connect(&scylla).await?, &scylla, CITY).await?;
    for &job in acked.jobs.keys() {
        assert!(store.get(Kind::Job, job).await?.is_some(), "job {job} is in Cassandra");
        let log = store.read_events(job, 0).await?;
        let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=log.len() as u64).collect::<Vec<_>>(), "job {job}: log numbered without gaps");
        for ((_, seq), text) in acked.chats.range((job, 0)..=(job, u64::MAX)) {
            let entry = log.iter().find(|e| e.seq == *seq).with_context(|| format!("job {job}: chat {seq} is in Cassandra"))?;
            match dispatch_gateway::storage::decode::<LogRecord>(&entry.payload)? {
                LogRecord::Chat { text: stored, .. } => assert_eq!(&stored, text, "job {job}: chat {seq}"),
                other => bail!("job {job}: entry {seq} is {other:?}, not the acknowledged chat"),
            }
        }
    }
    for (&job, &contractor) in &acked.accepted {
        let log = store.read_events(job, 0).await?;
        let accepted = log.iter().any(|e| {
            matches!(dispatch_gateway::storage::decode::<LogRecord>(&e.payload), Ok(LogRecord::Accepted { contractor: c }) if c.0 == contractor)
        });
        assert!(accepted, "job {job}: the accept by {contractor} is in Cassandra");
    }
    drop(node);
    Ok(())
}
