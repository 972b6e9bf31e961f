//! The engine's one error type.

use crate::job::{JobEventKind, JobStateKind};
use crate::types::ContractorId;

/// Everything the engine can refuse. Each variant names the bad value so a
/// caller (the gateway) can turn it into an error frame with a code and a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A latitude that is NaN, infinite or outside −90..=90.
    #[error("invalid latitude {0}: must be a finite number in -90..=90")]
    InvalidLatitude(f64),
    /// A longitude that is NaN, infinite or outside −180..=180.
    #[error("invalid longitude {0}: must be a finite number in -180..=180")]
    InvalidLongitude(f64),
    /// A rating outside 0..=5 or not finite.
    #[error("invalid rating {0}: must be a finite number in 0..=5")]
    InvalidRating(f64),
    /// An H3 resolution outside 0..=15.
    #[error("invalid H3 resolution {0}: must be in 0..=15")]
    InvalidResolution(u8),
    /// A configuration value that makes no sense (negative weight, zero speed, …).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A time window whose end is before its start, or a shift window out of the week.
    #[error("invalid time window: {0}")]
    InvalidWindow(String),
    /// The job state machine has no transition for this event in this state.
    #[error("job in state {state:?} cannot take event {event:?}")]
    IllegalTransition {
        /// The state the job was in.
        state: JobStateKind,
        /// The event that was refused.
        event: JobEventKind,
    },
    /// An accept, decline or timeout that names a contractor other than the one offered.
    #[error("contractor {got} is not the one holding this job (expected {expected})")]
    WrongContractor {
        /// The contractor the job is offered to or assigned to.
        expected: ContractorId,
        /// The contractor named by the event.
        got: ContractorId,
    },
    /// An offer to a contractor who declined or let an earlier offer of this job expire.
    #[error("contractor {0} was excluded from this job after declining or timing out")]
    ContractorExcluded(ContractorId),
    /// The payment state machine has no transition for this event in this state.
    #[error("a payment in state {state:?} cannot take event {event:?}")]
    IllegalPayment {
        /// The state the payment was in.
        state: crate::payment::PaymentState,
        /// The event that was refused.
        event: crate::payment::PaymentEventKind,
    },
    /// An amount that is zero where it must not be, too large, or more than what it draws on.
    #[error("invalid amount: {0}")]
    InvalidAmount(String),
    /// Notification preferences that make no sense (a channel twice, quiet hours not `HH:MM`).
    #[error("invalid notification preferences: {0}")]
    InvalidPreferences(String),
    /// Ledger lines that do not sum to zero.
    #[error("unbalanced posting: {0}")]
    Unbalanced(String),
    /// An offer timeout delivered before the offer's deadline.
    #[error("offer does not expire until {expires_at_ms} ms, now is {now_ms} ms")]
    OfferNotExpired {
        /// The offer's deadline.
        expires_at_ms: i64,
        /// The time the timeout was delivered.
        now_ms: i64,
    },
}

/// Shorthand for results whose error is the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
