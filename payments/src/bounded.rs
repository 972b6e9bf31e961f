//! [`Bounded`]: a processor whose every call gives up after a time limit.
//!
//! A processor that never answers must not hold a job's actor for ever: the
//! call is cut short with [`ProviderError::Unavailable`], its intent stays in
//! the journal, and the reconciler finishes it under the same key.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dispatch_engine::{ContractorId, CustomerId};

use crate::provider::{Call, CardSaved, CardSetup, Outcome, PayeeStatus, PaymentProvider, ProviderError};

/// `inner`, each call under `limit`.
pub struct Bounded {
    inner: Arc<dyn PaymentProvider>,
    limit: Duration,
}

impl Bounded {
    /// Wraps `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn PaymentProvider>, limit: Duration) -> Self {
        Self { inner, limit }
    }

    async fn within<T>(&self, what: &str, call: impl std::future::Future<Output = Result<T, ProviderError>>) -> Result<T, ProviderError> {
        tokio::time::timeout(self.limit, call).await.unwrap_or_else(|_| {
            Err(ProviderError::Unavailable(format!("{} gave no answer to {what} within {:?}", self.inner.name(), self.limit)))
        })
    }
}

#[async_trait]
impl PaymentProvider for Bounded {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn prepare(&self, call: &Call) -> Result<Outcome, ProviderError> {
        self.within("prepare", self.inner.prepare(call)).await
    }

    async fn authorize(&self, call: &Call) -> Result<Outcome, ProviderError> {
        self.within("authorize", self.inner.authorize(call)).await
    }

    async fn capture(&self, call: &Call) -> Result<Outcome, ProviderError> {
        self.within("capture", self.inner.capture(call)).await
    }

    async fn void(&self, call: &Call) -> Result<Outcome, ProviderError> {
        self.within("void", self.inner.void(call)).await
    }

    async fn refund(&self, call: &Call) -> Result<Outcome, ProviderError> {
        self.within("refund", self.inner.refund(call)).await
    }

    async fn payout(&self, call: &Call) -> Result<Outcome, ProviderError> {
        self.within("payout", self.inner.payout(call)).await
    }

    async fn make_customer(&self, customer: CustomerId) -> Result<String, ProviderError> {
        self.within("make_customer", self.inner.make_customer(customer)).await
    }

    async fn save_card(&self, setup: &CardSetup) -> Result<CardSaved, ProviderError> {
        self.within("save_card", self.inner.save_card(setup)).await
    }

    async fn make_payee(&self, contractor: ContractorId) -> Result<String, ProviderError> {
        self.within("make_payee", self.inner.make_payee(contractor)).await
    }

    async fn payee_status(&self, account: &str) -> Result<PayeeStatus, ProviderError> {
        self.within("payee_status", self.inner.payee_status(account)).await
    }

    async fn confirm_card(&self, setup: &str) -> Result<CardSaved, ProviderError> {
        self.within("confirm_card", self.inner.confirm_card(setup)).await
    }

    async fn confirm(&self, call: &Call) -> Result<Option<Outcome>, ProviderError> {
        self.within("confirm", self.inner.confirm(call)).await
    }

    async fn job_of(&self, intent: &str) -> Result<Option<dispatch_engine::JobId>, ProviderError> {
        self.within("job_of", self.inner.job_of(intent)).await
    }
}

#[cfg(test)]
mod tests {
    use dispatch_engine::payment::Currency;
    use dispatch_engine::{JobId, Money};

    use super::*;
    use crate::provider::{CallKey, Card, Step};
    use crate::sandbox::{Behaviour, SandboxProvider};

    #[tokio::test(start_paused = true)]
    async fn a_hanging_call_is_cut_short_as_unavailable_and_the_next_one_answers() {
        let sandbox = Arc::new(SandboxProvider::new());
        let bounded = Bounded::new(sandbox.clone(), Duration::from_secs(10));
        let card = Card { customer: "cus_1".into(), payment_method: "pm_card_visa".into() };
        let prepare = Call::Prepare { key: CallKey::new(JobId(1), Step::Authorize), card, amount: Money(1_000), currency: Currency::USD };
        sandbox.then(Behaviour::Hang);
        let started = tokio::time::Instant::now();
        let err = bounded.prepare(&prepare).await.unwrap_err();
        assert!(err.is_retryable() && err.to_string().contains("within 10s"), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        // The same key again: the sandbox made the call once and answers it now.
        assert!(matches!(bounded.prepare(&prepare).await.unwrap(), Outcome::Prepared { .. }));
    }
}
