//! A job's money over real WebSockets, on the default sandbox processor:
//! the hold at posting, extras proposed and approved, the charge at
//! completion, a dispatcher's partial refund, a dispute and its resolution,
//! and the payout once the dispute window (two seconds here) has passed —
//! each as a `payment` event to the job's parties — then the contractor's
//! statement. And a declined card, refused with `payment_declined`, again
//! on a retry under the same request id.

#![allow(clippy::expect_used, reason = "test code: the journey reads values out of replies")]

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use dispatch_gateway::Role;
use serde_json::{Value, json};

/// The `payment` event of `kind` for `job`.
fn payment(job: u64, kind: &'static str) -> impl FnMut(&Value) -> bool {
    move |v| v["type"] == "event" && v["job"] == job && v["event"]["payment"][kind] != Value::Null
}

#[tokio::test]
async fn a_job_s_money_from_the_hold_to_the_payout_over_the_wire() -> Result<()> {
    let server = Server::start_with(|c| c.payments.terms.dispute_window_secs = 2).await?;
    let mut pro = contractor(&server, 7, "plumbing", 400.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let mut dispatcher = server.connect(Role::Dispatcher, 1).await?;

    let posted = customer
        .call(json!({"type": "post_job", "trade": "plumbing", "lat": DSM.0, "lng": DSM.1, "urgency": "emergency", "description": "burst pipe"}))
        .await?;
    let job = posted["job"].as_u64().expect("job");
    let quote = posted["quote"]["total"].as_u64().expect("quote");
    // The hold is on before the offer goes out: the customer is told how much.
    let held = customer.wait("authorized", payment(job, "authorized")).await?;
    let hold = held["event"]["payment"]["authorized"]["amount"].as_u64().expect("amount");
    assert_eq!(hold, (quote * 12).div_ceil(10), "the quote and a 20 % margin");
    pro.wait("the offer", |v| v["type"] == "offer" && v["job"] == job).await?;
    pro.call(json!({"type": "accept", "job": job})).await?;
    pro.call(json!({"type": "job_status", "job": job, "status": "en_route"})).await?;
    pro.call(json!({"type": "job_status", "job": job, "status": "on_site"})).await?;

    // Extras: proposed by the contractor, approved by the customer, charged at completion.
    let proposed = pro.call(json!({"type": "propose_extras", "job": job, "amount": 1_000, "reason": "a new valve"})).await?;
    assert_eq!(proposed["payment"]["extras_proposed"]["amount"], 1_000);
    customer.wait("extras proposed", payment(job, "extras_proposed")).await?;
    let approved = customer.call(json!({"type": "approve_extras", "job": job})).await?;
    assert_eq!(approved["payment"]["extras_approved"], 1_000);
    pro.call(json!({"type": "job_status", "job": job, "status": "completed"})).await?;
    let charged = customer.wait("captured", payment(job, "captured")).await?;
    let total = quote + 1_000;
    assert_eq!(charged["event"]["payment"]["captured"]["amount"], total);
    let receipt = customer.call(json!({"type": "payment", "job": job})).await?;
    assert_eq!((receipt["job"].as_u64(), receipt["payment"]["state"].as_str()), (Some(job), Some("captured")));
    assert_eq!(receipt["payment"]["charged"], total);
    assert!(receipt["payment"]["payout_at"].as_i64().is_some());

    // A dispatcher's partial refund, then the customer's dispute and its resolution.
    let refunded = dispatcher.call(json!({"type": "refund", "job": job, "amount": 500})).await?;
    assert_eq!(refunded["payment"]["refunded"], 500);
    customer.wait("refunded", payment(job, "refunded")).await?;
    let disputed = customer.call(json!({"type": "open_dispute", "job": job, "reason": "the tap still drips"})).await?;
    assert_eq!(disputed["payment"]["state"], "disputed");
    let err = customer.refused(json!({"type": "refund", "job": job, "amount": 1})).await?;
    assert_eq!(err["code"], "forbidden");
    let err = dispatcher.refused(json!({"type": "refund", "job": job, "amount": total})).await?;
    assert_eq!(err["code"], "conflict", "more than is left: {err}");
    // Past the window, a disputed charge waits for the dispatcher.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(customer.call(json!({"type": "payment", "job": job})).await?["payment"]["state"], "disputed");
    let resolved = dispatcher.call(json!({"type": "resolve_dispute", "job": job, "refund": 700})).await?;
    assert_eq!(resolved["payment"]["refunded"], 1_200);

    // Paid out at once: what is left, less the 2.9 % fee (rounded half up).
    let paid = pro.wait("paid out", payment(job, "paid_out")).await?;
    let earned = total - 1_200;
    let fee = (earned * 290 + 5_000) / 10_000;
    assert_eq!(paid["event"]["payment"]["paid_out"]["amount"], earned - fee);
    let statement = pro.call(json!({"type": "earnings"})).await?;
    let day = &statement["days"][0];
    assert_eq!((statement["contractor"].as_u64(), day["gross"].as_u64()), (Some(7), Some(earned)));
    assert_eq!((day["fee"].as_u64(), day["paid"].as_u64(), day["pending"].as_u64()), (Some(fee), Some(earned - fee), Some(0)));
    // The payout went to the contractor's payout account, made when it was first due (the sandbox's are ready at once).
    let account = pro.call(json!({"type": "payout_account"})).await?;
    assert_eq!(account, json!({"contractor": 7, "account": "acct_dispatch_contractor_7", "ready": true, "onboarding_url": null}));
    assert_eq!(customer.refused(json!({"type": "payout_account"})).await?["code"], "forbidden");
    server.stop().await
}

#[tokio::test]
async fn a_declined_card_is_refused_with_payment_declined_and_so_is_its_retry() -> Result<()> {
    let server = Server::start().await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let post = json!({
        "type": "post_job", "trade": "hvac", "lat": DSM.0, "lng": DSM.1, "urgency": "today", "description": "no heat",
        "payment_method": "pm_card_chargeDeclined", "request_id": "no-heat-1"
    });
    for attempt in ["first", "retry"] {
        let err = customer.refused(post.clone()).await?;
        assert_eq!(err["code"], "payment_declined", "{attempt}: {err}");
        assert!(err["message"].as_str().is_some_and(|m| m.contains("declined")), "{attempt}: {err}");
    }
    // A bad payment method is refused as such.
    let mut bad = post.clone();
    bad["payment_method"] = json!("");
    bad["request_id"] = json!("no-heat-2");
    assert_eq!(customer.refused(bad).await?["code"], "bad_request");
    // Another card posts.
    let mut good = post;
    good["payment_method"] = json!("pm_card_visa");
    good["request_id"] = json!("no-heat-3");
    assert!(customer.call(good).await?["job"].as_u64().is_some());
    server.stop().await
}

#[tokio::test]
async fn a_customer_saves_a_card_on_file_over_the_wire() -> Result<()> {
    let server = Server::start().await?;
    let mut customer = server.connect(Role::Customer, 101).await?;
    let none = customer.call(json!({"type": "card"})).await?;
    assert_eq!(none, json!({"customer": 101, "card_status": "none", "payment_method": null, "client_secret": null}));
    let declined = customer.refused(json!({"type": "save_card", "payment_method": "pm_card_chargeDeclined"})).await?;
    assert_eq!(declined["code"], "payment_declined", "{declined}");
    assert_eq!(customer.refused(json!({"type": "save_card", "payment_method": ""})).await?["code"], "bad_request");
    assert_eq!(customer.refused(json!({"type": "confirm_card"})).await?["code"], "conflict", "nothing waits");

    let waiting = customer.call(json!({"type": "save_card", "payment_method": "pm_card_authenticationRequired"})).await?;
    assert_eq!(waiting["card_status"], "action_required", "{waiting}");
    assert!(waiting["client_secret"].as_str().is_some_and(|s| !s.is_empty()), "{waiting}");
    assert_eq!(customer.call(json!({"type": "confirm_card"})).await?["card_status"], "action_required", "not authenticated yet");

    let saved = customer.call(json!({"type": "save_card", "payment_method": "pm_card_mastercard"})).await?;
    let expected = json!({"customer": 101, "card_status": "saved", "payment_method": "pm_card_mastercard", "client_secret": null});
    assert_eq!(saved, expected);
    assert_eq!(customer.call(json!({"type": "card"})).await?, expected);
    // A post that names no card is held on it.
    let post = json!({"type": "post_job", "trade": "hvac", "lat": DSM.0, "lng": DSM.1, "urgency": "today", "description": "no heat"});
    let job = customer.call(post).await?["job"].as_u64().expect("posted");
    let receipt = customer.call(json!({"type": "payment", "job": job})).await?;
    assert_eq!(receipt["payment"]["state"], "authorized", "{receipt}");
    // Only a customer has a card on file.
    let mut pro = server.connect(Role::Contractor, 9).await?;
    assert_eq!(pro.refused(json!({"type": "card"})).await?["code"], "forbidden");
    server.stop().await
}

/// Contractor 7, customer 100 and a dispatcher connected, and the customer's
/// plumbing job offered to the contractor and accepted: (contractor, customer, dispatcher, job).
async fn accepted_job(server: &Server) -> Result<(Client, Client, Client, u64)> {
    let mut pro = contractor(server, 7, "plumbing", 400.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let dispatcher = server.connect(Role::Dispatcher, 1).await?;
    let job = customer.post_job("plumbing").await?;
    pro.wait("the offer", |v| v["type"] == "offer" && v["job"] == job).await?;
    pro.call(json!({"type": "accept", "job": job})).await?;
    Ok((pro, customer, dispatcher, job))
}

/// A Stripe webhook delivery of `body`, signed with `secret` now.
async fn deliver(server: &Server, secret: &str, body: &str) -> Result<(u16, Value)> {
    deliver_webhook(server.addr, secret, body).await
}

#[tokio::test]
async fn a_signed_chargeback_webhook_comes_out_of_the_job_s_escrow_once() -> Result<()> {
    let server = Server::start_with(|c| c.payments.webhook_secrets = vec!["whsec_old".into(), "whsec_test".into()]).await?;
    let mut pro = contractor(&server, 7, "plumbing", 400.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let job = customer.post_job("plumbing").await?;
    pro.wait("the offer", |v| v["type"] == "offer" && v["job"] == job).await?;
    for step in ["accept", "en_route", "on_site", "completed"] {
        let msg = if step == "accept" {
            json!({"type": "accept", "job": job})
        } else {
            json!({"type": "job_status", "job": job, "status": step})
        };
        pro.call(msg).await?;
    }
    customer.wait("captured", payment(job, "captured")).await?;

    // The sandbox names its holds after the job's first hold call.
    let dispute = |event: &str, intent: &str| {
        json!({"id": event, "type": "charge.dispute.created", "data": {"object": {"id": "dp_1", "amount": 400, "payment_intent": intent}}})
            .to_string()
    };
    let body = dispute("evt_1", &format!("pi_job-{job}-authorize-a1_1"));
    let (status, answer) = deliver(&server, "whsec_test", &body).await?;
    assert_eq!((status, answer["job"].as_u64()), (200, Some(job)), "{answer}");
    customer.wait("the chargeback", payment(job, "chargeback")).await?;
    // Stripe delivers again: counted once.
    assert_eq!(deliver(&server, "whsec_test", &body).await?.0, 200);
    let receipt = customer.call(json!({"type": "payment", "job": job})).await?;
    assert_eq!(receipt["payment"]["refunded"], 400, "one chargeback, not two: {receipt}");

    // Refused: a wrong secret, no signature, a tampered body; not placed: a hold nobody here made.
    assert_eq!(deliver(&server, "whsec_wrong", &body).await?.0, 400);
    let unsigned = reqwest::Client::new().post(format!("http://{}/v1/webhooks/stripe", server.addr)).body(body.clone()).send().await?;
    assert_eq!(unsigned.status().as_u16(), 400);
    assert_eq!(deliver(&server, "whsec_test", &dispute("evt_2", "pi_elsewhere")).await?.0, 503);
    // Signed but not an event, or a dispute without its hold: refused, named.
    let (status, answer) = deliver(&server, "whsec_test", "not json").await?;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = deliver(&server, "whsec_test", r#"{"id":"evt_4","type":"charge.dispute.created","data":{"object":{}}}"#).await?;
    assert!(status == 400 && answer["error"].as_str().is_some_and(|e| e.contains("payment_intent")), "{answer}");
    let other = json!({"id": "evt_3", "type": "payment_intent.created", "data": {"object": {}}}).to_string();
    let ignored = json!({"handled": false, "ignored": "payment_intent.created"});
    assert_eq!(deliver(&server, "whsec_old", &other).await?, (200, ignored), "the rotated secret still verifies");
    server.stop().await
}

#[tokio::test]
async fn a_reversed_transfer_is_held_until_a_dispatcher_pays_it_again() -> Result<()> {
    let server = Server::start_with(|c| {
        c.payments.terms.dispute_window_secs = 1;
        c.payments.webhook_secrets = vec!["whsec_test".into()];
    })
    .await?;
    let (mut pro, mut customer, mut dispatcher, job) = accepted_job(&server).await?;
    for step in ["en_route", "on_site", "completed"] {
        pro.call(json!({"type": "job_status", "job": job, "status": step})).await?;
    }
    let paid = pro.wait("paid out", payment(job, "paid_out")).await?;
    let amount = paid["event"]["payment"]["paid_out"]["amount"].as_u64().expect("amount");

    // The sandbox names its transfers after the job's payout call.
    let reversed = |event: &str, reversed: u64| {
        let transfer = json!({"id": format!("tr_job-{job}-payout-a1"), "amount": amount, "amount_reversed": reversed});
        json!({"id": event, "type": "transfer.reversed", "data": {"object": transfer}}).to_string()
    };
    // Part of a transfer cannot be owed again by halves: acknowledged, not applied, left to a person.
    let (status, answer) = deliver(&server, "whsec_test", &reversed("evt_r0", amount - 1)).await?;
    assert!(status == 200 && answer["handled"] == false && answer["error"].as_str().is_some(), "{answer}");
    let (status, answer) = deliver(&server, "whsec_test", &reversed("evt_r1", amount)).await?;
    assert_eq!((status, answer["job"].as_u64()), (200, Some(job)), "{answer}");
    pro.wait("the reversal", payment(job, "payout_reversed")).await?;
    assert_eq!(deliver(&server, "whsec_test", &reversed("evt_r1", amount)).await?.0, 200, "delivered again");
    let receipt = dispatcher.call(json!({"type": "payment", "job": job})).await?;
    assert_eq!(receipt["payment"]["state"], "payout_held", "{receipt}");
    let statement = pro.call(json!({"type": "earnings"})).await?;
    assert_eq!(statement["days"][0]["paid"], 0, "owed again: {statement}");

    // Held for a dispatcher: nothing can be refunded out of a released charge; resolving with none pays again.
    assert_eq!(dispatcher.refused(json!({"type": "resolve_dispute", "job": job, "refund": 1})).await?["code"], "conflict");
    dispatcher.call(json!({"type": "resolve_dispute", "job": job, "refund": 0})).await?;
    let again = pro.wait("paid out again", |v| payment(job, "paid_out")(v) && v["seq"].as_u64() > paid["seq"].as_u64()).await?;
    assert_eq!(again["event"]["payment"]["paid_out"]["amount"], amount);
    let receipt = customer.call(json!({"type": "payment", "job": job})).await?;
    assert_eq!(receipt["payment"]["state"], "paid_out", "{receipt}");
    server.stop().await
}

#[tokio::test]
async fn money_requests_with_bad_values_are_refused_with_a_clear_error() -> Result<()> {
    let server = Server::start().await?;
    let (mut pro, mut customer, mut dispatcher, job) = accepted_job(&server).await?;
    let code = |v: Value| v["code"].as_str().unwrap_or_default().to_owned();
    // Reasons the other party reads: not empty, not longer than a chat message.
    for reason in [String::new(), "  ".into(), "x".repeat(2_001)] {
        let err = pro.refused(json!({"type": "propose_extras", "job": job, "amount": 500, "reason": reason})).await?;
        assert_eq!(code(err.clone()), "bad_request", "{err}");
        assert!(err["message"].as_str().is_some_and(|m| m.contains("reason")), "{err}");
        assert_eq!(code(customer.refused(json!({"type": "open_dispute", "job": job, "reason": reason})).await?), "bad_request");
    }
    // Amounts: not a number, negative, nothing at all.
    for amount in [json!("5"), json!(-5), json!(1.5)] {
        let err = dispatcher.refused(json!({"type": "refund", "job": job, "amount": amount})).await?;
        assert_eq!(code(err.clone()), "bad_request", "{amount}: {err}");
    }
    let err = pro.refused(json!({"type": "propose_extras", "job": job, "amount": 0, "reason": "nothing"})).await?;
    assert_eq!(code(err.clone()), "bad_request", "{err}");
    assert!(err["message"].as_str().is_some_and(|m| m.contains("more than zero")), "{err}");
    let err = dispatcher.refused(json!({"type": "refund", "job": job, "amount": 0})).await?;
    assert_eq!(code(err.clone()), "bad_request", "{err}");
    // A step the payment cannot take now, and a job that is not there.
    assert_eq!(code(customer.refused(json!({"type": "approve_extras", "job": job})).await?), "conflict");
    assert_eq!(code(dispatcher.refused(json!({"type": "refund", "job": job, "amount": 100})).await?), "conflict");
    assert_eq!(code(customer.refused(json!({"type": "payment", "job": 9_999})).await?), "not_found");
    // Still served afterwards.
    assert_eq!(customer.call(json!({"type": "payment", "job": job})).await?["payment"]["state"], "authorized");
    server.stop().await
}
