//! The wire protocol: what apps send ([`ClientMsg`]) and receive ([`ServerMsg`]).
//!
//! A JSON text frame is one object whose `type` names the message, with an
//! optional `id` the server echoes in its `ack` or `error`:
//!
//! ```json
//! {"type": "gps", "lat": 41.59, "lng": -93.62, "ts": 1795420800000}
//! {"type": "post_job", "id": "p1", "trade": "plumbing", "lat": 41.58, "lng": -93.63,
//!  "urgency": "today", "description": "leak under the sink"}
//! ```
//!
//! Every frame that cannot be read — not JSON, not an object, no or unknown
//! `type`, a missing or mistyped field, an impossible coordinate — is answered
//! with `error {code: "bad_request", message}` naming the problem; the
//! connection stays open. See `docs/protocol.md` for every message.

use dispatch_actors::EventKind;
use dispatch_engine::{GeoPoint, Trade};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Years in one trade, as a contractor registers them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradeYears {
    /// The trade.
    pub trade: Trade,
    /// Years of experience.
    pub years: u8,
}

/// How soon a job is needed, on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UrgencyWire {
    /// As soon as possible.
    Emergency,
    /// Today.
    Today,
    /// Within a window, ms since the Unix epoch.
    Scheduled {
        /// Window start.
        start: i64,
        /// Window end.
        end: i64,
    },
}

/// How far along a contractor is with a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobProgress {
    /// Driving there.
    EnRoute,
    /// At the site.
    OnSite,
    /// Done.
    Completed,
}

/// A lat/lng box.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Viewport {
    /// Southern edge (latitude).
    pub south: f64,
    /// Western edge (longitude).
    pub west: f64,
    /// Northern edge (latitude).
    pub north: f64,
    /// Eastern edge (longitude).
    pub east: f64,
}

impl Viewport {
    /// `[south, west, north, east]`, if the box is real.
    pub fn bounds(&self) -> Result<[f64; 4], String> {
        GeoPoint::new(self.south, self.west).map_err(|e| e.to_string())?;
        GeoPoint::new(self.north, self.east).map_err(|e| e.to_string())?;
        if self.south > self.north || self.west > self.east {
            return Err("viewport: south must be <= north and west <= east".into());
        }
        Ok([self.south, self.west, self.north, self.east])
    }
}

/// One H3 cell on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapCell {
    /// The H3 index, hex.
    pub cell: String,
    /// Available contractors in the cell.
    pub supply: u32,
    /// Open jobs in the cell.
    pub demand: u32,
    /// The surge multiplier.
    pub surge: f64,
    /// The hexagon's corners as `[lat, lng]`, from h3o.
    pub boundary: Vec<[f64; 2]>,
}

/// A message from an app. Which role may send which is in `docs/protocol.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// Contractor: create or keep my profile (first connection).
    Register {
        /// Display name.
        name: String,
        /// Trades practised.
        trades: Vec<TradeYears>,
        /// Hourly rate, cents.
        hourly_rate: u64,
        /// How far I travel, metres.
        service_radius_m: f64,
    },
    /// Contractor: I am available at this position.
    Online {
        /// Latitude.
        lat: f64,
        /// Longitude.
        lng: f64,
    },
    /// Contractor: I stop for now.
    Offline {},
    /// Contractor: I pause (online, no offers).
    Break {},
    /// Contractor: a GPS fix (no ack, even with an id).
    Gps {
        /// Latitude.
        lat: f64,
        /// Longitude.
        lng: f64,
        /// Degrees from north.
        #[serde(default)]
        heading: Option<f64>,
        /// m/s.
        #[serde(default)]
        speed: Option<f64>,
        /// Metres.
        #[serde(default)]
        accuracy: Option<f64>,
        /// When the phone took it, ms since the Unix epoch.
        ts: i64,
    },
    /// Contractor: I take the job offered to me.
    Accept {
        /// The job.
        job: u64,
    },
    /// Contractor: I pass on the job offered to me.
    Decline {
        /// The job.
        job: u64,
    },
    /// Contractor: progress on my job.
    JobStatus {
        /// The job.
        job: u64,
        /// How far along.
        status: JobProgress,
    },
    /// Customer: post a job; acked with its id and price quote.
    PostJob {
        /// Trade needed.
        trade: Trade,
        /// Latitude of the site.
        lat: f64,
        /// Longitude of the site.
        lng: f64,
        /// How soon.
        urgency: UrgencyWire,
        /// What is wrong.
        description: String,
        /// Most I will pay, cents.
        #[serde(default)]
        budget: Option<u64>,
    },
    /// Customer (own job) or dispatcher: call a job off.
    Cancel {
        /// The job.
        job: u64,
        /// Why.
        #[serde(default)]
        reason: Option<String>,
    },
    /// Customer: follow my job (contractor position and ETA while it is active).
    Watch {
        /// The job.
        job: u64,
    },
    /// Customer: rate the contractor of my completed job, 0–5 stars.
    Rate {
        /// The job.
        job: u64,
        /// Stars.
        stars: f64,
    },
    /// Any participant: a chat message in the job's conversation.
    Chat {
        /// The job.
        job: u64,
        /// The message.
        text: String,
    },
    /// Any participant: everything logged for the job after `last_seq`.
    Resume {
        /// The job.
        job: u64,
        /// The last sequence number this device has.
        last_seq: u64,
    },
    /// Dispatcher: the live city feed (a snapshot, then deltas at most once a
    /// second), optionally only inside a viewport.
    Subscribe {
        /// The area to watch; the whole city if absent.
        #[serde(default)]
        viewport: Option<Viewport>,
    },
    /// Dispatcher: offer a job to this contractor, taking it back from whoever holds it.
    Assign {
        /// The job.
        job: u64,
        /// The contractor chosen.
        contractor: u64,
    },
    /// Dispatcher: the `k` contractors nearest a point (optionally of one
    /// trade, available only, within a radius); acked with them, nearest first.
    Nearby {
        /// Latitude.
        lat: f64,
        /// Longitude.
        lng: f64,
        /// How many, 1 to 100.
        k: usize,
        /// Only contractors of this trade.
        #[serde(default)]
        trade: Option<Trade>,
        /// Only available contractors.
        #[serde(default)]
        available_only: bool,
        /// Only within this many metres.
        #[serde(default)]
        radius_m: Option<f64>,
    },
    /// Anyone: liveness; answered with `pong`.
    Ping {},
}

/// A message to an app. `R` is how an ack's result travels: a JSON value in
/// text frames, JSON text inside binary (bincode) frames, which cannot carry
/// free-form JSON values themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerMsg<R = Value> {
    /// First frame on every connection: who the server thinks you are.
    Hello {
        /// contractor, customer or dispatcher.
        role: String,
        /// Your id.
        sub: u64,
        /// Your city.
        city: String,
    },
    /// A request succeeded.
    Ack {
        /// The request's id.
        id: Option<String>,
        /// What it produced (job id, quote, sequence number…), or null.
        result: R,
    },
    /// A request failed; the connection stays open.
    Error {
        /// The request's id, if it had one and could be read.
        id: Option<String>,
        /// bad_request, forbidden, not_found, conflict, out_of_area, unavailable, lagged.
        code: String,
        /// What was wrong, for people.
        message: String,
    },
    /// To a contractor: a job offered to you.
    Offer {
        /// The job.
        job: u64,
        /// Its trade.
        trade: Trade,
        /// Its site.
        site: GeoPoint,
        /// The customer's words.
        description: String,
        /// Answer by then (ms since the Unix epoch).
        expires_at: i64,
        /// Your estimated drive, seconds.
        eta_secs: f64,
    },
    /// Something that happened to a job you take part in (logged, with its sequence number).
    Event {
        /// The job.
        job: u64,
        /// Position in the job's log.
        seq: u64,
        /// When (ms since the Unix epoch).
        at: i64,
        /// What happened.
        event: EventKind,
    },
    /// To a dispatcher: the whole map, once, after `subscribe`.
    MapSnapshot {
        /// The map's version: deltas follow from here.
        version: u64,
        /// The city's area as `[lat, lng]` vertices.
        area: Vec<[f64; 2]>,
        /// How matching has gone.
        stats: dispatch_actors::map::MatchStats,
        /// Cells with contractors, open jobs or surge.
        cells: Vec<MapCell>,
        /// Contractors.
        contractors: Vec<dispatch_actors::map::MapContractor>,
        /// Jobs.
        jobs: Vec<dispatch_actors::map::MapJob>,
    },
    /// To a dispatcher: what changed, at most once a second.
    MapDelta {
        /// The map's version after this delta.
        version: u64,
        /// How matching has gone.
        stats: dispatch_actors::map::MatchStats,
        /// All cells again, when any changed.
        cells: Option<Vec<MapCell>>,
        /// Contractors that changed (status `offline`: left the map).
        contractors: Vec<dispatch_actors::map::MapContractor>,
        /// Jobs that changed.
        jobs: Vec<dispatch_actors::map::MapJob>,
    },
    /// Answer to `ping`.
    Pong {},
}

impl ClientMsg {
    /// Every message type, as `type` names it on the wire.
    pub const KINDS: [&'static str; 18] = [
        "register",
        "online",
        "offline",
        "break",
        "gps",
        "accept",
        "decline",
        "job_status",
        "post_job",
        "cancel",
        "watch",
        "rate",
        "chat",
        "resume",
        "subscribe",
        "assign",
        "nearby",
        "ping",
    ];

    /// This message's `type` on the wire.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            ClientMsg::Register { .. } => "register",
            ClientMsg::Online { .. } => "online",
            ClientMsg::Offline {} => "offline",
            ClientMsg::Break {} => "break",
            ClientMsg::Gps { .. } => "gps",
            ClientMsg::Accept { .. } => "accept",
            ClientMsg::Decline { .. } => "decline",
            ClientMsg::JobStatus { .. } => "job_status",
            ClientMsg::PostJob { .. } => "post_job",
            ClientMsg::Cancel { .. } => "cancel",
            ClientMsg::Watch { .. } => "watch",
            ClientMsg::Rate { .. } => "rate",
            ClientMsg::Chat { .. } => "chat",
            ClientMsg::Resume { .. } => "resume",
            ClientMsg::Subscribe { .. } => "subscribe",
            ClientMsg::Assign { .. } => "assign",
            ClientMsg::Nearby { .. } => "nearby",
            ClientMsg::Ping {} => "ping",
        }
    }
}

impl<R> ServerMsg<R> {
    /// Every message type the server sends.
    pub const KINDS: [&'static str; 8] = ["hello", "ack", "error", "offer", "event", "map_snapshot", "map_delta", "pong"];

    /// This message's `type` on the wire.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            ServerMsg::Hello { .. } => "hello",
            ServerMsg::Ack { .. } => "ack",
            ServerMsg::Error { .. } => "error",
            ServerMsg::Offer { .. } => "offer",
            ServerMsg::Event { .. } => "event",
            ServerMsg::MapSnapshot { .. } => "map_snapshot",
            ServerMsg::MapDelta { .. } => "map_delta",
            ServerMsg::Pong {} => "pong",
        }
    }
}

/// Why a frame could not be read: always `bad_request`, with the id if it was readable.
#[derive(Debug, Clone, PartialEq)]
pub struct BadFrame {
    /// The frame's id, if it could be read.
    pub id: Option<String>,
    /// What was wrong.
    pub message: String,
}

/// Reads one JSON text frame.
pub fn parse_client(text: &str) -> Result<(Option<String>, ClientMsg), BadFrame> {
    let bad = |id: Option<String>, message: String| BadFrame { id, message };
    let value: Value = serde_json::from_str(text).map_err(|e| bad(None, format!("malformed JSON: {e}")))?;
    let Value::Object(mut fields) = value else {
        return Err(bad(None, "a frame must be a JSON object".into()));
    };
    let id = match fields.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => return Err(bad(None, format!("`id` must be a string or a number, not {other}"))),
    };
    let kind = match fields.remove("type") {
        Some(Value::String(kind)) => kind,
        Some(other) => return Err(bad(id, format!("`type` must be a string, not {other}"))),
        None => return Err(bad(id, "missing field `type`".into())),
    };
    let mut tagged = Map::new();
    tagged.insert(kind.clone(), Value::Object(fields));
    let msg: ClientMsg = serde_json::from_value(Value::Object(tagged)).map_err(|e| {
        let detail = e.to_string();
        if detail.starts_with("unknown variant") {
            bad(id.clone(), format!("unknown message type `{kind}`"))
        } else {
            bad(id.clone(), format!("{kind}: {detail}"))
        }
    })?;
    Ok((id, msg))
}

/// A binary frame: the same [`ClientMsg`] with its optional id, encoded with
/// `bincode` 2 (standard configuration, serde). For high-rate clients such as
/// phones streaming GPS; the server answers in JSON text frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryFrame {
    /// Echoed in the ack or error.
    pub id: Option<String>,
    /// The message.
    pub msg: ClientMsg,
}

/// Largest binary frame decoded, bytes (the socket's own limit applies first).
const MAX_BINARY: usize = 64 * 1024;

/// Encodes a binary frame (what a high-rate client sends).
pub fn encode_client_binary(id: Option<String>, msg: ClientMsg) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(BinaryFrame { id, msg }, bincode::config::standard()).map_err(|e| e.to_string())
}

/// Reads one binary frame.
pub fn parse_client_binary(bytes: &[u8]) -> Result<(Option<String>, ClientMsg), BadFrame> {
    let config = bincode::config::standard().with_limit::<MAX_BINARY>();
    match bincode::serde::decode_from_slice::<BinaryFrame, _>(bytes, config) {
        Ok((frame, used)) if used == bytes.len() => Ok((frame.id, frame.msg)),
        Ok((frame, used)) => Err(BadFrame { id: frame.id, message: format!("{} bytes after the binary frame", bytes.len() - used) }),
        Err(e) => Err(BadFrame { id: None, message: format!("malformed binary frame: {e}") }),
    }
}

/// Encodes a server message as a binary frame, for clients that send binary frames.
pub fn encode_server_binary(msg: &ServerMsg) -> Result<Vec<u8>, String> {
    let msg: ServerMsg<String> = match msg.clone() {
        ServerMsg::Ack { id, result } => ServerMsg::Ack { id, result: result.to_string() },
        ServerMsg::Hello { role, sub, city } => ServerMsg::Hello { role, sub, city },
        ServerMsg::Error { id, code, message } => ServerMsg::Error { id, code, message },
        ServerMsg::Offer { job, trade, site, description, expires_at, eta_secs } => {
            ServerMsg::Offer { job, trade, site, description, expires_at, eta_secs }
        }
        ServerMsg::Event { job, seq, at, event } => ServerMsg::Event { job, seq, at, event },
        ServerMsg::MapSnapshot { version, area, stats, cells, contractors, jobs } => {
            ServerMsg::MapSnapshot { version, area, stats, cells, contractors, jobs }
        }
        ServerMsg::MapDelta { version, stats, cells, contractors, jobs } => {
            ServerMsg::MapDelta { version, stats, cells, contractors, jobs }
        }
        ServerMsg::Pong {} => ServerMsg::Pong {},
    };
    bincode::serde::encode_to_vec(&msg, bincode::config::standard()).map_err(|e| e.to_string())
}

/// Decodes a binary server frame (what a binary client reads).
pub fn decode_server_binary(bytes: &[u8]) -> Result<ServerMsg<String>, String> {
    let config = bincode::config::standard().with_limit::<{ 16 * 1024 * 1024 }>();
    bincode::serde::decode_from_slice(bytes, config).map(|(m, _)| m).map_err(|e| e.to_string())
}

/// Writes one server message as a JSON text frame: `{"type": …, …fields}`.
#[must_use]
pub fn encode_server(msg: &ServerMsg) -> String {
    let value = serde_json::to_value(msg).unwrap_or(Value::Null);
    let flat = match value {
        Value::Object(outer) => match outer.into_iter().next() {
            Some((kind, Value::Object(mut fields))) => {
                fields.insert("type".into(), Value::String(kind));
                Value::Object(fields)
            }
            Some((kind, _)) => serde_json::json!({ "type": kind }),
            None => Value::Null,
        },
        Value::String(kind) => serde_json::json!({ "type": kind }),
        other => other,
    };
    flat.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_with_and_without_ids() {
        let (id, msg) = parse_client(r#"{"type":"gps","lat":41.5,"lng":-93.6,"ts":5}"#).unwrap();
        assert_eq!(id, None);
        assert!(matches!(msg, ClientMsg::Gps { ts: 5, heading: None, .. }));
        let (id, msg) = parse_client(r#"{"type":"accept","id":7,"job":3}"#).unwrap();
        assert_eq!(id.as_deref(), Some("7"));
        assert_eq!(msg, ClientMsg::Accept { job: 3 });
        let (_, msg) = parse_client(r#"{"type":"offline"}"#).unwrap();
        assert_eq!(msg, ClientMsg::Offline {});
        let (_, msg) = parse_client(r#"{"type":"subscribe","viewport":{"south":1,"west":2,"north":3,"east":4}}"#).unwrap();
        assert!(matches!(msg, ClientMsg::Subscribe { viewport: Some(v) } if v.bounds() == Ok([1.0, 2.0, 3.0, 4.0])));
        let backwards = Viewport { south: 3.0, west: 2.0, north: 1.0, east: 4.0 };
        assert!(backwards.bounds().is_err());
        let (_, msg) = parse_client(
            r#"{"type":"post_job","trade":"hvac","lat":1,"lng":2,"urgency":{"scheduled":{"start":1,"end":2}},"description":"x"}"#,
        )
        .unwrap();
        assert!(matches!(msg, ClientMsg::PostJob { urgency: UrgencyWire::Scheduled { start: 1, end: 2 }, .. }));
    }

    #[test]
    fn every_kind_of_bad_frame_names_its_problem() {
        let msg = |text: &str| parse_client(text).unwrap_err().message;
        assert!(msg("{not json").starts_with("malformed JSON"));
        assert!(msg("[1,2]").contains("JSON object"));
        assert!(msg(r#"{"lat":1}"#).contains("missing field `type`"));
        assert!(msg(r#"{"type":"teleport"}"#).contains("unknown message type `teleport`"));
        assert!(msg(r#"{"type":"gps","lat":1,"ts":1}"#).contains("missing field `lng`"));
        assert!(msg(r#"{"type":"accept","job":"three"}"#).contains("accept"));
        assert!(msg(r#"{"type":"offline","extra":1}"#).contains("unknown field `extra`"));
        assert_eq!(parse_client(r#"{"type":"accept","id":"a1"}"#).unwrap_err().id.as_deref(), Some("a1"));
    }

    #[test]
    fn binary_frames_roundtrip_and_garbage_is_refused() {
        let msg = ClientMsg::Gps { lat: 41.5, lng: -93.6, heading: Some(90.0), speed: None, accuracy: Some(4.0), ts: 9 };
        let bytes = encode_client_binary(Some("g1".into()), msg.clone()).unwrap();
        assert_eq!(parse_client_binary(&bytes).unwrap(), (Some("g1".into()), msg));
        assert!(parse_client_binary(&[0xff, 0xff, 0xff]).unwrap_err().message.contains("malformed binary frame"));
        let mut long = bytes.clone();
        long.push(0);
        assert!(parse_client_binary(&long).unwrap_err().message.contains("after the binary frame"));
        let ack = ServerMsg::Ack { id: Some("g1".into()), result: serde_json::json!({"job": 3}) };
        let back = decode_server_binary(&encode_server_binary(&ack).unwrap()).unwrap();
        assert_eq!(back, ServerMsg::Ack { id: Some("g1".into()), result: r#"{"job":3}"#.to_owned() });
        let event = ServerMsg::Event { job: 1, seq: 2, at: 3, event: EventKind::Declined { contractor: dispatch_engine::ContractorId(4) } };
        assert!(matches!(decode_server_binary(&encode_server_binary(&event).unwrap()).unwrap(), ServerMsg::Event { seq: 2, .. }));
        for cut in 0..bytes.len() {
            assert!(parse_client_binary(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn every_message_type_is_documented() {
        let markdown = include_str!("../../docs/protocol.md").replace(' ', "");
        let asyncapi = include_str!("../../docs/asyncapi.yaml");
        for kind in ClientMsg::KINDS.iter().chain(ServerMsg::<Value>::KINDS.iter()) {
            assert!(
                markdown.contains(&format!("`{kind}`")) || markdown.contains(&format!("\"type\":\"{kind}\"")),
                "protocol.md lacks {kind}"
            );
            assert!(
                asyncapi.contains(&format!("{kind}:")) || asyncapi.contains(&format!("{kind},")) || asyncapi.contains(&format!("{kind}]")),
                "asyncapi.yaml lacks {kind}"
            );
        }
        // The lists match the enums: each name parses back to a message of that kind.
        for kind in ClientMsg::KINDS {
            if let Err(e) = parse_client(&format!(r#"{{"type":"{kind}"}}"#)) {
                assert!(!e.message.contains("unknown message type"), "{kind}: {}", e.message);
            }
        }
    }

    #[test]
    fn server_frames_are_flat_objects_with_a_type() {
        let text = encode_server(&ServerMsg::Error { id: Some("9".into()), code: "forbidden".into(), message: "no".into() });
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "forbidden");
        assert_eq!(v["id"], "9");
        assert_eq!(serde_json::from_str::<Value>(&encode_server(&ServerMsg::Pong {})).unwrap()["type"], "pong");
    }
}
