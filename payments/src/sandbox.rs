//! [`SandboxProvider`]: the default processor, in memory and deterministic.
//!
//! It keeps its own records — holds, charges, refunds, transfers — each with
//! its call's metadata, answers a repeated idempotency key with the first
//! answer, and can be told what to do next ([`Behaviour`]): decline, fail
//! (unavailable), hang, or ask for authentication. Cards behave by Stripe's
//! test payment methods: `pm_card_chargeDeclined` declines,
//! `pm_card_authenticationRequired` asks for authentication, anything else
//! holds (and saving a card behaves the same way). [`SandboxProvider::forget_keys`] drops the idempotency keys, as a
//! processor does after a day, so a test can check that the reconciler finds
//! what a call did by its metadata alone.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use dispatch_engine::{ContractorId, CustomerId, JobId, Money};

use crate::provider::{Call, CallKey, Card, CardSaved, CardSetup, Outcome, PayeeStatus, PaymentProvider, ProviderError, wrong_call};

/// What the sandbox does with the next call instead of its usual answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// A hold is declined (`card_declined`).
    Decline,
    /// The call is not made and answers `Unavailable`.
    Fail,
    /// The call is made and its answer never comes (the caller's timeout decides).
    Hang,
    /// A hold waits for the customer's authentication.
    RequireAction,
}

/// A hold as the sandbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Intent {
    id: String,
    key: CallKey,
    card: Card,
    /// Confirmed while the customer was away (a scheduled job's hold).
    off_session: bool,
    amount: Money,
    status: IntentStatus,
    captured: Money,
    refunded: Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IntentStatus {
    RequiresConfirmation,
    Declined,
    RequiresAction,
    RequiresCapture,
    Succeeded,
    Canceled,
}

/// A refund or a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Movement {
    id: String,
    key: CallKey,
    amount: Money,
}

#[derive(Debug, Default)]
struct Records {
    intents: Vec<Intent>,
    refunds: Vec<Movement>,
    transfers: Vec<Movement>,
    /// Idempotency key → the call and its first answer.
    answered: HashMap<String, (Call, Outcome)>,
    /// Card setups by idempotency key.
    setups: HashMap<String, (CardSetup, CardSaved)>,
    /// Setups the customer authenticated (by setup id).
    authenticated: std::collections::HashSet<String>,
    /// Payout accounts made, and those whose contractor has not finished onboarding.
    payees: std::collections::HashSet<String>,
    onboarding: std::collections::HashSet<String>,
    /// Whether new payout accounts wait for onboarding (else they are ready at once).
    payees_onboard: bool,
    next: VecDeque<Behaviour>,
    calls: usize,
}

/// The in-memory processor.
#[derive(Debug, Default)]
pub struct SandboxProvider {
    records: Mutex<Records>,
}

/// A job's money as the sandbox sees it (for tests and the demo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Statement {
    /// Holds placed on the card (confirmed, whatever came after).
    pub holds: usize,
    /// Of those, still holding money on the card (neither charged nor let go).
    pub open_holds: usize,
    /// Captures made.
    pub charges: usize,
    /// Charged in total.
    pub charged: Money,
    /// Refunded in total.
    pub refunded: Money,
    /// Transferred to contractors in total.
    pub paid_out: Money,
}

impl SandboxProvider {
    /// An empty sandbox.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The next call behaves as `behaviour` (queued, one call each).
    pub fn then(&self, behaviour: Behaviour) {
        self.lock().next.push_back(behaviour);
    }

    /// The customer completed the authentication `intent` waited for (in the app): it now holds.
    pub fn complete_action(&self, intent: &str) -> Result<(), ProviderError> {
        let mut r = self.lock();
        let hold = intent_mut(&mut r, intent)?;
        if hold.status != IntentStatus::RequiresAction {
            return Err(ProviderError::Rejected(format!("hold {intent} waits for no action")));
        }
        hold.status = IntentStatus::RequiresCapture;
        Ok(())
    }

    /// The customer authenticated the card setup `setup` (in the app): the card is saved.
    pub fn complete_setup(&self, setup: &str) -> Result<(), ProviderError> {
        let mut r = self.lock();
        let waiting = r.setups.values().any(|(_, saved)| matches!(saved, CardSaved::ActionRequired { setup: s, .. } if s == setup));
        if !waiting {
            return Err(ProviderError::Rejected(format!("card setup {setup} waits for no action")));
        }
        r.authenticated.insert(setup.to_owned());
        Ok(())
    }

    /// Payout accounts made from now on wait until [`Self::finish_onboarding`] (else they are ready at once).
    pub fn payees_onboard(&self, onboard: bool) {
        self.lock().payees_onboard = onboard;
    }

    /// The contractor finished onboarding `account` at its link: transfers to it go through.
    pub fn finish_onboarding(&self, account: &str) {
        self.lock().onboarding.remove(account);
    }

    /// The cards `job`'s holds were placed on, in the order they were made.
    #[must_use]
    pub fn cards(&self, job: JobId) -> Vec<Card> {
        self.lock().intents.iter().filter(|i| i.key.job == job).map(|i| i.card.clone()).collect()
    }

    /// Whether each of `job`'s holds was asked for while the customer was away, in the order they were made.
    #[must_use]
    pub fn off_session(&self, job: JobId) -> Vec<bool> {
        self.lock().intents.iter().filter(|i| i.key.job == job).map(|i| i.off_session).collect()
    }

    /// Forgets every idempotency key, as a processor does after a day.
    pub fn forget_keys(&self) {
        self.lock().answered.clear();
    }

    /// Calls received, including repeats and failures.
    #[must_use]
    pub fn calls(&self) -> usize {
        self.lock().calls
    }

    /// What happened to `job`'s money here.
    #[must_use]
    pub fn statement(&self, job: JobId) -> Statement {
        let r = self.lock();
        let mine = |key: &CallKey| key.job == job;
        let intents: Vec<&Intent> = r.intents.iter().filter(|i| mine(&i.key)).collect();
        Statement {
            holds: intents.iter().filter(|i| !matches!(i.status, IntentStatus::RequiresConfirmation | IntentStatus::Declined)).count(),
            open_holds: intents.iter().filter(|i| matches!(i.status, IntentStatus::RequiresCapture | IntentStatus::RequiresAction)).count(),
            charges: intents.iter().filter(|i| i.status == IntentStatus::Succeeded).count(),
            charged: Money(intents.iter().map(|i| i.captured.0).sum()),
            refunded: Money(r.refunds.iter().filter(|m| mine(&m.key)).map(|m| m.amount.0).sum()),
            paid_out: Money(r.transfers.iter().filter(|m| mine(&m.key)).map(|m| m.amount.0).sum()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `call`: the first answer to its key again, or `make` once.
    async fn run(
        &self,
        call: &Call,
        make: impl FnOnce(&mut Records, Option<Behaviour>) -> Result<Outcome, ProviderError>,
    ) -> Result<Outcome, ProviderError> {
        let (outcome, hang) = {
            let mut r = self.lock();
            r.calls += 1;
            let key = call.idempotency_key();
            if let Some(answer) = first_answer(&r.answered, &key, call) {
                return answer;
            }
            let behaviour = r.next.pop_front();
            if behaviour == Some(Behaviour::Fail) {
                return Err(ProviderError::Unavailable("sandbox: told to fail".into()));
            }
            let outcome = make(&mut r, behaviour)?;
            r.answered.insert(key, (call.clone(), outcome.clone()));
            (outcome, behaviour == Some(Behaviour::Hang))
        };
        if hang {
            // Made, and never answered: what a crash or a lost connection looks like from here.
            std::future::pending::<()>().await;
        }
        Ok(outcome)
    }
}

/// The first answer to idempotency `key`, if it was used before: again for
/// the same request, refused for another (as Stripe does).
fn first_answer<R: PartialEq, A: Clone>(answered: &HashMap<String, (R, A)>, key: &str, request: &R) -> Option<Result<A, ProviderError>> {
    let (first, answer) = answered.get(key)?;
    Some(if first == request {
        Ok(answer.clone())
    } else {
        Err(ProviderError::Rejected(format!("idempotency key {key} was used with different parameters")))
    })
}

fn intent_mut<'a>(r: &'a mut Records, id: &str) -> Result<&'a mut Intent, ProviderError> {
    r.intents.iter_mut().find(|i| i.id == id).ok_or_else(|| ProviderError::Rejected(format!("no such hold {id}")))
}

/// What a hold's status says of it.
fn outcome_of(hold: &Intent) -> Outcome {
    let intent = hold.id.clone();
    match hold.status {
        IntentStatus::RequiresConfirmation => Outcome::Prepared { intent },
        IntentStatus::Declined => Outcome::Declined { code: "card_declined".into(), message: "Your card was declined.".into() },
        IntentStatus::RequiresAction => Outcome::ActionRequired { client_secret: format!("{intent}_secret"), intent },
        IntentStatus::RequiresCapture | IntentStatus::Succeeded => Outcome::Held { intent, amount: hold.amount },
        IntentStatus::Canceled => Outcome::Voided { intent },
    }
}

fn id(prefix: &str, key: &CallKey) -> String {
    format!("{prefix}_{}", key.idempotency_key().trim_start_matches("dispatch-"))
}

#[async_trait]
impl PaymentProvider for SandboxProvider {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn prepare(&self, call: &Call) -> Result<Outcome, ProviderError> {
        let Call::Prepare { key, card, amount, .. } = call else { return Err(wrong_call("prepare", call)) };
        self.run(call, |r, _| {
            // Another prepare of the same hold (its key forgotten) makes another object; only one is ever confirmed.
            let id = format!("{}_{}", id("pi", key), r.intents.iter().filter(|i| i.key == *key).count() + 1);
            r.intents.push(Intent {
                id: id.clone(),
                key: *key,
                card: card.clone(),
                off_session: false,
                amount: *amount,
                status: IntentStatus::RequiresConfirmation,
                captured: Money(0),
                refunded: Money(0),
            });
            Ok(Outcome::Prepared { intent: id })
        })
        .await
    }

    async fn authorize(&self, call: &Call) -> Result<Outcome, ProviderError> {
        let Call::Authorize { intent, off_session, .. } = call else { return Err(wrong_call("authorize", call)) };
        self.run(call, |r, behaviour| {
            let hold = intent_mut(r, intent)?;
            if hold.status != IntentStatus::RequiresConfirmation {
                return Err(ProviderError::Rejected(format!("hold {intent} is already {:?}", hold.status)));
            }
            hold.off_session = *off_session;
            let declined = behaviour == Some(Behaviour::Decline) || hold.card.payment_method == "pm_card_chargeDeclined";
            let action = behaviour == Some(Behaviour::RequireAction) || hold.card.payment_method == "pm_card_authenticationRequired";
            hold.status = match (declined, action) {
                (true, _) => IntentStatus::Declined,
                (false, true) => IntentStatus::RequiresAction,
                (false, false) => IntentStatus::RequiresCapture,
            };
            Ok(outcome_of(hold))
        })
        .await
    }

    async fn capture(&self, call: &Call) -> Result<Outcome, ProviderError> {
        let Call::Capture { intent, amount, .. } = call else { return Err(wrong_call("capture", call)) };
        self.run(call, |r, _| {
            let held = intent_mut(r, intent)?;
            if held.status != IntentStatus::RequiresCapture {
                return Err(ProviderError::Rejected(format!("hold {intent} cannot be captured in status {:?}", held.status)));
            }
            if *amount > held.amount {
                return Err(ProviderError::Rejected(format!("a capture of {} is over the {} held", amount.0, held.amount.0)));
            }
            held.status = IntentStatus::Succeeded;
            held.captured = *amount;
            Ok(Outcome::Captured { intent: intent.clone(), amount: *amount })
        })
        .await
    }

    async fn void(&self, call: &Call) -> Result<Outcome, ProviderError> {
        let Call::Void { intent, .. } = call else { return Err(wrong_call("void", call)) };
        self.run(call, |r, _| {
            let held = intent_mut(r, intent)?;
            if !matches!(held.status, IntentStatus::RequiresCapture | IntentStatus::RequiresAction) {
                return Err(ProviderError::Rejected(format!("hold {intent} cannot be let go in status {:?}", held.status)));
            }
            held.status = IntentStatus::Canceled;
            Ok(Outcome::Voided { intent: intent.clone() })
        })
        .await
    }

    async fn refund(&self, call: &Call) -> Result<Outcome, ProviderError> {
        let Call::Refund { key, intent, amount } = call else { return Err(wrong_call("refund", call)) };
        self.run(call, |r, _| {
            let charged = intent_mut(r, intent)?;
            if charged.status != IntentStatus::Succeeded || charged.refunded.0 + amount.0 > charged.captured.0 {
                return Err(ProviderError::Rejected(format!("a refund of {} is over what {intent} has left", amount.0)));
            }
            charged.refunded = Money(charged.refunded.0 + amount.0);
            let refund = Movement { id: id("re", key), key: *key, amount: *amount };
            let outcome = Outcome::Refunded { refund: refund.id.clone(), amount: *amount };
            r.refunds.push(refund);
            Ok(outcome)
        })
        .await
    }

    async fn payout(&self, call: &Call) -> Result<Outcome, ProviderError> {
        let Call::Payout { key, amount, .. } = call else { return Err(wrong_call("payout", call)) };
        self.run(call, |r, _| {
            let transfer = Movement { id: id("tr", key), key: *key, amount: *amount };
            let outcome = Outcome::PaidOut { transfer: transfer.id.clone(), amount: *amount };
            r.transfers.push(transfer);
            Ok(outcome)
        })
        .await
    }

    async fn make_customer(&self, customer: CustomerId) -> Result<String, ProviderError> {
        self.lock().calls += 1;
        Ok(format!("cus_{}", crate::provider::customer_key(customer).replace('-', "_")))
    }

    async fn make_payee(&self, contractor: ContractorId) -> Result<String, ProviderError> {
        let mut r = self.lock();
        r.calls += 1;
        let account = format!("acct_{}", crate::provider::payee_key(contractor).replace('-', "_"));
        if r.payees.insert(account.clone()) && r.payees_onboard {
            r.onboarding.insert(account.clone());
        }
        Ok(account)
    }

    async fn payee_status(&self, account: &str) -> Result<PayeeStatus, ProviderError> {
        let mut r = self.lock();
        r.calls += 1;
        Ok(if r.onboarding.contains(account) {
            PayeeStatus::Onboarding { url: format!("https://sandbox.invalid/onboarding/{account}") }
        } else {
            PayeeStatus::Ready
        })
    }

    async fn save_card(&self, setup: &CardSetup) -> Result<CardSaved, ProviderError> {
        let mut r = self.lock();
        r.calls += 1;
        if let Some(answer) = first_answer(&r.setups, &setup.key, setup) {
            return answer;
        }
        let saved = match setup.payment_method.as_str() {
            "pm_card_visa_chargeDeclined" | "pm_card_chargeDeclined" => {
                CardSaved::Declined { code: "card_declined".into(), message: "Your card was declined.".into() }
            }
            "pm_card_authenticationRequired" => {
                CardSaved::ActionRequired { setup: format!("seti_{}", setup.key), client_secret: format!("seti_{}_secret", setup.key) }
            }
            _ => CardSaved::Saved { card: Card { customer: setup.customer.clone(), payment_method: setup.payment_method.clone() } },
        };
        r.setups.insert(setup.key.clone(), (setup.clone(), saved.clone()));
        Ok(saved)
    }

    async fn confirm_card(&self, setup: &str) -> Result<CardSaved, ProviderError> {
        let mut r = self.lock();
        r.calls += 1;
        let (asked, saved) = r
            .setups
            .values()
            .find(|(_, saved)| matches!(saved, CardSaved::ActionRequired { setup: s, .. } if s == setup))
            .ok_or_else(|| ProviderError::Rejected(format!("no such card setup {setup}")))?;
        Ok(if r.authenticated.contains(setup) {
            CardSaved::Saved { card: Card { customer: asked.customer.clone(), payment_method: asked.payment_method.clone() } }
        } else {
            saved.clone()
        })
    }

    async fn job_of(&self, id: &str) -> Result<Option<JobId>, ProviderError> {
        let r = self.lock();
        let hold = r.intents.iter().find(|i| i.id == id).map(|i| i.key.job);
        Ok(hold.or_else(|| r.transfers.iter().find(|t| t.id == id).map(|t| t.key.job)))
    }

    async fn confirm(&self, call: &Call) -> Result<Option<Outcome>, ProviderError> {
        let r = self.lock();
        let key = call.key();
        Ok(match call {
            Call::Prepare { .. } => None,
            Call::Authorize { intent, .. } => {
                r.intents.iter().find(|i| i.id == *intent && i.status != IntentStatus::RequiresConfirmation).map(outcome_of)
            }
            Call::Capture { intent, .. } => r
                .intents
                .iter()
                .find(|i| i.id == *intent && i.status == IntentStatus::Succeeded)
                .map(|i| Outcome::Captured { intent: i.id.clone(), amount: i.captured }),
            Call::Void { intent, .. } => r
                .intents
                .iter()
                .find(|i| i.id == *intent && i.status == IntentStatus::Canceled)
                .map(|i| Outcome::Voided { intent: i.id.clone() }),
            Call::Refund { .. } => {
                r.refunds.iter().find(|m| m.key == key).map(|m| Outcome::Refunded { refund: m.id.clone(), amount: m.amount })
            }
            Call::Payout { .. } => {
                r.transfers.iter().find(|m| m.key == key).map(|m| Outcome::PaidOut { transfer: m.id.clone(), amount: m.amount })
            }
        })
    }
}

#[cfg(test)]
#[path = "sandbox_tests.rs"]
mod tests;
