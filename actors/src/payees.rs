//! A contractor's payout account at the city's processor (a connected
//! account at Stripe): made the first time it is needed — the contractor
//! asks for it (`payout_account` on the wire) or a payout is due — and used
//! once the processor says transfers to it go through. Until then a payout
//! waits, and the contractor is given the link to finish onboarding at.

use dispatch_engine::ContractorId;
use dispatch_payments::{PayeeStatus, ProviderError};
use dispatch_storage::{Kind, codec};

use crate::error::{ActorError, Result};
use crate::handle::Dispatch;
use crate::record::PayeeRecord;
use crate::shared::Shared;

/// A contractor's payout account as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutAccount {
    /// The processor's account id.
    pub account: String,
    /// Whether payouts to it go through.
    pub ready: bool,
    /// While it is not ready: where the contractor finishes onboarding (a short-lived link).
    pub onboarding_url: Option<String>,
}

impl Dispatch {
    /// `contractor`'s payout account: made at the processor if they have
    /// none, with the link to finish onboarding while it is not ready.
    pub async fn payout_account(&self, contractor: ContractorId) -> Result<PayoutAccount> {
        payout_account(&self.shared, contractor).await
    }
}

/// `contractor`'s payout account, made if they have none; its readiness is
/// asked of the processor until it says ready (then it is stored, and not
/// asked again).
pub(crate) async fn payout_account(shared: &Shared, contractor: ContractorId) -> Result<PayoutAccount> {
    let processor =
        shared.processor.as_deref().ok_or_else(|| ActorError::ContractorState(contractor, "payments are off in this city".into()))?;
    let unavailable = |e: ProviderError| match e {
        ProviderError::Unavailable(why) => ActorError::Unavailable(why),
        ProviderError::Rejected(why) => ActorError::ContractorState(contractor, format!("payout account: {why}")),
    };
    let stored = shared.store.get(Kind::Payee, contractor.0).await?.map(|b| codec::decode::<PayeeRecord>(&b)).transpose()?;
    let mut record = match stored {
        Some(record) if record.ready => return Ok(PayoutAccount { account: record.account, ready: true, onboarding_url: None }),
        Some(record) => record,
        None => {
            // Made under the contractor's key: a retry after a lost answer gets the same account.
            let account = processor.make_payee(contractor).await.map_err(unavailable)?;
            let record = PayeeRecord { contractor, account, ready: false };
            shared.store.put(Kind::Payee, contractor.0, codec::encode(&record)?).await?;
            record
        }
    };
    match processor.payee_status(&record.account).await.map_err(unavailable)? {
        PayeeStatus::Ready => {
            record.ready = true;
            shared.store.put(Kind::Payee, contractor.0, codec::encode(&record)?).await?;
            Ok(PayoutAccount { account: record.account, ready: true, onboarding_url: None })
        }
        PayeeStatus::Onboarding { url } => Ok(PayoutAccount { account: record.account, ready: false, onboarding_url: Some(url) }),
    }
}
