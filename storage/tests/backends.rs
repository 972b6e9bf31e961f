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
