//! The city's audit trail — every operator's and dispatcher's action, who,
//! when, what and why, append-only and listed in order — and the customers
//! blocked from posting (`record/audit.rs` has what is stored).
//!
//! Positions are handed out by the city's one writer (its owner). Record 0
//! is the trail's head, the last position written, rewritten with each
//! entry; a start reads it and steps past every entry written after it (a
//! crash between the two, or appends racing), gaps of failed writes
//! included, so a position is never used twice. An action's
//! entry is written before the action: none goes unrecorded.

use std::sync::atomic::Ordering;

use dispatch_engine::{ContractorId, ContractorStatus, CustomerId};
use dispatch_storage::{Kind, codec};

use crate::error::{ActorError, Result};
use crate::handle::Dispatch;
use crate::record::{Actor, AuditAction, AuditHead, AuditRecord, BlockRecord, Insurance, SuspensionRecord, VerifiedTrade, VettingRecord};
use crate::shared::{Shared, read, write};

/// The most entries one page of the trail holds.
pub const MAX_AUDIT_PAGE: usize = 500;

/// Reads the trail's head and the blocked customers when the city starts.
pub(crate) async fn open(shared: &Shared) -> Result<()> {
    let head = shared.store.get(Kind::Audit, 0).await?.map(|b| codec::decode::<AuditHead>(&b)).transpose()?;
    // Entries written after the head (concurrent appends, a crash between an
    // entry and its head), gaps included (a write that failed): past them all.
    let last = crate::shared::last_id_from(shared, Kind::Audit, head.map_or(0, |h| h.last)).await?;
    shared.audit_next.store(last + 1, Ordering::SeqCst);
    let blocked: Vec<BlockRecord> = all(shared, Kind::Block).await?;
    *write(&shared.blocked) = blocked.into_iter().map(|b| (b.customer, b)).collect();
    let suspended: Vec<SuspensionRecord> = all(shared, Kind::Suspension).await?;
    *write(&shared.suspended) = suspended.into_iter().map(|s| (s.contractor, s)).collect();
    let vetting: Vec<VettingRecord> = all(shared, Kind::Vetting).await?;
    *write(&shared.vetting) = vetting.into_iter().map(|v| (v.contractor, v)).collect();
    Ok(())
}

/// Every record of `kind` (a few: blocks, suspensions).
async fn all<T: dispatch_storage::codec::Versioned + serde::de::DeserializeOwned>(shared: &Shared, kind: Kind) -> Result<Vec<T>> {
    Ok(crate::shared::decode_all(shared, kind).await?.into_iter().map(|(_, record)| record).collect())
}

impl Dispatch {
    /// Appends `action` by `actor` to the trail (before it is carried out): its position.
    pub async fn audit(&self, actor: Actor, action: AuditAction, reason: Option<String>) -> Result<u64> {
        let position = self.shared.audit_next.fetch_add(1, Ordering::SeqCst);
        let record = AuditRecord { position, at: self.shared.clock.now(), actor, action, reason };
        let items = vec![(Kind::Audit, position, codec::encode(&record)?), (Kind::Audit, 0, codec::encode(&AuditHead { last: position })?)];
        self.shared.store.put_batch(items).await?;
        Ok(position)
    }

    /// Notes that the action at `position` was refused, and why.
    pub async fn audit_refused(&self, actor: Actor, position: u64, error: &str) {
        let action = AuditAction::Refused { position, error: error.to_owned() };
        if let Err(e) = self.audit(actor, action, None).await {
            tracing::warn!(position, %e, "the refusal of an audited action was not recorded");
        }
    }

    /// Up to `limit` entries of the trail after position `after` (from the start: `None`), in order.
    pub async fn audit_trail(&self, after: Option<u64>, limit: usize) -> Result<Vec<AuditRecord>> {
        let limit = limit.clamp(1, MAX_AUDIT_PAGE);
        let page = self.shared.store.scan(Kind::Audit, Some(after.unwrap_or(0)), limit).await?;
        page.iter().map(|(_, blob)| codec::decode(blob).map_err(ActorError::from)).collect()
    }

    /// Whether `customer` is blocked from posting, and why.
    #[must_use]
    pub fn blocked(&self, customer: CustomerId) -> Option<BlockRecord> {
        read(&self.shared.blocked).get(&customer).cloned()
    }

    /// Blocks `customer` from posting (audited first).
    pub async fn block_customer(&self, actor: Actor, customer: CustomerId, reason: String) -> Result<BlockRecord> {
        self.audit(actor, AuditAction::BlockCustomer { customer }, Some(reason.clone())).await?;
        let record = BlockRecord { customer, at: self.shared.clock.now(), by: actor, reason };
        self.shared.store.put(Kind::Block, customer.0, codec::encode(&record)?).await?;
        write(&self.shared.blocked).insert(customer, record.clone());
        Ok(record)
    }

    /// Lets `customer` post again (audited first); whether they were blocked.
    pub async fn unblock_customer(&self, actor: Actor, customer: CustomerId, reason: String) -> Result<bool> {
        self.audit(actor, AuditAction::UnblockCustomer { customer }, Some(reason)).await?;
        self.shared.store.delete(Kind::Block, customer.0).await?;
        Ok(write(&self.shared.blocked).remove(&customer).is_some())
    }

    /// Whether `contractor` is suspended from offers, and why.
    #[must_use]
    pub fn suspended(&self, contractor: ContractorId) -> Option<SuspensionRecord> {
        read(&self.shared.suspended).get(&contractor).cloned()
    }

    /// Suspends `contractor` (audited first): no more offers; an offer they
    /// hold is withdrawn (declined for them), so the job goes to the next.
    pub async fn suspend_contractor(&self, actor: Actor, contractor: ContractorId, reason: String) -> Result<SuspensionRecord> {
        let snap = self.contractor(contractor).await?;
        self.audit(actor, AuditAction::SuspendContractor { contractor }, Some(reason.clone())).await?;
        let record = SuspensionRecord { contractor, at: self.shared.clock.now(), by: actor, reason };
        self.shared.store.put(Kind::Suspension, contractor.0, codec::encode(&record)?).await?;
        write(&self.shared.suspended).insert(contractor, record.clone());
        if let ContractorStatus::Offered(job) = snap.status
            && let Err(e) = self.decline(job, contractor).await
        {
            tracing::warn!(%contractor, %job, %e, "a suspended contractor's offer was not withdrawn; it expires");
        }
        Ok(record)
    }

    /// Lets a suspended contractor have offers again (audited first); whether they were suspended.
    pub async fn reinstate_contractor(&self, actor: Actor, contractor: ContractorId, reason: String) -> Result<bool> {
        self.audit(actor, AuditAction::ReinstateContractor { contractor }, Some(reason)).await?;
        self.shared.store.delete(Kind::Suspension, contractor.0).await?;
        Ok(write(&self.shared.suspended).remove(&contractor).is_some())
    }

    /// What operators verified of `contractor`.
    #[must_use]
    pub fn vetting(&self, contractor: ContractorId) -> Option<VettingRecord> {
        read(&self.shared.vetting).get(&contractor).cloned()
    }

    /// Records `contractor`'s licence for `trade`, valid until `expires` (audited first).
    pub async fn verify_trade(&self, actor: Actor, contractor: ContractorId, trade: VerifiedTrade) -> Result<VettingRecord> {
        self.contractor(contractor).await?;
        self.audit(actor, AuditAction::VerifyTrade { contractor, trade: trade.trade }, Some(format!("licence {}", trade.licence))).await?;
        self.change_vetting(contractor, |v| {
            v.trades.retain(|t| t.trade != trade.trade);
            v.trades.push(trade);
        })
        .await
    }

    /// Records `contractor`'s insurance (audited first).
    pub async fn record_insurance(&self, actor: Actor, contractor: ContractorId, insurance: Insurance) -> Result<VettingRecord> {
        self.contractor(contractor).await?;
        self.audit(actor, AuditAction::RecordInsurance { contractor }, Some(format!("policy {}", insurance.policy))).await?;
        self.change_vetting(contractor, |v| v.insurance = Some(insurance)).await
    }

    async fn change_vetting(&self, contractor: ContractorId, change: impl FnOnce(&mut VettingRecord)) -> Result<VettingRecord> {
        let mut record = self.vetting(contractor).unwrap_or(VettingRecord { contractor, trades: Vec::new(), insurance: None });
        change(&mut record);
        self.shared.store.put(Kind::Vetting, contractor.0, codec::encode(&record)?).await?;
        write(&self.shared.vetting).insert(contractor, record.clone());
        Ok(record)
    }
}
