//! Who should hear of an event away from the app: the live connections of
//! customers and contractors (presence, as gateways report it), their
//! notification preferences (`Kind::Notify`, set over the wire), and for an
//! event the parties it concerns who are not connected ([`NotifyTarget`]).
//!
//! **Presence** is kept per connection: a gateway notes each of its
//! connections when it opens, again every keepalive, and when it closes;
//! each note says how long it holds. A connection not noted again in time
//! counts as gone, so a gateway that dies takes its connections with it
//! within a minute or two. An owner that starts afresh knows nobody until
//! the next notes: meanwhile its events carry hints for everyone (a push
//! too many, never one too few).

use std::collections::HashMap;
use std::time::Duration;

use dispatch_engine::notify::NotifyPreferences;
use dispatch_engine::{JobId, Party, Timestamp};
use dispatch_storage::{Kind, codec};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::{ActorError, Result};
use crate::events::{DispatchEvent, EventKind};
use crate::handle::Dispatch;

/// The connections of one person: each connection's id and until when it counts.
type Connections = HashMap<u64, Instant>;

/// Live connections of customers and contractors.
#[derive(Debug, Default)]
pub(crate) struct Presence {
    people: std::sync::Mutex<HashMap<(bool, u64), Connections>>,
}

/// Whether `party` is one notifications go to: true for a contractor, false for a customer.
fn side(party: Party) -> Result<bool> {
    match party {
        Party::Customer => Ok(false),
        Party::Contractor => Ok(true),
        Party::Dispatcher | Party::System => Err(ActorError::Config(format!("{party:?}s have no notification preferences"))),
    }
}

/// A person's key among the stored preferences: customers even, contractors odd.
fn key(contractor: bool, id: u64) -> u64 {
    (id << 1) | u64::from(contractor)
}

/// A person's stored preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyRecord {
    /// A contractor (or a customer).
    pub contractor: bool,
    /// Their id.
    pub id: u64,
    /// What they chose.
    pub preferences: NotifyPreferences,
}

/// Preferences first appeared in schema version 3's stores.
impl dispatch_storage::codec::Versioned for NotifyRecord {
    const LAYOUT_SINCE: u16 = 3;
}

/// Someone to tell of an event, who is not connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    /// Their side (customer or contractor).
    pub party: Party,
    /// Their id.
    pub id: u64,
    /// Until when it matters (an offer's expiry).
    pub until: Option<Timestamp>,
    /// How they want to be reached.
    pub preferences: NotifyPreferences,
}

impl Dispatch {
    /// Notes a connection of `party` `id`: open for `holds` more (a keepalive
    /// renews it), or closed (`None`).
    pub fn note_presence(&self, party: Party, id: u64, connection: u64, holds: Option<Duration>) {
        let Ok(contractor) = side(party) else { return };
        let mut people = self.shared.presence.people.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let connections = people.entry((contractor, id)).or_default();
        connections.retain(|_, until| *until > now);
        match holds {
            Some(holds) => {
                connections.insert(connection, now + holds);
            }
            None => {
                connections.remove(&connection);
            }
        }
        if connections.is_empty() {
            people.remove(&(contractor, id));
        }
    }

    /// Whether `party` `id` has a live connection.
    #[must_use]
    pub fn connected(&self, party: Party, id: u64) -> bool {
        let Ok(contractor) = side(party) else { return false };
        let people = self.shared.presence.people.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        people.get(&(contractor, id)).is_some_and(|c| c.values().any(|until| *until > now))
    }

    /// Stores how `party` `id` wants to be reached; what is stored.
    pub async fn set_notify_preferences(&self, party: Party, id: u64, preferences: NotifyPreferences) -> Result<NotifyPreferences> {
        preferences.validate()?;
        let contractor = side(party)?;
        let record = NotifyRecord { contractor, id, preferences };
        self.shared.store.put(Kind::Notify, key(contractor, id), codec::encode(&record)?).await?;
        Ok(record.preferences)
    }

    /// How `party` `id` wants to be reached (push only, if they never said).
    pub async fn notify_preferences(&self, party: Party, id: u64) -> Result<NotifyPreferences> {
        let contractor = side(party)?;
        let stored = self.shared.store.get(Kind::Notify, key(contractor, id)).await?;
        Ok(stored.map(|b| codec::decode::<NotifyRecord>(&b)).transpose()?.map(|r| r.preferences).unwrap_or_default())
    }

    /// The parties `event` concerns who are not connected now: an offer's
    /// contractor (until it expires); the customer of an acceptance or an
    /// arrival; a chat message's other parties.
    pub async fn notify_targets(&self, event: &DispatchEvent) -> Result<Vec<NotifyTarget>> {
        let mut concerned: Vec<(Party, u64, Option<Timestamp>)> = Vec::new();
        match &event.kind {
            EventKind::Offered { contractor, expires_at, .. } => concerned.push((Party::Contractor, contractor.0, Some(*expires_at))),
            EventKind::Accepted { .. } | EventKind::Arriving { .. } => {
                concerned.push((Party::Customer, self.customer_of(event.job).await?, None));
            }
            EventKind::Chat { party, sender, .. } => {
                let snap = self.job(event.job).await?;
                if !(*party == Party::Customer && *sender == snap.job.customer.0) {
                    concerned.push((Party::Customer, snap.job.customer.0, None));
                }
                if let Some(contractor) = snap.machine.state().contractor()
                    && !(*party == Party::Contractor && *sender == contractor.0)
                {
                    concerned.push((Party::Contractor, contractor.0, None));
                }
            }
            _ => {}
        }
        let mut out = Vec::new();
        for (party, id, until) in concerned {
            if !self.connected(party, id) {
                out.push(NotifyTarget { party, id, until, preferences: self.notify_preferences(party, id).await? });
            }
        }
        Ok(out)
    }

    async fn customer_of(&self, job: JobId) -> Result<u64> {
        Ok(self.job(job).await?.job.customer.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_and_contractors_have_keys_of_their_own() {
        assert_ne!(key(false, 7), key(true, 7));
        assert_eq!(key(true, (1 << 63) - 1), u64::MAX, "the largest id fits");
        assert!(side(Party::Dispatcher).is_err());
    }
}
