//! The money commands of the wire, carried out through the city's
//! [`Dispatch`]: a customer confirms a hold, approves or rejects extras and
//! opens a dispute; a contractor proposes extras and asks for their
//! earnings; a dispatcher refunds and resolves disputes; any party reads the
//! job's receipt. Each is acked with the job's payment as it then stands.
//! A customer saves a card on file, confirms its authentication, and reads
//! it back, each acked with the card as it then stands; a contractor gets
//! their payout account (and the link to finish its onboarding).

use dispatch_actors::{Asker, CardOnFile, Dispatch, PaymentAct};
use dispatch_engine::{ContractorId, CustomerId, JobId, Money};

use crate::execute::MAX_CHAT_CHARS;
use crate::protocol::{AckResult, CardReply, CardStatus, ClientMsg, EarningsReply, ErrorCode, PaymentReply, PayoutAccountReply};
use crate::refusal::{Refusal, refuse};

/// Carries out a money message (`payment`, `earnings`, and the payment acts).
pub(crate) async fn execute(dispatch: &Dispatch, asker: Asker, me: u64, msg: ClientMsg) -> Result<AckResult, Refusal> {
    let (job, act) = match msg {
        ClientMsg::Payment { job } => {
            let view = dispatch.payment(JobId(job), asker).await?;
            return Ok(PaymentReply { job, payment: view }.into());
        }
        ClientMsg::Earnings {} => {
            let days = dispatch.earnings(ContractorId(me)).await?;
            return Ok(EarningsReply { contractor: me, days }.into());
        }
        ClientMsg::SaveCard { payment_method } => {
            crate::execute::checked_payment_method(&payment_method)?;
            return Ok(card_reply(me, dispatch.save_card(CustomerId(me), payment_method).await?));
        }
        ClientMsg::PayoutAccount {} => {
            let account = dispatch.payout_account(ContractorId(me)).await?;
            let reply = PayoutAccountReply {
                contractor: me,
                account: account.account,
                ready: account.ready,
                onboarding_url: account.onboarding_url,
            };
            return Ok(reply.into());
        }
        ClientMsg::ConfirmCard {} => return Ok(card_reply(me, dispatch.confirm_card(CustomerId(me)).await?)),
        ClientMsg::Card {} => return Ok(card_reply(me, dispatch.card_on_file(CustomerId(me)).await?)),
        ClientMsg::ConfirmPayment { job } => (job, PaymentAct::ConfirmHold),
        ClientMsg::ProposeExtras { job, amount, reason } => {
            (job, PaymentAct::ProposeExtras { amount: more_than_zero(amount)?, reason: checked(reason)? })
        }
        ClientMsg::ApproveExtras { job } => (job, PaymentAct::ApproveExtras),
        ClientMsg::RejectExtras { job } => (job, PaymentAct::RejectExtras),
        ClientMsg::OpenDispute { job, reason } => (job, PaymentAct::OpenDispute { reason: checked(reason)? }),
        ClientMsg::Refund { job, amount } => (job, PaymentAct::Refund { amount: more_than_zero(amount)? }),
        ClientMsg::ResolveDispute { job, refund } => (job, PaymentAct::ResolveDispute { refund: Money(refund) }),
        other => return Err(refuse(ErrorCode::BadRequest, format!("{} is not a payment request", other.kind()))),
    };
    let view = dispatch.pay(JobId(job), asker, act).await?;
    Ok(PaymentReply { job, payment: view }.into())
}

/// The ack of a card request.
fn card_reply(customer: u64, card: CardOnFile) -> AckResult {
    let (card_status, payment_method, client_secret) = match card {
        CardOnFile::None => (CardStatus::None, None, None),
        CardOnFile::Saved { payment_method } => (CardStatus::Saved, Some(payment_method), None),
        CardOnFile::ActionRequired { payment_method, client_secret } => {
            (CardStatus::ActionRequired, Some(payment_method), Some(client_secret))
        }
    };
    CardReply { customer, card_status, payment_method, client_secret }.into()
}

/// An amount that must move something (extras, a refund): a resolution's refund may be zero.
fn more_than_zero(cents: u64) -> Result<Money, Refusal> {
    if cents == 0 {
        return Err(refuse(ErrorCode::BadRequest, "amount must be more than zero cents"));
    }
    Ok(Money(cents))
}

/// A reason the other party reads: 1 to [`MAX_CHAT_CHARS`] characters.
fn checked(reason: String) -> Result<String, Refusal> {
    if reason.trim().is_empty() || reason.chars().count() > MAX_CHAT_CHARS {
        return Err(refuse(ErrorCode::BadRequest, format!("reason must have 1 to {MAX_CHAT_CHARS} characters")));
    }
    Ok(reason)
}
