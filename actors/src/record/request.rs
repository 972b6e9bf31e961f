//! [`RequestRecord`]: what a request with a client's request id did, stored
//! in the same commit as the change it made, so a retry — to this process
//! or, after a failover, to the city's next owner — gets the first answer
//! instead of doing the work again.
//!
//! Records are `Kind::Request` snapshots keyed by [`RequestTag::key`], a
//! stable 64-bit hash of the sender and the id; the record holds the tag
//! itself, so two tags that share a key are told apart.

use dispatch_engine::pricing::PriceQuote;
use dispatch_engine::{ContractorId, JobId, JobState, Rating};
use dispatch_storage::codec::Versioned;
use serde::{Deserialize, Serialize};

/// Who sent a request, under which id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestTag {
    /// The sender's role: its ids are apart from the other roles'.
    pub role: RequestRole,
    /// The sender's id.
    pub sub: u64,
    /// The client's request id.
    pub id: String,
}

/// The role of a request's sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RequestRole {
    /// A customer.
    Customer,
    /// A contractor.
    Contractor,
    /// A dispatcher.
    Dispatcher,
}

impl RequestTag {
    /// The record's key: a hash that every build and platform computes alike.
    #[must_use]
    pub fn key(&self) -> u64 {
        let mut bytes = Vec::with_capacity(self.id.len() + 9);
        bytes.push(self.role as u8);
        bytes.extend_from_slice(&self.sub.to_le_bytes());
        bytes.extend_from_slice(self.id.as_bytes());
        rapidhash::v3::rapidhash_v3(&bytes)
    }
}

/// What the request did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RequestOutcome {
    /// Posted the job at this quote.
    Posted {
        /// The quote.
        quote: PriceQuote,
    },
    /// Accepted the job, leaving it in this state.
    Accepted {
        /// The job's state after the accept.
        state: JobState,
    },
    /// Wrote a chat message (its position is the record's `seq`).
    Chat,
    /// Rated the job's contractor, whose rating became this.
    Rated {
        /// Who was rated.
        contractor: ContractorId,
        /// Their rating after it.
        rating: Rating,
    },
}

/// A request's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Who asked, under which id.
    pub tag: RequestTag,
    /// The job it concerned.
    pub job: JobId,
    /// The position of the log entry committed with it.
    pub seq: u64,
    /// What it did.
    pub outcome: RequestOutcome,
}

/// A request being carried out: its record is committed with the change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PendingRequest {
    /// Who asked, under which id.
    pub(crate) tag: RequestTag,
    /// What it is doing.
    pub(crate) outcome: RequestOutcome,
}

impl PendingRequest {
    /// Its record, for the log entry `seq` of `job` it is committed with.
    pub(crate) fn record(&self, job: JobId, seq: u64) -> Result<dispatch_storage::SnapshotPut, dispatch_storage::StorageError> {
        let record = RequestRecord { tag: self.tag.clone(), job, seq, outcome: self.outcome.clone() };
        // `last`: a backend with expiry (ScyllaDB) lets records go after the retention TTL.
        Ok(dispatch_storage::SnapshotPut {
            kind: dispatch_storage::Kind::Request,
            id: self.tag.key(),
            blob: dispatch_storage::codec::encode(&record)?,
            last: true,
        })
    }
}

/// Request records first appeared in schema version 2's stores.
impl Versioned for RequestRecord {
    const LAYOUT_SINCE: u16 = 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_tell_senders_apart() {
        let tag = |role, sub, id: &str| RequestTag { role, sub, id: id.into() };
        let a = tag(RequestRole::Customer, 7, "post-1");
        // The same on every build: a changed hash would strand every stored record.
        assert_eq!(a.key(), tag(RequestRole::Customer, 7, "post-1").key());
        assert_eq!(a.key(), 0xbffa_1216_0b0d_c9f2, "{:#x}", a.key());
        assert_ne!(a.key(), tag(RequestRole::Contractor, 7, "post-1").key());
        assert_ne!(a.key(), tag(RequestRole::Customer, 8, "post-1").key());
        assert_ne!(a.key(), tag(RequestRole::Customer, 7, "post-2").key());
    }
}
