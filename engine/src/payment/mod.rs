//! A job's money: a payment state machine beside the job's, the terms it
//! runs under, and the double-entry ledger its steps write.
//!
//! | module | what lives there |
//! |---|---|
//! | [`terms`] | [`PaymentTerms`] (currency, hold margin, platform fee, cancellation fee, dispute window), [`Currency`], the two roundings |
//! | [`earnings`] | a contractor's statement per UTC day: jobs, gross, fee, net, pending, paid ([`earnings::statement`]) |
//! | [`event`] | [`PaymentEvent`]: what the processor answered or a party decided; [`PaymentEventKind`] |
//! | [`machine`] | [`PaymentMachine`], [`PaymentState`], [`PaymentEvent`]: every step a typed `Result` and the ledger entries it makes |
//! | [`notice`] | [`PaymentNotice`]: what a job's parties are told of its money, in `payment` events |
//! | [`receipt`] | [`Receipt`]: a job's payment as its parties see it, from the machine |
//! | [`timing`] | when money moves: the hold (at posting, or a day before a scheduled window), its renewal before it expires, the release after the dispute window |
//! | [`ledger`] | [`Account`], [`Posting`] (balanced by construction), [`Memo`] (holds, outside the balances), [`Ledger`] |

pub mod earnings;
pub mod event;
pub mod ledger;
pub mod machine;
pub mod notice;
pub mod receipt;
pub mod terms;
pub mod timing;

pub use earnings::{DayEarnings, EarningLine, statement};
pub use event::{PaymentEvent, PaymentEventKind};
pub use ledger::{Account, Books, Entries, Ledger, Line, Memo, Posting};
pub use machine::{PaymentMachine, PaymentState, Proposal, Release};
pub use notice::PaymentNotice;
pub use receipt::Receipt;
pub use terms::{Cancellation, Currency, MAX_AMOUNT, PaymentTerms};
