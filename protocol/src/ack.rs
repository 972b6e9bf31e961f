//! Typed replies: the `result` of an `ack`, one type per kind of request.
//!
//! In JSON text frames an ack's `result` is the reply's own object
//! (`{"job":12,"quote":{…}}`), exactly as `docs/protocol.md` shows; in
//! binary frames it is tagged with its kind, as bincode needs. One type,
//! [`AckResult`], serializes both ways (by the format's
//! `is_human_readable`), and reads both back: in JSON each reply's fields
//! are distinct, so the object says which reply it is.

use dispatch_engine::pricing::PriceQuote;
use dispatch_engine::{ContractorStatus, JobState, StatusKind};
use serde::{Deserialize, Serialize};

/// `register`: whether this call registered the contractor (`false`: already registered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registered {
    /// Registered by this call.
    pub registered: bool,
}

/// `online`, `offline`, `break`: the contractor's status now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReply {
    /// The status.
    pub status: ContractorStatus,
}

/// `accept`, `decline`, `job_status`, `cancel`, `assign`, `watch`: the job's state now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobStateReply {
    /// The job.
    pub job: u64,
    /// Its state.
    pub state: JobState,
}

/// `post_job`: the new job and its price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Posted {
    /// The job's id.
    pub job: u64,
    /// The price quoted.
    pub quote: PriceQuote,
}

/// `rate`: the contractor's rating with this review counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rated {
    /// The contractor rated.
    pub contractor: u64,
    /// Their average now, 0–5.
    pub rating: f32,
    /// How many reviews it rests on.
    pub reviews: u32,
}

/// `chat`: the message's place in the job's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatAcked {
    /// The job.
    pub job: u64,
    /// The message's sequence number.
    pub seq: u64,
}

/// `resume`: how many logged events were replayed (as `event` frames, before this ack).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resumed {
    /// The job.
    pub job: u64,
    /// Events replayed.
    pub replayed: u64,
}

/// `subscribe`: the map's version in the snapshot just sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribed {
    /// The city.
    pub city: String,
    /// The snapshot's version.
    pub version: u64,
}

/// One contractor of a `nearby` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NearbyContractor {
    /// The contractor.
    pub id: u64,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lng: f64,
    /// Metres from the point asked about.
    pub distance_m: f64,
    /// What they are doing.
    pub status: StatusKind,
}

/// `nearby`: the contractors, nearest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nearby {
    /// Nearest first.
    pub contractors: Vec<NearbyContractor>,
}

macro_rules! ack_results {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// The result of an `ack`: one variant per kind of reply.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(missing_docs, reason = "each variant carries the reply type of the same name")]
        pub enum AckResult {
            $($variant($ty)),*
        }

        /// Binary frames: tagged, as bincode needs.
        #[derive(Serialize, Deserialize)]
        #[serde(rename = "AckResult")]
        enum Tagged {
            $($variant($ty)),*
        }

        /// JSON frames: the reply's object alone; its fields (all required,
        /// none unknown) tell the replies apart.
        #[derive(Serialize, Deserialize)]
        #[serde(untagged)]
        enum Untagged {
            $($variant($ty)),*
        }

        impl Serialize for AckResult {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    match self.clone() {
                        $(AckResult::$variant(r) => Untagged::$variant(r)),*
                    }
                    .serialize(serializer)
                } else {
                    match self.clone() {
                        $(AckResult::$variant(r) => Tagged::$variant(r)),*
                    }
                    .serialize(serializer)
                }
            }
        }

        impl<'de> Deserialize<'de> for AckResult {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    Ok(match Untagged::deserialize(deserializer)? {
                        $(Untagged::$variant(r) => AckResult::$variant(r)),*
                    })
                } else {
                    Ok(match Tagged::deserialize(deserializer)? {
                        $(Tagged::$variant(r) => AckResult::$variant(r)),*
                    })
                }
            }
        }

        $(impl From<$ty> for AckResult {
            fn from(reply: $ty) -> Self {
                AckResult::$variant(reply)
            }
        })*
    };
}

ack_results!(
    Registered(Registered),
    StatusReply(StatusReply),
    JobState(JobStateReply),
    Posted(Posted),
    Rated(Rated),
    ChatAcked(ChatAcked),
    Resumed(Resumed),
    Subscribed(Subscribed),
    Nearby(Nearby),
    Payment(crate::payment::PaymentReply),
    Earnings(crate::payment::EarningsReply),
    Card(crate::payment::CardReply),
    PayoutAccount(crate::payment::PayoutAccountReply),
    Notify(NotifyReply),
);

/// The ack of `set_notify`: the preferences as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyReply {
    /// The channels.
    pub channels: Vec<dispatch_engine::notify::Channel>,
    /// The quiet hours, if any.
    pub quiet_hours: Option<dispatch_engine::notify::QuietHours>,
}
