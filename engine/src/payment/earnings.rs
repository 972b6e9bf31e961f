//! A contractor's earnings statement: per day (UTC), the jobs charged, what
//! they earned (charged less refunded), the platform's fee, the net, and how
//! much of it is paid or still pending (in escrow or on its way).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::machine::{PaymentMachine, PaymentState};
use crate::types::{JobId, Money, Timestamp};

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// One job's part of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarningLine {
    /// The job.
    pub job: JobId,
    /// Its day: days since 1970-01-01, UTC.
    pub day: i64,
    /// Charged less refunded.
    pub earned: Money,
    /// The platform's fee on it (as released, or as it would be now).
    pub fee: Money,
    /// Whether the contractor has been paid.
    pub paid: bool,
}

/// One day of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DayEarnings {
    /// Days since 1970-01-01, UTC.
    pub day: i64,
    /// Jobs charged that day.
    pub jobs: u32,
    /// What they earned.
    pub gross: Money,
    /// The platform's fees.
    pub fee: Money,
    /// Gross less fees.
    pub net: Money,
    /// Of the net, not yet paid.
    pub pending: Money,
    /// Of the net, paid.
    pub paid: Money,
}

/// The UTC day of `at`.
#[must_use]
pub fn day_of(at: Timestamp) -> i64 {
    at.0.div_euclid(DAY_MS)
}

impl PaymentMachine {
    /// This job's statement line, once it has charged anything, for the day it was charged (`charged_at`).
    #[must_use]
    pub fn earning(&self, job: JobId, charged_at: Timestamp) -> Option<EarningLine> {
        if self.captured().0 == 0 {
            return None;
        }
        let earned = Money(self.captured().0 - self.refunded().0);
        let fee = self.release().map_or_else(|| self.terms().platform_fee(earned), |r| r.fee);
        Some(EarningLine { job, day: day_of(charged_at), earned, fee, paid: self.state() == PaymentState::PaidOut })
    }
}

/// The statement of `lines`, a row per day, oldest first.
#[must_use]
pub fn statement(lines: &[EarningLine]) -> Vec<DayEarnings> {
    let mut days: BTreeMap<i64, DayEarnings> = BTreeMap::new();
    for line in lines {
        let day = days.entry(line.day).or_insert(DayEarnings { day: line.day, ..DayEarnings::default() });
        let net = line.earned.0.saturating_sub(line.fee.0);
        day.jobs += 1;
        day.gross.0 += line.earned.0;
        day.fee.0 += line.fee.0;
        day.net.0 += net;
        if line.paid {
            day.paid.0 += net;
        } else {
            day.pending.0 += net;
        }
    }
    days.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payment::{PaymentEvent, PaymentTerms};
    use crate::types::ContractorId;

    fn charged(job: u64, quote: u64, refund: u64, paid: bool) -> PaymentMachine {
        let mut m = PaymentMachine::new(JobId(job), Money(quote), PaymentTerms::default()).unwrap();
        m.apply(PaymentEvent::HoldPlaced { amount: m.hold_due() }).unwrap();
        m.apply(PaymentEvent::Captured { amount: Money(quote) }).unwrap();
        if refund > 0 {
            m.apply(PaymentEvent::Refunded { amount: Money(refund) }).unwrap();
        }
        if paid {
            m.apply(PaymentEvent::PayoutReleased { contractor: ContractorId(1) }).unwrap();
            m.apply(PaymentEvent::PayoutSent).unwrap();
        }
        m
    }

    #[test]
    fn a_statement_sums_each_day_and_splits_paid_from_pending() {
        let monday = Timestamp(20_000 * DAY_MS + 3_600_000);
        let tuesday = Timestamp(20_001 * DAY_MS);
        let lines: Vec<EarningLine> =
            [(charged(1, 10_000, 0, true), monday), (charged(2, 5_000, 1_000, false), monday), (charged(3, 2_000, 0, false), tuesday)]
                .iter()
                .enumerate()
                .filter_map(|(i, (m, at))| m.earning(JobId(i as u64 + 1), *at))
                .collect();
        // Fees: 290 bp of 10 000 = 290; of 4 000 = 116; of 2 000 = 58.
        assert_eq!(
            statement(&lines),
            [
                DayEarnings {
                    day: 20_000,
                    jobs: 2,
                    gross: Money(14_000),
                    fee: Money(406),
                    net: Money(13_594),
                    pending: Money(3_884),
                    paid: Money(9_710)
                },
                DayEarnings {
                    day: 20_001,
                    jobs: 1,
                    gross: Money(2_000),
                    fee: Money(58),
                    net: Money(1_942),
                    pending: Money(1_942),
                    paid: Money(0)
                },
            ]
        );
        let nothing = PaymentMachine::new(JobId(4), Money(1_000), PaymentTerms::default()).unwrap();
        assert_eq!(nothing.earning(JobId(4), monday), None, "nothing charged, no line");
        assert_eq!(day_of(Timestamp(-1)), -1, "before 1970 is the day before");
    }
}
