//! # dispatch-protocol — the wire, for the server, apps and bots
//!
//! What a phone, a console or a bot needs to talk to `dispatch serve`, and
//! nothing else: no actors, no storage, no server.
//!
//! | module | what lives there |
//! |---|---|
//! | [`client_msg`] | [`ClientMsg`]: what apps send, with [`TradeYears`], [`UrgencyWire`], [`JobProgress`], [`Viewport`] |
//! | [`server_msg`] | [`ServerMsg`]: what apps receive, and the [`ErrorCode`]s |
//! | [`ack`] | typed replies: [`AckResult`] and one type per kind of request ([`Posted`], [`JobStateReply`], [`ChatAcked`], …) |
//! | [`event`] | [`Event`]: what happened to a job, as `event` frames carry it |
//! | [`payment`] | a job's money on the wire: [`PaymentReply`] (the ack of money requests: the engine's `Receipt`), [`EarningsReply`], [`CardReply`] (a customer's card on file); `payment` events carry the engine's `PaymentNotice` |
//! | [`map`] | the dispatcher's map on the wire: [`MapCell`], [`MapContractor`], [`MapJob`], [`MatchStats`] |
//! | [`frame`] | JSON text and bincode binary frames, both ways; [`BadFrame`] |
//! | [`auth`] | tokens: [`Auth`] (a shared HS256 secret, or an identity provider's RS256 / ES256 keys from a PEM or JWKS file, by `kid`), [`Claims`], [`Role`], the claim mapping |
//! | [`signature`] | signed HTTP deliveries: `t=…,v1=…`, HMAC-SHA256 over `timestamp.body`, two secrets, a tolerance ([`signature::sign`], [`signature::verify`]): the processor's webhooks in, the engine's out |
//! | [`webhook`] | the engine's outbound webhooks as a receiver sees them: [`webhook::Delivery`], the event id, the headers |
//! | `client` | (feature `client`) [`client::Connection`]: a WebSocket client speaking typed messages, for bots, the demo and the load test |
//!
//! `docs/protocol.md` documents every message; its JSON examples of server
//! frames are checked byte for byte against [`encode_server`].

pub mod ack;
pub mod auth;
#[cfg(feature = "client")]
pub mod client;
pub mod client_msg;
pub mod event;
pub mod frame;
pub mod map;
pub mod payment;
pub mod server_msg;
pub mod signature;
pub mod webhook;

pub use ack::{
    AckResult, ChatAcked, JobStateReply, Nearby, NearbyContractor, NotifyReply, Posted, Rated, Registered, Resumed, StatusReply, Subscribed,
};
pub use auth::{Auth, AuthError, Claims, Role};
pub use client_msg::{ClientMsg, JobProgress, MAX_REQUEST_ID_CHARS, TradeYears, UrgencyWire, Viewport};
pub use event::Event;
pub use frame::{
    BadFrame, BinaryFrame, decode_server, decode_server_binary, encode_client, encode_client_binary, encode_server, encode_server_binary,
    parse_client, parse_client_binary,
};
pub use map::{MapCell, MapContractor, MapJob, MatchStats};
pub use payment::{CardReply, CardStatus, EarningsReply, PaymentReply, PayoutAccountReply};
pub use server_msg::{ErrorCode, ServerMsg};
