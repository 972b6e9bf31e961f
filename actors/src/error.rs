//! The actors crate's one error type.

use dispatch_engine::{ContractorId, CustomerId, JobId};

/// What asking a city's actors to do something can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ActorError {
    /// The engine refused the input or the transition.
    #[error(transparent)]
    Engine(#[from] dispatch_engine::Error),
    /// The store failed; the change was not made.
    #[error("store: {0}")]
    Store(#[from] dispatch_storage::StorageError),
    /// No such job.
    #[error("job {0} not found")]
    UnknownJob(JobId),
    /// The job is finished (completed, cancelled or expired): it takes no more actions.
    #[error("job {0} is {1}: it takes no more actions")]
    JobClosed(JobId, String),
    /// The asker is not a party of the job, or not the one this needs.
    #[error("{1}")]
    NotParty(JobId, String),
    /// The job was rated already (a job is rated once).
    #[error("job {0} was already rated")]
    AlreadyRated(JobId),
    /// Only a completed job can be rated.
    #[error("job {0} is {1}, not completed: only a completed job can be rated")]
    NotCompleted(JobId, String),
    /// No such contractor.
    #[error("contractor {0} not found")]
    UnknownContractor(ContractorId),
    /// A contractor that is already registered.
    #[error("contractor {0} is already registered")]
    DuplicateContractor(ContractorId),
    /// The request makes no sense in the contractor's current state.
    #[error("contractor {0}: {1}")]
    ContractorState(ContractorId, String),
    /// The configuration is not usable.
    #[error("invalid dispatch configuration: {0}")]
    Config(String),
    /// The customer's card refused the job's hold: the post is refused and the job cancelled.
    #[error("job {0}: the card was declined: {1}")]
    PaymentDeclined(JobId, String),
    /// A payment step that cannot be taken now (the engine's reason), or whose processor call did not finish.
    #[error("job {0}: payment: {1}")]
    Payment(JobId, dispatch_payments::PaymentError),
    /// The card was refused when it was to be saved.
    #[error("customer {0}: the card was declined: {1}")]
    CardDeclined(CustomerId, String),
    /// The processor refused the card as sent (an unknown payment method): sending it again will not help.
    #[error("customer {0}: the card cannot be saved: {1}")]
    CardRejected(CustomerId, String),
    /// A card request that cannot be done now (nothing waits to be confirmed, payments are off).
    #[error("customer {0}: {1}")]
    Card(CustomerId, String),
    /// The customer is blocked from posting.
    #[error("customer {0} is blocked from posting: {1}")]
    CustomerBlocked(CustomerId, String),
    /// The job has no payment (posted before payments, or with them off).
    #[error("job {0} has no payment")]
    NoPayment(JobId),
    /// What was to be made exists already (a webhook endpoint's name).
    #[error("{0}")]
    Conflict(String),
    /// What was named does not exist (a webhook endpoint).
    #[error("{0}")]
    NotFound(String),
    /// An actor could not be reached or did not answer (stopping, or overloaded).
    #[error("actor unavailable: {0}")]
    Unavailable(String),
}

impl<T> From<ractor::MessagingErr<T>> for ActorError {
    fn from(e: ractor::MessagingErr<T>) -> Self {
        ActorError::Unavailable(e.to_string())
    }
}

impl From<ractor::SpawnErr> for ActorError {
    fn from(e: ractor::SpawnErr) -> Self {
        ActorError::Unavailable(format!("spawn failed: {e}"))
    }
}

/// Shorthand for results whose error is [`ActorError`].
pub type Result<T, E = ActorError> = std::result::Result<T, E>;
