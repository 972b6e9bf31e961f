//! # dispatch-gateway — the WebSocket and HTTP front door
//!
//! Not built yet (issue "Gateway"). This crate will hold the wire protocol
//! (JSON and `bincode` frames), JWT auth, the WebSocket sessions of contractor,
//! customer and dispatcher apps, `/healthz`, `/readyz`, `/metrics`, the map page,
//! and the `dispatch` binary as a thin wrapper over a library `run()`.

pub use dispatch_actors as actors;
