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
