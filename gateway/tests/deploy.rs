//! The files under `deploy/`: every JSON and YAML file parses, and every metric the
//! Grafana dashboard queries is exported by a running engine.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Result;
use common::*;
use dispatch_gateway::Role;
use serde_json::{Value, json};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// Metric names in a PromQL expression: every `dispatch_…` identifier.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("dispatch_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn every_json_file_parses() -> Result<()> {
    let mut found = Vec::new();
    files(&deploy_dir(), "json", &mut found);
    assert!(!found.is_empty(), "no JSON under deploy/");
    for path in found {
        let text = std::fs::read_to_string(&path)?;
        serde_json::from_str::<Value>(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(())
}

#[test]
fn every_yaml_file_parses() -> Result<()> {
    let mut found = Vec::new();
    files(&deploy_dir(), "yml", &mut found);
    files(&deploy_dir(), "yaml", &mut found);
    assert!(!found.is_empty(), "no YAML under deploy/");
    for path in found {
        let text = std::fs::read_to_string(&path)?;
        let docs = yaml_rust2::YamlLoader::load_from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        assert!(!docs.is_empty(), "{} is empty", path.display());
    }
    // A broken file would be caught.
    assert!(yaml_rust2::YamlLoader::load_from_str("a: [1, 2").is_err());
    Ok(())
}

#[test]
fn metric_names_are_read_out_of_promql() {
    assert_eq!(metric_names(r#"sum by (role) (rate(dispatch_a_total[1m])) / dispatch_b{q="0.5"}"#), ["dispatch_a_total", "dispatch_b"]);
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_exported() -> Result<()> {
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(deploy_dir().join("grafana/dashboards/dispatch.json"))?)?;
    let wanted: BTreeSet<String> = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .flat_map(|t| metric_names(t["expr"].as_str().unwrap_or("")))
        .collect();
    assert!(wanted.len() >= 10, "{wanted:?}");

    // An engine on the embedded store, with a job through to acceptance and a
    // GPS fix dropped for the rate limit, so every kind of metric has a sample.
    let data = tempfile::tempdir()?;
    let dir = data.path().to_owned();
    let server = Server::start_with(move |c| {
        c.storage = dispatch_gateway::config::StorageKind::Embedded;
        c.data_dir = dir;
        c.gps_per_sec = 1;
    })
    .await?;
    let mut pro = contractor(&server, 1, "plumbing", 300.0).await?;
    let (lat, lng) = east(300.0);
    for ts in 1..=5 {
        pro.send(json!({"type": "gps", "lat": lat, "lng": lng, "ts": ts})).await?;
    }
    let mut customer = server.connect(Role::Customer, 7).await?;
    let job = customer.post_job("plumbing").await?;
    pro.wait("offer", |v| v["type"] == "offer").await?;
    pro.call(json!({"type": "accept", "job": job})).await?;
    customer.wait("accepted", |v| v["type"] == "event" && v["event"].get("accepted").is_some()).await?;
    let _ = customer.refused(json!({"type": "accept", "job": job})).await?;

    let (status, text) = server.http("GET", "/metrics", None).await?;
    assert_eq!(status, 200);
    let exported: BTreeSet<&str> =
        text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split(['{', ' ']).next()).collect();
    let missing: Vec<&String> = wanted.iter().filter(|m| !exported.contains(m.as_str())).collect();
    assert!(missing.is_empty(), "the dashboard queries metrics the engine does not export: {missing:?}");
    server.stop().await
}
