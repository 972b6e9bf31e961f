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
    let exported: BTreeSet<&str> = text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split(['{', ' ']).next()).collect();
    let missing: Vec<&String> = wanted.iter().filter(|m| !exported.contains(m.as_str())).collect();
    assert!(missing.is_empty(), "the dashboard queries metrics the engine does not export: {missing:?}");
    server.stop().await
}

fn yaml(path: &str) -> Result<yaml_rust2::Yaml> {
    let text = std::fs::read_to_string(deploy_dir().join(path))?;
    let mut docs = yaml_rust2::YamlLoader::load_from_str(&text)?;
    anyhow::ensure!(!docs.is_empty(), "{path} is empty");
    Ok(docs.remove(0))
}

#[test]
fn the_kubernetes_configmap_is_a_config_the_engine_accepts() -> Result<()> {
    let configmap = yaml("k8s/configmap.yaml")?;
    let toml = configmap["data"]["dispatch.toml"].as_str().ok_or_else(|| anyhow::anyhow!("no data.dispatch.toml"))?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dispatch.toml");
    std::fs::write(&path, toml)?;
    let mut config = dispatch_gateway::ServeConfig::from_toml_file(&path)?;
    assert_eq!(config.storage, dispatch_gateway::config::StorageKind::Scylla);
    assert_eq!(config.scylla.local_dc.as_deref(), Some("dc1"));
    assert_eq!(config.cluster.nats_url, "nats://nats:4222", "the NATS Service of nats.yaml");
    config.jwt_secret = "from the Secret: 32 or more random bytes".into();
    config.validate()?;
    Ok(())
}

/// Checks a pod template runs `role` with the probes, port, user, Secret and ConfigMap it needs.
fn check_pod(workload: &yaml_rust2::Yaml, role: &str) -> Result<()> {
    let pod = &workload["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["args"][0].as_str(), Some(role));
    assert_eq!(container["readinessProbe"]["httpGet"]["path"].as_str(), Some("/readyz"));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"].as_str(), Some("/healthz"));
    assert_eq!(container["ports"][0]["containerPort"].as_i64(), Some(8080));
    assert_eq!(pod["securityContext"]["runAsUser"].as_i64(), Some(10001), "the Dockerfile's user");
    let env = container["env"].as_vec().into_iter().flatten();
    let secret_ref =
        env.clone().find(|e| e["name"].as_str() == Some("DISPATCH_JWT_SECRET")).map(|e| e["valueFrom"]["secretKeyRef"].clone());
    let secret = yaml("k8s/secret.yaml")?;
    let secret_ref = secret_ref.ok_or_else(|| anyhow::anyhow!("the JWT secret is not taken from a Secret"))?;
    assert_eq!(secret_ref["name"].as_str(), secret["metadata"]["name"].as_str());
    assert!(!secret["stringData"][secret_ref["key"].as_str().unwrap_or("")].is_badvalue(), "the key exists in the Secret");
    let node = env.clone().find(|e| e["name"].as_str() == Some("DISPATCH_NODE")).map(|e| e["valueFrom"]["fieldRef"]["fieldPath"].clone());
    assert_eq!(node.and_then(|n| n.as_str().map(str::to_owned)).as_deref(), Some("metadata.name"), "each pod its own node name");
    let configmap = yaml("k8s/configmap.yaml")?;
    let volumes = pod["volumes"].as_vec().into_iter().flatten();
    assert!(volumes.clone().any(|v| v["configMap"]["name"].as_str() == configmap["metadata"]["name"].as_str()), "the ConfigMap is mounted");
    let config_path = env.clone().find(|e| e["name"].as_str() == Some("DISPATCH_CONFIG")).and_then(|e| e["value"].as_str()).unwrap_or("");
    assert_eq!(config_path, "/etc/dispatch/dispatch.toml");
    Ok(())
}

#[test]
fn the_kubernetes_manifests_fit_together() -> Result<()> {
    let kustomization = yaml("k8s/kustomization.yaml")?;
    let listed: BTreeSet<&str> = kustomization["resources"].as_vec().into_iter().flatten().filter_map(|r| r.as_str()).collect();
    let mut found = Vec::new();
    files(&deploy_dir().join("k8s"), "yaml", &mut found);
    for path in &found {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(name == "kustomization.yaml" || listed.contains(name), "{name} is not in kustomization.yaml");
    }
    let docs: Vec<yaml_rust2::Yaml> = found
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|text| yaml_rust2::YamlLoader::load_from_str(&text).ok())
        .flatten()
        .collect();
    let kinds: BTreeSet<String> = docs.iter().filter_map(|d| d["kind"].as_str().map(str::to_owned)).collect();
    for kind in ["Deployment", "StatefulSet", "Service", "HorizontalPodAutoscaler", "ConfigMap", "Secret", "PodDisruptionBudget"] {
        assert!(kinds.contains(kind), "no {kind} among {kinds:?}");
    }
    let named = |kind: &str, name: &str| {
        docs.iter().find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name)).cloned()
    };
    let gateway = named("Deployment", "dispatch-gateway").ok_or_else(|| anyhow::anyhow!("no gateway Deployment"))?;
    let engine = named("StatefulSet", "dispatch-engine").ok_or_else(|| anyhow::anyhow!("no engine StatefulSet"))?;
    check_pod(&gateway, "gateway")?;
    check_pod(&engine, "engine")?;
    assert_eq!(engine["spec"]["podManagementPolicy"].as_str(), Some("OrderedReady"), "the first engine creates the lease table alone");

    // Clients reach the gateways; the HPA scales them (never held at one replica); each kind has a PDB.
    let service = named("Service", "dispatch").ok_or_else(|| anyhow::anyhow!("no dispatch Service"))?;
    assert_eq!(service["spec"]["selector"], gateway["spec"]["selector"]["matchLabels"]);
    let hpa = named("HorizontalPodAutoscaler", "dispatch-gateway").ok_or_else(|| anyhow::anyhow!("no HPA"))?;
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"].as_str(), gateway["metadata"]["name"].as_str());
    assert!(hpa["spec"]["maxReplicas"].as_i64().is_some_and(|n| n > 1));
    for workload in [&gateway, &engine] {
        let app = &workload["spec"]["selector"]["matchLabels"];
        assert!(
            docs.iter().any(|d| d["kind"].as_str() == Some("PodDisruptionBudget") && d["spec"]["selector"]["matchLabels"] == *app),
            "{app:?} has a PDB"
        );
    }
    let headless = named("Service", "dispatch-engine").ok_or_else(|| anyhow::anyhow!("no engine Service"))?;
    assert_eq!(engine["spec"]["serviceName"].as_str(), headless["metadata"]["name"].as_str());
    assert!(named("Service", "nats").is_some() && named("Deployment", "nats").is_some(), "NATS runs beside them");
    // The engines' ScyllaDB login comes from a Secret that has both keys.
    let env: Vec<&yaml_rust2::Yaml> = engine["spec"]["template"]["spec"]["containers"][0]["env"].as_vec().into_iter().flatten().collect();
    for (var, key) in [("DISPATCH_SCYLLA_USER", "user"), ("DISPATCH_SCYLLA_PASSWORD", "password")] {
        let from = env.iter().find(|e| e["name"].as_str() == Some(var)).map(|e| &e["valueFrom"]["secretKeyRef"]);
        let from = from.ok_or_else(|| anyhow::anyhow!("the engine has no {var}"))?;
        assert_eq!(from["key"].as_str(), Some(key));
        let secret = named("Secret", from["name"].as_str().unwrap_or("")).ok_or_else(|| anyhow::anyhow!("no Secret for {var}"))?;
        assert!(!secret["stringData"][key].is_badvalue(), "the Secret has {key}");
    }
    Ok(())
}

#[test]
fn the_compose_file_runs_three_engines_and_two_gateways_on_three_scylla_nodes() -> Result<()> {
    let compose = yaml("docker-compose.yml")?;
    let services = &compose["services"];
    let nodes: Vec<String> = (1..=3).map(|i| format!("scylla-{i}")).collect();
    for name in nodes.iter().map(String::as_str).chain(["nats", "engine-1", "engine-2", "engine-3", "gateway-1", "gateway-2"]) {
        assert!(!services[name].is_badvalue(), "no service {name}");
    }
    let engine = &services["engine-1"];
    assert_eq!(engine["command"][0].as_str(), Some("engine"));
    let env = &engine["environment"];
    assert_eq!(env["DISPATCH_STORAGE"].as_str(), Some("scylla"));
    assert_eq!(env["DISPATCH_NATS_URL"].as_str(), Some("nats://nats:4222"));
    let contact = dispatch_gateway::storage::ScyllaConfig::nodes_from_uri(env["DISPATCH_SCYLLA_URI"].as_str().unwrap_or(""))?;
    assert_eq!(contact, nodes.iter().map(|n| format!("{n}:9042")).collect::<Vec<_>>(), "the engine knows every node");
    env["DISPATCH_SCYLLA_REPLICATION"].as_str().unwrap_or("").parse::<dispatch_gateway::storage::scylladb::Replication>()?;
    for node in &nodes {
        assert_eq!(engine["depends_on"][node.as_str()]["condition"].as_str(), Some("service_healthy"), "waits for {node}");
        // Writer roles fence a stale owner: every node checks logins and permissions, and the engines log in.
        let command = services[node.as_str()]["command"].as_str().unwrap_or("");
        for flag in ["--authenticator=PasswordAuthenticator", "--authorizer=CassandraAuthorizer"] {
            assert!(command.contains(flag), "{node} runs without {flag}: {command}");
        }
    }
    assert!(env["DISPATCH_SCYLLA_USER"].as_str().is_some() && env["DISPATCH_SCYLLA_PASSWORD"].as_str().is_some(), "the engines log in");
    assert_eq!(services["gateway-1"]["command"][0].as_str(), Some("gateway"));
    // Prometheus scrapes every gateway and engine; Grafana gets the data source and the dashboard.
    let prometheus = yaml("prometheus/prometheus.yml")?;
    let targets: Vec<&str> =
        prometheus["scrape_configs"][0]["static_configs"][0]["targets"].as_vec().into_iter().flatten().filter_map(|t| t.as_str()).collect();
    for service in ["gateway-1", "gateway-2", "engine-1", "engine-2", "engine-3"] {
        assert!(targets.contains(&format!("{service}:8080").as_str()), "{service} is not scraped: {targets:?}");
    }
    let grafana = &services["grafana"]["volumes"];
    let mounts: Vec<&str> = grafana.as_vec().into_iter().flatten().filter_map(|v| v.as_str()).collect();
    assert!(mounts.iter().any(|m| m.starts_with("./grafana/dashboards:")), "{mounts:?}");
    let datasource = yaml("grafana/provisioning/datasources/prometheus.yml")?;
    assert_eq!(datasource["datasources"][0]["uid"].as_str(), Some("prometheus"), "the uid the dashboard's panels name");
    assert_eq!(datasource["datasources"][0]["url"].as_str(), Some("http://prometheus:9090"));
    Ok(())
}
