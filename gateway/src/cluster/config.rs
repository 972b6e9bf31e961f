//! [`ClusterConfig`]: the `[cluster]` section, read by `dispatch engine` and
//! `dispatch gateway` (`dispatch serve` ignores it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How the processes of a cluster find each other and share cities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// NATS servers, comma-separated (`nats://host:4222,nats://other:4222`).
    pub nats_url: String,
    /// How long a city's lease lasts without renewal, whole seconds. An
    /// owner renews every third of it; a dead owner's cities move after at most this long.
    pub lease_ttl_secs: u32,
    /// How long a gateway waits for an owner's answer before `unavailable`, ms.
    pub request_timeout_ms: u64,
    /// Cities placed on a given engine while it is live (others by rendezvous hashing).
    pub pins: BTreeMap<String, String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self { nats_url: "nats://127.0.0.1:4222".into(), lease_ttl_secs: 3, request_timeout_ms: 3_000, pins: BTreeMap::new() }
    }
}

impl ClusterConfig {
    /// Checks what the types cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.nats_url.trim().is_empty(), "cluster.nats_url is empty");
        anyhow::ensure!((2..=300).contains(&self.lease_ttl_secs), "cluster.lease_ttl_secs must be 2 to 300, not {}", self.lease_ttl_secs);
        anyhow::ensure!(
            (100..=60_000).contains(&self.request_timeout_ms),
            "cluster.request_timeout_ms must be 100 to 60000, not {}",
            self.request_timeout_ms
        );
        Ok(())
    }
}
