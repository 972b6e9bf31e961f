//! The `[payments]` section of the configuration: which card processor each
//! city's jobs are held, charged and paid out through, and the money rules.
//!
//! ```toml
//! [payments]
//! provider = "sandbox"      # the default; "stripe"; "off" posts jobs without money
//! call_timeout_ms = 4000
//! [payments.stripe]         # with provider = "stripe"
//! api_base = "https://api.stripe.com"
//! secret_key = ""           # or DISPATCH_STRIPE_SECRET_KEY in the environment
//! timeout_ms = 3500
//! onboarding_url = "https://app.example/payouts"  # where contractors come back to from payout-account onboarding
//! [payments.terms]
//! currency = "USD"
//! hold_margin_bps = 2000    # 20 % held above the quote for extras
//! platform_fee_bps = 290    # 2.9 %
//! cancellation_fee = 2500   # cents, after the contractor set off
//! dispute_window_secs = 259200
//! ```

use std::time::Duration;

use std::sync::Arc;

use dispatch_actors::PaymentsConfig;
use dispatch_actors::payments::{StripeConfig, StripeProvider};
use dispatch_engine::payment::PaymentTerms;
use serde::{Deserialize, Serialize};

/// Which card processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// In memory, deterministic, one per city (the default; it keeps its records only while the process runs).
    Sandbox,
    /// Stripe's API (PaymentIntents with manual capture, Refunds, Transfers), each city under its own key scope.
    Stripe,
    /// No payments: jobs are posted and completed without money.
    Off,
}

/// `[payments]`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsSection {
    /// The processor.
    pub provider: ProviderKind,
    /// The money rules, the same in every city.
    pub terms: PaymentTerms,
    /// A processor call with no answer after this long is left to the reconciler, ms.
    pub call_timeout_ms: u64,
    /// Stripe's API, for `provider = "stripe"`.
    pub stripe: StripeSection,
    /// The secrets the processor signs its webhooks with (`whsec_…`; two while
    /// one is rotated); also `DISPATCH_STRIPE_WEBHOOK_SECRET`. None: no webhook route.
    pub webhook_secrets: Vec<String>,
}

/// `[payments.stripe]`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StripeSection {
    /// The API's base URL.
    pub api_base: String,
    /// The secret key; empty: `DISPATCH_STRIPE_SECRET_KEY` from the environment.
    pub secret_key: String,
    /// One HTTP request's time limit, ms (below `call_timeout_ms`, so an answer is read before the call is given up).
    pub timeout_ms: u64,
    /// Where a contractor's app comes back to from Stripe's hosted onboarding
    /// of their payout account (its return and refresh URL).
    pub onboarding_url: String,
}

impl Default for StripeSection {
    fn default() -> Self {
        Self { api_base: "https://api.stripe.com".into(), secret_key: String::new(), timeout_ms: 3_500, onboarding_url: String::new() }
    }
}

impl std::fmt::Debug for StripeSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSection").field("api_base", &self.api_base).field("timeout_ms", &self.timeout_ms).finish_non_exhaustive()
    }
}

impl StripeSection {
    /// The secret key: configured, or from the environment.
    fn secret_key(&self) -> String {
        if self.secret_key.is_empty() { std::env::var("DISPATCH_STRIPE_SECRET_KEY").unwrap_or_default() } else { self.secret_key.clone() }
    }
}

impl std::fmt::Debug for PaymentsSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentsSection")
            .field("provider", &self.provider)
            .field("terms", &self.terms)
            .field("call_timeout_ms", &self.call_timeout_ms)
            .field("stripe", &self.stripe)
            .field("webhook_secrets", &self.webhook_secrets.len())
            .finish()
    }
}

impl Default for PaymentsSection {
    fn default() -> Self {
        Self {
            provider: ProviderKind::Sandbox,
            terms: PaymentTerms::default(),
            call_timeout_ms: 4_000,
            stripe: StripeSection::default(),
            webhook_secrets: Vec::new(),
        }
    }
}

impl PaymentsSection {
    /// The webhook secrets: configured, and the one in the environment.
    #[must_use]
    pub fn webhook_secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = self.webhook_secrets.iter().filter(|s| !s.is_empty()).cloned().collect();
        secrets.extend(std::env::var("DISPATCH_STRIPE_WEBHOOK_SECRET").ok().filter(|s| !s.is_empty()));
        secrets
    }

    /// Checks the terms and the timeout; the error names the value.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.terms.validate().map_err(|e| anyhow::anyhow!("payments.terms: {e}"))?;
        // A post waits for two calls of its hold; a request to the city gives up after its call timeout.
        let most = dispatch_actors::CALL_TIMEOUT.as_millis() as u64;
        anyhow::ensure!(
            (1..most).contains(&self.call_timeout_ms),
            "payments.call_timeout_ms must be 1 to {} (below the actors' call timeout), not {}",
            most - 1,
            self.call_timeout_ms
        );
        if self.provider == ProviderKind::Stripe {
            anyhow::ensure!(
                !self.stripe.secret_key().is_empty(),
                "payments.provider = \"stripe\" needs payments.stripe.secret_key or DISPATCH_STRIPE_SECRET_KEY"
            );
            let url = &self.stripe.onboarding_url;
            anyhow::ensure!(
                url.starts_with("https://") || url.starts_with("http://"),
                "payments.provider = \"stripe\" needs payments.stripe.onboarding_url (an http(s) URL contractors come back to from onboarding), not {url:?}"
            );
            anyhow::ensure!(
                (1..self.call_timeout_ms).contains(&self.stripe.timeout_ms),
                "payments.stripe.timeout_ms must be 1 to {} (below payments.call_timeout_ms), not {}",
                self.call_timeout_ms - 1,
                self.stripe.timeout_ms
            );
        }
        Ok(())
    }

    /// City `city`'s payments: its own processor (job ids are per city, and
    /// so are the idempotency keys made of them: Stripe's are scoped by the
    /// city), or `None` with payments off.
    pub fn for_city(&self, city: &str) -> anyhow::Result<Option<PaymentsConfig>> {
        let mut payments = match self.provider {
            ProviderKind::Off => return Ok(None),
            ProviderKind::Sandbox => PaymentsConfig::sandbox(self.terms.clone()),
            ProviderKind::Stripe => {
                let config = StripeConfig {
                    api_base: self.stripe.api_base.clone(),
                    secret_key: self.stripe.secret_key(),
                    timeout_ms: self.stripe.timeout_ms,
                    scope: city.to_owned(),
                    onboarding_url: self.stripe.onboarding_url.clone(),
                };
                let stripe = StripeProvider::new(config).map_err(|e| anyhow::anyhow!("payments.stripe: {e}"))?;
                PaymentsConfig::with_provider(self.terms.clone(), Arc::new(stripe))
            }
        };
        payments.call_timeout = Duration::from_millis(self.call_timeout_ms);
        Ok(Some(payments))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_and_provider_come_from_toml_and_bad_values_are_named() {
        let section: PaymentsSection = toml::from_str("provider = \"off\"\n[terms]\nplatform_fee_bps = 500\ncurrency = \"EUR\"\n").unwrap();
        assert_eq!((section.provider, section.terms.platform_fee_bps, section.terms.currency.code()), (ProviderKind::Off, 500, "EUR"));
        assert!(section.for_city("des-moines").unwrap().is_none());
        let sandbox = PaymentsSection::default();
        sandbox.validate().unwrap();
        let (a, b) = (sandbox.for_city("a").unwrap().unwrap(), sandbox.for_city("b").unwrap().unwrap());
        assert!(!std::sync::Arc::ptr_eq(&a.provider, &b.provider), "a processor per city");
        let greedy = PaymentsSection { terms: PaymentTerms { platform_fee_bps: 10_000, ..PaymentTerms::default() }, ..sandbox.clone() };
        assert!(greedy.validate().unwrap_err().to_string().contains("platform_fee_bps"));
        let slow = PaymentsSection { call_timeout_ms: 5_000, ..sandbox };
        assert!(slow.validate().unwrap_err().to_string().contains("call_timeout_ms"));
        assert!(toml::from_str::<PaymentsSection>("provider = \"paypal\"\n").unwrap_err().to_string().contains("paypal"));
        assert!(toml::from_str::<PaymentsSection>("[terms]\ncurrency = \"dollars\"\n").is_err());
        // Stripe needs a key, and its requests must give up before the call does.
        let stripe: PaymentsSection =
            toml::from_str("provider = \"stripe\"\n[stripe]\nsecret_key = \"sk_test_x\"\napi_base = \"http://127.0.0.1:1\"\n").unwrap();
        assert!(stripe.validate().unwrap_err().to_string().contains("onboarding_url"), "contractors need somewhere to come back to");
        let stripe = PaymentsSection {
            stripe: StripeSection { onboarding_url: "https://app.example/payouts".into(), ..stripe.stripe.clone() },
            ..stripe
        };
        stripe.validate().unwrap();
        assert_eq!(stripe.for_city("ames").unwrap().unwrap().provider.name(), "stripe");
        assert!(!format!("{stripe:?}").contains("sk_test_x"), "Debug hides the key");
        let keyless = PaymentsSection { stripe: StripeSection::default(), ..stripe.clone() };
        if std::env::var_os("DISPATCH_STRIPE_SECRET_KEY").is_none() {
            assert!(keyless.validate().unwrap_err().to_string().contains("secret_key"));
        }
        let patient = PaymentsSection { stripe: StripeSection { timeout_ms: 4_000, ..stripe.stripe.clone() }, ..stripe };
        assert!(patient.validate().unwrap_err().to_string().contains("payments.stripe.timeout_ms"));
    }
}
