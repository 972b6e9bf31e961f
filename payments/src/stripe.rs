//! [`StripeProvider`]: the processor in production, over Stripe's HTTP API
//! (form-encoded requests, JSON answers) with `reqwest`.
//!
//! | call | Stripe |
//! |---|---|
//! | make a customer | `POST /v1/customers` under `dispatch-customer-<id>` (the same customer however often asked) |
//! | save a card | `POST /v1/setup_intents` (`usage=off_session`), then `POST /v1/setup_intents/{id}/confirm` with the card |
//! | confirm a card | `GET /v1/setup_intents/{id}` once the customer authenticated it |
//! | make a payout account | `POST /v1/accounts` (`type=express`, the `transfers` capability) under `dispatch-contractor-<id>` |
//! | payout account status | `GET /v1/accounts/{id}`: ready once `capabilities.transfers` is `active`; else `POST /v1/account_links` (`account_onboarding`, back to `onboarding_url`) for the contractor to finish |
//! | prepare | `POST /v1/payment_intents` — `capture_method=manual`, the card on file, unconfirmed: nothing held |
//! | authorize | `POST /v1/payment_intents/{id}/confirm` — `off_session` for a scheduled job's hold |
//! | capture | `POST /v1/payment_intents/{id}/capture` — `amount_to_capture` |
//! | void | `POST /v1/payment_intents/{id}/cancel` |
//! | refund | `POST /v1/refunds` — `payment_intent`, `amount` |
//! | payout | `POST /v1/transfers` — `destination` (the contractor's connected account), `transfer_group` |
//! | job of a webhook's object | `GET /v1/payment_intents/{id}` or `GET /v1/transfers/{id}`: `metadata[dispatch_job]` when `metadata[dispatch_scope]` is this city's (a 404: none) |
//! | confirm | `GET /v1/payment_intents/{id}` (a hold's status), `GET /v1/refunds?payment_intent=…` and `GET /v1/transfers?destination=…` matched on `metadata[dispatch_call]` |
//!
//! A hold is made in two requests so its id is known (and recorded) before
//! the card is asked: a reconciler reads its status, and never searches for
//! a hold that may exist. Every write sends the call's idempotency key
//! (`Idempotency-Key`); every object made (a hold, a refund, a transfer)
//! carries the call's metadata
//! (`dispatch_job`, `dispatch_step`, `dispatch_call`). Captures and cancels
//! take none (Stripe refuses it there): the reconciler reads the hold's status. A hold that
//! needs 3-D Secure comes back `requires_action` with the `client_secret`
//! the app completes it with; a card error (HTTP 402) is a decline; 409,
//! 429, 5xx and a lost connection are `Unavailable` (send the same call
//! again); any other refusal is `Rejected`.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use dispatch_engine::{ContractorId, CustomerId, Money};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::provider::{
    Call, CallKey, Card, CardSaved, CardSetup, Outcome, PayeeStatus, PaymentProvider, ProviderError, customer_key, payee_key, wrong_call,
};

/// How to reach Stripe.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StripeConfig {
    /// The API's base URL (a simulator's in tests).
    pub api_base: String,
    /// The secret key, `sk_live_…` or `sk_test_…`.
    pub secret_key: String,
    /// How long one request may take, ms.
    pub timeout_ms: u64,
    /// Whose calls these are, when several share one Stripe account (a
    /// city: job ids, and so the keys made of them, are per city). It
    /// prefixes every idempotency key and is `dispatch_scope` in every
    /// object's metadata, which the reconciler matches as well as the call.
    pub scope: String,
    /// Where a contractor comes back to from Stripe's hosted onboarding of their payout account.
    pub onboarding_url: String,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .field("timeout_ms", &self.timeout_ms)
            .field("scope", &self.scope)
            .field("onboarding_url", &self.onboarding_url)
            .finish_non_exhaustive()
    }
}

impl Default for StripeConfig {
    fn default() -> Self {
        Self {
            api_base: "https://api.stripe.com".into(),
            secret_key: String::new(),
            timeout_ms: 10_000,
            scope: String::new(),
            onboarding_url: String::new(),
        }
    }
}

/// A PaymentIntent, as far as it is read.
#[derive(Debug, Deserialize)]
struct PaymentIntent {
    id: String,
    status: String,
    amount: u64,
    #[serde(default, deserialize_with = "zero_if_null")]
    amount_received: u64,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    last_payment_error: Option<ErrorDetail>,
}

fn zero_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(Option::<u64>::deserialize(d)?.unwrap_or(0))
}

/// A SetupIntent, as far as it is read.
#[derive(Debug, Deserialize)]
struct SetupIntent {
    id: String,
    status: String,
    #[serde(default)]
    customer: Option<String>,
    #[serde(default)]
    payment_method: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    last_setup_error: Option<ErrorDetail>,
}

/// Any object, by its id alone (a Customer).
#[derive(Debug, Deserialize)]
struct Object {
    id: String,
}

/// A Refund or a Transfer, as far as it is read.
#[derive(Debug, Deserialize)]
struct Movement {
    id: String,
    amount: u64,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct List<T> {
    data: Vec<T>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

/// A request that did not return the object asked for.
enum Failure {
    /// The card refused (HTTP 402).
    Card(ErrorDetail),
    /// Anything else.
    Provider(ProviderError),
}

impl From<ProviderError> for Failure {
    fn from(e: ProviderError) -> Self {
        Failure::Provider(e)
    }
}

/// The decline code and the customer's message of a card error.
fn decline(e: ErrorDetail) -> (String, String) {
    (e.decline_code.or(e.code).unwrap_or_else(|| "card_declined".into()), e.message.unwrap_or_else(|| "Your card was declined.".into()))
}

/// `Declined` of a card error.
fn declined(e: ErrorDetail) -> Outcome {
    let (code, message) = decline(e);
    Outcome::Declined { code, message }
}

/// `Declined` of a card error at setup.
fn card_declined(e: ErrorDetail) -> CardSaved {
    let (code, message) = decline(e);
    CardSaved::Declined { code, message }
}

/// A captured hold: what it received, or (a simulator that does not report
/// it) what the capture asked for, which a capture takes whole or not at all.
fn captured(pi: PaymentIntent, asked: Money) -> Outcome {
    Outcome::Captured { amount: Money(if pi.amount_received > 0 { pi.amount_received } else { asked.0 }), intent: pi.id }
}

/// The outcome a hold's status stands for.
fn hold_outcome(pi: PaymentIntent) -> Result<Outcome, ProviderError> {
    match pi.status.as_str() {
        "requires_capture" | "succeeded" | "processing" => Ok(Outcome::Held { intent: pi.id, amount: Money(pi.amount) }),
        "requires_action" => Ok(Outcome::ActionRequired { client_secret: pi.client_secret.unwrap_or_default(), intent: pi.id }),
        "requires_payment_method" => Ok(declined(pi.last_payment_error.unwrap_or_default())),
        "canceled" => Ok(Outcome::Voided { intent: pi.id }),
        other => Err(ProviderError::Rejected(format!("hold {} is {other}", pi.id))),
    }
}

/// The processor over Stripe's API.
pub struct StripeProvider {
    config: StripeConfig,
    http: reqwest::Client,
}

impl std::fmt::Debug for StripeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeProvider").field("config", &self.config).finish_non_exhaustive()
    }
}

impl StripeProvider {
    /// A client for `config`.
    pub fn new(config: StripeConfig) -> Result<Self, ProviderError> {
        if config.secret_key.is_empty() {
            return Err(ProviderError::Rejected("stripe: no secret key configured".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms.max(1)))
            .build()
            .map_err(|e| ProviderError::Rejected(format!("stripe: cannot build the HTTP client: {e}")))?;
        Ok(Self { config, http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.api_base.trim_end_matches('/'))
    }

    /// A write that makes an object (a hold, a refund, a transfer) for `call`:
    /// under its idempotency key, with its metadata on the object.
    async fn create<T: DeserializeOwned>(&self, path: &str, call: &Call, mut form: Vec<(String, String)>) -> Result<T, Failure> {
        form.extend(call.key().metadata().into_iter().map(|(k, v)| (format!("metadata[{k}]"), v)));
        if !self.config.scope.is_empty() {
            form.push(("metadata[dispatch_scope]".into(), self.config.scope.clone()));
        }
        self.post(path, &call.idempotency_key(), form).await
    }

    /// A write under `idempotency_key`.
    async fn post<T: DeserializeOwned>(&self, path: &str, idempotency_key: &str, form: Vec<(String, String)>) -> Result<T, Failure> {
        let key =
            if self.config.scope.is_empty() { idempotency_key.to_owned() } else { format!("{}/{idempotency_key}", self.config.scope) };
        let request = self.http.post(self.url(path)).bearer_auth(&self.config.secret_key).header("Idempotency-Key", key).form(&form);
        self.send(request).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T, ProviderError> {
        let request = self.http.get(self.url(path)).bearer_auth(&self.config.secret_key).query(query);
        match self.send(request).await {
            Ok(t) => Ok(t),
            Err(Failure::Provider(e)) => Err(e),
            Err(Failure::Card(e)) => Err(ProviderError::Rejected(e.message.unwrap_or_default())),
        }
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, Failure> {
        let response = request.send().await.map_err(|e| ProviderError::Unavailable(format!("stripe: {e}")))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| ProviderError::Unavailable(format!("stripe: reading the answer: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| ProviderError::Rejected(format!("stripe: an answer not understood: {e}")).into());
        }
        let detail = serde_json::from_slice::<ErrorBody>(&body).map(|b| b.error).unwrap_or_default();
        let message = detail.message.clone().unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
        Err(match status.as_u16() {
            402 => Failure::Card(detail),
            409 | 429 | 500..=599 => ProviderError::Unavailable(format!("stripe {status}: {message}")).into(),
            _ => ProviderError::Rejected(format!("stripe {status}: {message}")).into(),
        })
    }
}

/// What a card setup's status says: `asked` is the setup as sent (its card
/// is the one saved when the answer does not name it).
fn setup_outcome(si: SetupIntent, asked: Option<&CardSetup>) -> CardSaved {
    match si.status.as_str() {
        "succeeded" => {
            let customer = si.customer.or_else(|| asked.map(|a| a.customer.clone())).unwrap_or_default();
            let payment_method = si.payment_method.or_else(|| asked.map(|a| a.payment_method.clone())).unwrap_or_default();
            CardSaved::Saved { card: Card { customer, payment_method } }
        }
        "requires_payment_method" | "canceled" => card_declined(si.last_setup_error.unwrap_or_default()),
        // requires_action, requires_confirmation, processing: the customer (or the bank) has yet to finish.
        _ => CardSaved::ActionRequired { client_secret: si.client_secret.unwrap_or_default(), setup: si.id },
    }
}

/// `Err` of a failure where a card error cannot be.
fn no_card_error(f: Failure) -> ProviderError {
    match f {
        Failure::Provider(e) => e,
        Failure::Card(e) => ProviderError::Rejected(e.message.unwrap_or_else(|| "card error".into())),
    }
}

fn amount(m: Money) -> (String, String) {
    ("amount".into(), m.0.to_string())
}

/// The object `key`'s call made, of this `scope`, among `items`.
fn by_call<T>(items: Vec<T>, key: &CallKey, scope: &str, metadata: impl Fn(&T) -> &HashMap<String, String>) -> Option<T> {
    let call = key.idempotency_key();
    items.into_iter().find(|item| {
        let meta = metadata(item);
        meta.get("dispatch_call") == Some(&call) && meta.get("dispatch_scope").map_or("", String::as_str) == scope
    })
}

#[async_trait]
impl PaymentProvider for StripeProvider {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn prepare(&self, call: &Call) -> Result<Outcome, ProviderError> {
        let Call::Prepare { card, amount: held, currency, .. } = call else { return Err(wrong_call("prepare", call)) };
        let mut form = vec![
            amount(*held),
            ("currency".into(), currency.code().to_ascii_lowercase()),
            ("payment_method".into(), card.payment_method.clone()),
            ("payment_method_types[]".into(), "card".into()),
            ("capture_method".into(), "manual".into()),
        ];
        // A card the app just collected belongs to no customer at Stripe yet.
        if !card.customer.is_empty() {
            form.push(("customer".into(), card.customer.clone()));
        }
        let pi: PaymentIntent = self.create("/v1/payment_intents", call, form).await.map_err(no_card_error)?;
        Ok(Outcome::Prepared { intent: pi.id })
    }

    async fn authorize(&self, call: &Call) -> Result<Outcome, ProviderError> {
        let Call::Authorize { key, intent, off_session } = call else { return Err(wrong_call("authorize", call)) };
        let form = if *off_session { vec![("off_session".into(), "true".into())] } else { Vec::new() };
        match self.post::<PaymentIntent>(&format!("/v1/payment_intents/{intent}/confirm"), &key.idempotency_key(), form).await {
            Ok(pi) => hold_outcome(pi),
            Err(Failure::Card(e)) => Ok(declined(e)),
            Err(Failure::Provider(e)) => Err(e),
        }
    }

    async fn capture(&self, call: &Call) -> Result<Outcome, ProviderError> {
        let Call::Capture { key, intent, amount: charged } = call else { return Err(wrong_call("capture", call)) };
        let form = vec![("amount_to_capture".into(), charged.0.to_string())];
        let pi: PaymentIntent =
            self.post(&format!("/v1/payment_intents/{intent}/capture"), &key.idempotency_key(), form).await.map_err(no_card_error)?;
        Ok(captured(pi, *charged))
    }

    async fn void(&self, call: &Call) -> Result<Outcome, ProviderError> {
        let Call::Void { key, intent } = call else { return Err(wrong_call("void", call)) };
        let pi: PaymentIntent =
            self.post(&format!("/v1/payment_intents/{intent}/cancel"), &key.idempotency_key(), Vec::new()).await.map_err(no_card_error)?;
        Ok(Outcome::Voided { intent: pi.id })
    }

    async fn refund(&self, call: &Call) -> Result<Outcome, ProviderError> {
        let Call::Refund { intent, amount: back, .. } = call else { return Err(wrong_call("refund", call)) };
        let form = vec![("payment_intent".into(), intent.clone()), amount(*back)];
        let refund: Movement = self.create("/v1/refunds", call, form).await.map_err(no_card_error)?;
        Ok(Outcome::Refunded { refund: refund.id, amount: Money(refund.amount) })
    }

    async fn payout(&self, call: &Call) -> Result<Outcome, ProviderError> {
        let Call::Payout { key, destination, amount: paid, currency } = call else { return Err(wrong_call("payout", call)) };
        let form = vec![
            amount(*paid),
            ("currency".into(), currency.code().to_ascii_lowercase()),
            ("destination".into(), destination.clone()),
            ("transfer_group".into(), format!("dispatch-job-{}", key.job.0)),
        ];
        let transfer: Movement = self.create("/v1/transfers", call, form).await.map_err(no_card_error)?;
        Ok(Outcome::PaidOut { transfer: transfer.id, amount: Money(transfer.amount) })
    }

    async fn save_card(&self, setup: &CardSetup) -> Result<CardSaved, ProviderError> {
        let form = vec![
            ("customer".into(), setup.customer.clone()),
            ("usage".into(), "off_session".into()),
            ("payment_method_types[]".into(), "card".into()),
            ("metadata[dispatch_setup]".into(), setup.key.clone()),
        ];
        let created: SetupIntent = self.post("/v1/setup_intents", &format!("{}-create", setup.key), form).await.map_err(no_card_error)?;
        let form = vec![("payment_method".into(), setup.payment_method.clone())];
        let confirmed = match self.post::<SetupIntent>(&format!("/v1/setup_intents/{}/confirm", created.id), &setup.key, form).await {
            Ok(si) => si,
            Err(Failure::Card(e)) => return Ok(card_declined(e)),
            Err(Failure::Provider(e)) => return Err(e),
        };
        Ok(setup_outcome(confirmed, Some(setup)))
    }

    async fn make_customer(&self, customer: CustomerId) -> Result<String, ProviderError> {
        let key = customer_key(customer);
        let mut form = vec![("metadata[dispatch_customer]".into(), customer.0.to_string())];
        if !self.config.scope.is_empty() {
            form.push(("metadata[dispatch_scope]".into(), self.config.scope.clone()));
        }
        let made: Object = self.post("/v1/customers", &key, form).await.map_err(no_card_error)?;
        Ok(made.id)
    }

    async fn make_payee(&self, contractor: ContractorId) -> Result<String, ProviderError> {
        let mut form = vec![
            ("type".into(), "express".into()),
            ("capabilities[transfers][requested]".into(), "true".into()),
            ("metadata[dispatch_contractor]".into(), contractor.0.to_string()),
        ];
        if !self.config.scope.is_empty() {
            form.push(("metadata[dispatch_scope]".into(), self.config.scope.clone()));
        }
        let made: Object = self.post("/v1/accounts", &payee_key(contractor), form).await.map_err(no_card_error)?;
        Ok(made.id)
    }

    async fn payee_status(&self, account: &str) -> Result<PayeeStatus, ProviderError> {
        let found: serde_json::Value = self.get(&format!("/v1/accounts/{account}"), &[]).await?;
        if found["capabilities"]["transfers"] == "active" {
            return Ok(PayeeStatus::Ready);
        }
        if self.config.onboarding_url.is_empty() {
            return Err(ProviderError::Rejected(
                "payments.stripe.onboarding_url is not set: contractors have nowhere to return from onboarding".into(),
            ));
        }
        let form = vec![
            ("account".into(), account.to_owned()),
            ("type".into(), "account_onboarding".into()),
            ("refresh_url".into(), self.config.onboarding_url.clone()),
            ("return_url".into(), self.config.onboarding_url.clone()),
        ];
        // A link is short-lived and made anew each time: no idempotency key to reuse.
        let key =
            format!("{}-link-{}", account, std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis()));
        let link: serde_json::Value = self.post("/v1/account_links", &key, form).await.map_err(no_card_error)?;
        let url = link["url"].as_str().ok_or_else(|| ProviderError::Rejected("stripe: an account link without its url".into()))?;
        Ok(PayeeStatus::Onboarding { url: url.to_owned() })
    }

    async fn confirm_card(&self, setup: &str) -> Result<CardSaved, ProviderError> {
        let si: SetupIntent = self.get(&format!("/v1/setup_intents/{setup}"), &[]).await?;
        Ok(setup_outcome(si, None))
    }

    async fn job_of(&self, id: &str) -> Result<Option<dispatch_engine::JobId>, ProviderError> {
        let path = if id.starts_with("tr_") { format!("/v1/transfers/{id}") } else { format!("/v1/payment_intents/{id}") };
        let object: serde_json::Value = match self.get(&path, &[]).await {
            // Not this account's object: not this city's job.
            Err(ProviderError::Rejected(why)) if why.starts_with("stripe 404") => return Ok(None),
            other => other?,
        };
        let meta = &object["metadata"];
        let ours = meta["dispatch_scope"].as_str().unwrap_or("") == self.config.scope;
        Ok(meta["dispatch_job"].as_str().and_then(|j| j.parse().ok()).map(dispatch_engine::JobId).filter(|_| ours))
    }

    async fn confirm(&self, call: &Call) -> Result<Option<Outcome>, ProviderError> {
        let key = call.key();
        match call {
            Call::Prepare { .. } => Ok(None),
            Call::Authorize { intent, .. } => {
                let pi: PaymentIntent = self.get(&format!("/v1/payment_intents/{intent}"), &[]).await?;
                if pi.status == "requires_confirmation" { Ok(None) } else { hold_outcome(pi).map(Some) }
            }
            Call::Capture { intent, amount: asked, .. } => {
                let pi: PaymentIntent = self.get(&format!("/v1/payment_intents/{intent}"), &[]).await?;
                Ok((pi.status == "succeeded").then(|| captured(pi, *asked)))
            }
            Call::Void { intent, .. } => {
                let pi: PaymentIntent = self.get(&format!("/v1/payment_intents/{intent}"), &[]).await?;
                Ok((pi.status == "canceled").then_some(Outcome::Voided { intent: pi.id }))
            }
            Call::Refund { intent, .. } => {
                let list: List<Movement> = self.get("/v1/refunds", &[("payment_intent", intent), ("limit", "100")]).await?;
                Ok(by_call(list.data, &key, &self.config.scope, |m| &m.metadata)
                    .map(|m| Outcome::Refunded { refund: m.id, amount: Money(m.amount) }))
            }
            Call::Payout { destination, .. } => {
                let list: List<Movement> = self.get("/v1/transfers", &[("destination", destination), ("limit", "100")]).await?;
                Ok(by_call(list.data, &key, &self.config.scope, |m| &m.metadata)
                    .map(|m| Outcome::PaidOut { transfer: m.id, amount: Money(m.amount) }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reconciler_finds_a_call_s_object_only_in_its_own_scope() {
        let key = CallKey::new(dispatch_engine::JobId(7), crate::provider::Step::Refund(1));
        let object = |scope: Option<&str>| {
            let mut meta: HashMap<String, String> = key.metadata().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if let Some(scope) = scope {
                meta.insert("dispatch_scope".into(), scope.into());
            }
            meta
        };
        // Job 7 of two cities on one account: each city finds its own refund.
        let found = |scope: &str| by_call(vec![object(Some("ames")), object(Some("des-moines"))], &key, scope, |m| m);
        assert_eq!(found("des-moines").and_then(|m| m.get("dispatch_scope").cloned()).as_deref(), Some("des-moines"));
        assert_eq!(found("ames").and_then(|m| m.get("dispatch_scope").cloned()).as_deref(), Some("ames"));
        assert!(found("omaha").is_none());
        assert!(by_call(vec![object(None)], &key, "", |m| m).is_some(), "unscoped finds unscoped");
        assert!(by_call(vec![object(None)], &key, "ames", |m| m).is_none());
    }

    #[test]
    fn a_missing_key_is_refused_and_never_shown() {
        let err = StripeProvider::new(StripeConfig::default()).unwrap_err();
        assert!(matches!(&err, ProviderError::Rejected(m) if m.contains("no secret key")), "{err}");
        let config = StripeConfig { secret_key: "sk_live_do_not_print".into(), ..StripeConfig::default() };
        assert!(!format!("{config:?}").contains("sk_live"), "Debug hides the key");
        assert!(StripeProvider::new(config).is_ok());
    }
}
