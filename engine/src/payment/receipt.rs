//! [`Receipt`]: a job's payment as its parties see it — the receipt once it
//! is charged. The actors answer money requests with it and the wire carries
//! it as it is.

use serde::{Deserialize, Serialize};

use super::machine::{PaymentMachine, PaymentState, Proposal};
use super::timing;
use crate::types::{Money, Timestamp};

/// A job's payment as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Where the payment is.
    pub state: PaymentState,
    /// The city's currency (ISO 4217).
    pub currency: String,
    /// The price quoted.
    pub quote: Money,
    /// Held on the card now.
    pub held: Money,
    /// Extras proposed and waiting for the customer.
    pub extras_proposed: Option<Proposal>,
    /// Extras approved.
    pub extras_approved: Money,
    /// Charged.
    pub charged: Money,
    /// Given back.
    pub refunded: Money,
    /// The platform's fee, once released.
    pub platform_fee: Option<Money>,
    /// What the contractor is paid, once released.
    pub payout: Option<Money>,
    /// When the charge is paid out (the dispute window closes).
    pub payout_at: Option<Timestamp>,
}

impl PaymentMachine {
    /// The receipt of this payment, charged at `captured_at` if it was.
    #[must_use]
    pub fn receipt(&self, captured_at: Option<Timestamp>) -> Receipt {
        Receipt {
            state: self.state(),
            currency: self.terms().currency.code().to_owned(),
            quote: self.quote(),
            held: self.held(),
            extras_proposed: self.proposal().cloned(),
            extras_approved: Money(self.capture_due().0.saturating_sub(self.quote().0)),
            charged: self.captured(),
            refunded: self.refunded(),
            platform_fee: self.release().map(|r| r.fee),
            payout: self.release().map(|r| r.payout),
            payout_at: captured_at.map(|at| timing::release_at(at, self.terms())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payment::{PaymentEvent, PaymentTerms};
    use crate::types::{ContractorId, JobId};

    #[test]
    fn the_receipt_shows_the_lines_of_a_charged_and_released_job() {
        let terms = PaymentTerms::default();
        let mut m = PaymentMachine::new(JobId(1), Money(10_000), terms.clone()).unwrap();
        let quoted = m.receipt(None);
        assert_eq!((quoted.state, quoted.held, quoted.charged, quoted.payout_at), (PaymentState::Quoted, Money(0), Money(0), None));
        m.apply(PaymentEvent::HoldPlaced { amount: terms.hold_for(Money(10_000)) }).unwrap();
        m.apply(PaymentEvent::ExtrasProposed { amount: Money(1_500), reason: "a valve".into() }).unwrap();
        assert_eq!(m.receipt(None).extras_proposed.map(|p| p.amount), Some(Money(1_500)));
        m.apply(PaymentEvent::ExtrasApproved).unwrap();
        m.apply(PaymentEvent::Captured { amount: Money(11_500) }).unwrap();
        m.apply(PaymentEvent::Refunded { amount: Money(500) }).unwrap();
        m.apply(PaymentEvent::PayoutReleased { contractor: ContractorId(7) }).unwrap();
        let r = m.receipt(Some(Timestamp(0)));
        assert_eq!((r.quote, r.extras_approved, r.charged, r.refunded), (Money(10_000), Money(1_500), Money(11_500), Money(500)));
        // 2.9 % of the 11 000 kept, rounded half up: 319; the rest is the contractor's.
        assert_eq!((r.platform_fee, r.payout), (Some(Money(319)), Some(Money(10_681))));
        assert_eq!(r.payout_at, Some(Timestamp(72 * 3_600_000)));
        assert_eq!(r.currency, "USD");
    }
}
