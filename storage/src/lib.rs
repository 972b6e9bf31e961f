//! # dispatch-storage — where actor snapshots and job event logs live
//!
//! Not built yet (issue "Actors and embedded storage", then the ScyllaDB issue).
//! This crate will hold:
//! - the async `SnapshotStore` trait: put / get / delete / scan by kind, batched put,
//!   and an append-only event log per job with monotonic sequence numbers;
//! - the codec: `bincode` 2 inside a versioned envelope (magic + schema version);
//! - the embedded default backend on a data directory (no setup), an in-memory
//!   backend for tests, and the ScyllaDB backend for production.
//!
//! It depends on nothing else in the workspace.
