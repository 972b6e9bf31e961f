//! One WebSocket connection: frames in, actor calls, events out.
//!
//! Authorization is decided here, per role:
//! - a contractor sends only their own GPS and presence, and acts only on
//!   offers made to them (the engine refuses anyone else: `forbidden`);
//! - a customer sees and acts on only their own jobs, and the contractor's
//!   position only while watching an active job;
//! - chat and `resume` are for the job's customer, its assigned contractor and
//!   the city's dispatchers;
//! - a dispatcher acts only in the city of their token.
//!
//! Violations get `error {code: "forbidden"}`; the connection stays open.
//!
//! Outbound frames go through a bounded queue to a writer task; a reader too
//! slow to drain it is closed with 1008 rather than let memory grow.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use dispatch_actors::{ActorError, ContractorLink, DispatchEvent, EventKind, GpsFix, JobRequest, JobSnapshot, Presence};
use dispatch_engine::{
    ContractorId, ContractorProfile, CustomerId, GeoPoint, JobId, JobState, Money, Party, Rating, TimeWindow, Timestamp, TradeExperience,
    Urgency,
};

use crate::auth::{Claims, Role};
use crate::protocol::{
    ClientMsg, JobProgress, MapCell, ServerMsg, UrgencyWire, encode_server, encode_server_binary, parse_client, parse_client_binary,
};
use crate::server::Gateway;

/// Most contractors one `nearby` returns.
const MAX_NEARBY: usize = 100;

/// Longest chat message, characters.
const MAX_CHAT_CHARS: usize = 2_000;

/// How far ahead of the server's clock a GPS timestamp may be, ms. A fix
/// from the future would make every real fix after it look old (and be
/// ignored), so it is refused; old fixes are harmless and simply ignored.
const MAX_GPS_SKEW_MS: i64 = 5 * 60 * 1_000;

/// A frame on its way to the socket; offers carry their job's posting time.
/// Boxed: the queue allocates its slots 32 at a time, and 32 boxes cost an
/// idle connection 256 bytes where 32 frames would cost 2.3 KiB.
type Outbound = Box<(Message, Option<Timestamp>)>;

/// Why a request was refused: an error frame's code and message.
#[derive(Debug)]
struct Refusal {
    code: &'static str,
    message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

impl From<ActorError> for Refusal {
    fn from(e: ActorError) -> Self {
        use dispatch_engine::Error as E;
        let code = match &e {
            ActorError::UnknownJob(_) | ActorError::UnknownContractor(_) => "not_found",
            ActorError::NotParty(..) => "forbidden",
            ActorError::AlreadyRated(_) | ActorError::NotCompleted(..) => "conflict",
            ActorError::Engine(E::WrongContractor { .. } | E::ContractorExcluded(_)) => "forbidden",
            ActorError::Engine(E::IllegalTransition { .. } | E::OfferNotExpired { .. }) => "conflict",
            ActorError::Engine(_) | ActorError::Config(_) => "bad_request",
            ActorError::DuplicateContractor(_) | ActorError::ContractorState(..) | ActorError::JobClosed(..) => "conflict",
            ActorError::Store(_) | ActorError::Unavailable(_) => "unavailable",
        };
        refuse(code, e.to_string())
    }
}

impl From<dispatch_engine::Error> for Refusal {
    fn from(e: dispatch_engine::Error) -> Self {
        refuse("bad_request", e.to_string())
    }
}

/// A token bucket: `rate` per second, bursts of up to twice that.
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        Self { rate, tokens: rate * 2.0, at: Instant::now() }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.rate * 2.0);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Session {
    claims: Claims,
    gw: Arc<Gateway>,
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
    /// Jobs of the sets above that finished, and when: forgotten after
    /// [`crate::router::FINISHED_JOB_MEMORY`], so a long-lived session does
    /// not grow with every job it ever saw (found by the soak).
    finished: std::collections::VecDeque<(Instant, JobId)>,
    link: Option<ContractorLink>,
    /// Dispatcher: the map version sent so far and the viewport, once subscribed.
    map: Option<(u64, Option<[f64; 4]>)>,
    /// Dispatcher: the cell loads last sent, to send cells again only when they change.
    cells_sent: Vec<CellLoadRow>,
    /// Dispatcher: the match figures last sent.
    stats_sent: dispatch_actors::map::MatchStats,
    gps: Bucket,
    chat: Bucket,
    /// The client sends binary frames, so it gets binary frames back.
    binary: bool,
    closing: bool,
}

impl Session {
    fn city(&self) -> &crate::cities::City {
        // The upgrade checked the token's city exists.
        &self.gw.cities[&self.claims.city]
    }

    fn dispatch(&self) -> &dispatch_actors::Dispatch {
        &self.city().dispatch
    }

    /// Encodes a frame in the client's format.
    fn frame(&self, msg: &ServerMsg) -> Option<Message> {
        Some(if self.binary {
            match encode_server_binary(msg) {
                Ok(bytes) => Message::binary(bytes),
                Err(e) => {
                    tracing::error!(%e, "a server message did not encode");
                    return None;
                }
            }
        } else {
            Message::text(encode_server(msg))
        })
    }

    /// Queues a reply that is part of a burst the client asked for (a
    /// `resume` replay): waits for room, since the client is reading its own
    /// answer, but not for ever — a reader stuck for 10 s is closed with 1008.
    async fn send_waiting(&mut self, msg: &ServerMsg) {
        let Some(frame) = self.frame(msg).filter(|_| !self.closing) else { return };
        if self.out.send_timeout(Box::new((frame, None)), Duration::from_secs(10)).await.is_err() {
            metrics::counter!("dispatch_ws_closed_slow_reader_total").increment(1);
            self.close(CloseCode::Policy, "outbound queue full: reading too slowly");
        } else {
            metrics::counter!("dispatch_ws_messages_out_total", "type" => msg.kind()).increment(1);
        }
    }

    /// Queues a frame without waiting; a full queue means a reader too slow to
    /// keep up with the city's events: close with 1008.
    fn send(&mut self, msg: &ServerMsg) {
        self.send_stamped(msg, None);
    }

    /// [`Self::send`], stamping an offer with its job's posting time.
    fn send_stamped(&mut self, msg: &ServerMsg, posted_at: Option<Timestamp>) {
        if self.closing {
            return;
        }
        let kind = msg.kind();
        let Some(frame) = self.frame(msg) else { return };
        match self.out.try_send(Box::new((frame, posted_at))) {
            Ok(()) => {
                metrics::counter!("dispatch_ws_messages_out_total", "type" => kind).increment(1);
                let depth = self.out.max_capacity() - self.out.capacity();
                metrics::gauge!("dispatch_ws_outbound_queue_depth").set(depth as f64);
            }
            Err(_) => {
                metrics::counter!("dispatch_ws_closed_slow_reader_total").increment(1);
                self.close(CloseCode::Policy, "outbound queue full: reading too slowly");
            }
        }
    }

    fn close(&mut self, code: CloseCode, reason: &str) {
        self.closing = true;
        if let Some(abort) = self.abort.take() {
            let _ = abort.send(CloseFrame { code, reason: reason.to_owned().into() });
        }
    }

    fn error(&mut self, id: Option<String>, code: &'static str, message: String) {
        metrics::counter!("dispatch_ws_errors_total", "code" => code).increment(1);
        self.send(&ServerMsg::Error { id, code: code.into(), message });
    }

    fn require(&self, role: Role) -> Result<(), Refusal> {
        if self.claims.role == role {
            Ok(())
        } else {
            Err(refuse("forbidden", format!("only a {} may do this; you are a {}", role.as_str(), self.claims.role.as_str())))
        }
    }

    fn point_in_city(&self, lat: f64, lng: f64) -> Result<GeoPoint, Refusal> {
        let point = GeoPoint::new(lat, lng)?;
        if self.city().covers(point) {
            Ok(point)
        } else {
            Err(refuse("out_of_area", format!("({lat}, {lng}) is outside {}", self.claims.city)))
        }
    }

    /// The job, if this connection takes part in it; and as which party.
    async fn participant(&self, job: u64) -> Result<(Party, JobSnapshot), Refusal> {
        let snap = self.dispatch().job(JobId(job)).await?;
        let me = self.claims.sub;
        let party = match self.claims.role {
            Role::Dispatcher => Party::Dispatcher,
            Role::Customer if snap.job.customer == CustomerId(me) => Party::Customer,
            Role::Contractor if assigned_to(snap.machine.state()) == Some(ContractorId(me)) => Party::Contractor,
            _ => return Err(refuse("forbidden", format!("you are not a participant of job {job}"))),
        };
        Ok((party, snap))
    }

    async fn on_text(&mut self, text: &str) {
        self.on_frame(parse_client(text)).await;
    }

    async fn on_binary(&mut self, bytes: &[u8]) {
        self.binary = true;
        self.on_frame(parse_client_binary(bytes)).await;
    }

    async fn on_frame(&mut self, parsed: Result<(Option<String>, ClientMsg), crate::protocol::BadFrame>) {
        let (id, msg) = match parsed {
            Ok(parsed) => parsed,
            Err(bad) => return self.error(bad.id, "bad_request", bad.message),
        };
        metrics::counter!("dispatch_ws_messages_in_total", "type" => msg.kind()).increment(1);
        match self.handle(msg).await {
            Ok(Some(result)) => self.send(&ServerMsg::Ack { id, result }),
            Ok(None) => {}
            Err(r) => self.error(id, r.code, r.message),
        }
    }

    /// Carries out one request; `Ok(None)` means no ack (GPS, ping).
    async fn handle(&mut self, msg: ClientMsg) -> Result<Option<Value>, Refusal> {
        let me = self.claims.sub;
        match msg {
            ClientMsg::Ping {} => {
                // For a streaming contractor, pong also means "every fix you sent
                // before was handled": a barrier phones (and the load test) can pace on.
                if let Some(link) = &self.link
                    && link.flush().await.is_err()
                {
                    self.link = None;
                }
                self.send(&ServerMsg::Pong {});
                Ok(None)
            }
            ClientMsg::Register { name, trades, hourly_rate, service_radius_m } => {
                self.require(Role::Contractor)?;
                if trades.is_empty() {
                    return Err(refuse("bad_request", "register: at least one trade is needed"));
                }
                let profile = ContractorProfile {
                    id: ContractorId(me),
                    name,
                    trades: trades.iter().map(|t| TradeExperience { trade: t.trade, years: t.years }).collect(),
                    rating: Rating::unrated(),
                    hourly_rate: Money(hourly_rate),
                    service_radius_m,
                    shifts: vec![],
                    utc_offset_minutes: 0,
                };
                match self.dispatch().register_contractor(profile).await {
                    Ok(()) => Ok(Some(json!({"registered": true}))),
                    Err(ActorError::DuplicateContractor(_)) => Ok(Some(json!({"registered": false, "reason": "already registered"}))),
                    Err(e) => Err(e.into()),
                }
            }
            ClientMsg::Online { lat, lng } => {
                self.require(Role::Contractor)?;
                let at = self.point_in_city(lat, lng)?;
                let status = self.dispatch().set_presence(ContractorId(me), Presence::Available, Some(at)).await?;
                self.link = self.dispatch().link(ContractorId(me)).ok();
                Ok(Some(json!({"status": status})))
            }
            ClientMsg::Offline {} | ClientMsg::Break {} => {
                self.require(Role::Contractor)?;
                let presence = if matches!(msg, ClientMsg::Offline {}) { Presence::Offline } else { Presence::OnBreak };
                let status = self.dispatch().set_presence(ContractorId(me), presence, None).await?;
                self.link = None;
                Ok(Some(json!({"status": status})))
            }
            ClientMsg::Gps { lat, lng, heading, speed, accuracy, ts } => {
                self.require(Role::Contractor)?;
                if !self.gps.take() {
                    metrics::counter!("dispatch_gps_dropped_total", "reason" => "rate_limit").increment(1);
                    return Ok(None);
                }
                let at = self.point_in_city(lat, lng)?;
                let now = self.dispatch().clock().now();
                if ts > now.0.saturating_add(MAX_GPS_SKEW_MS) {
                    return Err(refuse(
                        "bad_request",
                        format!(
                            "ts {ts} is {} s ahead of the server's clock (at most {} s allowed)",
                            (ts - now.0) / 1_000,
                            MAX_GPS_SKEW_MS / 1_000
                        ),
                    ));
                }
                let fix = GpsFix::new(at, heading, speed, accuracy, Timestamp(ts))?;
                let link = match self.link.clone() {
                    Some(link) => link,
                    None => {
                        let link =
                            self.dispatch().link(ContractorId(me)).map_err(|_| refuse("conflict", "go online before sending GPS"))?;
                        self.link = Some(link.clone());
                        link
                    }
                };
                match link.gps(fix) {
                    Ok(true) => metrics::counter!("dispatch_gps_ingested_total").increment(1),
                    Ok(false) => {} // the contractor is behind: dropped and counted
                    Err(_) => {
                        self.link = None;
                        return Err(refuse("conflict", "you went offline; send online again"));
                    }
                }
                Ok(None)
            }
            ClientMsg::Accept { job } => {
                self.require(Role::Contractor)?;
                let state = self.dispatch().accept(JobId(job), ContractorId(me)).await?;
                self.assigned.insert(JobId(job));
                Ok(Some(json!({"job": job, "state": state})))
            }
            ClientMsg::Decline { job } => {
                self.require(Role::Contractor)?;
                let state = self.dispatch().decline(JobId(job), ContractorId(me)).await?;
                Ok(Some(json!({"job": job, "state": state})))
            }
            ClientMsg::JobStatus { job, status } => {
                self.require(Role::Contractor)?;
                let (d, j, c) = (self.dispatch(), JobId(job), ContractorId(me));
                let state = match status {
                    JobProgress::EnRoute => d.depart(j, c).await?,
                    JobProgress::OnSite => d.arrive(j, c).await?,
                    JobProgress::Completed => d.complete(j, c).await?,
                };
                Ok(Some(json!({"job": job, "state": state})))
            }
            ClientMsg::PostJob { trade, lat, lng, urgency, description, budget } => {
                self.require(Role::Customer)?;
                let location = self.point_in_city(lat, lng)?;
                let urgency = match urgency {
                    UrgencyWire::Emergency => Urgency::Emergency,
                    UrgencyWire::Today => Urgency::Today,
                    UrgencyWire::Scheduled { start, end } => Urgency::Scheduled(TimeWindow::new(Timestamp(start), Timestamp(end))?),
                };
                if description.chars().count() > MAX_CHAT_CHARS {
                    return Err(refuse("bad_request", format!("description longer than {MAX_CHAT_CHARS} characters")));
                }
                let request = JobRequest { customer: CustomerId(me), trade, location, urgency, description, budget: budget.map(Money) };
                let (job, quote) = self.dispatch().post_job(request).await?;
                self.jobs.insert(job);
                Ok(Some(json!({"job": job, "quote": quote})))
            }
            ClientMsg::Cancel { job, reason } => {
                let by = match self.claims.role {
                    Role::Dispatcher => Party::Dispatcher,
                    Role::Customer => {
                        let snap = self.dispatch().job(JobId(job)).await?;
                        if snap.job.customer != CustomerId(me) {
                            return Err(refuse("forbidden", format!("job {job} is not yours")));
                        }
                        Party::Customer
                    }
                    Role::Contractor => return Err(refuse("forbidden", "contractors cannot cancel jobs; decline or hand them back")),
                };
                let state = self.dispatch().cancel(JobId(job), by, reason.unwrap_or_else(|| "no reason given".into())).await?;
                Ok(Some(json!({"job": job, "state": state})))
            }
            ClientMsg::Watch { job } => {
                self.require(Role::Customer)?;
                let (_, snap) = self.participant(job).await?;
                self.jobs.insert(JobId(job));
                self.watching.insert(JobId(job));
                self.city().router.claim_customer(JobId(job), CustomerId(me));
                Ok(Some(json!({"job": job, "state": snap.machine.state()})))
            }
            ClientMsg::Rate { job, stars } => {
                self.require(Role::Customer)?;
                let rated = self.dispatch().rate(JobId(job), CustomerId(me), stars).await?;
                Ok(Some(json!({"contractor": rated.contractor, "rating": rated.rating.average(), "reviews": rated.rating.reviews()})))
            }
            ClientMsg::Chat { job, text } => {
                let (party, _) = self.participant(job).await?;
                if text.trim().is_empty() || text.chars().count() > MAX_CHAT_CHARS {
                    return Err(refuse("bad_request", format!("chat text must have 1 to {MAX_CHAT_CHARS} characters")));
                }
                if !self.chat.take() {
                    return Err(refuse("rate_limited", "too many chat messages; slow down"));
                }
                let event = self.dispatch().chat(JobId(job), party, me, text).await?;
                Ok(Some(json!({"job": job, "seq": event.seq})))
            }
            ClientMsg::Resume { job, last_seq } => {
                let (party, _) = self.participant(job).await?;
                self.jobs.insert(JobId(job));
                match party {
                    Party::Contractor => {
                        self.assigned.insert(JobId(job));
                        self.city().router.claim_contractor(JobId(job), ContractorId(me));
                    }
                    Party::Customer => self.city().router.claim_customer(JobId(job), CustomerId(me)),
                    Party::Dispatcher | Party::System => {}
                }
                let missed = self.dispatch().events_since(JobId(job), last_seq).await?;
                let replayed = missed.len();
                for event in missed {
                    self.send_waiting(&event_frame(&event)).await;
                }
                Ok(Some(json!({"job": job, "replayed": replayed})))
            }
            ClientMsg::Subscribe { viewport } => {
                self.require(Role::Dispatcher)?;
                let viewport = viewport.map(|v| v.bounds()).transpose().map_err(|e| refuse("bad_request", e))?;
                let snapshot = self.dispatch().map_since(0, viewport);
                let loads = self.cell_loads(viewport);
                let cells = map_cells(&loads);
                self.map = Some((snapshot.version, viewport));
                self.cells_sent = loads;
                let area = self.city().config.polygon.clone();
                let stats = self.dispatch().match_stats();
                self.send(&ServerMsg::MapSnapshot {
                    version: snapshot.version,
                    area,
                    stats,
                    cells,
                    contractors: snapshot.contractors,
                    jobs: snapshot.jobs,
                });
                Ok(Some(json!({"city": self.claims.city, "version": snapshot.version})))
            }
            ClientMsg::Nearby { lat, lng, k, trade, available_only, radius_m } => {
                self.require(Role::Dispatcher)?;
                if !(1..=MAX_NEARBY).contains(&k) {
                    return Err(refuse("bad_request", format!("k must be 1 to {MAX_NEARBY}, not {k}")));
                }
                if radius_m.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
                    return Err(refuse("bad_request", "radius_m must be a positive number of metres"));
                }
                let at = self.point_in_city(lat, lng)?;
                let filter = dispatch_engine::Filter {
                    trades: trade.map(dispatch_engine::TradeSet::single).unwrap_or_default(),
                    available_only,
                    max_distance_m: radius_m,
                    ..dispatch_engine::Filter::default()
                };
                let found = self.dispatch().nearest(at, k, &filter).await;
                let contractors: Vec<Value> = found
                    .iter()
                    .map(|n| json!({"id": n.contractor.id, "lat": n.point.lat(), "lng": n.point.lng(), "distance_m": n.distance_m, "status": n.contractor.status}))
                    .collect();
                Ok(Some(json!({"contractors": contractors})))
            }
            ClientMsg::Assign { job, contractor } => {
                self.require(Role::Dispatcher)?;
                let state = self.dispatch().assign(JobId(job), ContractorId(contractor)).await?;
                Ok(Some(json!({"job": job, "state": state})))
            }
        }
    }

    /// Forwards a city event if this connection may see it.
    async fn on_event(&mut self, event: &DispatchEvent) {
        self.forget_finished();
        if matches!(event.kind, EventKind::Completed { .. } | EventKind::Cancelled { .. } | EventKind::Expired { .. })
            && (self.jobs.contains(&event.job) || self.assigned.contains(&event.job))
        {
            self.finished.push_back((Instant::now(), event.job));
        }
        let me = self.claims.sub;
        match self.claims.role {
            Role::Dispatcher => self.send(&event_frame(event)),
            Role::Contractor => {
                let about_me = event_contractor(&event.kind) == Some(ContractorId(me));
                if let EventKind::Offered { contractor, expires_at, eta_secs } = event.kind
                    && contractor == ContractorId(me)
                {
                    if let Ok(snap) = self.dispatch().job(event.job).await {
                        let offer = ServerMsg::Offer {
                            job: event.job.0,
                            trade: snap.job.trade,
                            site: snap.job.location,
                            description: snap.job.description,
                            expires_at: expires_at.0,
                            eta_secs,
                        };
                        self.send_stamped(&offer, Some(snap.job.posted_at));
                    }
                    return;
                }
                if matches!(event.kind, EventKind::ContractorPosition { .. }) {
                    return; // their own position
                }
                if about_me || self.assigned.contains(&event.job) {
                    if matches!(event.kind, EventKind::Accepted { contractor } if contractor == ContractorId(me)) {
                        self.assigned.insert(event.job);
                    }
                    self.send(&event_frame(event));
                }
            }
            Role::Customer => {
                if !self.jobs.contains(&event.job) {
                    return;
                }
                if matches!(event.kind, EventKind::ContractorPosition { .. }) && !self.watching.contains(&event.job) {
                    return;
                }
                self.send(&event_frame(event));
            }
        }
    }

    /// Drops the jobs that finished longer than the router remembers ago.
    fn forget_finished(&mut self) {
        while let Some(&(at, job)) = self.finished.front() {
            if at.elapsed() < crate::router::FINISHED_JOB_MEMORY {
                break;
            }
            self.finished.pop_front();
            self.jobs.remove(&job);
            self.watching.remove(&job);
            self.assigned.remove(&job);
        }
    }

    /// The city's cell loads inside `viewport` (if given): cheap to compare tick to tick.
    fn cell_loads(&self, viewport: Option<[f64; 4]>) -> Vec<CellLoadRow> {
        self.dispatch()
            .cells()
            .into_iter()
            .filter(|(cell, _, _)| {
                let centre = h3o::LatLng::from(*cell);
                viewport.is_none_or(|[s, w, n, e]| (s..=n).contains(&centre.lat()) && (w..=e).contains(&centre.lng()))
            })
            .collect()
    }

    /// Dispatcher feed tick: send what changed since the last delta. A queue
    /// already half full skips this tick; the next delta carries both.
    fn map_tick(&mut self) {
        let Some((version, viewport)) = self.map else { return };
        if self.out.capacity() < self.out.max_capacity() / 2 {
            metrics::counter!("dispatch_map_deltas_coalesced_total").increment(1);
            return;
        }
        let delta = self.dispatch().map_since(version, viewport);
        let loads = self.cell_loads(viewport);
        let cells_changed = loads != self.cells_sent;
        let stats = self.dispatch().match_stats();
        if delta.is_empty() && !cells_changed && stats == self.stats_sent {
            return;
        }
        self.stats_sent = stats;
        // Hexagon boundaries are only worked out for cells actually sent.
        let cells = cells_changed.then(|| map_cells(&loads));
        if cells_changed {
            self.cells_sent = loads;
        }
        self.map = Some((delta.version, viewport));
        self.send(&ServerMsg::MapDelta { version: delta.version, stats, cells, contractors: delta.contractors, jobs: delta.jobs });
    }
}

/// One cell's load on the map: the cell, its demand and supply, its surge.
type CellLoadRow = (h3o::CellIndex, dispatch_engine::pricing::CellLoad, f64);

/// Map cells for the wire, with each hexagon's corners from h3o.
fn map_cells(loads: &[CellLoadRow]) -> Vec<MapCell> {
    loads
        .iter()
        .map(|&(cell, load, surge)| MapCell {
            cell: cell.to_string(),
            supply: load.supply,
            demand: load.demand,
            surge,
            boundary: cell.boundary().iter().map(|v| [v.lat(), v.lng()]).collect(),
        })
        .collect()
}

/// The contractor assigned to a job in this state (not merely offered it).
fn assigned_to(state: &JobState) -> Option<ContractorId> {
    match state {
        JobState::Accepted { contractor }
        | JobState::EnRoute { contractor }
        | JobState::OnSite { contractor }
        | JobState::Completed { contractor } => Some(*contractor),
        _ => None,
    }
}

/// The contractor an event is about, if any.
pub(crate) fn event_contractor(kind: &EventKind) -> Option<ContractorId> {
    match kind {
        EventKind::Offered { contractor, .. }
        | EventKind::Declined { contractor }
        | EventKind::OfferExpired { contractor }
        | EventKind::Accepted { contractor }
        | EventKind::EnRoute { contractor }
        | EventKind::Arriving { contractor, .. }
        | EventKind::OnSite { contractor }
        | EventKind::Completed { contractor }
        | EventKind::Withdrawn { contractor }
        | EventKind::Rated { contractor, .. }
        | EventKind::ContractorPosition { contractor, .. } => Some(*contractor),
        EventKind::Posted { .. } | EventKind::Cancelled { .. } | EventKind::Expired { .. } | EventKind::Chat { .. } => None,
    }
}

fn event_frame(event: &DispatchEvent) -> ServerMsg {
    ServerMsg::Event { job: event.job.0, seq: event.seq, at: event.at.0, event: event.kind.clone() }
}

/// Starts the map feed's once-a-second timer when a dispatcher has just subscribed.
fn start_map_feed(session: &Session, map_tick: &mut Option<tokio::time::Interval>) {
    if session.map.is_some() && map_tick.is_none() {
        let start = tokio::time::Instant::now() + Duration::from_secs(1);
        let mut tick = tokio::time::interval_at(start, Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        *map_tick = Some(tick);
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
    let (mut sink, mut stream) = ws.split();
    let (out, mut out_rx) = mpsc::channel::<Outbound>(gw.config.outbound_queue);
    let (abort, mut abort_rx) = oneshot::channel::<CloseFrame>();
    // The city's clock stamped the jobs' posting times; measure against the same one.
    let clock = gw.cities[&claims.city].dispatch.clock();
    let writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                frame = &mut abort_rx => {
                    if let Ok(frame) = frame {
                        let _ = sink.send(Message::Close(Some(frame))).await;
                    }
                    break;
                }
                msg = out_rx.recv() => match msg {
                    Some(queued) => {
                        let (frame, posted_at) = *queued;
                        if sink.send(frame).await.is_err() {
                            break;
                        }
                        // Match latency: job posted → offer written to the contractor's socket.
                        if let Some(posted_at) = posted_at {
                            metrics::histogram!("dispatch_offer_latency_seconds").record(clock.now().secs_since(posted_at).max(0.0));
                        }
                    }
                    None => break,
                },
            }
        }
        // Give the peer a moment to answer the close handshake, no more.
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    });

    let mut inbox = gw.cities[&claims.city].router.join(claims.role, claims.sub);
    let mut shutdown = gw.shutdown.clone();
    let idle = Duration::from_secs(gw.config.idle_timeout_secs.max(1));
    let mut keepalive = tokio::time::interval(idle / 2);
    keepalive.tick().await;
    let mut last_heard = Instant::now();
    let mut session = Session {
        gps: Bucket::new(gw.config.gps_per_sec),
        chat: Bucket::new(gw.config.chat_per_sec),
        claims,
        gw,
        out,
        abort: Some(abort),
        jobs: HashSet::new(),
        watching: HashSet::new(),
        assigned: HashSet::new(),
        finished: std::collections::VecDeque::new(),
        link: None,
        map: None,
        cells_sent: Vec::new(),
        stats_sent: dispatch_actors::map::MatchStats::default(),
        binary: false,
        closing: false,
    };
    // The map feed's timer exists only once a dispatcher subscribes: a timer
    // per idle phone would wake every connection every second.
    let mut map_tick: Option<tokio::time::Interval> = None;
    let hello = ServerMsg::Hello { role: role.into(), sub: session.claims.sub, city: session.claims.city.clone() };
    session.send(&hello);

    while !session.closing {
        tokio::select! {
            frame = stream.next() => match frame {
                None | Some(Ok(Message::Close(_))) => break,
                Some(Err(e)) => {
                    if matches!(e, tokio_tungstenite::tungstenite::Error::Capacity(_)) {
                        metrics::counter!("dispatch_ws_errors_total", "code" => "too_big").increment(1);
                        session.close(CloseCode::Size, "frame too large");
                    }
                    break;
                }
                // Frame handling is boxed: inlined, its actor calls would make every
                // idle connection's task several KiB larger.
                Some(Ok(Message::Text(text))) => {
                    last_heard = Instant::now();
                    Box::pin(session.on_text(text.as_str())).await;
                    start_map_feed(&session, &mut map_tick);
                }
                Some(Ok(Message::Binary(bytes))) => {
                    last_heard = Instant::now();
                    Box::pin(session.on_binary(&bytes)).await;
                    start_map_feed(&session, &mut map_tick);
                }
                Some(Ok(_)) => last_heard = Instant::now(), // ping / pong
            },
            event = inbox.events.recv() => match event {
                Some(event) => {
                    let missed = inbox.missed.swap(0, std::sync::atomic::Ordering::Relaxed);
                    if missed > 0 {
                        session.error(None, "lagged", format!("{missed} events were missed; send resume for your jobs"));
                    }
                    Box::pin(session.on_event(&event)).await;
                }
                None => break,
            },
            _ = async {
                match map_tick.as_mut() {
                    Some(tick) => tick.tick().await,
                    None => std::future::pending().await,
                }
            }, if map_tick.is_some() => session.map_tick(),
            _ = shutdown.changed() => {
                session.close(CloseCode::Away, "server shutting down");
            }
            _ = keepalive.tick() => {
                if last_heard.elapsed() > idle {
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
    drop(session);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    metrics::gauge!("dispatch_ws_connections", "role" => role).decrement(1.0);
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

    /// A dispatcher whose socket (a 512-byte pipe nobody reads) backs up while
    /// the city's events keep coming: once the queue of 4 is full the session
    /// closes with 1008 instead of buffering without bound.
    #[tokio::test]
    async fn a_reader_that_falls_behind_is_closed_with_1008() {
        let config = ServeConfig { storage: StorageKind::Memory, jwt_secret: "s".into(), outbound_queue: 4, ..ServeConfig::default() };
        let gw = Gateway::start(config).await.unwrap();
        let (server_io, client_io) = tokio::io::duplex(512);
        let ws = WebSocketStream::from_raw_socket(server_io, WsRole::Server, None).await;
        let claims = Claims { role: Role::Dispatcher, sub: 1, city: "des-moines".into(), exp: u64::MAX };
        let session = tokio::spawn(super::run(ws, claims, Arc::clone(&gw)));

        let city = &gw.cities["des-moines"].dispatch;
        let request = JobRequest {
            customer: CustomerId(1),
            trade: Trade::Plumbing,
            location: GeoPoint::new(41.5868, -93.625).unwrap(),
            urgency: Urgency::Today,
            description: "x".into(),
            budget: None,
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
