//! Requests in: frames parsed, the sender's role checked against the
//! protocol's table ([`policy::may_send`]), GPS and pings handled here on
//! the hot path, the dispatcher's `subscribe` answered with a map snapshot,
//! and every other command carried out by the city's [`Port`](crate::port::Port)
//! (the one executor, in this process or on the city's owner) and answered
//! with an `ack` or an `error`.

use dispatch_actors::GpsFix;
use dispatch_engine::{ContractorId, CustomerId, JobId, Party, Timestamp};

use super::policy::{self, Refusal, refuse};
use super::{Session, counters};
use crate::port::{Caller, Follow};
use crate::protocol::{AckResult, BadFrame, ClientMsg, ErrorCode, ServerMsg, Subscribed, parse_client, parse_client_binary};

/// How far ahead of the server's clock a GPS timestamp may be, ms. A fix
/// from the future would make every real fix after it look old (and be
/// ignored), so it is refused; old fixes are harmless and simply ignored.
const MAX_GPS_SKEW_MS: i64 = 5 * 60 * 1_000;

impl Session {
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
        match msg {
            ClientMsg::Ping {} => {
                // For a streaming contractor, pong also means "every fix you sent
                // before was handled": a barrier phones (and the load test) can pace on.
                if let Some(link) = &self.link
                    && !link.flush().await
                {
                    self.link = None;
                }
                self.send(&ServerMsg::Pong {});
                Ok(None)
            }
            ClientMsg::Gps { lat, lng, heading, speed, accuracy, ts } => {
                self.gps(lat, lng, heading, speed, accuracy, ts)?;
                Ok(None)
            }
            ClientMsg::Subscribe { viewport } => {
                let viewport = viewport.map(|v| v.bounds()).transpose().map_err(|e| refuse(ErrorCode::BadRequest, e))?;
                let version = self.send_map_snapshot(viewport).await?;
                Ok(Some(Subscribed { city: self.claims.city.clone(), version }.into()))
            }
            msg => {
                if matches!(msg, ClientMsg::Chat { .. }) && !self.chat.take(self.heard_at) {
                    return Err(refuse(ErrorCode::RateLimited, "too many chat messages; slow down"));
                }
                let posting = matches!(msg, ClientMsg::PostJob { .. });
                let caller = Caller { role: self.claims.role, sub: self.claims.sub };
                let asked = std::time::Instant::now();
                let executed = self.city.port.execute(&self.city.area, caller, msg).await;
                if posting {
                    let took = asked.elapsed();
                    self.overload.observe_post(took, asked + took);
                }
                let executed = executed?;
                for event in &executed.replay {
                    self.send_waiting(&event.frame()).await;
                }
                self.follow(executed.follow);
                Ok(Some(executed.result))
            }
        }
    }

    /// Sends the whole map (after `subscribe`, and after the city moved);
    /// deltas follow from the version returned.
    pub(super) async fn send_map_snapshot(&mut self, viewport: Option<[f64; 4]>) -> Result<u64, Refusal> {
        let update = self.city.port.map(0, viewport).await?;
        self.map = Some((update.version, viewport));
        self.cells_sent = update.cells.clone();
        self.stats_sent = update.stats;
        self.send(&ServerMsg::MapSnapshot {
            version: update.version,
            area: self.city.area.config.polygon.clone(),
            stats: update.stats,
            cells: super::feed::map_cells(&update.cells),
            contractors: update.contractors,
            jobs: update.jobs,
        });
        Ok(update.version)
    }

    /// The city moved to a new owner: the client resumes the jobs it follows,
    /// a dispatcher's map starts again from a snapshot.
    pub(super) async fn on_moved(&mut self) {
        let mut jobs: Vec<u64> = self.jobs.union(&self.assigned).map(|j| j.0).collect();
        jobs.sort_unstable();
        if !jobs.is_empty() {
            self.send(&ServerMsg::Moved { jobs });
        }
        if let Some((_, viewport)) = self.map {
            // The new owner's map versions start afresh; until it answers, the next tick tries again from 0.
            self.map = Some((0, viewport));
            let _ = self.send_map_snapshot(viewport).await;
        }
    }

    /// Takes what a command changed into the session's state.
    fn follow(&mut self, follow: Follow) {
        let me = self.claims.sub;
        match follow {
            Follow::Nothing => {}
            Follow::Online => self.link = self.city.port.gps_link(ContractorId(me)).ok(),
            Follow::Offline => self.link = None,
            Follow::Assigned(job) => {
                self.assigned.insert(JobId(job));
            }
            Follow::Posted(job) => {
                self.jobs.insert(JobId(job));
            }
            Follow::Watching(job) => {
                self.jobs.insert(JobId(job));
                self.watching.insert(JobId(job));
                self.city.router.claim_customer(JobId(job), CustomerId(me));
            }
            Follow::Resumed { job, party } => {
                self.jobs.insert(JobId(job));
                match party {
                    Party::Contractor => {
                        self.assigned.insert(JobId(job));
                        self.city.router.claim_contractor(JobId(job), ContractorId(me));
                    }
                    Party::Customer => self.city.router.claim_customer(JobId(job), CustomerId(me)),
                    Party::Dispatcher | Party::System => {}
                }
            }
        }
    }

    /// One fix: rate-limited, thinned while the gateway is overloaded,
    /// checked, and handed to the contractor's link.
    fn gps(&mut self, lat: f64, lng: f64, heading: Option<f64>, speed: Option<f64>, accuracy: Option<f64>, ts: i64) -> Result<(), Refusal> {
        if !self.gps.take(self.heard_at) {
            counters::GPS_RATE_LIMITED.increment(1);
            return Ok(());
        }
        // While the gateway is overloaded, a fix past the connection's one per interval costs no more than its parse.
        if !self.gps_thinning.admit(self.heard_at, self.overload.lagging(self.heard_at)) {
            counters::GPS_SHED_OVERLOAD.increment(1);
            return Ok(());
        }
        let at = crate::execute::point_in(&self.city.area, lat, lng)?;
        let now = self.city.port.clock().now();
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
            none => none.insert(self.city.port.gps_link(ContractorId(self.claims.sub))?),
        };
        if let Err(refused) = link.gps(fix) {
            self.link = None;
            return Err(refused);
        }
        // Taken; if an older fix still waited, it was shed for this one (and counted).
        counters::GPS_INGESTED.increment(1);
        Ok(())
    }
}
