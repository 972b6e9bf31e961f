//! What an owner serves on its city's subjects for its epoch: commands
//! through the one executor, map requests, GPS batches, the processor's
//! webhooks, operators' reads, `whois`, its
//! announcements, and the city's events in batches. [`EngineNode`](super::EngineNode)
//! starts these tasks when it takes a city and aborts them when it lets go.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, Message, Subscriber};
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use dispatch_actors::{ContractorLink, Dispatch, GpsFix};
use dispatch_engine::{ContractorId, GeoPoint, Timestamp};

use super::wire::{
    self, AdminReply, AdminRequest, CommandReply, CommandRequest, EventBatch, GpsBatch, MapReply, MapRequest, Owner, ProcessorReply,
    ProcessorRequest,
};
use crate::cities::Area;
use crate::city_event::CityEvent;

/// How often an owner announces itself.
const ANNOUNCE: Duration = Duration::from_secs(1);

/// Most events in one batch on the city's event subject.
const EVENT_BATCH: usize = 256;

/// Answers `request` on its reply subject, if it has one.
async fn reply(nats: &Client, request: &Message, payload: bytes::Bytes) {
    if let Some(to) = &request.reply {
        let _ = nats.publish(to.clone(), payload).await;
    }
}

pub(super) async fn serve_commands(nats: Client, mut commands: Subscriber, area: Arc<Area>, dispatch: Dispatch, in_flight: Arc<Semaphore>) {
    while let Some(msg) = commands.next().await {
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else { break };
        let (nats, area, dispatch) = (nats.clone(), Arc::clone(&area), dispatch.clone());
        tokio::spawn(async move {
            let answer: CommandReply = match wire::decode::<CommandRequest>(&msg.payload) {
                Ok(request) => crate::execute::execute(&area, &dispatch, request.caller, request.msg).await,
                Err(e) => Err(crate::refusal::refuse(crate::protocol::ErrorCode::BadRequest, e.to_string())),
            };
            reply(&nats, &msg, wire::encode(&answer)).await;
            drop(permit);
        });
    }
}

pub(super) async fn serve_maps(nats: Client, mut maps: Subscriber, dispatch: Dispatch) {
    while let Some(msg) = maps.next().await {
        let answer: MapReply = match wire::decode::<MapRequest>(&msg.payload) {
            Ok(request) => Ok(crate::port::map_update(&dispatch, request.version, request.viewport)),
            Err(e) => Err(crate::refusal::refuse(crate::protocol::ErrorCode::BadRequest, e.to_string())),
        };
        reply(&nats, &msg, wire::encode(&answer)).await;
    }
}

/// Applies the card processor's webhooks that gateways verified and forwarded.
pub(super) async fn serve_processor(nats: Client, notices: Subscriber, dispatch: Dispatch) {
    serve_requests(nats, notices, dispatch, |dispatch, notice: ProcessorRequest| async move {
        let answer: ProcessorReply = dispatch.processor_notice(&notice).await.map(|job| job.map(|j| j.0)).map_err(Into::into);
        answer
    })
    .await;
}

/// Answers operators' reads that gateways' admin APIs forward.
pub(super) async fn serve_admin(nats: Client, reads: Subscriber, dispatch: Dispatch) {
    serve_requests(nats, reads, dispatch, |dispatch, query: AdminRequest| async move {
        let answer: AdminReply = crate::admin::query::answer(&dispatch, query).await;
        answer
    })
    .await;
}

/// Answers each request on `requests` with `answer`, each in a task of its
/// own; a payload that does not decode is answered `bad_request`.
async fn serve_requests<Q, A, F, Fut>(nats: Client, mut requests: Subscriber, dispatch: Dispatch, answer: F)
where
    Q: serde::de::DeserializeOwned + Send + 'static,
    A: serde::Serialize + Send + 'static,
    F: Fn(Dispatch, Q) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<A, crate::refusal::Refusal>> + Send,
{
    while let Some(msg) = requests.next().await {
        let (nats, dispatch, answer) = (nats.clone(), dispatch.clone(), answer.clone());
        tokio::spawn(async move {
            let reply_with: Result<A, crate::refusal::Refusal> = match wire::decode::<Q>(&msg.payload) {
                Ok(request) => answer(dispatch, request).await,
                Err(e) => Err(crate::refusal::refuse(crate::protocol::ErrorCode::BadRequest, e.to_string())),
            };
            reply(&nats, &msg, wire::encode(&reply_with)).await;
        });
    }
}

/// Applies GPS batches: each fix through the contractor's link (newest wins, as in one process).
/// Gateways' notes of their connections, applied to the city's presence.
pub(super) async fn take_presence(mut notes: Subscriber, dispatch: Dispatch) {
    while let Some(msg) = notes.next().await {
        let Ok(note) = wire::decode::<wire::PresenceNote>(&msg.payload) else {
            metrics::counter!("dispatch_cluster_bad_payloads_total").increment(1);
            continue;
        };
        let party = if note.contractor { dispatch_engine::Party::Contractor } else { dispatch_engine::Party::Customer };
        dispatch.note_presence(party, note.id, note.connection, note.holds_ms.map(std::time::Duration::from_millis));
    }
}

pub(super) async fn take_gps(mut batches: Subscriber, dispatch: Dispatch) {
    let mut links: HashMap<u64, ContractorLink> = HashMap::new();
    while let Some(msg) = batches.next().await {
        let Ok(batch) = wire::decode::<GpsBatch>(&msg.payload) else {
            metrics::counter!("dispatch_cluster_bad_payloads_total").increment(1);
            continue;
        };
        for f in batch.fixes {
            let Ok(point) = GeoPoint::new(f.lat, f.lng) else { continue };
            let Ok(fix) = GpsFix::new(point, f.heading, f.speed, f.accuracy, Timestamp(f.ts)) else { continue };
            let link = match links.get(&f.contractor) {
                Some(link) => link,
                None => match dispatch.link(ContractorId(f.contractor)) {
                    Ok(link) => links.entry(f.contractor).or_insert(link),
                    Err(_) => continue,
                },
            };
            if link.gps(fix).is_err() {
                // Offline by now: a fresh link next time they stream.
                links.remove(&f.contractor);
            }
        }
    }
}

pub(super) async fn answer_whois(nats: Client, mut asks: Subscriber, me: Owner) {
    while let Some(msg) = asks.next().await {
        reply(&nats, &msg, wire::encode(&me)).await;
    }
}

pub(super) async fn announce(nats: Client, subject: String, me: Owner) {
    let mut tick = tokio::time::interval(ANNOUNCE);
    loop {
        tick.tick().await;
        let _ = nats.publish(subject.clone(), wire::encode(&me)).await;
    }
}

/// Publishes the city's events in batches: whatever the broadcast holds, up to [`EVENT_BATCH`].
pub(super) async fn publish_events(nats: Client, subject: String, epoch: u64, dispatch: Dispatch) {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    let mut stream = dispatch.subscribe();
    let mut missed = 0;
    loop {
        let first = match stream.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(n)) => {
                missed += n;
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        let mut events = Vec::new();
        let mut next = Some(first);
        while let Some(event) = next.take() {
            if let Some(event) = CityEvent::from_city(&dispatch, &event).await {
                events.push(event);
            }
            if events.len() >= EVENT_BATCH {
                break;
            }
            next = match stream.try_recv() {
                Ok(event) => Some(event),
                Err(TryRecvError::Lagged(n)) => {
                    missed += n;
                    None
                }
                Err(_) => None,
            };
        }
        if !events.is_empty() || missed > 0 {
            let batch = EventBatch { epoch, missed: std::mem::take(&mut missed), events };
            let _ = nats.publish(subject.clone(), wire::encode(&batch)).await;
        }
    }
}
