//! More than one process: stateless gateways, engines that own cities.
//!
//! `dispatch serve` runs every role in one process and uses none of this.
//! A cluster splits it: `dispatch gateway` processes hold the WebSockets and
//! reach each city through its owner ([`RemoteCity`]); `dispatch engine`
//! processes own cities, one owner per city at a time, by a lease with a
//! fencing epoch in the store ([`EngineNode`]); NATS carries everything
//! between them (`wire`). `docs/cluster.md` is the operator's account.
//!
//! | module | what lives there |
//! |---|---|
//! | `config` | [`ClusterConfig`]: NATS, the lease TTL, the request timeout, pinned cities |
//! | `wire` | every NATS subject and payload between gateways and engines |
//! | `remote` | [`RemoteCity`]: a city as a gateway reaches it through its owner |
//! | `engine` | [`EngineNode`]: keepers that take, renew, fence and hand off cities' leases, and serve the cities held |
//! | `owner` | what an owner serves on its city's subjects: commands, maps, GPS, `whois`, announcements, events |
//! | `members` | the live engines, from heartbeats |
//! | `placement` | which live engine should own a city: rendezvous hashing, pins first |
//! | `nats` | connecting with jittered reconnects |

mod config;
mod engine;
mod members;
mod nats;
mod owner;
pub mod placement;
mod remote;
pub mod wire;

pub use config::ClusterConfig;
pub use engine::EngineNode;
pub use nats::connect;
pub use remote::RemoteCity;
