//! Every backend passes the same conformance suite; the embedded one also
//! keeps its data across a reopen.

use anyhow::Result;
use dispatch_storage::{EmbeddedStore, Kind, LogEntry, MemoryStore, SnapshotStore, StorageError, testsuite};

#[tokio::test]
async fn memory_store_conforms() {
    testsuite::run_all(&MemoryStore::new()).await;
}

#[tokio::test]
async fn embedded_store_conforms() -> Result<()> {
    let dir = tempfile::tempdir()?;
    testsuite::run_all(&EmbeddedStore::open(dir.path())?).await;
    Ok(())
}

#[tokio::test]
async fn embedded_store_survives_a_reopen() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let store = EmbeddedStore::open(dir.path())?;
        store.put(Kind::Contractor, 42, b"snapshot".to_vec()).await?;
        store.append_event(7, LogEntry::new(1, 1, b"posted".to_vec())).await?;
    }
    let store = EmbeddedStore::open(dir.path())?;
    assert_eq!(store.get(Kind::Contractor, 42).await?.as_deref(), Some(&b"snapshot"[..]));
    assert_eq!(store.last_event_seq(7).await?, 1, "the log survives a reopen");
    Ok(())
}

#[tokio::test]
async fn opening_the_same_directory_twice_is_a_clear_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let _first = EmbeddedStore::open(dir.path())?;
    let err = EmbeddedStore::open(dir.path()).expect_err("the file is locked");
    assert!(matches!(err, StorageError::Backend(ref m) if m.contains("cannot open")), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_data_directory_that_is_a_file_is_a_clear_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x")?;
    let err = EmbeddedStore::open(&file).expect_err("a file is not a directory");
    assert!(err.to_string().contains("data directory"), "{err}");
    Ok(())
}

#[tokio::test]
async fn an_unavailable_memory_store_refuses_everything() {
    let store = MemoryStore::new();
    store.set_unavailable(true);
    assert!(store.ping().await.is_err());
    assert!(store.put(Kind::Job, 1, vec![]).await.is_err());
    assert!(store.append_event(1, LogEntry::new(1, 0, vec![])).await.is_err());
    store.set_unavailable(false);
    assert!(store.ping().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_commit_in_groups_without_gaps_or_losses() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = EmbeddedStore::open(dir.path())?;
    // 300 writers at once: appends to two jobs' logs and snapshot puts.
    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.append_event(i % 2, LogEntry::new(i / 2 + 1, i as i64, i.to_le_bytes().to_vec())).await?;
            store.put(Kind::Job, 1_000 + i, i.to_le_bytes().to_vec()).await?;
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    for job in 0..2u64 {
        let log = store.read_events(job, 1).await?;
        assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=150).collect::<Vec<_>>(), "job {job}");
        assert!(log.iter().all(|e| e.payload == ((e.seq - 1) * 2 + job).to_le_bytes()), "job {job}: each entry where it was written");
        assert_eq!(store.last_event_seq(job).await?, 150);
    }
    for i in 0..300u64 {
        assert_eq!(store.get(Kind::Job, 1_000 + i).await?, Some(i.to_le_bytes().to_vec()));
    }
    Ok(())
}

mod resilient {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;
    use dispatch_storage::{Health, Kind, LogEntry, MemoryStore, ResilienceConfig, ResilientStore, SnapshotStore, StorageError, testsuite};

    fn config() -> ResilienceConfig {
        ResilienceConfig {
            buffer_limit: 100,
            buffer_max_bytes: 1 << 20,
            timeout_ms: 1_000,
            probe_first_ms: 100,
            probe_max_ms: 400,
            drain_batch: 7,
        }
    }

    async fn until_healthy(store: &ResilientStore) {
        for _ in 0..200 {
            if store.health() == Health::Healthy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("still degraded: {:?}", store.health());
    }

    #[tokio::test]
    async fn a_resilient_store_conforms_while_healthy() {
        testsuite::run_all(&ResilientStore::new(Arc::new(MemoryStore::new()), config())).await;
    }

    #[tokio::test(start_paused = true)]
    async fn writes_are_buffered_while_the_backend_is_down_and_drained_when_it_returns() {
        let backend = Arc::new(MemoryStore::new());
        let store = ResilientStore::new(backend.clone(), config());
        store.put(Kind::Job, 1, b"before".to_vec()).await.unwrap();
        store.append_event(1, LogEntry::new(1, 0, b"posted".to_vec())).await.unwrap();

        backend.set_unavailable(true);
        // Accepted and readable at once, though the backend is down.
        store.put(Kind::Job, 1, b"accepted".to_vec()).await.unwrap();
        assert!(matches!(store.health(), Health::Degraded { buffered: 1, ref reason } if reason.contains("unavailable")));
        store.put_batch((10..40u64).map(|i| (Kind::Contractor, i, vec![i as u8])).collect()).await.unwrap();
        store.put_final(Kind::Job, 2, b"completed".to_vec()).await.unwrap();
        store.delete(Kind::Contractor, 10).await.unwrap();
        store.append_event(1, LogEntry::new(2, 5, b"accepted".to_vec())).await.unwrap();
        assert_eq!(store.get(Kind::Job, 1).await.unwrap().as_deref(), Some(&b"accepted"[..]));
        assert_eq!(store.get(Kind::Contractor, 10).await.unwrap(), None, "a buffered delete hides the row");
        assert_eq!(store.last_event_seq(1).await.unwrap(), 2, "numbering continues from the buffer");
        // Overwrites cost nothing; new keys past the bound are refused, not dropped.
        for round in 0..5u8 {
            store.put_coalesced((11..40u64).map(|i| (Kind::Contractor, i, vec![round])).collect()).await.unwrap();
        }
        let buffered = store.buffered();
        let err = store.put_batch((1_000..1_100u64).map(|i| (Kind::Job, i, vec![])).collect()).await.unwrap_err();
        assert!(matches!(err, StorageError::BufferFull { .. }), "{err}");
        assert_eq!(store.buffered(), buffered, "a refused batch leaves nothing behind");

        backend.set_unavailable(false);
        // Before the drain (its first probe is still asleep): the log reads as
        // the backend's entries with the buffered ones laid over them.
        let seqs = |log: Vec<LogEntry>| log.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert!(store.buffered() > 0);
        assert_eq!(seqs(store.read_events(1, 0).await.unwrap()), vec![1, 2]);
        assert_eq!(seqs(store.read_events(1, 2).await.unwrap()), vec![2]);
        assert_eq!(seqs(store.scan_events(Some((1, 1)), 10).await.unwrap().into_iter().map(|(_, e)| e).collect()), vec![2]);
        until_healthy(&store).await;
        assert_eq!(store.buffered(), 0);
        // Everything acknowledged is in the backend itself now.
        assert_eq!(backend.get(Kind::Job, 1).await.unwrap().as_deref(), Some(&b"accepted"[..]));
        assert_eq!(backend.get(Kind::Job, 2).await.unwrap().as_deref(), Some(&b"completed"[..]));
        assert_eq!(backend.get(Kind::Contractor, 10).await.unwrap(), None);
        assert_eq!(backend.get(Kind::Contractor, 39).await.unwrap(), Some(vec![4]), "the newest of the overwrites");
        assert_eq!(backend.read_events(1, 0).await.unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(backend.get(Kind::Job, 1_000).await.unwrap(), None, "the refused write never landed");
        // Healthy again: writes go straight through.
        store.put(Kind::Job, 3, b"direct".to_vec()).await.unwrap();
        assert_eq!(backend.get(Kind::Job, 3).await.unwrap().as_deref(), Some(&b"direct"[..]));
    }

    #[tokio::test(start_paused = true)]
    async fn reads_while_degraded_merge_the_buffer_into_scans() {
        let backend = Arc::new(MemoryStore::new());
        let store = ResilientStore::new(backend.clone(), config());
        store.put_batch((0..20u64).map(|i| (Kind::Job, i, vec![0])).collect()).await.unwrap();
        backend.set_unavailable(true);
        store.put(Kind::Job, 5, vec![1]).await.unwrap();
        for i in 0..10u64 {
            store.delete(Kind::Job, i * 2).await.unwrap();
        }
        store.put(Kind::Job, 25, vec![1]).await.unwrap();
        // Reads need the backend too, and say so while it is down.
        assert!(store.scan(Kind::Job, None, 4).await.is_err());
        backend.set_unavailable(false);
        // Scanned before the drain finished or after: the same rows.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.scan(Kind::Job, after, 4).await.unwrap();
            let Some(&(last, _)) = page.last() else { break };
            after = Some(last);
            seen.extend(page);
        }
        let odd: Vec<u64> = (0..20u64).filter(|i| i % 2 == 1).chain([25]).collect();
        assert_eq!(seen.iter().map(|(id, _)| *id).collect::<Vec<_>>(), odd);
        assert_eq!(seen.iter().find(|(id, _)| *id == 5).map(|(_, b)| b.clone()), Some(vec![1]));
    }

    /// A backend whose writes never answer while `hang` is set.
    #[derive(Default)]
    struct Hanging {
        memory: MemoryStore,
        hang: AtomicBool,
    }

    impl Hanging {
        async fn gate(&self) {
            while self.hang.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    #[async_trait]
    impl SnapshotStore for Hanging {
        async fn put(&self, kind: Kind, id: u64, blob: Vec<u8>) -> dispatch_storage::error::Result<()> {
            if self.hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            self.memory.put(kind, id, blob).await
        }
        async fn put_batch(&self, items: Vec<(Kind, u64, Vec<u8>)>) -> dispatch_storage::error::Result<()> {
            self.gate().await;
            self.memory.put_batch(items).await
        }
        async fn get(&self, kind: Kind, id: u64) -> dispatch_storage::error::Result<Option<Vec<u8>>> {
            self.memory.get(kind, id).await
        }
        async fn delete(&self, kind: Kind, id: u64) -> dispatch_storage::error::Result<()> {
            self.memory.delete(kind, id).await
        }
        async fn scan(&self, kind: Kind, after: Option<u64>, limit: usize) -> dispatch_storage::error::Result<Vec<(u64, Vec<u8>)>> {
            self.memory.scan(kind, after, limit).await
        }
        async fn append_event(&self, job: u64, entry: LogEntry) -> dispatch_storage::error::Result<()> {
            self.memory.append_event(job, entry).await
        }
        async fn last_event_seq(&self, job: u64) -> dispatch_storage::error::Result<u64> {
            self.memory.last_event_seq(job).await
        }
        async fn read_events(&self, job: u64, from_seq: u64) -> dispatch_storage::error::Result<Vec<LogEntry>> {
            self.memory.read_events(job, from_seq).await
        }
        async fn scan_events(&self, after: Option<(u64, u64)>, limit: usize) -> dispatch_storage::error::Result<Vec<(u64, LogEntry)>> {
            self.memory.scan_events(after, limit).await
        }
        async fn ping(&self) -> dispatch_storage::error::Result<()> {
            self.memory.ping().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_backend_turns_the_store_degraded_after_the_timeout() {
        let backend = Arc::new(Hanging::default());
        let store = ResilientStore::new(backend.clone(), config());
        backend.hang.store(true, Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        store.put(Kind::Job, 9, b"j".to_vec()).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_millis(1_000), "answered at the timeout, not never");
        assert!(matches!(store.health(), Health::Degraded { ref reason, .. } if reason.contains("no answer")));
        backend.hang.store(false, Ordering::SeqCst);
        until_healthy(&store).await;
        assert_eq!(backend.memory.get(Kind::Job, 9).await.unwrap().as_deref(), Some(&b"j"[..]));
    }

    /// A crash while the backend is down: what was acknowledged is in the
    /// journal, and the next start drains it, in order, before anything newer.
    #[test]
    fn acknowledged_writes_survive_a_crash_during_an_outage_and_drain_on_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(MemoryStore::new());
        let runtime = || tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

        let first = runtime();
        first.block_on(async {
            let store = ResilientStore::journaled(backend.clone(), config(), dir.path(), "node-a").unwrap();
            store.append_event(1, LogEntry::new(1, 0, b"posted".to_vec())).await.unwrap();
            backend.set_unavailable(true);
            store.put(Kind::Job, 1, b"accepted".to_vec()).await.unwrap();
            store.append_event(1, LogEntry::new(2, 5, b"accepted".to_vec())).await.unwrap();
            store.put_batch((10..20u64).map(|i| (Kind::Contractor, i, vec![1])).collect()).await.unwrap();
            store.put_batch((10..20u64).map(|i| (Kind::Contractor, i, vec![2])).collect()).await.unwrap();
            store.delete(Kind::Contractor, 10).await.unwrap();
            assert_eq!(store.buffered(), 12);
        });
        // The process dies: its tasks and the in-memory buffer go with it.
        drop(first);
        backend.set_unavailable(false);
        assert_eq!(stored(&backend, Kind::Job, 1), None, "nothing reached the backend before the crash");

        runtime().block_on(async {
            let store = ResilientStore::journaled(backend.clone(), config(), dir.path(), "node-a").unwrap();
            assert!(matches!(store.health(), Health::Degraded { buffered: 12, .. }), "{:?}", store.health());
            // Readable at once, before the drain, and numbering continues.
            assert_eq!(store.get(Kind::Job, 1).await.unwrap().as_deref(), Some(&b"accepted"[..]));
            assert_eq!(store.last_event_seq(1).await.unwrap(), 2);
            until_healthy(&store).await;
        });
        assert_eq!(stored(&backend, Kind::Job, 1).as_deref(), Some(&b"accepted"[..]));
        assert_eq!(stored(&backend, Kind::Contractor, 10), None, "the delete came after the puts");
        assert_eq!(stored(&backend, Kind::Contractor, 19), Some(vec![2]), "the newest of the overwrites");
        let rt = runtime();
        let log = rt.block_on(backend.read_events(1, 0)).unwrap();
        assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2], "numbered without gaps");

        // Drained entries left the journal: a third start has nothing to replay.
        rt.block_on(async {
            let store = ResilientStore::journaled(backend.clone(), config(), dir.path(), "node-a").unwrap();
            assert_eq!(store.health(), Health::Healthy);
        });
    }

    /// A snapshot read straight from `backend`, outside any runtime.
    #[allow(clippy::unwrap_used, reason = "test helper: a failed read fails the test")]
    fn stored(backend: &MemoryStore, kind: Kind, id: u64) -> Option<Vec<u8>> {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(backend.get(kind, id)).unwrap()
    }
}
