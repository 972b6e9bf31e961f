//! A customer's card on file: saved through the city's processor with a
//! setup step, so a post that names no card — and a scheduled job's hold,
//! placed a day ahead while the customer is away — takes it.
//!
//! The customer's [`CustomerRecord`] is written before each processor call
//! it leads to (the processor's customer first, then the setup's number), so
//! a retry after a crash or a timeout makes the same customer and sends the
//! same setup key: the card is saved once. One save or confirmation per
//! customer runs at a time; another meanwhile is told to retry.

use dispatch_engine::CustomerId;
use dispatch_payments::{Card, CardSaved, CardSetup, PaymentProvider, ProviderError};
use dispatch_storage::{Kind, codec};

use crate::error::{ActorError, Result};
use crate::handle::Dispatch;
use crate::record::{CustomerRecord, PendingCard};
use crate::requests::RequestClaim;

/// The payment method of a post that names none, from a customer with no
/// card on file: Stripe's test Visa card, which the sandbox and Stripe's
/// test mode accept. A live deployment has the customer save a card first.
pub const DEFAULT_PAYMENT_METHOD: &str = "pm_card_visa";

/// Where a customer's card on file stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardOnFile {
    /// No card saved (nor waiting).
    None,
    /// Saved: posts without a payment method are held on it.
    Saved {
        /// The card.
        payment_method: String,
    },
    /// The customer must authenticate the card (3-D Secure) before it is saved.
    ActionRequired {
        /// The card waiting.
        payment_method: String,
        /// What the app completes the authentication with.
        client_secret: String,
    },
}

impl CardOnFile {
    /// What `record` says: a card waiting for authentication first, else the one saved.
    #[must_use]
    pub fn of(record: Option<&CustomerRecord>) -> Self {
        let Some(record) = record else { return CardOnFile::None };
        match (&record.pending, &record.card) {
            (Some(PendingCard { payment_method, client_secret: Some(secret), .. }), _) => {
                CardOnFile::ActionRequired { payment_method: payment_method.clone(), client_secret: secret.clone() }
            }
            (_, Some(card)) => CardOnFile::Saved { payment_method: card.clone() },
            (_, None) => CardOnFile::None,
        }
    }
}

/// The card a post is held on: the one it names (on the customer's file if
/// it is the saved one), else the saved card, else [`DEFAULT_PAYMENT_METHOD`].
#[must_use]
pub fn card_for(record: Option<&CustomerRecord>, payment_method: Option<String>) -> Card {
    let on_file =
        record.and_then(|r| r.card.as_ref().map(|pm| Card { customer: r.processor_customer.clone(), payment_method: pm.clone() }));
    match (payment_method, on_file) {
        (Some(asked), Some(card)) if card.payment_method == asked => card,
        (Some(asked), _) => Card { customer: String::new(), payment_method: asked },
        (None, Some(card)) => card,
        (None, None) => Card { customer: String::new(), payment_method: DEFAULT_PAYMENT_METHOD.into() },
    }
}

impl Dispatch {
    /// Saves `payment_method` as `customer`'s card for later holds.
    /// `CardDeclined` if the card refuses; [`CardOnFile::ActionRequired`]
    /// until the customer authenticates it and [`Dispatch::confirm_card`] is asked.
    pub async fn save_card(&self, customer: CustomerId, payment_method: String) -> Result<CardOnFile> {
        let processor = self.card_processor(customer)?;
        let _claim = self.claim_card(customer)?;
        let mut record = self.customer_record(customer).await?.unwrap_or_else(|| CustomerRecord::new(customer));
        if record.processor_customer.is_empty() {
            record.processor_customer = processor.make_customer(customer).await.map_err(|e| provider_error(customer, e))?;
            self.put_customer(&record).await?;
        }
        // The same card as a setup under way goes under the same key: saved once.
        let n = match &record.pending {
            Some(pending) if pending.payment_method == payment_method => pending.n,
            _ => {
                record.setups += 1;
                let pending = PendingCard { n: record.setups, payment_method: payment_method.clone(), setup: None, client_secret: None };
                record.pending = Some(pending);
                self.put_customer(&record).await?;
                record.setups
            }
        };
        let setup = CardSetup { customer: record.processor_customer.clone(), payment_method, key: CardSetup::key_for(customer, n) };
        let saved = processor.save_card(&setup).await.map_err(|e| provider_error(customer, e))?;
        self.settle_card(record, saved).await
    }

    /// Asks the processor whether the card waiting for authentication is now saved.
    pub async fn confirm_card(&self, customer: CustomerId) -> Result<CardOnFile> {
        let processor = self.card_processor(customer)?;
        let _claim = self.claim_card(customer)?;
        let record = self.customer_record(customer).await?;
        let Some(setup) = record.as_ref().and_then(|r| r.pending.as_ref()).and_then(|p| p.setup.clone()) else {
            return Err(ActorError::Card(customer, "no card waits for authentication: send save_card".into()));
        };
        let saved = processor.confirm_card(&setup).await.map_err(|e| provider_error(customer, e))?;
        self.settle_card(record.unwrap_or_else(|| CustomerRecord::new(customer)), saved).await
    }

    /// `customer`'s card on file.
    pub async fn card_on_file(&self, customer: CustomerId) -> Result<CardOnFile> {
        Ok(CardOnFile::of(self.customer_record(customer).await?.as_ref()))
    }

    /// The card a post of `customer` naming `payment_method` is held on
    /// ([`card_for`]). A store that cannot be read (an outage, served from the
    /// degraded-mode journal) does not stop the post: it is held on the card
    /// it names, or the default.
    pub(crate) async fn card_to_hold(&self, customer: CustomerId, payment_method: Option<String>) -> Card {
        match self.customer_record(customer).await {
            Ok(record) => card_for(record.as_ref(), payment_method),
            Err(e) => {
                tracing::warn!(%customer, %e, "card on file not read; the post is held on the card it names");
                card_for(None, payment_method)
            }
        }
    }

    /// The customer's record, if they ever saved a card here.
    pub async fn customer_record(&self, customer: CustomerId) -> Result<Option<CustomerRecord>> {
        let blob = self.shared.store.get(Kind::Customer, customer.0).await?;
        Ok(blob.map(|b| codec::decode(&b)).transpose()?)
    }

    /// Stores what the processor answered of a setup.
    async fn settle_card(&self, mut record: CustomerRecord, saved: CardSaved) -> Result<CardOnFile> {
        let customer = record.customer;
        let declined = match saved {
            CardSaved::Saved { card } => {
                record.card = Some(card.payment_method);
                record.pending = None;
                None
            }
            CardSaved::ActionRequired { setup, client_secret } => {
                let pending = record.pending.as_mut().ok_or_else(|| ActorError::Card(customer, "no card setup is under way".into()))?;
                pending.setup = Some(setup);
                pending.client_secret = Some(client_secret);
                None
            }
            CardSaved::Declined { message, .. } => {
                record.pending = None;
                Some(message)
            }
        };
        self.put_customer(&record).await?;
        match declined {
            Some(message) => Err(ActorError::CardDeclined(customer, message)),
            None => Ok(CardOnFile::of(Some(&record))),
        }
    }

    async fn put_customer(&self, record: &CustomerRecord) -> Result<()> {
        Ok(self.shared.store.put(Kind::Customer, record.customer.0, codec::encode(record)?).await?)
    }

    fn card_processor(&self, customer: CustomerId) -> Result<&dyn PaymentProvider> {
        self.shared.processor.as_deref().ok_or_else(|| ActorError::Card(customer, "payments are off in this city".into()))
    }

    fn claim_card(&self, customer: CustomerId) -> Result<RequestClaim<'_>> {
        RequestClaim::take(&self.shared.card_setups, customer.0)
            .ok_or_else(|| ActorError::Unavailable(format!("a card of customer {customer} is being saved; retry")))
    }
}

/// The error of a processor call about `customer`'s card.
fn provider_error(customer: CustomerId, e: ProviderError) -> ActorError {
    match e {
        ProviderError::Unavailable(why) => ActorError::Unavailable(why),
        ProviderError::Rejected(why) => ActorError::CardRejected(customer, why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(card: Option<&str>, pending: Option<PendingCard>) -> CustomerRecord {
        CustomerRecord { card: card.map(Into::into), pending, processor_customer: "cus_7".into(), ..CustomerRecord::new(CustomerId(7)) }
    }

    #[test]
    fn a_post_takes_the_card_it_names_else_the_one_on_file() {
        let saved = record(Some("pm_saved"), None);
        let on_file = Card { customer: "cus_7".into(), payment_method: "pm_saved".into() };
        assert_eq!(card_for(Some(&saved), None), on_file);
        assert_eq!(card_for(Some(&saved), Some("pm_saved".into())), on_file, "the saved card named: on the customer's file");
        assert_eq!(card_for(Some(&saved), Some("pm_other".into())), Card { customer: String::new(), payment_method: "pm_other".into() });
        assert_eq!(card_for(None, None).payment_method, DEFAULT_PAYMENT_METHOD);
        assert_eq!(card_for(Some(&record(None, None)), None).customer, "", "a customer with no saved card");
    }

    #[test]
    fn a_card_waiting_for_authentication_shows_before_the_saved_one() {
        assert_eq!(CardOnFile::of(None), CardOnFile::None);
        assert_eq!(CardOnFile::of(Some(&record(Some("pm_1"), None))), CardOnFile::Saved { payment_method: "pm_1".into() });
        let asked = PendingCard { n: 2, payment_method: "pm_2".into(), setup: None, client_secret: None };
        assert_eq!(CardOnFile::of(Some(&record(Some("pm_1"), Some(asked.clone())))), CardOnFile::Saved { payment_method: "pm_1".into() });
        let waiting = PendingCard { setup: Some("seti_2".into()), client_secret: Some("s".into()), ..asked };
        assert_eq!(
            CardOnFile::of(Some(&record(Some("pm_1"), Some(waiting)))),
            CardOnFile::ActionRequired { payment_method: "pm_2".into(), client_secret: "s".into() }
        );
    }
}
