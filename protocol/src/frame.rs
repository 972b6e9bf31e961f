//! Frames: JSON text and bincode binary, both ways.
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
//! `type`, a missing or mistyped field, an impossible coordinate — is a
//! [`BadFrame`] naming the problem, answered with `bad_request`. Server
//! frames in JSON are compact, `type` first, then the message's fields in
//! declaration order (`docs/protocol.md` shows them byte for byte).
//!
//! A binary frame is a [`BinaryFrame`] (client) or a [`ServerMsg`] (server)
//! encoded with `bincode` 2, standard configuration: the same messages, an
//! ack's result included, typed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client_msg::ClientMsg;
use crate::server_msg::ServerMsg;

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
    bincode::serde::encode_to_vec(msg, bincode::config::standard()).map_err(|e| e.to_string())
}

/// Largest binary server frame decoded, bytes.
const MAX_SERVER_BINARY: usize = 16 * 1024 * 1024;

/// Decodes a binary server frame (what a binary client reads).
pub fn decode_server_binary(bytes: &[u8]) -> Result<ServerMsg, String> {
    let config = bincode::config::standard().with_limit::<MAX_SERVER_BINARY>();
    match bincode::serde::decode_from_slice(bytes, config) {
        Ok((msg, used)) if used == bytes.len() => Ok(msg),
        Ok((_, used)) => Err(format!("{} bytes after the binary frame", bytes.len() - used)),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes one server message as a JSON text frame: `{"type":…,…fields}`,
/// compact, fields in declaration order.
#[must_use]
pub fn encode_server(msg: &ServerMsg) -> String {
    flatten(msg.kind(), serde_json::to_string(msg))
}

/// Writes one client message as a JSON text frame, with its optional id.
#[must_use]
pub fn encode_client(id: Option<&str>, msg: &ClientMsg) -> String {
    let text = flatten(msg.kind(), serde_json::to_string(msg));
    match id {
        // `{"type":"x"` then `,"id":…` then the rest.
        Some(id) => {
            let at = text.find(',').unwrap_or(text.len() - 1);
            format!("{},\"id\":{}{}", &text[..at], Value::String(id.to_owned()), &text[at..])
        }
        None => text,
    }
}

/// Turns serde's `{"kind":{fields}}` (or `"kind"`) into `{"type":"kind",fields}`.
fn flatten(kind: &str, encoded: serde_json::Result<String>) -> String {
    let Ok(text) = encoded else { return format!("{{\"type\":\"{kind}\"}}") };
    // serde writes `{"<kind>":{…}}` for struct variants: keep the inner object's fields.
    let prefix = format!("{{\"{kind}\":{{");
    match text.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix("}}")) {
        Some("") | None => format!("{{\"type\":\"{kind}\"}}"),
        Some(fields) => format!("{{\"type\":\"{kind}\",{fields}}}"),
    }
}

/// Reads one JSON text frame from the server.
pub fn decode_server(text: &str) -> Result<ServerMsg, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    let Value::Object(mut fields) = value else { return Err("a frame must be a JSON object".into()) };
    let Some(Value::String(kind)) = fields.remove("type") else { return Err("missing string field `type`".into()) };
    let mut tagged = Map::new();
    tagged.insert(kind.clone(), Value::Object(fields));
    serde_json::from_value(Value::Object(tagged)).map_err(|e| format!("{kind}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::{AckResult, ChatAcked};
    use crate::client_msg::{UrgencyWire, Viewport};
    use crate::event::Event;
    use crate::server_msg::ErrorCode;

    #[test]
    fn frames_parse_with_and_without_ids() {
        let (id, msg) = parse_client(r#"{"type":"gps","lat":41.5,"lng":-93.6,"ts":5}"#).unwrap();
        assert_eq!(id, None);
        assert!(matches!(msg, ClientMsg::Gps { ts: 5, heading: None, .. }));
        let (id, msg) = parse_client(r#"{"type":"accept","id":7,"job":3}"#).unwrap();
        assert_eq!(id.as_deref(), Some("7"));
        assert_eq!(msg, ClientMsg::Accept { job: 3, request_id: None });
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
        // Acks carry their typed result in binary frames too.
        let ack = ServerMsg::Ack { id: Some("g1".into()), result: AckResult::ChatAcked(ChatAcked { job: 3, seq: 9 }) };
        assert_eq!(decode_server_binary(&encode_server_binary(&ack).unwrap()).unwrap(), ack);
        let event = ServerMsg::Event { job: 1, seq: 2, at: 3, event: Event::Declined { contractor: 4 } };
        assert_eq!(decode_server_binary(&encode_server_binary(&event).unwrap()).unwrap(), event);
        for cut in 0..bytes.len() {
            assert!(parse_client_binary(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn every_message_type_is_documented() {
        let markdown = include_str!("../../docs/protocol.md").replace(' ', "");
        let asyncapi = include_str!("../../docs/asyncapi.yaml");
        for kind in ClientMsg::KINDS.iter().chain(ServerMsg::KINDS.iter()) {
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
        let text = encode_server(&ServerMsg::Error { id: Some("9".into()), code: ErrorCode::Forbidden, message: "no".into() });
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "forbidden");
        assert_eq!(v["id"], "9");
        assert_eq!(serde_json::from_str::<Value>(&encode_server(&ServerMsg::Pong {})).unwrap()["type"], "pong");
    }
}
