//! The CQL of one keyspace: its schema as versioned [`Migration`]s and
//! every statement the store prepares.

use super::config::Replication;

/// One step of the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Applied in increasing order, each once.
    pub version: i32,
    /// What it does.
    pub description: &'static str,
    /// Its statements, each idempotent (`IF NOT EXISTS`): a migration cut
    /// short by a crash is simply run again.
    pub statements: Vec<String>,
}

/// Every CQL statement of a keyspace, as text.
#[derive(Debug, Clone)]
pub struct Cql {
    ks: String,
}

impl Cql {
    /// The statements of keyspace `ks` (already validated).
    #[must_use]
    pub fn new(ks: &str) -> Self {
        Self { ks: ks.to_owned() }
    }

    /// Creates the keyspace if missing.
    #[must_use]
    pub fn create_keyspace(&self, replication: &Replication) -> String {
        format!("CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {} AND durable_writes = true", self.ks, replication.cql())
    }

    /// Creates the table of applied migrations.
    #[must_use]
    pub fn create_migrations_table(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {}.schema_migrations (version int PRIMARY KEY, description text, applied_at timestamp)",
            self.ks
        )
    }

    /// Creates the table of city leases (in the cluster's keyspace; see `lease.rs`).
    #[must_use]
    pub fn create_leases(&self) -> String {
        format!("CREATE TABLE IF NOT EXISTS {}.leases (city text PRIMARY KEY, owner text, epoch bigint)", self.ks)
    }

    /// The schema, in order.
    #[must_use]
    pub fn migrations(&self) -> Vec<Migration> {
        let ks = &self.ks;
        vec![
            Migration {
                version: 1,
                description: "snapshots by (kind, shard) clustered by id; event log by job clustered by seq; job index",
                statements: vec![
                    format!(
                        "CREATE TABLE IF NOT EXISTS {ks}.snapshots (kind tinyint, shard smallint, id bigint, blob blob, \
                     PRIMARY KEY ((kind, shard), id)) WITH CLUSTERING ORDER BY (id ASC)"
                    ),
                    format!(
                        "CREATE TABLE IF NOT EXISTS {ks}.events (job bigint, seq bigint, at_ms bigint, payload blob, \
                     PRIMARY KEY (job, seq)) WITH CLUSTERING ORDER BY (seq ASC)"
                    ),
                    format!(
                        "CREATE TABLE IF NOT EXISTS {ks}.event_jobs (shard smallint, job bigint, \
                     PRIMARY KEY (shard, job)) WITH CLUSTERING ORDER BY (job ASC)"
                    ),
                ],
            },
            Migration {
                version: 2,
                description: "each snapshot and log entry records the owner epoch that wrote it",
                statements: vec![
                    format!("ALTER TABLE {ks}.snapshots ADD epoch bigint"),
                    format!("ALTER TABLE {ks}.events ADD epoch bigint"),
                ],
            },
        ]
    }

    pub(super) fn applied(&self) -> String {
        format!("SELECT version FROM {}.schema_migrations", self.ks)
    }

    pub(super) fn record(&self) -> String {
        format!("INSERT INTO {}.schema_migrations (version, description, applied_at) VALUES (?, ?, toTimestamp(now()))", self.ks)
    }

    /// Writes a snapshot.
    #[must_use]
    pub fn put(&self) -> String {
        format!("INSERT INTO {}.snapshots (kind, shard, id, blob, epoch) VALUES (?, ?, ?, ?, ?)", self.ks)
    }

    /// Writes a snapshot that expires.
    #[must_use]
    pub fn put_ttl(&self) -> String {
        format!("INSERT INTO {}.snapshots (kind, shard, id, blob, epoch) VALUES (?, ?, ?, ?, ?) USING TTL ?", self.ks)
    }

    /// Reads a snapshot.
    #[must_use]
    pub fn get(&self) -> String {
        format!("SELECT blob FROM {}.snapshots WHERE kind = ? AND shard = ? AND id = ?", self.ks)
    }

    /// Deletes a snapshot.
    #[must_use]
    pub fn delete(&self) -> String {
        format!("DELETE FROM {}.snapshots WHERE kind = ? AND shard = ? AND id = ?", self.ks)
    }

    /// One shard's slice of a scan.
    #[must_use]
    pub fn scan_shard(&self) -> String {
        format!("SELECT id, blob FROM {}.snapshots WHERE kind = ? AND shard = ? AND id >= ? LIMIT ?", self.ks)
    }

    /// Writes a log entry.
    #[must_use]
    pub fn append(&self) -> String {
        format!("INSERT INTO {}.events (job, seq, at_ms, payload, epoch) VALUES (?, ?, ?, ?, ?)", self.ks)
    }

    /// Records that a job has a log.
    #[must_use]
    pub fn index_job(&self) -> String {
        format!("INSERT INTO {}.event_jobs (shard, job) VALUES (?, ?)", self.ks)
    }

    /// A job's last sequence number.
    #[must_use]
    pub fn last_seq(&self) -> String {
        format!("SELECT seq FROM {}.events WHERE job = ? ORDER BY seq DESC LIMIT 1", self.ks)
    }

    /// A job's log from a sequence number.
    #[must_use]
    pub fn read_events(&self) -> String {
        format!("SELECT seq, at_ms, payload FROM {}.events WHERE job = ? AND seq >= ?", self.ks)
    }

    /// Part of a job's log.
    #[must_use]
    pub fn read_events_limit(&self) -> String {
        format!("SELECT seq, at_ms, payload FROM {}.events WHERE job = ? AND seq >= ? LIMIT ?", self.ks)
    }

    /// One shard's slice of the job index.
    #[must_use]
    pub fn scan_jobs_shard(&self) -> String {
        format!("SELECT job FROM {}.event_jobs WHERE shard = ? AND job >= ? LIMIT ?", self.ks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_the_keyspace_and_bind_every_key_column() {
        let cql = Cql::new("dispatch_omaha");
        let all = [
            cql.put(),
            cql.put_ttl(),
            cql.get(),
            cql.delete(),
            cql.scan_shard(),
            cql.append(),
            cql.index_job(),
            cql.last_seq(),
            cql.read_events(),
            cql.read_events_limit(),
            cql.scan_jobs_shard(),
        ];
        for s in &all {
            assert!(s.contains("dispatch_omaha."), "{s}");
            assert!(!s.contains("ALLOW FILTERING"), "{s}");
        }
        // Token-aware routing needs every partition key column bound.
        for s in [cql.put(), cql.get(), cql.delete(), cql.scan_shard()] {
            assert!(s.contains("kind") && s.contains("shard") && s.matches('?').count() >= 3, "{s}");
        }
        assert_eq!(cql.put_ttl().matches('?').count(), 6, "the epoch and the TTL are bound too");
        assert!(cql.put_ttl().ends_with("USING TTL ?"));
        assert!(cql.last_seq().contains("ORDER BY seq DESC LIMIT 1"));
        assert!(cql.create_keyspace(&Replication::Simple(3)).starts_with("CREATE KEYSPACE IF NOT EXISTS dispatch_omaha WITH"));
    }

    #[test]
    fn migrations_are_idempotent_and_ordered() {
        let cql = Cql::new("ks");
        let m = cql.migrations();
        assert!(m.windows(2).all(|w| w[0].version < w[1].version));
        assert_eq!(m[0].version, 1);
        for s in m.iter().flat_map(|m| &m.statements).chain([&cql.create_migrations_table()]) {
            // Re-runnable: creations say IF NOT EXISTS; a column added twice is refused and taken as done (`migrate`).
            assert!(s.contains("IF NOT EXISTS") || super::super::schema::is_column_addition(s), "re-runnable: {s}");
        }
        let schema = m[0].statements.join("\n");
        assert!(schema.contains("PRIMARY KEY ((kind, shard), id)"));
        assert!(
            schema.contains("PRIMARY KEY (job, seq)") && schema.contains("CLUSTERING ORDER BY (seq ASC)"),
            "log by job, clustered by seq"
        );
    }
}
