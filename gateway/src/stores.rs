//! [`StoreOpener`]: each city's [`SnapshotStore`] as configured — embedded
//! (a redb file per city under the data directory), memory, or a ScyllaDB
//! keyspace per city on one shared session.

use std::sync::Arc;

use anyhow::Context;
use dispatch_storage::scylladb::ScyllaSession;
use dispatch_storage::{EmbeddedStore, MemoryStore, ResilientStore, ScyllaStore, SnapshotStore};

use crate::config::{ServeConfig, StorageKind};

/// Opens cities' stores; connects to ScyllaDB once, if that is the backend.
pub struct StoreOpener<'a> {
    config: &'a ServeConfig,
    scylla: Option<Arc<ScyllaSession>>,
}

impl<'a> StoreOpener<'a> {
    /// Ready to open stores of `config`'s backend.
    pub async fn new(config: &'a ServeConfig) -> anyhow::Result<Self> {
        let scylla = match config.storage {
            StorageKind::Scylla => Some(ScyllaStore::connect(&config.scylla).await?),
            StorageKind::Embedded | StorageKind::Memory => None,
        };
        Ok(Self { config, scylla })
    }

    /// `city`'s store, failing with a clear error when it cannot be opened.
    pub async fn open(&self, city: &str) -> anyhow::Result<Arc<dyn SnapshotStore>> {
        Ok(match (&self.scylla, self.config.storage) {
            (Some(session), _) => Arc::new(
                ScyllaStore::open(Arc::clone(session), &self.config.scylla, city)
                    .await
                    .with_context(|| format!("city {city}: ScyllaDB keyspace"))?,
            ),
            (None, StorageKind::Memory) => Arc::new(MemoryStore::new()),
            (None, _) => Arc::new(
                EmbeddedStore::open_with_cache(self.config.data_dir.join(city), self.config.embedded_cache_mib.saturating_mul(1024 * 1024))
                    .with_context(|| format!("city {city} (is another server using the data directory?)"))?,
            ),
        })
    }

    /// `city`'s store for serving: a durable one is wrapped in a
    /// [`ResilientStore`] journaling to the city's data directory, so the
    /// city keeps serving while it is unreachable and what it acknowledged
    /// then survives a crash. Writes an earlier run journaled drain first.
    pub async fn open_for_serving(&self, city: &str) -> anyhow::Result<Arc<dyn SnapshotStore>> {
        let store = self.open(city).await?;
        Ok(match self.config.storage {
            StorageKind::Memory => store,
            StorageKind::Embedded | StorageKind::Scylla => {
                let dir = self.config.data_dir.join(city);
                Arc::new(
                    ResilientStore::journaled(store, self.config.store_buffer, &dir, &self.config.node).with_context(|| {
                        format!("city {city}: degraded-mode journal in {} (is another server using it?)", dir.display())
                    })?,
                )
            }
        })
    }
}
