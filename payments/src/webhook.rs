//! Inbound processor webhooks: a signature checked before anything is read,
//! then the event as a [`Notice`] the job's money flow understands.
//!
//! Stripe signs each delivery with `Stripe-Signature: t=<unix seconds>,v1=<hex>`,
//! the `v1` being HMAC-SHA256 of `<t>.<body>` under the endpoint's secret.
//! [`verify`] recomputes it with a maintained HMAC crate and compares in
//! constant time, under every secret it is given (two while a secret is
//! rotated), and refuses a timestamp outside the tolerance, so a captured
//! delivery cannot be replayed later.
//!
//! | event | notice |
//! |---|---|
//! | `charge.dispute.created` | [`Notice::Chargeback`]: the card's bank took the money back (not the in-app dispute) |
//! | `transfer.reversed` | [`Notice::PayoutReversed`]: a contractor's transfer came back |
//! | anything else | [`Notice::Ignored`] |

use dispatch_engine::Money;
use dispatch_protocol::signature::{self, SignatureError};
use serde::{Deserialize, Serialize};

/// Stripe's default tolerance between a delivery's timestamp and now, seconds.
pub const TOLERANCE_SECS: i64 = signature::TOLERANCE_SECS;

/// Why a delivery is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No `t=` or no `v1=` in the signature header.
    #[error("webhook: the signature header is malformed")]
    Malformed,
    /// The timestamp is too far from now.
    #[error("webhook: signed at {signed_at}, {skew} s from now (tolerance {tolerance} s)")]
    Stale {
        /// The delivery's timestamp.
        signed_at: i64,
        /// How far from now.
        skew: i64,
        /// The tolerance.
        tolerance: i64,
    },
    /// No signature matches under any secret.
    #[error("webhook: no signature matches")]
    BadSignature,
    /// Signed, but not an event.
    #[error("webhook: the body is not an event: {0}")]
    NotAnEvent(String),
}

/// Checks `header` against `body`: signed under one of `secrets`, at most
/// `tolerance` seconds from `now` (unix seconds). The signing time.
pub fn verify(header: &str, body: &[u8], secrets: &[&str], now: i64, tolerance: i64) -> Result<i64, WebhookError> {
    let secrets: Vec<&[u8]> = secrets.iter().map(|s| s.as_bytes()).collect();
    signature::verify(header, body, &secrets, now, tolerance).map_err(|e| match e {
        SignatureError::Malformed => WebhookError::Malformed,
        SignatureError::Stale { signed_at, skew, tolerance } => WebhookError::Stale { signed_at, skew, tolerance },
        SignatureError::BadSignature => WebhookError::BadSignature,
    })
}

/// What a verified event means for a job's money. Each names the
/// processor's object, which the city whose processor made it finds its job by
/// ([`PaymentProvider::job_of`](crate::PaymentProvider::job_of)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notice {
    /// A chargeback on the hold `intent`'s charge.
    Chargeback {
        /// The event, for de-duplication.
        event: String,
        /// The charged hold.
        intent: String,
        /// How much the bank took back.
        amount: Money,
    },
    /// A transfer to a contractor was reversed.
    PayoutReversed {
        /// The event, for de-duplication.
        event: String,
        /// The transfer.
        transfer: String,
        /// How much of it came back in all.
        amount: Money,
    },
    /// An event the money flow does not act on.
    Ignored {
        /// The event.
        event: String,
        /// Its type.
        kind: String,
    },
}

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: serde_json::Value,
}

/// The notice of a verified event's `body`.
pub fn notice(body: &[u8]) -> Result<Notice, WebhookError> {
    let event: Event = serde_json::from_slice(body).map_err(|e| WebhookError::NotAnEvent(e.to_string()))?;
    let object = &event.data.object;
    let text = |field: &str| object[field].as_str().map(str::to_owned);
    let missing = |what: &str| WebhookError::NotAnEvent(format!("{} without {what}", event.kind));
    Ok(match event.kind.as_str() {
        "charge.dispute.created" => Notice::Chargeback {
            intent: text("payment_intent").ok_or_else(|| missing("payment_intent"))?,
            amount: Money(object["amount"].as_u64().ok_or_else(|| missing("amount"))?),
            event: event.id,
        },
        "transfer.reversed" => Notice::PayoutReversed {
            transfer: text("id").ok_or_else(|| missing("id"))?,
            amount: Money(object["amount_reversed"].as_u64().ok_or_else(|| missing("amount_reversed"))?),
            event: event.id,
        },
        _ => Notice::Ignored { event: event.id, kind: event.kind },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scheme itself is tested in `dispatch_protocol::signature`; here,
    /// that Stripe's header verifies through it and each refusal keeps its name.
    #[test]
    fn stripe_headers_verify_and_refusals_keep_their_names() {
        let (body, at) = (br#"{"id": "evt_1"}"#.as_slice(), 1_796_270_000);
        let header = signature::sign(&[b"whsec_old", b"whsec_new"], at, body);
        assert_eq!(verify(&header, body, &["whsec_new"], at + 10, TOLERANCE_SECS), Ok(at));
        assert_eq!(verify(&header, body, &["whsec_other"], at, TOLERANCE_SECS), Err(WebhookError::BadSignature));
        assert!(matches!(verify(&header, body, &["whsec_new"], at + 301, TOLERANCE_SECS), Err(WebhookError::Stale { .. })));
        assert_eq!(verify("t=1", body, &["whsec_new"], at, TOLERANCE_SECS), Err(WebhookError::Malformed));
    }

    #[test]
    fn events_become_notices() {
        let dispute =
            br#"{"id":"evt_2","type":"charge.dispute.created","data":{"object":{"id":"dp_1","amount":4000,"payment_intent":"pi_9"}}}"#;
        assert_eq!(notice(dispute), Ok(Notice::Chargeback { event: "evt_2".into(), intent: "pi_9".into(), amount: Money(4_000) }));
        let reversed = br#"{"id":"evt_3","type":"transfer.reversed","data":{"object":{"id":"tr_1","amount":9710,"amount_reversed":9710}}}"#;
        assert_eq!(notice(reversed), Ok(Notice::PayoutReversed { event: "evt_3".into(), transfer: "tr_1".into(), amount: Money(9_710) }));
        let other = br#"{"id":"evt_4","type":"payment_intent.succeeded","data":{"object":{}}}"#;
        assert_eq!(notice(other), Ok(Notice::Ignored { event: "evt_4".into(), kind: "payment_intent.succeeded".into() }));
        assert!(notice(br#"{"id":"evt_5","type":"charge.dispute.created","data":{"object":{}}}"#).is_err(), "a dispute without its charge");
        assert!(notice(b"not json").is_err());
    }
}
