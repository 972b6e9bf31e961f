//! Authorization at the gateway: which role may send which message, in one
//! table ([`may_send`]).
//!
//! Whether the sender is a party of the *job* a message names (its
//! customer, its assigned contractor) is not decided here but in the actors
//! layer (`dispatch_actors::parties`), beside the job's state; the session
//! passes the sender along as an [`Asker`].

use dispatch_actors::Asker;
use dispatch_engine::{ContractorId, CustomerId};

use crate::auth::Role;
use crate::protocol::{ClientMsg, ErrorCode};

pub(super) use crate::refusal::{Refusal, refuse};

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
        | ClientMsg::JobStatus { .. }
        | ClientMsg::ProposeExtras { .. }
        | ClientMsg::Earnings {}
        | ClientMsg::PayoutAccount {} => &[Contractor],
        ClientMsg::PostJob { .. }
        | ClientMsg::Watch { .. }
        | ClientMsg::Rate { .. }
        | ClientMsg::ConfirmPayment { .. }
        | ClientMsg::ApproveExtras { .. }
        | ClientMsg::RejectExtras { .. }
        | ClientMsg::OpenDispute { .. }
        | ClientMsg::SaveCard { .. }
        | ClientMsg::ConfirmCard {}
        | ClientMsg::Card {} => &[Customer],
        ClientMsg::Subscribe { .. }
        | ClientMsg::Assign { .. }
        | ClientMsg::Nearby { .. }
        | ClientMsg::Refund { .. }
        | ClientMsg::ResolveDispute { .. } => &[Dispatcher],
        ClientMsg::Cancel { .. } => &[Customer, Dispatcher],
        ClientMsg::SetNotify { .. } => &[Customer, Contractor],
        // Parties only: the actors check which job's party the sender is.
        ClientMsg::Chat { .. } | ClientMsg::Resume { .. } | ClientMsg::Payment { .. } | ClientMsg::Ping {} => {
            &[Contractor, Customer, Dispatcher]
        }
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
pub(crate) fn asker(role: Role, sub: u64) -> Asker {
    match role {
        Role::Customer => Asker::Customer(CustomerId(sub)),
        Role::Contractor => Asker::Contractor(ContractorId(sub)),
        Role::Dispatcher | Role::Admin => Asker::Dispatcher,
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
        let chat = ClientMsg::Chat { job: 1, text: "hi".into(), request_id: None };
        assert!([Role::Contractor, Role::Customer, Role::Dispatcher].iter().all(|&r| may_send(r, &chat).is_ok()));
        assert!(may_send(Role::Contractor, &ClientMsg::Subscribe { viewport: None }).is_err());
    }
}
