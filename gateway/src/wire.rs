//! The edge: the actors' broadcast events and map turned into the wire's
//! types ([`dispatch_protocol`]), so neither side's renames reach the other.

use dispatch_actors::EventKind;
use dispatch_actors::map::{MapContractor as LiveContractor, MapJob as LiveJob, MatchStats as LiveStats};
use dispatch_protocol::{Event, MapContractor, MapJob, MatchStats};

/// A broadcast event as apps receive it.
#[must_use]
pub(crate) fn event(kind: &EventKind) -> Event {
    match kind.clone() {
        EventKind::Posted { quote, customer } => Event::Posted { quote, customer: customer.0 },
        EventKind::Offered { contractor, expires_at, eta_secs } => {
            Event::Offered { contractor: contractor.0, expires_at: expires_at.0, eta_secs }
        }
        EventKind::Declined { contractor } => Event::Declined { contractor: contractor.0 },
        EventKind::OfferExpired { contractor } => Event::OfferExpired { contractor: contractor.0 },
        EventKind::Accepted { contractor } => Event::Accepted { contractor: contractor.0 },
        EventKind::EnRoute { contractor } => Event::EnRoute { contractor: contractor.0 },
        EventKind::Arriving { contractor, distance_m } => Event::Arriving { contractor: contractor.0, distance_m },
        EventKind::OnSite { contractor } => Event::OnSite { contractor: contractor.0 },
        EventKind::Completed { contractor } => Event::Completed { contractor: contractor.0 },
        EventKind::Withdrawn { contractor } => Event::Withdrawn { contractor: contractor.0 },
        EventKind::Cancelled { by, reason } => Event::Cancelled { by, reason },
        EventKind::Expired { reason } => Event::Expired { reason },
        EventKind::Rated { contractor, stars } => Event::Rated { contractor: contractor.0, stars },
        EventKind::Chat { party, sender, text } => Event::Chat { party, sender, text },
        EventKind::Payment(notice) => Event::Payment(notice),
        EventKind::ContractorPosition { contractor, point, eta_secs } => {
            Event::ContractorPosition { contractor: contractor.0, point, eta_secs }
        }
    }
}

/// Map contractors on the wire.
#[must_use]
pub(crate) fn contractors(live: Vec<LiveContractor>) -> Vec<MapContractor> {
    live.into_iter().map(|c| MapContractor { id: c.id.0, point: c.point, status: c.status, version: c.version }).collect()
}

/// Map jobs on the wire.
#[must_use]
pub(crate) fn jobs(live: Vec<LiveJob>) -> Vec<MapJob> {
    live.into_iter()
        .map(|j| MapJob {
            id: j.id.0,
            point: j.point,
            state: j.state,
            contractor: j.contractor.map(|c| c.0),
            version: j.version,
            payment: j.payment,
        })
        .collect()
}

/// The matching figures on the wire.
#[must_use]
pub(crate) fn stats(live: LiveStats) -> MatchStats {
    MatchStats {
        matched_last_minute: live.matched_last_minute,
        matched_total: live.matched_total,
        median_match_secs: live.median_match_secs,
    }
}

#[cfg(test)]
mod tests {
    use dispatch_engine::{ContractorId, GeoPoint, Party};

    use super::*;

    #[test]
    fn events_keep_their_wire_names() {
        let json = |k: &EventKind| serde_json::to_string(&event(k)).unwrap();
        assert_eq!(json(&EventKind::Accepted { contractor: ContractorId(7) }), r#"{"accepted":{"contractor":7}}"#);
        assert_eq!(json(&EventKind::OfferExpired { contractor: ContractorId(7) }), r#"{"offer_expired":{"contractor":7}}"#);
        let chat = EventKind::Chat { party: Party::Customer, sender: 3, text: "hi".into() };
        assert_eq!(json(&chat), r#"{"chat":{"party":"customer","sender":3,"text":"hi"}}"#);
        let at = GeoPoint::new(41.5, -93.6).unwrap();
        let position = EventKind::ContractorPosition { contractor: ContractorId(7), point: at, eta_secs: 60.0 };
        assert_eq!(json(&position), r#"{"contractor_position":{"contractor":7,"point":{"lat":41.5,"lng":-93.6},"eta_secs":60.0}}"#);
    }
}
