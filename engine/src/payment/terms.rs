//! [`PaymentTerms`]: a city's currency and the marketplace's money rules —
//! the hold's margin for extras, the platform fee, the cancellation policy,
//! the dispute window — and the two roundings they need.
//!
//! Amounts are [`Money`]: integer minor units (cents) of the city's one
//! currency. Rates are basis points (1 bp = 0.01 %), so no float touches money.
//!
//! Rounding, stated once:
//! - **The hold** is `quote × (10 000 + margin) / 10 000` rounded **up** to
//!   the minor unit: the hold always covers the quote and its whole margin.
//! - **The platform fee** is `amount × fee / 10 000` rounded **half up** (to
//!   the nearer minor unit, a half going up): 290 bp of $10.05 is 29.145 ¢ →
//!   29 ¢, of $10.35 is 30.015 ¢ → 30 ¢, of 50 ¢ is 1.45 ¢ → 1 ¢, of $1.50
//!   is 4.35 ¢ → 4 ¢; of $3.10 it is exactly 8.99 ¢ → 9 ¢.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::job::JobStateKind;
use crate::types::Money;

/// The largest amount one payment step may move: ten million in major
/// units. Well inside `i64` however many steps a job takes.
pub const MAX_AMOUNT: Money = Money(1_000_000_000);

/// Basis points in a whole.
const WHOLE_BPS: u128 = 10_000;

/// An ISO 4217 currency code: three ASCII capitals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// US dollars.
    pub const USD: Currency = Currency(*b"USD");

    /// The currency of `code` (any case): three ASCII letters.
    pub fn new(code: &str) -> Result<Self> {
        let upper = code.trim().to_ascii_uppercase();
        match upper.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|l| l.is_ascii_uppercase()) => Ok(Self([*a, *b, *c])),
            _ => Err(Error::InvalidConfig(format!("currency {code:?}: an ISO 4217 code of three letters, such as USD"))),
        }
    }

    /// The code, `USD`.
    #[must_use]
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl TryFrom<String> for Currency {
    type Error = Error;
    fn try_from(code: String) -> Result<Self> {
        Self::new(&code)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_owned()
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// What a cancellation does to the job's money, by how far the job had got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancellation {
    /// Nothing is owed: the hold is released.
    Void,
    /// The contractor was on the way: this fee is captured and paid to them.
    ChargeFee(Money),
}

/// A city's money rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentTerms {
    /// The city's one currency.
    pub currency: Currency,
    /// How much above the quote is held for extras, basis points (2 000: 20 %).
    pub hold_margin_bps: u32,
    /// The platform's fee on what a job finally earns, basis points (290: 2.9 %).
    pub platform_fee_bps: u32,
    /// Captured when a customer cancels after the contractor set off.
    pub cancellation_fee: Money,
    /// How long after capture a customer may open a dispute, and the payout waits, seconds.
    pub dispute_window_secs: u64,
}

impl Default for PaymentTerms {
    fn default() -> Self {
        Self {
            currency: Currency::USD,
            hold_margin_bps: 2_000,
            platform_fee_bps: 290,
            cancellation_fee: Money(2_500),
            dispute_window_secs: 72 * 3600,
        }
    }
}

impl PaymentTerms {
    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<()> {
        if self.hold_margin_bps > 10_000 {
            return Err(Error::InvalidConfig(format!("hold_margin_bps {} is over 100 %", self.hold_margin_bps)));
        }
        if self.platform_fee_bps >= 10_000 {
            return Err(Error::InvalidConfig(format!("platform_fee_bps {} leaves the contractor nothing", self.platform_fee_bps)));
        }
        if self.cancellation_fee > MAX_AMOUNT {
            return Err(Error::InvalidConfig(format!("cancellation_fee {} is over the largest amount", self.cancellation_fee.0)));
        }
        Ok(())
    }

    /// The hold for a quote: the quote plus the margin, rounded up.
    #[must_use]
    pub fn hold_for(&self, quote: Money) -> Money {
        let scaled = u128::from(quote.0) * (WHOLE_BPS + u128::from(self.hold_margin_bps));
        Money(u64::try_from(scaled.div_ceil(WHOLE_BPS)).unwrap_or(u64::MAX))
    }

    /// The platform's fee on `amount`, rounded half up.
    #[must_use]
    pub fn platform_fee(&self, amount: Money) -> Money {
        Money(bps_half_up(amount, self.platform_fee_bps))
    }

    /// What cancelling a job in `state` does to its money: a hold is voided
    /// until the contractor sets off, after which the cancellation fee (never
    /// more than what is held) is charged.
    #[must_use]
    pub fn cancellation(&self, state: JobStateKind, held: Money) -> Cancellation {
        match state {
            JobStateKind::EnRoute | JobStateKind::OnSite if self.cancellation_fee.0 > 0 => {
                Cancellation::ChargeFee(self.cancellation_fee.min(held))
            }
            _ => Cancellation::Void,
        }
    }
}

/// `amount × bps / 10 000`, rounded half up.
fn bps_half_up(amount: Money, bps: u32) -> u64 {
    let scaled = u128::from(amount.0) * u128::from(bps);
    u64::try_from((scaled + WHOLE_BPS / 2) / WHOLE_BPS).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fee_rounds_half_up_as_the_module_states() {
        let terms = PaymentTerms::default();
        for (amount, fee) in [(1_005, 29), (1_035, 30), (50, 1), (150, 4), (310, 9), (0, 0), (10_000, 290), (17, 0), (18, 1)] {
            assert_eq!(terms.platform_fee(Money(amount)), Money(fee), "290 bp of {amount}");
        }
        // Exactly half a cent goes up: 500 bp of 10 ¢ is 0.5 ¢.
        let five = PaymentTerms { platform_fee_bps: 500, ..PaymentTerms::default() };
        assert_eq!(five.platform_fee(Money(10)), Money(1));
        assert_eq!(five.platform_fee(Money(9)), Money(0), "0.45 ¢ goes down");
    }

    #[test]
    fn the_hold_covers_the_quote_and_its_margin_rounding_up() {
        let terms = PaymentTerms::default();
        assert_eq!(terms.hold_for(Money(10_000)), Money(12_000));
        assert_eq!(terms.hold_for(Money(1)), Money(2), "1.2 ¢ held as 2 ¢");
        assert_eq!(terms.hold_for(Money(0)), Money(0));
        let none = PaymentTerms { hold_margin_bps: 0, ..terms.clone() };
        assert_eq!(none.hold_for(Money(12_345)), Money(12_345));
        assert_eq!(terms.hold_for(MAX_AMOUNT), Money(1_200_000_000), "no overflow at the largest amount");
    }

    #[test]
    fn cancelling_charges_a_fee_only_once_the_contractor_set_off() {
        let terms = PaymentTerms::default();
        for state in JobStateKind::ALL {
            let expected = match state {
                JobStateKind::EnRoute | JobStateKind::OnSite => Cancellation::ChargeFee(Money(2_500)),
                _ => Cancellation::Void,
            };
            assert_eq!(terms.cancellation(state, Money(12_000)), expected, "{state:?}");
        }
        assert_eq!(terms.cancellation(JobStateKind::OnSite, Money(1_000)), Cancellation::ChargeFee(Money(1_000)), "never more than held");
        let free = PaymentTerms { cancellation_fee: Money(0), ..terms };
        assert_eq!(free.cancellation(JobStateKind::OnSite, Money(1_000)), Cancellation::Void);
    }

    #[test]
    fn terms_and_currencies_refuse_nonsense() {
        assert!(PaymentTerms::default().validate().is_ok());
        assert!(PaymentTerms { platform_fee_bps: 10_000, ..PaymentTerms::default() }.validate().is_err());
        assert!(PaymentTerms { hold_margin_bps: 10_001, ..PaymentTerms::default() }.validate().is_err());
        assert_eq!(Currency::new("eur").unwrap().code(), "EUR");
        for bad in ["", "US", "USDD", "U$D", "12A"] {
            assert!(Currency::new(bad).is_err(), "{bad:?}");
        }
    }
}
