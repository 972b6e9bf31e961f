//! # dispatch-storage — where actor snapshots and job event logs live
//!
//! | module | what lives there |
//! |---|---|
//! | [`store`] | the async [`SnapshotStore`] trait, [`Kind`], [`LogEntry`] |
//! | [`codec`] | `bincode` 2 inside a versioned, checksummed envelope: [`encode`] / [`decode`] |
//! | [`memory`] | [`MemoryStore`], the in-memory backend for tests |
//! | [`dump`] | the portable dump of stores, city by city: [`DumpWriter`] / [`DumpReader`] |
//! | [`embedded`] | [`EmbeddedStore`], the default backend: `redb` on a data directory, no setup |
//! | [`scylladb`] | [`ScyllaStore`], the production backend: a keyspace per city, migrations, prepared statements, consistency per write class; a cluster's leases and per-epoch writer roles |
//! | [`resilient`] | [`ResilientStore`]: buffers writes while the backend is unreachable (degraded), drains them when it returns |
//! | [`journal`] | [`Journal`]: the degraded-mode buffer on local disk, so what was acknowledged during an outage survives a crash |
//! | [`fenced`] | [`FencedStore`]: a cluster owner's store, writing only while its lease is trusted ([`Fence`]) |
//! | `group_commit` | one committer thread per redb file: a transaction and one fsync per group of waiting writes |
//! | [`retry`] | [`RetryPolicy`]: exponential backoff on transient failures |
//! | `testsuite` | conformance checks every backend runs (feature `testsuite`) |
//! | [`error`] | [`StorageError`], the crate's one error type |
//!
//! The trait is shaped for a wide-column store: snapshots are keyed by kind
//! and id, each job's event log is one partition clustered by sequence number
//! (numbered by the caller, so appends are plain idempotent writes).
//!
//! It depends on nothing else in the workspace: blobs are opaque bytes here,
//! and the actors choose what goes in them.

pub mod codec;
pub mod dump;
pub mod embedded;
pub mod error;
pub mod fenced;
mod group_commit;
pub mod journal;
pub mod memory;
pub mod resilient;
pub mod retry;
pub mod scylladb;
pub mod store;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

pub use codec::{SCHEMA_VERSION, Versioned, decode, encode};
pub use dump::{DumpReader, DumpWriter};
pub use embedded::EmbeddedStore;
pub use error::StorageError;
pub use fenced::{Fence, FencedStore};
pub use journal::Journal;
pub use memory::MemoryStore;
pub use resilient::{ResilienceConfig, ResilientStore};
pub use retry::RetryPolicy;
pub use scylladb::{ScyllaConfig, ScyllaStore};
pub use store::{Health, Kind, LogEntry, SnapshotPut, SnapshotStore};
