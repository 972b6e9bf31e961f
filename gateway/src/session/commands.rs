//! Requests in: frames parsed, the sender's role checked against the
//! protocol's table ([`policy::may_send`]), each message carried out through
//! the city's `Dispatch` (which checks the sender is a party of the job it
//! names) and answered with an `ack` or an `error`.

use dispatch_actors::{ActorError, GpsFix, JobRequest, Presence};
use dispatch_engine::{
    ContractorId, ContractorProfile, CustomerId, GeoPoint, JobAction, JobId, Money, Party, Rating, TimeWindow, Timestamp, TradeExperience,
    Urgency,
};

use super::feed::{event_frame, map_cells};
use super::policy::{self, Refusal, refuse};
use super::{Session, counters};
use crate::protocol::{
    AckResult, BadFrame, ChatAcked, ClientMsg, ErrorCode, JobProgress, JobStateReply, Nearby, NearbyContractor, Posted, Rated, Registered,
    Resumed, ServerMsg, StatusReply, Subscribed, UrgencyWire, parse_client, parse_client_binary,
};

/// Most contractors one `nearby` returns.
const MAX_NEARBY: usize = 100;

/// Longest chat message, characters.
const MAX_CHAT_CHARS: usize = 2_000;

/// How far ahead of the server's clock a GPS timestamp may be, ms. A fix
/// from the future would make every real fix after it look old (and be
/// ignored), so it is refused; old fixes are harmless and simply ignored.
const MAX_GPS_SKEW_MS: i64 = 5 * 60 * 1_000;

impl Session {
    fn point_in_city(&self, lat: f64, lng: f64) -> Result<GeoPoint, Refusal> {
        let point = GeoPoint::new(lat, lng)?;
        if self.city().covers(point) {
            Ok(point)
        } else {
            Err(refuse(ErrorCode::OutOfArea, format!("({lat}, {lng}) is outside {}", self.claims.city)))
        }
    }

    pub(super) async fn on_text(&mut self, text: &str) {
        self.on_frame(parse_client(text)).await;
    }

    pub(super) async fn on_binary(&mut self, bytes: &[u8]) {
        self.binary = true;
        self.on_frame(parse_client_binary(bytes)).await;
    }

    async fn on_frame(&mut self, parsed: Result<(Option<String>, ClientMsg), BadFrame>) {
        let (id, msg) = match parsed {
            Ok(parsed) => parsed,
            Err(bad) => return self.error(bad.id, ErrorCode::BadRequest, bad.message),
        };
        counters::MESSAGES_IN.increment(msg.kind());
        match self.handle(msg).await {
            Ok(Some(result)) => self.send(&ServerMsg::Ack { id, result }),
            Ok(None) => {}
            Err(r) => self.error(id, r.code, r.message),
        }
    }

    /// Carries out one request; `Ok(None)` means no ack (GPS, ping).
    async fn handle(&mut self, msg: ClientMsg) -> Result<Option<AckResult>, Refusal> {
        policy::may_send(self.claims.role, &msg)?;
        let me = self.claims.sub;
        let asker = policy::asker(&self.claims);
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
                if trades.is_empty() {
                    return Err(refuse(ErrorCode::BadRequest, "register: at least one trade is needed"));
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
                    Ok(()) => Ok(Some(Registered { registered: true }.into())),
                    Err(ActorError::DuplicateContractor(_)) => Ok(Some(Registered { registered: false }.into())),
                    Err(e) => Err(e.into()),
                }
            }
            ClientMsg::Online { lat, lng } => {
                let at = self.point_in_city(lat, lng)?;
                let status = self.dispatch().set_presence(ContractorId(me), Presence::Available, Some(at)).await?;
                self.link = self.dispatch().link(ContractorId(me)).ok();
                Ok(Some(StatusReply { status }.into()))
            }
            ClientMsg::Offline {} | ClientMsg::Break {} => {
                let presence = if matches!(msg, ClientMsg::Offline {}) { Presence::Offline } else { Presence::OnBreak };
                let status = self.dispatch().set_presence(ContractorId(me), presence, None).await?;
                self.link = None;
                Ok(Some(StatusReply { status }.into()))
            }
            ClientMsg::Gps { lat, lng, heading, speed, accuracy, ts } => {
                if !self.gps.take(self.heard_at) {
                    counters::GPS_RATE_LIMITED.increment(1);
                    return Ok(None);
                }
                // While the gateway is overloaded, a fix past the connection's one per interval costs no more than its parse.
                if !self.gps_thinning.admit(self.heard_at, self.overload.lagging(self.heard_at)) {
                    counters::GPS_SHED_OVERLOAD.increment(1);
                    return Ok(None);
                }
                let at = self.point_in_city(lat, lng)?;
                let now = self.dispatch().clock().now();
                if ts > now.0.saturating_add(MAX_GPS_SKEW_MS) {
                    return Err(refuse(
                        ErrorCode::BadRequest,
                        format!(
                            "ts {ts} is {} s ahead of the server's clock (at most {} s allowed)",
                            (ts - now.0) / 1_000,
                            MAX_GPS_SKEW_MS / 1_000
                        ),
                    ));
                }
                let fix = GpsFix::new(at, heading, speed, accuracy, Timestamp(ts))?;
                let link = match &mut self.link {
                    Some(link) => link,
                    none => none.insert(
                        self.city
                            .dispatch
                            .link(ContractorId(me))
                            .map_err(|_| refuse(ErrorCode::Conflict, "go online before sending GPS"))?,
                    ),
                };
                match link.gps(fix) {
                    // Taken; if an older fix still waited, it was shed for this one (and counted).
                    Ok(_) => counters::GPS_INGESTED.increment(1),
                    Err(_) => {
                        self.link = None;
                        return Err(refuse(ErrorCode::Conflict, "you went offline; send online again"));
                    }
                }
                Ok(None)
            }
            ClientMsg::Accept { job } => {
                let state = self.dispatch().accept(JobId(job), ContractorId(me)).await?;
                self.assigned.insert(JobId(job));
                Ok(Some(JobStateReply { job, state }.into()))
            }
            ClientMsg::Decline { job } => {
                let state = self.dispatch().decline(JobId(job), ContractorId(me)).await?;
                Ok(Some(JobStateReply { job, state }.into()))
            }
            ClientMsg::JobStatus { job, status } => {
                let action = match status {
                    JobProgress::EnRoute => JobAction::EnRoute,
                    JobProgress::OnSite => JobAction::OnSite,
                    JobProgress::Completed => JobAction::Complete,
                };
                let state = self.dispatch().act(JobId(job), action, ContractorId(me)).await?;
                Ok(Some(JobStateReply { job, state }.into()))
            }
            ClientMsg::PostJob { trade, lat, lng, urgency, description, budget } => {
                let location = self.point_in_city(lat, lng)?;
                let urgency = match urgency {
                    UrgencyWire::Emergency => Urgency::Emergency,
                    UrgencyWire::Today => Urgency::Today,
                    UrgencyWire::Scheduled { start, end } => Urgency::Scheduled(TimeWindow::new(Timestamp(start), Timestamp(end))?),
                };
                if description.chars().count() > MAX_CHAT_CHARS {
                    return Err(refuse(ErrorCode::BadRequest, format!("description longer than {MAX_CHAT_CHARS} characters")));
                }
                let request = JobRequest { customer: CustomerId(me), trade, location, urgency, description, budget: budget.map(Money) };
                let asked = std::time::Instant::now();
                let posted = self.dispatch().post_job(request).await;
                let took = asked.elapsed();
                self.overload.observe_post(took, asked + took);
                let (job, quote) = posted?;
                self.jobs.insert(job);
                Ok(Some(Posted { job: job.0, quote }.into()))
            }
            ClientMsg::Cancel { job, reason } => {
                let state = self.dispatch().cancel(JobId(job), asker, reason.unwrap_or_else(|| "no reason given".into())).await?;
                Ok(Some(JobStateReply { job, state }.into()))
            }
            ClientMsg::Watch { job } => {
                let (_, snap) = self.dispatch().party_of(JobId(job), asker).await?;
                self.jobs.insert(JobId(job));
                self.watching.insert(JobId(job));
                self.city().router.claim_customer(JobId(job), CustomerId(me));
                Ok(Some(JobStateReply { job, state: snap.machine.state().clone() }.into()))
            }
            ClientMsg::Rate { job, stars } => {
                let rated = self.dispatch().rate(JobId(job), CustomerId(me), stars).await?;
                Ok(Some(Rated { contractor: rated.contractor.0, rating: rated.rating.average(), reviews: rated.rating.reviews() }.into()))
            }
            ClientMsg::Chat { job, text } => {
                let (party, _) = self.dispatch().party_of(JobId(job), asker).await?;
                if text.trim().is_empty() || text.chars().count() > MAX_CHAT_CHARS {
                    return Err(refuse(ErrorCode::BadRequest, format!("chat text must have 1 to {MAX_CHAT_CHARS} characters")));
                }
                if !self.chat.take(self.heard_at) {
                    return Err(refuse(ErrorCode::RateLimited, "too many chat messages; slow down"));
                }
                let event = self.dispatch().chat(JobId(job), party, me, text).await?;
                Ok(Some(ChatAcked { job, seq: event.seq }.into()))
            }
            ClientMsg::Resume { job, last_seq } => {
                let (party, _) = self.dispatch().party_of(JobId(job), asker).await?;
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
                Ok(Some(Resumed { job, replayed: replayed as u64 }.into()))
            }
            ClientMsg::Subscribe { viewport } => {
                let viewport = viewport.map(|v| v.bounds()).transpose().map_err(|e| refuse(ErrorCode::BadRequest, e))?;
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
                    stats: crate::wire::stats(stats),
                    cells,
                    contractors: crate::wire::contractors(snapshot.contractors),
                    jobs: crate::wire::jobs(snapshot.jobs),
                });
                Ok(Some(Subscribed { city: self.claims.city.clone(), version: snapshot.version }.into()))
            }
            ClientMsg::Nearby { lat, lng, k, trade, available_only, radius_m } => {
                if !(1..=MAX_NEARBY).contains(&k) {
                    return Err(refuse(ErrorCode::BadRequest, format!("k must be 1 to {MAX_NEARBY}, not {k}")));
                }
                if radius_m.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
                    return Err(refuse(ErrorCode::BadRequest, "radius_m must be a positive number of metres"));
                }
                let at = self.point_in_city(lat, lng)?;
                let filter = dispatch_engine::Filter {
                    trades: trade.map(dispatch_engine::TradeSet::single).unwrap_or_default(),
                    available_only,
                    max_distance_m: radius_m,
                    ..dispatch_engine::Filter::default()
                };
                let found = self.dispatch().nearest(at, k, &filter).await;
                let contractors = found
                    .iter()
                    .map(|n| NearbyContractor {
                        id: n.contractor.id.0,
                        lat: n.point.lat(),
                        lng: n.point.lng(),
                        distance_m: n.distance_m,
                        status: n.contractor.status,
                    })
                    .collect();
                Ok(Some(Nearby { contractors }.into()))
            }
            ClientMsg::Assign { job, contractor } => {
                let state = self.dispatch().assign(JobId(job), ContractorId(contractor)).await?;
                Ok(Some(JobStateReply { job, state }.into()))
            }
        }
    }
}
