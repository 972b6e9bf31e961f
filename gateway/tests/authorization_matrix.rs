//! Every role × every client message: allowed or `forbidden`, as the table in
//! docs/reliability.md says. "Allowed" means the role check passes — the
//! answer may still be a conflict or not_found for the state the job is in —
//! and a second identity of the same role that is not a party to the job is
//! refused wherever the message concerns a job.

mod common;

use anyhow::Result;
use common::*;
use dispatch_gateway::{Auth, Role};
use serde_json::{Value, json};

/// (message, customer, contractor, dispatcher, concerns the job): who may send it.
fn matrix(job: u64) -> Vec<(Value, bool, bool, bool, bool)> {
    let (lat, lng) = east(100.0);
    vec![
        (
            json!({"type": "register", "name": "x", "trades": [{"trade": "hvac", "years": 1}], "hourly_rate": 1, "service_radius_m": 1000.0}),
            false,
            true,
            false,
            false,
        ),
        (json!({"type": "online", "lat": lat, "lng": lng}), false, true, false, false),
        (json!({"type": "gps", "lat": lat, "lng": lng, "ts": 1}), false, true, false, false),
        (json!({"type": "break"}), false, true, false, false),
        (json!({"type": "offline"}), false, true, false, false),
        (json!({"type": "accept", "job": job}), false, true, false, true),
        (json!({"type": "decline", "job": job}), false, true, false, true),
        (json!({"type": "job_status", "job": job, "status": "on_site"}), false, true, false, true),
        (
            json!({"type": "post_job", "trade": "hvac", "lat": DSM.0, "lng": DSM.1, "urgency": "today", "description": "x"}),
            true,
            false,
            false,
            false,
        ),
        (json!({"type": "watch", "job": job}), true, false, false, true),
        (json!({"type": "rate", "job": job, "stars": 5}), true, false, false, true),
        (json!({"type": "chat", "job": job, "text": "hello"}), true, true, true, true),
        (json!({"type": "resume", "job": job, "last_seq": 0}), true, true, true, true),
        (json!({"type": "subscribe"}), false, false, true, false),
        (json!({"type": "assign", "job": job, "contractor": 999}), false, false, true, false),
        (json!({"type": "nearby", "lat": DSM.0, "lng": DSM.1, "k": 3}), false, false, true, false),
        (json!({"type": "ping"}), true, true, true, false),
        (json!({"type": "confirm_payment", "job": job}), true, false, false, true),
        (json!({"type": "propose_extras", "job": job, "amount": 500, "reason": "a fuse"}), false, true, false, true),
        (json!({"type": "reject_extras", "job": job}), true, false, false, true),
        (json!({"type": "approve_extras", "job": job}), true, false, false, true),
        (json!({"type": "open_dispute", "job": job, "reason": "matrix"}), true, false, false, true),
        (json!({"type": "refund", "job": job, "amount": 100}), false, false, true, true),
        (json!({"type": "resolve_dispute", "job": job, "refund": 0}), false, false, true, true),
        (json!({"type": "payment", "job": job}), true, true, true, true),
        (json!({"type": "earnings"}), false, true, false, false),
        (json!({"type": "save_card", "payment_method": "pm_card_visa"}), true, false, false, false),
        (json!({"type": "confirm_card"}), true, false, false, false),
        (json!({"type": "card"}), true, false, false, false),
        (json!({"type": "payout_account"}), false, true, false, false),
        (json!({"type": "set_notify", "channels": ["sms"]}), true, true, false, false),
        // Cancel last: it ends the job.
        (json!({"type": "cancel", "job": job, "reason": "matrix"}), true, false, true, true),
    ]
}

/// The answer's error code, or "ok" (a ping's pong counts as an answer).
async fn outcome(client: &mut Client, msg: &Value) -> Result<String> {
    let id = client.send(msg.clone()).await?;
    if msg["type"] == "gps" {
        // No ack for a fix: a ping right behind it tells whether an error came first.
        client.send(json!({"type": "ping"})).await?;
        let v = client.wait("an error or the pong", |v| v["type"] == "error" || v["type"] == "pong").await?;
        return Ok(if v["type"] == "error" { v["code"].as_str().unwrap_or("").to_owned() } else { "ok".into() });
    }
    let reply = client.wait("a reply", |v| v["id"] == id.as_str() || (msg["type"] == "ping" && v["type"] == "pong")).await?;
    Ok(if reply["type"] == "error" { reply["code"].as_str().unwrap_or("").to_owned() } else { "ok".into() })
}

#[tokio::test]
async fn every_role_and_every_message() -> Result<()> {
    let server = Server::start().await?;
    // Customer 70's job, offered to and accepted by contractor 7.
    let mut pro = contractor(&server, 7, "hvac", 300.0).await?;
    let mut customer = server.connect(Role::Customer, 70).await?;
    let job = customer.post_job("hvac").await?;
    pro.wait("the offer", |v| v["type"] == "offer").await?;
    pro.call(json!({"type": "accept", "job": job})).await?;

    let mut parties = [
        (Role::Customer, customer),
        (Role::Contractor, server.connect(Role::Contractor, 7).await?),
        (Role::Dispatcher, server.connect(Role::Dispatcher, 1).await?),
    ];
    // Not parties to the job: another customer, another (registered) contractor,
    // and a dispatcher of another city.
    let omaha = Auth::new(b"test-secret-of-at-least-32-bytes").issue(Role::Dispatcher, 2, "omaha", 600)?;
    let mut others = [
        (Role::Customer, server.connect(Role::Customer, 71).await?),
        (Role::Contractor, contractor(&server, 8, "hvac", 9_000.0).await?),
        (Role::Dispatcher, Client::connect(server.addr, &omaha).await?),
    ];
    let mut checked = 0;
    for (msg, for_customer, for_contractor, for_dispatcher, concerns_job) in matrix(job) {
        for ((role, client), (_, other)) in parties.iter_mut().zip(others.iter_mut()) {
            let allowed = match role {
                Role::Customer => for_customer,
                Role::Contractor => for_contractor,
                Role::Dispatcher => for_dispatcher,
                Role::Admin => false,
            };
            let got = outcome(client, &msg).await?;
            if allowed {
                assert_ne!(got, "forbidden", "{role:?} may send {msg}");
            } else {
                assert_eq!(got, "forbidden", "{role:?} may not send {msg}");
            }
            if allowed && concerns_job && msg["type"] != "cancel" {
                // Refused for who they are, before anything about the job's state shows.
                let got = outcome(other, &msg).await?;
                assert!(got == "forbidden" || got == "not_found", "{role:?} not party to job {job} sent {msg}: {got}");
            }
            checked += 1;
        }
    }
    let listed: Vec<Value> = matrix(job).into_iter().map(|row| row.0["type"].clone()).collect();
    for kind in dispatch_gateway::ClientMsg::KINDS {
        assert!(listed.contains(&json!(kind)), "the matrix has no row for {kind}");
    }
    assert_eq!(checked, dispatch_gateway::ClientMsg::KINDS.len() * 3);
    server.stop().await
}

/// Every admin route × every kind of token: an admin reads any city, a
/// dispatcher only their own; customers and contractors are refused (403),
/// no token or a bad one is 401. An admin's token opens no WebSocket.
#[tokio::test]
async fn every_role_and_every_admin_route() -> Result<()> {
    let server = Server::start_with(|c| {
        c.webhooks.allow_networks = vec!["127.0.0.0/8".into()];
        c.webhooks.endpoints = vec![dispatch_gateway::webhooks::EndpointConfig {
            name: "crm".into(),
            url: "http://127.0.0.1:9/hook".into(),
            secrets: vec!["whsec_matrix_0123456789abcdef012345".into()],
            events: vec![],
            cities: vec![],
        }];
    })
    .await?;
    let mut pro = contractor(&server, 7, "hvac", 300.0).await?;
    let mut customer = server.connect(Role::Customer, 70).await?;
    let job = customer.post_job("hvac").await?;
    pro.wait("the offer", |v| v["type"] == "offer").await?;
    let auth = Auth::new(b"test-secret-of-at-least-32-bytes");
    let token = |role, city: &str| auth.issue(role, 1, city, 600).map(Some);
    let routes = [
        format!("/v1/admin/cities/{CITY}/jobs/{job}"),
        format!("/v1/admin/cities/{CITY}/contractors/7"),
        format!("/v1/admin/cities/{CITY}/books"),
        format!("/v1/admin/cities/{CITY}/audit"),
        format!("/v1/admin/cities/{CITY}/customers/70"),
        format!("/v1/admin/cities/{CITY}/jobs"),
        format!("/v1/admin/cities/{CITY}/contractors"),
        format!("/v1/admin/cities/{CITY}/webhooks"),
        format!("/v1/admin/cities/{CITY}/webhooks/crm/dead-letters"),
        format!("/v1/admin/cities/{CITY}/kpis"),
        format!("/v1/admin/cities/{CITY}/job-history"),
        format!("/v1/admin/cities/{CITY}/contractor-directory"),
    ];
    let callers: [(&str, Option<String>, u16); 7] = [
        ("an admin", token(Role::Admin, "")?, 200),
        ("this city's dispatcher", token(Role::Dispatcher, CITY)?, 200),
        ("another city's dispatcher", token(Role::Dispatcher, "omaha")?, 403),
        ("a customer", token(Role::Customer, CITY)?, 403),
        ("a contractor", token(Role::Contractor, CITY)?, 403),
        ("nobody", None, 401),
        ("a forged token", Auth::new(b"another-secret-of-at-least-32-bytes").issue(Role::Admin, 1, "", 600).map(Some)?, 401),
    ];
    let client = reqwest::Client::new();
    for route in &routes {
        for (who, token, expected) in &callers {
            let mut request = client.get(format!("http://{}{route}", server.addr));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await?;
            assert_eq!(status, *expected, "{who} on {route}: {body}");
            if status != 200 {
                assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{who} on {route}: an error names why: {body}");
            }
        }
    }
    // Changes are an admin's alone: even this city's dispatcher is refused.
    let changes = [
        format!("/v1/admin/cities/{CITY}/customers/70/block"),
        format!("/v1/admin/cities/{CITY}/customers/70/unblock"),
        format!("/v1/admin/cities/{CITY}/contractors/7/suspend"),
        format!("/v1/admin/cities/{CITY}/contractors/7/reinstate"),
        format!("/v1/admin/cities/{CITY}/jobs/{job}/cancel"),
    ];
    for route in changes {
        for (who, token, expected) in &callers {
            let expected = if *who == "this city's dispatcher" { 403 } else { *expected };
            let mut request = client.post(format!("http://{}{route}", server.addr)).json(&serde_json::json!({"reason": "matrix"}));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let status = request.send().await?.status().as_u16();
            assert_eq!(status, expected, "{who} on POST {route}");
        }
    }
    let bodies = [
        (
            format!("/v1/admin/cities/{CITY}/contractors/7/verify"),
            serde_json::json!({"trade": "hvac", "licence": "M-1", "expires_at": 4_102_444_800_000_i64}),
        ),
        (
            format!("/v1/admin/cities/{CITY}/contractors/7/insurance"),
            serde_json::json!({"policy": "M-2", "expires_at": 4_102_444_800_000_i64}),
        ),
    ];
    for (route, body) in bodies {
        for (who, token, expected) in &callers {
            let expected = if *who == "this city's dispatcher" { 403 } else { *expected };
            let mut request = client.post(format!("http://{}{route}", server.addr)).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            assert_eq!(request.send().await?.status().as_u16(), expected, "{who} on POST {route}");
        }
    }
    // Webhook endpoints: added, replayed and removed by an admin only.
    let hook = serde_json::json!({"name": "added", "url": "http://127.0.0.1:9/added", "secrets": ["whsec_matrix_0123456789abcdef012345"]});
    let webhook_changes = [
        ("POST", format!("/v1/admin/cities/{CITY}/webhooks"), Some(hook), 201),
        ("POST", format!("/v1/admin/cities/{CITY}/webhooks/crm/replay"), None, 202),
        ("DELETE", format!("/v1/admin/cities/{CITY}/webhooks/added"), None, 200),
    ];
    for (method, route, body, admin_gets) in webhook_changes {
        for (who, token, expected) in &callers {
            let expected = match *who {
                "this city's dispatcher" => 403,
                "an admin" => admin_gets,
                _ => *expected,
            };
            let mut request = client.request(method.parse()?, format!("http://{}{route}", server.addr));
            if let Some(body) = &body {
                request = request.json(body);
            }
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            assert_eq!(request.send().await?.status().as_u16(), expected, "{who} on {method} {route}");
        }
    }
    // The WebSocket is not the admin's.
    let admin = auth.issue(Role::Admin, 1, "", 600)?;
    assert!(Client::connect(server.addr, &admin).await.is_err());
    server.stop().await
}
