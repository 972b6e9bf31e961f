//! Outbound webhooks as a receiver sees them: the request's JSON body
//! ([`Delivery`]) and its headers.
//!
//! Each request is a `POST` of one event with
//! - `Dispatch-Event-Id`: the event's id, `<city>.<job>.<seq>`, the same on
//!   every attempt and after a restart: a receiver de-duplicates by it;
//! - `Dispatch-Signature`: `t=<unix seconds>,v1=<hex>[,v1=<hex>]`, HMAC-SHA256
//!   of `<t>.<body>` under the endpoint's secret (one `v1` per secret while
//!   one is rotated), checked with [`crate::signature::verify`].
//!
//! `docs/operator.md` describes delivery (order, retries, dead letters).

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// The header with the event's id.
pub const EVENT_ID_HEADER: &str = "Dispatch-Event-Id";
/// The header with the signature.
pub const SIGNATURE_HEADER: &str = "Dispatch-Signature";

/// One event, as an endpoint receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The event's id ([`event_id`]): de-duplicate by it.
    pub id: String,
    /// The city.
    pub city: String,
    /// The job.
    pub job: u64,
    /// The event's position in the job's log: 1, 2, 3, … Events of one job
    /// arrive in this order.
    pub seq: u64,
    /// When it happened, ms since the Unix epoch.
    pub at: i64,
    /// The event's name ([`Event::name`]), what endpoint filters select by.
    pub kind: String,
    /// What happened, as apps receive it in `event` frames.
    pub event: Event,
    /// Who this concerns and is not connected now, to be told another way
    /// (an offer to its contractor, an acceptance or arrival to the customer,
    /// a chat message to its other parties). Absent when there is nobody.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<Notify>,
}

/// Someone to tell of the event, and how they want to be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    /// `customer` or `contractor`.
    pub role: String,
    /// Their id.
    pub user: u64,
    /// What to tell them: the event's name (`offered`, `accepted`, `arriving`, `chat`).
    pub what: String,
    /// Until when it matters, ms since the Unix epoch (an offer's expiry).
    pub until: Option<i64>,
    /// The channels they chose (push only, if they never chose).
    pub channels: Vec<dispatch_engine::notify::Channel>,
    /// Their quiet hours, if any.
    pub quiet_hours: Option<dispatch_engine::notify::QuietHours>,
    /// Whether the event happened in their quiet hours.
    pub quiet_now: bool,
}

impl Delivery {
    /// The delivery of `event`, the `seq`th of `job` in `city`.
    #[must_use]
    pub fn new(city: &str, job: u64, seq: u64, at: i64, event: Event) -> Self {
        Self { id: event_id(city, job, seq), city: city.to_owned(), job, seq, at, kind: event.name().to_owned(), event, notify: Vec::new() }
    }
}

/// The id of the `seq`th event of `job` in `city`: unique, and the same on every attempt.
#[must_use]
pub fn event_id(city: &str, job: u64, seq: u64) -> String {
    format!("{city}.{job}.{seq}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_names_its_event_and_reads_back() {
        let d = Delivery::new("des-moines", 42, 3, 1_700_000_000_000, Event::Accepted { contractor: 7 });
        assert_eq!((d.id.as_str(), d.kind.as_str()), ("des-moines.42.3", "accepted"));
        let json = serde_json::to_string(&d).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"id":"des-moines.42.3","city":"des-moines","job":42,"seq":3,"at":1700000000000,"kind":"accepted","event":{"accepted":{"contractor":7}}}"#
        );
        assert_eq!(serde_json::from_str::<Delivery>(&json).ok(), Some(d));
    }
}
