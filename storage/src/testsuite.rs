//! The conformance checks every [`SnapshotStore`] backend must pass. Each
//! backend's tests call [`run_all`] on a fresh, empty store.
#![allow(clippy::expect_used, reason = "a test suite: a failed check panics with its name")]

use crate::store::{Kind, LogEntry, SnapshotStore};

/// Runs every check; panics with a message naming the first that fails.
pub async fn run_all(store: &dyn SnapshotStore) {
    snapshots(store).await;
    scan_pages(store).await;
    event_log(store).await;
    // Last: it leaves job logs behind (logs are never deleted).
    concurrent_writers(store).await;
}

async fn snapshots(store: &dyn SnapshotStore) {
    store.ping().await.expect("ping");
    assert_eq!(store.get(Kind::Job, 1).await.expect("get missing"), None);
    store.put(Kind::Job, 1, b"one".to_vec()).await.expect("put");
    store.put(Kind::Contractor, 1, b"contractor one".to_vec()).await.expect("put");
    assert_eq!(store.get(Kind::Job, 1).await.expect("get").as_deref(), Some(&b"one"[..]), "kinds are separate");
    store.put(Kind::Job, 1, b"uno".to_vec()).await.expect("overwrite");
    assert_eq!(store.get(Kind::Job, 1).await.expect("get").as_deref(), Some(&b"uno"[..]));
    store.delete(Kind::Job, 1).await.expect("delete");
    store.delete(Kind::Job, 1).await.expect("deleting a missing snapshot is fine");
    assert_eq!(store.get(Kind::Job, 1).await.expect("get"), None);
    assert!(store.get(Kind::Contractor, 1).await.expect("get").is_some());
    store.delete(Kind::Contractor, 1).await.expect("delete");
    // A final snapshot and coalesced ones read back like any other.
    store.put_final(Kind::Job, 2, b"completed".to_vec()).await.expect("put_final");
    assert_eq!(store.get(Kind::Job, 2).await.expect("get").as_deref(), Some(&b"completed"[..]));
    store.delete(Kind::Job, 2).await.expect("delete");
    let moved: Vec<_> = (100..160u64).map(|i| (Kind::Contractor, i, i.to_be_bytes().to_vec())).collect();
    store.put_coalesced(moved).await.expect("put_coalesced");
    assert_eq!(store.get(Kind::Contractor, 133).await.expect("get"), Some(133u64.to_be_bytes().to_vec()));
    for i in 100..160u64 {
        store.delete(Kind::Contractor, i).await.expect("delete");
    }
}

async fn scan_pages(store: &dyn SnapshotStore) {
    let items: Vec<_> = (0..25u64).map(|i| (Kind::Job, i * 3, i.to_le_bytes().to_vec())).collect();
    store.put_batch(items).await.expect("put_batch");
    store.put(Kind::Contractor, 5, b"not a job".to_vec()).await.expect("put");
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.scan(Kind::Job, after, 10).await.expect("scan");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        after = page.last().map(|(id, _)| *id);
        seen.extend(page);
    }
    assert_eq!(seen.len(), 25, "every job once, no contractor");
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "in id order");
    assert_eq!(seen[4], (12, 4u64.to_le_bytes().to_vec()));
    assert!(store.scan(Kind::Job, Some(u64::MAX), 10).await.expect("scan past the end").is_empty());
    // Leave the store as found: later checks (and a live cluster's own scans) see only their rows.
    for (id, _) in seen {
        store.delete(Kind::Job, id).await.expect("delete");
    }
    store.delete(Kind::Contractor, 5).await.expect("delete");
}

async fn event_log(store: &dyn SnapshotStore) {
    assert!(store.read_events(9, 0).await.expect("read empty").is_empty());
    assert_eq!(store.last_event_seq(9).await.expect("last of an empty log"), 0);
    for i in 1..=5u64 {
        store.append_event(9, LogEntry::new(i, i as i64 * 100, format!("event {i}").into_bytes())).await.expect("append");
        assert_eq!(store.last_event_seq(9).await.expect("last"), i);
    }
    // A retried append replaces its entry: no duplicate, no error.
    store.append_event(9, LogEntry::new(5, 500, b"event 5".to_vec())).await.expect("append again");
    store.append_event(10, LogEntry::new(1, 0, b"other job".to_vec())).await.expect("append");
    assert_eq!(store.last_event_seq(10).await.expect("last"), 1, "per job");
    assert_eq!(store.last_event_seq(9).await.expect("last"), 5);
    let from3 = store.read_events(9, 3).await.expect("read from 3");
    assert_eq!(from3.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
    assert_eq!(from3[0].payload, b"event 3");
    assert_eq!(from3[0].at_ms, 300);
    assert!(store.read_events(9, 6).await.expect("read past the end").is_empty());
    assert_eq!(store.read_events(9, 0).await.expect("read all").len(), 5, "the retried append was not doubled");
    assert_eq!(store.read_events(10, 0).await.expect("read").len(), 1);
    // Every job's log, in (job, seq) order, page by page.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.scan_events(after, 4).await.expect("scan_events");
        if page.is_empty() {
            break;
        }
        after = page.last().map(|(job, e)| (*job, e.seq));
        seen.extend(page.into_iter().map(|(job, e)| (job, e.seq)));
    }
    assert_eq!(seen, vec![(9, 1), (9, 2), (9, 3), (9, 4), (9, 5), (10, 1)]);
    // A state change and its record, stored together.
    let snapshot = crate::SnapshotPut { kind: Kind::Job, id: 10, blob: b"accepted".to_vec(), last: false };
    store.put_and_append(vec![snapshot], 10, LogEntry::new(2, 200, b"accepted".to_vec())).await.expect("put and append");
    assert_eq!(store.get(Kind::Job, 10).await.expect("get").as_deref(), Some(&b"accepted"[..]));
    assert_eq!(store.last_event_seq(10).await.expect("last"), 2);
    let last = crate::SnapshotPut { kind: Kind::Job, id: 10, blob: b"completed".to_vec(), last: true };
    store.put_and_append(vec![last], 10, LogEntry::new(3, 300, b"completed".to_vec())).await.expect("put final and append");
    assert_eq!(store.get(Kind::Job, 10).await.expect("get").as_deref(), Some(&b"completed"[..]));
    assert_eq!(store.read_events(10, 0).await.expect("read").len(), 3);
    // A change, its record and what the request that made it did: one commit.
    let change = crate::SnapshotPut { kind: Kind::Job, id: 10, blob: b"rated".to_vec(), last: false };
    let request = crate::SnapshotPut { kind: Kind::Request, id: 77, blob: b"rated, as asked".to_vec(), last: false };
    store.put_and_append(vec![change, request], 10, LogEntry::new(4, 400, b"rated".to_vec())).await.expect("put two and append");
    assert_eq!(store.get(Kind::Job, 10).await.expect("get").as_deref(), Some(&b"rated"[..]));
    assert_eq!(store.get(Kind::Request, 77).await.expect("get").as_deref(), Some(&b"rated, as asked"[..]));
    assert_eq!(store.last_event_seq(10).await.expect("last"), 4);
    store.delete(Kind::Request, 77).await.expect("delete");
    store.delete(Kind::Job, 10).await.expect("delete");
    assert!(store.scan_events(Some((10, u64::MAX)), 4).await.expect("scan past the end").is_empty());
}

/// Many writers at once, as a busy city's actors are: every snapshot and
/// every log entry lands, none lost or mixed up.
async fn concurrent_writers(store: &dyn SnapshotStore) {
    const WRITERS: u64 = 16;
    const EACH: u64 = 8;
    let writers = (0..WRITERS).map(|w| async move {
        for i in 0..EACH {
            let id = 50_000 + w * 100 + i;
            store.put(Kind::Job, id, id.to_le_bytes().to_vec()).await.expect("concurrent put");
            store.append_event(60_000 + w, LogEntry::new(i + 1, i as i64, vec![w as u8, i as u8])).await.expect("concurrent append");
        }
    });
    futures_util::future::join_all(writers).await;
    for w in 0..WRITERS {
        let log = store.read_events(60_000 + w, 0).await.expect("read");
        assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=EACH).collect::<Vec<_>>(), "writer {w}'s log");
        assert!(log.iter().all(|e| e.payload[0] == w as u8), "writer {w}'s entries are its own");
        assert_eq!(store.last_event_seq(60_000 + w).await.expect("last"), EACH);
        for i in 0..EACH {
            let id = 50_000 + w * 100 + i;
            assert_eq!(store.get(Kind::Job, id).await.expect("get"), Some(id.to_le_bytes().to_vec()), "job {id}");
            store.delete(Kind::Job, id).await.expect("delete");
        }
    }
}
