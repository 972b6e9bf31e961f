//! `dispatch snapshot export` / `import`: every city's snapshots and event
//! logs to a portable dump file and back (`dispatch_storage::dump`), to move
//! state between backends (export with `--storage embedded`, import with
//! `--storage scylla`) and to back up. Run them while the server is stopped:
//! the embedded store is locked by a running server, and the error says so.

use std::path::Path;

use anyhow::Context;
use dispatch_storage::dump::Counts;
use dispatch_storage::{DumpReader, DumpWriter};

use crate::config::{ServeConfig, StorageKind};
use crate::stores::StoreOpener;

/// Refuses to read or replace `city`'s store while its degraded-mode journal
/// holds writes a server acknowledged but the store never confirmed.
fn nothing_journaled(config: &ServeConfig, city: &str) -> anyhow::Result<()> {
    let dir = config.data_dir.join(city);
    let pending =
        dispatch_storage::Journal::pending(&dir).with_context(|| format!("city {city} (is a server running on {}?)", dir.display()))?;
    anyhow::ensure!(
        pending == 0,
        "city {city}: {pending} acknowledged writes wait in its journal ({}) for the store; \
         start `dispatch serve` on this data directory until /readyz says ok, so they drain, then run this again",
        dir.join(dispatch_storage::Journal::FILE_NAME).display()
    );
    Ok(())
}

fn durable_only(config: &ServeConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.storage != StorageKind::Memory,
        "storage memory keeps nothing after the server stops: there is nothing to export or import"
    );
    Ok(())
}

/// Writes every configured city that has a store to `out` (through a
/// temporary file, renamed when complete). Returns each city's counts.
pub async fn export(config: &ServeConfig, out: &Path) -> anyhow::Result<Vec<(String, Counts)>> {
    durable_only(config)?;
    let stores = StoreOpener::new(config).await?;
    let partial = out.with_extension("partial");
    let file = std::fs::File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let created_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let mut writer = DumpWriter::new(std::io::BufWriter::new(file), created_ms)?;
    let mut done = Vec::new();
    for city in &config.cities {
        if config.storage == StorageKind::Embedded
            && !config.data_dir.join(&city.name).join(dispatch_storage::embedded::FILE_NAME).is_file()
        {
            continue; // never started: nothing stored
        }
        nothing_journaled(config, &city.name)?;
        let store = stores.open(&city.name).await?;
        done.push((city.name.clone(), writer.city(&city.name, &*store).await?));
    }
    writer.finish()?.into_inner().map_err(|e| anyhow::anyhow!("writing {}: {e}", partial.display()))?.sync_all()?;
    std::fs::rename(&partial, out).with_context(|| format!("cannot move the dump to {}", out.display()))?;
    Ok(done)
}

/// Reads every city of the dump at `input` into the configured backend;
/// each city's store must hold no event logs yet.
pub async fn import(config: &ServeConfig, input: &Path) -> anyhow::Result<Vec<(String, Counts)>> {
    durable_only(config)?;
    let stores = StoreOpener::new(config).await?;
    let file = std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let mut reader = DumpReader::new(std::io::BufReader::new(file))?;
    let mut done = Vec::new();
    while let Some(city) = reader.next_city()? {
        anyhow::ensure!(
            !city.is_empty() && !city.contains(['/', '\\']) && city != "." && city != "..",
            "the dump names a city {city:?} that is not a directory name"
        );
        nothing_journaled(config, &city)?;
        let store = stores.open(&city).await?;
        let counts = reader.import_city(&*store).await.with_context(|| format!("importing city {city}"))?;
        done.push((city, counts));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatch_storage::{EmbeddedStore, Kind, LogEntry, SnapshotStore};

    #[tokio::test]
    async fn embedded_to_file_to_embedded_keeps_everything() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let config = |dir: &Path| ServeConfig {
            data_dir: dir.to_owned(),
            jwt_secret: "s-secret-of-at-least-thirty-two-b".into(),
            ..ServeConfig::default()
        };
        {
            let store = EmbeddedStore::open(from.path().join("omaha")).unwrap();
            store.put_batch((0..1_500u64).map(|i| (Kind::Contractor, i, vec![i as u8; 40])).collect()).await.unwrap();
            store.put(Kind::Job, 3, b"job".to_vec()).await.unwrap();
            for i in 0..4 {
                store.append_event(3, LogEntry::new(i as u64 + 1, i, vec![i as u8])).await.unwrap();
            }
        }
        let file = from.path().join("backup.dump");
        let exported = export(&config(from.path()), &file).await.unwrap();
        assert_eq!(exported, vec![("omaha".to_owned(), Counts { snapshots: 1_501, events: 4 })]);
        let imported = import(&config(to.path()), &file).await.unwrap();
        assert_eq!(imported, exported);
        let (a, b) = (EmbeddedStore::open(from.path().join("omaha")).unwrap(), EmbeddedStore::open(to.path().join("omaha")).unwrap());
        for kind in Kind::ALL {
            assert_eq!(a.scan(kind, None, 10_000).await.unwrap(), b.scan(kind, None, 10_000).await.unwrap());
        }
        assert_eq!(a.scan_events(None, 100).await.unwrap(), b.scan_events(None, 100).await.unwrap());
        drop((a, b));
        // Importing twice would duplicate the logs: refused.
        assert!(format!("{:#}", import(&config(to.path()), &file).await.unwrap_err()).contains("empty"));
        // A dump naming a city that is not a plain directory name is refused.
        let evil = from.path().join("evil.dump");
        let mut writer = dispatch_storage::DumpWriter::new(std::fs::File::create(&evil).unwrap(), 0).unwrap();
        writer.city("../escape", &dispatch_storage::MemoryStore::new()).await.unwrap();
        writer.finish().unwrap();
        let err = import(&config(to.path()), &evil).await.unwrap_err().to_string();
        assert!(err.contains("not a directory name"), "{err}");
        assert!(!to.path().join("../escape").exists());
        // Writes a crashed server journaled but never drained stop an export.
        let journal_dir = from.path().join("omaha");
        std::thread::scope(|scope| {
            // A process of its own in effect: its runtime, and the journal with it, end with the thread.
            scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async {
                    let backend = std::sync::Arc::new(dispatch_storage::MemoryStore::new());
                    backend.set_unavailable(true);
                    let config = dispatch_storage::ResilienceConfig::default();
                    let store = dispatch_storage::ResilientStore::journaled(backend, config, &journal_dir, "test").unwrap();
                    store.put(Kind::Job, 99, b"acknowledged".to_vec()).await.unwrap();
                });
            });
        });
        assert_eq!(dispatch_storage::Journal::pending(&journal_dir).unwrap(), 1);
        let err = format!("{:#}", export(&config(from.path()), &file).await.unwrap_err());
        assert!(err.contains("city omaha: 1 acknowledged writes wait in its journal"), "{err}");
        // A memory-store configuration has nothing to export.
        let memory = ServeConfig { storage: StorageKind::Memory, ..config(from.path()) };
        assert!(export(&memory, &file).await.unwrap_err().to_string().contains("keeps nothing"));
        // A ScyllaDB cluster that does not answer is named in the error, and no file is left.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let scylla = ServeConfig {
            storage: StorageKind::Scylla,
            scylla: dispatch_storage::ScyllaConfig {
                nodes: vec![format!("127.0.0.1:{port}")],
                request_timeout_ms: 500,
                ..Default::default()
            },
            ..config(from.path())
        };
        let elsewhere = from.path().join("scylla.dump");
        let err = format!("{:#}", export(&scylla, &elsewhere).await.unwrap_err());
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
        assert!(!elsewhere.exists() && !elsewhere.with_extension("partial").exists());
    }
}
