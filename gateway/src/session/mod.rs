//! One WebSocket connection: frames in, actor calls, events out.
//!
//! | module | what lives there |
//! |---|---|
//! | this file | [`Session`]'s state and [`run`], the connection's loop: socket, router inbox, map timer, shutdown, keepalive |
//! | `commands` | each client message carried out and answered |
//! | `policy` | which role may send which message (the gateway's one authorization table) and error codes; party checks are the actors' (`dispatch_actors::parties`) |
//! | `feed` | what is pushed unasked: job events each role may see, the dispatcher's map feed |
//! | `outbound` | the bounded queue, the writer task, 1008 for slow readers |
//! | `limits` | GPS and chat rate limits |
//! | `counters` | handles of the metrics every frame touches, registered once |
//!
//! Violations get `error {code: "forbidden"}`; the connection stays open.

mod commands;
mod counters;
mod feed;
mod limits;
mod outbound;
mod policy;

pub(crate) use policy::asker;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use dispatch_engine::JobId;

use crate::auth::Claims;
use crate::finished::FinishedJobs;
use crate::overload::{GpsThinning, Overload};
use crate::protocol::{ErrorCode, ServerMsg};
use crate::server::Gateway;
use feed::start_map_feed;
use limits::Bucket;
use outbound::{Outbound, spawn_writer};

/// One connection's state.
struct Session {
    claims: Claims,
    /// The token's city (looked up once: every frame needs it).
    city: Arc<crate::cities::City>,
    /// Frames for the writer task, each with the posting time of the job it
    /// offers (if it is an offer), so match latency is measured at the socket.
    out: mpsc::Sender<Outbound>,
    abort: Option<oneshot::Sender<CloseFrame>>,
    /// Jobs this customer posted or watches, or this contractor was offered.
    jobs: HashSet<JobId>,
    /// Customer: jobs whose contractor position is followed.
    watching: HashSet<JobId>,
    /// Contractor: jobs assigned to them (chat and lifecycle flow here).
    assigned: HashSet<JobId>,
    /// Jobs of the sets above that finished: forgotten after a while.
    finished: FinishedJobs,
    link: Option<crate::port::GpsLink>,
    /// Dispatcher: the map version sent so far and the viewport, once subscribed.
    map: Option<(u64, Option<[f64; 4]>)>,
    /// Dispatcher: the cell loads last sent, to send cells again only when they change.
    cells_sent: Vec<crate::port::CellRow>,
    /// Dispatcher: the match figures last sent.
    stats_sent: crate::protocol::MatchStats,
    gps: Bucket,
    chat: Bucket,
    /// While the gateway is overloaded: at most one fix per `overload_gps_every_secs` taken from this connection.
    gps_thinning: GpsThinning,
    overload: Arc<Overload>,
    /// When the last frames arrived (read once per burst of frames read
    /// together: the idle timeout and the rate limits share it).
    heard_at: Instant,
    /// The client sends binary frames, so it gets binary frames back.
    binary: bool,
    closing: bool,
}

/// What the socket yields.
type SocketItem = Option<Result<Message, tokio_tungstenite::tungstenite::Error>>;

/// Frames handled in one go before the session looks at its other inputs.
const BURST: usize = 64;

impl Session {
    /// Handles `first` and every frame already read behind it (up to
    /// [`BURST`]): a client's frames often come together (fixes, then a
    /// ping), and each pass through the session's `select!` re-arms its
    /// timer, inbox and shutdown watch. `false`: the connection is over.
    async fn on_burst<S>(&mut self, first: SocketItem, stream: &mut futures_util::stream::SplitStream<WebSocketStream<S>>) -> bool
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut frame = first;
        for _ in 0..BURST {
            match frame {
                None | Some(Ok(Message::Close(_))) => return false,
                Some(Err(e)) => {
                    if matches!(e, tokio_tungstenite::tungstenite::Error::Capacity(_)) {
                        metrics::counter!("dispatch_ws_errors_total", "code" => "too_big").increment(1);
                        self.close(CloseCode::Size, "frame too large");
                    }
                    return false;
                }
                Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
                Some(Ok(Message::Binary(bytes))) => self.on_binary(&bytes).await,
                Some(Ok(_)) => {} // ping / pong
            }
            if self.closing {
                return true;
            }
            match futures_util::FutureExt::now_or_never(stream.next()) {
                Some(next) => frame = next,
                None => break,
            }
        }
        true
    }
}

/// Runs one connection until the client leaves, the server shuts down, the
/// client idles past the timeout, or it reads too slowly.
pub(crate) async fn run<S>(ws: WebSocketStream<S>, claims: Claims, gw: Arc<Gateway>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let role = claims.role.as_str();
    metrics::gauge!("dispatch_ws_connections", "role" => role).increment(1.0);
    let (sink, mut stream) = ws.split();
    let (out, out_rx) = mpsc::channel::<Outbound>(gw.config.outbound_queue);
    let (abort, abort_rx) = oneshot::channel::<CloseFrame>();
    // The city's clock stamped the jobs' posting times; measure against the same one.
    let writer = spawn_writer(sink, out_rx, abort_rx, gw.cities[&claims.city].port.clock());

    let mut inbox = gw.cities[&claims.city].router.join(claims.role, claims.sub);
    let mut shutdown = gw.shutdown.clone();
    let idle = Duration::from_secs(gw.config.idle_timeout_secs.max(1));
    let mut keepalive = tokio::time::interval(idle / 2);
    keepalive.tick().await;
    let mut session = Session {
        heard_at: Instant::now(),
        // The upgrade checked the token's city exists.
        city: Arc::clone(&gw.cities[&claims.city]),
        gps: Bucket::new(gw.config.gps_per_sec),
        gps_thinning: GpsThinning::new(Duration::from_secs(gw.config.overload_gps_every_secs)),
        overload: Arc::clone(&gw.overload),
        chat: Bucket::new(gw.config.chat_per_sec),
        claims,
        out,
        abort: Some(abort),
        jobs: HashSet::new(),
        watching: HashSet::new(),
        assigned: HashSet::new(),
        finished: FinishedJobs::default(),
        link: None,
        map: None,
        cells_sent: Vec::new(),
        stats_sent: crate::protocol::MatchStats::default(),
        binary: false,
        closing: false,
    };
    // A city served by another process can move to a new owner: the session then tells its client to resume.
    let mut moved = match &session.city.port {
        crate::port::Port::Remote(city) => Some(city.watch_owner()),
        crate::port::Port::Local(_) => None,
    };
    if let Some(owner) = moved.as_mut() {
        owner.mark_unchanged();
    }
    // The map feed's timer exists only once a dispatcher subscribes: a timer
    // per idle phone would wake every connection every second.
    let mut map_tick: Option<tokio::time::Interval> = None;
    let hello = ServerMsg::Hello { role: session.claims.role, sub: session.claims.sub, city: session.claims.city.clone() };
    session.send(&hello);
    // The city counts this connection live while keepalives renew it (three
    // periods' grace): webhook deliveries then carry no notify hint for it.
    let (connection, holds) = (connection_id(), idle / 2 * 3);
    let (role_now, sub_now) = (session.claims.role, session.claims.sub);
    session.city.port.note_presence(role_now, sub_now, connection, Some(holds)).await;

    let (mut draining, mut drain_at) = (false, None);
    while !session.closing {
        tokio::select! {
            frame = stream.next() => {
                session.heard_at = Instant::now();
                // Frame handling is boxed: inlined, its actor calls would make every
                // idle connection's task several KiB larger.
                if !Box::pin(session.on_burst(frame, &mut stream)).await {
                    break;
                }
                start_map_feed(&session, &mut map_tick);
            }
            event = inbox.events.recv() => match event {
                Some(event) => {
                    let missed = inbox.missed.swap(0, std::sync::atomic::Ordering::Relaxed);
                    if missed > 0 {
                        session.error(None, ErrorCode::Lagged, format!("{missed} events were missed; send resume for your jobs"));
                    }
                    session.on_event(&event);
                }
                None => break,
            },
            _ = async {
                match map_tick.as_mut() {
                    Some(tick) => tick.tick().await,
                    None => std::future::pending().await,
                }
            }, if map_tick.is_some() => Box::pin(session.map_tick()).await,
            changed = async {
                match moved.as_mut() {
                    Some(owner) => owner.changed().await,
                    None => std::future::pending().await,
                }
            }, if moved.is_some() => match changed {
                Ok(()) => Box::pin(session.on_moved()).await,
                Err(_) => moved = None,
            },
            _ = shutdown.changed(), if !draining => {
                // Each connection leaves at its own moment of the drain period, so
                // clients reconnect elsewhere a few at a time.
                draining = true;
                drain_at = Some(tokio::time::Instant::now() + drain_delay(&session.claims, gw.config.drain_secs));
            }
            () = async {
                match drain_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            }, if drain_at.is_some() => {
                session.close(CloseCode::Away, "server shutting down");
            }
            _ = keepalive.tick() => {
                session.city.port.note_presence(role_now, sub_now, connection, Some(holds)).await;
                if session.heard_at.elapsed() > idle {
                    session.close(CloseCode::Normal, "idle timeout");
                } else if session.out.try_send(Box::new((Message::Ping(Vec::new().into()), None))).is_err() {
                    session.close(CloseCode::Policy, "outbound queue full: reading too slowly");
                }
            }
        }
    }
    // A session leaving normally closes politely; one closing with a code already sent it.
    if !session.closing {
        session.close(CloseCode::Normal, "bye");
    }
    session.city.port.note_presence(role_now, sub_now, connection, None).await;
    drop(session);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    metrics::gauge!("dispatch_ws_connections", "role" => role).decrement(1.0);
}

/// An id for a connection, unique among every gateway's with overwhelming odds.
fn connection_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        rapidhash::v3::rapidhash_v3(format!("{now}/{}", std::process::id()).as_bytes())
    });
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    rapidhash::v3::rapidhash_v3(&[base.to_le_bytes(), n.to_le_bytes()].concat())
}

/// When, within a drain of `secs` seconds, this connection is closed: spread
/// by the connection's subject and role, so a gateway's clients leave evenly.
fn drain_delay(claims: &Claims, secs: u64) -> Duration {
    if secs == 0 {
        return Duration::ZERO;
    }
    let spread = claims.sub.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (claims.role as u64);
    Duration::from_millis(spread % (secs * 1_000))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use futures_util::StreamExt;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role as WsRole;

    use dispatch_actors::JobRequest;
    use dispatch_engine::{CustomerId, GeoPoint, Party, Trade, Urgency};

    use crate::auth::{Claims, Role};
    use crate::config::{ServeConfig, StorageKind};
    use crate::server::Gateway;

    fn city_clock(gw: &Gateway) -> dispatch_actors::Clock {
        gw.cities["des-moines"].port.clock()
    }

    #[test]
    fn a_drain_spreads_connections_over_its_period() {
        let claims = |sub| Claims { role: Role::Contractor, sub, city: "des-moines".into(), exp: u64::MAX };
        assert_eq!(super::drain_delay(&claims(7), 0), Duration::ZERO);
        let delays: Vec<Duration> = (0..1_000).map(|sub| super::drain_delay(&claims(sub), 10)).collect();
        assert!(delays.iter().all(|d| *d < Duration::from_secs(10)));
        // About a tenth of the connections in each second of the period.
        for second in 0..10 {
            let n = delays.iter().filter(|d| d.as_secs() == second).count();
            assert!((50..=150).contains(&n), "second {second}: {n}");
        }
    }

    /// The overload policy end to end through a session: while the gateway
    /// lags, a contractor's fixes past the first in each interval are shed
    /// right after parsing, so the contractor keeps the first one.
    #[tokio::test]
    async fn a_lagging_gateway_thins_a_phones_fixes() {
        use dispatch_protocol::{ClientMsg, ServerMsg, TradeYears, decode_server, encode_client};
        use futures_util::SinkExt;

        let config =
            ServeConfig { storage: StorageKind::Memory, jwt_secret: "s-secret-of-at-least-thirty-two-b".into(), ..ServeConfig::default() };
        let gw = Gateway::start(config).await.unwrap();
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let ws = WebSocketStream::from_raw_socket(server_io, WsRole::Server, None).await;
        let claims = Claims { role: Role::Contractor, sub: 7, city: "des-moines".into(), exp: u64::MAX };
        tokio::spawn(super::run(ws, claims, Arc::clone(&gw)));
        let mut phone = WebSocketStream::from_raw_socket(client_io, WsRole::Client, None).await;
        let mut send = async |msg: ClientMsg| phone.send(Message::text(encode_client(Some("1"), &msg))).await.unwrap();
        send(ClientMsg::Register {
            name: "Pat".into(),
            trades: vec![TradeYears { trade: Trade::Plumbing, years: 3 }],
            hourly_rate: 5_000,
            service_radius_m: 10_000.0,
        })
        .await;
        send(ClientMsg::Online { lat: 41.5868, lng: -93.625 }).await;
        let now = city_clock(&gw).now().0;
        let fix = |i: u32| ClientMsg::Gps {
            lat: 41.5868 + f64::from(i) * 1e-4,
            lng: -93.625,
            heading: None,
            speed: None,
            accuracy: Some(5.0),
            ts: now + i64::from(i) * 100,
        };
        // The runtime was late by twice the bound, tick after tick, just now: lagging.
        let due = std::time::Instant::now();
        for _ in 0..crate::overload::SUSTAINED {
            gw.overload.observe_tick(due, due + crate::overload::LATE * 2);
        }
        for i in 1..=5 {
            send(fix(i)).await;
        }
        send(ClientMsg::Ping {}).await;
        // Frames are answered in order: hello, the two acks, then the pong.
        let mut pongs = 0;
        while pongs == 0 {
            let frame = tokio::time::timeout(Duration::from_secs(5), phone.next()).await.expect("a frame").unwrap().unwrap();
            let Message::Text(text) = frame else { continue };
            match decode_server(text.as_str()).unwrap() {
                ServerMsg::Pong {} => pongs += 1,
                ServerMsg::Error { message, .. } => panic!("refused: {message}"),
                _ => {}
            }
        }
        let city = gw.cities["des-moines"].local().unwrap();
        let me = dispatch_engine::ContractorId(7);
        let held = city.contractor(me).await.unwrap().position.unwrap();
        assert!((held.lat() - (41.5868 + 1e-4)).abs() < 1e-9, "the first fix was taken and the four after it shed, got {held:?}");
    }

    /// A dispatcher whose socket (a 512-byte pipe nobody reads) backs up while
    /// the city's events keep coming: once the queue of 4 is full the session
    /// closes with 1008 instead of buffering without bound.
    #[tokio::test]
    async fn a_reader_that_falls_behind_is_closed_with_1008() {
        let config = ServeConfig {
            storage: StorageKind::Memory,
            jwt_secret: "s-secret-of-at-least-thirty-two-b".into(),
            outbound_queue: 4,
            ..ServeConfig::default()
        };
        let gw = Gateway::start(config).await.unwrap();
        let (server_io, client_io) = tokio::io::duplex(512);
        let ws = WebSocketStream::from_raw_socket(server_io, WsRole::Server, None).await;
        let claims = Claims { role: Role::Dispatcher, sub: 1, city: "des-moines".into(), exp: u64::MAX };
        let session = tokio::spawn(super::run(ws, claims, Arc::clone(&gw)));

        let city = gw.cities["des-moines"].local().unwrap();
        let request = JobRequest {
            customer: CustomerId(1),
            trade: Trade::Plumbing,
            location: GeoPoint::new(41.5868, -93.625).unwrap(),
            urgency: Urgency::Today,
            description: "x".into(),
            budget: None,
            payment_method: None,
        };
        let (job, _) = city.post_job(request).await.unwrap();
        for _ in 0..40 {
            city.chat(job, Party::Customer, 1, "z".repeat(200)).await.unwrap();
        }
        // The session gives up on its own, although nobody has read a byte.
        tokio::time::timeout(Duration::from_secs(15), session).await.expect("the session ended").unwrap();

        // Reading now lets the writer out: what follows the backlog is a 1008 close.
        let mut client = WebSocketStream::from_raw_socket(client_io, WsRole::Client, None).await;
        let code = loop {
            match tokio::time::timeout(Duration::from_secs(5), client.next()).await.expect("a frame") {
                Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        assert_eq!(code, 1008);
    }
}
