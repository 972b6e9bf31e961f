//! Authorization at the gateway: which role may send which message, in one
//! table ([`may_send`]), and how refusals become error frames ([`Refusal`]).
//!
//! Whether the sender is a party of the *job* a message names (its
//! customer, its assigned contractor) is not decided here but in the actors
//! layer (`dispatch_actors::parties`), beside the job's state; the session
//! passes the sender along as an [`Asker`].

use dispatch_actors::{ActorError, Asker};
use dispatch_engine::{ContractorId, CustomerId};

use crate::auth::{Claims, Role};
use crate::protocol::{ClientMsg, ErrorCode};

/// Why a request was refused: an error frame's code and message.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) code: ErrorCode,
    pub(super) message: String,
}

pub(super) fn refuse(code: ErrorCode, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

impl From<ActorError> for Refusal {
    fn from(e: ActorError) -> Self {
        use dispatch_engine::Error as E;
        let code = match &e {
            ActorError::UnknownJob(_) | ActorError::UnknownContractor(_) => ErrorCode::NotFound,
            ActorError::NotParty(..) => ErrorCode::Forbidden,
            ActorError::AlreadyRated(_) | ActorError::NotCompleted(..) => ErrorCode::Conflict,
            ActorError::Engine(E::WrongContractor { .. } | E::ContractorExcluded(_)) => ErrorCode::Forbidden,
            ActorError::Engine(E::IllegalTransition { .. } | E::OfferNotExpired { .. }) => ErrorCode::Conflict,
            ActorError::Engine(_) | ActorError::Config(_) => ErrorCode::BadRequest,
            ActorError::DuplicateContractor(_) | ActorError::ContractorState(..) | ActorError::JobClosed(..) => ErrorCode::Conflict,
            ActorError::Store(_) | ActorError::Unavailable(_) => ErrorCode::Unavailable,
        };
        refuse(code, e.to_string())
    }
}

impl From<dispatch_engine::Error> for Refusal {
    fn from(e: dispatch_engine::Error) -> Self {
        refuse(ErrorCode::BadRequest, e.to_string())
    }
}

/// The roles that may send `msg`: every role rule of the protocol.
fn senders(msg: &ClientMsg) -> &'static [Role] {
    use Role::{Contractor, Customer, Dispatcher};
    match msg {
        ClientMsg::Register { .. }
        | ClientMsg::Online { .. }
        | ClientMsg::Offline {}
        | ClientMsg::Break {}
        | ClientMsg::Gps { .. }
        | ClientMsg::Accept { .. }
        | ClientMsg::Decline { .. }
        | ClientMsg::JobStatus { .. } => &[Contractor],
        ClientMsg::PostJob { .. } | ClientMsg::Watch { .. } | ClientMsg::Rate { .. } => &[Customer],
        ClientMsg::Subscribe { .. } | ClientMsg::Assign { .. } | ClientMsg::Nearby { .. } => &[Dispatcher],
        ClientMsg::Cancel { .. } => &[Customer, Dispatcher],
        // Parties only: the actors check which job's party the sender is.
        ClientMsg::Chat { .. } | ClientMsg::Resume { .. } | ClientMsg::Ping {} => &[Contractor, Customer, Dispatcher],
    }
}

/// Whether the token's role may send `msg` at all; `forbidden` names who may.
pub(super) fn may_send(role: Role, msg: &ClientMsg) -> Result<(), Refusal> {
    let allowed = senders(msg);
    if allowed.contains(&role) {
        return Ok(());
    }
    if matches!(msg, ClientMsg::Cancel { .. }) {
        return Err(refuse(ErrorCode::Forbidden, "contractors cannot cancel jobs; decline or hand them back"));
    }
    let who: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
    Err(refuse(ErrorCode::Forbidden, format!("only a {} may do this; you are a {}", who.join(" or a "), role.as_str())))
}

/// The sender as the actors' party checks see them.
pub(super) fn asker(claims: &Claims) -> Asker {
    match claims.role {
        Role::Customer => Asker::Customer(CustomerId(claims.sub)),
        Role::Contractor => Asker::Contractor(ContractorId(claims.sub)),
        Role::Dispatcher => Asker::Dispatcher,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_names_who_may_send_it() {
        let gps = ClientMsg::Gps { lat: 1.0, lng: 2.0, heading: None, speed: None, accuracy: None, ts: 1 };
        assert!(may_send(Role::Contractor, &gps).is_ok());
        let refused = may_send(Role::Customer, &gps).unwrap_err();
        assert_eq!((refused.code, refused.message.as_str()), (ErrorCode::Forbidden, "only a contractor may do this; you are a customer"));
        let cancel = ClientMsg::Cancel { job: 1, reason: None };
        assert!(may_send(Role::Dispatcher, &cancel).is_ok() && may_send(Role::Customer, &cancel).is_ok());
        assert!(may_send(Role::Contractor, &cancel).unwrap_err().message.contains("decline or hand them back"));
        let chat = ClientMsg::Chat { job: 1, text: "hi".into() };
        assert!([Role::Contractor, Role::Customer, Role::Dispatcher].iter().all(|&r| may_send(r, &chat).is_ok()));
        assert!(may_send(Role::Contractor, &ClientMsg::Subscribe { viewport: None }).is_err());
    }
}
