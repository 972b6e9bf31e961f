//! [`RemoteCity`]: a city as a gateway reaches it, through its owner over NATS.
//!
//! The gateway keeps no city state: it learns the owner's epoch from the
//! owner's announcements (or asks `whois`), sends commands and map requests
//! to that epoch's subjects, gathers GPS per city for a few milliseconds and
//! sends it as one batch, and feeds the city's events to its router. A
//! request the owner cannot answer comes back as `unavailable`, retryable,
//! within the request timeout: "no responders" (nobody holds the epoch's
//! subject: the owner is gone) and a timeout (it holds it but did not answer)
//! are told apart in the message and in `dispatch_cluster_unavailable_total`.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_nats::{Client, Request, RequestErrorKind};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{Notify, watch};

use dispatch_actors::{Clock, GpsFix};
use dispatch_engine::ContractorId;

use super::wire::{self, AdminRequest, CitySubjects, CommandRequest, EventBatch, Fix, GpsBatch, MapRequest, Owner, ProcessorRequest};
use crate::port::{Caller, Executed, MapUpdate};
use crate::protocol::{ClientMsg, ErrorCode};
use crate::refusal::{Refusal, refuse};
use crate::router::Router;
use serde::de::DeserializeOwned;

/// How long fixes gather before they go to the owner as one batch.
pub(crate) const GPS_BATCH_WINDOW: Duration = Duration::from_millis(5);

/// Most fixes in one NATS message (about 50 bytes each, well under the server's 1 MiB limit).
const GPS_BATCH_MAX: usize = 8_192;

/// How long a gateway waits for an owner's `whois` answer.
const WHOIS_TIMEOUT: Duration = Duration::from_millis(500);

/// What the gateway knows of a city's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Known {
    /// The highest epoch heard of (announcements of lower ones are stale).
    pub(crate) epoch: u64,
    /// Its node.
    pub(crate) node: String,
    /// Whether a request found nobody on the epoch's subjects since.
    pub(crate) gone: bool,
}

/// A city served by another process.
pub struct RemoteCity {
    name: String,
    subjects: CitySubjects,
    nats: Client,
    router: Arc<Router>,
    /// The owner known now; sessions watch it to resume after a move.
    owner: watch::Sender<Known>,
    /// Fixes waiting for the next batch.
    gps: Mutex<Vec<Fix>>,
    gps_ready: Arc<Notify>,
    clock: Clock,
    timeout: Duration,
}

impl RemoteCity {
    /// Starts following `city`: owner announcements, its events into `router`,
    /// and the GPS batcher; then asks who owns it.
    pub(crate) async fn start(nats: Client, city: &str, router: Arc<Router>, timeout: Duration) -> anyhow::Result<Arc<RemoteCity>> {
        let subjects = CitySubjects::new(city);
        let announcements = nats.subscribe(subjects.owner()).await?;
        let events = nats.subscribe(subjects.events()).await?;
        let (owner, _) = watch::channel(Known { epoch: 0, node: String::new(), gone: true });
        let remote = Arc::new(RemoteCity {
            name: city.to_owned(),
            subjects,
            nats,
            router,
            owner,
            gps: Mutex::new(Vec::new()),
            gps_ready: Arc::new(Notify::new()),
            clock: Clock::system(),
            timeout,
        });
        read_into(Arc::downgrade(&remote), announcements, "owner announcement", RemoteCity::learn);
        read_into(Arc::downgrade(&remote), events, "event batch", RemoteCity::deliver);
        tokio::spawn(gps_batcher(Arc::downgrade(&remote), Arc::clone(&remote.gps_ready)));
        remote.ask_owner().await;
        Ok(remote)
    }

    /// The clock sessions stamp and measure with.
    pub(crate) fn clock(&self) -> Clock {
        self.clock
    }

    /// The owner known now: sessions watch it and resume when it moves.
    pub(crate) fn watch_owner(&self) -> watch::Receiver<Known> {
        self.owner.subscribe()
    }

    /// Takes an announcement: a newer owner, or the known one's release.
    fn learn(&self, owner: Owner) {
        self.owner.send_if_modified(|known| {
            let moved = update(known, owner);
            if moved {
                tracing::info!(city = %self.name, epoch = known.epoch, node = %known.node, "the city has a new owner");
            }
            moved
        });
    }

    /// The owner of `epoch` answered nobody: ask again before the next request.
    fn forget(&self, epoch: u64) {
        self.owner.send_if_modified(|known| {
            if known.epoch == epoch {
                known.gone = true;
            }
            false
        });
    }

    /// Asks the city's owner who it is (anyone holding the lease answers).
    async fn ask_owner(&self) {
        let request = Request::new().timeout(Some(WHOIS_TIMEOUT));
        if let Ok(reply) = self.nats.send_request(self.subjects.whois(), request).await
            && let Ok(owner) = wire::decode::<Owner>(&reply.payload)
        {
            self.learn(owner);
        }
    }

    /// The epoch to address now, or `unavailable` while the city has no known owner.
    async fn epoch(&self) -> Result<u64, Refusal> {
        if self.owner.borrow().gone {
            self.ask_owner().await;
        }
        let known = self.owner.borrow().clone();
        if known.gone {
            unavailable("no_owner");
            return Err(refuse(ErrorCode::Unavailable, format!("{} has no owner right now (it is moving); retry shortly", self.name)));
        }
        Ok(known.epoch)
    }

    /// One request to the owner of `epoch`, within the request timeout.
    async fn request(&self, subject: String, payload: Bytes, epoch: u64) -> Result<Bytes, Refusal> {
        let request = Request::new().payload(payload).timeout(Some(self.timeout));
        match self.nats.send_request(subject, request).await {
            Ok(reply) => Ok(reply.payload),
            Err(e) => Err(match e.kind() {
                RequestErrorKind::NoResponders => {
                    self.forget(epoch);
                    unavailable("no_responders");
                    refuse(
                        ErrorCode::Unavailable,
                        format!("{}: its owner (epoch {epoch}) is gone (no responders); retry shortly", self.name),
                    )
                }
                RequestErrorKind::TimedOut => {
                    unavailable("timeout");
                    refuse(
                        ErrorCode::Unavailable,
                        format!("{}: its owner (epoch {epoch}) did not answer within {} ms; retry", self.name, self.timeout.as_millis()),
                    )
                }
                _ => {
                    unavailable("nats");
                    refuse(ErrorCode::Unavailable, format!("{}: NATS: {e}; retry", self.name))
                }
            }),
        }
    }

    /// Carries out a command on the city's owner.
    pub(crate) async fn execute(&self, caller: Caller, msg: ClientMsg) -> Result<Executed, Refusal> {
        self.ask(CitySubjects::commands, wire::encode(&CommandRequest { caller, msg })).await
    }

    /// One request to the owner known now, on `subject` of its epoch: its
    /// answer (`T`, or its refusal), or `unavailable`.
    async fn ask<T: DeserializeOwned>(&self, subject: fn(&CitySubjects, u64) -> String, payload: Bytes) -> Result<T, Refusal> {
        let epoch = self.epoch().await?;
        let reply = self.request(subject(&self.subjects, epoch), payload, epoch).await?;
        wire::decode::<Result<T, Refusal>>(&reply).map_err(|e| refuse(ErrorCode::Unavailable, e.to_string()))?
    }

    /// The owner's live map since `version`.
    pub(crate) async fn map(&self, version: u64, viewport: Option<[f64; 4]>) -> Result<MapUpdate, Refusal> {
        self.ask(CitySubjects::map, wire::encode(&MapRequest { version, viewport })).await
    }

    /// Hands a verified processor webhook to the city's owner: the job it concerned, if the city's.
    pub(crate) async fn processor_notice(&self, notice: &ProcessorRequest) -> Result<Option<u64>, Refusal> {
        self.ask(CitySubjects::processor, wire::encode(notice)).await
    }

    /// An operator's read, answered by the city's owner.
    pub(crate) async fn admin(&self, query: AdminRequest) -> Result<crate::admin::query::AdminAnswer, Refusal> {
        self.ask(CitySubjects::admin, wire::encode(&query)).await
    }

    /// Tells whichever owner the city has of a connection's presence (fire and forget: the next keepalive repeats it).
    pub(crate) async fn note_presence(&self, note: &wire::PresenceNote) {
        if self.nats.publish(self.subjects.presence(), wire::encode(note)).await.is_err() {
            metrics::counter!("dispatch_cluster_presence_lost_total").increment(1);
        }
    }

    /// Queues a fix for the next batch.
    pub(crate) fn gps(&self, contractor: ContractorId, fix: GpsFix) {
        let fix = Fix {
            contractor: contractor.0,
            lat: fix.point.lat(),
            lng: fix.point.lng(),
            heading: fix.heading,
            speed: fix.speed_mps,
            accuracy: fix.accuracy_m,
            ts: fix.ts.0,
        };
        let mut gps = self.gps.lock().unwrap_or_else(PoisonError::into_inner);
        gps.push(fix);
        if gps.len() == 1 {
            self.gps_ready.notify_one();
        }
    }

    /// Sends the fixes waiting now (the batcher, at the end of each window; a ping, at once).
    pub(crate) async fn flush_gps(&self) {
        let fixes = std::mem::take(&mut *self.gps.lock().unwrap_or_else(PoisonError::into_inner));
        if fixes.is_empty() {
            return;
        }
        let known = self.owner.borrow().clone();
        if known.gone {
            // Fixes are superseded by the next ones anyway: while the city moves they are shed.
            metrics::counter!("dispatch_gps_shed_total", "reason" => "no_owner").increment(fixes.len() as u64);
            return;
        }
        for chunk in fixes.chunks(GPS_BATCH_MAX) {
            let batch = wire::encode(&GpsBatch { fixes: chunk.to_vec() });
            if self.nats.publish(self.subjects.gps(known.epoch), batch).await.is_err() {
                metrics::counter!("dispatch_gps_shed_total", "reason" => "nats").increment(chunk.len() as u64);
            }
        }
    }

    /// Routes a batch of the city's events, unless it comes from an owner older than the one known.
    fn deliver(&self, batch: EventBatch) {
        if batch.epoch < self.owner.borrow().epoch {
            metrics::counter!("dispatch_cluster_stale_events_total").increment(batch.events.len() as u64);
            return;
        }
        if batch.missed > 0 {
            self.router.all_missed(batch.missed);
        }
        for event in batch.events {
            self.router.route(event);
        }
    }
}

/// Takes `owner` into what is known of the city's owner; `true` when the
/// city moved to a new owner (sessions then resume). An announcement with no
/// node is a release: the owner of that epoch is gone. One older than the
/// epoch known is stale and changes nothing.
fn update(known: &mut Known, owner: Owner) -> bool {
    if owner.node.is_empty() {
        if owner.epoch >= known.epoch {
            known.epoch = owner.epoch;
            known.gone = true;
        }
        return false;
    }
    if owner.epoch > known.epoch || (owner.epoch == known.epoch && known.gone) {
        let moved = owner.epoch != known.epoch;
        *known = Known { epoch: owner.epoch, node: owner.node, gone: false };
        moved
    } else {
        false
    }
}

/// Hands each payload of `subscription`, decoded as `T`, to `handle` while the city lives.
fn read_into<T: serde::de::DeserializeOwned + Send + 'static>(
    city: Weak<RemoteCity>,
    mut subscription: async_nats::Subscriber,
    what: &'static str,
    handle: fn(&RemoteCity, T),
) {
    tokio::spawn(async move {
        while let Some(msg) = subscription.next().await {
            let Some(city) = city.upgrade() else { break };
            match wire::decode::<T>(&msg.payload) {
                Ok(value) => handle(&city, value),
                Err(e) => tracing::warn!(%e, "an unreadable {what}"),
            }
        }
    });
}

/// Counts a request that came back `unavailable`, by why.
fn unavailable(reason: &'static str) {
    metrics::counter!("dispatch_cluster_unavailable_total", "reason" => reason).increment(1);
}

/// Sends each city's fixes as one batch per window.
async fn gps_batcher(city: Weak<RemoteCity>, ready: Arc<Notify>) {
    loop {
        ready.notified().await;
        tokio::time::sleep(GPS_BATCH_WINDOW).await;
        let Some(city) = city.upgrade() else { break };
        city.flush_gps().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(epoch: u64, node: &str) -> Owner {
        Owner { city: "omaha".into(), epoch, node: node.into() }
    }

    #[test]
    fn newer_owners_move_the_city_and_releases_and_stale_ones_do_not() {
        let mut known = Known { epoch: 0, node: String::new(), gone: true };
        assert!(update(&mut known, owner(1, "engine-a")), "the first owner");
        assert!(!known.gone);
        assert!(!update(&mut known, owner(1, "engine-a")), "the same owner again");
        // Released: gone.
        assert!(!update(&mut known, owner(1, "")));
        assert!(known.gone);
        assert!(!update(&mut known, owner(0, "engine-z")), "an older epoch is stale");
        assert!(known.gone && known.epoch == 1);
        assert!(update(&mut known, owner(2, "engine-b")), "the next owner");
        assert_eq!((known.epoch, known.node.as_str(), known.gone), (2, "engine-b", false));
        // A whois answer of the known epoch after "no responders" revives it, without a move.
        known.gone = true;
        assert!(!update(&mut known, owner(2, "engine-b")));
        assert!(!known.gone);
    }
}
