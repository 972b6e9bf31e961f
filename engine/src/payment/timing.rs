//! When a job's money moves: the hold, its renewal, the release, and
//! whether a dispute may still be opened. Pure: every function takes the
//! times it needs.
//!
//! - **The hold** goes on the card when an emergency or today job is posted
//!   (a declined card refuses the post), and a day before the window of a
//!   scheduled job (a declined card then cancels it, with the reason shown to
//!   the customer) — or at once, if the window starts sooner than that.
//! - **Holds expire** after 7 days at Stripe: a hold still open a day before
//!   then is renewed ([`PaymentEvent::HoldRenewed`](super::PaymentEvent::HoldRenewed)).
//! - **The release** to the contractor comes a dispute window after the charge;
//!   a customer may open a dispute until then.

use crate::types::{Timestamp, Urgency};

use super::terms::PaymentTerms;

/// How long before a scheduled job's window its hold is placed.
pub const HOLD_AHEAD_SECS: i64 = 24 * 3600;

/// How long a card processor keeps a hold (Stripe: 7 days).
pub const HOLD_LIFETIME_SECS: i64 = 7 * 24 * 3600;

/// How long before a hold expires it is renewed.
pub const RENEW_AHEAD_SECS: i64 = 24 * 3600;

/// When a job posted at `posted_at` with `urgency` gets its hold.
#[must_use]
pub fn hold_at(urgency: &Urgency, posted_at: Timestamp) -> Timestamp {
    match urgency {
        Urgency::Emergency | Urgency::Today => posted_at,
        Urgency::Scheduled(window) => Timestamp(window.start.plus_secs(-HOLD_AHEAD_SECS).0.max(posted_at.0)),
    }
}

/// When a hold placed at `held_at` is renewed, a day before it would expire.
#[must_use]
pub fn renew_at(held_at: Timestamp) -> Timestamp {
    held_at.plus_secs(HOLD_LIFETIME_SECS - RENEW_AHEAD_SECS)
}

/// When a charge made at `captured_at` is released to the contractor.
#[must_use]
pub fn release_at(captured_at: Timestamp, terms: &PaymentTerms) -> Timestamp {
    captured_at.plus_secs(i64::try_from(terms.dispute_window_secs).unwrap_or(i64::MAX))
}

/// Whether a customer may still dispute a charge made at `captured_at`.
#[must_use]
pub fn dispute_open(captured_at: Timestamp, now: Timestamp, terms: &PaymentTerms) -> bool {
    now < release_at(captured_at, terms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TimeWindow;

    const HOUR: i64 = 3600;

    fn at(hours: i64) -> Timestamp {
        Timestamp(0).plus_secs(hours * HOUR)
    }

    #[test]
    fn holds_go_on_at_posting_or_a_day_before_the_window() {
        assert_eq!(hold_at(&Urgency::Emergency, at(5)), at(5));
        assert_eq!(hold_at(&Urgency::Today, at(5)), at(5));
        let in_three_days = Urgency::Scheduled(TimeWindow::new(at(72), at(74)).unwrap());
        assert_eq!(hold_at(&in_three_days, at(0)), at(48));
        let tonight = Urgency::Scheduled(TimeWindow::new(at(10), at(12)).unwrap());
        assert_eq!(hold_at(&tonight, at(5)), at(5), "a window sooner than a day: at once");
    }

    #[test]
    fn holds_renew_a_day_before_they_expire_and_payouts_wait_out_the_window() {
        assert_eq!(renew_at(at(0)), at(6 * 24));
        let terms = PaymentTerms::default();
        assert_eq!(release_at(at(10), &terms), at(82));
        assert!(dispute_open(at(10), at(81), &terms));
        assert!(!dispute_open(at(10), at(82), &terms), "the window is closed at the release");
    }
}
