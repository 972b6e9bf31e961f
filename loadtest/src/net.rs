//! Connecting bots: a token per bot, WebSockets over TCP from several
//! loopback source addresses. The bots speak typed messages through
//! `dispatch_protocol::client`, the client `dispatch demo`'s bots use too.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
pub use dispatch_protocol::client::{Ws, WsRx, WsTx, call, frame, next_msg};
use dispatch_protocol::{Auth, ClientMsg, ErrorCode, Role};
use tokio_tungstenite::tungstenite::Message;

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
        let source = (!self.sources.is_empty()).then(|| self.sources[self.next.fetch_add(1, Ordering::Relaxed) % self.sources.len()]);
        Ok(dispatch_protocol::client::connect(self.target.addr, &token, source).await?.0)
    }
}

/// An error frame's code and message, as an error kind.
#[must_use]
pub fn error_kind(code: ErrorCode, message: &str) -> String {
    format!("{} {message}", code.as_str())
}

/// A JSON text frame for `msg` with `id`.
pub fn text(id: Option<&str>, msg: &ClientMsg) -> Result<Message> {
    frame(false, id, msg)
}

#[cfg(test)]
mod tests {
    use dispatch_protocol::client::decode;
    use dispatch_protocol::{AckResult, ChatAcked, ServerMsg, encode_server_binary};

    use super::*;

    #[test]
    fn text_frames_are_flat_with_type_and_id_and_parse_back() {
        let msg = ClientMsg::Accept { job: 4, request_id: None };
        let Message::Text(t) = text(Some("a1"), &msg).unwrap() else { panic!("text") };
        assert_eq!(t.as_str(), r#"{"type":"accept","id":"a1","job":4,"request_id":null}"#);
        let (id, back) = dispatch_protocol::parse_client(t.as_str()).unwrap();
        assert_eq!(id.as_deref(), Some("a1"));
        assert_eq!(back, msg);
        let Message::Binary(b) = frame(true, None, &msg).unwrap() else { panic!("binary") };
        assert_eq!(dispatch_protocol::parse_client_binary(&b).unwrap(), (None, msg));
    }

    #[test]
    fn binary_server_frames_read_like_text_ones() {
        let ack = ServerMsg::Ack { id: Some("a7".into()), result: AckResult::ChatAcked(ChatAcked { job: 7, seq: 3 }) };
        assert_eq!(decode(Message::binary(encode_server_binary(&ack).unwrap())).unwrap(), Some(ack.clone()));
        assert_eq!(decode(Message::text(dispatch_protocol::encode_server(&ack))).unwrap(), Some(ack));
        let error = ServerMsg::Error { id: None, code: ErrorCode::Conflict, message: "no".into() };
        let Some(ServerMsg::Error { code, message, .. }) = decode(Message::binary(encode_server_binary(&error).unwrap())).unwrap() else {
            panic!("an error")
        };
        assert_eq!(error_kind(code, &message), "conflict no");
        assert!(decode(Message::Close(None)).is_err());
        assert!(decode(Message::Ping(Vec::new().into())).unwrap().is_none());
    }
}
