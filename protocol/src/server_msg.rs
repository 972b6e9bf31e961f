//! [`ServerMsg`]: what apps receive, and the error codes.

use dispatch_engine::{GeoPoint, Trade};
use serde::{Deserialize, Serialize};

use crate::ack::AckResult;
use crate::auth::Role;
use crate::event::Event;
use crate::map::{MapCell, MapContractor, MapJob, MatchStats};

/// Why a request was refused: the `code` of an `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame could not be read or a value is impossible.
    BadRequest,
    /// Your role or identity may not do this.
    Forbidden,
    /// No such job or contractor.
    NotFound,
    /// Not possible in the current state.
    Conflict,
    /// A position or job outside your city.
    OutOfArea,
    /// Too many chat messages.
    RateLimited,
    /// The store or an actor did not answer; try again.
    Unavailable,
    /// Your connection fell behind the event stream; send `resume`.
    Lagged,
    /// The card refused the job's hold: the job was not posted (it is kept, cancelled, with the reason).
    PaymentDeclined,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::BadRequest,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::OutOfArea,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::Lagged,
        ErrorCode::PaymentDeclined,
    ];

    /// The code as the wire and metrics name it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::OutOfArea => "out_of_area",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Lagged => "lagged",
            ErrorCode::PaymentDeclined => "payment_declined",
        }
    }
}

/// A message to an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerMsg {
    /// First frame on every connection: who the server thinks you are.
    Hello {
        /// Your role.
        role: Role,
        /// Your id.
        sub: u64,
        /// Your city.
        city: String,
    },
    /// A request succeeded.
    Ack {
        /// The request's id.
        id: Option<String>,
        /// What it produced: one typed reply per kind of request.
        result: AckResult,
    },
    /// A request failed; the connection stays open.
    Error {
        /// The request's id, if it had one and could be read.
        id: Option<String>,
        /// What kind of refusal.
        code: ErrorCode,
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
        event: Event,
    },
    /// To a dispatcher: the whole map, once, after `subscribe`.
    MapSnapshot {
        /// The map's version: deltas follow from here.
        version: u64,
        /// The city's area as `[lat, lng]` vertices.
        area: Vec<[f64; 2]>,
        /// How matching has gone.
        stats: MatchStats,
        /// Cells with contractors, open jobs or surge.
        cells: Vec<MapCell>,
        /// Contractors.
        contractors: Vec<MapContractor>,
        /// Jobs.
        jobs: Vec<MapJob>,
    },
    /// To a dispatcher: what changed, at most once a second.
    MapDelta {
        /// The map's version after this delta.
        version: u64,
        /// How matching has gone.
        stats: MatchStats,
        /// All cells again, when any changed.
        cells: Option<Vec<MapCell>>,
        /// Contractors that changed (status `offline`: left the map).
        contractors: Vec<MapContractor>,
        /// Jobs that changed.
        jobs: Vec<MapJob>,
    },
    /// Answer to `ping`.
    Pong {},
    /// Your city moved to another engine (a failover or a rebalance): send
    /// `resume` for each of these jobs with the last `seq` you have. A
    /// dispatcher's map feed goes on by itself, from a fresh `map_snapshot`.
    Moved {
        /// The jobs this connection follows.
        jobs: Vec<u64>,
    },
}

impl ServerMsg {
    /// Every message type the server sends.
    pub const KINDS: [&'static str; 9] = ["hello", "ack", "error", "offer", "event", "map_snapshot", "map_delta", "pong", "moved"];

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
            ServerMsg::Moved { .. } => "moved",
        }
    }
}
