//! What the actors store, apart from what they broadcast and what the wire
//! carries: job and contractor snapshots, the job event log's records, and
//! what requests with a client's request id did (`request.rs`), each
//! customer's card on file (`customer.rs`) and each contractor's payout
//! account (`payee.rs`), the city's audit trail and blocked customers
//! (`audit.rs`), and its outbox and webhook deliveries (`webhook.rs`).
//!
//! Each type implements [`Versioned`]: the schema version that introduced
//! its layout and an upcaster from the layouts before it. Earlier layouts are
//! kept, frozen, in `v1.rs` and `v2.rs` (one file per schema version that changed a
//! layout); `actors/tests/golden/` holds blobs of every version and a test
//! decodes them all.
//!
//! [`Versioned`]: dispatch_storage::codec::Versioned

mod audit;
mod customer;
mod index;
mod log;
mod payee;
mod request;
mod snapshot;
mod v1;
mod v2;
mod webhook;

pub use audit::{Actor, AuditAction, AuditHead, AuditRecord, BlockRecord, Insurance, SuspensionRecord, VerifiedTrade, VettingRecord};
pub use customer::{CustomerRecord, PendingCard};
pub use index::{ContractorIndexRecord, JobIndexRecord};
pub use log::LogRecord;
pub use log::PaymentRecord;
pub use payee::PayeeRecord;
pub(crate) use request::PendingRequest;
pub use request::{RequestOutcome, RequestRecord, RequestRole, RequestTag};
pub use snapshot::{ContractorSnapshot, EARNINGS_KEPT_DAYS, JobSnapshot};
pub use webhook::{CursorRecord, DeadLetterRecord, EndpointRecord, KpiRecord, OutboxHead, OutboxRecord};
