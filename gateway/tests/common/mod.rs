//! A gateway on port 0 and WebSocket clients that talk to it.
#![allow(dead_code, unreachable_pub, clippy::expect_used, reason = "test helpers shared by several test files")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use dispatch_gateway::config::StorageKind;
use dispatch_gateway::{Gateway, Role, ServeConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod cluster;
pub mod failover;
pub mod under_load;

pub const CITY: &str = "des-moines";

/// The cluster of `SCYLLA_URI` with a keyspace prefix unique to `test` and
/// this process; `None` (saying why on stderr) when the variable is unset.
pub fn scylla_config(test: &str) -> Result<Option<dispatch_gateway::storage::ScyllaConfig>> {
    use std::io::Write;
    let Ok(uri) = std::env::var("SCYLLA_URI") else {
        let _ = writeln!(std::io::stderr(), "{test}: skipped: SCYLLA_URI is not set (no CQL cluster; see deploy/cassandra/cassandra.sh)");
        return Ok(None);
    };
    let base = dispatch_gateway::storage::ScyllaConfig::default().with_uri(&uri)?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() % 1_000_000);
    let prefix = format!("t{}_{}_{stamp}", &test[..test.len().min(12)], std::process::id() % 100_000);
    Ok(Some(dispatch_gateway::storage::ScyllaConfig { keyspace_prefix: prefix, ..base }))
}
/// `scylla` as the `[scylla]` table (and its subtables) of a config file: put it last.
pub fn scylla_section(scylla: &dispatch_gateway::storage::ScyllaConfig) -> Result<String> {
    #[derive(serde::Serialize)]
    struct Section<'a> {
        scylla: &'a dispatch_gateway::storage::ScyllaConfig,
    }
    Ok(toml::to_string(&Section { scylla })?)
}

pub const DSM: (f64, f64) = (41.5868, -93.6250);

pub struct Server {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<()>>>,
    /// The data directory (degraded-mode journals), when the server has one of its own.
    _data: Option<tempfile::TempDir>,
}

impl Server {
    pub async fn start() -> Result<Self> {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut ServeConfig)) -> Result<Self> {
        // Its data directory (the degraded-mode journals) its own, not the crate's.
        let data = tempfile::tempdir()?;
        let mut config = ServeConfig {
            storage: StorageKind::Memory,
            jwt_secret: "test-secret-of-at-least-32-bytes".into(),
            dev_auth: true,
            data_dir: data.path().to_owned(),
            ..ServeConfig::default()
        };
        tweak(&mut config);
        let mut server = Self::serve(Gateway::start(config).await?).await?;
        server._data = Some(data);
        Ok(server)
    }

    /// A server on the CQL cluster named by `SCYLLA_URI`, each city in a
    /// keyspace of this test's own (Cassandra 5.0 has no transactional
    /// metadata: concurrent tests creating the same tables could clash).
    /// `None`, with the reason printed past the harness's capture, when the
    /// variable is unset.
    pub async fn start_on_scylla(test: &str) -> Result<Option<Self>> {
        let Some(scylla) = scylla_config(test)? else { return Ok(None) };
        let server = Self::start_with(|c| {
            c.storage = StorageKind::Scylla;
            c.scylla = scylla;
        })
        .await?;
        Ok(Some(server))
    }

    /// A server whose des-moines store is `store` (the other cities use memory).
    pub async fn start_on_store(store: Arc<dyn dispatch_gateway::storage::SnapshotStore>) -> Result<Self> {
        let config = ServeConfig {
            storage: StorageKind::Memory,
            jwt_secret: "test-secret-of-at-least-32-bytes".into(),
            dev_auth: true,
            ..ServeConfig::default()
        };
        let mut stores: std::collections::HashMap<String, Arc<dyn dispatch_gateway::storage::SnapshotStore>> =
            config.cities.iter().map(|c| (c.name.clone(), Arc::new(dispatch_gateway::storage::MemoryStore::new()) as _)).collect();
        stores.insert(CITY.into(), store);
        Self::serve(Gateway::start_on(config, stores).await?).await
    }

    async fn serve(gateway: Arc<Gateway>) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(dispatch_gateway::run(listener, Arc::clone(&gateway), async move {
            let _ = stopped.await;
        }));
        Ok(Self { addr, gateway, stop: Some(stop), task: Some(task), _data: None })
    }

    pub fn token(&self, role: Role, sub: u64) -> String {
        self.gateway.auth().issue(role, sub, CITY, 3600).expect("token")
    }

    pub async fn connect(&self, role: Role, sub: u64) -> Result<Client> {
        Client::connect(self.addr, &self.token(role, sub)).await
    }

    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }

    /// A raw HTTP/1.1 request; returns (status, body).
    pub async fn http(&self, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String)> {
        http_at(self.addr, method, path, body).await
    }
}

/// A Stripe webhook delivery of `body` to the gateway at `addr`, signed with `secret` now: (status, answer).
pub async fn deliver_webhook(addr: SocketAddr, secret: &str, body: &str) -> Result<(u16, Value)> {
    use hmac::Mac;
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())?;
    mac.update(format!("{t}.{body}").as_bytes());
    let signature = format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()));
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/v1/webhooks/stripe"))
        .header("Stripe-Signature", signature)
        .body(body.to_owned())
        .send()
        .await?;
    Ok((response.status().as_u16(), response.json().await?))
}

/// A raw HTTP/1.1 request to `addr`; returns (status, body).
pub async fn http_at(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response.split_whitespace().nth(1).ok_or_else(|| anyhow!("no status"))?.parse()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Frames read while waiting for something else.
    pub seen: Vec<Value>,
    /// The server's greeting: the role, id and city it read from the token.
    pub hello: Value,
}

impl Client {
    pub async fn connect(addr: SocketAddr, token: &str) -> Result<Self> {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws?token={token}")).await?;
        Self::greeted(ws).await
    }

    /// Connects over a socket with a small receive buffer, so a client that
    /// stops reading pushes back on the server within kilobytes.
    pub async fn connect_small_window(addr: SocketAddr, token: &str, recv_buffer: u32) -> Result<Self> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
        socket.set_recv_buffer_size(recv_buffer as usize)?;
        // Segments smaller than the window: with loopback's 64 KiB segments a
        // window this small never reopens by a whole segment, so once it is
        // read again the server would only send on its zero-window probes,
        // which back off to minutes (seen: a 294 s drain).
        socket.set_tcp_mss(recv_buffer / 4)?;
        socket.connect(&addr.into())?;
        socket.set_nonblocking(true)?;
        let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/v1/ws?token={token}"), MaybeTlsStream::Plain(stream)).await?;
        Self::greeted(ws).await
    }

    async fn greeted(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Result<Self> {
        let mut client = Self { ws, next_id: 0, seen: Vec::new(), hello: Value::Null };
        let hello = client.recv().await?;
        if hello["type"] != "hello" {
            bail!("expected hello, got {hello}");
        }
        client.hello = hello;
        Ok(client)
    }

    pub async fn send_raw(&mut self, text: &str) -> Result<()> {
        self.ws.send(Message::text(text.to_owned())).await?;
        Ok(())
    }

    /// Sends a binary (bincode) frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.ws.send(Message::binary(bytes)).await?;
        Ok(())
    }

    /// Sends `msg` with a fresh id and returns the id.
    pub async fn send(&mut self, mut msg: Value) -> Result<String> {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        msg["id"] = json!(id);
        self.send_raw(&msg.to_string()).await?;
        Ok(id)
    }

    /// The next text frame as JSON (5 s limit).
    pub async fn recv(&mut self) -> Result<Value> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), self.ws.next()).await.map_err(|_| anyhow!("no frame within 5 s"))?;
            match frame {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
                Some(Ok(Message::Close(c))) => bail!("closed: {c:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("socket error: {e}"),
                None => bail!("socket ended"),
            }
        }
    }

    /// Reads frames until one matches; the others are kept in `seen`.
    pub async fn wait(&mut self, what: &str, mut want: impl FnMut(&Value) -> bool) -> Result<Value> {
        if let Some(at) = self.seen.iter().position(&mut want) {
            return Ok(self.seen.remove(at));
        }
        // A dispatcher sees every job's events, each job's money among them.
        for _ in 0..1_000 {
            let v = self.recv().await.map_err(|e| anyhow!("waiting for {what}: {e}"))?;
            if want(&v) {
                return Ok(v);
            }
            self.seen.push(v);
        }
        bail!("waiting for {what}: too many other frames")
    }

    /// Sends a request and waits for its ack (or fails with the error frame).
    pub async fn call(&mut self, msg: Value) -> Result<Value> {
        let id = self.send(msg).await?;
        let reply = self.wait("a reply", |v| v["id"] == id.as_str()).await?;
        if reply["type"] == "ack" { Ok(reply["result"].clone()) } else { bail!("refused: {reply}") }
    }

    /// Posts a `trade` job downtown for today (as a customer); returns its id.
    pub async fn post_job(&mut self, trade: &str) -> Result<u64> {
        let posted = self
            .call(json!({"type": "post_job", "trade": trade, "lat": DSM.0, "lng": DSM.1, "urgency": "today", "description": "test job"}))
            .await?;
        posted["job"].as_u64().ok_or_else(|| anyhow!("no job id in {posted}"))
    }

    /// Sends a request that must fail; returns the error frame.
    pub async fn refused(&mut self, msg: Value) -> Result<Value> {
        let id = self.send(msg).await?;
        let reply = self.wait("a reply", |v| v["id"] == id.as_str()).await?;
        if reply["type"] != "error" {
            bail!("expected an error, got {reply}");
        }
        Ok(reply)
    }

    /// The next binary frame, decoded (5 s limit).
    pub async fn recv_binary(&mut self) -> Result<dispatch_gateway::ServerMsg> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), self.ws.next()).await.map_err(|_| anyhow!("no frame within 5 s"))?;
            match frame {
                Some(Ok(Message::Binary(b))) => return dispatch_gateway::protocol::decode_server_binary(&b).map_err(anyhow::Error::msg),
                Some(Ok(Message::Text(t))) => bail!("expected a binary frame, got text {t}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("socket error: {e}"),
                None => bail!("socket ended"),
            }
        }
    }

    /// Waits for the close frame and returns its code.
    pub async fn closed_with(&mut self) -> Result<u16> {
        self.closed_with_within(Duration::from_secs(5)).await
    }

    /// The close code the server sends within `limit`.
    pub async fn closed_with_within(&mut self, limit: Duration) -> Result<u16> {
        loop {
            match tokio::time::timeout(limit, self.ws.next()).await {
                Err(_) => bail!("not closed within {limit:?}"),
                Ok(Some(Ok(Message::Close(Some(frame))))) => return Ok(frame.code.into()),
                Ok(Some(Ok(Message::Close(None)))) => bail!("closed without a code"),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => bail!("socket error before close: {e}"),
                Ok(None) => bail!("ended without a close frame"),
            }
        }
    }
}

pub fn east(metres: f64) -> (f64, f64) {
    let p = dispatch_engine::GeoPoint::new(DSM.0, DSM.1).expect("valid").destination(90.0, metres);
    (p.lat(), p.lng())
}

/// A contractor registered and online `metres` east of downtown.
pub async fn contractor(server: &Server, id: u64, trade: &str, metres: f64) -> Result<Client> {
    let mut c = server.connect(Role::Contractor, id).await?;
    c.call(json!({"type": "register", "name": format!("c{id}"), "trades": [{"trade": trade, "years": 4}], "hourly_rate": 8000, "service_radius_m": 30000.0})).await?;
    let (lat, lng) = east(metres);
    c.call(json!({"type": "online", "lat": lat, "lng": lng})).await?;
    Ok(c)
}
