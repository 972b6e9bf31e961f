//! # dispatch-actors — live state as supervised `ractor` actors
//!
//! Not built yet (issue "Actors and embedded storage"). This crate will hold:
//! - the per-city dispatcher actor that supervises everything below it;
//! - one cell actor per active H3 cell, owning that cell's R-tree of contractors,
//!   its supply and demand, and its learned road speed;
//! - one contractor actor per live contractor (GPS, status, hibernation to a snapshot);
//! - one job actor per open job, driving [`dispatch_engine`]'s job state machine
//!   (offers, timeouts, reassignment) and appending to the job's event log;
//! - snapshot and restore through [`dispatch_storage`].
//!
//! Dependencies point one way: engine ← actors ← gateway, storage ← actors.

pub use dispatch_engine as engine;
pub use dispatch_storage as storage;
