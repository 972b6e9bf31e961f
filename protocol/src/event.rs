//! [`Event`]: what happened to a job, as apps receive it in `event` frames.
//!
//! The wire's own type: the engine's broadcast and its stored log records
//! are converted to it at the edge, so renaming either changes nothing here.

use dispatch_engine::pricing::PriceQuote;
use dispatch_engine::{GeoPoint, Party};
use serde::{Deserialize, Serialize};

/// One thing that happened to a job (`{"accepted": {"contractor": 7}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The job was posted with this quote.
    Posted {
        /// The price quoted.
        quote: PriceQuote,
        /// Who posted it.
        customer: u64,
    },
    /// Offered to a contractor until `expires_at`.
    Offered {
        /// Who.
        contractor: u64,
        /// Until when, ms since the Unix epoch.
        expires_at: i64,
        /// Estimated drive time, seconds.
        eta_secs: f64,
    },
    /// The contractor declined.
    Declined {
        /// Who.
        contractor: u64,
    },
    /// The offer lapsed unanswered.
    OfferExpired {
        /// Who.
        contractor: u64,
    },
    /// The contractor accepted.
    Accepted {
        /// Who.
        contractor: u64,
    },
    /// The contractor set off.
    EnRoute {
        /// Who.
        contractor: u64,
    },
    /// The contractor came within the arriving distance of the site.
    Arriving {
        /// Who.
        contractor: u64,
        /// Metres to the site.
        distance_m: f64,
    },
    /// The contractor reached the site.
    OnSite {
        /// Who.
        contractor: u64,
    },
    /// The work is done.
    Completed {
        /// Who did it.
        contractor: u64,
    },
    /// The contractor dropped out or was taken off; the job is offered again.
    Withdrawn {
        /// Who.
        contractor: u64,
    },
    /// Called off.
    Cancelled {
        /// By whom.
        by: Party,
        /// Why.
        reason: String,
    },
    /// Nobody took it.
    Expired {
        /// Why.
        reason: String,
    },
    /// The customer rated the completed job.
    Rated {
        /// Who was rated.
        contractor: u64,
        /// Stars, 0–5.
        stars: f64,
    },
    /// A chat message in the job's conversation.
    Chat {
        /// The sender's side.
        party: Party,
        /// The sender's id.
        sender: u64,
        /// What they wrote.
        text: String,
    },
    /// The job's money moved (or is moving).
    Payment(dispatch_engine::payment::PaymentNotice),
    /// The assigned contractor's position (not logged; `seq` 0).
    ContractorPosition {
        /// Who.
        contractor: u64,
        /// Where.
        point: GeoPoint,
        /// Seconds to the site.
        eta_secs: f64,
    },
}

impl Event {
    /// Every event's name, as [`Event::name`] gives it (webhook filters are checked against it).
    pub const NAMES: [&'static str; 16] = [
        "posted",
        "offered",
        "declined",
        "offer_expired",
        "accepted",
        "en_route",
        "arriving",
        "on_site",
        "completed",
        "withdrawn",
        "cancelled",
        "expired",
        "rated",
        "chat",
        "payment",
        "contractor_position",
    ];

    /// The event's name: its JSON tag (`accepted` for `{"accepted": {…}}`).
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Event::Posted { .. } => "posted",
            Event::Offered { .. } => "offered",
            Event::Declined { .. } => "declined",
            Event::OfferExpired { .. } => "offer_expired",
            Event::Accepted { .. } => "accepted",
            Event::EnRoute { .. } => "en_route",
            Event::Arriving { .. } => "arriving",
            Event::OnSite { .. } => "on_site",
            Event::Completed { .. } => "completed",
            Event::Withdrawn { .. } => "withdrawn",
            Event::Cancelled { .. } => "cancelled",
            Event::Expired { .. } => "expired",
            Event::Rated { .. } => "rated",
            Event::Chat { .. } => "chat",
            Event::Payment(_) => "payment",
            Event::ContractorPosition { .. } => "contractor_position",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_events_name_is_its_json_tag_and_listed() {
        let point = GeoPoint::new(41.0, -93.0).unwrap_or_else(|e| panic!("{e}"));
        let events = [
            Event::Posted {
                quote: PriceQuote { base: dispatch_engine::Money(1), surge: 1.0, urgency: 1.0, total: dispatch_engine::Money(1) },
                customer: 1,
            },
            Event::Offered { contractor: 1, expires_at: 2, eta_secs: 3.0 },
            Event::Declined { contractor: 1 },
            Event::OfferExpired { contractor: 1 },
            Event::Accepted { contractor: 1 },
            Event::EnRoute { contractor: 1 },
            Event::Arriving { contractor: 1, distance_m: 2.0 },
            Event::OnSite { contractor: 1 },
            Event::Completed { contractor: 1 },
            Event::Withdrawn { contractor: 1 },
            Event::Cancelled { by: Party::Customer, reason: "r".into() },
            Event::Expired { reason: "r".into() },
            Event::Rated { contractor: 1, stars: 4.0 },
            Event::Chat { party: Party::Customer, sender: 1, text: "t".into() },
            Event::Payment(dispatch_engine::payment::PaymentNotice::Voided),
            Event::ContractorPosition { contractor: 1, point, eta_secs: 1.0 },
        ];
        for (event, listed) in events.iter().zip(Event::NAMES) {
            let json = serde_json::to_value(event).unwrap_or_else(|e| panic!("{e}"));
            let tag = json.as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_default();
            assert_eq!(event.name(), tag);
            assert_eq!(event.name(), listed);
        }
        assert_eq!(events.len(), Event::NAMES.len());
    }
}
