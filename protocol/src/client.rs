//! A WebSocket client speaking typed messages: what `dispatch demo`'s bots
//! and the load-test harness's bots are built on (feature `client`).
//!
//! [`connect`] opens a socket (optionally from a given source address, with
//! small read buffers) and waits for `hello`; [`frame`] encodes a
//! [`ClientMsg`] as a JSON text or bincode binary frame; [`decode`] and
//! [`next_msg`] read [`ServerMsg`]s back from either; [`call`] sends a
//! request and waits for its typed [`AckResult`] or its error;
//! [`reconnect_delay`] is the jittered backoff a client waits before
//! reconnecting (to another gateway) after losing its connection.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, Stream, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::ack::AckResult;
use crate::auth::Role;
use crate::client_msg::ClientMsg;
use crate::frame::{decode_server, decode_server_binary, encode_client, encode_client_binary};
use crate::server_msg::{ErrorCode, ServerMsg};

/// A bot's socket.
pub type Ws = WebSocketStream<TcpStream>;
/// Its sending half.
pub type WsTx = SplitSink<Ws, Message>;
/// Its receiving half.
pub type WsRx = SplitStream<Ws>;

/// The read buffer of a bot's socket, bytes: small, since a harness holds
/// up to 100k of them (tungstenite zero-fills the whole buffer per socket).
pub const READ_BUFFER: usize = 2 * 1024;

/// How long to wait before reconnect attempt `attempt` (1, 2, …) after a
/// connection was lost: a random share (`random`, any `u64`) of a cap that
/// doubles from 200 ms up to 15 s. A gateway that dies drops its phones all
/// at once; without the randomness they would all come back at once too.
#[must_use]
pub fn reconnect_delay(attempt: u32, random: u64) -> Duration {
    let cap_ms = 200u64.saturating_mul(1 << attempt.saturating_sub(1).min(7)).min(15_000);
    Duration::from_millis(random % (cap_ms + 1))
}

/// How long connecting, the handshake, `hello` and a [`call`]'s answer may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// Who a connection is, from its `hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The role the server read from the token.
    pub role: Role,
    /// The id.
    pub sub: u64,
    /// The city.
    pub city: String,
}

/// Connects to `addr` with `token`, from `source` if given, and waits for `hello`.
pub async fn connect(addr: SocketAddr, token: &str, source: Option<std::net::IpAddr>) -> Result<(Ws, Hello)> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0)).with_context(|| format!("binding {source}"))?;
    }
    let stream = tokio::time::timeout(PATIENCE, socket.connect(addr)).await.context("connect timed out")?.context("connect")?;
    stream.set_nodelay(true)?;
    let request = format!("ws://{addr}/v1/ws?token={token}").into_client_request()?;
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (mut ws, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::client_async_with_config(request, stream, Some(config)))
        .await
        .context("WebSocket handshake timed out")?
        .context("WebSocket handshake")?;
    match tokio::time::timeout(PATIENCE, next_msg(&mut ws)).await.context("no hello in time")?? {
        Some(ServerMsg::Hello { role, sub, city }) => Ok((ws, Hello { role, sub, city })),
        other => bail!("expected hello, got {other:?}"),
    }
}

/// A frame for `msg` with `id`: bincode binary if `binary`, else JSON text.
pub fn frame(binary: bool, id: Option<&str>, msg: &ClientMsg) -> Result<Message> {
    if binary {
        Ok(Message::binary(encode_client_binary(id.map(str::to_owned), msg.clone()).map_err(anyhow::Error::msg)?))
    } else {
        Ok(Message::text(encode_client(id, msg)))
    }
}

/// Decodes one WebSocket message, text or binary; `Ok(None)` for control
/// frames, `Err` for a close or garbage.
pub fn decode(msg: Message) -> Result<Option<ServerMsg>> {
    match msg {
        Message::Text(text) => decode_server(text.as_str()).map(Some).map_err(anyhow::Error::msg),
        Message::Binary(bytes) => decode_server_binary(&bytes).map(Some).map_err(anyhow::Error::msg),
        Message::Close(frame) => bail!("closed by the server: {frame:?}"),
        _ => Ok(None),
    }
}

/// The next message of a socket or its receiving half; `None` once it has ended.
pub async fn next_msg<S>(ws: &mut S) -> Result<Option<ServerMsg>>
where
    S: Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    while let Some(msg) = ws.next().await {
        if let Some(m) = decode(msg?)? {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

/// A request the server refused: its error frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {message}", code.as_str())]
pub struct Refused {
    /// The error code.
    pub code: ErrorCode,
    /// The server's words.
    pub message: String,
}

/// Sends `msg` with `id` (in JSON text) and waits for its ack's result, or
/// fails with [`Refused`] (downcast the error to read it), skipping other
/// messages.
pub async fn call(ws: &mut Ws, id: &str, msg: &ClientMsg) -> Result<AckResult> {
    ws.send(frame(false, Some(id), msg)?).await?;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let next = tokio::time::timeout_at(deadline, next_msg(ws)).await.with_context(|| format!("no answer to {id} in time"))?;
        match next? {
            None => bail!("socket closed waiting for the answer to {id}"),
            Some(ServerMsg::Ack { id: Some(got), result }) if got == id => return Ok(result),
            Some(ServerMsg::Error { id: Some(got), code, message }) if got == id => return Err(Refused { code, message }.into()),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_back_off_with_jitter_under_a_cap() {
        assert_eq!(reconnect_delay(1, 0), Duration::ZERO);
        assert!(reconnect_delay(1, u64::MAX) <= Duration::from_millis(200));
        assert!(reconnect_delay(4, u64::MAX) <= Duration::from_millis(1_600));
        assert!(reconnect_delay(30, u64::MAX) <= Duration::from_secs(15));
        // The same attempt waits differently for different clients.
        let spread: std::collections::HashSet<_> = (0..100u64).map(|r| reconnect_delay(5, r.wrapping_mul(0x9E37_79B9_7F4A_7C15))).collect();
        assert!(spread.len() > 90);
    }
}
