//! `kill -9` under load, then a restart on the same data: every job and chat
//! message that was acknowledged is there, in the state it was acknowledged
//! in, and the contractors are back. Once on the embedded store (the same data
//! directory) and once on the CQL cluster of `SCYLLA_URI` (the same
//! keyspaces). The time from the restart to `/readyz` answering 200 is
//! printed (docs/reliability.md records it).
#![allow(clippy::expect_used, reason = "test code: a poisoned lock is a test failure")]

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use common::under_load::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_work_survives_kill_9() -> Result<()> {
    let data = tempfile::tempdir()?;
    kill_9_under_load(data.path(), &[], "embedded").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_work_survives_kill_9_on_scylla() -> Result<()> {
    let Some(scylla) = scylla_config("crash")? else { return Ok(()) };
    let data = tempfile::tempdir()?;
    let config = data.path().join("dispatch.toml");
    std::fs::write(&config, format!("storage = \"scylla\"\n{}", scylla_section(&scylla)?))?;
    kill_9_under_load(data.path(), &["--config".into(), config.display().to_string()], "scylla").await
}

async fn kill_9_under_load(data: &Path, extra: &[String], store: &str) -> Result<()> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let (mut server, first_start) = start(data, addr, extra).await?;

    let acked = Arc::new(Mutex::new(Acked::default()));
    let bots = start_bots(addr, &acked).await;
    // Under load: jobs posted, offered, accepted and chatted on when the process dies.
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.start_kill()?;
    server.wait().await?;
    for bot in bots {
        assert!(bot.await?.is_err(), "every bot ends when its socket dies");
    }
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));
    assert!(acked.jobs.len() >= CUSTOMERS as usize && acked.chats.len() > 20 && !acked.accepted.is_empty(), "real load before the kill");

    let (server, ready_after) = start(data, addr, extra).await?;
    println!(
        "{store}: restart to /readyz after kill -9: {} ms (first start {} ms) with {} jobs, {} chat messages, {} contractors",
        ready_after.as_millis(),
        first_start.as_millis(),
        acked.jobs.len(),
        acked.chats.len(),
        CONTRACTORS
    );
    check_acknowledged(addr, &acked).await?;
    drop(server);
    Ok(())
}
