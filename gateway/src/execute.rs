//! The one executor of client commands: a message from a verified caller
//! carried out through the city's [`Dispatch`] (which checks the caller is a
//! party of the job it names) and answered with an [`Executed`] or a
//! [`Refusal`].
//!
//! `dispatch serve`'s sessions call it in process; an engine node calls it
//! for the commands gateways send over NATS. GPS and pings never come here:
//! they stay on the session's hot path.

use dispatch_actors::{ActorError, Dispatch, JobRequest, Presence};
use dispatch_engine::{
    ContractorId, ContractorProfile, CustomerId, JobAction, JobId, Money, Rating, TimeWindow, Timestamp, TradeExperience, Urgency,
};

use crate::cities::Area;
use crate::city_event::CityEvent;
use crate::port::{Caller, Executed, Follow};
use crate::protocol::{
    AckResult, ChatAcked, ClientMsg, ErrorCode, JobProgress, JobStateReply, Nearby, NearbyContractor, Posted, Rated, Registered, Resumed,
    StatusReply, UrgencyWire,
};
use crate::refusal::{Refusal, refuse};
use crate::session::asker;

/// Most contractors one `nearby` returns.
const MAX_NEARBY: usize = 100;

/// Longest chat message or job description, characters.
pub(crate) const MAX_CHAT_CHARS: usize = 2_000;

/// A point of the city's area, or `out_of_area`.
pub(crate) fn point_in(area: &Area, lat: f64, lng: f64) -> Result<dispatch_engine::GeoPoint, Refusal> {
    let point = dispatch_engine::GeoPoint::new(lat, lng)?;
    if area.covers(point) {
        Ok(point)
    } else {
        Err(refuse(ErrorCode::OutOfArea, format!("({lat}, {lng}) is outside {}", area.config.name)))
    }
}

fn done(result: impl Into<AckResult>, follow: Follow) -> Result<Executed, Refusal> {
    Ok(Executed { result: result.into(), replay: Vec::new(), follow })
}

/// Carries out `msg` for `caller` in the city of `area`. The caller's role
/// was already checked against the message (`session::policy`).
pub(crate) async fn execute(area: &Area, dispatch: &Dispatch, caller: Caller, msg: ClientMsg) -> Result<Executed, Refusal> {
    let me = caller.sub;
    let asker = asker(caller.role, caller.sub);
    match msg {
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
            let registered = match dispatch.register_contractor(profile).await {
                Ok(()) => true,
                Err(ActorError::DuplicateContractor(_)) => false,
                Err(e) => return Err(e.into()),
            };
            done(Registered { registered }, Follow::Nothing)
        }
        ClientMsg::Online { lat, lng } => {
            let at = point_in(area, lat, lng)?;
            let status = dispatch.set_presence(ContractorId(me), Presence::Available, Some(at)).await?;
            done(StatusReply { status }, Follow::Online)
        }
        ClientMsg::Offline {} | ClientMsg::Break {} => {
            let presence = if matches!(msg, ClientMsg::Offline {}) { Presence::Offline } else { Presence::OnBreak };
            let status = dispatch.set_presence(ContractorId(me), presence, None).await?;
            done(StatusReply { status }, Follow::Offline)
        }
        ClientMsg::Accept { job } => {
            let state = dispatch.accept(JobId(job), ContractorId(me)).await?;
            done(JobStateReply { job, state }, Follow::Assigned(job))
        }
        ClientMsg::Decline { job } => {
            let state = dispatch.decline(JobId(job), ContractorId(me)).await?;
            done(JobStateReply { job, state }, Follow::Nothing)
        }
        ClientMsg::JobStatus { job, status } => {
            let action = match status {
                JobProgress::EnRoute => JobAction::EnRoute,
                JobProgress::OnSite => JobAction::OnSite,
                JobProgress::Completed => JobAction::Complete,
            };
            let state = dispatch.act(JobId(job), action, ContractorId(me)).await?;
            done(JobStateReply { job, state }, Follow::Nothing)
        }
        ClientMsg::PostJob { trade, lat, lng, urgency, description, budget } => {
            let location = point_in(area, lat, lng)?;
            let urgency = match urgency {
                UrgencyWire::Emergency => Urgency::Emergency,
                UrgencyWire::Today => Urgency::Today,
                UrgencyWire::Scheduled { start, end } => Urgency::Scheduled(TimeWindow::new(Timestamp(start), Timestamp(end))?),
            };
            if description.chars().count() > MAX_CHAT_CHARS {
                return Err(refuse(ErrorCode::BadRequest, format!("description longer than {MAX_CHAT_CHARS} characters")));
            }
            let request = JobRequest { customer: CustomerId(me), trade, location, urgency, description, budget: budget.map(Money) };
            let (job, quote) = dispatch.post_job(request).await?;
            done(Posted { job: job.0, quote }, Follow::Posted(job.0))
        }
        ClientMsg::Cancel { job, reason } => {
            let state = dispatch.cancel(JobId(job), asker, reason.unwrap_or_else(|| "no reason given".into())).await?;
            done(JobStateReply { job, state }, Follow::Nothing)
        }
        ClientMsg::Watch { job } => {
            let (_, snap) = dispatch.party_of(JobId(job), asker).await?;
            done(JobStateReply { job, state: snap.machine.state().clone() }, Follow::Watching(job))
        }
        ClientMsg::Rate { job, stars } => {
            let rated = dispatch.rate(JobId(job), CustomerId(me), stars).await?;
            done(Rated { contractor: rated.contractor.0, rating: rated.rating.average(), reviews: rated.rating.reviews() }, Follow::Nothing)
        }
        ClientMsg::Chat { job, text } => {
            let (party, _) = dispatch.party_of(JobId(job), asker).await?;
            if text.trim().is_empty() || text.chars().count() > MAX_CHAT_CHARS {
                return Err(refuse(ErrorCode::BadRequest, format!("chat text must have 1 to {MAX_CHAT_CHARS} characters")));
            }
            let event = dispatch.chat(JobId(job), party, me, text).await?;
            done(ChatAcked { job, seq: event.seq }, Follow::Nothing)
        }
        ClientMsg::Resume { job, last_seq } => {
            let (party, _) = dispatch.party_of(JobId(job), asker).await?;
            let missed = dispatch.events_since(JobId(job), last_seq).await?;
            let replay: Vec<CityEvent> = missed.iter().map(CityEvent::logged).collect();
            Ok(Executed { result: Resumed { job, replayed: replay.len() as u64 }.into(), replay, follow: Follow::Resumed { job, party } })
        }
        ClientMsg::Nearby { lat, lng, k, trade, available_only, radius_m } => {
            if !(1..=MAX_NEARBY).contains(&k) {
                return Err(refuse(ErrorCode::BadRequest, format!("k must be 1 to {MAX_NEARBY}, not {k}")));
            }
            if radius_m.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
                return Err(refuse(ErrorCode::BadRequest, "radius_m must be a positive number of metres"));
            }
            let at = point_in(area, lat, lng)?;
            let filter = dispatch_engine::Filter {
                trades: trade.map(dispatch_engine::TradeSet::single).unwrap_or_default(),
                available_only,
                max_distance_m: radius_m,
                ..dispatch_engine::Filter::default()
            };
            let found = dispatch.nearest(at, k, &filter).await;
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
            done(Nearby { contractors }, Follow::Nothing)
        }
        ClientMsg::Assign { job, contractor } => {
            let state = dispatch.assign(JobId(job), ContractorId(contractor)).await?;
            done(JobStateReply { job, state }, Follow::Nothing)
        }
        ClientMsg::Ping {} | ClientMsg::Gps { .. } | ClientMsg::Subscribe { .. } => {
            Err(refuse(ErrorCode::BadRequest, format!("{} is handled by the connection, not the city", msg.kind())))
        }
    }
}
