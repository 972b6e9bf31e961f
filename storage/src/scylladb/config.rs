//! What the ScyllaDB backend is configured with: contact points, keyspace
//! naming and replication, consistency levels, timeouts and limits.

use std::str::FromStr;

use scylla::statement::Consistency;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};
use crate::retry::RetryPolicy;

/// A consistency level, as written in configuration (`local_quorum`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// `ONE`.
    One,
    /// `LOCAL_ONE`: one replica in the local datacenter.
    LocalOne,
    /// `QUORUM` across datacenters.
    Quorum,
    /// `LOCAL_QUORUM`: a majority in the local datacenter.
    LocalQuorum,
    /// `EACH_QUORUM` (writes only).
    EachQuorum,
    /// `ALL`.
    All,
}

impl Level {
    /// The driver's value.
    #[must_use]
    pub const fn consistency(self) -> Consistency {
        match self {
            Level::One => Consistency::One,
            Level::LocalOne => Consistency::LocalOne,
            Level::Quorum => Consistency::Quorum,
            Level::LocalQuorum => Consistency::LocalQuorum,
            Level::EachQuorum => Consistency::EachQuorum,
            Level::All => Consistency::All,
        }
    }
}

impl FromStr for Level {
    type Err = StorageError;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "one" => Level::One,
            "local_one" => Level::LocalOne,
            "quorum" => Level::Quorum,
            "local_quorum" => Level::LocalQuorum,
            "each_quorum" => Level::EachQuorum,
            "all" => Level::All,
            other => {
                return Err(StorageError::Backend(format!(
                    "unknown consistency level {other:?} (one, local_one, quorum, local_quorum, each_quorum, all)"
                )));
            }
        })
    }
}

/// Keyspace replication: `simple:N` for a development node or cluster,
/// `DC:N[,DC:N…]` (NetworkTopologyStrategy) in production.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Replication {
    /// `SimpleStrategy` with a replication factor.
    Simple(u32),
    /// `NetworkTopologyStrategy`: a replication factor per datacenter.
    NetworkTopology(Vec<(String, u32)>),
}

impl Replication {
    /// The CQL map for `CREATE KEYSPACE … WITH replication = …`.
    #[must_use]
    pub fn cql(&self) -> String {
        match self {
            Replication::Simple(rf) => format!("{{'class': 'SimpleStrategy', 'replication_factor': {rf}}}"),
            Replication::NetworkTopology(dcs) => {
                let dcs: Vec<String> = dcs.iter().map(|(dc, rf)| format!("'{dc}': {rf}")).collect();
                format!("{{'class': 'NetworkTopologyStrategy', {}}}", dcs.join(", "))
            }
        }
    }
}

impl FromStr for Replication {
    type Err = StorageError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| StorageError::Backend(format!("replication {s:?}: {why} (expected simple:N or DC:N[,DC:N…])"));
        let factor = |n: &str| n.trim().parse::<u32>().ok().filter(|&n| (1..=9).contains(&n)).ok_or_else(|| bad("a factor of 1 to 9"));
        if let Some(n) = s.strip_prefix("simple:") {
            return Ok(Replication::Simple(factor(n)?));
        }
        let mut dcs = Vec::new();
        for part in s.split(',') {
            let (dc, n) = part.split_once(':').ok_or_else(|| bad("each datacenter needs a factor"))?;
            let dc = dc.trim();
            if dc.is_empty() || !dc.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.') {
                return Err(bad("datacenter names are letters, digits, _ - ."));
            }
            dcs.push((dc.to_owned(), factor(n)?));
        }
        Ok(Replication::NetworkTopology(dcs))
    }
}

impl TryFrom<String> for Replication {
    type Error = StorageError;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Replication> for String {
    fn from(r: Replication) -> String {
        match r {
            Replication::Simple(rf) => format!("simple:{rf}"),
            Replication::NetworkTopology(dcs) => dcs.iter().map(|(dc, rf)| format!("{dc}:{rf}")).collect::<Vec<_>>().join(","),
        }
    }
}

/// How to reach the cluster and how to write to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScyllaConfig {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    /// Keyspaces are named `<prefix>_<city>`.
    pub keyspace_prefix: String,
    /// Replication of new keyspaces.
    pub replication: Replication,
    /// The local datacenter: preferred by the load balancer (and what the
    /// `LOCAL_*` levels mean). None: no preference.
    pub local_dc: Option<String>,
    /// Consistency of lifecycle writes (jobs, contractors' status) and reads.
    pub lifecycle_consistency: Level,
    /// Consistency of coalesced GPS snapshots.
    pub position_consistency: Level,
    /// Client-side timeout of each statement, ms.
    pub request_timeout_ms: u64,
    /// A statement not answered after this long is also sent to the next
    /// replica of its plan, once (speculative execution; every statement is
    /// idempotent), ms; 0: never; unset: a quarter of `request_timeout_ms`.
    /// It bounds how long a write waits on a node that stopped answering.
    pub speculative_after_ms: Option<u64>,
    /// Statements in flight at most, per city.
    pub max_in_flight: usize,
    /// How long a finished job's snapshot is kept, seconds (its event log stays).
    pub terminal_ttl_secs: u32,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// User name, if the cluster authenticates.
    pub user: Option<String>,
    /// Password for `user`.
    pub password: Option<String>,
    /// How long the cluster's nodes may go on trusting a permission they
    /// cached (Cassandra's `permissions_validity`, ScyllaDB's
    /// `permissions_validity_in_ms`), for when a cluster engine cannot read
    /// it from the server. A city's new owner waits this long (and a margin)
    /// after dropping the last owner's role before it reads the city.
    pub permissions_validity_ms: Option<u64>,
}

impl Default for ScyllaConfig {
    fn default() -> Self {
        Self {
            nodes: vec!["127.0.0.1:9042".into()],
            keyspace_prefix: "dispatch".into(),
            replication: Replication::Simple(1),
            local_dc: None,
            lifecycle_consistency: Level::LocalQuorum,
            position_consistency: Level::LocalOne,
            request_timeout_ms: 2_000,
            speculative_after_ms: None,
            max_in_flight: 256,
            terminal_ttl_secs: 7 * 24 * 3600,
            retry: RetryPolicy::default(),
            user: None,
            password: None,
            permissions_validity_ms: None,
        }
    }
}

impl ScyllaConfig {
    /// This config with the contact points, and the login if it names one,
    /// of a URI such as `scylla://user:password@a:9042,b` ([`Self::nodes_from_uri`]).
    pub fn with_uri(mut self, uri: &str) -> Result<Self> {
        self.nodes = Self::nodes_from_uri(uri)?;
        if let Some((user, password)) = Self::login_from_uri(uri)? {
            self.user = Some(user);
            self.password = Some(password);
        }
        Ok(self)
    }

    /// The `user:password@` of a URI, if it has one.
    fn login_from_uri(uri: &str) -> Result<Option<(String, String)>> {
        let rest = uri.trim().strip_prefix("scylla://").unwrap_or(uri.trim());
        let Some((login, _)) = rest.rsplit_once('@') else { return Ok(None) };
        match login.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Some((user.to_owned(), password.to_owned()))),
            _ => Err(StorageError::Backend("a ScyllaDB URI's login is `user:password@`".into())),
        }
    }

    /// Contact points from a URI such as `scylla://a:9042,b:9042` or `a:9042,b`
    /// (the port defaults to 9042; a `user:password@` before them is not a node).
    pub fn nodes_from_uri(uri: &str) -> Result<Vec<String>> {
        let list = uri.trim().strip_prefix("scylla://").unwrap_or(uri.trim()).trim_end_matches('/');
        let list = list.rsplit_once('@').map_or(list, |(_, nodes)| nodes);
        let nodes: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| if n.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) { n.to_owned() } else { format!("{n}:9042") })
            .collect();
        if nodes.is_empty() {
            return Err(StorageError::Backend(format!("no ScyllaDB node in {uri:?}")));
        }
        Ok(nodes)
    }

    /// The keyspace of `city`: `<prefix>_<city>` with `-` as `_`.
    pub fn keyspace_for(&self, city: &str) -> Result<String> {
        let ks = format!("{}_{}", self.keyspace_prefix, city.replace('-', "_")).to_ascii_lowercase();
        let valid = ks.len() <= 48
            && ks.starts_with(|c: char| c.is_ascii_alphabetic())
            && ks.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(StorageError::Backend(format!("keyspace {ks:?} for city {city:?}: letters, digits and _ only, at most 48")));
        }
        Ok(ks)
    }

    /// When a statement is also sent to the next replica; `None`: never.
    #[must_use]
    pub fn speculation(&self) -> Option<std::time::Duration> {
        let after = self.speculative_after_ms.unwrap_or(self.request_timeout_ms / 4);
        (after > 0).then(|| std::time::Duration::from_millis(after))
    }

    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(StorageError::Backend(m));
        if self.nodes.is_empty() {
            return bad("scylla: at least one node is needed".into());
        }
        if self.max_in_flight == 0 || self.request_timeout_ms == 0 || self.terminal_ttl_secs == 0 {
            return bad("scylla: max_in_flight, request_timeout_ms and terminal_ttl_secs must be positive".into());
        }
        if let Some(after) = self.speculative_after_ms
            && after >= self.request_timeout_ms
        {
            return bad(format!(
                "scylla: speculative_after_ms ({after}) must be below request_timeout_ms ({}), or 0 for none",
                self.request_timeout_ms
            ));
        }
        if (self.user.is_some()) != (self.password.is_some()) {
            return bad("scylla: user and password go together".into());
        }
        self.keyspace_for("x")?;
        self.retry.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_and_levels_parse_and_render() {
        let nts: Replication = "dc1:3, dc-2:2".parse().unwrap();
        assert_eq!(nts, Replication::NetworkTopology(vec![("dc1".into(), 3), ("dc-2".into(), 2)]));
        assert_eq!(nts.cql(), "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc-2': 2}");
        assert_eq!(String::from(nts.clone()).parse::<Replication>().unwrap(), nts);
        let simple: Replication = "simple:1".parse().unwrap();
        assert_eq!(simple.cql(), "{'class': 'SimpleStrategy', 'replication_factor': 1}");
        for bad in ["simple:0", "simple:x", "dc1", "dc1:3,", "d'c:3", ""] {
            assert!(bad.parse::<Replication>().is_err(), "{bad:?} is refused");
        }
        assert_eq!("LOCAL_QUORUM".parse::<Level>().unwrap().consistency(), Consistency::LocalQuorum);
        assert_eq!("local-one".parse::<Level>().unwrap().consistency(), Consistency::LocalOne);
        assert!("sometimes".parse::<Level>().unwrap_err().to_string().contains("local_quorum"));
    }

    #[test]
    fn config_from_toml_validates_and_names_keyspaces() {
        let c: ScyllaConfig = toml::from_str(
            "nodes = [\"a:9042\"]\nreplication = \"eu-west:3\"\nlocal_dc = \"eu-west\"\nposition_consistency = \"one\"\n[retry]\nattempts = 2\n",
        )
        .unwrap();
        assert_eq!(c.replication, Replication::NetworkTopology(vec![("eu-west".into(), 3)]));
        assert_eq!(c.position_consistency, Level::One);
        assert_eq!(c.lifecycle_consistency, Level::LocalQuorum, "defaults fill the rest");
        assert_eq!(c.retry.attempts, 2);
        c.validate().unwrap();
        assert_eq!(c.keyspace_for("des-moines").unwrap(), "dispatch_des_moines");
        assert!(c.keyspace_for("bad city;").is_err());
        assert!(ScyllaConfig { nodes: vec![], ..c.clone() }.validate().is_err());
        assert!(ScyllaConfig { user: Some("u".into()), ..c.clone() }.validate().is_err(), "a user needs a password");
        assert!(
            ScyllaConfig { speculative_after_ms: Some(2_000), ..c.clone() }.validate().is_err(),
            "speculation after the timeout is none"
        );
        assert_eq!(ScyllaConfig { speculative_after_ms: Some(0), ..c.clone() }.speculation(), None);
        assert_eq!(ScyllaConfig { request_timeout_ms: 400, ..c.clone() }.speculation(), Some(std::time::Duration::from_millis(100)));
        assert!(toml::from_str::<ScyllaConfig>("replication = \"simple:0\"").is_err());
        assert!(toml::from_str::<ScyllaConfig>("nodse = []").is_err(), "typos are errors");
        assert_eq!(ScyllaConfig::nodes_from_uri("scylla://a,b:9043/").unwrap(), vec!["a:9042", "b:9043"]);
        assert_eq!(ScyllaConfig::nodes_from_uri("[::1]:9042").unwrap(), vec!["[::1]:9042"]);
        assert!(ScyllaConfig::nodes_from_uri(" ").is_err());
        let logged = ScyllaConfig::default().with_uri("scylla://app:s3cr:et@a,b:9043").unwrap();
        assert_eq!(logged.nodes, vec!["a:9042", "b:9043"]);
        assert_eq!((logged.user.as_deref(), logged.password.as_deref()), (Some("app"), Some("s3cr:et")));
        assert_eq!(ScyllaConfig::default().with_uri("scylla://a").unwrap().user, None, "no login, none set");
        assert!(ScyllaConfig::default().with_uri("scylla://app@a").is_err(), "a login without a password");
        assert!(ScyllaConfig::default().with_uri("scylla://:pw@a").is_err(), "a login without a user");
    }
}
