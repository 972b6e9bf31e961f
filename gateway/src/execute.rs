//! The one executor of client commands: a message from a verified caller
//! carried out through the city's [`Dispatch`] (which checks the caller is a
//! party of the job it names) and answered with an [`Executed`] or a
//! [`Refusal`].
//!
//! `dispatch serve`'s sessions call it in process; an engine node calls it
//! for the commands gateways send over NATS. GPS and pings never come here:
//! they stay on the session's hot path.

use dispatch_actors::{
    Actor, ActorError, AuditAction, Dispatch, JobRequest, Presence, RequestOutcome, RequestRecord, RequestRole, RequestTag,
};
use dispatch_engine::notify::NotifyPreferences;
use dispatch_engine::{
    ContractorId, ContractorProfile, CustomerId, JobAction, JobId, Money, Party, Rating, TimeWindow, Timestamp, TradeExperience, Urgency,
};

use crate::auth::Role;
use crate::cities::Area;
use crate::city_event::CityEvent;
use crate::port::{Caller, Executed, Follow};
use crate::protocol::{
    AckResult, ChatAcked, ClientMsg, ErrorCode, JobProgress, JobStateReply, MAX_REQUEST_ID_CHARS, Nearby, NearbyContractor, NotifyReply,
    Posted, Rated, Registered, Resumed, StatusReply, UrgencyWire,
};
use crate::refusal::{Refusal, refuse};
use crate::session::asker;

/// Most contractors one `nearby` returns.
const MAX_NEARBY: usize = 100;

/// Longest chat message or job description, characters.
pub(crate) const MAX_CHAT_CHARS: usize = 2_000;

/// A processor's payment method id as a client may send it: 1 to 255 printable characters.
pub(crate) fn checked_payment_method(pm: &str) -> Result<(), Refusal> {
    if pm.is_empty() || pm.len() > 255 || pm.chars().any(char::is_control) {
        return Err(refuse(ErrorCode::BadRequest, "payment_method must be 1 to 255 printable characters"));
    }
    Ok(())
}

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

/// The request's tag, if the client gave it an id; a malformed id is refused.
fn request_tag(caller: Caller, msg: &ClientMsg) -> Result<Option<RequestTag>, Refusal> {
    let Some(id) = msg.request_id() else { return Ok(None) };
    let chars = id.chars().count();
    if chars == 0 || chars > MAX_REQUEST_ID_CHARS || id.chars().any(char::is_control) {
        return Err(refuse(ErrorCode::BadRequest, format!("request_id must be 1 to {MAX_REQUEST_ID_CHARS} printable characters")));
    }
    let role = match caller.role {
        Role::Customer => RequestRole::Customer,
        Role::Contractor => RequestRole::Contractor,
        Role::Dispatcher | Role::Admin => RequestRole::Dispatcher,
    };
    Ok(Some(RequestTag { role, sub: caller.sub, id: id.to_owned() }))
}

/// The first attempt's answer to a request retried under the same id; the
/// same id on a different request is a conflict.
fn replayed(msg: &ClientMsg, record: RequestRecord) -> Result<Executed, Refusal> {
    let job = record.job.0;
    let executed = match (msg, record.outcome) {
        (ClientMsg::PostJob { .. }, RequestOutcome::Posted { quote }) => done(Posted { job, quote }, Follow::Posted(job)),
        (ClientMsg::Accept { job: asked, .. }, RequestOutcome::Accepted { state }) if *asked == job => {
            done(JobStateReply { job, state }, Follow::Assigned(job))
        }
        (ClientMsg::Chat { job: asked, .. }, RequestOutcome::Chat) if *asked == job => {
            done(ChatAcked { job, seq: record.seq }, Follow::Nothing)
        }
        (ClientMsg::Rate { job: asked, .. }, RequestOutcome::Rated { contractor, rating }) if *asked == job => {
            done(Rated { contractor: contractor.0, rating: rating.average(), reviews: rating.reviews() }, Follow::Nothing)
        }
        _ => {
            return Err(refuse(
                ErrorCode::Conflict,
                format!("request_id {:?} was already used for another request (a {} of job {job})", record.tag.id, msg.kind()),
            ));
        }
    };
    metrics::counter!("dispatch_requests_replayed_total").increment(1);
    executed
}

/// Carries out `msg` for `caller` in the city of `area`. The caller's role
/// was already checked against the message (`session::policy`). A request
/// with a request id that was carried out before (here, or by the city's
/// earlier owner) is answered as it was then, and not carried out again.
pub(crate) async fn execute(area: &Area, dispatch: &Dispatch, caller: Caller, msg: ClientMsg) -> Result<Executed, Refusal> {
    // A dispatcher's action goes into the city's audit trail before it is carried out.
    let Some((actor, action, reason)) = audited(caller, &msg) else { return carry_out(area, dispatch, caller, msg).await };
    let position = dispatch.audit(actor, action, reason).await?;
    let result = carry_out(area, dispatch, caller, msg).await;
    if let Err(refusal) = &result {
        dispatch.audit_refused(actor, position, &refusal.message).await;
    }
    result
}

/// The audit entry of `msg`, if it is an action the trail records (a dispatcher's).
fn audited(caller: Caller, msg: &ClientMsg) -> Option<(Actor, AuditAction, Option<String>)> {
    if caller.role != Role::Dispatcher {
        return None;
    }
    let actor = Actor::Dispatcher(caller.sub);
    Some(match msg {
        ClientMsg::Assign { job, contractor } => {
            (actor, AuditAction::Assign { job: JobId(*job), contractor: ContractorId(*contractor) }, None)
        }
        ClientMsg::Cancel { job, reason } => (actor, AuditAction::Cancel { job: JobId(*job) }, reason.clone()),
        ClientMsg::Refund { job, amount } => (actor, AuditAction::Refund { job: JobId(*job), amount: Money(*amount) }, None),
        ClientMsg::ResolveDispute { job, refund } => {
            (actor, AuditAction::ResolveDispute { job: JobId(*job), refund: Money(*refund) }, None)
        }
        _ => return None,
    })
}

async fn carry_out(area: &Area, dispatch: &Dispatch, caller: Caller, msg: ClientMsg) -> Result<Executed, Refusal> {
    let tag = request_tag(caller, &msg)?;
    let _claim = tag.as_ref().map(|tag| dispatch.claim_request(tag)).transpose()?;
    if let Some(tag) = &tag
        && let Some(record) = dispatch.requested(tag).await?
    {
        if let RequestOutcome::Posted { .. } = record.outcome {
            // A post whose card declined stays refused, however often it is retried.
            dispatch.hold_refused(record.job).await?;
        }
        return replayed(&msg, record);
    }
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
        ClientMsg::Accept { job, .. } => {
            let state = dispatch.accept_tagged(JobId(job), ContractorId(me), tag).await?;
            done(JobStateReply { job, state }, Follow::Assigned(job))
        }
        ClientMsg::Decline { job } => {
            let state = dispatch.decline(JobId(job), ContractorId(me)).await?;
            done(JobStateReply { job, state }, Follow::Nothing)
        }
        ClientMsg::SetNotify { channels, quiet_hours } => {
            let party = if caller.role == Role::Contractor { Party::Contractor } else { Party::Customer };
            let preferences = NotifyPreferences { channels, quiet_hours };
            let stored = dispatch.set_notify_preferences(party, me, preferences).await?;
            done(NotifyReply { channels: stored.channels, quiet_hours: stored.quiet_hours }, Follow::Nothing)
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
        ClientMsg::PostJob { trade, lat, lng, urgency, description, budget, payment_method, .. } => {
            let location = point_in(area, lat, lng)?;
            let urgency = match urgency {
                UrgencyWire::Emergency => Urgency::Emergency,
                UrgencyWire::Today => Urgency::Today,
                UrgencyWire::Scheduled { start, end } => Urgency::Scheduled(TimeWindow::new(Timestamp(start), Timestamp(end))?),
            };
            if description.chars().count() > MAX_CHAT_CHARS {
                return Err(refuse(ErrorCode::BadRequest, format!("description longer than {MAX_CHAT_CHARS} characters")));
            }
            if let Some(pm) = &payment_method {
                checked_payment_method(pm)?;
            }
            let budget = budget.map(Money);
            let request = JobRequest { customer: CustomerId(me), trade, location, urgency, description, budget, payment_method };
            let (job, quote) = dispatch.post_job_tagged(request, tag).await?;
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
        ClientMsg::Rate { job, stars, .. } => {
            let rated = dispatch.rate_tagged(JobId(job), CustomerId(me), stars, tag).await?;
            done(Rated { contractor: rated.contractor.0, rating: rated.rating.average(), reviews: rated.rating.reviews() }, Follow::Nothing)
        }
        ClientMsg::Chat { job, text, .. } => {
            let (party, _) = dispatch.party_of(JobId(job), asker).await?;
            if text.trim().is_empty() || text.chars().count() > MAX_CHAT_CHARS {
                return Err(refuse(ErrorCode::BadRequest, format!("chat text must have 1 to {MAX_CHAT_CHARS} characters")));
            }
            let event = dispatch.chat_tagged(JobId(job), party, me, text, tag).await?;
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
        msg @ (ClientMsg::ConfirmPayment { .. }
        | ClientMsg::ProposeExtras { .. }
        | ClientMsg::ApproveExtras { .. }
        | ClientMsg::RejectExtras { .. }
        | ClientMsg::OpenDispute { .. }
        | ClientMsg::Refund { .. }
        | ClientMsg::ResolveDispute { .. }
        | ClientMsg::Payment { .. }
        | ClientMsg::Earnings {}
        | ClientMsg::SaveCard { .. }
        | ClientMsg::ConfirmCard {}
        | ClientMsg::Card {}
        | ClientMsg::PayoutAccount {}) => {
            let result = crate::money::execute(dispatch, asker, me, msg).await?;
            done(result, Follow::Nothing)
        }
        ClientMsg::Ping {} | ClientMsg::Gps { .. } | ClientMsg::Subscribe { .. } => {
            Err(refuse(ErrorCode::BadRequest, format!("{} is handled by the connection, not the city", msg.kind())))
        }
    }
}
