//! # dispatch-loadtest — the bundled load-test harness
//!
//! Not built yet (issue "Bundled load-test harness"). This crate will hold
//! scenario presets (gps, match, chat, map, connections) driving real WebSocket
//! bots against a running gateway with open-loop arrivals, `hdrhistogram`
//! latency summaries, a JSON report, and a peer comparison against Redis GEO.

pub use dispatch_gateway as gateway;
