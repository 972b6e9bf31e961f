//! [`AuditRecord`]: one entry of a city's audit trail — an operator's or a
//! dispatcher's action, who took it, when, what and why — and
//! [`BlockRecord`], a customer blocked from posting.
//!
//! Audit records are `Kind::Audit` snapshots keyed by their position in the
//! trail, 1, 2, 3, …: each is written once and never again (append-only),
//! and a paged scan lists them in order, its last key the next page's
//! cursor. An action's record is written *before* the action is carried
//! out, so no action goes unrecorded; one refused afterwards gets a second
//! record saying so.

use dispatch_engine::{ContractorId, CustomerId, JobId, Money, Timestamp};
use dispatch_storage::codec::Versioned;
use serde::{Deserialize, Serialize};

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    /// A dispatcher, by id.
    Dispatcher(u64),
    /// An operator of the admin API, by id.
    Admin(u64),
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditAction {
    /// A job given to a contractor by hand.
    Assign {
        /// The job.
        job: JobId,
        /// To whom.
        contractor: ContractorId,
    },
    /// A job called off.
    Cancel {
        /// The job.
        job: JobId,
    },
    /// Money given back to a job's customer.
    Refund {
        /// The job.
        job: JobId,
        /// How much.
        amount: Money,
    },
    /// A job's dispute settled.
    ResolveDispute {
        /// The job.
        job: JobId,
        /// How much went back.
        refund: Money,
    },
    /// A customer blocked from posting.
    BlockCustomer {
        /// Whom.
        customer: CustomerId,
    },
    /// A customer allowed to post again.
    UnblockCustomer {
        /// Whom.
        customer: CustomerId,
    },
    /// The action of the record at `position` was refused (it did nothing).
    Refused {
        /// The record of the action.
        position: u64,
        /// Why.
        error: String,
    },
    /// A contractor suspended: no offers until reinstated.
    SuspendContractor {
        /// Whom.
        contractor: ContractorId,
    },
    /// A suspended contractor reinstated.
    ReinstateContractor {
        /// Whom.
        contractor: ContractorId,
    },
    /// A contractor's licence for a trade checked and recorded.
    VerifyTrade {
        /// Whom.
        contractor: ContractorId,
        /// The trade.
        trade: dispatch_engine::Trade,
    },
    /// A contractor's insurance checked and recorded.
    RecordInsurance {
        /// Whom.
        contractor: ContractorId,
    },
    /// A webhook endpoint added.
    AddWebhook {
        /// Its name.
        endpoint: String,
        /// Where it posts.
        url: String,
    },
    /// A webhook endpoint removed.
    RemoveWebhook {
        /// Its name.
        endpoint: String,
    },
    /// An endpoint's dead letters sent again.
    ReplayDeadLetters {
        /// The endpoint's name.
        endpoint: String,
    },
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Its position in the trail (1, 2, 3, …).
    pub position: u64,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// What.
    pub action: AuditAction,
    /// Why, in the actor's words, if they gave a reason.
    pub reason: Option<String>,
}

/// A customer blocked from posting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// Whom.
    pub customer: CustomerId,
    /// Since when.
    pub at: Timestamp,
    /// By whom.
    pub by: Actor,
    /// Why.
    pub reason: String,
}

/// A contractor suspended from offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspensionRecord {
    /// Whom.
    pub contractor: ContractorId,
    /// Since when.
    pub at: Timestamp,
    /// By whom.
    pub by: Actor,
    /// Why.
    pub reason: String,
}

/// Suspension records first appeared in schema version 3's stores.
impl Versioned for SuspensionRecord {
    const LAYOUT_SINCE: u16 = 3;
}

/// A trade an operator verified: the licence seen, until when it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedTrade {
    /// The trade.
    pub trade: dispatch_engine::Trade,
    /// The licence number seen.
    pub licence: String,
    /// When it expires.
    pub expires: Timestamp,
}

/// Insurance an operator checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insurance {
    /// The policy.
    pub policy: String,
    /// When it expires.
    pub expires: Timestamp,
}

/// What operators have verified of a contractor (their own declarations aside).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VettingRecord {
    /// Whom.
    pub contractor: ContractorId,
    /// Their verified trades, one entry per trade (the latest).
    pub trades: Vec<VerifiedTrade>,
    /// Their insurance, if recorded.
    pub insurance: Option<Insurance>,
}

impl VettingRecord {
    /// Whether `trade` is verified for them with a licence that still holds at `now`.
    #[must_use]
    pub fn licensed(&self, trade: dispatch_engine::Trade, now: Timestamp) -> bool {
        self.trades.iter().any(|t| t.trade == trade && t.expires > now)
    }
}

/// Vetting records first appeared in schema version 3's stores.
impl Versioned for VettingRecord {
    const LAYOUT_SINCE: u16 = 3;
}

/// The trail's head (record 0): the last position written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// The last position written.
    pub last: u64,
}

/// Audit heads first appeared in schema version 3's stores.
impl Versioned for AuditHead {
    const LAYOUT_SINCE: u16 = 3;
}

/// Audit records first appeared in schema version 3's stores.
impl Versioned for AuditRecord {
    const LAYOUT_SINCE: u16 = 3;
}

/// Block records first appeared in schema version 3's stores.
impl Versioned for BlockRecord {
    const LAYOUT_SINCE: u16 = 3;
}
