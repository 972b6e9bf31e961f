//! What crosses NATS between gateways and engines: every subject and every
//! payload (`docs/cluster.md` describes them for operators).
//!
//! Payloads are `bincode` 2 (standard configuration) of the types below,
//! which are made of the protocol crate's types: a command is the client's
//! own [`ClientMsg`], a reply the same `Executed` or `Refusal` a session
//! gets in process, an event the `CityEvent` the router routes.
//!
//! | subject | pattern | payload |
//! |---|---|---|
//! | `dispatch.city.<city>.<epoch>.cmd` | request / reply | [`CommandRequest`] → [`CommandReply`] |
//! | `dispatch.city.<city>.<epoch>.map` | request / reply | [`MapRequest`] → [`MapReply`] |
//! | `dispatch.city.<city>.<epoch>.gps` | publish | [`GpsBatch`] |
//! | `dispatch.city.<city>.<epoch>.processor` | request / reply | [`ProcessorRequest`] → [`ProcessorReply`] |
//! | `dispatch.city.<city>.<epoch>.admin` | request / reply | [`AdminRequest`] → [`AdminReply`] |
//! | `dispatch.city.<city>.events` | publish | [`EventBatch`] |
//! | `dispatch.city.<city>.owner` | publish | [`Owner`] (on takeover, release and every second) |
//! | `dispatch.city.<city>.whois` | request / reply | empty → [`Owner`] |
//! | `dispatch.engines.heartbeat` | publish | [`Heartbeat`] |
//!
//! The epoch in a city's command, map and GPS subjects is its owner's
//! fencing epoch: an owner that lost its lease still has its subscription
//! until it notices, but gateways address the new epoch, which it never
//! subscribed to.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::city_event::CityEvent;
use crate::port::{Caller, Executed, MapUpdate};
use crate::protocol::ClientMsg;
use crate::refusal::Refusal;

/// The prefix of every subject.
const PREFIX: &str = "dispatch";

/// The subject engines announce themselves on.
pub const HEARTBEAT: &str = "dispatch.engines.heartbeat";

/// The subjects of one city.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CitySubjects {
    city: String,
}

impl CitySubjects {
    /// The subjects of `city` (a name without `.`, `*`, `>` or whitespace: the config checks it).
    #[must_use]
    pub fn new(city: &str) -> Self {
        Self { city: city.to_owned() }
    }

    /// Commands to the owner of `epoch`.
    #[must_use]
    pub fn commands(&self, epoch: u64) -> String {
        format!("{PREFIX}.city.{}.{epoch}.cmd", self.city)
    }

    /// Map requests to the owner of `epoch`.
    #[must_use]
    pub fn map(&self, epoch: u64) -> String {
        format!("{PREFIX}.city.{}.{epoch}.map", self.city)
    }

    /// GPS batches to the owner of `epoch`.
    #[must_use]
    pub fn gps(&self, epoch: u64) -> String {
        format!("{PREFIX}.city.{}.{epoch}.gps", self.city)
    }

    /// The card processor's webhooks, verified by a gateway, to the owner of `epoch`.
    #[must_use]
    pub fn processor(&self, epoch: u64) -> String {
        format!("{PREFIX}.city.{}.{epoch}.processor", self.city)
    }

    /// Operators' reads (the admin API), to the owner of `epoch`.
    #[must_use]
    pub fn admin(&self, epoch: u64) -> String {
        format!("{PREFIX}.city.{}.{epoch}.admin", self.city)
    }

    /// The city's events, from whichever owner.
    #[must_use]
    pub fn events(&self) -> String {
        format!("{PREFIX}.city.{}.events", self.city)
    }

    /// Owner announcements.
    #[must_use]
    pub fn owner(&self) -> String {
        format!("{PREFIX}.city.{}.owner", self.city)
    }

    /// Gateways' notes of their connections' presence, to whichever owner.
    #[must_use]
    pub fn presence(&self) -> String {
        format!("{PREFIX}.city.{}.presence", self.city)
    }

    /// Who owns the city now (answered by the owner).
    #[must_use]
    pub fn whois(&self) -> String {
        format!("{PREFIX}.city.{}.whois", self.city)
    }
}

/// A gateway's note of one connection: open for `holds_ms` more, or closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceNote {
    /// A contractor's connection (or a customer's).
    pub contractor: bool,
    /// Their id.
    pub id: u64,
    /// The connection, unique among the gateways' (random).
    pub connection: u64,
    /// How long it counts from now, ms; `None`: it closed.
    pub holds_ms: Option<u64>,
}

/// Whether `name` can be a subject token: not empty, no `.`, `*`, `>` or whitespace.
#[must_use]
pub fn is_subject_token(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
}

/// A client's command, forwarded by a gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRequest {
    /// Who sends it (the gateway verified the token and the role).
    pub caller: Caller,
    /// The message.
    pub msg: ClientMsg,
}

/// The owner's answer to a command.
pub type CommandReply = Result<Executed, Refusal>;

/// A card processor's webhook, verified by the gateway that received it:
/// what it means for a job's money. The owner applies it if its processor
/// made the object it names.
pub type ProcessorRequest = dispatch_actors::payments::webhook::Notice;

/// The owner's answer to a webhook: the job it concerned (`None`: not this city's).
pub type ProcessorReply = Result<Option<u64>, Refusal>;

/// An operator's read of the city, from the admin API of a gateway.
pub type AdminRequest = crate::admin::query::AdminQuery;

/// The owner's answer to an operator's read.
pub type AdminReply = Result<crate::admin::query::AdminAnswer, Refusal>;

/// A dispatcher's map request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MapRequest {
    /// Changes since this version (0: everything).
    pub version: u64,
    /// `[south, west, north, east]`, if the dispatcher set one.
    pub viewport: Option<[f64; 4]>,
}

/// The owner's answer to a map request.
pub type MapReply = Result<MapUpdate, Refusal>;

/// One contractor's fix, as the phone sent it (already checked by the gateway).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    /// The contractor.
    pub contractor: u64,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lng: f64,
    /// Degrees from north.
    pub heading: Option<f64>,
    /// Metres per second.
    pub speed: Option<f64>,
    /// Metres.
    pub accuracy: Option<f64>,
    /// When, ms since the Unix epoch.
    pub ts: i64,
}

/// The fixes a gateway gathered for one city over a few milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpsBatch {
    /// In arrival order.
    pub fixes: Vec<Fix>,
}

/// Events of one city, in the order the owner broadcast them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBatch {
    /// The owner's epoch: gateways drop batches of an epoch older than the owner they know.
    pub epoch: u64,
    /// Events the owner's publisher fell behind on and lost since the last batch
    /// (the gateways' sessions are told they lagged, and resume).
    pub missed: u64,
    /// The events.
    pub events: Vec<CityEvent>,
}

/// Who owns a city.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The city.
    pub city: String,
    /// The owner's fencing epoch (0: the city has no owner right now).
    pub epoch: u64,
    /// The owning engine's node name.
    pub node: String,
}

/// An engine saying it is alive, for placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The engine's node name.
    pub node: String,
    /// Whether it is leaving (SIGTERM): others take its cities now.
    pub leaving: bool,
}

/// Why a payload could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable cluster payload: {0}")]
pub struct BadPayload(String);

/// `value` as a payload.
pub fn encode<T: Serialize>(value: &T) -> bytes::Bytes {
    // Serializing these types into a Vec cannot fail: every type has a serde
    // derive and bincode's standard configuration has no size limit.
    bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap_or_default().into()
}

/// A payload read back.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BadPayload> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard()).map_err(|e| BadPayload(e.to_string()))?;
    if read != bytes.len() {
        return Err(BadPayload(format!("{} bytes left over", bytes.len() - read)));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::port::{Executed, Follow};
    use crate::protocol::{ChatAcked, ErrorCode, Event};
    use dispatch_engine::Party;

    #[test]
    fn subjects_carry_the_city_and_the_epoch() {
        let s = CitySubjects::new("des-moines");
        assert_eq!(s.commands(7), "dispatch.city.des-moines.7.cmd");
        assert_eq!(s.gps(7), "dispatch.city.des-moines.7.gps");
        assert_eq!(s.map(7), "dispatch.city.des-moines.7.map");
        assert_eq!(s.processor(7), "dispatch.city.des-moines.7.processor");
        assert_eq!(s.admin(7), "dispatch.city.des-moines.7.admin");
        assert_eq!(s.events(), "dispatch.city.des-moines.events");
        assert!(is_subject_token("des-moines") && !is_subject_token("des.moines") && !is_subject_token("a b") && !is_subject_token(""));
    }

    #[test]
    fn payloads_round_trip_and_garbage_is_refused() {
        let request = CommandRequest {
            caller: Caller { role: Role::Customer, sub: 3 },
            msg: ClientMsg::Chat { job: 9, text: "hi".into(), request_id: Some("m-1".into()) },
        };
        assert_eq!(decode::<CommandRequest>(&encode(&request)).unwrap(), request);
        let replay = vec![CityEvent {
            job: 9,
            seq: 4,
            at: 5,
            event: Event::Chat { party: Party::Customer, sender: 3, text: "hi".into() },
            offer: None,
        }];
        let ok: CommandReply = Ok(Executed {
            result: ChatAcked { job: 9, seq: 5 }.into(),
            replay,
            follow: Follow::Resumed { job: 9, party: Party::Customer },
        });
        assert_eq!(decode::<CommandReply>(&encode(&ok)).unwrap(), ok);
        let refused: CommandReply = Err(crate::refusal::refuse(ErrorCode::NotFound, "no job 9"));
        assert_eq!(decode::<CommandReply>(&encode(&refused)).unwrap(), refused);
        assert!(decode::<CommandRequest>(b"\xff\xff\xff").is_err());
        let mut long = encode(&request).to_vec();
        long.push(0);
        assert!(decode::<CommandRequest>(&long).unwrap_err().to_string().contains("left over"));
    }
}
