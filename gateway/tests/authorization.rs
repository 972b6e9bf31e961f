//! One test per authorization rule: each violation gets `forbidden` and the
//! connection stays open.

mod common;

use anyhow::Result;
use common::*;
use dispatch_gateway::Role;
use serde_json::{Value, json};

async fn forbidden(client: &mut Client, msg: Value) -> Result<()> {
    let err = client.refused(msg).await?;
    assert_eq!(err["code"], "forbidden", "{err}");
    // Still open: a ping is answered.
    client.send(json!({"type": "ping"})).await?;
    client.wait("pong", |v| v["type"] == "pong").await?;
    Ok(())
}

/// A job posted by customer 100 and accepted by contractor 7.
async fn accepted_job(server: &Server) -> Result<(Client, Client, u64)> {
    let mut pro = contractor(server, 7, "hvac", 800.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let job = customer.post_job("hvac").await?;
    pro.wait("offer", |v| v["type"] == "offer").await?;
    pro.call(json!({"type": "accept", "job": job})).await?;
    Ok((pro, customer, job))
}

#[tokio::test]
async fn roles_are_kept_to_their_own_messages() -> Result<()> {
    let server = Server::start().await?;
    let mut customer = server.connect(Role::Customer, 1).await?;
    forbidden(&mut customer, json!({"type": "gps", "lat": DSM.0, "lng": DSM.1, "ts": 1})).await?;
    forbidden(&mut customer, json!({"type": "online", "lat": DSM.0, "lng": DSM.1})).await?;
    forbidden(&mut customer, json!({"type": "subscribe"})).await?;
    let mut pro = server.connect(Role::Contractor, 2).await?;
    forbidden(&mut pro, json!({"type": "post_job", "trade": "hvac", "lat": DSM.0, "lng": DSM.1, "urgency": "today", "description": "x"}))
        .await?;
    server.stop().await
}

#[tokio::test]
async fn a_contractor_acts_only_on_offers_made_to_them() -> Result<()> {
    let server = Server::start().await?;
    let mut pro = contractor(&server, 7, "hvac", 800.0).await?;
    let mut other = contractor(&server, 8, "hvac", 9_000.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let job = customer.post_job("hvac").await?;
    pro.wait("offer", |v| v["type"] == "offer").await?;
    forbidden(&mut other, json!({"type": "accept", "job": job})).await?;
    forbidden(&mut other, json!({"type": "decline", "job": job})).await?;
    pro.call(json!({"type": "accept", "job": job})).await?;
    forbidden(&mut other, json!({"type": "job_status", "job": job, "status": "en_route"})).await?;
    server.stop().await
}

#[tokio::test]
async fn customers_see_and_act_on_only_their_own_jobs() -> Result<()> {
    let server = Server::start().await?;
    let (_pro, _owner, job) = accepted_job(&server).await?;
    let mut stranger = server.connect(Role::Customer, 200).await?;
    forbidden(&mut stranger, json!({"type": "watch", "job": job})).await?;
    forbidden(&mut stranger, json!({"type": "cancel", "job": job})).await?;
    forbidden(&mut stranger, json!({"type": "rate", "job": job, "stars": 1})).await?;
    forbidden(&mut stranger, json!({"type": "resume", "job": job, "last_seq": 0})).await?;
    server.stop().await
}

#[tokio::test]
async fn chat_is_only_among_the_jobs_participants() -> Result<()> {
    let server = Server::start().await?;
    let (_pro, mut owner, job) = accepted_job(&server).await?;
    let mut stranger = server.connect(Role::Customer, 200).await?;
    forbidden(&mut stranger, json!({"type": "chat", "job": job, "text": "hi"})).await?;
    let mut other_pro = server.connect(Role::Contractor, 9).await?;
    forbidden(&mut other_pro, json!({"type": "chat", "job": job, "text": "hi"})).await?;
    let mut dispatcher = server.connect(Role::Dispatcher, 1).await?;
    dispatcher.call(json!({"type": "chat", "job": job, "text": "dispatch here"})).await?;
    owner.wait("the dispatcher's chat", |v| v["event"]["chat"]["text"] == "dispatch here").await?;
    // Contractors cannot cancel.
    let mut pro = server.connect(Role::Contractor, 7).await?;
    forbidden(&mut pro, json!({"type": "cancel", "job": job})).await?;
    server.stop().await
}

#[tokio::test]
async fn a_customer_sees_positions_only_while_watching_an_active_job() -> Result<()> {
    let server = Server::start().await?;
    let (mut pro, mut owner, job) = accepted_job(&server).await?;
    pro.call(json!({"type": "job_status", "job": job, "status": "en_route"})).await?;
    let (lat, lng) = east(700.0);
    pro.send(json!({"type": "gps", "lat": lat, "lng": lng, "ts": 10_000_000})).await?;
    // Not watching: a ping round-trip passes with no position in between.
    owner.send(json!({"type": "ping"})).await?;
    owner.wait("pong", |v| v["type"] == "pong").await?;
    assert!(!owner.seen.iter().any(|v| v["event"]["contractor_position"].is_object()), "{:?}", owner.seen);
    owner.call(json!({"type": "watch", "job": job})).await?;
    let (lat, lng) = east(600.0);
    pro.send(json!({"type": "gps", "lat": lat, "lng": lng, "ts": 10_060_000})).await?;
    owner.wait("a position", |v| v["event"]["contractor_position"].is_object()).await?;
    server.stop().await
}

#[tokio::test]
async fn dispatchers_only_reach_their_own_city() -> Result<()> {
    let server = Server::start().await?;
    let token = server.gateway.auth().issue(Role::Dispatcher, 1, "atlantis", 3600)?;
    let refused = Client::connect(server.addr, &token).await;
    assert!(refused.is_err(), "a token for an unknown city is refused at the upgrade");
    let mut dispatcher = server.connect(Role::Dispatcher, 1).await?;
    let err = dispatcher.refused(json!({"type": "cancel", "job": 424242})).await?;
    assert_eq!(err["code"], "not_found");
    server.stop().await
}
