//! Connecting bots: a token per bot, WebSockets over TCP from several
//! loopback source addresses, and the frames they send.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use dispatch_gateway::protocol::{ClientMsg, ServerMsg, decode_server_binary, encode_client_binary};
use dispatch_gateway::{Auth, Role};

/// A bot's socket.
pub type Ws = WebSocketStream<TcpStream>;
/// Its sending half.
pub type WsTx = SplitSink<Ws, Message>;
/// Its receiving half.
pub type WsRx = SplitStream<Ws>;

/// The server under test and how to get in.
#[derive(Clone)]
pub struct Target {
    /// Its HTTP / WebSocket address.
    pub addr: SocketAddr,
    /// Signs the bots' tokens (the server's JWT secret).
    pub auth: Auth,
    /// The city in the tokens.
    pub city: String,
    /// The server's process, when it is a process of its own on this machine:
    /// its CPU time is then measured over the run.
    pub pid: Option<u32>,
}

/// Opens bot connections, spreading them over source addresses.
pub struct Connector {
    target: Target,
    sources: Vec<IpAddr>,
    next: AtomicUsize,
}

impl Connector {
    /// Connections to `target` from 127.0.0.1 … 127.0.0.`source_addrs` when the
    /// target is on loopback (each source address has its own ephemeral ports).
    #[must_use]
    pub fn new(target: Target, source_addrs: u8) -> Self {
        let sources = if target.addr.ip().is_loopback() && target.addr.is_ipv4() {
            (1..=source_addrs.max(1)).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i))).collect()
        } else {
            Vec::new()
        };
        Self { target, sources, next: AtomicUsize::new(0) }
    }

    /// The target.
    #[must_use]
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A WebSocket for `role` number `sub`, past its `hello`.
    pub async fn connect(&self, role: Role, sub: u64) -> Result<Ws> {
        let token = self.target.auth.issue(role, sub, &self.target.city, 24 * 3600).context("issuing a token")?;
        let addr = self.target.addr;
        let socket = TcpSocket::new_v4()?;
        if !self.sources.is_empty() {
            let source = self.sources[self.next.fetch_add(1, Ordering::Relaxed) % self.sources.len()];
            socket.bind(SocketAddr::new(source, 0)).with_context(|| format!("binding {source}"))?;
        }
        let stream =
            tokio::time::timeout(Duration::from_secs(30), socket.connect(addr)).await.context("connect timed out")?.context("connect")?;
        stream.set_nodelay(true)?;
        let request = format!("ws://{addr}/v1/ws?token={token}").into_client_request()?;
        // Small read buffers: the harness holds up to 100k of these.
        let config = WebSocketConfig::default().read_buffer_size(dispatch_gateway::server::WS_READ_BUFFER);
        let (mut ws, _) =
            tokio::time::timeout(Duration::from_secs(30), tokio_tungstenite::client_async_with_config(request, stream, Some(config)))
                .await
                .context("WebSocket handshake timed out")?
                .context("WebSocket handshake")?;
        match tokio::time::timeout(Duration::from_secs(30), next_msg(&mut ws)).await.context("no hello within 30 s")?? {
            Some(v) if v["type"] == "hello" => Ok(ws),
            other => anyhow::bail!("expected hello, got {other:?}"),
        }
    }
}

/// Decodes one WebSocket message into the flat JSON form of the text frames
/// (`{"type": …, …}`), whichever format it came in; `Ok(None)` for control
/// frames, `Err` for a close or garbage.
pub fn decode(msg: Message) -> Result<Option<Value>> {
    match msg {
        Message::Text(text) => Ok(Some(serde_json::from_str(text.as_str())?)),
        Message::Binary(bytes) => {
            let msg = decode_server_binary(&bytes).map_err(anyhow::Error::msg)?;
            let kind = msg.kind();
            let mut value = match serde_json::to_value(&msg)? {
                Value::Object(outer) => outer.into_iter().next().map_or(Value::Null, |(_, fields)| fields),
                _ => Value::Null,
            };
            if !value.is_object() {
                value = Value::Object(serde_json::Map::new());
            }
            // An ack's result travels as JSON text inside binary frames.
            if let ServerMsg::Ack { result, .. } = &msg {
                value["result"] = serde_json::from_str(result).unwrap_or(Value::Null);
            }
            value["type"] = Value::String(kind.to_owned());
            Ok(Some(value))
        }
        Message::Close(frame) => anyhow::bail!("closed by the server: {frame:?}"),
        _ => Ok(None),
    }
}

/// The next frame of a socket or its receiving half, decoded; `None` once it has ended.
pub async fn next_msg<S>(ws: &mut S) -> Result<Option<Value>>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    while let Some(msg) = ws.next().await {
        if let Some(v) = decode(msg?)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// An error frame's code and message, as an error kind.
#[must_use]
pub fn error_kind(v: &Value) -> String {
    format!("{} {}", v["code"].as_str().unwrap_or("?"), v["message"].as_str().unwrap_or(""))
}

/// A JSON text frame for `msg` with `id`.
pub fn text(id: Option<&str>, msg: &ClientMsg) -> Result<Message> {
    let mut value = serde_json::to_value(msg)?;
    // `{"gps": {...}}` → `{"type": "gps", ...}`: the wire's flat form.
    let (kind, mut fields) = match value.take() {
        Value::Object(outer) => outer.into_iter().next().context("empty message")?,
        other => anyhow::bail!("unexpected message shape {other}"),
    };
    let map = fields.as_object_mut().context("message fields")?;
    map.insert("type".into(), Value::String(kind));
    if let Some(id) = id {
        map.insert("id".into(), Value::String(id.to_owned()));
    }
    Ok(Message::text(fields.to_string()))
}

/// A frame for `msg`: bincode binary if `binary`, else JSON text.
pub fn frame(binary: bool, id: Option<&str>, msg: &ClientMsg) -> Result<Message> {
    if binary {
        Ok(Message::binary(encode_client_binary(id.map(str::to_owned), msg.clone()).map_err(anyhow::Error::msg)?))
    } else {
        text(id, msg)
    }
}

/// Sends `msg` with `id` and waits for its ack (its result) or error,
/// skipping other frames.
pub async fn call(ws: &mut Ws, id: &str, msg: &ClientMsg) -> Result<Value> {
    ws.send(text(Some(id), msg)?).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let next = tokio::time::timeout_at(deadline, next_msg(ws)).await.with_context(|| format!("no answer to {id} within 30 s"))?;
        match next? {
            None => anyhow::bail!("socket closed waiting for the answer to {id}"),
            Some(v) if v["id"] == id && v["type"] == "ack" => return Ok(v["result"].clone()),
            Some(v) if v["id"] == id && v["type"] == "error" => anyhow::bail!("{}", error_kind(&v)),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_frames_are_flat_with_type_and_id_and_parse_back() {
        let msg = ClientMsg::Accept { job: 4 };
        let Message::Text(t) = text(Some("a1"), &msg).unwrap() else { panic!("text") };
        let (id, back) = dispatch_gateway::protocol::parse_client(t.as_str()).unwrap();
        assert_eq!(id.as_deref(), Some("a1"));
        assert_eq!(back, msg);
        let Message::Binary(b) = frame(true, None, &msg).unwrap() else { panic!("binary") };
        assert_eq!(dispatch_gateway::protocol::parse_client_binary(&b).unwrap(), (None, msg));
    }

    #[test]
    fn binary_server_frames_read_like_text_ones() {
        use dispatch_gateway::protocol::encode_server_binary;
        let ack = ServerMsg::Ack { id: Some("a7".into()), result: serde_json::json!({"job": 7, "state": "accepted"}) };
        let v = decode(Message::binary(encode_server_binary(&ack).unwrap())).unwrap().unwrap();
        assert_eq!(v["type"], "ack");
        assert_eq!(v["id"], "a7");
        assert_eq!(v["result"]["job"], 7);
        let pong = decode(Message::binary(encode_server_binary(&ServerMsg::Pong {}).unwrap())).unwrap().unwrap();
        assert_eq!(pong["type"], "pong");
        let error = ServerMsg::Error { id: None, code: "conflict".into(), message: "no".into() };
        let v = decode(Message::binary(encode_server_binary(&error).unwrap())).unwrap().unwrap();
        assert_eq!(error_kind(&v), "conflict no");
        assert!(decode(Message::Close(None)).is_err());
        assert!(decode(Message::Ping(Vec::new().into())).unwrap().is_none());
    }
}
