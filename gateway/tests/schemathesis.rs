//! schemathesis (PyPI) against the admin API of a live server: it reads the
//! server's own OpenAPI document, generates requests from it (the examples
//! the document gives, then fuzzed values), sends them with an admin's token
//! and runs every check it has — no 5xx, every answer's status, content type
//! and body as the document says. There is a job and a contractor for the
//! examples to find.
//!
//! Needs the `schemathesis` command (`deploy/api-checks/schemathesis.sh
//! install`, which `.ci/run` runs); without it the test says it is skipped.

mod common;

use anyhow::{Context, Result};
use common::*;
use dispatch_gateway::{Auth, Role};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_wrong_with_the_admin_api() -> Result<()> {
    if std::process::Command::new("schemathesis").arg("--version").output().is_err() {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "schemathesis: skipped: not installed (deploy/api-checks/schemathesis.sh install)");
        return Ok(());
    }
    // Every network allowed for webhook endpoints: which addresses a server
    // may reach is its configuration's, not the document's, so an inward URL
    // (refused with 400 by default, `webhooks.rs` and `ssrf.rs` test it)
    // would read to schemathesis as valid data refused. Deliveries to what it
    // adds fail and are retried in the background, as for any dead endpoint.
    let server = Server::start_with(|c| c.webhooks.allow_networks = vec!["0.0.0.0/0".into(), "::/0".into()]).await?;
    let mut pro = contractor(&server, 7, "plumbing", 400.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let job = customer.post_job("plumbing").await?;
    pro.wait("the offer", |v| v["type"] == "offer" && v["job"] == job).await?;
    customer.call(json!({"type": "chat", "job": job, "text": "the side door"})).await?;

    let admin = Auth::new(b"test-secret-of-at-least-32-bytes").issue(Role::Admin, 1, "", 600)?;
    let reports = tempfile::tempdir()?;
    let run = tokio::process::Command::new("schemathesis")
        .arg("run")
        .arg(format!("http://{}/v1/openapi.json", server.addr))
        .args(["--header", &format!("Authorization: Bearer {admin}")])
        .args(["--checks", "all", "--max-examples", "40", "--seed", "20261203"])
        .arg("--report-dir")
        .arg(reports.path())
        .env("NO_COLOR", "1")
        .output()
        .await
        .context("schemathesis")?;
    let said = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "schemathesis found problems:\n{said}");
    assert!(said.contains("passed") && !said.contains(" failed"), "{said}");
    server.stop().await
}
