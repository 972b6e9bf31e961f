//! [`Refusal`]: why a request was refused, as an error frame's code and
//! message; the actors' errors mapped to the protocol's codes in one place.

use dispatch_actors::ActorError;
use serde::{Deserialize, Serialize};

use crate::protocol::ErrorCode;

/// Why a request was refused: an error frame's code and message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    /// The error frame's code.
    pub code: ErrorCode,
    /// What the client is told.
    pub message: String,
}

/// A refusal with `code` and `message`.
pub(crate) fn refuse(code: ErrorCode, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

impl From<ActorError> for Refusal {
    fn from(e: ActorError) -> Self {
        use dispatch_engine::Error as E;
        let code = match &e {
            ActorError::UnknownJob(_) | ActorError::UnknownContractor(_) | ActorError::NotFound(_) => ErrorCode::NotFound,
            ActorError::NotParty(..) => ErrorCode::Forbidden,
            ActorError::AlreadyRated(_) | ActorError::NotCompleted(..) => ErrorCode::Conflict,
            ActorError::Engine(E::WrongContractor { .. } | E::ContractorExcluded(_)) => ErrorCode::Forbidden,
            ActorError::Engine(E::IllegalTransition { .. } | E::OfferNotExpired { .. }) => ErrorCode::Conflict,
            ActorError::Engine(_) | ActorError::Config(_) => ErrorCode::BadRequest,
            ActorError::DuplicateContractor(_) | ActorError::ContractorState(..) | ActorError::JobClosed(..) => ErrorCode::Conflict,
            ActorError::Store(_) | ActorError::Unavailable(_) => ErrorCode::Unavailable,
            ActorError::PaymentDeclined(..) | ActorError::CardDeclined(..) => ErrorCode::PaymentDeclined,
            ActorError::CardRejected(..) => ErrorCode::BadRequest,
            ActorError::Card(..) | ActorError::Conflict(_) => ErrorCode::Conflict,
            ActorError::CustomerBlocked(..) => ErrorCode::Forbidden,
            ActorError::Payment(_, dispatch_actors::payments::PaymentError::Call(_)) => ErrorCode::Unavailable,
            ActorError::Payment(..) | ActorError::NoPayment(_) => ErrorCode::Conflict,
        };
        refuse(code, e.to_string())
    }
}

impl From<dispatch_engine::Error> for Refusal {
    fn from(e: dispatch_engine::Error) -> Self {
        refuse(ErrorCode::BadRequest, e.to_string())
    }
}
