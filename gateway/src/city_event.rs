//! [`CityEvent`]: one thing that happened in a city, as the gateway routes
//! and sends it.
//!
//! It is made of the protocol's types only, so the same value comes from a
//! city in this process (converted from the actors' broadcast here) or from
//! an engine process over NATS (converted there by the same function). An
//! offer carries the job's terms, so a contractor's session builds its
//! `offer` frame without asking the city again.

use dispatch_actors::{Dispatch, DispatchEvent, EventKind};
use dispatch_engine::{GeoPoint, Trade};
use serde::{Deserialize, Serialize};

use crate::protocol::{Event, ServerMsg};

/// One job event of a city.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CityEvent {
    /// The job.
    pub job: u64,
    /// Its position in the job's log (0 when not logged, like positions).
    pub seq: u64,
    /// When it happened, ms since the Unix epoch.
    pub at: i64,
    /// What happened.
    pub event: Event,
    /// For an offer: what the contractor is offered.
    pub offer: Option<OfferTerms>,
}

/// What an offered contractor is shown of the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferTerms {
    /// The trade.
    pub trade: Trade,
    /// Where.
    pub site: GeoPoint,
    /// The customer's description.
    pub description: String,
    /// When it was posted, ms since the Unix epoch (match latency runs from here).
    pub posted_at: i64,
}

impl CityEvent {
    /// The actors' event on the wire, without offer terms (a replayed log entry).
    #[must_use]
    pub fn logged(event: &DispatchEvent) -> Self {
        Self { job: event.job.0, seq: event.seq, at: event.at.0, event: crate::wire::event(&event.kind), offer: None }
    }

    /// The actors' event on the wire; an offer is completed with the job's
    /// terms (`None` when the job is gone by now: the offer is moot).
    pub async fn from_city(dispatch: &Dispatch, event: &DispatchEvent) -> Option<Self> {
        let mut out = Self::logged(event);
        if matches!(event.kind, EventKind::Offered { .. }) {
            let snap = dispatch.job(event.job).await.ok()?;
            out.offer = Some(OfferTerms {
                trade: snap.job.trade,
                site: snap.job.location,
                description: snap.job.description,
                posted_at: snap.job.posted_at.0,
            });
        }
        Some(out)
    }

    /// The `event` frame apps receive.
    #[must_use]
    pub fn frame(&self) -> ServerMsg {
        ServerMsg::Event { job: self.job, seq: self.seq, at: self.at, event: self.event.clone() }
    }

    /// The contractor the event names, if any.
    #[must_use]
    pub const fn contractor(&self) -> Option<u64> {
        match &self.event {
            Event::Offered { contractor, .. }
            | Event::Declined { contractor }
            | Event::OfferExpired { contractor }
            | Event::Accepted { contractor }
            | Event::EnRoute { contractor }
            | Event::Arriving { contractor, .. }
            | Event::OnSite { contractor }
            | Event::Completed { contractor }
            | Event::Withdrawn { contractor }
            | Event::Rated { contractor, .. }
            | Event::ContractorPosition { contractor, .. } => Some(*contractor),
            Event::Posted { .. } | Event::Cancelled { .. } | Event::Expired { .. } | Event::Chat { .. } | Event::Payment(_) => None,
        }
    }

    /// Whether the job is finished with this event (completed, cancelled or expired).
    #[must_use]
    pub const fn finishes_job(&self) -> bool {
        matches!(self.event, Event::Completed { .. } | Event::Cancelled { .. } | Event::Expired { .. })
    }
}

#[cfg(test)]
mod tests {
    use dispatch_engine::{ContractorId, CustomerId, JobId, Party, Timestamp};

    use super::*;

    /// The routing facts read off the wire's event agree with the actors' own.
    #[test]
    fn the_named_contractor_and_finishing_agree_with_the_actors_event() {
        let quote = dispatch_engine::pricing::PriceQuote {
            base: dispatch_engine::Money(1),
            surge: 1.0,
            urgency: 1.0,
            total: dispatch_engine::Money(1),
        };
        let c = ContractorId(7);
        let kinds = [
            EventKind::Posted { quote, customer: CustomerId(1) },
            EventKind::Offered { contractor: c, expires_at: Timestamp(9), eta_secs: 1.0 },
            EventKind::Declined { contractor: c },
            EventKind::OfferExpired { contractor: c },
            EventKind::Accepted { contractor: c },
            EventKind::EnRoute { contractor: c },
            EventKind::Arriving { contractor: c, distance_m: 10.0 },
            EventKind::OnSite { contractor: c },
            EventKind::Completed { contractor: c },
            EventKind::Withdrawn { contractor: c },
            EventKind::Cancelled { by: Party::Customer, reason: "x".into() },
            EventKind::Expired { reason: "x".into() },
            EventKind::Rated { contractor: c, stars: 5.0 },
            EventKind::Chat { party: Party::Customer, sender: 1, text: "hi".into() },
            EventKind::ContractorPosition { contractor: c, point: GeoPoint::new(41.0, -93.0).unwrap(), eta_secs: 3.0 },
        ];
        for kind in kinds {
            let actors = DispatchEvent { job: JobId(3), seq: 2, at: Timestamp(5), kind };
            let wire = CityEvent::logged(&actors);
            assert_eq!(wire.contractor(), actors.kind.contractor().map(|c| c.0), "{:?}", actors.kind);
            assert_eq!(wire.finishes_job(), actors.kind.finishes_job(), "{:?}", actors.kind);
            assert_eq!((wire.job, wire.seq, wire.at), (3, 2, 5));
        }
    }
}
