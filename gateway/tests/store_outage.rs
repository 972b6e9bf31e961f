//! The store goes away under a running server: the city keeps serving from
//! memory, `/readyz` says degraded, writes wait in the bounded buffer, and
//! everything acknowledged reaches the store once it is back.

mod common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use common::*;
use dispatch_gateway::Role;
use dispatch_gateway::storage::{Kind, LogEntry, MemoryStore, ResilienceConfig, ResilientStore, SnapshotStore};
use serde_json::{Value, json};

async fn readyz(server: &Server) -> Result<Value> {
    let (status, body) = server.http("GET", "/readyz", None).await?;
    assert_eq!(status, 200, "a degraded city is still in service: {body}");
    Ok(serde_json::from_str(&body)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_degrades_serving_and_loses_nothing() -> Result<()> {
    let backend = Arc::new(MemoryStore::new());
    let config = ResilienceConfig { timeout_ms: 1_000, probe_first_ms: 50, probe_max_ms: 200, ..ResilienceConfig::default() };
    let server = Server::start_on_store(Arc::new(ResilientStore::new(backend.clone(), config))).await?;
    assert_eq!(readyz(&server).await?["status"], "ok");

    backend.set_unavailable(true);
    // Readiness notices before any write does.
    let ready = readyz(&server).await?;
    assert_eq!(ready["status"], "degraded");
    assert_eq!(ready["cities"][CITY]["store"]["status"], "degraded");

    // A job posted and chatted on while the store is down is acknowledged.
    let mut customer = server.connect(Role::Customer, 7).await?;
    let job = customer.post_job("plumbing").await?;
    customer.call(json!({"type": "chat", "job": job, "text": "the tap is in the cellar"})).await?;
    let ready = readyz(&server).await?;
    assert!(ready["cities"][CITY]["store"]["buffered"].as_u64().unwrap_or(0) >= 2, "{ready}");
    let (_, metrics) = server.http("GET", "/metrics", None).await?;
    assert!(metrics.lines().any(|l| l.starts_with("dispatch_store_degraded") && l.ends_with(" 1")), "degraded gauge set");
    assert!(backend.ping().await.is_err(), "still down: the acknowledgements came from the buffer");

    backend.set_unavailable(false);
    let mut healthy = false;
    for _ in 0..100 {
        if readyz(&server).await?["status"] == "ok" {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(healthy, "the buffer drained once the store was back");
    assert!(backend.get(Kind::Job, job).await?.is_some(), "the job reached the store");
    let log = backend.read_events(job, 1).await?;
    assert!(log.len() >= 2, "posted and chat are in the log: {log:?}");
    assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=log.len() as u64).collect::<Vec<_>>(), "numbered without gaps");
    server.stop().await
}

/// A store that answers everything but never a ping.
struct SilentPing(MemoryStore);

#[async_trait::async_trait]
impl SnapshotStore for SilentPing {
    async fn put(&self, kind: Kind, id: u64, blob: Vec<u8>) -> dispatch_gateway::storage::error::Result<()> {
        self.0.put(kind, id, blob).await
    }
    async fn put_batch(&self, items: Vec<(Kind, u64, Vec<u8>)>) -> dispatch_gateway::storage::error::Result<()> {
        self.0.put_batch(items).await
    }
    async fn get(&self, kind: Kind, id: u64) -> dispatch_gateway::storage::error::Result<Option<Vec<u8>>> {
        self.0.get(kind, id).await
    }
    async fn delete(&self, kind: Kind, id: u64) -> dispatch_gateway::storage::error::Result<()> {
        self.0.delete(kind, id).await
    }
    async fn scan(&self, kind: Kind, after: Option<u64>, limit: usize) -> dispatch_gateway::storage::error::Result<Vec<(u64, Vec<u8>)>> {
        self.0.scan(kind, after, limit).await
    }
    async fn append_event(&self, job: u64, entry: LogEntry) -> dispatch_gateway::storage::error::Result<()> {
        self.0.append_event(job, entry).await
    }
    async fn last_event_seq(&self, job: u64) -> dispatch_gateway::storage::error::Result<u64> {
        self.0.last_event_seq(job).await
    }
    async fn read_events(&self, job: u64, from_seq: u64) -> dispatch_gateway::storage::error::Result<Vec<LogEntry>> {
        self.0.read_events(job, from_seq).await
    }
    async fn scan_events(&self, after: Option<(u64, u64)>, limit: usize) -> dispatch_gateway::storage::error::Result<Vec<(u64, LogEntry)>> {
        self.0.scan_events(after, limit).await
    }
    async fn ping(&self) -> dispatch_gateway::storage::error::Result<()> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_store_that_hangs_is_reported_degraded_before_the_probe_gives_up() -> Result<()> {
    let server = Server::start_on_store(Arc::new(SilentPing(MemoryStore::new()))).await?;
    let asked = std::time::Instant::now();
    let ready = readyz(&server).await?;
    assert!(asked.elapsed() < Duration::from_secs(2), "answered in {:?}", asked.elapsed());
    assert_eq!(ready["cities"][CITY]["store"]["status"], "degraded");
    assert!(ready["cities"][CITY]["store"]["error"].as_str().unwrap_or("").contains("did not answer"), "{ready}");
    server.stop().await
}
