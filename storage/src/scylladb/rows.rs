//! How the store's values map to CQL: unsigned ids to signed `bigint` keys
//! and shards, rows back to snapshots and log entries, shard pages merged in
//! id order; and which driver errors are worth a retry.

use scylla::errors::{DbError, ExecutionError, RequestAttemptError};

use super::SHARDS;
use crate::error::{Result, StorageError};
use crate::store::LogEntry;

/// The CQL `bigint` key of an unsigned id: the top bit flipped, so signed
/// order is unsigned order.
#[must_use]
pub const fn key(id: u64) -> i64 {
    (id ^ (1 << 63)) as i64
}

/// The id of a [`key`].
#[must_use]
pub const fn id_of(key: i64) -> u64 {
    (key as u64) ^ (1 << 63)
}

/// The shard of an id.
#[must_use]
pub const fn shard(id: u64) -> i16 {
    (id % SHARDS) as i16
}

/// The first key at or after which a scan continues, `None` when nothing can follow.
pub(super) fn start_key(after: Option<u64>) -> Option<i64> {
    match after {
        None => Some(key(0)),
        Some(id) => id.checked_add(1).map(key),
    }
}

/// How many rows to ask each shard for, to fill a page of `limit`.
pub(super) fn per_shard(limit: usize) -> usize {
    (limit * 2 / SHARDS as usize).max(8).min(limit).max(1)
}

/// Merges shards' slices (each sorted by id, each asked for `asked` rows)
/// into the first `limit` rows in id order. A shard that returned a full
/// slice may hold more rows past its last one, so nothing beyond the
/// smallest such last id is returned: the page is exactly the next rows.
#[must_use]
pub fn merge_shard_pages<T>(pages: Vec<Vec<(u64, T)>>, asked: usize, limit: usize) -> Vec<(u64, T)> {
    let bound = pages.iter().filter(|p| p.len() >= asked).filter_map(|p| p.last().map(|(id, _)| *id)).min();
    let mut all: Vec<(u64, T)> = pages.into_iter().flatten().filter(|(id, _)| bound.is_none_or(|b| *id <= b)).collect();
    all.sort_unstable_by_key(|(id, _)| *id);
    all.truncate(limit);
    all
}

/// A snapshot row as stored: `(id key, blob)`.
#[must_use]
pub fn snapshot_row((id, blob): (i64, Vec<u8>)) -> (u64, Vec<u8>) {
    (id_of(id), blob)
}

/// A log row as stored: `(seq, at_ms, payload)`.
pub fn event_row((seq, at_ms, payload): (i64, i64, Vec<u8>)) -> Result<LogEntry> {
    let seq = u64::try_from(seq).map_err(|_| StorageError::Decode(format!("negative event sequence number {seq}")))?;
    Ok(LogEntry { seq, at_ms, payload })
}

/// Whether a driver error is worth retrying: the cluster was unreachable,
/// slow or overloaded — not a refused statement.
#[must_use]
pub fn is_transient(e: &ExecutionError) -> bool {
    match e {
        ExecutionError::BadQuery(_) | ExecutionError::UseKeyspaceError(_) | ExecutionError::PrepareError(_) => false,
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, _)) => matches!(
            db,
            DbError::Unavailable { .. }
                | DbError::Overloaded
                | DbError::IsBootstrapping
                | DbError::ReadTimeout { .. }
                | DbError::WriteTimeout { .. }
                | DbError::ReadFailure { .. }
                | DbError::WriteFailure { .. }
                | DbError::ServerError
                | DbError::Unprepared { .. }
        ),
        ExecutionError::LastAttemptError(
            RequestAttemptError::SerializationError(_)
            | RequestAttemptError::CqlRequestSerialization(_)
            | RequestAttemptError::UnexpectedResponse(_),
        ) => false,
        _ => true,
    }
}

/// The storage error of a driver error.
#[must_use]
pub fn storage_error(e: &ExecutionError) -> StorageError {
    if is_transient(e) { StorageError::Unavailable(format!("scylla: {e}")) } else { StorageError::Backend(format!("scylla: {e}")) }
}

pub(super) fn backend(what: &str) -> impl Fn(&dyn std::fmt::Display) -> StorageError + '_ {
    move |e| StorageError::Backend(format!("scylla {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn keys_keep_unsigned_order_and_round_trip() {
        let ids = [0u64, 1, 2, 1 << 62, (1 << 63) - 1, 1 << 63, u64::MAX - 1, u64::MAX];
        for w in ids.windows(2) {
            assert!(key(w[0]) < key(w[1]), "{} before {}", w[0], w[1]);
        }
        for id in ids {
            assert_eq!(id_of(key(id)), id);
        }
        assert_eq!(key(0), i64::MIN);
        assert_eq!(shard(130), 2);
        assert_eq!(start_key(None), Some(i64::MIN));
        assert_eq!(start_key(Some(5)), Some(key(6)));
        assert_eq!(start_key(Some(u64::MAX)), None, "nothing follows the last id");
    }

    #[test]
    fn shard_pages_merge_into_the_next_rows_in_id_order() {
        // Three shards asked for 2 rows each; shard 0 and 2 are full.
        let pages = vec![vec![(3, 'a'), (9, 'b')], vec![(1, 'c')], vec![(2, 'd'), (5, 'e')]];
        let merged = merge_shard_pages(pages, 2, 10);
        // Shard 2 might hold 6, 7, 8 … after 5: stop at the smallest full page's end.
        assert_eq!(merged, vec![(1, 'c'), (2, 'd'), (3, 'a'), (5, 'e')]);
        // No full page: everything, up to the limit.
        let merged = merge_shard_pages(vec![vec![(4, ())], vec![(2, ())], vec![]], 2, 1);
        assert_eq!(merged, vec![(2, ())]);
        assert!(merge_shard_pages::<()>(vec![vec![], vec![]], 2, 5).is_empty());
        assert_eq!(per_shard(1024), 32);
        assert_eq!(per_shard(3), 3);
        assert_eq!(per_shard(100), 8);
    }

    #[test]
    fn rows_map_to_ids_and_entries() {
        assert_eq!(snapshot_row((key(42), vec![1, 2])), (42, vec![1, 2]));
        assert_eq!(event_row((3, 1_700, b"x".to_vec())).unwrap(), LogEntry::new(3, 1_700, b"x".to_vec()));
        assert!(matches!(event_row((-1, 0, vec![])), Err(StorageError::Decode(_))));
    }

    #[test]
    fn driver_errors_are_sorted_into_retry_and_give_up() {
        use scylla::errors::{BadQuery, WriteType};
        use scylla::statement::Consistency;
        let timeout = ExecutionError::RequestTimeout(Duration::from_secs(2));
        assert!(is_transient(&timeout));
        assert!(storage_error(&timeout).is_transient());
        let unavailable = ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::Unavailable { consistency: Consistency::LocalQuorum, required: 2, alive: 1 },
            "two replicas down".into(),
        ));
        assert!(is_transient(&unavailable));
        let write_timeout = ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::WriteTimeout { consistency: Consistency::LocalQuorum, received: 1, required: 2, write_type: WriteType::Simple },
            "slow".into(),
        ));
        assert!(is_transient(&write_timeout));
        let syntax = ExecutionError::LastAttemptError(RequestAttemptError::DbError(DbError::SyntaxError, "line 1".into()));
        assert!(!is_transient(&syntax));
        assert!(matches!(storage_error(&syntax), StorageError::Backend(_)));
        let unauthorized = ExecutionError::LastAttemptError(RequestAttemptError::DbError(DbError::Unauthorized, "no".into()));
        assert!(!is_transient(&unauthorized));
        assert!(!is_transient(&ExecutionError::BadQuery(BadQuery::TooManyQueriesInBatchStatement(70_000))));
        assert!(is_transient(&ExecutionError::EmptyPlan));
    }
}
