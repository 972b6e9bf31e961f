//! The double-entry ledger: every movement of money is a [`Posting`] whose
//! lines sum to zero; a [`Ledger`] is the balances they add up to.
//!
//! | account | sign | what its balance is |
//! |---|---|---|
//! | [`Account::CustomerFunding`] | − | what was charged to customers' cards (captures) |
//! | [`Account::Escrow`] (per job) | + | captured for a job and not yet refunded or released |
//! | [`Account::ContractorPayable`] (per contractor) | + | released to a contractor, not yet sent |
//! | [`Account::Payouts`] (per contractor) | + | sent to a contractor's account |
//! | [`Account::PlatformRevenue`] | + | the platform's fees, less processor fees and losses it bore |
//! | [`Account::ProcessorFees`] | + | what the card processor kept |
//! | [`Account::Refunds`] | + | what went back to customers' cards (refunds and chargebacks) |
//!
//! **Holds are memo entries** ([`Memo`]), outside the balances: a hold
//! moves no money, it only reserves it on the card. This is how the ledger
//! reconciles with the processor's records: its charges are
//! −`CustomerFunding`, its refunds `Refunds`, its fees `ProcessorFees`, its
//! transfers `Payouts`; its authorizations are the memos.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::{ContractorId, JobId, Money};

/// A ledger account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Account {
    /// Customers' cards: charged captures.
    CustomerFunding,
    /// One job's money between capture and release.
    Escrow(JobId),
    /// Owed to a contractor.
    ContractorPayable(ContractorId),
    /// Sent to a contractor.
    Payouts(ContractorId),
    /// The platform's.
    PlatformRevenue,
    /// The card processor's.
    ProcessorFees,
    /// Returned to customers' cards.
    Refunds,
}

/// One side of a posting: an amount into (+) or out of (−) an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The account.
    pub account: Account,
    /// Minor units, signed.
    pub amount: i64,
}

/// A balanced movement: its lines sum to zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    lines: Vec<Line>,
}

impl Posting {
    /// A posting of `lines`, refused unless they sum to zero.
    pub fn new(lines: Vec<Line>) -> Result<Self> {
        let sum = lines.iter().try_fold(0i64, |sum, l| sum.checked_add(l.amount));
        match sum {
            Some(0) => Ok(Self { lines }),
            _ => Err(Error::Unbalanced(lines.iter().map(|l| format!("{:?} {}", l.account, l.amount)).collect::<Vec<_>>().join(", "))),
        }
    }

    /// `amount` moved from `from` to `to` (nothing for a zero amount).
    pub fn transfer(from: Account, to: Account, amount: Money) -> Result<Option<Self>> {
        if amount.0 == 0 {
            return Ok(None);
        }
        let amount = signed(amount)?;
        Self::new(vec![Line { account: from, amount: -amount }, Line { account: to, amount }]).map(Some)
    }

    /// Its lines.
    #[must_use]
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }
}

/// A movement outside the balances: a hold placed or let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Memo {
    /// `amount` held on the customer's card for `job`.
    HoldPlaced {
        /// The job.
        job: JobId,
        /// How much.
        amount: Money,
    },
    /// What was still held for `job` is let go (a capture, a void).
    HoldReleased {
        /// The job.
        job: JobId,
        /// How much.
        amount: Money,
    },
}

/// What one payment step writes into the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entries {
    /// Movements of money.
    pub postings: Vec<Posting>,
    /// Holds.
    pub memos: Vec<Memo>,
}

impl Entries {
    pub(crate) fn post(&mut self, posting: Option<Posting>) {
        self.postings.extend(posting);
    }

    pub(crate) fn memo(&mut self, memo: Memo) {
        if !matches!(memo, Memo::HoldPlaced { amount: Money(0), .. } | Memo::HoldReleased { amount: Money(0), .. }) {
            self.memos.push(memo);
        }
    }
}

/// Balances, and the holds outstanding, from every posting and memo applied.
///
/// Accounts and holds back at zero are dropped (a missing one reads zero),
/// and the totals by kind of account are kept as postings arrive: a city's
/// ledger does not grow with every job it ever settled, and reading its
/// books costs nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    balances: BTreeMap<Account, i64>,
    held: BTreeMap<JobId, u64>,
    postings: usize,
    books: Books,
}

impl Ledger {
    /// An empty ledger.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one step's entries.
    pub fn record(&mut self, entries: &Entries) -> Result<()> {
        for posting in &entries.postings {
            // Balanced by construction; checked again so a ledger is never out.
            let posting = Posting::new(posting.lines.clone())?;
            for line in posting.lines() {
                let balance = self.balances.entry(line.account).or_default();
                *balance = balance.checked_add(line.amount).ok_or_else(|| Error::Unbalanced(format!("{:?} overflows", line.account)))?;
                if *balance == 0 {
                    self.balances.remove(&line.account);
                }
                let kind = self.books.of_kind(line.account);
                *kind = kind.saturating_add(line.amount);
            }
            self.postings += 1;
        }
        for memo in &entries.memos {
            let (job, before) = match *memo {
                Memo::HoldPlaced { job, .. } | Memo::HoldReleased { job, .. } => (job, self.held.get(&job).copied().unwrap_or(0)),
            };
            let after = match *memo {
                Memo::HoldPlaced { amount, .. } => before.saturating_add(amount.0),
                Memo::HoldReleased { amount, .. } => before.saturating_sub(amount.0),
            };
            if after == 0 {
                self.held.remove(&job);
            } else {
                self.held.insert(job, after);
            }
            let delta = i64::try_from(after).unwrap_or(i64::MAX).saturating_sub(i64::try_from(before).unwrap_or(i64::MAX));
            self.books.held = self.books.held.saturating_add(delta);
        }
        Ok(())
    }

    /// An account's balance.
    #[must_use]
    pub fn balance(&self, account: Account) -> i64 {
        self.balances.get(&account).copied().unwrap_or(0)
    }

    /// The sum of every balance: zero, always.
    #[must_use]
    pub fn total(&self) -> i64 {
        self.balances.values().sum()
    }

    /// What is held on the card for `job` now.
    #[must_use]
    pub fn held(&self, job: JobId) -> Money {
        Money(self.held.get(&job).copied().unwrap_or(0))
    }

    /// How many postings it holds.
    #[must_use]
    pub fn postings(&self) -> usize {
        self.postings
    }

    /// The balances summed by kind of account (every job's escrow as one,
    /// every contractor's payable and payouts as one), cents.
    #[must_use]
    pub fn by_kind(&self) -> Books {
        self.books
    }
}

/// A ledger's balances by kind of account, cents; they sum to zero (holds,
/// memos outside the balances, apart).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Books {
    /// − what was charged to customers' cards.
    pub customer_funding: i64,
    /// Charged, not yet refunded or released.
    pub escrow: i64,
    /// Released to contractors, not yet sent.
    pub contractor_payable: i64,
    /// Sent to contractors.
    pub payouts: i64,
    /// The platform's fees, less processor fees and losses it bore.
    pub platform_revenue: i64,
    /// What the processor kept.
    pub processor_fees: i64,
    /// Returned to customers' cards.
    pub refunds: i64,
    /// Held on cards now (memos).
    pub held: i64,
}

impl Books {
    /// The total of `account`'s kind.
    fn of_kind(&mut self, account: Account) -> &mut i64 {
        match account {
            Account::CustomerFunding => &mut self.customer_funding,
            Account::Escrow(_) => &mut self.escrow,
            Account::ContractorPayable(_) => &mut self.contractor_payable,
            Account::Payouts(_) => &mut self.payouts,
            Account::PlatformRevenue => &mut self.platform_revenue,
            Account::ProcessorFees => &mut self.processor_fees,
            Account::Refunds => &mut self.refunds,
        }
    }

    /// The balances' sum: zero for a ledger of balanced postings.
    #[must_use]
    pub fn total(&self) -> i64 {
        self.customer_funding
            + self.escrow
            + self.contractor_payable
            + self.payouts
            + self.platform_revenue
            + self.processor_fees
            + self.refunds
    }
}

/// `amount` as a signed ledger amount.
pub(crate) fn signed(amount: Money) -> Result<i64> {
    i64::try_from(amount.0).map_err(|_| Error::InvalidAmount(format!("{} is too large", amount.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postings_balance_or_are_refused() {
        let job = Account::Escrow(JobId(1));
        let p = Posting::transfer(Account::CustomerFunding, job, Money(500)).unwrap().unwrap();
        assert_eq!(p.lines().iter().map(|l| l.amount).sum::<i64>(), 0);
        assert_eq!(Posting::transfer(Account::CustomerFunding, job, Money(0)).unwrap(), None, "nothing moves");
        assert!(Posting::new(vec![Line { account: job, amount: 5 }]).is_err());
        assert!(Posting::new(vec![Line { account: job, amount: i64::MAX }, Line { account: job, amount: 1 }]).is_err(), "overflow");
        let mut ledger = Ledger::new();
        ledger.record(&Entries { postings: vec![p], memos: vec![Memo::HoldPlaced { job: JobId(1), amount: Money(600) }] }).unwrap();
        assert_eq!((ledger.balance(job), ledger.balance(Account::CustomerFunding), ledger.total()), (500, -500, 0));
        assert_eq!(ledger.held(JobId(1)), Money(600), "a hold is a memo, not a balance");
    }
}
