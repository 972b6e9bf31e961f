//! `POST /v1/webhooks/stripe`: what the card processor reports on its own,
//! verified and handed to the city whose job it concerns — in process, or
//! over NATS to the city's owner when this is a `dispatch gateway`.
//!
//! The `Stripe-Signature` header is checked against every configured secret
//! (two at once while one is rotated) within five minutes of its timestamp
//! (`dispatch_payments::webhook::verify`). A chargeback
//! (`charge.dispute.created`) or a reversed transfer (`transfer.reversed`)
//! goes to the city whose processor made the hold or transfer it names, and
//! into that job's payment (`Dispatch::processor_notice`), once per event id
//! however often Stripe delivers it. Events the money flow does not act on
//! are acknowledged and counted. Answers: 200 once handled (or ignored, or
//! refused by the job's payment: logged for a person), 400 for a bad
//! signature or body, 404 with no secret configured, 503 when no city could
//! take it now (Stripe delivers again).

use dispatch_actors::payments::webhook::{self, Notice, TOLERANCE_SECS};
use hyper::StatusCode;
use serde_json::{Value, json};

use crate::protocol::ErrorCode;
use crate::server::Gateway;

/// Handles one delivery: the status and the body to answer with.
pub(crate) async fn receive(gw: &Gateway, signature: Option<&str>, body: &[u8]) -> (StatusCode, Value) {
    let secrets = gw.config.payments.webhook_secrets();
    if secrets.is_empty() {
        return (StatusCode::NOT_FOUND, json!({"error": "no webhook secret is configured (payments.webhook_secrets)"}));
    }
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let outcome = |kind: &'static str| metrics::counter!("dispatch_processor_webhooks_total", "outcome" => kind).increment(1);
    if let Err(e) = webhook::verify(signature.unwrap_or_default(), body, &secrets, now, TOLERANCE_SECS) {
        outcome("refused");
        return (StatusCode::BAD_REQUEST, json!({"error": e.to_string()}));
    }
    let notice = match webhook::notice(body) {
        Ok(notice) => notice,
        Err(e) => {
            outcome("refused");
            return (StatusCode::BAD_REQUEST, json!({"error": e.to_string()}));
        }
    };
    if let Notice::Ignored { kind, .. } = &notice {
        outcome("ignored");
        return (StatusCode::OK, json!({"handled": false, "ignored": kind}));
    }
    // Each city asks its own processor whether it made the object the event names.
    for (name, city) in &gw.cities {
        match city.port.processor_notice(&notice).await {
            Ok(Some(job)) => {
                outcome("applied");
                return (StatusCode::OK, json!({"handled": true, "city": name, "job": job}));
            }
            Ok(None) => {}
            Err(refusal) if refusal.code == ErrorCode::Unavailable => {
                outcome("failed");
                tracing::warn!(city = %name, ?notice, message = %refusal.message, "processor webhook not applied; the processor delivers it again");
                return (StatusCode::SERVICE_UNAVAILABLE, json!({"error": refusal.message}));
            }
            Err(refusal) => {
                // The job's money cannot take it (a partial reversal, more than was charged):
                // delivering it again will not help, so it is acknowledged and left to a person.
                outcome("refused");
                tracing::error!(city = %name, ?notice, message = %refusal.message, "processor webhook refused by the job's payment");
                return (StatusCode::OK, json!({"handled": false, "city": name, "error": refusal.message}));
            }
        }
    }
    // No city here made that object (or its owner is moving): the processor tries again later.
    outcome("unplaced");
    (StatusCode::SERVICE_UNAVAILABLE, json!({"error": "no city served here made the object this event names"}))
}
