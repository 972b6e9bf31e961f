//! # dispatch-gateway — the WebSocket and HTTP front door
//!
//! | module | what lives there |
//! |---|---|
//! | [`server`] | [`Gateway`] (cities, auth, settings) and [`run`]: HTTP routes and the WebSocket upgrade on one port |
//! | [`admin`] | `/v1/admin/…` in `axum`: operators' reads of a city (jobs with their log, contractors, books), admins anywhere, dispatchers at home; the OpenAPI 3.1 document at `/v1/openapi.json` (`utoipa`) |
//! | [`auth_config`] | `[auth]`: where tokens are trusted from (the secret's minimum length, or an identity provider's keys, re-read on SIGHUP or a change) |
//! | `overload` | overload detection (timers run late, posts acknowledged slowly); while it lasts, each connection's GPS is thinned before it costs more than a parse |
//! | `router` | one task per city hands each event to the sessions it concerns (not every connection) |
//! | `session` | one WebSocket connection: role checks, GPS, commands through the city's port, event filtering, map feed, bounded outbound queue (one file each) |
//! | `port` | what a session needs of its city wherever it runs: its actors here (`dispatch serve`), or its owner over NATS (`dispatch gateway`) |
//! | `execute` | the one executor of client commands against a city's actors, used in process and by engine nodes; request ids answered from their records |
//! | `money` | the money commands (confirm a hold, extras, disputes, refunds, receipts, earnings) and payment events on the wire |
//! | `city_event` | a city's job events in the protocol's types, with an offer's terms, as routers route them |
//! | `processor_webhooks` | `POST /v1/webhooks/stripe`: the processor's signed webhooks (chargebacks) to the city and job they concern |
//! | [`webhooks`] | outbound webhooks: each city's outbox posted, signed, to the endpoints that take it, retried with backoff, dead letters and replay; SSRF checks; `[webhooks]` |
//! | `refusal` | why a request was refused: error code and message |
//! | [`cluster`] | more than one process: NATS subjects and payloads, remote cities, engine nodes with leases and fencing, placement (`docs/cluster.md`) |
//! | `finished` | finished jobs remembered for a while by the router and the sessions, then forgotten |
//! | [`protocol`] | re-exported `dispatch-protocol`: [`ClientMsg`] / [`ServerMsg`], typed acks, frames, tokens |
//! | `wire` | the actors' events and map turned into the wire's types |
//! | [`cities`] | configured cities and their areas |
//! | [`config`] | [`ServeConfig`]: TOML, environment and flags |
//! | [`payments_config`] | `[payments]`: the card processor of each city and the money rules |
//! | [`demo`] | the simulated city behind `dispatch demo`: contractor and customer bots on real WebSockets |
//! | [`stores`] | [`StoreOpener`](stores::StoreOpener): each city's store as configured (embedded, memory, ScyllaDB), wrapped for serving in a `ResilientStore` |
//! | [`snapshot`] | `dispatch snapshot export` / `import`: every city's store to a portable dump file and back |
//! | [`cli`] | the `dispatch` command line (`src/bin/dispatch.rs` only calls [`cli::main`]) |

pub mod admin;
pub mod auth_config;
pub mod cities;
mod city_event;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod demo;
mod execute;
mod finished;
mod money;
mod overload;
pub mod payments_config;
mod port;
mod processor_webhooks;
mod refusal;
mod router;
pub mod server;
mod session;
pub mod snapshot;
pub mod stores;
pub mod webhooks;
mod wire;

pub use config::ServeConfig;
pub use dispatch_protocol::{self as protocol, Auth, Claims, Role, auth};
pub use dispatch_protocol::{ClientMsg, ServerMsg};
pub use dispatch_storage as storage;
pub use server::{Gateway, run};

/// The dispatcher's live map, served at `/` (embedded in the binary).
pub const MAP_PAGE: &str = include_str!("../assets/map.html");
